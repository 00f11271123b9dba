//! The end of a subscription's life (`lifecycle.md` §3.5): cancel now or at a scheduled time
//! (`DELETE /subscriptions/{id}.json`), cancel at the end of the period
//! (`POST /subscriptions/{id}/delayed_cancel.json`), withdraw that
//! (`DELETE /subscriptions/{id}/delayed_cancel.json`), and reactivate
//! (`PUT /subscriptions/{id}/reactivate.json`).
//!
//! Delayed and scheduled cancellations take effect when the virtual clock passes their time
//! (`Store::settle`, applied on every use of the store).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State as AxState};
use axum::http::HeaderMap;
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use super::App;
use super::http::{Reply, numeric_segment, write_optional};
use super::state::{CancelFields, MERCHANT_API, Store};
use super::subscriptions::{period_end, timestamp};
use super::validate::text;

/// CONFIRMED-LIVE status (422), body as the reference gives it.
const ALREADY_CANCELED: &str = "The subscription is already canceled";
/// DOC limits, in characters.
const REASON_CODE_LIMIT: usize = 255;
const MESSAGE_LIMIT: usize = 65_535;
/// DOC text of the refused reactivation.
const NOT_REACTIVATABLE: &str = "Cannot reactivate a subscription that is not marked \"Canceled\", \"Unpaid\", or \"Trial Ended\".";
/// DOC text of a withdrawn delayed cancel.
const NO_LONGER_CANCELED: &str = "This subscription will no longer be canceled";
/// ASSUMED: the text of an accepted delayed cancel (UNCONFIRMED in the reference).
const WILL_BE_CANCELED: &str =
    "This subscription will be canceled at the end of the current billing period.";
/// ASSUMED wording (own), naming the site feature a scheduled cancellation needs.
const NEEDS_FEATURE: &str = "Scheduled cancellation is not enabled for this site: turn on the \"Schedule Subscription Cancellation\" feature to use cancel_at_end_of_period or scheduled_cancellation_at.";
/// ASSUMED wording (own): DOC says a scheduled cancellation is not for prepaid subscriptions.
const NOT_FOR_PREPAID: &str = "Scheduled cancellation is not available for prepaid subscriptions.";
/// ASSUMED wording (own): DOC says a delayed cancel is refused while past due.
const PAST_DUE: &str =
    "A subscription that is past due cannot be canceled at the end of the period.";

/// The `cancellation_message` and `reason_code` of a request, checked.
struct Reason {
    message: Option<String>,
    reason_code: Option<String>,
}

/// The optional `{"subscription":{...}}` of a cancel or delayed cancel: an empty object when
/// absent or null; `Err` (DOC text `subscription must be an Object`, ASSUMED `{"errors":[..]}`
/// shape) when it is something else.
fn options(body: &Value) -> Result<Map<String, Value>, Reply> {
    match body.get("subscription") {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(o)) => Ok(o.clone()),
        Some(_) => Err(Reply::errors(vec!["subscription must be an Object".into()])),
    }
}

/// DOC size limits, each with its documented message (ASSUMED: both are listed when both are
/// over, in the `{"errors":[..]}` shape). ASSUMED: a number is taken as its text, and an object
/// or list is refused as `<field>: must be a string`.
fn reason(input: &Map<String, Value>) -> Result<Reason, Reply> {
    let mut errors = Vec::new();
    let mut field = |key: &str, limit: usize| match text(input.get(key)) {
        Ok(v) => {
            if v.as_ref().is_some_and(|v| v.chars().count() > limit) {
                errors.push(format!("{key} size cannot be greater than {limit}"));
            }
            v
        }
        Err(()) => {
            errors.push(format!("{key}: must be a string"));
            None
        }
    };
    let reason_code = field("reason_code", REASON_CODE_LIMIT);
    let message = field("cancellation_message", MESSAGE_LIMIT);
    if errors.is_empty() {
        Ok(Reason {
            message,
            reason_code,
        })
    } else {
        Err(Reply::errors(errors))
    }
}

/// A boolean as sent (`true`/`false`, or their text); `None` when absent, null or unreadable
/// (ASSUMED lenient: an unreadable value counts as not sent).
fn flag(v: Option<&Value>) -> Option<bool> {
    match v? {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s == "true" || s == "1" => Some(true),
        Value::String(s) if s == "false" || s == "0" => Some(false),
        Value::Number(n) => n.as_i64().map(|n| n != 0),
        _ => None,
    }
}

fn render(store: &Store, id: i64) -> Reply {
    match store.subscription(id) {
        Some(s) => Reply::ok(json!({ "subscription": store.render_subscription(s) })),
        None => Reply::not_found(),
    }
}

/// Cancels subscription `id` now, through the API.
fn cancel_now(store: &mut Store, id: i64, reason: Reason) {
    let now = store.now();
    if let Some(s) = store.subscription_mut(id) {
        s.previous_state = s.state;
        s.state = "canceled";
        s.updated_at = now;
        // ASSUMED: cancelling now drops any pending (delayed or scheduled) cancellation.
        s.cancellation = CancelFields {
            canceled_at: Some(now),
            cancellation_message: reason.message,
            cancellation_method: Some(MERCHANT_API),
            reason_code: reason.reason_code,
            ..CancelFields::default()
        };
    }
}

/// `DELETE /subscriptions/{id}.json` with an optional `{"subscription":{"cancellation_message",
/// "reason_code", "cancel_at_end_of_period", "scheduled_cancellation_at"}}`.
///
/// - Without the last two (or with `cancel_at_end_of_period: false`): cancels now → 200
///   `{"subscription":{state:"canceled",...}}` with `cancellation_message` and `reason_code`
///   echoed (any `reason_code` is accepted) (CONFIRMED-LIVE), `previous_state` the old state,
///   `canceled_at` now, `cancellation_method` `merchant_api` (ASSUMED value).
/// - Already canceled: 422 `{"error":"The subscription is already canceled"}` (CONFIRMED-LIVE
///   status; body as the reference gives it). ASSUMED: this is checked before the body.
/// - DOC size limits: `reason_code` over 255 characters, `cancellation_message` over 65535:
///   422 `"reason_code size cannot be greater than 255"`, `"cancellation_message size cannot be
///   greater than 65535"`; a `subscription` that is not an object `"subscription must be an
///   Object"` (ASSUMED shape `{"errors":[..]}` for all three). Nothing changes.
/// - `cancel_at_end_of_period: true` or a `scheduled_cancellation_at` need the site feature
///   "Schedule Subscription Cancellation" (DOC). Without it ([`super::AbSettings`]
///   `schedule_cancellation` off): 422 `{"errors":[<a sentence naming the feature>]}` (ASSUMED:
///   refused rather than cancelled now or silently ignored), and nothing changes. With it, 200
///   with the subscription still in its state, and:
///   - `cancel_at_end_of_period: true` does what a delayed cancel does
///     (`cancel_at_end_of_period` true, `delayed_cancel_at` = `current_period_ends_at`)
///     (ASSUMED);
///   - `scheduled_cancellation_at` is recorded; when the clock passes it, the subscription is
///     canceled. ASSUMED: a time at or before now cancels now; one that does not parse gets 422
///     `Scheduled cancellation at: must be a valid date/time`; both fields together are both
///     kept and the earlier time wins; a prepaid subscription (DOC: not for prepaid) gets 422
///     with own wording; the message and reason code are recorded when the cancellation is
///     scheduled.
/// - 404 for an unknown subscription.
fn cancel_in(store: &mut Store, file: &str, body: &Value) -> Reply {
    let Some((id, state, prepaid, period_ends)) = numeric_segment(file)
        .and_then(|id| store.subscription(id))
        .map(|s| {
            (
                s.id,
                s.state,
                s.payment_collection_method == "prepaid",
                s.current_period_ends_at,
            )
        })
    else {
        return Reply::not_found();
    };
    if state == "canceled" {
        return Reply::unprocessable(json!({ "error": ALREADY_CANCELED }));
    }
    let input = match options(body) {
        Ok(input) => input,
        Err(reply) => return reply,
    };
    let reason = match reason(&input) {
        Ok(reason) => reason,
        Err(reply) => return reply,
    };
    let at_period_end = flag(input.get("cancel_at_end_of_period")) == Some(true);
    let scheduled = input
        .get("scheduled_cancellation_at")
        .filter(|v| !v.is_null() && v.as_str().is_none_or(|s| !s.trim().is_empty()));
    if !at_period_end && scheduled.is_none() {
        cancel_now(store, id, reason);
        return render(store, id);
    }
    if !store.schedule_cancellation {
        return Reply::errors(vec![NEEDS_FEATURE.into()]);
    }
    if prepaid {
        return Reply::errors(vec![NOT_FOR_PREPAID.into()]);
    }
    let scheduled: Option<DateTime<Utc>> = match scheduled {
        None => None,
        Some(v) => match timestamp(v) {
            Some(t) => Some(t),
            None => {
                return Reply::errors(vec![
                    "Scheduled cancellation at: must be a valid date/time".into(),
                ]);
            }
        },
    };
    let now = store.now();
    if !at_period_end && scheduled.is_some_and(|t| t <= now) {
        cancel_now(store, id, reason);
        return render(store, id);
    }
    if let Some(s) = store.subscription_mut(id) {
        let c = &mut s.cancellation;
        c.cancellation_message = reason.message;
        c.reason_code = reason.reason_code;
        if at_period_end {
            c.cancel_at_end_of_period = true;
            c.delayed_cancel_at = Some(period_ends);
        }
        if scheduled.is_some() {
            c.scheduled_cancellation_at = scheduled;
        }
        s.updated_at = now;
    }
    // A time already passed (with `cancel_at_end_of_period`) takes effect at once.
    store.settle();
    render(store, id)
}

pub(super) async fn cancel(
    AxState(app): AxState<Arc<App>>,
    Path(file): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    write_optional(&app, &headers, &body, |store, body| {
        cancel_in(store, &file, body)
    })
}

/// `POST /subscriptions/{id}/delayed_cancel.json` with the cancel's optional body →
/// 200 `{"message": ...}` (DOC status; the text is UNCONFIRMED, the fake's is ASSUMED):
/// `cancel_at_end_of_period` becomes true and `delayed_cancel_at` the end of the current period
/// (`current_period_ends_at`); when the clock passes it the subscription is canceled. A
/// `cancellation_message` / `reason_code` is recorded (size limits as for a cancel).
///
/// - DOC: refused while past due: 422 `{"errors":[..]}` (own wording, ASSUMED shape).
/// - ASSUMED: refused when already canceled with the cancel's answer, 422 `{"error":"The
///   subscription is already canceled"}`.
/// - ASSUMED: no site feature is needed (DOC lists none), a repeat is accepted again, and
///   `cancel_at_end_of_period`/`scheduled_cancellation_at` in the body are ignored.
/// - 404 for an unknown subscription.
fn delayed_cancel_in(store: &mut Store, subscription: &str, body: &Value) -> Reply {
    let Some((id, state, period_ends)) = subscription
        .parse::<i64>()
        .ok()
        .and_then(|id| store.subscription(id))
        .map(|s| (s.id, s.state, s.current_period_ends_at))
    else {
        return Reply::not_found();
    };
    if state == "canceled" {
        return Reply::unprocessable(json!({ "error": ALREADY_CANCELED }));
    }
    if state == "past_due" {
        return Reply::errors(vec![PAST_DUE.into()]);
    }
    let input = match options(body) {
        Ok(input) => input,
        Err(reply) => return reply,
    };
    let reason = match reason(&input) {
        Ok(reason) => reason,
        Err(reply) => return reply,
    };
    let now = store.now();
    if let Some(s) = store.subscription_mut(id) {
        let c = &mut s.cancellation;
        c.cancel_at_end_of_period = true;
        c.delayed_cancel_at = Some(period_ends);
        if reason.message.is_some() {
            c.cancellation_message = reason.message;
        }
        if reason.reason_code.is_some() {
            c.reason_code = reason.reason_code;
        }
        s.updated_at = now;
    }
    // A period that already ended (the fake does not renew) cancels at once.
    store.settle();
    Reply::ok(json!({ "message": WILL_BE_CANCELED }))
}

pub(super) async fn delayed_cancel(
    AxState(app): AxState<Arc<App>>,
    Path(subscription): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    write_optional(&app, &headers, &body, |store, body| {
        delayed_cancel_in(store, &subscription, body)
    })
}

/// `DELETE /subscriptions/{id}/delayed_cancel.json` → 200 `{"message":"This subscription will
/// no longer be canceled"}` (DOC), idempotent: `cancel_at_end_of_period` false and
/// `delayed_cancel_at` null.
///
/// ASSUMED: it also withdraws a `scheduled_cancellation_at` and forgets the pending
/// cancellation's message and reason code (the reference documents no other way to withdraw a
/// scheduled cancellation); on a subscription already canceled it answers the same and changes
/// nothing. 404 for an unknown subscription.
fn remove_delayed_cancel_in(store: &mut Store, subscription: &str) -> Reply {
    let now = store.now();
    let Some(s) = subscription
        .parse::<i64>()
        .ok()
        .and_then(|id| store.subscription_mut(id))
    else {
        return Reply::not_found();
    };
    if s.state != "canceled" {
        let c = &mut s.cancellation;
        let pending = c.cancel_at_end_of_period
            || c.delayed_cancel_at.is_some()
            || c.scheduled_cancellation_at.is_some();
        if pending {
            *c = CancelFields::default();
            s.updated_at = now;
        }
    }
    Reply::ok(json!({ "message": NO_LONGER_CANCELED }))
}

pub(super) async fn remove_delayed_cancel(
    AxState(app): AxState<Arc<App>>,
    Path(subscription): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    write_optional(&app, &headers, &body, |store, _| {
        remove_delayed_cancel_in(store, &subscription)
    })
}

/// `PUT /subscriptions/{id}/reactivate.json` (optional body) → 200 `{"subscription":{...}}` in
/// state `active`, the cancellation fields cleared (DOC), `previous_state` the state it had.
/// Only from `canceled`, `trial_ended` or `unpaid`; otherwise 422 `Cannot reactivate a
/// subscription that is not marked "Canceled", "Unpaid", or "Trial Ended".` (DOC text, ASSUMED
/// shape `{"errors":[..]}`).
///
/// ASSUMED: a new period of the product's interval starts now, unless `resume` is true (or
/// `{"require_resume":..}`) and the current period has not ended, which keeps the billing date
/// (DOC); `include_trial` and the other options are accepted and ignored (the fake has no trials
/// or balances). 404 for an unknown subscription.
fn reactivate_in(store: &mut Store, subscription: &str, body: &Value) -> Reply {
    let now = store.now();
    let Some((id, state, product_id, period_ends)) = subscription
        .parse::<i64>()
        .ok()
        .and_then(|id| store.subscription(id))
        .map(|s| (s.id, s.state, s.product_id, s.current_period_ends_at))
    else {
        return Reply::not_found();
    };
    if !matches!(state, "canceled" | "trial_ended" | "unpaid") {
        return Reply::errors(vec![NOT_REACTIVATABLE.into()]);
    }
    let resume = match body.get("resume") {
        Some(Value::Object(_)) => true,
        other => flag(other) == Some(true),
    };
    let new_period = (!resume || period_ends <= now)
        .then(|| store.product(product_id).map(|p| period_end(p, now)))
        .flatten();
    if let Some(s) = store.subscription_mut(id) {
        s.previous_state = s.state;
        s.state = "active";
        s.cancellation = CancelFields::default();
        s.updated_at = now;
        if let Some(end) = new_period {
            s.current_period_started_at = now;
            s.current_period_ends_at = end;
            s.next_assessment_at = end;
        }
    }
    render(store, id)
}

pub(super) async fn reactivate(
    AxState(app): AxState<Arc<App>>,
    Path(subscription): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    write_optional(&app, &headers, &body, |store, body| {
        reactivate_in(store, &subscription, body)
    })
}
