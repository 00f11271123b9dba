//! Where the slots of every site's budget are kept: the [`SlotTable`] port, and the in-memory
//! table of one process (the local stack, the operator CLI without a table, the tests).
//!
//! A slot is a record `(site, slot number)` holding who holds it and until when (milliseconds
//! since the Unix epoch, by the holder's clock). A missing record is a free slot. Every change is
//! one conditional write, so of two containers taking the same slot only one succeeds.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;

/// One held slot, as the table has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotRecord {
    pub slot: u32,
    pub holder: String,
    /// When the holder's lease ends, in ms since the epoch (its clock).
    pub until_ms: i64,
}

/// The table could not be read or written (unreachable, throttled, refused).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the AB request budget's table is unavailable: {0}")]
pub struct TableError(pub String);

#[async_trait]
pub trait SlotTable: Send + Sync {
    /// Every held slot of `site` (a strongly consistent read).
    async fn slots(&self, site: &str) -> Result<Vec<SlotRecord>, TableError>;

    /// Takes `slot` of `site` for `holder` until `until_ms` when it is free: no record, or a
    /// lease that ended before `stale_before_ms`. `Ok(false)`: someone else holds it.
    async fn take(
        &self,
        site: &str,
        slot: u32,
        holder: &str,
        until_ms: i64,
        stale_before_ms: i64,
    ) -> Result<bool, TableError>;

    /// Frees `slot` of `site` when `holder` still holds it (a slot taken over after its lease
    /// ended is left to its new holder).
    async fn give_back(&self, site: &str, slot: u32, holder: &str) -> Result<(), TableError>;
}

/// Held slots by site and number.
type Slots = BTreeMap<(String, u32), SlotRecord>;

/// The slots of one process, with the same conditions as the DynamoDB table.
#[derive(Default)]
pub struct MemorySlotTable {
    slots: Mutex<Slots>,
    /// When set, every call fails (a table that is down).
    unavailable: Mutex<bool>,
    calls: std::sync::atomic::AtomicU64,
    /// Added to every call (a network round trip to DynamoDB, in the benchmark).
    latency: Mutex<std::time::Duration>,
}

impl MemorySlotTable {
    pub fn new() -> MemorySlotTable {
        MemorySlotTable::default()
    }

    /// Makes every call fail (`true`) or work again (`false`).
    pub fn set_unavailable(&self, down: bool) {
        *self.unavailable.lock().unwrap_or_else(|p| p.into_inner()) = down;
    }

    /// Makes every call take `latency` before it answers.
    pub fn set_latency(&self, latency: std::time::Duration) {
        *self.latency.lock().unwrap_or_else(|p| p.into_inner()) = latency;
    }

    async fn round_trip(&self) {
        let latency = *self.latency.lock().unwrap_or_else(|p| p.into_inner());
        if !latency.is_zero() {
            // Stands in for the network: the answer is ready only after it.
            tokio::time::sleep(latency).await;
        }
    }

    /// `site`'s slots held now (expired leases included), without a call.
    pub fn held(&self, site: &str) -> usize {
        let slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        slots.keys().filter(|(s, _)| s == site).count()
    }

    /// Calls made so far (reads and writes, failed ones included).
    pub fn calls(&self) -> u64 {
        self.calls.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn enter(&self) -> Result<std::sync::MutexGuard<'_, Slots>, TableError> {
        self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        if *self.unavailable.lock().unwrap_or_else(|p| p.into_inner()) {
            return Err(TableError("the in-memory slot table is down".into()));
        }
        Ok(self.slots.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

#[async_trait]
impl SlotTable for MemorySlotTable {
    async fn slots(&self, site: &str) -> Result<Vec<SlotRecord>, TableError> {
        self.round_trip().await;
        let slots = self.enter()?;
        Ok(slots
            .iter()
            .filter(|((s, _), _)| s == site)
            .map(|(_, r)| r.clone())
            .collect())
    }

    async fn take(
        &self,
        site: &str,
        slot: u32,
        holder: &str,
        until_ms: i64,
        stale_before_ms: i64,
    ) -> Result<bool, TableError> {
        self.round_trip().await;
        let mut slots = self.enter()?;
        let key = (site.to_string(), slot);
        if slots
            .get(&key)
            .is_some_and(|held| held.until_ms >= stale_before_ms)
        {
            return Ok(false);
        }
        slots.insert(
            key,
            SlotRecord {
                slot,
                holder: holder.to_string(),
                until_ms,
            },
        );
        Ok(true)
    }

    async fn give_back(&self, site: &str, slot: u32, holder: &str) -> Result<(), TableError> {
        self.round_trip().await;
        let mut slots = self.enter()?;
        let key = (site.to_string(), slot);
        if slots.get(&key).is_some_and(|held| held.holder == holder) {
            slots.remove(&key);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_slot_is_taken_once_until_its_lease_is_stale() {
        let t = MemorySlotTable::new();
        assert!(t.take("us", 0, "a", 1_000, 0).await.unwrap());
        assert!(!t.take("us", 0, "b", 2_000, 999).await.unwrap(), "held");
        assert!(
            t.take("uk", 0, "b", 2_000, 0).await.unwrap(),
            "another site"
        );
        assert!(t.take("us", 0, "b", 2_000, 1_001).await.unwrap(), "stale");
        assert_eq!(t.slots("us").await.unwrap()[0].holder, "b");
        t.give_back("us", 0, "a").await.unwrap();
        assert_eq!(
            t.slots("us").await.unwrap().len(),
            1,
            "a no longer holds it"
        );
        t.give_back("us", 0, "b").await.unwrap();
        assert!(t.slots("us").await.unwrap().is_empty());
        t.set_unavailable(true);
        assert!(t.slots("us").await.is_err());
        assert_eq!(t.calls(), 10);
    }
}
