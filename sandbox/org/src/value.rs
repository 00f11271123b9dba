//! Field values: checking and normalising what is written to a field, and the date/datetime
//! formats Salesforce uses.

use chrono::{DateTime, NaiveDate, Utc};
use dealbridge::salesforce::SfId;
use serde_json::{Number, Value};

use crate::schema::{Field, FieldType};

/// How strictly JSON types are matched to field types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Export-tree data: numbers for numeric fields, booleans for checkboxes, strings otherwise.
    Load,
    /// REST bodies: additionally the scalar coercions Salesforce's JSON reader performs (a numeric
    /// string into a number field, a number into a text field, `"true"` into a checkbox).
    Api,
}

/// Why a value cannot be written to a field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ValueError {
    /// The JSON value has the wrong type or format for the field.
    Type {
        expected: &'static str,
        token: &'static str,
        shown: String,
    },
    /// A reference field was given something that is not a record Id.
    MalformedId(String),
}

impl ValueError {
    /// The `JSON_PARSER_ERROR` message for a type error, naming the field.
    pub(crate) fn parser_message(&self, field: &str) -> String {
        match self {
            ValueError::Type {
                expected,
                token,
                shown,
            } => format!(
                "Cannot deserialize instance of {expected} from {token} value {shown} or request may be missing a required field at [field: {field}]"
            ),
            ValueError::MalformedId(v) => format!("{field}: id value of incorrect type: {v}"),
        }
    }
}

/// Formats a datetime as the API writes it: `2026-11-01T09:00:00.000+0000`.
pub fn format_datetime(dt: DateTime<Utc>) -> String {
    dt.format("%Y-%m-%dT%H:%M:%S%.3f%z").to_string()
}

/// Parses an ISO-8601 datetime with an offset: `2026-11-01T09:00:00.000+0000`,
/// `2026-11-01T09:00:00Z`, `2026-11-01T18:00:00+09:00`.
pub fn parse_datetime(s: &str) -> Option<DateTime<Utc>> {
    if !has_date_shape(s) || s.as_bytes().get(10) != Some(&b'T') {
        return None;
    }
    DateTime::parse_from_rfc3339(s)
        .or_else(|_| DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z"))
        .ok()
        .map(|dt| dt.with_timezone(&Utc))
}

/// Parses a `YYYY-MM-DD` date.
pub fn parse_date(s: &str) -> Option<NaiveDate> {
    if s.len() != 10 || !has_date_shape(s) {
        return None;
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()
}

/// `dddd-dd-dd` at the start of `s`.
fn has_date_shape(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 10
        && b[..10].iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            _ => c.is_ascii_digit(),
        })
}

/// The JSON token name Salesforce's reader reports for a value.
fn token(v: &Value) -> &'static str {
    match v {
        Value::Null => "VALUE_NULL",
        Value::Bool(true) => "VALUE_TRUE",
        Value::Bool(false) => "VALUE_FALSE",
        Value::Number(n) if n.is_f64() => "VALUE_NUMBER_FLOAT",
        Value::Number(_) => "VALUE_NUMBER_INT",
        Value::String(_) => "VALUE_STRING",
        Value::Array(_) => "START_ARRAY",
        Value::Object(_) => "START_OBJECT",
    }
}

fn shown(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn expected_name(t: FieldType) -> &'static str {
    match t {
        t if t.is_text() => "string",
        FieldType::Boolean => "boolean",
        FieldType::Int => "int",
        t if t.is_numeric() => "double",
        FieldType::Date => "date",
        FieldType::Datetime => "datetime",
        _ => "id",
    }
}

/// Checks `value` against the field's type and returns the value to store: datetimes in the API's
/// format, Ids in 18-character form, empty text as null, a null checkbox as false.
pub(crate) fn coerce(field: &Field, value: &Value, mode: Mode) -> Result<Value, ValueError> {
    let t = field.field_type;
    let type_error = || ValueError::Type {
        expected: expected_name(t),
        token: token(value),
        shown: shown(value),
    };
    let api = mode == Mode::Api;
    if value.is_null() {
        return Ok(if t == FieldType::Boolean {
            Value::Bool(false)
        } else {
            Value::Null
        });
    }
    match t {
        t if t.is_text() => match value {
            Value::String(s) if s.is_empty() => Ok(Value::Null),
            Value::String(_) => Ok(value.clone()),
            Value::Number(n) if api => Ok(Value::String(n.to_string())),
            Value::Bool(b) if api => Ok(Value::String(b.to_string())),
            _ => Err(type_error()),
        },
        t if t.is_numeric() => match value {
            Value::Number(_) => Ok(value.clone()),
            Value::String(s) if api => numeric_string(s).ok_or_else(type_error),
            _ => Err(type_error()),
        },
        FieldType::Boolean => match value {
            Value::Bool(_) => Ok(value.clone()),
            Value::String(s) if api && s.eq_ignore_ascii_case("true") => Ok(Value::Bool(true)),
            Value::String(s) if api && s.eq_ignore_ascii_case("false") => Ok(Value::Bool(false)),
            _ => Err(type_error()),
        },
        FieldType::Date => match value {
            Value::String(s) if parse_date(s).is_some() => Ok(value.clone()),
            _ => Err(type_error()),
        },
        FieldType::Datetime => match value {
            Value::String(s) => parse_datetime(s)
                .map(|dt| Value::String(format_datetime(dt)))
                .ok_or_else(type_error),
            _ => Err(type_error()),
        },
        _ => match value {
            Value::String(s) => SfId::parse_exact(s)
                .map(|id| Value::String(id.as_str().to_string()))
                .map_err(|_| ValueError::MalformedId(s.clone())),
            _ => Err(type_error()),
        },
    }
}

/// A numeric string as a JSON number (`"12.50"` → `12.50`), or None.
fn numeric_string(s: &str) -> Option<Value> {
    let s = s.trim();
    if s.is_empty()
        || !s
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '-' | '+' | '.' | 'e' | 'E'))
    {
        return None;
    }
    serde_json::from_str::<Number>(s.trim_start_matches('+'))
        .ok()
        .map(Value::Number)
}

/// True when `value` may be stored in the field as far as its picklist is concerned.
pub(crate) fn picklist_allows(field: &Field, value: &Value) -> bool {
    match value {
        Value::String(s) if field.field_type == FieldType::Picklist && field.restricted => {
            field.picklist_values.iter().any(|p| p == s)
        }
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn field(t: FieldType) -> Field {
        Field {
            name: "F__c".into(),
            label: "F".into(),
            field_type: t,
            reference_to: None,
            relationship_name: None,
            updateable: true,
            createable: true,
            picklist_values: vec!["Open".into()],
            restricted: true,
            external_id: false,
            nillable: true,
        }
    }

    #[test]
    fn datetimes_are_normalised_to_the_api_format() {
        let f = field(FieldType::Datetime);
        for input in [
            "2026-11-01T09:00:00.000+0000",
            "2026-11-01T09:00:00Z",
            "2026-11-01T18:00:00+09:00",
            "2026-11-01T09:00:00.000Z",
        ] {
            assert_eq!(
                coerce(&f, &json!(input), Mode::Load).unwrap(),
                json!("2026-11-01T09:00:00.000+0000"),
                "{input}"
            );
        }
        for bad in [
            "2026-11-01",
            "2026-11-01T09:00:00",
            "2026-13-01T09:00:00Z",
            "x",
        ] {
            assert!(coerce(&f, &json!(bad), Mode::Api).is_err(), "{bad}");
        }
    }

    #[test]
    fn dates_must_be_year_month_day() {
        let f = field(FieldType::Date);
        assert_eq!(
            coerce(&f, &json!("2026-02-28"), Mode::Load).unwrap(),
            json!("2026-02-28")
        );
        for bad in [
            "2026-2-28",
            "2026-02-30",
            "20260228",
            "2026-02-28T00:00:00Z",
        ] {
            assert!(coerce(&f, &json!(bad), Mode::Load).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_api_coerces_scalars_the_way_salesforce_reads_json() {
        let n = field(FieldType::Currency);
        assert_eq!(coerce(&n, &json!("12.50"), Mode::Api).unwrap(), json!(12.5));
        assert!(coerce(&n, &json!("12.50"), Mode::Load).is_err());
        let err = coerce(&n, &json!("abc"), Mode::Api).unwrap_err();
        assert_eq!(
            err.parser_message("Amount"),
            "Cannot deserialize instance of double from VALUE_STRING value abc or request may be missing a required field at [field: Amount]"
        );
        let s = field(FieldType::String);
        assert_eq!(coerce(&s, &json!(42), Mode::Api).unwrap(), json!("42"));
        assert!(coerce(&s, &json!(42), Mode::Load).is_err());
        assert!(coerce(&s, &json!({"a": 1}), Mode::Api).is_err());
        let b = field(FieldType::Boolean);
        assert_eq!(coerce(&b, &json!("TRUE"), Mode::Api).unwrap(), json!(true));
        assert!(coerce(&b, &json!("yes"), Mode::Api).is_err());
        assert!(coerce(&b, &json!(1), Mode::Api).is_err());
    }

    #[test]
    fn empty_text_and_null_checkboxes_are_stored_as_salesforce_stores_them() {
        assert_eq!(
            coerce(&field(FieldType::String), &json!(""), Mode::Api).unwrap(),
            Value::Null
        );
        assert_eq!(
            coerce(&field(FieldType::Boolean), &Value::Null, Mode::Api).unwrap(),
            json!(false)
        );
        assert_eq!(
            coerce(&field(FieldType::Int), &Value::Null, Mode::Api).unwrap(),
            Value::Null
        );
    }

    #[test]
    fn references_are_normalised_to_18_characters() {
        let r = field(FieldType::Reference);
        assert_eq!(
            coerce(&r, &json!("001A000010khO8J"), Mode::Load).unwrap(),
            json!("001A000010khO8JIAU")
        );
        assert_eq!(
            coerce(&r, &json!("001A000010khO8JAAA"), Mode::Load).unwrap_err(),
            ValueError::MalformedId("001A000010khO8JAAA".into())
        );
    }

    #[test]
    fn restricted_picklists_accept_only_their_values() {
        let p = field(FieldType::Picklist);
        assert!(picklist_allows(&p, &json!("Open")));
        assert!(!picklist_allows(&p, &json!("open")));
        assert!(picklist_allows(&p, &Value::Null));
        let mut unrestricted = p.clone();
        unrestricted.restricted = false;
        assert!(picklist_allows(&unrestricted, &json!("Anything")));
    }
}
