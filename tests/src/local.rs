//! The whole of dealbridge in one process: every function's handler wired to the sandbox org, an
//! in-memory queue and a manual clock, as a deployment wires them to AWS. The local runner
//! (`make demo`) and the end-to-end tests drive it.

use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::sqs::{SqsEvent, SqsMessage};
use chrono::{DateTime, TimeZone, Utc};
use dealbridge::clock::ManualClock;
use dealbridge::config::{AuthFlow, Config};
use dealbridge::dispatch::{Dispatcher, RedispatchPolicy};
use dealbridge::queue::{InMemoryQueue, QueueName, Received};
use dealbridge::salesforce::{SalesforceClient, SfId};
use dealbridge::secrets::InMemorySecrets;
use dealbridge::snapshot::SnapshotLoader;
use dealbridge_intake::settings::IntakeSettings;

use crate::harness::{SALESFORCE_SECRET, config, credentials_secret};
use crate::salesforce::{OrgSettings, SalesforceSandbox, seeded_org};

/// The intake secret the sample events are signed with (sandbox values; they protect nothing).
pub const INTAKE_SECRET: &str = "dealbridge/intake";
pub const SANDBOX_HMAC_KEY: &str = "sandbox-hmac-key";
pub const SANDBOX_BEARER_TOKEN: &str = "sandbox-bearer-token";
pub const SANDBOX_SOAP_TOKEN: &str = "sandbox-soap-token";

/// The time the sample events in `events/` were made (2026-11-20T12:00:00Z).
pub fn sample_time() -> DateTime<Utc> {
    Utc.timestamp_opt(1_795_176_000, 0)
        .single()
        .unwrap_or_default()
}

pub fn intake_secret_json() -> String {
    serde_json::json!({
        "hmac_key": SANDBOX_HMAC_KEY,
        "bearer_token": SANDBOX_BEARER_TOKEN,
        "soap_token": SANDBOX_SOAP_TOKEN,
    })
    .to_string()
}

pub struct LocalStack {
    pub salesforce: SalesforceSandbox,
    pub queue: InMemoryQueue,
    pub clock: ManualClock,
    pub secrets: InMemorySecrets,
    pub config: Config,
    pub client: Arc<SalesforceClient>,
    pub intake: dealbridge_intake::Deps,
    pub platform_events: dealbridge_platform_events::Deps,
    pub delayed: dealbridge_delayed::Deps,
}

impl LocalStack {
    /// The seeded sandbox org and every function, with the clock at the sample events' time.
    pub async fn start() -> anyhow::Result<LocalStack> {
        Self::start_with(&[]).await
    }

    /// As [`LocalStack::start`], with extra configuration variables (e.g. `DEALBRIDGE_MAPPING`).
    pub async fn start_with(extra: &[(&str, &str)]) -> anyhow::Result<LocalStack> {
        let salesforce = SalesforceSandbox::start(OrgSettings::default(), seeded_org()?).await?;
        let config = config(&salesforce, AuthFlow::ClientCredentials, extra)?;
        let secrets = InMemorySecrets::new();
        secrets.insert(
            SALESFORCE_SECRET,
            credentials_secret(&salesforce.settings()),
        );
        secrets.insert(INTAKE_SECRET, intake_secret_json());
        let client = Arc::new(SalesforceClient::new(
            config.salesforce.clone(),
            Arc::new(secrets.clone()),
        )?);
        let queue = InMemoryQueue::default();
        let clock = ManualClock::new(sample_time());
        let org_id = SfId::parse(&salesforce.settings().org_id)?.to_string();
        let settings = IntakeSettings::from_lookup(|k| match k {
            "INTAKE_SECRET_NAME" => Some(INTAKE_SECRET.to_string()),
            "SALESFORCE_ORG_IDS" => Some(org_id.clone()),
            _ => None,
        })
        .map_err(|p| anyhow::anyhow!(p.join("; ")))?;
        let dispatcher = || {
            Dispatcher::new(
                SnapshotLoader::new(client.clone(), Arc::new(config.mapping.clone())),
                Arc::new(queue.clone()),
                Arc::new(config.mapping.clone()),
                RedispatchPolicy::default(),
                Arc::new(clock.clone()),
            )
        };
        let intake = dealbridge_intake::Deps {
            dispatcher: dispatcher(),
            secrets: Arc::new(secrets.clone()),
            settings,
            clock: Arc::new(clock.clone()),
        };
        let platform_events = dealbridge_platform_events::Deps {
            dispatcher: dispatcher(),
        };
        let delayed = dealbridge_delayed::Deps {
            dispatcher: dispatcher(),
            queue: Arc::new(queue.clone()),
            clock: Arc::new(clock.clone()),
        };
        Ok(LocalStack {
            salesforce,
            queue,
            clock,
            secrets,
            config,
            client,
            intake,
            platform_events,
            delayed,
        })
    }

    /// A snapshot loader on the same Salesforce client (for showing what a deal holds).
    pub fn intake_loader(&self) -> SnapshotLoader {
        SnapshotLoader::new(self.client.clone(), Arc::new(self.config.mapping.clone()))
    }

    /// The functions' clock, in Unix seconds.
    pub fn clock_now(&self) -> i64 {
        use dealbridge::clock::Clock;
        self.clock.now().timestamp()
    }

    /// Moves the queue's and the functions' time together.
    pub fn advance(&self, by: Duration) {
        self.queue.advance(by);
        self.clock.advance(by);
    }

    /// The 18-character Id of a seeded record.
    pub fn id(&self, reference: &str) -> SfId {
        self.salesforce
            .id_of(reference)
            .and_then(|id| SfId::parse(&id).ok())
            .unwrap_or_else(|| panic!("no seeded record {reference}"))
    }

    /// Runs the delayed function over its queue until nothing is left, moving time forward to
    /// each next message instead of waiting. Returns what each record became, in order.
    pub async fn drain_delayed(&self, max_rounds: usize) -> Vec<dealbridge_delayed::RecordOutcome> {
        let mut outcomes = Vec::new();
        for _ in 0..max_rounds {
            let batch = self.queue.receive(QueueName::Delayed, 10);
            if batch.is_empty() {
                match self.queue.next_visible_at(QueueName::Delayed) {
                    Some(at) => {
                        let now = self.queue.now();
                        self.advance(at.saturating_sub(now).max(Duration::from_millis(1)));
                        continue;
                    }
                    None => break,
                }
            }
            for received in batch {
                let outcome =
                    dealbridge_delayed::handle_record(&sqs_message(&received), &self.delayed).await;
                match outcome {
                    dealbridge_delayed::RecordOutcome::Failed { .. } => {}
                    _ => self.queue.delete(QueueName::Delayed, &received.receipt),
                }
                outcomes.push(outcome);
            }
        }
        outcomes
    }
}

/// An SQS record as Lambda delivers it, for a message received from the in-memory queue.
pub fn sqs_message(received: &Received) -> SqsMessage {
    let value = serde_json::json!({
        "messageId": received.message_id,
        "receiptHandle": received.receipt,
        "body": received.body,
        "attributes": {"ApproximateReceiveCount": received.receive_count.to_string()},
        "messageAttributes": {},
        "eventSource": "aws:sqs",
        "eventSourceARN": format!("arn:aws:sqs:us-east-1:123456789012:{}", received.queue),
        "awsRegion": "us-east-1",
    });
    serde_json::from_value(value).unwrap_or_default()
}

/// A Lambda SQS event holding `received`.
pub fn sqs_event(received: &[Received]) -> SqsEvent {
    let mut event = SqsEvent::default();
    event.records = received.iter().map(sqs_message).collect();
    event
}
