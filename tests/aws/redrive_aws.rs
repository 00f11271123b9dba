//! Dead-letter queue redrive against moto's server: real envelopes are dead-lettered the way SQS
//! does it (received past the queue's maxReceiveCount), then sent back to their queue with their
//! body and group, deleted from the dead-letter queue only once sent, never lost on a failure.

use std::time::Duration;

use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use dealbridge::envelope::{Envelope, Step};
use dealbridge::maxio::link::CoreLinkInput;
use dealbridge::queue::{
    Queue, QueueName, QueueUrls, RedriveOptions, RedriveProgress, RedriveStage, SqsQueue, redrive,
    redrive_dedup_id,
};
use dealbridge::salesforce::SfId;
use dealbridge::snapshot::DealRef;
use dealbridge_sandbox::aws::{create_dead_letter_queues, create_queues};
use dealbridge_sandbox::moto::Moto;

/// Receives before a message is dead-lettered (small, so the tests dead-letter quickly).
const MAX_RECEIVES: u32 = 2;

const ACCOUNT_A: &str = "001A000010khO8J";
const ACCOUNT_B: &str = "001A000020khO8K";

struct Aws {
    _moto: Moto,
    sqs: aws_sdk_sqs::Client,
    queues: QueueUrls,
    dlqs: QueueUrls,
}

impl Aws {
    async fn start() -> Aws {
        let moto = Moto::start().await.expect("moto starts");
        let sqs = aws_sdk_sqs::Client::new(&moto.sdk_config().await);
        let queues = create_queues(&sqs).await.expect("queues");
        let dlqs = create_dead_letter_queues(&sqs, &queues, MAX_RECEIVES)
            .await
            .expect("dead-letter queues");
        Aws {
            _moto: moto,
            sqs,
            queues,
            dlqs,
        }
    }

    fn queue(&self, q: QueueName) -> &str {
        self.queues.get(q).expect("queue URL")
    }

    fn dlq(&self, q: QueueName) -> &str {
        self.dlqs.get(q).expect("DLQ URL")
    }

    /// Sends the envelopes (all for one queue) through the product's SQS adapter, then receives
    /// them, one at a time and without deleting, until SQS has moved every one to the dead-letter
    /// queue, in the order they were sent.
    async fn dead_letter(&self, envelopes: &[Envelope]) {
        let queue = SqsQueue::new(self.sqs.clone(), self.queues.clone());
        let q = envelopes[0].step.queue();
        for e in envelopes {
            let message = e.to_message(Duration::ZERO).expect("message");
            assert_eq!(message.queue, q, "one queue at a time");
            queue.send(&message).await.expect("send");
        }
        for round in 0.. {
            assert!(round < 100, "{q}: the messages never reached the DLQ");
            let out = self
                .sqs
                .receive_message()
                .queue_url(self.queue(q))
                .max_number_of_messages(1)
                .visibility_timeout(0)
                .send()
                .await
                .expect("receive");
            if out.messages().is_empty() {
                break;
            }
        }
        let depth = self
            .sqs
            .get_queue_attributes()
            .queue_url(self.dlq(q))
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .send()
            .await
            .expect("DLQ attributes")
            .attributes()
            .and_then(|a| {
                a.get(&QueueAttributeName::ApproximateNumberOfMessages)
                    .cloned()
            });
        assert_eq!(
            depth,
            Some(envelopes.len().to_string()),
            "{q}: all dead-lettered"
        );
    }

    /// Every message now on `url` (each left in flight, so each is returned once).
    async fn messages(&self, url: &str) -> Vec<aws_sdk_sqs::types::Message> {
        let mut all = Vec::new();
        loop {
            let out = self
                .sqs
                .receive_message()
                .queue_url(url)
                .max_number_of_messages(10)
                .visibility_timeout(60)
                .message_system_attribute_names(MessageSystemAttributeName::All)
                .send()
                .await
                .expect("receive");
            let batch = out.messages.unwrap_or_default();
            if batch.is_empty() {
                return all;
            }
            all.extend(batch);
        }
    }
}

fn attribute(m: &aws_sdk_sqs::types::Message, name: MessageSystemAttributeName) -> Option<String> {
    m.attributes().and_then(|a| a.get(&name)).cloned()
}

fn bodies(messages: &[aws_sdk_sqs::types::Message]) -> Vec<String> {
    messages
        .iter()
        .map(|m| m.body().unwrap_or_default().to_string())
        .collect()
}

/// A real envelope of the Maxio Core link step (small, so a message size limit can refuse a
/// longer one).
fn core_link(opportunity: &str, account: &str, subscription_id: i64) -> Envelope {
    let opportunity = SfId::parse(opportunity).expect("opportunity id");
    Envelope::new(
        &format!("corr-{subscription_id}"),
        &DealRef::Opportunity(opportunity.clone()),
        &SfId::parse(account).expect("account id"),
        None,
        Step::MaxioCoreLink {
            link: CoreLinkInput {
                opportunity_id: opportunity,
                customer_id: 4242,
                subscription_id,
                attempt: 1,
                started_at: Some(1_795_176_000),
                sync_written: true,
                site: None,
            },
        },
    )
}

fn body(e: &Envelope) -> String {
    e.to_message(Duration::ZERO).expect("message").body
}

/// Three deals: two of Account A (one FIFO group, in this order), one of Account B.
fn three_deals() -> Vec<Envelope> {
    vec![
        core_link("006A000010khO8J", ACCOUNT_A, 101),
        core_link("006A000011khO8J", ACCOUNT_A, 102),
        core_link("006A000012khO8J", ACCOUNT_B, 103),
    ]
}

#[tokio::test]
async fn dead_lettered_fifo_messages_go_back_to_their_queue_with_body_and_group_and_leave_the_dead_letter_queue()
 {
    let aws = Aws::start().await;
    let deals = three_deals();
    aws.dead_letter(&deals).await;
    let (queue, dlq) = (
        aws.queue(QueueName::MaxioCoreLink),
        aws.dlq(QueueName::MaxioCoreLink),
    );

    let mut heard = Vec::new();
    let report = redrive(&aws.sqs, dlq, queue, RedriveOptions::default(), |p| {
        heard.push(p)
    })
    .await
    .expect("redrive");

    assert!(!report.dry_run);
    assert_eq!(report.approximate_depth, Some(3));
    assert_eq!((report.received, report.moved), (3, 3));
    assert_eq!(heard.len(), 3);
    assert!(heard.iter().all(|p| matches!(p, RedriveProgress::Moved(_))));
    for m in &report.messages {
        assert_eq!(
            m.dedup_id.as_deref(),
            Some(&*redrive_dedup_id(&m.dlq_message_id))
        );
        assert!(m.queue_message_id.is_some());
        assert_eq!(m.receive_count, Some(MAX_RECEIVES + 1));
    }
    assert!(aws.messages(dlq).await.is_empty(), "the DLQ is empty");

    let back = aws.messages(queue).await;
    assert_eq!(back.len(), 3);
    for deal in &deals {
        let m = back
            .iter()
            .find(|m| m.body() == Some(body(deal).as_str()))
            .expect("the deal's message is back, body unchanged");
        assert_eq!(
            attribute(m, MessageSystemAttributeName::MessageGroupId).as_deref(),
            Some(deal.account_id.as_str())
        );
        let dedup = attribute(m, MessageSystemAttributeName::MessageDeduplicationId)
            .expect("a deduplication id");
        assert!(dedup.starts_with("redrive-"), "{dedup}");
        assert_eq!(
            Envelope::parse(m.body().unwrap_or_default()).as_ref(),
            Ok(deal)
        );
    }
    let group_a: Vec<String> = back
        .iter()
        .filter(|m| {
            attribute(m, MessageSystemAttributeName::MessageGroupId).as_deref()
                == Some(deals[0].account_id.as_str())
        })
        .map(|m| m.body().unwrap_or_default().to_string())
        .collect();
    assert_eq!(
        group_a,
        vec![body(&deals[0]), body(&deals[1])],
        "group order kept"
    );
}

#[tokio::test]
async fn a_dry_run_lists_the_dead_letters_and_moves_nothing() {
    let aws = Aws::start().await;
    let deals = three_deals();
    aws.dead_letter(&deals).await;
    let (queue, dlq) = (
        aws.queue(QueueName::MaxioCoreLink),
        aws.dlq(QueueName::MaxioCoreLink),
    );

    let mut listed = 0;
    let options = RedriveOptions {
        dry_run: true,
        ..RedriveOptions::default()
    };
    let report = redrive(&aws.sqs, dlq, queue, options, |p| {
        assert!(matches!(p, RedriveProgress::Listed(_)), "{p:?}");
        listed += 1;
    })
    .await
    .expect("dry run");

    assert!(report.dry_run);
    assert_eq!((report.received, report.moved, listed), (3, 0, 3));
    let mut expected: Vec<String> = deals.iter().map(body).collect();
    let mut seen: Vec<String> = report.messages.iter().map(|m| m.body.clone()).collect();
    expected.sort();
    seen.sort();
    assert_eq!(seen, expected);
    assert!(report.messages.iter().all(|m| m.queue_message_id.is_none()));
    assert!(aws.messages(queue).await.is_empty(), "nothing was sent");
    // The listed messages were made visible again: all three can be received at once.
    assert_eq!(aws.messages(dlq).await.len(), 3);
}

#[tokio::test]
async fn max_messages_stops_the_redrive_after_that_many_in_order() {
    let aws = Aws::start().await;
    let deals = vec![
        core_link("006A000010khO8J", ACCOUNT_A, 101),
        core_link("006A000011khO8J", ACCOUNT_A, 102),
        core_link("006A000012khO8J", ACCOUNT_A, 103),
    ];
    aws.dead_letter(&deals).await;
    let (queue, dlq) = (
        aws.queue(QueueName::MaxioCoreLink),
        aws.dlq(QueueName::MaxioCoreLink),
    );

    let options = RedriveOptions {
        max_messages: Some(2),
        dry_run: false,
    };
    let report = redrive(&aws.sqs, dlq, queue, options, |_| {})
        .await
        .expect("redrive");

    assert_eq!((report.received, report.moved), (2, 2));
    assert_eq!(
        bodies(&aws.messages(queue).await),
        vec![body(&deals[0]), body(&deals[1])]
    );
    assert_eq!(bodies(&aws.messages(dlq).await), vec![body(&deals[2])]);
}

#[tokio::test]
async fn a_refused_send_leaves_that_message_and_every_later_one_in_the_dead_letter_queue() {
    let aws = Aws::start().await;
    let (queue, dlq) = (
        aws.queue(QueueName::MaxioCoreLink),
        aws.dlq(QueueName::MaxioCoreLink),
    );
    // The second message is longer than the queue will now take (SQS's minimum limit, 1 KiB).
    let long_key = "k".repeat(1500);
    let opportunity = SfId::parse("006A000011khO8J").expect("id");
    let too_long = Envelope::new(
        "corr-102",
        &DealRef::Opportunity(opportunity),
        &SfId::parse(ACCOUNT_A).expect("id"),
        Some(&long_key),
        core_link("006A000011khO8J", ACCOUNT_A, 102).step,
    );
    let deals = vec![
        core_link("006A000010khO8J", ACCOUNT_A, 101),
        too_long,
        core_link("006A000012khO8J", ACCOUNT_A, 103),
    ];
    aws.dead_letter(&deals).await;
    aws.sqs
        .set_queue_attributes()
        .queue_url(queue)
        .attributes(QueueAttributeName::MaximumMessageSize, "1024")
        .send()
        .await
        .expect("limit the message size");

    let error = redrive(&aws.sqs, dlq, queue, RedriveOptions::default(), |_| {})
        .await
        .expect_err("the second send is refused");

    assert_eq!(error.stage, RedriveStage::Send);
    assert_eq!(error.report.moved, 1);
    assert_eq!(error.report.received, 2);
    assert_eq!(
        error.dlq_message_id.as_deref(),
        Some(error.report.messages[1].dlq_message_id.as_str())
    );
    assert_eq!(bodies(&aws.messages(queue).await), vec![body(&deals[0])]);
    // Still in the DLQ, in order, and visible at once (not hidden until a visibility timeout).
    assert_eq!(
        bodies(&aws.messages(dlq).await),
        vec![body(&deals[1]), body(&deals[2])]
    );
}

#[tokio::test]
async fn a_wrong_destination_url_receives_nothing_from_the_dead_letter_queue() {
    let aws = Aws::start().await;
    aws.dead_letter(&three_deals()).await;
    let dlq = aws.dlq(QueueName::MaxioCoreLink);
    let wrong = aws
        .queue(QueueName::MaxioCoreLink)
        .replace("dealbridge-maxio-core-link", "dealbridge-no-such-queue");

    let error = redrive(&aws.sqs, dlq, &wrong, RedriveOptions::default(), |_| {})
        .await
        .expect_err("no such queue");

    assert_eq!(error.stage, RedriveStage::Inspect);
    assert_eq!((error.report.received, error.report.moved), (0, 0));
    assert_eq!(aws.messages(dlq).await.len(), 3);
}

#[tokio::test]
async fn a_dead_letter_queue_is_redriven_only_into_the_queue_that_dead_lettered_to_it() {
    let aws = Aws::start().await;
    aws.dead_letter(&three_deals()).await;
    let dlq = aws.dlq(QueueName::MaxioCoreLink);

    for other in [QueueName::WhmcsProvision, QueueName::Delayed] {
        let error = redrive(
            &aws.sqs,
            dlq,
            aws.queue(other),
            RedriveOptions::default(),
            |_| {},
        )
        .await
        .expect_err("not its queue");
        assert_eq!(error.stage, RedriveStage::Inspect, "{other}: {error}");
    }
    assert_eq!(aws.messages(dlq).await.len(), 3);
    assert!(
        aws.messages(aws.queue(QueueName::WhmcsProvision))
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn the_standard_delayed_queue_is_redriven_without_group_or_deduplication_id() {
    let aws = Aws::start().await;
    let opportunity = SfId::parse("006A000010khO8J").expect("id");
    let dispatch = Envelope::new(
        "corr-delayed",
        &DealRef::Opportunity(opportunity),
        &SfId::parse(ACCOUNT_A).expect("id"),
        Some("IDEM-1"),
        Step::Dispatch {
            attempt: 3,
            not_before: 1_795_176_000,
            chain: None,
        },
    );
    aws.dead_letter(std::slice::from_ref(&dispatch)).await;
    let (queue, dlq) = (aws.queue(QueueName::Delayed), aws.dlq(QueueName::Delayed));

    let report = redrive(&aws.sqs, dlq, queue, RedriveOptions::default(), |_| {})
        .await
        .expect("redrive");

    assert_eq!(report.moved, 1);
    assert_eq!(report.messages[0].group_id, None);
    assert_eq!(report.messages[0].dedup_id, None);
    assert_eq!(bodies(&aws.messages(queue).await), vec![body(&dispatch)]);
    assert!(aws.messages(dlq).await.is_empty());
}

#[tokio::test]
async fn a_redrive_repeated_after_a_crash_between_send_and_delete_does_not_send_twice_within_five_minutes()
 {
    let aws = Aws::start().await;
    let deals = three_deals();
    aws.dead_letter(&deals).await;
    let (queue, dlq) = (
        aws.queue(QueueName::MaxioCoreLink),
        aws.dlq(QueueName::MaxioCoreLink),
    );
    // A first run sent the first message, then died before deleting it from the DLQ.
    let listed = redrive(
        &aws.sqs,
        dlq,
        queue,
        RedriveOptions {
            max_messages: Some(1),
            dry_run: true,
        },
        |_| {},
    )
    .await
    .expect("dry run")
    .messages;
    let first = &listed[0];
    aws.sqs
        .send_message()
        .queue_url(queue)
        .message_body(&first.body)
        .set_message_group_id(first.group_id.clone())
        .set_message_deduplication_id(first.dedup_id.clone())
        .send()
        .await
        .expect("the crashed run's send");

    let report = redrive(&aws.sqs, dlq, queue, RedriveOptions::default(), |_| {})
        .await
        .expect("redrive");

    assert_eq!(report.moved, 3);
    let mut back = bodies(&aws.messages(queue).await);
    let mut expected: Vec<String> = deals.iter().map(body).collect();
    back.sort();
    expected.sort();
    assert_eq!(
        back, expected,
        "one copy of each, the crashed run's send included"
    );
    assert!(aws.messages(dlq).await.is_empty());
}
