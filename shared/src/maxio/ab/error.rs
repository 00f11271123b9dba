//! Maxio Advanced Billing errors. The `errors` body is a union in practice: a list of strings, a
//! map of field to string or list, a list of objects, a bare string, `{"error": ...}`, or a plain
//! text 401. Every shape is read and flattened into messages.

use crate::codes::ErrorCode;
use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<Value>),
    Other(Value),
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
enum Errors {
    List(Vec<Value>),
    Map(BTreeMap<String, OneOrMany>),
    Text(String),
}

#[derive(Debug, Clone, Default, Deserialize)]
struct Body {
    #[serde(default)]
    errors: Option<Errors>,
    #[serde(default)]
    error: Option<Value>,
}

/// One error message, with the field it is about when AB said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AbMessage {
    pub field: Option<String>,
    pub message: String,
}

fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Object(o) => o
            .get("message")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| v.to_string()),
        other => other.to_string(),
    }
}

/// Reads any of AB's error bodies.
pub fn parse_messages(body: &str) -> Vec<AbMessage> {
    let trimmed = body.trim();
    let parsed: Option<Body> = serde_json::from_str(trimmed).ok();
    let mut out = Vec::new();
    match parsed {
        Some(Body {
            errors: Some(errors),
            ..
        }) => match errors {
            Errors::List(items) => out.extend(items.iter().map(|v| AbMessage {
                field: v.get("on").and_then(Value::as_str).map(str::to_string),
                message: text_of(v),
            })),
            Errors::Map(map) => {
                for (field, value) in map {
                    let messages: Vec<String> = match value {
                        OneOrMany::One(s) => vec![s],
                        OneOrMany::Many(list) => list.iter().map(text_of).collect(),
                        OneOrMany::Other(v) => vec![text_of(&v)],
                    };
                    out.extend(messages.into_iter().map(|message| AbMessage {
                        field: Some(field.clone()),
                        message,
                    }));
                }
            }
            Errors::Text(s) => out.push(AbMessage {
                field: None,
                message: s,
            }),
        },
        Some(Body { error: Some(e), .. }) => out.push(AbMessage {
            field: None,
            message: text_of(&e),
        }),
        _ if !trimmed.is_empty() => out.push(AbMessage {
            field: None,
            message: trimmed.chars().take(300).collect(),
        }),
        _ => {}
    }
    out
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MaxioError {
    #[error("Maxio refused the API key (401)")]
    Unauthorized,
    #[error("Maxio found no {0}")]
    NotFound(String),
    #[error("Maxio rejected the request ({status}): {}", join(.messages))]
    Rejected {
        status: u16,
        messages: Vec<AbMessage>,
    },
    #[error("Maxio saw this request already (409 duplicate submission)")]
    DuplicateSubmission,
    #[error("Maxio is throttling requests (429)")]
    RateLimited { retry_after: Option<Duration> },
    #[error("Maxio answered {status}: {message}")]
    Server { status: u16, message: String },
    #[error("could not reach Maxio: {0}")]
    Transport(String),
    #[error("unexpected answer from Maxio: {0}")]
    Decode(String),
    #[error("Maxio credentials unavailable: {0}")]
    Credentials(String),
    /// Nothing was sent: no slot of the site's request budget ([`crate::budget`]).
    #[error("{0}")]
    Budget(String),
}

fn join(messages: &[AbMessage]) -> String {
    if messages.is_empty() {
        return "no details".into();
    }
    messages
        .iter()
        .map(|m| match &m.field {
            Some(f) if !m.message.to_lowercase().starts_with(&f.to_lowercase()) => {
                format!("{f}: {}", m.message)
            }
            _ => m.message.clone(),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

impl MaxioError {
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            MaxioError::RateLimited { .. }
                | MaxioError::Server { .. }
                | MaxioError::Transport(_)
                | MaxioError::Credentials(_)
                | MaxioError::Budget(_)
        )
    }

    /// Whether a 422 names `field` (e.g. `handle`) or mentions it in a message.
    pub fn mentions(&self, needle: &str) -> bool {
        match self {
            MaxioError::Rejected { messages, .. } => messages.iter().any(|m| {
                m.field.as_deref() == Some(needle)
                    || m.message.to_lowercase().contains(&needle.to_lowercase())
            }),
            _ => false,
        }
    }

    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            MaxioError::RateLimited { retry_after } => *retry_after,
            _ => None,
        }
    }

    /// A stable code for Salesforce.
    pub fn code(&self) -> ErrorCode {
        match self {
            MaxioError::Unauthorized => ErrorCode::MaxioUnauthorized,
            MaxioError::NotFound(_) => ErrorCode::MaxioNotFound,
            MaxioError::Rejected { .. } => ErrorCode::MaxioRejected,
            MaxioError::DuplicateSubmission => ErrorCode::MaxioDuplicate,
            MaxioError::RateLimited { .. } => ErrorCode::MaxioRateLimited,
            MaxioError::Server { .. } => ErrorCode::MaxioUnavailable,
            MaxioError::Transport(_) => ErrorCode::MaxioUnreachable,
            MaxioError::Decode(_) => ErrorCode::MaxioUnexpectedAnswer,
            MaxioError::Credentials(_) => ErrorCode::MaxioCredentials,
            MaxioError::Budget(_) => ErrorCode::MaxioBudgetBusy,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn messages(body: &str) -> Vec<String> {
        parse_messages(body)
            .into_iter()
            .map(|m| match m.field {
                Some(f) => format!("{f}|{}", m.message),
                None => m.message,
            })
            .collect()
    }

    #[test]
    fn every_documented_error_shape_is_read() {
        assert_eq!(
            messages(r#"{"errors":["Reference: must be unique - that value has been taken."]}"#),
            ["Reference: must be unique - that value has been taken."]
        );
        assert_eq!(
            messages(r#"{"errors":{"customer":"can't be blank"}}"#),
            ["customer|can't be blank"]
        );
        assert_eq!(
            messages(
                r#"{"errors":{"handle":["Handle: This handle is already in use."],"prices":["a","b"]}}"#
            ),
            [
                "handle|Handle: This handle is already in use.",
                "prices|a",
                "prices|b"
            ]
        );
        assert_eq!(
            messages(
                r#"{"errors":[{"kind":"allocation","component_id":1,"on":"quantity","message":"Quantity: must be either 1 (on) or 0 (off)."}]}"#
            ),
            ["quantity|Quantity: must be either 1 (on) or 0 (off)."]
        );
        assert_eq!(
            messages(r#"{"error":"Subscription not found"}"#),
            ["Subscription not found"]
        );
        assert_eq!(messages(r#"{"errors":"Not allowed"}"#), ["Not allowed"]);
        assert_eq!(
            messages("HTTP Basic: Access denied.\n"),
            ["HTTP Basic: Access denied."]
        );
        assert!(messages("").is_empty());
    }

    #[test]
    fn rejections_find_their_field_and_print_once() {
        let e = MaxioError::Rejected {
            status: 422,
            messages: parse_messages(
                r#"{"errors":{"handle":["Handle: This handle is already in use."]}}"#,
            ),
        };
        assert!(e.mentions("handle"));
        assert!(!e.mentions("prices"));
        assert_eq!(
            e.to_string(),
            "Maxio rejected the request (422): Handle: This handle is already in use."
        );
        assert!(!e.is_retryable());
        assert!(MaxioError::RateLimited { retry_after: None }.is_retryable());
    }
}
