//! The messages between dealbridge's functions: versioned JSON envelopes carrying the correlation
//! id, the deterministic step key and what the step needs, so no worker re-reads Salesforce.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::contract::cancel::{CancellationPlan, Standing};
use crate::maxio::link::CoreLinkInput;
use crate::maxio::prepare::{AbDealPlan, ResolvedComponent};
use crate::queue::{OutgoingMessage, QueueName};
use crate::salesforce::SfId;
use crate::snapshot::{DealRef, DealSnapshot};

/// The envelope shape this build writes and reads.
pub const ENVELOPE_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope {
    pub version: u32,
    /// Follows the deal through every function and log line.
    pub correlation_id: String,
    /// Deterministic name of this step for this deal, e.g. `006...:maxio-customer`.
    pub step_key: String,
    pub deal: DealRef,
    /// The Salesforce Account the deal belongs to: the FIFO message group.
    pub account_id: SfId,
    /// The idempotency key the trigger carried (`IdemKey__c`), kept for tracing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    /// The name of a delayed-queue message, the same however often it is sent: a step that sends
    /// the next delayed message and dies before it could record that it did sends it again when
    /// redelivered, under the same name, and the delayed function handles one message per name
    /// (see [`next_delayed_key`]). `None`: the message is named by its SQS message id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delayed_key: Option<String>,
    pub step: Step,
}

/// The name of the delayed message that the message named `key` sends next (a hop of a long
/// wait, or a re-dispatch), for `kind` of message: the same for every redelivery of `key`.
pub fn next_delayed_key(key: &str, kind: &str) -> String {
    let mut hash = Sha256::new();
    hash.update(key.as_bytes());
    hash.update(b"\n");
    hash.update(kind.as_bytes());
    hex::encode(&hash.finalize()[..16])
}

/// What a step does, with its input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "name",
    rename_all = "kebab-case",
    rename_all_fields = "camelCase"
)]
pub enum Step {
    /// Find or create the Maxio AB customer, then continue the chain.
    MaxioCustomer { snapshot: Box<DealSnapshot> },
    /// Create or reuse the deal's custom price points.
    MaxioPricePoints {
        plan: Box<AbDealPlan>,
        customer_id: i64,
    },
    /// Create or find the subscription, verify it, write the outcome back.
    MaxioSubscription {
        plan: Box<AbDealPlan>,
        customer_id: i64,
        components: Vec<ResolvedComponent>,
    },
    /// Link the AB subscription to the customer's Maxio Core contract (and write the deal's
    /// outcome back).
    MaxioCoreLink { link: CoreLinkInput },
    /// Bring the AB subscription to the cancellation's target (cancelled at its time, or
    /// nothing pending), then hand over to the WHMCS services (or write the outcome).
    MaxioCancel { cancellation: Box<CancellationPlan> },
    /// Bring the WHMCS services to the target, then write where every system stands.
    WhmcsCancel {
        cancellation: Box<CancellationPlan>,
        /// What the AB step found and did.
        standings: Vec<Standing>,
    },
    /// Provision one Order in WHMCS.
    WhmcsProvision {
        order_id: SfId,
        snapshot: Box<DealSnapshot>,
    },
    /// Dispatch the deal again: its Order did not exist yet, or its change is due later.
    Dispatch {
        attempt: u32,
        /// Unix seconds before which the work is not due (for waits longer than SQS's 15-minute
        /// delay, the message is delayed again).
        not_before: i64,
        /// Names the chain of delayed messages that waits for a scheduled change (a future-dated
        /// amendment, renewal or cancellation): of several chains waiting for the same deal and
        /// time, one goes on (see [`crate::delayed`]). `None` for a wait for CPQ's Order.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        chain: Option<String>,
    },
    /// Send `then` to its queue once `not_before` (Unix seconds) has passed: how a step waits
    /// longer than it may hold a message (for example for Maxio Core to sync), without sleeping.
    Deferred { not_before: i64, then: Box<Step> },
}

impl Step {
    pub fn name(&self) -> &'static str {
        match self {
            Step::MaxioCustomer { .. } => "maxio-customer",
            Step::MaxioPricePoints { .. } => "maxio-price-points",
            Step::MaxioSubscription { .. } => "maxio-subscription",
            Step::MaxioCoreLink { .. } => "maxio-core-link",
            Step::WhmcsProvision { .. } => "whmcs-provision",
            Step::MaxioCancel { .. } => "maxio-cancel",
            Step::WhmcsCancel { .. } => "whmcs-cancel",
            Step::Dispatch { .. } => "dispatch",
            Step::Deferred { .. } => "deferred",
        }
    }

    pub fn queue(&self) -> QueueName {
        match self {
            Step::MaxioCustomer { .. } => QueueName::MaxioCustomer,
            Step::MaxioPricePoints { .. } => QueueName::MaxioPricePoints,
            Step::MaxioSubscription { .. } => QueueName::MaxioSubscription,
            Step::MaxioCoreLink { .. } => QueueName::MaxioCoreLink,
            Step::WhmcsProvision { .. } | Step::WhmcsCancel { .. } => QueueName::WhmcsProvision,
            Step::MaxioCancel { .. } => QueueName::MaxioSubscription,
            Step::Dispatch { .. } | Step::Deferred { .. } => QueueName::Delayed,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    #[error("the message is not a dealbridge envelope: {0}")]
    Malformed(String),
    #[error("the message has envelope version {0}; this build reads version {ENVELOPE_VERSION}")]
    UnsupportedVersion(u32),
}

impl Envelope {
    pub fn new(
        correlation_id: &str,
        deal: &DealRef,
        account_id: &SfId,
        idempotency_key: Option<&str>,
        step: Step,
    ) -> Envelope {
        let step_key = match &step {
            Step::WhmcsProvision { order_id, .. } => format!("{order_id}:{}", step.name()),
            Step::Deferred { then, .. } => format!("{}:deferred:{}", deal.id(), then.name()),
            _ => format!("{}:{}", deal.id(), step.name()),
        };
        Envelope {
            version: ENVELOPE_VERSION,
            correlation_id: correlation_id.to_string(),
            step_key,
            deal: deal.clone(),
            account_id: account_id.clone(),
            idempotency_key: idempotency_key.map(str::to_string),
            delayed_key: None,
            step,
        }
    }

    /// Reads a message body, refusing other shapes and versions.
    pub fn parse(body: &str) -> Result<Envelope, EnvelopeError> {
        #[derive(Deserialize)]
        struct Probe {
            version: u32,
        }
        let probe: Probe =
            crate::json::from_str(body).map_err(|e| EnvelopeError::Malformed(e.to_string()))?;
        if probe.version != ENVELOPE_VERSION {
            return Err(EnvelopeError::UnsupportedVersion(probe.version));
        }
        serde_json::from_str(body).map_err(|e| EnvelopeError::Malformed(e.to_string()))
    }

    /// The FIFO deduplication id: a hash of the step key and the step's input (not of the
    /// correlation id), so the same trigger delivered twice yields the same id, while a deal whose
    /// data changed yields a new one.
    pub fn dedup_id(&self) -> String {
        let mut hash = Sha256::new();
        hash.update(self.step_key.as_bytes());
        hash.update(b"\n");
        hash.update(serde_json::to_vec(&self.step).unwrap_or_default());
        hex::encode(hash.finalize())
    }

    /// The span every log line about this message carries: correlation id, the deal's Salesforce
    /// Ids and the step (JSON logs show them on each line).
    pub fn span(&self) -> tracing::Span {
        tracing::info_span!(
            "message",
            correlation_id = %self.correlation_id,
            deal = %self.deal.id(),
            account = %self.account_id,
            step = self.step.name()
        )
    }

    /// The key the step's ledger records are kept under: the Order Id for WHMCS provisioning,
    /// else the deal's Id.
    pub fn deal_key(&self) -> String {
        match &self.step {
            Step::WhmcsProvision { order_id, .. } => order_id.to_string(),
            _ => self.deal.id().to_string(),
        }
    }

    /// The same deal's envelope for another step (the correlation id and trigger key carried on).
    /// Work for the delayed queue is named after this message and its trigger (see
    /// [`Envelope::delayed_key`]): a step that dies after sending it and runs again, or runs twice
    /// from a duplicate message, sends it under the same name, and one wait goes on, not two. A
    /// new trigger (another correlation id) starts a wait of its own.
    pub fn next(&self, step: Step) -> Envelope {
        let mut next = Envelope::new(
            &self.correlation_id,
            &self.deal,
            &self.account_id,
            self.idempotency_key.as_deref(),
            step,
        );
        if next.step.queue() == QueueName::Delayed {
            let sender = format!("{}\n{}", self.correlation_id, self.dedup_id());
            next.delayed_key = Some(next_delayed_key(&sender, next.step.name()));
        }
        next
    }

    /// The message to send: grouped by Account on FIFO queues.
    pub fn to_message(&self, delay: Duration) -> Result<OutgoingMessage, EnvelopeError> {
        let body =
            serde_json::to_string(self).map_err(|e| EnvelopeError::Malformed(e.to_string()))?;
        let queue = self.step.queue();
        Ok(OutgoingMessage {
            queue,
            body,
            group_id: queue.is_fifo().then(|| self.account_id.to_string()),
            dedup_id: queue.is_fifo().then(|| self.dedup_id()),
            delay: if queue.is_fifo() {
                Duration::ZERO
            } else {
                delay
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deal() -> DealRef {
        DealRef::Opportunity(SfId::parse("006A000010khO8J").unwrap())
    }

    fn account() -> SfId {
        SfId::parse("001A000010khO8J").unwrap()
    }

    #[test]
    fn envelopes_round_trip_and_name_their_step() {
        let e = Envelope::new(
            "c-1",
            &deal(),
            &account(),
            Some("k"),
            Step::Dispatch {
                attempt: 2,
                not_before: 0,
                chain: None,
            },
        );
        assert_eq!(e.step_key, "006A000010khO8JIAU:dispatch");
        let body = serde_json::to_string(&e).unwrap();
        assert!(
            body.contains(r#""step":{"name":"dispatch","attempt":2,"notBefore":0}"#),
            "{body}"
        );
        assert_eq!(Envelope::parse(&body).unwrap(), e);
    }

    #[test]
    fn the_dedup_id_ignores_the_correlation_id_but_not_the_input() {
        let a = Envelope::new(
            "c-1",
            &deal(),
            &account(),
            None,
            Step::Dispatch {
                attempt: 1,
                not_before: 0,
                chain: None,
            },
        );
        let b = Envelope::new(
            "c-2",
            &deal(),
            &account(),
            None,
            Step::Dispatch {
                attempt: 1,
                not_before: 0,
                chain: None,
            },
        );
        let c = Envelope::new(
            "c-1",
            &deal(),
            &account(),
            None,
            Step::Dispatch {
                attempt: 2,
                not_before: 0,
                chain: None,
            },
        );
        assert_eq!(a.dedup_id(), b.dedup_id());
        assert_ne!(a.dedup_id(), c.dedup_id());
        assert_eq!(a.dedup_id().len(), 64);
    }

    #[test]
    fn delayed_work_is_named_after_the_message_and_trigger_that_send_it() {
        let sender = |correlation: &str, attempt: u32| {
            Envelope::new(
                correlation,
                &deal(),
                &account(),
                None,
                Step::Dispatch {
                    attempt,
                    not_before: 0,
                    chain: None,
                },
            )
        };
        let wait = || Step::Deferred {
            not_before: 10,
            then: Box::new(Step::Dispatch {
                attempt: 3,
                not_before: 10,
                chain: None,
            }),
        };
        let key = |e: &Envelope| e.next(wait()).delayed_key;
        // A repeat of the same message (redelivered, or sent twice) names its wait the same.
        assert_eq!(key(&sender("c-1", 1)), key(&sender("c-1", 1)));
        assert!(key(&sender("c-1", 1)).is_some_and(|k| k.len() == 32));
        // Another message, or another trigger, starts a wait of its own.
        assert_ne!(key(&sender("c-1", 1)), key(&sender("c-1", 2)));
        assert_ne!(key(&sender("c-1", 1)), key(&sender("c-2", 1)));
        // Work for the other queues is not named.
        let forwarded = sender("c-1", 1).next(Step::MaxioCoreLink {
            link: serde_json::from_value(serde_json::json!({
                "opportunityId": "006A000010khO8JIAU", "customerId": 1, "subscriptionId": 2,
                "attempt": 1
            }))
            .unwrap(),
        });
        assert_eq!(forwarded.delayed_key, None);
    }

    #[test]
    fn other_versions_and_shapes_are_refused() {
        assert_eq!(
            Envelope::parse(r#"{"version":2}"#).unwrap_err(),
            EnvelopeError::UnsupportedVersion(2)
        );
        assert!(matches!(
            Envelope::parse("{}"),
            Err(EnvelopeError::Malformed(_))
        ));
        assert!(matches!(
            Envelope::parse(r#"{"version":1}"#),
            Err(EnvelopeError::Malformed(_))
        ));
    }

    #[test]
    fn standard_queue_messages_are_not_grouped_and_may_wait() {
        let e = Envelope::new(
            "c",
            &deal(),
            &account(),
            None,
            Step::Dispatch {
                attempt: 1,
                not_before: 0,
                chain: None,
            },
        );
        let m = e.to_message(Duration::from_secs(60)).unwrap();
        assert_eq!(m.queue, QueueName::Delayed);
        assert_eq!(
            (m.group_id, m.dedup_id, m.delay),
            (None, None, Duration::from_secs(60))
        );
    }
}
