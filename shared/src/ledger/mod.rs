//! The idempotency ledger and audit trail: one record per step of a deal, with its status,
//! timestamps, target ids and last error.
//!
//! It guards the steps whose target system has no idempotency key (WHMCS AddOrder): an attempt
//! [`Ledger::begin`]s the step, which atomically gives it a lease (`INPROGRESS` until the Lambda
//! deadline plus a margin, see [`lease_until`]) or tells it someone else holds one, or that the step
//! is done. The attempt saves the target ids the moment the target system answers, all that one
//! answer gave in one write ([`Ledger::record_targets`]), then [`Ledger::complete`]s or [`Ledger::fail`]s the step. An
//! attempt that died leaves an `INPROGRESS` record whose lease runs out; the next `begin` answers
//! [`Begin::Resumed`] with whatever the dead attempt recorded, and the caller reconciles with the
//! target system instead of sending again.
//!
//! The same records answer an operator's "what happened to deal X" ([`Ledger::for_deal`]).
//!
//! Adapters: [`DynamoDbLedger`] (conditional writes, so two attempts never both get the lease) and
//! [`InMemoryLedger`] (the local runner and tests), with the same semantics.
//!
//! Decisions both adapters share:
//! - `started_at` is when the ledger first saw the step and never changes; `updated_at` moves on
//!   every write, and `expires_at` (the TTL) is `updated_at` plus the retention.
//! - Targets are kept across attempts and merged, never dropped: a `FAILED` step that had created
//!   a WHMCS order still shows its id to the next attempt.
//! - `last_error` survives a new `begin` (an operator sees why the previous attempt failed while
//!   the retry runs) and is cleared by `complete`.
//! - `fail` also records a step that was never begun (it creates a `FAILED` record with 0
//!   attempts), so a validation failure before any attempt still leaves an audit entry; it may
//!   overwrite a `FAILED` record's error, but never a `COMPLETED` step.
//! - A repeat of a `complete` or `record_targets` that already landed (the same targets on a
//!   `COMPLETED` step) succeeds, because the AWS SDK retries requests whose answer was lost.
//! - Instants are stored to the millisecond as RFC 3339 text and must lie in the years 1970 to
//!   9999 (they are compared as text); the ledger never reads the clock itself.

mod dynamodb;
mod memory;
mod record;

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};

pub use dynamodb::{
    DEFAULT_RETENTION_DAYS, DynamoDbLedger, LedgerSettings, PARTITION_KEY, RETENTION_VARIABLE,
    SORT_KEY, TABLE_VARIABLE, TTL_ATTRIBUTE,
};
pub use memory::InMemoryLedger;
pub use record::{Begin, MAX_ERROR_CHARS, StepRecord, StepStatus, latest_instant};

/// How long after the Lambda deadline an attempt's lease lasts: covers clock skew between the
/// function and whoever begins the step next.
pub const LEASE_MARGIN: Duration = Duration::from_secs(30);

/// Records are kept this long after their last change unless configured otherwise.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(DEFAULT_RETENTION_DAYS * 24 * 3600);

/// Until when an attempt started at `now` holds its lease: the invocation's `deadline` plus
/// [`LEASE_MARGIN`] (a Lambda invocation cannot outlive its deadline), or `now + fallback` when
/// the deadline is unknown (the local runner). A deadline already past counts from `now`. Capped
/// at [`latest_instant`].
pub fn lease_until(
    now: DateTime<Utc>,
    deadline: Option<DateTime<Utc>>,
    fallback: Duration,
) -> DateTime<Utc> {
    let (from, extra) = match deadline {
        Some(d) => (d.max(now), LEASE_MARGIN),
        None => (now, fallback),
    };
    TimeDelta::from_std(extra)
        .ok()
        .and_then(|e| from.checked_add_signed(e))
        .map_or(latest_instant(), |t| t.min(latest_instant()))
}

/// The invocation deadline as `lambda_runtime::Context::deadline` gives it (milliseconds since the
/// epoch).
pub fn deadline_from_epoch_millis(millis: u64) -> Option<DateTime<Utc>> {
    i64::try_from(millis)
        .ok()
        .and_then(DateTime::from_timestamp_millis)
}

/// What went wrong, beyond retryable or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LedgerErrorKind {
    /// The record is not in the state the call needs: another attempt got there first, or the
    /// step was never begun. Not an outage.
    Conflict,
    /// The store did not answer: throttling, a server error, a timeout.
    Unavailable,
    /// A request the store refuses or a configuration problem: a missing table, an invalid key, a
    /// malformed record, a missing variable.
    Invalid,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("idempotency ledger: {message}")]
pub struct LedgerError {
    pub kind: LedgerErrorKind,
    pub message: String,
    /// Whether the same call may succeed later.
    pub retryable: bool,
}

impl LedgerError {
    pub fn conflict(message: String, retryable: bool) -> LedgerError {
        LedgerError {
            kind: LedgerErrorKind::Conflict,
            message,
            retryable,
        }
    }

    pub fn unavailable(message: String) -> LedgerError {
        LedgerError {
            kind: LedgerErrorKind::Unavailable,
            message,
            retryable: true,
        }
    }

    pub fn invalid(message: String) -> LedgerError {
        LedgerError {
            kind: LedgerErrorKind::Invalid,
            message,
            retryable: false,
        }
    }

    pub fn is_conflict(&self) -> bool {
        self.kind == LedgerErrorKind::Conflict
    }
}

/// Where step records live. Every method takes the instant it acts at: the ledger never reads the
/// clock.
#[async_trait]
pub trait Ledger: Send + Sync {
    /// Tries to take the step's lease until `lease_until` (see [`lease_until`]). Race-free: of
    /// concurrent begins on one step, exactly one gets `Started` or `Resumed`.
    async fn begin(
        &self,
        deal_id: &str,
        step: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Begin, LedgerError>;

    /// Saves target ids the moment an external system answers (before anything else can fail),
    /// keeping the lease: every id of one answer in one atomic write, so a crash never leaves
    /// some of them recorded and the rest lost. Needs an `INPROGRESS` record.
    async fn record_targets(
        &self,
        deal_id: &str,
        step: &str,
        targets: &BTreeMap<String, String>,
        now: DateTime<Utc>,
    ) -> Result<(), LedgerError>;

    /// Marks an `INPROGRESS` step `COMPLETED`, merging `targets` into the recorded ones, releasing
    /// the lease and clearing the last error.
    async fn complete(
        &self,
        deal_id: &str,
        step: &str,
        targets: &BTreeMap<String, String>,
        now: DateTime<Utc>,
    ) -> Result<StepRecord, LedgerError>;

    /// Marks the step `FAILED` with `error` (cut to [`MAX_ERROR_CHARS`]) and releases the lease;
    /// the next `begin` starts again. Creates the record if the step was never begun; refuses a
    /// `COMPLETED` step.
    async fn fail(
        &self,
        deal_id: &str,
        step: &str,
        error: &str,
        now: DateTime<Utc>,
    ) -> Result<StepRecord, LedgerError>;

    /// Records how a step that needs no lease ended or stands (the Maxio steps, whose natural
    /// keys make them idempotent): an unconditional upsert that counts the attempt, sets the
    /// status, replaces the targets when `targets` is not empty, and keeps `error` as the last
    /// error (or clears it). It never touches a step guarded by [`Ledger::begin`], because
    /// those steps are not noted.
    async fn note(
        &self,
        deal_id: &str,
        step: &str,
        status: StepStatus,
        targets: &BTreeMap<String, String>,
        error: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<StepRecord, LedgerError>;

    /// The step's record, read consistently.
    async fn get(&self, deal_id: &str, step: &str) -> Result<Option<StepRecord>, LedgerError>;

    /// Every step of a deal (the operator's "what happened to deal X"), by step name.
    async fn for_deal(&self, deal_id: &str) -> Result<Vec<StepRecord>, LedgerError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    #[test]
    fn the_lease_ends_thirty_seconds_after_the_lambda_deadline() {
        let now = at("2026-11-28T10:00:00Z");
        let deadline = at("2026-11-28T10:15:00Z");
        assert_eq!(
            lease_until(now, Some(deadline), Duration::from_secs(60)),
            at("2026-11-28T10:15:30Z")
        );
    }

    #[test]
    fn without_a_deadline_the_lease_is_the_fallback_from_now() {
        let now = at("2026-11-28T10:00:00Z");
        assert_eq!(
            lease_until(now, None, Duration::from_secs(600)),
            at("2026-11-28T10:10:00Z")
        );
    }

    #[test]
    fn a_deadline_already_past_counts_from_now() {
        let now = at("2026-11-28T10:00:00Z");
        assert_eq!(
            lease_until(now, Some(at("2026-11-28T09:00:00Z")), Duration::ZERO),
            at("2026-11-28T10:00:30Z")
        );
    }

    #[test]
    fn a_huge_fallback_is_capped_at_the_last_storable_instant() {
        let now = at("2026-11-28T10:00:00Z");
        assert_eq!(lease_until(now, None, Duration::MAX), latest_instant());
        assert_eq!(
            record::timestamp_text(latest_instant()),
            "9999-12-31T23:59:59.999Z"
        );
    }

    #[test]
    fn the_lambda_context_deadline_is_read_as_epoch_milliseconds() {
        assert_eq!(
            deadline_from_epoch_millis(1_795_860_000_123),
            Some(at("2026-11-28T10:00:00.123Z"))
        );
        assert_eq!(deadline_from_epoch_millis(u64::MAX), None);
    }
}
