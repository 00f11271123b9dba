//! Component allocations: setting the quantity (and optionally the price point) of a quantity
//! or on/off component on a subscription, and listing a component's allocations.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State as AxState};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use rust_decimal::Decimal;
use serde_json::{Value, json};

use super::App;
use super::http::{Reply, query_pairs, query_value, write};
use super::state::{Allocation, Store};
use super::subscriptions::{is_negative, price_point_of, unpriced_in_currency};
use super::validate::{decimal, text};

/// The site's allocation settings (`GET /site.json` `site.allocation_settings`), which apply
/// when neither the allocation nor the component says otherwise (DOC resolution order:
/// allocation → component default → site; the seeded components have no defaults).
pub(super) const SITE_UPGRADE_CHARGE: &str = "prorated";
pub(super) const SITE_DOWNGRADE_CREDIT: &str = "none";
pub(super) const SITE_ACCRUE_CHARGE: bool = true;

const CHARGE_SCHEMES: [&str; 3] = ["full", "prorated", "none"];
/// DOC: the list endpoint answers the 50 newest allocations per page.
const PAGE_SIZE: usize = 50;

const NO_QUANTITY: &str = "Quantity: cannot be blank.";
const NO_CHANGE: &str = "One or more allocation changes are required.";
const ON_OFF_QUANTITY: &str = "Quantity: must be either 1 (on) or 0 (off).";
const NOT_ALLOCATABLE: &str = "Allocations can only be updated for quantity and on/off components.";

/// One item of the documented `{"errors":[{"kind":"allocation","component_id":N,"on":…,
/// "message":…}]}` shape.
fn allocation_error(component_id: i64, on: &str, message: &str) -> Value {
    json!({"kind": "allocation", "component_id": component_id, "on": on, "message": message})
}

/// A boolean as sent: `true`/`false`, or their text (as Rails would take them).
fn flag(v: Option<&Value>) -> Result<Option<bool>, ()> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(Value::String(s)) if s == "true" || s == "1" => Ok(Some(true)),
        Some(Value::String(s)) if s == "false" || s == "0" => Ok(Some(false)),
        Some(_) => Err(()),
    }
}

/// `POST /subscriptions/{sid}/components/{cid or handle:h}/allocations.json`
/// `{"allocation":{"quantity", "price_point_id"?, "memo"?, "upgrade_charge"?,
/// "downgrade_credit"?, "accrue_charge"?, "initiate_dunning"?}}` → 200 `{"allocation":{...}}`
/// (the spec's status; the live status is UNCONFIRMED).
///
/// - DOC: `quantity` is the new total; it becomes the component's quantity on the subscription,
///   and `price_point_id` (id or handle, also `handle:<h>` and `_default`) its price point; without
///   one the component keeps its price point, or gets its default one. A component not yet on
///   the subscription can be allocated (CONFIRMED-LIVE).
/// - DOC: a missing quantity gets 422 `{"errors":["Quantity: cannot be blank."]}`; a metered or
///   event-based component `{"errors":[{"kind":"allocation","component_id":N,"on":"base",
///   "message":"Allocations can only be updated for quantity and on/off components."}]}`.
/// - CONFIRMED-LIVE: an on/off quantity other than 0 or 1 gets the same shape, `"on":"quantity"`,
///   `"Quantity: must be either 1 (on) or 0 (off)."`.
/// - ASSUMED (same shape, own wording): a quantity that is not a number, a negative one, a
///   fractional one (no seeded component allows fractional quantities), a price point that is
///   not one of the component's (`"on":"price_point_id"`, the price-point change's message),
///   `upgrade_charge`/`downgrade_credit` other than `full`, `prorated`, `none` (or null/blank),
///   a non-boolean `accrue_charge`/`initiate_dunning`, and, for a subscription in a non-primary
///   currency, a new price point with no price in that currency while it does not use the
///   site's exchange rate.
/// - ASSUMED: the same quantity and price point as now (for a component not on the subscription:
///   quantity 0 on its default price point) gets the reference's likely no-op answer, 422
///   `{"errors":["One or more allocation changes are required."]}`.
/// - Allocations are not idempotent: every accepted call is recorded. 404 for an unknown
///   subscription or component.
fn create_in(store: &mut Store, subscription: &str, component: &str, body: &Value) -> Reply {
    if let Some(v) = body
        .get("allocation")
        .and_then(|a| a.get("quantity"))
        .filter(|v| is_negative(v))
    {
        store.negative_quantities.push(format!(
            "POST /subscriptions/{subscription}/components/{component}/allocations.json: quantity {v}"
        ));
    }
    let Some(s) = subscription
        .parse::<i64>()
        .ok()
        .and_then(|id| store.subscription(id))
    else {
        return Reply::not_found();
    };
    let (subscription_id, currency) = (s.id, s.currency.clone());
    let Some(c) = store.component_by_ref(component).cloned() else {
        return Reply::not_found();
    };
    if !matches!(c.kind, "quantity_based_component" | "on_off_component") {
        return Reply::unprocessable(
            json!({"errors": [allocation_error(c.id, "base", NOT_ALLOCATABLE)]}),
        );
    }
    let input = body.get("allocation").and_then(Value::as_object);
    let field = |key: &str| input.and_then(|i| i.get(key)).filter(|v| !v.is_null());
    let Some(sent) = field("quantity").filter(|v| v.as_str().is_none_or(|s| !s.trim().is_empty()))
    else {
        return Reply::errors(vec![NO_QUANTITY.into()]);
    };

    let mut errors: Vec<Value> = Vec::new();
    let mut refuse = |on: &str, message: &str| errors.push(allocation_error(c.id, on, message));
    let quantity = match (c.kind, decimal(sent)) {
        ("on_off_component", Some(q)) if q == Decimal::ZERO || q == Decimal::ONE => Some(q),
        ("on_off_component", _) => {
            refuse("quantity", ON_OFF_QUANTITY);
            None
        }
        (_, None) => {
            refuse("quantity", "Quantity: is not a number.");
            None
        }
        (_, Some(q)) if q.is_sign_negative() && !q.is_zero() => {
            refuse("quantity", "Quantity: must be greater than or equal to 0.");
            None
        }
        (_, Some(q)) if !q.fract().is_zero() => {
            refuse(
                "quantity",
                &format!(
                    "Quantity: must be a whole number; {} does not allow fractional quantities.",
                    c.handle
                ),
            );
            None
        }
        (_, Some(q)) => Some(q.normalize()),
    };
    let requested_price_point = match field("price_point_id") {
        None => None,
        Some(v) => {
            let found = price_point_of(store, subscription_id, c.id, v);
            if found.is_none() {
                refuse("price_point_id", "Price Point does not belong to Component");
            }
            found
        }
    };
    let mut scheme = |key: &str, label: &str, default: &str| match text(field(key)) {
        Ok(None) => Some(default.to_string()),
        Ok(Some(v)) if v.trim().is_empty() => Some(default.to_string()),
        Ok(Some(v)) if CHARGE_SCHEMES.contains(&v.trim()) => Some(v.trim().to_string()),
        _ => {
            refuse(
                key,
                &format!("{label}: must be one of full, prorated, none."),
            );
            None
        }
    };
    let upgrade_charge = scheme("upgrade_charge", "Upgrade charge", SITE_UPGRADE_CHARGE);
    let downgrade_credit = scheme(
        "downgrade_credit",
        "Downgrade credit",
        SITE_DOWNGRADE_CREDIT,
    );
    let accrue_charge = flag(field("accrue_charge")).unwrap_or_else(|()| {
        refuse("accrue_charge", "Accrue charge: must be true or false.");
        None
    });
    let initiate_dunning = flag(field("initiate_dunning")).unwrap_or_else(|()| {
        refuse(
            "initiate_dunning",
            "Initiate dunning: must be true or false.",
        );
        None
    });
    let memo = text(field("memo")).unwrap_or_else(|()| {
        refuse("memo", "Memo: is invalid.");
        None
    });

    let row = store.subscription_component(subscription_id, c.id);
    let previous_quantity = row.map(|r| r.allocated_quantity).unwrap_or(Decimal::ZERO);
    let previous_price_point = row.map(|r| r.price_point_id);
    let price_point = requested_price_point
        .or(previous_price_point)
        .unwrap_or(c.default_price_point_id);
    if previous_price_point != Some(price_point)
        && let Some(message) = unpriced_in_currency(store, &c.handle, price_point, &currency)
    {
        refuse("price_point_id", &message);
    }
    let (Some(quantity), Some(upgrade_charge), Some(downgrade_credit), true) = (
        quantity,
        upgrade_charge,
        downgrade_credit,
        errors.is_empty(),
    ) else {
        return Reply::unprocessable(json!({ "errors": errors }));
    };
    if quantity == previous_quantity
        && price_point == previous_price_point.unwrap_or(c.default_price_point_id)
    {
        return Reply::errors(vec![NO_CHANGE.into()]);
    }

    let now = store.now();
    let row = store.set_subscription_price_point(subscription_id, c.id, price_point);
    row.allocated_quantity = quantity;
    let allocation = Allocation {
        id: store.ids.next("allocation"),
        subscription_id,
        component_id: c.id,
        quantity,
        previous_quantity,
        price_point_id: price_point,
        previous_price_point_id: previous_price_point,
        memo,
        upgrade_charge,
        downgrade_credit,
        accrue_charge: accrue_charge.unwrap_or(SITE_ACCRUE_CHARGE),
        initiate_dunning: initiate_dunning.unwrap_or(false),
        created_at: now,
    };
    let rendered = store.render_allocation(&allocation);
    store.allocations.push(allocation);
    Reply::ok(json!({ "allocation": rendered }))
}

pub(super) async fn create(
    AxState(app): AxState<Arc<App>>,
    Path((subscription, component)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    write(&app, &headers, &body, |store, body| {
        create_in(store, &subscription, &component, body)
    })
}

/// `GET /subscriptions/{sid}/components/{cid or handle:h}/allocations.json?page=` → bare array
/// `[{"allocation":{...}}]`, newest first, 50 a page (DOC). ASSUMED shape of the documented
/// "invalid page: 0" refusal: 422 `{"errors":["invalid page: 0"]}`. 404 for an unknown
/// subscription or component.
pub(super) async fn list(
    AxState(app): AxState<Arc<App>>,
    Path((subscription, component)): Path<(String, String)>,
    RawQuery(query): RawQuery,
) -> Response {
    let pairs = query_pairs(query.as_deref());
    let store = app.store();
    let Some(subscription_id) = subscription
        .parse::<i64>()
        .ok()
        .and_then(|id| store.subscription(id))
        .map(|s| s.id)
    else {
        return Reply::not_found().into_response();
    };
    let Some(component_id) = store.component_by_ref(&component).map(|c| c.id) else {
        return Reply::not_found().into_response();
    };
    let page = match query_value(&pairs, "page") {
        None => 1,
        Some(p) => match p.trim().parse::<usize>() {
            Ok(n) if n >= 1 => n,
            _ => return Reply::errors(vec![format!("invalid page: {p}")]).into_response(),
        },
    };
    let items: Vec<Value> = store
        .allocations
        .iter()
        .rev()
        .filter(|a| a.subscription_id == subscription_id && a.component_id == component_id)
        .skip((page - 1).saturating_mul(PAGE_SIZE))
        .take(PAGE_SIZE)
        .map(|a| json!({ "allocation": store.render_allocation(a) }))
        .collect();
    Reply::ok(Value::Array(items)).into_response()
}
