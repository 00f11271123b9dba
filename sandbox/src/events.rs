//! The sample events in `events/`, for tests and the local runner.

use std::path::{Path, PathBuf};

use dealbridge_intake::auth::sign;
use serde_json::Value;

use crate::local::SANDBOX_HMAC_KEY;

pub fn events_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("events")
}

/// A sample event as JSON.
pub fn sample(name: &str) -> Value {
    let path = events_dir().join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// An API Gateway event as the HTTP request the intake handler sees.
pub fn http_request(event: &Value) -> lambda_http::Request {
    lambda_http::request::from_str(&event.to_string())
        .unwrap_or_else(|e| panic!("not an API Gateway event: {e}"))
}

/// Replaces an HTTP API (v2) event's body and re-signs it at `t` with the sandbox key.
pub fn with_signed_body(event: &Value, body: &str, t: i64) -> Value {
    let mut e = event.clone();
    e["body"] = Value::String(body.to_string());
    let signature = sign(SANDBOX_HMAC_KEY.as_bytes(), t, body.as_bytes()).unwrap_or_default();
    e["headers"]["x-dealbridge-signature"] = Value::String(signature);
    e["headers"]["content-length"] = Value::String(body.len().to_string());
    e
}
