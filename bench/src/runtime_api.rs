//! A fake AWS Lambda Runtime API (`/2018-06-01/runtime/...`) on loopback: hands out the events
//! queued with [`RuntimeApi::push`] on `invocation/next` (holding the request while there are
//! none, as Lambda does), and reports every `next`, response and error as a [`Hit`].

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use dealbridge_sandbox::serve::{Served, listen, serve};
use tokio::sync::{Notify, mpsc};

/// What the function did against the Runtime API.
#[derive(Debug, Clone)]
pub enum Hit {
    /// `GET invocation/next`, when it arrived.
    Next(Instant),
    /// `POST invocation/{id}/response`.
    Response { id: String, body: String },
    /// `POST invocation/{id}/error`.
    Error { id: String, body: String },
    /// `POST init/error`.
    InitError(String),
}

struct Shared {
    events: Mutex<VecDeque<String>>,
    ready: Notify,
    seq: AtomicU64,
    hits: mpsc::UnboundedSender<Hit>,
}

/// A running fake Runtime API; dropping it stops the server.
pub struct RuntimeApi {
    shared: Arc<Shared>,
    authority: String,
    hits: mpsc::UnboundedReceiver<Hit>,
    _server: Served,
}

impl RuntimeApi {
    /// Serves on a free loopback port.
    pub async fn start() -> std::io::Result<RuntimeApi> {
        let (tx, rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            events: Mutex::new(VecDeque::new()),
            ready: Notify::new(),
            seq: AtomicU64::new(0),
            hits: tx,
        });
        let (listener, authority) = listen(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let router = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(response),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(shared.clone());
        Ok(RuntimeApi {
            shared,
            authority,
            hits: rx,
            _server: serve(listener, router),
        })
    }

    /// `host:port`, the value of `AWS_LAMBDA_RUNTIME_API`.
    pub fn authority(&self) -> &str {
        &self.authority
    }

    /// Queues one invocation's event (JSON).
    pub fn push(&self, event: String) {
        self.shared
            .events
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push_back(event);
        self.shared.ready.notify_one();
    }

    /// The next thing the function did, if it does something within `timeout`.
    pub async fn hit(&mut self, timeout: std::time::Duration) -> Option<Hit> {
        tokio::time::timeout(timeout, self.hits.recv())
            .await
            .ok()
            .flatten()
    }
}

async fn next(State(shared): State<Arc<Shared>>) -> Response {
    let _ = shared.hits.send(Hit::Next(Instant::now()));
    let event = loop {
        let ready = shared.ready.notified();
        let popped = shared
            .events
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop_front();
        if let Some(event) = popped {
            break event;
        }
        ready.await;
    };
    let n = shared.seq.fetch_add(1, Ordering::SeqCst) + 1;
    let id = format!("bench-invocation-{n}");
    let deadline = chrono::Utc::now().timestamp_millis() + 30_000;
    let mut headers = HeaderMap::new();
    let mut set = |name: &'static str, value: String| {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(name, v);
        }
    };
    set("lambda-runtime-aws-request-id", id);
    set("lambda-runtime-deadline-ms", deadline.to_string());
    set(
        "lambda-runtime-invoked-function-arn",
        "arn:aws:lambda:us-east-1:123456789012:function:dealbridge-bench".into(),
    );
    set(
        "lambda-runtime-trace-id",
        format!("Root=1-00000000-{n:024x};Parent={n:016x};Sampled=0"),
    );
    set("content-type", "application/json".into());
    (StatusCode::OK, headers, event).into_response()
}

async fn response(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    body: Bytes,
) -> StatusCode {
    let body = String::from_utf8_lossy(&body).into_owned();
    let _ = shared.hits.send(Hit::Response { id, body });
    StatusCode::ACCEPTED
}

async fn error(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    body: Bytes,
) -> StatusCode {
    let body = String::from_utf8_lossy(&body).into_owned();
    let _ = shared.hits.send(Hit::Error { id, body });
    StatusCode::ACCEPTED
}

async fn init_error(State(shared): State<Arc<Shared>>, body: Bytes) -> StatusCode {
    let _ = shared
        .hits
        .send(Hit::InitError(String::from_utf8_lossy(&body).into_owned()));
    StatusCode::ACCEPTED
}
