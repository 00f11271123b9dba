//! The billing sync over a backlog of AB events: a site whose log holds `events` events (the
//! subscriptions' signups, then state changes back and forth) is synced in one run, and the run's
//! Salesforce calls are counted against the target of one call per 200 changed records.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use dealbridge::billing::sync::{LedgerCursors, SyncBounds, SyncRequest, sync_site};
use dealbridge::maxio::options::DEFAULT_SITE;
use dealbridge_sandbox::local::LocalStack;
use dealbridge_sandbox::salesforce::routes;
use serde_json::{Map, Value, json};

/// What the run did.
#[derive(Debug, Clone, PartialEq)]
pub struct BacklogResult {
    /// Events in the site's log, and how many of them the run read.
    pub events: usize,
    pub read: usize,
    /// Distinct subscriptions the events named, and the Opportunities written.
    pub subscriptions: usize,
    pub written: usize,
    /// Salesforce write calls, and the target: one per 200 changed records.
    pub salesforce_calls: usize,
    pub target_calls: usize,
    /// AB requests the run made (event pages and subscription reads).
    pub ab_requests: usize,
    pub wall: Duration,
    pub caught_up: bool,
}

impl BacklogResult {
    pub fn met(&self) -> bool {
        self.caught_up
            && self.written == self.subscriptions
            && self.salesforce_calls <= self.target_calls
    }
}

/// Subscriptions in the backlog: each one's signup and state changes make up the events.
fn subscriptions_for(events: usize) -> usize {
    (events / 10).clamp(1, 1000)
}

/// Builds a backlog of at least `events` events and syncs it once.
pub async fn run(events: usize) -> anyhow::Result<BacklogResult> {
    let stack = LocalStack::start().await?;
    let site = &stack.maxio_ab;
    let http = reqwest::Client::new();
    let key = site.settings().api_key;
    let post = |path: &str, body: Value| {
        http.post(format!("{}{path}", site.url()))
            .basic_auth(&key, Some("x"))
            .json(&body)
            .send()
    };
    let customer: Value = post(
        "/customers.json",
        json!({"customer": {"first_name": "Backlog", "last_name": "Customer",
                "email": "backlog@example.com", "organization": "Backlog Ltd"}}),
    )
    .await?
    .error_for_status()?
    .json()
    .await?;
    let customer_id = customer["customer"]["id"]
        .as_i64()
        .context("the AB fake answered a customer without an id")?;
    let count = subscriptions_for(events);
    let mut subscriptions = Vec::with_capacity(count);
    for i in 0..count {
        let opportunity = stack.salesforce.with_org(|org| {
            let fields: Map<String, Value> = serde_json::from_value(json!({
                "Name": format!("Backlog deal {i}"), "StageName": "Active",
                "CloseDate": "2026-11-01"}))
            .unwrap_or_default();
            org.insert("Opportunity", &fields)
        });
        let opportunity = opportunity.map_err(|e| anyhow::anyhow!("{e:?}"))?;
        let subscription: Value = post(
            "/subscriptions.json",
            json!({"subscription": {"product_handle": "monthly-usage", "customer_id": customer_id,
                    "reference": opportunity.to_string(), "payment_collection_method": "remittance",
                    "currency": "USD"}}),
        )
        .await?
        .error_for_status()?
        .json()
        .await?;
        subscriptions.push(
            subscription["subscription"]["id"]
                .as_i64()
                .context("the AB fake answered a subscription without an id")?,
        );
    }
    // Every subscription changes state once a pass; the log is counted once a pass (reading it
    // copies it).
    let mut pass = 0usize;
    while site.events().len() < events {
        let state = if pass.is_multiple_of(2) {
            "past_due"
        } else {
            "active"
        };
        for id in &subscriptions {
            site.set_state(*id, state).map_err(|e| anyhow::anyhow!(e))?;
        }
        pass += 1;
    }
    let total = site.events().len();
    site.observer().clear_log();
    stack.salesforce.observer().clear_log();

    let ab_site = stack
        .maxio
        .sites
        .get(DEFAULT_SITE)
        .context("the default AB site")?;
    let cursors = LedgerCursors {
        ledger: stack.maxio.ledger.clone(),
        clock: Arc::new(stack.clock.clone()),
    };
    let request = SyncRequest {
        site: DEFAULT_SITE.into(),
        since: None,
        dry_run: false,
        bounds: SyncBounds {
            deadline: None,
            max_salesforce_calls: usize::MAX,
            ..SyncBounds::default()
        },
    };
    let started = Instant::now();
    let report = sync_site(
        ab_site.ab.as_ref(),
        stack.client.as_ref(),
        &cursors,
        &stack.maxio.mapping,
        &stack.clock,
        &request,
    )
    .await?;
    let wall = started.elapsed();
    let writes = stack
        .salesforce
        .observer()
        .requests()
        .iter()
        .filter(|r| r.route == routes::COLLECTIONS_PATCH)
        .count();
    Ok(BacklogResult {
        events: total,
        read: report.events,
        subscriptions: report.subscriptions,
        written: report.written.len(),
        salesforce_calls: writes.max(report.salesforce_calls),
        target_calls: report.written.len().div_ceil(200),
        ab_requests: site.observer().requests().len(),
        wall,
        caught_up: report.caught_up,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_backlog_is_synced_in_one_run_with_one_salesforce_call_per_200_changed_records() {
        // 300 subscriptions, each named by about ten events spread over the log: each is written
        // once, two calls in all.
        let result = run(3000).await.unwrap();
        assert!(result.events >= 3000, "{result:?}");
        assert_eq!(result.read, result.events);
        assert_eq!(result.subscriptions, 300);
        assert_eq!(result.written, 300);
        assert_eq!(result.salesforce_calls, 2, "{result:?}");
        assert!(result.met(), "{result:?}");
    }
}
