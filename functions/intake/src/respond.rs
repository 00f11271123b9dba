//! Building HTTP answers: JSON for API callers, SOAP for Outbound Messages.

use std::time::Duration;

use dealbridge::outbound::{FaultCode, ack, fault};
use lambda_http::http::StatusCode;
use lambda_http::{Body, Response};
use serde_json::{Value, json};

fn build(
    status: StatusCode,
    content_type: &str,
    body: String,
    retry_after: Option<Duration>,
) -> Response<Body> {
    let mut builder = Response::builder()
        .status(status)
        .header("content-type", content_type)
        .header("cache-control", "no-store");
    if let Some(after) = retry_after {
        builder = builder.header("retry-after", after.as_secs().max(1).to_string());
    }
    builder.body(Body::from(body)).unwrap_or_else(|_| {
        let mut r = Response::new(Body::Empty);
        *r.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
        r
    })
}

pub fn json(status: StatusCode, body: &Value) -> Response<Body> {
    build(status, "application/json", body.to_string(), None)
}

/// `{"error":{"code","message","field"},"correlationId"}`.
pub fn json_error(
    status: StatusCode,
    code: &str,
    message: &str,
    field: Option<&str>,
    correlation_id: Option<&str>,
    retry_after: Option<Duration>,
) -> Response<Body> {
    let mut error = json!({"code": code, "message": message});
    if let Some(f) = field {
        error["field"] = Value::String(f.to_string());
    }
    let mut body = json!({ "error": error });
    if let Some(c) = correlation_id {
        body["correlationId"] = Value::String(c.to_string());
    }
    build(status, "application/json", body.to_string(), retry_after)
}

pub fn soap_ack() -> Response<Body> {
    build(StatusCode::OK, "text/xml; charset=utf-8", ack(), None)
}

pub fn soap_fault(status: StatusCode, code: FaultCode, message: &str) -> Response<Body> {
    build(
        status,
        "text/xml; charset=utf-8",
        fault(code, message),
        None,
    )
}
