//! Dispatch through the SQS adapter against moto's server: messages land on the right FIFO queues
//! with the Account as group and the deterministic deduplication id, and a second identical
//! dispatch is deduplicated. A message a worker can never handle is moved by the dead-letter
//! adapter to the queue's FIFO dead-letter queue as it came.

use std::collections::HashMap;
use std::sync::Arc;

use aws_lambda_events::sqs::SqsEvent;
use aws_sdk_sqs::primitives::Blob;
use aws_sdk_sqs::types::{MessageAttributeValue, MessageSystemAttributeName, QueueAttributeName};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use dealbridge::clock::ManualClock;
use dealbridge::dispatch::{DispatchOutcome, DispatchRequest, Dispatcher, RedispatchPolicy};
use dealbridge::envelope::Envelope;
use dealbridge::queue::{
    DeadLetterQueue, QueueName, QueueUrls, SqsDeadLetters, SqsQueue, dead_letter_dedup_id,
};
use dealbridge::runner::run_batch;
use dealbridge::snapshot::{DealRef, SnapshotLoader};
use dealbridge_sandbox::aws::{create_dead_letter_queues, create_queues};
use dealbridge_sandbox::local::{LocalStack, sample_time};
use dealbridge_sandbox::moto::Moto;

async fn receive_all(sqs: &aws_sdk_sqs::Client, url: &str) -> Vec<aws_sdk_sqs::types::Message> {
    let out = sqs
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(10)
        .message_system_attribute_names(MessageSystemAttributeName::All)
        .message_attribute_names("All")
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
        delayed_key: None,
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

/// The Lambda SQS event of `messages` as received from `queue`, with their system and message
/// attributes, the way Lambda's poller hands them over.
fn lambda_event(queue: QueueName, messages: &[aws_sdk_sqs::types::Message]) -> SqsEvent {
    let records: Vec<serde_json::Value> = messages
        .iter()
        .map(|m| {
            let attributes: serde_json::Map<String, serde_json::Value> = m
                .attributes()
                .into_iter()
                .flatten()
                .map(|(k, v)| (k.as_str().to_string(), serde_json::json!(v)))
                .collect();
            let message_attributes: serde_json::Map<String, serde_json::Value> = m
                .message_attributes()
                .into_iter()
                .flatten()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        serde_json::json!({
                            "dataType": v.data_type(),
                            "stringValue": v.string_value(),
                            "binaryValue": v.binary_value().map(|b| BASE64.encode(b.as_ref())),
                        }),
                    )
                })
                .collect();
            serde_json::json!({
                "messageId": m.message_id(),
                "receiptHandle": m.receipt_handle(),
                "body": m.body(),
                "attributes": attributes,
                "messageAttributes": message_attributes,
                "eventSource": "aws:sqs",
                "eventSourceARN": format!("arn:aws:sqs:us-east-1:123456789012:dealbridge-{queue}.fifo"),
                "awsRegion": "us-east-1",
            })
        })
        .collect();
    serde_json::from_value(serde_json::json!({ "Records": records })).expect("an SQS event")
}

#[tokio::test]
async fn a_forged_fifo_message_is_moved_to_its_dead_letter_queue_with_its_body_group_and_attributes()
 {
    let moto = Moto::start().await.expect("moto starts");
    let sqs = aws_sdk_sqs::Client::new(&moto.sdk_config().await);
    let queues = create_queues(&sqs).await.unwrap();
    let dlqs = create_dead_letter_queues(&sqs, &queues, 10).await.unwrap();
    let stack = LocalStack::start().await.unwrap();
    let queue = QueueName::MaxioCustomer;
    let group = stack.id("VolumeAccount").to_string();
    let forged = r#"{"version":1,"correlationId":"forged","step":{"name":"maxio-customer"}}"#;
    // Sent straight to the queue, as anyone allowed sqs:SendMessage could.
    sqs.send_message()
        .queue_url(queues.get(queue).unwrap())
        .message_body(forged)
        .message_group_id(&group)
        .message_deduplication_id("forged-1")
        .message_attributes(
            "origin",
            MessageAttributeValue::builder()
                .data_type("String")
                .string_value("elsewhere")
                .build()
                .unwrap(),
        )
        .message_attributes(
            "blob",
            MessageAttributeValue::builder()
                .data_type("Binary")
                .binary_value(Blob::new(vec![0, 1, 2, 255]))
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let received = receive_all(&sqs, queues.get(queue).unwrap()).await;
    assert_eq!(received.len(), 1);
    let event = lambda_event(queue, &received);
    let dead_letters = SqsDeadLetters::new(sqs.clone(), dlqs.clone());
    let router = stack.router();
    let handler = router.handler(queue).unwrap();

    let response = run_batch(queue, handler.as_ref(), &dead_letters, &event, None).await;

    assert!(
        response.batch_item_failures.is_empty(),
        "reported done, so Lambda deletes it from its queue"
    );
    assert!(stack.maxio_ab.customers().is_empty(), "nothing was done");
    let dead = receive_all(&sqs, dlqs.get(queue).unwrap()).await;
    assert_eq!(dead.len(), 1);
    let m = &dead[0];
    assert_eq!(m.body(), Some(forged));
    let attribute = |name: MessageSystemAttributeName| {
        m.attributes()
            .and_then(|a| a.get(&name))
            .map(String::as_str)
    };
    assert_eq!(
        attribute(MessageSystemAttributeName::MessageGroupId),
        Some(group.as_str())
    );
    let source_id = received[0].message_id().unwrap();
    assert_eq!(
        attribute(MessageSystemAttributeName::MessageDeduplicationId),
        Some(dead_letter_dedup_id(source_id).as_str())
    );
    let attributes = m.message_attributes().cloned().unwrap_or_default();
    assert_eq!(attributes.len(), 2, "{attributes:?}");
    assert_eq!(attributes["origin"].data_type(), "String");
    assert_eq!(attributes["origin"].string_value(), Some("elsewhere"));
    assert_eq!(attributes["blob"].data_type(), "Binary");
    assert_eq!(
        attributes["blob"]
            .binary_value()
            .map(|b| b.as_ref().to_vec()),
        Some(vec![0, 1, 2, 255])
    );

    // Moved again (its deletion lost, received once more): the dead-letter queue keeps one copy.
    dead_letters
        .dead_letter(queue, &event.records[0])
        .await
        .unwrap();
    let depth = sqs
        .get_queue_attributes()
        .queue_url(dlqs.get(queue).unwrap())
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .unwrap();
    let count = |name: QueueAttributeName| {
        depth
            .attributes()
            .and_then(|a| a.get(&name))
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or_default()
    };
    assert_eq!(
        count(QueueAttributeName::ApproximateNumberOfMessages)
            + count(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
        1
    );
}

#[tokio::test]
async fn a_move_to_a_missing_dead_letter_queue_fails_and_the_record_is_kept() {
    let moto = Moto::start().await.expect("moto starts");
    let sqs = aws_sdk_sqs::Client::new(&moto.sdk_config().await);
    let queues = create_queues(&sqs).await.unwrap();
    let stack = LocalStack::start().await.unwrap();
    let queue = QueueName::MaxioCustomer;
    sqs.send_message()
        .queue_url(queues.get(queue).unwrap())
        .message_body(r#"{"forged":true}"#)
        .message_group_id("g")
        .message_deduplication_id("forged-1")
        .send()
        .await
        .unwrap();
    let received = receive_all(&sqs, queues.get(queue).unwrap()).await;
    let event = lambda_event(queue, &received);
    let missing = QueueUrls::new(HashMap::from([(
        queue,
        format!("{}/123456789012/missing-dlq.fifo", moto.endpoint()),
    )]));
    let router = stack.router();

    let response = run_batch(
        queue,
        router.handler(queue).unwrap().as_ref(),
        &SqsDeadLetters::new(sqs, missing),
        &event,
        None,
    )
    .await;

    let failed: Vec<&str> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    assert_eq!(failed, [received[0].message_id().unwrap()]);
}
