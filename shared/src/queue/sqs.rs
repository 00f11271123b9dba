//! Amazon SQS: the [`Queue`] every function sends through, and the [`DeadLetterQueue`] a queue
//! function moves what it can never handle to.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_lambda_events::sqs::SqsMessage;
use aws_sdk_sqs::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_sqs::primitives::Blob;
use aws_sdk_sqs::types::MessageAttributeValue;

use super::{DeadLetterQueue, OutgoingMessage, Queue, QueueError, QueueName, dead_letter_dedup_id};
use crate::settings::Env;

/// A URL per queue: every queue's, from `MAXIO_CUSTOMER_QUEUE_URL` and friends, or the
/// dead-letter queues' ones, from `MAXIO_CUSTOMER_DLQ_URL` and friends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueUrls(HashMap<QueueName, String>);

impl QueueUrls {
    pub fn new(urls: HashMap<QueueName, String>) -> Self {
        QueueUrls(urls)
    }

    /// Reads every queue's variable; the missing and malformed ones are named.
    pub fn read(env: &mut Env<'_>) -> Option<QueueUrls> {
        read_urls(
            &QueueName::ALL,
            QueueName::url_variable,
            "the queue's URL",
            env,
        )
    }

    /// Reads the variable of the dead-letter queue of each of `queues` (a queue function's own
    /// queue); the missing and malformed ones are named.
    pub fn read_dead_letters(queues: &[QueueName], env: &mut Env<'_>) -> Option<QueueUrls> {
        read_urls(
            queues,
            QueueName::dead_letter_url_variable,
            "the URL of the consumed queue's dead-letter queue",
            env,
        )
    }

    pub fn get(&self, queue: QueueName) -> Option<&str> {
        self.0.get(&queue).map(String::as_str)
    }
}

fn read_urls(
    queues: &[QueueName],
    variable: fn(QueueName) -> &'static str,
    hint: &str,
    env: &mut Env<'_>,
) -> Option<QueueUrls> {
    let mut urls = HashMap::new();
    for &q in queues {
        let Some(url) = env.required(variable(q), hint) else {
            continue;
        };
        if url.starts_with("https://") || url.starts_with("http://") {
            urls.insert(q, url);
        } else {
            env.problem(format!("{} {url:?} is not a queue URL", variable(q)));
        }
    }
    (urls.len() == queues.len()).then_some(QueueUrls(urls))
}

pub struct SqsQueue {
    client: aws_sdk_sqs::Client,
    urls: QueueUrls,
}

impl SqsQueue {
    pub fn new(client: aws_sdk_sqs::Client, urls: QueueUrls) -> Self {
        SqsQueue { client, urls }
    }
}

#[async_trait]
impl Queue for SqsQueue {
    async fn send(&self, message: &OutgoingMessage) -> Result<String, QueueError> {
        message.validate()?;
        let url = self
            .urls
            .get(message.queue)
            .ok_or_else(|| QueueError::invalid(message.queue, "no URL configured".to_string()))?;
        let mut request = self
            .client
            .send_message()
            .queue_url(url)
            .message_body(&message.body)
            .set_message_group_id(message.group_id.clone())
            .set_message_deduplication_id(message.dedup_id.clone());
        if !message.delay.is_zero() {
            request = request.delay_seconds(i32::try_from(message.delay.as_secs()).unwrap_or(900));
        }
        let out = request
            .send()
            .await
            .map_err(|e| send_error(message.queue, &e))?;
        Ok(out.message_id().unwrap_or_default().to_string())
    }
}

/// A refused or failed `SendMessage`: retryable unless SQS says the request or the queue is wrong.
fn send_error<E, R>(queue: QueueName, e: &SdkError<E, R>) -> QueueError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let retryable = match e {
        SdkError::ServiceError(se) => {
            let code = se.err().code().unwrap_or_default();
            !matches!(
                code,
                "InvalidParameterValue"
                    | "MissingParameter"
                    | "InvalidMessageContents"
                    | "UnsupportedOperation"
                    | "AWS.SimpleQueueService.NonExistentQueue"
                    | "QueueDoesNotExist"
                    | "AccessDenied"
                    | "AccessDeniedException"
            )
        }
        _ => true,
    };
    QueueError {
        queue,
        message: DisplayErrorContext(e).to_string(),
        retryable,
        too_large: None,
    }
}

/// The dead-letter queues of the queues a function consumes (its `<QUEUE>_DLQ_URL`). A record is
/// sent as received, not sealed again: the body is kept byte for byte, so a redrive puts back
/// exactly what came.
pub struct SqsDeadLetters {
    client: aws_sdk_sqs::Client,
    urls: QueueUrls,
}

impl SqsDeadLetters {
    pub fn new(client: aws_sdk_sqs::Client, urls: QueueUrls) -> Self {
        SqsDeadLetters { client, urls }
    }
}

#[async_trait]
impl DeadLetterQueue for SqsDeadLetters {
    async fn dead_letter(
        &self,
        queue: QueueName,
        record: &SqsMessage,
    ) -> Result<String, QueueError> {
        let refuse = |m: &str| Err(QueueError::invalid(queue, m.to_string()));
        let Some(url) = self.urls.get(queue) else {
            return Err(QueueError::invalid(
                queue,
                format!(
                    "no dead-letter queue URL configured ({})",
                    queue.dead_letter_url_variable()
                ),
            ));
        };
        let Some(body) = record.body.as_deref().filter(|b| !b.is_empty()) else {
            return refuse("a record without a body cannot be sent to the dead-letter queue");
        };
        let (group_id, dedup_id) = if queue.is_fifo() {
            let Some(group) = record.attributes.get("MessageGroupId") else {
                return refuse("the FIFO record has no MessageGroupId to keep");
            };
            let Some(id) = record.message_id.as_deref().filter(|id| !id.is_empty()) else {
                return refuse("the FIFO record has no MessageId to deduplicate it by");
            };
            (Some(group.clone()), Some(dead_letter_dedup_id(id)))
        } else {
            (None, None)
        };
        // Only what SQS takes on a send: the list values of an attribute are reserved and unused.
        let attributes: HashMap<String, MessageAttributeValue> = record
            .message_attributes
            .iter()
            .filter_map(|(name, value)| {
                let copy = MessageAttributeValue::builder()
                    .set_data_type(value.data_type.clone())
                    .set_string_value(value.string_value.clone())
                    .set_binary_value(value.binary_value.as_ref().map(|b| Blob::new(b.0.clone())))
                    .build()
                    .ok()?;
                Some((name.clone(), copy))
            })
            .collect();
        let out = self
            .client
            .send_message()
            .queue_url(url)
            .message_body(body)
            .set_message_attributes((!attributes.is_empty()).then_some(attributes))
            .set_message_group_id(group_id)
            .set_message_deduplication_id(dedup_id)
            .send()
            .await
            .map_err(|e| send_error(queue, &e))?;
        Ok(out.message_id().unwrap_or_default().to_string())
    }
}
