//! JSON read at dealbridge's edges (intake request bodies, platform events, queue messages):
//! a duplicate key is refused. `serde_json` keeps the last of two equal keys, while a proxy, a
//! log reviewer or another parser may read the first, so `{"dryRun":true,"dryRun":false}` would
//! mean two different requests to two readers. Pure.

use std::cell::RefCell;
use std::collections::HashSet;
use std::fmt;

use serde::de::{DeserializeOwned, DeserializeSeed, Error as _, MapAccess, SeqAccess, Visitor};

/// Why a JSON text was refused.
#[derive(Debug, thiserror::Error)]
pub enum StrictJsonError {
    /// The same key twice in one object; `path` names it (`payload.OrderId__c`, `items[2].id`).
    #[error("the key {path} appears more than once; send each key once")]
    DuplicateKey { path: String },
    #[error("{0}")]
    Invalid(#[from] serde_json::Error),
}

impl StrictJsonError {
    /// The duplicated key's path, if that is the problem.
    pub fn duplicate_key(&self) -> Option<&str> {
        match self {
            StrictJsonError::DuplicateKey { path } => Some(path),
            StrictJsonError::Invalid(_) => None,
        }
    }
}

/// Parses `bytes` as `T`, refusing a duplicate key anywhere in the text.
pub fn from_slice<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, StrictJsonError> {
    check(bytes)?;
    Ok(serde_json::from_slice(bytes)?)
}

/// As [`from_slice`], from text.
pub fn from_str<T: DeserializeOwned>(text: &str) -> Result<T, StrictJsonError> {
    from_slice(text.as_bytes())
}

/// Checks that `bytes` is one JSON value with no duplicate key.
pub fn check(bytes: &[u8]) -> Result<(), StrictJsonError> {
    let duplicate = RefCell::new(None);
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let checked = Check {
        path: String::new(),
        duplicate: &duplicate,
    }
    .deserialize(&mut de)
    .and_then(|()| de.end());
    match (checked, duplicate.into_inner()) {
        (_, Some(path)) => Err(StrictJsonError::DuplicateKey { path }),
        (Err(e), None) => Err(StrictJsonError::Invalid(e)),
        (Ok(()), None) => Ok(()),
    }
}

/// Walks a value, remembering the first duplicate key it meets.
struct Check<'a> {
    path: String,
    duplicate: &'a RefCell<Option<String>>,
}

impl Check<'_> {
    fn child(&self, part: &str) -> Check<'_> {
        let path = match (self.path.is_empty(), part.starts_with('[')) {
            (true, _) | (false, true) => format!("{}{part}", self.path),
            (false, false) => format!("{}.{part}", self.path),
        };
        Check {
            path,
            duplicate: self.duplicate,
        }
    }
}

impl<'de> DeserializeSeed<'de> for Check<'_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Check<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut index = 0usize;
        while seq
            .next_element_seed(self.child(&format!("[{index}]")))?
            .is_some()
        {
            index += 1;
        }
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            let shown: String = key.chars().take(64).collect();
            let plain = !shown.is_empty()
                && shown
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '$'));
            let child = if plain {
                self.child(&shown)
            } else {
                // Quoted and escaped, so a key cannot forge a path or a log line.
                self.child(&format!("{shown:?}"))
            };
            if !seen.insert(key) {
                *self.duplicate.borrow_mut() = Some(child.path);
                return Err(A::Error::custom("duplicate key"));
            }
            map.next_value_seed(child)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    #[test]
    fn a_duplicate_key_anywhere_is_refused_and_named() {
        let e = from_str::<Value>(r#"{"opportunityId":"006","dryRun":true,"dryRun":false}"#)
            .unwrap_err();
        assert_eq!(e.duplicate_key(), Some("dryRun"));
        let e =
            from_str::<Value>(r#"{"detail":{"payload":{"a":1,"b":[{"x":1,"x":2}]}}}"#).unwrap_err();
        assert_eq!(e.duplicate_key(), Some("detail.payload.b[0].x"));
        assert!(e.to_string().contains("more than once"), "{e}");
        // The same key in two objects is fine; escapes are compared as decoded.
        let v: Value = from_str(r#"{"a":{"k":1},"b":{"k":2}}"#).unwrap();
        assert_eq!(v, json!({"a": {"k": 1}, "b": {"k": 2}}));
        let e = from_str::<Value>(r#"{"k":1,"\u006b":2}"#).unwrap_err();
        assert_eq!(e.duplicate_key(), Some("k"));
        let e = from_str::<Value>("{\"a\\nb\":1,\"a\\nb\":2}").unwrap_err();
        assert_eq!(e.duplicate_key(), Some(r#""a\nb""#));
    }

    #[test]
    fn invalid_json_is_reported_as_such() {
        for bad in ["", "{", r#"{"a":1} {"b":2}"#, "[1,]", r#"{"a":1,}"#] {
            let e = from_str::<Value>(bad).unwrap_err();
            assert!(e.duplicate_key().is_none(), "{bad}: {e}");
        }
        let v: Value = from_str(r#" [1, 2.5, -3, "x", null, true, {"a": []}] "#).unwrap();
        assert_eq!(v[6], json!({"a": []}));
    }
}
