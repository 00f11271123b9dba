//! The AB request budget's slots on DynamoDB (moto's server): the same conditions as the
//! in-memory table (every scenario runs on both and must answer the same), and containers sharing
//! the table never holding more slots than the budget has.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use dealbridge::budget::{
    BudgetSettings, DynamoDbSlotTable, MemorySlotTable, SiteBudget, SlotRecord, SlotTable,
};
use dealbridge::clock::SystemClock;
use dealbridge_sandbox::aws::create_budget_table;
use dealbridge_sandbox::moto::Moto;

const TABLE: &str = "dealbridge-ab-budget";

/// Takes, refusals, take-overs of stale leases and give-backs, as one answer list.
async fn scenario(t: &dyn SlotTable) -> (Vec<bool>, Vec<SlotRecord>) {
    let mut answers = Vec::new();
    answers.push(t.take("default", 0, "a", 20_000, 0).await.unwrap());
    answers.push(t.take("default", 0, "b", 30_000, 10_000).await.unwrap());
    answers.push(t.take("default", 1, "b", 30_000, 10_000).await.unwrap());
    answers.push(t.take("uk", 0, "c", 30_000, 10_000).await.unwrap());
    // a's lease (20 000) ended before 25 000: b takes it over; a's give-back then leaves it.
    answers.push(t.take("default", 0, "b", 40_000, 25_000).await.unwrap());
    t.give_back("default", 0, "a").await.unwrap();
    t.give_back("default", 1, "b").await.unwrap();
    let mut slots = t.slots("default").await.unwrap();
    slots.sort_by_key(|s| s.slot);
    (answers, slots)
}

#[tokio::test]
async fn the_dynamodb_slots_answer_as_the_in_memory_ones() {
    let memory = scenario(&MemorySlotTable::new()).await;
    let moto = Moto::start().await.expect("moto starts");
    let client = aws_sdk_dynamodb::Client::new(&moto.sdk_config().await);
    create_budget_table(&client, TABLE).await.unwrap();
    let dynamodb = scenario(&DynamoDbSlotTable::new(client, TABLE.into())).await;
    assert_eq!(dynamodb, memory);
    assert_eq!(memory.0, vec![true, false, true, true, true]);
    assert_eq!(
        memory.1,
        vec![SlotRecord {
            slot: 0,
            holder: "b".into(),
            until_ms: 40_000
        }]
    );
}

#[tokio::test]
async fn containers_sharing_the_table_never_exceed_the_budget() {
    let moto = Moto::start().await.expect("moto starts");
    let client = aws_sdk_dynamodb::Client::new(&moto.sdk_config().await);
    create_budget_table(&client, TABLE).await.unwrap();
    let table: Arc<dyn SlotTable> = Arc::new(DynamoDbSlotTable::new(client, TABLE.into()));
    let (in_flight, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mut containers = Vec::new();
    for c in 0..6 {
        let budget = Arc::new(SiteBudget::for_holder(
            "default",
            table.clone(),
            BudgetSettings::new(2, Duration::from_secs(15)),
            &format!("container-{c}"),
            Arc::new(SystemClock),
        ));
        let (in_flight, most) = (in_flight.clone(), most.clone());
        containers.push(tokio::spawn(async move {
            for _ in 0..5 {
                let slot = budget.take().await.unwrap();
                let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                // The request: another task's turn while this one holds its slot.
                tokio::task::yield_now().await;
                in_flight.fetch_sub(1, Ordering::SeqCst);
                drop(slot);
                budget.release_idle().await;
            }
        }));
    }
    for c in containers {
        c.await.unwrap();
    }
    assert!(most.load(Ordering::SeqCst) <= 2, "at most 2 in flight");
    assert!(
        table.slots("default").await.unwrap().is_empty(),
        "all given back"
    );
}
