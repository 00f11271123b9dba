//! A fake Salesforce org on localhost: the OAuth token endpoint (client credentials and JWT
//! bearer), REST query and queryMore, Composite, sObject PATCH and Collections, with Salesforce's
//! status codes, error arrays, `Sforce-Limit-Info` and query pagination, over the in-memory org of
//! `dealbridge-org`.

mod auth;
mod composite;
mod rest;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::routing::{get, patch, post};
use dealbridge_org::Org;
use serde_json::Value;

use crate::observe::{Observer, observe};

/// Route names for fault injection and request counting.
pub mod routes {
    pub const TOKEN: &str = "POST /services/oauth2/token";
    pub const QUERY: &str = "GET /services/data/{version}/query";
    pub const QUERY_SLASH: &str = "GET /services/data/{version}/query/";
    pub const QUERY_MORE: &str = "GET /services/data/{version}/query/{locator}";
    pub const COMPOSITE: &str = "POST /services/data/{version}/composite";
    pub const SOBJECT_PATCH: &str = "PATCH /services/data/{version}/sobjects/{sobject}/{id}";
    pub const SOBJECT_GET: &str = "GET /services/data/{version}/sobjects/{sobject}/{id}";
    pub const COLLECTIONS_PATCH: &str = "PATCH /services/data/{version}/composite/sobjects";
    pub const COLLECTIONS_UPSERT: &str =
        "PATCH /services/data/{version}/composite/sobjects/{sobject}/{field}";
}

/// Who may log in, and how the org behaves.
#[derive(Debug, Clone)]
pub struct OrgSettings {
    pub org_id: String,
    pub user_id: String,
    pub client_id: String,
    pub client_secret: String,
    pub username: String,
    /// The public key of the certificate uploaded to the connected app (PEM).
    pub jwt_public_key_pem: String,
    /// Accepted `aud` values of JWT assertions.
    pub jwt_audiences: Vec<String>,
    /// The org's daily API allocation.
    pub api_limit: u64,
    /// Rows per query page (Salesforce: 2000, or the `Sforce-Query-Options` batch size).
    pub batch_size: usize,
    /// Child rows per parent record before the child result pages.
    pub child_batch_size: usize,
}

/// Where the bundled data and keys live.
pub fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data")
}

pub fn test_keys_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("shared")
        .join("testdata")
}

impl Default for OrgSettings {
    fn default() -> Self {
        let key = std::fs::read_to_string(test_keys_dir().join("jwt-test-key.pub.pem"))
            .unwrap_or_default();
        OrgSettings {
            org_id: "00DSB0000000001".into(),
            user_id: "005SB0000000001".into(),
            client_id: "3MVG9.sandbox.dealbridge".into(),
            client_secret: "sandbox-client-secret".into(),
            username: "integration@dealbridge.example".into(),
            jwt_public_key_pem: key,
            jwt_audiences: vec![
                "https://login.salesforce.com".into(),
                "https://test.salesforce.com".into(),
            ],
            api_limit: 15_000,
            batch_size: 2000,
            child_batch_size: 2000,
        }
    }
}

/// Loads the bundled schema and seed deals.
pub fn seeded_org() -> Result<Org, dealbridge_org::LoadError> {
    let dir = data_dir().join("salesforce");
    Org::from_files(&dir.join("schema.json"), &[dir.join("seed.json")])
}

struct Cursor {
    rows: Vec<Value>,
}

pub(crate) struct State {
    settings: Mutex<OrgSettings>,
    base_url: String,
    org: Mutex<Org>,
    sessions: Mutex<HashSet<String>>,
    session_seq: AtomicU64,
    api_used: AtomicU64,
    cursors: Mutex<HashMap<String, Cursor>>,
    cursor_seq: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl State {
    fn settings(&self) -> OrgSettings {
        lock(&self.settings).clone()
    }
}

/// A running fake org. Dropping it stops the server.
pub struct SalesforceSandbox {
    state: Arc<State>,
    observer: Observer,
    url: String,
    _server: crate::serve::Served,
}

impl SalesforceSandbox {
    /// Serves `org` on a free loopback port.
    pub async fn start(settings: OrgSettings, org: Org) -> std::io::Result<SalesforceSandbox> {
        Self::start_on(settings, org, SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    /// Serves `org` on `addr`.
    pub async fn start_on(
        settings: OrgSettings,
        org: Org,
        addr: SocketAddr,
    ) -> std::io::Result<SalesforceSandbox> {
        let (listener, authority) = crate::serve::listen(addr).await?;
        let url = format!("http://{authority}");
        let state = Arc::new(State {
            settings: Mutex::new(settings),
            base_url: url.clone(),
            org: Mutex::new(org),
            sessions: Mutex::new(HashSet::new()),
            session_seq: AtomicU64::new(0),
            api_used: AtomicU64::new(0),
            cursors: Mutex::new(HashMap::new()),
            cursor_seq: AtomicU64::new(0),
        });
        let observer = Observer::new("salesforce");
        let app = router(state.clone(), observer.clone());
        let _server = crate::serve::serve(listener, app);
        Ok(SalesforceSandbox {
            state,
            observer,
            url,
            _server,
        })
    }

    /// The login URL and instance URL (one server plays both).
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn observer(&self) -> &Observer {
        &self.observer
    }

    pub fn settings(&self) -> OrgSettings {
        self.state.settings()
    }

    /// Changes the org's behaviour while it runs (batch sizes, API allocation, ...).
    pub fn configure(&self, change: impl FnOnce(&mut OrgSettings)) {
        change(&mut lock(&self.state.settings));
    }

    /// Reads or changes the org's records.
    pub fn with_org<R>(&self, f: impl FnOnce(&mut Org) -> R) -> R {
        f(&mut lock(&self.state.org))
    }

    /// The 18-character Id of the seeded record with this `referenceId`.
    pub fn id_of(&self, reference_id: &str) -> Option<String> {
        self.with_org(|org| org.id_of(reference_id).map(|id| id.to_string()))
    }

    /// One record's fields, by Id.
    pub fn record(&self, id: &str) -> Option<serde_json::Map<String, Value>> {
        self.with_org(|org| org.get(id).cloned())
    }

    /// Invalidates every issued session, as when the org's session timeout passes.
    pub fn expire_sessions(&self) {
        lock(&self.state.sessions).clear();
    }

    /// API requests counted against the daily allocation so far.
    pub fn api_usage(&self) -> u64 {
        self.state.api_used.load(Ordering::SeqCst)
    }

    pub fn set_api_usage(&self, used: u64) {
        self.state.api_used.store(used, Ordering::SeqCst);
    }
}

fn router(state: Arc<State>, observer: Observer) -> Router {
    Router::new()
        .route("/services/oauth2/token", post(auth::token))
        .route("/services/data/{version}/query", get(rest::query))
        .route("/services/data/{version}/query/", get(rest::query))
        .route("/services/data/{version}/queryAll", get(rest::query_all))
        .route(
            "/services/data/{version}/query/{locator}",
            get(rest::query_more),
        )
        .route(
            "/services/data/{version}/composite",
            post(composite::composite),
        )
        .route(
            "/services/data/{version}/sobjects/{sobject}/{id}",
            patch(rest::patch_record).get(rest::get_record),
        )
        .route(
            "/services/data/{version}/composite/sobjects",
            patch(rest::patch_collection),
        )
        .route(
            "/services/data/{version}/composite/sobjects/{sobject}/{field}",
            patch(rest::upsert_collection_route),
        )
        .fallback(rest::not_found)
        .with_state(state)
        .route_layer(axum::middleware::from_fn_with_state(observer, observe))
}
