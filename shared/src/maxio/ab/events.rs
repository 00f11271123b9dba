//! AB's event log on the AB client (`lifecycle.md` §3.8): `GET /events.json` read forward from a
//! cursor. `since_id` is exclusive, so the id of the last event handled is the cursor: reading
//! from it again misses nothing and repeats nothing.

use reqwest::Method;
use serde::Deserialize;

use super::client::{AbClient, Wrapped};
use super::error::MaxioError;

/// AB's largest page of events.
pub const MAX_EVENTS_PER_PAGE: u32 = 200;

/// One event: what changed, on which subscription.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct AbEvent {
    pub id: i64,
    pub key: String,
    #[serde(default)]
    pub subscription_id: Option<i64>,
    #[serde(default)]
    pub customer_id: Option<i64>,
    #[serde(default)]
    pub created_at: Option<String>,
}

impl AbClient {
    /// Up to `per_page` (at most 200) events after `since_id` (all of them from the first when
    /// `None`), oldest first.
    pub async fn events_since(
        &self,
        since_id: Option<i64>,
        per_page: u32,
    ) -> Result<Vec<AbEvent>, MaxioError> {
        let per_page = per_page.clamp(1, MAX_EVENTS_PER_PAGE);
        let mut path = format!("/events.json?direction=asc&per_page={per_page}");
        if let Some(since) = since_id {
            path.push_str(&format!("&since_id={since}"));
        }
        let events: Vec<Wrapped<AbEvent>> = self
            .call(Method::GET, &path, None)
            .await?
            .unwrap_or_default();
        Ok(events.into_iter().map(|w| w.inner).collect())
    }
}
