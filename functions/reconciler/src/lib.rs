//! dealbridge reconciler: run by EventBridge Scheduler (every 15 minutes by default), it finds the
//! deals whose trigger was lost (won Opportunities without a Maxio subscription, approved Orders
//! without a WHMCS order, cancellations not carried out, due or withdrawn; the rules are in
//! [`dealbridge::reconcile`]) with one Salesforce call, and dispatches each through the same
//! idempotent path as the intake: Opportunities by their Id (Maxio work, cancellations), Orders by
//! theirs (WHMCS work).
//!
//! A run is bounded: at most the per-run bound of each kind, no new dispatch once the org's API
//! usage reaches its limit or the run's time budget is spent. What it found and did is returned as
//! JSON and logged. A deal whose dispatch fails is listed and tried again by the next run; a
//! search that fails fails the invocation, so Scheduler retries it and its dead-letter alarm
//! fires.

use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use dealbridge::clock::Clock;
use dealbridge::dispatch::{DispatchOutcome, DispatchRequest, Dispatcher};
use dealbridge::mapping::Mapping;
use dealbridge::reconcile::{
    CANCELLATIONS, Candidate, FailedDeal, OPPORTUNITIES, ORDERS, ReconcileReport,
    ReconcileSettings, SearchError, SectionReport, SkippedDeal, Window, api_budget_spent, bounded,
    cancellation_candidate, opportunity_candidate, order_candidate, search_plan,
};
use dealbridge::salesforce::{QueryResult, SalesforceClient, SalesforceError};
use serde_json::Value;
use tracing::{error, info, warn};

pub struct Deps {
    pub dispatcher: Dispatcher,
    /// The client the search runs on (and whose last `Sforce-Limit-Info` the API budget reads).
    pub salesforce: Arc<SalesforceClient>,
    pub mapping: Arc<Mapping>,
    pub clock: Arc<dyn Clock>,
    pub settings: ReconcileSettings,
}

impl Deps {
    pub fn new(
        wiring: &dealbridge::wiring::Wiring,
    ) -> Result<Deps, dealbridge::wiring::StartError> {
        let settings = wiring.settings.reconcile.clone().ok_or_else(|| {
            dealbridge::wiring::StartError::new("the reconciler configuration was not read")
        })?;
        Ok(Deps {
            dispatcher: wiring.dispatcher(),
            salesforce: wiring.salesforce.clone(),
            mapping: wiring.mapping(),
            clock: wiring.platform.clock.clone(),
            settings,
        })
    }
}

/// Serves the schedule's invocations until the runtime stops.
pub async fn serve(wiring: &dealbridge::wiring::Wiring) -> Result<(), lambda_runtime::Error> {
    let deps = Deps::new(wiring)?;
    let deps = &deps;
    lambda_runtime::run(lambda_runtime::service_fn(
        move |event: lambda_runtime::LambdaEvent<serde_json::Value>| async move {
            let outcome = handle(event.payload, deps).await;
            dealbridge::metrics::flush("reconciler");
            outcome.map_err(lambda_runtime::Error::from)
        },
    ))
    .await
}

/// What the schedule's payload asks for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Invocation {
    /// The time the schedule fired (`scheduledTime` of the Scheduler input, or `time` of an
    /// EventBridge scheduled event): the run time in correlation ids, stable across retries.
    pub scheduled_time: Option<DateTime<Utc>>,
    /// Load and plan every candidate, enqueue nothing (for a manual invocation).
    pub dry_run: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error("the event is not a reconciler schedule payload: {0}")]
    InvalidEvent(String),
    #[error("the Salesforce search failed: {0}")]
    Search(#[source] SalesforceError),
    /// A search failed (for example a mapped field the org does not have); the other kind of deal
    /// was still reconciled, as the report shows.
    #[error("the reconciler could not search {problems}")]
    Incomplete {
        problems: String,
        report: Box<ReconcileReport>,
    },
}

/// Reads the schedule's payload: the Scheduler input the template sends
/// (`{"scheduledTime", "scheduleArn", ...}`), an EventBridge scheduled event (`time`), or an empty
/// object; `dryRun` may be set for a manual invocation. Unknown fields are ignored.
pub fn parse(event: &Value) -> Result<Invocation, ReconcileError> {
    let invalid = |m: String| ReconcileError::InvalidEvent(m);
    let fields = match event {
        Value::Null => return Ok(Invocation::default()),
        Value::Object(fields) => fields,
        other => return Err(invalid(format!("expected a JSON object, got {other}"))),
    };
    let mut invocation = Invocation::default();
    for key in ["scheduledTime", "time"] {
        match fields.get(key) {
            None | Some(Value::Null) => continue,
            Some(Value::String(s)) => {
                let t = DateTime::parse_from_rfc3339(s.trim())
                    .map_err(|e| invalid(format!("{key} {s:?} is not an RFC 3339 time: {e}")))?;
                invocation.scheduled_time = Some(t.with_timezone(&Utc));
                break;
            }
            Some(other) => return Err(invalid(format!("{key} must be a string, got {other}"))),
        }
    }
    match fields.get("dryRun") {
        None | Some(Value::Null) => {}
        Some(Value::Bool(b)) => invocation.dry_run = *b,
        Some(other) => {
            return Err(invalid(format!(
                "dryRun must be true or false, got {other}"
            )));
        }
    }
    Ok(invocation)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Opportunity,
    Order,
    Cancellation,
}

impl Kind {
    fn section(self, report: &mut ReconcileReport) -> &mut SectionReport {
        match self {
            Kind::Opportunity => &mut report.opportunities,
            Kind::Order => &mut report.orders,
            Kind::Cancellation => &mut report.cancellations,
        }
    }

    fn candidate(
        self,
        row: &Value,
        mapping: &Mapping,
        window: &Window,
    ) -> Result<Candidate, String> {
        match self {
            Kind::Opportunity => opportunity_candidate(row, mapping),
            Kind::Order => order_candidate(row, mapping),
            Kind::Cancellation => cancellation_candidate(row, mapping, window),
        }
    }
}

/// The rows one search returned, whether Salesforce had more pages, or why there are none.
type Found = Result<(Vec<Value>, bool), Searched>;

enum Searched {
    /// The mapping cannot express the search (deliberate: the org lacks the field).
    Off(SearchError),
    /// The search was sent and failed.
    Failed(String),
}

/// Sends every search in one Composite request and splits the answer.
async fn search(
    deps: &Deps,
    window: &Window,
) -> Result<[(Kind, Found, &'static str); 3], ReconcileError> {
    let plan = search_plan(
        &deps.mapping,
        window,
        deps.settings.max_per_run,
        &deps.salesforce.data_path(),
    );
    let mut response = match &plan.request {
        Some(request) => Some(
            deps.salesforce
                .composite(request)
                .await
                .map_err(ReconcileError::Search)?,
        ),
        None => None,
    };
    let mut take = |planned: Result<(), SearchError>, reference: &str| -> Found {
        planned.map_err(Searched::Off)?;
        let body = response
            .as_mut()
            .ok_or_else(|| Searched::Failed("the search was not sent".into()))?
            .take(reference)
            .map_err(|e| Searched::Failed(e.to_string()))?;
        let page: QueryResult = serde_json::from_value(body)
            .map_err(|e| Searched::Failed(format!("query result: {e}")))?;
        Ok((page.records, !page.done))
    };
    Ok([
        (
            Kind::Opportunity,
            take(plan.opportunities, OPPORTUNITIES),
            OPPORTUNITIES,
        ),
        (Kind::Order, take(plan.orders, ORDERS), ORDERS),
        (
            Kind::Cancellation,
            take(plan.cancellations, CANCELLATIONS),
            CANCELLATIONS,
        ),
    ])
}

/// Why no more dispatches start, if the time or API budget is spent.
fn budget_spent(deps: &Deps, started: Instant) -> Option<String> {
    let budget = deps.settings.time_budget;
    if started.elapsed() >= budget {
        return Some(format!(
            "the run's time budget of {} s is spent; left for the next run",
            budget.as_secs()
        ));
    }
    deps.salesforce
        .api_usage()
        .and_then(|usage| api_budget_spent(&usage, deps.settings.max_api_usage_percent))
}

enum Dispatched {
    Yes,
    Skipped(String),
    Failed { error: String, retryable: bool },
}

async fn dispatch(
    deps: &Deps,
    candidate: &Candidate,
    run_at: DateTime<Utc>,
    dry_run: bool,
) -> Dispatched {
    let request = DispatchRequest {
        deal: candidate.deal.clone(),
        correlation_id: candidate.correlation_id(run_at),
        dry_run,
        attempt: 0,
        idempotency_key: Some(candidate.idempotency_key()),
        delayed_key: None,
    };
    let deal = candidate.deal.id();
    match deps.dispatcher.dispatch(&request).await {
        Ok(DispatchOutcome::Planned { messages, plan, .. }) if messages.is_empty() => {
            let reasons: Vec<String> = plan.skipped.into_iter().map(|s| s.reason).collect();
            let reason = if reasons.is_empty() {
                "the plan has nothing to do".to_string()
            } else {
                reasons.join("; ")
            };
            info!(%deal, correlation_id = %request.correlation_id, %reason, "reconciled deal needs no work");
            Dispatched::Skipped(reason)
        }
        Ok(_) => {
            info!(%deal, correlation_id = %request.correlation_id, dry_run, "reconciled deal dispatched");
            Dispatched::Yes
        }
        Err(e) => {
            warn!(%deal, correlation_id = %request.correlation_id, error = %e, "reconciled deal not dispatched; the next run tries again");
            Dispatched::Failed {
                error: e.to_string(),
                retryable: e.is_retryable(),
            }
        }
    }
}

async fn run(event: &Value, deps: &Deps) -> Result<(ReconcileReport, Vec<String>), ReconcileError> {
    let invocation = parse(event)?;
    let started = Instant::now();
    let window = Window::new(deps.clock.now(), &deps.settings);
    let run_at = invocation.scheduled_time.unwrap_or(window.now);
    let mut report = ReconcileReport::new(run_at, invocation.dry_run, &window);
    let mut failures = Vec::new();

    let searches = search(deps, &window).await?;
    let mut work: Vec<(Kind, Candidate)> = Vec::new();
    for (kind, found, name) in searches {
        let (rows, more_pages) = match found {
            Ok(found) => found,
            Err(Searched::Off(e)) => {
                warn!(search = name, reason = %e, "reconciler search off");
                kind.section(&mut report).error = Some(e.to_string());
                continue;
            }
            Err(Searched::Failed(e)) => {
                failures.push(format!("{name}: {e}"));
                kind.section(&mut report).error = Some(e);
                continue;
            }
        };
        let (rows, more) = bounded(rows, deps.settings.max_per_run);
        report.truncated |= more || more_pages;
        let section = kind.section(&mut report);
        section.found = rows.len();
        for row in &rows {
            let id = row
                .get("Id")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            section.ids.push(id.clone());
            match kind.candidate(row, &deps.mapping, &window) {
                // A deal two searches found is dispatched once: dispatch plans all its work.
                Ok(candidate) if work.iter().any(|(_, c)| c.deal == candidate.deal) => {
                    section.skipped.push(SkippedDeal {
                        id,
                        reason: "found by another search too; dispatched once".into(),
                    })
                }
                Ok(candidate) => work.push((kind, candidate)),
                Err(reason) => section.skipped.push(SkippedDeal { id, reason }),
            }
        }
    }

    for (kind, candidate) in work {
        if report.stopped.is_none() {
            report.stopped = budget_spent(deps, started);
        }
        let id = candidate.deal.id().to_string();
        if let Some(reason) = report.stopped.clone() {
            report.truncated = true;
            kind.section(&mut report)
                .skipped
                .push(SkippedDeal { id, reason });
            continue;
        }
        let outcome = dispatch(deps, &candidate, run_at, invocation.dry_run).await;
        let section = kind.section(&mut report);
        match outcome {
            Dispatched::Yes => section.dispatched += 1,
            Dispatched::Skipped(reason) => section.skipped.push(SkippedDeal { id, reason }),
            Dispatched::Failed { error, retryable } => section.failed.push(FailedDeal {
                id,
                error,
                retryable,
            }),
        }
    }
    report.api_usage = deps.salesforce.api_usage();
    Ok((report, failures))
}

/// Runs one reconciliation. The report is logged (one JSON line) and returned; if a search failed,
/// the invocation fails with the report attached, after the other kind of deal was reconciled.
pub async fn handle(event: Value, deps: &Deps) -> Result<ReconcileReport, ReconcileError> {
    let (report, failures) = run(&event, deps)
        .await
        .inspect_err(|e| error!(error = %e, "reconciler run failed"))?;
    let json = serde_json::to_string(&report).unwrap_or_default();
    if failures.is_empty() {
        info!(result = %json, "reconciler run");
        Ok(report)
    } else {
        error!(result = %json, "reconciler run incomplete: a search failed");
        Err(ReconcileError::Incomplete {
            problems: failures.join("; "),
            report: Box::new(report),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_scheduler_input_gives_the_run_time() {
        let i = parse(&json!({
            "source": "dealbridge.reconciler", "scheduledTime": "2026-11-20T12:00:00Z",
            "scheduleArn": "arn:aws:scheduler:us-east-1:123456789012:schedule/default/x",
            "attemptNumber": "1"
        }))
        .unwrap();
        assert_eq!(
            i.scheduled_time.map(|t| t.to_rfc3339()),
            Some("2026-11-20T12:00:00+00:00".to_string())
        );
        assert!(!i.dry_run);
    }

    #[test]
    fn an_eventbridge_scheduled_event_or_an_empty_payload_is_accepted() {
        let i = parse(&json!({"detail-type": "Scheduled Event", "time": "2026-11-20T12:15:00Z", "detail": {}}))
            .unwrap();
        assert!(i.scheduled_time.is_some());
        assert_eq!(parse(&json!({})).unwrap(), Invocation::default());
        assert_eq!(parse(&Value::Null).unwrap(), Invocation::default());
        assert!(parse(&json!({"dryRun": true})).unwrap().dry_run);
    }

    #[test]
    fn a_malformed_payload_is_named() {
        for bad in [
            json!([]),
            json!({"scheduledTime": "<aws.scheduler.scheduled-time>"}),
            json!({"scheduledTime": 1795176000}),
            json!({"dryRun": "yes"}),
        ] {
            let err = parse(&bad).unwrap_err();
            assert!(matches!(err, ReconcileError::InvalidEvent(_)), "{err}");
        }
    }
}
