//! Canonical JSON and resource hashes.
//!
//! The canonical form of a value is compact JSON with object keys sorted
//! byte-wise at every level. It is written here rather than relying on
//! `serde_json`'s map order, which a feature flag anywhere in the build
//! (`preserve_order`) could change. A resource's hash is the SHA-256 of its
//! canonical attributes, so equal configurations hash equal regardless of
//! how the API listed them.

use std::fmt;

use serde_json::Value;
use sha2::{Digest, Sha256};

/// SHA-256 of a resource's canonical attributes.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Hash(pub [u8; 32]);

impl Hash {
    /// Hashes a value's canonical form.
    pub fn of(value: &Value) -> Hash {
        let mut hasher = Sha256::new();
        write_canonical(value, &mut HashWriter(&mut hasher));
        Hash(hasher.finalize().into())
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses 64 hex characters.
    pub fn from_hex(s: &str) -> Result<Hash, HashError> {
        let bytes = hex::decode(s).map_err(|_| HashError(s.chars().take(80).collect()))?;
        Hash::from_slice(&bytes).map_err(|_| HashError(s.chars().take(80).collect()))
    }

    /// Takes exactly 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Result<Hash, HashError> {
        let arr: [u8; 32] = bytes
            .try_into()
            .map_err(|_| HashError(format!("{} bytes", bytes.len())))?;
        Ok(Hash(arr))
    }
}

#[derive(Debug, thiserror::Error)]
#[error("invalid resource hash {0:?}: expected 32 bytes (64 hex characters)")]
pub struct HashError(String);

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash({})", &self.to_hex()[..12])
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// The canonical bytes of a value: compact JSON, keys sorted at every level.
pub fn canonical_bytes(value: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    write_canonical(value, &mut out);
    out
}

/// The canonical text of a value.
pub fn canonical_string(value: &Value) -> String {
    String::from_utf8(canonical_bytes(value)).expect("serde_json writes UTF-8")
}

trait Sink {
    fn put(&mut self, bytes: &[u8]);
}

impl Sink for Vec<u8> {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

struct HashWriter<'a>(&'a mut Sha256);

impl Sink for HashWriter<'_> {
    fn put(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

fn write_canonical(value: &Value, out: &mut impl Sink) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_unstable();
            out.put(b"{");
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.put(b",");
                }
                write_scalar(&Value::String(key.clone()), out);
                out.put(b":");
                write_canonical(&map[key], out);
            }
            out.put(b"}");
        }
        Value::Array(items) => {
            out.put(b"[");
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.put(b",");
                }
                write_canonical(item, out);
            }
            out.put(b"]");
        }
        scalar => write_scalar(scalar, out),
    }
}

fn write_scalar(value: &Value, out: &mut impl Sink) {
    let text = serde_json::to_vec(value).expect("a JSON scalar always serializes");
    out.put(&text);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn key_order_does_not_change_bytes_or_hash() {
        let a: Value = serde_json::from_str(r#"{"b":1,"a":{"y":[1,2],"x":"s"}}"#).unwrap();
        let b: Value = serde_json::from_str(r#"{"a":{"x":"s","y":[1,2]},"b":1}"#).unwrap();
        assert_eq!(canonical_bytes(&a), canonical_bytes(&b));
        assert_eq!(Hash::of(&a), Hash::of(&b));
        assert_eq!(canonical_string(&a), r#"{"a":{"x":"s","y":[1,2]},"b":1}"#);
    }

    #[test]
    fn different_values_hash_differently() {
        assert_ne!(Hash::of(&json!({"a": 1})), Hash::of(&json!({"a": 2})));
        assert_ne!(Hash::of(&json!([1, 2])), Hash::of(&json!([2, 1])));
        assert_ne!(Hash::of(&json!({"a": null})), Hash::of(&json!({})));
    }

    #[test]
    fn hash_streaming_matches_bytes() {
        let v = json!({"z": "\"quoted\"\n", "a": [true, null, 1.5]});
        let expected: [u8; 32] = Sha256::digest(canonical_bytes(&v)).into();
        assert_eq!(Hash::of(&v).0, expected);
    }

    #[test]
    fn hex_round_trip_and_errors() {
        let h = Hash::of(&json!(1));
        assert_eq!(Hash::from_hex(&h.to_hex()).unwrap(), h);
        let err = Hash::from_hex("abc").unwrap_err().to_string();
        assert!(err.contains("abc"), "{err}");
        assert!(Hash::from_slice(&[0u8; 31]).is_err());
    }
}
