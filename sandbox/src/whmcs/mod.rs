//! A fake WHMCS installation on localhost: the External API at `/includes/api.php`, following
//! PART B of `shared/reference/salesforce-whmcs.md`.
//!
//! - Requests are `POST` (or `GET`) with `application/x-www-form-urlencoded` variables, PHP
//!   bracket arrays included (`pid[0]=185`, `pid[]=185`). `action` selects the command, in any
//!   case.
//! - Credentials: `identifier` + `secret` (or the same pair as `username` + `password`). Missing
//!   or wrong: HTTP 403 `{"result":"error","message":"Authentication Failed"}`. With
//!   [`WhmcsSettings::access_key`] set, the caller stands outside the IP allow-list and must send
//!   `accesskey`, else HTTP 400 `Invalid IP <ip>`. The legacy admin login (`password` = md5 of an
//!   admin password) and API roles are not modelled.
//! - `responsetype=json` answers JSON; anything else (or nothing) answers WHMCS's XML, as the
//!   reference says to always send `responsetype` and WHMCS defaults to XML.
//! - Business and validation errors are HTTP 200 with `result: error`; an empty `action` is HTTP
//!   400 `Empty action request` (after authentication); an unknown one HTTP 200 `Command Not
//!   Found` (UNCONFIRMED text).
//! - Commands: AddOrder, AcceptOrder, CancelOrder, GetOrders, GetOrderStatuses, AddClient,
//!   GetClientsDetails, GetClients, GetClientsProducts, GetPaymentMethods, GetCurrencies,
//!   AddCancelRequest, GetCancelledPackages, UpdateClientProduct. Their rules are in
//!   `orders.rs`, `accounts.rs` and `services.rs`.
//! - Time: the installation has a virtual clock ([`WhmcsSandbox::set_clock`],
//!   [`WhmcsSandbox::advance_clock`]; real time until set) for its dates, and a daily cron that
//!   carries out due cancellation requests when "Cancellation Requests" automation is on
//!   ([`WhmcsSettings::cancellation_automation`]). The cron runs at 00:00 (UTC) of the virtual
//!   clock: whenever the clock has crossed midnight since the last run, it runs once before the
//!   next API request is answered and right after a clock change; [`WhmcsSandbox::run_cron`]
//!   runs it on demand. Nothing ticks by itself, so tests need no sleeps.
//! - Currencies: the installation has a default currency ([`WhmcsSettings::currency`]) and others
//!   ([`WhmcsSettings::other_currencies`]); each client has one, fixed when it is created
//!   (AddClient's `currency` id, else the default), which GetClientsDetails reports as `currency`
//!   (the id) and `currency_code` and GetOrders formats its amounts in. ASSUMED: products cost the
//!   same numbers in every currency (WHMCS keeps a price per currency; the fake does not).
//!
//! Every request goes through the [`Observer`] (one route per HTTP method, since every command
//! shares the path); [`WhmcsSandbox::fail_next`] injects a fault for one command.

mod accounts;
pub mod catalog;
mod http;
pub mod model;
mod orders;
mod params;
pub mod php;
mod services;
mod state;

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::routing::post;

use crate::observe::{Fault, Observer, observe};

pub use model::{
    BillingCycle, CancelRequest, CancelType, Client, ClientStatus, Currency, Invoice,
    InvoiceStatus, Order, OrderLine, OrderStatus, PaymentMethod, Pricing, Product, Service,
    ServiceStatus,
};
pub use orders::INVALID_CYCLE_MESSAGE;
pub use php::{PhpArray, PhpError, PhpKey, PhpValue};

use state::Store;

/// Route names for fault injection and request counting on the [`Observer`].
pub mod routes {
    /// The API path, relative to [`super::WhmcsSandbox::base_url`].
    pub const PATH: &str = "/includes/api.php";
    pub const API: &str = "POST /includes/api.php";
    pub const API_GET: &str = "GET /includes/api.php";
}

/// What AddOrder does with a billing cycle the product has no price for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CyclePolicy {
    /// As WHMCS 8's cart: silently bill the first priced cycle (monthly, quarterly, ...); one-time
    /// and free products get `onetime` / `free` whatever is asked.
    #[default]
    FallBack,
    /// Refuse the order with [`INVALID_CYCLE_MESSAGE`] (the fake's own text) unless every line
    /// asks for a cycle its product offers.
    Refuse,
}

/// What AddOrder's success answer holds as `invoiceid` when `noinvoice` was set (reference B2:
/// "presumably 0/empty (UNCONFIRMED)").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NoInvoiceId {
    /// No `invoiceid` key, as WHMCS 8's `addorder.php` (which sets it only without `noinvoice`).
    #[default]
    Omitted,
    /// `"invoiceid": 0`.
    Zero,
    /// `"invoiceid": ""`.
    Empty,
}

/// How a list call (GetOrders, GetClients, GetClientsProducts) shows an empty result (reference
/// B4.5: UNCONFIRMED).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EmptyLists {
    /// No container key at all, as WHMCS 8's `getorders.php` (which appends records to it).
    #[default]
    Omitted,
    /// `"orders": ""`.
    EmptyString,
    /// `"orders": []`.
    EmptyArray,
    /// `"orders": {"order": []}`.
    EmptyContainer,
}

/// Who may call the installation, what it holds at start, and the choices the reference leaves
/// open.
#[derive(Debug, Clone)]
pub struct WhmcsSettings {
    /// The API credential's identifier.
    pub identifier: String,
    /// The API credential's secret.
    pub secret: String,
    /// `Some(key)`: the caller is outside the API IP allow-list and must send `accesskey=key`.
    pub access_key: Option<String>,
    /// The default currency: clients created without one get it.
    pub currency: Currency,
    /// The other currencies set up, listed by GetCurrencies after the default (by id).
    pub other_currencies: Vec<Currency>,
    /// The clients at start; one in another currency is a [`Client`] with that `currency` id.
    pub clients: Vec<Client>,
    pub products: Vec<Product>,
    /// The active gateways, in display order.
    pub payment_methods: Vec<PaymentMethod>,
    pub billing_cycles: CyclePolicy,
    pub invoice_id_without_invoice: NoInvoiceId,
    pub empty_lists: EmptyLists,
    /// The first id handed out to each kind of record. They start apart so that a client that
    /// mixes an order id with a service or invoice id finds nothing.
    pub first_order_id: u64,
    pub first_service_id: u64,
    pub first_invoice_id: u64,
    /// Automation Settings → Cancellation Requests: whether the daily cron carries out due
    /// cancellation requests (on by default). Off, requests wait (for a manual Terminate, which
    /// the fake does not offer: [`WhmcsSandbox::set_service_status`] stands in for it).
    pub cancellation_automation: bool,
}

impl Default for WhmcsSettings {
    fn default() -> Self {
        WhmcsSettings {
            identifier: "sandbox-whmcs-identifier".into(),
            secret: "sandbox-whmcs-secret".into(),
            access_key: None,
            currency: catalog::default_currency(),
            other_currencies: catalog::other_currencies(),
            clients: catalog::default_clients(),
            products: catalog::default_products(),
            payment_methods: catalog::default_payment_methods(),
            billing_cycles: CyclePolicy::default(),
            invoice_id_without_invoice: NoInvoiceId::default(),
            empty_lists: EmptyLists::default(),
            first_order_id: 1,
            first_service_id: 101,
            first_invoice_id: 5001,
            cancellation_automation: true,
        }
    }
}

impl WhmcsSettings {
    /// Every currency, by id (the default's first when ids tie).
    pub fn currencies(&self) -> Vec<&Currency> {
        let mut all: Vec<&Currency> = std::iter::once(&self.currency)
            .chain(self.other_currencies.iter())
            .collect();
        all.sort_by_key(|c| c.id);
        all.dedup_by_key(|c| c.id);
        all
    }

    /// The currency with this id, if it is set up.
    pub fn currency_by_id(&self, id: u64) -> Option<&Currency> {
        self.currencies().into_iter().find(|c| c.id == id)
    }

    /// The currency a client's amounts are shown in: its own, or the default when its id names
    /// none (a client a test created so).
    pub fn currency_of(&self, client: &Client) -> &Currency {
        self.currency_by_id(client.currency)
            .unwrap_or(&self.currency)
    }
}

pub(crate) struct App {
    settings: WhmcsSettings,
    store: Mutex<Store>,
    /// Faults for the next requests of a command, by lower-cased action.
    faults: Mutex<HashMap<String, VecDeque<Fault>>>,
    /// The address `Invalid IP` names.
    client_ip: String,
}

impl App {
    fn take_fault(&self, action: &str) -> Option<Fault> {
        let mut faults = lock(&self.faults);
        let queue = faults.get_mut(&action.to_ascii_lowercase())?;
        let first = queue.front_mut()?;
        let fault = first.clone();
        first.times = first.times.saturating_sub(1);
        if first.times == 0 {
            queue.pop_front();
        }
        Some(fault)
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A running fake installation. Dropping it stops the server.
pub struct WhmcsSandbox {
    app: Arc<App>,
    observer: Observer,
    base_url: String,
    _server: crate::serve::Served,
}

impl WhmcsSandbox {
    /// Serves a fresh installation on a free loopback port.
    pub async fn start(settings: WhmcsSettings) -> std::io::Result<WhmcsSandbox> {
        Self::start_on(settings, SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    /// Serves a fresh installation on `addr`.
    pub async fn start_on(
        settings: WhmcsSettings,
        addr: SocketAddr,
    ) -> std::io::Result<WhmcsSandbox> {
        let (listener, authority) = crate::serve::listen(addr).await?;
        let ip = listener.local_addr()?.ip();
        let client_ip = if ip.is_unspecified() {
            "127.0.0.1".to_string()
        } else {
            ip.to_string()
        };
        let app = Arc::new(App {
            store: Mutex::new(Store::new(&settings)),
            settings,
            faults: Mutex::new(HashMap::new()),
            client_ip,
        });
        let observer = Observer::new("whmcs");
        let router = router(app.clone(), observer.clone());
        let _server = crate::serve::serve(listener, router);
        Ok(WhmcsSandbox {
            app,
            observer,
            base_url: format!("http://{authority}"),
            _server,
        })
    }

    /// `http://127.0.0.1:PORT`, standing in for `https://<whmcs>`; the API is at
    /// `{base_url}/includes/api.php`.
    pub fn base_url(&self) -> String {
        self.base_url.clone()
    }

    /// `{base_url}/includes/api.php`.
    pub fn api_url(&self) -> String {
        format!("{}{}", self.base_url, routes::PATH)
    }

    pub fn observer(&self) -> &Observer {
        &self.observer
    }

    pub fn settings(&self) -> WhmcsSettings {
        self.app.settings.clone()
    }

    fn store(&self) -> MutexGuard<'_, Store> {
        lock(&self.app.store)
    }

    /// The next `fault.times` requests whose `action` is `action` (any case) get `fault` instead
    /// of an answer, whatever their credentials. The observer logs them with the fault's status
    /// (not flagged `injected`).
    pub fn fail_next(&self, action: &str, fault: Fault) {
        lock(&self.app.faults)
            .entry(action.to_ascii_lowercase())
            .or_default()
            .push_back(fault);
    }

    /// How many requests so far named `action` (any case), answered or not.
    pub fn action_count(&self, action: &str) -> usize {
        self.observer
            .requests()
            .iter()
            .filter(|r| {
                let query = r.uri.split_once('?').map_or("", |(_, q)| q);
                let get = params::Params::parse(
                    url::form_urlencoded::parse(query.as_bytes()).into_owned(),
                );
                let post = params::Params::parse(
                    url::form_urlencoded::parse(r.body.as_bytes()).into_owned(),
                );
                get.overlaid_with(post)
                    .scalar("action")
                    .is_some_and(|a| a.trim().eq_ignore_ascii_case(action))
            })
            .count()
    }

    /// Every order, by id, with its lines and their services' current status.
    pub fn orders(&self) -> Vec<Order> {
        self.store().orders.values().cloned().collect()
    }

    pub fn order(&self, id: u64) -> Option<Order> {
        self.store().orders.get(&id).cloned()
    }

    pub fn order_count(&self) -> usize {
        self.store().orders.len()
    }

    /// Every service, by id.
    pub fn services(&self) -> Vec<Service> {
        self.store().services.values().cloned().collect()
    }

    /// Every invoice, by id.
    pub fn invoices(&self) -> Vec<Invoice> {
        self.store().invoices.values().cloned().collect()
    }

    /// Every client, by id.
    pub fn clients(&self) -> Vec<Client> {
        self.store().clients.values().cloned().collect()
    }

    /// Every product, by id.
    pub fn products(&self) -> Vec<Product> {
        self.store().products.values().cloned().collect()
    }

    /// Adds (or replaces, same id) a client and returns its id; an id of 0 takes the next free
    /// one. An empty `created` is today; a `currency` of 0 is the default currency. A currency id
    /// that is not set up is kept as given (AddClient refuses it), for testing what a client
    /// does with a currency GetCurrencies does not list.
    pub fn add_client(&self, client: Client) -> u64 {
        self.store().add_client(client)
    }

    /// The currencies set up, by id.
    pub fn currencies(&self) -> Vec<Currency> {
        self.app
            .settings
            .currencies()
            .into_iter()
            .cloned()
            .collect()
    }

    /// Sets a client's status (e.g. Closed). False when there is no such client.
    pub fn set_client_status(&self, id: u64, status: ClientStatus) -> bool {
        match self.store().clients.get_mut(&id) {
            Some(client) => {
                client.status = status;
                true
            }
            None => false,
        }
    }

    /// Adds (or replaces, same id) a product.
    pub fn add_product(&self, product: Product) {
        self.store().products.insert(product.id, product);
    }

    /// Activates a gateway (or renames an active one).
    pub fn add_payment_method(&self, method: PaymentMethod) {
        let mut store = self.store();
        match store
            .payment_methods
            .iter_mut()
            .find(|m| m.module == method.module)
        {
            Some(existing) => *existing = method,
            None => store.payment_methods.push(method),
        }
    }

    /// The service with this id.
    pub fn service(&self, id: u64) -> Option<Service> {
        self.store().services.get(&id).cloned()
    }

    /// Every cancellation request, by id.
    pub fn cancel_requests(&self) -> Vec<CancelRequest> {
        self.store().cancel_requests.values().cloned().collect()
    }

    /// Sets a service's status as an admin would (no module command), e.g. Suspended or
    /// Terminated; its order line shows it too. False when there is no such service.
    pub fn set_service_status(&self, id: u64, status: ServiceStatus) -> bool {
        self.store().set_status_of_service(id, status)
    }

    /// Sets a service's next due date (`YYYY-MM-DD`) as an admin would, or as a paid invoice
    /// moves it on. False when there is no such service.
    pub fn set_next_due(&self, id: u64, date: &str) -> bool {
        match self.store().services.get_mut(&id) {
            Some(service) => {
                service.next_due = date.to_string();
                true
            }
            None => false,
        }
    }

    /// The installation's virtual clock.
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.store().now()
    }

    /// Sets the installation's clock to `at`, from which it runs on. Dates it writes (orders,
    /// services, clients, cancellation requests) follow it; crossing midnight runs the cron.
    pub fn set_clock(&self, at: chrono::DateTime<chrono::Utc>) {
        let mut store = self.store();
        store.clock_offset = at - chrono::Utc::now();
        store.tick();
    }

    /// Moves the installation's clock forward; crossing midnight runs the cron (once).
    pub fn advance_clock(&self, by: std::time::Duration) {
        let by = chrono::Duration::from_std(by).unwrap_or(chrono::Duration::MAX);
        let mut store = self.store();
        store.clock_offset = store
            .clock_offset
            .checked_add(&by)
            .unwrap_or(chrono::Duration::MAX);
        store.tick();
    }

    /// Runs the daily cron's cancellation step now, whatever the time (see the module
    /// documentation); returns the services it cancelled. With the automation off it does
    /// nothing.
    pub fn run_cron(&self) -> Vec<u64> {
        self.store().run_cron()
    }

    /// Turns Automation Settings → Cancellation Requests on or off.
    pub fn set_cancellation_automation(&self, on: bool) {
        self.store().cancellation_automation = on;
    }

    /// Sets an order's status as an admin would in WHMCS (services follow; the invoice is
    /// cancelled with the order). False when there is no such order.
    pub fn set_order_status(&self, id: u64, status: OrderStatus) -> bool {
        self.store().change_order_status(id, status)
    }
}

fn router(app: Arc<App>, observer: Observer) -> Router {
    Router::new()
        .route(routes::PATH, post(http::api).get(http::api))
        .fallback(http::no_such_page)
        .with_state(app)
        .route_layer(axum::middleware::from_fn_with_state(observer, observe))
}
