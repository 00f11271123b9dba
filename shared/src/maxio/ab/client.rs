//! The Maxio Advanced Billing client: Basic auth (API key, password `x`), wrapped JSON resources,
//! a `uniqueness_token` on every POST, retries with backoff and jitter on 429, 5xx and timeouts,
//! and every request sent on a slot of the site's request budget ([`crate::budget`]: at most 4
//! in flight per site across every container).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::Method;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tracing::debug;
use url::Url;

use super::error::{MaxioError, parse_messages};
use super::model::*;
use crate::budget::{BudgetSettings, SiteBudget};
use crate::http::{self, Answer, Class};
use crate::maxio::pricing::PricePointSpec;
use crate::retry::RetryPolicy;
use crate::retry::{Again, run_with_retries};
use crate::secrets::{Secret, SecretStore, parse_json_secret};

/// Maxio allows 4 concurrent requests per site (the budget's slots unless the site says otherwise).
pub const MAX_CONCURRENT_REQUESTS: usize = 4;

#[derive(Debug, Clone, Deserialize)]
struct AbCredentials {
    api_key: Secret,
}

#[derive(Debug, Clone)]
pub struct AbClientSettings {
    /// `https://<subdomain>.chargify.com` (or `.ebilling.maxio.com`).
    pub base_url: Url,
    /// Secrets Manager secret holding `{"api_key": "..."}`.
    pub secret_name: String,
    pub timeout: Duration,
    pub retry: RetryPolicy,
    pub max_concurrent_requests: usize,
}

impl AbClientSettings {
    /// The budget of these settings' site: its slots, for requests of at most its timeout.
    pub fn budget(&self) -> BudgetSettings {
        BudgetSettings::new(
            u32::try_from(self.max_concurrent_requests).unwrap_or(u32::MAX),
            self.timeout,
        )
    }
}

pub struct AbClient {
    http: reqwest::Client,
    settings: AbClientSettings,
    secrets: Arc<dyn SecretStore>,
    budget: Arc<SiteBudget>,
    components: Mutex<HashMap<String, Component>>,
    products: Mutex<HashMap<String, Product>>,
}

#[derive(Deserialize)]
pub(super) struct Wrapped<T> {
    #[serde(
        alias = "customer",
        alias = "subscription",
        alias = "price_point",
        alias = "component",
        alias = "site",
        alias = "product",
        alias = "allocation",
        alias = "event"
    )]
    pub(super) inner: T,
}

impl AbClient {
    /// A client whose budget is this process's alone (the operator CLI, tests): it holds across
    /// the process's requests, not across containers.
    pub fn new(
        settings: AbClientSettings,
        secrets: Arc<dyn SecretStore>,
    ) -> Result<Self, MaxioError> {
        let budget = Arc::new(SiteBudget::in_process(
            settings.base_url.as_str(),
            settings.budget(),
        ));
        AbClient::with_budget(settings, secrets, budget)
    }

    /// A client sending every request on a slot of `budget`.
    pub fn with_budget(
        settings: AbClientSettings,
        secrets: Arc<dyn SecretStore>,
        budget: Arc<SiteBudget>,
    ) -> Result<Self, MaxioError> {
        let http = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(Duration::from_secs(5))
            .user_agent(concat!("dealbridge/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| MaxioError::Transport(e.to_string()))?;
        Ok(AbClient {
            http,
            settings,
            secrets,
            budget,
            components: Mutex::new(HashMap::new()),
            products: Mutex::new(HashMap::new()),
        })
    }

    /// The site's request budget.
    pub fn budget(&self) -> &Arc<SiteBudget> {
        &self.budget
    }

    async fn api_key(&self) -> Result<Secret, MaxioError> {
        let name = &self.settings.secret_name;
        let secret = self
            .secrets
            .secret_string(name)
            .await
            .map_err(|e| MaxioError::Credentials(e.to_string()))?;
        let creds: AbCredentials =
            parse_json_secret(name, &secret).map_err(|e| MaxioError::Credentials(e.to_string()))?;
        Ok(creds.api_key)
    }

    /// One request with retries. `Ok(None)` is a 404.
    pub(super) async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Option<T>, MaxioError> {
        match self.call_text(method, path, body).await? {
            None => Ok(None),
            Some(text) => serde_json::from_str(&text)
                .map(Some)
                .map_err(|e| MaxioError::Decode(format!("{path}: {e}"))),
        }
    }

    /// One request with retries, answering the body's text. `Ok(None)` is a 404.
    pub(super) async fn call_text(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Option<String>, MaxioError> {
        let url = self
            .settings
            .base_url
            .join(path)
            .map_err(|e| MaxioError::Decode(format!("{path}: {e}")))?;
        let key = self.api_key().await?;
        run_with_retries(
            &self.settings.retry,
            "Maxio AB",
            |_| self.once(&method, &url, &key, body),
            |e: &MaxioError| {
                // A request that found no slot waited long enough already: its step is retried.
                if e.is_retryable() && !matches!(e, MaxioError::Budget(_)) {
                    Again::After(e.retry_after())
                } else {
                    Again::No
                }
            },
        )
        .await
    }

    async fn once(
        &self,
        method: &Method,
        url: &Url,
        key: &Secret,
        body: Option<&Value>,
    ) -> Result<Option<String>, MaxioError> {
        let _slot = self
            .budget
            .take()
            .await
            .map_err(|e| MaxioError::Budget(e.to_string()))?;
        debug!(%method, path = url.path(), "maxio request");
        let request = self
            .http
            .request(method.clone(), url.clone())
            .basic_auth(key.expose(), Some("x"));
        let answer = http::send_json("maxio-ab", request, body)
            .await
            .map_err(|e| MaxioError::Transport(e.message().to_string()))?;
        let Answer {
            status,
            retry_after,
            ref text,
        } = answer;
        match answer.class() {
            Class::Success => Ok(Some(answer.text)),
            Class::Unauthorized => Err(MaxioError::Unauthorized),
            Class::NotFound => Ok(None),
            Class::Conflict => Err(MaxioError::DuplicateSubmission),
            Class::RateLimited => {
                crate::metrics::count_by(
                    crate::metrics::AB_RATE_LIMITED,
                    crate::metrics::SITE,
                    self.budget.site(),
                    1,
                );
                Err(MaxioError::RateLimited { retry_after })
            }
            Class::Passing => Err(MaxioError::Server {
                status,
                message: text.chars().take(300).collect(),
            }),
            Class::Forbidden | Class::Refused => Err(MaxioError::Rejected {
                status,
                messages: parse_messages(text),
            }),
        }
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<Option<T>, MaxioError> {
        self.call(Method::GET, path, None).await
    }

    async fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        root: &str,
        resource: &impl Serialize,
        uniqueness_token: &str,
    ) -> Result<T, MaxioError> {
        let body = json!({ root: resource, "uniqueness_token": uniqueness_token });
        self.call(Method::POST, path, Some(&body))
            .await?
            .ok_or_else(|| MaxioError::NotFound(path.to_string()))
    }

    pub async fn lookup_customer(&self, reference: &str) -> Result<Option<Customer>, MaxioError> {
        let path = format!("/customers/lookup.json?reference={}", encode(reference));
        Ok(self.get::<Wrapped<Customer>>(&path).await?.map(|w| w.inner))
    }

    pub async fn create_customer(
        &self,
        customer: &NewCustomer,
        token: &str,
    ) -> Result<Customer, MaxioError> {
        let w: Wrapped<Customer> = self
            .post("/customers.json", "customer", customer, token)
            .await?;
        Ok(w.inner)
    }

    /// The component with `handle`, cached for the life of the container.
    pub async fn component(&self, handle: &str) -> Result<Component, MaxioError> {
        if let Some(c) = self
            .components
            .lock()
            .ok()
            .and_then(|m| m.get(handle).cloned())
        {
            return Ok(c);
        }
        let path = format!("/components/lookup.json?handle={}", encode(handle));
        let component = self
            .get::<Wrapped<Component>>(&path)
            .await?
            .map(|w| w.inner)
            .ok_or_else(|| MaxioError::NotFound(format!("component with handle {handle:?}")))?;
        if let Ok(mut m) = self.components.lock() {
            m.insert(handle.to_string(), component.clone());
        }
        Ok(component)
    }

    pub async fn price_point_by_handle(
        &self,
        component_id: i64,
        handle: &str,
    ) -> Result<Option<PricePoint>, MaxioError> {
        let path = format!(
            "/components/{component_id}/price_points/handle:{}.json?currency_prices=true",
            encode(handle)
        );
        Ok(self
            .get::<Wrapped<PricePoint>>(&path)
            .await?
            .map(|w| w.inner))
    }

    /// Every price point of a component (all pages).
    pub async fn list_price_points(
        &self,
        component_id: i64,
    ) -> Result<Vec<PricePoint>, MaxioError> {
        #[derive(Deserialize)]
        struct Page {
            #[serde(default)]
            price_points: Vec<PricePoint>,
        }
        let mut all = Vec::new();
        for page in 1.. {
            let path =
                format!("/components/{component_id}/price_points.json?page={page}&per_page=200");
            let got: Page = self
                .get(&path)
                .await?
                .ok_or_else(|| MaxioError::NotFound(format!("component {component_id}")))?;
            let done = got.price_points.len() < 200;
            all.extend(got.price_points);
            if done {
                break;
            }
        }
        Ok(all)
    }

    pub async fn create_price_point(
        &self,
        component_id: i64,
        spec: &PricePointSpec,
        token: &str,
    ) -> Result<PricePoint, MaxioError> {
        let path = format!("/components/{component_id}/price_points.json");
        let w: Wrapped<PricePoint> = self
            .post(&path, "price_point", &spec.create_body(), token)
            .await?;
        Ok(w.inner)
    }

    pub async fn lookup_subscription(
        &self,
        reference: &str,
    ) -> Result<Option<Subscription>, MaxioError> {
        let path = format!("/subscriptions/lookup.json?reference={}", encode(reference));
        Ok(self
            .get::<Wrapped<Subscription>>(&path)
            .await?
            .map(|w| w.inner))
    }

    pub async fn create_subscription(
        &self,
        subscription: &NewSubscription,
        token: &str,
    ) -> Result<Subscription, MaxioError> {
        let w: Wrapped<Subscription> = self
            .post("/subscriptions.json", "subscription", subscription, token)
            .await?;
        Ok(w.inner)
    }

    pub async fn subscription_components(
        &self,
        subscription_id: i64,
    ) -> Result<Vec<SubscriptionComponent>, MaxioError> {
        #[derive(Deserialize)]
        struct Item {
            component: SubscriptionComponent,
        }
        let path = format!("/subscriptions/{subscription_id}/components.json");
        let items: Vec<Item> = self
            .get(&path)
            .await?
            .ok_or_else(|| MaxioError::NotFound(format!("subscription {subscription_id}")))?;
        Ok(items.into_iter().map(|i| i.component).collect())
    }
}

impl AbClient {
    /// A POST whose body has no `uniqueness_token` (AB documents none for these endpoints).
    async fn post_plain<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &Value,
    ) -> Result<T, MaxioError> {
        self.call(Method::POST, path, Some(body))
            .await?
            .ok_or_else(|| MaxioError::NotFound(path.to_string()))
    }

    pub async fn site(&self) -> Result<Site, MaxioError> {
        self.get::<Wrapped<Site>>("/site.json")
            .await?
            .map(|w| w.inner)
            .ok_or_else(|| MaxioError::NotFound("/site.json".into()))
    }

    /// The product with `handle` (`None`: there is none), cached for the life of the container
    /// once found, like components.
    pub async fn product(&self, handle: &str) -> Result<Option<Product>, MaxioError> {
        if let Some(p) = self
            .products
            .lock()
            .ok()
            .and_then(|m| m.get(handle).cloned())
        {
            return Ok(Some(p));
        }
        let path = format!("/products/handle/{}.json", encode(handle));
        let product = self.get::<Wrapped<Product>>(&path).await?.map(|w| w.inner);
        if let (Some(p), Ok(mut m)) = (&product, self.products.lock()) {
            m.insert(handle.to_string(), p.clone());
        }
        Ok(product)
    }

    pub async fn price_point(
        &self,
        component_id: i64,
        price_point_id: i64,
    ) -> Result<Option<PricePoint>, MaxioError> {
        let path = format!(
            "/components/{component_id}/price_points/{price_point_id}.json?currency_prices=true"
        );
        Ok(self
            .get::<Wrapped<PricePoint>>(&path)
            .await?
            .map(|w| w.inner))
    }

    pub async fn add_currency_prices(
        &self,
        price_point_id: i64,
        prices: &[NewCurrencyPrice],
    ) -> Result<Vec<CurrencyPrice>, MaxioError> {
        #[derive(Deserialize)]
        struct Answer {
            #[serde(default)]
            currency_prices: Vec<CurrencyPrice>,
        }
        let path = format!("/price_points/{price_point_id}/currency_prices.json");
        let answer: Answer = self
            .post_plain(&path, &json!({ "currency_prices": prices }))
            .await?;
        Ok(answer.currency_prices)
    }

    pub async fn change_price_points(
        &self,
        subscription_id: i64,
        changes: &[(i64, i64)],
    ) -> Result<(), MaxioError> {
        let components: Vec<Value> = changes
            .iter()
            .map(|(c, p)| json!({"component_id": c, "price_point": p}))
            .collect();
        let path = format!("/subscriptions/{subscription_id}/price_points.json");
        let _: Value = self
            .post_plain(&path, &json!({ "components": components }))
            .await?;
        Ok(())
    }

    pub async fn allocate(
        &self,
        subscription_id: i64,
        component_id: i64,
        allocation: &NewAllocation,
    ) -> Result<Allocation, MaxioError> {
        let path =
            format!("/subscriptions/{subscription_id}/components/{component_id}/allocations.json");
        let w: Wrapped<Allocation> = self
            .post_plain(&path, &json!({ "allocation": allocation }))
            .await?;
        Ok(w.inner)
    }
}

fn encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
