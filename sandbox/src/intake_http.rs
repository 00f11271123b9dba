//! The intake on loopback HTTP, for callers that only speak HTTP (the AB fake's webhooks): each
//! request goes to the intake's handler as API Gateway would hand it over, and its answer back.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

use crate::serve::{Served, listen, serve};

/// A running intake; dropping it stops the server.
pub struct IntakeServer {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    _served: Served,
}

async fn forward(
    State(deps): State<Arc<dealbridge_intake::Deps>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut request = lambda_http::http::Request::builder()
        .method(method.as_str())
        .uri(uri.path());
    for (name, value) in &headers {
        request = request.header(name.as_str(), value.as_bytes());
    }
    let Ok(request) = request.body(lambda_http::Body::Binary(body.to_vec())) else {
        return (StatusCode::BAD_REQUEST, "unreadable request").into_response();
    };
    let answer = dealbridge_intake::handle(request, &deps).await;
    let status = StatusCode::from_u16(answer.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut response = (status, answer.body().to_vec()).into_response();
    for (name, value) in answer.headers() {
        if let (Ok(name), Ok(value)) = (
            axum::http::HeaderName::from_bytes(name.as_str().as_bytes()),
            axum::http::HeaderValue::from_bytes(value.as_bytes()),
        ) {
            response.headers_mut().insert(name, value);
        }
    }
    response
}

/// Serves `deps` on a free loopback port.
pub async fn start(deps: dealbridge_intake::Deps) -> std::io::Result<IntakeServer> {
    let (listener, authority) = listen(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let router = axum::Router::new()
        .fallback(forward)
        .with_state(Arc::new(deps));
    Ok(IntakeServer {
        url: format!("http://{authority}"),
        _served: serve(listener, router),
    })
}
