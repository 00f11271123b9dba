//! Maxio Core records as the API renders them. Customers and contracts carry many fields and
//! tenant-specific custom ones (`c_*`), and which field links them to Salesforce is configuration,
//! so a record is kept as its JSON object with typed accessors.

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::salesforce::SfId;

/// One customer or contract.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(transparent)]
pub struct CoreRecord(pub Map<String, Value>);

/// Django REST Framework's page: `count`, `next` (an absolute URL or null), `results`.
#[derive(Debug, Clone, Deserialize)]
pub struct Page {
    #[serde(default)]
    pub count: Option<u64>,
    #[serde(default)]
    pub next: Option<String>,
    #[serde(default)]
    pub results: Vec<CoreRecord>,
}

impl CoreRecord {
    /// The record's id (a number, or a numeric string).
    pub fn id(&self) -> Option<i64> {
        self.integer("id")
    }

    /// A field as an integer: a number, a numeric string, or a nested object's `id`.
    pub fn integer(&self, field: &str) -> Option<i64> {
        match self.0.get(field)? {
            Value::Number(n) => n.as_i64(),
            Value::String(s) => s.trim().parse().ok(),
            Value::Object(o) => o.get("id").and_then(|v| match v {
                Value::Number(n) => n.as_i64(),
                Value::String(s) => s.trim().parse().ok(),
                _ => None,
            }),
            _ => None,
        }
    }

    /// A field as trimmed text; numbers are rendered, empty strings and null are `None`.
    pub fn text(&self, field: &str) -> Option<String> {
        let text = match self.0.get(field)? {
            Value::String(s) => s.trim().to_string(),
            Value::Number(n) => n.to_string(),
            _ => return None,
        };
        (!text.is_empty()).then_some(text)
    }

    /// `is_active`, read leniently; a record that does not say is taken as active.
    pub fn is_active(&self) -> bool {
        match self.0.get("is_active") {
            Some(Value::Bool(b)) => *b,
            Some(Value::String(s)) => !matches!(s.to_ascii_lowercase().as_str(), "false" | "0"),
            Some(Value::Number(n)) => n.as_i64() != Some(0),
            _ => true,
        }
    }

    /// Whether `field` holds the Salesforce Id `id`, in its 15- or 18-character form.
    pub fn holds_sf_id(&self, field: &str, id: &SfId) -> bool {
        self.text(field)
            .and_then(|t| SfId::parse(&t).ok())
            .is_some_and(|t| &t == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record(v: Value) -> CoreRecord {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn fields_are_read_leniently() {
        let r = record(
            json!({"id": "17", "customer": {"id": 5}, "number": 42, "text_field2": " ", "is_active": "False"}),
        );
        assert_eq!(r.id(), Some(17));
        assert_eq!(r.integer("customer"), Some(5));
        assert_eq!(r.text("number").as_deref(), Some("42"));
        assert_eq!(r.text("text_field2"), None);
        assert!(!r.is_active());
        assert!(record(json!({})).is_active());
    }

    #[test]
    fn salesforce_ids_match_in_either_form() {
        let id = SfId::parse("001A000010khO8JIAU").unwrap();
        assert!(record(json!({"number": "001A000010khO8J"})).holds_sf_id("number", &id));
        assert!(record(json!({"number": "001A000010khO8JIAU"})).holds_sf_id("number", &id));
        assert!(!record(json!({"number": "001A000010khO8K"})).holds_sf_id("number", &id));
        assert!(!record(json!({"number": "not an id"})).holds_sf_id("number", &id));
    }
}
