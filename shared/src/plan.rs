//! The work plan: which flows a deal needs, decided from its snapshot and the mapping. Pure.
//!
//! - Maxio Advanced Billing, for a won Opportunity with products mapped to AB components, unless
//!   it already has an AB subscription and its Maxio status is `Synced` (a `Failed` deal runs
//!   again: the chain finds what exists and brings it to the deal).
//! - WHMCS provisioning, for an Order (dispatched by its Order Id, as approval triggers it) whose
//!   products carry WHMCS product ids, unless it already has a WHMCS order id.
//!
//! Whatever is not planned says why; products mapped to neither system are listed by name.

use serde::{Deserialize, Serialize};

use chrono::{DateTime, Utc};

use crate::codes::ErrorCode;
use crate::contract::cancel::{CancellationPlan, Target};
use crate::mapping::Mapping;
use crate::salesforce::SfId;
use crate::snapshot::{DealRef, DealSnapshot, Product};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Flow {
    MaxioBilling,
    WhmcsProvisioning,
}

/// A step to enqueue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "step",
    rename_all = "kebab-case",
    rename_all_fields = "camelCase"
)]
pub enum PlannedStep {
    MaxioCustomer {
        /// Products that bill in Maxio AB, by name.
        products: Vec<String>,
    },
    WhmcsProvision {
        order_id: SfId,
        products: Vec<String>,
    },
    /// Cancel (or withdraw the cancellation of) the deal's AB subscription and WHMCS services.
    Cancellation {
        /// What the steps do, in a sentence.
        summary: String,
        cancellation: Box<CancellationPlan>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skipped {
    pub flow: Flow,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkPlan {
    pub steps: Vec<PlannedStep>,
    pub skipped: Vec<Skipped>,
    /// Products mapped to neither Maxio AB nor WHMCS, by name (and code).
    pub unmapped_products: Vec<String>,
}

impl WorkPlan {
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }
}

fn label(p: &Product) -> String {
    match &p.code {
        Some(code) => format!("{} ({code})", p.name),
        None => p.name.clone(),
    }
}

/// Whether the Opportunity says its AB billing is done: `Maxio_Sync_Status__c` is the synced
/// value (an org without the status field: a subscription id is enough).
fn synced(opp: &crate::snapshot::Opportunity, mapping: &Mapping) -> bool {
    match &mapping.opportunity.maxio_sync_status {
        Some(_) => opp.maxio_sync_status.as_deref() == Some(mapping.values.maxio_synced.as_str()),
        None => true,
    }
}

/// Whether the deal was cancelled (its stage, or the cancellation status dealbridge wrote): it
/// is billed and provisioned no more.
fn cancelled(opp: &crate::snapshot::Opportunity, mapping: &Mapping) -> bool {
    let v = &mapping.values;
    opp.stage == v.opportunity_cancelled_stage
        || opp.cancellation_status.as_deref() == Some(v.cancellation_cancelled.as_str())
}

pub fn plan(snapshot: &DealSnapshot, mapping: &Mapping) -> WorkPlan {
    let mut steps = Vec::new();
    let mut skipped = Vec::new();
    let skip = |flow, reason: String| Skipped { flow, reason };
    if let Some(opp) = snapshot
        .opportunity
        .as_ref()
        .filter(|o| cancelled(o, mapping))
    {
        let reason = format!(
            "Opportunity {} was cancelled (stage {}, cancellation {}); it is billed and provisioned no more",
            opp.id,
            opp.stage,
            opp.cancellation_status.as_deref().unwrap_or("not recorded")
        );
        return WorkPlan {
            steps,
            skipped: vec![
                skip(Flow::MaxioBilling, reason.clone()),
                skip(Flow::WhmcsProvisioning, reason),
            ],
            unmapped_products: Vec::new(),
        };
    }

    let maxio_products: Vec<String> = snapshot
        .order_items()
        .filter(|(_, i)| mapping.component_handle(&i.product).is_some())
        .map(|(_, i)| i.product.name.clone())
        .collect();
    let unmapped_products: Vec<String> = snapshot
        .order_items()
        .filter(|(_, i)| {
            mapping.component_handle(&i.product).is_none() && i.product.whmcs_product_id.is_none()
        })
        .map(|(_, i)| label(&i.product))
        .collect();

    if !maxio_products.is_empty() {
        match &snapshot.opportunity {
            None => skipped.push(skip(
                Flow::MaxioBilling,
                "the Order belongs to no Opportunity; Maxio billing starts from a won Opportunity"
                    .into(),
            )),
            Some(opp) if !opp.is_won => skipped.push(skip(
                Flow::MaxioBilling,
                format!("Opportunity {} is not won (stage {})", opp.id, opp.stage),
            )),
            Some(opp) => match (&opp.maxio_subscription_id, synced(opp, mapping)) {
                (Some(sub), true) => skipped.push(skip(
                    Flow::MaxioBilling,
                    format!(
                        "Opportunity {} already has Maxio subscription {sub} and is {}",
                        opp.id, mapping.values.maxio_synced
                    ),
                )),
                // Never synced, or failed (a subscription that does not match the deal is
                // brought to it by the chain): run it.
                _ => steps.push(PlannedStep::MaxioCustomer {
                    products: maxio_products,
                }),
            },
        }
    }

    for order in &snapshot.orders {
        let whmcs_products: Vec<String> = order
            .items
            .iter()
            .filter(|i| i.product.whmcs_product_id.is_some())
            .map(|i| i.product.name.clone())
            .collect();
        if whmcs_products.is_empty() {
            continue;
        }
        if !matches!(snapshot.requested, DealRef::Order(_)) {
            skipped.push(skip(
                Flow::WhmcsProvisioning,
                format!(
                    "Order {} is provisioned when it is approved (dispatched by its Order Id), not from its Opportunity",
                    order.id
                ),
            ));
        } else if let Some(existing) = &order.whmcs_order_id {
            skipped.push(skip(
                Flow::WhmcsProvisioning,
                format!("Order {} is already WHMCS order {existing}", order.id),
            ));
        } else {
            steps.push(PlannedStep::WhmcsProvision {
                order_id: order.id.clone(),
                products: whmcs_products,
            });
        }
    }

    if steps.is_empty() && skipped.is_empty() {
        let reason = if snapshot.order_items().next().is_none() {
            "the deal's Orders have no products".to_string()
        } else {
            "no product maps to a Maxio AB component or a WHMCS product".to_string()
        };
        skipped.push(skip(Flow::MaxioBilling, reason.clone()));
        skipped.push(skip(Flow::WhmcsProvisioning, reason));
    }
    WorkPlan {
        steps,
        skipped,
        unmapped_products,
    }
}

/// The plan dispatch carries out, and when to dispatch the deal again (a change or a
/// cancellation that is due later). Pure; the dry run uses it too.
pub fn for_dispatch(
    snapshot: &DealSnapshot,
    mapping: &Mapping,
    now: DateTime<Utc>,
) -> (WorkPlan, Option<DateTime<Utc>>) {
    let today = now.date_naive();
    if let Some(cancellation) = crate::contract::cancel::cancellation(snapshot, mapping, today) {
        let again = match cancellation.target {
            Target::Cancel { at } if at > now && cancellation.refused.is_empty() => Some(at),
            _ => None,
        };
        let mut skipped = Vec::new();
        if again.is_some() {
            skipped.push(Skipped {
                flow: Flow::MaxioBilling,
                reason: format!(
                    "the cancellation takes effect {}; what AB and WHMCS can schedule is scheduled now, and the deal is dispatched again then",
                    crate::contract::cancel::rfc3339(cancellation.at().unwrap_or(now))
                ),
            });
        }
        let work = WorkPlan {
            steps: vec![PlannedStep::Cancellation {
                summary: cancellation.describe(),
                cancellation: Box::new(cancellation),
            }],
            skipped,
            unmapped_products: Vec::new(),
        };
        return (work, again);
    }
    let mut work = plan(snapshot, mapping);
    let again = hold_until_effective(&mut work, snapshot, today)
        .and_then(|day| day.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc());
    (work, again)
}

/// Why a cancellation waits before it is planned: the deal it cancels has nothing billed yet (no
/// AB subscription id, no WHMCS service id, and nothing else refused), as when a CPQ amendment to
/// zero is approved while its first sale is still being billed. Dispatch sends it again later, a
/// bounded number of times, as a deal waits for its Order; after the last it is planned, and
/// refused with `CANCELLATION_NOTHING_BILLED`. Pure.
pub fn waits_for_billing(
    snapshot: &DealSnapshot,
    mapping: &Mapping,
    today: chrono::NaiveDate,
) -> Option<String> {
    let cancellation = crate::contract::cancel::cancellation(snapshot, mapping, today)?;
    match (&cancellation.target, cancellation.refused.as_slice()) {
        (Target::Cancel { .. }, [only]) if only.code == ErrorCode::CancellationNothingBilled => {
            Some(only.message.clone())
        }
        _ => None,
    }
}

/// Holds back the Maxio billing of an amendment or renewal that takes effect after `today`: the
/// step leaves the plan, the reason is said, and the day is returned (dispatch then re-dispatches
/// the deal that day; the dry run says so). Pure.
pub fn hold_until_effective(
    work: &mut WorkPlan,
    snapshot: &DealSnapshot,
    today: chrono::NaiveDate,
) -> Option<chrono::NaiveDate> {
    let planned = |s: &PlannedStep| matches!(s, PlannedStep::MaxioCustomer { .. });
    let day = crate::contract::net::waits_until(snapshot, today)
        .filter(|_| work.steps.iter().any(planned))?;
    work.steps.retain(|s| !planned(s));
    work.skipped.push(Skipped {
        flow: Flow::MaxioBilling,
        reason: format!(
            "the change takes effect {day}; the deal is dispatched again that day (00:00 UTC) and applied to the Contract's subscription then"
        ),
    });
    Some(day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::{Account, Address, Opportunity, Order, OrderItem};
    use rust_decimal::Decimal;

    fn id(s: &str) -> SfId {
        SfId::parse(s).unwrap()
    }

    fn product(name: &str, handle: Option<&str>, pid: Option<&str>) -> Product {
        Product {
            id: id("01tA000010khO8J"),
            name: name.into(),
            code: Some(name.to_uppercase()),
            maxio_component_handle: handle.map(Into::into),
            maxio_product_handle: None,
            whmcs_product_id: pid.map(Into::into),
            billing_cycle: None,
            item_class: None,
            config_options_json: None,
        }
    }

    fn item(p: Product) -> OrderItem {
        OrderItem {
            revised_item: None,
            segment_index: None,
            id: id("802A000010khO8J"),
            quantity: Decimal::ONE,
            unit_price: None,
            service_date: None,
            end_date: None,
            whmcs_service_id: None,
            product: p,
            schedules: vec![],
        }
    }

    fn snapshot(requested: DealRef, won: bool, items: Vec<OrderItem>) -> DealSnapshot {
        DealSnapshot {
            dispatched_on: None,
            contract: None,
            requested,
            account: Account {
                id: id("001A000010khO8J"),
                name: "A".into(),
                phone: None,
                billing_address: Address::default(),
                customer_number: None,
                whmcs_client_id: None,
                maxio_customer_id: None,
            },
            opportunity: Some(Opportunity {
                id: id("006A000010khO8J"),
                name: "O".into(),
                stage: if won {
                    "Closed Won".into()
                } else {
                    "Negotiation".into()
                },
                close_date: None,
                is_won: won,
                is_closed: won,
                amount: None,
                account_id: Some(id("001A000010khO8J")),
                maxio_subscription_id: None,
                maxio_product_handle: None,
                whmcs_service_id: None,
                maxio_sync_status: None,
                maxio_site: None,
                amended_contract: None,
                renewed_contract: None,
                scheduled_cancellation: None,
                cancellation_status: None,
                cancellation_detail: None,
                currency: None,
                contact_roles: vec![],
            }),
            quote: None,
            orders: vec![Order {
                renews: None,
                end_date: None,
                id: id("801A000010khO8J"),
                number: None,
                status: "Activated".into(),
                effective_date: None,
                currency: None,
                account_id: None,
                opportunity_id: None,
                activation_status: None,
                whmcs_order_id: None,
                items,
            }],
        }
    }

    fn opp() -> DealRef {
        DealRef::Opportunity(id("006A000010khO8J"))
    }

    fn order() -> DealRef {
        DealRef::Order(id("801A000010khO8J"))
    }

    #[test]
    fn a_won_deal_with_mapped_products_starts_the_maxio_chain_and_lists_the_unmapped() {
        let s = snapshot(
            opp(),
            true,
            vec![
                item(product("API Calls", Some("api-calls"), None)),
                item(product("Workshop", None, None)),
            ],
        );
        let p = plan(&s, &Mapping::default());
        assert_eq!(
            p.steps,
            vec![PlannedStep::MaxioCustomer {
                products: vec!["API Calls".into()]
            }]
        );
        assert_eq!(p.unmapped_products, vec!["Workshop (WORKSHOP)".to_string()]);
        assert!(p.skipped.is_empty());
    }

    #[test]
    fn an_open_opportunity_is_skipped_with_its_stage() {
        let s = snapshot(
            opp(),
            false,
            vec![item(product("API Calls", Some("api-calls"), None))],
        );
        let p = plan(&s, &Mapping::default());
        assert!(p.steps.is_empty());
        assert_eq!(p.skipped[0].flow, Flow::MaxioBilling);
        assert!(
            p.skipped[0].reason.contains("not won (stage Negotiation)"),
            "{:?}",
            p.skipped
        );
    }

    #[test]
    fn an_already_synced_opportunity_is_skipped() {
        let mut s = snapshot(
            opp(),
            true,
            vec![item(product("API Calls", Some("api-calls"), None))],
        );
        if let Some(o) = s.opportunity.as_mut() {
            o.maxio_subscription_id = Some("sub_1".into());
            o.maxio_sync_status = Some("Synced".into());
        }
        let p = plan(&s, &Mapping::default());
        assert!(p.steps.is_empty());
        assert!(
            p.skipped[0]
                .reason
                .contains("already has Maxio subscription sub_1 and is Synced")
        );
    }

    #[test]
    fn a_failed_opportunity_with_a_subscription_runs_again_to_be_repaired() {
        let mut s = snapshot(
            opp(),
            true,
            vec![item(product("API Calls", Some("api-calls"), None))],
        );
        if let Some(o) = s.opportunity.as_mut() {
            o.maxio_subscription_id = Some("sub_1".into());
            o.maxio_sync_status = Some("Failed".into());
        }
        let p = plan(&s, &Mapping::default());
        assert!(
            matches!(p.steps[..], [PlannedStep::MaxioCustomer { .. }]),
            "{p:?}"
        );
    }

    #[test]
    fn whmcs_products_are_provisioned_only_when_the_order_is_dispatched() {
        let items = || vec![item(product("Gold", None, Some("185")))];
        let by_order = plan(&snapshot(order(), false, items()), &Mapping::default());
        assert_eq!(
            by_order.steps,
            vec![PlannedStep::WhmcsProvision {
                order_id: id("801A000010khO8J"),
                products: vec!["Gold".into()],
            }]
        );
        let by_opp = plan(&snapshot(opp(), false, items()), &Mapping::default());
        assert!(by_opp.steps.is_empty());
        assert_eq!(by_opp.skipped[0].flow, Flow::WhmcsProvisioning);
        let mut done = snapshot(order(), false, items());
        done.orders[0].whmcs_order_id = Some("12345".into());
        let p = plan(&done, &Mapping::default());
        assert!(p.steps.is_empty());
        assert!(p.skipped[0].reason.contains("already WHMCS order 12345"));
    }

    #[test]
    fn a_deal_with_nothing_billable_says_so() {
        let p = plan(
            &snapshot(opp(), true, vec![item(product("Workshop", None, None))]),
            &Mapping::default(),
        );
        assert!(p.steps.is_empty());
        assert!(
            p.skipped
                .iter()
                .all(|s| s.reason.contains("no product maps"))
        );
        let p = plan(&snapshot(opp(), true, vec![]), &Mapping::default());
        assert!(p.skipped[0].reason.contains("no products"));
    }

    #[test]
    fn the_mapping_table_maps_products_without_a_product2_handle() {
        let m = Mapping::from_json(
            r#"{"maxio_components":{"by_product_code":{"WORKSHOP":"workshop"}}}"#,
        )
        .unwrap();
        let p = plan(
            &snapshot(opp(), true, vec![item(product("Workshop", None, None))]),
            &m,
        );
        assert_eq!(p.steps.len(), 1);
        assert!(p.unmapped_products.is_empty());
    }
}
