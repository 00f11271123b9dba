//! The raw API Gateway event, read before lambda_http builds the request from it: its adapter
//! panics on a body marked base64 that does not decode (the invocation fails and API Gateway
//! answers 502). Such a body is answered 400 here; every other event goes to [`handle`] as the
//! adapter would hand it over, and the answer goes back in the proxy integration's shape (REST
//! and HTTP APIs read the same fields).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use lambda_http::http::StatusCode;
use lambda_http::request::LambdaRequest;
use lambda_http::{Body, Request, Response};
use serde_json::{Map, Value, json};
use tracing::warn;

use crate::handler::{Deps, handle};
use crate::respond::json_error;

/// Answers one API Gateway event (REST or HTTP API, payload 1.0 or 2.0).
pub async fn handle_event(event: Value, deps: &Deps) -> Value {
    if let Some(problem) = undecodable_body(&event) {
        warn!(%problem, "intake request refused");
        return proxy_response(json_error(
            StatusCode::BAD_REQUEST,
            "undecodable_body",
            &problem,
            None,
            None,
            None,
        ));
    }
    let request: LambdaRequest = match serde_json::from_value(event) {
        Ok(r) => r,
        Err(e) => {
            warn!(error = %e, "intake event is not an API Gateway request");
            return proxy_response(json_error(
                StatusCode::BAD_REQUEST,
                "malformed_event",
                "the event is not an API Gateway request",
                None,
                None,
                None,
            ));
        }
    };
    let request: Request = request.into();
    proxy_response(handle(request, deps).await)
}

/// Why the body cannot be what the event says, if so.
fn undecodable_body(event: &Value) -> Option<String> {
    if event.get("isBase64Encoded").and_then(Value::as_bool) != Some(true) {
        return None;
    }
    let body = event
        .get("body")
        .and_then(Value::as_str)
        .unwrap_or_default();
    BASE64
        .decode(body)
        .err()
        .map(|e| format!("the body is marked base64 but does not decode: {e}"))
}

/// A response in the proxy integration's shape.
pub fn proxy_response(response: Response<Body>) -> Value {
    let (parts, body) = response.into_parts();
    let mut headers = Map::new();
    for name in parts.headers.keys() {
        let values: Vec<&str> = parts
            .headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        headers.insert(name.as_str().to_string(), Value::String(values.join(", ")));
    }
    let (body, encoded) = match body {
        Body::Text(t) => (t, false),
        Body::Binary(b) => (BASE64.encode(b), true),
        _ => (String::new(), false),
    };
    json!({
        "statusCode": parts.status.as_u16(),
        "headers": headers,
        "body": body,
        "isBase64Encoded": encoded,
    })
}
