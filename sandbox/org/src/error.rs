//! Errors: [`ApiError`] is what the REST API answers (an HTTP status and Salesforce's error array);
//! [`LoadError`] is why a schema or data file could not be loaded.

use std::fmt;
use std::path::PathBuf;

/// One element of a Salesforce REST error array:
/// `{"message": "...", "errorCode": "...", "fields": [...]}`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SfError {
    pub message: String,
    #[serde(rename = "errorCode")]
    pub error_code: String,
    #[serde(default)]
    pub fields: Vec<String>,
}

/// A failed REST call: the HTTP status and the error array Salesforce would return.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub errors: Vec<SfError>,
}

impl ApiError {
    /// A single-error failure.
    pub fn new(status: u16, error_code: &str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            errors: vec![SfError {
                message: message.into(),
                error_code: error_code.to_string(),
                fields: Vec::new(),
            }],
        }
    }

    /// A single-error failure naming the fields at fault.
    pub fn with_fields(
        status: u16,
        error_code: &str,
        message: impl Into<String>,
        fields: Vec<String>,
    ) -> ApiError {
        ApiError {
            status,
            errors: vec![SfError {
                message: message.into(),
                error_code: error_code.to_string(),
                fields,
            }],
        }
    }

    /// The error code of the first error (there is always at least one).
    pub fn error_code(&self) -> &str {
        self.errors.first().map_or("", |e| e.error_code.as_str())
    }

    /// The message of the first error.
    pub fn message(&self) -> &str {
        self.errors.first().map_or("", |e| e.message.as_str())
    }

    /// The response body: the JSON error array.
    pub fn body(&self) -> serde_json::Value {
        serde_json::to_value(&self.errors).unwrap_or(serde_json::Value::Null)
    }

    pub(crate) fn not_found() -> ApiError {
        ApiError::new(404, "NOT_FOUND", "The requested resource does not exist")
    }

    pub(crate) fn malformed_id(id: &str) -> ApiError {
        ApiError::new(400, "MALFORMED_ID", format!("malformed id {id}"))
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HTTP {}", self.status)?;
        for e in &self.errors {
            write!(f, "; {}: {}", e.error_code, e.message)?;
        }
        Ok(())
    }
}

impl std::error::Error for ApiError {}

/// Why a schema or an export tree could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not valid JSON: {source}")]
    Json {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("schema: {0}")]
    Schema(String),
    #[error("data: {0}")]
    Data(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_serializes_as_salesforce_writes_it() {
        let err = ApiError::with_fields(
            400,
            "INVALID_FIELD",
            "No such column 'Foo' on sobject of type Account",
            vec!["Foo".into()],
        );
        assert_eq!(
            serde_json::to_string(&err.body()).unwrap(),
            r#"[{"message":"No such column 'Foo' on sobject of type Account","errorCode":"INVALID_FIELD","fields":["Foo"]}]"#
        );
        assert_eq!(err.error_code(), "INVALID_FIELD");
        assert_eq!(err.status, 400);
    }

    #[test]
    fn display_names_status_code_and_message() {
        let err = ApiError::not_found();
        assert_eq!(
            err.to_string(),
            "HTTP 404; NOT_FOUND: The requested resource does not exist"
        );
    }
}
