//! IAM policy documents in canonical form, shared by bucket policies, trust
//! policies, inline policies and managed policy versions.
//!
//! The same policy can be written many ways that IAM treats as one: a single
//! value or a one-element array, statements and list elements in any order,
//! keys in any order, `Version` left out, JSON escapes (`\u002F`) and — as
//! IAM's read APIs return documents — the whole text URL-encoded (RFC 3986). The canonical form removes every such
//! difference so only a real change of meaning shows up as drift:
//!
//! - the text is URL-decoded when it is not already JSON;
//! - `Version` is explicit (`2008-10-17`, IAM's default, when absent);
//! - `Statement` is always an array, of normalized statements, sorted by
//!   their canonical bytes, without duplicates;
//! - `Action`/`NotAction`/`Resource`/`NotResource` are sorted,
//!   de-duplicated arrays. Action names keep their case: IAM matches them
//!   case-insensitively, but a restored document is written back as the
//!   baseline spelled it, and some validators (the emulator's trust-policy
//!   check) compare them exactly;
//! - `Principal`/`NotPrincipal` is `"*"` or an object of sorted arrays;
//! - `Condition` values are sorted arrays of strings (IAM compares condition
//!   values as strings: `true` and `"true"` are one value);
//! - an empty `Sid` is dropped. Unknown keys are kept as they are.

use serde_json::{Map, Value};

use crate::canonical::canonical_string;

/// IAM's policy language version when a document names none.
pub const DEFAULT_VERSION: &str = "2008-10-17";

/// Why a document is not a policy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DocError {
    #[error("policy document is not JSON: {0}")]
    NotJson(String),
    #[error("policy document is not valid URL-encoded text: {0}")]
    BadEncoding(String),
    #[error("policy document: {0}")]
    Invalid(String),
}

/// Parses a document as an API returns it (JSON, or URL-encoded JSON) and
/// normalizes it.
pub fn parse(text: &str) -> Result<Value, DocError> {
    let trimmed = text.trim();
    let json = if trimmed.starts_with('{') {
        std::borrow::Cow::Borrowed(trimmed)
    } else {
        std::borrow::Cow::Owned(percent_decode(trimmed)?)
    };
    let value: Value = serde_json::from_str(&json).map_err(|e| DocError::NotJson(e.to_string()))?;
    normalize(&value)
}

/// Normalizes a parsed document.
pub fn normalize(doc: &Value) -> Result<Value, DocError> {
    let Value::Object(fields) = doc else {
        return Err(DocError::Invalid(format!(
            "expected a JSON object, got {}",
            kind(doc)
        )));
    };
    let mut out = Map::new();
    for (key, value) in fields {
        match key.as_str() {
            "Version" => {
                let v = value.as_str().ok_or_else(|| {
                    DocError::Invalid(format!("Version must be a string, got {}", kind(value)))
                })?;
                out.insert(key.clone(), Value::String(v.to_string()));
            }
            "Statement" => {
                let items: Vec<&Value> = match value {
                    Value::Array(items) => items.iter().collect(),
                    Value::Object(_) => vec![value],
                    other => {
                        return Err(DocError::Invalid(format!(
                            "Statement must be an object or an array, got {}",
                            kind(other)
                        )))
                    }
                };
                let mut statements = Vec::with_capacity(items.len());
                for (i, s) in items.into_iter().enumerate() {
                    statements.push(
                        statement(s)
                            .map_err(|e| DocError::Invalid(format!("Statement[{i}]: {e}")))?,
                    );
                }
                let mut keyed: Vec<(String, Value)> = statements
                    .into_iter()
                    .map(|s| (canonical_string(&s), s))
                    .collect();
                keyed.sort_by(|a, b| a.0.cmp(&b.0));
                keyed.dedup_by(|a, b| a.0 == b.0);
                out.insert(
                    key.clone(),
                    Value::Array(keyed.into_iter().map(|(_, s)| s).collect()),
                );
            }
            _ => {
                out.insert(key.clone(), value.clone());
            }
        }
    }
    out.entry("Version")
        .or_insert_with(|| Value::String(DEFAULT_VERSION.to_string()));
    out.entry("Statement")
        .or_insert_with(|| Value::Array(Vec::new()));
    Ok(Value::Object(out))
}

fn statement(s: &Value) -> Result<Value, String> {
    let Value::Object(fields) = s else {
        return Err(format!("expected an object, got {}", kind(s)));
    };
    let mut out = Map::new();
    for (key, value) in fields {
        let v = match key.as_str() {
            "Sid" => match value {
                Value::String(s) if s.is_empty() => continue,
                Value::String(_) => value.clone(),
                other => return Err(format!("Sid must be a string, got {}", kind(other))),
            },
            "Action" | "NotAction" | "Resource" | "NotResource" => {
                string_set(value, key, str::to_string)?
            }
            "Principal" | "NotPrincipal" => principal(value, key)?,
            "Condition" => condition(value)?,
            _ => value.clone(),
        };
        out.insert(key.clone(), v);
    }
    Ok(Value::Object(out))
}

/// A string or an array of strings → a sorted, de-duplicated array.
fn string_set(value: &Value, key: &str, map: impl Fn(&str) -> String) -> Result<Value, String> {
    let mut items: Vec<String> = match value {
        Value::String(s) => vec![map(s)],
        Value::Array(items) => items
            .iter()
            .map(|i| {
                i.as_str()
                    .map(&map)
                    .ok_or_else(|| format!("{key} entries must be strings, got {}", kind(i)))
            })
            .collect::<Result<_, _>>()?,
        other => {
            return Err(format!(
                "{key} must be a string or an array of strings, got {}",
                kind(other)
            ))
        }
    };
    items.sort();
    items.dedup();
    Ok(Value::Array(items.into_iter().map(Value::String).collect()))
}

fn principal(value: &Value, key: &str) -> Result<Value, String> {
    match value {
        Value::String(s) if s == "*" => Ok(value.clone()),
        Value::String(s) => Err(format!("{key} must be \"*\" or an object, got {s:?}")),
        Value::Object(kinds) => {
            let mut out = Map::new();
            for (k, v) in kinds {
                out.insert(
                    k.clone(),
                    string_set(v, &format!("{key}.{k}"), str::to_string)?,
                );
            }
            Ok(Value::Object(out))
        }
        other => Err(format!(
            "{key} must be \"*\" or an object, got {}",
            kind(other)
        )),
    }
}

fn condition(value: &Value) -> Result<Value, String> {
    let Value::Object(ops) = value else {
        return Err(format!("Condition must be an object, got {}", kind(value)));
    };
    let mut out = Map::new();
    for (op, keys) in ops {
        let Value::Object(keys) = keys else {
            return Err(format!(
                "Condition.{op} must be an object, got {}",
                kind(keys)
            ));
        };
        let mut norm = Map::new();
        for (k, v) in keys {
            let scalars: Vec<&Value> = match v {
                Value::Array(items) => items.iter().collect(),
                other => vec![other],
            };
            let mut values = Vec::with_capacity(scalars.len());
            for s in scalars {
                values.push(match s {
                    Value::String(s) => s.clone(),
                    Value::Bool(b) => b.to_string(),
                    Value::Number(n) => n.to_string(),
                    other => {
                        return Err(format!(
                        "Condition.{op}.{k} values must be strings, numbers or booleans, got {}",
                        kind(other)
                    ))
                    }
                });
            }
            values.sort();
            values.dedup();
            norm.insert(
                k.clone(),
                Value::Array(values.into_iter().map(Value::String).collect()),
            );
        }
        out.insert(op.clone(), Value::Object(norm));
    }
    Ok(Value::Object(out))
}

/// Decodes `%XX` escapes (RFC 3986; `+` is a literal plus).
pub fn percent_decode(text: &str) -> Result<String, DocError> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| DocError::BadEncoding(format!("bad escape at byte {i}")))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| DocError::BadEncoding("not UTF-8 after decoding".into()))
}

/// Encodes text the way IAM returns documents (for tests and emulators).
pub fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Whether a normalized document allows anything (no statements).
pub fn is_empty(doc: &Value) -> bool {
    doc.get("Statement")
        .and_then(Value::as_array)
        .is_none_or(Vec::is_empty)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canonical::Hash;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn scalar_and_one_element_array_are_equal() {
        let a = normalize(&json!({"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}})).unwrap();
        let b = normalize(&json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": ["*"]}]})).unwrap();
        assert_eq!(a, b);
        assert_eq!(a["Statement"][0]["Action"], json!(["s3:GetObject"]));
    }

    #[test]
    fn version_defaults_explicitly() {
        let a = normalize(&json!({"Statement": []})).unwrap();
        assert_eq!(a["Version"], DEFAULT_VERSION);
        assert_ne!(
            Hash::of(&a),
            Hash::of(&normalize(&json!({"Version": "2012-10-17", "Statement": []})).unwrap())
        );
    }

    #[test]
    fn url_encoded_and_escaped_text_decode_to_the_same_document() {
        let plain = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
        let escaped = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
        let encoded = percent_encode(escaped);
        assert!(encoded.starts_with("%7B"));
        assert_eq!(parse(plain).unwrap(), parse(&encoded).unwrap());
        let unicode = plain.replace("ec2.", "ec2\\u002e");
        assert_eq!(parse(plain).unwrap(), parse(&unicode).unwrap());
    }

    #[test]
    fn condition_values_compare_as_strings() {
        let a = normalize(&json!({"Statement": {"Effect": "Deny", "Action": "s3:*", "Resource": "*", "Condition": {"Bool": {"aws:SecureTransport": false}}}})).unwrap();
        let b = normalize(&json!({"Statement": {"Effect": "Deny", "Action": "s3:*", "Resource": "*", "Condition": {"Bool": {"aws:SecureTransport": ["false"]}}}})).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn errors_name_what_is_wrong() {
        let e = parse("{not json").unwrap_err().to_string();
        assert!(e.contains("not JSON"), "{e}");
        let e = normalize(&json!({"Statement": [{"Action": 5}]}))
            .unwrap_err()
            .to_string();
        assert!(e.contains("Statement[0]") && e.contains("Action"), "{e}");
        let e = parse("%7B%ZZ").unwrap_err().to_string();
        assert!(e.contains("URL-encoded"), "{e}");
        let e = normalize(&json!({"Statement": [{"Principal": "someone"}]}))
            .unwrap_err()
            .to_string();
        assert!(e.contains("Principal"), "{e}");
    }

    fn statement_strategy() -> impl Strategy<Value = Value> {
        (
            prop::sample::select(vec!["Allow", "Deny"]),
            prop::collection::btree_set(
                prop::sample::select(vec![
                    "s3:GetObject",
                    "s3:PutObject",
                    "iam:*",
                    "*",
                    "ec2:Describe*",
                ]),
                1..4,
            ),
            prop::collection::btree_set(
                prop::sample::select(vec!["*", "arn:aws:s3:::b", "arn:aws:s3:::b/*"]),
                1..3,
            ),
            prop::option::of(prop::sample::select(vec!["One", "Two", "Three"])),
        )
            .prop_map(|(effect, actions, resources, sid)| {
                let mut s = json!({
                    "Effect": effect,
                    "Action": actions.into_iter().collect::<Vec<_>>(),
                    "Resource": resources.into_iter().collect::<Vec<_>>(),
                });
                if let Some(sid) = sid {
                    s["Sid"] = json!(sid);
                }
                s
            })
    }

    /// Rewrites a document the ways an API or an author may: one-element
    /// arrays as scalars, lists and statements reversed, characters
    /// JSON-escaped, then optionally URL-encoded.
    fn rewrite(doc: &Value, scalars: bool, reverse: bool) -> Value {
        let statements: Vec<Value> = doc["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                let mut s = s.clone();
                for key in ["Action", "Resource"] {
                    let mut items: Vec<Value> = s[key].as_array().unwrap().clone();
                    if reverse {
                        items.reverse();
                    }
                    s[key] = if scalars && items.len() == 1 {
                        items[0].clone()
                    } else {
                        Value::Array(items)
                    };
                }
                s
            })
            .collect();
        let mut statements = statements;
        if reverse {
            statements.reverse();
        }
        json!({"Version": doc["Version"].clone(), "Statement": statements})
    }

    proptest! {
        #[test]
        fn equal_policies_hash_equal(
            statements in prop::collection::vec(statement_strategy(), 1..5),
            scalars in any::<bool>(),
            reverse in any::<bool>(),
            escape in any::<bool>(),
            encode in any::<bool>(),
        ) {
            let doc = json!({"Version": "2012-10-17", "Statement": statements});
            let rewritten = rewrite(&doc, scalars, reverse);
            let mut text = serde_json::to_string(&rewritten).unwrap();
            if escape {
                // The same characters as JSON escapes.
                text = text.replace("s3:", "s3\\u003a").replace('/', "\\/");
            }
            let text = if encode { percent_encode(&text) } else { text };
            let a = normalize(&doc).unwrap();
            let b = parse(&text).unwrap();
            prop_assert_eq!(Hash::of(&a), Hash::of(&b));
        }

        #[test]
        fn different_policies_hash_differently(
            statements in prop::collection::vec(statement_strategy(), 1..5),
            extra in statement_strategy(),
        ) {
            let doc = json!({"Version": "2012-10-17", "Statement": statements.clone()});
            let a = normalize(&doc).unwrap();
            let mut more = statements;
            more.push(extra);
            let b = normalize(&json!({"Version": "2012-10-17", "Statement": more})).unwrap();
            // Adding a statement changes the policy unless it duplicates one.
            let dup = a["Statement"].as_array().unwrap().len() == b["Statement"].as_array().unwrap().len();
            prop_assert_eq!(Hash::of(&a) == Hash::of(&b), dup);
        }
    }
}
