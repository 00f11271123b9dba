//! `POST /composite`: up to 25 subrequests (at most 5 queries or collections) run in order in one
//! API call; `@{ref.path}` references resolved against earlier results; `allOrNone` rollback; the
//! answer is always HTTP 200 with one subresponse per subrequest, unless the request itself is
//! malformed (HTTP 400, nothing executed).

use std::sync::Arc;

use axum::extract::{Path, State as AxState};
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::{Value, json};

use super::rest::{Reply, Resource, admit, dispatch, resource, respond, valid_version};
use super::{State, lock};

const MAX_SUBREQUESTS: usize = 25;
const MAX_QUERIES: usize = 5;

struct Sub {
    method: String,
    url: String,
    reference_id: String,
    body: Option<Value>,
}

fn parse(body: &str) -> Result<(bool, Vec<Sub>), Reply> {
    let bad = |m: &str| Reply::error(400, "JSON_PARSER_ERROR", m);
    let value: Value =
        serde_json::from_str(body).map_err(|e| bad(&format!("Unexpected character: {e}")))?;
    let all_or_none = value
        .get("allOrNone")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let Some(list) = value.get("compositeRequest").and_then(Value::as_array) else {
        return Err(bad("compositeRequest is required"));
    };
    let mut subs = Vec::with_capacity(list.len());
    for item in list {
        let text = |k: &str| item.get(k).and_then(Value::as_str).map(str::to_string);
        let (Some(method), Some(url)) = (text("method"), text("url")) else {
            return Err(bad("Each subrequest needs a method and a url"));
        };
        let Some(reference_id) = text("referenceId") else {
            return Err(Reply::error(
                400,
                "INVALID_INPUT",
                "referenceId is required for each subrequest",
            ));
        };
        let valid_ref = reference_id
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
            && reference_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid_ref {
            return Err(Reply::error(
                400,
                "INVALID_INPUT",
                &format!(
                    "Provided referenceId ({reference_id}) must start with a letter or a number, and it can contain only letters, numbers and underscores (_)."
                ),
            ));
        }
        if subs.iter().any(|s: &Sub| s.reference_id == reference_id) {
            return Err(Reply::error(
                400,
                "INVALID_INPUT",
                &format!("Duplicate referenceId provided in the request: {reference_id}"),
            ));
        }
        subs.push(Sub {
            method: method.to_ascii_uppercase(),
            url,
            reference_id,
            body: item.get("body").cloned(),
        });
    }
    if subs.is_empty() {
        return Err(bad("compositeRequest must not be empty"));
    }
    if subs.len() > MAX_SUBREQUESTS {
        return Err(Reply::error(
            400,
            "LIMIT_EXCEEDED",
            &format!("Composite requests may contain at most {MAX_SUBREQUESTS} subrequests"),
        ));
    }
    Ok((all_or_none, subs))
}

/// Splits `/services/data/vNN.N/rest?query` into (version, rest, query).
fn split_url(url: &str) -> Option<(String, String, Option<String>)> {
    let rest = url.strip_prefix("/services/data/")?;
    let (version, rest) = rest.split_once('/')?;
    let version = valid_version(version)?.to_string();
    let (path, query) = match rest.split_once('?') {
        Some((p, q)) => (p.to_string(), Some(q.to_string())),
        None => (rest.to_string(), None),
    };
    Some((version, format!("/{path}"), query))
}

fn lookup<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    let mut current = value;
    for segment in path.split('.') {
        let (name, index) = match segment.split_once('[') {
            Some((n, i)) => (n, i.strip_suffix(']')?.parse::<usize>().ok()),
            None => (segment, None),
        };
        if !name.is_empty() {
            current = current.get(name)?;
        }
        if let Some(i) = index {
            current = current.get(i)?;
        }
    }
    (!current.is_null()).then_some(current)
}

/// Replaces every `@{ref.path}` in `text`; `encode` URL-encodes the values (for urls).
fn resolve(text: &str, done: &[(String, Reply)], encode: bool) -> Result<String, Reply> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("@{") {
        let Some(len) = rest[start..].find('}') else {
            break;
        };
        let expr = &rest[start + 2..start + len];
        let (reference, path) = expr.split_once('.').unwrap_or((expr, ""));
        let halted = || {
            Reply::error(
                400,
                "PROCESSING_HALTED",
                &format!(
                    "Invalid reference specified. No value for {path} found in {reference}. Provided referenceId ({reference}) must be an earlier subrequest."
                ),
            )
        };
        let Some((_, reply)) = done.iter().find(|(r, _)| r == reference) else {
            return Err(halted());
        };
        if !reply.is_success() {
            return Err(halted());
        }
        let value = lookup(&reply.body, path).ok_or_else(halted)?;
        let text_value = match value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        out.push_str(&rest[..start]);
        if encode {
            out.extend(url::form_urlencoded::byte_serialize(text_value.as_bytes()));
        } else {
            out.push_str(&text_value);
        }
        rest = &rest[start + len + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn resolve_body(body: &Value, done: &[(String, Reply)]) -> Result<Value, Reply> {
    Ok(match body {
        Value::String(s) => Value::String(resolve(s, done, false)?),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|v| resolve_body(v, done))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| Ok((k.clone(), resolve_body(v, done)?)))
                .collect::<Result<_, Reply>>()?,
        ),
        other => other.clone(),
    })
}

fn run(state: &State, sub: &Sub, done: &[(String, Reply)]) -> Reply {
    let url = match resolve(&sub.url, done, true) {
        Ok(u) => u,
        Err(reply) => return reply,
    };
    let body = match sub.body.as_ref().map(|b| resolve_body(b, done)).transpose() {
        Ok(b) => b,
        Err(reply) => return reply,
    };
    let Some((version, path, query)) = split_url(&url) else {
        return Reply::error(
            400,
            "INVALID_INPUT",
            &format!("The url {url} is not a supported resource"),
        );
    };
    let resource = resource(&path, query.as_deref());
    dispatch(state, &version, &sub.method, resource, body.as_ref(), None)
}

pub(super) async fn composite(
    AxState(state): AxState<Arc<State>>,
    Path(version): Path<String>,
    headers: HeaderMap,
    body: String,
) -> Response {
    if valid_version(&version).is_none() {
        return respond(
            &state,
            Reply::error(404, "NOT_FOUND", "The requested resource does not exist"),
        );
    }
    if let Err(reply) = admit(&state, &headers) {
        return respond(&state, reply);
    }
    let (all_or_none, subs) = match parse(&body) {
        Ok(parsed) => parsed,
        Err(reply) => return respond(&state, reply),
    };
    let queries = subs
        .iter()
        .filter(|s| {
            let path = s.url.split('?').next().unwrap_or_default();
            split_url(path).is_some_and(|(_, p, _)| {
                matches!(
                    resource(&p, Some("q=x")),
                    Resource::Query { .. }
                        | Resource::QueryMore { .. }
                        | Resource::Collection
                        | Resource::Upsert { .. }
                )
            })
        })
        .count();
    if queries > MAX_QUERIES {
        return respond(
            &state,
            Reply::error(
                400,
                "LIMIT_EXCEEDED",
                &format!(
                    "Composite requests may contain at most {MAX_QUERIES} query or sObject Collections operations"
                ),
            ),
        );
    }
    let before = all_or_none.then(|| lock(&state.org).clone());
    let mut done: Vec<(String, Reply)> = Vec::with_capacity(subs.len());
    for sub in &subs {
        let reply = run(&state, sub, &done);
        done.push((sub.reference_id.clone(), reply));
    }
    let failed = done.iter().any(|(_, r)| !r.is_success());
    if let (true, Some(before)) = (failed, before) {
        *lock(&state.org) = before;
        let first_failure = done.iter().position(|(_, r)| !r.is_success());
        for (i, (_, reply)) in done.iter_mut().enumerate() {
            if Some(i) != first_failure {
                *reply = Reply::error(
                    400,
                    "PROCESSING_HALTED",
                    "The transaction was rolled back since another operation in the same transaction failed.",
                );
            }
        }
    }
    let items: Vec<Value> = done
        .into_iter()
        .map(|(reference_id, reply)| {
            json!({"body": reply.body, "httpHeaders": {}, "httpStatusCode": reply.status, "referenceId": reference_id})
        })
        .collect();
    respond(&state, Reply::ok(json!({"compositeResponse": items})))
}
