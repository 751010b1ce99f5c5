//! An optional piece of configuration whose absence is a value.
//!
//! "No bucket policy" or "no default encryption" is a configuration like
//! any other: it must be compared, stored in a baseline and restored. A
//! [`Setting`] serializes as the string `"none"` when nothing is
//! configured, and as the value itself otherwise, so the canonical form
//! never has a missing field and a drift reads `policy: "none" → {…}`.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// The canonical spelling of "not configured".
pub const NONE: &str = "none";

#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum Setting<T> {
    #[default]
    None,
    Set(T),
}

impl<T> Setting<T> {
    pub fn as_ref(&self) -> Setting<&T> {
        match self {
            Setting::None => Setting::None,
            Setting::Set(t) => Setting::Set(t),
        }
    }

    pub fn get(&self) -> Option<&T> {
        match self {
            Setting::None => None,
            Setting::Set(t) => Some(t),
        }
    }

    pub fn is_set(&self) -> bool {
        matches!(self, Setting::Set(_))
    }
}

impl<T> From<Option<T>> for Setting<T> {
    fn from(o: Option<T>) -> Self {
        match o {
            Some(t) => Setting::Set(t),
            None => Setting::None,
        }
    }
}

impl<T: Serialize> Serialize for Setting<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Setting::None => s.serialize_str(NONE),
            Setting::Set(t) => t.serialize(s),
        }
    }
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for Setting<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        if v.as_str() == Some(NONE) {
            return Ok(Setting::None);
        }
        serde_json::from_value(v)
            .map(Setting::Set)
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn none_is_an_explicit_value() {
        let none: Setting<u32> = Setting::None;
        assert_eq!(serde_json::to_value(&none).unwrap(), json!("none"));
        assert_eq!(serde_json::to_value(Setting::Set(3)).unwrap(), json!(3));
        let back: Setting<u32> = serde_json::from_value(json!("none")).unwrap();
        assert_eq!(back, Setting::None);
        let back: Setting<u32> = serde_json::from_value(json!(3)).unwrap();
        assert_eq!(back, Setting::Set(3));
        assert!(serde_json::from_value::<Setting<u32>>(json!("three")).is_err());
    }
}
