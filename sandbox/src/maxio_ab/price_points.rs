//! The site, components, and component price points.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State as AxState};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::http::{Reply, json_segment, paginate, query_pairs, query_value, write};
use super::state::{Bracket, PricePoint, PricePointType, Store, ts};
use super::validate::{
    BracketIn, ErrorMap, HANDLE_TAKEN, add, error_map_json, handle_from_name, pricing, text,
    valid_handle,
};
use super::{App, lock};

pub(super) async fn site(AxState(app): AxState<Arc<App>>) -> Response {
    let store = lock(&app.store);
    let s = &app.settings;
    Reply::ok(json!({"site": {
        "id": 1,
        "name": "dealbridge sandbox",
        "subdomain": s.subdomain,
        "currency": "USD",
        "seller_id": 1,
        "non_primary_currencies": [],
        "relationship_invoicing_enabled": true,
        "schedule_subscription_cancellation_enabled": false,
        "customer_hierarchy_enabled": false,
        "whopays_enabled": false,
        "whopays_default_payer": "self-ui",
        "allocation_settings": {
            "upgrade_charge": "prorated",
            "downgrade_credit": "none",
            "accrue_charge": "true",
        },
        "default_payment_collection_method": "automatic",
        "organization_address": {
            "street": null, "line2": null, "city": null, "state": null, "zip": null,
            "country": "US", "name": "dealbridge", "phone": null,
        },
        "tax_configuration": {
            "kind": "custom",
            "destination_address": "shipping_then_billing",
            "fully_integrated": false,
        },
        "net_terms": {
            "default_net_terms": 0,
            "automatic_net_terms": 0,
            "remittance_net_terms": 0,
            "net_terms_on_remittance_signups_enabled": false,
            "custom_net_terms_enabled": false,
        },
        "test": true,
        "created_at": ts(store.family.created_at),
    }}))
    .into_response()
}

pub(super) async fn component_lookup(
    AxState(app): AxState<Arc<App>>,
    RawQuery(query): RawQuery,
) -> Response {
    let pairs = query_pairs(query.as_deref());
    let store = lock(&app.store);
    query_value(&pairs, "handle")
        .and_then(|h| {
            store
                .component_by_handle(&h)
                .map(|c| store.render_component(c))
        })
        .map(|c| Reply::ok(json!({ "component": c })))
        .unwrap_or_else(Reply::not_found)
        .into_response()
}

/// `GET /components/{id or handle:h}.json`.
pub(super) async fn component_read(
    AxState(app): AxState<Arc<App>>,
    Path(file): Path<String>,
) -> Response {
    let store = lock(&app.store);
    json_segment(&file)
        .and_then(|r| store.component_by_ref(r).map(|c| store.render_component(c)))
        .map(|c| Reply::ok(json!({ "component": c })))
        .unwrap_or_else(Reply::not_found)
        .into_response()
}

/// The brackets as stored, with fresh ids.
pub(super) fn brackets(store: &mut Store, prices: Vec<BracketIn>) -> Vec<Bracket> {
    prices
        .into_iter()
        .map(|b| Bracket {
            id: store.ids.next("price"),
            starting_quantity: b.starting_quantity,
            ending_quantity: b.ending_quantity,
            unit_price: b.unit_price,
        })
        .collect()
}

fn create_in(store: &mut Store, component_id: i64, body: &Value) -> Reply {
    let Some(input) = body.get("price_point").and_then(Value::as_object) else {
        return Reply::unprocessable(
            json!({"errors": {"price_point": ["Price point: cannot be blank."]}}),
        );
    };
    let mut errors = ErrorMap::new();
    let name = match text(input.get("name")) {
        Ok(Some(n)) if !n.trim().is_empty() => Some(n.trim().to_string()),
        _ => {
            add(&mut errors, "name", "Name: cannot be blank.");
            None
        }
    };
    let taken = |store: &Store, h: &str| {
        store
            .price_points
            .iter()
            .any(|p| p.component_id == component_id && p.handle.as_deref() == Some(h))
    };
    // UNCONFIRMED whether handles are unique per component or site-wide: per component here.
    let handle = match text(input.get("handle")) {
        Ok(Some(h)) if !h.trim().is_empty() => {
            if !valid_handle(&h) {
                add(
                    &mut errors,
                    "handle",
                    "Handle: must start with a letter or number and may only contain lowercase letters, numbers, or the characters '.', ':', '-', and '_'.",
                );
                None
            } else if taken(store, &h) {
                add(&mut errors, "handle", HANDLE_TAKEN);
                None
            } else {
                Some(h)
            }
        }
        Ok(_) => None,
        Err(()) => {
            add(&mut errors, "handle", "Handle: is invalid.");
            None
        }
    };
    let priced = pricing(
        input.get("pricing_scheme"),
        input.get("prices"),
        &mut errors,
    );
    let flag = |key: &str, default: bool, errors: &mut ErrorMap| match input.get(key) {
        None | Some(Value::Null) => default,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            add(errors, key, &format!("{key}: must be true or false."));
            default
        }
    };
    let tax_included = flag("tax_included", false, &mut errors);
    let use_site_exchange_rate = flag("use_site_exchange_rate", true, &mut errors);
    let (Some(name), Some((scheme, prices)), true) = (name, priced, errors.is_empty()) else {
        return Reply::unprocessable(error_map_json(&errors));
    };
    // Without a handle the server makes one from the name (as the documented examples show),
    // adding `-2`, `-3`, ... when taken.
    let handle = handle.unwrap_or_else(|| {
        let base = handle_from_name(&name);
        let base = if base.is_empty() || !valid_handle(&base) {
            format!("price-point-{}", store.price_points.len() + 1)
        } else {
            base
        };
        let mut candidate = base.clone();
        let mut n = 1;
        while taken(store, &candidate) {
            n += 1;
            candidate = format!("{base}-{n}");
        }
        candidate
    });
    let id = store.ids.next("price_point");
    let prices = brackets(store, prices);
    let price_point = PricePoint {
        id,
        component_id,
        // Price points created through this endpoint are catalog price points; `custom` ones
        // belong to a subscription.
        kind: PricePointType::Catalog,
        name,
        handle: Some(handle),
        pricing_scheme: scheme,
        prices,
        subscription_id: None,
        tax_included,
        use_site_exchange_rate,
        interval: input.get("interval").cloned().unwrap_or(Value::Null),
        interval_unit: input.get("interval_unit").cloned().unwrap_or(Value::Null),
        created_at: store.now(),
    };
    let rendered = store.render_price_point(&price_point, false);
    store.price_points.push(price_point);
    Reply::created(json!({ "price_point": rendered }))
}

/// `POST /components/{component_id}/price_points.json`, 201 on success (the spec's status labels
/// look swapped; 201 matches the other creates).
///
/// UNCONFIRMED whether the path accepts `handle:<h>` for the component here (the spec types it
/// as an integer): the fake accepts both. An unknown component is a 404.
pub(super) async fn create(
    AxState(app): AxState<Arc<App>>,
    Path(component): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    write(&app, &headers, &body, |store, body| {
        match store.component_by_ref(&component).map(|c| c.id) {
            Some(id) => create_in(store, id, body),
            None => Reply::not_found(),
        }
    })
}

/// `GET /components/{cid}/price_points.json`: `{"price_points": [...]}`, `per_page` default 20.
/// `filter[type]=catalog,default,custom` narrows the types; without it every type is listed
/// (UNCONFIRMED default).
pub(super) async fn list(
    AxState(app): AxState<Arc<App>>,
    Path(component): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let pairs = query_pairs(query.as_deref());
    let store = lock(&app.store);
    let Some(component_id) = store.component_by_ref(&component).map(|c| c.id) else {
        return Reply::not_found().into_response();
    };
    let types: Option<Vec<String>> = query_value(&pairs, "filter[type]").map(|t| {
        t.split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect()
    });
    let currency_prices = query_value(&pairs, "currency_prices").as_deref() == Some("true");
    let items: Vec<Value> = store
        .price_points
        .iter()
        .filter(|p| p.component_id == component_id)
        .filter(|p| {
            types
                .as_ref()
                .is_none_or(|t| t.iter().any(|t| t == p.kind.as_str()))
        })
        .map(|p| store.render_price_point(p, currency_prices))
        .collect();
    Reply::ok(json!({ "price_points": paginate(items, &pairs, 20) })).into_response()
}

/// `GET /components/{cid}/price_points/{id or handle:h}.json`.
pub(super) async fn read(
    AxState(app): AxState<Arc<App>>,
    Path((component, file)): Path<(String, String)>,
    RawQuery(query): RawQuery,
) -> Response {
    let pairs = query_pairs(query.as_deref());
    let currency_prices = query_value(&pairs, "currency_prices").as_deref() == Some("true");
    let store = lock(&app.store);
    store
        .component_by_ref(&component)
        .map(|c| c.id)
        .zip(json_segment(&file))
        .and_then(|(cid, reference)| store.price_point_by_ref(cid, reference, true))
        .map(|p| Reply::ok(json!({ "price_point": store.render_price_point(p, currency_prices) })))
        .unwrap_or_else(Reply::not_found)
        .into_response()
}
