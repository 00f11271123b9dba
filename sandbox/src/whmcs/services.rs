//! A service after its order (`lifecycle.md` §4): cancellation requests (AddCancelRequest,
//! GetCancelledPackages), which the daily cron carries out (`Store::run_cron`), and the admin
//! update of a service (UpdateClientProduct).
//!
//! As the other list calls, GetCancelledPackages gives record values as strings (database rows)
//! and its counts as integers.

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde_json::{Value, json};

use super::WhmcsSettings;
use super::http::{Reply, container};
use super::model::{CancelType, ServiceStatus};
use super::orders::window;
use super::params::{Params, php_truthy};
use super::php::decode_field;
use super::state::Store;

const SERVICE_NOT_FOUND: &str = "Service ID Not Found";
const EXISTING_REQUEST: &str = "Existing Cancellation Request Exists";
/// ASSUMED wording (the documentation names no error for an unknown type).
const INVALID_TYPE: &str =
    "Invalid Cancellation Type. Valid options include Immediate, End of Billing Period";

/// The service `serviceid` names (PHP's `(int)` cast; 0 or unknown: none).
fn service_id(store: &Store, params: &Params) -> Option<u64> {
    u64::try_from(params.int("serviceid"))
        .ok()
        .filter(|id| store.services.contains_key(id))
}

/// AddCancelRequest: `serviceid` (required), `type` (`Immediate` | `End of Billing Period`),
/// `reason` → `{"result":"success","serviceid":"..","userid":".."}` (DOC; ids as strings, as
/// the documentation's example).
///
/// - DOC errors: `Service ID Not Found` (also for a missing `serviceid`), `Existing Cancellation
///   Request Exists` (the service has a request already, carried out or not).
/// - ASSUMED: a missing or blank `type` is `End of Billing Period` (the documentation marks
///   `type` optional); one that is neither value (any case) is refused as `Invalid Cancellation
///   Type. Valid options include Immediate, End of Billing Period`. A missing `reason` is empty.
/// - ASSUMED: a service in any status may get a request (one already Cancelled is left as it is
///   by the cron).
pub(super) fn add_cancel_request(store: &mut Store, params: &Params) -> Reply {
    let Some(id) = service_id(store, params) else {
        return Reply::error(SERVICE_NOT_FOUND);
    };
    if store.cancel_requests.values().any(|r| r.service_id == id) {
        return Reply::error(EXISTING_REQUEST);
    }
    let kind = match params.scalar("type").map(str::trim) {
        None | Some("") => CancelType::EndOfBillingPeriod,
        Some(text) => match CancelType::from_param(text) {
            Some(kind) => kind,
            None => return Reply::error(INVALID_TYPE),
        },
    };
    let reason = params.scalar("reason").unwrap_or_default();
    store.add_cancel_request(id, kind, reason);
    let user_id = store.services.get(&id).map_or(0, |s| s.client_id);
    Reply::success(json!({
        "serviceid": id.to_string(),
        "userid": user_id.to_string(),
    }))
}

/// GetCancelledPackages: every cancellation request, oldest first, `limitstart` / `limitnum`
/// (default 25) → `totalresults`, `startnumber`, `numreturned`, `packages`.
///
/// ASSUMED shape (the documentation shows the nesting only flattened,
/// `packages[package][0][id]`): nested as the other lists, `packages: {"package": [{id, date,
/// relid, reason, type, created_at, updated_at}]}`, values as strings; an empty list follows
/// [`WhmcsSettings::empty_lists`]. Requests the cron carried out are still listed.
pub(super) fn get_cancelled_packages(
    settings: &WhmcsSettings,
    store: &Store,
    params: &Params,
) -> Reply {
    let (start, limit, start_echo) = window(params);
    let page: Vec<Value> = store
        .cancel_requests
        .values()
        .skip(start)
        .take(limit)
        .map(|r| {
            json!({
                "id": r.id.to_string(),
                "date": r.date,
                "relid": r.service_id.to_string(),
                "reason": r.reason,
                "type": r.kind.as_str(),
                "created_at": r.created_at,
                "updated_at": r.updated_at,
            })
        })
        .collect();
    let mut reply = Reply::success(json!({
        "totalresults": store.cancel_requests.len(),
        "startnumber": start_echo,
        "numreturned": page.len(),
    }));
    if let Some(packages) = container(settings.empty_lists, "package", page) {
        reply.body.insert("packages".into(), packages);
    }
    reply
}

/// A `Y-m-d` date parameter, kept as sent (trimmed).
fn date(text: &str) -> Option<String> {
    let text = text.trim();
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .map(|_| text.to_string())
}

/// A service status by its name (ASSUMED lenient: any case).
fn status(text: &str) -> Option<ServiceStatus> {
    [
        ServiceStatus::Pending,
        ServiceStatus::Active,
        ServiceStatus::Suspended,
        ServiceStatus::Terminated,
        ServiceStatus::Cancelled,
        ServiceStatus::Fraud,
        ServiceStatus::Completed,
    ]
    .into_iter()
    .find(|s| s.as_str().eq_ignore_ascii_case(text.trim()))
}

/// UpdateClientProduct: `serviceid` (required) and the fields to change →
/// `{"result":"success","serviceid":".."}` (DOC; the id as a string, as the example);
/// `Service ID Not Found` (DOC) for a missing or unknown service.
///
/// Changes, each only when sent (as WHMCS, a parameter that is absent leaves its field alone):
/// - `status`: one of Pending, Active, Suspended, Terminated, Cancelled, Fraud, Completed.
///   ASSUMED: it runs no module command (no provisioning happens; a cancellation request is not
///   marked processed), and the termination date is not touched.
/// - `regdate`, `nextduedate`, `terminationdate` (`Y-m-d`), `recurringamount`,
///   `firstpaymentamount`, `notes`, `domain`.
/// - `configoptions`: base64 of a PHP-serialized `{optid: valueid}` or `{optid: {"optionid":
///   y, "qty": z}}`; its options replace the service's options of the same ids, the others are
///   kept (ASSUMED). A value that does not decode is ignored (recorded on the service), as
///   AddOrder ignores one.
///
/// ASSUMED (own wording; WHMCS documents no such errors): an unknown status `Invalid Service
/// Status`, a date that is not `Y-m-d` `Invalid Date Format for <name>. Expected Y-m-d`, an amount
/// that is not a number `Invalid Amount for <name>`; nothing changes when one is refused. Other
/// documented parameters (`pid`, `billingcycle`, `paymentmethod`, ...) are accepted and ignored.
pub(super) fn update_client_product(store: &mut Store, params: &Params) -> Reply {
    let Some(id) = service_id(store, params) else {
        return Reply::error(SERVICE_NOT_FOUND);
    };
    let sent = |name: &str| params.scalar(name);
    let new_status = match sent("status").filter(|s| php_truthy(s)) {
        None => None,
        Some(text) => match status(text) {
            Some(s) => Some(s),
            None => return Reply::error("Invalid Service Status"),
        },
    };
    let mut dates: Vec<(&str, String)> = Vec::new();
    for name in ["regdate", "nextduedate", "terminationdate"] {
        if let Some(text) = sent(name).filter(|s| php_truthy(s)) {
            match date(text) {
                Some(d) => dates.push((name, d)),
                None => {
                    return Reply::error(format!("Invalid Date Format for {name}. Expected Y-m-d"));
                }
            }
        }
    }
    let mut amounts: Vec<(&str, Decimal)> = Vec::new();
    for name in ["recurringamount", "firstpaymentamount"] {
        if let Some(text) = sent(name).filter(|s| !s.trim().is_empty()) {
            match text.trim().parse::<Decimal>() {
                Ok(amount) => amounts.push((name, amount)),
                Err(_) => return Reply::error(format!("Invalid Amount for {name}")),
            }
        }
    }
    let options = sent("configoptions")
        .filter(|s| php_truthy(s))
        .map(decode_field);

    if let Some(s) = new_status {
        store.set_status_of_service(id, s);
    }
    let Some(service) = store.services.get_mut(&id) else {
        return Reply::error(SERVICE_NOT_FOUND);
    };
    for (name, d) in dates {
        match name {
            "regdate" => service.registered = d,
            "nextduedate" => service.next_due = d,
            _ => service.termination_date = Some(d),
        }
    }
    for (name, amount) in amounts {
        match name {
            "recurringamount" => service.recurring_amount = amount,
            _ => service.first_payment_amount = amount,
        }
    }
    if let Some(notes) = sent("notes") {
        service.notes = notes.to_string();
    }
    if let Some(domain) = sent("domain") {
        service.domain = domain.to_string();
    }
    match options {
        Some(Ok(array)) => {
            for (key, value) in array.iter() {
                service.config_options.insert(key.clone(), value.clone());
            }
            service.config_options_error = None;
        }
        Some(Err(e)) => service.config_options_error = Some(e.to_string()),
        None => {}
    }
    Reply::success(json!({ "serviceid": id.to_string() }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cancel_types_and_statuses_are_read_in_any_case() {
        assert_eq!(
            CancelType::from_param(" end of billing period "),
            Some(CancelType::EndOfBillingPeriod)
        );
        assert_eq!(
            CancelType::from_param("IMMEDIATE"),
            Some(CancelType::Immediate)
        );
        assert_eq!(CancelType::from_param("Later"), None);
        assert_eq!(status("cancelled"), Some(ServiceStatus::Cancelled));
        assert_eq!(status("Gone"), None);
        assert_eq!(date("2026-04-01"), Some("2026-04-01".into()));
        assert_eq!(date("01/04/2026"), None);
    }
}
