//! The REST resources: query, queryAll, queryMore, sObject PATCH/GET and sObject Collections
//! update. [`dispatch`] serves them both as top-level routes and as Composite subrequests.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State as AxState};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use dealbridge_org::{ApiError, Org, QueryOptions};
use serde_json::{Map, Value, json};

use super::{Cursor, State, auth, lock};

/// The most records an sObject Collections call takes.
pub(super) const MAX_COLLECTION_RECORDS: usize = 200;

/// A REST answer before it becomes HTTP (or a Composite subresponse).
#[derive(Debug, Clone)]
pub(super) struct Reply {
    pub status: u16,
    pub body: Value,
}

impl Reply {
    pub fn ok(body: Value) -> Reply {
        Reply { status: 200, body }
    }

    pub fn no_content() -> Reply {
        Reply {
            status: 204,
            body: Value::Null,
        }
    }

    pub fn error(status: u16, code: &str, message: &str) -> Reply {
        Reply {
            status,
            body: json!([{"message": message, "errorCode": code}]),
        }
    }

    pub fn from_api(e: &ApiError) -> Reply {
        Reply {
            status: e.status,
            body: e.body(),
        }
    }

    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// Where a request goes, parsed from the part of the path after `/services/data/vNN.N`.
pub(super) enum Resource {
    Query {
        soql: Option<String>,
        all: bool,
    },
    QueryMore {
        locator: String,
    },
    Record {
        sobject: String,
        id: String,
    },
    Collection,
    /// `composite/sobjects/{sobject}/{field}`: upsert by an External ID.
    Upsert {
        sobject: String,
        field: String,
    },
    Unknown,
}

pub(super) fn resource(rest: &str, query: Option<&str>) -> Resource {
    let q = || {
        query.and_then(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .find(|(k, _)| k == "q")
                .map(|(_, v)| v.into_owned())
        })
    };
    let segments: Vec<&str> = rest.trim_start_matches('/').split('/').collect();
    match segments.as_slice() {
        ["query"] | ["query", ""] => Resource::Query {
            soql: q(),
            all: false,
        },
        ["queryAll"] | ["queryAll", ""] => Resource::Query {
            soql: q(),
            all: true,
        },
        ["query", locator] | ["queryAll", locator] => Resource::QueryMore {
            locator: (*locator).to_string(),
        },
        ["sobjects", sobject, id] => Resource::Record {
            sobject: (*sobject).to_string(),
            id: (*id).to_string(),
        },
        ["composite", "sobjects"] => Resource::Collection,
        ["composite", "sobjects", sobject, field] => Resource::Upsert {
            sobject: (*sobject).to_string(),
            field: (*field).to_string(),
        },
        _ => Resource::Unknown,
    }
}

pub(super) fn valid_version(version: &str) -> Option<&str> {
    let v = version.strip_prefix('v')?;
    let (major, minor) = v.split_once('.')?;
    let ok = major.len() == 2 && major.chars().all(|c| c.is_ascii_digit()) && minor == "0";
    ok.then_some(v)
}

/// Serves one REST call against the org.
pub(super) fn dispatch(
    state: &State,
    version: &str,
    method: &str,
    resource: Resource,
    body: Option<&Value>,
    batch_size: Option<usize>,
) -> Reply {
    match (method, resource) {
        ("GET", Resource::Query { soql, all }) => match soql {
            None => Reply::error(400, "MALFORMED_QUERY", "A query string has to be specified"),
            Some(soql) => run_query(state, version, &soql, all, batch_size),
        },
        ("GET", Resource::QueryMore { locator }) => next_page(state, version, &locator),
        ("PATCH", Resource::Record { sobject, id }) => match body {
            Some(Value::Object(fields)) => {
                let mut org = lock(&state.org);
                match org.update(Some(&sobject), &id, fields) {
                    Ok(()) => Reply::no_content(),
                    Err(e) => Reply::from_api(&e),
                }
            }
            _ => Reply::error(
                400,
                "JSON_PARSER_ERROR",
                "The request body must be a JSON object of the fields to update",
            ),
        },
        ("GET", Resource::Record { sobject, id }) => {
            let org = lock(&state.org);
            match (org.sobject_of(&id), org.get(&id)) {
                (Some(t), Some(fields)) if t.eq_ignore_ascii_case(&sobject) => {
                    let mut out = Map::new();
                    out.insert(
                        "attributes".into(),
                        json!({"type": t, "url": format!("/services/data/v{version}/sobjects/{t}/{id}")}),
                    );
                    out.extend(fields.clone());
                    Reply::ok(Value::Object(out))
                }
                _ => Reply::error(404, "NOT_FOUND", "The requested resource does not exist"),
            }
        }
        ("PATCH", Resource::Collection) => update_collection(state, body),
        ("PATCH", Resource::Upsert { sobject, field }) => {
            upsert_collection(state, &sobject, &field, body)
        }
        (_, Resource::Unknown) => {
            Reply::error(404, "NOT_FOUND", "The requested resource does not exist")
        }
        (other, _) => Reply::error(
            405,
            "METHOD_NOT_ALLOWED",
            &format!("HTTP Method '{other}' not allowed. Allowed are GET,PATCH"),
        ),
    }
}

fn locator_url(version: &str, cursor: u64, offset: usize) -> String {
    format!("/services/data/v{version}/query/01gSB{cursor:010}-{offset}")
}

/// Splits `rows` into the first page and a cursor for the rest; pages large child results too.
fn paginate(state: &State, version: &str, mut rows: Vec<Value>, batch: usize) -> Value {
    let child_batch = state.settings().child_batch_size.max(1);
    for row in &mut rows {
        page_children(state, version, row, child_batch);
    }
    let total = rows.len();
    let batch = batch.max(1);
    if total <= batch {
        return json!({"totalSize": total, "done": true, "records": rows});
    }
    let rest = rows.split_off(batch);
    let n = state.cursor_seq.fetch_add(1, Ordering::SeqCst) + 1;
    let mut all = rows.clone();
    all.extend(rest);
    lock(&state.cursors).insert(format!("01gSB{n:010}"), Cursor { rows: all });
    json!({"totalSize": total, "done": false, "nextRecordsUrl": locator_url(version, n, batch), "records": rows})
}

fn page_children(state: &State, version: &str, row: &mut Value, batch: usize) {
    let Some(map) = row.as_object_mut() else {
        return;
    };
    for value in map.values_mut() {
        let Some(result) = value.as_object_mut() else {
            continue;
        };
        let Some(Value::Array(children)) = result.get("records") else {
            continue;
        };
        if children.len() <= batch {
            continue;
        }
        let all = children.clone();
        let n = state.cursor_seq.fetch_add(1, Ordering::SeqCst) + 1;
        let first: Vec<Value> = all[..batch].to_vec();
        lock(&state.cursors).insert(format!("01gSB{n:010}"), Cursor { rows: all });
        result.insert("records".into(), Value::Array(first));
        result.insert("done".into(), Value::Bool(false));
        result.insert(
            "nextRecordsUrl".into(),
            Value::String(locator_url(version, n, batch)),
        );
    }
}

fn run_query(state: &State, version: &str, soql: &str, all: bool, batch: Option<usize>) -> Reply {
    let mut options = QueryOptions::new(version);
    options.include_deleted = all;
    let rows = match lock(&state.org).query(soql, &options) {
        Ok(rows) => rows,
        Err(e) => return Reply::from_api(&e),
    };
    let configured = state.settings().batch_size;
    let batch = batch.map_or(configured, |b| b.clamp(200, 2000).min(configured));
    Reply::ok(paginate(state, version, rows, batch))
}

fn next_page(state: &State, version: &str, locator: &str) -> Reply {
    let invalid = || Reply::error(400, "INVALID_QUERY_LOCATOR", "invalid query locator");
    let Some((cursor, offset)) = locator.rsplit_once('-') else {
        return invalid();
    };
    let Ok(offset) = offset.parse::<usize>() else {
        return invalid();
    };
    let cursors = lock(&state.cursors);
    let Some(Cursor { rows }) = cursors.get(cursor) else {
        return invalid();
    };
    if offset >= rows.len() {
        return invalid();
    }
    let batch = state.settings().batch_size.max(1);
    let end = (offset + batch).min(rows.len());
    let page: Vec<Value> = rows[offset..end].to_vec();
    let total = rows.len();
    let mut out = json!({"totalSize": total, "done": end == total, "records": page});
    if end < total {
        let n: u64 = cursor.trim_start_matches("01gSB").parse().unwrap_or(0);
        out["nextRecordsUrl"] = Value::String(locator_url(version, n, end));
    }
    Reply::ok(out)
}

/// What writing one record of a collection call gave: the result's `id` and, on success, its
/// extra fields (`created` for an upsert); or a refusal of the whole call.
enum RecordOutcome {
    Written(Value, Map<String, Value>),
    Refused(Value, ApiError),
    Call(Reply),
}

/// The shape every sObject Collections write shares: the body's checks (a JSON object, at most
/// 200 `records`), `check` on the org before any record (what it answers is handed to `each`),
/// one result per record in order, and `allOrNone`'s rollback (a created record rolled back has
/// no Id).
fn collection<C>(
    state: &State,
    body: Option<&Value>,
    check: impl FnOnce(&Org) -> Result<C, ApiError>,
    mut each: impl FnMut(&mut Org, &C, &Map<String, Value>) -> RecordOutcome,
) -> Reply {
    let Some(body) = body.and_then(Value::as_object) else {
        return Reply::error(
            400,
            "JSON_PARSER_ERROR",
            "The request body must be a JSON object",
        );
    };
    let all_or_none = body
        .get("allOrNone")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let Some(records) = body.get("records").and_then(Value::as_array) else {
        return Reply::error(400, "INVALID_FIELD", "records are required");
    };
    if records.len() > MAX_COLLECTION_RECORDS {
        return Reply::error(
            400,
            "EXCEEDED_ID_LIMIT",
            "record limit reached. cannot submit more than 200 records into this call",
        );
    }
    let mut org = lock(&state.org);
    let checked = match check(&org) {
        Ok(c) => c,
        Err(e) => return Reply::from_api(&e),
    };
    let before = all_or_none.then(|| org.clone());
    let mut results = Vec::with_capacity(records.len());
    let mut failed = false;
    for record in records {
        let Some(fields) = record.as_object() else {
            return Reply::error(
                400,
                "JSON_PARSER_ERROR",
                "each record must be a JSON object",
            );
        };
        match each(&mut org, &checked, fields) {
            RecordOutcome::Written(id, extra) => {
                let mut result = json!({"id": id, "success": true, "errors": []});
                if let Value::Object(r) = &mut result {
                    r.extend(extra);
                }
                results.push(result);
            }
            RecordOutcome::Refused(id, e) => {
                failed = true;
                let errors: Vec<Value> = e
                    .errors
                    .iter()
                    .map(|x| json!({"statusCode": x.error_code, "message": x.message, "fields": x.fields}))
                    .collect();
                results.push(json!({"id": id, "success": false, "errors": errors}));
            }
            RecordOutcome::Call(reply) => return reply,
        }
    }
    if let (true, Some(before)) = (failed, before) {
        *org = before;
        for r in &mut results {
            if r["success"] == Value::Bool(true) {
                r["success"] = Value::Bool(false);
                if r["created"] == Value::Bool(true) {
                    r["id"] = Value::Null;
                }
                r["errors"] = json!([{"statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
                    "message": "Record rolled back because not all records were valid and the request was using AllOrNone header",
                    "fields": []}]);
            }
        }
    }
    Reply::ok(Value::Array(results))
}

/// `PATCH /composite/sobjects`: up to 200 records updated by their `id`.
fn update_collection(state: &State, body: Option<&Value>) -> Reply {
    collection(
        state,
        body,
        |_| Ok(()),
        |org, (), fields| {
            let sobject = fields
                .get("attributes")
                .and_then(|a| a.get("type"))
                .and_then(Value::as_str);
            let Some(sobject) = sobject else {
                return RecordOutcome::Call(Reply::error(
                    400,
                    "INVALID_TYPE",
                    "Must send a concrete entity type.",
                ));
            };
            let id = fields
                .get("id")
                .or_else(|| fields.get("Id"))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let mut changes = fields.clone();
            changes.remove("attributes");
            changes.remove("id");
            changes.remove("Id");
            let outcome = if id.is_empty() {
                Err(ApiError::new(
                    400,
                    "MISSING_ARGUMENT",
                    "Id not specified in an update call",
                ))
            } else {
                org.update(Some(sobject), &id, &changes)
            };
            match outcome {
                Ok(()) => RecordOutcome::Written(Value::String(id), Map::new()),
                Err(e) => RecordOutcome::Refused(Value::String(id), e),
            }
        },
    )
}

/// `PATCH /composite/sobjects/{sobject}/{field}`: up to 200 records upserted by the External ID
/// `field`, answered in order with one UpsertResult each (lifecycle.md §5.1).
///
/// ASSUMED: a record of another type than the URI's, or one carrying an `Id`, fails alone with
/// `INVALID_TYPE` / `INVALID_FIELD`; the real codes are unconfirmed.
fn upsert_collection(state: &State, sobject: &str, field: &str, body: Option<&Value>) -> Reply {
    collection(
        state,
        body,
        |org| {
            org.external_key(sobject, field)
                .map(|(canonical, _)| canonical)
        },
        |org, canonical, fields| {
            let declared = fields
                .get("attributes")
                .and_then(|a| a.get("type"))
                .and_then(Value::as_str);
            let mut changes = fields.clone();
            changes.remove("attributes");
            let outcome = match declared {
                None => Err(ApiError::new(
                    400,
                    "INVALID_TYPE",
                    "Must send a concrete entity type.",
                )),
                Some(t) if !t.eq_ignore_ascii_case(canonical) => Err(ApiError::new(
                    400,
                    "INVALID_TYPE",
                    format!("records must all be of type {canonical}, got {t}"),
                )),
                Some(_) if changes.keys().any(|k| k.eq_ignore_ascii_case("id")) => {
                    Err(ApiError::new(
                        400,
                        "INVALID_FIELD",
                        "Id is not allowed in an upsert by external id; the key field carries the key",
                    ))
                }
                Some(_) => org.upsert(canonical, field, &changes),
            };
            match outcome {
                Ok((id, created)) => {
                    let mut extra = Map::new();
                    extra.insert("created".into(), Value::Bool(created));
                    RecordOutcome::Written(Value::String(id.as_str().to_string()), extra)
                }
                Err(e) => RecordOutcome::Refused(Value::Null, e),
            }
        },
    )
}

/// Authenticates and counts the call against the org's allocation. Salesforce checks the session
/// before the allocation.
pub(super) fn admit(state: &State, headers: &HeaderMap) -> Result<(), Reply> {
    if !auth::authorized(state, headers) {
        return Err(Reply::error(
            401,
            "INVALID_SESSION_ID",
            "Session expired or invalid",
        ));
    }
    let limit = state.settings().api_limit;
    let used = state.api_used.fetch_add(1, Ordering::SeqCst) + 1;
    if used > limit {
        state.api_used.fetch_sub(1, Ordering::SeqCst);
        return Err(Reply::error(
            403,
            "REQUEST_LIMIT_EXCEEDED",
            "TotalRequests Limit exceeded.",
        ));
    }
    Ok(())
}

/// Turns a reply into HTTP with the `Sforce-Limit-Info` header every REST answer carries.
pub(super) fn respond(state: &State, reply: Reply) -> Response {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = if reply.status == 204 {
        (status, Body::empty()).into_response()
    } else {
        (status, Json(reply.body)).into_response()
    };
    let usage = format!(
        "api-usage={}/{}",
        state.api_used.load(Ordering::SeqCst),
        state.settings().api_limit
    );
    if let Ok(v) = HeaderValue::from_str(&usage) {
        response.headers_mut().insert("Sforce-Limit-Info", v);
    }
    response
}

fn batch_size_header(headers: &HeaderMap) -> Option<usize> {
    let value = headers.get("Sforce-Query-Options")?.to_str().ok()?;
    value
        .split(',')
        .find_map(|p| p.trim().strip_prefix("batchSize="))
        .and_then(|n| n.trim().parse().ok())
}

fn serve(
    state: &State,
    headers: &HeaderMap,
    version: &str,
    method: &str,
    resource: Resource,
    body: Option<&Value>,
) -> Response {
    let Some(version) = valid_version(version) else {
        return respond(
            state,
            Reply::error(404, "NOT_FOUND", "The requested resource does not exist"),
        );
    };
    if let Err(reply) = admit(state, headers) {
        return respond(state, reply);
    }
    let reply = dispatch(
        state,
        version,
        method,
        resource,
        body,
        batch_size_header(headers),
    );
    respond(state, reply)
}

fn parse_body(body: &str) -> Result<Option<Value>, Reply> {
    if body.trim().is_empty() {
        return Ok(None);
    }
    serde_json::from_str(body).map(Some).map_err(|e| {
        Reply::error(
            400,
            "JSON_PARSER_ERROR",
            &format!("Unexpected character: {e}"),
        )
    })
}

pub(super) async fn query(
    AxState(state): AxState<Arc<State>>,
    Path(version): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Response {
    let resource = resource("query", q.as_deref());
    serve(&state, &headers, &version, "GET", resource, None)
}

pub(super) async fn query_all(
    AxState(state): AxState<Arc<State>>,
    Path(version): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Response {
    let resource = resource("queryAll", q.as_deref());
    serve(&state, &headers, &version, "GET", resource, None)
}

pub(super) async fn query_more(
    AxState(state): AxState<Arc<State>>,
    Path((version, locator)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    serve(
        &state,
        &headers,
        &version,
        "GET",
        Resource::QueryMore { locator },
        None,
    )
}

pub(super) async fn patch_record(
    AxState(state): AxState<Arc<State>>,
    Path((version, sobject, id)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: String,
) -> Response {
    match parse_body(&body) {
        Ok(value) => serve(
            &state,
            &headers,
            &version,
            "PATCH",
            Resource::Record { sobject, id },
            value.as_ref(),
        ),
        Err(reply) => respond(&state, reply),
    }
}

pub(super) async fn get_record(
    AxState(state): AxState<Arc<State>>,
    Path((version, sobject, id)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    serve(
        &state,
        &headers,
        &version,
        "GET",
        Resource::Record { sobject, id },
        None,
    )
}

pub(super) async fn patch_collection(
    AxState(state): AxState<Arc<State>>,
    Path(version): Path<String>,
    headers: HeaderMap,
    body: String,
) -> Response {
    match parse_body(&body) {
        Ok(value) => serve(
            &state,
            &headers,
            &version,
            "PATCH",
            Resource::Collection,
            value.as_ref(),
        ),
        Err(reply) => respond(&state, reply),
    }
}

pub(super) async fn upsert_collection_route(
    AxState(state): AxState<Arc<State>>,
    Path((version, sobject, field)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: String,
) -> Response {
    match parse_body(&body) {
        Ok(value) => serve(
            &state,
            &headers,
            &version,
            "PATCH",
            Resource::Upsert { sobject, field },
            value.as_ref(),
        ),
        Err(reply) => respond(&state, reply),
    }
}

pub(super) async fn not_found(AxState(state): AxState<Arc<State>>) -> Response {
    respond(
        &state,
        Reply::error(404, "NOT_FOUND", "The requested resource does not exist"),
    )
}
