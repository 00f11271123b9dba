//! The maxio-core-link step: find the deal's Maxio Core customer and contract, write the AB
//! subscription id on the contract (once), and write the outcome to the Opportunity.
//!
//! When Core has not synced the customer or contract yet, or is briefly unavailable, the step
//! does not hold the message: it writes "Pending" (with the AB outcome, if that is not on the
//! Opportunity yet) and sends itself to the delayed queue to come back after 1, 5, 15 minutes,
//! then hourly. Past the deadline it retries through the queue's redelivery and, on the last
//! delivery, writes "Core link pending: ..." to the Opportunity before the message goes to the
//! dead-letter queue.

use std::collections::BTreeMap;
use std::sync::Arc;

use tracing::{info, warn};

use super::core::CoreError;
use super::link::{
    ContractChoice, CoreLinkInput, LinkSettings, choose_contract, choose_customer, wait_after,
};
use crate::clock::Clock;
use crate::codes::ErrorCode;
use crate::envelope::{Envelope, Step};
use crate::failure::{Failure, StepFailure};
use crate::ledger::{Ledger, StepStatus};
use crate::ports::MaxioCore;
use crate::queue::{MAX_DELAY, Queue};
use crate::runner::{Delivery, Handled, QueueHandler};
use crate::salesforce::SfId;
use crate::writeback::{CoreLinkOutcome, MaxioOutcome, WriteBack};

pub struct CoreLinkDeps {
    pub core: Arc<dyn MaxioCore>,
    pub queue: Arc<dyn Queue>,
    pub writeback: Arc<WriteBack>,
    pub clock: Arc<dyn Clock>,
    /// The audit trail: the link's outcome, attempts and contract id, per deal.
    pub ledger: Arc<dyn Ledger>,
    pub settings: LinkSettings,
    /// The link queue's maxReceiveCount.
    pub max_receives: u32,
    /// Opens every message before it is handled (`None`: messages are not sealed, as in the
    /// operator CLI's in-memory runs).
    pub seal: Option<Arc<crate::seal::Seal>>,
}

/// A Core error as the link sees it. A refused token or unreadable credentials are
/// configuration an operator can fix: the link keeps waiting (with the reason on the
/// Opportunity) rather than fail the deal for good.
fn core_failure(e: CoreError) -> StepFailure {
    let failure = Failure::new(e.code(), &e);
    if e.is_retryable() || matches!(e, CoreError::Unauthorized(_) | CoreError::Forbidden(_)) {
        StepFailure::Transient(failure)
    } else {
        StepFailure::Permanent(failure)
    }
}

#[async_trait::async_trait]
impl QueueHandler for CoreLinkDeps {
    fn seal(&self) -> Option<&crate::seal::Seal> {
        self.seal.as_deref()
    }

    async fn handle(&self, envelope: Envelope, delivery: &Delivery) -> Handled {
        self.handle_message(envelope, delivery.receive_count).await
    }
}

impl CoreLinkDeps {
    /// Handles one link message; `receive_count` is its delivery number. The outcome is noted
    /// in the ledger (linked, waiting with the reason, or failed).
    async fn handle_message(&self, envelope: Envelope, receive_count: u32) -> Handled {
        let (handled, status, contract, error) = self.handle_inner(&envelope, receive_count).await;
        let mut targets = BTreeMap::new();
        if let Some(c) = contract {
            targets.insert("maxio_core_contract_id".to_string(), c.to_string());
        }
        let error = match (&handled, error) {
            (_, Some(e)) => Some(e),
            (Handled::Retry(r), None) => Some(r.to_string()),
            _ => None,
        };
        let deal = match &envelope.step {
            Step::MaxioCoreLink { link } => link.opportunity_id.to_string(),
            _ => envelope.deal.id().to_string(),
        };
        if let Err(e) = self
            .ledger
            .note(
                &deal,
                envelope.step.name(),
                status,
                &targets,
                error.as_deref(),
                self.clock.now(),
            )
            .await
        {
            warn!(deal, error = %e, "could not note the Core link in the ledger");
        }
        handled
    }

    async fn handle_inner(
        &self,
        envelope: &Envelope,
        receive_count: u32,
    ) -> (Handled, StepStatus, Option<i64>, Option<String>) {
        let Step::MaxioCoreLink { link } = &envelope.step else {
            let reason = format!("step {} is not the Maxio Core link", envelope.step.name());
            return (
                Handled::Retry(Failure::new(ErrorCode::DealbridgeBadMessage, reason)),
                StepStatus::Failed,
                None,
                None,
            );
        };
        let account = &envelope.account_id;
        let now = self.clock.now().timestamp();
        let started = link.started_at.unwrap_or(now);
        let mut failed = None;
        let outcome = match self.link(account, link).await {
            Ok(contract_id) => CoreLinkOutcome::Linked { contract_id },
            Err(StepFailure::Permanent(failure) | StepFailure::Conflict(failure)) => {
                let error = failure.to_string();
                failed = Some(failure);
                CoreLinkOutcome::Failed { error }
            }
            Err(problem) => {
                let reason = problem.describe();
                let deadline = started
                    .saturating_add(i64::try_from(self.settings.deadline.as_secs()).unwrap_or(0));
                if now < deadline {
                    let handled = self
                        .wait(envelope, link, started, now, reason.clone())
                        .await;
                    return (handled, StepStatus::InProgress, None, Some(reason));
                }
                if receive_count < self.max_receives {
                    warn!(deal = %envelope.deal.id(), %reason, receive_count, "Maxio Core link past its deadline; retrying");
                    return (
                        Handled::Retry(problem.failure().clone()),
                        StepStatus::InProgress,
                        None,
                        None,
                    );
                }
                let hours = self.settings.deadline.as_secs() / 3600;
                let reason = match problem {
                    StepFailure::NotYet(_) => format!(
                        "Core link pending: no contract for account {account} in Maxio Core after {hours} hours ({reason})"
                    ),
                    _ => format!(
                        "Core link pending: Maxio Core could not be used for {hours} hours ({reason})"
                    ),
                };
                warn!(deal = %envelope.deal.id(), correlation_id = %envelope.correlation_id, %reason, "gave up waiting for Maxio Core; the message goes to the dead-letter queue");
                let handled = match self
                    .write(
                        envelope,
                        link,
                        &CoreLinkOutcome::Pending {
                            reason: reason.clone(),
                        },
                    )
                    .await
                {
                    Ok(()) => Handled::Conflict(Failure::new(problem.failure().code, &reason)),
                    Err(e) => Handled::Retry(Failure::new(
                        ErrorCode::SalesforceUnavailable,
                        format!("{reason}; and writing it failed: {e}"),
                    )),
                };
                return (handled, StepStatus::Failed, None, Some(reason));
            }
        };
        let (status, contract, error) = match &outcome {
            CoreLinkOutcome::Linked { contract_id } => {
                (StepStatus::Completed, Some(*contract_id), None)
            }
            CoreLinkOutcome::Failed { error } => (StepStatus::Failed, None, Some(error.clone())),
            CoreLinkOutcome::Pending { reason } => {
                (StepStatus::InProgress, None, Some(reason.clone()))
            }
        };
        match self.write(envelope, link, &outcome).await {
            Ok(()) => {
                info!(deal = %envelope.deal.id(), ?outcome, "Maxio Core link done");
                let handled = failed.map_or(Handled::Done, Handled::Permanent);
                (handled, status, contract, error)
            }
            Err(e) => (
                Handled::Retry(Failure::new(ErrorCode::SalesforceUnavailable, e)),
                StepStatus::InProgress,
                contract,
                None,
            ),
        }
    }

    /// Finds the contract and writes the subscription id on it unless it is there already.
    async fn link(&self, account: &SfId, link: &CoreLinkInput) -> Result<i64, StepFailure> {
        let field = &self.settings.customer_field;
        let mut customers = self
            .core
            .list("customers/", &[(field, account.to_string())])
            .await
            .map_err(core_failure)?;
        if customers.iter().all(|c| !c.holds_sf_id(field, account)) {
            // The tenant may hold the 15-character form, which an exact filter does not match.
            customers = self
                .core
                .list("customers/", &[(field, account.to_15().to_string())])
                .await
                .map_err(core_failure)?;
        }
        let customer = choose_customer(&customers, field, account)?;
        let Some(customer_id) = customer.id() else {
            return Err(StepFailure::permanent(
                ErrorCode::CoreBadAnswer,
                "Maxio Core listed a customer without an id",
            ));
        };
        let contracts = self
            .core
            .list("contracts/", &[("customer", customer_id.to_string())])
            .await
            .map_err(core_failure)?;
        let contract_field = &self.settings.contract_field;
        let choice = choose_contract(
            &contracts,
            customer_id,
            &link.opportunity_id,
            contract_field,
            link.subscription_id,
        )
        .map_err(|p| match p {
            StepFailure::NotYet(_) => StepFailure::not_yet(format!(
                "no contract for account {account} (Maxio Core customer {customer_id}) yet"
            )),
            other => other,
        })?;
        let contract_id = match choice {
            ContractChoice::AlreadyLinked(id) => {
                info!(
                    contract_id = id,
                    "the Maxio Core contract already carries the subscription"
                );
                return Ok(id);
            }
            ContractChoice::Patch(id) => id,
        };
        let wanted = link.subscription_id.to_string();
        let saved = match self
            .core
            .set_contract_field(contract_id, contract_field, &wanted)
            .await
        {
            Err(CoreError::NotFound(what)) => {
                return Err(StepFailure::transient(
                    ErrorCode::CoreNotFound,
                    format!("Maxio Core has no {what} any more"),
                ));
            }
            other => other.map_err(core_failure)?,
        };
        if saved.text(contract_field).as_deref() != Some(wanted.as_str()) {
            return Err(StepFailure::permanent(
                ErrorCode::CoreFieldNotSaved,
                format!(
                    "Maxio Core accepted the update of contract {contract_id} but its {contract_field} is {:?}; is MAXIO_CORE_CONTRACT_FIELD a writable contract field?",
                    saved.text(contract_field).unwrap_or_default()
                ),
            ));
        }
        info!(
            contract_id,
            subscription_id = link.subscription_id,
            "Maxio Core contract linked"
        );
        Ok(contract_id)
    }

    /// Writes "Pending" (with the AB outcome the first time) and comes back later.
    async fn wait(
        &self,
        envelope: &Envelope,
        link: &CoreLinkInput,
        started: i64,
        now: i64,
        reason: String,
    ) -> Handled {
        if !link.sync_written
            && let Err(e) = self
                .write(
                    envelope,
                    link,
                    &CoreLinkOutcome::Pending {
                        reason: format!("waiting for Maxio Core: {reason}"),
                    },
                )
                .await
        {
            return Handled::Retry(Failure::new(ErrorCode::SalesforceUnavailable, e));
        }
        let wait = wait_after(link.attempt);
        let then = Step::MaxioCoreLink {
            link: CoreLinkInput {
                attempt: link.attempt + 1,
                started_at: Some(started),
                sync_written: true,
                ..link.clone()
            },
        };
        let later = envelope.next(Step::Deferred {
            not_before: now.saturating_add(i64::try_from(wait.as_secs()).unwrap_or(0)),
            then: Box::new(then),
        });
        let sent = match later.to_message(wait.min(MAX_DELAY)) {
            Ok(message) => self.queue.send(&message).await.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        match sent {
            Ok(_) => {
                info!(deal = %envelope.deal.id(), attempt = link.attempt, wait_seconds = wait.as_secs(), %reason, "Maxio Core not ready; trying again later");
                Handled::NotYet(reason)
            }
            Err(e) => Handled::Retry(Failure::new(
                ErrorCode::DealbridgeQueue,
                format!("{reason}; and scheduling the next try failed: {e}"),
            )),
        }
    }

    /// One write: the link status, with the AB outcome while it is not on the Opportunity yet.
    async fn write(
        &self,
        envelope: &Envelope,
        link: &CoreLinkInput,
        outcome: &CoreLinkOutcome,
    ) -> Result<(), String> {
        let synced = MaxioOutcome::Synced {
            customer_id: link.customer_id,
            subscription_id: link.subscription_id,
            site: link.site.clone(),
        };
        self.writeback
            .core_link(
                &link.opportunity_id,
                &envelope.account_id,
                outcome,
                (!link.sync_written).then_some(&synced),
            )
            .await
            .map_err(|e| format!("writing the Maxio Core link to Salesforce failed: {e}"))
    }
}
