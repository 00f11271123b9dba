//! What every endpoint shares (the tenant path segment, token auth, DRF's error and page shapes)
//! and the handlers.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::state::Kind;
use super::{App, lock};

/// Page size when `page_size` is absent or not a positive integer (UNCONFIRMED; the fake uses the
/// cap), and the most records a page holds whatever `page_size` asks for.
pub(super) const PAGE_SIZE: usize = 100;

/// A JSON answer, `application/json` as DRF's renderer labels it.
pub(super) fn reply(status: StatusCode, body: Value) -> Response {
    let mut response = (status, body.to_string()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// DRF's 404 for an unknown id (older DRF wording; 3.15+ says "No Contract matches the given
/// query.").
pub(super) fn not_found() -> Response {
    reply(StatusCode::NOT_FOUND, json!({"detail": "Not found."}))
}

/// A path no route serves (or another tenant's): Django's own 404 page, not DRF's JSON. No
/// trailing-slash redirect either (UNCONFIRMED whether `APPEND_SLASH` is on).
pub(super) fn no_such_page() -> Response {
    let mut response = (
        StatusCode::NOT_FOUND,
        "<h1>Not Found</h1><p>The requested resource was not found on this server.</p>",
    )
        .into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    response
}

/// 401 with DRF's `TokenAuthentication` messages and its `WWW-Authenticate: Token` challenge.
fn unauthorized(detail: &str) -> Response {
    let mut response = reply(StatusCode::UNAUTHORIZED, json!({ "detail": detail }));
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Token"));
    response
}

/// DRF's `TokenAuthentication`: `Authorization: Token <key>`, the keyword in any case. A missing
/// header or another scheme (`Bearer`, `Basic`) is "not provided"; a wrong key is "Invalid token.".
/// `Some(detail)`: refused.
fn refusal(app: &App, headers: &HeaderMap) -> Option<&'static str> {
    const NOT_PROVIDED: &str = "Authentication credentials were not provided.";
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Some(NOT_PROVIDED);
    };
    let text = String::from_utf8_lossy(value.as_bytes());
    let parts: Vec<&str> = text.split_whitespace().collect();
    match parts.as_slice() {
        [] => Some(NOT_PROVIDED),
        [keyword, ..] if !keyword.eq_ignore_ascii_case("token") => Some(NOT_PROVIDED),
        [_] => Some("Invalid token header. No credentials provided."),
        [_, _, _, ..] => Some("Invalid token header. Token string should not contain spaces."),
        [_, key] if *key == app.settings.api_token => None,
        [_, _] => Some("Invalid token."),
    }
}

/// Route middleware (inside the request log): another tenant's path is Django's 404, then token
/// auth, as DRF authenticates before it looks at the method or the id.
pub(super) async fn gate(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    let account = request
        .uri()
        .path()
        .trim_start_matches('/')
        .split('/')
        .next();
    if account != Some(app.settings.account.as_str()) {
        return no_such_page();
    }
    if let Some(detail) = refusal(&app, request.headers()) {
        return unauthorized(detail);
    }
    next.run(request).await
}

/// DRF's 405 for a method the route does not serve.
pub(super) async fn method_not_allowed(method: Method) -> Response {
    reply(
        StatusCode::METHOD_NOT_ALLOWED,
        json!({ "detail": format!("Method \"{method}\" not allowed.") }),
    )
}

fn query_pairs(uri: &Uri) -> Vec<(String, String)> {
    uri.query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default()
}

/// The request's absolute URL with `page` set to `page` (or removed for `None`), the query sorted
/// by key as DRF's `replace_query_param` / `remove_query_param` leave it.
fn page_url(base: &str, pairs: &[(String, String)], page: Option<usize>) -> String {
    let mut grouped: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (key, value) in pairs {
        grouped.entry(key).or_default().push(value);
    }
    let page_text = page.map(|p| p.to_string());
    grouped.remove("page");
    if let Some(p) = &page_text {
        grouped.insert("page", vec![p]);
    }
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    for (key, values) in grouped {
        for value in values {
            query.append_pair(key, value);
        }
    }
    let query = query.finish();
    if query.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{query}")
    }
}

/// DRF's `PageNumberPagination` over `items`: `page` (1-based, or `last`), `page_size` capped at
/// [`PAGE_SIZE`]; a page past the end (or not a number) is 404 `{"detail":"Invalid page."}`,
/// except that page 1 of nothing is an empty page.
fn paginate(items: Vec<Value>, pairs: &[(String, String)], base: &str) -> Response {
    let last = |key: &str| {
        pairs
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    };
    let page_size = last("page_size")
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|n| *n > 0)
        .map_or(PAGE_SIZE, |n| n.min(PAGE_SIZE));
    let count = items.len();
    let pages = count.div_ceil(page_size).max(1);
    let page = match last("page") {
        None | Some("") => Some(1),
        Some("last") => Some(pages),
        Some(text) => text
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|p| (1..=pages).contains(p)),
    };
    let Some(page) = page else {
        return reply(StatusCode::NOT_FOUND, json!({"detail": "Invalid page."}));
    };
    let results: Vec<Value> = items
        .into_iter()
        .skip((page - 1) * page_size)
        .take(page_size)
        .collect();
    let next = (page < pages).then(|| page_url(base, pairs, Some(page + 1)));
    let previous = match page {
        1 => None,
        2 => Some(page_url(base, pairs, None)),
        _ => Some(page_url(base, pairs, Some(page - 1))),
    };
    reply(
        StatusCode::OK,
        json!({"count": count, "next": next, "previous": previous, "results": results}),
    )
}

/// `http://{Host}{path}`: DRF builds page links from the request's own host.
fn absolute(app: &App, headers: &HeaderMap, uri: &Uri) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map_or_else(|| app.authority.clone(), str::to_string);
    format!("http://{host}{}", uri.path())
}

fn list(app: &App, kind: Kind, headers: &HeaderMap, uri: &Uri) -> Response {
    let pairs = query_pairs(uri);
    // A tenant without a filter ignores it, as DRF ignores any parameter it does not know.
    let filters: Vec<(String, String)> = pairs
        .iter()
        .filter(|(k, _)| !app.settings.unsupported_filters.contains(k))
        .cloned()
        .collect();
    let listed = lock(&app.store).list(kind, &filters);
    match listed {
        Ok(items) => paginate(items, &pairs, &absolute(app, headers, uri)),
        Err(errors) => reply(StatusCode::BAD_REQUEST, errors),
    }
}

pub(super) async fn list_customers(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    list(&app, Kind::Customers, &headers, &uri)
}

pub(super) async fn list_contracts(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    list(&app, Kind::Contracts, &headers, &uri)
}

/// A detail id: anything but an integer is simply not found, as in DRF.
fn read(app: &App, kind: Kind, id: &str) -> Response {
    let found = id
        .parse::<i64>()
        .ok()
        .and_then(|id| lock(&app.store).read(kind, id));
    match found {
        Some(record) => reply(StatusCode::OK, record),
        None => not_found(),
    }
}

pub(super) async fn read_customer(
    State(app): State<Arc<App>>,
    Path((_account, id)): Path<(String, String)>,
) -> Response {
    read(&app, Kind::Customers, &id)
}

pub(super) async fn read_contract(
    State(app): State<Arc<App>>,
    Path((_account, id)): Path<(String, String)>,
) -> Response {
    read(&app, Kind::Contracts, &id)
}

/// `PATCH /contracts/{id}/`: a partial JSON body, answered with the whole updated contract.
///
/// As DRF's parsers do: `application/json` bodies are parsed (400 `{"detail":"JSON parse error -
/// ..."}` when malformed); another media type is 415; a body sent without any `Content-Type` is
/// not parsed at all, so the PATCH changes nothing but `modified`. The 404 comes before the body
/// is validated, as DRF looks the object up first.
pub(super) async fn patch_contract(
    State(app): State<Arc<App>>,
    Path((_account, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Ok(id) = id.parse::<i64>() else {
        return not_found();
    };
    if lock(&app.store).read(Kind::Contracts, id).is_none() {
        return not_found();
    }
    let media = headers
        .get(header::CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let parsed = match media {
        None => json!({}),
        Some(media) => {
            let essence = media
                .split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase();
            if essence != "application/json" {
                return reply(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    json!({"detail": format!("Unsupported media type \"{media}\" in request.")}),
                );
            }
            if body.iter().all(u8::is_ascii_whitespace) {
                json!({})
            } else {
                match serde_json::from_slice::<Value>(&body) {
                    Ok(v) => v,
                    Err(e) => {
                        return reply(
                            StatusCode::BAD_REQUEST,
                            json!({"detail": format!("JSON parse error - {e}")}),
                        );
                    }
                }
            }
        }
    };
    let outcome = lock(&app.store).patch_contract(id, &parsed);
    match outcome {
        None => not_found(),
        Some(Ok(contract)) => reply(StatusCode::OK, contract),
        Some(Err(errors)) => reply(StatusCode::BAD_REQUEST, errors),
    }
}
