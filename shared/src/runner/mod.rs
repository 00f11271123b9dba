//! One way to run a step. A [`QueueHandler`] is the handler of one queue: it gets a parsed
//! [`Envelope`] and its [`Delivery`] and says whether the message is done or must come back. One
//! generic SQS entry ([`run_batch`]) serves every worker Lambda; a [`Router`] maps each queue to its
//! handler; one drain loop ([`drain`]) runs the router over the in-memory queue for the local
//! stack, the operator CLI, the chaos suite and the benchmark.
//!
//! On a FIFO queue, records of one group must be handled in order: after the first record that
//! must be retried, it and every later record of its message group are reported as failures
//! (they return to the queue in order), as Lambda's documentation prescribes for
//! `ReportBatchItemFailures` on FIFO. Records of other groups are handled: FIFO orders messages
//! only within a group, and holding them back too would spend their receives (and send them to
//! the dead-letter queue unhandled) for another deal's trouble. A record without a
//! `MessageGroupId` holds back every later record. On a standard queue each record stands alone.
//!
//! A record that can never be handled (no body, not sealed with the stack's envelope key, not an
//! envelope, or a step that belongs on another queue) is not retried: it is moved to its queue's
//! dead-letter queue at once ([`DeadLetterQueue`]) and reported done, so it does not hold back
//! its group for the queue's whole `maxReceiveCount`. Nothing is done for it and nothing is written
//! to Salesforce (an unsealed message is untrusted). If the move fails, it is retried as any
//! other record, and SQS dead-letters it after `maxReceiveCount`.

mod drain;

use std::sync::Arc;

use async_trait::async_trait;
use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use chrono::{DateTime, Utc};
use tracing::{Instrument, error, warn};

pub use drain::{
    Ack, DeliveryReport, DrainHooks, DrainOptions, Drained, NoWaiting, OnRetry, drain,
};

use crate::codes::ErrorCode;
use crate::envelope::Envelope;
use crate::failure::Failure;
use crate::queue::{DeadLetterQueue, QueueName};

/// What became of one delivery: the one outcome of every step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handled {
    /// Done: delete the message.
    Done,
    /// Not due yet: the work was put back to wait (on the delayed queue); delete this message.
    NotYet(String),
    /// Cannot succeed by trying again, and said so on the record: delete the message.
    Permanent(Failure),
    /// May succeed later: the message returns after its visibility timeout (and, after the
    /// queue's `maxReceiveCount`, goes to its dead-letter queue).
    Retry(Failure),
    /// Needs a person, said so on the record where it could (a conflict, or the last
    /// delivery of a message that kept failing): the message returns and ends in the
    /// dead-letter queue.
    Conflict(Failure),
    /// Can never be handled (not sealed by this stack, not an envelope, on the wrong queue):
    /// nothing was done, it was moved to the queue's dead-letter queue at once; delete the
    /// message. (A record without a body is tried too, but SQS takes no empty message, so it is
    /// retried and SQS dead-letters it; SQS never delivers one.)
    DeadLettered(Failure),
}

impl Handled {
    /// Whether the message is finished with (deleted) rather than returned to its queue.
    pub fn is_finished(&self) -> bool {
        matches!(
            self,
            Handled::Done | Handled::NotYet(_) | Handled::Permanent(_) | Handled::DeadLettered(_)
        )
    }

    /// The reason given, for anything but `Done` (`CODE: message` for failures).
    pub fn reason(&self) -> Option<String> {
        match self {
            Handled::Done => None,
            Handled::NotYet(r) => Some(r.clone()),
            Handled::Permanent(f)
            | Handled::Retry(f)
            | Handled::Conflict(f)
            | Handled::DeadLettered(f) => Some(f.to_string()),
        }
    }

    /// The failure, for failures.
    pub fn failure(&self) -> Option<&Failure> {
        match self {
            Handled::Permanent(f)
            | Handled::Retry(f)
            | Handled::Conflict(f)
            | Handled::DeadLettered(f) => Some(f),
            Handled::Done | Handled::NotYet(_) => None,
        }
    }

    /// `done`, `not-yet`, `permanent`, `transient`, `conflict` or `dead-lettered`.
    pub fn kind(&self) -> &'static str {
        match self {
            Handled::Done => "done",
            Handled::NotYet(_) => "not-yet",
            Handled::Permanent(_) => "permanent",
            Handled::Retry(_) => "transient",
            Handled::Conflict(_) => "conflict",
            Handled::DeadLettered(_) => "dead-lettered",
        }
    }
}

/// One delivery of a message, as the queue reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub queue: QueueName,
    pub message_id: String,
    /// `ApproximateReceiveCount`: 1 on the first delivery.
    pub receive_count: u32,
    /// When the invocation ends (the Lambda deadline), if known.
    pub deadline: Option<DateTime<Utc>>,
}

impl Delivery {
    /// The delivery of an SQS record received on `queue`.
    pub fn of(queue: QueueName, record: &SqsMessage, deadline: Option<DateTime<Utc>>) -> Delivery {
        Delivery {
            queue,
            message_id: record.message_id.clone().unwrap_or_default(),
            receive_count: receive_count(record),
            deadline,
        }
    }
}

/// The handler of one queue's messages.
#[async_trait]
pub trait QueueHandler: Send + Sync {
    /// What opens this queue's sealed messages ([`crate::seal`]): a message it refuses is never
    /// handled. `None` only where nothing seals the messages (tests, the operator CLI's runs).
    fn seal(&self) -> Option<&crate::seal::Seal>;

    /// Handles one message whose envelope belongs on `delivery.queue`.
    async fn handle(&self, envelope: Envelope, delivery: &Delivery) -> Handled;

    /// Called once a batch's records are handled, before the invocation answers: what the
    /// handler held for the batch is given back (the AB request slots, [`crate::budget`]), so a
    /// container frozen between invocations holds nothing.
    async fn batch_done(&self) {}
}

/// What became of one record of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordResult {
    pub message_id: String,
    /// The envelope's step and deal, when the body could be read.
    pub step: Option<&'static str>,
    pub deal: Option<String>,
    pub handled: Handled,
    /// Not handled: an earlier record of the FIFO batch is to be retried, so this one returns too.
    pub held_back: bool,
}

fn bad_message(reason: impl std::fmt::Display) -> Failure {
    Failure::new(ErrorCode::DealbridgeBadMessage, reason)
}

/// `ApproximateReceiveCount`: 1 on the first delivery.
pub fn receive_count(message: &SqsMessage) -> u32 {
    message
        .attributes
        .get("ApproximateReceiveCount")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
}

/// A record read as far as the runner reads it.
enum Read {
    /// A sealed envelope that belongs on the queue: for the handler.
    Envelope(Envelope),
    /// Cannot be opened now (the envelope keys could not be read): retried.
    NotNow(Failure),
    /// Can never be handled, whatever is tried: to the dead-letter queue at once.
    Never {
        step: Option<&'static str>,
        deal: Option<String>,
        failure: Failure,
    },
}

/// Opens and parses `record`'s body and checks its step belongs on `queue`.
async fn read(queue: QueueName, handler: &dyn QueueHandler, record: &SqsMessage) -> Read {
    let never = |failure| Read::Never {
        step: None,
        deal: None,
        failure,
    };
    let Some(body) = record.body.as_deref() else {
        return never(bad_message("the message has no body"));
    };
    if let Some(seal) = handler.seal()
        && let Err(e) = seal.open(body).await
    {
        let failure = Failure::new(ErrorCode::DealbridgeUnsealed, &e);
        return match e.refuses_the_message() {
            true => never(failure),
            false => Read::NotNow(failure),
        };
    }
    let envelope = match Envelope::parse(body) {
        Ok(envelope) => envelope,
        Err(e) => return never(bad_message(e)),
    };
    let step = envelope.step.name();
    if envelope.step.queue() != queue {
        return Read::Never {
            step: Some(step),
            deal: Some(envelope.deal_key()),
            failure: bad_message(format!(
                "a {step} message does not belong on the {queue} queue"
            )),
        };
    }
    Read::Envelope(envelope)
}

/// Moves a record that can never be handled to `queue`'s dead-letter queue: `DeadLettered` once
/// it is there, else `Retry` as any failure (it returns, and SQS dead-letters it after the
/// queue's `maxReceiveCount`; a message is never lost).
pub(crate) async fn move_to_dead_letters(
    queue: QueueName,
    dead_letters: &dyn DeadLetterQueue,
    record: &SqsMessage,
    delivery: &Delivery,
    failure: Failure,
) -> Handled {
    let message_id = &delivery.message_id;
    match dead_letters.dead_letter(queue, record).await {
        Ok(dlq_message_id) => {
            error!(%queue, %message_id, %dlq_message_id, receive_count = delivery.receive_count, reason = %failure, "message moved to the dead-letter queue: it can never be handled, and nothing was done");
            Handled::DeadLettered(failure)
        }
        Err(e) => {
            error!(%queue, %message_id, reason = %failure, error = %e, "a message that can never be handled could not be moved to the dead-letter queue; it returns to its queue");
            Handled::Retry(failure)
        }
    }
}

/// Reads one record's envelope, checks it belongs on `queue` and hands it to `handler` inside
/// the message's span; a record that can never be handled goes to `dead_letters`.
pub async fn handle_record(
    queue: QueueName,
    handler: &dyn QueueHandler,
    dead_letters: &dyn DeadLetterQueue,
    record: &SqsMessage,
    deadline: Option<DateTime<Utc>>,
) -> RecordResult {
    let delivery = Delivery::of(queue, record, deadline);
    let (step, deal, handled) = match read(queue, handler, record).await {
        Read::Envelope(envelope) => {
            let step = envelope.step.name();
            let deal = envelope.deal_key();
            let span = envelope.span();
            let handled = handler.handle(envelope, &delivery).instrument(span).await;
            (Some(step), Some(deal), handled)
        }
        Read::NotNow(failure) => (None, None, Handled::Retry(failure)),
        Read::Never {
            step,
            deal,
            failure,
        } => {
            let handled =
                move_to_dead_letters(queue, dead_letters, record, &delivery, failure).await;
            (step, deal, handled)
        }
    };
    RecordResult {
        message_id: delivery.message_id,
        step,
        deal,
        handled,
        held_back: false,
    }
}

/// The record's `MessageGroupId` (FIFO queues).
fn group_of(record: &SqsMessage) -> Option<&str> {
    record.attributes.get("MessageGroupId").map(String::as_str)
}

/// Handles `records` received on `queue`, in order; on a FIFO queue, after the first one of a
/// message group to retry, holds back the rest of that group. What can never be handled goes to
/// `dead_letters` (the queue's dead-letter queue).
pub async fn run_records(
    queue: QueueName,
    handler: &dyn QueueHandler,
    dead_letters: &dyn DeadLetterQueue,
    records: &[SqsMessage],
    deadline: Option<DateTime<Utc>>,
) -> Vec<RecordResult> {
    let mut results = Vec::with_capacity(records.len());
    // The groups stopped by a retry (`None`: a record without a group stops them all).
    let mut stopped: Vec<Option<&str>> = Vec::new();
    for record in records {
        let group = group_of(record);
        let failing = stopped.iter().any(|g| g.is_none() || *g == group);
        if failing {
            results.push(RecordResult {
                message_id: record.message_id.clone().unwrap_or_default(),
                step: None,
                deal: None,
                handled: Handled::Retry(Failure::new(
                    ErrorCode::DealbridgeHeldBack,
                    "an earlier message of its group in the batch is retried",
                )),
                held_back: true,
            });
            continue;
        }
        let result = handle_record(queue, handler, dead_letters, record, deadline).await;
        if result.handled.is_finished() {
            count_for_step(crate::metrics::MESSAGES_DONE, result.step);
        } else {
            let reason = result.handled.reason().unwrap_or_default();
            warn!(message_id = %result.message_id, %queue, %reason, "record will be retried");
            count_for_step(crate::metrics::MESSAGES_RETRIED, result.step);
            if queue.is_fifo() {
                stopped.push(group);
            }
        }
        results.push(result);
    }
    handler.batch_done().await;
    results
}

/// Counts one message in `metric`, per step when its step could be read (a message that could
/// not be read counts in the roll-ups only).
fn count_for_step(metric: &'static str, step: Option<&'static str>) {
    match step {
        Some(step) => crate::metrics::count_by(metric, crate::metrics::STEP, step, 1),
        None => crate::metrics::count(metric, 1),
    }
}

/// The SQS entry of every worker Lambda: handles the batch, moves what can never be handled to
/// `dead_letters`, and reports the records to retry (`ReportBatchItemFailures`).
pub async fn run_batch(
    queue: QueueName,
    handler: &dyn QueueHandler,
    dead_letters: &dyn DeadLetterQueue,
    event: &SqsEvent,
    deadline: Option<DateTime<Utc>>,
) -> SqsBatchResponse {
    batch_response(&run_records(queue, handler, dead_letters, &event.records, deadline).await)
}

/// The batch response for `results`: every record not done is a failure.
pub fn batch_response(results: &[RecordResult]) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    for r in results {
        if !r.handled.is_finished() {
            response.add_failure(r.message_id.clone());
        }
    }
    response
}

/// Every queue's handler: the one router from queue to step.
#[derive(Clone, Default)]
pub struct Router {
    /// In the order the queues are served.
    handlers: Vec<(QueueName, Arc<dyn QueueHandler>)>,
}

impl Router {
    pub fn new() -> Router {
        Router::default()
    }

    /// `queue`'s messages go to `handler` (replacing an earlier handler of `queue`).
    pub fn with(mut self, queue: QueueName, handler: Arc<dyn QueueHandler>) -> Router {
        self.handlers.retain(|(q, _)| *q != queue);
        self.handlers.push((queue, handler));
        self
    }

    pub fn handler(&self, queue: QueueName) -> Option<&Arc<dyn QueueHandler>> {
        self.handlers
            .iter()
            .find(|(q, _)| *q == queue)
            .map(|(_, h)| h)
    }

    /// The queues that have a handler, in the order they were added.
    pub fn queues(&self) -> Vec<QueueName> {
        self.handlers.iter().map(|(q, _)| *q).collect()
    }

    /// The same handlers for `queues` only.
    pub fn only(&self, queues: &[QueueName]) -> Router {
        Router {
            handlers: self
                .handlers
                .iter()
                .filter(|(q, _)| queues.contains(q))
                .cloned()
                .collect(),
        }
    }

    /// Handles `records` received on `queue` with its handler; without one, every record is
    /// retried (a message on a queue nobody serves is never dropped).
    pub async fn run_records(
        &self,
        queue: QueueName,
        dead_letters: &dyn DeadLetterQueue,
        records: &[SqsMessage],
        deadline: Option<DateTime<Utc>>,
    ) -> Vec<RecordResult> {
        match self.handler(queue) {
            Some(handler) => {
                run_records(queue, handler.as_ref(), dead_letters, records, deadline).await
            }
            None => records
                .iter()
                .map(|r| RecordResult {
                    message_id: r.message_id.clone().unwrap_or_default(),
                    step: None,
                    deal: None,
                    handled: Handled::Retry(Failure::new(
                        ErrorCode::DealbridgeInternal,
                        format!("no handler serves the {queue} queue"),
                    )),
                    held_back: false,
                })
                .collect(),
        }
    }
}

/// An SQS record as Lambda delivers it.
pub fn sqs_record(
    queue: QueueName,
    message_id: &str,
    body: &str,
    receive_count: u32,
) -> SqsMessage {
    let mut m = SqsMessage::default();
    m.message_id = Some(message_id.to_string());
    m.body = Some(body.to_string());
    m.event_source = Some("aws:sqs".into());
    m.event_source_arn = Some(format!("arn:aws:sqs:us-east-1:123456789012:{queue}"));
    m.aws_region = Some("us-east-1".into());
    m.attributes
        .insert("ApproximateReceiveCount".into(), receive_count.to_string());
    m
}

/// `record` with its FIFO `MessageGroupId`.
pub fn in_group(mut record: SqsMessage, group: Option<&str>) -> SqsMessage {
    if let Some(g) = group {
        record
            .attributes
            .insert("MessageGroupId".into(), g.to_string());
    }
    record
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::envelope::Step;
    use crate::queue::QueueError;
    use crate::salesforce::SfId;
    use crate::seal::Seal;
    use crate::secrets::InMemorySecrets;
    use crate::snapshot::DealRef;

    /// What was moved: queue, message id, body, group.
    type Moved = (QueueName, String, String, Option<String>);

    /// A dead-letter queue that keeps what it is sent, or refuses everything.
    #[derive(Default)]
    struct DeadLetters {
        refuse: bool,
        moved: Mutex<Vec<Moved>>,
    }

    impl DeadLetters {
        fn refusing() -> DeadLetters {
            DeadLetters {
                refuse: true,
                ..DeadLetters::default()
            }
        }

        fn ids(&self) -> Vec<String> {
            self.moved
                .lock()
                .unwrap()
                .iter()
                .map(|(_, id, _, _)| id.clone())
                .collect()
        }
    }

    #[async_trait]
    impl DeadLetterQueue for DeadLetters {
        async fn dead_letter(
            &self,
            queue: QueueName,
            record: &SqsMessage,
        ) -> Result<String, QueueError> {
            if self.refuse {
                return Err(QueueError::unavailable(queue, "AccessDenied".into()));
            }
            let id = record.message_id.clone().unwrap_or_default();
            self.moved.lock().unwrap().push((
                queue,
                id.clone(),
                record.body.clone().unwrap_or_default(),
                group_of(record).map(str::to_string),
            ));
            Ok(format!("dlq-{id}"))
        }
    }

    /// Retries the messages whose attempt number is listed; records what it saw.
    struct Recorder {
        retry: Vec<u32>,
        seen: Mutex<Vec<u32>>,
    }

    #[async_trait]
    impl QueueHandler for Recorder {
        fn seal(&self) -> Option<&crate::seal::Seal> {
            None
        }

        async fn handle(&self, envelope: Envelope, _delivery: &Delivery) -> Handled {
            let Step::Dispatch { attempt, .. } = envelope.step else {
                return Handled::Retry(Failure::new(
                    ErrorCode::DealbridgeBadMessage,
                    "not a dispatch",
                ));
            };
            self.seen.lock().unwrap().push(attempt);
            if self.retry.contains(&attempt) {
                Handled::Retry(Failure::new(
                    ErrorCode::DispatchFailed,
                    format!("attempt {attempt}"),
                ))
            } else {
                Handled::Done
            }
        }
    }

    fn envelope(attempt: u32) -> String {
        let deal = DealRef::Opportunity(SfId::parse("006A000010khO8J").unwrap());
        let account = SfId::parse("001A000010khO8J").unwrap();
        let step = Step::Dispatch {
            attempt,
            not_before: 0,
            chain: None,
        };
        serde_json::to_string(&Envelope::new("c", &deal, &account, None, step)).unwrap()
    }

    fn records(queue: QueueName, attempts: &[u32]) -> Vec<SqsMessage> {
        attempts
            .iter()
            .map(|a| sqs_record(queue, &format!("m{a}"), &envelope(*a), 1))
            .collect()
    }

    fn event(records: Vec<SqsMessage>) -> SqsEvent {
        let mut e = SqsEvent::default();
        e.records = records;
        e
    }

    fn failures(r: &SqsBatchResponse) -> Vec<String> {
        r.batch_item_failures
            .iter()
            .map(|f| f.item_identifier.clone())
            .collect()
    }

    /// A dispatch message (a delayed-queue step) received on a FIFO queue is checked by the
    /// queue guard.
    #[tokio::test]
    async fn a_message_on_the_wrong_queue_is_dead_lettered_not_handled() {
        let handler = Recorder {
            retry: vec![],
            seen: Mutex::new(vec![]),
        };
        let dead = DeadLetters::default();
        let records = vec![in_group(
            sqs_record(QueueName::MaxioCustomer, "m1", &envelope(1), 1),
            Some("A"),
        )];
        let results = run_records(QueueName::MaxioCustomer, &handler, &dead, &records, None).await;
        assert!(failures(&batch_response(&results)).is_empty());
        assert!(handler.seen.lock().unwrap().is_empty());
        assert_eq!(dead.ids(), ["m1"]);
        let Handled::DeadLettered(f) = &results[0].handled else {
            panic!("{:?}", results[0].handled)
        };
        assert_eq!(f.code, "DEALBRIDGE_BAD_MESSAGE");
        assert!(
            f.message
                .contains("does not belong on the maxio-customer queue")
        );
        assert_eq!(
            results[0].step,
            Some("dispatch"),
            "the step is still reported"
        );
    }

    #[tokio::test]
    async fn on_a_standard_queue_every_record_stands_alone() {
        let handler = Recorder {
            retry: vec![2],
            seen: Mutex::new(vec![]),
        };
        let event = event(records(QueueName::Delayed, &[1, 2, 3]));
        let r = run_batch(
            QueueName::Delayed,
            &handler,
            &DeadLetters::default(),
            &event,
            None,
        )
        .await;
        assert_eq!(failures(&r), ["m2"]);
        assert_eq!(*handler.seen.lock().unwrap(), [1, 2, 3]);
    }

    #[tokio::test]
    async fn messages_done_and_retried_are_counted_per_step() {
        use crate::metrics::{MESSAGES_DONE, MESSAGES_RETRIED, STEP, counted};
        let handler = Recorder {
            retry: vec![2],
            seen: Mutex::new(vec![]),
        };
        let done = counted(MESSAGES_DONE, STEP, "dispatch");
        let retried = counted(MESSAGES_RETRIED, STEP, "dispatch");
        let event = event(records(QueueName::Delayed, &[1, 2, 3]));
        run_batch(
            QueueName::Delayed,
            &handler,
            &DeadLetters::default(),
            &event,
            None,
        )
        .await;
        // Other tests count in the same process meanwhile: at least these.
        assert!(counted(MESSAGES_DONE, STEP, "dispatch") - done >= 2.0);
        assert!(counted(MESSAGES_RETRIED, STEP, "dispatch") - retried >= 1.0);
    }

    #[tokio::test]
    async fn an_unreadable_body_is_dead_lettered_and_the_rest_still_handled_on_a_standard_queue() {
        let handler = Recorder {
            retry: vec![],
            seen: Mutex::new(vec![]),
        };
        let dead = DeadLetters::default();
        let mut recs = records(QueueName::Delayed, &[1]);
        recs.insert(0, sqs_record(QueueName::Delayed, "bad", "{not json", 1));
        let r = run_batch(QueueName::Delayed, &handler, &dead, &event(recs), None).await;
        assert!(failures(&r).is_empty());
        assert_eq!(*handler.seen.lock().unwrap(), [1]);
        assert_eq!(
            *dead.moved.lock().unwrap(),
            [(QueueName::Delayed, "bad".into(), "{not json".into(), None)]
        );
    }

    #[tokio::test]
    async fn after_the_first_retry_on_a_fifo_queue_every_later_record_fails_too() {
        // Dispatch steps belong on the delayed queue; a FIFO handler is exercised through the
        // router with a FIFO queue whose records are all unreadable but the first.
        struct Fifo(Mutex<Vec<String>>);
        #[async_trait]
        impl QueueHandler for Fifo {
            fn seal(&self) -> Option<&crate::seal::Seal> {
                None
            }

            async fn handle(&self, envelope: Envelope, _d: &Delivery) -> Handled {
                let name = envelope.correlation_id.clone();
                self.0.lock().unwrap().push(name.clone());
                if name == "b" {
                    Handled::Retry(Failure::new(ErrorCode::DispatchFailed, "x"))
                } else {
                    Handled::Done
                }
            }
        }
        let deal = DealRef::Opportunity(SfId::parse("006A000010khO8J").unwrap());
        let account = SfId::parse("001A000010khO8J").unwrap();
        let link = crate::maxio::link::CoreLinkInput {
            opportunity_id: SfId::parse("006A000010khO8J").unwrap(),
            customer_id: 1,
            subscription_id: 2,
            attempt: 1,
            started_at: None,
            sync_written: false,
            site: None,
        };
        let recs: Vec<SqsMessage> = ["a", "b", "c", "d"]
            .iter()
            .map(|c| {
                let e = Envelope::new(
                    c,
                    &deal,
                    &account,
                    None,
                    Step::MaxioCoreLink { link: link.clone() },
                );
                sqs_record(
                    QueueName::MaxioCoreLink,
                    c,
                    &serde_json::to_string(&e).unwrap(),
                    1,
                )
            })
            .collect();
        let handler = Fifo(Mutex::new(vec![]));
        let router = Router::new().with(QueueName::MaxioCoreLink, Arc::new(handler));
        let results = router
            .run_records(
                QueueName::MaxioCoreLink,
                &DeadLetters::default(),
                &recs,
                None,
            )
            .await;
        assert_eq!(failures(&batch_response(&results)), ["b", "c", "d"]);
        assert_eq!(
            results.iter().filter(|r| r.held_back).count(),
            2,
            "records after the failure are not handled"
        );
    }

    #[tokio::test]
    async fn a_retry_on_a_fifo_queue_holds_back_only_its_own_group() {
        struct Fifo(Mutex<Vec<String>>);
        #[async_trait]
        impl QueueHandler for Fifo {
            fn seal(&self) -> Option<&crate::seal::Seal> {
                None
            }

            async fn handle(&self, envelope: Envelope, _d: &Delivery) -> Handled {
                let name = envelope.correlation_id.clone();
                self.0.lock().unwrap().push(name.clone());
                if name == "a1" {
                    Handled::Retry(Failure::new(ErrorCode::DispatchFailed, "x"))
                } else {
                    Handled::Done
                }
            }
        }
        let deal = DealRef::Opportunity(SfId::parse("006A000010khO8J").unwrap());
        let account = SfId::parse("001A000010khO8J").unwrap();
        let link = crate::maxio::link::CoreLinkInput {
            opportunity_id: SfId::parse("006A000010khO8J").unwrap(),
            customer_id: 1,
            subscription_id: 2,
            attempt: 1,
            started_at: None,
            sync_written: false,
            site: None,
        };
        let recs: Vec<SqsMessage> = [("a1", "A"), ("b1", "B"), ("a2", "A"), ("b2", "B")]
            .iter()
            .map(|(c, g)| {
                let e = Envelope::new(
                    c,
                    &deal,
                    &account,
                    None,
                    Step::MaxioCoreLink { link: link.clone() },
                );
                in_group(
                    sqs_record(
                        QueueName::MaxioCoreLink,
                        c,
                        &serde_json::to_string(&e).unwrap(),
                        1,
                    ),
                    Some(g),
                )
            })
            .collect();
        let handler = Arc::new(Fifo(Mutex::new(vec![])));
        let router = Router::new().with(QueueName::MaxioCoreLink, handler.clone());
        let results = router
            .run_records(
                QueueName::MaxioCoreLink,
                &DeadLetters::default(),
                &recs,
                None,
            )
            .await;
        assert_eq!(failures(&batch_response(&results)), ["a1", "a2"]);
        assert_eq!(*handler.0.lock().unwrap(), ["a1", "b1", "b2"]);
    }

    #[tokio::test]
    async fn a_queue_without_a_handler_keeps_its_messages() {
        let results = Router::new()
            .run_records(
                QueueName::WhmcsProvision,
                &DeadLetters::default(),
                &records(QueueName::WhmcsProvision, &[1]),
                None,
            )
            .await;
        assert!(matches!(results[0].handled, Handled::Retry(_)));
    }

    /// Opens with the envelope secret `envelope` (key `k1`), and records the correlation ids it
    /// handles; the secret may be made unreadable.
    struct Sealed {
        seal: Seal,
        seen: Mutex<Vec<String>>,
    }

    const SEAL_KEY: &str = "k1-0123456789abcdef0123456789abcdef";

    impl Sealed {
        fn new(secrets: &InMemorySecrets) -> Sealed {
            secrets.insert(
                "envelope",
                serde_json::json!({"current": "k1", "k1": SEAL_KEY}).to_string(),
            );
            Sealed {
                seal: Seal::new(Arc::new(secrets.clone()), "envelope"),
                seen: Mutex::new(vec![]),
            }
        }
    }

    #[async_trait]
    impl QueueHandler for Sealed {
        fn seal(&self) -> Option<&Seal> {
            Some(&self.seal)
        }

        async fn handle(&self, envelope: Envelope, _d: &Delivery) -> Handled {
            self.seen.lock().unwrap().push(envelope.correlation_id);
            Handled::Done
        }
    }

    /// A Core link message of deal group `group`, with correlation id `name`.
    fn link_body(name: &str) -> String {
        let deal = DealRef::Opportunity(SfId::parse("006A000010khO8J").unwrap());
        let account = SfId::parse("001A000010khO8J").unwrap();
        let link = crate::maxio::link::CoreLinkInput {
            opportunity_id: SfId::parse("006A000010khO8J").unwrap(),
            customer_id: 1,
            subscription_id: 2,
            attempt: 1,
            started_at: None,
            sync_written: false,
            site: None,
        };
        let e = Envelope::new(name, &deal, &account, None, Step::MaxioCoreLink { link });
        serde_json::to_string(&e).unwrap()
    }

    fn link_record(id: &str, body: &str, group: &str) -> SqsMessage {
        in_group(
            sqs_record(QueueName::MaxioCoreLink, id, body, 1),
            Some(group),
        )
    }

    /// An unsealed record and an unreadable one, then a genuine record of the same group: the
    /// two bad ones go to the dead letters on their first receive, the genuine one is handled
    /// in the same batch instead of waiting behind them.
    #[tokio::test]
    async fn poison_records_on_a_fifo_queue_are_dead_lettered_and_their_group_goes_on_in_the_same_batch()
     {
        let secrets = InMemorySecrets::new();
        let handler = Sealed::new(&secrets);
        let genuine = handler.seal.seal(&link_body("genuine")).await.unwrap();
        let forged = link_body("forged");
        let unreadable = handler
            .seal
            .seal(r#"{"version":1,"nonsense":true}"#)
            .await
            .unwrap();
        let records = [
            link_record("forged", &forged, "A"),
            link_record("unreadable", &unreadable, "A"),
            link_record("genuine", &genuine, "A"),
        ];
        let dead = DeadLetters::default();

        let results = run_records(QueueName::MaxioCoreLink, &handler, &dead, &records, None).await;

        assert!(failures(&batch_response(&results)).is_empty());
        assert_eq!(*handler.seen.lock().unwrap(), ["genuine"]);
        assert_eq!(
            *dead.moved.lock().unwrap(),
            [
                (
                    QueueName::MaxioCoreLink,
                    "forged".to_string(),
                    forged,
                    Some("A".to_string())
                ),
                (
                    QueueName::MaxioCoreLink,
                    "unreadable".to_string(),
                    unreadable,
                    Some("A".to_string())
                ),
            ],
            "the same bodies and group"
        );
        let codes: Vec<(&str, &str)> = results
            .iter()
            .map(|r| {
                (
                    r.handled.kind(),
                    r.handled.failure().map_or("", |f| f.code.as_str()),
                )
            })
            .collect();
        assert_eq!(
            codes,
            [
                ("dead-lettered", "DEALBRIDGE_UNSEALED"),
                ("dead-lettered", "DEALBRIDGE_BAD_MESSAGE"),
                ("done", ""),
            ]
        );
        assert!(
            results
                .iter()
                .all(|r| r.handled.is_finished() && !r.held_back)
        );
    }

    /// A message is never lost: when the dead-letter queue refuses it, the record returns as
    /// before and holds back the rest of its group (SQS dead-letters it after maxReceiveCount).
    #[tokio::test]
    async fn a_poison_record_the_dead_letter_queue_refuses_is_retried_and_holds_back_its_group() {
        let secrets = InMemorySecrets::new();
        let handler = Sealed::new(&secrets);
        let genuine = handler.seal.seal(&link_body("genuine")).await.unwrap();
        let other = handler.seal.seal(&link_body("other")).await.unwrap();
        let records = [
            link_record("forged", &link_body("forged"), "A"),
            link_record("genuine", &genuine, "A"),
            link_record("other", &other, "B"),
        ];
        let dead = DeadLetters::refusing();

        let results = run_records(QueueName::MaxioCoreLink, &handler, &dead, &records, None).await;

        assert_eq!(failures(&batch_response(&results)), ["forged", "genuine"]);
        assert!(
            matches!(&results[0].handled, Handled::Retry(f) if f.code == "DEALBRIDGE_UNSEALED")
        );
        assert!(results[1].held_back);
        assert_eq!(*handler.seen.lock().unwrap(), ["other"]);
    }

    /// The keys not being readable is the stack's trouble, not the message's: it is retried,
    /// never dead-lettered.
    #[tokio::test]
    async fn a_message_whose_keys_cannot_be_read_is_retried_not_dead_lettered() {
        let secrets = InMemorySecrets::new();
        let handler = Sealed::new(&secrets);
        let genuine = handler.seal.seal(&link_body("genuine")).await.unwrap();
        secrets.insert("envelope", "not json");
        let dead = DeadLetters::default();

        let results = run_records(
            QueueName::MaxioCoreLink,
            &handler,
            &dead,
            &[link_record("genuine", &genuine, "A")],
            None,
        )
        .await;

        assert!(
            matches!(&results[0].handled, Handled::Retry(f) if f.code == "DEALBRIDGE_UNSEALED")
        );
        assert!(dead.ids().is_empty());
        assert!(handler.seen.lock().unwrap().is_empty());
    }

    #[test]
    fn a_dead_lettered_message_is_finished_and_says_why() {
        let h = Handled::DeadLettered(Failure::new(ErrorCode::DealbridgeUnsealed, "no seal"));
        assert!(h.is_finished());
        assert_eq!(h.kind(), "dead-lettered");
        assert_eq!(h.reason().as_deref(), Some("DEALBRIDGE_UNSEALED: no seal"));
        assert_eq!(
            h.failure().map(|f| f.code.as_str()),
            Some("DEALBRIDGE_UNSEALED")
        );
    }

    #[test]
    fn the_receive_count_is_read_from_the_attributes() {
        let mut m = SqsMessage::default();
        assert_eq!(receive_count(&m), 1);
        m.attributes
            .insert("ApproximateReceiveCount".into(), "4".into());
        assert_eq!(receive_count(&m), 4);
    }
}
