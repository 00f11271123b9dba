//! The ledger in memory, for the local runner and tests, with the DynamoDB adapter's semantics
//! (one lock stands in for the conditional writes).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::record::{
    already_holds, check_key, check_target_name, clip_error, expiry, instant, not_in_progress,
};
use super::{Begin, DEFAULT_RETENTION, Ledger, LedgerError, StepRecord, StepStatus};

type Key = (String, String);

/// The ledger in memory; clones share the records.
#[derive(Clone)]
pub struct InMemoryLedger {
    records: Arc<Mutex<BTreeMap<Key, StepRecord>>>,
    retention: Duration,
}

impl Default for InMemoryLedger {
    fn default() -> Self {
        InMemoryLedger::new(DEFAULT_RETENTION)
    }
}

impl InMemoryLedger {
    pub fn new(retention: Duration) -> Self {
        InMemoryLedger {
            records: Arc::new(Mutex::new(BTreeMap::new())),
            retention,
        }
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<Key, StepRecord>> {
        self.records.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every record, ordered by deal then step.
    pub fn records(&self) -> Vec<StepRecord> {
        self.lock().values().cloned().collect()
    }

    fn key(deal_id: &str, step: &str) -> Key {
        (deal_id.to_string(), step.to_string())
    }

    fn touch(&self, record: &mut StepRecord, now: DateTime<Utc>) {
        record.updated_at = now;
        record.expires_at = expiry(now, self.retention);
    }
}

#[async_trait]
impl Ledger for InMemoryLedger {
    async fn begin(
        &self,
        deal_id: &str,
        step: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Begin, LedgerError> {
        check_key(deal_id, step)?;
        let (now, lease) = (instant(now)?, instant(lease_until)?);
        let mut records = self.lock();
        let record = records
            .entry(Self::key(deal_id, step))
            .or_insert_with(|| StepRecord {
                deal_id: deal_id.to_string(),
                step: step.to_string(),
                status: StepStatus::Failed,
                attempts: 0,
                started_at: now,
                updated_at: now,
                lease_until: None,
                targets: BTreeMap::new(),
                last_error: None,
                expires_at: 0,
            });
        let resumed = match record.status {
            StepStatus::Completed => return Ok(Begin::Done(record.clone())),
            StepStatus::InProgress if record.lease_is_live(now) => {
                return Ok(Begin::Busy(record.clone()));
            }
            StepStatus::InProgress => true,
            StepStatus::Failed => false,
        };
        record.status = StepStatus::InProgress;
        record.attempts = record.attempts.saturating_add(1);
        record.lease_until = Some(lease);
        self.touch(record, now);
        Ok(if resumed {
            Begin::Resumed(record.clone())
        } else {
            Begin::Started(record.clone())
        })
    }

    async fn record_targets(
        &self,
        deal_id: &str,
        step: &str,
        targets: &BTreeMap<String, String>,
        now: DateTime<Utc>,
    ) -> Result<(), LedgerError> {
        check_key(deal_id, step)?;
        for name in targets.keys() {
            check_target_name(name)?;
        }
        let now = instant(now)?;
        let mut records = self.lock();
        match records.get_mut(&Self::key(deal_id, step)) {
            Some(r) if r.status == StepStatus::InProgress => {
                r.targets
                    .extend(targets.iter().map(|(k, v)| (k.clone(), v.clone())));
                self.touch(r, now);
                Ok(())
            }
            seen => {
                let seen = seen.map(|r| &*r);
                if already_holds(seen, targets) {
                    Ok(())
                } else {
                    Err(not_in_progress(deal_id, step, seen))
                }
            }
        }
    }

    async fn complete(
        &self,
        deal_id: &str,
        step: &str,
        targets: &BTreeMap<String, String>,
        now: DateTime<Utc>,
    ) -> Result<StepRecord, LedgerError> {
        check_key(deal_id, step)?;
        for name in targets.keys() {
            check_target_name(name)?;
        }
        let now = instant(now)?;
        let mut records = self.lock();
        match records.get_mut(&Self::key(deal_id, step)) {
            Some(r) if r.status == StepStatus::InProgress => {
                r.status = StepStatus::Completed;
                r.targets
                    .extend(targets.iter().map(|(k, v)| (k.clone(), v.clone())));
                r.lease_until = None;
                r.last_error = None;
                self.touch(r, now);
                Ok(r.clone())
            }
            seen => {
                let seen = seen.map(|r| &*r);
                match seen {
                    Some(r) if already_holds(seen, targets) => Ok(r.clone()),
                    _ => Err(not_in_progress(deal_id, step, seen)),
                }
            }
        }
    }

    async fn fail(
        &self,
        deal_id: &str,
        step: &str,
        error: &str,
        now: DateTime<Utc>,
    ) -> Result<StepRecord, LedgerError> {
        check_key(deal_id, step)?;
        let now = instant(now)?;
        let mut records = self.lock();
        let key = Self::key(deal_id, step);
        if let Some(r) = records.get(&key)
            && r.status == StepStatus::Completed
        {
            return Err(LedgerError::conflict(
                format!(
                    "deal {deal_id} step {step} is already COMPLETED; a failure is not recorded \
                     over it"
                ),
                false,
            ));
        }
        let record = records.entry(key).or_insert_with(|| StepRecord {
            deal_id: deal_id.to_string(),
            step: step.to_string(),
            status: StepStatus::Failed,
            attempts: 0,
            started_at: now,
            updated_at: now,
            lease_until: None,
            targets: BTreeMap::new(),
            last_error: None,
            expires_at: 0,
        });
        record.status = StepStatus::Failed;
        record.lease_until = None;
        record.last_error = Some(clip_error(error));
        self.touch(record, now);
        Ok(record.clone())
    }

    async fn note(
        &self,
        deal_id: &str,
        step: &str,
        status: StepStatus,
        targets: &BTreeMap<String, String>,
        error: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<StepRecord, LedgerError> {
        check_key(deal_id, step)?;
        for name in targets.keys() {
            check_target_name(name)?;
        }
        let now = instant(now)?;
        let mut records = self.lock();
        let record = records
            .entry(Self::key(deal_id, step))
            .or_insert_with(|| StepRecord {
                deal_id: deal_id.to_string(),
                step: step.to_string(),
                status,
                attempts: 0,
                started_at: now,
                updated_at: now,
                lease_until: None,
                targets: BTreeMap::new(),
                last_error: None,
                expires_at: 0,
            });
        record.status = status;
        record.attempts += 1;
        record.lease_until = None;
        if !targets.is_empty() {
            record.targets = targets.clone();
        }
        record.last_error = error.map(clip_error);
        self.touch(record, now);
        Ok(record.clone())
    }

    async fn get(&self, deal_id: &str, step: &str) -> Result<Option<StepRecord>, LedgerError> {
        check_key(deal_id, step)?;
        Ok(self.lock().get(&Self::key(deal_id, step)).cloned())
    }

    async fn for_deal(&self, deal_id: &str) -> Result<Vec<StepRecord>, LedgerError> {
        check_key(deal_id, "-")?;
        Ok(self
            .lock()
            .values()
            .filter(|r| r.deal_id == deal_id)
            .cloned()
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::{LedgerErrorKind, MAX_ERROR_CHARS};

    const DEAL: &str = "0065g00000AbCdEAAV";
    const STEP: &str = "8015g00000XyZaBAAV:whmcs-provision";

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    fn t0() -> DateTime<Utc> {
        at("2026-11-28T10:00:00Z")
    }

    fn mins(m: i64) -> chrono::TimeDelta {
        chrono::TimeDelta::minutes(m)
    }

    #[tokio::test]
    async fn a_new_step_starts_with_one_attempt_and_a_lease() {
        let ledger = InMemoryLedger::default();
        let got = ledger
            .begin(DEAL, STEP, t0(), t0() + mins(15))
            .await
            .unwrap();
        let Begin::Started(r) = got else {
            panic!("{got:?}")
        };
        assert_eq!(r.status, StepStatus::InProgress);
        assert_eq!(r.attempts, 1);
        assert_eq!(r.started_at, t0());
        assert_eq!(r.lease_until, Some(t0() + mins(15)));
        assert_eq!(
            r.expires_at,
            (t0() + chrono::TimeDelta::days(90)).timestamp()
        );
        assert_eq!(ledger.records(), [r]);
    }

    #[tokio::test]
    async fn a_live_lease_is_busy_and_an_expired_one_resumes_with_its_targets() {
        let ledger = InMemoryLedger::default();
        ledger
            .begin(DEAL, STEP, t0(), t0() + mins(15))
            .await
            .unwrap();
        ledger
            .record_targets(
                DEAL,
                STEP,
                &BTreeMap::from([("whmcs_order_id".to_string(), "123".to_string())]),
                t0() + mins(1),
            )
            .await
            .unwrap();
        let busy = ledger
            .begin(DEAL, STEP, t0() + mins(15), t0() + mins(30))
            .await
            .unwrap();
        assert!(matches!(busy, Begin::Busy(_)), "{busy:?}");
        let resumed = ledger
            .begin(DEAL, STEP, t0() + mins(16), t0() + mins(31))
            .await
            .unwrap();
        let Begin::Resumed(r) = resumed else {
            panic!("{resumed:?}")
        };
        assert_eq!(r.attempts, 2);
        assert_eq!(r.target("whmcs_order_id"), Some("123"));
        assert_eq!(r.lease_until, Some(t0() + mins(31)));
    }

    #[tokio::test]
    async fn a_completed_step_is_done_and_a_repeated_completion_is_accepted() {
        let ledger = InMemoryLedger::default();
        ledger
            .begin(DEAL, STEP, t0(), t0() + mins(15))
            .await
            .unwrap();
        let targets = BTreeMap::from([("whmcs_order_id".to_string(), "123".to_string())]);
        let done = ledger
            .complete(DEAL, STEP, &targets, t0() + mins(2))
            .await
            .unwrap();
        assert_eq!(done.status, StepStatus::Completed);
        assert_eq!(done.lease_until, None);
        assert_eq!(
            ledger.complete(DEAL, STEP, &targets, t0() + mins(3)).await,
            Ok(done.clone())
        );
        let other = BTreeMap::from([("whmcs_order_id".to_string(), "999".to_string())]);
        let err = ledger
            .complete(DEAL, STEP, &other, t0() + mins(3))
            .await
            .unwrap_err();
        assert_eq!(err.kind, LedgerErrorKind::Conflict);
        let again = ledger
            .begin(DEAL, STEP, t0() + mins(4), t0() + mins(20))
            .await
            .unwrap();
        assert_eq!(again, Begin::Done(done));
    }

    #[tokio::test]
    async fn writes_without_a_step_in_progress_are_refused_as_conflicts() {
        let ledger = InMemoryLedger::default();
        let err = ledger
            .record_targets(
                DEAL,
                STEP,
                &BTreeMap::from([("whmcs_order_id".to_string(), "1".to_string())]),
                t0(),
            )
            .await
            .unwrap_err();
        assert!(err.is_conflict() && !err.retryable, "{err:?}");
        assert!(err.message.contains("no step in progress"), "{err}");
        let err = ledger
            .complete(DEAL, STEP, &BTreeMap::new(), t0())
            .await
            .unwrap_err();
        assert!(err.is_conflict(), "{err:?}");
    }

    #[tokio::test]
    async fn a_failure_before_any_attempt_leaves_an_audit_entry_and_the_next_begin_starts() {
        let ledger = InMemoryLedger::default();
        let failed = ledger
            .fail(DEAL, STEP, "no WHMCS product id", t0())
            .await
            .unwrap();
        assert_eq!(failed.status, StepStatus::Failed);
        assert_eq!(failed.attempts, 0);
        assert_eq!(failed.last_error.as_deref(), Some("no WHMCS product id"));
        let got = ledger
            .begin(DEAL, STEP, t0() + mins(1), t0() + mins(16))
            .await
            .unwrap();
        let Begin::Started(r) = got else {
            panic!("{got:?}")
        };
        assert_eq!(r.attempts, 1);
        assert_eq!(r.started_at, t0());
        assert_eq!(r.last_error.as_deref(), Some("no WHMCS product id"));
    }

    #[tokio::test]
    async fn a_completed_step_refuses_a_failure() {
        let ledger = InMemoryLedger::default();
        ledger
            .begin(DEAL, STEP, t0(), t0() + mins(15))
            .await
            .unwrap();
        ledger
            .complete(DEAL, STEP, &BTreeMap::new(), t0())
            .await
            .unwrap();
        let err = ledger.fail(DEAL, STEP, "late", t0()).await.unwrap_err();
        assert!(err.is_conflict() && !err.retryable, "{err:?}");
    }

    #[tokio::test]
    async fn long_errors_are_cut_and_empty_keys_are_invalid() {
        let ledger = InMemoryLedger::default();
        let r = ledger
            .fail(DEAL, STEP, &"é".repeat(MAX_ERROR_CHARS + 10), t0())
            .await
            .unwrap();
        assert_eq!(
            r.last_error.unwrap().chars().count(),
            MAX_ERROR_CHARS + 1,
            "cut, with an ellipsis"
        );
        let err = ledger.begin("", STEP, t0(), t0()).await.unwrap_err();
        assert_eq!(err.kind, LedgerErrorKind::Invalid);
        let err = ledger
            .record_targets(
                DEAL,
                STEP,
                &BTreeMap::from([("".to_string(), "1".to_string())]),
                t0(),
            )
            .await
            .unwrap_err();
        assert_eq!(err.kind, LedgerErrorKind::Invalid);
    }

    #[tokio::test]
    async fn instants_are_kept_to_the_millisecond() {
        let ledger = InMemoryLedger::default();
        let now = at("2026-11-28T10:00:00.123456789Z");
        let r = ledger
            .begin(DEAL, STEP, now, now + mins(1))
            .await
            .unwrap()
            .into_record();
        assert_eq!(r.started_at, at("2026-11-28T10:00:00.123Z"));
    }

    #[tokio::test]
    async fn of_many_concurrent_begins_exactly_one_starts() {
        let ledger = InMemoryLedger::default();
        let mut tasks = Vec::new();
        for _ in 0..32 {
            let ledger = ledger.clone();
            tasks.push(tokio::spawn(async move {
                ledger.begin(DEAL, STEP, t0(), t0() + mins(15)).await
            }));
        }
        let mut started = 0;
        for t in tasks {
            match t.await.unwrap().unwrap() {
                Begin::Started(_) => started += 1,
                Begin::Busy(_) => {}
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(started, 1);
    }

    #[tokio::test]
    async fn for_deal_lists_the_deals_steps_by_name_and_no_other_deals() {
        let ledger = InMemoryLedger::default();
        for (deal, step) in [(DEAL, "b"), ("other", "a"), (DEAL, "a")] {
            ledger
                .begin(deal, step, t0(), t0() + mins(1))
                .await
                .unwrap();
        }
        let steps: Vec<String> = ledger
            .for_deal(DEAL)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.step)
            .collect();
        assert_eq!(steps, ["a", "b"]);
    }
    #[tokio::test]
    async fn a_noted_step_counts_its_attempts_and_keeps_its_latest_outcome() {
        let ledger = InMemoryLedger::default();
        let mut ids = BTreeMap::new();
        ids.insert("maxio_customer_id".to_string(), "6001".to_string());
        let first = ledger
            .note(
                "006A",
                "maxio-customer",
                StepStatus::InProgress,
                &BTreeMap::new(),
                Some("AB answered 502"),
                t0(),
            )
            .await
            .unwrap();
        assert_eq!((first.attempts, first.status), (1, StepStatus::InProgress));
        assert_eq!(first.last_error.as_deref(), Some("AB answered 502"));
        let done = ledger
            .note(
                "006A",
                "maxio-customer",
                StepStatus::Completed,
                &ids,
                None,
                t0() + mins(1),
            )
            .await
            .unwrap();
        assert_eq!((done.attempts, done.status), (2, StepStatus::Completed));
        assert_eq!(done.target("maxio_customer_id"), Some("6001"));
        assert_eq!(done.last_error, None);
        assert_eq!(done.started_at, t0());
        let again = ledger
            .note(
                "006A",
                "maxio-customer",
                StepStatus::Completed,
                &BTreeMap::new(),
                None,
                t0() + mins(2),
            )
            .await
            .unwrap();
        assert_eq!(
            again.target("maxio_customer_id"),
            Some("6001"),
            "no targets: the last ones stay"
        );
    }
}
