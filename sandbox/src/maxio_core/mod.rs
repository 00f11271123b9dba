//! A fake Maxio Core (ex-SaaSOptics) tenant on localhost: customers and contracts under
//! `/{account}/api/v1.0/`, with Django REST Framework's token auth and 401 bodies, page envelope
//! (`count`, `next`, `previous`, `results`; at most 100 records a page), django-filter exact
//! filters that silently ignore unknown parameters, and `PATCH /contracts/{id}/`.
//!
//! Paths end in a trailing slash. Throttling (429 with `Retry-After`) is not simulated on its
//! own: inject it through the observer, e.g. with [`throttled`].
//!
//! Records can be made to appear only after a number of list requests, standing in for the delay
//! before Core syncs what Advanced Billing created.

mod http;
pub mod routes;
mod seed;
mod state;

pub use seed::{SEED_FILE, SeedError, unresolved};

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::routing::get;
use serde_json::{Value, json};

use crate::observe::{Fault, Observer, observe};

use state::{Kind, Store};

/// Who may call the tenant, and its path segment.
#[derive(Debug, Clone)]
pub struct CoreSettings {
    /// The key of `Authorization: Token <key>`.
    pub api_token: String,
    /// The tenant's path segment: `/{account}/api/v1.0/`.
    pub account: String,
    /// Filters this tenant does not offer (whether `number` is one is unconfirmed): they are
    /// silently ignored, so the list answers every record.
    pub unsupported_filters: Vec<String>,
}

impl Default for CoreSettings {
    fn default() -> Self {
        CoreSettings {
            api_token: "sandbox-maxio-core-token".into(),
            account: "dealbridge-sandbox".into(),
            unsupported_filters: Vec::new(),
        }
    }
}

pub(crate) struct App {
    settings: CoreSettings,
    store: Mutex<Store>,
    /// `host:port` of the listener, for page links when a request has no `Host` header.
    authority: String,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// DRF's throttled answer: 429, `Retry-After: <seconds>` and its `detail` sentence, for
/// [`Observer::inject`].
pub fn throttled(seconds: u64) -> Fault {
    let unit = if seconds == 1 { "second" } else { "seconds" };
    Fault::json(
        429,
        json!({ "detail": format!("Request was throttled. Expected available in {seconds} {unit}.") }),
    )
    .header("Retry-After", &seconds.to_string())
}

/// A running fake tenant. Dropping it stops the server.
pub struct MaxioCoreSandbox {
    app: Arc<App>,
    observer: Observer,
    base_url: String,
    _server: crate::serve::Served,
}

impl MaxioCoreSandbox {
    /// Serves a fresh, empty tenant on a free loopback port.
    pub async fn start(settings: CoreSettings) -> std::io::Result<MaxioCoreSandbox> {
        Self::start_on(settings, SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    /// Serves a fresh, empty tenant on `addr`.
    pub async fn start_on(
        settings: CoreSettings,
        addr: SocketAddr,
    ) -> std::io::Result<MaxioCoreSandbox> {
        let (listener, authority) = crate::serve::listen(addr).await?;
        let base_url = format!("http://{authority}/{}/api/v1.0/", settings.account);
        let app = Arc::new(App {
            settings,
            store: Mutex::new(Store::new()),
            authority,
        });
        let observer = Observer::new("maxio-core");
        let router = router(app.clone(), observer.clone());
        let _server = crate::serve::serve(listener, router);
        Ok(MaxioCoreSandbox {
            app,
            observer,
            base_url,
            _server,
        })
    }

    /// `http://127.0.0.1:PORT/{account}/api/v1.0/`, standing in for
    /// `https://{server}.saasoptics.com/{account}/api/v1.0/`.
    pub fn base_url(&self) -> String {
        self.base_url.clone()
    }

    pub fn observer(&self) -> &Observer {
        &self.observer
    }

    pub fn settings(&self) -> CoreSettings {
        self.app.settings.clone()
    }

    fn store(&self) -> MutexGuard<'_, Store> {
        lock(&self.app.store)
    }

    /// Adds a customer: `fields` (e.g. `name`, `number`, `sf_id`, `is_active`, `text_field1`,
    /// a partial `billing_profile`) over the defaults. The id is the tenant's (an `id` in
    /// `fields` is ignored); `modified` is now unless given.
    pub fn add_customer(&self, fields: Value) -> i64 {
        self.store().add_customer(fields, 0)
    }

    /// Adds a contract: `fields` (e.g. `customer`, `number`, `sf_id`, `is_active`, `text_field2`)
    /// over the defaults. `created` and `modified` are now unless given.
    pub fn add_contract(&self, fields: Value) -> i64 {
        self.store().add_contract(fields, 0)
    }

    /// Adds a customer that shows only from the `nth_request`-th request (1-based) to the
    /// customer list endpoint on, counting the requests the endpoint answers (not those refused
    /// with 401 or answered by an injected fault). Until then it is not found by id either.
    pub fn add_customer_visible_after(&self, fields: Value, nth_request: usize) -> i64 {
        self.store().add_customer(fields, nth_request)
    }

    /// As [`Self::add_customer_visible_after`], for a contract and the contract list endpoint
    /// (a PATCH finds it only once it is visible).
    pub fn add_contract_visible_after(&self, fields: Value, nth_request: usize) -> i64 {
        self.store().add_contract(fields, nth_request)
    }

    /// Every customer as the API renders it, visible yet or not, by id.
    pub fn customers(&self) -> Vec<Value> {
        self.all(Kind::Customers)
    }

    /// Every contract as the API renders it, visible yet or not, by id.
    pub fn contracts(&self) -> Vec<Value> {
        self.all(Kind::Contracts)
    }

    fn all(&self, kind: Kind) -> Vec<Value> {
        let store = self.store();
        let records = match kind {
            Kind::Customers => &store.customers,
            Kind::Contracts => &store.contracts,
        };
        let mut records: Vec<_> = records.iter().collect();
        records.sort_by_key(|r| r.id());
        records
            .into_iter()
            .map(|r| Value::Object(r.fields.clone()))
            .collect()
    }
}

async fn fallback() -> axum::response::Response {
    http::no_such_page()
}

fn router(app: Arc<App>, observer: Observer) -> Router {
    Router::new()
        .route(
            routes::path(routes::CUSTOMERS),
            get(http::list_customers).fallback(http::method_not_allowed),
        )
        .route(
            routes::path(routes::CUSTOMER),
            get(http::read_customer).fallback(http::method_not_allowed),
        )
        .route(
            routes::path(routes::CONTRACTS),
            get(http::list_contracts).fallback(http::method_not_allowed),
        )
        .route(
            routes::path(routes::CONTRACT),
            get(http::read_contract)
                .patch(http::patch_contract)
                .fallback(http::method_not_allowed),
        )
        .fallback(fallback)
        .with_state(app.clone())
        .route_layer(axum::middleware::from_fn_with_state(app, http::gate))
        .route_layer(axum::middleware::from_fn_with_state(observer, observe))
}
