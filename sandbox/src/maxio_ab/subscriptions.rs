//! Subscriptions: create (with components and their price points, a currency, and start
//! dates), read, lookup by reference, list, a subscription's components, and changing the price
//! points of a subscription's components.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State as AxState};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Months, NaiveDate, NaiveDateTime, TimeZone, Utc};
use rust_decimal::Decimal;
use serde_json::{Map, Value, json};

use super::App;
use super::customers;
use super::http::{Reply, numeric_segment, paginate, query_pairs, query_value, write};
use super::price_points::brackets;
use super::state::{
    CancelFields, PricePoint, PricePointType, Product, Store, Subscription, SubscriptionComponent,
    site_offset,
};
use super::validate::{BracketIn, ErrorMap, decimal, integer, pricing, text};

const NO_CUSTOMER: &str = "A Customer must be specified for the subscription to be valid.";
const REFERENCE_TAKEN: &str = "Reference: must be unique - that value has been taken.";
const PAYMENT_METHODS: [&str; 4] = ["automatic", "remittance", "prepaid", "invoice"];

/// Which price point a requested component lands on.
enum PlannedPrice {
    Existing(i64),
    Custom(String, Vec<BracketIn>),
}

struct PlannedComponent {
    component_id: i64,
    handle: String,
    price: PlannedPrice,
    quantity: Decimal,
    unit_balance: i64,
}

/// `component_id` or `price_point_id` as sent: an integer, a numeric string, or `handle:<h>`.
pub(super) fn reference(v: &Value) -> Option<String> {
    match v {
        Value::Number(n) => n.as_i64().map(|n| n.to_string()),
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        _ => None,
    }
}

/// A timestamp as sent: RFC 3339 (`2027-01-15T10:00:00Z`, `…-05:00`), or without an offset
/// (`2027-01-15T10:00:00`, or a date `2027-01-15`, taken as midnight).
///
/// ASSUMED: a time without an offset is in the site's time zone (the zone the API renders its
/// timestamps in), so `2027-01-15` reads back as `2027-01-15T00:00:00-05:00`.
pub(super) fn timestamp(v: &Value) -> Option<DateTime<Utc>> {
    let s = v.as_str()?.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    let naive = NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S")
        .ok()
        .or_else(|| {
            NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
        })?;
    site_offset()
        .from_local_datetime(&naive)
        .single()
        .map(|t| t.with_timezone(&Utc))
}

/// The end of the billing period of `product` that starts at `start`: `interval` months or days
/// later.
pub(super) fn period_end(product: &Product, start: DateTime<Utc>) -> DateTime<Utc> {
    let end = if product.interval_unit == "day" {
        start.checked_add_signed(chrono::Duration::days(i64::from(product.interval)))
    } else {
        start.checked_add_months(Months::new(u32::try_from(product.interval).unwrap_or(1)))
    };
    end.unwrap_or(start)
}

/// The message refusing a price point for a subscription in a non-primary `currency`, if it has
/// to be refused.
///
/// ASSUMED (real behaviour unknown): a price point that does not use the site's exchange rate
/// (`use_site_exchange_rate: false`) must have a price in the subscription's currency for every
/// bracket; one that does (the default, DOC: AB converts at the site's rate) needs none.
pub(super) fn unpriced_in_currency(
    store: &Store,
    component_handle: &str,
    price_point_id: i64,
    currency: &str,
) -> Option<String> {
    if currency == store.currency {
        return None;
    }
    let p = store.price_point(price_point_id)?;
    (!p.use_site_exchange_rate && !p.priced_in(currency)).then(|| {
        format!(
            "{component_handle}: price point {} has no {currency} prices.",
            p.id
        )
    })
}

fn plan_component(
    store: &Store,
    item: &Value,
    errors: &mut Vec<String>,
) -> Option<PlannedComponent> {
    let Some(item) = item.as_object() else {
        errors.push("Components: each component must be an object.".into());
        return None;
    };
    let Some(requested) = item.get("component_id").and_then(reference) else {
        errors.push("Component: cannot be blank.".into());
        return None;
    };
    // Own wording: the reference gives no message for an unknown component.
    let Some(component) = store.component_by_ref(&requested) else {
        errors.push(format!("Component: '{requested}' could not be found."));
        return None;
    };
    let mut quantity = Decimal::ZERO;
    let mut unit_balance = 0;
    let amount = item
        .get("allocated_quantity")
        .filter(|v| !v.is_null())
        .or_else(|| item.get("quantity").filter(|v| !v.is_null()));
    match component.kind {
        "on_off_component" => match (item.get("enabled"), amount) {
            (Some(Value::Bool(on)), _) => {
                quantity = if *on { Decimal::ONE } else { Decimal::ZERO };
            }
            (_, Some(v)) => match decimal(v) {
                Some(q) if q == Decimal::ZERO || q == Decimal::ONE => quantity = q,
                _ => errors.push("Quantity: must be either 1 (on) or 0 (off).".into()),
            },
            _ => {}
        },
        "quantity_based_component" => {
            if let Some(v) = amount {
                match decimal(v) {
                    Some(q) if q.is_sign_negative() && !q.is_zero() => errors.push(format!(
                        "Allocated quantity: must be greater than or equal to 0 ({}).",
                        component.handle
                    )),
                    Some(q) if !q.fract().is_zero() => errors.push(format!(
                        "Allocated quantity: must be a whole number; {} does not allow fractional quantities.",
                        component.handle
                    )),
                    Some(q) => quantity = q.normalize(),
                    None => errors.push(format!(
                        "Allocated quantity: is not a number ({}).",
                        component.handle
                    )),
                }
            }
        }
        _ => {
            if let Some(v) = item.get("unit_balance").filter(|v| !v.is_null()) {
                match integer(v) {
                    Some(n) if n >= 0 => unit_balance = n,
                    _ => errors.push(format!(
                        "Unit balance: must be a whole number greater than or equal to 0 ({}).",
                        component.handle
                    )),
                }
            }
        }
    }
    let default = PlannedPrice::Existing(component.default_price_point_id);
    let price = if let Some(custom) = item.get("custom_price").filter(|v| !v.is_null()) {
        let mut map = ErrorMap::new();
        let priced = pricing(custom.get("pricing_scheme"), custom.get("prices"), &mut map);
        for messages in map.values() {
            for m in messages {
                errors.push(format!("Custom price ({}): {m}", component.handle));
            }
        }
        match priced {
            Some((scheme, prices)) => PlannedPrice::Custom(scheme, prices),
            None => default,
        }
    } else if store.forced_default.contains(&component.handle) {
        default
    } else {
        // The documented quirk: a price point that does not exist, or belongs to another
        // component, is silently replaced by the component's default price point.
        item.get("price_point_id")
            .and_then(reference)
            .and_then(|r| store.price_point_by_ref(component.id, &r, false))
            .map(|p| PlannedPrice::Existing(p.id))
            .unwrap_or(default)
    };
    Some(PlannedComponent {
        component_id: component.id,
        handle: component.handle.clone(),
        price,
        quantity,
        unit_balance,
    })
}

/// True for a quantity as sent (a number or a numeric string) below zero.
pub(super) fn is_negative(v: &Value) -> bool {
    decimal(v).is_some_and(|q| q < Decimal::ZERO)
}

/// Remembers every negative `components[].allocated_quantity` / `components[].quantity` of a
/// subscription create, whatever becomes of the request (see
/// `MaxioAbSandbox::negative_quantities`).
fn audit_negative_quantities(store: &mut Store, body: &Value) {
    let Some(items) = body
        .get("subscription")
        .and_then(|s| s.get("components"))
        .and_then(Value::as_array)
    else {
        return;
    };
    for (i, item) in items.iter().enumerate() {
        let component = item.get("component_id").cloned().unwrap_or(Value::Null);
        for key in ["allocated_quantity", "quantity"] {
            if let Some(v) = item.get(key).filter(|v| is_negative(v)) {
                store.negative_quantities.push(format!(
                    "POST /subscriptions.json components[{i}] (component_id {component}): {key} {v}"
                ));
            }
        }
    }
}

/// Checks everything before changing anything, so a 422 leaves no trace.
///
/// Own wording (no documented text): a missing root key answers
/// `{"errors":{"subscription":"can't be blank"}}` (the customers' documented shape); a missing
/// product `Product: cannot be blank.`; an unknown product `Product: could not be found.`; an
/// unknown component `Component: '<id>' could not be found.`; a bad payment collection method
/// and quantities have their own messages. UNCONFIRMED that subscription references are
/// unique: the fake enforces it with the customers' message.
///
/// ASSUMED (all in the `{"errors":[..]}` shape): a currency that is not one of the site's
/// `Currency: is not one of the allowed values.`; a component listed twice `Component <id> was
/// listed more than once.`; in a non-primary currency, a price point without the site's exchange
/// rate and without prices in it `<component handle>: price point <id> has no <CUR> prices.`; a
/// date that does not parse `Initial billing at: must be a valid date/time` (also `Next billing
/// at`).
fn create_in(store: &mut Store, body: &Value) -> Reply {
    audit_negative_quantities(store, body);
    let Some(input) = body.get("subscription").and_then(Value::as_object) else {
        return Reply::unprocessable(json!({"errors": {"subscription": "can't be blank"}}));
    };
    let mut errors: Vec<String> = Vec::new();
    let mut customer_errors: Vec<String> = Vec::new();

    enum Who {
        Existing(i64),
        New(Map<String, Value>),
    }
    let who = if let Some(v) = input.get("customer_id").filter(|v| !v.is_null()) {
        integer(v)
            .filter(|id| store.customer(*id).is_some())
            .map(Who::Existing)
    } else if let Some(r) = input.get("customer_reference").filter(|v| !v.is_null()) {
        text(Some(r))
            .ok()
            .flatten()
            .and_then(|r| store.customer_by_reference(&r))
            .and_then(|c| c.get("id").and_then(Value::as_i64))
            .map(Who::Existing)
    } else if let Some(attributes) = input.get("customer_attributes").and_then(Value::as_object) {
        match customers::build(store, attributes) {
            Ok(customer) => Some(Who::New(customer)),
            Err(e) => {
                customer_errors = e;
                None
            }
        }
    } else {
        None
    };
    if who.is_none() && customer_errors.is_empty() {
        errors.push(NO_CUSTOMER.into());
    }
    errors.append(&mut customer_errors);

    let product_handle = text(input.get("product_handle")).ok().flatten();
    let product = match (
        product_handle,
        input.get("product_id").filter(|v| !v.is_null()),
    ) {
        (Some(h), _) if !h.trim().is_empty() => store.product_by_handle(h.trim()).map(|p| p.id),
        (_, Some(v)) => integer(v).and_then(|id| store.product(id)).map(|p| p.id),
        _ => {
            errors.push("Product: cannot be blank.".into());
            None
        }
    };
    let product = match product {
        Some(id) => store.product(id).cloned(),
        None => {
            if !errors.iter().any(|e| e.starts_with("Product:")) {
                errors.push("Product: could not be found.".into());
            }
            None
        }
    };

    let method = match text(input.get("payment_collection_method")) {
        Ok(None) => "automatic".to_string(),
        Ok(Some(m)) if PAYMENT_METHODS.contains(&m.as_str()) => {
            // `invoice` is the legacy name of `remittance`.
            if m == "invoice" {
                "remittance".into()
            } else {
                m
            }
        }
        _ => {
            errors.push(
                "Payment collection method: must be one of automatic, remittance, prepaid.".into(),
            );
            "automatic".into()
        }
    };

    let reference = text(input.get("reference"))
        .ok()
        .flatten()
        .filter(|r| !r.trim().is_empty());
    if let Some(r) = &reference
        && store
            .subscriptions
            .iter()
            .any(|s| s.reference.as_deref() == Some(r))
    {
        errors.push(REFERENCE_TAKEN.into());
    }

    let mut planned: Vec<PlannedComponent> = Vec::new();
    match input.get("components") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            let mut repeated: Vec<i64> = Vec::new();
            for item in items {
                if let Some(p) = plan_component(store, item, &mut errors) {
                    // ASSUMED: real AB keeps one entry of a component listed twice (by id,
                    // `handle:` or both); which one, and whether it says anything, is unknown.
                    // The fake refuses, so that a client sending duplicates is caught.
                    if planned.iter().any(|q| q.component_id == p.component_id) {
                        if !repeated.contains(&p.component_id) {
                            repeated.push(p.component_id);
                            errors.push(format!(
                                "Component {} was listed more than once.",
                                p.component_id
                            ));
                        }
                        continue;
                    }
                    planned.push(p);
                }
            }
        }
        Some(_) => errors.push("Components: must be a list.".into()),
    }

    // The subscription's currency. DOC: it must be a site currency, and cannot be changed
    // later; absent means the site's primary currency. ASSUMED: the wording and shape of the
    // refusal, and that a blank value counts as absent.
    let currency = match text(input.get("currency")) {
        Ok(Some(c)) if !c.trim().is_empty() => store.site_currency(&c),
        Ok(_) => Some(store.currency.clone()),
        Err(()) => None,
    };
    match &currency {
        Some(currency) => {
            for p in &planned {
                if let PlannedPrice::Existing(pp) = &p.price
                    && let Some(message) = unpriced_in_currency(store, &p.handle, *pp, currency)
                {
                    errors.push(message);
                }
            }
        }
        None => errors.push("Currency: is not one of the allowed values.".into()),
    }

    // ASSUMED wording for a value that is not a date or time.
    let now = store.now();
    let mut date = |key: &str, label: &str| match input.get(key) {
        None | Some(Value::Null) => None,
        Some(v) => match timestamp(v) {
            Some(t) => Some(t),
            None => {
                errors.push(format!("{label}: must be a valid date/time"));
                None
            }
        },
    };
    let next_billing_at = date("next_billing_at", "Next billing at");
    let initial_billing_at = date("initial_billing_at", "Initial billing at");

    if !errors.is_empty() {
        return Reply::errors(errors);
    }
    let (Some(who), Some(product), Some(currency)) = (who, product, currency) else {
        return Reply::errors(vec![NO_CUSTOMER.into()]);
    };

    let customer_id = match who {
        Who::Existing(id) => id,
        Who::New(customer) => {
            let id = customer
                .get("id")
                .and_then(Value::as_i64)
                .unwrap_or_default();
            store.customers.push(customer);
            id
        }
    };
    let id = store.ids.next("subscription");
    // Dates. A value in the past or now is ASSUMED to mean now.
    // - `initial_billing_at` in the future: `awaiting_signup` until then (CONFIRMED-LIVE), next
    //   assessment then; ASSUMED: not activated, and the period shown is the first one, from
    //   `initial_billing_at`; `next_billing_at` is then ignored.
    // - `next_billing_at` in the future: active now, the first period ends then, nothing is
    //   charged at creation (DOC).
    // - otherwise: active now, the period runs the product's interval from now.
    let future = |t: Option<DateTime<Utc>>| t.filter(|t| *t > now);
    let (state, activated_at, started, ends, next) =
        match (future(initial_billing_at), future(next_billing_at)) {
            (Some(t), _) => ("awaiting_signup", None, t, period_end(&product, t), t),
            (None, Some(t)) => ("active", Some(now), now, t, t),
            (None, None) => {
                let end = period_end(&product, now);
                ("active", Some(now), now, end, end)
            }
        };
    let subscription = Subscription {
        id,
        customer_id,
        product_id: product.id,
        reference,
        state,
        previous_state: state,
        payment_collection_method: method,
        activated_at,
        current_period_started_at: started,
        current_period_ends_at: ends,
        next_assessment_at: next,
        net_terms: input.get("net_terms").cloned().unwrap_or(Value::Null),
        currency,
        created_at: now,
        updated_at: now,
        cancellation: CancelFields::default(),
    };
    for p in planned {
        let price_point_id = match p.price {
            PlannedPrice::Existing(pp) => pp,
            PlannedPrice::Custom(scheme, prices) => {
                let pp = store.ids.next("price_point");
                let prices = brackets(store, prices);
                store.price_points.push(PricePoint {
                    id: pp,
                    component_id: p.component_id,
                    kind: PricePointType::Custom,
                    name: "Custom Pricing".into(),
                    handle: None,
                    pricing_scheme: scheme,
                    prices,
                    subscription_id: Some(id),
                    tax_included: false,
                    use_site_exchange_rate: true,
                    interval: Value::Null,
                    interval_unit: Value::Null,
                    currency_prices: Vec::new(),
                    created_at: now,
                });
                pp
            }
        };
        // `force_default_price_point` applies to the next subscription that gets the component.
        store.forced_default.remove(&p.handle);
        let row_id = store.ids.next("subscription_component");
        store.subscription_components.push(SubscriptionComponent {
            id: row_id,
            subscription_id: id,
            component_id: p.component_id,
            price_point_id,
            allocated_quantity: p.quantity,
            unit_balance: p.unit_balance,
            created_at: now,
            updated_at: now,
        });
    }
    let rendered = store.render_subscription(&subscription);
    store.subscriptions.push(subscription);
    Reply::created(json!({ "subscription": rendered }))
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
        .and_then(|r| {
            store
                .subscriptions
                .iter()
                .find(|s| s.reference.as_deref() == Some(r.as_str()))
        })
        .map(|s| Reply::ok(json!({ "subscription": store.render_subscription(s) })))
        .unwrap_or_else(Reply::not_found)
        .into_response()
}

pub(super) async fn read(AxState(app): AxState<Arc<App>>, Path(file): Path<String>) -> Response {
    let store = app.store();
    numeric_segment(&file)
        .and_then(|id| store.subscription(id))
        .map(|s| Reply::ok(json!({ "subscription": store.render_subscription(s) })))
        .unwrap_or_else(Reply::not_found)
        .into_response()
}

/// Bare array of wrapped subscriptions, oldest first, `per_page` default 20.
pub(super) async fn list(AxState(app): AxState<Arc<App>>, RawQuery(query): RawQuery) -> Response {
    let pairs = query_pairs(query.as_deref());
    let store = app.store();
    let state = query_value(&pairs, "state");
    let mut items: Vec<Value> = store
        .subscriptions
        .iter()
        .filter(|s| state.as_deref().is_none_or(|st| s.state == st))
        .map(|s| json!({ "subscription": store.render_subscription(s) }))
        .collect();
    if query_value(&pairs, "direction").as_deref() == Some("desc") {
        items.reverse();
    }
    Reply::ok(Value::Array(paginate(items, &pairs, 20))).into_response()
}

/// `[{"component": {...}}, ...]`; `price_point_ids=not_null` keeps only the components on the
/// subscription (see `Store::render_subscription_components`).
pub(super) async fn components(
    AxState(app): AxState<Arc<App>>,
    Path(subscription_id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let pairs = query_pairs(query.as_deref());
    let only_priced = query_value(&pairs, "price_point_ids").as_deref() == Some("not_null");
    let store = app.store();
    let Some(s) = subscription_id
        .parse::<i64>()
        .ok()
        .and_then(|id| store.subscription(id))
    else {
        return Reply::not_found().into_response();
    };
    let list: Vec<Value> = store
        .render_subscription_components(s, only_priced)
        .into_iter()
        .map(|c| json!({ "component": c }))
        .collect();
    Reply::ok(Value::Array(list)).into_response()
}

/// The price point `sent` names for component `component_id` of subscription `subscription_id`
/// in a price-point change: `"_default"` (the component's default), an id (number or numeric
/// string), or a handle (DOC: bare, e.g. `"wholesale-handle"`; also accepted `handle:<h>`).
/// Catalog and default price points of the component count, and the subscription's own custom
/// ones (ASSUMED).
pub(super) fn price_point_of(
    store: &Store,
    subscription_id: i64,
    component_id: i64,
    sent: &Value,
) -> Option<i64> {
    let r = reference(sent)?;
    if r == "_default" {
        return store
            .component(component_id)
            .map(|c| c.default_price_point_id);
    }
    let r = if r.parse::<i64>().is_ok() || r.starts_with("handle:") {
        r
    } else {
        format!("handle:{r}")
    };
    store
        .price_point_by_ref(component_id, &r, true)
        .filter(|p| p.kind != PricePointType::Custom || p.subscription_id == Some(subscription_id))
        .map(|p| p.id)
}

/// `POST /subscriptions/{sid}/price_points.json`
/// `{"components":[{"component_id":997,"price_point":1022}, ...]}` → 200 with the request's
/// `components` echoed (DOC), and each component's price point on the subscription changed
/// (its quantity kept).
///
/// - DOC: a price point that is not one of the component's (unknown, or another component's)
///   gets 422 `{"errors":[{"component_id":…,"price_point":…,"message":"Price Point does not
///   belong to Component"}]}`, echoing what was sent. ASSUMED: an unknown component gets the
///   same answer; all items are checked and nothing changes when one is refused.
/// - ASSUMED: a component not on the subscription is accepted, and its price point is kept for
///   when it is allocated (it then lists with quantity 0 and this price point).
/// - ASSUMED: for a subscription in a non-primary currency, a price point that does not use the
///   site's exchange rate and has no price in that currency for every bracket is refused as in
///   subscription create, in the same object shape.
/// - ASSUMED: a missing or empty `components` gets 422 `{"errors":["Components: cannot be
///   blank."]}`. 404 for an unknown subscription.
fn change_price_points_in(store: &mut Store, subscription: &str, body: &Value) -> Reply {
    let Some(s) = subscription
        .parse::<i64>()
        .ok()
        .and_then(|id| store.subscription(id))
    else {
        return Reply::not_found();
    };
    let (subscription_id, currency) = (s.id, s.currency.clone());
    let Some(items) = body
        .get("components")
        .and_then(Value::as_array)
        .filter(|items| !items.is_empty())
    else {
        return Reply::errors(vec!["Components: cannot be blank.".into()]);
    };
    let mut errors: Vec<Value> = Vec::new();
    let mut changes: Vec<(i64, i64)> = Vec::new();
    for item in items {
        let component_sent = item.get("component_id").cloned().unwrap_or(Value::Null);
        let price_point_sent = item.get("price_point").cloned().unwrap_or(Value::Null);
        let refuse = |message: String| {
            json!({
                "component_id": component_sent,
                "price_point": price_point_sent,
                "message": message,
            })
        };
        let Some(component) = reference(&component_sent)
            .and_then(|r| store.component_by_ref(&r))
            .cloned()
        else {
            errors.push(refuse("Price Point does not belong to Component".into()));
            continue;
        };
        let Some(price_point_id) =
            price_point_of(store, subscription_id, component.id, &price_point_sent)
        else {
            errors.push(refuse("Price Point does not belong to Component".into()));
            continue;
        };
        if let Some(message) =
            unpriced_in_currency(store, &component.handle, price_point_id, &currency)
        {
            errors.push(refuse(message));
            continue;
        }
        changes.push((component.id, price_point_id));
    }
    if !errors.is_empty() {
        return Reply::unprocessable(json!({ "errors": errors }));
    }
    for (component_id, price_point_id) in changes {
        store.set_subscription_price_point(subscription_id, component_id, price_point_id);
    }
    Reply::ok(json!({ "components": items }))
}

pub(super) async fn change_price_points(
    AxState(app): AxState<Arc<App>>,
    Path(subscription_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    write(&app, &headers, &body, |store, body| {
        change_price_points_in(store, &subscription_id, body)
    })
}
