//! Customers: create, read, lookup by reference, search, and a customer's subscriptions.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State as AxState};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::App;
use super::http::{Reply, numeric_segment, paginate, query_pairs, query_value, write};
use super::state::{Store, ts};
use super::validate::{CUSTOMER_TEXT_FIELDS, country_name, is_blank, state_name, text};

/// Checks a `customer` object and builds the stored (rendered) customer, without saving it.
///
/// Messages for blank required fields and a taken reference are the live ones. The country
/// message is the fake's own wording (ASSUMED refusal: `country` must be an ISO 3166-1 alpha-2
/// code, matched case-insensitively, stored upper-case); `state` is stored as sent.
pub(super) fn build(
    store: &mut Store,
    input: &Map<String, Value>,
) -> Result<Map<String, Value>, Vec<String>> {
    let mut errors = Vec::new();
    for (field, label) in [
        ("first_name", "First name"),
        ("last_name", "Last name"),
        ("email", "Email address"),
    ] {
        if is_blank(input.get(field)) {
            errors.push(format!("{label}: cannot be blank."));
        }
    }
    let mut fields = Map::new();
    for (field, label) in CUSTOMER_TEXT_FIELDS {
        match text(input.get(field)) {
            Ok(v) => {
                let v = v.filter(|s| !s.trim().is_empty());
                fields.insert(
                    field.to_string(),
                    v.map(Value::String).unwrap_or(Value::Null),
                );
            }
            Err(()) => {
                errors.push(format!("{label}: is invalid."));
                fields.insert(field.to_string(), Value::Null);
            }
        }
    }
    if let Some(reference) = fields.get("reference").and_then(Value::as_str)
        && store.customer_by_reference(reference).is_some()
    {
        errors.push("Reference: must be unique - that value has been taken.".into());
    }
    let mut country_label = Value::Null;
    if let Some(country) = fields.get("country").and_then(Value::as_str).map(str::trim) {
        let code = country.to_ascii_uppercase();
        match country_name(&code) {
            Some(name) if code.len() == 2 => {
                country_label = json!(name);
                fields.insert("country".into(), json!(code));
            }
            // ASSUMED: AB's documented format; the refusal and its wording are the fake's.
            _ => errors
                .push("Country: must be a valid ISO 3166-1 alpha-2 country code (e.g. US).".into()),
        }
    }
    // ASSUMED: AB documents `state` as an ISO 3166-2 code but is not known to refuse anything
    // else (orgs without state picklists hold "California" in BillingState), so any text is
    // stored as sent; `state_name` is filled only for a code this fake knows.
    let mut state_label = Value::Null;
    if let (Some(state), Some(country)) = (
        fields.get("state").and_then(Value::as_str).map(str::trim),
        fields.get("country").and_then(Value::as_str),
    ) {
        state_label = state_name(country, state)
            .map(Value::from)
            .unwrap_or(Value::Null);
    }
    let tax_exempt = match input.get("tax_exempt") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) if s == "true" || s == "1" => true,
        Some(Value::String(s)) if s == "false" || s == "0" || s.is_empty() => false,
        Some(_) => {
            errors.push("Tax exempt: is invalid.".into());
            false
        }
    };
    let parent_id = match input.get("parent_id") {
        None | Some(Value::Null) => Value::Null,
        Some(v) => match super::validate::integer(v) {
            Some(id) if store.customer(id).is_some() => json!(id),
            _ => {
                errors.push("Parent: could not be found.".into());
                Value::Null
            }
        },
    };
    if !errors.is_empty() {
        return Err(errors);
    }
    if fields.get("organization").is_none_or(Value::is_null) {
        let name = format!(
            "{} {}",
            fields
                .get("first_name")
                .and_then(Value::as_str)
                .unwrap_or_default(),
            fields
                .get("last_name")
                .and_then(Value::as_str)
                .unwrap_or_default()
        );
        fields.insert("organization".into(), json!(name));
    }
    let now = ts(store.now());
    let id = store.ids.next("customer");
    let mut out = Map::new();
    out.insert("id".into(), json!(id));
    for key in [
        "first_name",
        "last_name",
        "email",
        "cc_emails",
        "organization",
        "reference",
    ] {
        out.insert(key.into(), fields.get(key).cloned().unwrap_or(Value::Null));
    }
    out.insert("created_at".into(), json!(now));
    out.insert("updated_at".into(), json!(now));
    for key in ["address", "address_2", "city", "state"] {
        out.insert(key.into(), fields.get(key).cloned().unwrap_or(Value::Null));
    }
    out.insert("state_name".into(), state_label);
    out.insert(
        "zip".into(),
        fields.get("zip").cloned().unwrap_or(Value::Null),
    );
    out.insert(
        "country".into(),
        fields.get("country").cloned().unwrap_or(Value::Null),
    );
    out.insert("country_name".into(), country_label);
    out.insert(
        "phone".into(),
        fields.get("phone").cloned().unwrap_or(Value::Null),
    );
    out.insert("verified".into(), json!(false));
    out.insert("portal_customer_created_at".into(), Value::Null);
    out.insert("portal_invite_last_sent_at".into(), Value::Null);
    out.insert("portal_invite_last_accepted_at".into(), Value::Null);
    out.insert("tax_exempt".into(), json!(tax_exempt));
    out.insert(
        "vat_number".into(),
        fields.get("vat_number").cloned().unwrap_or(Value::Null),
    );
    out.insert("parent_id".into(), parent_id);
    out.insert(
        "locale".into(),
        fields.get("locale").cloned().unwrap_or(Value::Null),
    );
    out.insert(
        "salesforce_id".into(),
        fields.get("salesforce_id").cloned().unwrap_or(Value::Null),
    );
    out.insert("default_subscription_group_uid".into(), Value::Null);
    out.insert(
        "tax_exempt_reason".into(),
        fields
            .get("tax_exempt_reason")
            .cloned()
            .unwrap_or(Value::Null),
    );
    out.insert("default_auto_renewal_profile_id".into(), Value::Null);
    Ok(out)
}

fn create_in(store: &mut Store, body: &Value) -> Reply {
    let Some(input) = body.get("customer").and_then(Value::as_object) else {
        return Reply::unprocessable(json!({"errors": {"customer": "can't be blank"}}));
    };
    match build(store, input) {
        Ok(customer) => {
            store.customers.push(customer.clone());
            Reply::created(json!({ "customer": customer }))
        }
        Err(errors) => Reply::errors(errors),
    }
}

pub(super) async fn create(
    AxState(app): AxState<Arc<App>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    write(&app, &headers, &body, create_in)
}

pub(super) async fn lookup(AxState(app): AxState<Arc<App>>, RawQuery(query): RawQuery) -> Response {
    let pairs = query_pairs(query.as_deref());
    let store = app.store();
    query_value(&pairs, "reference")
        .and_then(|r| store.customer_by_reference(&r).cloned())
        .map(|c| Reply::ok(json!({ "customer": c })))
        .unwrap_or_else(Reply::not_found)
        .into_response()
}

pub(super) async fn read(AxState(app): AxState<Arc<App>>, Path(file): Path<String>) -> Response {
    let store = app.store();
    numeric_segment(&file)
        .and_then(|id| store.customer(id).cloned())
        .map(|c| Reply::ok(json!({ "customer": c })))
        .unwrap_or_else(Reply::not_found)
        .into_response()
}

/// `q` is a case-insensitive substring match on email, id, organization, reference and names.
/// `direction` (`asc`, the default here, or `desc`) orders by creation; `per_page` defaults
/// to 50.
pub(super) async fn list(AxState(app): AxState<Arc<App>>, RawQuery(query): RawQuery) -> Response {
    let pairs = query_pairs(query.as_deref());
    let store = app.store();
    let q = query_value(&pairs, "q")
        .map(|q| q.trim().to_lowercase())
        .filter(|q| !q.is_empty());
    let mut matched: Vec<Value> = store
        .customers
        .iter()
        .filter(|c| match &q {
            None => true,
            Some(q) => [
                "email",
                "id",
                "organization",
                "reference",
                "first_name",
                "last_name",
            ]
            .iter()
            .any(|key| match c.get(*key) {
                Some(Value::String(s)) => s.to_lowercase().contains(q.as_str()),
                Some(Value::Number(n)) => n.to_string().contains(q.as_str()),
                _ => false,
            }),
        })
        .map(|c| json!({ "customer": c }))
        .collect();
    if query_value(&pairs, "direction").as_deref() == Some("desc") {
        matched.reverse();
    }
    Reply::ok(Value::Array(paginate(matched, &pairs, 50))).into_response()
}

pub(super) async fn subscriptions(
    AxState(app): AxState<Arc<App>>,
    Path(customer_id): Path<String>,
) -> Response {
    let store = app.store();
    let Some(id) = customer_id
        .parse::<i64>()
        .ok()
        .filter(|id| store.customer(*id).is_some())
    else {
        return Reply::not_found().into_response();
    };
    let list: Vec<Value> = store
        .subscriptions
        .iter()
        .filter(|s| s.customer_id == id)
        .map(|s| json!({ "subscription": store.render_subscription(s) }))
        .collect();
    Reply::ok(Value::Array(list)).into_response()
}
