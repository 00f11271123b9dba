//! The billing sync of the WHMCS services: brings what each order product shows of its WHMCS
//! service (status, next due date) to what WHMCS holds now.
//!
//! The order products that carry a service id are the map from a service to its Salesforce
//! record (one query, every page, with the state they show now); each service is read from WHMCS
//! (GetClientsProducts by service id), and only those whose status or next due date differ from
//! what Salesforce shows are upserted on the service id, 200 a call. A second run with nothing
//! changed in WHMCS sends nothing to Salesforce.
//!
//! The services then roll up to their Order and Opportunity ([`rollups`]): each gets the
//! summary of its services (`Active`, `Terminated`, or each status with its count), and an
//! Opportunity whose every service has ended (`values.whmcs_ended_statuses`: WHMCS's
//! `Terminated`, `Cancelled`) moves to the cancelled stage, unless it has an AB subscription
//! that AB still bills: AB's state decides for it, through the AB sync. Written by Id, 200 a
//! call, and again only where what Salesforce shows differs.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::service::service_upsert;
use super::upsert::{UpsertReport, update_all, upsert_all};
use crate::mapping::Mapping;
use crate::ports::{SalesforceQueries, SalesforceUpserts, SalesforceWrites, Whmcs};
use crate::salesforce::{RecordUpdate, SalesforceError, SfId};
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
    /// Services (by id), Orders and Opportunities (by Salesforce Id) Salesforce refused, with why.
    pub failed: Vec<(String, String)>,
    /// Orders and Opportunities whose services' summary (or stage) changed, written (or, in a
    /// dry run, that would be), by Salesforce Id.
    pub rolled_up: Vec<String>,
    /// Set when the run's time was up before every service was read: the last service id read
    /// (services go in the order of their ids; the next run starts after it).
    pub stopped_after: Option<i64>,
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
        Some(Value::Bool(b)) => b.to_string(),
        Some(Value::String(s)) => s.trim().to_string(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

/// `row`'s value at a relationship path (`Order.Opportunity.StageName`).
fn at<'a>(row: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(row, |v, part| v.get(part))
}

/// One order product as the query shows it, with its service's status now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceRow {
    pub order: String,
    pub opportunity: Option<String>,
    /// What WHMCS says now (or, for a service WHMCS no longer has, what Salesforce shows).
    pub status: String,
    /// What the Order, and its Opportunity, show now.
    pub order_shows: String,
    pub opportunity_shows: String,
    pub stage: String,
    /// The Opportunity's AB subscription id and billing state, as Salesforce shows them.
    pub subscription: String,
    pub billing_state: String,
}

/// The summary of `statuses`: the one status when they agree, else each with its count.
pub fn summary<'a>(statuses: impl IntoIterator<Item = &'a str>) -> String {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for s in statuses {
        *counts.entry(s).or_default() += 1;
    }
    if counts.len() == 1 {
        return counts
            .keys()
            .next()
            .map(|s| s.to_string())
            .unwrap_or_default();
    }
    counts
        .iter()
        .map(|(s, n)| format!("{s} ({n})"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The Order and Opportunity writes the services' statuses call for: a summary that differs
/// from what the record shows, and the cancelled stage for an Opportunity whose every service
/// ended and that AB does not still bill. Pure.
pub fn rollups(rows: &[ServiceRow], mapping: &Mapping) -> Vec<(String, RecordUpdate)> {
    let v = &mapping.values;
    let ended = |s: &str| {
        v.whmcs_ended_statuses
            .iter()
            .any(|e| e.eq_ignore_ascii_case(s))
    };
    let mut out = Vec::new();
    let mut orders: BTreeMap<&str, Vec<&ServiceRow>> = BTreeMap::new();
    let mut opportunities: BTreeMap<&str, Vec<&ServiceRow>> = BTreeMap::new();
    for row in rows {
        orders.entry(row.order.as_str()).or_default().push(row);
        if let Some(o) = &row.opportunity {
            opportunities.entry(o.as_str()).or_default().push(row);
        }
    }
    let update = |sobject: &str, id: &str, fields: Map<String, Value>| {
        SfId::parse(id).ok().map(|id| {
            (
                id.to_string(),
                RecordUpdate {
                    sobject: sobject.into(),
                    id,
                    fields,
                },
            )
        })
    };
    if let Some(field) = &mapping.order.whmcs_services_status {
        for (order, rows) in &orders {
            let now = summary(rows.iter().map(|r| r.status.as_str()));
            if rows[0].order_shows != now {
                let fields = Map::from_iter([(field.clone(), Value::String(now))]);
                out.extend(update("Order", order, fields));
            }
        }
    }
    for (opportunity, rows) in &opportunities {
        let first = rows[0];
        let mut fields = Map::new();
        if let Some(field) = &mapping.opportunity.whmcs_services_status {
            let now = summary(rows.iter().map(|r| r.status.as_str()));
            if first.opportunity_shows != now {
                fields.insert(field.clone(), Value::String(now));
            }
        }
        let all_ended = rows.iter().all(|r| ended(&r.status));
        let ab_done = first.subscription.is_empty()
            || v.billing_stages.get(first.billing_state.as_str())
                == Some(&v.opportunity_cancelled_stage);
        if let Some(stage) = &mapping.opportunity.stage
            && all_ended
            && ab_done
            && first.stage != v.opportunity_cancelled_stage
        {
            fields.insert(
                stage.clone(),
                Value::String(v.opportunity_cancelled_stage.clone()),
            );
        }
        if !fields.is_empty() {
            out.extend(update("Opportunity", opportunity, fields));
        }
    }
    out
}

fn failures(written: UpsertReport, report: &mut ServicesReport) {
    report.salesforce_calls += written.calls;
    report
        .failed
        .extend(written.failed.into_iter().map(|(k, errors)| {
            let why: Vec<String> = errors.iter().map(ToString::to_string).collect();
            (k, why.join("; "))
        }));
}

/// What one run of the services sync does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServicesRequest {
    /// Start after this service id (a run that stopped at its time goes on from there).
    pub after: Option<i64>,
    /// Read no more services from WHMCS after this time; what was read is written.
    pub deadline: Option<DateTime<Utc>>,
    /// Read and compute, write nothing.
    pub dry_run: bool,
}

/// Runs the services sync. Without the order product's service id, status or due date fields
/// in the mapping there is nothing to sync, and the report is empty. Services are read in the
/// order of their ids; one not read this run (its time was up) counts in the roll-ups as
/// Salesforce shows it, and the run that goes on after [`ServicesReport::stopped_after`] brings
/// it and its Order and Opportunity up to date.
pub async fn sync_services(
    whmcs: &dyn Whmcs,
    sf_reads: &dyn SalesforceQueries,
    sf_upserts: &dyn SalesforceUpserts,
    sf_writes: &dyn SalesforceWrites,
    mapping: &Mapping,
    clock: &dyn crate::clock::Clock,
    request: &ServicesRequest,
) -> Result<ServicesReport, ServicesSyncError> {
    let now = clock.now();
    let dry_run = request.dry_run;
    let item = &mapping.order_item;
    let (Some(key), Some(status), Some(due)) = (
        item.whmcs_service_id.as_deref(),
        item.whmcs_service_status.as_deref(),
        item.whmcs_next_due_date.as_deref(),
    ) else {
        return Ok(ServicesReport::default());
    };
    let opp = &mapping.opportunity;
    let order_summary = mapping
        .order
        .whmcs_services_status
        .as_ref()
        .map(|f| format!("Order.{f}"));
    let opportunity_paths: Vec<String> = [
        &opp.whmcs_services_status,
        &opp.stage,
        &opp.maxio_subscription_id,
        &opp.maxio_billing_state,
    ]
    .into_iter()
    .flatten()
    .map(|f| format!("Order.Opportunity.{f}"))
    .collect();
    let mut select = vec![
        "Id".to_string(),
        key.to_string(),
        status.to_string(),
        due.to_string(),
        "OrderId".to_string(),
        "Order.OpportunityId".to_string(),
    ];
    select.extend(order_summary.clone());
    select.extend(opportunity_paths);
    let soql = format!(
        "SELECT {} FROM OrderItem WHERE {key} != null",
        select.join(", ")
    );
    let mut rows = sf_reads.query_all(&soql).await?;
    let service_number = |row: &Value| text(row.get(key)).parse::<i64>().unwrap_or(i64::MAX);
    rows.sort_by_key(service_number);
    let mut report = ServicesReport {
        services: rows.len(),
        ..ServicesReport::default()
    };
    let opportunity_text = |row: &Value, f: &Option<String>| {
        f.as_ref()
            .map(|f| text(at(row, &format!("Order.Opportunity.{f}"))))
            .unwrap_or_default()
    };
    let mut records = Vec::new();
    let mut services = Vec::new();
    let mut last_read: Option<i64> = None;
    for row in &rows {
        let id = text(row.get(key));
        if id.is_empty() {
            continue;
        }
        let shown = (text(row.get(status)), text(row.get(due)));
        let mut status_now = shown.0.clone();
        let number = service_number(row);
        let skipped = request.after.is_some_and(|after| number <= after);
        if !skipped
            && report.stopped_after.is_none()
            && request.deadline.is_some_and(|d| clock.now() >= d)
        {
            report.stopped_after = Some(last_read.unwrap_or(request.after.unwrap_or(0)));
        }
        let read_now = !skipped && report.stopped_after.is_none();
        let answer = if read_now {
            last_read = Some(number);
            whmcs.client_product(&id).await?
        } else {
            None
        };
        match answer {
            None if !read_now => {}
            None => report.gone.push(id),
            Some(service) => {
                if let Some(upsert) = service_upsert(&service, mapping, now) {
                    let now_is = (
                        text(upsert.fields.get(status)),
                        text(upsert.fields.get(due)),
                    );
                    status_now = now_is.0.clone();
                    if shown != now_is {
                        records.push(upsert);
                    }
                }
            }
        }
        let order = text(row.get("OrderId"));
        if order.is_empty() || status_now.is_empty() {
            continue;
        }
        let opportunity = text(at(row, "Order.OpportunityId"));
        services.push(ServiceRow {
            order,
            opportunity: (!opportunity.is_empty()).then_some(opportunity),
            status: status_now,
            order_shows: order_summary
                .as_deref()
                .map(|p| text(at(row, p)))
                .unwrap_or_default(),
            opportunity_shows: opportunity_text(row, &opp.whmcs_services_status),
            stage: opportunity_text(row, &opp.stage),
            subscription: opportunity_text(row, &opp.maxio_subscription_id),
            billing_state: opportunity_text(row, &opp.maxio_billing_state),
        });
    }
    let rolled = rollups(&services, mapping);
    if dry_run {
        report.written = records.into_iter().map(|r| r.key).collect();
        report.rolled_up = rolled.into_iter().map(|(k, _)| k).collect();
        return Ok(report);
    }
    if !records.is_empty() {
        let written = upsert_all(sf_upserts, "OrderItem", key, records).await?;
        report.written = written.written.clone();
        failures(written, &mut report);
    }
    if !rolled.is_empty() {
        let written = update_all(sf_writes, rolled).await?;
        report.rolled_up = written.written.clone();
        failures(written, &mut report);
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(order: &str, opportunity: &str, status: &str) -> ServiceRow {
        ServiceRow {
            order: order.into(),
            opportunity: Some(opportunity.into()),
            status: status.into(),
            order_shows: String::new(),
            opportunity_shows: String::new(),
            stage: "Active".into(),
            subscription: String::new(),
            billing_state: String::new(),
        }
    }

    const ORDER: &str = "801000000000001AAA";
    const OTHER_ORDER: &str = "801000000000002AAA";
    const OPP: &str = "006000000000001AAA";

    fn fields(out: &[(String, RecordUpdate)], id: &str) -> Option<Value> {
        out.iter()
            .find(|(k, _)| k == id)
            .map(|(_, r)| Value::Object(r.fields.clone()))
    }

    #[test]
    fn summaries_name_the_one_status_or_count_each() {
        assert_eq!(summary(["Active", "Active"]), "Active");
        assert_eq!(
            summary(["Terminated", "Active", "Active"]),
            "Active (2), Terminated (1)"
        );
    }

    #[test]
    fn every_service_ended_cancels_a_deal_without_a_subscription() {
        let m = Mapping::default();
        let rows = [
            row(ORDER, OPP, "Terminated"),
            row(ORDER, OPP, "Cancelled"),
            row(OTHER_ORDER, OPP, "Terminated"),
        ];
        let out = rollups(&rows, &m);
        assert_eq!(
            fields(&out, ORDER),
            Some(serde_json::json!({"WHMCS_Services_Status__c": "Cancelled (1), Terminated (1)"}))
        );
        assert_eq!(
            fields(&out, OTHER_ORDER),
            Some(serde_json::json!({"WHMCS_Services_Status__c": "Terminated"}))
        );
        assert_eq!(
            fields(&out, OPP),
            Some(
                serde_json::json!({"WHMCS_Services_Status__c": "Cancelled (1), Terminated (2)",
                                    "StageName": "\u{25b3}Cancelled"})
            )
        );
    }

    #[test]
    fn one_service_still_running_or_ab_still_billing_keeps_the_stage() {
        let m = Mapping::default();
        let out = rollups(
            &[row(ORDER, OPP, "Terminated"), row(ORDER, OPP, "Active")],
            &m,
        );
        let opp = fields(&out, OPP).unwrap();
        assert_eq!(opp.get("StageName"), None, "{opp}");
        assert_eq!(
            opp["WHMCS_Services_Status__c"],
            "Active (1), Terminated (1)"
        );

        let mut billed = row(ORDER, OPP, "Terminated");
        billed.subscription = "9001".into();
        billed.billing_state = "active".into();
        let opp = fields(&rollups(&[billed.clone()], &m), OPP).unwrap();
        assert_eq!(opp.get("StageName"), None, "AB still bills: {opp}");
        billed.billing_state = "canceled".into();
        let opp = fields(&rollups(&[billed], &m), OPP).unwrap();
        assert_eq!(opp["StageName"], "\u{25b3}Cancelled");
    }

    #[test]
    fn what_salesforce_already_shows_is_not_written_again() {
        let m = Mapping::default();
        let mut shown = row(ORDER, OPP, "Terminated");
        shown.order_shows = "Terminated".into();
        shown.opportunity_shows = "Terminated".into();
        shown.stage = "\u{25b3}Cancelled".into();
        assert!(rollups(&[shown], &m).is_empty());
    }
}
