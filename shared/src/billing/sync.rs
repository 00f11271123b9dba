//! The billing sync of one AB site: brings what Salesforce shows of each subscription to what AB
//! holds now, for every subscription AB recorded a change to since the site's cursor.
//!
//! - AB's event log is read forward from the cursor (`since_id`, exclusive), up to
//!   [`SCAN_PAGES`] pages of 200 at a time, and the distinct subscriptions its billing events
//!   name are gathered in the order of their first event: a subscription named by a thousand
//!   events of the stretch is read and written once. They are written 200 a batch.
//! - Each is read from AB (the state now, not the event's), and kept only when its `reference`
//!   is an Opportunity Id: dealbridge creates its subscriptions with the Opportunity's Id, so AB
//!   itself is the map from a subscription to its Opportunity, and no Salesforce query is needed.
//! - The batch is written to those Opportunities by Id (sObject Collections, one call per 200
//!   subscriptions; a refused record retried alone). Not by upsert on the subscription id: an
//!   amended or renewed Contract's later Opportunities carry the same subscription id, so the key
//!   names several records and Salesforce refuses it; the reference names exactly one, and an
//!   update never creates a record. Only then the cursor moves: to just before the first event
//!   of the first subscription still to write (every event before it names one already written,
//!   read from AB after that event), or to the stretch's end. A run that stops (its bounds, an
//!   error) resumes from there: nothing is missed,
//!   and nothing Salesforce accepted is sent again. What Salesforce refused is kept with the
//!   cursor and tried again at the start of the next run (and reported again while it fails).
//!
//! Webhooks only make this faster; a run on its own reaches the same state, and running it twice
//! changes nothing the second time.

use std::collections::BTreeSet;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::state::{BillingReadError, SubscriptionBilling, opportunity_billing_fields};
use super::upsert::{BATCH, update_all};
use super::webhook::BILLING_EVENTS;
use crate::clock::Clock;
use crate::ledger::{Ledger, LedgerError, StepStatus};
use crate::mapping::Mapping;
use crate::maxio::ab::{MAX_EVENTS_PER_PAGE, MaxioError};
use crate::ports::{MaxioAb, SalesforceWrites};
use crate::salesforce::{RecordUpdate, SalesforceError, SfId};

/// Where a site's runs stand: the last event handled, and the subscriptions Salesforce refused
/// (tried again at the start of the next run, so a refusal is never forgotten).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Position {
    pub since_id: Option<i64>,
    pub refused: Vec<i64>,
}

/// Where each site's position is kept between runs.
#[async_trait]
pub trait Cursors: Send + Sync {
    async fn get(&self, site: &str) -> Result<Position, LedgerError>;
    async fn put(&self, site: &str, position: &Position) -> Result<(), LedgerError>;
}

/// The step name of a site's cursor record in the ledger.
pub const CURSOR_STEP: &str = "billing-events-cursor";

/// The ledger key of a site's cursor record.
pub fn cursor_key(site: &str) -> String {
    format!("billing-sync:{site}")
}

/// Each site's position as a ledger record of its own (`billing-sync:<site>`): `since_id` and
/// `refused` (comma-separated subscription ids) are its targets.
pub struct LedgerCursors {
    pub ledger: Arc<dyn Ledger>,
    pub clock: Arc<dyn Clock>,
}

#[async_trait]
impl Cursors for LedgerCursors {
    async fn get(&self, site: &str) -> Result<Position, LedgerError> {
        let Some(record) = self.ledger.get(&cursor_key(site), CURSOR_STEP).await? else {
            return Ok(Position::default());
        };
        Ok(Position {
            since_id: record.targets.get("since_id").and_then(|v| v.parse().ok()),
            refused: record
                .targets
                .get("refused")
                .map(|v| {
                    v.split(',')
                        .filter_map(|id| id.trim().parse().ok())
                        .collect()
                })
                .unwrap_or_default(),
        })
    }

    async fn put(&self, site: &str, position: &Position) -> Result<(), LedgerError> {
        let mut targets = std::collections::BTreeMap::new();
        if let Some(since) = position.since_id {
            targets.insert("since_id".to_string(), since.to_string());
        }
        let refused: Vec<String> = position.refused.iter().map(ToString::to_string).collect();
        targets.insert("refused".to_string(), refused.join(","));
        self.ledger
            .note(
                &cursor_key(site),
                CURSOR_STEP,
                StepStatus::Completed,
                &targets,
                None,
                self.clock.now(),
            )
            .await
            .map(|_| ())
    }
}

/// How far one run may go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncBounds {
    /// Stop before a batch that would start after this time.
    pub deadline: Option<DateTime<Utc>>,
    /// Stop before a batch once this many Salesforce calls were made.
    pub max_salesforce_calls: usize,
    /// Subscriptions per batch (and so per upsert call): Salesforce's 200 unless smaller.
    pub batch: usize,
}

impl Default for SyncBounds {
    fn default() -> Self {
        SyncBounds {
            deadline: None,
            max_salesforce_calls: 100,
            batch: BATCH,
        }
    }
}

/// What to do: the site, where to start, and whether to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncRequest {
    pub site: String,
    /// Start after this event id instead of the stored cursor (the stored cursor still moves,
    /// unless `dry_run`).
    pub since: Option<i64>,
    /// Read and compute, write nothing and leave the cursor.
    pub dry_run: bool,
    pub bounds: SyncBounds,
}

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SiteReport {
    pub site: String,
    /// The cursor the run started from, and where it stands now.
    pub from: Option<i64>,
    pub cursor: Option<i64>,
    /// Events read, and the distinct subscriptions their billing events named.
    pub events: usize,
    pub subscriptions: usize,
    /// Opportunities written (or, in a dry run, that would be), by subscription id.
    pub written: Vec<String>,
    /// Subscriptions Salesforce refused (twice) or AB answered unreadably, with why.
    pub failed: Vec<(String, String)>,
    /// Subscriptions whose `reference` is no Opportunity Id: not dealbridge's, left alone.
    pub not_ours: Vec<i64>,
    /// Subscriptions AB no longer has.
    pub gone: Vec<i64>,
    pub salesforce_calls: usize,
    /// True when the run read the log to its end.
    pub caught_up: bool,
    /// Why a run stopped before the end of the log.
    pub stopped: Option<String>,
    /// In a dry run: the fields each Opportunity would get, by subscription id.
    pub planned: Vec<(String, Map<String, Value>)>,
}

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("AB: {0}")]
    Ab(#[from] MaxioError),
    #[error("Salesforce: {0}")]
    Salesforce(#[from] SalesforceError),
    #[error("the cursor store: {0}")]
    Cursor(#[from] LedgerError),
}

/// How many pages of events one scan reads ahead (10,000 events): every subscription they name is
/// read and written once, however many of the events name it.
pub const SCAN_PAGES: usize = 50;

/// A stretch of the log read ahead: the distinct subscriptions its billing events name, in the
/// order of their first event, each with that event's id.
#[derive(Default)]
struct Scan {
    pending: std::collections::VecDeque<(i64, i64)>,
    last_event: Option<i64>,
    events: usize,
    end_of_log: bool,
}

impl Scan {
    /// The cursor once every subscription before `pending`'s first is written: just before the
    /// first event of the first one still pending (every event before it names a subscription
    /// already written, read from AB after the event), or the scan's end when none is.
    fn cursor(&self) -> Option<i64> {
        match self.pending.front() {
            Some((_, first_event)) => Some(first_event - 1),
            None => self.last_event,
        }
    }
}

/// Reads up to [`SCAN_PAGES`] pages of events after `cursor`.
async fn scan(ab: &dyn MaxioAb, cursor: Option<i64>) -> Result<Scan, MaxioError> {
    let mut scan = Scan {
        last_event: cursor,
        ..Scan::default()
    };
    let mut named = BTreeSet::new();
    for _ in 0..SCAN_PAGES {
        let page = ab
            .events_since(scan.last_event, MAX_EVENTS_PER_PAGE)
            .await?;
        let full_page = page.len() >= MAX_EVENTS_PER_PAGE as usize;
        for event in &page {
            // Events must move forward; one that does not would loop the cursor.
            if scan.last_event.is_some_and(|last| event.id <= last) {
                continue;
            }
            let id = event
                .subscription_id
                .filter(|_| BILLING_EVENTS.contains(&event.key.as_str()));
            if let Some(id) = id
                && named.insert(id)
            {
                scan.pending.push_back((id, event.id));
            }
            scan.last_event = Some(event.id);
            scan.events += 1;
        }
        if !full_page {
            scan.end_of_log = true;
            break;
        }
    }
    Ok(scan)
}

/// Whether a subscription's `reference` names an Opportunity.
fn opportunity_of(reference: Option<&str>) -> Option<SfId> {
    SfId::parse(reference?.trim())
        .ok()
        .filter(|id| id.key_prefix() == "006")
}

/// Runs the sync of one site.
pub async fn sync_site(
    ab: &dyn MaxioAb,
    sf: &dyn SalesforceWrites,
    cursors: &dyn Cursors,
    mapping: &Mapping,
    clock: &dyn Clock,
    request: &SyncRequest,
) -> Result<SiteReport, SyncError> {
    let stored = cursors.get(&request.site).await?;
    let from = request.since.or(stored.since_id);
    let mut report = SiteReport {
        site: request.site.clone(),
        from,
        cursor: from,
        ..SiteReport::default()
    };
    // What Salesforce refused last time is tried again first.
    let mut retry = stored.refused;
    let mut refused: Vec<i64> = Vec::new();
    let mut window = Scan::default();
    loop {
        if request
            .bounds
            .deadline
            .is_some_and(|deadline| clock.now() >= deadline)
        {
            report.stopped = Some("the run's time is up".into());
            break;
        }
        if report.salesforce_calls >= request.bounds.max_salesforce_calls {
            report.stopped = Some(format!(
                "the run's {} Salesforce calls are spent",
                request.bounds.max_salesforce_calls
            ));
            break;
        }
        let size = request.bounds.batch.clamp(1, BATCH);
        if window.pending.is_empty() && !window.end_of_log {
            window = scan(ab, report.cursor).await?;
            report.events += window.events;
        }
        let take = size.min(window.pending.len());
        let mut subscriptions: Vec<i64> = window.pending.drain(..take).map(|(id, _)| id).collect();
        for id in std::mem::take(&mut retry).into_iter().rev() {
            if !subscriptions.contains(&id) {
                subscriptions.insert(0, id);
            }
        }
        let cursor = window.cursor();
        report.subscriptions += subscriptions.len();
        let mut records = Vec::new();
        for id in &subscriptions {
            let Some(subscription) = ab.read_subscription(*id).await? else {
                report.gone.push(*id);
                continue;
            };
            let Some(opportunity) = opportunity_of(subscription.reference.as_deref()) else {
                report.not_ours.push(*id);
                continue;
            };
            match SubscriptionBilling::from_ab(&subscription) {
                Ok(billing) => records.push((
                    id.to_string(),
                    RecordUpdate {
                        sobject: "Opportunity".into(),
                        id: opportunity,
                        fields: opportunity_billing_fields(&billing, mapping, clock.now()),
                    },
                )),
                Err(BillingReadError { problem, .. }) => {
                    report.failed.push((id.to_string(), problem));
                }
            }
        }
        if request.dry_run {
            report
                .written
                .extend(records.iter().map(|(k, _)| k.clone()));
            report
                .planned
                .extend(records.into_iter().map(|(k, r)| (k, r.fields)));
        } else if !records.is_empty() {
            let written = update_all(sf, records).await?;
            report.salesforce_calls += written.calls;
            report.written.extend(written.written);
            for (key, errors) in written.failed {
                refused.extend(key.parse::<i64>().ok());
                let why: Vec<String> = errors.iter().map(ToString::to_string).collect();
                report.failed.push((key, why.join("; ")));
            }
        }
        if !request.dry_run {
            let position = Position {
                since_id: cursor,
                refused: refused.clone(),
            };
            cursors.put(&request.site, &position).await?;
        }
        report.cursor = cursor;
        if window.pending.is_empty() {
            if window.end_of_log {
                report.caught_up = true;
                break;
            }
            // The next scan starts where this one ended.
            window = Scan::default();
        }
    }
    Ok(report)
}
