//! What the ledger keeps about one step of one deal, what [`super::Ledger::begin`] answers, and
//! the rules both adapters share: key checks, millisecond timestamps, the retention expiry and
//! the length limit on stored errors.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use super::LedgerError;

/// Where a step stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum StepStatus {
    /// An attempt holds the lease (until [`StepRecord::lease_until`]).
    #[serde(rename = "INPROGRESS")]
    InProgress,
    /// The step had its effect; its target ids are recorded.
    #[serde(rename = "COMPLETED")]
    Completed,
    /// The last attempt failed (see [`StepRecord::last_error`]); the next `begin` starts again.
    #[serde(rename = "FAILED")]
    Failed,
}

impl StepStatus {
    /// The stored form: `INPROGRESS`, `COMPLETED` or `FAILED`.
    pub fn as_str(self) -> &'static str {
        match self {
            StepStatus::InProgress => "INPROGRESS",
            StepStatus::Completed => "COMPLETED",
            StepStatus::Failed => "FAILED",
        }
    }

    /// Reads the stored form.
    pub fn parse(s: &str) -> Option<StepStatus> {
        match s {
            "INPROGRESS" => Some(StepStatus::InProgress),
            "COMPLETED" => Some(StepStatus::Completed),
            "FAILED" => Some(StepStatus::Failed),
            _ => None,
        }
    }
}

impl fmt::Display for StepStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One step of one deal: the idempotency guard and the audit entry at once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepRecord {
    /// The Opportunity or Order Id the step belongs to (DynamoDB partition key `deal`).
    pub deal_id: String,
    /// The step's name, e.g. `whmcs-provision` or `801...:whmcs-provision` (sort key `step`).
    pub step: String,
    pub status: StepStatus,
    /// How many times `begin` gave an attempt the lease (0 for a step that failed before any
    /// attempt began, see [`super::Ledger::fail`]).
    pub attempts: u32,
    /// When the ledger first saw the step; never changes afterwards.
    pub started_at: DateTime<Utc>,
    /// The last change.
    pub updated_at: DateTime<Utc>,
    /// While `INPROGRESS`: after this instant the attempt is presumed dead. `None` otherwise.
    pub lease_until: Option<DateTime<Utc>>,
    /// Ids in the target systems, e.g. `whmcs_order_id`. Kept across attempts, so a new attempt
    /// sees what an earlier one created.
    pub targets: BTreeMap<String, String>,
    /// Why the last attempt failed; kept while the step is retried, cleared on completion.
    pub last_error: Option<String>,
    /// DynamoDB's TTL attribute (epoch seconds): `updated_at` plus the retention.
    pub expires_at: i64,
}

impl StepRecord {
    /// A target id, if recorded.
    pub fn target(&self, name: &str) -> Option<&str> {
        self.targets.get(name).map(String::as_str)
    }

    /// Whether an attempt holds a lease that has not run out at `now`.
    pub fn lease_is_live(&self, now: DateTime<Utc>) -> bool {
        self.status == StepStatus::InProgress && self.lease_until.is_some_and(|l| l >= now)
    }
}

/// What [`super::Ledger::begin`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Begin {
    /// There was no record, or a `FAILED` one: this attempt holds the lease now (attempts
    /// incremented). The record still carries the targets and the error of earlier attempts; a
    /// target already there means an earlier attempt got that far.
    Started(StepRecord),
    /// An `INPROGRESS` record whose lease had run out: this attempt holds the lease now, but the
    /// dead attempt may have had its effect. Reconcile with the target system before acting
    /// (for WHMCS: GetOrders for the client); never re-send blindly. The record carries the
    /// targets the dead attempt recorded.
    Resumed(StepRecord),
    /// An `INPROGRESS` record with a live lease: another attempt is on it. Retry later.
    Busy(StepRecord),
    /// `COMPLETED`: nothing to do; the record has the target ids.
    Done(StepRecord),
}

impl Begin {
    pub fn record(&self) -> &StepRecord {
        match self {
            Begin::Started(r) | Begin::Resumed(r) | Begin::Busy(r) | Begin::Done(r) => r,
        }
    }

    pub fn into_record(self) -> StepRecord {
        match self {
            Begin::Started(r) | Begin::Resumed(r) | Begin::Busy(r) | Begin::Done(r) => r,
        }
    }

    /// Whether this attempt now holds the lease (`Started` or `Resumed`).
    pub fn holds_lease(&self) -> bool {
        matches!(self, Begin::Started(_) | Begin::Resumed(_))
    }
}

/// DynamoDB's limits on key attributes, in bytes (partition 2048, sort 1024).
const MAX_DEAL_BYTES: usize = 2048;
const MAX_STEP_BYTES: usize = 1024;

/// Stored errors are cut to this many characters, so a huge error body cannot push an item past
/// DynamoDB's 400 KB.
pub const MAX_ERROR_CHARS: usize = 4000;

pub(crate) fn check_key(deal_id: &str, step: &str) -> Result<(), LedgerError> {
    if deal_id.is_empty() || step.is_empty() {
        return Err(LedgerError::invalid(format!(
            "a ledger key needs a deal and a step (got deal {deal_id:?}, step {step:?})"
        )));
    }
    if deal_id.len() > MAX_DEAL_BYTES || step.len() > MAX_STEP_BYTES {
        return Err(LedgerError::invalid(format!(
            "the ledger key is too long (deal {} bytes of {MAX_DEAL_BYTES}, step {} bytes of \
             {MAX_STEP_BYTES})",
            deal_id.len(),
            step.len()
        )));
    }
    Ok(())
}

pub(crate) fn check_target_name(name: &str) -> Result<(), LedgerError> {
    if name.is_empty() {
        return Err(LedgerError::invalid(
            "a target needs a non-empty name".to_string(),
        ));
    }
    Ok(())
}

/// The latest instant the ledger stores: timestamps are RFC 3339 strings compared as text, which
/// orders them correctly only for four-digit years.
pub fn latest_instant() -> DateTime<Utc> {
    DateTime::from_timestamp_millis(253_402_300_799_999).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// Timestamps are kept to the millisecond (what the stored text holds), and must fall between
/// 1970 and the year 9999.
pub(crate) fn instant(t: DateTime<Utc>) -> Result<DateTime<Utc>, LedgerError> {
    if t.timestamp() < 0 || t > latest_instant() {
        return Err(LedgerError::invalid(format!(
            "the instant {t} is outside what the ledger stores (1970 to 9999)"
        )));
    }
    Ok(DateTime::from_timestamp_millis(t.timestamp_millis()).unwrap_or(t))
}

/// The stored text of an instant: RFC 3339, UTC, milliseconds, e.g. `2026-11-28T01:58:29.123Z`.
pub(crate) fn timestamp_text(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The TTL value: `updated_at` plus the retention, in epoch seconds.
pub(crate) fn expiry(updated_at: DateTime<Utc>, retention: Duration) -> i64 {
    TimeDelta::from_std(retention)
        .ok()
        .and_then(|r| updated_at.checked_add_signed(r))
        .map_or(i64::MAX, |t| t.timestamp())
}

/// An error cut to [`MAX_ERROR_CHARS`] characters.
pub(crate) fn clip_error(error: &str) -> String {
    match error.char_indices().nth(MAX_ERROR_CHARS) {
        Some((i, _)) => format!("{}…", &error[..i]),
        None => error.to_string(),
    }
}

/// Why a write that needs an `INPROGRESS` record was refused.
pub(crate) fn not_in_progress(deal_id: &str, step: &str, seen: Option<&StepRecord>) -> LedgerError {
    let state = match seen {
        None => "there is no record of it".to_string(),
        Some(r) => format!("it is {}", r.status),
    };
    LedgerError::conflict(
        format!("no step in progress for deal {deal_id} step {step}: {state}"),
        false,
    )
}

/// A repeat of a write that already landed (the SDK retries a request whose answer was lost):
/// the step is `COMPLETED` and holds every given target with the same value.
pub(crate) fn already_holds(seen: Option<&StepRecord>, targets: &BTreeMap<String, String>) -> bool {
    seen.is_some_and(|r| {
        r.status == StepStatus::Completed
            && targets.iter().all(|(k, v)| r.targets.get(k) == Some(v))
    })
}
