//! dealbridge delayed: consumes the delayed queue. A message whose time has not come (waits longer
//! than SQS's 15-minute delay) is delayed again; a due re-dispatch runs dispatch once more, and a
//! due deferred step (a Maxio Core link waiting for Core to sync) is sent on to its queue.
//!
//! Each record is handled on its own and failures are reported per record
//! (`ReportBatchItemFailures`): a failed record returns to the queue after its visibility timeout
//! and ends in the dead-letter queue if it never succeeds.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use dealbridge::clock::Clock;
use dealbridge::dispatch::{DispatchError, DispatchRequest, Dispatcher};
use dealbridge::envelope::{Envelope, Step};
use dealbridge::ledger::{Begin, Ledger, lease_until};
use dealbridge::queue::{MAX_DELAY, Queue, QueueName};
use dealbridge::snapshot::DealRef;
use dealbridge::writeback::{CoreLinkOutcome, MaxioOutcome, WhmcsOutcome, WriteBack};
use tracing::{Instrument, error, info, warn};

pub struct Deps {
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
        reason: String,
    },
    Failed {
        reason: String,
        retryable: bool,
    },
}

/// How long one delivery holds its message's ledger record (the function's timeout is shorter).
const LEASE: Duration = Duration::from_secs(120);

/// Handles one record, once per SQS message id: a duplicate delivery of a message that was
/// handled is skipped, so delayed chains do not multiply. Without the ledger (an outage) the
/// record is still handled: every step downstream is idempotent, only the work may double.
pub async fn handle_record(message: &SqsMessage, deps: &Deps) -> RecordOutcome {
    let Some(message_id) = message.message_id.as_deref().filter(|m| !m.is_empty()) else {
        return handle_once(message, deps).await;
    };
    let deal = message
        .body
        .as_deref()
        .and_then(|b| Envelope::parse(b).ok())
        .map(|e| e.deal.id().to_string());
    let Some(deal) = deal else {
        return handle_once(message, deps).await;
    };
    let step = format!("delayed-message:{message_id}");
    let now = deps.clock.now();
    match deps
        .ledger
        .begin(&deal, &step, now, lease_until(now, None, LEASE))
        .await
    {
        Ok(Begin::Done(_)) => return RecordOutcome::Duplicate,
        Ok(Begin::Busy(_)) => {
            return RecordOutcome::Failed {
                reason: format!("message {message_id} is being handled by another delivery"),
                retryable: true,
            };
        }
        Ok(_) => {}
        Err(e) => {
            warn!(message_id, error = %e, "the ledger is unavailable; handling the message without duplicate detection");
            return handle_once(message, deps).await;
        }
    }
    let outcome = give_up_if_last(handle_once(message, deps).await, message, deps).await;
    let now = deps.clock.now();
    let saved = match &outcome {
        RecordOutcome::Failed { reason, .. } => deps
            .ledger
            .fail(&deal, &step, reason, now)
            .await
            .map(|_| ()),
        _ => deps
            .ledger
            .complete(&deal, &step, &BTreeMap::new(), now)
            .await
            .map(|_| ()),
    };
    if let Err(e) = saved {
        warn!(message_id, error = %e, "could not record the message as handled");
    }
    outcome
}

/// On the last receive of a message that keeps failing, says so on the deal's record (the
/// Opportunity, or the Order), so the failure is visible where people work, not only in the
/// dead-letter queue.
async fn give_up_if_last(
    outcome: RecordOutcome,
    message: &SqsMessage,
    deps: &Deps,
) -> RecordOutcome {
    let RecordOutcome::Failed {
        reason,
        retryable: true,
    } = &outcome
    else {
        return outcome;
    };
    let receives = dealbridge::worker::receive_count(message);
    if receives < deps.max_receives {
        return outcome;
    }
    let Some(envelope) = message
        .body
        .as_deref()
        .and_then(|b| Envelope::parse(b).ok())
    else {
        return outcome;
    };
    let error = format!(
        "DELAYED_GAVE_UP: the delayed {} failed {receives} times and went to the dead-letter queue; last error: {reason}",
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
        (_, DealRef::Order(order)) => {
            deps.writeback
                .whmcs(
                    order,
                    &WhmcsOutcome::Failed {
                        error: error.clone(),
                    },
                )
                .await
        }
        (_, DealRef::Opportunity(opportunity)) => {
            deps.writeback
                .maxio(
                    opportunity,
                    &envelope.account_id,
                    &MaxioOutcome::Failed {
                        customer_id: None,
                        subscription_id: None,
                        error: error.clone(),
                    },
                )
                .await
        }
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

async fn handle_once(message: &SqsMessage, deps: &Deps) -> RecordOutcome {
    let failed = |reason: String, retryable: bool| RecordOutcome::Failed { reason, retryable };
    let Some(body) = message.body.as_deref() else {
        return failed("the message has no body".into(), false);
    };
    let envelope = match Envelope::parse(body) {
        Ok(e) => e,
        Err(e) => return failed(e.to_string(), false),
    };
    let (attempt, not_before) = match &envelope.step {
        Step::Dispatch {
            attempt,
            not_before,
        } => (*attempt, *not_before),
        Step::Deferred { not_before, .. } => (0, *not_before),
        other => {
            return failed(
                format!("step {} does not belong on the delayed queue", other.name()),
                false,
            );
        }
    };
    let now = deps.clock.now().timestamp();
    if not_before > now {
        let wait = Duration::from_secs(u64::try_from(not_before - now).unwrap_or(0)).min(MAX_DELAY);
        let message = match envelope.to_message(wait) {
            Ok(m) => m,
            Err(e) => return failed(e.to_string(), false),
        };
        return match deps.queue.send(&message).await {
            Ok(_) => RecordOutcome::DelayedAgain {
                seconds: wait.as_secs(),
            },
            Err(e) => failed(e.to_string(), e.retryable),
        };
    }
    if let Step::Deferred { then, .. } = &envelope.step {
        if then.queue() == QueueName::Delayed {
            return failed(
                "a deferred step must not be deferred work itself".into(),
                false,
            );
        }
        let step = then.name();
        let message = match envelope.next((**then).clone()).to_message(Duration::ZERO) {
            Ok(m) => m,
            Err(e) => return failed(e.to_string(), false),
        };
        return match deps.queue.send(&message).await {
            Ok(_) => RecordOutcome::Forwarded { step },
            Err(e) => failed(e.to_string(), e.retryable),
        };
    }
    let request = DispatchRequest {
        deal: envelope.deal.clone(),
        correlation_id: envelope.correlation_id.clone(),
        dry_run: false,
        attempt,
        idempotency_key: envelope.idempotency_key.clone(),
    };
    match deps.dispatcher.dispatch(&request).await {
        Ok(_) => RecordOutcome::Dispatched,
        Err(e @ DispatchError::OrderNeverCreated { .. }) => {
            let reason = format!("DISPATCH_NO_ORDER: {e}");
            let DispatchError::OrderNeverCreated { opportunity_id, .. } = &e else {
                return failed(reason, false);
            };
            let outcome = MaxioOutcome::Failed {
                customer_id: None,
                subscription_id: None,
                error: reason.clone(),
            };
            match deps
                .writeback
                .maxio(opportunity_id, &envelope.account_id, &outcome)
                .await
            {
                Ok(()) => RecordOutcome::GaveUp { reason },
                Err(w) => failed(
                    format!("{reason}; writing it to Salesforce failed: {w}"),
                    true,
                ),
            }
        }
        Err(e) => failed(e.to_string(), e.is_retryable()),
    }
}

pub async fn handle(event: SqsEvent, deps: &Deps) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    for record in &event.records {
        let id = record.message_id.clone().unwrap_or_default();
        let span = record
            .body
            .as_deref()
            .and_then(|b| Envelope::parse(b).ok())
            .map(|e| e.span())
            .unwrap_or_else(|| tracing::info_span!("message", message_id = %id));
        let outcome = handle_record(record, deps).instrument(span.clone()).await;
        let _in_span = span.enter();
        match outcome {
            RecordOutcome::Dispatched => info!(message_id = %id, "re-dispatched"),
            RecordOutcome::Duplicate => info!(message_id = %id, "already handled; skipped"),
            RecordOutcome::Forwarded { step } => {
                info!(message_id = %id, step, "deferred step sent on")
            }
            RecordOutcome::DelayedAgain { seconds } => {
                info!(message_id = %id, seconds, "not due; delayed again")
            }
            RecordOutcome::GaveUp { reason } => {
                error!(message_id = %id, %reason, "gave up; the reason is on the Opportunity")
            }
            RecordOutcome::Failed { reason, retryable } => {
                if retryable {
                    warn!(message_id = %id, %reason, "delayed work failed; it will be retried");
                } else {
                    error!(message_id = %id, %reason, "delayed work cannot succeed; it goes to the dead-letter queue after its retries");
                }
                response.add_failure(id);
            }
        }
    }
    response
}
