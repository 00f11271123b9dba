//! The installation's records and the changes the API makes to them: placing an order (order,
//! services, invoice), accepting it, cancelling it.

use std::collections::BTreeMap;

use chrono::Utc;
use rust_decimal::Decimal;

use super::WhmcsSettings;
use super::model::{
    BillingCycle, Client, Invoice, InvoiceStatus, Order, OrderLine, OrderStatus, PaymentMethod,
    Product, Service, ServiceStatus,
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
    next_order_id: u64,
    next_service_id: u64,
    next_invoice_id: u64,
    /// What a client created with currency 0 gets.
    default_currency: u64,
}

fn today() -> String {
    Utc::now().format("%Y-%m-%d").to_string()
}

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
            next_order_id: settings.first_order_id.max(1),
            next_service_id: settings.first_service_id.max(1),
            next_invoice_id: settings.first_invoice_id.max(1),
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

    /// Adds (or replaces, same id) a client; id 0 takes the next free id.
    pub fn add_client(&mut self, mut client: Client) -> u64 {
        if client.id == 0 {
            client.id = self.clients.keys().next_back().map_or(1, |id| id + 1);
        }
        if client.created.is_empty() {
            client.created = today();
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
        let now = Utc::now();
        let date = now.format("%Y-%m-%d").to_string();
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
                    next_due: date.clone(),
                    config_options: line.config_options.clone(),
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
                date: now.format("%Y-%m-%d %H:%M:%S").to_string(),
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
