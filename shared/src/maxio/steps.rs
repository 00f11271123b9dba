//! The Maxio Advanced Billing chain, one step per worker:
//!
//! 1. customer: read what AB knows and check the whole deal can be billed ([`check_deal`]: the
//!    currency and the site that bills it, the product, the components and quantities, the
//!    start), then find the AB customer by reference (the Account Id) on that site or create it;
//! 2. price points: find each scheduled component's price point by its deterministic handle or
//!    create it (for a non-primary currency, with its own prices in that currency);
//! 3. subscription: find it by reference (the Opportunity Id) or create it (in the deal's
//!    currency, starting on the Order's start), read its components back, and bring any that
//!    differ from the deal to it (AB's silent fallback to a default price point, a subscription
//!    left wrong earlier): a price point change, or an allocation guarded in the ledger. Then
//!    write the outcome to Salesforce, or, with the Maxio Core link enabled, hand over to the
//!    link step ([`super::core_link`]), which writes the outcome and the link together.
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

use super::ab::{
    Component, MaxioError, NewAllocation, NewCurrencyPrice, NewSubscription, PricePoint,
    SubscriptionComponentRequest,
};
use super::converge::{Change, Difference, describe as describe_differences, differences};
use super::link::CoreLinkInput;
use super::prepare::{AbDealPlan, AbSettings, ResolvedComponent, failure as prepare_failure};
use super::pricing::PricePointSpec;
use super::sites::{Sites, check_deal};
use crate::clock::Clock;
use crate::codes::ErrorCode;
use crate::envelope::{Envelope, Step};
use crate::failure::{Failure, StepFailure};
use crate::ledger::{Begin, Ledger, StepStatus, lease_until};
use crate::mapping::Mapping;
use crate::maxio::allocation::AllocationTarget;
use crate::ports::MaxioAb;
use crate::queue::Queue;
use crate::runner::{Delivery, Handled, QueueHandler};
use crate::salesforce::SfId;
use crate::writeback::{MaxioOutcome, WriteBack};

/// How long an allocation's ledger lease lasts (longer than one AB call with its retries).
const ALLOCATION_LEASE: std::time::Duration = std::time::Duration::from_secs(120);

pub struct MaxioDeps {
    /// The AB sites; each deal bills on the one its currency routes to.
    pub sites: Arc<Sites>,
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
    /// Opens every message before it is handled (`None`: messages are not sealed, as in the
    /// operator CLI's in-memory runs).
    pub seal: Option<Arc<crate::seal::Seal>>,
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
    site: Option<String>,
    customer_id: Option<i64>,
    subscription_id: Option<i64>,
    price_points: Vec<i64>,
    /// What a re-run changed on an existing subscription.
    repaired: Vec<String>,
    start: Option<String>,
}

impl Known {
    fn targets(&self) -> BTreeMap<String, String> {
        let mut t = BTreeMap::new();
        if let Some(s) = &self.site {
            t.insert("maxio_site".into(), s.clone());
        }
        if let Some(s) = &self.start {
            t.insert("maxio_start".into(), s.clone());
        }
        if !self.repaired.is_empty() {
            t.insert("maxio_repaired".into(), self.repaired.join("; "));
        }
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

/// An amendment whose Contract's first sale has no AB `what` yet: it waits (retried), and is
/// reported if it never appears.
fn not_billed_yet(plan: &AbDealPlan, what: &str, reference: &str) -> StepFailure {
    let original = plan
        .contract
        .as_ref()
        .map_or_else(|| reference.to_string(), |c| c.original.to_string());
    StepFailure::NotYet(Failure::new(
        ErrorCode::AmendmentOriginalNotBilled,
        format!(
            "the amended Contract's first sale (Opportunity {original}) has no Maxio {what} with reference {reference} on site {} yet; the amendment is applied once the first sale is billed (dispatch it if it never was)",
            plan.site
        ),
    ))
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
    fn seal(&self) -> Option<&crate::seal::Seal> {
        self.seal.as_deref()
    }

    async fn handle(&self, envelope: Envelope, delivery: &Delivery) -> Handled {
        self.handle_message(envelope, delivery.receive_count).await
    }

    async fn batch_done(&self) {
        self.sites.release_slots().await;
    }
}

impl MaxioDeps {
    /// Handles one message of any Maxio step; `receive_count` is its delivery number.
    async fn handle_message(&self, envelope: Envelope, receive_count: u32) -> Handled {
        if let Step::MaxioCancel { cancellation } = &envelope.step {
            return self.cancel(&envelope, cancellation, receive_count).await;
        }
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
            site: match &envelope.step {
                Step::MaxioPricePoints { plan, .. } | Step::MaxioSubscription { plan, .. } => {
                    Some(plan.site.clone())
                }
                _ => None,
            },
            customer_id: None,
            subscription_id: None,
            price_points: Vec::new(),
            repaired: Vec::new(),
            start: None,
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
            site: known.site.clone(),
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

    pub(super) async fn send(&self, envelope: &Envelope, step: Step) -> Result<(), StepFailure> {
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

    /// The client of the deal's site.
    pub(super) fn ab(&self, site: &str) -> Result<Arc<dyn MaxioAb>, StepFailure> {
        self.sites.get(site).map(|s| s.ab.clone()).ok_or_else(|| {
            permanent(
                ErrorCode::MaxioSiteMisconfigured,
                format!(
                    "the deal is billed on AB site {site}, which is not configured (sites: {})",
                    self.sites.names().join(", ")
                ),
            )
        })
    }

    async fn customer(
        &self,
        envelope: &Envelope,
        snapshot: &crate::snapshot::DealSnapshot,
        known: &mut Known,
    ) -> Result<(), StepFailure> {
        let today = self.clock.now().date_naive();
        let plan = check_deal(&self.sites, snapshot, &self.mapping, &self.settings, today)
            .await?
            .map_err(|problems| StepFailure::Permanent(prepare_failure(&problems)))?;
        known.site = Some(plan.site.clone());
        known.start = plan.start.map(|s| s.describe());
        let ab = self.ab(&plan.site)?;
        let reference = plan.customer.reference.clone();
        let customer = match ab.lookup_customer(&reference).await? {
            Some(c) => c,
            None if plan.amends() => return Err(not_billed_yet(&plan, "customer", &reference)),
            None => match ab
                .create_customer(&plan.customer, &token(&envelope.step_key, "customer"))
                .await
            {
                Ok(c) => c,
                Err(e @ (MaxioError::DuplicateSubmission | MaxioError::Rejected { .. }))
                    if matches!(e, MaxioError::DuplicateSubmission) || e.mentions("reference") =>
                {
                    // Another attempt created it first.
                    ab.lookup_customer(&reference)
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
        info!(deal = %envelope.deal.id(), site = %plan.site, customer_id = customer.id, "Maxio customer ready");
        self.send(
            envelope,
            Step::MaxioPricePoints {
                plan: Box::new(plan),
                customer_id: customer.id,
            },
        )
        .await
    }

    async fn component(
        &self,
        ab: &dyn MaxioAb,
        handle: &str,
        product: &str,
    ) -> Result<Component, StepFailure> {
        match ab.component(handle).await {
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
        ab: &dyn MaxioAb,
        envelope: &Envelope,
        component: &Component,
        item: &SfId,
        product: &str,
        spec: &PricePointSpec,
    ) -> Result<PricePoint, StepFailure> {
        let existing = match ab.price_point_by_handle(component.id, &spec.handle).await? {
            Some(p) => Some(p),
            None => match ab
                .create_price_point(
                    component.id,
                    spec,
                    &token(&envelope.step_key, item.as_str()),
                )
                .await
            {
                Ok(p) if spec.currency.is_none() => return Ok(p),
                // Read back with its currency prices (the create answer has none).
                Ok(_) => ab.price_point_by_handle(component.id, &spec.handle).await?,
                Err(e @ (MaxioError::DuplicateSubmission | MaxioError::Rejected { .. }))
                    if matches!(e, MaxioError::DuplicateSubmission) || e.mentions("handle") =>
                {
                    ab.price_point_by_handle(component.id, &spec.handle).await?
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
        if let Some(currency) = &spec.currency {
            self.currency_prices(ab, &existing, spec, currency).await?;
        }
        Ok(existing)
    }

    /// Gives a price point made for a non-primary currency its prices in that currency, one per
    /// bracket, equal to the deal's; a price already there must be the deal's.
    async fn currency_prices(
        &self,
        ab: &dyn MaxioAb,
        point: &PricePoint,
        spec: &PricePointSpec,
        currency: &str,
    ) -> Result<(), StepFailure> {
        let mut missing = Vec::new();
        for (bracket, want) in point.prices.iter().zip(&spec.prices) {
            let Some(price_id) = bracket.id else {
                return Err(permanent(
                    ErrorCode::MaxioUnexpectedAnswer,
                    format!("price point {} has a bracket without an id", point.id),
                ));
            };
            let want_price: Option<Decimal> = want.unit_price.parse().ok();
            let have = point
                .currency_prices
                .iter()
                .find(|c| c.price_id == Some(price_id) && c.currency.as_deref() == Some(currency));
            match have {
                None => missing.push(NewCurrencyPrice {
                    currency: currency.to_string(),
                    price: want.unit_price.clone(),
                    price_id,
                }),
                Some(c) if decimal(&c.price) == want_price => {}
                Some(c) => {
                    return Err(permanent(
                        ErrorCode::MaxioPricePointConflict,
                        format!(
                            "price point {} has the {currency} price {} for quantities from {}, not the deal's {}; correct it in AB or change the schedule",
                            spec.handle, c.price, want.starting_quantity, want.unit_price
                        ),
                    ));
                }
            }
        }
        if missing.is_empty() {
            return Ok(());
        }
        match ab.add_currency_prices(point.id, &missing).await {
            Ok(_) => Ok(()),
            // Another attempt added them first: the next delivery reads and checks them.
            Err(e @ MaxioError::Rejected { .. }) if e.mentions("already exists") => {
                Err(StepFailure::transient(ErrorCode::MaxioNotVisibleYet, e))
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn price_points(
        &self,
        envelope: &Envelope,
        plan: &AbDealPlan,
        customer_id: i64,
        known: &mut Known,
    ) -> Result<(), StepFailure> {
        let ab = self.ab(&plan.site)?;
        let mut components = Vec::with_capacity(plan.items.len());
        for item in &plan.items {
            let component = match item.component_id {
                Some(id) => Component {
                    id,
                    handle: Some(item.component_handle.clone()),
                    name: None,
                    kind: item.kind.clone(),
                    default_price_point_id: item.default_price_point_id,
                    allow_fractional_quantities: None,
                },
                // A plan made before components were resolved up front.
                None => {
                    self.component(ab.as_ref(), &item.component_handle, &item.product_name)
                        .await?
                }
            };
            let price_point_id = match &item.price_point {
                Some(spec) => Some(
                    self.price_point(
                        ab.as_ref(),
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
        let ab = self.ab(&plan.site)?;
        let reference = &plan.subscription_reference;
        known.start = plan.start.map(|s| s.describe());
        let request = NewSubscription {
            product_handle: plan.product_handle.clone(),
            customer_id,
            reference: reference.clone(),
            payment_collection_method: plan.payment_collection_method.clone(),
            components: components.iter().map(component_request).collect(),
            currency: plan.currency.clone(),
            initial_billing_at: plan.start.and_then(|s| s.initial_billing_at()),
        };
        let (subscription, existed) = match ab.lookup_subscription(reference).await? {
            Some(s) => (s, true),
            None if plan.amends() => return Err(not_billed_yet(plan, "subscription", reference)),
            None => match ab
                .create_subscription(&request, &token(&envelope.step_key, "subscription"))
                .await
            {
                Ok(s) => (s, false),
                Err(e @ (MaxioError::DuplicateSubmission | MaxioError::Rejected { .. }))
                    if matches!(e, MaxioError::DuplicateSubmission) || e.mentions("reference") =>
                {
                    let s =
                        ab.lookup_subscription(reference)
                            .await?
                            .ok_or(StepFailure::transient(
                                ErrorCode::MaxioNotVisibleYet,
                                format!("{e}, but no subscription has reference {reference} yet"),
                            ))?;
                    (s, false)
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
        if let (Some(want), Some(got)) = (&plan.currency, &subscription.currency)
            && want != got
        {
            return Err(permanent(
                ErrorCode::CurrencyMismatch,
                format!(
                    "Maxio subscription {} with reference {reference} bills in {got}, but the deal is in {want}; AB cannot change a subscription's currency, so cancel it in AB and dispatch again",
                    subscription.id
                ),
            ));
        }
        let mut actual = ab.subscription_components(subscription.id).await?;
        let found = differences(components, &actual);
        if !found.is_empty() {
            info!(deal = %envelope.deal.id(), subscription_id = subscription.id, existed, differences = %describe_differences(&found), "Maxio subscription differs from the deal; bringing it to the deal");
            self.repair(ab.as_ref(), plan, subscription.id, &found)
                .await?;
            actual = ab.subscription_components(subscription.id).await?;
            let left = differences(components, &actual);
            if !left.is_empty() {
                return Err(permanent(
                    ErrorCode::MaxioPricePointMismatch,
                    format!(
                        "Maxio subscription {} does not bill as agreed, and AB kept it so after dealbridge changed it: {}",
                        subscription.id,
                        describe_differences(&left)
                    ),
                ));
            }
            known.repaired = found.iter().map(|d| d.what.clone()).collect();
        }
        self.settle_allocations(plan.opportunity_id.as_ref(), subscription.id, &actual)
            .await;
        if let Some(change) = &plan.contract {
            info!(deal = %envelope.deal.id(), subscription_id = subscription.id, contract = %change.contract, changed = %change.summary.join("; "), "Maxio subscription brought to the Contract");
        }
        // An amendment's subscription was linked in Maxio Core with the first sale.
        if self.core_link && !plan.amends() {
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
                            site: Some(plan.site.clone()),
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
                    site: Some(plan.site.clone()),
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

    /// Brings the subscription's components to the deal: price points moved in one call, each
    /// quantity set by an allocation guarded in the ledger (an allocation is not idempotent).
    async fn repair(
        &self,
        ab: &dyn MaxioAb,
        plan: &AbDealPlan,
        subscription_id: i64,
        found: &[Difference],
    ) -> Result<(), StepFailure> {
        let unrepairable: Vec<&Difference> = found.iter().filter(|d| d.change.is_none()).collect();
        if !unrepairable.is_empty() {
            return Err(permanent(
                ErrorCode::MaxioPricePointMismatch,
                format!(
                    "Maxio subscription {subscription_id} does not bill as agreed: {}",
                    unrepairable
                        .iter()
                        .map(|d| d.what.as_str())
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
            ));
        }
        let moves: Vec<(i64, i64)> = found
            .iter()
            .filter_map(|d| match d.change {
                Some(Change::PricePoint { component_id, to }) => Some((component_id, to)),
                _ => None,
            })
            .collect();
        if !moves.is_empty() {
            ab.change_price_points(subscription_id, &moves).await?;
        }
        for d in found {
            if let Some(Change::Allocate {
                component_id,
                quantity,
                price_point_id,
            }) = d.change
            {
                self.allocate(
                    ab,
                    plan,
                    subscription_id,
                    component_id,
                    quantity,
                    price_point_id,
                    &d.what,
                )
                .await?;
            }
        }
        Ok(())
    }

    /// Completes the allocations of `subscription_id` that an attempt began and died in, once the
    /// subscription stands at their targets (`components`, read after any repair): a redelivery
    /// that finds the subscription as the deal wants it sends nothing, and would otherwise leave
    /// them in progress in the audit trail for ever. One whose target was not reached is left for
    /// the next allocation to that target, which resumes it. The audit trail never fails a step.
    async fn settle_allocations(
        &self,
        deal: &str,
        subscription_id: i64,
        components: &[crate::maxio::ab::model::SubscriptionComponent],
    ) {
        let now = self.clock.now();
        let records = match self.ledger.for_deal(deal).await {
            Ok(records) => records,
            Err(e) => {
                warn!(deal, error = %e, "could not read the deal's allocations in the ledger");
                return;
            }
        };
        for record in records {
            let dangling = record.status == StepStatus::InProgress && !record.lease_is_live(now);
            let reached = AllocationTarget::from_step(&record.step)
                .is_some_and(|t| t.subscription_id == subscription_id && t.reached(components));
            if dangling
                && reached
                && let Err(e) = self
                    .ledger
                    .complete(deal, &record.step, &BTreeMap::new(), now)
                    .await
            {
                warn!(deal, step = record.step, error = %e, "could not complete an allocation the subscription shows");
            }
        }
    }

    /// One allocation, at most once per target: the ledger step
    /// `maxio-allocation <subscription>/<component>=<quantity>@<price point>` is begun before the
    /// call and completed after it. A completed step is not sent again; a resumed one (an attempt
    /// died) reads the component first and sends only if it is still not at the target.
    #[allow(clippy::too_many_arguments)]
    async fn allocate(
        &self,
        ab: &dyn MaxioAb,
        plan: &AbDealPlan,
        subscription_id: i64,
        component_id: i64,
        quantity: Decimal,
        price_point_id: Option<i64>,
        why: &str,
    ) -> Result<(), StepFailure> {
        let deal = plan.opportunity_id.to_string();
        let target = AllocationTarget {
            subscription_id,
            component_id,
            quantity,
            price_point_id,
        };
        let step = target.step();
        let now = self.clock.now();
        let ledger_error = |e: crate::ledger::LedgerError| {
            StepFailure::transient(ErrorCode::LedgerUnavailable, format!("{step}: {e}"))
        };
        let begun = self
            .ledger
            .begin(&deal, &step, now, lease_until(now, None, ALLOCATION_LEASE))
            .await
            .map_err(ledger_error)?;
        match begun {
            Begin::Done(_) => return Ok(()),
            Begin::Busy(_) => {
                return Err(StepFailure::transient(
                    ErrorCode::LedgerBusy,
                    format!("{step} is being made by another attempt"),
                ));
            }
            Begin::Resumed(_) => {
                let components = ab.subscription_components(subscription_id).await?;
                if target.reached(&components) {
                    self.ledger
                        .complete(&deal, &step, &BTreeMap::new(), self.clock.now())
                        .await
                        .map_err(ledger_error)?;
                    return Ok(());
                }
            }
            Begin::Started(_) => {}
        }
        let charges = &self.mapping.maxio.allocation;
        let allocation = NewAllocation {
            quantity: quantity.normalize().to_string(),
            price_point_id,
            memo: format!("dealbridge: Opportunity {} — {why}", plan.opportunity_id),
            upgrade_charge: charges.upgrade_charge.clone(),
            downgrade_credit: charges.downgrade_credit.clone(),
            accrue_charge: charges.accrue_charge,
        };
        let result = ab
            .allocate(subscription_id, component_id, &allocation)
            .await;
        let targets = match &result {
            Ok(a) => a
                .allocation_id
                .map(|id| BTreeMap::from([("maxio_allocation_id".to_string(), id.to_string())]))
                .unwrap_or_default(),
            // AB's answer when the component is already at the target.
            Err(e @ MaxioError::Rejected { .. })
                if e.mentions("allocation changes are required") =>
            {
                BTreeMap::new()
            }
            Err(e) => {
                let _ = self
                    .ledger
                    .fail(&deal, &step, &e.to_string(), self.clock.now())
                    .await;
                return Err(StepFailure::from(e.clone()));
            }
        };
        self.ledger
            .complete(&deal, &step, &targets, self.clock.now())
            .await
            .map_err(ledger_error)?;
        info!(deal, subscription_id, component_id, quantity = %quantity, "Maxio allocation made");
        Ok(())
    }
}

fn decimal(v: &Value) -> Option<Decimal> {
    match v {
        Value::Number(n) => crate::snapshot::fields::decimal_from_number(n),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
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
pub fn same_prices(existing: &PricePoint, spec: &PricePointSpec) -> bool {
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
