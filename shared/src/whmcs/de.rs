//! Lenient readers for WHMCS's loosely typed JSON: ids and counts as strings or numbers, id lists as
//! comma-separated strings or arrays, lists nested as `{"order": [...]}` or given as `""` when empty,
//! and `null` where a string was expected.

use std::str::FromStr;

use rust_decimal::Decimal;
use serde::de::{DeserializeOwned, Deserializer};
use serde::{Deserialize, de::Error as _};
use serde_json::Value;

/// The text of an id given as a string or a number (`"12"`, `12`, `12.0`); `None` for anything else
/// and for blank strings.
pub fn id_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => {
            let t = s.trim();
            (!t.is_empty()).then(|| t.to_string())
        }
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Some(i.to_string())
            } else if let Some(u) = n.as_u64() {
                Some(u.to_string())
            } else {
                let text = n.to_string();
                Some(text.strip_suffix(".0").unwrap_or(&text).to_string())
            }
        }
        _ => None,
    }
}

/// An optional id where WHMCS writes "none" as `0`, `"0"`, `""` or `null`.
pub fn nonzero_id(v: &Value) -> Option<String> {
    id_text(v).filter(|t| t != "0")
}

/// An id list: `"34,35"`, `""`, `[34, "35"]`, a single number, or `null`.
pub fn id_list(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => s
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_string)
            .collect(),
        Value::Array(items) => items.iter().filter_map(id_text).collect(),
        Value::Number(_) => id_text(v).into_iter().collect(),
        _ => Vec::new(),
    }
}

/// A count given as a string or a number; 0 when absent or unreadable.
pub fn count(v: Option<&Value>) -> u64 {
    v.and_then(id_text)
        .and_then(|t| t.parse().ok())
        .unwrap_or(0)
}

/// Text from a string, a number or a bool; `None` for `null`, blanks and structures.
pub fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if s.trim().is_empty() => None,
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(if *b { "1" } else { "0" }.to_string()),
        _ => None,
    }
}

/// A money amount from `"10.00"` or `10.0`; `None` when absent or unreadable.
pub fn decimal(v: &Value) -> Option<Decimal> {
    let t = text(v)?;
    let t = t.trim();
    Decimal::from_str(t)
        .or_else(|_| Decimal::from_scientific(t))
        .ok()
}

/// The items of a WHMCS list container: `{"order": [...]}`, `{"order": {...}}` (one item),
/// `[...]`, or `""`/`null`/`{}`/absent when there are none.
pub fn nested_list<T: DeserializeOwned>(
    container: Option<&Value>,
    inner: &str,
) -> Result<Vec<T>, serde_json::Error> {
    let items = match container {
        Some(Value::Object(o)) => match o.get(inner) {
            Some(Value::Array(items)) => items.clone(),
            Some(one @ Value::Object(_)) => vec![one.clone()],
            _ => Vec::new(),
        },
        Some(Value::Array(items)) => items.clone(),
        _ => Vec::new(),
    };
    items.into_iter().map(serde_json::from_value).collect()
}

/// `deserialize_with` for a `String` id (empty when absent or `null`).
pub fn de_id<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(id_text(&Value::deserialize(d)?).unwrap_or_default())
}

/// `deserialize_with` for an optional id where `0` means none.
pub fn de_nonzero_id<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(nonzero_id(&Value::deserialize(d)?))
}

/// `deserialize_with` for a `String` that may come as a number or `null`.
pub fn de_text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(text(&Value::deserialize(d)?).unwrap_or_default())
}

/// `deserialize_with` for an `Option<String>` that may come as a number, blank or `null`.
pub fn de_opt_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(text(&Value::deserialize(d)?))
}

/// `deserialize_with` for an optional amount.
pub fn de_decimal<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Decimal>, D::Error> {
    Ok(decimal(&Value::deserialize(d)?))
}

/// `deserialize_with` for `lineitems: {"lineitem": [...]}`.
pub fn de_lineitems<'de, D: Deserializer<'de>, T: DeserializeOwned>(
    d: D,
) -> Result<Vec<T>, D::Error> {
    let v = Value::deserialize(d)?;
    nested_list(Some(&v), "lineitem").map_err(D::Error::custom)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ids_are_read_from_strings_and_numbers() {
        assert_eq!(id_text(&json!("12")), Some("12".into()));
        assert_eq!(id_text(&json!(" 12 ")), Some("12".into()));
        assert_eq!(id_text(&json!(12)), Some("12".into()));
        assert_eq!(id_text(&json!(12.0)), Some("12".into()));
        assert_eq!(id_text(&json!("")), None);
        assert_eq!(id_text(&json!(null)), None);
        assert_eq!(id_text(&json!(true)), None);
        assert_eq!(nonzero_id(&json!(0)), None);
        assert_eq!(nonzero_id(&json!("0")), None);
        assert_eq!(nonzero_id(&json!(56)), Some("56".into()));
    }

    #[test]
    fn id_lists_are_read_from_every_shape() {
        assert_eq!(id_list(&json!("34,35")), ["34", "35"]);
        assert_eq!(id_list(&json!(" 34 , 35 ,")), ["34", "35"]);
        assert!(id_list(&json!("")).is_empty());
        assert!(id_list(&json!(null)).is_empty());
        assert_eq!(id_list(&json!([34, "35"])), ["34", "35"]);
        assert_eq!(id_list(&json!(34)), ["34"]);
    }

    #[test]
    fn nested_lists_accept_every_empty_shape_and_a_single_item() {
        for empty in [
            json!(""),
            json!(null),
            json!({}),
            json!([]),
            json!({"order": []}),
        ] {
            let got: Vec<Value> = nested_list(Some(&empty), "order").unwrap();
            assert!(got.is_empty(), "{empty}");
        }
        let none: Vec<Value> = nested_list(None, "order").unwrap();
        assert!(none.is_empty());
        let one: Vec<Value> = nested_list(Some(&json!({"order": {"id": 1}})), "order").unwrap();
        assert_eq!(one, [json!({"id": 1})]);
        let two: Vec<Value> = nested_list(Some(&json!({"order": [1, 2]})), "order").unwrap();
        assert_eq!(two.len(), 2);
    }

    #[test]
    fn amounts_and_counts_are_read_leniently() {
        assert_eq!(decimal(&json!("10.00")), Decimal::from_str("10.00").ok());
        assert_eq!(decimal(&json!(2.5)), Decimal::from_str("2.5").ok());
        assert_eq!(decimal(&json!("n/a")), None);
        assert_eq!(count(Some(&json!("2"))), 2);
        assert_eq!(count(Some(&json!(3))), 3);
        assert_eq!(count(None), 0);
    }
}
