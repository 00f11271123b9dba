//! WHMCS after the order (`lifecycle.md` §4): a service's cancellation request
//! (`AddCancelRequest`, `GetCancelledPackages`), its admin update (`UpdateClientProduct`), and
//! reading a service (`GetClientsProducts`). Answers are read leniently, as in `model`.

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::de;
use super::error::WhmcsError;
use super::form::Form;
use super::model::WhmcsRequest;
use super::php;

/// When WHMCS's cron carries out a cancellation request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelType {
    /// At the next cron run.
    Immediate,
    /// At the service's next due date.
    EndOfBillingPeriod,
}

impl CancelType {
    /// The `type` value: `Immediate`, `End of Billing Period`.
    pub fn as_str(self) -> &'static str {
        match self {
            CancelType::Immediate => "Immediate",
            CancelType::EndOfBillingPeriod => "End of Billing Period",
        }
    }

    /// A `type` as WHMCS writes it (any case).
    pub fn from_text(text: &str) -> Option<CancelType> {
        let text = text.trim();
        [CancelType::Immediate, CancelType::EndOfBillingPeriod]
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(text))
    }
}

/// A service's status (GetClientsProducts `status`, UpdateClientProduct `status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceStatus {
    Pending,
    Active,
    Suspended,
    Terminated,
    Cancelled,
    Fraud,
    Completed,
}

impl ServiceStatus {
    pub const ALL: [ServiceStatus; 7] = [
        ServiceStatus::Pending,
        ServiceStatus::Active,
        ServiceStatus::Suspended,
        ServiceStatus::Terminated,
        ServiceStatus::Cancelled,
        ServiceStatus::Fraud,
        ServiceStatus::Completed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ServiceStatus::Pending => "Pending",
            ServiceStatus::Active => "Active",
            ServiceStatus::Suspended => "Suspended",
            ServiceStatus::Terminated => "Terminated",
            ServiceStatus::Cancelled => "Cancelled",
            ServiceStatus::Fraud => "Fraud",
            ServiceStatus::Completed => "Completed",
        }
    }

    /// A status as WHMCS writes it (any case).
    pub fn from_text(text: &str) -> Option<ServiceStatus> {
        let text = text.trim();
        ServiceStatus::ALL
            .into_iter()
            .find(|s| s.as_str().eq_ignore_ascii_case(text))
    }

    /// Cancelled or Terminated: the service has ended.
    pub fn has_ended(self) -> bool {
        matches!(self, ServiceStatus::Cancelled | ServiceStatus::Terminated)
    }
}

fn is_id(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// Refuses a service id WHMCS would not read as one.
pub(crate) fn check_service_id(service_id: &str) -> Result<(), WhmcsError> {
    if is_id(service_id) {
        Ok(())
    } else {
        Err(WhmcsError::InvalidRequest(format!(
            "service id {service_id:?} is not a WHMCS id"
        )))
    }
}

/// Whether `e` is WHMCS's `Existing Cancellation Request Exists`: the service has a request
/// already (GetCancelledPackages shows it), so a repeated AddCancelRequest has nothing to do.
pub fn is_existing_cancel_request(e: &WhmcsError) -> bool {
    matches!(e, WhmcsError::Api { message, .. }
        if message.to_lowercase().contains("existing cancellation request"))
}

/// Whether `e` is WHMCS's `Service ID Not Found`.
pub fn is_service_not_found(e: &WhmcsError) -> bool {
    matches!(e, WhmcsError::Api { message, .. }
        if message.trim().eq_ignore_ascii_case("service id not found"))
}

/// `AddCancelRequest`: asks WHMCS's cron to cancel a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddCancelRequest {
    pub service_id: String,
    pub kind: CancelType,
    /// Sent when not blank.
    pub reason: String,
}

impl WhmcsRequest for AddCancelRequest {
    const ACTION: &'static str = "AddCancelRequest";

    fn params(&self) -> Form {
        let mut f = Form::new();
        f.push("serviceid", self.service_id.as_str())
            .push("type", self.kind.as_str())
            .push_opt(
                "reason",
                Some(self.reason.as_str()).filter(|r| !r.trim().is_empty()),
            );
        f
    }
}

/// What AddCancelRequest answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CancelRequestResult {
    pub service_id: String,
    /// The service's client, when WHMCS says.
    pub user_id: Option<String>,
}

impl TryFrom<Map<String, Value>> for CancelRequestResult {
    type Error = String;

    fn try_from(m: Map<String, Value>) -> Result<Self, String> {
        Ok(CancelRequestResult {
            service_id: m
                .get("serviceid")
                .and_then(de::nonzero_id)
                .ok_or("the answer has no serviceid")?,
            user_id: m.get("userid").and_then(de::nonzero_id),
        })
    }
}

/// `GetCancelledPackages` paging.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GetCancelledPackages {
    pub limitstart: Option<u64>,
    pub limitnum: Option<u64>,
}

impl WhmcsRequest for GetCancelledPackages {
    const ACTION: &'static str = "GetCancelledPackages";

    fn params(&self) -> Form {
        let mut f = Form::new();
        f.push_opt("limitstart", self.limitstart.map(|n| n.to_string()))
            .push_opt("limitnum", self.limitnum.map(|n| n.to_string()));
        f
    }
}

/// A cancellation request as GetCancelledPackages lists it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(default)]
pub struct CancelledPackage {
    #[serde(deserialize_with = "de::de_id")]
    pub id: String,
    #[serde(deserialize_with = "de::de_opt_text")]
    pub date: Option<String>,
    /// The service.
    #[serde(deserialize_with = "de::de_id")]
    pub relid: String,
    #[serde(deserialize_with = "de::de_opt_text")]
    pub reason: Option<String>,
    /// `Immediate`, `End of Billing Period` (see [`Self::cancel_type`]).
    #[serde(rename = "type", deserialize_with = "de::de_opt_text")]
    pub kind: Option<String>,
    #[serde(deserialize_with = "de::de_opt_text")]
    pub created_at: Option<String>,
    #[serde(deserialize_with = "de::de_opt_text")]
    pub updated_at: Option<String>,
}

impl CancelledPackage {
    pub fn cancel_type(&self) -> Option<CancelType> {
        self.kind.as_deref().and_then(CancelType::from_text)
    }
}

/// One page of GetCancelledPackages.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CancelledPackagesPage {
    pub total_results: u64,
    pub start_number: u64,
    pub num_returned: u64,
    pub packages: Vec<CancelledPackage>,
}

/// The records of a list whose nesting is not confirmed, given flattened as the documentation
/// shows them: top-level keys `<prefix>[0][id]`, `<prefix>[0][relid]`, ... (by index).
fn flattened(m: &Map<String, Value>, prefix: &str) -> Vec<Value> {
    let mut records: std::collections::BTreeMap<u64, Map<String, Value>> = Default::default();
    for (key, value) in m {
        let Some(rest) = key.strip_prefix(prefix).and_then(|r| r.strip_prefix('[')) else {
            continue;
        };
        let Some((index, field)) = rest.split_once("][") else {
            continue;
        };
        let (Ok(index), Some(field)) = (index.parse::<u64>(), field.strip_suffix(']')) else {
            continue;
        };
        records
            .entry(index)
            .or_default()
            .insert(field.to_string(), value.clone());
    }
    records.into_values().map(Value::Object).collect()
}

impl TryFrom<Map<String, Value>> for CancelledPackagesPage {
    type Error = String;

    /// `packages: {"package": [...]}` (or one object), a bare list, any empty shape, or the
    /// flattened keys `packages[package][0][id]` the documentation shows.
    fn try_from(m: Map<String, Value>) -> Result<Self, String> {
        let mut packages: Vec<CancelledPackage> =
            de::nested_list(m.get("packages"), "package").map_err(|e| format!("packages: {e}"))?;
        if packages.is_empty() {
            packages = flattened(&m, "packages[package]")
                .into_iter()
                .map(serde_json::from_value)
                .collect::<Result<_, _>>()
                .map_err(|e| format!("packages: {e}"))?;
        }
        Ok(CancelledPackagesPage {
            total_results: de::count(m.get("totalresults")),
            start_number: de::count(m.get("startnumber")),
            num_returned: m
                .get("numreturned")
                .map(|v| de::count(Some(v)))
                .unwrap_or(packages.len() as u64),
            packages,
        })
    }
}

/// `UpdateClientProduct`: changes a service's fields directly (no invoice, and no module
/// command for `status`). Only what is set is sent.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct UpdateClientProduct {
    pub service_id: String,
    pub status: Option<ServiceStatus>,
    pub next_due_date: Option<NaiveDate>,
    pub termination_date: Option<NaiveDate>,
    pub recurring_amount: Option<Decimal>,
    pub notes: Option<String>,
    /// Configurable-option id → option-value id, or → `{"optionid": y, "qty": z}` (sent as
    /// base64 of PHP serialize).
    pub config_options: Option<Map<String, Value>>,
}

impl UpdateClientProduct {
    /// An update of `service_id` that changes nothing yet.
    pub fn new(service_id: impl Into<String>) -> Self {
        UpdateClientProduct {
            service_id: service_id.into(),
            ..UpdateClientProduct::default()
        }
    }

    /// Refuses what WHMCS would misread: a service id that is not one, nothing to change, a
    /// negative amount.
    pub fn validate(&self) -> Result<(), WhmcsError> {
        check_service_id(&self.service_id)?;
        let nothing = self.status.is_none()
            && self.next_due_date.is_none()
            && self.termination_date.is_none()
            && self.recurring_amount.is_none()
            && self.notes.is_none()
            && self.config_options.as_ref().is_none_or(Map::is_empty);
        if nothing {
            return Err(WhmcsError::InvalidRequest(format!(
                "UpdateClientProduct of service {} changes nothing",
                self.service_id
            )));
        }
        if self.recurring_amount.is_some_and(|a| a.is_sign_negative()) {
            return Err(WhmcsError::InvalidRequest(
                "negative recurring amount".into(),
            ));
        }
        Ok(())
    }
}

impl WhmcsRequest for UpdateClientProduct {
    const ACTION: &'static str = "UpdateClientProduct";

    fn params(&self) -> Form {
        let date = |d: Option<NaiveDate>| d.map(|d| d.format("%Y-%m-%d").to_string());
        let mut f = Form::new();
        f.push("serviceid", self.service_id.as_str())
            .push_opt("status", self.status.map(ServiceStatus::as_str))
            .push_opt("nextduedate", date(self.next_due_date))
            .push_opt("terminationdate", date(self.termination_date))
            .push_opt(
                "recurringamount",
                self.recurring_amount.map(|a| a.to_string()),
            )
            .push_opt("notes", self.notes.as_deref())
            .push_opt(
                "configoptions",
                self.config_options
                    .as_ref()
                    .filter(|m| !m.is_empty())
                    .map(php::encode_map),
            );
        f
    }
}

/// `GetClientsProducts` for one service (or a client's services).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GetClientsProducts {
    pub service_id: Option<String>,
    pub client_id: Option<String>,
    pub limitstart: Option<u64>,
    pub limitnum: Option<u64>,
}

impl WhmcsRequest for GetClientsProducts {
    const ACTION: &'static str = "GetClientsProducts";

    fn params(&self) -> Form {
        let mut f = Form::new();
        f.push_opt("serviceid", self.service_id.as_deref())
            .push_opt("clientid", self.client_id.as_deref())
            .push_opt("limitstart", self.limitstart.map(|n| n.to_string()))
            .push_opt("limitnum", self.limitnum.map(|n| n.to_string()));
        f
    }
}

/// A service as GetClientsProducts lists it (the fields dealbridge uses).
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(default)]
pub struct ClientProduct {
    #[serde(deserialize_with = "de::de_id")]
    pub id: String,
    #[serde(rename = "clientid", deserialize_with = "de::de_id")]
    pub client_id: String,
    #[serde(rename = "orderid", deserialize_with = "de::de_nonzero_id")]
    pub order_id: Option<String>,
    #[serde(deserialize_with = "de::de_id")]
    pub pid: String,
    #[serde(deserialize_with = "de::de_opt_text")]
    pub name: Option<String>,
    #[serde(deserialize_with = "de::de_opt_text")]
    pub domain: Option<String>,
    /// `Y-m-d`.
    #[serde(deserialize_with = "de_date")]
    pub regdate: Option<NaiveDate>,
    /// `Y-m-d`.
    #[serde(rename = "nextduedate", deserialize_with = "de_date")]
    pub next_due_date: Option<NaiveDate>,
    /// `Y-m-d`; `None` for WHMCS's empty date `0000-00-00` or when absent.
    #[serde(rename = "terminationdate", deserialize_with = "de_date")]
    pub termination_date: Option<NaiveDate>,
    /// A display label (`Monthly`).
    #[serde(rename = "billingcycle", deserialize_with = "de::de_opt_text")]
    pub billing_cycle: Option<String>,
    #[serde(rename = "recurringamount", deserialize_with = "de::de_decimal")]
    pub recurring_amount: Option<Decimal>,
    /// Pending, Active, Suspended, Terminated, Cancelled, Fraud, Completed (see
    /// [`Self::service_status`]).
    #[serde(deserialize_with = "de::de_text")]
    pub status: String,
    #[serde(deserialize_with = "de::de_opt_text")]
    pub notes: Option<String>,
}

impl ClientProduct {
    pub fn service_status(&self) -> Option<ServiceStatus> {
        ServiceStatus::from_text(&self.status)
    }
}

/// A `Y-m-d` date; `None` for `0000-00-00`, blanks, `null` and anything unreadable.
fn de_date<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<NaiveDate>, D::Error> {
    Ok(de::text(&Value::deserialize(d)?)
        .and_then(|t| NaiveDate::parse_from_str(t.trim(), "%Y-%m-%d").ok()))
}

/// The services in a GetClientsProducts answer.
pub fn client_products_from(m: &Map<String, Value>) -> Result<Vec<ClientProduct>, String> {
    de::nested_list(m.get("products"), "product").map_err(|e| format!("products: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        let Value::Object(m) = v else { unreachable!() };
        m
    }

    #[test]
    fn requests_become_their_documented_forms() {
        let add = AddCancelRequest {
            service_id: "101".into(),
            kind: CancelType::EndOfBillingPeriod,
            reason: "Case 500: moving".into(),
        };
        assert_eq!(
            add.form().encode(),
            "action=AddCancelRequest&serviceid=101&type=End+of+Billing+Period&reason=Case+500%3A+moving"
        );
        let bare = AddCancelRequest {
            reason: " ".into(),
            kind: CancelType::Immediate,
            ..add
        };
        assert_eq!(
            bare.form().encode(),
            "action=AddCancelRequest&serviceid=101&type=Immediate"
        );
        let mut update = UpdateClientProduct::new("101");
        update.status = Some(ServiceStatus::Cancelled);
        update.next_due_date = NaiveDate::from_ymd_opt(2026, 4, 1);
        update.recurring_amount = Some(Decimal::new(1050, 2));
        update.config_options = Some(map(json!({"12": {"optionid": 45, "qty": 3}})));
        update.validate().unwrap();
        let form = update.form();
        assert_eq!(form.get("status"), Some("Cancelled"));
        assert_eq!(form.get("nextduedate"), Some("2026-04-01"));
        assert_eq!(form.get("recurringamount"), Some("10.50"));
        assert_eq!(form.get("terminationdate"), None);
        assert!(form.get("configoptions").is_some_and(|c| !c.is_empty()));
        assert_eq!(
            UpdateClientProduct::new("101")
                .validate()
                .unwrap_err()
                .code(),
            "WHMCS_INVALID_REQUEST"
        );
        let mut bad = UpdateClientProduct::new("10a");
        bad.notes = Some("x".into());
        assert!(bad.validate().is_err());
    }

    #[test]
    fn cancelled_packages_are_read_nested_bare_single_empty_or_flattened() {
        let page = |v: Value| CancelledPackagesPage::try_from(map(v)).unwrap();
        let nested = page(
            json!({"result": "success", "totalresults": "2", "startnumber": 0,
            "numreturned": 2, "packages": {"package": [
                {"id": "1", "date": "2026-03-10 12:00:00", "relid": "101", "reason": "x",
                 "type": "Immediate", "created_at": "2026-03-10 12:00:00", "updated_at": null},
                {"id": 2, "relid": 102, "type": "End of Billing Period"}
            ]}}),
        );
        assert_eq!(nested.total_results, 2);
        assert_eq!(nested.packages[0].relid, "101");
        assert_eq!(
            nested.packages[0].cancel_type(),
            Some(CancelType::Immediate)
        );
        assert_eq!(nested.packages[0].updated_at, None);
        assert_eq!(
            nested.packages[1].cancel_type(),
            Some(CancelType::EndOfBillingPeriod)
        );
        let single = page(json!({"packages": {"package": {"id": "3", "relid": "7"}}}));
        assert_eq!(single.packages[0].id, "3");
        let bare = page(json!({"packages": [{"id": "4", "relid": "8"}]}));
        assert_eq!(bare.packages[0].relid, "8");
        for empty in [json!(""), json!([]), json!({"package": []}), json!(null)] {
            assert!(
                page(json!({"totalresults": 0, "packages": empty}))
                    .packages
                    .is_empty()
            );
        }
        let flat = page(json!({"result": "success", "totalresults": 2,
            "packages[package][1][id]": "6", "packages[package][1][relid]": "11",
            "packages[package][0][id]": "5", "packages[package][0][relid]": "10",
            "packages[package][0][type]": "Immediate"}));
        assert_eq!(flat.packages.len(), 2);
        assert_eq!(
            (
                flat.packages[0].id.as_str(),
                flat.packages[0].relid.as_str()
            ),
            ("5", "10")
        );
        assert_eq!(flat.packages[1].relid, "11");
        assert_eq!(flat.num_returned, 2);
    }

    #[test]
    fn client_products_are_read_with_their_dates_and_status() {
        let products = client_products_from(&map(json!({"products": {"product": [
            {"id": "101", "clientid": "1", "orderid": "5", "pid": 185, "regdate": "2026-03-10",
             "nextduedate": "2026-04-10", "terminationdate": "0000-00-00", "status": "Active",
             "recurringamount": "10.00", "billingcycle": "Monthly", "notes": ""},
            {"id": 102, "status": "cancelled", "terminationdate": "2026-04-11"}
        ]}})))
        .unwrap();
        assert_eq!(products[0].id, "101");
        assert_eq!(products[0].pid, "185");
        assert_eq!(
            products[0].next_due_date,
            NaiveDate::from_ymd_opt(2026, 4, 10)
        );
        assert_eq!(products[0].termination_date, None);
        assert_eq!(products[0].service_status(), Some(ServiceStatus::Active));
        assert_eq!(products[0].recurring_amount, Some(Decimal::new(1000, 2)));
        assert_eq!(products[0].notes, None);
        assert_eq!(products[1].service_status(), Some(ServiceStatus::Cancelled));
        assert!(ServiceStatus::Cancelled.has_ended());
        assert_eq!(
            products[1].termination_date,
            NaiveDate::from_ymd_opt(2026, 4, 11)
        );
        assert!(
            client_products_from(&map(json!({"totalresults": 0})))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn refusals_are_recognised_by_their_documented_texts() {
        let api = |m: &str| WhmcsError::from_message("AddCancelRequest", 200, m);
        assert!(is_existing_cancel_request(&api(
            "Existing Cancellation Request Exists"
        )));
        assert!(!is_existing_cancel_request(&api("Service ID Not Found")));
        assert!(is_service_not_found(&api("Service ID Not Found")));
        assert!(!api("Service ID Not Found").is_retryable());
        assert!(CancelRequestResult::try_from(map(json!({"result": "success"}))).is_err());
        let ok =
            CancelRequestResult::try_from(map(json!({"serviceid": 1, "userid": "2"}))).unwrap();
        assert_eq!(
            (ok.service_id.as_str(), ok.user_id.as_deref()),
            ("1", Some("2"))
        );
    }
}
