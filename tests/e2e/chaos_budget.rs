//! Chaos for Maxio AB's request budget: deals on both AB sites handled by several instances of
//! each AB function at once (each its own container: its own AB clients, its own name in the
//! shared slot table), while a crashed container holds a slot it never gives back, one
//! container's clock runs ahead, and the slot table is down for a while. Every deal must end
//! Synced exactly once, and no AB site may ever see more than its 4 requests in flight (the fake
//! answers 429 beyond that).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use dealbridge::budget::{BudgetSettings, SlotTable};
use dealbridge::clock::{Clock, ManualClock};
use dealbridge::queue::QueueName;
use dealbridge::runner::QueueHandler;
use dealbridge_sandbox::local::LocalStack;

use crate::support::{record, send_deal};

/// The stack's clock, 3 s ahead (within the budget's 5 s allowance).
struct Ahead(ManualClock);

impl Clock for Ahead {
    fn now(&self) -> DateTime<Utc> {
        self.0.now() + chrono::Duration::seconds(3)
    }
}

const DEALS: [&str; 6] = [
    "VolumeOpportunity",
    "GraduatedOpportunity",
    "FlatFeeOpportunity",
    "EuroOpportunity",
    "SterlingOpportunity",
    "SeatsOpportunity",
];

const AB_QUEUES: [QueueName; 3] = [
    QueueName::MaxioCustomer,
    QueueName::MaxioPricePoints,
    QueueName::MaxioSubscription,
];

/// One round: every instance takes a batch of its queue at once; the other queues are served by
/// the stack's own handlers. Answers whether anything was received.
async fn round(stack: &Arc<LocalStack>, instances: &[(QueueName, Arc<dyn QueueHandler>)]) -> bool {
    let mut tasks = Vec::new();
    for (queue, handler) in instances {
        let batch = stack.queue.receive(*queue, 1);
        if batch.is_empty() {
            continue;
        }
        let (stack, handler, queue) = (stack.clone(), handler.clone(), *queue);
        tasks.push(tokio::spawn(async move {
            let failed = stack.run_batch_on(handler.as_ref(), queue, &batch).await;
            for r in &batch {
                if !failed.contains(&r.message_id) {
                    stack.queue.delete(queue, &r.receipt);
                }
            }
        }));
    }
    let mut received = !tasks.is_empty();
    for queue in [QueueName::MaxioCoreLink, QueueName::Delayed] {
        let batch = stack.queue.receive(queue, 10);
        if !batch.is_empty() {
            received = true;
            let failed = stack.run_batch(queue, &batch).await;
            for r in &batch {
                if !failed.contains(&r.message_id) {
                    stack.queue.delete(queue, &r.receipt);
                }
            }
        }
    }
    for t in tasks {
        t.await.unwrap();
    }
    received
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn crashed_skewed_and_cut_off_containers_never_exceed_a_sites_budget() {
    let stack = Arc::new(LocalStack::start().await.unwrap());
    for ab in [&stack.maxio_ab, &stack.maxio_ab_uk] {
        // Requests overlap: without the budget, twelve instances would put more than 4 in flight.
        ab.observer().set_default_latency(Duration::from_millis(20));
    }
    // A container crashed holding one of the default site's slots: its lease ends by itself.
    let crashed = dealbridge::budget::SiteBudget::for_holder(
        "default",
        stack.budget_table.clone(),
        BudgetSettings::new(4, Duration::from_secs(15)),
        "crashed",
        Arc::new(stack.clock.clone()),
    );
    std::mem::forget(crashed.take().await.unwrap());

    let mut instances: Vec<(QueueName, Arc<dyn QueueHandler>)> = Vec::new();
    for queue in AB_QUEUES {
        for i in 0..4 {
            let name = format!("{queue}-{i}");
            let deps = if i == 3 {
                stack.maxio_instance_at(&name, Arc::new(Ahead(stack.clock.clone())))
            } else {
                stack.maxio_instance(&name)
            };
            instances.push((queue, deps.unwrap()));
        }
    }
    let subscriptions =
        || stack.maxio_ab.subscriptions().len() + stack.maxio_ab_uk.subscriptions().len();
    let before = subscriptions();
    for deal in DEALS {
        send_deal(&stack, deal).await;
    }

    // The slot table is down: the instances wait, and nothing reaches AB.
    stack.budget_table.set_unavailable(true);
    let waiting = {
        let (stack, instances) = (stack.clone(), instances.clone());
        tokio::spawn(async move { round(&stack, &instances).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        stack.maxio_ab.observer().requests().is_empty()
            && stack.maxio_ab_uk.observer().requests().is_empty(),
        "a request went out without a slot"
    );
    stack.budget_table.set_unavailable(false);
    waiting.await.unwrap();

    for _ in 0..200 {
        if !round(&stack, &instances).await {
            let next = AB_QUEUES
                .iter()
                .chain(&[QueueName::MaxioCoreLink, QueueName::Delayed])
                .filter_map(|q| stack.queue.next_visible_at(*q))
                .min();
            match next {
                Some(at) => {
                    stack.advance(at.saturating_sub(stack.queue.now()) + Duration::from_millis(1))
                }
                None => break,
            }
        }
    }

    for deal in DEALS {
        let opportunity = record(&stack, deal);
        assert_eq!(
            opportunity["Maxio_Sync_Status__c"],
            "Synced",
            "{deal}: {:?}",
            opportunity.get("Maxio_Sync_Error__c")
        );
    }
    assert_eq!(
        subscriptions() - before,
        DEALS.len(),
        "one subscription per deal"
    );
    for ab in [&stack.maxio_ab, &stack.maxio_ab_uk] {
        let limited = ab
            .observer()
            .requests()
            .iter()
            .filter(|r| r.status == 429)
            .count();
        assert_eq!(limited, 0, "a site saw more than its 4 requests in flight");
    }
    // Only the crashed container's slot is left (its lease has not ended yet).
    let left = stack.budget_table.slots("default").await.unwrap();
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0].holder, "crashed");
    assert!(stack.budget_table.slots("uk").await.unwrap().is_empty());
}
