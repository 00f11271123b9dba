//! The worker sample events in `events/` are exactly what dispatch sends for the seeded deals, so
//! they stay true as the envelope evolves. `DEALBRIDGE_UPDATE_EVENTS=1 cargo test -p
//! dealbridge-tests --test e2e sample_events` rewrites them.

use aws_lambda_events::sqs::SqsEvent;
use dealbridge::envelope::{Envelope, Step};
use dealbridge::queue::QueueName;
use dealbridge::runner::run_batch;
use dealbridge_sandbox::events::{events_dir, http_request, sample};
use dealbridge_sandbox::local::{LocalStack, sample_time};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

fn sqs_event(queue: &str, message_id: &str, group: &str, dedup: &str, body: &str) -> Value {
    let t = sample_time().timestamp_millis();
    json!({"Records": [{
        "messageId": message_id,
        "receiptHandle": "AQEB-sample",
        "body": body,
        "attributes": {
            "ApproximateReceiveCount": "1",
            "SentTimestamp": t.to_string(),
            "SenderId": "AROASAMPLE:intake",
            "ApproximateFirstReceiveTimestamp": t.to_string(),
            "MessageGroupId": group,
            "MessageDeduplicationId": dedup,
            "SequenceNumber": "18849496460467696128"
        },
        "messageAttributes": {},
        "md5OfBody": hex::encode(md5_like(body)),
        "eventSource": "aws:sqs",
        "eventSourceARN": format!("arn:aws:sqs:us-east-1:123456789012:{queue}"),
        "awsRegion": "us-east-1"
    }]})
}

/// Lambda's md5OfBody is informational; a stable digest of the body stands in for it.
fn md5_like(body: &str) -> Vec<u8> {
    Sha256::digest(body.as_bytes())[..16].to_vec()
}

fn check_or_update(file: &str, produced: Value) {
    let path = events_dir().join(file);
    if std::env::var_os("DEALBRIDGE_UPDATE_EVENTS").is_some() {
        let text = serde_json::to_string_pretty(&produced).unwrap() + "\n";
        std::fs::write(&path, text).unwrap();
        return;
    }
    let stored = sample(file);
    let stored_body: Value =
        serde_json::from_str(stored["Records"][0]["body"].as_str().unwrap()).unwrap();
    let produced_body: Value =
        serde_json::from_str(produced["Records"][0]["body"].as_str().unwrap()).unwrap();
    assert_eq!(
        stored_body, produced_body,
        "{file} is out of date; run DEALBRIDGE_UPDATE_EVENTS=1 cargo test -p dealbridge-tests --test e2e sample_events"
    );
    assert_eq!(
        stored["Records"][0]["attributes"], produced["Records"][0]["attributes"],
        "{file}"
    );
    let event: SqsEvent = serde_json::from_value(stored).unwrap();
    Envelope::parse(event.records[0].body.as_deref().unwrap()).unwrap();
}

#[tokio::test]
async fn the_worker_sample_events_are_what_dispatch_sends() {
    let stack = LocalStack::start().await.unwrap();
    let r = dealbridge_intake::handle(
        http_request(&sample("intake-http-api-deal.json")),
        &stack.intake,
    )
    .await;
    assert_eq!(r.status(), 202);
    let aev: aws_lambda_events::eventbridge::EventBridgeEvent<Value> =
        serde_json::from_value(sample("platform-events-order-provision.json")).unwrap();
    dealbridge_platform_events::handle(aev, &stack.platform_events)
        .await
        .unwrap();

    for (queue, file, message_id) in [
        (
            QueueName::MaxioCustomer,
            "sqs-maxio-customer.json",
            "2f4c9a10-0000-4000-8000-000000000001",
        ),
        (
            QueueName::WhmcsProvision,
            "sqs-whmcs-provision.json",
            "2f4c9a10-0000-4000-8000-000000000002",
        ),
    ] {
        let sent = stack.queue.sent(queue);
        assert_eq!(sent.len(), 1, "{queue}");
        let m = &sent[0];
        let produced = sqs_event(
            &format!("dealbridge-{queue}.fifo"),
            message_id,
            m.group_id.as_deref().unwrap(),
            m.dedup_id.as_deref().unwrap(),
            &m.body,
        );
        check_or_update(file, produced);
    }
}

#[tokio::test]
async fn the_maxio_customer_sample_event_runs_the_first_step_of_the_chain() {
    let stack = LocalStack::start().await.unwrap();
    let event: SqsEvent = serde_json::from_value(sample("sqs-maxio-customer.json")).unwrap();
    let response = run_batch(
        QueueName::MaxioCustomer,
        stack.maxio.as_ref(),
        &stack.queue,
        &event,
        None,
    )
    .await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(stack.maxio_ab.customers().len(), 1);
    let next = stack.queue.sent(QueueName::MaxioPricePoints);
    assert_eq!(next.len(), 1);
    assert_eq!(
        Envelope::parse(&next[0].body).unwrap().correlation_id,
        "sample-volume-deal"
    );
}

#[tokio::test]
async fn the_maxio_core_link_sample_event_is_what_the_subscription_step_sends() {
    let stack = LocalStack::start().await.unwrap();
    let r = dealbridge_intake::handle(
        http_request(&sample("intake-http-api-deal.json")),
        &stack.intake,
    )
    .await;
    assert_eq!(r.status(), 202);
    stack.drain(100).await;
    let sent = stack.queue.sent(QueueName::MaxioCoreLink);
    assert_eq!(sent.len(), 1);
    let m = &sent[0];
    let produced = sqs_event(
        "dealbridge-maxio-core-link.fifo",
        "2f4c9a10-0000-4000-8000-000000000003",
        m.group_id.as_deref().unwrap(),
        m.dedup_id.as_deref().unwrap(),
        &m.body,
    );
    check_or_update("sqs-maxio-core-link.json", produced);
}

#[tokio::test]
async fn the_maxio_core_link_sample_event_links_the_seeded_contract() {
    let stack = LocalStack::start().await.unwrap();
    let event: SqsEvent = serde_json::from_value(sample("sqs-maxio-core-link.json")).unwrap();
    let Step::MaxioCoreLink { link } = Envelope::parse(event.records[0].body.as_deref().unwrap())
        .unwrap()
        .step
    else {
        panic!("a link message")
    };

    let response = run_batch(
        QueueName::MaxioCoreLink,
        stack.core_link.as_ref(),
        &stack.queue,
        &event,
        None,
    )
    .await;

    assert!(response.batch_item_failures.is_empty());
    let contract = stack
        .maxio_core
        .contracts()
        .into_iter()
        .find(|c| c["number"] == "LARK-2027")
        .unwrap();
    assert_eq!(
        contract["text_field2"],
        link.subscription_id.to_string().as_str()
    );
    let opp = stack
        .salesforce
        .record(link.opportunity_id.as_str())
        .unwrap();
    assert_eq!(opp["Maxio_Core_Link_Status__c"], "Linked");
    assert_eq!(opp["Maxio_Sync_Status__c"], "Synced");
}

#[tokio::test]
async fn the_whmcs_provision_sample_event_provisions_the_internet_order() {
    let stack = LocalStack::start().await.unwrap();
    let event: SqsEvent = serde_json::from_value(sample("sqs-whmcs-provision.json")).unwrap();

    let response = run_batch(
        QueueName::WhmcsProvision,
        stack.whmcs_deps.as_ref(),
        &stack.queue,
        &event,
        None,
    )
    .await;

    assert!(response.batch_item_failures.is_empty());
    assert_eq!(stack.whmcs.order_count(), 1);
    let order = stack
        .salesforce
        .record(stack.id("InternetOrder").as_str())
        .unwrap();
    assert_eq!(order["Activation_Status__c"], "Provisioned");
}
