//! The queues between dispatch and the workers: names, the outgoing message, the [`Queue`] port
//! and the [`DeadLetterQueue`] port, each with an SQS adapter and an in-memory one (local runner
//! and tests).

mod memory;
mod redrive;
mod sealed;
mod sqs;

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use aws_lambda_events::sqs::SqsMessage;
use serde::{Deserialize, Serialize};

pub use memory::{InMemoryQueue, Received};
pub use redrive::{
    RedriveError, RedriveOptions, RedriveProgress, RedriveReport, RedriveStage, RedrivenMessage,
    dead_letter_dedup_id, redrive, redrive_dedup_id,
};
pub use sealed::SealingQueue;
pub use sqs::{QueueUrls, SqsDeadLetters, SqsQueue};

/// Every queue dealbridge sends to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum QueueName {
    /// First step of the Maxio Advanced Billing chain (FIFO).
    MaxioCustomer,
    /// Custom price points for the deal's scheduled products (FIFO).
    MaxioPricePoints,
    /// The subscription, checked and written back (FIFO).
    MaxioSubscription,
    /// The link from the AB subscription to the Maxio Core contract (FIFO).
    MaxioCoreLink,
    /// WHMCS provisioning of one Order (FIFO).
    WhmcsProvision,
    /// Work to do later: re-dispatch a deal whose Order CPQ has not created yet, or forward a
    /// step that waits (standard queue, because FIFO queues have no per-message delay).
    Delayed,
    /// Billing state to bring into Salesforce: an AB site's events since its cursor, or the
    /// WHMCS services (FIFO, one message group per site, so one site's runs never overlap).
    BillingSync,
}

impl QueueName {
    pub const ALL: [QueueName; 7] = [
        QueueName::MaxioCustomer,
        QueueName::MaxioPricePoints,
        QueueName::MaxioSubscription,
        QueueName::MaxioCoreLink,
        QueueName::WhmcsProvision,
        QueueName::Delayed,
        QueueName::BillingSync,
    ];

    pub fn is_fifo(self) -> bool {
        !matches!(self, QueueName::Delayed)
    }

    /// The environment variable holding the queue's URL.
    pub fn url_variable(self) -> &'static str {
        match self {
            QueueName::MaxioCustomer => "MAXIO_CUSTOMER_QUEUE_URL",
            QueueName::MaxioPricePoints => "MAXIO_PRICE_POINTS_QUEUE_URL",
            QueueName::MaxioSubscription => "MAXIO_SUBSCRIPTION_QUEUE_URL",
            QueueName::MaxioCoreLink => "MAXIO_CORE_LINK_QUEUE_URL",
            QueueName::WhmcsProvision => "WHMCS_PROVISION_QUEUE_URL",
            QueueName::Delayed => "DELAYED_QUEUE_URL",
            QueueName::BillingSync => "BILLING_SYNC_QUEUE_URL",
        }
    }

    /// The environment variable holding the URL of the queue's dead-letter queue (read by the
    /// queue's own function only).
    pub fn dead_letter_url_variable(self) -> &'static str {
        match self {
            QueueName::MaxioCustomer => "MAXIO_CUSTOMER_DLQ_URL",
            QueueName::MaxioPricePoints => "MAXIO_PRICE_POINTS_DLQ_URL",
            QueueName::MaxioSubscription => "MAXIO_SUBSCRIPTION_DLQ_URL",
            QueueName::MaxioCoreLink => "MAXIO_CORE_LINK_DLQ_URL",
            QueueName::WhmcsProvision => "WHMCS_PROVISION_DLQ_URL",
            QueueName::Delayed => "DELAYED_DLQ_URL",
            QueueName::BillingSync => "BILLING_SYNC_DLQ_URL",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            QueueName::MaxioCustomer => "maxio-customer",
            QueueName::MaxioPricePoints => "maxio-price-points",
            QueueName::MaxioSubscription => "maxio-subscription",
            QueueName::MaxioCoreLink => "maxio-core-link",
            QueueName::WhmcsProvision => "whmcs-provision",
            QueueName::Delayed => "delayed",
            QueueName::BillingSync => "billing-sync",
        }
    }
}

impl fmt::Display for QueueName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// SQS delays a message by at most 15 minutes.
pub const MAX_DELAY: Duration = Duration::from_secs(900);

/// The largest message body SQS takes.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// A message to send. FIFO queues need `group_id` and `dedup_id`; standard queues may delay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingMessage {
    pub queue: QueueName,
    pub body: String,
    pub group_id: Option<String>,
    pub dedup_id: Option<String>,
    pub delay: Duration,
}

impl OutgoingMessage {
    /// Checks what SQS would refuse, before sending.
    pub fn validate(&self) -> Result<(), QueueError> {
        let fail = |m: String| Err(QueueError::invalid(self.queue, m));
        if self.queue.is_fifo() {
            if self.group_id.as_deref().is_none_or(str::is_empty) {
                return fail("a FIFO message needs a MessageGroupId".into());
            }
            if self
                .dedup_id
                .as_deref()
                .is_none_or(|d| d.is_empty() || d.len() > 128)
            {
                return fail(
                    "a FIFO message needs a MessageDeduplicationId of 1 to 128 characters".into(),
                );
            }
            if !self.delay.is_zero() {
                return fail("FIFO queues do not delay single messages".into());
            }
        }
        if self.delay > MAX_DELAY {
            return fail(format!(
                "a delay of {:?} exceeds SQS's 15 minutes",
                self.delay
            ));
        }
        if self.body.len() > MAX_BODY_BYTES {
            return Err(QueueError {
                too_large: Some(self.body.len()),
                ..QueueError::invalid(
                    self.queue,
                    format!(
                        "the message has {} bytes; SQS takes at most {MAX_BODY_BYTES} (256 KiB)",
                        self.body.len()
                    ),
                )
            });
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("queue {queue}: {message}")]
pub struct QueueError {
    pub queue: QueueName,
    pub message: String,
    pub retryable: bool,
    /// The message's size, when it was refused for being larger than SQS takes.
    pub too_large: Option<usize>,
}

impl QueueError {
    pub fn invalid(queue: QueueName, message: String) -> QueueError {
        QueueError {
            queue,
            message,
            retryable: false,
            too_large: None,
        }
    }

    pub fn unavailable(queue: QueueName, message: String) -> QueueError {
        QueueError {
            queue,
            message,
            retryable: true,
            too_large: None,
        }
    }
}

/// Where messages go.
#[async_trait]
pub trait Queue: Send + Sync {
    /// Sends one message and returns its message id.
    async fn send(&self, message: &OutgoingMessage) -> Result<String, QueueError>;
}

/// Where a record that can never be handled goes at once: the dead-letter queue of the queue it
/// was received on, instead of returning to that queue until SQS moves it there after
/// `maxReceiveCount` receives (on a FIFO queue, holding back its whole message group meanwhile).
#[async_trait]
pub trait DeadLetterQueue: Send + Sync {
    /// Sends `record`, as received on `queue`, to `queue`'s dead-letter queue: the same body and
    /// message attributes and, on a FIFO queue, the same `MessageGroupId`, deduplicated by
    /// [`dead_letter_dedup_id`] of its message id (a record moved twice, its deletion lost in
    /// between, lands once). Returns the message id in the dead-letter queue. The record itself is
    /// left alone: the caller reports it done, so it is deleted from `queue`.
    async fn dead_letter(
        &self,
        queue: QueueName,
        record: &SqsMessage,
    ) -> Result<String, QueueError>;
}
