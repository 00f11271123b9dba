//! The WHMCS API client: form-encoded POSTs to `{base}/includes/api.php` with API credentials
//! (`identifier`/`secret`, optionally `accesskey`) from the secret store and `responsetype=json`,
//! the `result` envelope read (also after PHP warnings printed before the JSON), and retries that
//! never repeat an AddOrder which may have reached WHMCS.

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{ACCEPT, CONTENT_TYPE};
use serde::Deserialize;
use serde_json::{Map, Value};
use tracing::{debug, error, info, warn};
use url::Url;

use super::error::WhmcsError;
use super::model::{
    AcceptOrder, AddOrder, AddOrderResult, ClientDetails, Currency, GetClientsDetails,
    GetCurrencies, GetOrdersQuery, GetPaymentMethods, Order, OrdersPage, PaymentMethod,
    WhmcsRequest, currencies_from, payment_methods_from,
};
use super::services::{
    AddCancelRequest, CancelRequestResult, CancelType, CancelledPackage, CancelledPackagesPage,
    ClientProduct, GetCancelledPackages, GetClientsProducts, UpdateClientProduct, check_service_id,
    client_products_from,
};
use crate::http::{self, NoAnswer};
use crate::retry::RetryPolicy;
use crate::retry::{Again, run_with_retries};
use crate::secrets::{Secret, SecretStore, parse_json_secret};

/// Orders asked for per GetOrders page when listing a client's orders.
pub const ORDERS_PAGE_SIZE: u64 = 100;
/// Pages read at most when listing a client's orders; a list that does not end by then is treated
/// as a broken answer.
pub const MAX_ORDER_PAGES: usize = 100;
/// Cancellation requests asked for per GetCancelledPackages page.
pub const CANCELLED_PACKAGES_PAGE_SIZE: u64 = 100;
/// Pages of GetCancelledPackages read at most (as [`MAX_ORDER_PAGES`]).
pub const MAX_CANCELLED_PACKAGES_PAGES: usize = 100;

#[derive(Debug, Clone)]
pub struct WhmcsClientSettings {
    /// The WHMCS root (`https://billing.example.com/` or `https://example.com/whmcs/`); the API is
    /// `includes/api.php` under it.
    pub base_url: Url,
    /// Secrets Manager secret holding `{"identifier": "...", "secret": "..."}` and optionally
    /// `"accesskey"`.
    pub secret_name: String,
    pub timeout: Duration,
    pub retry: RetryPolicy,
}

impl WhmcsClientSettings {
    /// `{base_url}/includes/api.php`.
    pub fn endpoint(&self) -> Result<Url, WhmcsError> {
        let mut base = self.base_url.clone();
        if base.cannot_be_a_base() || !matches!(base.scheme(), "http" | "https") {
            return Err(WhmcsError::Configuration(format!(
                "WHMCS base URL {} is not an http(s) URL",
                self.base_url
            )));
        }
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        base.set_query(None);
        base.set_fragment(None);
        base.join("includes/api.php")
            .map_err(|e| WhmcsError::Configuration(format!("WHMCS base URL: {e}")))
    }
}

#[derive(Debug, Clone, Deserialize)]
struct Credentials {
    identifier: Secret,
    secret: Secret,
    #[serde(default)]
    accesskey: Option<Secret>,
}

/// Whether a request may be sent again after a failure that left its fate unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Repeat {
    /// Reads, AcceptOrder (a repeat is refused as "not Pending", which the caller checks),
    /// AddCancelRequest (a repeat is refused as "Existing Cancellation Request Exists") and
    /// UpdateClientProduct (setting the same values again changes nothing).
    Safe,
    /// AddOrder: only when it certainly was not processed.
    OnlyIfNotProcessed,
}

pub struct WhmcsClient {
    http: reqwest::Client,
    endpoint: Url,
    settings: WhmcsClientSettings,
    secrets: Arc<dyn SecretStore>,
}

impl WhmcsClient {
    pub fn new(
        settings: WhmcsClientSettings,
        secrets: Arc<dyn SecretStore>,
    ) -> Result<Self, WhmcsError> {
        let endpoint = settings.endpoint()?;
        let http = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout.min(Duration::from_secs(5)))
            .user_agent(concat!("dealbridge/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| WhmcsError::Configuration(format!("HTTP client: {e}")))?;
        Ok(WhmcsClient {
            http,
            endpoint,
            settings,
            secrets,
        })
    }

    /// The API URL requests go to.
    pub fn endpoint(&self) -> &Url {
        &self.endpoint
    }

    async fn credentials(&self) -> Result<Credentials, WhmcsError> {
        let name = &self.settings.secret_name;
        let credentials = |e: crate::secrets::SecretsError| WhmcsError::Credentials {
            retryable: e.is_retryable(),
            message: e.to_string(),
        };
        let secret = self
            .secrets
            .secret_string(name)
            .await
            .map_err(credentials)?;
        parse_json_secret(name, &secret).map_err(credentials)
    }

    /// Creates an order (Pending). Never sent twice unless the first try certainly did not reach
    /// WHMCS (no connection, 429, 503); a failure after it may have arrived is
    /// [`WhmcsError::AnswerLost`] (`is_ambiguous()`): look for the order before sending it again.
    pub async fn add_order(&self, order: &AddOrder) -> Result<AddOrderResult, WhmcsError> {
        order.validate()?;
        let result: AddOrderResult = self
            .call(order, Repeat::OnlyIfNotProcessed, |m| {
                AddOrderResult::try_from(m)
            })
            .await?;
        info!(
            order_id = %result.order_id,
            services = result.service_ids.len(),
            "WHMCS order created"
        );
        Ok(result)
    }

    /// Accepts a Pending order. An order that is not (or no longer) Pending is refused with
    /// `WHMCS_ORDER_NOT_PENDING`, also when a retried accept follows one that succeeded unseen:
    /// check the order's status before treating that as a failure.
    pub async fn accept_order(
        &self,
        order_id: &str,
        autosetup: Option<bool>,
        send_email: Option<bool>,
    ) -> Result<(), WhmcsError> {
        let request = AcceptOrder {
            order_id: order_id.to_string(),
            autosetup,
            send_email,
        };
        self.call(&request, Repeat::Safe, |_| Ok(())).await?;
        info!(order_id, "WHMCS order accepted");
        Ok(())
    }

    /// One page of GetOrders.
    pub async fn get_orders(&self, query: &GetOrdersQuery) -> Result<OrdersPage, WhmcsError> {
        self.call(query, Repeat::Safe, OrdersPage::try_from).await
    }

    /// The order with this id, if WHMCS has it.
    pub async fn order(&self, order_id: &str) -> Result<Option<Order>, WhmcsError> {
        let query = GetOrdersQuery {
            id: Some(order_id.to_string()),
            ..GetOrdersQuery::default()
        };
        let page = self.get_orders(&query).await?;
        Ok(page.orders.into_iter().find(|o| o.id == order_id))
    }

    /// Every order of a client, following `limitstart` to the end of the list.
    pub async fn orders_for_client(&self, client_id: &str) -> Result<Vec<Order>, WhmcsError> {
        let mut list = Listing::new(ORDERS_PAGE_SIZE);
        for _ in 0..MAX_ORDER_PAGES {
            let query = GetOrdersQuery {
                userid: Some(client_id.to_string()),
                limitstart: Some(list.start),
                limitnum: Some(ORDERS_PAGE_SIZE),
                ..GetOrdersQuery::default()
            };
            let page = self.get_orders(&query).await?;
            if list.add(page.orders, page.total_results, |a, b| a.id == b.id) {
                debug!(client_id, orders = list.all.len(), "WHMCS orders listed");
                return Ok(list.all);
            }
        }
        Err(WhmcsError::Malformed {
            action: GetOrdersQuery::ACTION.to_string(),
            detail: format!(
                "the order list of client {client_id} did not end after {MAX_ORDER_PAGES} pages"
            ),
        })
    }

    /// GetClientsDetails; an unknown client is `WHMCS_CLIENT_NOT_FOUND`.
    pub async fn client_details(&self, client_id: &str) -> Result<ClientDetails, WhmcsError> {
        let request = GetClientsDetails {
            client_id: client_id.to_string(),
        };
        self.call(&request, Repeat::Safe, ClientDetails::try_from)
            .await
    }

    /// The currencies set up in WHMCS (GetCurrencies), for a client's `currency` id.
    pub async fn currencies(&self) -> Result<Vec<Currency>, WhmcsError> {
        self.call(&GetCurrencies, Repeat::Safe, |m| currencies_from(&m))
            .await
    }

    /// The payment gateways (their `module` is what AddOrder's `paymentmethod` takes).
    pub async fn payment_methods(&self) -> Result<Vec<PaymentMethod>, WhmcsError> {
        self.call(&GetPaymentMethods, Repeat::Safe, |m| {
            payment_methods_from(&m)
        })
        .await
    }

    /// Asks WHMCS's cron to cancel a service (`AddCancelRequest`): `Immediate` at its next run,
    /// `End of Billing Period` at the service's next due date. Safe to repeat: a repeat is
    /// refused as `Existing Cancellation Request Exists` ([`super::is_existing_cancel_request`]),
    /// which means the request is there (see [`Self::cancelled_packages`]); an unknown service
    /// is `Service ID Not Found` ([`super::is_service_not_found`]).
    pub async fn add_cancel_request(
        &self,
        service_id: &str,
        kind: CancelType,
        reason: &str,
    ) -> Result<CancelRequestResult, WhmcsError> {
        check_service_id(service_id)?;
        let request = AddCancelRequest {
            service_id: service_id.to_string(),
            kind,
            reason: reason.to_string(),
        };
        let result = self
            .call(&request, Repeat::Safe, CancelRequestResult::try_from)
            .await?;
        info!(
            service_id,
            kind = kind.as_str(),
            "WHMCS cancellation requested"
        );
        Ok(result)
    }

    /// One page of GetCancelledPackages.
    pub async fn get_cancelled_packages(
        &self,
        query: &GetCancelledPackages,
    ) -> Result<CancelledPackagesPage, WhmcsError> {
        self.call(query, Repeat::Safe, CancelledPackagesPage::try_from)
            .await
    }

    /// Every cancellation request (GetCancelledPackages, following `limitstart` to the end).
    pub async fn cancelled_packages(&self) -> Result<Vec<CancelledPackage>, WhmcsError> {
        let mut list = Listing::new(CANCELLED_PACKAGES_PAGE_SIZE);
        for _ in 0..MAX_CANCELLED_PACKAGES_PAGES {
            let query = GetCancelledPackages {
                limitstart: Some(list.start),
                limitnum: Some(CANCELLED_PACKAGES_PAGE_SIZE),
            };
            let page = self.get_cancelled_packages(&query).await?;
            if list.add(page.packages, page.total_results, |a, b| a.id == b.id) {
                return Ok(list.all);
            }
        }
        Err(WhmcsError::Malformed {
            action: GetCancelledPackages::ACTION.to_string(),
            detail: format!(
                "the cancellation requests did not end after {MAX_CANCELLED_PACKAGES_PAGES} pages"
            ),
        })
    }

    /// Changes a service's fields (`UpdateClientProduct`; no module command, no invoice). The
    /// service id WHMCS answered.
    pub async fn update_client_product(
        &self,
        update: &UpdateClientProduct,
    ) -> Result<String, WhmcsError> {
        update.validate()?;
        let service_id = self
            .call(update, Repeat::Safe, |m| {
                Ok(m.get("serviceid")
                    .and_then(super::de::nonzero_id)
                    .unwrap_or_else(|| update.service_id.clone()))
            })
            .await?;
        info!(service_id = %service_id, "WHMCS service updated");
        Ok(service_id)
    }

    /// The service with this id (`GetClientsProducts serviceid=`): its status, dates and
    /// amounts; `None` when WHMCS has no such service.
    pub async fn client_product(
        &self,
        service_id: &str,
    ) -> Result<Option<ClientProduct>, WhmcsError> {
        check_service_id(service_id)?;
        let query = GetClientsProducts {
            service_id: Some(service_id.to_string()),
            ..GetClientsProducts::default()
        };
        let products = self
            .call(&query, Repeat::Safe, |m| client_products_from(&m))
            .await?;
        Ok(products.into_iter().find(|p| p.id == service_id))
    }

    /// Sends `request` (with retries as `repeat` allows) and reads its answer with `read`.
    async fn call<R: WhmcsRequest, T>(
        &self,
        request: &R,
        repeat: Repeat,
        read: impl Fn(Map<String, Value>) -> Result<T, String>,
    ) -> Result<T, WhmcsError> {
        let action = R::ACTION;
        let credentials = self.credentials().await?;
        let body = encode_body(&credentials, request);
        let outcome = run_with_retries(
            &self.settings.retry,
            action,
            |attempt| {
                debug!(action, attempt, "WHMCS request");
                let body = &body;
                let read = &read;
                async move {
                    self.send(action, body).await.and_then(|answer| {
                        read(answer).map_err(|detail| WhmcsError::Malformed {
                            action: action.to_string(),
                            detail,
                        })
                    })
                }
            },
            |e: &WhmcsError| {
                let may_repeat = match repeat {
                    Repeat::Safe => e.is_retryable(),
                    Repeat::OnlyIfNotProcessed => e.certainly_not_processed(),
                };
                if may_repeat {
                    Again::After(e.retry_after())
                } else {
                    Again::No
                }
            },
        )
        .await;
        let e = match outcome {
            Ok(value) => return Ok(value),
            Err(e) => e,
        };
        if repeat == Repeat::OnlyIfNotProcessed && e.may_have_been_processed() {
            error!(action, code = %e.code(), error = %e.message(),
                "WHMCS may have processed the request but its answer was lost");
            return Err(WhmcsError::AnswerLost {
                action: action.to_string(),
                cause: Box::new(e),
            });
        }
        warn!(action, code = %e.code(), error = %e.message(), "WHMCS call failed");
        Err(e)
    }

    /// One POST; the answer's object when `result` is success.
    async fn send(&self, action: &str, body: &str) -> Result<Map<String, Value>, WhmcsError> {
        let request = self
            .http
            .post(self.endpoint.clone())
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(ACCEPT, "application/json")
            .body(body.to_string());
        let answer = http::send("whmcs", request).await.map_err(|e| match e {
            NoAnswer::Connect(m) => WhmcsError::Connect(m),
            // The status arrived: a failure reading the body is after WHMCS acted.
            NoAnswer::Lost(m) | NoAnswer::Body(m) => WhmcsError::Transport(m),
        })?;
        interpret(action, answer.status, answer.retry_after, &answer.text)
    }
}

/// `identifier`, `secret`, `accesskey` when there is one, `responsetype=json`, then the request's
/// fields. The result holds the secret: it is sent, never logged.
fn encode_body<R: WhmcsRequest>(credentials: &Credentials, request: &R) -> String {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    s.append_pair("identifier", credentials.identifier.expose())
        .append_pair("secret", credentials.secret.expose());
    if let Some(key) = credentials.accesskey.as_ref().filter(|k| !k.is_empty()) {
        s.append_pair("accesskey", key.expose());
    }
    s.append_pair("responsetype", "json");
    request.form().append_to(&mut s);
    s.finish()
}

fn excerpt(text: &str) -> String {
    let t = text.trim();
    let mut out: String = t.chars().take(300).collect();
    if out.len() < t.len() {
        out.push('…');
    }
    out
}

/// The WHMCS answer in a body: the whole body as a JSON object, or the first JSON object with a
/// `result` after something else (PHP notices and warnings printed before the JSON).
pub(crate) fn find_answer(text: &str) -> Option<Map<String, Value>> {
    let trimmed = text.trim_start_matches('\u{feff}').trim();
    if let Ok(m) = serde_json::from_str::<Map<String, Value>>(trimmed) {
        return Some(m);
    }
    text.char_indices()
        .filter(|(_, c)| *c == '{')
        .take(64)
        .find_map(|(i, _)| {
            let mut objects =
                serde_json::Deserializer::from_str(&text[i..]).into_iter::<Map<String, Value>>();
            match objects.next() {
                Some(Ok(m)) if m.contains_key("result") => Some(m),
                _ => None,
            }
        })
}

/// Turns a status and body into the answer object or the error they mean.
pub(crate) fn interpret(
    action: &str,
    status: u16,
    retry_after: Option<Duration>,
    text: &str,
) -> Result<Map<String, Value>, WhmcsError> {
    let answer = find_answer(text);
    let message = answer
        .as_ref()
        .and_then(|m| m.get("message"))
        .and_then(super::de::text);
    let result = answer
        .as_ref()
        .and_then(|m| m.get("result"))
        .and_then(Value::as_str)
        .map(|r| r.trim().to_ascii_lowercase());
    match status {
        401 | 403 => Err(WhmcsError::Authentication {
            status,
            message: message.unwrap_or_else(|| "Authentication Failed".to_string()),
        }),
        408 | 429 | 500..=599 => Err(WhmcsError::Http {
            status,
            body: excerpt(text),
            retry_after,
        }),
        200..=299 => match (answer, result.as_deref()) {
            (Some(answer), Some("success")) => {
                if let Some(w) = answer.get("warning").or_else(|| answer.get("warnings")) {
                    debug!(action, warning = %w, "WHMCS answered with a warning");
                }
                Ok(answer)
            }
            (Some(_), Some("error")) => Err(WhmcsError::from_message(
                action,
                status,
                message.unwrap_or_else(|| "unspecified error".to_string()),
            )),
            (Some(_), _) => Err(WhmcsError::Malformed {
                action: action.to_string(),
                detail: format!("no success or error result: {}", excerpt(text)),
            }),
            (None, _) => Err(WhmcsError::Malformed {
                action: action.to_string(),
                detail: format!("not a JSON answer: {}", excerpt(text)),
            }),
        },
        // Other 4xx: WHMCS's message when it gave one (`Invalid IP ...`, `Empty action request`).
        _ => match message {
            Some(message) => Err(WhmcsError::from_message(action, status, message)),
            None => Err(WhmcsError::Http {
                status,
                body: excerpt(text),
                retry_after,
            }),
        },
    }
}

/// A WHMCS list followed through its `limitstart` pages: each item kept once, and the end of the
/// list told from `totalresults` (or a short page when WHMCS gives no total). A page that adds
/// nothing (empty, or a server ignoring `limitstart`) ends the list.
struct Listing<T> {
    all: Vec<T>,
    start: u64,
    page_size: u64,
}

impl<T> Listing<T> {
    fn new(page_size: u64) -> Self {
        Listing {
            all: Vec::new(),
            start: 0,
            page_size,
        }
    }

    /// Adds one page; whether the list has ended.
    fn add(&mut self, items: Vec<T>, total_results: u64, same: impl Fn(&T, &T) -> bool) -> bool {
        let returned = items.len() as u64;
        let before = self.all.len();
        for item in items {
            if !self.all.iter().any(|known| same(known, &item)) {
                self.all.push(item);
            }
        }
        if self.all.len() == before {
            return true;
        }
        self.start += returned;
        if total_results > 0 {
            self.start >= total_results
        } else {
            returned < self.page_size
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_endpoint_is_includes_api_php_under_the_base_url() {
        let endpoint = |base: &str| {
            WhmcsClientSettings {
                base_url: Url::parse(base).unwrap(),
                secret_name: "whmcs".into(),
                timeout: Duration::from_secs(1),
                retry: RetryPolicy::immediate(1),
            }
            .endpoint()
            .map(|u| u.to_string())
        };
        assert_eq!(
            endpoint("https://billing.example.com").unwrap(),
            "https://billing.example.com/includes/api.php"
        );
        assert_eq!(
            endpoint("https://example.com/whmcs").unwrap(),
            "https://example.com/whmcs/includes/api.php"
        );
        assert_eq!(
            endpoint("https://example.com/whmcs/?x=1").unwrap(),
            "https://example.com/whmcs/includes/api.php"
        );
        assert_eq!(
            endpoint("mailto:a@example.com").unwrap_err().code(),
            "WHMCS_CONFIGURATION"
        );
    }

    #[test]
    fn result_is_read_case_insensitively() {
        let ok = interpret(
            "GetOrders",
            200,
            None,
            r#"{"result":"Success","totalresults":0}"#,
        );
        assert!(ok.is_ok());
        let err = interpret(
            "AddOrder",
            200,
            None,
            r#"{"result":"ERROR","message":"Client ID Not Found"}"#,
        )
        .unwrap_err();
        assert_eq!(err.code(), "WHMCS_CLIENT_NOT_FOUND");
    }

    #[test]
    fn php_warnings_before_the_json_are_skipped() {
        let body = "<br />\n<b>Warning</b>:  Undefined array key {x} in <b>/var/www/api.php</b> \
                    on line <b>12</b><br />\n{\"result\":\"success\",\"orderid\":\"5\"}";
        let answer = interpret("AddOrder", 200, None, body).unwrap();
        assert_eq!(answer.get("orderid"), Some(&Value::String("5".into())));
        let bom = "\u{feff}{\"result\":\"success\"}";
        assert!(interpret("GetOrders", 200, None, bom).is_ok());
    }

    #[test]
    fn a_body_without_a_whmcs_answer_is_malformed() {
        for body in [
            "",
            "<html>Maintenance</html>",
            "{\"orders\":[]}",
            "<result>success</result>",
        ] {
            let e = interpret("GetOrders", 200, None, body).unwrap_err();
            assert_eq!(e.code(), "WHMCS_UNEXPECTED_ANSWER", "{body}");
        }
    }

    #[test]
    fn statuses_map_to_their_errors() {
        let auth = interpret(
            "GetOrders",
            403,
            None,
            r#"{"result":"error","message":"Authentication Failed"}"#,
        )
        .unwrap_err();
        assert!(matches!(
            auth,
            WhmcsError::Authentication { status: 403, .. }
        ));
        let bare = interpret("GetOrders", 403, None, "Forbidden").unwrap_err();
        assert_eq!(bare.message(), "Authentication Failed");
        let ip = interpret(
            "GetOrders",
            400,
            None,
            r#"{"result":"error","message":"Invalid IP 203.0.113.9"}"#,
        )
        .unwrap_err();
        assert_eq!(ip.code(), "WHMCS_IP_NOT_ALLOWED");
        let empty = interpret(
            "GetOrders",
            400,
            None,
            r#"{"result":"error","message":"Empty action request"}"#,
        )
        .unwrap_err();
        assert_eq!(empty.code(), "WHMCS_UNKNOWN_ACTION");
        let limited =
            interpret("GetOrders", 429, Some(Duration::from_secs(3)), "slow down").unwrap_err();
        assert_eq!(limited.retry_after(), Some(Duration::from_secs(3)));
        assert!(limited.is_retryable());
        let missing = interpret("GetOrders", 404, None, "Not Found").unwrap_err();
        assert_eq!(missing.code(), "WHMCS_HTTP_ERROR");
        assert!(!missing.is_retryable());
    }
}
