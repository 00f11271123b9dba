//! The reconciler's pure side: which deals lost their trigger, the one search that finds them, and
//! the report of a run. No I/O here; the `reconciler` function runs the search and dispatches.
//!
//! A trigger can be lost (an Outbound Message dropped after 24 hours of retries, a gap in Event
//! Relay, an Apex callout that never arrived), so every few minutes the reconciler looks for deals
//! that should have been dispatched and were not, and sends them through the normal, idempotent
//! dispatch path. The candidate rules:
//!
//! - **Opportunities**: won (`IsWon = true`), no Maxio subscription id
//!   (`opportunity.maxio_subscription_id`), a Maxio sync status
//!   (`opportunity.maxio_sync_status`) that is empty or anything but `values.maxio_failed` /
//!   `values.maxio_synced`, and at least one Order (without one, dispatch could only wait for CPQ;
//!   the trigger's own deferred re-dispatch does that, and the next run finds the deal once its
//!   Order exists).
//! - **Orders**: approved (`Status` in `whmcs.reconcile_order_statuses` — not `Pending Review`, the
//!   status of an Order still awaiting approval — or the activation status in
//!   `whmcs.approved_activation_statuses`), no WHMCS order id (`order.whmcs_order_id`), and an
//!   activation status that is not `values.activation_failed`.
//! - **Cancellations**: Opportunities whose cancellation was not carried out, is due and not yet
//!   confirmed, or whose withdrawal was lost (the rules, and their window, are in
//!   [`cancellations`]).
//! - Opportunities and Orders: `LastModifiedDate` older than the grace period (a deal still in flight is left alone)
//!   and within the look-back window. `LastModifiedDate`, not `CloseDate`: winning or approving a
//!   deal edits the record, so it marks the trigger to the second, while `CloseDate` is a date a
//!   person types (often ahead of or behind the real close) and cannot express a 30-minute grace.
//!   Any later edit restarts the grace period and the window, which gives an edited deal another
//!   chance.
//!
//! A deal that failed permanently is never dispatched again by the reconciler: its error is on the
//! record, a retry would fail the same way, and writing that failure again would refresh
//! `LastModifiedDate` and keep the deal inside the window forever. A person fixes the data and
//! clears the status (or sets it back to `Activating` for an Order); that edit brings the deal back
//! after the grace period.
//!
//! The searches go in one Composite request (one API call), oldest first, each limited to the
//! per-run bound plus one row, so the report can say exactly whether more were left for the next
//! run.

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::Value;

use crate::mapping::Mapping;
use crate::salesforce::soql::quote;
use crate::salesforce::{ApiUsage, CompositeRequest};
use crate::settings::Env;
use crate::snapshot::DealRef;

mod cancellations;
pub use cancellations::{CANCELLATIONS, cancellation_candidate, cancellation_query};

/// Composite reference id of the Opportunity search.
pub const OPPORTUNITIES: &str = "opportunities";
/// Composite reference id of the Order search.
pub const ORDERS: &str = "orders";

pub const DEFAULT_GRACE_MINUTES: u64 = 30;
pub const DEFAULT_LOOKBACK_DAYS: u64 = 7;
pub const DEFAULT_MAX_PER_RUN: usize = 50;
/// The search asks for one row more than the bound; 199 + 1 stays within one page even at
/// Salesforce's smallest batch size (200).
pub const MAX_PER_RUN_LIMIT: usize = 199;
pub const DEFAULT_MAX_API_USAGE_PERCENT: u32 = 80;
pub const DEFAULT_TIME_BUDGET: Duration = Duration::from_secs(240);

/// How much a run may do, read once per container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReconcileSettings {
    /// Deals modified more recently are left alone (their trigger may still be in flight).
    pub grace: Duration,
    /// Deals modified longer ago are not looked at.
    pub lookback: Duration,
    /// Deals dispatched per run, for Opportunities and for Orders each.
    pub max_per_run: usize,
    /// No dispatch starts while the org's API usage (or the app's, when it has its own allocation)
    /// is at or above this share of the daily allocation.
    pub max_api_usage_percent: u32,
    /// No dispatch starts after this much of the run has passed (keep it below the function
    /// timeout).
    pub time_budget: Duration,
}

impl Default for ReconcileSettings {
    fn default() -> Self {
        ReconcileSettings {
            grace: Duration::from_secs(DEFAULT_GRACE_MINUTES * 60),
            lookback: Duration::from_secs(DEFAULT_LOOKBACK_DAYS * 86_400),
            max_per_run: DEFAULT_MAX_PER_RUN,
            max_api_usage_percent: DEFAULT_MAX_API_USAGE_PERCENT,
            time_budget: DEFAULT_TIME_BUDGET,
        }
    }
}

/// Everything wrong with the reconciler's variables, one line each.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid reconciler configuration:\n  {}", .problems.join("\n  "))]
pub struct SettingsError {
    pub problems: Vec<String>,
}

impl ReconcileSettings {
    /// Reads `RECONCILER_GRACE_MINUTES`, `RECONCILER_LOOKBACK_DAYS`, `RECONCILER_MAX_PER_RUN`,
    /// `RECONCILER_MAX_API_USAGE_PERCENT` and `RECONCILER_TIME_BUDGET_SECONDS`.
    pub fn read(env: &mut Env<'_>) -> Option<ReconcileSettings> {
        let grace_minutes = env.whole("RECONCILER_GRACE_MINUTES", DEFAULT_GRACE_MINUTES, 1, 1440);
        let lookback_days = env.whole("RECONCILER_LOOKBACK_DAYS", DEFAULT_LOOKBACK_DAYS, 1, 365);
        let max_per_run = env.whole(
            "RECONCILER_MAX_PER_RUN",
            DEFAULT_MAX_PER_RUN,
            1,
            MAX_PER_RUN_LIMIT,
        );
        let percent = env.whole(
            "RECONCILER_MAX_API_USAGE_PERCENT",
            DEFAULT_MAX_API_USAGE_PERCENT,
            1,
            100,
        );
        let budget = env.whole(
            "RECONCILER_TIME_BUDGET_SECONDS",
            DEFAULT_TIME_BUDGET.as_secs(),
            1,
            900,
        );
        if grace_minutes >= lookback_days * 1440 {
            env.problem(format!(
                "RECONCILER_GRACE_MINUTES ({grace_minutes}) must be shorter than RECONCILER_LOOKBACK_DAYS ({lookback_days} days)"
            ));
        }
        Some(ReconcileSettings {
            grace: Duration::from_secs(grace_minutes * 60),
            lookback: Duration::from_secs(lookback_days * 86_400),
            max_per_run,
            max_api_usage_percent: percent,
            time_budget: Duration::from_secs(budget),
        })
    }

    /// Reads the reconciler's variables through `get` alone.
    pub fn from_lookup(
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<ReconcileSettings, SettingsError> {
        let mut env = Env::new(get);
        let settings = ReconcileSettings::read(&mut env);
        env.finish(settings)
            .map_err(|problems| SettingsError { problems })
    }
}

/// The `LastModifiedDate` range a run looks at: `[modified_since, modified_before)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// The run's time, to the second.
    pub now: DateTime<Utc>,
    /// `now - grace`.
    pub modified_before: DateTime<Utc>,
    /// `now - lookback`.
    pub modified_since: DateTime<Utc>,
}

impl Window {
    pub fn new(now: DateTime<Utc>, settings: &ReconcileSettings) -> Window {
        let now = DateTime::from_timestamp(now.timestamp(), 0).unwrap_or(now);
        let back = |d: Duration| now - chrono::Duration::from_std(d).unwrap_or_default();
        Window {
            now,
            modified_before: back(settings.grace),
            modified_since: back(settings.lookback),
        }
    }

    /// The SOQL condition on `LastModifiedDate`.
    fn condition(&self) -> String {
        format!(
            "LastModifiedDate < {} AND LastModifiedDate >= {}",
            soql_datetime(self.modified_before),
            soql_datetime(self.modified_since)
        )
    }
}

/// A SOQL datetime literal (unquoted, UTC): `2026-11-20T11:30:00Z`.
pub fn soql_datetime(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Reads a datetime as the REST API returns it (`2026-11-20T11:30:00.000+0000`) or in RFC 3339.
pub fn parse_sf_datetime(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z")
        .or_else(|_| DateTime::parse_from_rfc3339(s))
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Why a search cannot be built from the mapping.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SearchError {
    #[error(
        "the mapping has no {key}, so a synced deal cannot be told from one that lost its trigger; this search is off"
    )]
    Unmapped { key: &'static str },
    #[error(
        "the mapping's whmcs.reconcile_order_statuses and whmcs.approved_activation_statuses are empty, so no Order is approved; this search is off"
    )]
    NothingApproved,
}

fn literal_list<'a>(values: impl IntoIterator<Item = &'a String>) -> String {
    let items: Vec<String> = values.into_iter().map(|v| quote(v)).collect();
    format!("({})", items.join(", "))
}

/// The Opportunity search: won, not synced, not failed, with an Order, inside the window; oldest
/// first, `limit` rows.
pub fn opportunity_query(
    mapping: &Mapping,
    window: &Window,
    limit: usize,
) -> Result<String, SearchError> {
    let o = &mapping.opportunity;
    let subscription = o
        .maxio_subscription_id
        .as_deref()
        .ok_or(SearchError::Unmapped {
            key: "opportunity.maxio_subscription_id",
        })?;
    let mut fields = vec!["Id", "AccountId", "IsWon", subscription];
    let mut conditions = vec!["IsWon = true".to_string(), format!("{subscription} = null")];
    if let Some(status) = o.maxio_sync_status.as_deref() {
        fields.push(status);
        let v = &mapping.values;
        conditions.push(format!(
            "({status} = null OR {status} NOT IN {})",
            literal_list([&v.maxio_failed, &v.maxio_synced])
        ));
    }
    conditions.push("Id IN (SELECT OpportunityId FROM Order)".into());
    conditions.push(window.condition());
    fields.push("LastModifiedDate");
    Ok(format!(
        "SELECT {} FROM Opportunity WHERE {} ORDER BY LastModifiedDate ASC, Id ASC LIMIT {limit}",
        fields.join(", "),
        conditions.join(" AND ")
    ))
}

/// The Order search: approved, no WHMCS order, not failed, inside the window; oldest first,
/// `limit` rows.
pub fn order_query(
    mapping: &Mapping,
    window: &Window,
    limit: usize,
) -> Result<String, SearchError> {
    let o = &mapping.order;
    let whmcs = &mapping.whmcs;
    let order_id = o.whmcs_order_id.as_deref().ok_or(SearchError::Unmapped {
        key: "order.whmcs_order_id",
    })?;
    let activation = o.activation_status.as_deref();
    let mut approved = Vec::new();
    if !whmcs.reconcile_order_statuses.is_empty() {
        approved.push(format!(
            "Status IN {}",
            literal_list(&whmcs.reconcile_order_statuses)
        ));
    }
    if let Some(a) = activation
        && !whmcs.approved_activation_statuses.is_empty()
    {
        approved.push(format!(
            "{a} IN {}",
            literal_list(&whmcs.approved_activation_statuses)
        ));
    }
    if approved.is_empty() {
        return Err(SearchError::NothingApproved);
    }
    let mut fields = vec!["Id", "AccountId", "OpportunityId", "Status"];
    fields.extend(activation);
    fields.push(order_id);
    fields.push("LastModifiedDate");
    let mut conditions = vec![format!("{order_id} = null")];
    conditions.push(if approved.len() == 1 {
        approved.remove(0)
    } else {
        format!("({})", approved.join(" OR "))
    });
    if let Some(a) = activation {
        conditions.push(format!(
            "({a} = null OR {a} != {})",
            quote(&mapping.values.activation_failed)
        ));
    }
    conditions.push(window.condition());
    Ok(format!(
        "SELECT {} FROM Order WHERE {} ORDER BY LastModifiedDate ASC, Id ASC LIMIT {limit}",
        fields.join(", "),
        conditions.join(" AND ")
    ))
}

/// The run's search: every query in one Composite request (one API call). A search the mapping
/// cannot express is left out and reported.
#[derive(Debug, Clone)]
pub struct SearchPlan {
    /// `None` when neither search can run.
    pub request: Option<CompositeRequest>,
    pub opportunities: Result<(), SearchError>,
    pub orders: Result<(), SearchError>,
    pub cancellations: Result<(), SearchError>,
}

/// Builds the search for `max_per_run` deals of each kind (asking for one more row, to tell
/// whether the run leaves deals for the next one).
pub fn search_plan(
    mapping: &Mapping,
    window: &Window,
    max_per_run: usize,
    data_path: &str,
) -> SearchPlan {
    let limit = max_per_run + 1;
    let mut request = CompositeRequest::new(false);
    let opportunities = opportunity_query(mapping, window, limit).map(|q| {
        request.query(data_path, OPPORTUNITIES, &q);
    });
    let orders = order_query(mapping, window, limit).map(|q| {
        request.query(data_path, ORDERS, &q);
    });
    let cancellations = cancellation_query(mapping, window, limit).map(|q| {
        request.query(data_path, CANCELLATIONS, &q);
    });
    SearchPlan {
        request: (!request.is_empty()).then_some(request),
        opportunities,
        orders,
        cancellations,
    }
}

/// A deal the search found that the rules accept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub deal: DealRef,
    pub last_modified: Option<DateTime<Utc>>,
}

impl Candidate {
    /// The idempotency key the dispatch carries (kept for tracing): the deal and the version of it
    /// that was found, so finding the same unchanged deal again gives the same key.
    pub fn idempotency_key(&self) -> String {
        match self.last_modified {
            Some(t) => format!(
                "{}-{}",
                self.deal.id(),
                t.to_rfc3339_opts(SecondsFormat::Millis, true)
            ),
            None => self.deal.id().to_string(),
        }
    }

    /// `reconcile-<run time>-<id>`, e.g. `reconcile-20261120T120000Z-006...`.
    pub fn correlation_id(&self, run_at: DateTime<Utc>) -> String {
        format!(
            "reconcile-{}-{}",
            run_at.format("%Y%m%dT%H%M%SZ"),
            self.deal.id()
        )
    }
}

/// A field's text: `None` for null, missing or blank.
fn text<'a>(row: &'a Value, field: &str) -> Option<std::borrow::Cow<'a, str>> {
    match row.get(field)? {
        Value::Null => None,
        Value::String(s) if s.trim().is_empty() => None,
        Value::String(s) => Some(std::borrow::Cow::Borrowed(s.as_str())),
        other => Some(std::borrow::Cow::Owned(other.to_string())),
    }
}

fn last_modified(row: &Value) -> Option<DateTime<Utc>> {
    row.get("LastModifiedDate")
        .and_then(Value::as_str)
        .and_then(parse_sf_datetime)
}

fn record_id(row: &Value) -> String {
    row.get("Id")
        .and_then(Value::as_str)
        .unwrap_or("(no Id)")
        .to_string()
}

/// Applies the Opportunity rules to a row of the search (the query applies them too; this keeps a
/// row that slipped through, or a mapping value the query could not express, from being
/// dispatched). `Err` is the reason to skip it.
pub fn opportunity_candidate(row: &Value, mapping: &Mapping) -> Result<Candidate, String> {
    let raw = record_id(row);
    let deal = DealRef::opportunity(&raw).map_err(|e| format!("{raw}: {e}"))?;
    if row.get("IsWon") != Some(&Value::Bool(true)) {
        return Err(format!("Opportunity {raw} is not won"));
    }
    let o = &mapping.opportunity;
    if let Some(sub) = o
        .maxio_subscription_id
        .as_deref()
        .and_then(|f| text(row, f))
    {
        return Err(format!(
            "Opportunity {raw} already has Maxio subscription {sub}"
        ));
    }
    if let Some(status) = o.maxio_sync_status.as_deref().and_then(|f| text(row, f)) {
        let v = &mapping.values;
        if status == v.maxio_failed.as_str() || status == v.maxio_synced.as_str() {
            return Err(format!("Opportunity {raw} has Maxio sync status {status}"));
        }
    }
    Ok(Candidate {
        deal,
        last_modified: last_modified(row),
    })
}

/// Applies the Order rules to a row of the search. `Err` is the reason to skip it.
pub fn order_candidate(row: &Value, mapping: &Mapping) -> Result<Candidate, String> {
    let raw = record_id(row);
    let deal = DealRef::order(&raw).map_err(|e| format!("{raw}: {e}"))?;
    let o = &mapping.order;
    if let Some(existing) = o.whmcs_order_id.as_deref().and_then(|f| text(row, f)) {
        return Err(format!("Order {raw} is already WHMCS order {existing}"));
    }
    let activation = o.activation_status.as_deref().and_then(|f| text(row, f));
    if let Some(a) = &activation
        && a.as_ref() == mapping.values.activation_failed.as_str()
    {
        return Err(format!("Order {raw} has activation status {a}"));
    }
    let whmcs = &mapping.whmcs;
    let status = text(row, "Status");
    let approved = status.as_ref().is_some_and(|s| {
        whmcs
            .reconcile_order_statuses
            .iter()
            .any(|a| a == s.as_ref())
    }) || activation.as_ref().is_some_and(|s| {
        whmcs
            .approved_activation_statuses
            .iter()
            .any(|a| a == s.as_ref())
    });
    if !approved {
        return Err(format!("Order {raw} is not approved"));
    }
    Ok(Candidate {
        deal,
        last_modified: last_modified(row),
    })
}

/// The rows a run works on, and whether the search found more than that.
pub fn bounded(mut rows: Vec<Value>, max_per_run: usize) -> (Vec<Value>, bool) {
    let truncated = rows.len() > max_per_run;
    rows.truncate(max_per_run);
    (rows, truncated)
}

/// Why no more dispatches start this run, if the org's API usage says so.
pub fn api_budget_spent(usage: &ApiUsage, max_percent: u32) -> Option<String> {
    let limit = f64::from(max_percent) / 100.0;
    let mut worst = (usage.used_ratio(), usage.used, usage.max, "the org's");
    if let Some(app) = &usage.per_app {
        let ratio = if app.max == 0 {
            1.0
        } else {
            app.used as f64 / app.max as f64
        };
        if ratio > worst.0 {
            worst = (ratio, app.used, app.max, "the connected app's");
        }
    }
    let (ratio, used, max, whose) = worst;
    (ratio >= limit).then(|| {
        format!(
            "Salesforce API usage is {:.0}% of {whose} daily allocation ({used}/{max}), at or above the reconciler's {max_percent}% limit; left for a later run",
            ratio * 100.0
        )
    })
}

/// A found deal that was not dispatched, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SkippedDeal {
    pub id: String,
    pub reason: String,
}

/// A found deal whose dispatch failed (the next run tries again).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FailedDeal {
    pub id: String,
    pub error: String,
    pub retryable: bool,
}

/// What a run did with one kind of deal.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SectionReport {
    /// Deals the run took on (at most the per-run bound).
    pub found: usize,
    /// Their Ids, oldest change first.
    pub ids: Vec<String>,
    /// Deals whose work is on its queues (or would be, in a dry run).
    pub dispatched: usize,
    pub skipped: Vec<SkippedDeal>,
    pub failed: Vec<FailedDeal>,
    /// Why this search did not run or failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The `LastModifiedDate` range of a run, as SOQL literals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WindowReport {
    pub modified_since: String,
    pub modified_before: String,
}

impl From<&Window> for WindowReport {
    fn from(w: &Window) -> Self {
        WindowReport {
            modified_since: soql_datetime(w.modified_since),
            modified_before: soql_datetime(w.modified_before),
        }
    }
}

/// The result of a run, returned by the function and logged.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReconcileReport {
    pub run_at: String,
    pub dry_run: bool,
    pub window: WindowReport,
    pub opportunities: SectionReport,
    pub orders: SectionReport,
    /// Opportunities whose cancellation (or its withdrawal) was not carried out or is due.
    pub cancellations: SectionReport,
    /// More deals qualified than this run dispatched (the per-run bound, the API budget or the
    /// time budget); the next run continues.
    pub truncated: bool,
    /// Why the run stopped dispatching early, if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped: Option<String>,
    /// The org's API usage as last reported by Salesforce.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_usage: Option<ApiUsage>,
}

impl ReconcileReport {
    pub fn new(run_at: DateTime<Utc>, dry_run: bool, window: &Window) -> ReconcileReport {
        ReconcileReport {
            run_at: run_at.to_rfc3339_opts(SecondsFormat::Secs, true),
            dry_run,
            window: window.into(),
            opportunities: SectionReport::default(),
            orders: SectionReport::default(),
            cancellations: SectionReport::default(),
            truncated: false,
            stopped: None,
            api_usage: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;

    const OPP: &str = "006A000010khO8JIAU";
    const ORDER: &str = "801A000010khO8JIAU";

    fn noon() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 20, 12, 0, 0).unwrap()
    }

    fn window() -> Window {
        Window::new(noon(), &ReconcileSettings::default())
    }

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
    }

    #[test]
    fn the_window_runs_from_the_look_back_to_the_grace_period_to_the_second() {
        let w = Window::new(
            noon() + chrono::Duration::milliseconds(750),
            &ReconcileSettings::default(),
        );
        assert_eq!(w.now, noon());
        assert_eq!(soql_datetime(w.modified_before), "2026-11-20T11:30:00Z");
        assert_eq!(soql_datetime(w.modified_since), "2026-11-13T12:00:00Z");
    }

    #[test]
    fn the_opportunity_search_uses_the_mappings_fields_and_datetime_literals() {
        let q = opportunity_query(&Mapping::default(), &window(), 51).unwrap();
        assert_eq!(
            q,
            "SELECT Id, AccountId, IsWon, Maxio_Subscription_Id__c, Maxio_Sync_Status__c, LastModifiedDate \
             FROM Opportunity WHERE IsWon = true AND Maxio_Subscription_Id__c = null \
             AND (Maxio_Sync_Status__c = null OR Maxio_Sync_Status__c NOT IN ('Failed', 'Synced')) \
             AND Id IN (SELECT OpportunityId FROM Order) \
             AND LastModifiedDate < 2026-11-20T11:30:00Z AND LastModifiedDate >= 2026-11-13T12:00:00Z \
             ORDER BY LastModifiedDate ASC, Id ASC LIMIT 51"
        );
    }

    #[test]
    fn the_order_search_uses_the_mappings_fields_statuses_and_datetime_literals() {
        let q = order_query(&Mapping::default(), &window(), 51).unwrap();
        assert_eq!(
            q,
            "SELECT Id, AccountId, OpportunityId, Status, Activation_Status__c, WHMCS_Order_Id__c, LastModifiedDate \
             FROM Order WHERE WHMCS_Order_Id__c = null \
             AND (Status IN ('Activating') OR Activation_Status__c IN ('Activating')) \
             AND (Activation_Status__c = null OR Activation_Status__c != 'Failed') \
             AND LastModifiedDate < 2026-11-20T11:30:00Z AND LastModifiedDate >= 2026-11-13T12:00:00Z \
             ORDER BY LastModifiedDate ASC, Id ASC LIMIT 51"
        );
    }

    #[test]
    fn renamed_fields_and_values_reach_the_searches_escaped() {
        let m = Mapping::from_json(
            r#"{"opportunity":{"maxio_subscription_id":"AB_Sub__c","maxio_sync_status":null},
                "order":{"whmcs_order_id":"WH_Order__c","activation_status":null},
                "whmcs":{"reconcile_order_statuses":["Approved","Ops' OK"]},
                "values":{"maxio_failed":"Error"}}"#,
        )
        .unwrap();
        let opp = opportunity_query(&m, &window(), 3).unwrap();
        assert!(
            opp.starts_with("SELECT Id, AccountId, IsWon, AB_Sub__c, LastModifiedDate FROM Opportunity WHERE IsWon = true AND AB_Sub__c = null AND Id IN"),
            "{opp}"
        );
        assert!(opp.ends_with("LIMIT 3"), "{opp}");
        let order = order_query(&m, &window(), 3).unwrap();
        assert!(
            order.starts_with(
                r"SELECT Id, AccountId, OpportunityId, Status, WH_Order__c, LastModifiedDate FROM Order WHERE WH_Order__c = null AND Status IN ('Approved', 'Ops\' OK') AND LastModifiedDate <"
            ),
            "{order}"
        );
        let with_status = Mapping::from_json(r#"{"values":{"maxio_failed":"Error"}}"#).unwrap();
        assert!(
            opportunity_query(&with_status, &window(), 3)
                .unwrap()
                .contains("NOT IN ('Error', 'Synced')")
        );
    }

    #[test]
    fn a_search_the_mapping_cannot_express_is_left_out_and_named() {
        let m = Mapping::from_json(
            r#"{"opportunity":{"maxio_subscription_id":null,"cancellation_status":null},
                "whmcs":{"reconcile_order_statuses":[],"approved_activation_statuses":[]}}"#,
        )
        .unwrap();
        let plan = search_plan(&m, &window(), 50, "/services/data/v62.0");
        assert!(plan.request.is_none());
        assert_eq!(
            plan.opportunities,
            Err(SearchError::Unmapped {
                key: "opportunity.maxio_subscription_id"
            })
        );
        assert_eq!(plan.orders, Err(SearchError::NothingApproved));
        assert_eq!(
            plan.cancellations,
            Err(SearchError::Unmapped {
                key: "opportunity.cancellation_status"
            })
        );
    }

    #[test]
    fn the_searches_travel_in_one_composite_request_asking_one_row_more_than_the_bound() {
        let plan = search_plan(&Mapping::default(), &window(), 50, "/services/data/v62.0");
        let request = plan.request.unwrap();
        request.validate().unwrap();
        assert_eq!(request.len(), 3);
        let json = serde_json::to_value(&request).unwrap();
        assert_eq!(json["compositeRequest"][0]["referenceId"], OPPORTUNITIES);
        assert_eq!(json["compositeRequest"][1]["referenceId"], ORDERS);
        assert_eq!(json["compositeRequest"][2]["referenceId"], CANCELLATIONS);
        let url = json["compositeRequest"][1]["url"].as_str().unwrap();
        assert!(
            url.starts_with("/services/data/v62.0/query/?q=SELECT+Id"),
            "{url}"
        );
        assert!(url.ends_with("LIMIT+51"), "{url}");
    }

    fn opp_row(fields: Value) -> Value {
        let mut row = json!({"Id": OPP, "IsWon": true, "Maxio_Subscription_Id__c": null,
            "Maxio_Sync_Status__c": "Pending", "LastModifiedDate": "2026-11-20T10:00:00.000+0000"});
        for (k, v) in fields.as_object().unwrap() {
            row[k] = v.clone();
        }
        row
    }

    fn order_row(fields: Value) -> Value {
        let mut row = json!({"Id": ORDER, "Status": "Pending Review", "Activation_Status__c": null,
            "WHMCS_Order_Id__c": null, "LastModifiedDate": "2026-11-20T10:00:00.000+0000"});
        for (k, v) in fields.as_object().unwrap() {
            row[k] = v.clone();
        }
        row
    }

    #[test]
    fn a_won_unsynced_opportunity_is_a_candidate_with_stable_keys() {
        let m = Mapping::default();
        let c = opportunity_candidate(&opp_row(json!({})), &m).unwrap();
        assert_eq!(c.deal, DealRef::opportunity(OPP).unwrap());
        assert_eq!(
            c.idempotency_key(),
            format!("{OPP}-2026-11-20T10:00:00.000Z")
        );
        assert_eq!(
            c.correlation_id(noon()),
            format!("reconcile-20261120T120000Z-{OPP}")
        );
        for status in [json!(null), json!(""), json!("Pending"), json!("Retrying")] {
            assert!(
                opportunity_candidate(&opp_row(json!({"Maxio_Sync_Status__c": status})), &m)
                    .is_ok()
            );
        }
    }

    #[test]
    fn failed_synced_lost_or_subscribed_opportunities_are_skipped_with_a_reason() {
        let m = Mapping::default();
        let reason = |fields| opportunity_candidate(&opp_row(fields), &m).unwrap_err();
        assert!(reason(json!({"Maxio_Sync_Status__c": "Failed"})).contains("sync status Failed"));
        assert!(reason(json!({"Maxio_Sync_Status__c": "Synced"})).contains("sync status Synced"));
        assert!(reason(json!({"IsWon": false})).contains("not won"));
        assert!(reason(json!({"Maxio_Subscription_Id__c": "812"})).contains("subscription 812"));
        assert!(reason(json!({"Id": ORDER})).contains("not an Opportunity Id"));
    }

    #[test]
    fn an_approved_order_without_a_whmcs_order_is_a_candidate() {
        let m = Mapping::default();
        assert!(order_candidate(&order_row(json!({"Status": "Activating"})), &m).is_ok());
        let by_activation =
            order_row(json!({"Status": "Draft", "Activation_Status__c": "Activating"}));
        assert!(order_candidate(&by_activation, &m).is_ok());
    }

    #[test]
    fn failed_provisioned_or_unapproved_orders_are_skipped_with_a_reason() {
        let m = Mapping::default();
        let reason = |fields| order_candidate(&order_row(fields), &m).unwrap_err();
        assert!(
            reason(json!({"Activation_Status__c": "Failed"})).contains("activation status Failed")
        );
        assert!(reason(json!({"WHMCS_Order_Id__c": "77"})).contains("WHMCS order 77"));
        assert!(reason(json!({"Status": "Draft"})).contains("not approved"));
        assert!(
            reason(json!({"Status": "Pending Review"})).contains("not approved"),
            "an Order awaiting approval is not the reconciler's to provision"
        );
    }

    #[test]
    fn the_bound_keeps_the_oldest_rows_and_says_when_more_were_found() {
        let rows: Vec<Value> = (0..4).map(|i| json!({"n": i})).collect();
        let (kept, truncated) = bounded(rows.clone(), 3);
        assert_eq!(kept, rows[..3]);
        assert!(truncated);
        let (kept, truncated) = bounded(rows[..3].to_vec(), 3);
        assert_eq!(kept.len(), 3);
        assert!(!truncated);
    }

    #[test]
    fn dispatching_stops_at_the_api_usage_limit_of_the_org_or_the_app() {
        let usage = ApiUsage::parse("api-usage=7999/10000").unwrap();
        assert_eq!(api_budget_spent(&usage, 80), None);
        let usage = ApiUsage::parse("api-usage=8000/10000").unwrap();
        let why = api_budget_spent(&usage, 80).unwrap();
        assert!(
            why.contains("80% of the org's daily allocation (8000/10000)"),
            "{why}"
        );
        let usage =
            ApiUsage::parse("api-usage=10/10000; per-app-api-usage=240/250(appName=dealbridge)")
                .unwrap();
        assert!(
            api_budget_spent(&usage, 80)
                .unwrap()
                .contains("the connected app's")
        );
    }

    #[test]
    fn salesforce_datetimes_are_read_in_both_forms() {
        let t = Utc.with_ymd_and_hms(2026, 11, 20, 10, 0, 0).unwrap();
        assert_eq!(parse_sf_datetime("2026-11-20T10:00:00.000+0000"), Some(t));
        assert_eq!(parse_sf_datetime("2026-11-20T10:00:00Z"), Some(t));
        assert_eq!(parse_sf_datetime("yesterday"), None);
    }

    #[test]
    fn settings_default_to_the_documented_values() {
        let s = ReconcileSettings::from_lookup(|_| None).unwrap();
        assert_eq!(s, ReconcileSettings::default());
        assert_eq!(s.grace, Duration::from_secs(30 * 60));
        assert_eq!(s.lookback, Duration::from_secs(7 * 86_400));
        assert_eq!(s.max_per_run, 50);
        assert_eq!(s.max_api_usage_percent, 80);
        let s = ReconcileSettings::from_lookup(lookup(&[
            ("RECONCILER_GRACE_MINUTES", "45"),
            ("RECONCILER_LOOKBACK_DAYS", "3"),
            ("RECONCILER_MAX_PER_RUN", "10"),
        ]))
        .unwrap();
        assert_eq!(
            (s.grace.as_secs(), s.lookback.as_secs(), s.max_per_run),
            (2700, 259_200, 10)
        );
    }

    #[test]
    fn every_bad_setting_is_named_at_once() {
        let err = ReconcileSettings::from_lookup(lookup(&[
            ("RECONCILER_GRACE_MINUTES", "soon"),
            ("RECONCILER_MAX_PER_RUN", "500"),
            ("RECONCILER_MAX_API_USAGE_PERCENT", "0"),
        ]))
        .unwrap_err();
        assert_eq!(err.problems.len(), 3, "{err}");
        assert!(
            err.to_string().contains("RECONCILER_MAX_PER_RUN \"500\""),
            "{err}"
        );
        let err = ReconcileSettings::from_lookup(lookup(&[
            ("RECONCILER_GRACE_MINUTES", "1440"),
            ("RECONCILER_LOOKBACK_DAYS", "1"),
        ]))
        .unwrap_err();
        assert!(err.to_string().contains("must be shorter"), "{err}");
    }

    #[test]
    fn the_report_has_the_documented_shape() {
        let report = ReconcileReport::new(noon(), false, &window());
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(
            json,
            json!({
                "runAt": "2026-11-20T12:00:00Z", "dryRun": false,
                "window": {"modifiedSince": "2026-11-13T12:00:00Z", "modifiedBefore": "2026-11-20T11:30:00Z"},
                "opportunities": {"found": 0, "ids": [], "dispatched": 0, "skipped": [], "failed": []},
                "orders": {"found": 0, "ids": [], "dispatched": 0, "skipped": [], "failed": []},
                "cancellations": {"found": 0, "ids": [], "dispatched": 0, "skipped": [], "failed": []},
                "truncated": false
            })
        );
    }
}
