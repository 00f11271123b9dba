//! Reading typed values out of Salesforce query records (JSON objects whose parent lookups nest as
//! objects and whose child subqueries are query results, `null` or absent).

use std::str::FromStr;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde_json::{Map, Value};

use crate::salesforce::SfId;

/// A value that is present but not of the expected type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("field {path} holds {found}, expected {expected}")]
pub struct FieldError {
    pub path: String,
    pub expected: &'static str,
    pub found: String,
}

fn get_ci<'a>(map: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    map.get(key).or_else(|| {
        map.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

/// The value at a dot path (`Product2.ProductCode`), `None` when any step is null or absent.
pub fn value_at<'a>(record: &'a Value, path: &str) -> Option<&'a Value> {
    let mut current = record;
    for step in path.split('.') {
        current = get_ci(current.as_object()?, step)?;
        if current.is_null() {
            return None;
        }
    }
    Some(current)
}

fn err(path: &str, expected: &'static str, found: &Value) -> FieldError {
    let mut text = found.to_string();
    if text.len() > 60 {
        text = format!("{}...", text.chars().take(60).collect::<String>());
    }
    FieldError {
        path: path.to_string(),
        expected,
        found: text,
    }
}

/// Text at `path`: strings trimmed (empty is `None`); numbers as their shortest exact text
/// (`185.0` → `185`), so number fields holding ids read as ids.
pub fn text(record: &Value, path: &str) -> Result<Option<String>, FieldError> {
    match value_at(record, path) {
        None => Ok(None),
        Some(Value::String(s)) => {
            let t = s.trim();
            Ok((!t.is_empty()).then(|| t.to_string()))
        }
        Some(Value::Number(n)) => Ok(Some(
            decimal_from_number(n)
                .map(|d| d.normalize().to_string())
                .unwrap_or_else(|| n.to_string()),
        )),
        Some(Value::Bool(b)) => Ok(Some(b.to_string())),
        Some(other) => Err(err(path, "text", other)),
    }
}

/// Like [`text`], but a missing value is an error naming the field.
pub fn required_text(record: &Value, path: &str) -> Result<String, FieldError> {
    text(record, path)?.ok_or_else(|| FieldError {
        path: path.to_string(),
        expected: "a value",
        found: "nothing".to_string(),
    })
}

pub fn id(record: &Value, path: &str) -> Result<Option<SfId>, FieldError> {
    match value_at(record, path) {
        None => Ok(None),
        Some(Value::String(s)) => SfId::parse(s)
            .map(Some)
            .map_err(|_| err(path, "a Salesforce Id", &Value::String(s.clone()))),
        Some(other) => Err(err(path, "a Salesforce Id", other)),
    }
}

pub fn required_id(record: &Value, path: &str) -> Result<SfId, FieldError> {
    id(record, path)?.ok_or_else(|| FieldError {
        path: path.to_string(),
        expected: "a Salesforce Id",
        found: "nothing".to_string(),
    })
}

/// A JSON number as an exact decimal. serde_json keeps a float as `f64`, whose shortest round-trip
/// text is the decimal Salesforce sent for every value of up to 15 significant digits (Salesforce
/// currency and number fields hold at most 18 digits, and no price or quantity comes near 15).
pub fn decimal_from_number(n: &serde_json::Number) -> Option<Decimal> {
    let text = n.to_string();
    Decimal::from_str(&text)
        .or_else(|_| Decimal::from_scientific(&text))
        .ok()
}

pub fn decimal(record: &Value, path: &str) -> Result<Option<Decimal>, FieldError> {
    match value_at(record, path) {
        None => Ok(None),
        Some(Value::Number(n)) => decimal_from_number(n)
            .map(Some)
            .ok_or_else(|| err(path, "a number", &Value::Number(n.clone()))),
        Some(Value::String(s)) if !s.trim().is_empty() => Decimal::from_str(s.trim())
            .map(Some)
            .map_err(|_| err(path, "a number", &Value::String(s.clone()))),
        Some(Value::String(_)) => Ok(None),
        Some(other) => Err(err(path, "a number", other)),
    }
}

pub fn boolean(record: &Value, path: &str) -> Result<bool, FieldError> {
    match value_at(record, path) {
        None => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(other) => Err(err(path, "true or false", other)),
    }
}

pub fn date(record: &Value, path: &str) -> Result<Option<NaiveDate>, FieldError> {
    match value_at(record, path) {
        None => Ok(None),
        Some(Value::String(s)) => NaiveDate::parse_from_str(s.get(..10).unwrap_or(s), "%Y-%m-%d")
            .map(Some)
            .map_err(|_| err(path, "a date", &Value::String(s.clone()))),
        Some(other) => Err(err(path, "a date", other)),
    }
}

/// A DateTime field (`2026-12-31T05:00:00.000+0000`, or RFC 3339), in UTC.
pub fn datetime(
    record: &Value,
    path: &str,
) -> Result<Option<chrono::DateTime<chrono::Utc>>, FieldError> {
    match value_at(record, path) {
        None => Ok(None),
        Some(Value::String(s)) => chrono::DateTime::parse_from_rfc3339(s)
            .or_else(|_| chrono::DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z"))
            .map(|t| Some(t.with_timezone(&chrono::Utc)))
            .map_err(|_| err(path, "a date and time", &Value::String(s.clone()))),
        Some(other) => Err(err(path, "a date and time", other)),
    }
}

/// The rows of a child subquery: accepts `null`, an absent key, and an empty or full query result.
pub fn children(record: &Value, relationship: &str) -> Result<Vec<Value>, FieldError> {
    match value_at(record, relationship) {
        None => Ok(Vec::new()),
        Some(Value::Object(result)) => match get_ci(result, "records") {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(rows)) => Ok(rows.clone()),
            Some(other) => Err(err(relationship, "a list of records", other)),
        },
        Some(other) => Err(err(relationship, "a query result", other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parent_paths_and_nulls() {
        let r = json!({"Product2": {"attributes": {"type": "Product2"}, "ProductCode": " API-CALLS ", "Name": null},
                       "Account": null});
        assert_eq!(
            text(&r, "Product2.ProductCode").unwrap().as_deref(),
            Some("API-CALLS")
        );
        assert_eq!(
            text(&r, "product2.productcode").unwrap().as_deref(),
            Some("API-CALLS")
        );
        assert_eq!(text(&r, "Product2.Name").unwrap(), None);
        assert_eq!(text(&r, "Account.Name").unwrap(), None);
        assert_eq!(text(&r, "Missing.Name").unwrap(), None);
    }

    #[test]
    fn numbers_read_as_exact_decimals_and_id_text() {
        let r = json!({"Price": 0.1, "Big": 1234567.891, "Pid": 185.0, "Sci": 1e-7, "S": "12.50"});
        assert_eq!(
            decimal(&r, "Price").unwrap(),
            Some(Decimal::from_str("0.1").unwrap())
        );
        assert_eq!(
            decimal(&r, "Big").unwrap(),
            Some(Decimal::from_str("1234567.891").unwrap())
        );
        assert_eq!(
            decimal(&r, "S").unwrap(),
            Some(Decimal::from_str("12.50").unwrap())
        );
        assert_eq!(
            decimal(&r, "Sci").unwrap(),
            Some(Decimal::from_str("0.0000001").unwrap())
        );
        assert_eq!(text(&r, "Pid").unwrap().as_deref(), Some("185"));
        assert!(decimal(&json!({"P": "abc"}), "P").is_err());
    }

    #[test]
    fn child_results_may_be_null_missing_empty_or_full() {
        assert!(
            children(&json!({"OrderItems": null}), "OrderItems")
                .unwrap()
                .is_empty()
        );
        assert!(children(&json!({}), "OrderItems").unwrap().is_empty());
        assert!(
            children(
                &json!({"OrderItems": {"totalSize": 0, "done": true, "records": []}}),
                "OrderItems"
            )
            .unwrap()
            .is_empty()
        );
        let full = json!({"OrderItems": {"totalSize": 1, "done": true, "records": [{"Id": "x"}]}});
        assert_eq!(children(&full, "OrderItems").unwrap().len(), 1);
        assert!(children(&json!({"OrderItems": 3}), "OrderItems").is_err());
    }

    #[test]
    fn ids_dates_and_booleans_are_checked() {
        let r = json!({"Id": "500x000000003TR", "Bad": "xyz", "D": "2026-11-02", "B": true});
        assert_eq!(
            required_id(&r, "Id").unwrap().as_str(),
            "500x000000003TRAAY"
        );
        assert!(id(&r, "Bad").is_err());
        assert!(required_id(&r, "None").is_err());
        assert_eq!(date(&r, "D").unwrap(), NaiveDate::from_ymd_opt(2026, 11, 2));
        assert!(boolean(&r, "B").unwrap());
        assert!(!boolean(&r, "Nope").unwrap());
        assert!(boolean(&json!({"B": "yes"}), "B").is_err());
    }
}
