//! A billing hint: the message on the billing-sync queue that asks for one run of the billing
//! sync of one target (an AB site's events since its cursor, or the WHMCS services).
//!
//! A hint carries no billing data: whatever sent it (an AB webhook, the schedule, a run that
//! stopped at its bounds), the run reads the state from AB and WHMCS themselves. So a hint that
//! is late, repeated or replayed can only cause a run that finds nothing new.
//!
//! On the FIFO queue a target's hints share one message group (`ab:<site>`, `whmcs`), so one
//! target's runs never overlap; the deduplication id is deterministic for what caused the hint
//! (the webhook's id, the schedule's time, the cursor a run stopped at), so a webhook AB retries
//! or a send repeated after a crash is one message.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::queue::{OutgoingMessage, QueueName};

/// The hint shape this build writes and reads.
pub const HINT_VERSION: u32 = 1;

/// What a run syncs.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Target {
    /// One AB site's subscriptions, from its event log.
    AbSite { site: String },
    /// The WHMCS services of the order products.
    WhmcsServices,
}

impl Target {
    /// The FIFO message group: one per target.
    pub fn group(&self) -> String {
        match self {
            Target::AbSite { site } => format!("ab:{site}"),
            Target::WhmcsServices => "whmcs".into(),
        }
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::AbSite { site } => write!(f, "AB site {site}"),
            Target::WhmcsServices => f.write_str("the WHMCS services"),
        }
    }
}

/// Why a run was asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "reason",
    rename_all = "kebab-case",
    rename_all_fields = "camelCase"
)]
pub enum Reason {
    /// An AB webhook said something changed (its id and event key).
    Webhook { webhook_id: String, event: String },
    /// The schedule fired at this time.
    Schedule { at: DateTime<Utc> },
    /// A run stopped at its bounds with more to do, at this cursor.
    Continue { after: Option<i64> },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Hint {
    pub version: u32,
    pub target: Target,
    #[serde(flatten)]
    pub reason: Reason,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HintError {
    #[error("the message is not a billing hint: {0}")]
    Malformed(String),
    #[error("the message has hint version {0}; this build reads version {HINT_VERSION}")]
    UnsupportedVersion(u32),
}

impl Hint {
    pub fn new(target: Target, reason: Reason) -> Hint {
        Hint {
            version: HINT_VERSION,
            target,
            reason,
        }
    }

    /// Reads a message body, refusing other shapes and versions.
    pub fn parse(body: &str) -> Result<Hint, HintError> {
        #[derive(Deserialize)]
        struct Probe {
            version: u32,
        }
        let probe: Probe =
            crate::json::from_str(body).map_err(|e| HintError::Malformed(e.to_string()))?;
        if probe.version != HINT_VERSION {
            return Err(HintError::UnsupportedVersion(probe.version));
        }
        serde_json::from_str(body).map_err(|e| HintError::Malformed(e.to_string()))
    }

    /// The FIFO deduplication id: a hash of the target and what caused the hint, never of the
    /// time it was sent.
    pub fn dedup_id(&self) -> String {
        let cause = match &self.reason {
            Reason::Webhook { webhook_id, .. } => format!("webhook\n{webhook_id}"),
            Reason::Schedule { at } => format!("schedule\n{}", at.timestamp()),
            Reason::Continue { after } => {
                format!(
                    "continue\n{}",
                    after.map_or(String::new(), |a| a.to_string())
                )
            }
        };
        let mut hash = Sha256::new();
        hash.update(self.target.group().as_bytes());
        hash.update(b"\n");
        hash.update(cause.as_bytes());
        hex::encode(hash.finalize())
    }

    /// The message to send to the billing-sync queue.
    pub fn to_message(&self) -> Result<OutgoingMessage, HintError> {
        let body = serde_json::to_string(self).map_err(|e| HintError::Malformed(e.to_string()))?;
        Ok(OutgoingMessage {
            queue: QueueName::BillingSync,
            body,
            group_id: Some(self.target.group()),
            dedup_id: Some(self.dedup_id()),
            delay: std::time::Duration::ZERO,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site(s: &str) -> Target {
        Target::AbSite { site: s.into() }
    }

    fn webhook(id: &str) -> Reason {
        Reason::Webhook {
            webhook_id: id.into(),
            event: "subscription_state_change".into(),
        }
    }

    #[test]
    fn hints_round_trip_with_their_group_and_a_deterministic_dedup_id() {
        let hint = Hint::new(site("acme-eu"), webhook("100001"));
        let message = hint.to_message().unwrap();
        assert_eq!(message.queue, QueueName::BillingSync);
        assert_eq!(message.group_id.as_deref(), Some("ab:acme-eu"));
        assert_eq!(Hint::parse(&message.body).unwrap(), hint);
        let body: serde_json::Value = serde_json::from_str(&message.body).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"version": 1, "target": {"type": "ab-site", "site": "acme-eu"},
                               "reason": "webhook", "webhookId": "100001",
                               "event": "subscription_state_change"})
        );
        // The same webhook again (AB's retry, a replay): the same id; another webhook or site: not.
        let again = Hint::new(site("acme-eu"), webhook("100001"))
            .to_message()
            .unwrap();
        assert_eq!(again.dedup_id, message.dedup_id);
        for other in [
            Hint::new(site("acme-eu"), webhook("100002")),
            Hint::new(site("acme-us"), webhook("100001")),
        ] {
            assert_ne!(other.to_message().unwrap().dedup_id, message.dedup_id);
        }
        message.validate().unwrap();
    }

    #[test]
    fn a_continuation_is_named_by_the_cursor_it_continues_from() {
        let at = |after| Hint::new(Target::WhmcsServices, Reason::Continue { after }).dedup_id();
        assert_eq!(at(Some(400)), at(Some(400)));
        assert_ne!(at(Some(400)), at(Some(600)));
        assert_ne!(at(None), at(Some(0)));
        let scheduled = Hint::new(
            Target::WhmcsServices,
            Reason::Schedule {
                at: DateTime::parse_from_rfc3339("2026-12-05T06:00:00Z")
                    .unwrap()
                    .with_timezone(&Utc),
            },
        );
        assert_eq!(
            Hint::parse(&scheduled.to_message().unwrap().body).unwrap(),
            scheduled
        );
    }

    #[test]
    fn other_shapes_and_versions_are_refused() {
        assert!(matches!(
            Hint::parse(r#"{"version": 2, "target": {"type": "whmcs-services"}}"#),
            Err(HintError::UnsupportedVersion(2))
        ));
        for body in [
            "not json",
            r#"{"version": 1}"#,
            r#"{"version": 1, "target": {"type": "mars"}, "reason": "schedule", "at": "2026-12-05T06:00:00Z"}"#,
            r#"{"version": 1, "target": {"type": "whmcs-services"}, "reason": "whenever"}"#,
        ] {
            assert!(
                matches!(Hint::parse(body), Err(HintError::Malformed(_))),
                "{body}"
            );
        }
    }
}
