//! What every endpoint shares: Basic auth, the concurrency limit, JSON bodies with
//! `uniqueness_token`, and the answer shapes.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State as AxState};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::{Value, json};

use super::App;
use super::state::Store;

/// An answer before it becomes HTTP.
#[derive(Debug, Clone)]
pub(super) struct Reply {
    pub status: StatusCode,
    /// `None`: an empty body.
    pub body: Option<Value>,
}

impl Reply {
    pub fn ok(body: Value) -> Reply {
        Reply {
            status: StatusCode::OK,
            body: Some(body),
        }
    }

    pub fn created(body: Value) -> Reply {
        Reply {
            status: StatusCode::CREATED,
            body: Some(body),
        }
    }

    /// 404 for an unknown id. The real body is unspecified (clients treat it as opaque); the
    /// fake sends an empty body, as Rails' `head :not_found` does.
    pub fn not_found() -> Reply {
        Reply {
            status: StatusCode::NOT_FOUND,
            body: None,
        }
    }

    /// 422 with `{"errors": [..]}`.
    pub fn errors(messages: Vec<String>) -> Reply {
        Reply {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            body: Some(json!({ "errors": messages })),
        }
    }

    pub fn unprocessable(body: Value) -> Reply {
        Reply {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            body: Some(body),
        }
    }
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        match self.body {
            Some(body) => {
                let mut response = (self.status, body.to_string()).into_response();
                response.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json; charset=utf-8"),
                );
                response
            }
            None => self.status.into_response(),
        }
    }
}

/// Whether the request got one of the site's concurrent slots.
#[derive(Debug, Clone, Copy)]
pub(super) enum Admission {
    Admitted,
    /// Over the limit; the number identifies the denial in the 429 text.
    Denied(u64),
}

/// Holds a concurrent slot until dropped (also when the client goes away mid-request).
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

pub(super) struct Limiter {
    in_flight: Arc<AtomicUsize>,
    denials: AtomicU64,
    max: usize,
    /// Admitted requests answered, and the time they took in all (µs).
    answered: AtomicU64,
    answering_micros: AtomicU64,
}

impl Limiter {
    pub fn new(max: usize) -> Limiter {
        Limiter {
            in_flight: Arc::new(AtomicUsize::new(0)),
            denials: AtomicU64::new(0),
            max,
            answered: AtomicU64::new(0),
            answering_micros: AtomicU64::new(0),
        }
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }

    /// Admitted requests answered so far, and the time they took in all.
    pub fn answered(&self) -> (u64, std::time::Duration) {
        (
            self.answered.load(Ordering::SeqCst),
            std::time::Duration::from_micros(self.answering_micros.load(Ordering::SeqCst)),
        )
    }

    fn try_enter(&self) -> Option<Slot> {
        let mut current = self.in_flight.load(Ordering::SeqCst);
        loop {
            if current >= self.max {
                return None;
            }
            match self.in_flight.compare_exchange(
                current,
                current + 1,
                Ordering::SeqCst,
                Ordering::SeqCst,
            ) {
                Ok(_) => return Some(Slot(self.in_flight.clone())),
                Err(now) => current = now,
            }
        }
    }
}

/// Outermost middleware (`layer`, so it wraps the request log and its injected latency): counts
/// requests in flight. A request arriving while `max_concurrent_requests` are in flight does not
/// take a slot and is marked denied; [`gate`] answers it with 429 inside the request log, so the
/// log shows the 429.
pub(super) async fn admit(
    AxState(app): AxState<Arc<App>>,
    mut request: Request,
    next: Next,
) -> Response {
    match app.limiter.try_enter() {
        Some(slot) => {
            let started = std::time::Instant::now();
            request.extensions_mut().insert(Admission::Admitted);
            let response = next.run(request).await;
            drop(slot);
            let took = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
            app.limiter.answered.fetch_add(1, Ordering::SeqCst);
            app.limiter
                .answering_micros
                .fetch_add(took, Ordering::SeqCst);
            response
        }
        None => {
            let n = app.limiter.denials.fetch_add(1, Ordering::SeqCst) + 1;
            request.extensions_mut().insert(Admission::Denied(n));
            next.run(request).await
        }
    }
}

/// Inner middleware (`route_layer`, inside the request log): the 429 for denied requests, then
/// Basic auth.
pub(super) async fn gate(
    AxState(app): AxState<Arc<App>>,
    request: Request,
    next: Next,
) -> Response {
    if let Some(response) = refuse(&app, &request) {
        return response;
    }
    next.run(request).await
}

/// The 429 or 401 a request gets before reaching a resource, if any.
pub(super) fn refuse(app: &App, request: &Request) -> Option<Response> {
    if let Some(Admission::Denied(n)) = request.extensions().get::<Admission>() {
        return Some(too_many_requests(*n));
    }
    if !authorized(app, request.headers()) {
        return Some(access_denied());
    }
    None
}

/// 429 when over the concurrency limit. UNCONFIRMED body format and headers: the fake sends the
/// documented sentence as plain text with a made-up reference, and no `Retry-After` (none is
/// documented).
fn too_many_requests(n: u64) -> Response {
    let text = format!(
        "Your request was denied due to a usage violation. You can track this request with support by referencing {n:016x}."
    );
    plain(StatusCode::TOO_MANY_REQUESTS, text)
}

/// 401 exactly as the live API answers bad credentials.
fn access_denied() -> Response {
    let mut response = plain(
        StatusCode::UNAUTHORIZED,
        "HTTP Basic: Access denied.\n".into(),
    );
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"Application\""),
    );
    response
}

fn plain(status: StatusCode, text: String) -> Response {
    let mut response = (status, Body::from(text)).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// Basic auth: the username is the API key. The password is documented as `x` (also shown as
/// `X`); the fake accepts any non-empty password, as is customary for the API.
fn authorized(app: &App, headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let Some((scheme, encoded)) = value.trim().split_once(' ') else {
        return false;
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return false;
    }
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else {
        return false;
    };
    let Ok(pair) = String::from_utf8(decoded) else {
        return false;
    };
    match pair.split_once(':') {
        Some((user, password)) => user == app.settings.api_key && !password.is_empty(),
        None => false,
    }
}

/// Runs a POST or PUT: checks the body, then, under the store lock, the `uniqueness_token`, the
/// resource's own handling, and remembering the token.
///
/// - The body must be sent with `Content-Type: application/json` (charset and other parameters
///   allowed). Anything else gets 422 `{"errors":["Invalid Content-Type: send JSON with
///   Content-Type: application/json"]}` (own wording; the docs only say such requests "may fail
///   due to forgery protection").
/// - A body that is not valid JSON gets 400 `{"errors":["The request body is not valid JSON."]}`
///   (own wording; Rails answers a JSON parse error with 400).
/// - `uniqueness_token` (a top-level sibling of the resource's root key; a string, or a number
///   taken as its text) that was first seen less than 60 minutes ago (virtual time) gets 409
///   `{"errors":["DuplicatePrevention::DuplicateSubmissionError"]}` and nothing happens. The
///   docs say a 409 means "the first request was received and responded to" and that its
///   outcome cannot be known, and that a 201 or a 422 on the retry means the first request never
///   arrived: so every request that reached the resource (whatever its answer: 201, 422, 404) has
///   its token remembered, while a request refused before that (401, 429, bad Content-Type or
///   JSON) does not. The window runs from the first sighting; a 409 does not extend it. Tokens
///   are site-wide, not per endpoint.
pub(super) fn write(
    app: &App,
    headers: &HeaderMap,
    body: &Bytes,
    handle: impl FnOnce(&mut Store, &Value) -> Reply,
) -> Response {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let media = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if media != "application/json" {
        return Reply::errors(vec![
            "Invalid Content-Type: send JSON with Content-Type: application/json".into(),
        ])
        .into_response();
    }
    let parsed: Value = if body.iter().all(u8::is_ascii_whitespace) {
        Value::Object(Default::default())
    } else {
        match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(_) => {
                return Reply {
                    status: StatusCode::BAD_REQUEST,
                    body: Some(json!({"errors": ["The request body is not valid JSON."]})),
                }
                .into_response();
            }
        }
    };
    let token = match parsed.get("uniqueness_token") {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    let mut store = app.store();
    if let Some(token) = &token
        && store.token_is_fresh(token)
    {
        return Reply {
            status: StatusCode::CONFLICT,
            body: Some(json!({"errors": ["DuplicatePrevention::DuplicateSubmissionError"]})),
        }
        .into_response();
    }
    let reply = handle(&mut store, &parsed);
    if let Some(token) = token {
        let now = store.now();
        store.tokens.insert(token, now);
    }
    store.record_events();
    reply.into_response()
}

/// [`write`] for the endpoints whose body is optional (a DELETE, the lifecycle POSTs and PUTs):
/// an empty body needs no `Content-Type` and reads as `{}`; any other body is checked as
/// [`write`] checks it.
pub(super) fn write_optional(
    app: &App,
    headers: &HeaderMap,
    body: &Bytes,
    handle: impl FnOnce(&mut Store, &Value) -> Reply,
) -> Response {
    if body.iter().all(u8::is_ascii_whitespace) {
        let mut store = app.store();
        let reply = handle(&mut store, &Value::Object(Default::default()));
        store.record_events();
        return reply.into_response();
    }
    write(app, headers, body, handle)
}

/// The query string as pairs.
pub(super) fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    query
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default()
}

pub(super) fn query_value(pairs: &[(String, String)], key: &str) -> Option<String> {
    pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
}

/// `page` (1-based) and `per_page` (clamped to 200) applied to `items`.
pub(super) fn paginate<T>(
    items: Vec<T>,
    pairs: &[(String, String)],
    default_per_page: usize,
) -> Vec<T> {
    let page = query_value(pairs, "page")
        .and_then(|p| p.trim().parse::<usize>().ok())
        .filter(|p| *p >= 1)
        .unwrap_or(1);
    let per_page = query_value(pairs, "per_page")
        .and_then(|p| p.trim().parse::<usize>().ok())
        .filter(|p| *p >= 1)
        .unwrap_or(default_per_page)
        .min(200);
    items
        .into_iter()
        .skip((page - 1).saturating_mul(per_page))
        .take(per_page)
        .collect()
}

/// The id or `handle:<h>` in a path segment like `123.json` or `handle:gold.json`.
pub(super) fn json_segment(segment: &str) -> Option<&str> {
    segment.strip_suffix(".json").filter(|s| !s.is_empty())
}

pub(super) fn numeric_segment(segment: &str) -> Option<i64> {
    json_segment(segment).and_then(|s| s.parse().ok())
}
