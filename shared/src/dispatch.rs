//! Dispatch: Salesforce Id → snapshot → work plan → messages on the queues. The one path every
//! trigger takes (API call, Outbound Message, Platform Event, delayed re-dispatch, reconciler).
//!
//! An Opportunity whose Order CPQ has not created yet is re-dispatched later through a delayed
//! message, a bounded number of times; nothing waits.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tracing::Instrument;
use tracing::{info, warn};

use crate::clock::Clock;
use crate::envelope::{Envelope, EnvelopeError, Step};
use crate::mapping::Mapping;
use crate::plan::{PlannedStep, WorkPlan};
use crate::queue::{Queue, QueueError, QueueName};
use crate::salesforce::SfId;
use crate::snapshot::{DealRef, DealSnapshot, LoadOutcome, SnapshotError, SnapshotLoader};

/// How often and how long to wait for CPQ to create an Order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedispatchPolicy {
    /// Dispatches in all, the first included.
    pub max_attempts: u32,
    pub first_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RedispatchPolicy {
    fn default() -> Self {
        RedispatchPolicy {
            max_attempts: 8,
            first_delay: Duration::from_secs(60),
            max_delay: Duration::from_secs(900),
        }
    }
}

impl RedispatchPolicy {
    /// The wait before re-dispatch number `attempt` (1 for the first re-dispatch): doubling from
    /// `first_delay`, capped at `max_delay`.
    pub fn delay_before(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1));
        self.first_delay.saturating_mul(factor).min(self.max_delay)
    }
}

#[derive(Debug, Clone)]
pub struct DispatchRequest {
    pub deal: DealRef,
    pub correlation_id: String,
    /// Plan and report, enqueue nothing.
    pub dry_run: bool,
    /// 0 for the first dispatch, then the re-dispatch number.
    pub attempt: u32,
    pub idempotency_key: Option<String>,
    /// The name of the delayed message this dispatch runs for (see
    /// [`crate::envelope::Envelope::delayed_key`]): the delayed message the dispatch sends is
    /// named after it, so a redelivery that dispatches again sends one the delayed function
    /// knows as a duplicate. `None` for a first dispatch.
    pub delayed_key: Option<String>,
}

impl DispatchRequest {
    /// The name of the delayed message of `kind` this dispatch sends, if it runs for one.
    fn next_delayed_key(&self, kind: &str) -> Option<String> {
        self.delayed_key
            .as_deref()
            .map(|key| crate::envelope::next_delayed_key(key, kind))
    }
}

/// A message dispatch sent (or, in a dry run, would send).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DispatchedStep {
    pub step: &'static str,
    pub queue: QueueName,
    pub step_key: String,
    pub deduplication_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(
    tag = "status",
    rename_all = "kebab-case",
    rename_all_fields = "camelCase"
)]
pub enum DispatchOutcome {
    /// The plan's messages are on their queues (or would be, in a dry run).
    Planned {
        dry_run: bool,
        account_id: SfId,
        plan: WorkPlan,
        messages: Vec<DispatchedStep>,
    },
    /// The Order does not exist yet; the deal is dispatched again later.
    Deferred {
        dry_run: bool,
        account_id: SfId,
        attempt: u32,
        retry_in_seconds: u64,
        reason: String,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error(transparent)]
    Envelope(#[from] EnvelopeError),
    #[error(
        "Opportunity {opportunity_id} still has no Order after {attempts} dispatches; create the Order (or check CPQ) and dispatch it again"
    )]
    OrderNeverCreated { opportunity_id: SfId, attempts: u32 },
}

impl DispatchError {
    /// The code a person sees for this failure on the record.
    pub fn code(&self) -> crate::codes::ErrorCode {
        match self {
            DispatchError::Queue(q) if q.too_large.is_some() => {
                crate::codes::ErrorCode::DispatchTooLarge
            }
            DispatchError::OrderNeverCreated { .. } => crate::codes::ErrorCode::DispatchNoOrder,
            _ => crate::codes::ErrorCode::DispatchFailed,
        }
    }

    pub fn is_retryable(&self) -> bool {
        match self {
            DispatchError::Snapshot(e) => e.is_retryable(),
            DispatchError::Queue(e) => e.retryable,
            DispatchError::Envelope(_) | DispatchError::OrderNeverCreated { .. } => false,
        }
    }
}

pub struct Dispatcher {
    loader: SnapshotLoader,
    queue: Arc<dyn Queue>,
    mapping: Arc<Mapping>,
    policy: RedispatchPolicy,
    clock: Arc<dyn Clock>,
}

impl Dispatcher {
    pub fn new(
        loader: SnapshotLoader,
        queue: Arc<dyn Queue>,
        mapping: Arc<Mapping>,
        policy: RedispatchPolicy,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Dispatcher {
            loader,
            queue,
            mapping,
            policy,
            clock,
        }
    }

    pub fn policy(&self) -> &RedispatchPolicy {
        &self.policy
    }

    pub async fn dispatch(
        &self,
        request: &DispatchRequest,
    ) -> Result<DispatchOutcome, DispatchError> {
        let loaded = self
            .loader
            .load(&request.deal)
            .instrument(dispatch_span(request))
            .await;
        self.dispatch_loaded(request, loaded).await
    }

    /// Dispatches several deals (an Outbound Message's notifications), their snapshots loaded
    /// together ([`SnapshotLoader::load_many`]: one Salesforce call for up to 50 deals of a
    /// kind). Each outcome is the one [`Dispatcher::dispatch`] would give, in the order asked.
    pub async fn dispatch_many(
        &self,
        requests: &[DispatchRequest],
    ) -> Vec<Result<DispatchOutcome, DispatchError>> {
        let deals: Vec<DealRef> = requests.iter().map(|r| r.deal.clone()).collect();
        let loaded = self
            .loader
            .load_many(&deals)
            .instrument(tracing::info_span!("dispatch_batch", deals = deals.len()))
            .await;
        let mut outcomes = Vec::with_capacity(requests.len());
        for (request, loaded) in requests.iter().zip(loaded) {
            outcomes.push(self.dispatch_loaded(request, loaded).await);
        }
        outcomes
    }

    async fn dispatch_loaded(
        &self,
        request: &DispatchRequest,
        loaded: Result<LoadOutcome, SnapshotError>,
    ) -> Result<DispatchOutcome, DispatchError> {
        let outcome = async {
            match loaded? {
                LoadOutcome::Loaded(snapshot) => self.enqueue_plan(request, *snapshot).await,
                LoadOutcome::OrderPending {
                    opportunity_id,
                    account_id,
                    stage,
                } => self.defer(request, opportunity_id, account_id, stage).await,
            }
        }
        .instrument(dispatch_span(request))
        .await;
        if outcome.is_ok() && !request.dry_run {
            crate::metrics::count(crate::metrics::DEALS_DISPATCHED, 1);
        }
        outcome
    }

    async fn enqueue_plan(
        &self,
        request: &DispatchRequest,
        snapshot: DealSnapshot,
    ) -> Result<DispatchOutcome, DispatchError> {
        let mut snapshot = snapshot;
        let account_id = snapshot.account.id.clone();
        let now = self.clock.now();
        snapshot.dispatched_on = Some(now.date_naive());
        if let Some(reason) =
            crate::plan::waits_for_billing(&snapshot, &self.mapping, now.date_naive())
        {
            let reason = |delay: Duration| {
                format!(
                    "the cancellation waits for the deal's billing ({reason}); dispatching again in {} s",
                    delay.as_secs()
                )
            };
            if let Some(waiting) = self
                .again_later(request, account_id.clone(), reason)
                .await?
            {
                return Ok(waiting);
            }
        }
        // A future-dated amendment, renewal or cancellation is dispatched again on its day (from
        // what Salesforce says then) through the delayed queue.
        let (work, scheduled) = crate::plan::for_dispatch(&snapshot, &self.mapping, now);
        let snapshot = Box::new(snapshot);
        let mut messages = Vec::with_capacity(work.steps.len() + 1);
        if let Some(at) = scheduled {
            let not_before = at.timestamp();
            let wait =
                Duration::from_secs(u64::try_from(not_before - now.timestamp()).unwrap_or(0))
                    .min(crate::queue::MAX_DELAY);
            let mut envelope = Envelope::new(
                &request.correlation_id,
                &request.deal,
                &account_id,
                request.idempotency_key.as_deref(),
                Step::Dispatch {
                    attempt: 0,
                    not_before,
                    chain: Some(new_chain_id()),
                },
            );
            envelope.delayed_key = request.next_delayed_key("scheduled");
            let message = envelope.to_message(wait)?;
            let message_id = if request.dry_run {
                None
            } else {
                Some(self.queue.send(&message).await?)
            };
            info!(deal = %request.deal.id(), %at, "deal dispatched again when its change is due");
            messages.push(DispatchedStep {
                step: envelope.step.name(),
                queue: message.queue,
                step_key: envelope.step_key.clone(),
                deduplication_id: message.dedup_id.clone(),
                message_id,
            });
        }
        for planned in &work.steps {
            let step = match planned {
                PlannedStep::MaxioCustomer { .. } => Step::MaxioCustomer {
                    snapshot: snapshot.clone(),
                },
                PlannedStep::WhmcsProvision { order_id, .. } => Step::WhmcsProvision {
                    order_id: order_id.clone(),
                    snapshot: snapshot.clone(),
                },
                PlannedStep::Cancellation { cancellation, .. } => Step::MaxioCancel {
                    cancellation: cancellation.clone(),
                },
            };
            let envelope = Envelope::new(
                &request.correlation_id,
                &request.deal,
                &account_id,
                request.idempotency_key.as_deref(),
                step,
            );
            let message = envelope.to_message(Duration::ZERO)?;
            let message_id = if request.dry_run {
                None
            } else {
                Some(self.queue.send(&message).await?)
            };
            messages.push(DispatchedStep {
                step: envelope.step.name(),
                queue: message.queue,
                step_key: envelope.step_key.clone(),
                deduplication_id: message.dedup_id.clone(),
                message_id,
            });
        }
        info!(
            deal = %request.deal.id(),
            correlation_id = %request.correlation_id,
            steps = messages.len(),
            skipped = work.skipped.len(),
            unmapped = work.unmapped_products.len(),
            dry_run = request.dry_run,
            "deal dispatched"
        );
        Ok(DispatchOutcome::Planned {
            dry_run: request.dry_run,
            account_id,
            plan: work,
            messages,
        })
    }

    async fn defer(
        &self,
        request: &DispatchRequest,
        opportunity_id: SfId,
        account_id: SfId,
        stage: String,
    ) -> Result<DispatchOutcome, DispatchError> {
        let reason = |delay: Duration| {
            format!(
                "Opportunity {opportunity_id} (stage {stage}) has no Order yet; dispatching again in {} s",
                delay.as_secs()
            )
        };
        match self.again_later(request, account_id, reason).await? {
            Some(waiting) => Ok(waiting),
            None => {
                let attempts = request.attempt + 1;
                warn!(deal = %opportunity_id, attempts, "giving up waiting for the Order");
                Err(DispatchError::OrderNeverCreated {
                    opportunity_id,
                    attempts,
                })
            }
        }
    }

    /// Sends the deal's next re-dispatch to the delayed queue (the wait doubling, see
    /// [`RedispatchPolicy`]), or `None` when the policy's dispatches are used up.
    async fn again_later(
        &self,
        request: &DispatchRequest,
        account_id: SfId,
        reason: impl Fn(Duration) -> String,
    ) -> Result<Option<DispatchOutcome>, DispatchError> {
        let attempt = request.attempt + 1;
        if attempt >= self.policy.max_attempts {
            return Ok(None);
        }
        let delay = self.policy.delay_before(attempt);
        let not_before = self.clock.now().timestamp() + i64::try_from(delay.as_secs()).unwrap_or(0);
        let mut envelope = Envelope::new(
            &request.correlation_id,
            &request.deal,
            &account_id,
            request.idempotency_key.as_deref(),
            Step::Dispatch {
                attempt,
                not_before,
                chain: None,
            },
        );
        envelope.delayed_key = request.next_delayed_key("again");
        if !request.dry_run {
            self.queue.send(&envelope.to_message(delay)?).await?;
        }
        let reason = reason(delay);
        info!(deal = %request.deal.id(), attempt, delay_s = delay.as_secs(), %reason, "re-dispatch scheduled");
        Ok(Some(DispatchOutcome::Deferred {
            dry_run: request.dry_run,
            account_id,
            attempt,
            retry_in_seconds: delay.as_secs(),
            reason,
        }))
    }
}

fn dispatch_span(request: &DispatchRequest) -> tracing::Span {
    tracing::info_span!(
        "dispatch",
        correlation_id = %request.correlation_id,
        deal = %request.deal.id(),
        attempt = request.attempt
    )
}

/// A new chain of delayed messages' name: random, so two dispatches of one deal (a reconciler
/// run and an Outbound Message, say) start chains the delayed function can tell apart.
fn new_chain_id() -> String {
    format!("{:016x}", rand::random::<u64>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn re_dispatch_delays_double_up_to_the_cap() {
        let p = RedispatchPolicy::default();
        let delays: Vec<u64> = (1..=6).map(|a| p.delay_before(a).as_secs()).collect();
        assert_eq!(delays, [60, 120, 240, 480, 900, 900]);
        assert_eq!(p.delay_before(40).as_secs(), 900);
    }
}
