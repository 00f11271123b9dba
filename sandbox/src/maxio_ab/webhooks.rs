//! The site's webhooks (lifecycle.md §3.8): endpoints (`/endpoints.json`), one webhook per event
//! and subscribed endpoint, form-encoded and signed with the site's shared key
//! (`X-Chargify-Webhook-Signature-Hmac-Sha-256`, hex HMAC-SHA-256 of the raw body), the log
//! (`GET /webhooks.json`) and replays (`POST /webhooks/replay.json`).
//!
//! Delivery is driven by the test ([`super::MaxioAbSandbox::deliver_webhooks`]) on the site's
//! virtual clock, so retries need no waiting: a webhook is sent as soon as it exists, and after a
//! non-2xx answer (or none) again 10 s, 15 s, 90 s and 180 s later, five attempts in all; a
//! replay sends it once more whatever happened before. The webhook `id` is the same on every
//! attempt and replay.
//!
//! ASSUMED: the delays count from the previous attempt; the payload carries `site` (id,
//! subdomain), `subscription` (id, state, previous state, customer id and reference, reference),
//! and `event_id`, not AB's whole subscription; a replay resets nothing but sends once more.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State as AxState};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};

use super::App;
use super::events::Event;
use super::http::{Reply, numeric_segment, write};
use super::state::{Store, ts};

/// The event keys an endpoint may subscribe to (lifecycle.md §3.8).
pub(super) const EVENT_KEYS: [&str; 35] = [
    "billing_date_change",
    "component_allocation_change",
    "customer_create",
    "customer_update",
    "dunning_step_reached",
    "expiring_card",
    "expiration_date_change",
    "invoice_issued",
    "metered_usage",
    "payment_failure",
    "payment_success",
    "direct_debit_payment_pending",
    "direct_debit_payment_paid_out",
    "direct_debit_payment_rejected",
    "prepaid_subscription_balance_changed",
    "prepaid_usage",
    "refund_failure",
    "refund_success",
    "renewal_failure",
    "renewal_success",
    "signup_failure",
    "signup_success",
    "statement_closed",
    "statement_settled",
    "subscription_card_update",
    "subscription_group_card_update",
    "subscription_product_change",
    "subscription_state_change",
    "trial_end_notice",
    "upcoming_renewal_notice",
    "upgrade_downgrade_failure",
    "upgrade_downgrade_success",
    "pending_cancellation_change",
    "subscription_prepayment_account_balance_changed",
    "subscription_service_credit_account_balance_changed",
];

/// AB's attempts after the first: the delay before each (5 attempts in all).
const RETRY_DELAYS_SECS: [i64; 4] = [10, 15, 90, 180];

#[derive(Debug, Clone)]
pub(super) struct Endpoint {
    pub id: i64,
    pub url: String,
    pub events: Vec<String>,
}

impl Endpoint {
    fn render(&self) -> Value {
        json!({"id": self.id, "url": self.url, "site_id": 1, "status": "enabled",
               "webhook_subscriptions": self.events})
    }
}

#[derive(Debug, Clone)]
pub(super) struct Webhook {
    pub id: i64,
    pub event: &'static str,
    pub endpoint_id: i64,
    pub body: String,
    pub signature: String,
    pub created_at: DateTime<Utc>,
    /// Attempts made since it was created or last replayed.
    pub attempts: usize,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub successful: bool,
    pub accepted_at: Option<DateTime<Utc>>,
    pub last_sent_at: Option<DateTime<Utc>>,
    pub last_sent_url: Option<String>,
    pub last_error: Option<String>,
    pub last_error_at: Option<DateTime<Utc>>,
}

impl Webhook {
    fn render(&self) -> Value {
        json!({"webhook": {
            "id": self.id, "event": self.event, "created_at": ts(self.created_at),
            "last_error": self.last_error, "last_error_at": self.last_error_at.map(ts),
            "accepted_at": self.accepted_at.map(ts), "last_sent_at": self.last_sent_at.map(ts),
            "last_sent_url": self.last_sent_url, "successful": self.successful,
            "body": self.body, "signature": null, "signature_hmac_sha_256": self.signature,
        }})
    }
}

/// One delivery attempt, as the receiver answered it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub webhook_id: i64,
    pub event: String,
    pub url: String,
    /// The HTTP status, or None when the request failed.
    pub status: Option<u16>,
}

impl Store {
    /// Queues one webhook per endpoint subscribed to `event`'s key, due now.
    pub(super) fn queue_webhooks(&mut self, event: &Event) {
        let endpoints: Vec<i64> = self
            .endpoints
            .iter()
            .filter(|e| e.events.iter().any(|k| k == event.key))
            .map(|e| e.id)
            .collect();
        for endpoint_id in endpoints {
            let id = self.ids.next("webhook");
            let body = self.webhook_body(id, event);
            let signature =
                dealbridge::billing::webhook::sign(self.webhook_key.as_bytes(), body.as_bytes());
            let now = self.now();
            self.webhooks.push(Webhook {
                id,
                event: event.key,
                endpoint_id,
                body,
                signature,
                created_at: now,
                attempts: 0,
                next_attempt_at: Some(now),
                successful: false,
                accepted_at: None,
                last_sent_at: None,
                last_sent_url: None,
                last_error: None,
                last_error_at: None,
            });
        }
    }

    fn webhook_body(&self, id: i64, event: &Event) -> String {
        let mut form = url::form_urlencoded::Serializer::new(String::new());
        form.append_pair("id", &id.to_string());
        form.append_pair("event", event.key);
        form.append_pair("payload[site][id]", "1");
        form.append_pair("payload[site][subdomain]", &self.subdomain);
        if let Some(s) = self.subscription(event.subscription_id) {
            form.append_pair("payload[subscription][id]", &s.id.to_string());
            form.append_pair("payload[subscription][state]", s.state);
            form.append_pair("payload[subscription][previous_state]", s.previous_state);
            if let Some(reference) = &s.reference {
                form.append_pair("payload[subscription][reference]", reference);
            }
            form.append_pair(
                "payload[subscription][customer][id]",
                &s.customer_id.to_string(),
            );
        }
        form.append_pair("payload[event_id]", &event.id.to_string());
        form.finish()
    }
}

fn endpoint_input(body: &Value) -> Result<(String, Vec<String>), Reply> {
    let Some(endpoint) = body.get("endpoint").and_then(Value::as_object) else {
        return Err(Reply::errors(vec!["endpoint must be an Object".into()]));
    };
    let url = endpoint
        .get("url")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let parsed = url::Url::parse(url).ok();
    if !parsed.is_some_and(|u| matches!(u.scheme(), "http" | "https")) {
        return Err(Reply::errors(vec![
            "URL: invalid, only http and https supported".into(),
        ]));
    }
    let Some(keys) = endpoint
        .get("webhook_subscriptions")
        .and_then(Value::as_array)
    else {
        return Err(Reply::errors(vec![
            "Webhook subscriptions: cannot be blank".into(),
        ]));
    };
    let mut events = Vec::new();
    for key in keys {
        let key = key.as_str().unwrap_or_default();
        if !EVENT_KEYS.contains(&key) {
            return Err(Reply::errors(vec![format!(
                "Event key is not valid - {key}"
            )]));
        }
        events.push(key.to_string());
    }
    Ok((url.to_string(), events))
}

/// `POST /endpoints.json`.
pub(super) async fn create_endpoint(
    AxState(app): AxState<Arc<App>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    write(&app, &headers, &body, |store, body| {
        let (url, events) = match endpoint_input(body) {
            Ok(input) => input,
            Err(reply) => return reply,
        };
        let endpoint = Endpoint {
            id: store.ids.next("endpoint"),
            url,
            events,
        };
        let rendered = endpoint.render();
        store.endpoints.push(endpoint);
        Reply::ok(json!({ "endpoint": rendered }))
    })
}

/// `GET /endpoints.json`: a bare array of endpoint objects.
pub(super) async fn list_endpoints(AxState(app): AxState<Arc<App>>) -> Response {
    let store = app.store();
    Reply::ok(Value::Array(
        store.endpoints.iter().map(Endpoint::render).collect(),
    ))
    .into_response()
}

/// `PUT /endpoints/{id}.json`: replaces the URL and the event list.
pub(super) async fn update_endpoint(
    AxState(app): AxState<Arc<App>>,
    Path(file): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let id = numeric_segment(&file);
    write(&app, &headers, &body, |store, body| {
        let Some(index) = id.and_then(|id| store.endpoints.iter().position(|e| e.id == id)) else {
            return Reply::not_found();
        };
        let (url, events) = match endpoint_input(body) {
            Ok(input) => input,
            Err(reply) => return reply,
        };
        store.endpoints[index].url = url;
        store.endpoints[index].events = events;
        Reply::ok(json!({ "endpoint": store.endpoints[index].render() }))
    })
}

/// `GET /webhooks.json`: every webhook, newest first.
pub(super) async fn list_webhooks(AxState(app): AxState<Arc<App>>) -> Response {
    let mut store = app.store();
    store.record_events();
    Reply::ok(Value::Array(
        store.webhooks.iter().rev().map(Webhook::render).collect(),
    ))
    .into_response()
}

/// `POST /webhooks/replay.json` `{"ids": [...]}` (at most 1000): each is sent once more.
pub(super) async fn replay(
    AxState(app): AxState<Arc<App>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    write(&app, &headers, &body, |store, body| {
        let Some(ids) = body.get("ids").and_then(Value::as_array) else {
            return Reply::errors(vec!["ids: must be an array".into()]);
        };
        if ids.len() > 1000 {
            return Reply::errors(vec!["ids: at most 1000".into()]);
        }
        let now = store.now();
        for id in ids.iter().filter_map(Value::as_i64) {
            if let Some(w) = store.webhooks.iter_mut().find(|w| w.id == id) {
                w.next_attempt_at = Some(now);
                w.attempts = RETRY_DELAYS_SECS.len();
            }
        }
        Reply::ok(json!({"status": "ok"}))
    })
}

/// The webhooks due now: (id, url, body, signature).
pub(super) fn due(store: &mut Store) -> Vec<(i64, &'static str, String, String, String)> {
    store.record_events();
    let now = store.now();
    let endpoints = store.endpoints.clone();
    store
        .webhooks
        .iter()
        .filter(|w| w.next_attempt_at.is_some_and(|t| t <= now))
        .filter_map(|w| {
            let url = endpoints
                .iter()
                .find(|e| e.id == w.endpoint_id)?
                .url
                .clone();
            Some((w.id, w.event, url, w.body.clone(), w.signature.clone()))
        })
        .collect()
}

/// Records an attempt's answer and when the next one is due.
pub(super) fn attempted(store: &mut Store, id: i64, url: &str, status: Option<u16>) {
    let now = store.now();
    let Some(w) = store.webhooks.iter_mut().find(|w| w.id == id) else {
        return;
    };
    w.last_sent_at = Some(now);
    w.last_sent_url = Some(url.to_string());
    if status.is_some_and(|s| (200..300).contains(&s)) {
        w.successful = true;
        w.accepted_at = Some(now);
        w.next_attempt_at = None;
        return;
    }
    w.last_error = Some(match status {
        Some(s) => format!("HTTP {s}"),
        None => "no answer".into(),
    });
    w.last_error_at = Some(now);
    w.next_attempt_at = RETRY_DELAYS_SECS
        .get(w.attempts)
        .map(|secs| now + Duration::seconds(*secs));
    w.attempts += 1;
}
