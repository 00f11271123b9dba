//! The installation's records and the changes the API makes to them: placing an order (order,
//! services, invoice), accepting it, cancelling it; cancellation requests and the daily cron
//! that carries them out; and the installation's virtual clock.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;

use super::WhmcsSettings;
use super::model::{
    BillingCycle, CancelRequest, CancelType, Client, Invoice, InvoiceStatus, Order, OrderLine,
    OrderStatus, PaymentMethod, Product, Service, ServiceStatus,
};
use super::php::PhpArray;

/// One order line after validation: the product exists, the cycle and quantity are settled.
#[derive(Debug, Clone)]
pub(super) struct LineDraft {
    pub pid: u64,
    pub billing_cycle: BillingCycle,
    pub requested_billing_cycle: Option<String>,
    pub qty: u32,
    pub requested_qty: Option<String>,
    pub domain: String,
    pub unit_price: Decimal,
    pub price_override: Option<Decimal>,
    pub config_options: PhpArray,
    pub config_options_error: Option<String>,
    pub custom_fields: PhpArray,
    pub custom_fields_error: Option<String>,
}

/// A validated AddOrder.
#[derive(Debug, Clone)]
pub(super) struct OrderDraft {
    pub client_id: u64,
    pub payment_method: String,
    pub client_ip: String,
    pub promo_code: String,
    pub no_email: bool,
    /// False with `noinvoice`.
    pub invoice: bool,
    pub lines: Vec<LineDraft>,
}

/// What placing an order created.
#[derive(Debug, Clone)]
pub(super) struct Placed {
    pub order_id: u64,
    pub service_ids: Vec<u64>,
    pub invoice_id: Option<u64>,
}

#[derive(Debug)]
pub(super) struct Store {
    pub clients: BTreeMap<u64, Client>,
    pub products: BTreeMap<u64, Product>,
    pub payment_methods: Vec<PaymentMethod>,
    pub orders: BTreeMap<u64, Order>,
    pub services: BTreeMap<u64, Service>,
    pub invoices: BTreeMap<u64, Invoice>,
    /// Cancellation requests, by id.
    pub cancel_requests: BTreeMap<u64, CancelRequest>,
    /// Automation Settings → Cancellation Requests ([`WhmcsSettings::cancellation_automation`]).
    pub cancellation_automation: bool,
    /// The virtual clock: real time plus this.
    pub clock_offset: chrono::Duration,
    /// The day (virtual clock) the daily cron last ran, or the installation started.
    last_cron: NaiveDate,
    next_order_id: u64,
    next_service_id: u64,
    next_invoice_id: u64,
    next_cancel_request_id: u64,
    /// What a client created with currency 0 gets.
    default_currency: u64,
}

/// A date as WHMCS stores it.
const DATE: &str = "%Y-%m-%d";
/// A date and time as WHMCS stores it.
const DATE_TIME: &str = "%Y-%m-%d %H:%M:%S";

/// A 10-digit order number that looks random but follows from the id.
fn order_number(id: u64) -> String {
    let spread = id.wrapping_mul(2_654_435_761) % 9_000_000_000;
    (1_000_000_000 + spread).to_string()
}

impl Store {
    pub fn new(settings: &WhmcsSettings) -> Store {
        let mut store = Store {
            clients: BTreeMap::new(),
            products: BTreeMap::new(),
            payment_methods: settings.payment_methods.clone(),
            orders: BTreeMap::new(),
            services: BTreeMap::new(),
            invoices: BTreeMap::new(),
            cancel_requests: BTreeMap::new(),
            cancellation_automation: settings.cancellation_automation,
            clock_offset: chrono::Duration::zero(),
            last_cron: Utc::now().date_naive(),
            next_order_id: settings.first_order_id.max(1),
            next_service_id: settings.first_service_id.max(1),
            next_invoice_id: settings.first_invoice_id.max(1),
            next_cancel_request_id: 1,
            default_currency: settings.currency.id,
        };
        for client in &settings.clients {
            store.add_client(client.clone());
        }
        for product in &settings.products {
            store.products.insert(product.id, product.clone());
        }
        store
    }

    /// The virtual clock: real time plus whatever tests set or advanced it by.
    pub fn now(&self) -> DateTime<Utc> {
        Utc::now() + self.clock_offset
    }

    /// Today on the virtual clock, `YYYY-MM-DD` (UTC).
    pub fn today(&self) -> String {
        self.now().format(DATE).to_string()
    }

    /// Now on the virtual clock, `YYYY-MM-DD HH:MM:SS` (UTC).
    pub fn timestamp(&self) -> String {
        self.now().format(DATE_TIME).to_string()
    }

    /// The daily cron, run as the clock crosses midnight: when the virtual day is later than the
    /// day of the last run, the cron runs once (for however many midnights were crossed: what
    /// the runs in between would have done, one run at the new time does). Called before every
    /// API request and after every clock change, so the fake needs no ticking. A clock set back
    /// makes the new day the last run's.
    pub fn tick(&mut self) {
        let today = self.now().date_naive();
        if today > self.last_cron {
            self.run_cron();
        } else if today < self.last_cron {
            self.last_cron = today;
        }
    }

    /// The cron's cancellation step, now (DOC: Automation Settings → Cancellation Requests): with
    /// the automation on, every waiting request that is due is carried out: `Immediate` ones at
    /// the first run after the request, `End of Billing Period` ones at the first run on or after
    /// the service's `nextduedate`. The service becomes `Cancelled` (DOC: the cron runs the
    /// module's Terminate and sets the status Cancelled; the fake's products have no module, so
    /// no service ends as `Terminated`: ASSUMED that a module's Terminate would not change
    /// that) and gets today as its termination date (ASSUMED). A service already `Cancelled` or
    /// `Terminated` is left as it is. The request is kept (GetCancelledPackages still lists it)
    /// and marked processed. With the automation off nothing happens: requests wait.
    ///
    /// ASSUMED: a `nextduedate` that is not a date (`0000-00-00`) counts as due; the unpaid
    /// invoices the request would cancel are not modelled. Returns the services cancelled.
    pub fn run_cron(&mut self) -> Vec<u64> {
        let today = self.now().date_naive();
        self.last_cron = self.last_cron.max(today);
        if !self.cancellation_automation {
            return Vec::new();
        }
        let (date, stamp) = (self.today(), self.timestamp());
        let due: Vec<(u64, u64)> = self
            .cancel_requests
            .values()
            .filter(|r| r.processed_at.is_none())
            .filter(|r| match r.kind {
                CancelType::Immediate => true,
                CancelType::EndOfBillingPeriod => {
                    self.services.get(&r.service_id).is_none_or(|s| {
                        NaiveDate::parse_from_str(&s.next_due, DATE)
                            .ok()
                            .is_none_or(|d| d <= today)
                    })
                }
            })
            .map(|r| (r.id, r.service_id))
            .collect();
        let mut cancelled = Vec::new();
        for (request_id, service_id) in due {
            let ended = self.services.get(&service_id).is_none_or(|s| {
                matches!(
                    s.status,
                    ServiceStatus::Cancelled | ServiceStatus::Terminated
                )
            });
            if !ended {
                self.set_status_of_service(service_id, ServiceStatus::Cancelled);
                if let Some(service) = self.services.get_mut(&service_id) {
                    service.termination_date = Some(date.clone());
                }
                cancelled.push(service_id);
            }
            if let Some(request) = self.cancel_requests.get_mut(&request_id) {
                request.processed_at = Some(stamp.clone());
                request.updated_at = stamp.clone();
            }
        }
        cancelled
    }

    /// AddCancelRequest's record: the next id, stamped now.
    pub fn add_cancel_request(&mut self, service_id: u64, kind: CancelType, reason: &str) -> u64 {
        let id = self.next_cancel_request_id;
        self.next_cancel_request_id += 1;
        let stamp = self.timestamp();
        self.cancel_requests.insert(
            id,
            CancelRequest {
                id,
                service_id,
                reason: reason.to_string(),
                kind,
                date: stamp.clone(),
                created_at: stamp.clone(),
                updated_at: stamp,
                processed_at: None,
            },
        );
        id
    }

    /// Sets one service's status, and the status its order line shows. False when there is no
    /// such service.
    pub fn set_status_of_service(&mut self, id: u64, status: ServiceStatus) -> bool {
        let Some(service) = self.services.get_mut(&id) else {
            return false;
        };
        service.status = status;
        let order_id = service.order_id;
        if let Some(order) = self.orders.get_mut(&order_id) {
            for line in order.lines.iter_mut().filter(|l| l.service_id == id) {
                line.service_status = status;
            }
        }
        true
    }

    /// Adds (or replaces, same id) a client; id 0 takes the next free id.
    pub fn add_client(&mut self, mut client: Client) -> u64 {
        if client.id == 0 {
            client.id = self.clients.keys().next_back().map_or(1, |id| id + 1);
        }
        if client.created.is_empty() {
            client.created = self.today();
        }
        if client.currency == 0 {
            client.currency = self.default_currency;
        }
        let id = client.id;
        self.clients.insert(id, client);
        id
    }

    pub fn place_order(&mut self, draft: OrderDraft) -> Placed {
        let order_id = self.next_order_id;
        self.next_order_id += 1;
        let now = self.now();
        let date = now.format(DATE).to_string();
        let mut lines = Vec::new();
        let mut amount = Decimal::ZERO;
        for line in draft.lines {
            let service_id = self.next_service_id;
            self.next_service_id += 1;
            let price = line.price_override.unwrap_or(line.unit_price) * Decimal::from(line.qty);
            let recurring = if BillingCycle::RECURRING.contains(&line.billing_cycle) {
                price
            } else {
                Decimal::ZERO
            };
            amount += price;
            self.services.insert(
                service_id,
                Service {
                    id: service_id,
                    client_id: draft.client_id,
                    order_id,
                    pid: line.pid,
                    billing_cycle: line.billing_cycle,
                    status: ServiceStatus::Pending,
                    qty: line.qty,
                    first_payment_amount: price,
                    recurring_amount: recurring,
                    domain: line.domain.clone(),
                    payment_method: draft.payment_method.clone(),
                    registered: date.clone(),
                    // As WHMCS: a new service is first due on the day it is ordered; the fake
                    // takes no payments, so it stays so until UpdateClientProduct moves it.
                    next_due: date.clone(),
                    termination_date: None,
                    notes: String::new(),
                    config_options: line.config_options.clone(),
                    config_options_error: None,
                    custom_fields: line.custom_fields.clone(),
                },
            );
            lines.push(OrderLine {
                pid: line.pid,
                billing_cycle: line.billing_cycle,
                requested_billing_cycle: line.requested_billing_cycle,
                qty: line.qty,
                requested_qty: line.requested_qty,
                domain: line.domain,
                price_override: line.price_override,
                config_options: line.config_options,
                config_options_error: line.config_options_error,
                custom_fields: line.custom_fields,
                custom_fields_error: line.custom_fields_error,
                service_id,
                service_status: ServiceStatus::Pending,
            });
        }
        let invoice_id = draft.invoice.then(|| {
            let id = self.next_invoice_id;
            self.next_invoice_id += 1;
            // WHMCS marks an invoice of nothing paid at once.
            let status = if amount.is_zero() {
                InvoiceStatus::Paid
            } else {
                InvoiceStatus::Unpaid
            };
            self.invoices.insert(
                id,
                Invoice {
                    id,
                    client_id: draft.client_id,
                    order_id,
                    status,
                    total: amount,
                    payment_method: draft.payment_method.clone(),
                    date: date.clone(),
                },
            );
            id
        });
        let service_ids = lines.iter().map(|l| l.service_id).collect();
        self.orders.insert(
            order_id,
            Order {
                id: order_id,
                order_number: order_number(order_id),
                client_id: draft.client_id,
                date: now.format(DATE_TIME).to_string(),
                status: OrderStatus::Pending,
                payment_method: draft.payment_method,
                invoice_id,
                amount,
                promo_code: draft.promo_code,
                client_ip: draft.client_ip,
                no_email: draft.no_email,
                lines,
            },
        );
        Placed {
            order_id,
            service_ids,
            invoice_id,
        }
    }

    fn set_service_status(
        &mut self,
        order_id: u64,
        from: Option<ServiceStatus>,
        to: ServiceStatus,
    ) {
        let Some(order) = self.orders.get_mut(&order_id) else {
            return;
        };
        for line in &mut order.lines {
            let Some(service) = self.services.get_mut(&line.service_id) else {
                continue;
            };
            if from.is_none_or(|from| service.status == from) {
                service.status = to;
            }
            line.service_status = service.status;
        }
    }

    /// AcceptOrder: a Pending order becomes Active and its Pending services Active (the fake's
    /// products have no provisioning module to fail). False when there is no Pending order `id`.
    pub fn accept_order(&mut self, id: u64) -> bool {
        match self.orders.get_mut(&id) {
            Some(order) if order.status == OrderStatus::Pending => {
                order.status = OrderStatus::Active;
            }
            _ => return false,
        }
        self.set_service_status(id, Some(ServiceStatus::Pending), ServiceStatus::Active);
        true
    }

    /// Sets an order's status as WHMCS's `changeOrderStatus` does: its services follow, and its
    /// invoice is cancelled (or, back to Pending, un-cancelled). False when there is no order `id`.
    pub fn change_order_status(&mut self, id: u64, status: OrderStatus) -> bool {
        let Some(order) = self.orders.get_mut(&id) else {
            return false;
        };
        order.status = status;
        let invoice_id = order.invoice_id;
        let service_status = match status {
            OrderStatus::Pending => ServiceStatus::Pending,
            OrderStatus::Active => ServiceStatus::Active,
            OrderStatus::Fraud => ServiceStatus::Fraud,
            OrderStatus::Cancelled => ServiceStatus::Cancelled,
        };
        self.set_service_status(id, None, service_status);
        if let Some(invoice) = invoice_id.and_then(|i| self.invoices.get_mut(&i)) {
            match (status, invoice.status) {
                (OrderStatus::Pending, InvoiceStatus::Cancelled) => {
                    invoice.status = InvoiceStatus::Unpaid;
                }
                (OrderStatus::Cancelled | OrderStatus::Fraud, InvoiceStatus::Unpaid) => {
                    invoice.status = InvoiceStatus::Cancelled;
                }
                _ => {}
            }
        }
        true
    }

    /// CancelOrder: only a Pending order. False when there is no Pending order `id`.
    pub fn cancel_order(&mut self, id: u64) -> bool {
        if self
            .orders
            .get(&id)
            .is_none_or(|o| o.status != OrderStatus::Pending)
        {
            return false;
        }
        self.change_order_status(id, OrderStatus::Cancelled)
    }
}
