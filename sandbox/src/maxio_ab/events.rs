//! The site's event log (`GET /events.json`): every change the site makes to a subscription,
//! through the API or through a test's hook ([`super::MaxioAbSandbox::set_state`]), becomes an
//! event, as AB records them (lifecycle.md §3.8).
//!
//! Changes are found by comparing a subscription with what the log last saw of it, after every
//! write request, whenever the log is read, and around a test's hook; only subscriptions changed
//! since (marked by `Store::subscription_mut` and `Store::set_subscription_price_point`) and new
//! ones are compared, so every path that changes a subscription is covered without each recording
//! its own event. An event's time is the subscription's `updated_at`.
//!
//! ASSUMED: the changes one request makes collapse into one event per kind and subscription (AB
//! may record each step); the `message` texts; the
//! `pending_cancellation_change` data's `cancellation_state` values `scheduled` / `unscheduled`;
//! `direction` defaults to `desc` and `per_page` to 20 (max 200), as AB's other lists.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{RawQuery, State as AxState};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde_json::{Value, json};

use super::App;
use super::http::{Reply, paginate, query_pairs, query_value};
use super::state::{Store, quantity_json, ts};

/// One event of the log.
#[derive(Debug, Clone)]
pub(super) struct Event {
    pub id: i64,
    pub key: &'static str,
    pub message: String,
    pub subscription_id: i64,
    pub customer_id: i64,
    pub created_at: DateTime<Utc>,
    pub data: Value,
}

impl Event {
    pub fn render(&self) -> Value {
        json!({"event": {
            "id": self.id,
            "key": self.key,
            "message": self.message,
            "subscription_id": self.subscription_id,
            "customer_id": self.customer_id,
            "created_at": ts(self.created_at),
            "event_specific_data": self.data,
        }})
    }
}

/// What the log last saw of one subscription.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Seen {
    state: &'static str,
    next_assessment_at: DateTime<Utc>,
    pending_cancellation: Option<DateTime<Utc>>,
    /// component id → allocated quantity (or unit balance for metered components).
    quantities: BTreeMap<i64, Decimal>,
}

fn pending_cancellation(s: &super::state::Subscription) -> Option<DateTime<Utc>> {
    let c = &s.cancellation;
    let delayed = c.delayed_cancel_at.filter(|_| c.cancel_at_end_of_period);
    match (delayed, c.scheduled_cancellation_at) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

impl Store {
    fn seen_now(&self, s: &super::state::Subscription) -> Seen {
        let quantities = self
            .subscription_components
            .iter()
            .filter(|c| c.subscription_id == s.id)
            .map(|c| {
                let metered = self
                    .components
                    .iter()
                    .find(|k| k.id == c.component_id)
                    .is_some_and(|k| {
                        matches!(k.kind, "metered_component" | "event_based_component")
                    });
                let q = if metered {
                    Decimal::from(c.unit_balance)
                } else {
                    c.allocated_quantity
                };
                (c.component_id, q)
            })
            .collect();
        Seen {
            state: s.state,
            next_assessment_at: s.next_assessment_at,
            pending_cancellation: pending_cancellation(s),
            quantities,
        }
    }

    /// Records an event for every change to a subscription since the log last looked.
    pub fn record_events(&mut self) {
        // Ids are given once the subscriptions are no longer borrowed.
        let mut found: Vec<Event> = Vec::new();
        let mut seen_now = Vec::new();
        // Subscriptions are only ever appended, and each one seen is in `seen`.
        let fresh = self.seen.len().min(self.subscriptions.len());
        let dirty = std::mem::take(&mut self.dirty);
        let changed = self
            .subscriptions
            .iter()
            .enumerate()
            .filter(|(i, s)| *i >= fresh || dirty.contains(&s.id))
            .map(|(_, s)| s);
        for s in changed {
            let now = self.seen_now(s);
            let at = s.updated_at;
            let mut event = |key: &'static str, message: String, data: Value| {
                found.push(Event {
                    id: 0,
                    key,
                    message,
                    subscription_id: s.id,
                    customer_id: s.customer_id,
                    created_at: at,
                    data,
                });
            };
            match self.seen.get(&s.id) {
                None => event(
                    "signup_success",
                    format!("Subscription {} was created", s.id),
                    Value::Null,
                ),
                Some(before) if *before == now => {}
                Some(before) => {
                    if before.state != now.state {
                        event(
                            "subscription_state_change",
                            format!("State changed from {} to {}", before.state, now.state),
                            json!({"previous_subscription_state": before.state,
                                   "new_subscription_state": now.state}),
                        );
                    }
                    if before.pending_cancellation != now.pending_cancellation {
                        let (state, cancels_at) = match now.pending_cancellation {
                            Some(t) => ("scheduled", Value::String(ts(t))),
                            None => ("unscheduled", Value::Null),
                        };
                        event(
                            "pending_cancellation_change",
                            format!("Pending cancellation {state}"),
                            json!({"cancellation_state": state, "cancels_at": cancels_at}),
                        );
                    }
                    if before.next_assessment_at != now.next_assessment_at {
                        event(
                            "billing_date_change",
                            format!("Next billing date is {}", ts(now.next_assessment_at)),
                            json!({"previous_billing_date": ts(before.next_assessment_at),
                                   "new_billing_date": ts(now.next_assessment_at)}),
                        );
                    }
                    let ids: std::collections::BTreeSet<i64> = before
                        .quantities
                        .keys()
                        .chain(now.quantities.keys())
                        .copied()
                        .collect();
                    for component_id in ids {
                        let old = before.quantities.get(&component_id).copied();
                        let new = now.quantities.get(&component_id).copied();
                        if old == new {
                            continue;
                        }
                        let handle = self
                            .components
                            .iter()
                            .find(|k| k.id == component_id)
                            .map(|k| k.handle.clone());
                        let q = |d: Option<Decimal>| quantity_json(d.unwrap_or_default());
                        event(
                            "component_allocation_change",
                            format!("Allocation of component {component_id} changed"),
                            json!({"component_id": component_id, "component_handle": handle,
                                   "previous_allocation": q(old), "new_allocation": q(new),
                                   "allocated_quantity": q(new), "memo": null,
                                   "allocation_id": null}),
                        );
                    }
                }
            }
            seen_now.push((s.id, now));
        }
        for mut event in found {
            event.id = self.ids.next("event");
            self.queue_webhooks(&event);
            self.events.push(event);
        }
        self.seen.extend(seen_now);
    }
}

/// `GET /events.json?since_id&max_id&direction&filter&page&per_page`: a bare array of wrapped
/// events. `since_id` is exclusive and `max_id` inclusive, so `since_id=<last id seen>` is a
/// cursor that misses nothing and repeats nothing.
pub(super) async fn list(AxState(app): AxState<Arc<App>>, RawQuery(query): RawQuery) -> Response {
    let pairs = query_pairs(query.as_deref());
    let number = |key: &str| -> Result<Option<i64>, Reply> {
        match query_value(&pairs, key) {
            None => Ok(None),
            Some(v) if v.trim().is_empty() => Ok(None),
            Some(v) => v
                .trim()
                .parse::<i64>()
                .map(Some)
                .map_err(|_| Reply::errors(vec![format!("{key}: must be an integer")])),
        }
    };
    let (since, max) = match (number("since_id"), number("max_id")) {
        (Ok(s), Ok(m)) => (s, m),
        (Err(r), _) | (_, Err(r)) => return r.into_response(),
    };
    let filter: Option<Vec<String>> = query_value(&pairs, "filter").map(|f| {
        f.split(',')
            .map(|k| k.trim().to_string())
            .filter(|k| !k.is_empty())
            .collect()
    });
    let mut store = app.store();
    store.record_events();
    let mut items: Vec<Value> = store
        .events
        .iter()
        .filter(|e| since.is_none_or(|s| e.id > s))
        .filter(|e| max.is_none_or(|m| e.id <= m))
        .filter(|e| {
            filter
                .as_ref()
                .is_none_or(|keys| keys.iter().any(|k| k == e.key))
        })
        .map(Event::render)
        .collect();
    if query_value(&pairs, "direction").as_deref() != Some("asc") {
        items.reverse();
    }
    Reply::ok(Value::Array(paginate(items, &pairs, 20))).into_response()
}
