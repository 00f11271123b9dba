//! The queue every function sends through: each message body is sealed ([`crate::seal`]) before
//! it goes to SQS (or the in-memory queue), so the workers can tell dealbridge's messages from
//! anyone else's.

use std::sync::Arc;

use async_trait::async_trait;

use super::{OutgoingMessage, Queue, QueueError};
use crate::seal::Seal;

pub struct SealingQueue {
    inner: Arc<dyn Queue>,
    seal: Arc<Seal>,
}

impl SealingQueue {
    pub fn new(inner: Arc<dyn Queue>, seal: Arc<Seal>) -> SealingQueue {
        SealingQueue { inner, seal }
    }
}

#[async_trait]
impl Queue for SealingQueue {
    async fn send(&self, message: &OutgoingMessage) -> Result<String, QueueError> {
        let body = self
            .seal
            .seal(&message.body)
            .await
            .map_err(|e| QueueError {
                queue: message.queue,
                message: format!("the message could not be sealed: {e}"),
                retryable: e.is_retryable(),
                too_large: None,
            })?;
        let sealed = OutgoingMessage {
            body,
            ..message.clone()
        };
        self.inner.send(&sealed).await
    }
}
