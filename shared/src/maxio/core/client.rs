//! The Maxio Core client: `Authorization: Token <key>` (Django REST Framework's scheme), list
//! endpoints followed page by page through `next` to the end, and the PATCH of a contract.
//! Transient failures (429 honouring `Retry-After`, 5xx, timeouts) are retried with backoff.
//!
//! Core's list filters are exact-match django-filter parameters that the server silently ignores
//! when it does not know them, so callers re-check every record they get back.

use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use serde::Deserialize;
use serde_json::{Value, json};
use tracing::debug;
use url::Url;

use super::error::{CoreError, error_message};
use super::model::{CoreRecord, Page};
use crate::http::{self, Answer, Class};
use crate::retry::RetryPolicy;
use crate::retry::{Again, run_with_retries};
use crate::secrets::{Secret, SecretStore, parse_json_secret};

/// Core answers at most 100 records a page, whatever `page_size` says.
pub const PAGE_SIZE: usize = 100;

#[derive(Debug, Clone, Deserialize)]
struct CoreCredentials {
    #[serde(alias = "token")]
    api_token: Secret,
}

#[derive(Debug, Clone)]
pub struct CoreClientSettings {
    /// `https://{server}.saasoptics.com/{account}/api/v1.0/` (a trailing slash is added).
    pub base_url: Url,
    /// Secrets Manager secret holding `{"api_token": "..."}`.
    pub secret_name: String,
    pub timeout: Duration,
    pub retry: RetryPolicy,
    /// The most pages one listing follows before giving up.
    pub max_pages: usize,
}

pub struct CoreClient {
    http: reqwest::Client,
    settings: CoreClientSettings,
    secrets: Arc<dyn SecretStore>,
}

impl CoreClient {
    pub fn new(
        mut settings: CoreClientSettings,
        secrets: Arc<dyn SecretStore>,
    ) -> Result<Self, CoreError> {
        if !settings.base_url.path().ends_with('/') {
            let path = format!("{}/", settings.base_url.path());
            settings.base_url.set_path(&path);
        }
        let http = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(Duration::from_secs(5))
            .user_agent(concat!("dealbridge/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| CoreError::Transport(e.to_string()))?;
        Ok(CoreClient {
            http,
            settings,
            secrets,
        })
    }

    async fn token(&self) -> Result<Secret, CoreError> {
        let name = &self.settings.secret_name;
        let secret = self
            .secrets
            .secret_string(name)
            .await
            .map_err(|e| CoreError::Credentials(e.to_string()))?;
        let creds: CoreCredentials =
            parse_json_secret(name, &secret).map_err(|e| CoreError::Credentials(e.to_string()))?;
        Ok(creds.api_token)
    }

    /// Every record of a list endpoint (`customers/`, `contracts/`) that the server returns for
    /// `filters`, following `next` to the end.
    pub async fn list(
        &self,
        path: &str,
        filters: &[(&str, String)],
    ) -> Result<Vec<CoreRecord>, CoreError> {
        let mut url = self.url(path)?;
        {
            let mut query = url.query_pairs_mut();
            for (key, value) in filters {
                query.append_pair(key, value);
            }
            query.append_pair("page_size", &PAGE_SIZE.to_string());
        }
        let token = self.token().await?;
        let mut records = Vec::new();
        let mut pages = 0;
        loop {
            pages += 1;
            if pages > self.settings.max_pages {
                return Err(CoreError::TooManyPages {
                    path: path.to_string(),
                    pages: self.settings.max_pages,
                });
            }
            let text = self.call(Method::GET, &url, &token, None).await?;
            let page: Page = serde_json::from_str(&text)
                .map_err(|e| CoreError::Decode(format!("{path}: {e}")))?;
            records.extend(page.results);
            let Some(next) = page.next.filter(|n| !n.trim().is_empty()) else {
                return Ok(records);
            };
            url = self.follow(&url, &next)?;
        }
    }

    /// Sets `fields` on contract `id` and returns the contract as Core now has it.
    pub async fn patch_contract(&self, id: i64, fields: &Value) -> Result<CoreRecord, CoreError> {
        let url = self.url(&format!("contracts/{id}/"))?;
        let token = self.token().await?;
        let text = self
            .call(Method::PATCH, &url, &token, Some(fields))
            .await
            .map_err(|e| match e {
                CoreError::NotFound(_) => CoreError::NotFound(format!("contract {id}")),
                other => other,
            })?;
        serde_json::from_str(&text).map_err(|e| CoreError::Decode(format!("contract {id}: {e}")))
    }

    /// Sets one text field of a contract.
    pub async fn set_contract_field(
        &self,
        id: i64,
        field: &str,
        value: &str,
    ) -> Result<CoreRecord, CoreError> {
        self.patch_contract(id, &json!({ field: value })).await
    }

    fn url(&self, path: &str) -> Result<Url, CoreError> {
        self.settings
            .base_url
            .join(path)
            .map_err(|e| CoreError::Decode(format!("{path}: {e}")))
    }

    /// The next page's URL, refused unless it stays on the tenant's origin: the token is sent
    /// wherever `next` points.
    fn follow(&self, current: &Url, next: &str) -> Result<Url, CoreError> {
        let url = current
            .join(next.trim())
            .map_err(|e| CoreError::Decode(format!("next page link {next:?}: {e}")))?;
        if url.origin() != self.settings.base_url.origin() {
            return Err(CoreError::Decode(format!(
                "next page link {next:?} leaves {}",
                self.settings.base_url.origin().ascii_serialization()
            )));
        }
        Ok(url)
    }

    /// One request with retries; the body text of a 2xx answer.
    async fn call(
        &self,
        method: Method,
        url: &Url,
        token: &Secret,
        body: Option<&Value>,
    ) -> Result<String, CoreError> {
        run_with_retries(
            &self.settings.retry,
            "Maxio Core",
            |_| self.once(&method, url, token, body),
            |e: &CoreError| {
                if e.is_retryable() {
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
        token: &Secret,
        body: Option<&Value>,
    ) -> Result<String, CoreError> {
        debug!(%method, path = url.path(), query = url.query().unwrap_or_default(), "maxio core request");
        let request = self
            .http
            .request(method.clone(), url.clone())
            .header("Authorization", format!("Token {}", token.expose()));
        let answer = http::send_json("maxio-core", request, body)
            .await
            .map_err(|e| CoreError::Transport(e.message().to_string()))?;
        let Answer {
            status,
            retry_after,
            ref text,
        } = answer;
        match answer.class() {
            Class::Success => Ok(answer.text),
            Class::Unauthorized => Err(CoreError::Unauthorized(error_message(text))),
            Class::Forbidden => Err(CoreError::Forbidden(error_message(text))),
            Class::NotFound => Err(CoreError::NotFound(url.path().to_string())),
            Class::RateLimited => Err(CoreError::RateLimited { retry_after }),
            Class::Passing => Err(CoreError::Server {
                status,
                message: error_message(text),
            }),
            Class::Conflict | Class::Refused => Err(CoreError::Rejected {
                status,
                message: error_message(text),
            }),
        }
    }
}
