//! Maxio AB's concurrency as one budget per site: at most N requests in flight across every
//! function and container (AB allows 4 per site; the mapping's `maxio.sites[].max_concurrency`
//! sets another N).
//!
//! The budget is N slots in a [`SlotTable`] (DynamoDB when deployed). A request takes a slot
//! before it is sent: it reads the site's held slots, then takes a free one with a conditional
//! write, so two containers never hold the same slot. A slot is a lease: it is held until a time
//! (the request timeout plus [`BudgetSettings::hold`] after it was taken), so a container that
//! crashes holding one frees it when its lease ends, and a container never starts a request on
//! a slot whose lease would end before the request's timeout.
//!
//! A container keeps the slots it took for the rest of its batch: its next request reuses one
//! without a table call while the lease still covers a whole request. At the end of every batch
//! ([`Budgets::release_all`], called by the runner) the container gives every slot back, so a
//! frozen container holds none; whatever sends AB requests outside a batch (the operator CLI's
//! previews) gives them back the same way when it is done. A request on one site first gives
//! back the container's idle slots of every other site ([`Budgets`] knows them): a batch that
//! mixes sites must not keep a slot of one site idle while it works on another.
//!
//! Clock skew: a slot is taken over only when its lease ended more than
//! [`BudgetSettings::skew`] ago by the taker's clock, so clocks that disagree by less than that
//! never put two requests on one slot.
//!
//! When the table cannot be read or written, no request is sent: the container waits and tries
//! again (with backoff) until [`BudgetSettings::max_wait`], then the step is retried later
//! ([`BudgetError`] is transient). A full budget waits the same way.

pub mod dynamodb;
mod table;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use tokio::time::Instant;

use rand::Rng;

pub use dynamodb::{BUDGET_TABLE_VARIABLE, DynamoDbSlotTable};
pub use table::{MemorySlotTable, SlotRecord, SlotTable, TableError};

use crate::clock::{Clock, SystemClock};
use crate::retry::RetryPolicy;

/// How a site's budget behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BudgetSettings {
    /// Requests in flight at most, across every container.
    pub slots: u32,
    /// The longest a request can take (the AB client's timeout).
    pub request_timeout: Duration,
    /// How long after taking a slot a container may still start requests on it.
    pub hold: Duration,
    /// Clocks may disagree by this much.
    pub skew: Duration,
    /// How long a request waits for a slot before its step is retried later.
    pub max_wait: Duration,
    /// The pauses between looks at a full (or unavailable) table: the one backoff of
    /// [`crate::retry`] (its `max_attempts` is not used: [`BudgetSettings::max_wait`] ends the
    /// waiting).
    pub poll: RetryPolicy,
}

impl BudgetSettings {
    /// `slots` requests in flight, for requests of at most `request_timeout`.
    pub fn new(slots: u32, request_timeout: Duration) -> BudgetSettings {
        BudgetSettings {
            slots: slots.max(1),
            request_timeout,
            hold: Duration::from_secs(5),
            skew: Duration::from_secs(5),
            max_wait: Duration::from_secs(20),
            poll: RetryPolicy {
                max_attempts: u32::MAX,
                base_delay: Duration::from_millis(2),
                max_delay: Duration::from_millis(50),
            },
        }
    }

    /// How long a slot is leased for.
    pub fn lease(&self) -> Duration {
        self.request_timeout + self.hold
    }
}

/// No slot could be had in time: the budget stayed full, or its table unavailable. Transient.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BudgetError {
    #[error("AB site {site}: all {slots} request slots stayed busy for {waited:?}")]
    Full {
        site: String,
        slots: u32,
        waited: Duration,
    },
    #[error("AB site {site}: no request slot could be taken for {waited:?}: {reason}")]
    Unavailable {
        site: String,
        waited: Duration,
        reason: String,
    },
}

/// What a budget did, for the metrics and the benchmark.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BudgetStats {
    /// Slots handed to requests.
    pub permits: u64,
    /// Of those, slots reused from the container's own (no table call).
    pub reused: u64,
    /// Table calls (reads, takes, give-backs).
    pub table_calls: u64,
    /// Table calls that failed.
    pub table_errors: u64,
    /// Total time requests waited for a slot, in microseconds.
    pub waited_micros: u64,
}

#[derive(Default)]
struct Counters {
    permits: AtomicU64,
    reused: AtomicU64,
    table_calls: AtomicU64,
    table_errors: AtomicU64,
    waited_micros: AtomicU64,
}

#[derive(Debug, Clone, Copy)]
struct Held {
    slot: u32,
    until_ms: i64,
}

/// The container's slots.
#[derive(Default)]
struct Local {
    /// Held and not in use.
    idle: Vec<Held>,
    /// Held and in use by a request.
    busy: Vec<u32>,
}

/// One AB site's budget, as one container sees it.
pub struct SiteBudget {
    site: String,
    table: Arc<dyn SlotTable>,
    settings: BudgetSettings,
    holder: String,
    clock: Arc<dyn Clock>,
    /// Never more requests in flight from here than the budget has slots.
    local_permits: tokio::sync::Semaphore,
    local: Mutex<Local>,
    counters: Counters,
    /// The container's budgets of every site, once this one is in a [`Budgets`].
    siblings: OnceLock<Weak<Mutex<Vec<Arc<SiteBudget>>>>>,
}

/// A random name for this container, the holder of its slots.
fn container_id() -> &'static str {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(|| format!("{:016x}", rand::rng().random::<u64>()))
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl SiteBudget {
    /// `site`'s budget kept in `table`, held by this container (one name per process).
    pub fn new(site: &str, table: Arc<dyn SlotTable>, settings: BudgetSettings) -> SiteBudget {
        SiteBudget::for_holder(site, table, settings, container_id(), Arc::new(SystemClock))
    }

    /// The budget of one process only (a table of its own).
    pub fn in_process(site: &str, settings: BudgetSettings) -> SiteBudget {
        SiteBudget::new(site, Arc::new(MemorySlotTable::new()), settings)
    }

    /// `site`'s budget as `holder` sees it by `clock` (the tests' containers).
    pub fn for_holder(
        site: &str,
        table: Arc<dyn SlotTable>,
        settings: BudgetSettings,
        holder: &str,
        clock: Arc<dyn Clock>,
    ) -> SiteBudget {
        let permits = usize::try_from(settings.slots).unwrap_or(1);
        SiteBudget {
            site: site.to_string(),
            table,
            holder: holder.to_string(),
            clock,
            local_permits: tokio::sync::Semaphore::new(permits),
            local: Mutex::new(Local::default()),
            counters: Counters::default(),
            siblings: OnceLock::new(),
            settings,
        }
    }

    pub fn site(&self) -> &str {
        &self.site
    }

    pub fn settings(&self) -> &BudgetSettings {
        &self.settings
    }

    pub fn stats(&self) -> BudgetStats {
        let c = &self.counters;
        BudgetStats {
            permits: c.permits.load(Ordering::Relaxed),
            reused: c.reused.load(Ordering::Relaxed),
            table_calls: c.table_calls.load(Ordering::Relaxed),
            table_errors: c.table_errors.load(Ordering::Relaxed),
            waited_micros: c.waited_micros.load(Ordering::Relaxed),
        }
    }

    fn now_ms(&self) -> i64 {
        self.clock.now().timestamp_millis()
    }

    fn local(&self) -> std::sync::MutexGuard<'_, Local> {
        self.local.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn counted<T>(&self, result: Result<T, TableError>) -> Result<T, TableError> {
        self.counters.table_calls.fetch_add(1, Ordering::Relaxed);
        if result.is_err() {
            self.counters.table_errors.fetch_add(1, Ordering::Relaxed);
        }
        result
    }

    /// A slot for one request: one of the container's own when its lease still covers the
    /// request, else a free one from the table, waiting while none is free.
    pub async fn take(&self) -> Result<Permit<'_>, BudgetError> {
        let started = Instant::now();
        let local = self
            .local_permits
            .acquire()
            .await
            .map_err(|_| BudgetError::Unavailable {
                site: self.site.clone(),
                waited: started.elapsed(),
                reason: "the budget was closed".into(),
            })?;
        self.release_other_sites().await;
        let mut looks: u32 = 0;
        loop {
            if let Some(slot) = self.reuse().await {
                self.counters.reused.fetch_add(1, Ordering::Relaxed);
                let held = self.held() + 1;
                return Ok(self.permit(slot, held, local, started));
            }
            let last_error = match self.take_free().await {
                Ok(Some((slot, in_use))) => return Ok(self.permit(slot, in_use, local, started)),
                Ok(None) => None,
                Err(e) => Some(e),
            };
            let waited = started.elapsed();
            if waited >= self.settings.max_wait {
                return Err(match last_error {
                    None => BudgetError::Full {
                        site: self.site.clone(),
                        slots: self.settings.slots,
                        waited,
                    },
                    Some(e) => BudgetError::Unavailable {
                        site: self.site.clone(),
                        waited,
                        reason: e.0,
                    },
                });
            }
            if let Some(e) = &last_error {
                tracing::warn!(site = %self.site, error = %e, "AB request budget unavailable; waiting");
            }
            // Waiting for another container's request to end: nothing in this process can
            // signal it, so look again after the retry policy's backoff.
            looks = looks.saturating_add(1);
            let pause = self.settings.poll.delay(looks, None);
            tokio::time::sleep(pause.min(self.settings.max_wait - waited)).await;
        }
    }

    /// The request's slot, `in_use` slots of the site held as it was taken (its own included).
    fn permit<'a>(
        &'a self,
        held: Held,
        in_use: usize,
        local: tokio::sync::SemaphorePermit<'a>,
        started: Instant,
    ) -> Permit<'a> {
        use crate::metrics::{
            AB_BUDGET_SLOTS, AB_BUDGET_SLOTS_IN_USE, AB_BUDGET_WAIT_MILLISECONDS, SITE, gauge_by,
        };
        self.counters.permits.fetch_add(1, Ordering::Relaxed);
        let elapsed = started.elapsed();
        gauge_by(
            AB_BUDGET_SLOTS,
            SITE,
            &self.site,
            f64::from(self.settings.slots),
        );
        gauge_by(AB_BUDGET_SLOTS_IN_USE, SITE, &self.site, in_use as f64);
        gauge_by(
            AB_BUDGET_WAIT_MILLISECONDS,
            SITE,
            &self.site,
            elapsed.as_secs_f64() * 1000.0,
        );
        let waited = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        self.counters
            .waited_micros
            .fetch_add(waited, Ordering::Relaxed);
        self.local().busy.push(held.slot);
        Permit {
            budget: self,
            held,
            _local: local,
        }
    }

    /// One of the container's idle slots whose lease covers a whole request; idle slots whose
    /// lease no longer does are given back.
    async fn reuse(&self) -> Option<Held> {
        let now = self.now_ms();
        let need = millis(self.settings.request_timeout);
        let (usable, spent) = {
            let mut local = self.local();
            let spent: Vec<Held> = local
                .idle
                .iter()
                .copied()
                .filter(|h| h.until_ms - now < need)
                .collect();
            local.idle.retain(|h| h.until_ms - now >= need);
            (local.idle.pop(), spent)
        };
        for held in spent {
            self.give_back(held.slot).await;
        }
        usable
    }

    /// Reads the site's slots and takes a free one, answering it with the slots then held (its
    /// own included). `Ok(None)`: none is free.
    async fn take_free(&self) -> Result<Option<(Held, usize)>, TableError> {
        let now = self.now_ms();
        let stale_before = now - millis(self.settings.skew);
        let records = self.counted(self.table.slots(&self.site).await)?;
        let mine: Vec<u32> = {
            let local = self.local();
            local
                .busy
                .iter()
                .copied()
                .chain(local.idle.iter().map(|h| h.slot))
                .collect()
        };
        let n = self.settings.slots;
        // Start at a place of this container's own, so containers seldom race for one slot.
        let start = rand::rng().random_range(0..n);
        for i in 0..n {
            let slot = (start + i) % n;
            if mine.contains(&slot) {
                continue;
            }
            let free = records
                .iter()
                .find(|r| r.slot == slot)
                .is_none_or(|r| r.until_ms < stale_before);
            if !free {
                continue;
            }
            let until_ms = now + millis(self.settings.lease());
            if self.counted(
                self.table
                    .take(&self.site, slot, &self.holder, until_ms, stale_before)
                    .await,
            )? {
                let others = records
                    .iter()
                    .filter(|r| r.until_ms >= stale_before && !mine.contains(&r.slot))
                    .count();
                return Ok(Some((Held { slot, until_ms }, others + mine.len() + 1)));
            }
        }
        Ok(None)
    }

    async fn give_back(&self, slot: u32) {
        if let Err(e) = self.counted(self.table.give_back(&self.site, slot, &self.holder).await) {
            // The lease ends by itself; nothing is lost but the slot's time until then.
            tracing::warn!(site = %self.site, slot, error = %e, "AB request slot not given back");
        }
    }

    /// Gives back the container's idle slots of every other site (none: no table call).
    async fn release_other_sites(&self) {
        let Some(siblings) = self.siblings.get().and_then(Weak::upgrade) else {
            return;
        };
        let others: Vec<Arc<SiteBudget>> = siblings
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|b| b.site != self.site)
            .cloned()
            .collect();
        for other in others {
            other.release_idle().await;
        }
    }

    /// Gives back every slot the container holds and is not using (the end of a batch).
    pub async fn release_idle(&self) {
        let idle = std::mem::take(&mut self.local().idle);
        for held in idle {
            self.give_back(held.slot).await;
        }
    }

    /// Slots this container holds (in use and idle).
    pub fn held(&self) -> usize {
        let local = self.local();
        local.busy.len() + local.idle.len()
    }
}

/// One request's slot; dropping it keeps the slot for the container's next request.
pub struct Permit<'a> {
    budget: &'a SiteBudget,
    held: Held,
    _local: tokio::sync::SemaphorePermit<'a>,
}

impl Permit<'_> {
    pub fn slot(&self) -> u32 {
        self.held.slot
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        let mut local = self.budget.local();
        if let Some(i) = local.busy.iter().position(|s| *s == self.held.slot) {
            local.busy.swap_remove(i);
        }
        local.idle.push(self.held);
    }
}

/// Where a process's site budgets keep their slots, and whose they are: the table every
/// container shares, this container's name and the clock its leases are read by.
#[derive(Clone)]
pub struct SharedBudgets {
    pub table: Arc<dyn SlotTable>,
    pub holder: String,
    pub clock: Arc<dyn Clock>,
}

impl SharedBudgets {
    /// `table`'s budgets for this process (a random name of its own, the system clock).
    pub fn new(table: Arc<dyn SlotTable>) -> SharedBudgets {
        SharedBudgets {
            table,
            holder: container_id().to_string(),
            clock: Arc::new(SystemClock),
        }
    }

    /// The same table as another container, `holder`, by `clock` (the local stack's and the
    /// benchmark's function instances).
    pub fn as_holder(&self, holder: &str, clock: Arc<dyn Clock>) -> SharedBudgets {
        SharedBudgets {
            table: self.table.clone(),
            holder: holder.to_string(),
            clock,
        }
    }

    /// `site`'s budget.
    pub fn site(&self, site: &str, settings: BudgetSettings) -> SiteBudget {
        SiteBudget::for_holder(
            site,
            self.table.clone(),
            settings,
            &self.holder,
            self.clock.clone(),
        )
    }
}

/// Every budget of a process, so the runner can give their slots back at the end of a batch.
#[derive(Default, Clone)]
pub struct Budgets {
    sites: Arc<Mutex<Vec<Arc<SiteBudget>>>>,
}

impl Budgets {
    pub fn new() -> Budgets {
        Budgets::default()
    }

    /// Adds `budget`: from now on a request on its site first gives back this container's idle
    /// slots of the others (a budget belongs to one `Budgets`; a second `add` elsewhere keeps the
    /// first).
    pub fn add(&self, budget: Arc<SiteBudget>) {
        let _ = budget.siblings.set(Arc::downgrade(&self.sites));
        self.sites
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(budget);
    }

    pub fn all(&self) -> Vec<Arc<SiteBudget>> {
        self.sites.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Gives back every idle slot of every site.
    pub async fn release_all(&self) {
        for budget in self.all() {
            budget.release_idle().await;
        }
    }
}

#[cfg(test)]
mod tests;
