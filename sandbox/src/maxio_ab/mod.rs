//! A fake Maxio Advanced Billing (ex-Chargify) site on localhost: the site probe (with its
//! currencies), customers, products, components and their price points (with prices in the site's
//! other currencies), subscriptions, the price points of a subscription's components, and
//! component allocations, with the API's Basic auth and plain-text
//! 401, wrapped resources, list shapes, 422 error bodies, `uniqueness_token` duplicate prevention
//! (409 within 60 minutes of virtual time) and the limit of concurrent requests per site (429).
//!
//! Paths end in `.json`. The router cannot match a parameter followed by a literal `.json` in one
//! segment, so such segments are routed as `{file}` (e.g. `/customers/{file}` for
//! `/customers/123.json`) and parsed; route names follow the registered patterns.

mod allocations;
mod cancellations;
mod catalog;
mod countries;
mod customers;
mod events;
mod http;
mod price_points;
mod products;
mod state;
mod subscriptions;
mod validate;
mod webhooks;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::extract::{Request, State as AxState};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde_json::Value;

use crate::observe::{Observer, observe};

pub use catalog::{
    ComponentSeed, DEFAULT_PRICE_POINT_NAME, ProductSeed, default_components,
    default_price_point_handle, default_products,
};

use http::{Limiter, Reply};
use state::Store;
pub use webhooks::Delivery;

/// Route names for fault injection and request counting.
pub mod routes {
    pub const SITE: &str = "GET /site.json";
    pub const EVENTS_LIST: &str = "GET /events.json";
    pub const ENDPOINTS_CREATE: &str = "POST /endpoints.json";
    pub const ENDPOINTS_LIST: &str = "GET /endpoints.json";
    /// `PUT /endpoints/{id}.json`
    pub const ENDPOINT_UPDATE: &str = "PUT /endpoints/{file}";
    pub const WEBHOOKS_LIST: &str = "GET /webhooks.json";
    pub const WEBHOOKS_REPLAY: &str = "POST /webhooks/replay.json";
    pub const CUSTOMERS_CREATE: &str = "POST /customers.json";
    pub const CUSTOMERS_LIST: &str = "GET /customers.json";
    pub const CUSTOMER_LOOKUP: &str = "GET /customers/lookup.json";
    /// `/customers/{id}.json`
    pub const CUSTOMER_READ: &str = "GET /customers/{file}";
    pub const CUSTOMER_SUBSCRIPTIONS: &str = "GET /customers/{customer_id}/subscriptions.json";
    /// `/products/{id}.json`
    pub const PRODUCT_READ: &str = "GET /products/{file}";
    /// `/products/handle/{handle}.json`
    pub const PRODUCT_BY_HANDLE: &str = "GET /products/handle/{file}";
    pub const COMPONENT_LOOKUP: &str = "GET /components/lookup.json";
    /// `/components/{id or handle:h}.json`
    pub const COMPONENT_READ: &str = "GET /components/{file}";
    pub const PRICE_POINTS_CREATE: &str = "POST /components/{component_id}/price_points.json";
    pub const PRICE_POINTS_LIST: &str = "GET /components/{component_id}/price_points.json";
    /// `/components/{component_id}/price_points/{id or handle:h}.json`
    pub const PRICE_POINT_READ: &str = "GET /components/{component_id}/price_points/{file}";
    pub const CURRENCY_PRICES_CREATE: &str =
        "POST /price_points/{price_point_id}/currency_prices.json";
    pub const CURRENCY_PRICES_UPDATE: &str =
        "PUT /price_points/{price_point_id}/currency_prices.json";
    pub const SUBSCRIPTIONS_CREATE: &str = "POST /subscriptions.json";
    pub const SUBSCRIPTIONS_LIST: &str = "GET /subscriptions.json";
    pub const SUBSCRIPTION_LOOKUP: &str = "GET /subscriptions/lookup.json";
    /// `/subscriptions/{id}.json`
    pub const SUBSCRIPTION_READ: &str = "GET /subscriptions/{file}";
    /// `DELETE /subscriptions/{id}.json`: cancel (now, or at a scheduled time).
    pub const SUBSCRIPTION_CANCEL: &str = "DELETE /subscriptions/{file}";
    pub const DELAYED_CANCEL: &str = "POST /subscriptions/{subscription_id}/delayed_cancel.json";
    pub const DELAYED_CANCEL_REMOVE: &str =
        "DELETE /subscriptions/{subscription_id}/delayed_cancel.json";
    pub const REACTIVATE: &str = "PUT /subscriptions/{subscription_id}/reactivate.json";
    pub const SUBSCRIPTION_COMPONENTS: &str =
        "GET /subscriptions/{subscription_id}/components.json";
    pub const SUBSCRIPTION_PRICE_POINTS: &str =
        "POST /subscriptions/{subscription_id}/price_points.json";
    pub const ALLOCATION_CREATE: &str =
        "POST /subscriptions/{subscription_id}/components/{component_id}/allocations.json";
    pub const ALLOCATIONS_LIST: &str =
        "GET /subscriptions/{subscription_id}/components/{component_id}/allocations.json";
}

/// The shared key the default site signs its webhooks with.
pub const SANDBOX_WEBHOOK_KEY: &str = "sandbox-maxio-webhook-key";

/// Who may call the site, and what it sells.
#[derive(Debug, Clone)]
pub struct AbSettings {
    /// The Basic-auth username.
    pub api_key: String,
    /// The site's subdomain (reported by `GET /site.json`).
    pub subdomain: String,
    /// Requests in flight beyond this get 429 (Maxio: 4 per site).
    pub max_concurrent_requests: usize,
    pub components: Vec<ComponentSeed>,
    pub products: Vec<ProductSeed>,
    /// Added to every id the site hands out, so two fake sites never share an id (AB's ids
    /// are unique across sites).
    pub id_base: i64,
    /// The site's primary currency (`GET /site.json` `site.currency`), e.g. `USD`.
    pub currency: String,
    /// The site's other currencies (`site.non_primary_currencies`), e.g. `["EUR"]`. Subscriptions
    /// may be created in these, and component price points may have prices in them.
    pub non_primary_currencies: Vec<String>,
    /// Whether the site has the feature "Schedule Subscription Cancellation", which a cancel with
    /// `cancel_at_end_of_period` or `scheduled_cancellation_at` needs (DOC). Off by default, as on
    /// a site that never turned it on; see also [`MaxioAbSandbox::set_schedule_cancellation`].
    pub schedule_cancellation: bool,
    /// The site's shared key, which signs its webhooks.
    pub webhook_shared_key: String,
}

impl Default for AbSettings {
    fn default() -> Self {
        AbSettings {
            api_key: "sandbox-maxio-ab-key".into(),
            subdomain: "dealbridge-sandbox".into(),
            max_concurrent_requests: 4,
            components: default_components(),
            products: default_products(),
            id_base: 0,
            currency: "USD".into(),
            non_primary_currencies: Vec::new(),
            schedule_cancellation: false,
            webhook_shared_key: SANDBOX_WEBHOOK_KEY.into(),
        }
    }
}

pub(crate) struct App {
    settings: AbSettings,
    store: Mutex<Store>,
    limiter: Limiter,
}

impl App {
    /// The store, with every cancellation whose time has come applied (`Store::settle`).
    fn store(&self) -> MutexGuard<'_, Store> {
        let mut store = lock(&self.store);
        store.settle();
        store
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A running fake site. Dropping it stops the server.
pub struct MaxioAbSandbox {
    app: Arc<App>,
    observer: Observer,
    url: String,
    _server: crate::serve::Served,
}

impl MaxioAbSandbox {
    /// Serves a fresh site on a free loopback port.
    pub async fn start(settings: AbSettings) -> std::io::Result<MaxioAbSandbox> {
        Self::start_on(settings, SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    /// Serves a fresh site on `addr`.
    pub async fn start_on(
        settings: AbSettings,
        addr: SocketAddr,
    ) -> std::io::Result<MaxioAbSandbox> {
        let (listener, authority) = crate::serve::listen(addr).await?;
        let url = format!("http://{authority}");
        let app = Arc::new(App {
            store: Mutex::new(Store::new(&settings)),
            limiter: Limiter::new(settings.max_concurrent_requests),
            settings,
        });
        let observer = Observer::new("maxio-ab");
        let router = router(app.clone(), observer.clone());
        let _server = crate::serve::serve(listener, router);
        Ok(MaxioAbSandbox {
            app,
            observer,
            url,
            _server,
        })
    }

    /// The base URL, standing in for `https://{subdomain}.chargify.com`.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn observer(&self) -> &Observer {
        &self.observer
    }

    pub fn settings(&self) -> AbSettings {
        self.app.settings.clone()
    }

    /// Requests being answered now (admitted, not 429).
    pub fn in_flight(&self) -> usize {
        self.app.limiter.in_flight()
    }

    /// Requests answered (admitted, not 429) so far, and the time they took in all (injected
    /// latency included).
    pub fn answered(&self) -> (u64, std::time::Duration) {
        self.app.limiter.answered()
    }

    fn store(&self) -> MutexGuard<'_, Store> {
        self.app.store()
    }

    /// Every customer, unwrapped, as `GET /customers/{id}.json` returns it.
    pub fn customers(&self) -> Vec<Value> {
        self.store()
            .customers
            .iter()
            .map(|c| Value::Object(c.clone()))
            .collect()
    }

    /// Every price point (default, catalog and custom), unwrapped, each with its `component_id`
    /// and its `currency_prices` (as `?currency_prices=true` renders them).
    pub fn price_points(&self) -> Vec<Value> {
        let store = self.store();
        store
            .price_points
            .iter()
            .map(|p| store.render_price_point(p, true))
            .collect()
    }

    /// A subscription, unwrapped, as `GET /subscriptions/{id}.json` returns it now.
    pub fn subscription(&self, id: i64) -> Option<Value> {
        let store = self.store();
        store.subscription(id).map(|s| store.render_subscription(s))
    }

    /// Every subscription, unwrapped.
    pub fn subscriptions(&self) -> Vec<Value> {
        let store = self.store();
        store
            .subscriptions
            .iter()
            .map(|s| store.render_subscription(s))
            .collect()
    }

    /// The items of `GET /subscriptions/{id}/components.json`, unwrapped: every component of the
    /// product family, with a null price point for those not on the subscription.
    pub fn subscription_components(&self, subscription_id: i64) -> Vec<Value> {
        let store = self.store();
        store
            .subscription(subscription_id)
            .map(|s| store.render_subscription_components(s, false))
            .unwrap_or_default()
    }

    /// Every accepted allocation of the subscription's components, unwrapped as
    /// `POST …/allocations.json` answers it, oldest first (the list endpoint is newest first).
    pub fn allocations(&self, subscription_id: i64) -> Vec<Value> {
        let store = self.store();
        store
            .allocations
            .iter()
            .filter(|a| a.subscription_id == subscription_id)
            .map(|a| store.render_allocation(a))
            .collect()
    }

    /// Changes a subscription's component without an API call and without recording an
    /// allocation, to build a state the API would not have produced (e.g. left behind by someone
    /// in the UI or by an old bug).
    ///
    /// `quantity` becomes the allocated quantity (on/off: above 0 is on) or, for metered and
    /// event-based components, the unit balance (truncated). `price_point_id`, when given, is
    /// stored as is, even if it names a price point of another component or none at all; when
    /// `None` the component keeps its price point, or gets its default one if it was not on the
    /// subscription. Errors when the subscription or the component does not exist.
    pub fn set_component(
        &self,
        subscription_id: i64,
        component_handle: &str,
        quantity: impl Into<Decimal>,
        price_point_id: Option<i64>,
    ) -> Result<(), String> {
        let quantity: Decimal = quantity.into();
        let mut store = self.store();
        if store.subscription(subscription_id).is_none() {
            return Err(format!("no subscription {subscription_id}"));
        }
        let Some(component) = store.component_by_handle(component_handle).cloned() else {
            return Err(format!("no component {component_handle}"));
        };
        let price_point_id = price_point_id
            .or_else(|| {
                store
                    .subscription_component(subscription_id, component.id)
                    .map(|a| a.price_point_id)
            })
            .unwrap_or(component.default_price_point_id);
        let row = store.set_subscription_price_point(subscription_id, component.id, price_point_id);
        match component.kind {
            "metered_component" | "event_based_component" => {
                row.unit_balance = quantity.trunc().to_i64().unwrap_or(0);
            }
            _ => row.allocated_quantity = quantity.normalize(),
        }
        store.record_events();
        Ok(())
    }

    /// Puts a subscription in `state` (one of AB's documented states, e.g. `past_due`, `unpaid`,
    /// `trial_ended`) without an API call, to build a state the fake does not reach by itself
    /// (no payments, no dunning); `previous_state` becomes the state it had. Errors when the
    /// subscription does not exist or the state is not one of AB's.
    pub fn set_state(&self, subscription_id: i64, state: &str) -> Result<(), String> {
        let Some(state) = state::STATES.iter().copied().find(|s| *s == state) else {
            return Err(format!("{state} is not a subscription state"));
        };
        let mut store = self.store();
        // What happened before this change is recorded as it was.
        store.record_events();
        let now = store.now();
        let Some(s) = store.subscription_mut(subscription_id) else {
            return Err(format!("no subscription {subscription_id}"));
        };
        s.previous_state = s.state;
        s.state = state;
        s.updated_at = now;
        store.record_events();
        Ok(())
    }

    /// The site's event log as `GET /events.json?direction=asc` renders it (unwrapped), oldest
    /// first, with every change made so far recorded.
    pub fn events(&self) -> Vec<Value> {
        let mut store = self.store();
        store.record_events();
        store
            .events
            .iter()
            .map(|e| e.render()["event"].clone())
            .collect()
    }

    /// Sends every webhook due on the site's clock to its endpoint (form-encoded, signed, with
    /// `X-Chargify-Webhook-Id`), records each answer, and schedules AB's retries after a non-2xx
    /// answer (see `webhooks.rs`). Returns the attempts made, in order.
    pub async fn deliver_webhooks(&self) -> Vec<webhooks::Delivery> {
        let due = webhooks::due(&mut self.store());
        let client = reqwest::Client::new();
        let mut made = Vec::with_capacity(due.len());
        for (id, event, url, body, signature) in due {
            let sent = client
                .post(&url)
                .header("Content-Type", "application/x-www-form-urlencoded")
                .header("X-Chargify-Webhook-Id", id.to_string())
                .header(dealbridge::billing::webhook::SIGNATURE_HEADER, signature)
                .timeout(std::time::Duration::from_secs(15))
                .body(body)
                .send()
                .await;
            let status = sent.ok().map(|r| r.status().as_u16());
            webhooks::attempted(&mut self.store(), id, &url, status);
            made.push(webhooks::Delivery {
                webhook_id: id,
                event: event.to_string(),
                url,
                status,
            });
        }
        made
    }

    /// The shared key the site signs its webhooks with.
    pub fn webhook_shared_key(&self) -> String {
        self.store().webhook_key.clone()
    }

    /// Turns the site feature "Schedule Subscription Cancellation" on or off (see
    /// [`AbSettings::schedule_cancellation`]).
    pub fn set_schedule_cancellation(&self, on: bool) {
        self.store().schedule_cancellation = on;
    }

    /// Every negative component quantity the site was sent, oldest first, each described with
    /// the request it came in: a subscription create's `components[].allocated_quantity` or
    /// `components[].quantity`, an allocation's `quantity`. Recorded whatever became of the
    /// request (the site still refuses negative quantities); [`Self::set_component`] is not an
    /// API call and records nothing. A harness asserts this is empty: dealbridge never sends a
    /// negative quantity.
    pub fn negative_quantities(&self) -> Vec<String> {
        self.store().negative_quantities.clone()
    }

    pub fn component_id(&self, handle: &str) -> Option<i64> {
        self.store().component_by_handle(handle).map(|c| c.id)
    }

    /// Sets the site's clock to `at`, from which it runs on (the local stack's virtual time), so
    /// dates it is sent (a future `initial_billing_at`) are judged as the workers judge them.
    pub fn set_clock(&self, at: chrono::DateTime<chrono::Utc>) {
        self.store().clock_offset = at - chrono::Utc::now();
    }

    /// Moves the site's clock forward (timestamps, the `uniqueness_token` window, and the delayed
    /// and scheduled cancellations that come due, see `Store::settle`).
    pub fn advance_clock(&self, by: std::time::Duration) {
        let by = chrono::Duration::from_std(by).unwrap_or(chrono::Duration::MAX);
        let mut store = self.store();
        store.clock_offset = store
            .clock_offset
            .checked_add(&by)
            .unwrap_or(chrono::Duration::MAX);
    }

    /// The next subscription created with this component ignores the requested price point and
    /// puts the component on its default price point, as the real API does for a price point it
    /// does not recognise. Custom prices (`custom_price`) are not affected.
    pub fn force_default_price_point(&self, component_handle: &str) {
        self.store()
            .forced_default
            .insert(component_handle.to_string());
    }
}

/// Unknown paths: 429 and 401 apply as on every route, then 404.
async fn not_found(AxState(app): AxState<Arc<App>>, request: Request) -> Response {
    http::refuse(&app, &request).unwrap_or_else(|| Reply::not_found().into_response())
}

fn router(app: Arc<App>, observer: Observer) -> Router {
    Router::new()
        .route("/site.json", get(price_points::site))
        .route("/events.json", get(events::list))
        .route(
            "/endpoints.json",
            get(webhooks::list_endpoints).post(webhooks::create_endpoint),
        )
        .route("/endpoints/{file}", put(webhooks::update_endpoint))
        .route("/webhooks.json", get(webhooks::list_webhooks))
        .route("/webhooks/replay.json", post(webhooks::replay))
        .route(
            "/customers.json",
            get(customers::list).post(customers::create),
        )
        .route("/customers/lookup.json", get(customers::lookup))
        .route("/customers/{file}", get(customers::read))
        .route(
            "/customers/{customer_id}/subscriptions.json",
            get(customers::subscriptions),
        )
        .route("/products/{file}", get(products::read))
        .route("/products/handle/{file}", get(products::by_handle))
        .route(
            "/components/lookup.json",
            get(price_points::component_lookup),
        )
        .route("/components/{file}", get(price_points::component_read))
        .route(
            "/components/{component_id}/price_points.json",
            get(price_points::list).post(price_points::create),
        )
        .route(
            "/components/{component_id}/price_points/{file}",
            get(price_points::read),
        )
        .route(
            "/price_points/{price_point_id}/currency_prices.json",
            post(price_points::currency_prices_create).put(price_points::currency_prices_update),
        )
        .route(
            "/subscriptions.json",
            get(subscriptions::list).post(subscriptions::create),
        )
        .route("/subscriptions/lookup.json", get(subscriptions::lookup))
        .route(
            "/subscriptions/{file}",
            get(subscriptions::read).delete(cancellations::cancel),
        )
        .route(
            "/subscriptions/{subscription_id}/delayed_cancel.json",
            post(cancellations::delayed_cancel).delete(cancellations::remove_delayed_cancel),
        )
        .route(
            "/subscriptions/{subscription_id}/reactivate.json",
            put(cancellations::reactivate),
        )
        .route(
            "/subscriptions/{subscription_id}/components.json",
            get(subscriptions::components),
        )
        .route(
            "/subscriptions/{subscription_id}/price_points.json",
            post(subscriptions::change_price_points),
        )
        .route(
            "/subscriptions/{subscription_id}/components/{component_id}/allocations.json",
            get(allocations::list).post(allocations::create),
        )
        .fallback(not_found)
        .with_state(app.clone())
        .route_layer(axum::middleware::from_fn_with_state(
            app.clone(),
            http::gate,
        ))
        .route_layer(axum::middleware::from_fn_with_state(observer, observe))
        .layer(axum::middleware::from_fn_with_state(app, http::admit))
}
