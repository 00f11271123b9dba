//! The JSON request body: `{"opportunityId": ...}` or `{"orderId": ...}` (or the legacy
//! `{"Opportunity_Id": ...}`), with optional `correlationId` and `dryRun`. Every problem names the
//! field at fault.

use dealbridge::snapshot::{DealRef, DealRefError};
use serde::Serialize;
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DealRequest {
    pub deal: DealRef,
    pub correlation_id: Option<String>,
    pub dry_run: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RequestError {
    pub code: &'static str,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl RequestError {
    fn new(code: &'static str, field: Option<&str>, message: String) -> Self {
        RequestError {
            code,
            message,
            field: field.map(str::to_string),
        }
    }
}

const ID_FIELDS: [&str; 3] = ["opportunityId", "orderId", "Opportunity_Id"];
const KNOWN_FIELDS: [&str; 5] = [
    "opportunityId",
    "orderId",
    "Opportunity_Id",
    "correlationId",
    "dryRun",
];
pub const MAX_CORRELATION_ID: usize = 80;

/// A caller-chosen correlation id: 1 to 80 letters, digits and `.`, `_`, `:`, `-`.
pub fn valid_correlation_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_CORRELATION_ID
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-'))
}

pub fn parse_deal_request(body: &[u8]) -> Result<DealRequest, RequestError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(RequestError::new(
            "empty_body",
            None,
            "the body is empty; send {\"opportunityId\": \"006...\"} or {\"orderId\": \"801...\"}"
                .into(),
        ));
    }
    let value: Value = dealbridge::json::from_slice(body).map_err(|e| match e.duplicate_key() {
        Some(path) => RequestError::new("duplicate_key", Some(path), e.to_string()),
        None => RequestError::new(
            "malformed_json",
            None,
            format!("the body is not valid JSON: {e}"),
        ),
    })?;
    let Value::Object(fields) = value else {
        return Err(RequestError::new(
            "malformed_json",
            None,
            "the body must be a JSON object".into(),
        ));
    };
    if let Some(unknown) = fields.keys().find(|k| !KNOWN_FIELDS.contains(&k.as_str())) {
        let shown: String = unknown.chars().take(64).collect();
        return Err(RequestError::new(
            "unknown_field",
            Some(&shown),
            format!(
                "unknown field {shown:?}; expected one of {}",
                KNOWN_FIELDS.join(", ")
            ),
        ));
    }
    let present: Vec<&str> = ID_FIELDS
        .iter()
        .copied()
        .filter(|f| fields.get(*f).is_some_and(|v| !v.is_null()))
        .collect();
    let field = match present.as_slice() {
        [one] => *one,
        [] => {
            return Err(RequestError::new(
                "missing_field",
                Some("opportunityId"),
                "send opportunityId (an Opportunity Id) or orderId (an Order Id)".into(),
            ));
        }
        many => {
            return Err(RequestError::new(
                "conflicting_fields",
                Some(many[1]),
                format!("send only one of {}", many.join(", ")),
            ));
        }
    };
    let Some(raw) = fields.get(field).and_then(Value::as_str) else {
        return Err(RequestError::new(
            "invalid_type",
            Some(field),
            format!("{field} must be a string"),
        ));
    };
    let parsed = if field == "orderId" {
        DealRef::order(raw)
    } else {
        DealRef::opportunity(raw)
    };
    let deal = parsed.map_err(|e| {
        let message = match e {
            DealRefError::InvalidId { source, .. } => format!("{field}: {source}"),
            DealRefError::WrongObject { .. } if field == "Opportunity_Id" => {
                e.to_string().replacen("opportunityId", field, 1)
            }
            other => other.to_string(),
        };
        RequestError::new("invalid_id", Some(field), message)
    })?;
    let correlation_id = match fields.get("correlationId") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if valid_correlation_id(s) => Some(s.clone()),
        Some(_) => {
            return Err(RequestError::new(
                "invalid_field",
                Some("correlationId"),
                format!(
                    "correlationId must be 1 to {MAX_CORRELATION_ID} letters, digits, '.', '_', ':' or '-'"
                ),
            ));
        }
    };
    let dry_run = match fields.get("dryRun") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            return Err(RequestError::new(
                "invalid_type",
                Some("dryRun"),
                "dryRun must be true or false".into(),
            ));
        }
    };
    Ok(DealRequest {
        deal,
        correlation_id,
        dry_run,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(body: &str) -> RequestError {
        parse_deal_request(body.as_bytes()).unwrap_err()
    }

    #[test]
    fn each_accepted_shape_parses() {
        let r = parse_deal_request(
            br#"{"opportunityId":"006A000010khO8J","correlationId":"c-1","dryRun":true}"#,
        )
        .unwrap();
        assert!(matches!(r.deal, DealRef::Opportunity(_)));
        assert_eq!(r.correlation_id.as_deref(), Some("c-1"));
        assert!(r.dry_run);
        assert!(matches!(
            parse_deal_request(br#"{"orderId":"801A000010khO8J"}"#)
                .unwrap()
                .deal,
            DealRef::Order(_)
        ));
        assert!(matches!(
            parse_deal_request(br#"{"Opportunity_Id":"006A000010khO8JIAU"}"#)
                .unwrap()
                .deal,
            DealRef::Opportunity(_)
        ));
    }

    #[test]
    fn problems_name_their_field() {
        let e = err(r#"{"opportunityId":"006A000010khO8JBAA"}"#);
        assert_eq!(
            (e.code, e.field.as_deref()),
            ("invalid_id", Some("opportunityId"))
        );
        assert!(e.message.contains("checksum"), "{}", e.message);
        let e = err(r#"{"orderId":"006A000010khO8J"}"#);
        assert_eq!(
            (e.code, e.field.as_deref()),
            ("invalid_id", Some("orderId"))
        );
        let e = err(r#"{"Opportunity_Id":"801A000010khO8J"}"#);
        assert!(e.message.starts_with("Opportunity_Id:"), "{}", e.message);
        assert_eq!(err(r#"{"opportunityId":42}"#).code, "invalid_type");
        assert_eq!(err(r#"{}"#).field.as_deref(), Some("opportunityId"));
        assert_eq!(
            err(r#"{"opportunityId":"006A000010khO8J","orderId":"801A000010khO8J"}"#).code,
            "conflicting_fields"
        );
        assert_eq!(
            err(r#"{"opportunityId":"006A000010khO8J","x":1}"#)
                .field
                .as_deref(),
            Some("x")
        );
        assert_eq!(
            err(r#"{"opportunityId":"006A000010khO8J","dryRun":"yes"}"#)
                .field
                .as_deref(),
            Some("dryRun")
        );
        assert_eq!(
            err(r#"{"opportunityId":"006A000010khO8J","correlationId":"a b"}"#)
                .field
                .as_deref(),
            Some("correlationId")
        );
        assert_eq!(err(r#"{"opportunityId": "006"#).code, "malformed_json");
        assert_eq!(err("[1]").code, "malformed_json");
        assert_eq!(err("  ").code, "empty_body");
    }

    #[test]
    fn soql_fragments_never_pass_as_ids() {
        for raw in [
            "006' OR Name != '",
            "006A000010khO8J' --",
            "006A00001%khO8J",
        ] {
            let body = serde_json::json!({"opportunityId": raw}).to_string();
            assert_eq!(err(&body).code, "invalid_id", "{raw}");
        }
    }
}
