//! WHMCS requests and answers as dealbridge sends and reads them: `AddOrder` (one line per cart
//! item, index-aligned arrays), `AcceptOrder`, `GetOrders`, `GetClientsDetails`,
//! `GetPaymentMethods`, `GetCurrencies`. Answers are read leniently: ids come as strings or numbers, id lists as
//! comma-separated strings or arrays, and empty lists in any of WHMCS's shapes.

use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::de;
use super::error::WhmcsError;
use super::form::{Form, php_bool};
use super::php;

/// A WHMCS API call: its `action` and its parameters (credentials and `responsetype` are the
/// client's business).
pub trait WhmcsRequest {
    const ACTION: &'static str;

    fn params(&self) -> Form;

    /// `action=<ACTION>` followed by the parameters.
    fn form(&self) -> Form {
        let mut f = Form::new();
        f.push("action", Self::ACTION);
        f.extend(self.params());
        f
    }
}

/// The `billingcycle` values AddOrder takes.
pub const BILLING_CYCLES: [&str; 8] = [
    "free",
    "onetime",
    "monthly",
    "quarterly",
    "semiannually",
    "annually",
    "biennially",
    "triennially",
];

/// The AddOrder `billingcycle` for a label as Salesforce or WHMCS's own output writes it
/// (`Monthly`, `One-time`, `One Time`, `Semi-Annually`, `Free Account`, ...).
pub fn billing_cycle_from_label(label: &str) -> Option<&'static str> {
    let squashed: String = label
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect::<String>()
        .to_ascii_lowercase();
    let cycle = match squashed.as_str() {
        "freeaccount" => "free",
        "annual" | "yearly" => "annually",
        "semiannual" => "semiannually",
        "biennial" => "biennially",
        "triennial" => "triennially",
        other => BILLING_CYCLES.iter().find(|c| **c == other)?,
    };
    Some(cycle)
}

/// Reads a JSON object of option ids to values (e.g. `Portal_ConfigOptions_JSON__c`:
/// `{"12": "45"}`); blank text or `null` is no options.
pub fn parse_option_map(text: Option<&str>) -> Result<Option<Map<String, Value>>, WhmcsError> {
    let Some(text) = text.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => Ok(Some(map)),
        Ok(Value::Null) => Ok(None),
        Ok(_) => Err(WhmcsError::InvalidRequest(
            "option map must be a JSON object of option id to value".into(),
        )),
        Err(e) => Err(WhmcsError::InvalidRequest(format!(
            "option map is not valid JSON (line {}, column {})",
            e.line(),
            e.column()
        ))),
    }
}

/// One cart item of an AddOrder.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct OrderLine {
    /// WHMCS product id (`pid[i]`).
    pub pid: String,
    /// One of [`BILLING_CYCLES`] (`billingcycle[i]`).
    pub billing_cycle: String,
    /// `qty[i]` (WHMCS 8.12+; older versions ignore it).
    pub qty: u32,
    /// Configurable-option id → option-value id or quantity (`configoptions[i]`, base64 of PHP
    /// serialize).
    pub config_options: Option<Map<String, Value>>,
    /// Custom-field id → value (`customfields[i]`).
    pub custom_fields: Option<Map<String, Value>>,
    /// `priceoverride[i]`: the first-payment and recurring price instead of the product's.
    pub price_override: Option<Decimal>,
    /// `domain[i]`.
    pub domain: Option<String>,
}

impl OrderLine {
    /// A line of quantity 1 with no options.
    pub fn new(pid: impl Into<String>, billing_cycle: impl Into<String>) -> Self {
        OrderLine {
            pid: pid.into(),
            billing_cycle: billing_cycle.into(),
            qty: 1,
            ..OrderLine::default()
        }
    }
}

/// `AddOrder`: creates a Pending order (AcceptOrder activates it).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AddOrder {
    pub client_id: String,
    /// A gateway module name from GetPaymentMethods (`mailin`, `paypal`, ...).
    pub payment_method: String,
    pub lines: Vec<OrderLine>,
    /// Sent when set, even empty.
    pub promo_code: Option<String>,
    pub no_invoice: bool,
    pub no_invoice_email: bool,
    /// No order confirmation email.
    pub no_email: bool,
    pub client_ip: Option<String>,
}

fn is_id(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

impl AddOrder {
    /// Refuses an order WHMCS would reject or half-accept: no lines, non-numeric ids, an unknown
    /// billing cycle, a zero quantity, a negative price.
    pub fn validate(&self) -> Result<(), WhmcsError> {
        let invalid = |m: String| Err(WhmcsError::InvalidRequest(m));
        if !is_id(&self.client_id) {
            return invalid(format!("client id {:?} is not a WHMCS id", self.client_id));
        }
        if self.payment_method.trim().is_empty() {
            return invalid("no payment method".into());
        }
        if self.lines.is_empty() {
            return invalid("an order needs at least one product".into());
        }
        for (i, line) in self.lines.iter().enumerate() {
            if !is_id(&line.pid) {
                return invalid(format!(
                    "line {i}: product id {:?} is not a WHMCS id",
                    line.pid
                ));
            }
            if !BILLING_CYCLES.contains(&line.billing_cycle.as_str()) {
                return invalid(format!(
                    "line {i}: billing cycle {:?} is not one of {}",
                    line.billing_cycle,
                    BILLING_CYCLES.join(", ")
                ));
            }
            if line.qty == 0 {
                return invalid(format!("line {i}: quantity 0"));
            }
            if line.price_override.is_some_and(|p| p.is_sign_negative()) {
                return invalid(format!("line {i}: negative price override"));
            }
        }
        Ok(())
    }
}

fn option_field(map: &Option<Map<String, Value>>) -> String {
    match map {
        Some(m) if !m.is_empty() => php::encode_map(m),
        _ => String::new(),
    }
}

impl WhmcsRequest for AddOrder {
    const ACTION: &'static str = "AddOrder";

    /// The per-item arrays are index-aligned; `configoptions[i]`/`customfields[i]` are sent for
    /// every item (empty when it has none), `priceoverride[i]`/`domain[i]` only for items that have
    /// one.
    fn params(&self) -> Form {
        let mut f = Form::new();
        f.push("clientid", self.client_id.as_str())
            .push("paymentmethod", self.payment_method.as_str())
            .push_array("pid", self.lines.iter().map(|l| l.pid.as_str()))
            .push_array(
                "billingcycle",
                self.lines.iter().map(|l| l.billing_cycle.as_str()),
            )
            .push_array("qty", self.lines.iter().map(|l| l.qty.to_string()));
        for (i, line) in self.lines.iter().enumerate() {
            if let Some(domain) = &line.domain {
                f.push_indexed("domain", i, domain.as_str());
            }
        }
        for (i, line) in self.lines.iter().enumerate() {
            if let Some(price) = line.price_override {
                f.push_indexed("priceoverride", i, price.to_string());
            }
        }
        f.push_flag("noinvoice", self.no_invoice)
            .push_flag("noinvoiceemail", self.no_invoice_email)
            .push_flag("noemail", self.no_email)
            .push_opt("promocode", self.promo_code.as_deref())
            .push_opt("clientip", self.client_ip.as_deref())
            .push_array(
                "configoptions",
                self.lines.iter().map(|l| option_field(&l.config_options)),
            )
            .push_array(
                "customfields",
                self.lines.iter().map(|l| option_field(&l.custom_fields)),
            );
        f
    }
}

/// `AcceptOrder`: activates a Pending order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AcceptOrder {
    pub order_id: String,
    /// Run the provisioning module's Create (overrides the product setting when given).
    pub autosetup: Option<bool>,
    /// Send the welcome emails.
    pub send_email: Option<bool>,
}

impl WhmcsRequest for AcceptOrder {
    const ACTION: &'static str = "AcceptOrder";

    fn params(&self) -> Form {
        let mut f = Form::new();
        f.push("orderid", self.order_id.as_str())
            .push_opt("autosetup", self.autosetup.map(php_bool))
            .push_opt("sendemail", self.send_email.map(php_bool));
        f
    }
}

/// `GetOrders` filters and paging.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GetOrdersQuery {
    pub id: Option<String>,
    pub userid: Option<String>,
    /// Pending, Active, Fraud, Cancelled, ...
    pub status: Option<String>,
    pub limitstart: Option<u64>,
    pub limitnum: Option<u64>,
}

impl WhmcsRequest for GetOrdersQuery {
    const ACTION: &'static str = "GetOrders";

    fn params(&self) -> Form {
        let mut f = Form::new();
        f.push_opt("id", self.id.as_deref())
            .push_opt("userid", self.userid.as_deref())
            .push_opt("status", self.status.as_deref())
            .push_opt("limitstart", self.limitstart.map(|n| n.to_string()))
            .push_opt("limitnum", self.limitnum.map(|n| n.to_string()));
        f
    }
}

/// `GetClientsDetails` by client id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetClientsDetails {
    pub client_id: String,
}

impl WhmcsRequest for GetClientsDetails {
    const ACTION: &'static str = "GetClientsDetails";

    fn params(&self) -> Form {
        let mut f = Form::new();
        f.push("clientid", self.client_id.as_str());
        f
    }
}

/// `GetPaymentMethods`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GetPaymentMethods;

/// `GetCurrencies`: the currencies set up in WHMCS (no parameters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GetCurrencies;

impl WhmcsRequest for GetCurrencies {
    const ACTION: &'static str = "GetCurrencies";

    fn params(&self) -> Form {
        Form::new()
    }
}

impl WhmcsRequest for GetPaymentMethods {
    const ACTION: &'static str = "GetPaymentMethods";

    fn params(&self) -> Form {
        Form::new()
    }
}

/// What AddOrder answered.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "Map<String, Value>")]
pub struct AddOrderResult {
    pub order_id: String,
    /// One service per product line, in WHMCS's order (normally the lines' order).
    pub service_ids: Vec<String>,
    pub addon_ids: Vec<String>,
    pub domain_ids: Vec<String>,
    /// `None` when no invoice was made (`noinvoice`: WHMCS answers `0` or nothing).
    pub invoice_id: Option<String>,
}

impl TryFrom<Map<String, Value>> for AddOrderResult {
    type Error = String;

    fn try_from(m: Map<String, Value>) -> Result<Self, String> {
        let list = |key: &str| m.get(key).map(de::id_list).unwrap_or_default();
        let order_id = m
            .get("orderid")
            .and_then(de::nonzero_id)
            .ok_or("the answer has no orderid")?;
        // Before WHMCS 7.8 the services were `productids`.
        let mut service_ids = list("serviceids");
        if service_ids.is_empty() {
            service_ids = list("productids");
        }
        Ok(AddOrderResult {
            order_id,
            service_ids,
            addon_ids: list("addonids"),
            domain_ids: list("domainids"),
            invoice_id: m.get("invoiceid").and_then(de::nonzero_id),
        })
    }
}

/// One line of an order in GetOrders.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(default)]
pub struct OrderLineItem {
    /// `product`, `addon`, `domain`, ...
    #[serde(rename = "type", deserialize_with = "de::de_text")]
    pub item_type: String,
    /// The service (or addon/domain) id.
    #[serde(deserialize_with = "de::de_id")]
    pub relid: String,
    #[serde(deserialize_with = "de::de_opt_text")]
    pub producttype: Option<String>,
    #[serde(deserialize_with = "de::de_opt_text")]
    pub product: Option<String>,
    #[serde(deserialize_with = "de::de_opt_text")]
    pub domain: Option<String>,
    /// A display label (`Monthly`, `One-Time`).
    #[serde(deserialize_with = "de::de_opt_text")]
    pub billingcycle: Option<String>,
    #[serde(deserialize_with = "de::de_decimal")]
    pub amount: Option<Decimal>,
    #[serde(deserialize_with = "de::de_opt_text")]
    pub status: Option<String>,
}

/// An order as GetOrders lists it (the fields dealbridge uses; the rest is ignored).
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(default)]
pub struct Order {
    #[serde(deserialize_with = "de::de_id")]
    pub id: String,
    #[serde(deserialize_with = "de::de_opt_text")]
    pub ordernum: Option<String>,
    /// The client id.
    #[serde(deserialize_with = "de::de_id")]
    pub userid: String,
    /// Pending, Active, Fraud, Cancelled, ...
    #[serde(deserialize_with = "de::de_text")]
    pub status: String,
    #[serde(deserialize_with = "de::de_text")]
    pub paymentmethod: String,
    #[serde(deserialize_with = "de::de_nonzero_id")]
    pub invoiceid: Option<String>,
    #[serde(deserialize_with = "de::de_decimal")]
    pub amount: Option<Decimal>,
    #[serde(deserialize_with = "de::de_opt_text")]
    pub date: Option<String>,
    #[serde(deserialize_with = "de::de_opt_text")]
    pub promocode: Option<String>,
    #[serde(deserialize_with = "de::de_opt_text")]
    pub notes: Option<String>,
    #[serde(deserialize_with = "de::de_lineitems")]
    pub lineitems: Vec<OrderLineItem>,
}

impl Order {
    pub fn is_pending(&self) -> bool {
        self.status.eq_ignore_ascii_case("pending")
    }

    /// The service ids of its product lines.
    pub fn service_ids(&self) -> Vec<String> {
        self.lineitems
            .iter()
            .filter(|l| l.item_type.eq_ignore_ascii_case("product") && !l.relid.is_empty())
            .map(|l| l.relid.clone())
            .collect()
    }
}

/// One page of GetOrders.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(try_from = "Map<String, Value>")]
pub struct OrdersPage {
    pub total_results: u64,
    pub start_number: u64,
    pub num_returned: u64,
    pub orders: Vec<Order>,
}

impl TryFrom<Map<String, Value>> for OrdersPage {
    type Error = String;

    fn try_from(m: Map<String, Value>) -> Result<Self, String> {
        let orders: Vec<Order> =
            de::nested_list(m.get("orders"), "order").map_err(|e| format!("orders: {e}"))?;
        Ok(OrdersPage {
            total_results: de::count(m.get("totalresults")),
            start_number: de::count(m.get("startnumber")),
            num_returned: m
                .get("numreturned")
                .map(|v| de::count(Some(v)))
                .unwrap_or(orders.len() as u64),
            orders,
        })
    }
}

/// A client as GetClientsDetails describes it (the fields dealbridge uses).
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(try_from = "Map<String, Value>")]
pub struct ClientDetails {
    pub id: String,
    pub uuid: Option<String>,
    pub firstname: Option<String>,
    pub lastname: Option<String>,
    pub companyname: Option<String>,
    pub email: Option<String>,
    /// Active, Inactive, Closed.
    pub status: String,
    /// The id of the client's currency (`currency`; fixed when the client is created).
    pub currency_id: Option<String>,
    /// The ISO code of the client's currency (`currency_code`), when WHMCS gives it.
    pub currency_code: Option<String>,
    /// The client's default gateway module, if set.
    pub default_gateway: Option<String>,
}

impl ClientDetails {
    pub fn is_closed(&self) -> bool {
        self.status.eq_ignore_ascii_case("closed")
    }
}

impl TryFrom<Map<String, Value>> for ClientDetails {
    type Error = String;

    /// Reads the `client` object, or the deprecated copy of its fields at the top level.
    fn try_from(m: Map<String, Value>) -> Result<Self, String> {
        let c = match m.get("client") {
            Some(Value::Object(c)) => c,
            _ => &m,
        };
        let text = |key: &str| c.get(key).and_then(de::text);
        let id = ["id", "client_id", "userid"]
            .iter()
            .find_map(|k| c.get(*k).and_then(de::nonzero_id))
            .ok_or("the answer has no client id")?;
        Ok(ClientDetails {
            id,
            uuid: text("uuid"),
            firstname: text("firstname"),
            lastname: text("lastname"),
            companyname: text("companyname"),
            email: text("email"),
            status: text("status").unwrap_or_default(),
            currency_id: c.get("currency").and_then(de::nonzero_id),
            currency_code: text("currency_code").map(|code| code.trim().to_string()),
            default_gateway: text("defaultgateway"),
        })
    }
}

/// A payment gateway from GetPaymentMethods.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(default)]
pub struct PaymentMethod {
    /// What AddOrder's `paymentmethod` takes.
    #[serde(deserialize_with = "de::de_text")]
    pub module: String,
    #[serde(rename = "displayname", deserialize_with = "de::de_text")]
    pub display_name: String,
}

/// A currency from GetCurrencies.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(default)]
pub struct Currency {
    #[serde(deserialize_with = "de::de_id")]
    pub id: String,
    /// The ISO code (`JPY`, `USD`).
    #[serde(deserialize_with = "de::de_text")]
    pub code: String,
    #[serde(deserialize_with = "de::de_opt_text")]
    pub prefix: Option<String>,
    #[serde(deserialize_with = "de::de_opt_text")]
    pub suffix: Option<String>,
    /// The exchange rate to the default currency.
    #[serde(deserialize_with = "de::de_decimal")]
    pub rate: Option<Decimal>,
}

/// The currencies in a GetCurrencies answer: `currencies: {"currency": [...]}` as the other lists
/// nest, or a bare list (the documentation shows the nesting only flattened, so it is not
/// confirmed).
pub fn currencies_from(m: &Map<String, Value>) -> Result<Vec<Currency>, String> {
    de::nested_list(m.get("currencies"), "currency").map_err(|e| format!("currencies: {e}"))
}

/// The gateways in a GetPaymentMethods answer.
pub fn payment_methods_from(m: &Map<String, Value>) -> Result<Vec<PaymentMethod>, String> {
    de::nested_list(m.get("paymentmethods"), "paymentmethod")
        .map_err(|e| format!("paymentmethods: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::str::FromStr;

    /// The "Transformed WHMCS AddOrder Request" of the Salesforce ↔ WHMCS mapping reference.
    fn seed_003_order() -> AddOrder {
        AddOrder {
            client_id: "1".into(),
            payment_method: "mailin".into(),
            lines: vec![
                OrderLine::new("185", "monthly"),
                OrderLine::new("242", "onetime"),
                OrderLine::new("246", "monthly"),
            ],
            promo_code: Some(String::new()),
            no_invoice: true,
            no_email: true,
            ..AddOrder::default()
        }
    }

    fn pairs(f: &Form) -> Vec<(&str, &str)> {
        f.pairs()
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }

    #[test]
    fn the_seed_003_add_order_becomes_exactly_the_documented_form() {
        let order = seed_003_order();
        order.validate().unwrap();
        let form = order.form();
        assert_eq!(
            pairs(&form),
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
        assert_eq!(
            form.encode(),
            concat!(
                "action=AddOrder&clientid=1&paymentmethod=mailin",
                "&pid%5B0%5D=185&pid%5B1%5D=242&pid%5B2%5D=246",
                "&billingcycle%5B0%5D=monthly&billingcycle%5B1%5D=onetime&billingcycle%5B2%5D=monthly",
                "&qty%5B0%5D=1&qty%5B1%5D=1&qty%5B2%5D=1",
                "&noinvoice=1&noemail=1&promocode=",
                "&configoptions%5B0%5D=&configoptions%5B1%5D=&configoptions%5B2%5D=",
                "&customfields%5B0%5D=&customfields%5B1%5D=&customfields%5B2%5D="
            )
        );
    }

    #[test]
    fn config_options_from_salesforce_json_are_base64_php_arrays_at_their_line_index() {
        let mut order = seed_003_order();
        order.promo_code = None;
        order.lines[1].config_options = parse_option_map(Some(r#"{"1": 999}"#)).unwrap();
        order.lines[2].custom_fields = parse_option_map(Some(r#"{"1": "Google"}"#)).unwrap();
        order.lines[2].price_override = Some(Decimal::from_str("49.50").unwrap());
        let form = order.form();
        assert_eq!(form.get("configoptions[0]"), Some(""));
        assert_eq!(
            form.get("configoptions[1]"),
            Some("YToxOntpOjE7aTo5OTk7fQ==")
        );
        assert_eq!(
            form.get("customfields[2]"),
            Some("YToxOntpOjE7czo2OiJHb29nbGUiO30=")
        );
        assert_eq!(form.get("priceoverride[2]"), Some("49.50"));
        assert_eq!(form.get("priceoverride[0]"), None);
        assert_eq!(form.get("promocode"), None);
    }

    #[test]
    fn option_maps_must_be_json_objects() {
        assert_eq!(parse_option_map(None).unwrap(), None);
        assert_eq!(parse_option_map(Some("  ")).unwrap(), None);
        assert_eq!(parse_option_map(Some("null")).unwrap(), None);
        assert!(parse_option_map(Some("[1]")).is_err());
        let e = parse_option_map(Some("{oops")).unwrap_err();
        assert_eq!(e.code(), "WHMCS_INVALID_REQUEST");
    }

    #[test]
    fn orders_that_whmcs_would_reject_are_refused_before_sending() {
        let bad = |f: fn(&mut AddOrder)| {
            let mut o = seed_003_order();
            f(&mut o);
            o.validate().unwrap_err().code()
        };
        assert_eq!(bad(|o| o.lines.clear()), "WHMCS_INVALID_REQUEST");
        assert_eq!(
            bad(|o| o.lines[0].billing_cycle = "Monthly".into()),
            "WHMCS_INVALID_REQUEST"
        );
        assert_eq!(bad(|o| o.lines[1].qty = 0), "WHMCS_INVALID_REQUEST");
        assert_eq!(
            bad(|o| o.lines[1].pid = "185.0".into()),
            "WHMCS_INVALID_REQUEST"
        );
        assert_eq!(
            bad(|o| o.client_id = String::new()),
            "WHMCS_INVALID_REQUEST"
        );
        assert_eq!(
            bad(|o| o.payment_method = " ".into()),
            "WHMCS_INVALID_REQUEST"
        );
    }

    #[test]
    fn billing_cycle_labels_map_to_addorder_values() {
        assert_eq!(billing_cycle_from_label("Monthly"), Some("monthly"));
        assert_eq!(billing_cycle_from_label("One-time"), Some("onetime"));
        assert_eq!(billing_cycle_from_label("One Time"), Some("onetime"));
        assert_eq!(
            billing_cycle_from_label("Semi-Annually"),
            Some("semiannually")
        );
        assert_eq!(billing_cycle_from_label("Free Account"), Some("free"));
        assert_eq!(billing_cycle_from_label("Annual"), Some("annually"));
        assert_eq!(billing_cycle_from_label("Invoice Plan"), None);
    }

    #[test]
    fn accept_order_and_get_orders_send_only_what_is_set() {
        let accept = AcceptOrder {
            order_id: "12".into(),
            autosetup: Some(true),
            send_email: Some(false),
        };
        assert_eq!(
            accept.form().encode(),
            "action=AcceptOrder&orderid=12&autosetup=1&sendemail=0"
        );
        let bare = AcceptOrder {
            order_id: "12".into(),
            ..AcceptOrder::default()
        };
        assert_eq!(bare.form().encode(), "action=AcceptOrder&orderid=12");
        let q = GetOrdersQuery {
            userid: Some("1".into()),
            limitstart: Some(0),
            limitnum: Some(100),
            ..GetOrdersQuery::default()
        };
        assert_eq!(
            q.form().encode(),
            "action=GetOrders&userid=1&limitstart=0&limitnum=100"
        );
    }

    #[test]
    fn add_order_answers_are_read_with_ids_as_strings_or_numbers() {
        let documented: AddOrderResult = serde_json::from_value(json!({
            "result": "success", "orderid": "12", "serviceids": "34,35",
            "addonids": "", "domainids": "", "invoiceid": "56"
        }))
        .unwrap();
        assert_eq!(
            documented,
            AddOrderResult {
                order_id: "12".into(),
                service_ids: vec!["34".into(), "35".into()],
                addon_ids: vec![],
                domain_ids: vec![],
                invoice_id: Some("56".into()),
            }
        );
        let seed: AddOrderResult = serde_json::from_value(json!({
            "result": "success", "orderid": 12345, "serviceids": "67890,67891,67892",
            "addonids": "", "domainids": "", "invoiceid": 0
        }))
        .unwrap();
        assert_eq!(seed.order_id, "12345");
        assert_eq!(seed.service_ids, ["67890", "67891", "67892"]);
        assert_eq!(seed.invoice_id, None);
        let arrays: AddOrderResult = serde_json::from_value(json!({
            "orderid": 7, "serviceids": [8, "9"], "addonids": [1]
        }))
        .unwrap();
        assert_eq!(arrays.service_ids, ["8", "9"]);
        assert_eq!(arrays.addon_ids, ["1"]);
        assert!(arrays.domain_ids.is_empty());
        let old: AddOrderResult =
            serde_json::from_value(json!({"orderid": "3", "productids": "4"})).unwrap();
        assert_eq!(old.service_ids, ["4"]);
        let none: AddOrderResult =
            serde_json::from_value(json!({"orderid": "3", "serviceids": ""})).unwrap();
        assert!(none.service_ids.is_empty());
        assert!(serde_json::from_value::<AddOrderResult>(json!({"serviceids": "1"})).is_err());
    }

    #[test]
    fn get_orders_answers_are_read_with_their_line_items() {
        let page: OrdersPage = serde_json::from_value(json!({
            "result": "success", "totalresults": "2", "startnumber": 0, "numreturned": 2,
            "orders": {"order": [
                {"id": "12", "ordernum": 4817, "userid": "1", "status": "Pending",
                 "paymentmethod": "mailin", "invoiceid": "0", "amount": "10.00", "notes": null,
                 "lineitems": {"lineitem": [
                    {"type": "product", "relid": 34, "producttype": "Other",
                     "product": "Internet Gold", "domain": "", "billingcycle": "Monthly",
                     "amount": "10.00", "status": "Pending"},
                    {"type": "product", "relid": "35", "billingcycle": "One-Time"}
                 ]}},
                {"id": 13, "userid": 1, "status": "Active", "lineitems": ""}
            ]}
        }))
        .unwrap();
        assert_eq!(page.total_results, 2);
        assert_eq!(page.orders.len(), 2);
        let first = &page.orders[0];
        assert_eq!(first.id, "12");
        assert_eq!(first.ordernum.as_deref(), Some("4817"));
        assert!(first.is_pending());
        assert_eq!(first.invoiceid, None);
        assert_eq!(first.amount, Decimal::from_str("10.00").ok());
        assert_eq!(first.notes, None);
        assert_eq!(first.service_ids(), ["34", "35"]);
        assert_eq!(first.lineitems[0].domain, None);
        assert_eq!(first.lineitems[1].status, None);
        let second = &page.orders[1];
        assert_eq!((second.id.as_str(), second.userid.as_str()), ("13", "1"));
        assert!(second.lineitems.is_empty());
    }

    #[test]
    fn an_empty_get_orders_answer_has_no_orders_in_any_shape() {
        for orders in [json!(""), json!(null), json!([]), json!({"order": []})] {
            let page: OrdersPage = serde_json::from_value(json!({
                "result": "success", "totalresults": 0, "orders": orders
            }))
            .unwrap();
            assert!(page.orders.is_empty());
        }
        let page: OrdersPage =
            serde_json::from_value(json!({"result": "success", "totalresults": "0"})).unwrap();
        assert!(page.orders.is_empty());
    }

    #[test]
    fn client_details_are_read_from_the_client_object_or_the_top_level() {
        let nested: ClientDetails = serde_json::from_value(json!({
            "result": "success",
            "client": {"client_id": 1, "id": 1, "userid": 1, "uuid": "u-1",
                       "firstname": "Ada", "email": "ada@example.com", "status": "Active",
                       "currency_code": "JPY", "defaultgateway": ""},
            "stats": {}
        }))
        .unwrap();
        assert_eq!(nested.id, "1");
        assert_eq!(nested.email.as_deref(), Some("ada@example.com"));
        assert_eq!(nested.default_gateway, None);
        assert_eq!(nested.currency_code.as_deref(), Some("JPY"));
        assert_eq!(nested.currency_id, None);
        assert!(!nested.is_closed());
        let flat: ClientDetails =
            serde_json::from_value(json!({"userid": "7", "status": "Closed"})).unwrap();
        assert_eq!(flat.id, "7");
        assert!(flat.is_closed());
        assert_eq!((flat.currency_id, flat.currency_code), (None, None));
        assert!(serde_json::from_value::<ClientDetails>(json!({"client": {}})).is_err());
    }

    #[test]
    fn the_client_currency_is_read_as_an_id_and_a_code() {
        let details = |client: Value| -> ClientDetails {
            serde_json::from_value(json!({"result": "success", "client": client})).unwrap()
        };
        let both = details(json!({"id": 4, "currency": 2, "currency_code": " USD "}));
        assert_eq!(both.currency_id.as_deref(), Some("2"));
        assert_eq!(both.currency_code.as_deref(), Some("USD"));
        let id_only = details(json!({"id": 4, "currency": "3", "currency_code": ""}));
        assert_eq!(id_only.currency_id.as_deref(), Some("3"));
        assert_eq!(id_only.currency_code, None);
        let none = details(json!({"id": 4, "currency": 0, "currency_code": null}));
        assert_eq!((none.currency_id, none.currency_code), (None, None));
    }

    #[test]
    fn currencies_are_read_nested_or_as_a_bare_list() {
        let read = |m: Value| {
            let Value::Object(m) = m else { unreachable!() };
            currencies_from(&m).unwrap()
        };
        let nested = read(
            json!({"result": "success", "totalresults": "2", "currencies": {"currency": [
                {"id": "1", "code": "JPY", "prefix": "¥", "suffix": " JPY", "format": "1", "rate": "1.00000"},
                {"id": 2, "code": "USD", "prefix": "$", "suffix": " USD", "format": 2, "rate": 0.0067}
            ]}}),
        );
        assert_eq!(nested.len(), 2);
        assert_eq!(
            (nested[0].id.as_str(), nested[0].code.as_str()),
            ("1", "JPY")
        );
        assert_eq!(nested[0].rate, Some(Decimal::ONE));
        assert_eq!(nested[1].id, "2");
        assert_eq!(nested[1].prefix.as_deref(), Some("$"));
        let one = read(json!({"currencies": {"currency": {"id": "1", "code": "JPY"}}}));
        assert_eq!(one[0].code, "JPY");
        let bare = read(json!({"currencies": [{"id": "1", "code": "EUR"}]}));
        assert_eq!(bare[0].code, "EUR");
        assert!(read(json!({"totalresults": 0, "currencies": ""})).is_empty());
    }

    #[test]
    fn payment_methods_are_read() {
        let m = json!({"result": "success", "totalresults": 2, "paymentmethods": {"paymentmethod": [
            {"module": "mailin", "displayname": "Mail In Payment"},
            {"module": "paypal", "displayname": "PayPal"}
        ]}});
        let Value::Object(m) = m else { unreachable!() };
        let methods = payment_methods_from(&m).unwrap();
        assert_eq!(methods[0].module, "mailin");
        assert_eq!(methods[1].display_name, "PayPal");
    }
}
