//! Dispatch through the SQS adapter against moto's server: messages land on the right FIFO queues
//! with the Account as group and the deterministic deduplication id, and a second identical
//! dispatch is deduplicated.

use std::collections::HashMap;
use std::sync::Arc;

use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use dealbridge::clock::ManualClock;
use dealbridge::dispatch::{DispatchOutcome, DispatchRequest, Dispatcher, RedispatchPolicy};
use dealbridge::envelope::Envelope;
use dealbridge::queue::{QueueName, QueueUrls, SqsQueue};
use dealbridge::snapshot::{DealRef, SnapshotLoader};
use dealbridge_sandbox::aws::create_queues;
use dealbridge_sandbox::local::{LocalStack, sample_time};
use dealbridge_sandbox::moto::Moto;

async fn receive_all(sqs: &aws_sdk_sqs::Client, url: &str) -> Vec<aws_sdk_sqs::types::Message> {
    let out = sqs
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(10)
        .message_system_attribute_names(MessageSystemAttributeName::All)
        .send()
        .await
        .expect("receive");
    out.messages.unwrap_or_default()
}

fn dispatcher(stack: &LocalStack, queue: SqsQueue) -> Dispatcher {
    Dispatcher::new(
        SnapshotLoader::new(stack.client.clone(), Arc::new(stack.config.mapping.clone())),
        Arc::new(queue),
        Arc::new(stack.config.mapping.clone()),
        RedispatchPolicy::default(),
        Arc::new(ManualClock::new(sample_time())),
    )
}

fn request(deal: DealRef, correlation: &str) -> DispatchRequest {
    DispatchRequest {
        deal,
        correlation_id: correlation.into(),
        dry_run: false,
        attempt: 0,
        idempotency_key: None,
    }
}

#[tokio::test]
async fn messages_land_on_their_fifo_queues_grouped_by_account_and_deduplicated() {
    let moto = Moto::start().await.expect("moto starts");
    let sqs = aws_sdk_sqs::Client::new(&moto.sdk_config().await);
    let urls = create_queues(&sqs).await.unwrap();
    let stack = LocalStack::start().await.unwrap();
    let dispatcher = dispatcher(&stack, SqsQueue::new(sqs.clone(), urls.clone()));

    let volume = DealRef::Opportunity(stack.id("VolumeOpportunity"));
    let first = dispatcher
        .dispatch(&request(volume.clone(), "first"))
        .await
        .unwrap();
    let second = dispatcher
        .dispatch(&request(volume, "second"))
        .await
        .unwrap();
    let dedup_of = |o: &DispatchOutcome| match o {
        DispatchOutcome::Planned { messages, .. } => messages[0].deduplication_id.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(dedup_of(&first), dedup_of(&second));
    dispatcher
        .dispatch(&request(DealRef::Order(stack.id("InternetOrder")), "net"))
        .await
        .unwrap();

    let maxio = receive_all(&sqs, urls.get(QueueName::MaxioCustomer).unwrap()).await;
    assert_eq!(
        maxio.len(),
        1,
        "the second identical dispatch was deduplicated by SQS"
    );
    let attrs = maxio[0].attributes.clone().unwrap_or_default();
    assert_eq!(
        attrs
            .get(&MessageSystemAttributeName::MessageGroupId)
            .map(String::as_str),
        Some(stack.id("VolumeAccount").as_str())
    );
    assert_eq!(
        attrs
            .get(&MessageSystemAttributeName::MessageDeduplicationId)
            .cloned(),
        dedup_of(&first)
    );
    let envelope = Envelope::parse(maxio[0].body().unwrap()).unwrap();
    assert_eq!(envelope.correlation_id, "first");

    let whmcs = receive_all(&sqs, urls.get(QueueName::WhmcsProvision).unwrap()).await;
    assert_eq!(whmcs.len(), 1);
    assert_eq!(
        whmcs[0]
            .attributes
            .clone()
            .unwrap_or_default()
            .get(&MessageSystemAttributeName::MessageGroupId)
            .map(String::as_str),
        Some(stack.id("InternetAccount").as_str())
    );
    assert!(
        receive_all(&sqs, urls.get(QueueName::Delayed).unwrap())
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn a_deferred_dispatch_waits_on_the_standard_delayed_queue() {
    let moto = Moto::start().await.expect("moto starts");
    let sqs = aws_sdk_sqs::Client::new(&moto.sdk_config().await);
    let urls = create_queues(&sqs).await.unwrap();
    let stack = LocalStack::start().await.unwrap();
    let dispatcher = dispatcher(&stack, SqsQueue::new(sqs.clone(), urls.clone()));
    let outcome = dispatcher
        .dispatch(&request(
            DealRef::Opportunity(stack.id("PendingOpportunity")),
            "pending",
        ))
        .await
        .unwrap();
    assert!(matches!(
        outcome,
        DispatchOutcome::Deferred {
            retry_in_seconds: 60,
            ..
        }
    ));
    let delayed_url = urls.get(QueueName::Delayed).unwrap();
    assert!(
        receive_all(&sqs, delayed_url).await.is_empty(),
        "delayed by 60 s, not visible yet"
    );
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(delayed_url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesDelayed)
        .send()
        .await
        .unwrap();
    assert_eq!(
        attrs
            .attributes()
            .and_then(|a| a.get(&QueueAttributeName::ApproximateNumberOfMessagesDelayed))
            .map(String::as_str),
        Some("1")
    );
}

#[tokio::test]
async fn a_missing_queue_is_a_clear_error() {
    let moto = Moto::start().await.expect("moto starts");
    let sqs = aws_sdk_sqs::Client::new(&moto.sdk_config().await);
    let mut urls = HashMap::new();
    for q in QueueName::ALL {
        urls.insert(q, format!("{}/123456789012/missing-{q}", moto.endpoint()));
    }
    let stack = LocalStack::start().await.unwrap();
    let dispatcher = dispatcher(&stack, SqsQueue::new(sqs, QueueUrls::new(urls)));
    let err = dispatcher
        .dispatch(&request(
            DealRef::Opportunity(stack.id("VolumeOpportunity")),
            "x",
        ))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("queue maxio-customer"), "{err}");
    assert!(!err.is_retryable(), "{err}");
}
