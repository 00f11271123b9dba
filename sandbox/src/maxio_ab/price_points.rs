//! The site, components, component price points, and their prices in the site's other
//! currencies.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State as AxState};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use rust_decimal::Decimal;
use serde_json::{Value, json};

use super::App;
use super::allocations::{SITE_ACCRUE_CHARGE, SITE_DOWNGRADE_CREDIT, SITE_UPGRADE_CHARGE};
use super::http::{Reply, json_segment, paginate, query_pairs, query_value, write};
use super::state::{
    Bracket, CurrencyPrice, PricePoint, PricePointType, Store, render_currency_price, ts,
};
use super::validate::{
    BracketIn, ErrorMap, HANDLE_TAKEN, MAX_PRICE_DECIMALS, add, decimal, error_map_json,
    handle_from_name, integer, pricing, text, valid_handle,
};

pub(super) async fn site(AxState(app): AxState<Arc<App>>) -> Response {
    let store = app.store();
    let s = &app.settings;
    Reply::ok(json!({"site": {
        "id": 1,
        "name": "dealbridge sandbox",
        "subdomain": s.subdomain,
        "currency": store.currency,
        "seller_id": 1,
        "non_primary_currencies": store.non_primary_currencies,
        "relationship_invoicing_enabled": true,
        "schedule_subscription_cancellation_enabled": false,
        "customer_hierarchy_enabled": false,
        "whopays_enabled": false,
        "whopays_default_payer": "self-ui",
        "allocation_settings": {
            "upgrade_charge": SITE_UPGRADE_CHARGE,
            "downgrade_credit": SITE_DOWNGRADE_CREDIT,
            "accrue_charge": SITE_ACCRUE_CHARGE.to_string(),
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
    let store = app.store();
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
    let store = app.store();
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
        currency_prices: Vec::new(),
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
    let store = app.store();
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
    let store = app.store();
    store
        .component_by_ref(&component)
        .map(|c| c.id)
        .zip(json_segment(&file))
        .and_then(|(cid, reference)| store.price_point_by_ref(cid, reference, true))
        .map(|p| Reply::ok(json!({ "price_point": store.render_price_point(p, currency_prices) })))
        .unwrap_or_else(Reply::not_found)
        .into_response()
}

/// DOC: currency prices are "not allowed on custom (subscription-specific) price points";
/// ASSUMED wording and the `base` key.
const CUSTOM_HAS_NO_CURRENCY_PRICES: &str =
    "Currency prices cannot be defined on custom (subscription-specific) price points.";
/// DOC: the `base` message of a price-point update naming foreign price ids; ASSUMED for a
/// currency price naming a bracket (or, on update, a currency price) not of this price point.
const NOT_OF_PRICE_POINT: &str = "all prices must belong to the price point";
/// DOC under PUT; ASSUMED on create for a second price of one bracket in one currency.
const PRICING_EXISTS: &str = "Pricing already exists for this currency.";
const CURRENCY_BLANK: &str = "Currency: cannot be blank.";
const CURRENCY_NOT_ALLOWED: &str = "Currency: is not one of the allowed values.";

/// The `currency_prices` list of a request, or the 422 for a missing or empty one (ASSUMED
/// wording, error-map shape).
fn currency_price_items(body: &Value) -> Result<&Vec<Value>, Reply> {
    match body.get("currency_prices") {
        Some(Value::Array(items)) if !items.is_empty() => Ok(items),
        _ => Err(Reply::unprocessable(
            json!({"errors": {"currency_prices": ["Currency prices: cannot be blank."]}}),
        )),
    }
}

/// A non-primary currency of the site, checked under `currency_prices[i].currency`. DOC: the key
/// and the two messages (a blank currency gets both). ASSUMED: the primary currency is not an
/// allowed value (its prices are the brackets' own).
fn checked_currency(
    store: &Store,
    v: Option<&Value>,
    key: &str,
    errors: &mut ErrorMap,
) -> Option<String> {
    match text(v) {
        Ok(Some(c)) if !c.trim().is_empty() => {
            let code = store
                .site_currency(&c)
                .filter(|code| *code != store.currency);
            if code.is_none() {
                add(errors, key, CURRENCY_NOT_ALLOWED);
            }
            code
        }
        _ => {
            add(errors, key, CURRENCY_BLANK);
            add(errors, key, CURRENCY_NOT_ALLOWED);
            None
        }
    }
}

/// A price, checked under `currency_prices[i].price`: a number or numeric string, at least 0,
/// at most 8 decimals (ASSUMED: the bracket rules; own wording).
fn checked_price(v: Option<&Value>, key: &str, errors: &mut ErrorMap) -> Option<Decimal> {
    match v {
        None | Some(Value::Null) => {
            add(errors, key, "Price: cannot be blank.");
            None
        }
        Some(v) => match decimal(v) {
            Some(d) if d.is_sign_negative() && !d.is_zero() => {
                add(errors, key, "Price: must be greater than or equal to 0.");
                None
            }
            Some(d) if d.normalize().scale() > MAX_PRICE_DECIMALS => {
                add(errors, key, "Price: may have at most 8 decimal places.");
                None
            }
            Some(d) => Some(d.normalize()),
            None => {
                add(errors, key, "Price: is not a number.");
                None
            }
        },
    }
}

/// The index of a catalog or default price point, or the reply refusing the request: 404 for an
/// unknown id, 422 for a custom price point.
fn currency_priced_point(store: &Store, price_point: &str) -> Result<usize, Reply> {
    let index = price_point
        .parse::<i64>()
        .ok()
        .and_then(|id| store.price_points.iter().position(|p| p.id == id))
        .ok_or_else(Reply::not_found)?;
    if store.price_points[index].kind == PricePointType::Custom {
        return Err(Reply::unprocessable(
            json!({"errors": {"base": [CUSTOM_HAS_NO_CURRENCY_PRICES]}}),
        ));
    }
    Ok(index)
}

/// `POST /price_points/{id}/currency_prices.json`
/// `{"currency_prices":[{"currency","price","price_id"}, ...]}` (DOC: one per bracket) → 200
/// `{"currency_prices":[...]}`, the prices created, in the order sent (ASSUMED: only those, not
/// the price point's earlier ones). All or nothing: any error creates none.
///
/// ASSUMED: a request need not cover every bracket (a subscription in that currency is refused
/// while a bracket has no price and the price point does not use the site's exchange rate).
fn currency_prices_create_in(store: &mut Store, price_point: &str, body: &Value) -> Reply {
    let index = match currency_priced_point(store, price_point) {
        Ok(i) => i,
        Err(reply) => return reply,
    };
    let items = match currency_price_items(body) {
        Ok(items) => items,
        Err(reply) => return reply,
    };
    let mut errors = ErrorMap::new();
    let mut planned: Vec<(String, Decimal, i64)> = Vec::new();
    {
        let p = &store.price_points[index];
        for (i, item) in items.iter().enumerate() {
            let Some(item) = item.as_object() else {
                add(
                    &mut errors,
                    &format!("currency_prices[{i}]"),
                    "Currency price: must be an object.",
                );
                continue;
            };
            let currency = checked_currency(
                store,
                item.get("currency"),
                &format!("currency_prices[{i}].currency"),
                &mut errors,
            );
            let price = checked_price(
                item.get("price"),
                &format!("currency_prices[{i}].price"),
                &mut errors,
            );
            let bracket = item
                .get("price_id")
                .and_then(integer)
                .filter(|id| p.prices.iter().any(|b| b.id == *id));
            if bracket.is_none() {
                add(&mut errors, "base", NOT_OF_PRICE_POINT);
            }
            let (Some(currency), Some(price), Some(bracket)) = (currency, price, bracket) else {
                continue;
            };
            let exists = p
                .currency_prices
                .iter()
                .any(|c| c.price_id == bracket && c.currency == currency)
                || planned
                    .iter()
                    .any(|(c, _, b)| *b == bracket && *c == currency);
            if exists {
                add(&mut errors, "base", PRICING_EXISTS);
                continue;
            }
            planned.push((currency, price, bracket));
        }
    }
    if !errors.is_empty() {
        return Reply::unprocessable(error_map_json(&errors));
    }
    let mut created = Vec::new();
    for (currency, price, price_id) in planned {
        created.push(CurrencyPrice {
            id: store.ids.next("currency_price"),
            currency,
            price,
            price_id,
        });
    }
    let p = &mut store.price_points[index];
    p.currency_prices.extend(created.iter().cloned());
    let p = &store.price_points[index];
    let rendered: Vec<Value> = created
        .iter()
        .map(|c| render_currency_price(p, c))
        .collect();
    Reply::ok(json!({ "currency_prices": rendered }))
}

/// `PUT /price_points/{id}/currency_prices.json` `{"currency_prices":[{"id","price"}, ...]}`
/// (DOC) → 200 `{"currency_prices":[...]}`, the prices updated (ASSUMED: only those). A
/// `currency` may also be sent; changing it to one the bracket already has a price in is the
/// documented 422 "Pricing already exists for this currency.". ASSUMED: an `id` that is not a
/// currency price of this price point gets `{"errors":{"base":["all prices must belong to the
/// price point"]}}`. All or nothing.
fn currency_prices_update_in(store: &mut Store, price_point: &str, body: &Value) -> Reply {
    let index = match currency_priced_point(store, price_point) {
        Ok(i) => i,
        Err(reply) => return reply,
    };
    let items = match currency_price_items(body) {
        Ok(items) => items,
        Err(reply) => return reply,
    };
    let mut errors = ErrorMap::new();
    let mut planned: Vec<(i64, Option<String>, Option<Decimal>)> = Vec::new();
    {
        let p = &store.price_points[index];
        for (i, item) in items.iter().enumerate() {
            let Some(item) = item.as_object() else {
                add(
                    &mut errors,
                    &format!("currency_prices[{i}]"),
                    "Currency price: must be an object.",
                );
                continue;
            };
            let Some(current) = item
                .get("id")
                .and_then(integer)
                .and_then(|id| p.currency_prices.iter().find(|c| c.id == id))
            else {
                add(&mut errors, "base", NOT_OF_PRICE_POINT);
                continue;
            };
            let price = match item.get("price") {
                None => None,
                v => checked_price(v, &format!("currency_prices[{i}].price"), &mut errors),
            };
            let currency = match item.get("currency") {
                None => None,
                v => checked_currency(
                    store,
                    v,
                    &format!("currency_prices[{i}].currency"),
                    &mut errors,
                ),
            };
            if let Some(currency) = &currency
                && *currency != current.currency
                && p.currency_prices
                    .iter()
                    .any(|c| c.price_id == current.price_id && c.currency == *currency)
            {
                add(&mut errors, "base", PRICING_EXISTS);
            }
            planned.push((current.id, currency, price));
        }
    }
    if !errors.is_empty() {
        return Reply::unprocessable(error_map_json(&errors));
    }
    let p = &mut store.price_points[index];
    let mut updated = Vec::new();
    for (id, currency, price) in planned {
        if let Some(c) = p.currency_prices.iter_mut().find(|c| c.id == id) {
            if let Some(currency) = currency {
                c.currency = currency;
            }
            if let Some(price) = price {
                c.price = price;
            }
            updated.push(c.clone());
        }
    }
    let p = &store.price_points[index];
    let rendered: Vec<Value> = updated
        .iter()
        .map(|c| render_currency_price(p, c))
        .collect();
    Reply::ok(json!({ "currency_prices": rendered }))
}

pub(super) async fn currency_prices_create(
    AxState(app): AxState<Arc<App>>,
    Path(price_point): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    write(&app, &headers, &body, |store, body| {
        currency_prices_create_in(store, &price_point, body)
    })
}

pub(super) async fn currency_prices_update(
    AxState(app): AxState<Arc<App>>,
    Path(price_point): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    write(&app, &headers, &body, |store, body| {
        currency_prices_update_in(store, &price_point, body)
    })
}
