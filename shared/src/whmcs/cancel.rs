//! The WHMCS side of a cancellation (`Step::WhmcsCancel`), the last step of the chain: read
//! each service (GetClientsProducts), ask for its cancellation with the type the time implies
//! (AddCancelRequest `Immediate` when due, `End of Billing Period` when the time is the
//! service's next due date; any other future time waits for dealbridge's re-dispatch on the
//! day), then write where every system stands to the Opportunity.
//!
//! WHMCS's answer to a repeated request (`Existing Cancellation Request Exists`) counts as the
//! request made, so a redelivery never makes a second one. A cancellation is confirmed only by
//! the service's status (`Cancelled`/`Terminated`, set by WHMCS's daily cron), which a later
//! dispatch (the reconciler's, once the time has passed) reads.

use std::collections::BTreeMap;

use tracing::{info, warn};

use super::error::WhmcsError;
use super::provision::WhmcsDeps;
use super::services::{is_existing_cancel_request, is_service_not_found};
use crate::codes::ErrorCode;
use crate::contract::cancel::{
    CancellationPlan, Standing, SystemState, Target, WhmcsMove, ledger_record, outcome, whmcs_move,
    whmcs_unconfirmed,
};
use crate::envelope::Envelope;
use crate::failure::Failure;
use crate::ledger::StepStatus;
use crate::runner::Handled;

/// Ledger target prefix of a request made: `whmcs_requested_<service>` = its type.
const REQUESTED: &str = "whmcs_requested_";

fn failed(e: &WhmcsError) -> SystemState {
    SystemState::Failed {
        code: e.code(),
        message: e.message(),
    }
}

impl WhmcsDeps {
    /// Handles one `whmcs-cancel` message; `receive_count` is its delivery number.
    pub(super) async fn cancel(
        &self,
        envelope: &Envelope,
        plan: &CancellationPlan,
        earlier: &[Standing],
        receive_count: u32,
    ) -> Handled {
        let mut standings = earlier.to_vec();
        let last = receive_count >= self.max_receives;
        let mut gave_up = None;
        // AddCancelRequest is not idempotent: the requests made are kept in the ledger, and a
        // service already asked with the same type is not asked again.
        let deal = envelope.deal.id().to_string();
        let mut requested: BTreeMap<String, String> =
            match self.ledger.get(&deal, envelope.step.name()).await {
                Ok(record) => record
                    .map(|r| r.targets)
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|(k, _)| k.starts_with(REQUESTED))
                    .collect(),
                Err(e) => return Handled::Retry(Failure::new(ErrorCode::LedgerUnavailable, e)),
            };
        for service in &plan.services {
            let state = match self.service_standing(plan, service, &mut requested).await {
                Ok(state) => state,
                Err(e) if (e.is_retryable() || e.is_ambiguous()) && !last => {
                    let reason = Failure::new(e.code(), e.message());
                    warn!(deal = %envelope.deal.id(), service, %reason, receive_count, "WHMCS cancellation failed; will retry");
                    self.note_cancel(
                        envelope,
                        StepStatus::InProgress,
                        &standings,
                        &requested,
                        Some(&reason),
                    )
                    .await;
                    return Handled::Retry(reason);
                }
                Err(e) if e.is_retryable() || e.is_ambiguous() => {
                    let failure = Failure::new(
                        ErrorCode::WhmcsGaveUp,
                        format!(
                            "the WHMCS cancellation failed {receive_count} times; last error: {}",
                            e.message()
                        ),
                    );
                    gave_up = Some(failure.clone());
                    SystemState::Failed {
                        code: failure.code,
                        message: failure.message,
                    }
                }
                Err(e) => failed(&e),
            };
            standings.push(Standing {
                system: format!("WHMCS service {service}"),
                state,
            });
        }
        let result = outcome(plan, &standings, &self.mapping);
        let status = if result.error.is_some() {
            StepStatus::Failed
        } else {
            StepStatus::Completed
        };
        self.note_cancel(envelope, status, &standings, &requested, None)
            .await;
        match self.writeback.cancellation(plan, &result).await {
            Ok(()) => match (gave_up, result.error) {
                (Some(f), _) => Handled::Conflict(f),
                (None, Some(error)) => Handled::Permanent(error),
                (None, None) => Handled::Done,
            },
            Err(e) => Handled::Retry(Failure::new(
                ErrorCode::SalesforceWriteFailed,
                format!("writing the cancellation to Salesforce failed: {e}"),
            )),
        }
    }

    /// Where one service stands after the request that brings it to the target.
    async fn service_standing(
        &self,
        plan: &CancellationPlan,
        service: &str,
        requested_before: &mut BTreeMap<String, String>,
    ) -> Result<SystemState, WhmcsError> {
        let now = self.clock.now();
        let Some(product) = self.whmcs.client_product(service).await? else {
            return Ok(SystemState::Failed {
                code: ErrorCode::WhmcsOrderNotFound,
                message: format!(
                    "WHMCS has no service {service}; check the WHMCS service ids on the deal's order products"
                ),
            });
        };
        // Only a withdrawal needs to know of a request (the API cannot delete one); a
        // cancellation just asks, and a repeat is refused as existing.
        let requested = match plan.target {
            Target::Withdraw => self
                .whmcs
                .cancelled_packages()
                .await?
                .into_iter()
                .find(|p| p.relid == service)
                .map(|p| p.kind.unwrap_or_else(|| "of unknown type".to_string())),
            Target::Cancel { .. } => None,
        };
        match whmcs_move(&plan.target, &product, requested.as_deref(), now) {
            Ok(state) => Ok(state),
            Err(WhmcsMove::Request(kind)) => {
                let key = format!("{REQUESTED}{service}");
                let asked = requested_before.get(&key).map(String::as_str) == Some(kind.as_str());
                if asked
                    && let Some(at) = plan.at()
                    && let Some(failed) = whmcs_unconfirmed(&product, kind, at, now)
                {
                    return Ok(failed);
                }
                if !asked {
                    info!(service, kind = kind.as_str(), "WHMCS cancellation request");
                    match self
                        .whmcs
                        .add_cancel_request(service, kind, &plan.message)
                        .await
                    {
                        Ok(_) => {}
                        Err(e) if is_existing_cancel_request(&e) => {}
                        Err(e) if is_service_not_found(&e) => return Ok(failed(&e)),
                        Err(e) => return Err(e),
                    }
                    requested_before.insert(key, kind.as_str().to_string());
                }
                Ok(SystemState::Scheduled {
                    note: format!(
                        "{} cancellation request recorded; WHMCS's daily cron terminates the service {}",
                        kind.as_str(),
                        match kind {
                            super::services::CancelType::Immediate => "at its next run".to_string(),
                            super::services::CancelType::EndOfBillingPeriod => format!(
                                "on its next due date {}",
                                product
                                    .next_due_date
                                    .map_or_else(|| "unknown".to_string(), |d| d.to_string())
                            ),
                        }
                    ),
                })
            }
        }
    }

    async fn note_cancel(
        &self,
        envelope: &Envelope,
        status: StepStatus,
        standings: &[Standing],
        requested: &BTreeMap<String, String>,
        error: Option<&Failure>,
    ) {
        let (mut targets, error) = ledger_record(standings, error);
        targets.extend(requested.clone());
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
