//! The platform-events and delayed handlers fed the sample events, and the path of a deal whose
//! Order CPQ creates late.

use std::time::Duration;

use aws_lambda_events::eventbridge::EventBridgeEvent;
use aws_lambda_events::sqs::SqsEvent;
use dealbridge::dispatch::DispatchOutcome;
use dealbridge::envelope::{Envelope, Step};
use dealbridge::queue::QueueName;
use dealbridge::runner::{Handled, run_batch};
use dealbridge_platform_events::EventError;
use dealbridge_sandbox::events::sample;
use dealbridge_sandbox::local::LocalStack;
use serde_json::{Map, Value, json};

fn eventbridge(value: Value) -> EventBridgeEvent<Value> {
    serde_json::from_value(value).expect("an EventBridge event")
}

#[tokio::test]
async fn an_order_provision_event_enqueues_whmcs_provisioning_with_its_keys() {
    let stack = LocalStack::start().await.unwrap();
    let outcome = dealbridge_platform_events::handle(
        eventbridge(sample("platform-events-order-provision.json")),
        &stack.platform_events,
    )
    .await
    .unwrap();
    assert!(matches!(outcome, DispatchOutcome::Planned { .. }));
    let sent = stack.queue.sent(QueueName::WhmcsProvision);
    assert_eq!(sent.len(), 1);
    let envelope = Envelope::parse(&sent[0].body).unwrap();
    let order = stack.id("InternetOrder");
    assert_eq!(envelope.correlation_id, "sample-internet-order");
    assert_eq!(
        envelope.idempotency_key.as_deref(),
        Some(format!("{order}-2026-11-20T12:00:00.000Z").as_str())
    );
    assert_eq!(envelope.step_key, format!("{order}:whmcs-provision"));
    assert!(matches!(envelope.step, Step::WhmcsProvision { order_id, .. } if order_id == order));
    assert_eq!(
        sent[0].group_id.as_deref(),
        Some(stack.id("InternetAccount").as_str())
    );
}

#[tokio::test]
async fn a_redelivered_platform_event_is_deduplicated() {
    let stack = LocalStack::start().await.unwrap();
    for _ in 0..2 {
        dealbridge_platform_events::handle(
            eventbridge(sample("platform-events-order-provision.json")),
            &stack.platform_events,
        )
        .await
        .unwrap();
    }
    assert_eq!(stack.queue.depth(QueueName::WhmcsProvision), 1);
}

#[tokio::test]
async fn a_platform_event_with_a_bad_order_id_fails_and_enqueues_nothing() {
    let stack = LocalStack::start().await.unwrap();
    let mut event = sample("platform-events-order-provision.json");
    event["detail"]["payload"]["OrderId__c"] = json!("801SB0000000006BAA");
    let err = dealbridge_platform_events::handle(eventbridge(event), &stack.platform_events)
        .await
        .unwrap_err();
    assert!(matches!(err, EventError::InvalidOrderId(_)), "{err}");
    assert!(err.to_string().contains("checksum"), "{err}");
    let mut event = sample("platform-events-order-provision.json");
    event["detail"]["payload"]["OrderId__c"] = json!("801SB0000000999");
    let err = dealbridge_platform_events::handle(eventbridge(event), &stack.platform_events)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("does not exist"), "{err}");
    assert_eq!(stack.queue.sent(QueueName::WhmcsProvision).len(), 0);
}

#[tokio::test]
async fn the_sample_redispatch_runs_dispatch_again_and_schedules_the_next_try() {
    let stack = LocalStack::start().await.unwrap();
    let event: SqsEvent = serde_json::from_value(sample("delayed-redispatch.json")).unwrap();
    let envelope = Envelope::parse(event.records[0].body.as_deref().unwrap()).unwrap();
    assert_eq!(
        envelope.account_id,
        stack.id("PendingAccount"),
        "the sample names the seeded deal"
    );
    let response = run_batch(
        QueueName::Delayed,
        stack.delayed.as_ref(),
        &stack.queue,
        &event,
        None,
    )
    .await;
    assert!(response.batch_item_failures.is_empty());
    let next = stack.queue.sent(QueueName::Delayed);
    assert_eq!(next.len(), 1);
    assert_eq!(
        next[0].delay,
        Duration::from_secs(120),
        "the second re-dispatch waits twice as long"
    );
    assert!(matches!(
        Envelope::parse(&next[0].body).unwrap().step,
        Step::Dispatch { attempt: 2, .. }
    ));
}

#[tokio::test]
async fn a_deal_whose_order_appears_later_is_dispatched_once_it_exists() {
    let stack = LocalStack::start().await.unwrap();
    let pending = stack.id("PendingOpportunity");
    let outcome = stack
        .intake
        .dispatcher
        .dispatch(&dealbridge::dispatch::DispatchRequest {
            deal: dealbridge::snapshot::DealRef::Opportunity(pending.clone()),
            correlation_id: "late-order".into(),
            dry_run: false,
            attempt: 0,
            idempotency_key: None,
            delayed_key: None,
        })
        .await
        .unwrap();
    assert!(matches!(
        outcome,
        DispatchOutcome::Deferred { attempt: 1, .. }
    ));

    // Two re-dispatches find no Order; then CPQ creates it.
    let outcomes = stack.drain_delayed(2).await;
    assert_eq!(outcomes, [("dispatch", Handled::Done)]);
    let account = stack.id("PendingAccount");
    let product = stack.id("ApiCallsProduct");
    stack.salesforce.with_org(|org| {
        let mut order = Map::new();
        order.insert("AccountId".into(), json!(account.to_string()));
        order.insert("OpportunityId".into(), json!(pending.to_string()));
        order.insert("Status".into(), json!("Activated"));
        order.insert("EffectiveDate".into(), json!("2026-11-20"));
        let order_id = org.insert("Order", &order).unwrap();
        let mut item = Map::new();
        item.insert("OrderId".into(), json!(order_id.to_string()));
        item.insert("Product2Id".into(), json!(product.to_string()));
        item.insert("Quantity".into(), json!(1.0));
        item.insert("UnitPrice".into(), json!(0.0));
        org.insert("OrderItem", &item).unwrap();
    });
    let outcomes = stack.drain_delayed(10).await;
    assert_eq!(outcomes, [("dispatch", Handled::Done)]);
    let sent = stack.queue.sent(QueueName::MaxioCustomer);
    assert_eq!(sent.len(), 1);
    let envelope = Envelope::parse(&sent[0].body).unwrap();
    assert_eq!(
        envelope.correlation_id, "late-order",
        "the correlation id survives the waits"
    );
    assert_eq!(stack.queue.depth(QueueName::Delayed), 0);
}

#[tokio::test]
async fn a_deal_whose_order_never_appears_is_given_up_and_the_reason_written_to_the_opportunity() {
    let stack = LocalStack::start().await.unwrap();
    let event: SqsEvent = serde_json::from_value(sample("delayed-redispatch.json")).unwrap();
    let response = run_batch(
        QueueName::Delayed,
        stack.delayed.as_ref(),
        &stack.queue,
        &event,
        None,
    )
    .await;
    assert!(response.batch_item_failures.is_empty());
    let outcomes = stack.drain_delayed(200).await;
    let dispatches = outcomes
        .iter()
        .filter(|o| **o == ("dispatch", Handled::Done))
        .count();
    assert_eq!(
        dispatches, 5,
        "attempts 2 to 6 re-dispatch; the eighth dispatch (attempt 7) gives up"
    );
    let Some(("dispatch", Handled::Permanent(reason))) = outcomes.last() else {
        panic!("{outcomes:?}")
    };
    assert_eq!(reason.code, "DISPATCH_NO_ORDER");
    let reason = reason.to_string();
    assert!(reason.starts_with("DISPATCH_NO_ORDER: "), "{reason}");
    assert!(
        reason.contains("still has no Order after 8 dispatches"),
        "{reason}"
    );
    let opp = stack
        .salesforce
        .record(stack.id("PendingOpportunity").as_str())
        .unwrap();
    assert_eq!(opp["Maxio_Sync_Status__c"], "Failed");
    assert_eq!(opp["Maxio_Sync_Error__c"].as_str(), Some(reason.as_str()));
    assert_eq!(
        stack.queue.depth(QueueName::Delayed),
        0,
        "nothing is left to retry"
    );
}

#[tokio::test]
async fn work_not_yet_due_is_delayed_again_and_a_bad_message_is_dead_lettered_on_its_own() {
    let stack = LocalStack::start().await.unwrap();
    let mut event = sample("delayed-redispatch.json");
    let body = event["Records"][0]["body"].as_str().unwrap().to_string();
    let mut envelope: Value = serde_json::from_str(&body).unwrap();
    let later = stack.clock_now() + 3600;
    envelope["step"]["notBefore"] = json!(later);
    event["Records"][0]["body"] = json!(dealbridge_sandbox::local::reseal(&envelope.to_string()));
    let mut bad = event["Records"][0].clone();
    bad["messageId"] = json!("bad-1");
    bad["body"] = json!("{not json");
    event["Records"].as_array_mut().unwrap().push(bad);
    let event: SqsEvent = serde_json::from_value(event).unwrap();
    let response = run_batch(
        QueueName::Delayed,
        stack.delayed.as_ref(),
        &stack.queue,
        &event,
        None,
    )
    .await;
    assert!(
        response.batch_item_failures.is_empty(),
        "{:?}",
        response.batch_item_failures
    );
    assert_eq!(
        stack.queue.dead_letters(QueueName::Delayed),
        ["{not json"],
        "the bad message went to the dead-letter queue at once"
    );
    let again = stack.queue.sent(QueueName::Delayed);
    assert_eq!(again.len(), 1);
    assert_eq!(
        again[0].delay,
        Duration::from_secs(900),
        "at most SQS's 15 minutes at a time"
    );
    assert_eq!(
        stack.salesforce.observer().total(),
        0,
        "nothing was due, so nothing was loaded"
    );
}
