//! Amazon SQS.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_sqs::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

use super::{OutgoingMessage, Queue, QueueError, QueueName};
use crate::settings::Env;

/// The URL of every queue, from `MAXIO_CUSTOMER_QUEUE_URL` and friends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueUrls(HashMap<QueueName, String>);

impl QueueUrls {
    pub fn new(urls: HashMap<QueueName, String>) -> Self {
        QueueUrls(urls)
    }

    /// Reads every queue's variable; the missing and malformed ones are named.
    pub fn read(env: &mut Env<'_>) -> Option<QueueUrls> {
        let mut urls = HashMap::new();
        for q in QueueName::ALL {
            let Some(url) = env.required(q.url_variable(), "the queue's URL") else {
                continue;
            };
            if url.starts_with("https://") || url.starts_with("http://") {
                urls.insert(q, url);
            } else {
                env.problem(format!("{} {url:?} is not a queue URL", q.url_variable()));
            }
        }
        (urls.len() == QueueName::ALL.len()).then_some(QueueUrls(urls))
    }

    pub fn get(&self, queue: QueueName) -> Option<&str> {
        self.0.get(&queue).map(String::as_str)
    }
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
        let out = request.send().await.map_err(|e| {
            let retryable = match &e {
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
                queue: message.queue,
                message: DisplayErrorContext(&e).to_string(),
                retryable,
                too_large: None,
            }
        })?;
        Ok(out.message_id().unwrap_or_default().to_string())
    }
}
