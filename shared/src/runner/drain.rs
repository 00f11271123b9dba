//! The one drain loop: runs a [`Router`] over the in-memory queue as Lambda's SQS pollers would,
//! until nothing is left; a message that can never be handled moves to the queue's dead-letter
//! list on its first receive, as it moves to its dead-letter queue on Lambda. The local stack
//! (virtual time), the operator CLI (one deal, in this process), the chaos suite (shuffled,
//! duplicated, crashing) and the benchmark all use it; what differs between them is in
//! [`DrainOptions`] and [`DrainHooks`].

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use super::{Handled, RecordResult, Router, in_group, sqs_record};
use crate::queue::{InMemoryQueue, QueueName, Received};

/// What to do with a delivery that asked to be retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnRetry {
    /// Leave it in flight until its visibility timeout ends, as SQS does; after the queue's
    /// `maxReceiveCount` it moves to the dead-letter list.
    LeaveInFlight,
    /// Make it visible again at once while it has had fewer than this many deliveries, then
    /// delete it (a run in one process that must end).
    ReleaseUntil(u32),
}

/// What to do with a delivery that is done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ack {
    Delete,
    /// The acknowledgement is lost: the message comes back (at-least-once delivery).
    Release,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrainOptions {
    /// A bound, so a bug cannot loop for ever.
    pub max_rounds: usize,
    /// Messages per receive (Lambda's batch size).
    pub batch_size: usize,
    pub on_retry: OnRetry,
}

impl Default for DrainOptions {
    fn default() -> Self {
        DrainOptions {
            max_rounds: 1_000,
            batch_size: 10,
            on_retry: OnRetry::LeaveInFlight,
        }
    }
}

/// Where a drain may differ: the order queues are served in, a batch's order, crashes, lost
/// acknowledgements, and how time moves.
pub trait DrainHooks: Send {
    /// The order the queues are served in this round (default: chain order).
    fn order(&mut self, _queues: &mut [QueueName]) {}

    /// A batch as it will be handled.
    fn batch(&mut self, _queue: QueueName, _batch: &mut [Received]) {}

    /// A future that resolves if the process dies while a batch runs: nothing of that batch is
    /// acknowledged, and SQS hands the messages out again after their visibility timeout.
    fn interrupted(&mut self) -> Option<Pin<Box<dyn Future<Output = ()> + Send + '_>>> {
        None
    }

    /// A done delivery's acknowledgement.
    fn acknowledge(&mut self, _queue: QueueName, _received: &Received) -> Ack {
        Ack::Delete
    }

    /// Nothing is visible and a message becomes visible after `by`: move time (the queue's
    /// and the functions' clocks) forward and return true, or return false to stop.
    fn advance(&mut self, by: Duration) -> bool;
}

/// Hooks for a drain that never moves time: it stops once nothing is visible.
pub struct NoWaiting;

impl DrainHooks for NoWaiting {
    fn advance(&mut self, _by: Duration) -> bool {
        false
    }
}

/// One delivery the drain handed to a handler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryReport {
    pub queue: QueueName,
    pub message_id: String,
    pub receive_count: u32,
    /// The envelope's step and deal key, when the body could be read.
    pub step: Option<&'static str>,
    pub deal: Option<String>,
    pub handled: Handled,
    /// Not handled: held back behind an earlier retried record of its FIFO batch.
    pub held_back: bool,
}

/// What a drain did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Drained {
    /// Messages handed to a handler, per queue.
    pub handled: Vec<(QueueName, usize)>,
    /// Deliveries that asked to be retried.
    pub retried: usize,
    /// Every delivery, in order.
    pub deliveries: Vec<DeliveryReport>,
}

impl Drained {
    fn count(&mut self, queue: QueueName, n: usize) {
        match self.handled.iter_mut().find(|(q, _)| *q == queue) {
            Some((_, total)) => *total += n,
            None => self.handled.push((queue, n)),
        }
    }
}

/// Runs `router`'s handlers over `queue` until every served queue is empty (or only holds
/// messages nobody can take yet and `hooks` stops time).
pub async fn drain(
    router: &Router,
    queue: &InMemoryQueue,
    options: &DrainOptions,
    hooks: &mut dyn DrainHooks,
) -> Drained {
    let served = router.queues();
    let mut report = Drained::default();
    for _ in 0..options.max_rounds {
        let mut order = served.clone();
        hooks.order(&mut order);
        let mut any = false;
        for &name in &order {
            let mut batch = queue.receive(name, options.batch_size);
            if batch.is_empty() {
                continue;
            }
            any = true;
            hooks.batch(name, &mut batch);
            let records: Vec<_> = batch
                .iter()
                .map(|r| {
                    in_group(
                        sqs_record(name, &r.message_id, &r.body, r.receive_count),
                        r.group_id.as_deref(),
                    )
                })
                .collect();
            // What can never be handled goes to the queue's dead-letter list, as Lambda's runner
            // sends it to the dead-letter queue.
            let run = router.run_records(name, queue, &records, None);
            let results: Option<Vec<RecordResult>> = match hooks.interrupted() {
                None => Some(run.await),
                Some(crash) => tokio::select! {
                    biased;
                    () = crash => None,
                    results = run => Some(results),
                },
            };
            let Some(results) = results else {
                continue;
            };
            report.count(name, batch.len());
            for (received, result) in batch.iter().zip(results) {
                match result.handled.is_finished() {
                    true => match hooks.acknowledge(name, received) {
                        Ack::Delete => queue.delete(name, &received.receipt),
                        Ack::Release => queue.release(name, &received.receipt),
                    },
                    false => {
                        report.retried += 1;
                        if let OnRetry::ReleaseUntil(attempts) = options.on_retry {
                            if received.receive_count < attempts {
                                queue.release(name, &received.receipt);
                            } else {
                                queue.delete(name, &received.receipt);
                            }
                        }
                    }
                }
                report.deliveries.push(DeliveryReport {
                    queue: name,
                    message_id: result.message_id,
                    receive_count: received.receive_count,
                    step: result.step,
                    deal: result.deal,
                    handled: result.handled,
                    held_back: result.held_back,
                });
            }
        }
        if any {
            continue;
        }
        let next = served
            .iter()
            .filter_map(|q| queue.next_visible_at(*q))
            .min();
        let Some(at) = next else { break };
        let by = at.saturating_sub(queue.now()).max(Duration::from_millis(1));
        if !hooks.advance(by) {
            break;
        }
    }
    report
}
