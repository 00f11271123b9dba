//! The end of a subscription's life on the AB client (`lifecycle.md` §3.5): read a
//! subscription by id, cancel it (now, at the end of the period, or at a scheduled time),
//! withdraw a delayed cancel, reactivate it.
//!
//! Errors keep the client's classification: a 422 is [`MaxioError::Rejected`] (permanent), a
//! 404 [`MaxioError::NotFound`], 429/5xx/timeouts are retried and then returned as retryable.
//! A second cancel is a 422 ([`is_already_canceled`]): after an answer was lost, read the
//! subscription to see whether the first one went through.

use reqwest::Method;
use serde_json::{Value, json};

use super::client::{AbClient, Wrapped};
use super::error::MaxioError;
use super::model::{Cancellation, SubscriptionLifecycle};

/// Whether `e` is AB's refusal of a cancel or delayed cancel because the subscription is
/// canceled already (`{"error":"The subscription is already canceled"}`).
pub fn is_already_canceled(e: &MaxioError) -> bool {
    matches!(e, MaxioError::Rejected { status: 422, .. }) && e.mentions("already canceled")
}

/// Whether `e` is a 422 about the site feature "Schedule Subscription Cancellation" (a cancel
/// with `cancel_at_end_of_period` or `scheduled_cancellation_at` on a site without it): fall
/// back on a delayed cancel or on dealbridge's own scheduling. The wording is not documented, so
/// this looks for the feature or for the fields named.
pub fn needs_scheduled_cancellation_feature(e: &MaxioError) -> bool {
    matches!(e, MaxioError::Rejected { status: 422, .. })
        && (e.mentions("schedule subscription cancellation")
            || e.mentions("scheduled_cancellation_at")
            || e.mentions("scheduled cancellation"))
}

/// `{"subscription": cancellation}`, or no body when nothing is set.
fn body(cancellation: &Cancellation) -> Option<Value> {
    (!cancellation.is_empty()).then(|| json!({ "subscription": cancellation }))
}

/// The `message` of a lifecycle answer whose text is not documented: the `message` string of a
/// JSON object, else the trimmed text itself when it is not JSON; `None` for an empty body.
fn message(text: &str) -> Option<String> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return None;
    }
    match serde_json::from_str::<Value>(trimmed) {
        Ok(v) => v.get("message").and_then(Value::as_str).map(str::to_string),
        Err(_) => Some(trimmed.chars().take(300).collect()),
    }
}

impl AbClient {
    /// `GET /subscriptions/{id}.json`; `None` when AB has no such subscription.
    pub async fn read_subscription(
        &self,
        subscription_id: i64,
    ) -> Result<Option<SubscriptionLifecycle>, MaxioError> {
        let path = format!("/subscriptions/{subscription_id}.json");
        Ok(self
            .call::<Wrapped<SubscriptionLifecycle>>(Method::GET, &path, None)
            .await?
            .map(|w| w.inner))
    }

    /// `DELETE /subscriptions/{id}.json`: cancels now, or, with `cancel_at_end_of_period` or
    /// `scheduled_cancellation_at` (site feature needed, see
    /// [`needs_scheduled_cancellation_feature`]), schedules the cancellation. The subscription as
    /// AB now has it (`canceled`, or still active with the cancellation pending).
    pub async fn cancel_subscription(
        &self,
        subscription_id: i64,
        cancellation: &Cancellation,
    ) -> Result<SubscriptionLifecycle, MaxioError> {
        let path = format!("/subscriptions/{subscription_id}.json");
        self.call::<Wrapped<SubscriptionLifecycle>>(
            Method::DELETE,
            &path,
            body(cancellation).as_ref(),
        )
        .await?
        .map(|w| w.inner)
        .ok_or_else(|| MaxioError::NotFound(format!("subscription {subscription_id}")))
    }

    /// `POST /subscriptions/{id}/delayed_cancel.json`: cancels at the end of the current
    /// period (`cancel_at_end_of_period`, `delayed_cancel_at`). AB's `message`, whose text is
    /// not documented (read [`Self::read_subscription`] to see the result).
    pub async fn delayed_cancel(
        &self,
        subscription_id: i64,
        cancellation: &Cancellation,
    ) -> Result<Option<String>, MaxioError> {
        let path = format!("/subscriptions/{subscription_id}/delayed_cancel.json");
        let text = self
            .call_text(Method::POST, &path, body(cancellation).as_ref())
            .await?
            .ok_or_else(|| MaxioError::NotFound(format!("subscription {subscription_id}")))?;
        Ok(message(&text))
    }

    /// `DELETE /subscriptions/{id}/delayed_cancel.json`: the subscription will no longer be
    /// canceled at the end of the period. Idempotent. AB's `message`.
    pub async fn withdraw_delayed_cancel(
        &self,
        subscription_id: i64,
    ) -> Result<Option<String>, MaxioError> {
        let path = format!("/subscriptions/{subscription_id}/delayed_cancel.json");
        let text = self
            .call_text(Method::DELETE, &path, None)
            .await?
            .ok_or_else(|| MaxioError::NotFound(format!("subscription {subscription_id}")))?;
        Ok(message(&text))
    }

    /// `PUT /subscriptions/{id}/reactivate.json` (no options): a `canceled`, `trial_ended` or
    /// `unpaid` subscription becomes active again, its cancellation fields cleared. Any other
    /// state is a 422.
    pub async fn reactivate(
        &self,
        subscription_id: i64,
    ) -> Result<SubscriptionLifecycle, MaxioError> {
        let path = format!("/subscriptions/{subscription_id}/reactivate.json");
        self.call::<Wrapped<SubscriptionLifecycle>>(Method::PUT, &path, None)
            .await?
            .map(|w| w.inner)
            .ok_or_else(|| MaxioError::NotFound(format!("subscription {subscription_id}")))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use chrono::TimeZone;
    use serde_json::json;
    use url::Url;
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    use super::*;
    use crate::maxio::ab::AbClientSettings;
    use crate::retry::RetryPolicy;
    use crate::secrets::InMemorySecrets;

    fn client(server: &MockServer) -> AbClient {
        let secrets = InMemorySecrets::new();
        secrets.insert("ab", r#"{"api_key":"k"}"#);
        AbClient::new(
            AbClientSettings {
                base_url: Url::parse(&server.uri()).unwrap(),
                secret_name: "ab".into(),
                timeout: Duration::from_secs(5),
                retry: RetryPolicy {
                    max_attempts: 3,
                    base_delay: Duration::from_millis(1),
                    max_delay: Duration::from_millis(5),
                },
                max_concurrent_requests: 4,
            },
            Arc::new(secrets),
        )
        .unwrap()
    }

    fn canceled() -> serde_json::Value {
        json!({"subscription": {
            "id": 7, "state": "canceled", "previous_state": "active",
            "canceled_at": "2026-03-10T07:00:00-05:00", "cancellation_message": "Case 500",
            "cancellation_method": "merchant_api", "reason_code": 12,
            "cancel_at_end_of_period": null, "delayed_cancel_at": null,
            "scheduled_cancellation_at": null,
            "current_period_ends_at": "2026-04-10T07:00:00-05:00"
        }})
    }

    async fn bodies(server: &MockServer) -> Vec<String> {
        server
            .received_requests()
            .await
            .unwrap_or_default()
            .into_iter()
            .map(|r| String::from_utf8(r.body).unwrap())
            .collect()
    }

    #[tokio::test]
    async fn a_cancel_sends_only_what_is_set_and_reads_the_canceled_subscription() {
        let server = MockServer::start().await;
        Mock::given(method("DELETE"))
            .and(path("/subscriptions/7.json"))
            .respond_with(ResponseTemplate::new(200).set_body_json(canceled()))
            .expect(2)
            .mount(&server)
            .await;
        let ab = client(&server);
        let got = ab
            .cancel_subscription(7, &Cancellation::with_message("Case 500"))
            .await
            .unwrap();
        assert!(got.is_canceled());
        assert_eq!(got.previous_state.as_deref(), Some("active"));
        assert_eq!(got.reason_code.as_deref(), Some("12"));
        assert!(!got.cancel_at_end_of_period);
        assert_eq!(got.pending_cancellation_at(), None);
        ab.cancel_subscription(7, &Cancellation::default())
            .await
            .unwrap();
        assert_eq!(
            bodies(&server).await,
            [
                r#"{"subscription":{"cancellation_message":"Case 500"}}"#,
                ""
            ]
        );
    }

    #[tokio::test]
    async fn a_scheduled_cancel_sends_its_time_in_utc() {
        let server = MockServer::start().await;
        Mock::given(method("DELETE"))
            .and(path("/subscriptions/7.json"))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(json!({"subscription": {
                    "id": 7, "state": "active", "cancel_at_end_of_period": false,
                    "scheduled_cancellation_at": "2026-05-01T07:00:00-05:00"
                }})),
            )
            .mount(&server)
            .await;
        let at = chrono::Utc.with_ymd_and_hms(2026, 5, 1, 12, 0, 0).unwrap();
        let got = client(&server)
            .cancel_subscription(
                7,
                &Cancellation {
                    reason_code: Some("moved".into()),
                    scheduled_cancellation_at: Some(at),
                    ..Cancellation::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(got.pending_cancellation_at(), Some(at));
        assert_eq!(
            bodies(&server).await,
            [
                r#"{"subscription":{"reason_code":"moved","scheduled_cancellation_at":"2026-05-01T12:00:00Z"}}"#
            ]
        );
    }

    #[tokio::test]
    async fn refusals_keep_their_classification() {
        let server = MockServer::start().await;
        Mock::given(method("DELETE"))
            .and(path("/subscriptions/7.json"))
            .respond_with(
                ResponseTemplate::new(422)
                    .set_body_json(json!({"error": "The subscription is already canceled"})),
            )
            .mount(&server)
            .await;
        Mock::given(method("DELETE"))
            .and(path("/subscriptions/8.json"))
            .respond_with(ResponseTemplate::new(422).set_body_json(json!({"errors": [
                "Scheduled cancellation is not enabled: turn on the \"Schedule Subscription Cancellation\" feature."
            ]})))
            .mount(&server)
            .await;
        Mock::given(method("PUT"))
            .and(path("/subscriptions/9/reactivate.json"))
            .respond_with(ResponseTemplate::new(404))
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/subscriptions/9/delayed_cancel.json"))
            .respond_with(ResponseTemplate::new(503).set_body_string("down"))
            .expect(3)
            .mount(&server)
            .await;
        let ab = client(&server);
        let twice = ab
            .cancel_subscription(7, &Cancellation::default())
            .await
            .unwrap_err();
        assert!(is_already_canceled(&twice), "{twice}");
        assert!(!twice.is_retryable());
        assert!(!needs_scheduled_cancellation_feature(&twice));
        let feature = ab
            .cancel_subscription(
                8,
                &Cancellation {
                    cancel_at_end_of_period: Some(true),
                    ..Cancellation::default()
                },
            )
            .await
            .unwrap_err();
        assert!(needs_scheduled_cancellation_feature(&feature), "{feature}");
        assert!(!is_already_canceled(&feature));
        let missing = ab.reactivate(9).await.unwrap_err();
        assert!(matches!(missing, MaxioError::NotFound(_)), "{missing}");
        let down = ab
            .delayed_cancel(9, &Cancellation::default())
            .await
            .unwrap_err();
        assert!(down.is_retryable(), "{down}");
    }

    #[tokio::test]
    async fn delayed_cancel_messages_are_read_whatever_their_shape() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/subscriptions/7/delayed_cancel.json"))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(json!({"message": "Will be canceled"})),
            )
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/subscriptions/8/delayed_cancel.json"))
            .respond_with(ResponseTemplate::new(200))
            .mount(&server)
            .await;
        Mock::given(method("DELETE"))
            .and(path("/subscriptions/7/delayed_cancel.json"))
            .respond_with(ResponseTemplate::new(200).set_body_string("OK"))
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/subscriptions/7.json"))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(json!({"subscription": {
                    "id": 7, "state": "active", "cancel_at_end_of_period": true,
                    "delayed_cancel_at": null, "current_period_ends_at": "2026-04-10T07:00:00-05:00"
                }})),
            )
            .mount(&server)
            .await;
        let ab = client(&server);
        assert_eq!(
            ab.delayed_cancel(7, &Cancellation::default())
                .await
                .unwrap()
                .as_deref(),
            Some("Will be canceled")
        );
        assert_eq!(
            ab.delayed_cancel(8, &Cancellation::default())
                .await
                .unwrap(),
            None
        );
        assert_eq!(
            ab.withdraw_delayed_cancel(7).await.unwrap().as_deref(),
            Some("OK")
        );
        let read = ab.read_subscription(7).await.unwrap().unwrap();
        assert_eq!(
            read.pending_cancellation_at(),
            Some(chrono::Utc.with_ymd_and_hms(2026, 4, 10, 12, 0, 0).unwrap())
        );
        assert_eq!(ab.read_subscription(99).await.unwrap(), None);
    }
}
