//! Forged queue messages: a message not sealed with the stack's envelope key, sealed with
//! another key, or changed after it was sealed, sent straight to each worker, creates nothing in
//! AB, Core or WHMCS, writes nothing to Salesforce, sends nothing on, and goes to the dead-letter
//! queue on its first receive, so a genuine message of the same FIFO group behind it is handled
//! at once. The genuine sample events (sealed with the sandbox key) are handled, as
//! `sample_events.rs` shows.

use std::time::Duration;

use aws_lambda_events::sqs::SqsEvent;
use dealbridge::queue::{OutgoingMessage, Queue, QueueName};
use dealbridge::runner::{QueueHandler, run_batch};
use dealbridge::seal::{SealKeys, unsealed};
use dealbridge::secrets::Secret;
use dealbridge_sandbox::events::sample;
use dealbridge_sandbox::local::LocalStack;
use dealbridge_sandbox::salesforce::routes;
use serde_json::{Value, json};

/// The sealed sample each worker consumes.
const SAMPLES: [(&str, QueueName); 4] = [
    ("sqs-maxio-customer.json", QueueName::MaxioCustomer),
    ("sqs-maxio-core-link.json", QueueName::MaxioCoreLink),
    ("sqs-whmcs-provision.json", QueueName::WhmcsProvision),
    ("delayed-redispatch.json", QueueName::Delayed),
];

fn handler(stack: &LocalStack, queue: QueueName) -> std::sync::Arc<dyn QueueHandler> {
    stack.router().handler(queue).expect("a handler").clone()
}

/// The sample's body made into each forgery: `(what, body)`.
fn forgeries(body: &str) -> Vec<(&'static str, String)> {
    let bare = unsealed(body);
    let other = SealKeys::parse(
        "other",
        &Secret::new(
            json!({"current": "k1", "k1": "another-stacks-key-0123456789abcdef"}).to_string(),
        ),
    )
    .unwrap();
    let mut changed: Value = serde_json::from_str(body).unwrap();
    changed["correlationId"] = json!("forged");
    vec![
        ("no seal", bare.clone()),
        ("sealed with another key", other.seal(&bare).unwrap()),
        ("changed after sealing", changed.to_string()),
        (
            "a seal of the right shape that is not a MAC",
            format!(
                "{},\"seal\":\"sandbox1.{}\"}}",
                &bare[..bare.len() - 1],
                "00".repeat(32)
            ),
        ),
    ]
}

#[tokio::test]
async fn a_forged_envelope_sent_straight_to_each_worker_creates_nothing_and_is_dead_lettered() {
    for (file, queue) in SAMPLES {
        let genuine = sample(file);
        let body = genuine["Records"][0]["body"].as_str().unwrap().to_string();
        for (what, forged) in forgeries(&body) {
            let stack = LocalStack::start().await.unwrap();
            let core_contracts = stack.maxio_core.contracts();
            let mut event = genuine.clone();
            event["Records"][0]["body"] = json!(forged);
            let event: SqsEvent = serde_json::from_value(event).unwrap();
            let response = run_batch(
                queue,
                handler(&stack, queue).as_ref(),
                &stack.queue,
                &event,
                None,
            )
            .await;
            assert!(
                response.batch_item_failures.is_empty(),
                "{file}, {what}: not returned to its queue"
            );
            assert_eq!(
                stack.queue.dead_letters(queue),
                std::slice::from_ref(&forged),
                "{file}, {what}: in the dead-letter queue at once, as it came"
            );
            assert!(stack.maxio_ab.customers().is_empty(), "{file}, {what}");
            assert!(stack.maxio_ab.subscriptions().is_empty(), "{file}, {what}");
            assert_eq!(stack.whmcs.order_count(), 0, "{file}, {what}");
            assert_eq!(
                stack.maxio_core.contracts(),
                core_contracts,
                "{file}, {what}"
            );
            assert_eq!(
                stack.salesforce.observer().total(),
                0,
                "{file}, {what}: Salesforce was neither read nor written"
            );
            assert_eq!(
                stack.salesforce.observer().count(routes::COLLECTIONS_PATCH),
                0
            );
            let sent: usize = QueueName::ALL
                .iter()
                .map(|q| stack.queue.sent(*q).len())
                .sum();
            assert_eq!(sent, 0, "{file}, {what}: nothing sent on");
        }
    }
}

#[tokio::test]
async fn every_worker_of_the_production_wiring_opens_its_messages() {
    let stack = LocalStack::start().await.unwrap();
    let router = stack.wiring.router().unwrap();
    for queue in router.queues() {
        assert!(
            router.handler(queue).is_some_and(|h| h.seal().is_some()),
            "the {queue} handler takes unsealed messages"
        );
    }
    assert_eq!(router.queues().len(), 6);
    // What the functions send is sealed.
    crate::support::send_deal(&stack, "VolumeOpportunity").await;
    let sent = stack.queue.sent(QueueName::MaxioCustomer);
    assert_eq!(sent.len(), 1);
    assert!(
        sent[0].body.contains(",\"seal\":\"sandbox1."),
        "{}",
        sent[0].body
    );
}

/// On a FIFO queue a forged message used to hold back its group (the deal's Account) for the
/// queue's whole maxReceiveCount before SQS dead-lettered it. It goes to the dead-letter queue on
/// its first receive now, and the genuine message of the same group behind it is handled at once:
/// no visibility timeout passes.
#[tokio::test]
async fn a_forged_message_ahead_of_a_genuine_one_in_its_group_is_dead_lettered_at_once_and_the_genuine_one_handled()
 {
    let stack = LocalStack::start().await.unwrap();
    let genuine = sample("sqs-maxio-customer.json");
    let record = &genuine["Records"][0];
    let body = record["body"].as_str().unwrap().to_string();
    let group = record["attributes"]["MessageGroupId"].as_str().unwrap();
    let forged = forgeries(&body)[0]
        .1
        .replace("sample-volume-deal", "forged");
    for (text, dedup) in [(&forged, "forged"), (&body, "genuine")] {
        stack
            .queue
            .send(&OutgoingMessage {
                queue: QueueName::MaxioCustomer,
                body: text.clone(),
                group_id: Some(group.to_string()),
                dedup_id: Some(dedup.to_string()),
                delay: Duration::ZERO,
            })
            .await
            .unwrap();
    }
    let started = stack.queue.now();

    let drained = stack.drain_queues(&[QueueName::MaxioCustomer], 10).await;

    let deliveries: Vec<(u32, &str, Option<&str>)> = drained
        .deliveries
        .iter()
        .map(|d| (d.receive_count, d.handled.kind(), d.step))
        .collect();
    assert_eq!(
        deliveries,
        [
            (1, "dead-lettered", None),
            (1, "done", Some("maxio-customer"))
        ],
        "{:?}",
        drained.deliveries
    );
    assert_eq!(
        drained.deliveries[0]
            .handled
            .failure()
            .map(|f| f.code.as_str()),
        Some("DEALBRIDGE_UNSEALED")
    );
    assert_eq!(
        stack.queue.now(),
        started,
        "no visibility timeout was waited for"
    );
    assert_eq!(stack.queue.dead_letters(QueueName::MaxioCustomer), [forged]);
    assert_eq!(stack.queue.depth(QueueName::MaxioCustomer), 0);
    let customers = stack.maxio_ab.customers();
    assert_eq!(customers.len(), 1, "the genuine deal's customer, once");
    assert_eq!(
        stack.queue.sent(QueueName::MaxioPricePoints).len(),
        1,
        "the genuine deal went on to its next step"
    );
}
