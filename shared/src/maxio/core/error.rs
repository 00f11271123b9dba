//! Maxio Core errors. The API is Django REST Framework: `{"detail": "..."}` for 401/403/404 and
//! 429, `{"field": ["message", ...]}` for a 400; other shapes (`error`, `errorCode`, plain text)
//! are read too, since Core's error bodies are not documented.

use crate::codes::ErrorCode;
use std::time::Duration;

use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CoreError {
    /// The token was refused (401): a configuration problem, not a deal problem.
    #[error("Maxio Core refused the API token: {0}")]
    Unauthorized(String),
    /// 403: the token's user may not do this.
    #[error("Maxio Core forbids this: {0}")]
    Forbidden(String),
    #[error("Maxio Core has no {0}")]
    NotFound(String),
    #[error("Maxio Core is throttling requests")]
    RateLimited { retry_after: Option<Duration> },
    #[error("Maxio Core answered {status}: {message}")]
    Server { status: u16, message: String },
    /// A 400 or another 4xx: the request itself was refused.
    #[error("Maxio Core refused the request ({status}): {message}")]
    Rejected { status: u16, message: String },
    #[error("Maxio Core could not be reached: {0}")]
    Transport(String),
    #[error("Maxio Core's answer could not be read: {0}")]
    Decode(String),
    #[error("the Maxio Core credentials could not be read: {0}")]
    Credentials(String),
    /// A list had more pages than the client follows (a filter the tenant ignores?).
    #[error(
        "Maxio Core listed more than {pages} pages for {path}; is the filter supported by this tenant?"
    )]
    TooManyPages { path: String, pages: usize },
}

impl CoreError {
    /// Whether trying again later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            CoreError::RateLimited { .. }
                | CoreError::Server { .. }
                | CoreError::Transport(_)
                | CoreError::Credentials(_)
        )
    }

    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            CoreError::RateLimited { retry_after } => *retry_after,
            _ => None,
        }
    }

    /// A stable code for Salesforce and the logs.
    pub fn code(&self) -> ErrorCode {
        match self {
            CoreError::Unauthorized(_) => ErrorCode::CoreUnauthorized,
            CoreError::Forbidden(_) => ErrorCode::CoreForbidden,
            CoreError::NotFound(_) => ErrorCode::CoreNotFound,
            CoreError::RateLimited { .. } => ErrorCode::CoreRateLimited,
            CoreError::Server { .. } => ErrorCode::CoreUnavailable,
            CoreError::Rejected { .. } => ErrorCode::CoreRejected,
            CoreError::Transport(_) => ErrorCode::CoreUnreachable,
            CoreError::Decode(_) => ErrorCode::CoreBadAnswer,
            CoreError::Credentials(_) => ErrorCode::CoreCredentials,
            CoreError::TooManyPages { .. } => ErrorCode::CoreTooManyPages,
        }
    }
}

/// The human part of an error body, whatever its shape, cut to 300 characters.
pub fn error_message(body: &str) -> String {
    let text = match serde_json::from_str::<Value>(body.trim()) {
        Ok(Value::Object(map)) => {
            let mut parts = Vec::new();
            for (key, value) in &map {
                let said = match value {
                    Value::String(s) => s.clone(),
                    Value::Array(items) => items
                        .iter()
                        .map(|i| i.as_str().map(str::to_string).unwrap_or(i.to_string()))
                        .collect::<Vec<_>>()
                        .join(" "),
                    other => other.to_string(),
                };
                if matches!(key.as_str(), "detail" | "error" | "message") {
                    parts.push(said);
                } else {
                    parts.push(format!("{key}: {said}"));
                }
            }
            parts.join("; ")
        }
        Ok(Value::String(s)) => s,
        Ok(Value::Array(items)) => items
            .iter()
            .map(|i| i.as_str().map(str::to_string).unwrap_or(i.to_string()))
            .collect::<Vec<_>>()
            .join("; "),
        _ => body.trim().to_string(),
    };
    text.chars().take(300).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drf_bodies_become_sentences() {
        assert_eq!(
            error_message(r#"{"detail":"Invalid token."}"#),
            "Invalid token."
        );
        assert_eq!(
            error_message(
                r#"{"text_field2":["Ensure this field has no more than 255 characters."]}"#
            ),
            "text_field2: Ensure this field has no more than 255 characters."
        );
        assert_eq!(
            error_message("<html>Bad Gateway</html>"),
            "<html>Bad Gateway</html>"
        );
        assert_eq!(error_message(&"x".repeat(500)).len(), 300);
    }

    #[test]
    fn only_passing_troubles_are_retryable() {
        assert!(CoreError::RateLimited { retry_after: None }.is_retryable());
        assert!(
            CoreError::Server {
                status: 502,
                message: String::new()
            }
            .is_retryable()
        );
        assert!(!CoreError::Unauthorized("Invalid token.".into()).is_retryable());
        assert!(
            !CoreError::Rejected {
                status: 400,
                message: String::new()
            }
            .is_retryable()
        );
    }
}
