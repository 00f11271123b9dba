//! `dealbridge reconcile [--since <duration>] [--dry-run]`: one run of the reconciler
//! (`dealbridge_reconciler::handle`, the function's own code), with its report.
//!
//! A real run dispatches the deals it finds onto the deployed queues (the `*_QUEUE_URL`
//! variables), where the deployed workers take them, exactly as the scheduled function does. A dry
//! run loads and plans every candidate and enqueues nothing (no queue is needed).

use std::sync::Arc;
use std::time::Duration;

use dealbridge::dispatch::{Dispatcher, RedispatchPolicy};
use dealbridge::queue::{InMemoryQueue, Queue, QueueUrls, SqsQueue};
use dealbridge::reconcile::{ReconcileReport, ReconcileSettings, SectionReport};
use dealbridge_reconciler::{Deps, ReconcileError, handle};
use serde_json::json;

use crate::error::CliError;
use crate::output::Outcome;
use crate::wiring::{self, Connected};

/// What `reconcile` was asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReconcileOptions {
    /// Overrides the look-back window (`RECONCILER_LOOKBACK_DAYS`).
    pub since: Option<Duration>,
    pub dry_run: bool,
}

/// Reads a duration like `90m`, `2h`, `3d` or `1w` (a whole number and one unit).
pub fn parse_duration(raw: &str) -> Result<Duration, String> {
    let s = raw.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let bad = || {
        format!("{raw:?} is not a duration: use a whole number and a unit, like 90m, 2h, 3d or 1w")
    };
    let n: u64 = number.parse().map_err(|_| bad())?;
    let seconds = match unit {
        "m" | "min" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return Err(bad()),
    };
    if n == 0 {
        return Err(format!("{raw:?}: the duration must be longer than zero"));
    }
    n.checked_mul(seconds)
        .map(Duration::from_secs)
        .ok_or_else(bad)
}

fn human(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        _ if s.is_multiple_of(86_400) => format!("{} days", s / 86_400),
        _ if s.is_multiple_of(3600) => format!("{} hours", s / 3600),
        _ => format!("{} minutes", s / 60),
    }
}

/// The reconciler's settings from the environment, with `--since` as the look-back window.
pub fn settings(since: Option<Duration>) -> Result<ReconcileSettings, CliError> {
    let mut settings = wiring::section(ReconcileSettings::read)?;
    if let Some(since) = since {
        if since <= settings.grace {
            return Err(CliError::Usage(format!(
                "--since {} must be longer than the grace period of {} (RECONCILER_GRACE_MINUTES): deals changed more recently are left to their trigger",
                human(since),
                human(settings.grace)
            )));
        }
        settings.lookback = since;
    }
    Ok(settings)
}

fn section_text(name: &str, s: &SectionReport, dry_run: bool) -> String {
    let verb = if dry_run {
        "would dispatch"
    } else {
        "dispatched"
    };
    let mut text = format!("{name}: found {}, {verb} {}\n", s.found, s.dispatched);
    if let Some(e) = &s.error {
        text.push_str(&format!("  search: {e}\n"));
    }
    if !s.ids.is_empty() {
        text.push_str(&format!("  ids: {}\n", s.ids.join(", ")));
    }
    for k in &s.skipped {
        text.push_str(&format!("  skipped {}: {}\n", k.id, k.reason));
    }
    for f in &s.failed {
        text.push_str(&format!(
            "  FAILED {}: {}{}\n",
            f.id,
            f.error,
            if f.retryable {
                " (the next run tries again)"
            } else {
                ""
            }
        ));
    }
    text
}

/// The report as text.
pub fn report_text(r: &ReconcileReport) -> String {
    let mut text = format!(
        "Reconciler run at {}{}: deals last changed from {} to {}\n",
        r.run_at,
        if r.dry_run {
            " (dry run: nothing enqueued)"
        } else {
            ""
        },
        r.window.modified_since,
        r.window.modified_before
    );
    text.push_str(&section_text("Opportunities", &r.opportunities, r.dry_run));
    text.push_str(&section_text("Orders", &r.orders, r.dry_run));
    text.push_str(&section_text("Cancellations", &r.cancellations, r.dry_run));
    if r.truncated {
        text.push_str("More deals qualified than this run took on; the next run continues.\n");
    }
    if let Some(s) = &r.stopped {
        text.push_str(&format!("Stopped early: {s}\n"));
    }
    if let Some(u) = &r.api_usage {
        text.push_str(&format!("Salesforce API usage: {} of {}\n", u.used, u.max));
    }
    text
}

fn any_failed(r: &ReconcileReport) -> bool {
    [&r.opportunities, &r.orders, &r.cancellations]
        .iter()
        .any(|s| !s.failed.is_empty())
}

/// Runs `reconcile`.
pub async fn reconcile(options: ReconcileOptions) -> Result<Outcome, CliError> {
    let settings = settings(options.since)?;
    let queue: Arc<dyn Queue> = if options.dry_run {
        Arc::new(InMemoryQueue::default())
    } else {
        let urls = wiring::section(QueueUrls::read)?;
        let aws = wiring::aws().await;
        Arc::new(SqsQueue::new(aws_sdk_sqs::Client::new(&aws), urls))
    };
    let connected = Connected::from_env().await?;
    // The real time, never DEALBRIDGE_CLOCK: the search window is compared with LastModifiedDate.
    let clock: Arc<dyn dealbridge::clock::Clock> = Arc::new(dealbridge::clock::SystemClock);
    let deps = Deps {
        dispatcher: Dispatcher::new(
            connected.loader(),
            queue,
            connected.mapping.clone(),
            RedispatchPolicy::default(),
            clock.clone(),
        ),
        salesforce: connected.salesforce.clone(),
        mapping: connected.mapping.clone(),
        clock,
        settings,
    };
    let (report, problem) = match handle(json!({"dryRun": options.dry_run}), &deps).await {
        Ok(report) => (report, None),
        Err(ReconcileError::Incomplete { problems, report }) => (*report, Some(problems)),
        Err(e) => return Err(CliError::Failed(e.to_string())),
    };
    let mut text = report_text(&report);
    if let Some(p) = &problem {
        text.push_str(&format!("The run is incomplete: a search failed: {p}\n"));
    }
    let failed = problem.is_some() || any_failed(&report);
    let json = json!({"report": report, "incomplete": problem});
    Ok(Outcome::new(json, text, failed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_minutes_hours_days_and_weeks() {
        assert_eq!(parse_duration("90m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("3d"), Ok(Duration::from_secs(259_200)));
        assert_eq!(parse_duration("1w"), Ok(Duration::from_secs(604_800)));
        for bad in ["", "h", "2", "2x", "-1d", "1.5h", "0h"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert!(parse_duration("2x").unwrap_err().contains("\"2x\""));
    }

    #[test]
    fn durations_read_back_in_their_largest_whole_unit() {
        assert_eq!(human(Duration::from_secs(1800)), "30 minutes");
        assert_eq!(human(Duration::from_secs(7200)), "2 hours");
        assert_eq!(human(Duration::from_secs(172_800)), "2 days");
    }
}
