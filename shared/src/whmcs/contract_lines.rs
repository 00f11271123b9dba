//! The WHMCS side of an amendment or renewal Order, pure: which of its lines WHMCS orders as new
//! services, which the Contract's existing services carry on, and which ask for a change WHMCS
//! cannot be given exactly.
//!
//! What an Order of a Contract holds (lifecycle reference §1.5) against what the Contract's
//! earlier Orders provisioned (their products' net quantities, prices and service ids):
//!
//! - **a new product** (a line without `SBQQ__RevisedOrderProduct__c`, for a product the Contract
//!   does not provision yet): ordered as a new service (AddOrder, guarded like a first sale's);
//! - **a renewal line equal to what the service already is** (same product, quantity and unit
//!   price): the existing service carries on (WHMCS renews it by itself); its id is written to the
//!   renewal's order product, and nothing is sent;
//! - **anything else** (a quantity change, a removal, a price change by debook/rebook, a renewal
//!   with an uplift, a second line of a product already provisioned): refused with
//!   `WHMCS_CHANGE_NOT_SUPPORTED` before any WHMCS call, naming the service to change by hand.
//!   WHMCS has no API that changes a service's quantity (`qty`) or price without an upgrade order
//!   and its invoice (`UpgradeProduct`), which would bill differently from what Salesforce says
//!   (lifecycle reference §4, §6.7); dealbridge does not guess.
//!
//! A first sale (no amended or renewed Contract) orders every line.

use std::collections::BTreeMap;

use rust_decimal::Decimal;

use super::prepare::OrderProblem;
use crate::codes::ErrorCode;
use crate::salesforce::SfId;
use crate::snapshot::{DealSnapshot, Order, OrderItem};

/// How an Order's lines reach WHMCS.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ContractLines<'a> {
    /// Lines ordered as new services, in line order.
    pub ordered: Vec<&'a OrderItem>,
    /// Renewal lines an existing service carries on: the order product and the service id.
    pub continued: Vec<(SfId, String)>,
    /// The WHMCS order the first continued service belongs to.
    pub continued_order: Option<String>,
    pub problems: Vec<OrderProblem>,
}

/// What the Contract's earlier Orders provisioned of one product.
#[derive(Debug, Default)]
struct Provisioned {
    quantity: Decimal,
    unit_price: Option<Decimal>,
    services: Vec<String>,
    whmcs_order: Option<String>,
}

/// `Name (CODE)`, as every WHMCS problem names a product.
pub(super) fn name(item: &OrderItem) -> String {
    match &item.product.code {
        Some(code) => format!("{} ({code})", item.product.name),
        None => item.product.name.clone(),
    }
}

fn services_text(p: &Provisioned) -> String {
    match p.services.as_slice() {
        [] => "its WHMCS service".to_string(),
        [one] => format!("WHMCS service {one}"),
        many => format!("WHMCS services {}", many.join(", ")),
    }
}

fn by_hand() -> &'static str {
    "WHMCS has no API that changes a service's quantity or price without an upgrade order and invoice, so dealbridge does not apply it: change the service in WHMCS (the client's Products/Services, Upgrade/Downgrade or the service's fields), then set the Order's activation status to Provisioned"
}

/// The earlier Orders' WHMCS products, by product: net quantity, last price, services.
fn provisioned(orders: &[Order], current: &SfId) -> BTreeMap<SfId, Provisioned> {
    let mut by_product: BTreeMap<SfId, Provisioned> = BTreeMap::new();
    for order in orders.iter().filter(|o| &o.id != current) {
        for item in order
            .items
            .iter()
            .filter(|i| i.product.whmcs_product_id.is_some())
        {
            let p = by_product.entry(item.product.id.clone()).or_default();
            p.quantity += item.quantity;
            if item.quantity > Decimal::ZERO {
                p.unit_price = item.unit_price;
            }
            if let Some(s) = item.whmcs_service_id.as_ref().filter(|s| !s.is_empty())
                && !p.services.contains(s)
            {
                p.services.push(s.clone());
                if p.whmcs_order.is_none() {
                    p.whmcs_order = order.whmcs_order_id.clone();
                }
            }
        }
    }
    by_product
}

/// Splits `order`'s lines (see the module).
pub fn contract_lines<'a>(snapshot: &DealSnapshot, order: &'a Order) -> ContractLines<'a> {
    let mut lines = ContractLines::default();
    let Some(opportunity) = snapshot.opportunity.as_ref() else {
        lines.ordered = order.items.iter().collect();
        return lines;
    };
    let (contract, renewal) = match (&opportunity.amended_contract, &opportunity.renewed_contract) {
        (Some(c), _) => (c, false),
        (None, Some(c)) => (c, true),
        (None, None) => {
            lines.ordered = order.items.iter().collect();
            return lines;
        }
    };
    let Some(history) = snapshot.contract.as_ref() else {
        lines.problems.push(OrderProblem {
            code: if renewal {
                ErrorCode::RenewalNotSupported
            } else {
                ErrorCode::AmendmentNotSupported
            },
            message: format!(
                "Opportunity {} {} Contract {contract}, whose Orders cannot be read, so what WHMCS provisions for it is unknown; dealbridge orders none of its lines as new services",
                opportunity.id,
                if renewal { "renews" } else { "amends" }
            ),
        });
        return lines;
    };
    let before = provisioned(&history.orders, &order.id);
    let mut problem = |message: String| {
        lines.problems.push(OrderProblem {
            code: ErrorCode::WhmcsChangeNotSupported,
            message,
        })
    };
    let mut ordered = Vec::new();
    let mut continued = Vec::new();
    let mut continued_order = None;
    for item in &order.items {
        let existing = before
            .get(&item.product.id)
            .filter(|p| p.quantity > Decimal::ZERO);
        let qty = item.quantity.normalize();
        if item.revised_item.is_some() || item.quantity <= Decimal::ZERO {
            problem(format!(
                "order product {} changes {} by {qty}{}: {}",
                item.id,
                name(item),
                existing
                    .map(|p| format!(" on {}", services_text(p)))
                    .unwrap_or_default(),
                by_hand()
            ));
            continue;
        }
        let Some(existing) = existing else {
            ordered.push(item);
            continue;
        };
        let same = item.quantity == existing.quantity && item.unit_price == existing.unit_price;
        match existing.services.as_slice() {
            [service] if renewal && same => {
                continued.push((item.id.clone(), service.clone()));
                if continued_order.is_none() {
                    continued_order = existing.whmcs_order.clone();
                }
            }
            _ if renewal => problem(format!(
                "order product {} renews {} at {qty} × {} where {} has {} × {}: {}",
                item.id,
                name(item),
                price(item.unit_price),
                services_text(existing),
                existing.quantity.normalize(),
                price(existing.unit_price),
                by_hand()
            )),
            _ => problem(format!(
                "order product {} adds {qty} {} to a Contract whose {} already provides it: {}",
                item.id,
                name(item),
                services_text(existing),
                by_hand()
            )),
        }
    }
    lines.ordered = ordered;
    lines.continued = continued;
    lines.continued_order = continued_order;
    lines
}

fn price(p: Option<Decimal>) -> String {
    p.map_or_else(|| "no price".to_string(), |p| p.normalize().to_string())
}

#[cfg(test)]
mod tests;
