//! The fake AB site's end of a subscription's life, through dealbridge's AB client where it can
//! be: read by id, cancel now (and the second cancel), size limits, scheduled cancellation and
//! its site feature, delayed cancel and its withdrawal, reactivation, the clock-driven
//! transitions, the audit of negative quantities, and what the site tells about its changes:
//! the event log and its cursor, and signed webhooks with their retries and replays.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use dealbridge::maxio::ab::{
    AbClient, AbClientSettings, Cancellation, MaxioError, SubscriptionLifecycle, ab_time,
    is_already_canceled, needs_scheduled_cancellation_feature,
};
use dealbridge::retry::RetryPolicy;
use dealbridge::secrets::InMemorySecrets;
use dealbridge_sandbox::maxio_ab::{AbSettings, MaxioAbSandbox, routes};
use serde_json::{Value, json};

const DAY: Duration = Duration::from_secs(24 * 3600);

struct Site {
    ab: MaxioAbSandbox,
    client: AbClient,
    http: reqwest::Client,
    key: String,
}

impl Site {
    /// A site whose clock reads 2026-03-10 12:00 UTC.
    async fn start(settings: AbSettings) -> Site {
        let ab = MaxioAbSandbox::start(settings)
            .await
            .expect("sandbox starts");
        ab.set_clock(start_time());
        let key = ab.settings().api_key;
        let secrets = InMemorySecrets::new();
        secrets.insert("ab", json!({ "api_key": key }).to_string());
        let client = AbClient::new(
            AbClientSettings {
                base_url: url::Url::parse(ab.url()).expect("url"),
                secret_name: "ab".into(),
                timeout: Duration::from_secs(5),
                retry: RetryPolicy::immediate(1),
                max_concurrent_requests: 4,
            },
            Arc::new(secrets),
        )
        .expect("client");
        Site {
            ab,
            client,
            http: reqwest::Client::new(),
            key,
        }
    }

    async fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.ab.url()))
            .basic_auth(&self.key, Some("x"));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        let text = response.text().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, body)
    }

    /// A monthly subscription (with a customer of its own) and its id.
    async fn subscription(&self, reference: &str, extra: Value) -> i64 {
        let mut body = json!({
            "product_handle": "monthly-usage",
            "reference": reference,
            "customer_attributes": {
                "first_name": "Ada", "last_name": "Lovelace",
                "email": "ada@example.com", "reference": format!("acct-{reference}"),
            },
        });
        if let (Some(body), Value::Object(extra)) = (body.as_object_mut(), extra) {
            body.extend(extra);
        }
        let (status, created) = self
            .send(
                reqwest::Method::POST,
                "/subscriptions.json",
                Some(json!({ "subscription": body })),
            )
            .await;
        assert_eq!(status, 201, "{created}");
        created["subscription"]["id"].as_i64().expect("id")
    }

    async fn read(&self, id: i64) -> SubscriptionLifecycle {
        self.client
            .read_subscription(id)
            .await
            .expect("read")
            .expect("the subscription exists")
    }
}

fn start_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 10, 12, 0, 0).unwrap()
}

fn at(text: &Option<String>) -> DateTime<Utc> {
    text.as_deref().and_then(ab_time).expect("a timestamp")
}

#[tokio::test]
async fn a_subscription_is_read_by_id_with_every_cancellation_field_unset() {
    let site = Site::start(AbSettings::default()).await;
    let id = site.subscription("006-read", json!({})).await;
    let (status, body) = site
        .send(
            reqwest::Method::GET,
            &format!("/subscriptions/{id}.json"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let s = &body["subscription"];
    assert_eq!(
        (s["state"].clone(), s["previous_state"].clone()),
        (json!("active"), json!("active"))
    );
    for field in [
        "canceled_at",
        "cancellation_message",
        "cancellation_method",
        "reason_code",
        "delayed_cancel_at",
        "scheduled_cancellation_at",
    ] {
        assert!(s[field].is_null(), "{field}: {}", s[field]);
    }
    assert_eq!(s["cancel_at_end_of_period"], false);
    for field in ["current_period_ends_at", "next_assessment_at"] {
        assert!(s[field].is_string(), "{field}");
    }
    let read = site.read(id).await;
    assert_eq!(read.reference.as_deref(), Some("006-read"));
    assert_eq!(read.pending_cancellation_at(), None);
    assert_eq!(
        site.client.read_subscription(id + 1000).await.unwrap(),
        None
    );
    assert_eq!(site.ab.observer().count(routes::SUBSCRIPTION_READ), 3);
}

#[tokio::test]
async fn a_cancel_now_echoes_its_message_and_a_second_cancel_is_the_live_422() {
    let site = Site::start(AbSettings::default()).await;
    let id = site.subscription("006-now", json!({})).await;
    let cancellation = Cancellation {
        cancellation_message: Some("Case 00001026: customer moved".into()),
        reason_code: Some("any code at all".into()),
        ..Cancellation::default()
    };
    let canceled = site
        .client
        .cancel_subscription(id, &cancellation)
        .await
        .expect("canceled");
    assert!(canceled.is_canceled());
    assert_eq!(canceled.previous_state.as_deref(), Some("active"));
    assert_eq!(
        canceled.cancellation_message.as_deref(),
        Some("Case 00001026: customer moved")
    );
    assert_eq!(canceled.reason_code.as_deref(), Some("any code at all"));
    assert_eq!(
        canceled.cancellation_method.as_deref(),
        Some("merchant_api")
    );
    let when = at(&canceled.canceled_at);
    assert!((when - start_time()).num_seconds().abs() < 60, "{when}");
    assert_eq!(site.read(id).await, canceled);

    let twice = site
        .client
        .cancel_subscription(id, &Cancellation::default())
        .await
        .unwrap_err();
    assert!(is_already_canceled(&twice), "{twice}");
    assert!(!twice.is_retryable());
    let (status, body) = site
        .send(
            reqwest::Method::DELETE,
            &format!("/subscriptions/{id}.json"),
            None,
        )
        .await;
    assert_eq!(
        (status, body),
        (
            422,
            json!({"error": "The subscription is already canceled"})
        )
    );
    let missing = site
        .client
        .cancel_subscription(id + 1000, &Cancellation::default())
        .await
        .unwrap_err();
    assert!(matches!(missing, MaxioError::NotFound(_)), "{missing}");
    assert_eq!(site.ab.observer().count(routes::SUBSCRIPTION_CANCEL), 4);
    let (_, listed) = site
        .send(
            reqwest::Method::GET,
            "/subscriptions.json?state=canceled",
            None,
        )
        .await;
    assert_eq!(listed.as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn over_long_reasons_and_a_body_that_is_not_an_object_are_422s_that_change_nothing() {
    let site = Site::start(AbSettings::default()).await;
    let id = site.subscription("006-limits", json!({})).await;
    let path = format!("/subscriptions/{id}.json");
    let cases = [
        (
            json!({"subscription": {"reason_code": "r".repeat(256)}}),
            json!({"errors": ["reason_code size cannot be greater than 255"]}),
        ),
        (
            json!({"subscription": {"cancellation_message": "m".repeat(65_536)}}),
            json!({"errors": ["cancellation_message size cannot be greater than 65535"]}),
        ),
        (
            json!({"subscription": "now please"}),
            json!({"errors": ["subscription must be an Object"]}),
        ),
    ];
    for (body, expected) in cases {
        let (status, answer) = site.send(reqwest::Method::DELETE, &path, Some(body)).await;
        assert_eq!((status, answer), (422, expected));
    }
    assert_eq!(site.read(id).await.state.as_deref(), Some("active"));
    // At the limits exactly, the cancel goes through.
    let canceled = site
        .client
        .cancel_subscription(
            id,
            &Cancellation {
                reason_code: Some("é".repeat(255)),
                cancellation_message: Some("m".repeat(65_535)),
                ..Cancellation::default()
            },
        )
        .await
        .expect("canceled");
    assert!(canceled.is_canceled());
}

#[tokio::test]
async fn a_scheduled_cancel_needs_the_site_feature_and_takes_effect_when_the_clock_passes_it() {
    let site = Site::start(AbSettings::default()).await;
    let id = site.subscription("006-scheduled", json!({})).await;
    let when = Utc.with_ymd_and_hms(2026, 3, 20, 15, 0, 0).unwrap();
    let scheduled = Cancellation {
        cancellation_message: Some("Case 1: scheduled".into()),
        scheduled_cancellation_at: Some(when),
        ..Cancellation::default()
    };
    // The feature is off by default: refused, and nothing happens.
    for cancellation in [
        scheduled.clone(),
        Cancellation {
            cancel_at_end_of_period: Some(true),
            ..Cancellation::default()
        },
    ] {
        let e = site
            .client
            .cancel_subscription(id, &cancellation)
            .await
            .unwrap_err();
        assert!(needs_scheduled_cancellation_feature(&e), "{e}");
        assert!(
            e.to_string().contains("Schedule Subscription Cancellation"),
            "{e}"
        );
        assert!(!e.is_retryable());
    }
    let read = site.read(id).await;
    assert_eq!(read.state.as_deref(), Some("active"));
    assert_eq!(read.scheduled_cancellation_at, None);

    site.ab.set_schedule_cancellation(true);
    let pending = site
        .client
        .cancel_subscription(id, &scheduled)
        .await
        .expect("scheduled");
    assert_eq!(pending.state.as_deref(), Some("active"));
    assert_eq!(at(&pending.scheduled_cancellation_at), when);
    assert_eq!(pending.pending_cancellation_at(), Some(when));
    assert_eq!(
        pending.cancellation_message.as_deref(),
        Some("Case 1: scheduled")
    );

    // Ten days on, a few hours short of the time: still active.
    site.ab.advance_clock(10 * DAY);
    assert_eq!(site.read(id).await.state.as_deref(), Some("active"));
    site.ab.advance_clock(Duration::from_secs(4 * 3600));
    let done = site.read(id).await;
    assert!(done.is_canceled());
    assert_eq!(done.previous_state.as_deref(), Some("active"));
    assert_eq!(at(&done.canceled_at), when);
    assert_eq!(done.cancellation_method.as_deref(), Some("merchant_api"));
    // The handle's view settles too.
    assert_eq!(
        site.ab.subscription(id).expect("exists")["state"],
        "canceled"
    );

    // A time already passed cancels now; a prepaid subscription cannot be scheduled.
    let past = site.subscription("006-past", json!({})).await;
    let now = site
        .client
        .cancel_subscription(
            past,
            &Cancellation {
                scheduled_cancellation_at: Some(start_time()),
                ..Cancellation::default()
            },
        )
        .await
        .expect("canceled");
    assert!(now.is_canceled());
    let prepaid = site
        .subscription(
            "006-prepaid",
            json!({"payment_collection_method": "prepaid"}),
        )
        .await;
    let e = site
        .client
        .cancel_subscription(prepaid, &scheduled)
        .await
        .unwrap_err();
    assert!(e.mentions("prepaid"), "{e}");
}

#[tokio::test]
async fn cancel_at_end_of_period_on_a_cancel_waits_for_the_period_end() {
    let site = Site::start(AbSettings {
        schedule_cancellation: true,
        ..AbSettings::default()
    })
    .await;
    let id = site.subscription("006-eop", json!({})).await;
    let pending = site
        .client
        .cancel_subscription(
            id,
            &Cancellation {
                cancel_at_end_of_period: Some(true),
                ..Cancellation::default()
            },
        )
        .await
        .expect("pending");
    assert_eq!(pending.state.as_deref(), Some("active"));
    assert!(pending.cancel_at_end_of_period);
    assert_eq!(pending.delayed_cancel_at, pending.current_period_ends_at);
    site.ab.advance_clock(32 * DAY);
    let done = site.read(id).await;
    assert!(done.is_canceled());
    assert_eq!(at(&done.canceled_at), at(&pending.current_period_ends_at));
}

#[tokio::test]
async fn a_delayed_cancel_cancels_when_the_clock_passes_the_end_of_the_period() {
    let site = Site::start(AbSettings::default()).await;
    let id = site.subscription("006-delayed", json!({})).await;
    let message = site
        .client
        .delayed_cancel(
            id,
            &Cancellation::with_message("Case 2: at the end of the period"),
        )
        .await
        .expect("delayed");
    assert!(message.is_some_and(|m| !m.is_empty()));
    let pending = site.read(id).await;
    assert_eq!(pending.state.as_deref(), Some("active"));
    assert!(pending.cancel_at_end_of_period);
    assert_eq!(pending.delayed_cancel_at, pending.current_period_ends_at);
    let ends = at(&pending.current_period_ends_at);
    assert_eq!(pending.pending_cancellation_at(), Some(ends));
    assert_eq!(
        pending.cancellation_message.as_deref(),
        Some("Case 2: at the end of the period")
    );

    // The end of the period is a month on: a day short of it, still active.
    site.ab.set_clock(ends - chrono::Duration::days(1));
    assert_eq!(site.read(id).await.state.as_deref(), Some("active"));
    site.ab.set_clock(ends + chrono::Duration::minutes(1));
    let done = site.read(id).await;
    assert!(done.is_canceled());
    assert_eq!(at(&done.canceled_at), ends);
    assert_eq!(done.previous_state.as_deref(), Some("active"));
    assert_eq!(site.ab.observer().count(routes::DELAYED_CANCEL), 1);

    // Refused once canceled, and while past due; 404 for an unknown subscription.
    let e = site
        .client
        .delayed_cancel(id, &Cancellation::default())
        .await
        .unwrap_err();
    assert!(is_already_canceled(&e), "{e}");
    let late = site.subscription("006-past-due", json!({})).await;
    site.ab.set_state(late, "past_due").expect("state set");
    let e = site
        .client
        .delayed_cancel(late, &Cancellation::default())
        .await
        .unwrap_err();
    assert!(matches!(e, MaxioError::Rejected { status: 422, .. }), "{e}");
    assert!(e.mentions("past due"), "{e}");
    assert!(!site.read(late).await.cancel_at_end_of_period);
    let e = site
        .client
        .delayed_cancel(late + 1000, &Cancellation::default())
        .await
        .unwrap_err();
    assert!(matches!(e, MaxioError::NotFound(_)), "{e}");
}

#[tokio::test]
async fn a_withdrawn_delayed_cancel_is_idempotent_and_the_subscription_stays_active() {
    let site = Site::start(AbSettings {
        schedule_cancellation: true,
        ..AbSettings::default()
    })
    .await;
    let id = site.subscription("006-withdraw", json!({})).await;
    site.client
        .delayed_cancel(id, &Cancellation::default())
        .await
        .expect("delayed");
    for _ in 0..2 {
        let message = site
            .client
            .withdraw_delayed_cancel(id)
            .await
            .expect("withdrawn");
        assert_eq!(
            message.as_deref(),
            Some("This subscription will no longer be canceled")
        );
    }
    let read = site.read(id).await;
    assert!(!read.cancel_at_end_of_period);
    assert_eq!(read.delayed_cancel_at, None);
    assert_eq!(read.pending_cancellation_at(), None);
    // A scheduled cancellation is withdrawn the same way (ASSUMED by the fake).
    site.client
        .cancel_subscription(
            id,
            &Cancellation {
                scheduled_cancellation_at: Some(start_time() + chrono::Duration::days(3)),
                ..Cancellation::default()
            },
        )
        .await
        .expect("scheduled");
    site.client
        .withdraw_delayed_cancel(id)
        .await
        .expect("withdrawn");
    site.ab.advance_clock(40 * DAY);
    let read = site.read(id).await;
    assert_eq!(read.state.as_deref(), Some("active"));
    assert_eq!(read.scheduled_cancellation_at, None);
    assert_eq!(site.ab.observer().count(routes::DELAYED_CANCEL_REMOVE), 3);
    let e = site
        .client
        .withdraw_delayed_cancel(id + 1000)
        .await
        .unwrap_err();
    assert!(matches!(e, MaxioError::NotFound(_)), "{e}");
}

#[tokio::test]
async fn reactivation_is_only_from_canceled_unpaid_or_trial_ended_and_clears_the_cancellation() {
    let site = Site::start(AbSettings::default()).await;
    let id = site.subscription("006-reactivate", json!({})).await;
    let e = site.client.reactivate(id).await.unwrap_err();
    let refusal = "Cannot reactivate a subscription that is not marked \"Canceled\", \"Unpaid\", or \"Trial Ended\".";
    assert!(e.mentions(refusal), "{e}");
    assert!(!e.is_retryable());
    let (status, body) = site
        .send(
            reqwest::Method::PUT,
            &format!("/subscriptions/{id}/reactivate.json"),
            None,
        )
        .await;
    assert_eq!((status, body), (422, json!({"errors": [refusal]})));

    site.client
        .cancel_subscription(id, &Cancellation::with_message("Case 3"))
        .await
        .expect("canceled");
    site.ab.advance_clock(2 * DAY);
    let back = site.client.reactivate(id).await.expect("reactivated");
    assert_eq!(back.state.as_deref(), Some("active"));
    assert_eq!(back.previous_state.as_deref(), Some("canceled"));
    assert_eq!(back.canceled_at, None);
    assert_eq!(back.cancellation_message, None);
    assert_eq!(back.cancellation_method, None);
    assert!(!back.cancel_at_end_of_period);
    // A new period starts now (the fake's rule without `resume`).
    let ends = at(&back.current_period_ends_at);
    assert!(ends > start_time() + chrono::Duration::days(31), "{ends}");

    for state in ["unpaid", "trial_ended"] {
        site.ab.set_state(id, state).expect("state set");
        let back = site.client.reactivate(id).await.expect("reactivated");
        assert_eq!(
            (back.state.as_deref(), back.previous_state.as_deref()),
            (Some("active"), Some(state))
        );
    }
    assert!(site.ab.set_state(id, "dormant").is_err());
    assert_eq!(site.ab.observer().count(routes::REACTIVATE), 5);
}

#[tokio::test]
async fn every_negative_quantity_sent_is_remembered_and_still_refused() {
    let site = Site::start(AbSettings::default()).await;
    assert!(site.ab.negative_quantities().is_empty());
    let id = site
        .subscription(
            "006-quantities",
            json!({"components": [{"component_id": "handle:support-seats", "allocated_quantity": 3}]}),
        )
        .await;
    let (status, _) = site
        .send(
            reqwest::Method::POST,
            "/subscriptions.json",
            Some(json!({"subscription": {
                "product_handle": "monthly-usage", "reference": "006-negative",
                "customer_reference": "acct-006-quantities",
                "components": [
                    {"component_id": "handle:support-seats", "allocated_quantity": "-2"},
                    {"component_id": "handle:api-calls", "quantity": 5},
                ],
            }})),
        )
        .await;
    assert_eq!(status, 422);
    let path = format!("/subscriptions/{id}/components/handle:support-seats/allocations.json");
    let allocate = |quantity: Value| {
        site.send(
            reqwest::Method::POST,
            &path,
            Some(json!({"allocation": {"quantity": quantity}})),
        )
    };
    assert_eq!(allocate(json!(-1)).await.0, 422);
    assert_eq!(allocate(json!(4)).await.0, 200);
    assert_eq!(allocate(json!(0)).await.0, 200);
    let seen = site.ab.negative_quantities();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert!(
        seen[0].contains("POST /subscriptions.json") && seen[0].contains("-2"),
        "{seen:?}"
    );
    assert!(
        seen[1].contains("allocations.json") && seen[1].contains("-1"),
        "{seen:?}"
    );
}

#[tokio::test]
async fn every_change_is_an_event_and_since_id_is_a_cursor_that_misses_and_repeats_nothing() {
    let site = Site::start(AbSettings::default()).await;
    let id = site.subscription("006-events", json!({})).await;
    site.client
        .delayed_cancel(id, &Cancellation::default())
        .await
        .expect("delayed");
    site.ab.set_state(id, "past_due").expect("state set");
    let events = site.ab.events();
    let keys: Vec<&str> = events
        .iter()
        .map(|e| e["key"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        keys,
        [
            "signup_success",
            "pending_cancellation_change",
            "subscription_state_change"
        ]
    );
    assert!(events.iter().all(|e| e["subscription_id"] == id));
    assert_eq!(
        events[1]["event_specific_data"]["cancellation_state"],
        "scheduled"
    );
    assert_eq!(
        events[2]["event_specific_data"],
        json!({"previous_subscription_state": "active", "new_subscription_state": "past_due"})
    );
    let first = events[0]["id"].as_i64().expect("id");

    let ids = |body: &Value| -> Vec<i64> {
        body.as_array()
            .expect("a bare array")
            .iter()
            .map(|e| e["event"]["id"].as_i64().expect("id"))
            .collect()
    };
    let (status, after) = site
        .send(
            reqwest::Method::GET,
            &format!("/events.json?since_id={first}&direction=asc"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{after}");
    assert_eq!(ids(&after), [first + 1, first + 2]);
    let (_, newest_first) = site.send(reqwest::Method::GET, "/events.json", None).await;
    assert_eq!(ids(&newest_first), [first + 2, first + 1, first]);
    let (_, capped) = site
        .send(
            reqwest::Method::GET,
            &format!(
                "/events.json?since_id={first}&max_id={}&direction=asc",
                first + 1
            ),
            None,
        )
        .await;
    assert_eq!(ids(&capped), [first + 1]);
    let (_, filtered) = site
        .send(
            reqwest::Method::GET,
            "/events.json?filter=subscription_state_change,renewal_success",
            None,
        )
        .await;
    assert_eq!(ids(&filtered), [first + 2]);
    let (_, nothing_new) = site
        .send(
            reqwest::Method::GET,
            &format!("/events.json?since_id={}", first + 2),
            None,
        )
        .await;
    assert_eq!(ids(&nothing_new), Vec::<i64>::new());
    let (status, refused) = site
        .send(reqwest::Method::GET, "/events.json?since_id=latest", None)
        .await;
    assert_eq!(status, 422, "{refused}");
    assert_eq!(site.ab.observer().count(routes::EVENTS_LIST), 6);

    let read = site
        .client
        .events_since(Some(first), 200)
        .await
        .expect("events");
    let read: Vec<(i64, &str, Option<i64>)> = read
        .iter()
        .map(|e| (e.id, e.key.as_str(), e.subscription_id))
        .collect();
    assert_eq!(
        read,
        [
            (first + 1, "pending_cancellation_change", Some(id)),
            (first + 2, "subscription_state_change", Some(id))
        ]
    );
    let all = site.client.events_since(None, 2).await.expect("events");
    assert_eq!(
        all.iter().map(|e| e.id).collect::<Vec<_>>(),
        [first, first + 1]
    );

    site.ab.set_state(id, "canceled").expect("state set");
    let last = site.ab.events();
    assert_eq!(last.len(), 4);
    assert_eq!(
        last[3]["event_specific_data"]["new_subscription_state"],
        "canceled"
    );
}

/// A webhook receiver on loopback: answers the statuses it is given in turn (200 after them),
/// and keeps each request's webhook id, signature and body.
struct Receiver {
    url: String,
    got: Arc<std::sync::Mutex<Vec<(String, String, String)>>>,
}

async fn receiver(statuses: Vec<u16>) -> Receiver {
    use axum::extract::State;
    use axum::http::{HeaderMap, StatusCode};
    type Shared = (
        Arc<std::sync::Mutex<Vec<(String, String, String)>>>,
        Arc<std::sync::Mutex<std::collections::VecDeque<u16>>>,
    );
    async fn take(
        State((got, statuses)): State<Shared>,
        headers: HeaderMap,
        body: String,
    ) -> StatusCode {
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string()
        };
        got.lock().unwrap().push((
            header("x-chargify-webhook-id"),
            header("x-chargify-webhook-signature-hmac-sha-256"),
            body,
        ));
        let status = statuses.lock().unwrap().pop_front().unwrap_or(200);
        StatusCode::from_u16(status).unwrap()
    }
    let got = Arc::new(std::sync::Mutex::new(Vec::new()));
    let shared: Shared = (
        got.clone(),
        Arc::new(std::sync::Mutex::new(statuses.into())),
    );
    let app = axum::Router::new()
        .route("/hooks", axum::routing::post(take))
        .with_state(shared);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    Receiver { url, got }
}

#[tokio::test]
async fn webhooks_are_signed_form_bodies_retried_on_ab_schedule_and_replayed_with_their_id() {
    use dealbridge::billing::webhook::{parse, verify};
    let site = Site::start(AbSettings::default()).await;
    let hooks = receiver(vec![500]).await;
    let (status, bad) = site
        .send(
            reqwest::Method::POST,
            "/endpoints.json",
            Some(json!({"endpoint": {"url": "ftp://x", "webhook_subscriptions": []}})),
        )
        .await;
    assert_eq!(status, 422);
    assert_eq!(
        bad["errors"][0],
        "URL: invalid, only http and https supported"
    );
    let (status, bad) = site
        .send(
            reqwest::Method::POST,
            "/endpoints.json",
            Some(json!({"endpoint": {"url": hooks.url, "webhook_subscriptions": ["foobar"]}})),
        )
        .await;
    assert_eq!(status, 422);
    assert_eq!(bad["errors"][0], "Event key is not valid - foobar");
    let (status, endpoint) = site
        .send(
            reqwest::Method::POST,
            "/endpoints.json",
            Some(json!({"endpoint": {"url": hooks.url,
                "webhook_subscriptions": ["subscription_state_change"]}})),
        )
        .await;
    assert_eq!(status, 200, "{endpoint}");
    assert_eq!(endpoint["endpoint"]["status"], "enabled");

    let id = site.subscription("006-hooks", json!({})).await;
    assert!(
        site.ab.deliver_webhooks().await.is_empty(),
        "no endpoint takes signup_success"
    );
    site.ab.set_state(id, "past_due").unwrap();
    let first = site.ab.deliver_webhooks().await;
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].status, Some(500));
    assert!(
        site.ab.deliver_webhooks().await.is_empty(),
        "the retry waits 10 s"
    );
    site.ab.advance_clock(Duration::from_secs(10));
    let second = site.ab.deliver_webhooks().await;
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].status, Some(200));
    site.ab.advance_clock(Duration::from_secs(600));
    assert!(
        site.ab.deliver_webhooks().await.is_empty(),
        "accepted: sent no more"
    );

    let got = hooks.got.lock().unwrap().clone();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0], got[1], "a retry is the same webhook, byte for byte");
    let (webhook_id, signature, body) = &got[0];
    let key = site.ab.webhook_shared_key();
    assert_eq!(
        verify(key.as_bytes(), body.as_bytes(), Some(signature)),
        Ok(())
    );
    assert!(verify(b"another key", body.as_bytes(), Some(signature)).is_err());
    let webhook = parse(body.as_bytes()).unwrap();
    assert_eq!(&webhook.id, webhook_id);
    assert_eq!(webhook.event, "subscription_state_change");
    assert_eq!(webhook.subscription_id, Some(id));
    assert!(
        body.contains("payload%5Bsubscription%5D%5Bstate%5D=past_due"),
        "{body}"
    );

    let (_, log) = site
        .send(reqwest::Method::GET, "/webhooks.json", None)
        .await;
    assert_eq!(log[0]["webhook"]["successful"], true, "{log}");
    assert_eq!(
        log[0]["webhook"]["signature_hmac_sha_256"],
        json!(signature)
    );
    let (status, replayed) = site
        .send(
            reqwest::Method::POST,
            "/webhooks/replay.json",
            Some(json!({"ids": [webhook_id.parse::<i64>().unwrap()]})),
        )
        .await;
    assert_eq!((status, replayed), (200, json!({"status": "ok"})));
    let again = site.ab.deliver_webhooks().await;
    assert_eq!(again.len(), 1);
    assert_eq!(
        hooks.got.lock().unwrap()[2],
        got[0],
        "a replay keeps the id"
    );
}

#[tokio::test]
async fn a_refused_webhook_is_tried_five_times_at_abs_intervals_then_left() {
    let site = Site::start(AbSettings::default()).await;
    let hooks = receiver(vec![503; 10]).await;
    let (status, _) = site
        .send(
            reqwest::Method::POST,
            "/endpoints.json",
            Some(json!({"endpoint": {"url": hooks.url,
                "webhook_subscriptions": ["subscription_state_change"]}})),
        )
        .await;
    assert_eq!(status, 200);
    let id = site.subscription("006-refused", json!({})).await;
    site.ab.set_state(id, "past_due").unwrap();
    assert_eq!(site.ab.deliver_webhooks().await.len(), 1, "sent at once");
    // Then 10 s, 15 s, 90 s and 180 s after each refusal (checked a second early, and on time).
    for delay in [10, 15, 90, 180] {
        site.ab.advance_clock(Duration::from_secs(delay - 1));
        assert!(
            site.ab.deliver_webhooks().await.is_empty(),
            "{delay} s: early"
        );
        site.ab.advance_clock(Duration::from_secs(1));
        assert_eq!(site.ab.deliver_webhooks().await.len(), 1, "{delay} s: due");
    }
    site.ab.advance_clock(Duration::from_secs(3600));
    assert!(
        site.ab.deliver_webhooks().await.is_empty(),
        "five attempts in all"
    );
    assert_eq!(hooks.got.lock().unwrap().len(), 5);
    let (_, log) = site
        .send(reqwest::Method::GET, "/webhooks.json", None)
        .await;
    assert_eq!(log[0]["webhook"]["successful"], false);
    assert_eq!(log[0]["webhook"]["last_error"], "HTTP 503");
}
