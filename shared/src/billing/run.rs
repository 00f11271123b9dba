//! The billing-sync function's work: the schedule's fan-out into hints, and the hints on the
//! billing-sync queue turned into runs of the billing sync.
//!
//! - The schedule (daily by default) sends one hint per target: each AB site, and the WHMCS
//!   services when WHMCS is configured. It does no syncing itself, so every run of a target goes
//!   through its FIFO message group and no two runs of one target overlap.
//! - The hints of one batch are gathered by target, and each target runs once, however many
//!   webhooks named it: a run reads everything since the cursor anyway.
//! - A run is bounded by the invocation's time (it starts no batch in the last
//!   [`STOP_BEFORE_DEADLINE`]) and by its Salesforce calls. One that stops with more to do sends a
//!   continuation hint named by the cursor it stopped at, so the rest follows at once, and a
//!   delivery repeated after a crash sends the same message (deduplicated) rather than a second
//!   chain.
//! - A run that fails (AB, Salesforce or the ledger unavailable, a refused configuration) leaves
//!   its hints to return: they are retried after the visibility timeout and end in the queue's
//!   dead-letter queue (alarmed) if they never succeed. The cursor never moved past what
//!   Salesforce accepted, so a retry misses nothing.
//! - A message that is not a sealed hint, or names a site this stack does not have, can never be
//!   handled: it goes to the dead-letter queue at once.

use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::sqs::SqsMessage;
use chrono::{DateTime, Utc};
use tracing::{error, info, warn};

use super::hint::{Hint, Reason, Target};
use super::services_sync::{ServicesReport, ServicesRequest, sync_services};
use super::sync::{Cursors, SiteReport, SyncBounds, SyncRequest, sync_site};
use crate::clock::Clock;
use crate::codes::ErrorCode;
use crate::failure::Failure;
use crate::mapping::Mapping;
use crate::maxio::sites::Sites;
use crate::ports::{SalesforceQueries, SalesforceUpserts, SalesforceWrites, Whmcs};
use crate::queue::{DeadLetterQueue, Queue, QueueError, QueueName};
use crate::runner::{Delivery, Handled, RecordResult};

/// A run starts no new batch this close to the invocation's deadline.
pub const STOP_BEFORE_DEADLINE: Duration = Duration::from_secs(90);

/// What the billing sync runs on.
pub struct BillingRun {
    pub sites: Arc<Sites>,
    /// `None` where WHMCS is not configured: the services are not synced.
    pub whmcs: Option<Arc<dyn Whmcs>>,
    pub sf_writes: Arc<dyn SalesforceWrites>,
    pub sf_queries: Arc<dyn SalesforceQueries>,
    pub sf_upserts: Arc<dyn SalesforceUpserts>,
    pub cursors: Arc<dyn Cursors>,
    pub mapping: Arc<Mapping>,
    pub clock: Arc<dyn Clock>,
    /// Where the schedule's hints and the continuations go (the billing-sync queue).
    pub queue: Arc<dyn Queue>,
    /// Opens every message before it is handled (`None` only where nothing seals them).
    pub seal: Option<Arc<crate::seal::Seal>>,
    /// How far one run of a site may go: its Salesforce calls and batch size (the deadline is
    /// each invocation's own).
    pub bounds: SyncBounds,
}

/// What one run of a target did.
#[derive(Debug, Clone, PartialEq)]
pub enum TargetReport {
    Site(SiteReport),
    Services(ServicesReport),
}

impl BillingRun {
    /// Every target this stack syncs: each AB site, then the WHMCS services.
    pub fn targets(&self) -> Vec<Target> {
        let mut targets: Vec<Target> = self
            .sites
            .names()
            .into_iter()
            .map(|site| Target::AbSite { site: site.into() })
            .collect();
        if self.whmcs.is_some() {
            targets.push(Target::WhmcsServices);
        }
        targets
    }

    /// The schedule fired at `at`: one hint per target (the same ids if the schedule's
    /// invocation is retried). Fails if a hint could not be sent, so the invocation is retried.
    pub async fn schedule(&self, at: DateTime<Utc>) -> Result<Vec<Target>, QueueError> {
        let targets = self.targets();
        for target in &targets {
            let hint = Hint::new(target.clone(), Reason::Schedule { at });
            self.send(&hint).await?;
        }
        info!(at = %at, targets = targets.len(), "billing sync scheduled");
        Ok(targets)
    }

    async fn send(&self, hint: &Hint) -> Result<String, QueueError> {
        let message = hint
            .to_message()
            .map_err(|e| QueueError::invalid(QueueName::BillingSync, e.to_string()))?;
        self.queue.send(&message).await
    }

    /// One run of `target`, bounded by `deadline` (the invocation's end) and the run's
    /// Salesforce calls; with more to do, a continuation hint is sent. An AB site starts from
    /// its cursor; the WHMCS services after the service id `after` (from the start when `None`).
    pub async fn run(
        &self,
        target: &Target,
        after: Option<i64>,
        deadline: Option<DateTime<Utc>>,
    ) -> Result<TargetReport, Failure> {
        let stop_at = deadline.and_then(|d| {
            chrono::Duration::from_std(STOP_BEFORE_DEADLINE)
                .ok()
                .map(|margin| d - margin)
        });
        match target {
            Target::AbSite { site } => {
                let Some(ab) = self.sites.get(site) else {
                    return Err(Failure::new(
                        ErrorCode::BillingSyncFailed,
                        format!(
                            "no AB site {site:?} is configured (the sites are {})",
                            self.sites.names().join(", ")
                        ),
                    ));
                };
                let request = SyncRequest {
                    site: site.clone(),
                    since: None,
                    dry_run: false,
                    bounds: SyncBounds {
                        deadline: stop_at,
                        ..self.bounds
                    },
                };
                let report = sync_site(
                    ab.ab.as_ref(),
                    self.sf_writes.as_ref(),
                    self.cursors.as_ref(),
                    &self.mapping,
                    self.clock.as_ref(),
                    &request,
                )
                .await
                .map_err(|e| {
                    Failure::new(
                        ErrorCode::BillingSyncFailed,
                        format!("the billing sync of AB site {site} failed: {e}"),
                    )
                })?;
                for (subscription, why) in &report.failed {
                    // Kept with the cursor and tried again next run; shown here and by the CLI.
                    warn!(site = %site, subscription = %subscription, error = %why, "a subscription's billing state was not written");
                }
                if let Some(why) = &report.stopped {
                    let hint = Hint::new(
                        target.clone(),
                        Reason::Continue {
                            after: report.cursor,
                        },
                    );
                    self.send(&hint).await.map_err(|e| {
                        Failure::new(
                            ErrorCode::DealbridgeQueue,
                            format!("the billing sync of AB site {site} stopped ({why}) and its continuation could not be sent: {e}"),
                        )
                    })?;
                    info!(site = %site, cursor = ?report.cursor, reason = %why, "billing sync stopped; continuing in a new run");
                }
                info!(site = %site, from = ?report.from, cursor = ?report.cursor, events = report.events, written = report.written.len(), failed = report.failed.len(), salesforce_calls = report.salesforce_calls, "billing sync of an AB site ran");
                Ok(TargetReport::Site(report))
            }
            Target::WhmcsServices => {
                let Some(whmcs) = &self.whmcs else {
                    return Err(Failure::new(
                        ErrorCode::BillingSyncFailed,
                        "WHMCS is not configured; its services cannot be synced",
                    ));
                };
                let report = sync_services(
                    whmcs.as_ref(),
                    self.sf_queries.as_ref(),
                    self.sf_upserts.as_ref(),
                    self.sf_writes.as_ref(),
                    &self.mapping,
                    self.clock.as_ref(),
                    &ServicesRequest {
                        after,
                        deadline: stop_at,
                        dry_run: false,
                    },
                )
                .await
                .map_err(|e| {
                    Failure::new(
                        ErrorCode::BillingSyncFailed,
                        format!("the WHMCS services sync failed: {e}"),
                    )
                })?;
                for (service, why) in &report.failed {
                    warn!(service = %service, error = %why, "a WHMCS service's state was not written");
                }
                if let Some(last) = report.stopped_after {
                    let hint = Hint::new(target.clone(), Reason::Continue { after: Some(last) });
                    self.send(&hint).await.map_err(|e| {
                        Failure::new(
                            ErrorCode::DealbridgeQueue,
                            format!("the WHMCS services sync stopped after service {last} (the run's time was up) and its continuation could not be sent: {e}"),
                        )
                    })?;
                    info!(
                        after = last,
                        "WHMCS services sync stopped at its time; continuing in a new run"
                    );
                }
                info!(
                    services = report.services,
                    written = report.written.len(),
                    failed = report.failed.len(),
                    salesforce_calls = report.salesforce_calls,
                    "billing sync of the WHMCS services ran"
                );
                Ok(TargetReport::Services(report))
            }
        }
    }

    /// Reads a record: its hint, or why it can never be handled.
    async fn read(&self, record: &SqsMessage) -> Result<Hint, (Failure, bool)> {
        let body = record.body.as_deref().ok_or_else(|| {
            (
                Failure::new(ErrorCode::DealbridgeBadMessage, "the message has no body"),
                true,
            )
        })?;
        if let Some(seal) = &self.seal
            && let Err(e) = seal.open(body).await
        {
            let never = e.refuses_the_message();
            return Err((Failure::new(ErrorCode::DealbridgeUnsealed, &e), never));
        }
        let hint = Hint::parse(body)
            .map_err(|e| (Failure::new(ErrorCode::DealbridgeBadMessage, e), true))?;
        if let Target::AbSite { site } = &hint.target
            && self.sites.get(site).is_none()
        {
            return Err((
                Failure::new(
                    ErrorCode::DealbridgeBadMessage,
                    format!("the hint names AB site {site:?}, which this stack does not have"),
                ),
                true,
            ));
        }
        Ok(hint)
    }

    /// Handles a batch of the billing-sync queue's records: each target named runs once, and
    /// each record's outcome is its target's.
    pub async fn handle_records(
        &self,
        records: &[SqsMessage],
        dead_letters: &dyn DeadLetterQueue,
        deadline: Option<DateTime<Utc>>,
    ) -> Vec<RecordResult> {
        let queue = QueueName::BillingSync;
        let mut read: Vec<(usize, Hint)> = Vec::new();
        let mut results: Vec<Option<RecordResult>> = vec![None; records.len()];
        for (i, record) in records.iter().enumerate() {
            let delivery = Delivery::of(queue, record, deadline);
            match self.read(record).await {
                Ok(hint) => read.push((i, hint)),
                Err((failure, never)) => {
                    let handled = if never {
                        crate::runner::move_to_dead_letters(
                            queue,
                            dead_letters,
                            record,
                            &delivery,
                            failure,
                        )
                        .await
                    } else {
                        Handled::Retry(failure)
                    };
                    results[i] = Some(result(&delivery, None, handled));
                }
            }
        }
        let mut targets: Vec<Target> = Vec::new();
        for (_, hint) in &read {
            if !targets.contains(&hint.target) {
                targets.push(hint.target.clone());
            }
        }
        for target in &targets {
            let hints: Vec<&Hint> = read
                .iter()
                .filter(|(_, h)| &h.target == target)
                .map(|(_, h)| h)
                .collect();
            // Where to start the WHMCS services: after the least service id the continuations
            // name, or from the start if any hint is not a continuation.
            let after = hints
                .iter()
                .map(|h| match h.reason {
                    Reason::Continue { after } => after,
                    _ => None,
                })
                .try_fold(i64::MAX, |least, a| a.map(|a| least.min(a)))
                .filter(|least| *least != i64::MAX);
            let handled = match self.run(target, after, deadline).await {
                Ok(_) => Handled::Done,
                Err(failure) => {
                    error!(target = %target, error = %failure, "billing sync failed; its hints return to the queue");
                    Handled::Retry(failure)
                }
            };
            for (i, _) in read.iter().filter(|(_, h)| &h.target == target) {
                let delivery = Delivery::of(queue, &records[*i], deadline);
                results[*i] = Some(result(&delivery, Some(target), handled.clone()));
            }
        }
        self.sites.release_slots().await;
        results.into_iter().flatten().collect()
    }
}

fn result(delivery: &Delivery, target: Option<&Target>, handled: Handled) -> RecordResult {
    if handled.is_finished() {
        crate::metrics::count(crate::metrics::MESSAGES_DONE, 1);
    } else {
        crate::metrics::count(crate::metrics::MESSAGES_RETRIED, 1);
    }
    RecordResult {
        message_id: delivery.message_id.clone(),
        step: Some("billing-sync"),
        deal: target.map(Target::group),
        handled,
        held_back: false,
    }
}
