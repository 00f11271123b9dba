//! An in-memory queue with SQS's delivery semantics, for the local runner and tests: FIFO
//! deduplication within five minutes, one message in flight per group, per-message delays,
//! at-least-once delivery with a visibility timeout, receive counts and redrive to a dead-letter
//! list, to which a consumer may also move a message itself ([`DeadLetterQueue`]). Time is
//! virtual: [`InMemoryQueue::advance`] moves it, so nothing sleeps.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use aws_lambda_events::sqs::SqsMessage;

use super::{DeadLetterQueue, OutgoingMessage, Queue, QueueError, QueueName};

/// SQS FIFO deduplication interval.
const DEDUP_WINDOW: Duration = Duration::from_secs(300);

#[derive(Debug, Clone)]
struct Stored {
    id: String,
    body: String,
    group_id: Option<String>,
    visible_at: Duration,
    receive_count: u32,
    in_flight_receipt: Option<String>,
}

/// A message handed to a consumer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub queue: QueueName,
    pub message_id: String,
    pub receipt: String,
    pub body: String,
    pub group_id: Option<String>,
    pub receive_count: u32,
}

#[derive(Default)]
struct State {
    now: Duration,
    max_receives: HashMap<QueueName, u32>,
    seq: u64,
    queues: HashMap<QueueName, Vec<Stored>>,
    dead: HashMap<QueueName, Vec<Stored>>,
    dedup: HashMap<(QueueName, String), (Duration, String)>,
    sent: HashMap<QueueName, Vec<OutgoingMessage>>,
}

#[derive(Clone)]
pub struct InMemoryQueue {
    state: Arc<Mutex<State>>,
    visibility_timeout: Duration,
    max_receives: u32,
}

impl Default for InMemoryQueue {
    fn default() -> Self {
        InMemoryQueue::new(Duration::from_secs(180), 5)
    }
}

impl InMemoryQueue {
    pub fn new(visibility_timeout: Duration, max_receives: u32) -> Self {
        InMemoryQueue {
            state: Arc::new(Mutex::new(State::default())),
            visibility_timeout,
            max_receives,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sets a queue's maxReceiveCount (the default applies to the others).
    pub fn set_max_receives(&self, queue: QueueName, max: u32) {
        self.lock().max_receives.insert(queue, max);
    }

    /// Moves the virtual clock forward.
    pub fn advance(&self, by: Duration) {
        self.lock().now += by;
    }

    pub fn now(&self) -> Duration {
        self.lock().now
    }

    /// Every message accepted for `queue` (after deduplication), in order.
    pub fn sent(&self, queue: QueueName) -> Vec<OutgoingMessage> {
        self.lock().sent.get(&queue).cloned().unwrap_or_default()
    }

    /// Messages waiting or in flight on `queue`.
    pub fn depth(&self, queue: QueueName) -> usize {
        self.lock().queues.get(&queue).map_or(0, Vec::len)
    }

    /// Bodies of the messages waiting or in flight on `queue`, in order.
    pub fn peek(&self, queue: QueueName) -> Vec<String> {
        self.lock()
            .queues
            .get(&queue)
            .map(|q| q.iter().map(|m| m.body.clone()).collect())
            .unwrap_or_default()
    }

    /// Bodies moved to the queue's dead-letter list.
    pub fn dead_letters(&self, queue: QueueName) -> Vec<String> {
        self.lock()
            .dead
            .get(&queue)
            .map(|d| d.iter().map(|m| m.body.clone()).collect())
            .unwrap_or_default()
    }

    /// When, after now, the next message of `queue` becomes visible (a waiting message, or one in
    /// flight whose visibility timeout ends), if any. A message visible now that `receive` does not
    /// hand out is held back by its FIFO group's message in flight, so the time that matters is
    /// when that one becomes visible again.
    pub fn next_visible_at(&self, queue: QueueName) -> Option<Duration> {
        let state = self.lock();
        state
            .queues
            .get(&queue)?
            .iter()
            .filter(|m| m.visible_at > state.now)
            .map(|m| m.visible_at)
            .min()
    }

    /// Receives up to `max` visible messages. On FIFO queues a group with a message in flight
    /// yields nothing more until that message is deleted or becomes visible again. A message
    /// received more than `max_receives` times moves to the dead-letter list instead.
    pub fn receive(&self, queue: QueueName, max: usize) -> Vec<Received> {
        let mut state = self.lock();
        let now = state.now;
        let visibility = self.visibility_timeout;
        let max_receives = state
            .max_receives
            .get(&queue)
            .copied()
            .unwrap_or(self.max_receives);
        let mut out = Vec::new();
        let mut busy_groups: Vec<String> = Vec::new();
        let mut dead = Vec::new();
        let mut seq = state.seq;
        let list = state.queues.entry(queue).or_default();
        if queue.is_fifo() {
            for m in list.iter() {
                if m.visible_at > now
                    && m.in_flight_receipt.is_some()
                    && let Some(g) = &m.group_id
                {
                    busy_groups.push(g.clone());
                }
            }
        }
        let mut i = 0;
        while i < list.len() && out.len() < max {
            let m = &mut list[i];
            let visible = m.visible_at <= now;
            let group_blocked =
                queue.is_fifo() && m.group_id.as_ref().is_some_and(|g| busy_groups.contains(g));
            if !visible || group_blocked {
                if queue.is_fifo()
                    && let Some(g) = &m.group_id
                    && !busy_groups.contains(g)
                {
                    busy_groups.push(g.clone());
                }
                i += 1;
                continue;
            }
            if m.receive_count >= max_receives {
                dead.push(list.remove(i));
                continue;
            }
            m.receive_count += 1;
            seq += 1;
            let receipt = format!("rcpt-{seq}");
            m.in_flight_receipt = Some(receipt.clone());
            m.visible_at = now + visibility;
            if queue.is_fifo()
                && let Some(g) = &m.group_id
            {
                busy_groups.push(g.clone());
            }
            out.push(Received {
                queue,
                message_id: m.id.clone(),
                receipt,
                body: m.body.clone(),
                group_id: m.group_id.clone(),
                receive_count: m.receive_count,
            });
            i += 1;
        }
        state.seq = seq;
        state.dead.entry(queue).or_default().extend(dead);
        out
    }

    /// Deletes a received message (the consumer succeeded). Unknown or stale receipts are ignored,
    /// as SQS ignores them.
    pub fn delete(&self, queue: QueueName, receipt: &str) {
        if let Some(list) = self.lock().queues.get_mut(&queue) {
            list.retain(|m| m.in_flight_receipt.as_deref() != Some(receipt));
        }
    }

    /// Makes a received message visible again now (the consumer failed and says so).
    pub fn release(&self, queue: QueueName, receipt: &str) {
        let mut state = self.lock();
        let now = state.now;
        if let Some(m) = state.queues.get_mut(&queue).and_then(|l| {
            l.iter_mut()
                .find(|m| m.in_flight_receipt.as_deref() == Some(receipt))
        }) {
            m.visible_at = now;
            m.in_flight_receipt = None;
        }
    }
}

#[async_trait]
impl Queue for InMemoryQueue {
    async fn send(&self, message: &OutgoingMessage) -> Result<String, QueueError> {
        message.validate()?;
        let mut state = self.lock();
        let now = state.now;
        if let Some(dedup) = &message.dedup_id {
            let key = (message.queue, dedup.clone());
            if let Some((at, id)) = state.dedup.get(&key)
                && now.saturating_sub(*at) < DEDUP_WINDOW
            {
                return Ok(id.clone());
            }
        }
        state.seq += 1;
        let id = format!("mem-{:08}", state.seq);
        if let Some(dedup) = &message.dedup_id {
            state
                .dedup
                .insert((message.queue, dedup.clone()), (now, id.clone()));
        }
        state.queues.entry(message.queue).or_default().push(Stored {
            id: id.clone(),
            body: message.body.clone(),
            group_id: message.group_id.clone(),
            visible_at: now + message.delay,
            receive_count: 0,
            in_flight_receipt: None,
        });
        state
            .sent
            .entry(message.queue)
            .or_default()
            .push(message.clone());
        Ok(id)
    }
}

/// As SQS would take the send: a FIFO record needs its group and message id, and one moved again
/// (its deletion lost) lands once; the message keeps its id in the dead-letter list.
#[async_trait]
impl DeadLetterQueue for InMemoryQueue {
    async fn dead_letter(
        &self,
        queue: QueueName,
        record: &SqsMessage,
    ) -> Result<String, QueueError> {
        let refuse = |m: &str| Err(QueueError::invalid(queue, m.to_string()));
        let Some(body) = record.body.as_deref().filter(|b| !b.is_empty()) else {
            return refuse("a record without a body cannot be sent to the dead-letter queue");
        };
        let Some(id) = record.message_id.as_deref().filter(|id| !id.is_empty()) else {
            return refuse("the record has no MessageId");
        };
        let group_id = record.attributes.get("MessageGroupId").cloned();
        if queue.is_fifo() && group_id.is_none() {
            return refuse("the FIFO record has no MessageGroupId to keep");
        }
        let mut state = self.lock();
        let dead = state.dead.entry(queue).or_default();
        if !(queue.is_fifo() && dead.iter().any(|m| m.id == id)) {
            dead.push(Stored {
                id: id.to_string(),
                body: body.to_string(),
                group_id,
                visible_at: Duration::ZERO,
                receive_count: 0,
                in_flight_receipt: None,
            });
        }
        Ok(id.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fifo(body: &str, group: &str, dedup: &str) -> OutgoingMessage {
        OutgoingMessage {
            queue: QueueName::MaxioCustomer,
            body: body.into(),
            group_id: Some(group.into()),
            dedup_id: Some(dedup.into()),
            delay: Duration::ZERO,
        }
    }

    #[tokio::test]
    async fn a_duplicate_within_five_minutes_is_dropped_and_answers_the_first_id() {
        let q = InMemoryQueue::default();
        let a = q.send(&fifo("x", "g", "d1")).await.unwrap();
        let b = q.send(&fifo("x", "g", "d1")).await.unwrap();
        assert_eq!(a, b);
        assert_eq!(q.depth(QueueName::MaxioCustomer), 1);
        q.advance(Duration::from_secs(301));
        let c = q.send(&fifo("x", "g", "d1")).await.unwrap();
        assert_ne!(a, c);
        assert_eq!(q.depth(QueueName::MaxioCustomer), 2);
    }

    #[tokio::test]
    async fn a_group_delivers_one_message_at_a_time() {
        let q = InMemoryQueue::default();
        q.send(&fifo("a1", "A", "1")).await.unwrap();
        q.send(&fifo("a2", "A", "2")).await.unwrap();
        q.send(&fifo("b1", "B", "3")).await.unwrap();
        let got: Vec<String> = q
            .receive(QueueName::MaxioCustomer, 10)
            .into_iter()
            .map(|r| r.body)
            .collect();
        assert_eq!(got, ["a1", "b1"]);
        assert!(q.receive(QueueName::MaxioCustomer, 10).is_empty());
    }

    #[tokio::test]
    async fn an_unacknowledged_message_returns_and_ends_in_the_dead_letters() {
        let q = InMemoryQueue::new(Duration::from_secs(30), 2);
        q.send(&fifo("m", "g", "1")).await.unwrap();
        assert_eq!(q.receive(QueueName::MaxioCustomer, 1)[0].receive_count, 1);
        assert!(
            q.receive(QueueName::MaxioCustomer, 1).is_empty(),
            "invisible while in flight"
        );
        q.advance(Duration::from_secs(30));
        assert_eq!(q.receive(QueueName::MaxioCustomer, 1)[0].receive_count, 2);
        q.advance(Duration::from_secs(30));
        assert!(q.receive(QueueName::MaxioCustomer, 1).is_empty());
        assert_eq!(q.dead_letters(QueueName::MaxioCustomer), ["m"]);
        assert_eq!(q.depth(QueueName::MaxioCustomer), 0);
    }

    #[tokio::test]
    async fn a_record_moved_to_the_dead_letters_keeps_its_body_and_group_and_lands_once() {
        let q = InMemoryQueue::default();
        q.send(&fifo("poison", "g", "1")).await.unwrap();
        let got = q.receive(QueueName::MaxioCustomer, 1).remove(0);
        let mut record = crate::runner::sqs_record(
            QueueName::MaxioCustomer,
            &got.message_id,
            &got.body,
            got.receive_count,
        );
        let id = q
            .dead_letter(QueueName::MaxioCustomer, &record)
            .await
            .expect_err("a FIFO record without its group is refused");
        assert!(id.message.contains("MessageGroupId"), "{id}");
        record = crate::runner::in_group(record, got.group_id.as_deref());
        q.dead_letter(QueueName::MaxioCustomer, &record)
            .await
            .unwrap();
        q.dead_letter(QueueName::MaxioCustomer, &record)
            .await
            .unwrap();
        q.delete(QueueName::MaxioCustomer, &got.receipt);
        assert_eq!(q.dead_letters(QueueName::MaxioCustomer), ["poison"]);
        let groups: Vec<Option<String>> = q.lock().dead[&QueueName::MaxioCustomer]
            .iter()
            .map(|m| m.group_id.clone())
            .collect();
        assert_eq!(groups, [Some("g".to_string())]);
        assert_eq!(q.depth(QueueName::MaxioCustomer), 0);
    }

    #[tokio::test]
    async fn delayed_messages_wait_and_deleted_ones_are_gone() {
        let q = InMemoryQueue::default();
        q.send(&OutgoingMessage {
            queue: QueueName::Delayed,
            body: "later".into(),
            group_id: None,
            dedup_id: None,
            delay: Duration::from_secs(60),
        })
        .await
        .unwrap();
        assert!(q.receive(QueueName::Delayed, 10).is_empty());
        assert_eq!(
            q.next_visible_at(QueueName::Delayed),
            Some(Duration::from_secs(60))
        );
        q.advance(Duration::from_secs(60));
        let got = q.receive(QueueName::Delayed, 10);
        assert_eq!(got.len(), 1);
        q.delete(QueueName::Delayed, &got[0].receipt);
        assert_eq!(q.depth(QueueName::Delayed), 0);
    }

    #[tokio::test]
    async fn what_sqs_refuses_is_refused() {
        let q = InMemoryQueue::default();
        let mut m = fifo("x", "g", "d");
        m.group_id = None;
        assert!(q.send(&m).await.is_err());
        let mut m = fifo("x", "g", "d");
        m.delay = Duration::from_secs(5);
        assert!(q.send(&m).await.is_err());
        let m = OutgoingMessage {
            queue: QueueName::Delayed,
            body: "x".into(),
            group_id: None,
            dedup_id: None,
            delay: Duration::from_secs(901),
        };
        assert!(q.send(&m).await.is_err());
    }
}
