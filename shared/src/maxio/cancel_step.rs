//! The AB side of a cancellation (`Step::MaxioCancel`): read the subscription, make the calls
//! that bring it to the target ([`crate::contract::cancel::ab_moves`]), read it back, then hand
//! over to the WHMCS services, or, with none, write the outcome to the Opportunity.
//!
//! Idempotent by reading first: a subscription already canceled, or already cancelling at the
//! requested time, is left alone; a second cancel that crossed a lost answer is AB's 422
//! "already canceled", which the read-back confirms.

use tracing::{info, warn};

use super::ab::{
    Cancellation, SubscriptionLifecycle, is_already_canceled, needs_scheduled_cancellation_feature,
};
use super::steps::MaxioDeps;
use crate::codes::ErrorCode;
use crate::contract::cancel::{
    AbMove, BilledSubscription, CancellationPlan, Standing, SystemState, ab_moves,
    early_cancel_note, ledger_record, outcome, rfc3339,
};
use crate::envelope::{Envelope, Step};
use crate::failure::{Failure, StepFailure};
use crate::ledger::StepStatus;
use crate::ports::MaxioAb;
use crate::runner::Handled;

impl MaxioDeps {
    /// Handles one `maxio-cancel` message; `receive_count` is its delivery number.
    pub(super) async fn cancel(
        &self,
        envelope: &Envelope,
        plan: &CancellationPlan,
        receive_count: u32,
    ) -> Handled {
        let mut standings = Vec::new();
        let mut gave_up = None;
        if let (Some(sub), true) = (&plan.subscription, plan.refused.is_empty()) {
            let system = format!("AB subscription {} (site {})", sub.id, sub.site);
            let state = match self.ab_standing(plan, sub).await {
                Ok(state) => state,
                Err(StepFailure::Transient(reason) | StepFailure::NotYet(reason))
                    if receive_count < self.max_receives =>
                {
                    warn!(deal = %envelope.deal.id(), %reason, receive_count, "AB cancellation failed; will retry");
                    self.note_cancel(envelope, StepStatus::InProgress, &[], Some(&reason))
                        .await;
                    return Handled::Retry(reason);
                }
                Err(StepFailure::Transient(reason) | StepFailure::NotYet(reason)) => {
                    let failure = Failure::new(
                        ErrorCode::MaxioGaveUp,
                        format!(
                            "the AB cancellation failed {receive_count} times; last error: {reason}"
                        ),
                    );
                    gave_up = Some(failure.clone());
                    SystemState::Failed {
                        code: failure.code,
                        message: failure.message,
                    }
                }
                Err(StepFailure::Permanent(f) | StepFailure::Conflict(f)) => SystemState::Failed {
                    code: f.code,
                    message: f.message,
                },
            };
            standings.push(Standing { system, state });
        }
        let failed = standings
            .iter()
            .any(|s| matches!(s.state, SystemState::Failed { .. }));
        let status = if failed {
            StepStatus::Failed
        } else {
            StepStatus::Completed
        };
        self.note_cancel(envelope, status, &standings, None).await;
        if !plan.services.is_empty() && plan.refused.is_empty() {
            let next = Step::WhmcsCancel {
                cancellation: Box::new(plan.clone()),
                standings,
            };
            return match self.send(envelope, next).await {
                Ok(()) => gave_up.map_or(Handled::Done, Handled::Conflict),
                Err(StepFailure::Transient(f) | StepFailure::NotYet(f)) => Handled::Retry(f),
                Err(StepFailure::Permanent(f) | StepFailure::Conflict(f)) => Handled::Permanent(f),
            };
        }
        let result = outcome(plan, &standings, &self.mapping);
        match self.writeback.cancellation(plan, &result).await {
            Ok(()) => match (gave_up, &result.error) {
                (Some(f), _) => Handled::Conflict(f),
                (None, Some(error)) => Handled::Permanent(error.clone()),
                (None, None) => Handled::Done,
            },
            Err(e) => Handled::Retry(Failure::new(
                ErrorCode::SalesforceWriteFailed,
                format!("writing the cancellation to Salesforce failed: {e}"),
            )),
        }
    }

    async fn read(&self, ab: &dyn MaxioAb, id: i64) -> Result<SubscriptionLifecycle, StepFailure> {
        ab.read_subscription(id).await?.ok_or_else(|| {
            StepFailure::permanent(
                ErrorCode::MaxioNotFound,
                format!("AB has no subscription {id}; check Maxio_Subscription_Id__c and the site"),
            )
        })
    }

    /// Where the subscription stands after the calls that bring it to the target.
    async fn ab_standing(
        &self,
        plan: &CancellationPlan,
        sub: &BilledSubscription,
    ) -> Result<SystemState, StepFailure> {
        let ab = self.ab(&sub.site)?;
        let now = self.clock.now();
        let current = self.read(ab.as_ref(), sub.id).await?;
        let moves = match ab_moves(&plan.target, &current, now) {
            Ok(state) => return Ok(state),
            Err(moves) => moves,
        };
        let reason = Cancellation::with_message(plan.message.clone());
        let mut waiting = None;
        let mut cancelled_now = false;
        for step in &moves {
            info!(subscription = sub.id, ?step, "AB cancellation call");
            match step {
                AbMove::CancelNow => match ab.cancel_subscription(sub.id, &reason).await {
                    Ok(_) => cancelled_now = true,
                    Err(e) if is_already_canceled(&e) => {}
                    Err(e) => return Err(e.into()),
                },
                AbMove::DelayedCancel => {
                    ab.delayed_cancel(sub.id, &reason).await?;
                }
                AbMove::Schedule(at) => {
                    let scheduled = Cancellation {
                        scheduled_cancellation_at: Some(*at),
                        ..reason.clone()
                    };
                    match ab.cancel_subscription(sub.id, &scheduled).await {
                        Ok(_) => {}
                        Err(e) if needs_scheduled_cancellation_feature(&e) => waiting = Some(*at),
                        Err(e) => return Err(e.into()),
                    }
                }
                AbMove::Withdraw => {
                    ab.withdraw_delayed_cancel(sub.id).await?;
                }
            }
        }
        let after = self.read(ab.as_ref(), sub.id).await?;
        match ab_moves(&plan.target, &after, now) {
            Ok(SystemState::Cancelled { .. }) if cancelled_now => Ok(SystemState::Cancelled {
                note: early_cancel_note(&current, now, plan.at()),
            }),
            Ok(state) => Ok(state),
            Err(_) if let Some(at) = waiting => Ok(SystemState::Waiting {
                note: format!(
                    "the site cannot schedule a cancellation (its \"Schedule Subscription Cancellation\" feature is off, and {} is not the end of the period, {}); dealbridge cancels it then",
                    rfc3339(at),
                    after.current_period_ends_at.as_deref().unwrap_or("unknown")
                ),
            }),
            Err(left) => Err(StepFailure::permanent(
                ErrorCode::MaxioUnexpectedAnswer,
                format!(
                    "AB accepted {moves:?} but the subscription still needs {left:?} (state {}, cancel at end of period {}, scheduled {})",
                    after.state.as_deref().unwrap_or("unknown"),
                    after.cancel_at_end_of_period,
                    after.scheduled_cancellation_at.as_deref().unwrap_or("none")
                ),
            )),
        }
    }

    /// The step's standing in the ledger, under the Opportunity Id.
    async fn note_cancel(
        &self,
        envelope: &Envelope,
        status: StepStatus,
        standings: &[Standing],
        error: Option<&Failure>,
    ) {
        let (targets, error) = ledger_record(standings, error);
        if let Err(e) = self
            .ledger
            .note(
                envelope.deal.id().as_str(),
                envelope.step.name(),
                status,
                &targets,
                error.as_deref(),
                self.clock.now(),
            )
            .await
        {
            warn!(deal = %envelope.deal.id(), error = %e, "could not note the cancellation in the ledger");
        }
    }
}
