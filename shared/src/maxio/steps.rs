//! The Maxio Advanced Billing chain, one step per worker:
//!
//! 1. customer: check the whole deal can be billed ([`prepare`]), then find the AB customer by
//!    reference (the Account Id) or create it;
//! 2. price points: find each scheduled product's price point by its deterministic handle or create
//!    it;
//! 3. subscription: find it by reference (the Opportunity Id) or create it, read its components
//!    back to catch AB's silent fallback to default price points, and write the outcome to
//!    Salesforce, or, with the Maxio Core link enabled, hand over to the link step
//!    ([`super::core_link`]), which writes the outcome and the link together.
//!
//! Every step is idempotent: natural keys are looked up before anything is created, every POST
//! carries a `uniqueness_token` derived from the step, and "already taken" answers lead back to a
//! lookup. A permanent failure is written to the Opportunity and the message is done; a transient
//! one is retried, and on the message's last delivery it is written to the Opportunity as well
//! before the message goes to the dead-letter queue.

use std::collections::BTreeMap;
use std::sync::Arc;

use rust_decimal::Decimal;
use serde_json::Value;
use sha2::{Digest, Sha256};
use tracing::{info, warn};

use super::ab::{Component, MaxioError, NewSubscription, PricePoint, SubscriptionComponentRequest};
use super::link::CoreLinkInput;
use super::prepare::{
    AbDealPlan, AbSettings, ResolvedComponent, failure as prepare_failure, prepare,
};
use super::pricing::PricePointSpec;
use crate::clock::Clock;
use crate::codes::ErrorCode;
use crate::envelope::{Envelope, Step};
use crate::failure::{Failure, StepFailure};
use crate::ledger::{Ledger, StepStatus};
use crate::mapping::Mapping;
use crate::ports::MaxioAb;
use crate::queue::Queue;
use crate::runner::{Delivery, Handled, QueueHandler};
use crate::salesforce::SfId;
use crate::writeback::{MaxioOutcome, WriteBack};

pub struct MaxioDeps {
    pub ab: Arc<dyn MaxioAb>,
    pub queue: Arc<dyn Queue>,
    pub writeback: Arc<WriteBack>,
    pub mapping: Arc<Mapping>,
    pub settings: AbSettings,
    /// The worker queues' maxReceiveCount.
    pub max_receives: u32,
    /// The audit trail: each step's outcome, attempts and ids, per deal.
    pub ledger: Arc<dyn Ledger>,
    pub clock: Arc<dyn Clock>,
    /// Whether a synced subscription goes on to the Maxio Core link, which then writes the
    /// outcome (and the link) to the Opportunity in one call.
    pub core_link: bool,
}

impl From<MaxioError> for StepFailure {
    fn from(e: MaxioError) -> Self {
        let failure = Failure::new(e.code(), &e);
        if e.is_retryable() {
            StepFailure::Transient(failure)
        } else {
            StepFailure::Permanent(failure)
        }
    }
}

/// What a step leaves for the Opportunity when it fails.
struct Known {
    customer_id: Option<i64>,
    subscription_id: Option<i64>,
    price_points: Vec<i64>,
}

impl Known {
    fn targets(&self) -> BTreeMap<String, String> {
        let mut t = BTreeMap::new();
        if let Some(c) = self.customer_id {
            t.insert("maxio_customer_id".into(), c.to_string());
        }
        if let Some(s) = self.subscription_id {
            t.insert("maxio_subscription_id".into(), s.to_string());
        }
        if !self.price_points.is_empty() {
            let ids: Vec<String> = self.price_points.iter().map(i64::to_string).collect();
            t.insert("maxio_price_point_ids".into(), ids.join(","));
        }
        t
    }
}

fn permanent(code: ErrorCode, message: impl std::fmt::Display) -> StepFailure {
    StepFailure::permanent(code, message)
}

fn token(step_key: &str, part: &str) -> String {
    let digest = Sha256::digest(format!("{step_key}\n{part}").as_bytes());
    format!("dealbridge-{}", hex::encode(&digest[..16]))
}

/// One handler for the three queues of the chain: each message names its step.
#[async_trait::async_trait]
impl QueueHandler for MaxioDeps {
    async fn handle(&self, envelope: Envelope, delivery: &Delivery) -> Handled {
        self.handle_message(envelope, delivery.receive_count).await
    }
}

impl MaxioDeps {
    /// Handles one message of any Maxio step; `receive_count` is its delivery number.
    async fn handle_message(&self, envelope: Envelope, receive_count: u32) -> Handled {
        let (opportunity, account) = match &envelope.step {
            Step::MaxioCustomer { snapshot } => (
                snapshot.opportunity.as_ref().map(|o| o.id.clone()),
                snapshot.account.id.clone(),
            ),
            Step::MaxioPricePoints { plan, .. } | Step::MaxioSubscription { plan, .. } => {
                (Some(plan.opportunity_id.clone()), plan.account_id.clone())
            }
            other => {
                return self.give_up_unreadable(
                    &envelope,
                    format!("step {} is not a Maxio step", other.name()),
                );
            }
        };
        let mut known = Known {
            customer_id: None,
            subscription_id: None,
            price_points: Vec::new(),
        };
        let result = match &envelope.step {
            Step::MaxioCustomer { snapshot } => {
                self.customer(&envelope, snapshot, &mut known).await
            }
            Step::MaxioPricePoints { plan, customer_id } => {
                known.customer_id = Some(*customer_id);
                self.price_points(&envelope, plan, *customer_id, &mut known)
                    .await
            }
            Step::MaxioSubscription {
                plan,
                customer_id,
                components,
            } => {
                known.customer_id = Some(*customer_id);
                self.subscription(&envelope, plan, *customer_id, components, &mut known)
                    .await
            }
            _ => Ok(()),
        };
        let (failure, gave_up) = match result {
            Ok(()) => {
                self.audit(
                    &envelope,
                    opportunity.as_ref(),
                    StepStatus::Completed,
                    &known,
                    None,
                )
                .await;
                return Handled::Done;
            }
            Err(StepFailure::Transient(reason) | StepFailure::NotYet(reason))
                if receive_count < self.max_receives =>
            {
                warn!(step = envelope.step.name(), deal = %envelope.deal.id(), %reason, receive_count, "Maxio step failed; will retry");
                self.audit(
                    &envelope,
                    opportunity.as_ref(),
                    StepStatus::InProgress,
                    &known,
                    Some(&reason.to_string()),
                )
                .await;
                return Handled::Retry(reason);
            }
            Err(StepFailure::Transient(reason) | StepFailure::NotYet(reason)) => (
                Failure::new(
                    ErrorCode::MaxioGaveUp,
                    format!(
                        "{} failed {receive_count} times; last error: {reason}",
                        envelope.step.name()
                    ),
                ),
                true,
            ),
            Err(StepFailure::Permanent(failure) | StepFailure::Conflict(failure)) => {
                (failure, false)
            }
        };
        let Some(opportunity) = opportunity else {
            warn!(deal = %envelope.deal.id(), %failure, "Maxio step failed for a deal without an Opportunity");
            return Handled::Permanent(failure);
        };
        warn!(step = envelope.step.name(), deal = %envelope.deal.id(), correlation_id = %envelope.correlation_id, %failure, "Maxio sync failed");
        let error = failure.to_string();
        self.audit(
            &envelope,
            Some(&opportunity),
            StepStatus::Failed,
            &known,
            Some(&error),
        )
        .await;
        let outcome = MaxioOutcome::Failed {
            customer_id: known.customer_id,
            subscription_id: known.subscription_id,
            error,
        };
        match self.writeback.maxio(&opportunity, &account, &outcome).await {
            // The last delivery: said on the Opportunity, and the message goes to the DLQ.
            Ok(()) if gave_up => Handled::Conflict(failure),
            Ok(()) => Handled::Permanent(failure),
            Err(e) => {
                Handled::Retry(failure.and(format!("and writing it to Salesforce failed: {e}")))
            }
        }
    }

    /// Notes the step's outcome in the ledger; the audit trail never fails a step.
    /// The record is kept under the Opportunity Id (whatever Id the deal was dispatched by), so
    /// one Id tells the deal's Maxio story.
    async fn audit(
        &self,
        envelope: &Envelope,
        opportunity: Option<&SfId>,
        status: StepStatus,
        known: &Known,
        error: Option<&str>,
    ) {
        let deal = opportunity
            .map(ToString::to_string)
            .unwrap_or_else(|| envelope.deal.id().to_string());
        if let Err(e) = self
            .ledger
            .note(
                &deal,
                envelope.step.name(),
                status,
                &known.targets(),
                error,
                self.clock.now(),
            )
            .await
        {
            warn!(deal, step = envelope.step.name(), error = %e, "could not note the step in the ledger");
        }
    }

    fn give_up_unreadable(&self, envelope: &Envelope, reason: String) -> Handled {
        warn!(deal = %envelope.deal.id(), %reason, "message cannot be handled");
        Handled::Retry(Failure::new(ErrorCode::DealbridgeBadMessage, reason))
    }

    async fn send(&self, envelope: &Envelope, step: Step) -> Result<(), StepFailure> {
        let next = Envelope::new(
            &envelope.correlation_id,
            &envelope.deal,
            &envelope.account_id,
            envelope.idempotency_key.as_deref(),
            step,
        );
        let message = next
            .to_message(std::time::Duration::ZERO)
            .map_err(|e| permanent(ErrorCode::DealbridgeInternal, e))?;
        self.queue.send(&message).await.map_err(|e| {
            if e.retryable {
                StepFailure::transient(ErrorCode::DealbridgeQueue, e)
            } else {
                permanent(ErrorCode::DealbridgeQueue, e)
            }
        })?;
        Ok(())
    }

    async fn customer(
        &self,
        envelope: &Envelope,
        snapshot: &crate::snapshot::DealSnapshot,
        known: &mut Known,
    ) -> Result<(), StepFailure> {
        let plan = prepare(snapshot, &self.mapping, &self.settings)
            .map_err(|problems| StepFailure::Permanent(prepare_failure(&problems)))?;
        let reference = plan.customer.reference.clone();
        let customer = match self.ab.lookup_customer(&reference).await? {
            Some(c) => c,
            None => match self
                .ab
                .create_customer(&plan.customer, &token(&envelope.step_key, "customer"))
                .await
            {
                Ok(c) => c,
                Err(e @ (MaxioError::DuplicateSubmission | MaxioError::Rejected { .. }))
                    if matches!(e, MaxioError::DuplicateSubmission) || e.mentions("reference") =>
                {
                    // Another attempt created it first.
                    self.ab
                        .lookup_customer(&reference)
                        .await?
                        .ok_or(StepFailure::transient(
                            ErrorCode::MaxioNotVisibleYet,
                            format!("{e}, but no customer has reference {reference} yet"),
                        ))?
                }
                Err(e) => return Err(e.into()),
            },
        };
        known.customer_id = Some(customer.id);
        info!(deal = %envelope.deal.id(), customer_id = customer.id, "Maxio customer ready");
        self.send(
            envelope,
            Step::MaxioPricePoints {
                plan: Box::new(plan),
                customer_id: customer.id,
            },
        )
        .await
    }

    async fn component(&self, handle: &str, product: &str) -> Result<Component, StepFailure> {
        match self.ab.component(handle).await {
            Err(MaxioError::NotFound(_)) => Err(permanent(
                ErrorCode::MaxioComponentNotFound,
                format!(
                    "{product} maps to Maxio component {handle:?}, which does not exist in Maxio"
                ),
            )),
            other => Ok(other?),
        }
    }

    async fn price_point(
        &self,
        envelope: &Envelope,
        component: &Component,
        item: &SfId,
        product: &str,
        spec: &PricePointSpec,
    ) -> Result<PricePoint, StepFailure> {
        let existing = match self
            .ab
            .price_point_by_handle(component.id, &spec.handle)
            .await?
        {
            Some(p) => Some(p),
            None => match self
                .ab
                .create_price_point(
                    component.id,
                    spec,
                    &token(&envelope.step_key, item.as_str()),
                )
                .await
            {
                Ok(p) => return Ok(p),
                Err(e @ (MaxioError::DuplicateSubmission | MaxioError::Rejected { .. }))
                    if matches!(e, MaxioError::DuplicateSubmission) || e.mentions("handle") =>
                {
                    self.ab
                        .price_point_by_handle(component.id, &spec.handle)
                        .await?
                }
                Err(e) => return Err(e.into()),
            },
        };
        let Some(existing) = existing else {
            return Err(StepFailure::transient(
                ErrorCode::MaxioNotVisibleYet,
                format!(
                    "price point {} of {product} was reported taken but cannot be read yet",
                    spec.handle
                ),
            ));
        };
        if !same_prices(&existing, spec) {
            return Err(permanent(
                ErrorCode::MaxioPricePointConflict,
                format!(
                    "Maxio already has a price point {} on {} with other tiers; archive it or change the schedule",
                    spec.handle,
                    component.handle.as_deref().unwrap_or_default()
                ),
            ));
        }
        Ok(existing)
    }

    async fn price_points(
        &self,
        envelope: &Envelope,
        plan: &AbDealPlan,
        customer_id: i64,
        known: &mut Known,
    ) -> Result<(), StepFailure> {
        let mut components = Vec::with_capacity(plan.items.len());
        for item in &plan.items {
            let component = self
                .component(&item.component_handle, &item.product_name)
                .await?;
            let price_point_id = match &item.price_point {
                Some(spec) => Some(
                    self.price_point(
                        envelope,
                        &component,
                        &item.order_item_id,
                        &item.product_name,
                        spec,
                    )
                    .await?
                    .id,
                ),
                None => None,
            };
            known.price_points.extend(price_point_id);
            components.push(ResolvedComponent {
                order_item_id: item.order_item_id.clone(),
                product_name: item.product_name.clone(),
                component_id: component.id,
                component_handle: item.component_handle.clone(),
                kind: component.kind.clone(),
                quantity: item.quantity,
                price_point_id,
                default_price_point_id: component.default_price_point_id,
            });
        }
        info!(deal = %envelope.deal.id(), components = components.len(), "Maxio price points ready");
        self.send(
            envelope,
            Step::MaxioSubscription {
                plan: Box::new(plan.clone()),
                customer_id,
                components,
            },
        )
        .await
    }

    async fn subscription(
        &self,
        envelope: &Envelope,
        plan: &AbDealPlan,
        customer_id: i64,
        components: &[ResolvedComponent],
        known: &mut Known,
    ) -> Result<(), StepFailure> {
        let reference = &plan.subscription_reference;
        let request = NewSubscription {
            product_handle: plan.product_handle.clone(),
            customer_id,
            reference: reference.clone(),
            payment_collection_method: plan.payment_collection_method.clone(),
            components: components.iter().map(component_request).collect(),
        };
        let subscription = match self.ab.lookup_subscription(reference).await? {
            Some(s) => s,
            None => match self
                .ab
                .create_subscription(&request, &token(&envelope.step_key, "subscription"))
                .await
            {
                Ok(s) => s,
                Err(e @ (MaxioError::DuplicateSubmission | MaxioError::Rejected { .. }))
                    if matches!(e, MaxioError::DuplicateSubmission) || e.mentions("reference") =>
                {
                    self.ab
                        .lookup_subscription(reference)
                        .await?
                        .ok_or(StepFailure::transient(
                            ErrorCode::MaxioNotVisibleYet,
                            format!("{e}, but no subscription has reference {reference} yet"),
                        ))?
                }
                Err(e) => return Err(e.into()),
            },
        };
        known.subscription_id = Some(subscription.id);
        if let Some(owner) = subscription.customer.as_ref().map(|c| c.id)
            && owner != customer_id
        {
            return Err(permanent(
                ErrorCode::MaxioSubscriptionConflict,
                format!(
                    "Maxio subscription {} with reference {reference} belongs to customer {owner}, not {customer_id}",
                    subscription.id
                ),
            ));
        }
        let actual = self.ab.subscription_components(subscription.id).await?;
        let mut mismatches = Vec::new();
        for wanted in components {
            let got = actual
                .iter()
                .find(|c| c.component_id == wanted.component_id);
            let expected = wanted.price_point_id.or(wanted.default_price_point_id);
            match got.map(|c| c.price_point_id) {
                None | Some(None) => mismatches.push(format!(
                    "{} ({}) is not on the subscription",
                    wanted.product_name, wanted.component_handle
                )),
                Some(actual) if expected.is_some() && actual != expected => {
                    mismatches.push(format!(
                        "{} is on price point {} instead of {}{}",
                        wanted.product_name,
                        actual
                            .map(|x| x.to_string())
                            .unwrap_or_else(|| "none".into()),
                        expected.map(|x| x.to_string()).unwrap_or_default(),
                        if wanted.price_point_id.is_some() {
                            ""
                        } else {
                            " (its default)"
                        }
                    ))
                }
                _ => {}
            }
        }
        if !mismatches.is_empty() {
            return Err(permanent(
                ErrorCode::MaxioPricePointMismatch,
                format!(
                    "Maxio subscription {} does not bill as agreed: {}",
                    subscription.id,
                    mismatches.join("; ")
                ),
            ));
        }
        if self.core_link {
            info!(deal = %envelope.deal.id(), subscription_id = subscription.id, "Maxio subscription ready; linking it in Maxio Core");
            return self
                .send(
                    envelope,
                    Step::MaxioCoreLink {
                        link: CoreLinkInput {
                            opportunity_id: plan.opportunity_id.clone(),
                            customer_id,
                            subscription_id: subscription.id,
                            attempt: 1,
                            started_at: None,
                            sync_written: false,
                        },
                    },
                )
                .await;
        }
        self.writeback
            .maxio(
                &plan.opportunity_id,
                &plan.account_id,
                &MaxioOutcome::Synced {
                    customer_id,
                    subscription_id: subscription.id,
                },
            )
            .await
            .map_err(|e| {
                if e.is_retryable() {
                    StepFailure::transient(
                        ErrorCode::SalesforceUnavailable,
                        format!("writing the outcome to Salesforce: {e}"),
                    )
                } else {
                    permanent(ErrorCode::SalesforceWriteFailed, e)
                }
            })?;
        info!(deal = %envelope.deal.id(), subscription_id = subscription.id, "Maxio subscription ready and written back");
        Ok(())
    }
}

fn component_request(c: &ResolvedComponent) -> SubscriptionComponentRequest {
    let quantity_based = c.kind.as_deref() == Some("quantity_based_component");
    let on_off = c.kind.as_deref() == Some("on_off_component");
    SubscriptionComponentRequest {
        component_id: Value::from(c.component_id),
        price_point_id: c.price_point_id,
        allocated_quantity: quantity_based.then(|| c.quantity.normalize().to_string()),
        enabled: on_off.then_some(true),
    }
}

/// Whether an existing price point has exactly the brackets and scheme of `spec`.
fn same_prices(existing: &PricePoint, spec: &PricePointSpec) -> bool {
    let number = |v: &Value| -> Option<Decimal> {
        match v {
            Value::Number(n) => crate::snapshot::fields::decimal_from_number(n),
            Value::String(s) => s.parse().ok(),
            _ => None,
        }
    };
    existing.pricing_scheme.as_deref() == Some(spec.pricing_scheme.as_str())
        && existing.prices.len() == spec.prices.len()
        && existing.prices.iter().zip(&spec.prices).all(|(got, want)| {
            number(&got.starting_quantity) == Some(Decimal::from(want.starting_quantity))
                && number(&got.ending_quantity) == want.ending_quantity.map(Decimal::from)
                && number(&got.unit_price) == want.unit_price.parse().ok()
        })
}

#[cfg(test)]
#[path = "steps_tests.rs"]
mod tests;
