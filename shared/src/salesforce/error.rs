//! Salesforce errors, typed from the REST error array (`[{"errorCode","message","fields"}]`), the
//! OAuth error object (`{"error","error_description"}`) and transport failures, and split into
//! retryable and permanent.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::IdError;

/// One entry of a Salesforce error array. SaveResults (sObject Collections) call the code
/// `statusCode`; everything else calls it `errorCode`. Both are accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiErrorItem {
    #[serde(rename = "errorCode", alias = "statusCode")]
    pub error_code: String,
    #[serde(default)]
    pub message: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<String>,
}

impl fmt::Display for ApiErrorItem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.error_code, self.message)?;
        if !self.fields.is_empty() {
            write!(f, " (fields: {})", self.fields.join(", "))?;
        }
        Ok(())
    }
}

/// Error codes that mean "try again later", whatever the HTTP status.
const RETRYABLE_CODES: &[&str] = &[
    "REQUEST_LIMIT_EXCEEDED",
    "UNABLE_TO_LOCK_ROW",
    "SERVER_UNAVAILABLE",
    "REQUEST_RUNNING_TOO_LONG",
    "QUERY_TIMEOUT",
];

#[derive(Debug, Clone, thiserror::Error)]
pub enum SalesforceError {
    /// The token endpoint refused to issue a token.
    #[error("Salesforce login failed ({status}): {error}: {description}")]
    Auth {
        status: u16,
        error: String,
        description: String,
    },
    /// A REST call (or one subrequest of a Composite call) answered with an error array.
    #[error("Salesforce answered {status}{}: {}", context_suffix(.context), join_items(.errors))]
    Api {
        status: u16,
        errors: Vec<ApiErrorItem>,
        /// The Composite `referenceId` or sObject Collections record the error belongs to.
        context: Option<String>,
        retry_after: Option<Duration>,
    },
    /// The request never got an answer (connection refused, timeout, reset).
    #[error("could not reach Salesforce: {0}")]
    Transport(String),
    /// Salesforce answered something this client cannot read.
    #[error("unexpected answer from Salesforce: {0}")]
    Decode(String),
    /// The request was refused before sending: over a documented limit or otherwise malformed.
    #[error("invalid Salesforce request: {0}")]
    InvalidRequest(String),
    /// An Id failed validation before any request was sent.
    #[error("invalid Salesforce Id: {0}")]
    InvalidId(#[from] IdError),
    /// The credentials could not be read.
    #[error("Salesforce credentials unavailable: {0}")]
    Credentials(String),
}

fn context_suffix(context: &Option<String>) -> String {
    context
        .as_ref()
        .map(|c| format!(" for {c}"))
        .unwrap_or_default()
}

fn join_items(items: &[ApiErrorItem]) -> String {
    if items.is_empty() {
        return "no error details".to_string();
    }
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

impl SalesforceError {
    /// True when the same request may succeed later: transport failures, 5xx, 429, and the error
    /// codes for exhausted API allocation, row locks and unavailability.
    pub fn is_retryable(&self) -> bool {
        match self {
            SalesforceError::Transport(_) => true,
            SalesforceError::Auth { status, .. } => *status >= 500 || *status == 429,
            SalesforceError::Api { status, errors, .. } => {
                *status >= 500
                    || *status == 429
                    || errors
                        .iter()
                        .any(|e| RETRYABLE_CODES.contains(&e.error_code.as_str()))
            }
            SalesforceError::Credentials(_) => true,
            SalesforceError::Decode(_)
            | SalesforceError::InvalidRequest(_)
            | SalesforceError::InvalidId(_) => false,
        }
    }

    /// The first Salesforce error code, if the error carries one.
    pub fn error_code(&self) -> Option<&str> {
        match self {
            SalesforceError::Api { errors, .. } => errors.first().map(|e| e.error_code.as_str()),
            SalesforceError::Auth { error, .. } => Some(error.as_str()),
            _ => None,
        }
    }

    /// How long Salesforce asked us to wait, when it said.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            SalesforceError::Api { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    pub(crate) fn is_invalid_session(&self) -> bool {
        matches!(self, SalesforceError::Api { status: 401, .. })
            || self.error_code() == Some("INVALID_SESSION_ID")
    }

    /// Builds the error for a non-success answer from its status and body.
    pub(crate) fn from_response(status: u16, body: &str, retry_after: Option<Duration>) -> Self {
        let errors = parse_error_body(body);
        SalesforceError::Api {
            status,
            errors,
            context: None,
            retry_after,
        }
    }
}

/// Reads an error body: the usual array, a single object, or anything else kept as the message.
pub(crate) fn parse_error_body(body: &str) -> Vec<ApiErrorItem> {
    if let Ok(items) = serde_json::from_str::<Vec<ApiErrorItem>>(body) {
        return items;
    }
    if let Ok(item) = serde_json::from_str::<ApiErrorItem>(body) {
        return vec![item];
    }
    let text = body.trim();
    if text.is_empty() {
        return Vec::new();
    }
    let snippet: String = text.chars().take(500).collect();
    vec![ApiErrorItem {
        error_code: "UNKNOWN_ERROR".to_string(),
        message: snippet,
        fields: Vec::new(),
    }]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(status: u16, code: &str) -> SalesforceError {
        SalesforceError::Api {
            status,
            errors: vec![ApiErrorItem {
                error_code: code.into(),
                message: "m".into(),
                fields: vec![],
            }],
            context: None,
            retry_after: None,
        }
    }

    #[test]
    fn request_limit_exceeded_is_retryable_though_it_is_a_403() {
        assert!(api(403, "REQUEST_LIMIT_EXCEEDED").is_retryable());
    }

    #[test]
    fn lock_contention_and_unavailability_are_retryable() {
        assert!(api(400, "UNABLE_TO_LOCK_ROW").is_retryable());
        assert!(api(503, "SERVER_UNAVAILABLE").is_retryable());
        assert!(api(500, "UNKNOWN_EXCEPTION").is_retryable());
        assert!(SalesforceError::Transport("reset".into()).is_retryable());
    }

    #[test]
    fn validation_and_permission_errors_are_permanent() {
        assert!(!api(400, "FIELD_CUSTOM_VALIDATION_EXCEPTION").is_retryable());
        assert!(!api(400, "MALFORMED_QUERY").is_retryable());
        assert!(!api(404, "NOT_FOUND").is_retryable());
        assert!(!api(403, "INSUFFICIENT_ACCESS").is_retryable());
        assert!(!SalesforceError::InvalidId(IdError::Length(3)).is_retryable());
    }

    #[test]
    fn error_arrays_are_read_with_either_code_key() {
        let items = parse_error_body(
            r#"[{"message":"bad","errorCode":"INVALID_FIELD","fields":["Foo__c"]},
                {"statusCode":"FIELD_INTEGRITY_EXCEPTION","message":"x"}]"#,
        );
        assert_eq!(items[0].error_code, "INVALID_FIELD");
        assert_eq!(items[0].fields, vec!["Foo__c".to_string()]);
        assert_eq!(items[1].error_code, "FIELD_INTEGRITY_EXCEPTION");
    }

    #[test]
    fn a_non_json_error_body_is_kept_as_the_message() {
        let items = parse_error_body("<html>Bad Gateway</html>");
        assert_eq!(items[0].error_code, "UNKNOWN_ERROR");
        assert_eq!(items[0].message, "<html>Bad Gateway</html>");
        assert!(parse_error_body("").is_empty());
    }

    #[test]
    fn the_message_names_code_text_fields_and_subrequest() {
        let err = SalesforceError::Api {
            status: 400,
            errors: vec![ApiErrorItem {
                error_code: "INVALID_FIELD".into(),
                message: "No such column".into(),
                fields: vec!["Foo__c".into()],
            }],
            context: Some("opportunity".into()),
            retry_after: None,
        };
        assert_eq!(
            err.to_string(),
            "Salesforce answered 400 for opportunity: INVALID_FIELD: No such column (fields: Foo__c)"
        );
    }
}
