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
use dealbridge::ledger::{DEFAULT_RETENTION, InMemoryLedger};
use dealbridge::maxio::ab::{AbClient, AbClientSettings, MAX_CONCURRENT_REQUESTS};
use dealbridge::maxio::core::{CoreClient, CoreClientSettings};
use dealbridge::maxio::core_link::CoreLinkDeps;
use dealbridge::maxio::prepare::AbSettings;
use dealbridge::maxio::steps::MaxioDeps;
use dealbridge::queue::{InMemoryQueue, QueueName, Received};
use dealbridge::retry::RetryPolicy;
use dealbridge::salesforce::{SalesforceClient, SfId};
use dealbridge::secrets::InMemorySecrets;
use dealbridge::snapshot::SnapshotLoader;
use dealbridge::whmcs::provision::WhmcsDeps;
use dealbridge::whmcs::{WhmcsClient, WhmcsClientSettings};
use dealbridge::writeback::WriteBack;
use dealbridge_intake::settings::IntakeSettings;

use crate::harness::{SALESFORCE_SECRET, config, credentials_secret};
use crate::maxio_ab::{AbSettings as AbSandboxSettings, MaxioAbSandbox};
use crate::maxio_core::{CoreSettings, MaxioCoreSandbox};
use crate::salesforce::{OrgSettings, SalesforceSandbox, seeded_org};
use crate::whmcs::{WhmcsSandbox, WhmcsSettings};

/// The intake secret the sample events are signed with (sandbox values; they protect nothing).
pub const INTAKE_SECRET: &str = "dealbridge/intake";
pub const SANDBOX_HMAC_KEY: &str = "sandbox-hmac-key";
pub const SANDBOX_BEARER_TOKEN: &str = "sandbox-bearer-token";
pub const SANDBOX_SOAP_TOKEN: &str = "sandbox-soap-token";
pub const MAXIO_AB_SECRET: &str = "dealbridge/maxio-ab";
pub const MAXIO_CORE_SECRET: &str = "dealbridge/maxio-core";
pub const WHMCS_SECRET: &str = "dealbridge/whmcs";
/// How long a local WHMCS attempt holds its lease (there is no Lambda deadline locally); shorter
/// than the queue's visibility timeout, so a redelivered message finds it expired.
pub const WHMCS_LEASE: Duration = Duration::from_secs(120);
/// The worker queues' maxReceiveCount in the local stack (as in the template).
pub const MAX_RECEIVES: u32 = 10;

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
    pub maxio_ab: MaxioAbSandbox,
    pub maxio: MaxioDeps,
    pub maxio_core: MaxioCoreSandbox,
    pub core_link: CoreLinkDeps,
    pub whmcs: WhmcsSandbox,
    pub ledger: InMemoryLedger,
    pub whmcs_deps: WhmcsDeps,
}

/// How the local stack's Maxio Core tenant starts.
#[derive(Debug, Clone, Default)]
pub struct CoreStart {
    pub settings: CoreSettings,
    /// Leave the tenant empty instead of loading `tests/data/maxio_core/seed.json`.
    pub empty: bool,
}

/// What draining the queues did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Drained {
    /// Messages handled, per queue.
    pub handled: Vec<(QueueName, usize)>,
    /// Deliveries that asked to be retried.
    pub retried: usize,
    pub delayed: Vec<dealbridge_delayed::RecordOutcome>,
}

impl LocalStack {
    /// The seeded sandbox org and every function, with the clock at the sample events' time.
    pub async fn start() -> anyhow::Result<LocalStack> {
        Self::start_with(&[]).await
    }

    /// As [`LocalStack::start`], with extra configuration variables (e.g. `DEALBRIDGE_MAPPING`).
    pub async fn start_with(extra: &[(&str, &str)]) -> anyhow::Result<LocalStack> {
        Self::start_with_core(extra, CoreStart::default()).await
    }

    /// As [`LocalStack::start_with`], with the Maxio Core tenant set up as `core` says.
    pub async fn start_with_core(
        extra: &[(&str, &str)],
        core: CoreStart,
    ) -> anyhow::Result<LocalStack> {
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
        let queue = InMemoryQueue::new(Duration::from_secs(360), 5);
        for q in [
            QueueName::MaxioCustomer,
            QueueName::MaxioPricePoints,
            QueueName::MaxioSubscription,
            QueueName::MaxioCoreLink,
            QueueName::WhmcsProvision,
            QueueName::Delayed,
        ] {
            queue.set_max_receives(q, MAX_RECEIVES);
        }
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
        let writeback = Arc::new(WriteBack::new(
            client.clone(),
            Arc::new(config.mapping.clone()),
            Arc::new(clock.clone()),
            RetryPolicy {
                max_attempts: 4,
                base_delay: Duration::from_millis(5),
                max_delay: Duration::from_millis(40),
            },
        ));
        let ledger = InMemoryLedger::new(DEFAULT_RETENTION);
        let delayed = dealbridge_delayed::Deps {
            dispatcher: dispatcher(),
            ledger: Arc::new(ledger.clone()),
            queue: Arc::new(queue.clone()),
            clock: Arc::new(clock.clone()),
            writeback: writeback.clone(),
            max_receives: MAX_RECEIVES,
        };
        let maxio_ab = MaxioAbSandbox::start(AbSandboxSettings::default()).await?;
        secrets.insert(
            MAXIO_AB_SECRET,
            serde_json::json!({"api_key": maxio_ab.settings().api_key}).to_string(),
        );
        let ab = AbClient::new(
            AbClientSettings {
                base_url: url::Url::parse(maxio_ab.url())?,
                secret_name: MAXIO_AB_SECRET.into(),
                timeout: Duration::from_secs(10),
                retry: RetryPolicy {
                    max_attempts: 4,
                    base_delay: Duration::from_millis(5),
                    max_delay: Duration::from_millis(40),
                },
                max_concurrent_requests: MAX_CONCURRENT_REQUESTS,
            },
            Arc::new(secrets.clone()),
        )?;
        let mapping = Arc::new(config.mapping.clone());
        let maxio = MaxioDeps {
            ab: Arc::new(ab),
            queue: Arc::new(queue.clone()),
            writeback: writeback.clone(),
            mapping,
            settings: AbSettings::default(),
            max_receives: MAX_RECEIVES,
            core_link: true,
            ledger: Arc::new(ledger.clone()),
            clock: Arc::new(clock.clone()),
        };
        let maxio_core = MaxioCoreSandbox::start(core.settings).await?;
        if !core.empty {
            maxio_core.seed(
                &crate::salesforce::data_dir().join(crate::maxio_core::SEED_FILE),
                |r| {
                    salesforce
                        .id_of(r)
                        .and_then(|id| SfId::parse(&id).ok())
                        .map(|id| id.to_string())
                },
            )?;
        }
        secrets.insert(
            MAXIO_CORE_SECRET,
            serde_json::json!({"api_token": maxio_core.settings().api_token}).to_string(),
        );
        let (_, link_settings) =
            dealbridge::maxio::core_link::core_config_from_lookup(|k| match k {
                "MAXIO_CORE_BASE_URL" => Some(maxio_core.base_url()),
                other => extra
                    .iter()
                    .find(|(name, _)| *name == other)
                    .map(|(_, v)| v.to_string()),
            })
            .map_err(|p| anyhow::anyhow!(p.join("; ")))?;
        let core_client = CoreClient::new(
            CoreClientSettings {
                base_url: url::Url::parse(&maxio_core.base_url())?,
                secret_name: MAXIO_CORE_SECRET.into(),
                timeout: Duration::from_secs(10),
                retry: RetryPolicy {
                    max_attempts: 4,
                    base_delay: Duration::from_millis(5),
                    max_delay: Duration::from_millis(40),
                },
                max_pages: 100,
            },
            Arc::new(secrets.clone()),
        )?;
        let core_link = CoreLinkDeps {
            core: Arc::new(core_client),
            queue: Arc::new(queue.clone()),
            writeback: writeback.clone(),
            clock: Arc::new(clock.clone()),
            ledger: Arc::new(ledger.clone()),
            settings: link_settings,
            max_receives: MAX_RECEIVES,
        };
        let whmcs = WhmcsSandbox::start(WhmcsSettings::default()).await?;
        let whmcs_settings = whmcs.settings();
        secrets.insert(
            WHMCS_SECRET,
            serde_json::json!({"identifier": whmcs_settings.identifier, "secret": whmcs_settings.secret})
                .to_string(),
        );
        let whmcs_client = WhmcsClient::new(
            WhmcsClientSettings {
                base_url: url::Url::parse(&whmcs.base_url())?,
                secret_name: WHMCS_SECRET.into(),
                timeout: Duration::from_secs(10),
                retry: RetryPolicy {
                    max_attempts: 4,
                    base_delay: Duration::from_millis(5),
                    max_delay: Duration::from_millis(40),
                },
            },
            Arc::new(secrets.clone()),
        )?;
        let whmcs_deps = WhmcsDeps {
            whmcs: Arc::new(whmcs_client),
            ledger: Arc::new(ledger.clone()),
            writeback,
            mapping: Arc::new(config.mapping.clone()),
            clock: Arc::new(clock.clone()),
            lease_fallback: WHMCS_LEASE,
            max_receives: MAX_RECEIVES,
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
            maxio_ab,
            maxio,
            maxio_core,
            core_link,
            whmcs,
            ledger,
            whmcs_deps,
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

impl LocalStack {
    /// Hands `batch` to the function that consumes `queue`, as Lambda's SQS poller would. Returns
    /// the message ids the function asked to retry, and what the delayed function did.
    pub async fn run_batch(
        &self,
        queue: QueueName,
        batch: &[Received],
    ) -> (Vec<String>, Vec<dealbridge_delayed::RecordOutcome>) {
        let ids = |r: aws_lambda_events::sqs::SqsBatchResponse| -> Vec<String> {
            r.batch_item_failures
                .into_iter()
                .map(|f| f.item_identifier)
                .collect()
        };
        match queue {
            QueueName::Delayed => {
                let mut failed = Vec::new();
                let mut outcomes = Vec::new();
                for r in batch {
                    let outcome =
                        dealbridge_delayed::handle_record(&sqs_message(r), &self.delayed).await;
                    if matches!(outcome, dealbridge_delayed::RecordOutcome::Failed { .. }) {
                        failed.push(r.message_id.clone());
                    }
                    outcomes.push(outcome);
                }
                (failed, outcomes)
            }
            QueueName::WhmcsProvision => (
                ids(dealbridge::whmcs::provision::handle_batch(
                    &sqs_event(batch),
                    &self.whmcs_deps,
                    None,
                )
                .await),
                Vec::new(),
            ),
            QueueName::MaxioCoreLink => (
                ids(
                    dealbridge::maxio::core_link::handle_batch(&sqs_event(batch), &self.core_link)
                        .await,
                ),
                Vec::new(),
            ),
            _ => (
                ids(
                    dealbridge::maxio::worker::handle_batch(&sqs_event(batch), &self.maxio, queue)
                        .await,
                ),
                Vec::new(),
            ),
        }
    }

    /// Runs every worker that exists over its queue until all queues are empty (or only hold
    /// messages for workers that do not exist yet), moving virtual time forward to each next
    /// visible message instead of waiting. Failed deliveries stay in flight until their visibility
    /// timeout, as on SQS, and end in the dead-letter lists after `MAX_RECEIVES`.
    pub async fn drain(&self, max_rounds: usize) -> Drained {
        let worked = [
            QueueName::Delayed,
            QueueName::MaxioCustomer,
            QueueName::MaxioPricePoints,
            QueueName::MaxioSubscription,
            QueueName::MaxioCoreLink,
            QueueName::WhmcsProvision,
        ];
        let mut report = Drained::default();
        for _ in 0..max_rounds {
            let mut any = false;
            for queue in worked {
                let batch = self.queue.receive(queue, 10);
                if batch.is_empty() {
                    continue;
                }
                any = true;
                let (failed, delayed) = self.run_batch(queue, &batch).await;
                report.delayed.extend(delayed);
                report.retried += failed.len();
                for r in &batch {
                    if !failed.contains(&r.message_id) {
                        self.queue.delete(queue, &r.receipt);
                    }
                }
                match report.handled.iter_mut().find(|(q, _)| *q == queue) {
                    Some((_, n)) => *n += batch.len(),
                    None => report.handled.push((queue, batch.len())),
                }
            }
            if any {
                continue;
            }
            let next = worked
                .iter()
                .filter_map(|q| self.queue.next_visible_at(*q))
                .min();
            match next {
                Some(at) => {
                    let now = self.queue.now();
                    self.advance(at.saturating_sub(now).max(Duration::from_millis(1)));
                }
                None => break,
            }
        }
        report
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
