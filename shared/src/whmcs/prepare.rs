//! From a Salesforce Order to a WHMCS AddOrder, as seed 003 maps it, with every business rule
//! checked before any WHMCS call. Pure, so every rule is unit-tested.
//!
//! - `Order.AccountId` → `clientid` through the Account's WHMCS client field (`WH_Account__c`);
//! - each OrderItem, in order: the Product2 WHMCS product id → `pid[i]` (as a string),
//!   `Billing_Cycle__c` through the billing cycle map → `billingcycle[i]`, `Quantity` → `qty[i]`,
//!   `Portal_ConfigOptions_JSON__c` → `configoptions[i]`;
//! - `paymentmethod`, `noinvoice` and `noemail` from the mapping document.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::model::{AddOrder, OrderLine, parse_option_map};
use crate::codes::ErrorCode;
use crate::failure::Failure;
use crate::mapping::Mapping;
use crate::salesforce::SfId;
use crate::snapshot::{DealSnapshot, Order};

/// One rule an Order breaks, with its stable code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderProblem {
    pub code: ErrorCode,
    pub message: String,
}

impl std::fmt::Display for OrderProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

/// Every problem, first code first: `CODE: message; CODE: message`.
pub fn describe(problems: &[OrderProblem]) -> String {
    problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// The problems as one failure: the first one's code, every problem said (`CODE: message; ...`).
pub fn failure(problems: &[OrderProblem]) -> Failure {
    Failure::of_all(problems.iter().map(|p| (p.code, p.message.as_str())))
}

/// What provisioning one Order needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WhmcsOrderPlan {
    pub order_id: SfId,
    pub opportunity_id: Option<SfId>,
    pub client_id: String,
    /// The OrderItem of each AddOrder line, in line order (for the service ids).
    pub items: Vec<SfId>,
    /// Index of the line whose service id goes on the Opportunity: the first `Service` item,
    /// else the first line.
    pub main_line: usize,
    /// Whether the Order still needs `Activation_Status__c = Activating` written.
    pub needs_activating: bool,
    /// Renewal lines the Contract's existing services carry on (order product, service id):
    /// written back, never ordered.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub continued: Vec<(SfId, String)>,
    /// The WHMCS order of the continued services (the Order's WHMCS order when it orders none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub continued_order: Option<String>,
}

impl WhmcsOrderPlan {
    /// Whether the Order needs an AddOrder (a renewal whose every line carries on does not).
    pub fn orders_anything(&self) -> bool {
        !self.items.is_empty()
    }
}

fn add_order(client_id: &str, lines: Vec<OrderLine>, mapping: &Mapping) -> AddOrder {
    AddOrder {
        client_id: client_id.to_string(),
        payment_method: mapping.whmcs.payment_method.clone(),
        lines,
        promo_code: Some(String::new()),
        no_invoice: mapping.whmcs.no_invoice,
        no_invoice_email: false,
        no_email: mapping.whmcs.no_email,
        client_ip: None,
    }
}

/// A number or text id as WHMCS wants it: `185.0` → `185`.
fn id_text(raw: &str) -> Option<String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return None;
    }
    match raw.parse::<Decimal>() {
        Ok(d) if d.fract().is_zero() && d > Decimal::ZERO => Some(d.trunc().to_string()),
        _ => Some(raw.to_string()),
    }
}

fn is_whmcs_id(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && s != "0"
}

/// Checks the Order against seeds 001 and 003 and builds its AddOrder.
pub fn prepare(
    snapshot: &DealSnapshot,
    order_id: &SfId,
    mapping: &Mapping,
) -> Result<(WhmcsOrderPlan, AddOrder), Vec<OrderProblem>> {
    let mut problems = Vec::new();
    let Some(order) = snapshot.orders.iter().find(|o| &o.id == order_id) else {
        return Err(vec![OrderProblem {
            code: ErrorCode::WhmcsOrderNotFound,
            message: format!("Order {order_id} is not part of the deal that was loaded"),
        }]);
    };
    let split = super::contract_lines::contract_lines(snapshot, order);
    if split.problems.iter().any(|p| {
        matches!(
            p.code,
            ErrorCode::AmendmentNotSupported | ErrorCode::RenewalNotSupported
        )
    }) {
        return Err(split.problems);
    }
    problems.extend(split.problems.iter().cloned());
    let mut problem =
        |code: ErrorCode, message: String| problems.push(OrderProblem { code, message });
    let options = &mapping.whmcs;
    let approved = options.approved_order_statuses.contains(&order.status)
        || order
            .activation_status
            .as_ref()
            .is_some_and(|a| options.approved_activation_statuses.contains(a));
    if !approved {
        problem(
            ErrorCode::WhmcsOrderNotApproved,
            format!(
                "Order {} has status {:?}{}; only {} Orders are provisioned",
                label(order),
                order.status,
                order
                    .activation_status
                    .as_ref()
                    .map(|a| format!(" and activation status {a:?}"))
                    .unwrap_or_default(),
                options
                    .approved_order_statuses
                    .iter()
                    .chain(&options.approved_activation_statuses)
                    .map(|s| format!("{s:?}"))
                    .collect::<Vec<_>>()
                    .join(" or ")
            ),
        );
    }
    if let Some(existing) = &order.whmcs_order_id {
        problem(
            ErrorCode::WhmcsOrderExists,
            format!("Order {} already has WHMCS order {existing}", label(order)),
        );
    }
    let client_field = mapping
        .account
        .whmcs_client_id
        .as_deref()
        .unwrap_or("WHMCS client id");
    let client_id = snapshot
        .account
        .whmcs_client_id
        .as_deref()
        .and_then(id_text)
        .unwrap_or_default();
    if client_id.is_empty() {
        problem(
            ErrorCode::WhmcsClientMissing,
            format!(
                "Account {} has no WHMCS client id ({client_field}); link it to its WHMCS client",
                snapshot.account.name
            ),
        );
    } else if !is_whmcs_id(&client_id) {
        problem(
            ErrorCode::WhmcsClientInvalid,
            format!(
                "Account {} has {client_field} = {client_id:?}, which is not a WHMCS client id",
                snapshot.account.name
            ),
        );
    }
    if order.items.is_empty() {
        problem(
            ErrorCode::WhmcsOrderEmpty,
            format!("Order {} has no products", label(order)),
        );
    }
    let product_field = mapping
        .product
        .whmcs_product_id
        .as_deref()
        .unwrap_or("WHMCS product id");
    let mut lines = Vec::with_capacity(split.ordered.len());
    let mut main_line = None;
    for item in split.ordered.iter().copied() {
        let product = &item.product;
        let name = super::contract_lines::name(item);
        let pid = product
            .whmcs_product_id
            .as_deref()
            .and_then(id_text)
            .unwrap_or_default();
        if pid.is_empty() {
            problem(
                ErrorCode::WhmcsProductUnmapped,
                format!("{name} has no WHMCS product id ({product_field})"),
            );
        } else if !is_whmcs_id(&pid) {
            problem(
                ErrorCode::WhmcsProductUnmapped,
                format!("{name} has {product_field} = {pid:?}, which is not a WHMCS product id"),
            );
        }
        let cycle = match product.billing_cycle.as_deref().map(str::trim) {
            None | Some("") => {
                problem(
                    ErrorCode::WhmcsBillingCycleMissing,
                    format!("{name} has no billing cycle"),
                );
                String::new()
            }
            Some(label) => match options
                .billing_cycles
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(label))
            {
                Some((_, cycle)) => cycle.clone(),
                None => {
                    problem(
                        ErrorCode::WhmcsBillingCycleUnmapped,
                        format!(
                            "{name} has billing cycle {label:?}, which maps to no WHMCS billing cycle (known: {})",
                            options
                                .billing_cycles
                                .keys()
                                .cloned()
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    );
                    String::new()
                }
            },
        };
        let qty = if item.quantity.fract().is_zero() && item.quantity > Decimal::ZERO {
            u32::try_from(item.quantity.trunc().mantissa()).ok()
        } else {
            None
        };
        let qty = match qty {
            Some(q) => q,
            None => {
                problem(
                    ErrorCode::WhmcsInvalidQuantity,
                    format!(
                        "{name} has quantity {}; WHMCS takes a positive whole number",
                        item.quantity.normalize()
                    ),
                );
                1
            }
        };
        let config_options = match parse_option_map(product.config_options_json.as_deref()) {
            Ok(map) => map,
            Err(e) => {
                problem(
                    ErrorCode::WhmcsInvalidConfigOptions,
                    format!("{name}: {}", e.message()),
                );
                None
            }
        };
        if main_line.is_none() && product.item_class.as_deref() == Some("Service") {
            main_line = Some(lines.len());
        }
        lines.push(OrderLine {
            pid,
            billing_cycle: cycle,
            qty,
            config_options,
            custom_fields: None,
            price_override: None,
            domain: None,
        });
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let add = add_order(&client_id, lines, mapping);
    let plan = WhmcsOrderPlan {
        order_id: order.id.clone(),
        opportunity_id: order
            .opportunity_id
            .clone()
            .or_else(|| snapshot.opportunity.as_ref().map(|o| o.id.clone())),
        client_id,
        items: split.ordered.iter().map(|i| i.id.clone()).collect(),
        main_line: main_line.unwrap_or(0),
        continued: split.continued,
        continued_order: split.continued_order,
        needs_activating: order.activation_status.as_deref()
            != Some(mapping.values.activation_activating.as_str()),
    };
    Ok((plan, add))
}

fn label(order: &Order) -> String {
    match &order.number {
        Some(n) => format!("{n} ({})", order.id),
        None => order.id.to_string(),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::snapshot::{Account, Address, DealRef, OrderItem, Product};
    use crate::whmcs::WhmcsRequest;

    fn id(s: &str) -> SfId {
        SfId::parse(s).unwrap()
    }

    fn item(n: u8, name: &str, pid: Option<&str>, cycle: Option<&str>, class: &str) -> OrderItem {
        OrderItem {
            revised_item: None,
            segment_index: None,
            id: id(&format!("802A0000{n:02}khO8J")),
            quantity: Decimal::ONE,
            unit_price: None,
            service_date: None,
            end_date: None,
            whmcs_service_id: None,
            product: Product {
                id: id(&format!("01tA0000{n:02}khO8J")),
                name: name.into(),
                code: None,
                maxio_component_handle: None,
                maxio_product_handle: None,
                whmcs_product_id: pid.map(Into::into),
                billing_cycle: cycle.map(Into::into),
                item_class: Some(class.into()),
                config_options_json: None,
            },
            schedules: vec![],
        }
    }

    /// Seed 003's "Complete Order Example".
    pub(crate) fn seed_003() -> DealSnapshot {
        let order_id = id("801A000010khO8J");
        DealSnapshot {
            dispatched_on: None,
            contract: None,
            requested: DealRef::Order(order_id.clone()),
            account: Account {
                id: id("001A000010khO8J"),
                name: "Haruka Sato".into(),
                phone: None,
                billing_address: Address::default(),
                customer_number: None,
                whmcs_client_id: Some("1".into()),
                maxio_customer_id: None,
            },
            opportunity: None,
            quote: None,
            orders: vec![Order {
                renews: None,
                end_date: None,
                id: order_id,
                number: Some("00000106".into()),
                status: "Pending Review".into(),
                effective_date: None,
                currency: None,
                account_id: None,
                opportunity_id: Some(id("006A000010khO8J")),
                activation_status: None,
                whmcs_order_id: None,
                items: vec![
                    item(
                        1,
                        "Internet Gold (Apartment 1G)",
                        Some("185.0"),
                        Some("Monthly"),
                        "Service",
                    ),
                    item(
                        2,
                        "Single Installation",
                        Some("242"),
                        Some("One-time"),
                        "Activation",
                    ),
                    item(
                        3,
                        "Hikari Denwa Service",
                        Some("246"),
                        Some("Monthly"),
                        "Add-on",
                    ),
                ],
            }],
        }
    }

    pub(crate) fn order_id() -> SfId {
        id("801A000010khO8J")
    }

    fn problems(s: &DealSnapshot) -> Vec<&'static str> {
        prepare(s, &order_id(), &Mapping::default())
            .unwrap_err()
            .iter()
            .map(|p| p.code.as_str())
            .collect()
    }

    #[test]
    fn the_seed_003_order_becomes_the_documented_add_order() {
        let (plan, add) = prepare(&seed_003(), &order_id(), &Mapping::default()).unwrap();
        let form = add.form();
        let pairs: Vec<(&str, &str)> = form
            .pairs()
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            pairs,
            [
                ("action", "AddOrder"),
                ("clientid", "1"),
                ("paymentmethod", "mailin"),
                ("pid[0]", "185"),
                ("pid[1]", "242"),
                ("pid[2]", "246"),
                ("billingcycle[0]", "monthly"),
                ("billingcycle[1]", "onetime"),
                ("billingcycle[2]", "monthly"),
                ("qty[0]", "1"),
                ("qty[1]", "1"),
                ("qty[2]", "1"),
                ("noinvoice", "1"),
                ("noemail", "1"),
                ("promocode", ""),
                ("configoptions[0]", ""),
                ("configoptions[1]", ""),
                ("configoptions[2]", ""),
                ("customfields[0]", ""),
                ("customfields[1]", ""),
                ("customfields[2]", ""),
            ]
        );
        assert_eq!(plan.client_id, "1");
        assert_eq!(plan.items.len(), 3);
        assert_eq!(plan.main_line, 0);
        assert!(plan.needs_activating);
        assert_eq!(plan.opportunity_id, Some(id("006A000010khO8J")));
    }

    #[test]
    fn config_options_json_goes_to_its_line() {
        let mut s = seed_003();
        s.orders[0].items[1].product.config_options_json = Some(r#"{"12": "34"}"#.into());
        let (_, add) = prepare(&s, &order_id(), &Mapping::default()).unwrap();
        assert_eq!(add.lines[0].config_options, None);
        assert_eq!(
            add.lines[1].config_options.as_ref().unwrap()["12"],
            serde_json::json!("34")
        );
        s.orders[0].items[1].product.config_options_json = Some("{broken".into());
        assert_eq!(problems(&s), ["WHMCS_INVALID_CONFIG_OPTIONS"]);
    }

    #[test]
    fn only_approved_orders_are_provisioned() {
        let mut s = seed_003();
        s.orders[0].status = "Activating".into();
        assert!(prepare(&s, &order_id(), &Mapping::default()).is_ok());
        s.orders[0].status = "Approved".into();
        s.orders[0].activation_status = Some("Activating".into());
        let (plan, _) = prepare(&s, &order_id(), &Mapping::default()).unwrap();
        assert!(
            !plan.needs_activating,
            "seed 001's flow already set Activating"
        );
        s.orders[0].status = "Draft".into();
        s.orders[0].activation_status = None;
        let err = prepare(&s, &order_id(), &Mapping::default()).unwrap_err();
        assert_eq!(err[0].code, "WHMCS_ORDER_NOT_APPROVED");
        assert!(
            err[0].message.contains("has status \"Draft\""),
            "{}",
            err[0].message
        );
    }

    #[test]
    fn an_order_with_a_whmcs_order_id_is_not_provisioned_again() {
        let mut s = seed_003();
        s.orders[0].whmcs_order_id = Some("12345".into());
        assert_eq!(problems(&s), ["WHMCS_ORDER_EXISTS"]);
    }

    #[test]
    fn every_rule_is_checked_and_each_problem_named() {
        let mut s = seed_003();
        s.account.whmcs_client_id = None;
        s.orders[0].items[0].product.whmcs_product_id = None;
        s.orders[0].items[1].product.billing_cycle = Some("Fortnightly".into());
        s.orders[0].items[2].quantity = Decimal::new(15, 1);
        let err = prepare(&s, &order_id(), &Mapping::default()).unwrap_err();
        let codes: Vec<&str> = err.iter().map(|p| p.code.as_str()).collect();
        assert_eq!(
            codes,
            [
                "WHMCS_CLIENT_MISSING",
                "WHMCS_PRODUCT_UNMAPPED",
                "WHMCS_BILLING_CYCLE_UNMAPPED",
                "WHMCS_INVALID_QUANTITY"
            ]
        );
        let text = describe(&err);
        assert!(
            text.starts_with(
                "WHMCS_CLIENT_MISSING: Account Haruka Sato has no WHMCS client id (WH_Account__c)"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "Internet Gold (Apartment 1G) has no WHMCS product id (WH_Product_ID__c)"
            ),
            "{text}"
        );
        assert!(
            text.contains("Hikari Denwa Service has quantity 1.5"),
            "{text}"
        );
    }

    #[test]
    fn ids_that_are_not_whmcs_ids_are_refused() {
        let mut s = seed_003();
        s.account.whmcs_client_id = Some("C-1".into());
        s.orders[0].items[0].product.whmcs_product_id = Some("gold".into());
        s.orders[0].items[1].quantity = Decimal::ZERO;
        assert_eq!(
            problems(&s),
            [
                "WHMCS_CLIENT_INVALID",
                "WHMCS_PRODUCT_UNMAPPED",
                "WHMCS_INVALID_QUANTITY"
            ]
        );
        let mut s = seed_003();
        s.orders[0].items.clear();
        assert_eq!(problems(&s), ["WHMCS_ORDER_EMPTY"]);
        let mut s = seed_003();
        s.orders[0].items[0].product.billing_cycle = None;
        assert_eq!(problems(&s), ["WHMCS_BILLING_CYCLE_MISSING"]);
    }

    #[test]
    fn the_payment_method_and_flags_come_from_the_mapping() {
        let mut mapping = Mapping::default();
        mapping.whmcs.payment_method = "banktransfer".into();
        mapping.whmcs.no_email = false;
        let (_, add) = prepare(&seed_003(), &order_id(), &mapping).unwrap();
        let form = add.form();
        assert_eq!(form.get("paymentmethod"), Some("banktransfer"));
        assert_eq!(form.get("noemail"), None);
        assert_eq!(form.get("noinvoice"), Some("1"));
    }
}
