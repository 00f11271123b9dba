//! The billing sync of the WHMCS services: brings what each order product shows of its WHMCS
//! service (status, next due date) to what WHMCS holds now.
//!
//! The order products that carry a service id are the map from a service to its Salesforce
//! record (one query, every page, with the state they show now); each service is read from WHMCS
//! (GetClientsProducts by service id), and only those whose status or next due date differ from
//! what Salesforce shows are upserted on the service id, 200 a call. A second run with nothing
//! changed in WHMCS sends nothing to Salesforce.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::service::service_upsert;
use super::upsert::upsert_all;
use crate::mapping::Mapping;
use crate::ports::{SalesforceQueries, SalesforceUpserts, Whmcs};
use crate::salesforce::SalesforceError;
use crate::whmcs::WhmcsError;

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServicesReport {
    /// Order products carrying a service id.
    pub services: usize,
    /// Services whose state changed, written (or, in a dry run, that would be).
    pub written: Vec<String>,
    /// Services WHMCS no longer has.
    pub gone: Vec<String>,
    /// Services Salesforce refused, with why.
    pub failed: Vec<(String, String)>,
    pub salesforce_calls: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum ServicesSyncError {
    #[error("Salesforce: {0}")]
    Salesforce(#[from] SalesforceError),
    #[error("WHMCS: {0}")]
    Whmcs(#[from] WhmcsError),
}

fn text(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.trim().to_string(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

/// Runs the services sync. Without the order product's service id, status or due date fields
/// in the mapping there is nothing to sync, and the report is empty.
pub async fn sync_services(
    whmcs: &dyn Whmcs,
    sf_reads: &dyn SalesforceQueries,
    sf_writes: &dyn SalesforceUpserts,
    mapping: &Mapping,
    now: DateTime<Utc>,
    dry_run: bool,
) -> Result<ServicesReport, ServicesSyncError> {
    let item = &mapping.order_item;
    let (Some(key), Some(status), Some(due)) = (
        item.whmcs_service_id.as_deref(),
        item.whmcs_service_status.as_deref(),
        item.whmcs_next_due_date.as_deref(),
    ) else {
        return Ok(ServicesReport::default());
    };
    let soql = format!("SELECT Id, {key}, {status}, {due} FROM OrderItem WHERE {key} != null");
    let rows = sf_reads.query_all(&soql).await?;
    let mut report = ServicesReport {
        services: rows.len(),
        ..ServicesReport::default()
    };
    let mut records = Vec::new();
    for row in &rows {
        let id = text(row.get(key));
        if id.is_empty() {
            continue;
        }
        let Some(service) = whmcs.client_product(&id).await? else {
            report.gone.push(id);
            continue;
        };
        let Some(upsert) = service_upsert(&service, mapping, now) else {
            continue;
        };
        let shown = (text(row.get(status)), text(row.get(due)));
        let now_is = (
            text(upsert.fields.get(status)),
            text(upsert.fields.get(due)),
        );
        if shown != now_is {
            records.push(upsert);
        }
    }
    if dry_run {
        report.written = records.into_iter().map(|r| r.key).collect();
        return Ok(report);
    }
    if !records.is_empty() {
        let written = upsert_all(sf_writes, "OrderItem", key, records).await?;
        report.salesforce_calls = written.calls;
        report.written = written.written;
        report.failed = written
            .failed
            .into_iter()
            .map(|(k, errors)| {
                let why: Vec<String> = errors.iter().map(ToString::to_string).collect();
                (k, why.join("; "))
            })
            .collect();
    }
    Ok(report)
}
