//! Dead-letter queue redrive: sends the messages of a dead-letter queue back to the queue they
//! came from once the cause is fixed, FIFO and standard queues alike.
//!
//! Each message is received from the dead-letter queue (10 at a time, with every system attribute
//! and message attribute), sent to the queue with the same body and message attributes (and, on
//! FIFO queues, the same `MessageGroupId`), and deleted from the dead-letter queue only once the
//! send succeeded. Messages are sent one at a time, in the order the dead-letter queue hands them
//! out, so a group's order survives; the first failure stops the run, and the messages not yet
//! sent are made visible again at once, so nothing is skipped and nothing overtakes a message
//! that stayed behind.
//!
//! **Never losing a message, possibly duplicating one.** A crash (or a failed delete) between the
//! send and the delete leaves the message both on the queue and in the dead-letter queue, and the
//! next run sends it again. Every worker step is idempotent (Maxio finds its customer, price points
//! and subscription by reference before creating them, the Core link reads the contract first,
//! WHMCS provisioning is guarded by the idempotency ledger), so a duplicate costs a few API calls
//! and changes nothing.
//!
//! **The deduplication id of a redriven FIFO message** is [`redrive_dedup_id`]: a hash of the
//! dead-letter message's `MessageId`, not the message's original `MessageDeduplicationId`.
//! SQS FIFO drops a message whose deduplication id was used on the queue in the last 5 minutes,
//! even if that message is gone, and answers the send with success: a step that dead-lettered
//! quickly (say, ten fast failures during an outage) and was redriven with its original id would
//! be silently dropped, and deleted from the dead-letter queue. (AWS replaces the deduplication id
//! of a message moved to a FIFO dead-letter queue by the message's id anyway.) The new id is fresh
//! for every dead-lettering, yet deterministic: a run repeated within 5 minutes after a crash
//! between send and delete reuses it, and SQS drops the second copy.
//!
//! A dry run receives and lists the messages without moving them, and makes them visible again at
//! the end. On a FIFO dead-letter queue a receive hands out no more messages of a group while some
//! are in flight, so a dry run lists at most the first batch of each group;
//! [`RedriveReport::approximate_depth`] tells how many messages the queue holds.
//!
//! SQS's own redrive (`StartMessageMoveTask`, "Start DLQ redrive" in the console) does the same
//! for standard and, since November 2023, FIFO queues; this function is what the product's
//! operator tooling uses, and what the tests exercise.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::time::Duration;

use aws_sdk_sqs::error::{DisplayErrorContext, SdkError};
use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, Message, MessageAttributeValue,
    MessageSystemAttributeName, QueueAttributeName,
};
use sha2::{Digest, Sha256};
use tracing::{info, warn};

/// Messages per receive: SQS's maximum.
const BATCH: usize = 10;
/// How long a receive waits for messages; an empty answer ends the run.
const WAIT_SECONDS: i32 = 1;
/// How long received messages stay hidden: long enough to send and delete a batch, or, in a dry
/// run, to list the queue before everything is made visible again.
const VISIBILITY: Duration = Duration::from_secs(60);

/// What to redrive.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RedriveOptions {
    /// Stop after this many messages (`None`: until the dead-letter queue is empty).
    pub max_messages: Option<usize>,
    /// List the messages without sending or deleting anything.
    pub dry_run: bool,
}

/// One message taken from the dead-letter queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedrivenMessage {
    /// The message's id in the dead-letter queue.
    pub dlq_message_id: String,
    pub body: String,
    /// FIFO only: the group, kept as it was.
    pub group_id: Option<String>,
    /// FIFO only: the deduplication id the message had in the dead-letter queue.
    pub original_dedup_id: Option<String>,
    /// FIFO only: the deduplication id it is (or in a dry run would be) sent with.
    pub dedup_id: Option<String>,
    /// How often the message had been received, the dead-letter queue's receives included.
    pub receive_count: Option<u32>,
    /// The message's new id on the queue (`None` in a dry run).
    pub queue_message_id: Option<String>,
}

/// What happened to one message, as it happens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedriveProgress {
    /// Sent to the queue and deleted from the dead-letter queue.
    Moved(RedrivenMessage),
    /// Dry run: would be moved.
    Listed(RedrivenMessage),
}

/// What a redrive did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RedriveReport {
    pub dry_run: bool,
    /// `ApproximateNumberOfMessages` of the dead-letter queue before the run.
    pub approximate_depth: Option<u64>,
    /// Distinct messages received from the dead-letter queue (listed, in a dry run).
    pub received: usize,
    /// Messages sent to the queue and deleted from the dead-letter queue.
    pub moved: usize,
    /// Every message received, in order (the one a failed run stopped at included).
    pub messages: Vec<RedrivenMessage>,
}

/// The call that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedriveStage {
    /// Reading the queues' attributes, or the queues do not belong together: nothing was received.
    Inspect,
    /// Receiving from the dead-letter queue.
    Receive,
    /// Sending to the queue: the message stays in the dead-letter queue.
    Send,
    /// Deleting from the dead-letter queue after the message was sent: it is now on both queues
    /// (a duplicate the workers tolerate; a new run within 5 minutes does not send it again).
    Delete,
}

impl fmt::Display for RedriveStage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RedriveStage::Inspect => "inspecting the queues",
            RedriveStage::Receive => "receiving from the dead-letter queue",
            RedriveStage::Send => "sending to the queue",
            RedriveStage::Delete => "deleting from the dead-letter queue",
        })
    }
}

/// A redrive that stopped: what failed, and what had been done until then.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("redrive stopped after moving {} message(s): {stage} failed: {message}", .report.moved)]
pub struct RedriveError {
    pub stage: RedriveStage,
    pub message: String,
    /// The dead-letter message concerned, if any.
    pub dlq_message_id: Option<String>,
    /// The messages moved before the failure.
    pub report: RedriveReport,
}

/// The deduplication id a FIFO message is redriven with: `redrive-` and the SHA-256 of its
/// dead-letter `MessageId` (72 characters; SQS allows 128).
pub fn redrive_dedup_id(dlq_message_id: &str) -> String {
    moved_dedup_id("redrive", dlq_message_id)
}

/// The deduplication id a FIFO record that can never be handled is moved to its dead-letter queue
/// with ([`super::DeadLetterQueue`]): `dead-letter-` and the SHA-256 of its `MessageId` (76
/// characters). Fresh for every message, yet the same for a record moved again after its
/// deletion was lost, so the dead-letter queue keeps one copy.
pub fn dead_letter_dedup_id(message_id: &str) -> String {
    moved_dedup_id("dead-letter", message_id)
}

/// The one way a message dealbridge moves from queue to queue is deduplicated: `<purpose>-` and
/// the SHA-256 of the purpose and the message id it had where it was taken from (never its
/// original deduplication id, which SQS may still hold for 5 minutes).
fn moved_dedup_id(purpose: &str, message_id: &str) -> String {
    let mut hash = Sha256::new();
    hash.update(b"dealbridge ");
    hash.update(purpose.as_bytes());
    hash.update(b"\n");
    hash.update(message_id.as_bytes());
    format!("{purpose}-{}", hex::encode(hash.finalize()))
}

/// Moves the messages of the dead-letter queue `from_dlq_url` to `to_queue_url`, the queue whose
/// `RedrivePolicy` names it; see the module documentation. Both must be FIFO, or both standard.
/// `progress` hears of every message as it is moved (or listed).
pub async fn redrive(
    client: &aws_sdk_sqs::Client,
    from_dlq_url: &str,
    to_queue_url: &str,
    options: RedriveOptions,
    mut progress: impl FnMut(RedriveProgress),
) -> Result<RedriveReport, RedriveError> {
    let mut report = RedriveReport {
        dry_run: options.dry_run,
        ..RedriveReport::default()
    };
    let (dlq, queue) = match check_queues(client, from_dlq_url, to_queue_url).await {
        Ok(pair) => pair,
        Err(message) => return Err(failure(RedriveStage::Inspect, message, None, report)),
    };
    report.approximate_depth = dlq.depth;
    let fifo = queue.fifo;
    let mut seen = HashSet::new();
    let mut held = Vec::new();
    loop {
        let wanted = match options.max_messages {
            Some(max) => max.saturating_sub(report.received).min(BATCH),
            None => BATCH,
        };
        if wanted == 0 {
            break;
        }
        let batch = match receive(client, from_dlq_url, wanted).await {
            Ok(batch) => batch,
            Err(message) => {
                release(client, from_dlq_url, &held).await;
                return Err(failure(RedriveStage::Receive, message, None, report));
            }
        };
        if batch.is_empty() {
            break;
        }
        if options.dry_run {
            // Listed messages stay hidden until the end; one seen again means the listing has
            // come round (it took longer than the visibility timeout).
            let mut new = 0;
            for m in &batch {
                held.extend(m.receipt_handle().map(str::to_string));
                let entry = describe(m, fifo);
                if seen.insert(entry.dlq_message_id.clone()) {
                    new += 1;
                    report.received += 1;
                    report.messages.push(entry.clone());
                    progress(RedriveProgress::Listed(entry));
                }
            }
            if new == 0 {
                break;
            }
            continue;
        }
        for (i, m) in batch.iter().enumerate() {
            let mut entry = describe(m, fifo);
            report.received += 1;
            let later: Vec<String> = batch[i + 1..]
                .iter()
                .filter_map(|m| m.receipt_handle().map(str::to_string))
                .collect();
            let sent = send(client, to_queue_url, m, &entry).await;
            let id = Some(entry.dlq_message_id.clone());
            let queue_message_id = match sent {
                Ok(queue_message_id) => queue_message_id,
                Err(message) => {
                    report.messages.push(entry);
                    let mut unsent = later;
                    unsent.extend(m.receipt_handle().map(str::to_string));
                    release(client, from_dlq_url, &unsent).await;
                    return Err(failure(RedriveStage::Send, message, id, report));
                }
            };
            entry.queue_message_id = Some(queue_message_id);
            report.messages.push(entry.clone());
            let deleted = client
                .delete_message()
                .queue_url(from_dlq_url)
                .set_receipt_handle(m.receipt_handle().map(str::to_string))
                .send()
                .await;
            if let Err(e) = deleted {
                release(client, from_dlq_url, &later).await;
                return Err(failure(RedriveStage::Delete, error_text(&e), id, report));
            }
            report.moved += 1;
            info!(
                dlq_message_id = %entry.dlq_message_id,
                group_id = entry.group_id.as_deref().unwrap_or_default(),
                "dead-lettered message redriven"
            );
            progress(RedriveProgress::Moved(entry));
        }
    }
    if options.dry_run {
        release(client, from_dlq_url, &held).await;
    }
    Ok(report)
}

fn failure(
    stage: RedriveStage,
    message: String,
    dlq_message_id: Option<String>,
    report: RedriveReport,
) -> RedriveError {
    RedriveError {
        stage,
        message,
        dlq_message_id,
        report,
    }
}

fn error_text<E, R>(e: &SdkError<E, R>) -> String
where
    E: std::error::Error + 'static,
    R: fmt::Debug,
{
    DisplayErrorContext(e).to_string()
}

struct QueueFacts {
    arn: String,
    fifo: bool,
    dead_letter_target: Option<String>,
    depth: Option<u64>,
}

async fn inspect(client: &aws_sdk_sqs::Client, url: &str) -> Result<QueueFacts, String> {
    let out = client
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::All)
        .send()
        .await
        .map_err(|e| format!("{url}: {}", error_text(&e)))?;
    let attributes = out.attributes().cloned().unwrap_or_default();
    let get = |name: QueueAttributeName| attributes.get(&name).cloned();
    let dead_letter_target = get(QueueAttributeName::RedrivePolicy).and_then(|policy| {
        let policy: serde_json::Value = serde_json::from_str(&policy).ok()?;
        Some(policy.get("deadLetterTargetArn")?.as_str()?.to_string())
    });
    Ok(QueueFacts {
        arn: get(QueueAttributeName::QueueArn).unwrap_or_default(),
        fifo: get(QueueAttributeName::FifoQueue).is_some_and(|v| v == "true"),
        dead_letter_target,
        depth: get(QueueAttributeName::ApproximateNumberOfMessages).and_then(|v| v.parse().ok()),
    })
}

/// Both queues exist, are of the same kind, and the queue's redrive policy names the DLQ.
async fn check_queues(
    client: &aws_sdk_sqs::Client,
    from_dlq_url: &str,
    to_queue_url: &str,
) -> Result<(QueueFacts, QueueFacts), String> {
    let dlq = inspect(client, from_dlq_url).await?;
    let queue = inspect(client, to_queue_url).await?;
    let kind = |fifo: bool| {
        if fifo {
            "a FIFO queue"
        } else {
            "a standard queue"
        }
    };
    if dlq.fifo != queue.fifo {
        return Err(format!(
            "{from_dlq_url} is {} but {to_queue_url} is {}; both must be of the same kind",
            kind(dlq.fifo),
            kind(queue.fifo)
        ));
    }
    if queue.dead_letter_target.as_deref() != Some(dlq.arn.as_str()) {
        return Err(format!(
            "{to_queue_url} does not send its dead letters to {from_dlq_url} (its redrive policy names {}); redrive a dead-letter queue into its own queue",
            queue
                .dead_letter_target
                .as_deref()
                .unwrap_or("no dead-letter queue")
        ));
    }
    Ok((dlq, queue))
}

async fn receive(
    client: &aws_sdk_sqs::Client,
    url: &str,
    wanted: usize,
) -> Result<Vec<Message>, String> {
    let out = client
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(i32::try_from(wanted).unwrap_or(10))
        .wait_time_seconds(WAIT_SECONDS)
        .visibility_timeout(i32::try_from(VISIBILITY.as_secs()).unwrap_or(60))
        .message_system_attribute_names(MessageSystemAttributeName::All)
        .message_attribute_names("All")
        .send()
        .await
        .map_err(|e| error_text(&e))?;
    Ok(out.messages.unwrap_or_default())
}

fn describe(m: &Message, fifo: bool) -> RedrivenMessage {
    let attribute =
        |name: MessageSystemAttributeName| m.attributes().and_then(|a| a.get(&name)).cloned();
    let dlq_message_id = m.message_id().unwrap_or_default().to_string();
    RedrivenMessage {
        body: m.body().unwrap_or_default().to_string(),
        group_id: fifo
            .then(|| attribute(MessageSystemAttributeName::MessageGroupId))
            .flatten(),
        original_dedup_id: fifo
            .then(|| attribute(MessageSystemAttributeName::MessageDeduplicationId))
            .flatten(),
        dedup_id: fifo.then(|| redrive_dedup_id(&dlq_message_id)),
        receive_count: attribute(MessageSystemAttributeName::ApproximateReceiveCount)
            .and_then(|c| c.parse().ok()),
        dlq_message_id,
        queue_message_id: None,
    }
}

/// Sends `m` to the queue as `entry` describes it; returns the new message id.
async fn send(
    client: &aws_sdk_sqs::Client,
    url: &str,
    m: &Message,
    entry: &RedrivenMessage,
) -> Result<String, String> {
    if entry.dedup_id.is_some() && entry.group_id.is_none() {
        return Err(format!(
            "message {} has no MessageGroupId",
            entry.dlq_message_id
        ));
    }
    // Only what SQS takes on a send: the list values of an attribute are reserved and unused.
    let attributes: Option<HashMap<String, MessageAttributeValue>> =
        m.message_attributes().map(|all| {
            all.iter()
                .filter_map(|(name, value)| {
                    let copy = MessageAttributeValue::builder()
                        .data_type(value.data_type())
                        .set_string_value(value.string_value().map(str::to_string))
                        .set_binary_value(value.binary_value().cloned())
                        .build()
                        .ok()?;
                    Some((name.clone(), copy))
                })
                .collect()
        });
    let out = client
        .send_message()
        .queue_url(url)
        .message_body(&entry.body)
        .set_message_attributes(attributes.filter(|a| !a.is_empty()))
        .set_message_group_id(entry.group_id.clone())
        .set_message_deduplication_id(entry.dedup_id.clone())
        .send()
        .await
        .map_err(|e| format!("message {}: {}", entry.dlq_message_id, error_text(&e)))?;
    Ok(out.message_id().unwrap_or_default().to_string())
}

/// Makes received messages visible again (best effort: otherwise they reappear after the
/// visibility timeout).
async fn release(client: &aws_sdk_sqs::Client, url: &str, receipt_handles: &[String]) {
    for (n, chunk) in receipt_handles.chunks(BATCH).enumerate() {
        let entries: Vec<ChangeMessageVisibilityBatchRequestEntry> = chunk
            .iter()
            .enumerate()
            .filter_map(|(i, handle)| {
                ChangeMessageVisibilityBatchRequestEntry::builder()
                    .id(format!("m{n}-{i}"))
                    .receipt_handle(handle)
                    .visibility_timeout(0)
                    .build()
                    .ok()
            })
            .collect();
        let result = client
            .change_message_visibility_batch()
            .queue_url(url)
            .set_entries(Some(entries))
            .send()
            .await;
        match result {
            Ok(out) if !out.failed().is_empty() => warn!(
                failed = out.failed().len(),
                "some dead-lettered messages stay hidden until their visibility timeout"
            ),
            Ok(_) => {}
            Err(e) => warn!(
                error = %error_text(&e),
                "dead-lettered messages stay hidden until their visibility timeout"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_redrive_deduplication_id_is_deterministic_distinct_and_within_sqs_limits() {
        let a = redrive_dedup_id("8d3f0c2e-1b7a-4a55-9d1e-2f0c6b5a9e01");
        assert_eq!(a, redrive_dedup_id("8d3f0c2e-1b7a-4a55-9d1e-2f0c6b5a9e01"));
        assert_ne!(a, redrive_dedup_id("8d3f0c2e-1b7a-4a55-9d1e-2f0c6b5a9e02"));
        assert!(a.starts_with("redrive-"));
        assert!(a.len() <= 128);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
    }

    #[test]
    fn a_dead_letter_deduplication_id_is_deterministic_within_sqs_limits_and_not_a_redrive_id() {
        let id = "8d3f0c2e-1b7a-4a55-9d1e-2f0c6b5a9e01";
        let d = dead_letter_dedup_id(id);
        assert_eq!(d, dead_letter_dedup_id(id));
        assert_ne!(
            d,
            dead_letter_dedup_id("8d3f0c2e-1b7a-4a55-9d1e-2f0c6b5a9e02")
        );
        assert!(d.starts_with("dead-letter-"));
        // The redrive id is what it always was (messages redriven before keep deduplicating).
        let mut hash = Sha256::new();
        hash.update(format!("dealbridge redrive\n{id}").as_bytes());
        assert_eq!(
            redrive_dedup_id(id),
            format!("redrive-{}", hex::encode(hash.finalize()))
        );
        assert_ne!(
            d["dead-letter-".len()..],
            redrive_dedup_id(id)["redrive-".len()..]
        );
        assert!(d.len() <= 128);
        assert!(d.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
    }

    #[test]
    fn a_redrive_error_says_how_far_the_run_got() {
        let e = RedriveError {
            stage: RedriveStage::Send,
            message: "InvalidParameterValue".into(),
            dlq_message_id: Some("m-1".into()),
            report: RedriveReport {
                moved: 2,
                ..RedriveReport::default()
            },
        };
        assert_eq!(
            e.to_string(),
            "redrive stopped after moving 2 message(s): sending to the queue failed: InvalidParameterValue"
        );
    }
}
