//! The order actions: AddOrder (reference B2), AcceptOrder (B3), CancelOrder, GetOrders (B4.3)
//! and GetOrderStatuses.
//!
//! AddOrder checks, in WHMCS's order, each failing with its documented message:
//! 1. `clientid` names a client (`Client ID Not Found`) that is not Closed (`Unable to add order
//!    when client status is Closed`; Active and Inactive clients may order).
//! 2. `paymentmethod` is an active gateway module (`Invalid Payment Method. Valid options include
//!    mailin,banktransfer`: the modules joined by a bare comma).
//! 3. `clientip`, when given, is an IP address (`Invalid IP address provided for 'clientip'`,
//!    WHMCS 8's text).
//! 4. With `domaintype[]`, the domain parameters are arrays (`Expecting parameter 'domain' to be
//!    an array`). Domain registrations themselves are not modelled: they add nothing.
//! 5. `addonid` / `addonids[]`: the fake sells no addons (`Addon ID invalid`);
//!    `domainrenewals[...]`: it has no domains (`Domain not owned by Client ID provided`).
//!    `servicerenewals[]` / `addonrenewals[]` are not modelled and are ignored.
//! 6. The cart: every truthy `pid[i]` (or a scalar `pid`) naming an existing, not retired product
//!    with a cycle to bill; unknown or retired pids are dropped, and an empty cart is `No items
//!    added to cart so order cannot proceed` (reference B5; UNCONFIRMED mapping).
//!
//! Lines follow `pid`'s arrival order, as PHP's `foreach` does (`pid[1]` sent before `pid[0]` gets
//! the lower service id); every other per-item array is read at the same key. A per-item
//! parameter sent as a scalar next to an array `pid` is not read (PHP would index into the
//! string's characters).
//!
//! The billing cycle: a one-time product gets `onetime` and a free one `free` whatever is asked;
//! a recurring product gets the requested cycle (any case) when it has a price for it, else the
//! first priced cycle from monthly to triennially, silently, as WHMCS 8's cart does. With
//! [`CyclePolicy::Refuse`] the fake answers the fake's own error instead (the reference calls the
//! behaviour UNCONFIRMED).

use std::net::IpAddr;

use rust_decimal::Decimal;
use serde_json::{Value, json};

use super::http::{Reply, container};
use super::model::{BillingCycle, ClientStatus, OrderStatus, Pricing, Product};
use super::params::{Param, Params, php_int};
use super::php::{PhpArray, PhpKey, decode_field};
use super::state::{LineDraft, OrderDraft, Store};
use super::{CyclePolicy, NoInvoiceId, WhmcsSettings};

/// The fake's own message for an unpriced cycle under [`CyclePolicy::Refuse`].
pub const INVALID_CYCLE_MESSAGE: &str = "Invalid Billing Cycle Requested";

/// Domain parameters that must be arrays when `domaintype` is.
const DOMAIN_ARRAYS: [&str; 10] = [
    "domainfields",
    "domain",
    "regperiod",
    "idnlanguage",
    "dnsmanagement",
    "emailforwarding",
    "idprotection",
    "eppcode",
    "domainpriceoverride",
    "domainrenewoverride",
];

/// One cart item as requested: where its per-item values are (`Some(key)` in the arrays, `None`
/// for scalars) and its pid.
struct Requested<'a> {
    key: Option<&'a PhpKey>,
    pid: &'a Param,
}

impl Requested<'_> {
    /// `$name[$key]` (or the scalar `$name`) when it is a string.
    fn field<'p>(&self, params: &'p Params, name: &str) -> Option<&'p str> {
        match self.key {
            Some(key) => params
                .get(name)
                .and_then(|p| p.at(key))
                .and_then(Param::as_scalar),
            None => params.scalar(name),
        }
    }
}

fn requested_items(params: &Params) -> Vec<Requested<'_>> {
    match params.get("pid") {
        Some(Param::Array(entries)) => entries
            .iter()
            .filter(|(_, pid)| pid.truthy())
            .map(|(key, pid)| Requested {
                key: Some(key),
                pid,
            })
            .collect(),
        Some(pid @ Param::Scalar(_)) if pid.truthy() => vec![Requested { key: None, pid }],
        _ => Vec::new(),
    }
}

/// A `configoptions[i]` / `customfields[i]` value: decoded, or empty with the reason it was
/// refused. Absent and falsy values are empty without a reason.
fn serialized(value: Option<&str>) -> (PhpArray, Option<String>) {
    match value.filter(|v| super::params::php_truthy(v)) {
        None => (PhpArray::new(), None),
        Some(text) => match decode_field(text) {
            Ok(array) => (array, None),
            Err(e) => (PhpArray::new(), Some(e.to_string())),
        },
    }
}

/// The cycle `product` is billed on when `requested` is asked for, or `Err` when the product
/// offers nothing or (refusing) not that.
fn settle_cycle(
    product: &Product,
    requested: Option<&str>,
    policy: CyclePolicy,
) -> Result<Option<BillingCycle>, ()> {
    let asked = requested.and_then(BillingCycle::from_param);
    let offered = product.pricing.cycles();
    if policy == CyclePolicy::Refuse {
        return match asked {
            Some(cycle) if offered.contains(&cycle) => Ok(Some(cycle)),
            _ => Err(()),
        };
    }
    Ok(match &product.pricing {
        Pricing::Free => Some(BillingCycle::Free),
        Pricing::OneTime(_) => Some(BillingCycle::OneTime),
        Pricing::Recurring(_) => asked
            .filter(|c| offered.contains(c))
            .or_else(|| offered.first().copied()),
    })
}

pub(super) fn add_order(settings: &WhmcsSettings, store: &mut Store, params: &Params) -> Reply {
    let client = params
        .scalar("clientid")
        .and_then(|id| id.trim().parse::<u64>().ok())
        .and_then(|id| store.clients.get(&id));
    let Some(client) = client else {
        return Reply::error("Client ID Not Found");
    };
    if client.status == ClientStatus::Closed {
        return Reply::error("Unable to add order when client status is Closed");
    }
    let client_id = client.id;
    let payment_method = params.scalar("paymentmethod").unwrap_or_default();
    if !store
        .payment_methods
        .iter()
        .any(|m| m.module == payment_method)
    {
        let modules: Vec<&str> = store
            .payment_methods
            .iter()
            .map(|m| m.module.as_str())
            .collect();
        return Reply::error(format!(
            "Invalid Payment Method. Valid options include {}",
            modules.join(",")
        ));
    }
    let client_ip = params.scalar("clientip").unwrap_or_default();
    if super::params::php_truthy(client_ip) && client_ip.parse::<IpAddr>().is_err() {
        return Reply::error("Invalid IP address provided for 'clientip'");
    }
    if matches!(params.get("domaintype"), Some(Param::Array(_))) {
        for name in DOMAIN_ARRAYS {
            if matches!(params.get(name), Some(Param::Scalar(_))) {
                return Reply::error(format!("Expecting parameter '{name}' to be an array"));
            }
        }
    }
    if params.truthy("addonid") || params.truthy("addonids") {
        return Reply::error("Addon ID invalid");
    }
    if params.truthy("domainrenewals") {
        return Reply::error("Domain not owned by Client ID provided");
    }

    let mut lines = Vec::new();
    let mut refused_cycle = false;
    for item in requested_items(params) {
        let product = item
            .pid
            .as_scalar()
            .and_then(|pid| pid.trim().parse::<u64>().ok())
            .and_then(|pid| store.products.get(&pid))
            .filter(|p| !p.retired);
        let Some(product) = product else {
            continue;
        };
        let requested_billing_cycle = item.field(params, "billingcycle").map(str::to_string);
        let cycle = match settle_cycle(
            product,
            requested_billing_cycle.as_deref(),
            settings.billing_cycles,
        ) {
            Ok(Some(cycle)) => cycle,
            Ok(None) => continue,
            Err(()) => {
                refused_cycle = true;
                continue;
            }
        };
        let Some(unit_price) = product.pricing.price(cycle) else {
            continue;
        };
        let requested_qty = item.field(params, "qty").map(str::to_string);
        let qty = match &requested_qty {
            Some(q) if product.allow_quantity => u32::try_from(php_int(q)).unwrap_or(0).max(1),
            _ => 1,
        };
        // PHP casts a non-numeric override to 0.
        let price_override = item
            .field(params, "priceoverride")
            .filter(|o| !o.is_empty())
            .map(|o| o.trim().parse::<Decimal>().unwrap_or(Decimal::ZERO));
        let (config_options, config_options_error) =
            serialized(item.field(params, "configoptions"));
        let (custom_fields, custom_fields_error) = serialized(item.field(params, "customfields"));
        lines.push(LineDraft {
            pid: product.id,
            billing_cycle: cycle,
            requested_billing_cycle,
            qty,
            requested_qty,
            domain: item.field(params, "domain").unwrap_or_default().to_string(),
            unit_price,
            price_override,
            config_options,
            config_options_error,
            custom_fields,
            custom_fields_error,
        });
    }
    if refused_cycle {
        return Reply::error(INVALID_CYCLE_MESSAGE);
    }
    if lines.is_empty() {
        return Reply::error("No items added to cart so order cannot proceed");
    }

    let placed = store.place_order(OrderDraft {
        client_id,
        payment_method: payment_method.to_string(),
        client_ip: client_ip.to_string(),
        promo_code: params.scalar("promocode").unwrap_or_default().to_string(),
        no_email: params.truthy("noemail"),
        invoice: !params.truthy("noinvoice"),
        lines,
    });
    let service_ids = placed
        .service_ids
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let mut reply = Reply::success(json!({
        "orderid": placed.order_id.to_string(),
        "productids": service_ids,
        "serviceids": service_ids,
        "addonids": "",
        "domainids": "",
    }));
    let invoice_id = match (placed.invoice_id, settings.invoice_id_without_invoice) {
        (Some(id), _) => Some(json!(id.to_string())),
        (None, NoInvoiceId::Omitted) => None,
        (None, NoInvoiceId::Zero) => Some(json!(0)),
        (None, NoInvoiceId::Empty) => Some(json!("")),
    };
    if let Some(invoice_id) = invoice_id {
        reply.body.insert("invoiceid".into(), invoice_id);
    }
    reply
}

const NOT_PENDING: &str = "Order ID not found or Status not Pending";

/// AcceptOrder: `orderid` of a Pending order. `autosetup`, `sendemail` and the server and
/// registrar parameters change nothing here (no provisioning modules, no mail).
pub(super) fn accept_order(store: &mut Store, params: &Params) -> Reply {
    let id = u64::try_from(params.int("orderid")).unwrap_or(0);
    if store.accept_order(id) {
        Reply::success(json!({}))
    } else {
        Reply::error(NOT_PENDING)
    }
}

/// CancelOrder: `orderid` of a Pending order; the order, its services and its unpaid invoice
/// become Cancelled.
pub(super) fn cancel_order(store: &mut Store, params: &Params) -> Reply {
    let id = u64::try_from(params.int("orderid")).unwrap_or(0);
    if store.cancel_order(id) {
        Reply::success(json!({}))
    } else {
        Reply::error(NOT_PENDING)
    }
}

fn money(amount: Decimal) -> String {
    format!("{:.2}", amount.round_dp(2))
}

/// `limitstart` / `limitnum` as WHMCS reads them: falsy → 0 / 25. The start is echoed as sent
/// (a string) or as the integer 0.
pub(super) fn window(params: &Params) -> (usize, usize, Value) {
    let (start, start_echo) = match params.scalar("limitstart") {
        Some(text) if super::params::php_truthy(text) => {
            (usize::try_from(php_int(text)).unwrap_or(0), json!(text))
        }
        _ => (0, json!(0)),
    };
    let limit = match params.scalar("limitnum") {
        Some(text) if super::params::php_truthy(text) => {
            usize::try_from(php_int(text)).unwrap_or(0)
        }
        _ => 25,
    };
    (start, limit, start_echo)
}

/// GetOrders: filters `id`, `userid` (integers; 0 or not a number means no filter) and `status`
/// (exact, any case, as MySQL compares), newest first, `limitstart` / `limitnum` (default 25).
///
/// Shapes follow WHMCS 8's `getorders.php`: record values are strings (database rows),
/// `totalresults` is a string, `numreturned` an integer, `startnumber` as [`window`] echoes it;
/// `lineitems` is `{"lineitem": [...]}`, or `[]` for an order without lines; an empty result
/// has no `orders` key unless [`WhmcsSettings::empty_lists`] says otherwise. Amounts are shown in
/// the client's currency (`currencyprefix`, `currencysuffix`, the line items' `amount`).
pub(super) fn get_orders(settings: &WhmcsSettings, store: &Store, params: &Params) -> Reply {
    let id = params.int("id");
    let user_id = params.int("userid");
    let status = params
        .scalar("status")
        .filter(|s| super::params::php_truthy(s));
    let matching: Vec<_> = store
        .orders
        .values()
        .rev()
        .filter(|o| id == 0 || i64::try_from(o.id).is_ok_and(|i| i == id))
        .filter(|o| user_id == 0 || i64::try_from(o.client_id).is_ok_and(|i| i == user_id))
        .filter(|o| status.is_none_or(|s| o.status.as_str().eq_ignore_ascii_case(s.trim())))
        .collect();
    let (start, limit, start_echo) = window(params);
    let page: Vec<Value> = matching
        .iter()
        .skip(start)
        .take(limit)
        .map(|order| {
            let client = store.clients.get(&order.client_id);
            let currency = client.map_or(&settings.currency, |c| settings.currency_of(c));
            let invoice = order.invoice_id.and_then(|i| store.invoices.get(&i));
            let gateway = store
                .payment_methods
                .iter()
                .find(|m| m.module == order.payment_method);
            let lines: Vec<Value> = order
                .lines
                .iter()
                .map(|line| {
                    let product = store.products.get(&line.pid);
                    let amount = store
                        .services
                        .get(&line.service_id)
                        .map_or(Decimal::ZERO, |s| s.first_payment_amount);
                    json!({
                        "type": "product",
                        "relid": line.service_id.to_string(),
                        "producttype": "Other Product/Service",
                        "product": product.map_or_else(String::new, |p| {
                            format!("{} - {}", p.group_name, p.name)
                        }),
                        "domain": line.domain,
                        "billingcycle": line.billing_cycle.label(),
                        "amount": format!(
                            "{}{}{}",
                            currency.prefix,
                            money(amount),
                            currency.suffix
                        ),
                        "status": line.service_status.as_str(),
                    })
                })
                .collect();
            let lineitems = if lines.is_empty() {
                json!([])
            } else {
                json!({ "lineitem": lines })
            };
            json!({
                "id": order.id.to_string(),
                "ordernum": order.order_number,
                "userid": order.client_id.to_string(),
                "contactid": "0",
                "requestor_id": "0",
                "admin_requestor_id": "0",
                "date": order.date,
                "nameservers": "",
                "transfersecret": "",
                "renewals": "",
                "renewalsByType": {"domains": "", "services": "", "addons": ""},
                "promocode": order.promo_code,
                "promotype": "",
                "promovalue": "",
                "orderdata": "[]",
                "amount": money(order.amount),
                "paymentmethod": order.payment_method,
                "invoiceid": order.invoice_id.unwrap_or(0).to_string(),
                "status": order.status.as_str(),
                "ipaddress": order.client_ip,
                "fraudmodule": "",
                "fraudoutput": "",
                "notes": "",
                "paymentmethodname": gateway.map(|g| g.display_name.clone()),
                "paymentstatus": invoice.map(|i| i.status.as_str()),
                "name": client.map_or_else(String::new, |c| {
                    format!("{} {}", c.first_name, c.last_name)
                }),
                "currencyprefix": currency.prefix,
                "currencysuffix": currency.suffix,
                "frauddata": "",
                "validationdata": "",
                "lineitems": lineitems,
            })
        })
        .collect();
    let mut reply = Reply::success(json!({
        "totalresults": matching.len().to_string(),
        "startnumber": start_echo,
        "numreturned": page.len(),
    }));
    if let Some(orders) = container(settings.empty_lists, "order", page) {
        reply.body.insert("orders".into(), orders);
    }
    reply
}

/// GetOrderStatuses: each of the four statuses with its count.
pub(super) fn get_order_statuses(store: &Store) -> Reply {
    let statuses: Vec<Value> = OrderStatus::ALL
        .into_iter()
        .map(|status| {
            let count = store.orders.values().filter(|o| o.status == status).count();
            json!({"title": status.as_str(), "count": count})
        })
        .collect();
    Reply::success(json!({
        "totalresults": statuses.len(),
        "statuses": {"status": statuses},
    }))
}
