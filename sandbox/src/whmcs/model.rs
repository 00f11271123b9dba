//! What the installation holds, as tests set it up and inspect it: clients, products and their
//! pricing, payment gateways, the orders, services (WHMCS's `tblhosting`) and invoices that
//! `AddOrder` creates, and the cancellation requests of services.

use std::collections::BTreeMap;
use std::fmt;

use rust_decimal::Decimal;

use super::php::PhpArray;

/// A billing cycle: the value AddOrder's `billingcycle[]` takes ([`BillingCycle::param`]) and the
/// label services and order lines show ([`BillingCycle::label`]) (reference B2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BillingCycle {
    Free,
    OneTime,
    Monthly,
    Quarterly,
    SemiAnnually,
    Annually,
    Biennially,
    Triennially,
}

impl BillingCycle {
    /// The recurring cycles, in the order WHMCS falls back through them.
    pub const RECURRING: [BillingCycle; 6] = [
        BillingCycle::Monthly,
        BillingCycle::Quarterly,
        BillingCycle::SemiAnnually,
        BillingCycle::Annually,
        BillingCycle::Biennially,
        BillingCycle::Triennially,
    ];

    /// The request value: `free`, `onetime`, `monthly`, ..., `triennially`.
    pub fn param(self) -> &'static str {
        match self {
            BillingCycle::Free => "free",
            BillingCycle::OneTime => "onetime",
            BillingCycle::Monthly => "monthly",
            BillingCycle::Quarterly => "quarterly",
            BillingCycle::SemiAnnually => "semiannually",
            BillingCycle::Annually => "annually",
            BillingCycle::Biennially => "biennially",
            BillingCycle::Triennially => "triennially",
        }
    }

    /// The stored label GetOrders and GetClientsProducts show: `Free Account`, `One Time`,
    /// `Monthly`, ..., `Semi-Annually`, ...
    pub fn label(self) -> &'static str {
        match self {
            BillingCycle::Free => "Free Account",
            BillingCycle::OneTime => "One Time",
            BillingCycle::Monthly => "Monthly",
            BillingCycle::Quarterly => "Quarterly",
            BillingCycle::SemiAnnually => "Semi-Annually",
            BillingCycle::Annually => "Annually",
            BillingCycle::Biennially => "Biennially",
            BillingCycle::Triennially => "Triennially",
        }
    }

    /// A request value, in any case (WHMCS lower-cases it), surrounding spaces ignored.
    pub fn from_param(text: &str) -> Option<BillingCycle> {
        let text = text.trim().to_ascii_lowercase();
        [
            BillingCycle::Free,
            BillingCycle::OneTime,
            BillingCycle::Monthly,
            BillingCycle::Quarterly,
            BillingCycle::SemiAnnually,
            BillingCycle::Annually,
            BillingCycle::Biennially,
            BillingCycle::Triennially,
        ]
        .into_iter()
        .find(|c| c.param() == text)
    }
}

impl fmt::Display for BillingCycle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.param())
    }
}

/// How a product is paid for (WHMCS's `paytype`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pricing {
    Free,
    /// One payment; orders get the `onetime` cycle whatever they ask for.
    OneTime(Decimal),
    /// A price for each cycle offered; a cycle not in the map is disabled.
    Recurring(BTreeMap<BillingCycle, Decimal>),
}

impl Pricing {
    /// The cycles an order can get.
    pub fn cycles(&self) -> Vec<BillingCycle> {
        match self {
            Pricing::Free => vec![BillingCycle::Free],
            Pricing::OneTime(_) => vec![BillingCycle::OneTime],
            Pricing::Recurring(prices) => BillingCycle::RECURRING
                .into_iter()
                .filter(|c| prices.contains_key(c))
                .collect(),
        }
    }

    /// The price of one unit for `cycle`, if the product offers it.
    pub fn price(&self, cycle: BillingCycle) -> Option<Decimal> {
        match (self, cycle) {
            (Pricing::Free, BillingCycle::Free) => Some(Decimal::ZERO),
            (Pricing::OneTime(price), BillingCycle::OneTime) => Some(*price),
            (Pricing::Recurring(prices), cycle) => prices.get(&cycle).copied(),
            _ => None,
        }
    }
}

/// A product (WHMCS `tblproducts`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Product {
    /// The `pid`.
    pub id: u64,
    pub name: String,
    pub group_name: String,
    pub pricing: Pricing,
    /// A retired product is dropped from an order like an unknown pid.
    pub retired: bool,
    /// Whether `qty[i]` is honoured (one service carrying the quantity); otherwise the quantity
    /// is 1, as WHMCS does for products without "allow multiple quantities".
    pub allow_quantity: bool,
}

impl Product {
    /// A product billed `monthly` at `price`.
    pub fn monthly(id: u64, name: &str, group_name: &str, price: Decimal) -> Product {
        Product {
            id,
            name: name.into(),
            group_name: group_name.into(),
            pricing: Pricing::Recurring(BTreeMap::from([(BillingCycle::Monthly, price)])),
            retired: false,
            allow_quantity: false,
        }
    }

    /// A product paid once, `price`.
    pub fn one_time(id: u64, name: &str, group_name: &str, price: Decimal) -> Product {
        Product {
            id,
            name: name.into(),
            group_name: group_name.into(),
            pricing: Pricing::OneTime(price),
            retired: false,
            allow_quantity: false,
        }
    }
}

/// A client's status; only `Closed` refuses new orders.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClientStatus {
    #[default]
    Active,
    Inactive,
    Closed,
}

impl ClientStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ClientStatus::Active => "Active",
            ClientStatus::Inactive => "Inactive",
            ClientStatus::Closed => "Closed",
        }
    }
}

/// A client (WHMCS `tblclients`). An `id` of 0 asks [`super::WhmcsSandbox::add_client`] for the
/// next free one; a `currency` of 0 gives the installation's default currency.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Client {
    pub id: u64,
    pub first_name: String,
    pub last_name: String,
    pub company_name: String,
    pub email: String,
    pub status: ClientStatus,
    pub address1: String,
    pub city: String,
    pub state: String,
    pub postcode: String,
    /// ISO 3166 alpha-2.
    pub country_code: String,
    pub phone: String,
    /// `YYYY-MM-DD`.
    pub created: String,
    /// The client's default gateway module, or empty.
    pub default_gateway: String,
    /// The id of the client's currency (a [`Currency::id`]), fixed when the client is created
    /// (AddClient's `currency`); 0 when created: the installation's default currency.
    pub currency: u64,
}

/// An active payment gateway: `module` is what AddOrder's `paymentmethod` takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentMethod {
    pub module: String,
    pub display_name: String,
}

impl PaymentMethod {
    pub fn new(module: &str, display_name: &str) -> PaymentMethod {
        PaymentMethod {
            module: module.into(),
            display_name: display_name.into(),
        }
    }
}

/// A currency set up in the installation (WHMCS `tblcurrencies`), as GetCurrencies lists it and
/// as a client's amounts are formatted (`{prefix}5300.00{suffix}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Currency {
    pub id: u64,
    /// The ISO code (`JPY`).
    pub code: String,
    pub prefix: String,
    pub suffix: String,
    /// WHMCS's format number: 1 `1234.56`, 2 `1,234.56`, 3 `1.234,56`, 4 `1,234`. Only listed:
    /// the fake formats every amount as `1234.56`.
    pub format: u8,
    /// The exchange rate to the default currency (1 for the default).
    pub rate: Decimal,
}

/// An order's status (GetOrderStatuses' four).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderStatus {
    Pending,
    Active,
    Fraud,
    Cancelled,
}

impl OrderStatus {
    pub const ALL: [OrderStatus; 4] = [
        OrderStatus::Pending,
        OrderStatus::Active,
        OrderStatus::Fraud,
        OrderStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Pending => "Pending",
            OrderStatus::Active => "Active",
            OrderStatus::Fraud => "Fraud",
            OrderStatus::Cancelled => "Cancelled",
        }
    }
}

/// A service's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceStatus {
    Pending,
    Active,
    Suspended,
    Terminated,
    Cancelled,
    Fraud,
    Completed,
}

impl ServiceStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceStatus::Pending => "Pending",
            ServiceStatus::Active => "Active",
            ServiceStatus::Suspended => "Suspended",
            ServiceStatus::Terminated => "Terminated",
            ServiceStatus::Cancelled => "Cancelled",
            ServiceStatus::Fraud => "Fraud",
            ServiceStatus::Completed => "Completed",
        }
    }
}

/// An invoice's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvoiceStatus {
    Unpaid,
    Paid,
    Cancelled,
}

impl InvoiceStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            InvoiceStatus::Unpaid => "Unpaid",
            InvoiceStatus::Paid => "Paid",
            InvoiceStatus::Cancelled => "Cancelled",
        }
    }
}

/// One product line of an order, with what the request asked for next to what WHMCS made of it.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderLine {
    pub pid: u64,
    /// The cycle the service got.
    pub billing_cycle: BillingCycle,
    /// `billingcycle[i]` as sent, if it was.
    pub requested_billing_cycle: Option<String>,
    /// The quantity the service got.
    pub qty: u32,
    /// `qty[i]` as sent, if it was.
    pub requested_qty: Option<String>,
    /// `domain[i]`, or empty.
    pub domain: String,
    /// `priceoverride[i]`, when sent and a number.
    pub price_override: Option<Decimal>,
    /// `configoptions[i]` decoded (empty when absent or refused).
    pub config_options: PhpArray,
    /// Why `configoptions[i]` was refused; WHMCS ignores such a value without an error.
    pub config_options_error: Option<String>,
    /// `customfields[i]` decoded (empty when absent or refused).
    pub custom_fields: PhpArray,
    /// Why `customfields[i]` was refused; WHMCS ignores such a value without an error.
    pub custom_fields_error: Option<String>,
    /// The service this line created.
    pub service_id: u64,
    pub service_status: ServiceStatus,
}

/// An order (WHMCS `tblorders`) and its product lines, in the order the services were created.
#[derive(Debug, Clone, PartialEq)]
pub struct Order {
    pub id: u64,
    /// The 10-digit order number WHMCS shows customers.
    pub order_number: String,
    pub client_id: u64,
    /// `YYYY-MM-DD HH:MM:SS`, UTC.
    pub date: String,
    pub status: OrderStatus,
    pub payment_method: String,
    /// `None` when ordered with `noinvoice`.
    pub invoice_id: Option<u64>,
    /// The first payment of every line.
    pub amount: Decimal,
    pub promo_code: String,
    pub client_ip: String,
    /// Ordered with `noemail` (no order confirmation).
    pub no_email: bool,
    pub lines: Vec<OrderLine>,
}

/// A service (WHMCS `tblhosting`): one per order line.
#[derive(Debug, Clone, PartialEq)]
pub struct Service {
    pub id: u64,
    pub client_id: u64,
    pub order_id: u64,
    pub pid: u64,
    pub billing_cycle: BillingCycle,
    pub status: ServiceStatus,
    pub qty: u32,
    pub first_payment_amount: Decimal,
    /// Zero for one-time and free cycles.
    pub recurring_amount: Decimal,
    pub domain: String,
    pub payment_method: String,
    /// `YYYY-MM-DD`.
    pub registered: String,
    /// `YYYY-MM-DD`.
    pub next_due: String,
    /// `YYYY-MM-DD` once set (UpdateClientProduct, or the cron cancelling the service); `None`
    /// shows as WHMCS's empty date `0000-00-00`.
    pub termination_date: Option<String>,
    /// The admin notes (UpdateClientProduct `notes`).
    pub notes: String,
    pub config_options: PhpArray,
    /// Why the last UpdateClientProduct `configoptions` was ignored (WHMCS ignores a value it
    /// cannot decode without an error, as AddOrder does).
    pub config_options_error: Option<String>,
    pub custom_fields: PhpArray,
}

/// The `type` of a cancellation request (AddCancelRequest).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelType {
    /// Cancelled by the next cron run.
    Immediate,
    /// Cancelled by the cron run on the service's next due date.
    EndOfBillingPeriod,
}

impl CancelType {
    /// The value AddCancelRequest takes and GetCancelledPackages shows.
    pub fn as_str(self) -> &'static str {
        match self {
            CancelType::Immediate => "Immediate",
            CancelType::EndOfBillingPeriod => "End of Billing Period",
        }
    }

    /// A request value. ASSUMED lenient: any case, surrounding spaces ignored.
    pub fn from_param(text: &str) -> Option<CancelType> {
        let text = text.trim();
        [CancelType::Immediate, CancelType::EndOfBillingPeriod]
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(text))
    }
}

/// A cancellation request (WHMCS `tblcancelrequests`), as AddCancelRequest made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CancelRequest {
    pub id: u64,
    /// The service (`relid`).
    pub service_id: u64,
    pub reason: String,
    pub kind: CancelType,
    /// `YYYY-MM-DD HH:MM:SS` (the fake's clock, UTC): `date`, `created_at` and `updated_at`.
    pub date: String,
    pub created_at: String,
    pub updated_at: String,
    /// When a cron run cancelled the service (or found it already ended), `YYYY-MM-DD HH:MM:SS`;
    /// `None` while the request waits.
    pub processed_at: Option<String>,
}

/// An invoice made for an order.
#[derive(Debug, Clone, PartialEq)]
pub struct Invoice {
    pub id: u64,
    pub client_id: u64,
    pub order_id: u64,
    pub status: InvoiceStatus,
    pub total: Decimal,
    pub payment_method: String,
    /// `YYYY-MM-DD`.
    pub date: String,
}
