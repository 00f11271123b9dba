//! A CPQ Contract's billable state on a day, netted from every Order on it. Pure.
//!
//! CPQ records a Contract as a dated ledger: the first sale's lines, then each amendment's
//! **deltas** (+5 seats; −3 to remove three; a price change as a debook at the old price and a
//! rebook at the new; a new product as a line revising nothing), each amendment line naming the
//! *original* order product it revises (`SBQQ__RevisedOrderProduct__c`; lifecycle reference
//! §1.5). AB keeps one quantity and one price point per component on the Contract's one
//! subscription, so dealbridge nets the ledger into the state it must have and sets that state
//! (allocations take the new total): a replay sets the same totals and never adds twice.
//!
//! Netting, order by order, oldest first, up to the day: an Order's negative lines first reduce
//! what the earlier Orders left of the line they revise (a lot at the same price first, then the
//! newest), then its positive lines add lots. What is left is the Contract's lines, each with the
//! quantity still billed (0 for a removed product, so its component goes to 0).
//!
//! The result is a deal snapshot of the Contract, which the AB chain checks and prepares like a
//! first sale ([`crate::maxio::prepare`]), so one validation serves both.

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::codes::ErrorCode;
use crate::mapping::Mapping;
use crate::maxio::prepare::DealProblem;
use crate::salesforce::SfId;
use crate::snapshot::{DealSnapshot, Order, OrderItem};

/// What a deal on a Contract does to the Contract's subscription.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContractChange {
    pub contract: SfId,
    /// The Contract's first sale: its Opportunity Id is the AB subscription's `reference`.
    pub original: SfId,
    /// Whether the deal changes the Contract's existing subscription (an amendment or a renewal;
    /// else the first sale itself, re-run after the Contract was amended): such a deal never
    /// creates a customer or a subscription.
    pub amends: bool,
    /// Whether the deal renews the Contract (CPQ `SBQQ__RenewedContract__c`): its Order lists the
    /// new term's lines in full, not deltas.
    #[serde(default)]
    pub renews: bool,
    /// The day the change takes effect: the amendment Order's start (the first sale: the day of
    /// the check).
    pub effective: NaiveDate,
    /// The first sale's AB subscription as it recorded it (`Maxio_Subscription_Id__c`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscription_id: Option<i64>,
    /// Whether the first sale is itself a renewal: its Id is then not the subscription's
    /// `reference` (the Contract it renewed began the subscription), which is read from AB by
    /// [`ContractChange::subscription_id`].
    #[serde(default)]
    pub original_renews: bool,
    /// The Contract's lines as netted, said for people: `Support Seats (support-seats) 25 → 20`.
    #[serde(default)]
    pub summary: Vec<String>,
}

/// The Contract netted for the deal: a snapshot whose Orders hold the Contract's lines with the
/// quantities still billed, and what the deal changes.
#[derive(Debug, Clone, PartialEq)]
pub struct ContractView {
    pub snapshot: DealSnapshot,
    pub change: ContractChange,
}

/// What is left of one line of the Contract.
#[derive(Debug, Clone)]
struct Lot<'a> {
    /// The original order product this lot belongs to.
    origin: SfId,
    item: &'a OrderItem,
    order: usize,
    remaining: Decimal,
}

/// What a line is billed at, for telling a price change: the schedule's rates, or the unit price.
fn pricing(item: &OrderItem) -> String {
    if item.schedules.is_empty() {
        return match item.unit_price {
            Some(p) => format!("unit price {}", p.normalize()),
            None => "no price".to_string(),
        };
    }
    item.schedules
        .iter()
        .map(|s| {
            let rates: Vec<String> = s
                .rates
                .iter()
                .map(|r| {
                    format!(
                        "{}-{}:{}:{:?}",
                        r.lower_bound.normalize(),
                        r.upper_bound
                            .map_or_else(String::new, |u| u.normalize().to_string()),
                        r.price.normalize(),
                        r.pricing_method
                    )
                })
                .collect();
            format!("{:?} {}", s.schedule_type, rates.join(", "))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn label(item: &OrderItem, mapping: &Mapping) -> String {
    match mapping.component_handle(&item.product) {
        Some(h) => format!("{} ({h})", item.product.name),
        None => item.product.name.clone(),
    }
}

/// Nets `orders` (oldest first) into lots; the problems are lines removing more than is left.
fn lots<'a>(orders: &[&'a Order], mapping: &Mapping) -> (Vec<Lot<'a>>, Vec<DealProblem>) {
    let mut lots: Vec<Lot<'a>> = Vec::new();
    let mut problems = Vec::new();
    for (index, order) in orders.iter().enumerate() {
        let billed = || {
            order
                .items
                .iter()
                .filter(|i| mapping.component_handle(&i.product).is_some())
        };
        for item in billed().filter(|i| i.quantity < Decimal::ZERO) {
            let origin = item.revised_item.clone().unwrap_or_else(|| item.id.clone());
            let key = pricing(item);
            let mut candidates: Vec<usize> = (0..lots.len())
                .filter(|&i| lots[i].origin == origin && lots[i].remaining > Decimal::ZERO)
                .collect();
            // The same price first, then the newest.
            candidates.sort_by_key(|&i| (pricing(lots[i].item) != key, std::cmp::Reverse(i)));
            let had: Decimal = candidates.iter().map(|&i| lots[i].remaining).sum();
            let mut need = -item.quantity;
            for i in candidates {
                let take = need.min(lots[i].remaining);
                lots[i].remaining -= take;
                need -= take;
                if need.is_zero() {
                    break;
                }
            }
            if need > Decimal::ZERO {
                problems.push(DealProblem::new(
                    ErrorCode::AmendmentNegativeQuantity,
                    match &item.revised_item {
                        Some(revised) => format!(
                            "line {} of Order {} removes {} of {}, but the Contract has {} left of line {revised}; AB cannot bill a negative quantity",
                            item.id,
                            order.number.as_deref().unwrap_or(order.id.as_str()),
                            (-item.quantity).normalize(),
                            label(item, mapping),
                            had.normalize()
                        ),
                        None => format!(
                            "line {} of Order {} has quantity {} for {} and revises no line of the Contract; AB cannot bill a negative quantity",
                            item.id,
                            order.number.as_deref().unwrap_or(order.id.as_str()),
                            item.quantity.normalize(),
                            label(item, mapping)
                        ),
                    },
                ));
            }
        }
        for item in billed().filter(|i| i.quantity > Decimal::ZERO) {
            lots.push(Lot {
                origin: item.revised_item.clone().unwrap_or_else(|| item.id.clone()),
                item,
                order: index,
                remaining: item.quantity,
            });
        }
    }
    (lots, problems)
}

/// A renewal's lots: its Order lists the new term in full, so the Contract's state is its lines
/// (not the earlier Orders' netted with them). A line billed exactly as a line the Contract has
/// now continues that line (same price point: an unchanged renewal changes nothing in AB); a
/// component the renewal leaves out goes to 0.
fn renewed<'a>(
    dated: &[&'a Order],
    before: &[Lot<'a>],
    own: &dyn Fn(&Order) -> bool,
    mapping: &Mapping,
) -> (Vec<Lot<'a>>, Vec<DealProblem>) {
    let mut problems = Vec::new();
    let mut lots: Vec<Lot<'a>> = Vec::new();
    for (index, order) in dated.iter().enumerate().filter(|(_, o)| own(o)) {
        for item in order
            .items
            .iter()
            .filter(|i| mapping.component_handle(&i.product).is_some())
        {
            if item.quantity < Decimal::ZERO {
                problems.push(DealProblem::new(
                    ErrorCode::AmendmentNegativeQuantity,
                    format!(
                        "line {} of the renewal Order {} has quantity {} for {}; a renewal lists the new term's quantities, and AB cannot bill a negative one",
                        item.id,
                        order.number.as_deref().unwrap_or(order.id.as_str()),
                        item.quantity.normalize(),
                        label(item, mapping)
                    ),
                ));
                continue;
            }
            if item.quantity.is_zero() {
                continue;
            }
            let handle = mapping.component_handle(&item.product);
            let key = pricing(item);
            let continued = before.iter().find(|l| {
                l.remaining > Decimal::ZERO
                    && mapping.component_handle(&l.item.product) == handle
                    && pricing(l.item) == key
            });
            lots.push(Lot {
                origin: item.id.clone(),
                item: continued.map_or(item, |l| l.item),
                order: index,
                remaining: item.quantity,
            });
        }
    }
    let last = dated.iter().rposition(|o| own(o)).unwrap_or(0);
    for lot in before {
        let handle = mapping.component_handle(&lot.item.product);
        if !lots
            .iter()
            .any(|l| mapping.component_handle(&l.item.product) == handle)
        {
            lots.push(Lot {
                origin: lot.origin.clone(),
                item: lot.item,
                order: last,
                remaining: Decimal::ZERO,
            });
        }
    }
    (lots, problems)
}

/// One component of the Contract in a netted state.
struct ComponentState<'a> {
    handle: String,
    /// The distinct prices of what is still billed, each with a line billed at it.
    priced: Vec<(String, &'a OrderItem)>,
    quantity: Decimal,
}

/// The Contract's components in a netted state, in order of first appearance.
fn by_component<'a>(lots: &[Lot<'a>], mapping: &Mapping) -> Vec<ComponentState<'a>> {
    let mut out: Vec<ComponentState<'a>> = Vec::new();
    for lot in lots {
        let Some(handle) = mapping.component_handle(&lot.item.product) else {
            continue;
        };
        let index = match out.iter().position(|c| c.handle == handle) {
            Some(i) => i,
            None => {
                out.push(ComponentState {
                    handle: handle.to_string(),
                    priced: Vec::new(),
                    quantity: Decimal::ZERO,
                });
                out.len() - 1
            }
        };
        let entry = &mut out[index];
        entry.quantity += lot.remaining;
        if lot.remaining > Decimal::ZERO {
            let key = pricing(lot.item);
            if !entry.priced.iter().any(|(k, _)| *k == key) {
                entry.priced.push((key, lot.item));
            }
        }
    }
    out
}

/// The Contract netted for `snapshot`'s deal, as of the later of `today` and the deal's own
/// start; `None` for a deal whose snapshot has no Contract history (a first sale not billed
/// yet). `refuse_backdated`: an amendment or renewal effective before the day it reached
/// dealbridge is refused (`maxio.past_start` `refuse`), else applied from today.
pub fn view(
    snapshot: &DealSnapshot,
    mapping: &Mapping,
    today: NaiveDate,
    refuse_backdated: bool,
) -> Option<Result<ContractView, Vec<DealProblem>>> {
    let history = snapshot.contract.as_ref()?;
    let opportunity = snapshot.opportunity.as_ref()?;
    Some(netted(
        snapshot,
        mapping,
        today,
        refuse_backdated,
        history,
        opportunity,
    ))
}

fn netted(
    snapshot: &DealSnapshot,
    mapping: &Mapping,
    today: NaiveDate,
    refuse_backdated: bool,
    history: &crate::snapshot::ContractHistory,
    opportunity: &crate::snapshot::Opportunity,
) -> Result<ContractView, Vec<DealProblem>> {
    let contract = &history.contract;
    let Some(original) = history.original.as_ref() else {
        return Err(vec![DealProblem::new(
            ErrorCode::AmendmentOriginalNotFound,
            format!(
                "Contract {} cannot be traced to its first sale: {}; dealbridge finds the Contract's AB subscription through the Opportunity of the quote the Contract was made from",
                contract.number.as_deref().unwrap_or(contract.id.as_str()),
                match &contract.quote_id {
                    Some(q) => format!(
                        "its quote {q} names no Opportunity visible to the integration user"
                    ),
                    None => "it has no quote".to_string(),
                }
            ),
        )]);
    };
    let amends = opportunity.id != original.id;
    let renews = opportunity.renewed_contract.as_ref() == Some(&contract.id);
    let what = if renews { "renewal" } else { "amendment" };
    let mut problems = Vec::new();

    // Every Order on the Contract, the deal's own included, oldest first.
    let mut all: Vec<&Order> = history.orders.iter().collect();
    for own in &snapshot.orders {
        if !all.iter().any(|o| o.id == own.id) {
            all.push(own);
        }
    }
    all.sort_by(|a, b| {
        (a.effective_date, a.number.as_deref()).cmp(&(b.effective_date, b.number.as_deref()))
    });
    let own = |o: &Order| snapshot.orders.iter().any(|s| s.id == o.id);
    let undated: Vec<String> = all
        .iter()
        .filter(|o| o.effective_date.is_none())
        .map(|o| o.number.clone().unwrap_or_else(|| o.id.to_string()))
        .collect();
    if !undated.is_empty() {
        problems.push(DealProblem::new(
            ErrorCode::MaxioNoStartDate,
            format!(
                "Order {} of Contract {} has no start date ({}); amendments are netted in date order",
                undated.join(", "),
                contract.number.as_deref().unwrap_or(contract.id.as_str()),
                mapping.order.start_date
            ),
        ));
    }
    let effective = if amends {
        snapshot
            .orders
            .iter()
            .filter_map(|o| o.effective_date)
            .min()
            .unwrap_or(today)
    } else {
        today
    };
    let as_of = effective.max(today);
    // A renewal Order belongs to the next term: only the renewal itself bills it.
    let renewal_of = |o: &Order| o.renews.as_ref() == Some(&contract.id);
    // A renewal in force: it starts after the Contract's end, by today.
    let in_force = |o: &Order| {
        renewal_of(o)
            && o.effective_date
                .is_some_and(|d| d <= as_of && contract.end_date.is_none_or(|end| d > end))
    };
    if !renews && let Some(renewal) = all.iter().find(|o| in_force(o)) {
        return Err(vec![DealProblem::new(
            ErrorCode::ContractRenewed,
            format!(
                "Contract {} was renewed from {} (Order {} of Opportunity {}); its AB subscription bills the renewal's terms now, so the {} is not applied to it (it would undo the renewal). Amend the renewal's Contract instead",
                contract.number.as_deref().unwrap_or(contract.id.as_str()),
                renewal
                    .effective_date
                    .map(|d| d.to_string())
                    .unwrap_or_default(),
                renewal.number.as_deref().unwrap_or(renewal.id.as_str()),
                renewal
                    .opportunity_id
                    .as_ref()
                    .map(|o| o.to_string())
                    .unwrap_or_default(),
                if amends { "amendment" } else { "first sale" }
            ),
        )]);
    }
    let dated: Vec<&Order> = all
        .into_iter()
        .filter(|o| o.effective_date.is_some_and(|d| d <= as_of))
        .filter(|o| !renewal_of(o) || (renews && own(o)))
        .collect();

    let amendment_orders = || {
        dated
            .iter()
            .filter(|o| o.opportunity_id.as_ref() != Some(&original.id))
    };
    let segmented: Vec<String> = dated
        .iter()
        .flat_map(|o| o.items.iter())
        .filter(|i| i.segment_index.is_some() && mapping.component_handle(&i.product).is_some())
        .map(|i| format!("{} {}", label(i, mapping), i.id))
        .collect();
    if !segmented.is_empty() {
        problems.push(DealProblem::new(
            ErrorCode::AmendmentSegmented,
            format!(
                "the Contract has multi-dimensional (MDQ) segments ({}); AB bills one quantity and price per component, not per segment",
                segmented.join(", ")
            ),
        ));
    }
    if renews {
        // A renewal starts the day after the Contract ends: no gap, no overlap.
        let follows = contract.end_date.and_then(|e| e.succ_opt());
        if follows.is_some_and(|day| day != effective) {
            problems.push(DealProblem::new(
                ErrorCode::RenewalNotContiguous,
                format!(
                    "the renewal starts {effective}, but Contract {} ends {}, so the renewal should start {}; AB continues the same subscription, which cannot have a gap or bill a period twice",
                    contract.number.as_deref().unwrap_or(contract.id.as_str()),
                    contract.end_date.map(|d| d.to_string()).unwrap_or_default(),
                    follows.map(|d| d.to_string()).unwrap_or_default()
                ),
            ));
        }
    } else if contract.coterm_disabled && amendment_orders().next().is_some() {
        problems.push(DealProblem::new(
            ErrorCode::AmendmentNotCoterminous,
            format!(
                "Contract {} disables co-termination of amendments (SBQQ__DisableAmendmentCoTerm__c); AB applies every change to the one subscription for the rest of its term",
                contract.number.as_deref().unwrap_or(contract.id.as_str())
            ),
        ));
    } else if let Some(end) = contract.end_date {
        let off: Vec<String> = amendment_orders()
            .flat_map(|o| o.items.iter())
            .filter(|i| mapping.component_handle(&i.product).is_some())
            .filter(|i| i.end_date.is_some_and(|e| e != end))
            .map(|i| {
                format!(
                    "{} {} ends {}",
                    label(i, mapping),
                    i.id,
                    i.end_date.map(|d| d.to_string()).unwrap_or_default()
                )
            })
            .collect();
        if !off.is_empty() {
            problems.push(DealProblem::new(
                ErrorCode::AmendmentNotCoterminous,
                format!(
                    "the amendment's lines do not end with the Contract on {end} ({}); AB bills a change for the rest of the subscription's term, so it cannot end a line early",
                    off.join(", ")
                ),
            ));
        }
    }

    // Judged on the day dealbridge received the deal: retries past midnight do not backdate it.
    let received = snapshot.dispatched_on.unwrap_or(today).min(today);
    if amends && effective < received && refuse_backdated {
        problems.push(DealProblem::new(
            ErrorCode::AmendmentBackdated,
            format!(
                "the {what} takes effect {effective}, before it reached dealbridge ({received}); AB applies a change on the day it is made, so it cannot bill the days since exactly. Move its start to today or later, or set maxio.past_start to start_on_sync to apply it from today"
            ),
        ));
    }

    // What the deal changes: the Contract before its own Orders and after.
    let before_orders: Vec<&Order> = dated
        .iter()
        .copied()
        .filter(|o| !amends || !own(o))
        .collect();
    let (before, _) = lots(&before_orders, mapping);
    let (after, removed_too_much) = if renews {
        renewed(&dated, &before, &own, mapping)
    } else {
        lots(&dated, mapping)
    };
    let over_removed = !removed_too_much.is_empty();
    problems.extend(removed_too_much);
    let before_state = by_component(&before, mapping);
    let after_state = by_component(&after, mapping);
    let mut summary = Vec::new();
    for state in &after_state {
        let was = before_state.iter().find(|c| c.handle == state.handle);
        let was_quantity = was.map_or(Decimal::ZERO, |c| c.quantity);
        if was_quantity != state.quantity || !amends {
            summary.push(format!(
                "{} {} → {}",
                state.handle,
                was_quantity.normalize(),
                state.quantity.normalize()
            ));
        }
        if let (Some(was), [(key, item)]) = (was, state.priced.as_slice())
            && let [(was_key, _)] = was.priced.as_slice()
            && key != was_key
            && item.schedules.is_empty()
        {
            problems.push(DealProblem::new(
                ErrorCode::AmendmentPriceNotScheduled,
                format!(
                    "the amendment changes {} from {was_key} to {key}, but the product has no consumption schedule, so AB bills it at the component's catalog price point and would keep billing the old price. Give the product a consumption schedule (dealbridge then makes a price point at the new price), or change the price in AB",
                    label(item, mapping)
                ),
            ));
        }
    }
    if amends
        && !over_removed
        && !after_state.is_empty()
        && after_state.iter().all(|c| c.quantity.is_zero())
    {
        problems.push(DealProblem::new(
            ErrorCode::ContractCancellationNotSupported,
            format!(
                "the {what} takes every line of Contract {} to zero from {effective}: a CPQ cancellation, which the cancellation steps carry out (dispatch the amendment's Opportunity); the AB chain does not leave the subscription billing its base product with no components",
                contract.number.as_deref().unwrap_or(contract.id.as_str())
            ),
        ));
    }
    if !problems.is_empty() {
        return Err(problems);
    }

    // The Contract as a deal: the lots left by each Order, in Order.
    let orders: Vec<Order> = dated
        .iter()
        .enumerate()
        .filter_map(|(index, order)| {
            let items: Vec<OrderItem> = after
                .iter()
                .filter(|l| l.order == index)
                .map(|l| OrderItem {
                    quantity: l.remaining,
                    ..l.item.clone()
                })
                .collect();
            (!items.is_empty()).then(|| Order {
                items,
                ..(*order).clone()
            })
        })
        .collect();
    let mut deal_opportunity = opportunity.clone();
    deal_opportunity.maxio_site = opportunity
        .maxio_site
        .clone()
        .or_else(|| original.maxio_site.clone());
    deal_opportunity.maxio_product_handle = opportunity
        .maxio_product_handle
        .clone()
        .or_else(|| original.maxio_product_handle.clone());
    if amends {
        deal_opportunity
            .contact_roles
            .extend(original.contact_roles.iter().cloned());
    }
    Ok(ContractView {
        snapshot: DealSnapshot {
            dispatched_on: snapshot.dispatched_on,
            requested: snapshot.requested.clone(),
            account: snapshot.account.clone(),
            opportunity: Some(deal_opportunity),
            quote: snapshot.quote.clone(),
            orders,
            contract: None,
        },
        change: ContractChange {
            contract: contract.id.clone(),
            original: original.id.clone(),
            amends,
            renews,
            subscription_id: original
                .maxio_subscription_id
                .as_deref()
                .and_then(|s| s.trim().parse().ok()),
            original_renews: original.renewed_contract.is_some(),
            effective,
            summary,
        },
    })
}

/// The day an amendment or renewal takes effect, when it is later than `today`: the deal waits
/// for it.
/// The day a CPQ cancellation takes effect: the deal is an amendment that nets every line of its
/// Contract to zero (and nothing else refuses it), from its Orders' start.
pub fn cancellation_day(
    snapshot: &DealSnapshot,
    mapping: &Mapping,
    today: NaiveDate,
) -> Option<NaiveDate> {
    snapshot.opportunity.as_ref()?.amended_contract.as_ref()?;
    match view(snapshot, mapping, today, false)? {
        Err(problems)
            if problems.len() == 1
                && problems[0].code == ErrorCode::ContractCancellationNotSupported =>
        {
            snapshot
                .orders
                .iter()
                .filter_map(|o| o.effective_date)
                .min()
        }
        _ => None,
    }
}

pub fn waits_until(snapshot: &DealSnapshot, today: NaiveDate) -> Option<NaiveDate> {
    let opportunity = snapshot.opportunity.as_ref()?;
    if opportunity.amended_contract.is_none() && opportunity.renewed_contract.is_none() {
        return None;
    }
    snapshot.contract.as_ref()?;
    snapshot
        .orders
        .iter()
        .filter_map(|o| o.effective_date)
        .min()
        .filter(|d| *d > today)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::{
        Account, Address, Contract, ContractHistory, DealRef, Opportunity, Product,
    };
    use std::str::FromStr;

    const OPP: &str = "006A000010khO8J";
    const AMEND_OPP: &str = "006A000010khO8K";

    fn id(s: &str) -> SfId {
        SfId::parse(s).unwrap()
    }

    fn day(s: &str) -> NaiveDate {
        NaiveDate::from_str(s).unwrap()
    }

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    fn product(handle: &str) -> Product {
        Product {
            id: id("01tA000010khO8J"),
            name: handle.to_string(),
            code: None,
            maxio_component_handle: Some(handle.into()),
            maxio_product_handle: None,
            whmcs_product_id: None,
            billing_cycle: None,
            item_class: None,
            config_options_json: None,
        }
    }

    /// A line: `(item id suffix, component, quantity, unit price, revises)`.
    fn line(n: u8, handle: &str, q: &str, price: &str, revises: Option<u8>) -> OrderItem {
        let item = |n: u8| id(&format!("802A0000{n:07}"));
        OrderItem {
            id: item(n),
            quantity: d(q),
            unit_price: Some(d(price)),
            service_date: None,
            end_date: Some(day("2027-10-31")),
            whmcs_service_id: None,
            product: product(handle),
            schedules: vec![],
            revised_item: revises.map(item),
            segment_index: None,
        }
    }

    fn order(n: u8, opportunity: &str, start: &str, items: Vec<OrderItem>) -> Order {
        Order {
            renews: None,
            id: id(&format!("801A0000{n:07}")),
            number: Some(format!("0000{n}")),
            status: "Activated".into(),
            effective_date: Some(day(start)),
            currency: Some("USD".into()),
            end_date: Some(day("2027-10-31")),
            account_id: None,
            opportunity_id: Some(id(opportunity)),
            activation_status: None,
            whmcs_order_id: None,
            items,
        }
    }

    fn opportunity(opp: &str, amends: bool) -> Opportunity {
        Opportunity {
            id: id(opp),
            name: "O".into(),
            stage: "Closed Won".into(),
            close_date: None,
            is_won: true,
            is_closed: true,
            amount: None,
            account_id: None,
            maxio_subscription_id: None,
            maxio_product_handle: None,
            whmcs_service_id: None,
            maxio_sync_status: None,
            maxio_site: Some("uk".into()).filter(|_| !amends),
            currency: Some("USD".into()),
            amended_contract: amends.then(|| id("800A000010khO8J")),
            renewed_contract: None,
            scheduled_cancellation: None,
            cancellation_status: None,
            cancellation_detail: None,
            contact_roles: vec![],
        }
    }

    /// An amendment deal: the first sale's Order 1 and the amendment's Order 2.
    fn amendment(first: Vec<OrderItem>, delta: Vec<OrderItem>, start: &str) -> DealSnapshot {
        let original = order(1, OPP, "2026-11-01", first);
        let change = order(2, AMEND_OPP, start, delta);
        DealSnapshot {
            dispatched_on: None,
            requested: DealRef::Opportunity(id(AMEND_OPP)),
            account: Account {
                id: id("001A000010khO8J"),
                name: "Oakmont".into(),
                phone: None,
                billing_address: Address::default(),
                customer_number: None,
                whmcs_client_id: None,
                maxio_customer_id: None,
            },
            opportunity: Some(opportunity(AMEND_OPP, true)),
            quote: None,
            orders: vec![change.clone()],
            contract: Some(ContractHistory {
                contract: Contract {
                    id: id("800A000010khO8J"),
                    number: Some("00000300".into()),
                    account_id: None,
                    start_date: Some(day("2026-11-01")),
                    end_date: Some(day("2027-10-31")),
                    term: Some(d("12")),
                    currency: Some("USD".into()),
                    quote_id: None,
                    coterm_disabled: false,
                },
                original: Some(opportunity(OPP, false)),
                orders: vec![original, change],
            }),
        }
    }

    const TODAY: &str = "2026-11-20";

    fn netted(s: &DealSnapshot) -> Result<ContractView, Vec<DealProblem>> {
        view(s, &Mapping::default(), day(TODAY), true).unwrap()
    }

    /// `(line number, quantity left)` of every line of the netted Contract.
    fn quantities(v: &ContractView) -> Vec<(u32, String)> {
        v.snapshot
            .order_items()
            .map(|(_, i)| {
                let n = i.id.as_str()[8..15].parse().unwrap();
                (n, i.quantity.normalize().to_string())
            })
            .collect()
    }

    fn codes(problems: &[DealProblem]) -> Vec<ErrorCode> {
        problems.iter().map(|p| p.code).collect()
    }

    #[test]
    fn a_first_sale_without_a_contract_is_not_netted() {
        let mut s = amendment(vec![], vec![], TODAY);
        s.contract = None;
        assert!(view(&s, &Mapping::default(), day(TODAY), true).is_none());
    }

    #[test]
    fn an_increase_and_a_decrease_net_into_the_new_totals_on_the_first_sales_subscription() {
        let s = amendment(
            vec![
                line(1, "seats", "10", "150", None),
                line(2, "premium", "1", "750", None),
            ],
            vec![
                line(3, "seats", "5", "150", Some(1)),
                line(4, "premium", "-1", "750", Some(2)),
            ],
            TODAY,
        );
        let v = netted(&s).unwrap();
        assert_eq!(
            quantities(&v),
            [(1, "10".to_string()), (2, "0".into()), (3, "5".into())]
        );
        assert_eq!(v.change.original, id(OPP));
        assert!(v.change.amends);
        assert_eq!(v.change.effective, day(TODAY));
        assert_eq!(v.change.summary, ["seats 10 → 15", "premium 1 → 0"]);
        // The amendment bills on the first sale's site.
        assert_eq!(
            v.snapshot
                .opportunity
                .as_ref()
                .unwrap()
                .maxio_site
                .as_deref(),
            Some("uk")
        );
    }

    #[test]
    fn a_debook_and_rebook_leaves_only_the_new_price_and_a_negative_line_takes_the_same_price_first()
     {
        let s = amendment(
            vec![line(1, "seats", "25", "150", None)],
            vec![
                line(3, "seats", "25", "120", Some(1)),
                line(2, "seats", "-25", "150", Some(1)),
            ],
            TODAY,
        );
        let v = netted(&s);
        // A price change without a schedule bills AB's catalog price: refused, said plainly.
        let problems = v.unwrap_err();
        assert_eq!(codes(&problems), [ErrorCode::AmendmentPriceNotScheduled]);
        assert!(
            problems[0]
                .message
                .contains("unit price 150 to unit price 120"),
            "{}",
            problems[0].message
        );
    }

    #[test]
    fn removing_more_than_the_contract_has_is_refused_naming_the_line() {
        let s = amendment(
            vec![line(1, "seats", "10", "150", None)],
            vec![line(2, "seats", "-15", "150", Some(1))],
            TODAY,
        );
        let problems = netted(&s).unwrap_err();
        assert_eq!(codes(&problems), [ErrorCode::AmendmentNegativeQuantity]);
        assert!(
            problems[0]
                .message
                .contains("removes 15 of seats (seats), but the Contract has 10 left"),
            "{}",
            problems[0].message
        );
    }

    #[test]
    fn a_backdated_amendment_is_refused_unless_the_mapping_applies_it_from_today() {
        let s = amendment(
            vec![line(1, "seats", "10", "150", None)],
            vec![line(2, "seats", "5", "150", Some(1))],
            "2026-11-10",
        );
        assert_eq!(
            codes(&netted(&s).unwrap_err()),
            [ErrorCode::AmendmentBackdated]
        );
        let v = view(&s, &Mapping::default(), day(TODAY), false)
            .unwrap()
            .unwrap();
        assert_eq!(v.change.effective, day("2026-11-10"));
    }

    #[test]
    fn a_future_amendment_waits_for_its_day_and_nets_in_only_then() {
        let s = amendment(
            vec![line(1, "seats", "10", "150", None)],
            vec![line(2, "seats", "5", "150", Some(1))],
            "2027-01-01",
        );
        assert_eq!(waits_until(&s, day(TODAY)), Some(day("2027-01-01")));
        assert_eq!(waits_until(&s, day("2027-01-01")), None);
        // The first sale re-run today does not bill the future amendment yet.
        let mut first = s.clone();
        first.opportunity = Some(opportunity(OPP, false));
        first.orders = vec![s.contract.as_ref().unwrap().orders[0].clone()];
        let v = netted(&first).unwrap();
        assert!(!v.change.amends);
        assert_eq!(quantities(&v).len(), 1);
        assert_eq!(quantities(&v)[0].1, "10");
    }

    #[test]
    fn lines_ending_before_the_contract_segments_and_zeroing_everything_are_refused() {
        let mut short = line(2, "seats", "5", "150", Some(1));
        short.end_date = Some(day("2027-06-30"));
        let s = amendment(
            vec![line(1, "seats", "10", "150", None)],
            vec![short],
            TODAY,
        );
        assert_eq!(
            codes(&netted(&s).unwrap_err()),
            [ErrorCode::AmendmentNotCoterminous]
        );

        let mut segment = line(2, "seats", "5", "150", Some(1));
        segment.segment_index = Some(Decimal::ONE);
        let s = amendment(
            vec![line(1, "seats", "10", "150", None)],
            vec![segment],
            TODAY,
        );
        assert_eq!(
            codes(&netted(&s).unwrap_err()),
            [ErrorCode::AmendmentSegmented]
        );

        let s = amendment(
            vec![line(1, "seats", "10", "150", None)],
            vec![line(2, "seats", "-10", "150", Some(1))],
            TODAY,
        );
        assert_eq!(
            codes(&netted(&s).unwrap_err()),
            [ErrorCode::ContractCancellationNotSupported]
        );
    }

    #[test]
    fn a_contract_that_cannot_be_traced_to_its_first_sale_is_refused() {
        let mut s = amendment(vec![], vec![line(2, "seats", "5", "150", None)], TODAY);
        if let Some(h) = s.contract.as_mut() {
            h.original = None;
        }
        assert_eq!(
            codes(&netted(&s).unwrap_err()),
            [ErrorCode::AmendmentOriginalNotFound]
        );
    }

    /// A renewal deal: the first sale's Order 1 on a Contract ending 2026-11-30, the renewal's
    /// Order 2 with the next term's lines.
    fn renewal(first: Vec<OrderItem>, next: Vec<OrderItem>, start: &str) -> DealSnapshot {
        let mut s = amendment(first, next, start);
        if let Some(o) = s.opportunity.as_mut() {
            o.renewed_contract = o.amended_contract.take();
        }
        if let Some(h) = s.contract.as_mut() {
            h.contract.end_date = Some(day("2026-11-30"));
            h.orders.pop();
        }
        for o in &mut s.orders {
            o.renews = Some(id("800A000010khO8J"));
        }
        s
    }

    #[test]
    fn a_renewal_bills_its_lines_keeping_an_unchanged_lines_price_point_and_dropping_the_rest() {
        let s = renewal(
            vec![
                line(1, "seats", "10", "150", None),
                line(2, "premium", "1", "750", None),
            ],
            vec![line(3, "seats", "12", "150", None)],
            "2026-12-01",
        );
        let v = view(&s, &Mapping::default(), day("2026-12-01"), true)
            .unwrap()
            .unwrap();
        assert!(v.change.renews && v.change.amends);
        // The seats continue line 1 (its price point) at 12; Premium Support goes to 0.
        assert_eq!(quantities(&v), [(1, "12".to_string()), (2, "0".into())]);
        assert_eq!(v.change.summary, ["seats 10 → 12", "premium 1 → 0"]);
        assert_eq!(waits_until(&s, day(TODAY)), Some(day("2026-12-01")));
    }

    #[test]
    fn a_renewal_must_follow_its_contract_and_then_supersedes_it() {
        let s = renewal(
            vec![line(1, "seats", "10", "150", None)],
            vec![line(3, "seats", "10", "150", None)],
            "2026-12-05",
        );
        let problems = view(&s, &Mapping::default(), day("2026-12-05"), true)
            .unwrap()
            .unwrap_err();
        assert_eq!(codes(&problems), [ErrorCode::RenewalNotContiguous]);
        assert!(
            problems[0].message.contains("should start 2026-12-01"),
            "{}",
            problems[0].message
        );

        // Once the renewal is in force, the first sale is not billed over it.
        let mut s = renewal(
            vec![line(1, "seats", "10", "150", None)],
            vec![line(3, "seats", "12", "150", None)],
            "2026-12-01",
        );
        let renewal_order = s.orders[0].clone();
        let first_order = s.contract.as_ref().unwrap().orders[0].clone();
        if let Some(h) = s.contract.as_mut() {
            h.orders.push(renewal_order);
        }
        s.opportunity = Some(opportunity(OPP, false));
        s.orders = vec![first_order];
        let problems = view(&s, &Mapping::default(), day("2026-12-02"), true)
            .unwrap()
            .unwrap_err();
        assert_eq!(codes(&problems), [ErrorCode::ContractRenewed]);
        // Before the renewal's day the first sale still bills its own lines.
        let v = view(&s, &Mapping::default(), day("2026-11-25"), true)
            .unwrap()
            .unwrap();
        assert_eq!(quantities(&v), [(1, "10".to_string())]);
    }
}
