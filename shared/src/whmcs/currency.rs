//! The WHMCS client must bill in the Order's currency: WHMCS fixes a client's currency when the
//! client is created (`AddClient currency`) and bills every order of the client in it, so an
//! Order in another currency is refused (`WHMCS_CURRENCY_MISMATCH`) before AddOrder.
//!
//! The client's currency comes from GetClientsDetails: its `currency_code`, or, when WHMCS leaves
//! that out, its `currency` id looked up in GetCurrencies. A client whose currency neither tells
//! is refused too (`WHMCS_UNEXPECTED_ANSWER`): the check never passes without knowing. An Order
//! without a currency (an org without multi-currency) is not checked and WHMCS is not asked.
//!
//! [`check_currency`] is the one check, run by the provisioning step and by the dry run.

use serde::Serialize;

use super::error::WhmcsError;
use super::model::{ClientDetails, Currency, GetClientsDetails, GetCurrencies, WhmcsRequest};
use super::prepare::OrderProblem;
use crate::codes::ErrorCode;
use crate::ports::Whmcs;
use crate::salesforce::SfId;
use crate::snapshot::DealSnapshot;

/// A WHMCS client's currency, as WHMCS told it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientCurrency {
    pub client_id: String,
    /// The ISO code (`JPY`).
    pub code: String,
    /// The WHMCS currency id, when GetClientsDetails gave it.
    pub currency_id: Option<String>,
    /// The code came from GetCurrencies: GetClientsDetails gave only the id.
    pub from_currencies: bool,
}

/// What the check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CurrencyCheck {
    /// The client bills in the Order's currency.
    Same(ClientCurrency),
    /// The Order has no currency (an org without multi-currency): nothing was compared and WHMCS
    /// was not asked.
    OrderHasNone,
    /// The client bills in another currency: the Order is refused.
    Mismatch(OrderProblem),
}

/// The Order's `CurrencyIsoCode`, trimmed; `None` when it has none (or a blank one), or when the
/// Order is not in the deal.
pub fn order_currency(snapshot: &DealSnapshot, order_id: &SfId) -> Option<String> {
    snapshot
        .orders
        .iter()
        .find(|o| &o.id == order_id)
        .and_then(|o| o.currency.as_deref())
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(str::to_string)
}

/// The client's currency from its details, the code looked up by id in `currencies` when the
/// details have none. `Err`: what is missing, for [`WhmcsError::Malformed`].
pub fn resolve(
    details: &ClientDetails,
    currencies: Option<&[Currency]>,
) -> Result<ClientCurrency, (&'static str, String)> {
    let client_id = details.id.clone();
    if let Some(code) = details.currency_code.as_deref().map(str::trim)
        && !code.is_empty()
    {
        return Ok(ClientCurrency {
            client_id,
            code: code.to_string(),
            currency_id: details.currency_id.clone(),
            from_currencies: false,
        });
    }
    let Some(id) = details.currency_id.clone() else {
        return Err((
            GetClientsDetails::ACTION,
            format!(
                "client {client_id} has neither a currency_code nor a currency id, so its currency cannot be compared with the Order's"
            ),
        ));
    };
    let listed = currencies.unwrap_or_default();
    match listed
        .iter()
        .find(|c| c.id.trim() == id && !c.code.trim().is_empty())
    {
        Some(currency) => Ok(ClientCurrency {
            client_id,
            code: currency.code.trim().to_string(),
            currency_id: Some(id),
            from_currencies: true,
        }),
        None => Err((
            GetCurrencies::ACTION,
            format!(
                "client {client_id} has currency id {id}, which is not among the currencies WHMCS lists ({}), so its currency cannot be compared with the Order's",
                if listed.is_empty() {
                    "none".to_string()
                } else {
                    listed
                        .iter()
                        .map(|c| format!("{} {}", c.id, c.code))
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            ),
        )),
    }
}

/// The Order's currency against the client's (ISO codes, any case).
pub fn compare(
    order_id: &SfId,
    order_currency: &str,
    client: &ClientCurrency,
) -> Result<(), OrderProblem> {
    if order_currency
        .trim()
        .eq_ignore_ascii_case(client.code.trim())
    {
        return Ok(());
    }
    Err(OrderProblem {
        code: ErrorCode::WhmcsCurrencyMismatch,
        message: format!(
            "Order {order_id} is in {}, but WHMCS client {} bills in {}; a WHMCS client's currency is fixed when the client is created",
            order_currency.trim(),
            client.client_id,
            client.code
        ),
    })
}

/// Reads the client's currency: GetClientsDetails, then GetCurrencies only when the details give
/// an id without a code.
pub async fn client_currency(
    whmcs: &dyn Whmcs,
    client_id: &str,
) -> Result<ClientCurrency, WhmcsError> {
    let details = whmcs.client_details(client_id).await?;
    let currencies = if details
        .currency_code
        .as_deref()
        .is_none_or(|c| c.trim().is_empty())
        && details.currency_id.is_some()
    {
        Some(whmcs.currencies().await?)
    } else {
        None
    };
    resolve(&details, currencies.as_deref()).map_err(|(action, detail)| WhmcsError::Malformed {
        action: action.to_string(),
        detail,
    })
}

/// The check before AddOrder: an Order without a currency passes unasked; otherwise the client's
/// currency is read and compared. `Err`: WHMCS could not be read, or did not tell the currency.
pub async fn check_currency(
    whmcs: &dyn Whmcs,
    order_id: &SfId,
    order_currency: Option<&str>,
    client_id: &str,
) -> Result<CurrencyCheck, WhmcsError> {
    let Some(currency) = order_currency.map(str::trim).filter(|c| !c.is_empty()) else {
        return Ok(CurrencyCheck::OrderHasNone);
    };
    let client = client_currency(whmcs, client_id).await?;
    Ok(match compare(order_id, currency, &client) {
        Ok(()) => CurrencyCheck::Same(client),
        Err(problem) => CurrencyCheck::Mismatch(problem),
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use async_trait::async_trait;
    use serde_json::json;

    use super::*;
    use crate::whmcs::model::{AddOrder, AddOrderResult, GetOrdersQuery, Order, OrdersPage};

    fn order_id() -> SfId {
        SfId::parse("801A000010khO8J").unwrap()
    }

    fn details(value: serde_json::Value) -> ClientDetails {
        serde_json::from_value(json!({"result": "success", "client": value})).unwrap()
    }

    fn currencies() -> Vec<Currency> {
        serde_json::from_value(json!([
            {"id": "1", "code": "JPY"},
            {"id": "2", "code": "USD"}
        ]))
        .unwrap()
    }

    fn client(code: &str) -> ClientCurrency {
        ClientCurrency {
            client_id: "4".into(),
            code: code.into(),
            currency_id: None,
            from_currencies: false,
        }
    }

    #[test]
    fn the_same_currency_in_any_case_passes() {
        assert!(compare(&order_id(), "JPY", &client("JPY")).is_ok());
        assert!(compare(&order_id(), " jpy", &client("JPY ")).is_ok());
    }

    #[test]
    fn another_currency_is_a_mismatch_naming_both_and_the_client() {
        let problem = compare(&order_id(), "USD", &client("JPY")).unwrap_err();
        assert_eq!(problem.code, ErrorCode::WhmcsCurrencyMismatch);
        assert_eq!(
            problem.to_string(),
            "WHMCS_CURRENCY_MISMATCH: Order 801A000010khO8JIAU is in USD, but WHMCS client 4 bills in JPY; a WHMCS client's currency is fixed when the client is created"
        );
        assert!(problem.to_string().len() < 255, "fits Activation_Error__c");
    }

    #[test]
    fn the_code_comes_from_the_details_else_from_the_currencies_by_id() {
        let coded = resolve(
            &details(json!({"id": 4, "currency": 2, "currency_code": "USD"})),
            None,
        )
        .unwrap();
        assert_eq!(coded.code, "USD");
        assert_eq!(coded.currency_id.as_deref(), Some("2"));
        assert!(!coded.from_currencies);
        let listed = currencies();
        let looked_up = resolve(&details(json!({"id": 4, "currency": 2})), Some(&listed)).unwrap();
        assert_eq!(looked_up.code, "USD");
        assert!(looked_up.from_currencies);
    }

    #[test]
    fn a_currency_that_cannot_be_told_is_an_error_never_a_pass() {
        let (action, detail) = resolve(&details(json!({"id": 4})), None).unwrap_err();
        assert_eq!(action, "GetClientsDetails");
        assert!(detail.contains("client 4 has neither"), "{detail}");
        let listed = currencies();
        let (action, detail) =
            resolve(&details(json!({"id": 4, "currency": 9})), Some(&listed)).unwrap_err();
        assert_eq!(action, "GetCurrencies");
        assert!(detail.contains("currency id 9"), "{detail}");
        assert!(detail.contains("1 JPY, 2 USD"), "{detail}");
    }

    /// WHMCS as the check reads it: the details it answers, the currencies, and what was asked.
    struct Reads {
        details: Result<serde_json::Value, WhmcsError>,
        currencies: Vec<Currency>,
        asked: Mutex<Vec<String>>,
    }

    impl Reads {
        fn new(details: serde_json::Value) -> Reads {
            Reads {
                details: Ok(details),
                currencies: currencies(),
                asked: Mutex::new(Vec::new()),
            }
        }

        fn asked(&self) -> Vec<String> {
            self.asked.lock().unwrap().clone()
        }
    }

    #[async_trait]
    impl Whmcs for Reads {
        async fn add_order(&self, _: &AddOrder) -> Result<AddOrderResult, WhmcsError> {
            unreachable!("the check never writes")
        }
        async fn accept_order(
            &self,
            _: &str,
            _: Option<bool>,
            _: Option<bool>,
        ) -> Result<(), WhmcsError> {
            unreachable!("the check never writes")
        }
        async fn get_orders(&self, _: &GetOrdersQuery) -> Result<OrdersPage, WhmcsError> {
            unreachable!()
        }
        async fn order(&self, _: &str) -> Result<Option<Order>, WhmcsError> {
            unreachable!()
        }
        async fn orders_for_client(&self, _: &str) -> Result<Vec<Order>, WhmcsError> {
            unreachable!()
        }
        async fn client_details(&self, client_id: &str) -> Result<ClientDetails, WhmcsError> {
            self.asked
                .lock()
                .unwrap()
                .push(format!("GetClientsDetails {client_id}"));
            match &self.details {
                Ok(v) => Ok(details(v.clone())),
                Err(e) => Err(WhmcsError::Api {
                    action: "GetClientsDetails".into(),
                    message: e.message(),
                }),
            }
        }
        async fn currencies(&self) -> Result<Vec<Currency>, WhmcsError> {
            self.asked.lock().unwrap().push("GetCurrencies".into());
            Ok(self.currencies.clone())
        }
    }

    #[tokio::test]
    async fn an_order_without_a_currency_is_not_checked_and_whmcs_is_not_asked() {
        let whmcs = Reads::new(json!({"id": 4, "currency_code": "USD"}));
        for none in [None, Some(""), Some("  ")] {
            let check = check_currency(&whmcs, &order_id(), none, "4")
                .await
                .unwrap();
            assert_eq!(check, CurrencyCheck::OrderHasNone);
        }
        assert!(whmcs.asked().is_empty());
    }

    #[tokio::test]
    async fn the_details_code_is_compared_without_asking_for_the_currencies() {
        let whmcs = Reads::new(json!({"id": 4, "currency": 2, "currency_code": "USD"}));
        let same = check_currency(&whmcs, &order_id(), Some("USD"), "4")
            .await
            .unwrap();
        assert!(matches!(same, CurrencyCheck::Same(c) if c.code == "USD"));
        let other = check_currency(&whmcs, &order_id(), Some("JPY"), "4")
            .await
            .unwrap();
        let CurrencyCheck::Mismatch(problem) = other else {
            panic!("{other:?}")
        };
        assert!(
            problem
                .message
                .contains("is in JPY, but WHMCS client 4 bills in USD"),
            "{problem}"
        );
        assert_eq!(
            whmcs.asked(),
            ["GetClientsDetails 4", "GetClientsDetails 4"]
        );
    }

    #[tokio::test]
    async fn without_a_code_the_id_is_looked_up_in_get_currencies() {
        let whmcs = Reads::new(json!({"id": 4, "currency": "2"}));
        let check = check_currency(&whmcs, &order_id(), Some("JPY"), "4")
            .await
            .unwrap();
        assert!(matches!(check, CurrencyCheck::Mismatch(_)), "{check:?}");
        assert_eq!(whmcs.asked(), ["GetClientsDetails 4", "GetCurrencies"]);
    }

    #[tokio::test]
    async fn an_untold_currency_or_an_unknown_client_is_a_permanent_error() {
        let whmcs = Reads::new(json!({"id": 4}));
        let e = check_currency(&whmcs, &order_id(), Some("JPY"), "4")
            .await
            .unwrap_err();
        assert_eq!(e.code(), ErrorCode::WhmcsUnexpectedAnswer);
        assert!(!e.is_retryable() && !e.is_ambiguous());
        assert_eq!(whmcs.asked(), ["GetClientsDetails 4"], "no id to look up");
        let mut unknown = Reads::new(json!({}));
        unknown.details = Err(WhmcsError::InvalidRequest("Client Not Found".into()));
        let e = check_currency(&unknown, &order_id(), Some("JPY"), "999")
            .await
            .unwrap_err();
        assert_eq!(e.code(), ErrorCode::WhmcsClientNotFound);
    }
}
