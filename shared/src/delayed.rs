//! The delayed queue's step: work that waits. A message whose time has not come (waits longer
//! than SQS's 15-minute delay) is delayed again; a due re-dispatch runs dispatch once more, and a
//! due deferred step (a Maxio Core link waiting for Core to sync) is sent on to its queue.
//!
//! The queue is a standard one, so the runner ([`crate::runner`]) handles each record on its own:
//! a failed record returns to the queue after its visibility timeout and ends in the dead-letter
//! queue if it never succeeds.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::TimeDelta;
use tracing::{error, info, warn};

use crate::clock::Clock;
use crate::codes::ErrorCode;
use crate::dispatch::{DispatchError, DispatchRequest, Dispatcher};
use crate::envelope::{Envelope, Step, next_delayed_key};
use crate::failure::Failure;
use crate::ledger::{Begin, Ledger, StepStatus, lease_until};
use crate::queue::{MAX_DELAY, Queue, QueueName};
use crate::runner::{Delivery, Handled, QueueHandler};
use crate::writeback::{CoreLinkOutcome, MaxioOutcome, WriteBack};

pub struct DelayedDeps {
    pub dispatcher: Dispatcher,
    /// Remembers which messages were handled, so a duplicate delivery (SQS standard queues
    /// deliver at least once) does not start a second chain of delayed messages.
    pub ledger: Arc<dyn Ledger>,
    pub queue: Arc<dyn Queue>,
    pub clock: Arc<dyn Clock>,
    /// Where a deal that can never be dispatched is reported (on its Opportunity).
    pub writeback: Arc<WriteBack>,
    /// The delayed queue's maxReceiveCount: on a message's last receive a failure is written to
    /// Salesforce before the message goes to the dead-letter queue.
    pub max_receives: u32,
    /// Opens every message before it is handled (`None`: messages are not sealed, as in the
    /// operator CLI's in-memory runs).
    pub seal: Option<Arc<crate::seal::Seal>>,
}

/// What became of one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordOutcome {
    Dispatched,
    /// A second delivery of a message already handled: nothing done.
    Duplicate,
    /// A deferred step was sent on to its queue.
    Forwarded {
        step: &'static str,
    },
    DelayedAgain {
        seconds: u64,
    },
    /// Waiting cannot help any more; the reason is on the Opportunity.
    GaveUp {
        failure: Failure,
    },
    Failed {
        failure: Failure,
        retryable: bool,
    },
}

/// How long one delivery holds its message's ledger record (the function's timeout is shorter).
const LEASE: Duration = Duration::from_secs(120);

/// Handles one message, once per name: its [`Envelope::delayed_key`], else its SQS message id. A
/// second delivery of a message already handled is skipped, and so is a second send of one (its
/// sender died after sending it and sent it again when redelivered), so delayed chains do not
/// multiply. Without the ledger (an outage) the message is still handled: every step downstream
/// is idempotent, only the work may double.
pub async fn handle_record(
    envelope: &Envelope,
    delivery: &Delivery,
    deps: &DelayedDeps,
) -> RecordOutcome {
    let name = envelope
        .delayed_key
        .clone()
        .unwrap_or_else(|| delivery.message_id.clone());
    if name.is_empty() {
        return handle_once(envelope, None, deps).await;
    }
    let message_id = delivery.message_id.as_str();
    let deal = envelope.deal.id().to_string();
    let step = format!("delayed-message:{name}");
    let now = deps.clock.now();
    match deps
        .ledger
        .begin(&deal, &step, now, lease_until(now, None, LEASE))
        .await
    {
        Ok(Begin::Done(_)) => return RecordOutcome::Duplicate,
        Ok(Begin::Busy(_)) => {
            return RecordOutcome::Failed {
                failure: Failure::new(
                    ErrorCode::LedgerBusy,
                    format!("message {name} is being handled by another delivery"),
                ),
                retryable: true,
            };
        }
        Ok(_) => {}
        Err(e) => {
            warn!(message_id, error = %e, "the ledger is unavailable; handling the message without duplicate detection");
            return handle_once(envelope, Some(&name), deps).await;
        }
    }
    let outcome = give_up_if_last(
        handle_once(envelope, Some(&name), deps).await,
        envelope,
        delivery,
        deps,
    )
    .await;
    let now = deps.clock.now();
    let saved = match &outcome {
        RecordOutcome::Failed { failure, .. } => deps
            .ledger
            .fail(&deal, &step, &failure.to_string(), now)
            .await
            .map(|_| ()),
        done => deps
            .ledger
            .complete(&deal, &step, &outcome_target(done), now)
            .await
            .map(|_| ()),
    };
    if let Err(e) = saved {
        warn!(message_id, error = %e, "could not record the message as handled");
    }
    outcome
}

/// The ledger target that says what a handled message did (`outcome`: `dispatched`,
/// `forwarded <step>`, `delayed again`, `gave up`, `skipped`), for an operator reading
/// `dealbridge status` and for the tests that count what a deal's delayed messages did.
pub const OUTCOME_TARGET: &str = "outcome";

fn outcome_target(outcome: &RecordOutcome) -> BTreeMap<String, String> {
    let said = match outcome {
        RecordOutcome::Dispatched => "dispatched".to_string(),
        RecordOutcome::Duplicate => "skipped".to_string(),
        RecordOutcome::Forwarded { step } => format!("forwarded {step}"),
        RecordOutcome::DelayedAgain { .. } => "delayed again".to_string(),
        RecordOutcome::GaveUp { .. } => "gave up".to_string(),
        RecordOutcome::Failed { .. } => "failed".to_string(),
    };
    BTreeMap::from([(OUTCOME_TARGET.to_string(), said)])
}

/// On the last receive of a message that keeps failing, says so on the deal's record (the
/// Opportunity, or the Order), so the failure is visible where people work, not only in the
/// dead-letter queue.
async fn give_up_if_last(
    outcome: RecordOutcome,
    envelope: &Envelope,
    delivery: &Delivery,
    deps: &DelayedDeps,
) -> RecordOutcome {
    let RecordOutcome::Failed {
        failure: reason,
        retryable: true,
    } = &outcome
    else {
        return outcome;
    };
    let receives = delivery.receive_count;
    if receives < deps.max_receives {
        return outcome;
    }
    let error = format!(
        "{}: the delayed {} failed {receives} times and went to the dead-letter queue; last error: {reason}",
        ErrorCode::DelayedGaveUp,
        envelope.step.name()
    );
    let written = match (&envelope.step, &envelope.deal) {
        (Step::Deferred { then, .. }, _) => match then.as_ref() {
            Step::MaxioCoreLink { link } => {
                deps.writeback
                    .core_link(
                        &link.opportunity_id,
                        &envelope.account_id,
                        &CoreLinkOutcome::Pending {
                            reason: format!("Core link pending: {error}"),
                        },
                        None,
                    )
                    .await
            }
            _ => Ok(()),
        },
        (_, deal) => deps.writeback.deal_failure(deal, &error).await,
    };
    match written {
        Ok(()) => {
            error!(deal = %envelope.deal.id(), %error, "delayed work gave up; the reason is on the record")
        }
        Err(e) => {
            error!(deal = %envelope.deal.id(), %error, write_error = %e, "delayed work gave up, and writing it to Salesforce failed")
        }
    }
    outcome
}

/// Handles the message named `name`: the delayed messages it sends are named after it.
async fn handle_once(envelope: &Envelope, name: Option<&str>, deps: &DelayedDeps) -> RecordOutcome {
    let failed = |code: ErrorCode, reason: String, retryable: bool| RecordOutcome::Failed {
        failure: Failure::new(code, reason),
        retryable,
    };
    let (attempt, not_before, chain) = match &envelope.step {
        Step::Dispatch {
            attempt,
            not_before,
            chain,
        } => (*attempt, *not_before, chain.as_deref()),
        Step::Deferred { not_before, .. } => (0, *not_before, None),
        other => {
            return failed(
                ErrorCode::DealbridgeBadMessage,
                format!("step {} does not belong on the delayed queue", other.name()),
                false,
            );
        }
    };
    let now = deps.clock.now().timestamp();
    if let Some(chain) = chain {
        match another_chain(envelope, chain, not_before, name, deps).await {
            None => {}
            Some(ChainStop::DispatchedByThis) => {
                info!(deal = %envelope.deal.id(), chain, "this message dispatched the change before it came back; nothing more to do");
                return RecordOutcome::Dispatched;
            }
            Some(ChainStop::Other(other)) => {
                info!(deal = %envelope.deal.id(), chain, other, "the change was dispatched, or another chain of delayed messages waits for it; this one stops");
                return RecordOutcome::Duplicate;
            }
        }
    }
    if not_before > now {
        let wait = Duration::from_secs(u64::try_from(not_before - now).unwrap_or(0)).min(MAX_DELAY);
        let mut hop = envelope.clone();
        hop.delayed_key = name.map(|n| next_delayed_key(n, "hop"));
        let message = match hop.to_message(wait) {
            Ok(m) => m,
            Err(e) => return failed(ErrorCode::DealbridgeInternal, e.to_string(), false),
        };
        return match deps.queue.send(&message).await {
            Ok(_) => RecordOutcome::DelayedAgain {
                seconds: wait.as_secs(),
            },
            Err(e) => failed(ErrorCode::DealbridgeQueue, e.to_string(), e.retryable),
        };
    }
    if let Step::Deferred { then, .. } = &envelope.step {
        if then.queue() == QueueName::Delayed {
            return failed(
                ErrorCode::DealbridgeBadMessage,
                "a deferred step must not be deferred work itself".into(),
                false,
            );
        }
        let step = then.name();
        let message = match envelope.next((**then).clone()).to_message(Duration::ZERO) {
            Ok(m) => m,
            Err(e) => return failed(ErrorCode::DealbridgeInternal, e.to_string(), false),
        };
        return match deps.queue.send(&message).await {
            Ok(_) => RecordOutcome::Forwarded { step },
            Err(e) => failed(ErrorCode::DealbridgeQueue, e.to_string(), e.retryable),
        };
    }
    let request = DispatchRequest {
        deal: envelope.deal.clone(),
        correlation_id: envelope.correlation_id.clone(),
        dry_run: false,
        attempt,
        idempotency_key: envelope.idempotency_key.clone(),
        delayed_key: name.map(str::to_string),
    };
    match deps.dispatcher.dispatch(&request).await {
        Ok(_) => {
            if let Some(chain) = chain {
                chain_done(envelope, chain, not_before, name, deps).await;
            }
            RecordOutcome::Dispatched
        }
        Err(e @ DispatchError::OrderNeverCreated { .. }) => {
            let reason = Failure::new(ErrorCode::DispatchNoOrder, &e);
            let DispatchError::OrderNeverCreated { opportunity_id, .. } = &e else {
                return RecordOutcome::Failed {
                    failure: reason,
                    retryable: false,
                };
            };
            let outcome = MaxioOutcome::Failed {
                customer_id: None,
                subscription_id: None,
                site: None,
                error: reason.to_string(),
            };
            match deps
                .writeback
                .maxio(opportunity_id, &envelope.account_id, &outcome)
                .await
            {
                Ok(()) => RecordOutcome::GaveUp { failure: reason },
                Err(w) => RecordOutcome::Failed {
                    failure: reason.and(format!("writing it to Salesforce failed: {w}")),
                    retryable: true,
                },
            }
        }
        Err(e) if e.is_retryable() => failed(e.code(), e.to_string(), true),
        // Nothing to write to: dead-lettered, the reason in the log.
        Err(e @ DispatchError::Snapshot(crate::snapshot::SnapshotError::NotFound { .. })) => {
            failed(e.code(), e.to_string(), false)
        }
        // Waiting cannot help (a deal too large to enqueue, one that cannot be read): the reason
        // goes on the record at once, not only once the message has failed ten times.
        Err(e) => {
            let reason = Failure::new(e.code(), &e);
            match deps
                .writeback
                .deal_failure(&envelope.deal, &reason.to_string())
                .await
            {
                Ok(()) => RecordOutcome::GaveUp { failure: reason },
                Err(w) => RecordOutcome::Failed {
                    failure: reason.and(format!("writing it to Salesforce failed: {w}")),
                    retryable: true,
                },
            }
        }
    }
}

/// How long a chain of delayed messages may go without a hop before another chain waiting for
/// the same change takes over (its message was lost or dead-lettered): three of SQS's longest
/// delays.
pub const CHAIN_STALE: Duration = Duration::from_secs(3 * 900);

/// The ledger step that names the chain waiting for a deal's change due at `not_before`.
pub fn chain_step(not_before: i64) -> String {
    format!("scheduled-dispatch:{not_before}")
}

const CHAIN_TARGET: &str = "chain";
/// The target naming the delayed message that dispatched the change.
const DISPATCHED_BY_TARGET: &str = "dispatched_by";

/// Why a hop of a chain stops.
#[derive(Debug, Clone, PartialEq, Eq)]
enum ChainStop {
    /// Another chain waits for the change, or dispatched it (its name).
    Other(String),
    /// This very message dispatched the change, in a delivery that died before it could say so.
    DispatchedByThis,
}

/// Every dispatch of a deal whose change is due later starts a chain of delayed messages (a
/// reconciler run, each Outbound Message on an edit), and each chain hops every 15 minutes until
/// the day. Of the chains waiting for one deal and time, one goes on: the ledger record
/// [`chain_step`] names the chain that hopped last, and a hop of another chain stops (`Some`
/// with the other chain's name) unless that chain has not hopped for [`CHAIN_STALE`]; once the
/// record says the change was dispatched, every hop stops, of this chain too (a hop that died
/// after sending the next one comes back a visibility timeout later, and may then be due itself). Two chains racing both write; the later write
/// wins and the other stops at its next hop. An extra chain only costs work (dispatch converges),
/// so the guard needs no conditional write, and without the ledger every chain goes on.
async fn another_chain(
    envelope: &Envelope,
    chain: &str,
    not_before: i64,
    name: Option<&str>,
    deps: &DelayedDeps,
) -> Option<ChainStop> {
    let deal = envelope.deal.id().to_string();
    let step = chain_step(not_before);
    let now = deps.clock.now();
    match deps.ledger.get(&deal, &step).await {
        Ok(Some(record)) => {
            let owner = record.targets.get(CHAIN_TARGET).map(String::as_str);
            let stale = TimeDelta::from_std(CHAIN_STALE)
                .ok()
                .and_then(|d| record.updated_at.checked_add_signed(d))
                .is_some_and(|t| t < now);
            let dispatched = record.status == StepStatus::Completed;
            match owner {
                // Dispatched already, by this chain or another: a hop of this chain that died
                // after sending the next one and comes back once the change is due must not
                // dispatch it a second time.
                Some(_)
                    if dispatched
                        && name.is_some()
                        && record.targets.get(DISPATCHED_BY_TARGET).map(String::as_str) == name =>
                {
                    return Some(ChainStop::DispatchedByThis);
                }
                Some(owner) if dispatched => return Some(ChainStop::Other(owner.to_string())),
                Some(owner) if owner != chain && !stale => {
                    return Some(ChainStop::Other(owner.to_string()));
                }
                _ => {}
            }
        }
        Ok(None) => {}
        Err(e) => {
            warn!(%deal, error = %e, "the ledger is unavailable; the chain of delayed messages goes on unchecked");
            return None;
        }
    }
    let targets = BTreeMap::from([(CHAIN_TARGET.to_string(), chain.to_string())]);
    if let Err(e) = deps
        .ledger
        .note(&deal, &step, StepStatus::InProgress, &targets, None, now)
        .await
    {
        warn!(%deal, error = %e, "could not record the chain of delayed messages");
    }
    None
}

/// Records that the chain dispatched its change, so a chain that still waits for it stops.
async fn chain_done(
    envelope: &Envelope,
    chain: &str,
    not_before: i64,
    name: Option<&str>,
    deps: &DelayedDeps,
) {
    let deal = envelope.deal.id().to_string();
    let mut targets = BTreeMap::from([(CHAIN_TARGET.to_string(), chain.to_string())]);
    if let Some(name) = name {
        targets.insert(DISPATCHED_BY_TARGET.to_string(), name.to_string());
    }
    if let Err(e) = deps
        .ledger
        .note(
            &deal,
            &chain_step(not_before),
            StepStatus::Completed,
            &targets,
            None,
            deps.clock.now(),
        )
        .await
    {
        warn!(%deal, error = %e, "could not record the scheduled dispatch as done");
    }
}

#[async_trait]
impl QueueHandler for DelayedDeps {
    fn seal(&self) -> Option<&crate::seal::Seal> {
        self.seal.as_deref()
    }

    async fn handle(&self, envelope: Envelope, delivery: &Delivery) -> Handled {
        let id = &delivery.message_id;
        match handle_record(&envelope, delivery, self).await {
            RecordOutcome::Dispatched => info!(message_id = %id, "re-dispatched"),
            RecordOutcome::Duplicate => info!(message_id = %id, "already handled; skipped"),
            RecordOutcome::Forwarded { step } => {
                info!(message_id = %id, step, "deferred step sent on")
            }
            RecordOutcome::DelayedAgain { seconds } => {
                info!(message_id = %id, seconds, "not due; delayed again");
                return Handled::NotYet(format!("not due; delayed again by {seconds} s"));
            }
            RecordOutcome::GaveUp { failure } => {
                error!(message_id = %id, %failure, "gave up; the reason is on the record");
                return Handled::Permanent(failure);
            }
            RecordOutcome::Failed {
                failure,
                retryable: true,
            } => {
                warn!(message_id = %id, %failure, "delayed work failed; it will be retried");
                return Handled::Retry(failure);
            }
            RecordOutcome::Failed {
                failure,
                retryable: false,
            } => {
                error!(message_id = %id, %failure, "delayed work cannot succeed; it goes to the dead-letter queue after its retries");
                return Handled::Conflict(failure);
            }
        }
        Handled::Done
    }
}
