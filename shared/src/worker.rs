//! What every SQS worker shares: per-record handling of a FIFO batch with partial failures, and
//! how many times a message has been received.
//!
//! On a FIFO queue, records of one group must be handled in order: after the first record that
//! must be retried, it and every later record are reported as failures (they return to the queue
//! in order), as Lambda's documentation prescribes for `ReportBatchItemFailures` on FIFO.

use std::future::Future;

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use tracing::warn;

/// What became of one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handled {
    /// Done (succeeded, or failed for good and said so in Salesforce): delete the message.
    Done,
    /// Try again later: the message returns after its visibility timeout.
    Retry(String),
}

/// Handles `event`'s records in order, stopping at the first one to retry.
pub async fn run_fifo_batch<F, Fut>(event: &SqsEvent, mut handle: F) -> SqsBatchResponse
where
    F: FnMut(SqsMessage) -> Fut,
    Fut: Future<Output = Handled>,
{
    let mut response = SqsBatchResponse::default();
    let mut failing = false;
    for record in &event.records {
        let id = record.message_id.clone().unwrap_or_default();
        if failing {
            response.add_failure(id);
            continue;
        }
        match handle(record.clone()).await {
            Handled::Retry(reason) => {
                warn!(message_id = %id, %reason, "record will be retried");
                crate::metrics::count(crate::metrics::MESSAGES_RETRIED, 1);
                failing = true;
                response.add_failure(id);
            }
            Handled::Done => crate::metrics::count(crate::metrics::MESSAGES_DONE, 1),
        }
    }
    response
}

/// `ApproximateReceiveCount`: 1 on the first delivery.
pub fn receive_count(message: &SqsMessage) -> u32 {
    message
        .attributes
        .get("ApproximateReceiveCount")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
}

/// The maxReceiveCount of the worker queues (`WORKER_MAX_RECEIVES`), so a worker knows a
/// message's last try and can say so in Salesforce before it goes to the dead-letter queue.
pub fn max_receives_from_env() -> u32 {
    std::env::var("WORKER_MAX_RECEIVES")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(10)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(ids: &[&str]) -> SqsEvent {
        let mut e = SqsEvent::default();
        e.records = ids
            .iter()
            .map(|id| {
                let mut m = SqsMessage::default();
                m.message_id = Some(id.to_string());
                m.body = Some(id.to_string());
                m
            })
            .collect();
        e
    }

    #[tokio::test]
    async fn after_the_first_retry_every_later_record_fails_too() {
        let mut seen = Vec::new();
        let r = run_fifo_batch(&event(&["a", "b", "c", "d"]), |m| {
            let body = m.body.clone().unwrap_or_default();
            seen.push(body.clone());
            async move {
                if body == "b" {
                    Handled::Retry("x".into())
                } else {
                    Handled::Done
                }
            }
        })
        .await;
        let failed: Vec<String> = r
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.clone())
            .collect();
        assert_eq!(failed, ["b", "c", "d"]);
        assert_eq!(
            seen,
            ["a", "b"],
            "records after the failure are not handled"
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
