//! The one HTTP core of the Maxio AB, Maxio Core and WHMCS clients: send a request, time it,
//! and read its status, `Retry-After` and body, with transport failures described one way. Each
//! client keeps only what is its own: authentication and how a status becomes its error. The
//! retry loop around it is [`crate::retry::run_with_retries`].

use std::time::Duration;

use reqwest::RequestBuilder;

/// An answer as it arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    /// The server's `Retry-After`, in seconds or as an HTTP date.
    pub retry_after: Option<Duration>,
    pub text: String,
}

/// What a status says, the way every client reads it first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// 2xx.
    Success,
    /// 401: the credentials were refused.
    Unauthorized,
    /// 403.
    Forbidden,
    /// 404.
    NotFound,
    /// 409.
    Conflict,
    /// 429: slow down.
    RateLimited,
    /// 408 or 5xx: a passing failure of the server.
    Passing,
    /// Any other status: the request was refused.
    Refused,
}

impl Class {
    pub fn of(status: u16) -> Class {
        match status {
            200..=299 => Class::Success,
            401 => Class::Unauthorized,
            403 => Class::Forbidden,
            404 => Class::NotFound,
            409 => Class::Conflict,
            429 => Class::RateLimited,
            408 | 500..=599 => Class::Passing,
            _ => Class::Refused,
        }
    }
}

impl Answer {
    pub fn class(&self) -> Class {
        Class::of(self.status)
    }
}

/// Why no answer arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoAnswer {
    /// The connection could not be made: the request certainly did not arrive.
    Connect(String),
    /// The request may have arrived (a timeout, a connection lost while waiting).
    Lost(String),
    /// The status arrived but the body could not be read: the server acted.
    Body(String),
}

impl NoAnswer {
    pub fn message(&self) -> &str {
        match self {
            NoAnswer::Connect(m) | NoAnswer::Lost(m) | NoAnswer::Body(m) => m,
        }
    }
}

/// A transport error in words: "timed out", or the error with its causes.
pub fn describe(e: &reqwest::Error) -> String {
    let mut text = if e.is_timeout() {
        "timed out".to_string()
    } else {
        e.to_string()
    };
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = s.source();
    }
    text
}

/// Sends `request` with `body` as JSON when there is one (see [`send`]).
pub async fn send_json(
    service: &'static str,
    request: RequestBuilder,
    body: Option<&serde_json::Value>,
) -> Result<Answer, NoAnswer> {
    let request = request.header(reqwest::header::ACCEPT, "application/json");
    match body {
        Some(body) => send(service, request.json(body)).await,
        None => send(service, request).await,
    }
}

/// Sends `request`, recording its latency under `service` (the `ExternalCallLatency` metric).
pub async fn send(service: &'static str, request: RequestBuilder) -> Result<Answer, NoAnswer> {
    let started = std::time::Instant::now();
    let response = request.send().await;
    crate::metrics::latency(service, started.elapsed());
    let response = response.map_err(|e| {
        if e.is_connect() {
            NoAnswer::Connect(describe(&e))
        } else {
            NoAnswer::Lost(describe(&e))
        }
    })?;
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_retry_after);
    let text = response
        .text()
        .await
        .map_err(|e| NoAnswer::Body(describe(&e)))?;
    Ok(Answer {
        status,
        retry_after,
        text,
    })
}

/// `Retry-After` in seconds or as an HTTP date.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let wait = at.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(wait.to_std().unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_is_read_in_seconds_or_as_a_date() {
        assert_eq!(parse_retry_after(" 7 "), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO),
            "a date in the past means now"
        );
        assert_eq!(parse_retry_after("soon"), None);
    }
}
