//! The budget across containers: each test container is its own [`SiteBudget`] (its own holder
//! name and clock) on one shared table, as the deployed functions' containers share DynamoDB.
//! Time is tokio's paused clock for the waits and a [`ManualClock`] per container for leases.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use chrono::{TimeZone, Utc};

use super::*;
use crate::clock::ManualClock;

fn settings(slots: u32) -> BudgetSettings {
    BudgetSettings::new(slots, Duration::from_secs(15))
}

fn start() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 1, 12, 0, 0).unwrap()
}

fn container(
    table: &Arc<MemorySlotTable>,
    name: &str,
    clock: &ManualClock,
    slots: u32,
) -> SiteBudget {
    SiteBudget::for_holder(
        "us",
        table.clone(),
        settings(slots),
        name,
        Arc::new(clock.clone()),
    )
}

#[tokio::test(start_paused = true)]
async fn many_containers_never_exceed_the_sites_budget() {
    let table = Arc::new(MemorySlotTable::new());
    let clock = ManualClock::new(start());
    let in_flight = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for c in 0..12 {
        let budget = Arc::new(container(&table, &format!("c{c}"), &clock, 4));
        let (in_flight, most) = (in_flight.clone(), most.clone());
        tasks.push(tokio::spawn(async move {
            for _ in 0..20 {
                let permit = budget.take().await.unwrap();
                let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(50)).await;
                in_flight.fetch_sub(1, Ordering::SeqCst);
                drop(permit);
                // The batch ends: the container gives its slot back.
                budget.release_idle().await;
            }
            budget.stats()
        }));
    }
    let mut permits = 0;
    for t in tasks {
        permits += t.await.unwrap().permits;
    }
    assert_eq!(permits, 240);
    assert_eq!(
        most.load(Ordering::SeqCst),
        4,
        "all four slots used, never a fifth"
    );
    assert!(
        table.slots("us").await.unwrap().is_empty(),
        "every slot given back"
    );
}

#[tokio::test(start_paused = true)]
async fn a_container_reuses_its_slot_within_a_batch_without_table_calls() {
    let table = Arc::new(MemorySlotTable::new());
    let clock = ManualClock::new(start());
    let budget = container(&table, "a", &clock, 4);
    drop(budget.take().await.unwrap());
    let first = table.calls();
    assert_eq!(first, 2, "one read, one take");
    for _ in 0..5 {
        drop(budget.take().await.unwrap());
    }
    assert_eq!(table.calls(), first, "reused");
    assert_eq!(budget.stats().reused, 5);
    // Past the hold, the lease no longer covers a whole request: given back and taken anew.
    clock.advance(Duration::from_secs(6));
    drop(budget.take().await.unwrap());
    assert_eq!(table.calls(), first + 3, "give back, read, take");
    budget.release_idle().await;
    assert!(table.slots("us").await.unwrap().is_empty());
    assert_eq!(budget.held(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_crashed_container_frees_its_slot_when_its_lease_ends() {
    let table = Arc::new(MemorySlotTable::new());
    let clock = ManualClock::new(start());
    let crashed = container(&table, "crashed", &clock, 1);
    std::mem::forget(crashed.take().await.unwrap());
    drop(crashed); // never gives the slot back

    let other = Arc::new(container(&table, "b", &clock, 1));
    let waiting = {
        let other = other.clone();
        tokio::spawn(async move { other.take().await.map(|p| p.slot()) })
    };
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert!(!waiting.is_finished(), "the lease (20 s) has not ended");
    // The lease ends at 20 s, and is taken over only once the skew allowance (5 s) has passed.
    clock.advance(Duration::from_secs(24));
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!waiting.is_finished(), "within the skew allowance");
    clock.advance(Duration::from_secs(2));
    assert_eq!(waiting.await.unwrap(), Ok(0));
    assert_eq!(table.slots("us").await.unwrap()[0].holder, "b");
}

#[tokio::test(start_paused = true)]
async fn a_full_budget_makes_the_request_wait_then_its_step_retry() {
    let table = Arc::new(MemorySlotTable::new());
    let clock = ManualClock::new(start());
    let holder = container(&table, "a", &clock, 1);
    let _held = holder.take().await.unwrap();
    let other = container(&table, "b", &clock, 1);
    let err = other.take().await.err().unwrap();
    assert!(
        matches!(err, BudgetError::Full { slots: 1, ref waited, .. } if *waited >= Duration::from_secs(20)),
        "{err:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn an_unavailable_table_sends_nothing_until_it_is_back() {
    let table = Arc::new(MemorySlotTable::new());
    let clock = ManualClock::new(start());
    let budget = Arc::new(container(&table, "a", &clock, 4));
    table.set_unavailable(true);
    let waiting = {
        let budget = budget.clone();
        tokio::spawn(async move { budget.take().await.map(|p| p.slot()) })
    };
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert!(!waiting.is_finished(), "no slot, no request");
    table.set_unavailable(false);
    assert!(waiting.await.unwrap().is_ok());

    table.set_unavailable(true);
    let fresh = container(&table, "b", &clock, 4);
    let err = fresh.take().await.err().unwrap();
    assert!(
        matches!(err, BudgetError::Unavailable { ref reason, .. } if reason.contains("down")),
        "{err:?}"
    );
    assert!(fresh.stats().table_errors > 10, "it kept trying");
}

#[tokio::test(start_paused = true)]
async fn clocks_that_disagree_within_the_allowance_never_share_a_slot() {
    let table = Arc::new(MemorySlotTable::new());
    let behind = ManualClock::new(start());
    let a = container(&table, "a", &behind, 1);
    let _held = a.take().await.unwrap();
    // b's clock runs 4 s ahead of a's, and time passes until a's lease (20 s) has just ended by
    // b's clock: b still waits.
    let ahead = ManualClock::new(start() + chrono::Duration::seconds(4));
    let b = Arc::new(container(&table, "b", &ahead, 1));
    ahead.advance(Duration::from_secs(17));
    let waiting = {
        let b = b.clone();
        tokio::spawn(async move { b.take().await.map(|p| p.slot()) })
    };
    assert!(
        matches!(waiting.await.unwrap(), Err(BudgetError::Full { .. })),
        "a may still be sending by its own clock: b never takes its slot"
    );
}

#[tokio::test(start_paused = true)]
async fn a_request_on_one_site_gives_back_the_containers_idle_slot_of_another() {
    let table = Arc::new(MemorySlotTable::new());
    let clock = ManualClock::new(start());
    let shared = SharedBudgets {
        table: table.clone(),
        holder: "c1".into(),
        clock: Arc::new(clock.clone()),
    };
    let budgets = Budgets::new();
    let us = Arc::new(shared.site("us", settings(4)));
    let uk = Arc::new(shared.site("uk", settings(4)));
    budgets.add(us.clone());
    budgets.add(uk.clone());

    drop(us.take().await.unwrap());
    assert_eq!(table.held("us"), 1, "kept for the batch's next request");
    drop(us.take().await.unwrap());
    assert_eq!(
        table.calls(),
        2,
        "the second request reused the slot: no table call"
    );

    drop(uk.take().await.unwrap());
    assert_eq!(
        table.held("us"),
        0,
        "the us slot is given back before the uk request"
    );
    assert_eq!(table.held("uk"), 1);
    assert_eq!((us.held(), uk.held()), (0, 1));

    // A budget outside any Budgets gives nothing else back.
    let alone = shared.site("eu", settings(4));
    drop(alone.take().await.unwrap());
    assert_eq!(table.held("uk"), 1);
}
