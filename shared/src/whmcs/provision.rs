//! The whmcs-provision step: one approved Order becomes exactly one WHMCS order, accepted, with
//! the outcome written back to the Order, its items and its Opportunity (seeds 001 and 003).
//!
//! WHMCS AddOrder has no idempotency key, so the step is guarded by the ledger:
//!
//! 1. the Order is checked ([`super::prepare`]); a broken rule is written as `Failed` with its code
//!    and nothing is sent to WHMCS;
//! 2. [`Ledger::begin`] takes the step's lease (an attempt holding a live lease elsewhere means
//!    "try later"; a completed step means "done");
//! 3. unless the ledger already holds the WHMCS order id, the client's currency is read and
//!    compared with the Order's ([`super::currency`]), before `Activating` is written: another
//!    currency is written as `Failed` (`WHMCS_CURRENCY_MISMATCH`) and no AddOrder is sent; an
//!    Order without a currency is not checked;
//! 4. before the first AddOrder, the client's newest WHMCS order id is saved as a baseline; an
//!    attempt that finds a baseline but no order id (a previous attempt died or lost AddOrder's
//!    answer) reconciles: the client's orders newer than the baseline with as many products are
//!    looked up, one is adopted, none means AddOrder was never processed, several is a conflict
//!    for a person to settle (written to the Order, and the message ends in the dead-letter
//!    queue);
//! 5. the order id and service ids are saved the moment AddOrder answers, in one ledger write (an
//!    attempt that finds the order id without a service id per order product reads them from
//!    GetOrders; a WHMCS order with another number of products is a conflict for a person), then
//!    AcceptOrder (a "not Pending" answer for our own order is success once GetOrders shows it
//!    Active);
//! 6. the outcome is written to Salesforce in one call and the step completed.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tracing::{info, warn};

use super::currency::{CurrencyCheck, check_currency, order_currency};
use super::error::WhmcsError;
use super::model::{AddOrder, GetOrdersQuery, Order};
use super::prepare::{WhmcsOrderPlan, failure as prepare_failure, prepare};
use crate::clock::Clock;
use crate::codes::ErrorCode;
use crate::envelope::{Envelope, Step};
use crate::failure::{Failure, StepFailure};
use crate::ledger::{Begin, Ledger, StepRecord, lease_until};
use crate::mapping::Mapping;
use crate::ports::Whmcs;
use crate::runner::{Delivery, Handled, QueueHandler};
use crate::salesforce::SfId;
use crate::snapshot::DealSnapshot;
use crate::writeback::{WhmcsOutcome, WriteBack};

/// The ledger's name for this step.
pub const STEP: &str = "whmcs-provision";
/// Ledger targets.
pub const TARGET_ORDER: &str = "whmcs_order_id";
pub const TARGET_SERVICES: &str = "whmcs_service_ids";
pub const TARGET_BASELINE: &str = "whmcs_baseline_order_id";
pub const TARGET_ACCEPTED: &str = "whmcs_accepted";

pub struct WhmcsDeps {
    pub whmcs: Arc<dyn Whmcs>,
    pub ledger: Arc<dyn Ledger>,
    pub writeback: Arc<WriteBack>,
    pub mapping: Arc<Mapping>,
    pub clock: Arc<dyn Clock>,
    /// How long an attempt's lease lasts when the Lambda deadline is unknown.
    pub lease_fallback: Duration,
    /// The queue's maxReceiveCount.
    pub max_receives: u32,
    /// Opens every message before it is handled (`None`: messages are not sealed, as in the
    /// operator CLI's in-memory runs).
    pub seal: Option<Arc<crate::seal::Seal>>,
}

fn whmcs_failure(e: &WhmcsError) -> StepFailure {
    let failure = Failure::new(e.code(), e.message());
    if e.is_retryable() || e.is_ambiguous() {
        StepFailure::Transient(failure)
    } else {
        StepFailure::Permanent(failure)
    }
}

/// The WHMCS order of the client newer than the baseline with `lines` products, if exactly one.
fn reconcile(orders: &[Order], baseline: u64, lines: usize) -> Result<Option<&Order>, Vec<String>> {
    let candidates: Vec<&Order> = orders
        .iter()
        .filter(|o| o.id.parse::<u64>().is_ok_and(|id| id > baseline))
        // A cancelled or fraud order is not a live duplicate: someone dealt with it.
        .filter(|o| {
            !o.status.eq_ignore_ascii_case("Cancelled") && !o.status.eq_ignore_ascii_case("Fraud")
        })
        .filter(|o| {
            let products = o
                .lineitems
                .iter()
                .filter(|l| l.item_type.eq_ignore_ascii_case("product"))
                .count();
            products == lines || o.lineitems.is_empty()
        })
        .collect();
    match candidates.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(one)),
        many => Err(many.iter().map(|o| o.id.clone()).collect()),
    }
}

#[async_trait::async_trait]
impl QueueHandler for WhmcsDeps {
    fn seal(&self) -> Option<&crate::seal::Seal> {
        self.seal.as_deref()
    }

    async fn handle(&self, envelope: Envelope, delivery: &Delivery) -> Handled {
        self.handle_message(envelope, delivery.receive_count, delivery.deadline)
            .await
    }
}

impl WhmcsDeps {
    /// Handles one provisioning message; `receive_count` is its delivery number and `deadline`
    /// the invocation's (the lease runs until then).
    async fn handle_message(
        &self,
        envelope: Envelope,
        receive_count: u32,
        deadline: Option<DateTime<Utc>>,
    ) -> Handled {
        if let Step::WhmcsCancel {
            cancellation,
            standings,
        } = &envelope.step
        {
            return self
                .cancel(&envelope, cancellation, standings, receive_count)
                .await;
        }
        let Step::WhmcsProvision { order_id, snapshot } = &envelope.step else {
            return Handled::Retry(Failure::new(
                ErrorCode::DealbridgeBadMessage,
                format!("step {} is not WHMCS provisioning", envelope.step.name()),
            ));
        };
        let deal = order_id.to_string();
        let (plan, add) = match prepare(snapshot, order_id, &self.mapping) {
            Ok(prepared) => prepared,
            Err(problems)
                if problems
                    .iter()
                    .all(|p| p.code == ErrorCode::WhmcsOrderExists) =>
            {
                info!(order = %order_id, "the Order already has its WHMCS order; nothing to do");
                return Handled::Done;
            }
            Err(problems) => {
                let error = prepare_failure(&problems);
                warn!(order = %order_id, correlation_id = %envelope.correlation_id, %error, "Order cannot be provisioned");
                return self.finish_failed(&deal, order_id, error, false).await;
            }
        };
        let now = self.clock.now();
        let lease = lease_until(now, deadline, self.lease_fallback);
        let record = match self.ledger.begin(&deal, STEP, now, lease).await {
            Err(e) => return Handled::Retry(Failure::new(ErrorCode::LedgerUnavailable, e)),
            Ok(Begin::Done(_)) => {
                info!(order = %order_id, "already provisioned (ledger)");
                return Handled::Done;
            }
            Ok(Begin::Busy(r)) => {
                return Handled::Retry(Failure::new(
                    ErrorCode::LedgerBusy,
                    format!(
                        "another attempt is provisioning Order {order_id} (lease until {})",
                        r.lease_until.map(|t| t.to_rfc3339()).unwrap_or_default()
                    ),
                ));
            }
            Ok(Begin::Started(r)) | Ok(Begin::Resumed(r)) => r,
        };
        match self
            .provision(order_id, snapshot, &plan, &add, &record)
            .await
        {
            Ok(targets) => match self
                .ledger
                .complete(&deal, STEP, &targets, self.clock.now())
                .await
            {
                Ok(_) => Handled::Done,
                // Everything is in WHMCS and Salesforce; a later attempt finds the order id in
                // the ledger (or by reconciling) and completes the record.
                Err(e) => Handled::Retry(Failure::new(
                    ErrorCode::LedgerUnavailable,
                    format!("provisioned, but completing the ledger failed: {e}"),
                )),
            },
            Err(StepFailure::Permanent(error)) => {
                self.finish_failed(&deal, order_id, error, false).await
            }
            Err(StepFailure::Conflict(error)) => {
                self.finish_failed(&deal, order_id, error, true).await
            }
            Err(StepFailure::Transient(reason) | StepFailure::NotYet(reason))
                if receive_count < self.max_receives =>
            {
                warn!(order = %order_id, %reason, receive_count, "WHMCS provisioning failed; will retry");
                if let Err(e) = self
                    .ledger
                    .fail(&deal, STEP, &reason.to_string(), self.clock.now())
                    .await
                {
                    warn!(order = %order_id, error = %e, "could not release the ledger lease");
                }
                Handled::Retry(reason)
            }
            Err(StepFailure::Transient(reason) | StepFailure::NotYet(reason)) => {
                let error = Failure::new(
                    ErrorCode::WhmcsGaveUp,
                    format!("provisioning failed {receive_count} times; last error: {reason}"),
                );
                self.finish_failed(&deal, order_id, error, true).await
            }
        }
    }

    /// Writes `Failed` with the error to the Order and the ledger. `to_dead_letters`: the
    /// message is retried into the dead-letter queue rather than deleted.
    async fn finish_failed(
        &self,
        deal: &str,
        order_id: &SfId,
        error: Failure,
        to_dead_letters: bool,
    ) -> Handled {
        let text = error.to_string();
        if let Err(e) = self.ledger.fail(deal, STEP, &text, self.clock.now()).await {
            warn!(order = %order_id, error = %e, "could not record the failure in the ledger");
        }
        let written = self
            .writeback
            .whmcs(order_id, &WhmcsOutcome::Failed { error: text })
            .await;
        match written {
            Ok(()) if to_dead_letters => Handled::Conflict(error),
            Ok(()) => Handled::Permanent(error),
            Err(e) => {
                Handled::Retry(error.and(format!("and writing it to Salesforce failed: {e}")))
            }
        }
    }

    /// Saves target ids, all of one answer in one ledger write.
    async fn record(&self, deal: &str, saved: &BTreeMap<String, String>) {
        if let Err(e) = self
            .ledger
            .record_targets(deal, STEP, saved, self.clock.now())
            .await
        {
            // Not fatal: the values travel on in this attempt, and a later one reconciles.
            warn!(deal, targets = ?saved.keys().collect::<Vec<_>>(), error = %e, "could not save target ids in the ledger");
        }
    }

    async fn provision(
        &self,
        order_id: &SfId,
        snapshot: &DealSnapshot,
        plan: &WhmcsOrderPlan,
        add: &AddOrder,
        record: &StepRecord,
    ) -> Result<BTreeMap<String, String>, StepFailure> {
        let deal = order_id.to_string();
        let mut targets = record.targets.clone();
        if !plan.orders_anything() {
            return self
                .continue_services(order_id, snapshot, plan, targets)
                .await;
        }
        let placed = targets.contains_key(TARGET_ORDER);
        if !placed {
            self.check_currency(order_id, snapshot, plan).await?;
        }
        // Written once, before the first AddOrder: also on a later attempt when the first one
        // stopped before the baseline (at the currency check, say).
        let before_add_order = !placed && !targets.contains_key(TARGET_BASELINE);
        if plan.needs_activating && (record.attempts <= 1 || before_add_order) {
            self.writeback
                .whmcs(order_id, &WhmcsOutcome::Activating)
                .await
                .map_err(|e| salesforce_failure(&e))?;
        }
        let (whmcs_order, services) = match targets.get(TARGET_ORDER) {
            Some(id) => (id.clone(), split(targets.get(TARGET_SERVICES))),
            None => self.place_order(&deal, plan, add, &mut targets).await?,
        };
        let services = if services.len() == plan.items.len() {
            services
        } else {
            self.recover_services(&deal, &whmcs_order, plan, &mut targets)
                .await?
        };
        if targets.get(TARGET_ACCEPTED).map(String::as_str) != Some("1") {
            self.accept(&whmcs_order).await?;
            let accepted = BTreeMap::from([(TARGET_ACCEPTED.to_string(), "1".to_string())]);
            self.record(&deal, &accepted).await;
            targets.extend(accepted);
        }
        let main = services
            .get(plan.main_line)
            .or_else(|| services.first())
            .cloned();
        let outcome = WhmcsOutcome::Provisioned {
            whmcs_order_id: whmcs_order.clone(),
            services: plan
                .items
                .iter()
                .cloned()
                .zip(services.iter().cloned())
                .chain(plan.continued.iter().cloned())
                .collect(),
            opportunity: plan
                .opportunity_id
                .clone()
                .or_else(|| snapshot.opportunity.as_ref().map(|o| o.id.clone()))
                .zip(main),
        };
        self.writeback
            .whmcs(order_id, &outcome)
            .await
            .map_err(|e| salesforce_failure(&e))?;
        info!(order = %order_id, whmcs_order, "Order provisioned in WHMCS and written back");
        Ok(targets)
    }

    /// A renewal whose every line an existing service carries on: nothing is sent to WHMCS; the
    /// services and their WHMCS order are written to the renewal's Order and Opportunity.
    async fn continue_services(
        &self,
        order_id: &SfId,
        snapshot: &DealSnapshot,
        plan: &WhmcsOrderPlan,
        targets: BTreeMap<String, String>,
    ) -> Result<BTreeMap<String, String>, StepFailure> {
        let outcome = WhmcsOutcome::Provisioned {
            whmcs_order_id: plan.continued_order.clone().unwrap_or_default(),
            services: plan.continued.clone(),
            opportunity: plan
                .opportunity_id
                .clone()
                .or_else(|| snapshot.opportunity.as_ref().map(|o| o.id.clone()))
                .zip(plan.continued.first().map(|(_, s)| s.clone())),
        };
        self.writeback
            .whmcs(order_id, &outcome)
            .await
            .map_err(|e| salesforce_failure(&e))?;
        info!(order = %order_id, services = plan.continued.len(), "renewal carried on by the existing WHMCS services; nothing ordered");
        Ok(targets)
    }

    /// The client must bill in the Order's currency (read from WHMCS each attempt until the order
    /// is placed: a client changed on the Account after a failure is checked again).
    async fn check_currency(
        &self,
        order_id: &SfId,
        snapshot: &DealSnapshot,
        plan: &WhmcsOrderPlan,
    ) -> Result<(), StepFailure> {
        let currency = order_currency(snapshot, order_id);
        let check = check_currency(&*self.whmcs, order_id, currency.as_deref(), &plan.client_id)
            .await
            .map_err(|e| whmcs_failure(&e))?;
        match check {
            CurrencyCheck::Same(client) => {
                info!(order = %order_id, client = client.client_id, currency = client.code, "the WHMCS client bills in the Order's currency");
                Ok(())
            }
            CurrencyCheck::OrderHasNone => {
                info!(order = %order_id, client = plan.client_id, "the Order has no currency (no multi-currency in the org); the WHMCS client's currency is not checked");
                Ok(())
            }
            CurrencyCheck::Mismatch(problem) => {
                warn!(order = %order_id, client = plan.client_id, %problem, "the WHMCS client bills in another currency; no AddOrder is sent");
                Err(StepFailure::Permanent(Failure::new(
                    problem.code,
                    problem.message,
                )))
            }
        }
    }

    /// AddOrder, exactly once: reconciles a previous attempt first.
    async fn place_order(
        &self,
        deal: &str,
        plan: &WhmcsOrderPlan,
        add: &AddOrder,
        targets: &mut BTreeMap<String, String>,
    ) -> Result<(String, Vec<String>), StepFailure> {
        match targets.get(TARGET_BASELINE).cloned() {
            Some(baseline) => {
                let baseline: u64 = baseline.parse().unwrap_or(0);
                let orders = self
                    .whmcs
                    .orders_for_client(&plan.client_id)
                    .await
                    .map_err(|e| whmcs_failure(&e))?;
                match reconcile(&orders, baseline, add.lines.len()) {
                    Ok(Some(found)) => {
                        let services = found.service_ids();
                        warn!(
                            deal,
                            whmcs_order = found.id,
                            "a previous attempt placed the WHMCS order; adopting it"
                        );
                        self.save_order(deal, &found.id, &services, targets).await;
                        return Ok((found.id.clone(), services));
                    }
                    Ok(None) => {
                        info!(deal, "no WHMCS order from a previous attempt; placing it");
                    }
                    Err(ids) => {
                        return Err(StepFailure::Conflict(Failure::new(
                            ErrorCode::WhmcsReconcileAmbiguous,
                            format!(
                                "an earlier attempt may have placed this order, and WHMCS client {} has {} new orders that could be it ({}); check them in WHMCS, cancel any duplicate and set WHMCS_Order_Id__c by hand",
                                plan.client_id,
                                ids.len(),
                                ids.join(", ")
                            ),
                        )));
                    }
                }
            }
            None => {
                let newest = self
                    .whmcs
                    .get_orders(&GetOrdersQuery {
                        userid: Some(plan.client_id.clone()),
                        limitnum: Some(1),
                        ..GetOrdersQuery::default()
                    })
                    .await
                    .map_err(|e| whmcs_failure(&e))?;
                let baseline = newest
                    .orders
                    .iter()
                    .filter_map(|o| o.id.parse::<u64>().ok())
                    .max()
                    .unwrap_or(0)
                    .to_string();
                // The baseline must be durable before AddOrder, or a lost answer could not be
                // reconciled.
                let saved = BTreeMap::from([(TARGET_BASELINE.to_string(), baseline.clone())]);
                self.ledger
                    .record_targets(deal, STEP, &saved, self.clock.now())
                    .await
                    .map_err(|e| StepFailure::transient(ErrorCode::LedgerUnavailable, e))?;
                targets.insert(TARGET_BASELINE.into(), baseline);
            }
        }
        let answer = self.whmcs.add_order(add).await.map_err(|e| {
            if e.is_ambiguous() {
                warn!(deal, error = %e, "AddOrder's answer was lost; the next attempt reconciles");
            }
            whmcs_failure(&e)
        })?;
        self.save_order(deal, &answer.order_id, &answer.service_ids, targets)
            .await;
        info!(deal, whmcs_order = answer.order_id, services = ?answer.service_ids, "WHMCS order placed");
        Ok((answer.order_id, answer.service_ids))
    }

    /// Saves the order id and its service ids in one ledger write: a crash never leaves the
    /// order id recorded without its services.
    async fn save_order(
        &self,
        deal: &str,
        order: &str,
        services: &[String],
        targets: &mut BTreeMap<String, String>,
    ) {
        let saved = BTreeMap::from([
            (TARGET_ORDER.to_string(), order.to_string()),
            (TARGET_SERVICES.to_string(), services.join(",")),
        ]);
        self.record(deal, &saved).await;
        targets.extend(saved);
    }

    /// The order's service ids as WHMCS holds them (GetOrders' product lines), when the ledger
    /// holds none or not one per order product: a record an earlier build left with the order id
    /// alone, or an answer that named fewer. A WHMCS order with another number of products
    /// cannot be matched to the order products, and is a conflict for a person.
    async fn recover_services(
        &self,
        deal: &str,
        whmcs_order: &str,
        plan: &WhmcsOrderPlan,
        targets: &mut BTreeMap<String, String>,
    ) -> Result<Vec<String>, StepFailure> {
        let order = self
            .whmcs
            .order(whmcs_order)
            .await
            .map_err(|e| whmcs_failure(&e))?
            .ok_or_else(|| {
                StepFailure::permanent(
                    ErrorCode::WhmcsOrderNotFound,
                    format!("WHMCS order {whmcs_order} no longer exists"),
                )
            })?;
        let services = order.service_ids();
        if services.len() != plan.items.len() {
            return Err(StepFailure::Conflict(Failure::new(
                ErrorCode::WhmcsServicesMismatch,
                format!(
                    "WHMCS order {whmcs_order} holds {} products and the Order {} order products, so its services cannot be matched to them; check the order in WHMCS, then set WHMCS_Order_Id__c and each order product's WHMCS_Service_ID__c by hand",
                    services.len(),
                    plan.items.len()
                ),
            )));
        }
        warn!(deal, whmcs_order, services = ?services, "the ledger held no service id per order product; read them from WHMCS");
        let saved = BTreeMap::from([(TARGET_SERVICES.to_string(), services.join(","))]);
        self.record(deal, &saved).await;
        targets.extend(saved);
        Ok(services)
    }

    /// AcceptOrder; "not Pending" for our own order is success once WHMCS shows it Active.
    async fn accept(&self, whmcs_order: &str) -> Result<(), StepFailure> {
        match self.whmcs.accept_order(whmcs_order, None, None).await {
            Ok(()) => Ok(()),
            Err(e) if e.code() == ErrorCode::WhmcsOrderNotPending => {
                let order = self
                    .whmcs
                    .order(whmcs_order)
                    .await
                    .map_err(|e| whmcs_failure(&e))?;
                match order {
                    Some(o) if o.status.eq_ignore_ascii_case("Active") => Ok(()),
                    Some(o) => Err(StepFailure::permanent(
                        ErrorCode::WhmcsOrderNotAccepted,
                        format!(
                            "WHMCS order {whmcs_order} is {}, not Active; accept it in WHMCS or cancel it",
                            o.status
                        ),
                    )),
                    None => Err(StepFailure::permanent(
                        ErrorCode::WhmcsOrderNotFound,
                        format!("WHMCS order {whmcs_order} no longer exists"),
                    )),
                }
            }
            Err(e) => Err(whmcs_failure(&e)),
        }
    }
}

fn split(list: Option<&String>) -> Vec<String> {
    list.map(|s| {
        s.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    })
    .unwrap_or_default()
}

fn salesforce_failure(e: &crate::salesforce::SalesforceError) -> StepFailure {
    if e.is_retryable() {
        StepFailure::transient(
            ErrorCode::SalesforceUnavailable,
            format!("writing to Salesforce: {e}"),
        )
    } else {
        StepFailure::permanent(ErrorCode::SalesforceWriteFailed, e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(id: &str, products: usize) -> Order {
        serde_json::from_value(serde_json::json!({
            "id": id, "userid": "1", "status": "Pending", "paymentmethod": "mailin",
            "lineitems": {"lineitem": (0..products).map(|i| serde_json::json!({
                "type": "product", "relid": format!("{id}{i}"), "producttype": "Other", "product": "P", "status": "Pending"
            })).collect::<Vec<_>>()}
        }))
        .unwrap()
    }

    #[test]
    fn only_newer_orders_with_as_many_products_are_candidates() {
        let orders = [order("10", 3), order("12", 3), order("13", 1)];
        assert_eq!(reconcile(&orders, 11, 3).unwrap().unwrap().id, "12");
        assert!(reconcile(&orders, 13, 3).unwrap().is_none());
        assert_eq!(reconcile(&orders, 9, 3).unwrap_err(), ["10", "12"]);
        let mut cancelled = order("10", 3);
        cancelled.status = "Cancelled".into();
        let settled = [cancelled, order("12", 3)];
        assert_eq!(reconcile(&settled, 9, 3).unwrap().unwrap().id, "12");
    }

    #[test]
    fn service_lists_are_split_on_commas() {
        assert_eq!(split(Some(&"1, 2,,3".to_string())), ["1", "2", "3"]);
        assert!(split(None).is_empty());
    }
}
