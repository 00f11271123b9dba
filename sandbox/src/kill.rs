//! Kill points: the local stack's functions "killed" right after one chosen effect, as a Lambda
//! dies between two writes (a timeout, an out-of-memory kill, a lost container).
//!
//! An effect is anything a function does that outlives it: a write to a fake (any request but
//! `GET` and `HEAD` to Salesforce, Maxio AB, Maxio Core or WHMCS), a ledger write, a queue send.
//! [`KillSwitch::arm`] starts counting them; armed at `n`, the `n`-th effect happens and then the
//! process dies: the effect's caller never gets its answer, the drain drops the handler's future
//! ([`KillSwitch::killed`]), and the batch's messages stay unacknowledged until their visibility
//! timeout, when SQS hands them out again.
//!
//! [`KillingQueue`] and [`KillingLedger`] wrap the stack's queue and ledger; the fakes' observers
//! report their writes ([`crate::observe::Observer::set_kill`]).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use dealbridge::ledger::{Begin, Ledger, LedgerError, StepRecord, StepStatus};
use dealbridge::queue::{OutgoingMessage, Queue, QueueError};

#[derive(Default)]
struct KillState {
    counting: bool,
    seen: Vec<String>,
    at: Option<usize>,
    fired: bool,
}

/// Counts effects and kills the process after the chosen one. Clones share their state.
#[derive(Clone, Default)]
pub struct KillSwitch {
    state: Arc<Mutex<KillState>>,
    killed: Arc<tokio::sync::Notify>,
}

impl KillSwitch {
    fn lock(&self) -> MutexGuard<'_, KillState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts effects from zero; with `at`, the process dies right after the `at`-th (from 1).
    pub fn arm(&self, at: Option<usize>) {
        let mut s = self.lock();
        *s = KillState {
            counting: true,
            seen: Vec::new(),
            at,
            fired: false,
        };
    }

    /// Stops counting (what was counted stays readable).
    pub fn disarm(&self) {
        self.lock().counting = false;
    }

    /// The effects counted since [`KillSwitch::arm`], in order.
    pub fn effects(&self) -> Vec<String> {
        self.lock().seen.clone()
    }

    /// Whether the process was killed since [`KillSwitch::arm`].
    pub fn fired(&self) -> bool {
        self.lock().fired
    }

    /// Records an effect that just happened; true when the process dies now (the caller must
    /// then never answer).
    pub fn effect(&self, what: impl Into<String>) -> bool {
        let mut s = self.lock();
        if !s.counting {
            return false;
        }
        s.seen.push(what.into());
        if s.fired || s.at != Some(s.seen.len()) {
            return false;
        }
        s.fired = true;
        drop(s);
        self.killed.notify_one();
        true
    }

    /// Resolves when an effect killed the process: race it against the handler and drop the
    /// handler.
    pub async fn killed(&self) {
        self.killed.notified().await
    }

    /// Where a killed call stops: never.
    async fn die() -> ! {
        std::future::pending::<()>().await;
        unreachable!("a pending future never resolves")
    }
}

/// The stack's queue, each send an effect.
pub struct KillingQueue {
    pub inner: Arc<dyn Queue>,
    pub switch: KillSwitch,
}

#[async_trait]
impl Queue for KillingQueue {
    async fn send(&self, message: &OutgoingMessage) -> Result<String, QueueError> {
        let id = self.inner.send(message).await?;
        if self
            .switch
            .effect(format!("send to {}", message.queue.as_str()))
        {
            KillSwitch::die().await;
        }
        Ok(id)
    }
}

/// The stack's ledger, each write an effect.
pub struct KillingLedger {
    pub inner: Arc<dyn Ledger>,
    pub switch: KillSwitch,
}

impl KillingLedger {
    async fn after<T>(
        &self,
        what: &str,
        step: &str,
        result: Result<T, LedgerError>,
    ) -> Result<T, LedgerError> {
        if result.is_ok() && self.switch.effect(format!("ledger {what} {step}")) {
            KillSwitch::die().await;
        }
        result
    }
}

#[async_trait]
impl Ledger for KillingLedger {
    async fn begin(
        &self,
        deal_id: &str,
        step: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Begin, LedgerError> {
        let begun = self.inner.begin(deal_id, step, now, lease_until).await;
        // Only a begin that wrote (took the lease) is an effect.
        match &begun {
            Ok(Begin::Started(_) | Begin::Resumed(_)) => self.after("begin", step, begun).await,
            _ => begun,
        }
    }
    async fn record_targets(
        &self,
        deal_id: &str,
        step: &str,
        targets: &BTreeMap<String, String>,
        now: DateTime<Utc>,
    ) -> Result<(), LedgerError> {
        let done = self.inner.record_targets(deal_id, step, targets, now).await;
        self.after("record", step, done).await
    }
    async fn complete(
        &self,
        deal_id: &str,
        step: &str,
        targets: &BTreeMap<String, String>,
        now: DateTime<Utc>,
    ) -> Result<StepRecord, LedgerError> {
        let done = self.inner.complete(deal_id, step, targets, now).await;
        self.after("complete", step, done).await
    }
    async fn fail(
        &self,
        deal_id: &str,
        step: &str,
        error: &str,
        now: DateTime<Utc>,
    ) -> Result<StepRecord, LedgerError> {
        let done = self.inner.fail(deal_id, step, error, now).await;
        self.after("fail", step, done).await
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
        let done = self
            .inner
            .note(deal_id, step, status, targets, error, now)
            .await;
        self.after("note", step, done).await
    }
    async fn get(&self, deal_id: &str, step: &str) -> Result<Option<StepRecord>, LedgerError> {
        self.inner.get(deal_id, step).await
    }
    async fn for_deal(&self, deal_id: &str) -> Result<Vec<StepRecord>, LedgerError> {
        self.inner.for_deal(deal_id).await
    }
}
