//! The whole of dealbridge in one process: every function's handler wired to the sandbox org, an
//! in-memory queue and a manual clock, as a deployment wires them to AWS. The local runner
//! (`make demo`) and the end-to-end tests drive it.

use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::sqs::{SqsEvent, SqsMessage};
use chrono::{DateTime, TimeZone, Utc};
use dealbridge::billing::run::BillingRun;
use dealbridge::clock::ManualClock;
use dealbridge::config::{AuthFlow, Config};
use dealbridge::delayed::DelayedDeps;
use dealbridge::ledger::{DEFAULT_RETENTION, InMemoryLedger};
use dealbridge::maxio::core_link::CoreLinkDeps;
use dealbridge::maxio::steps::MaxioDeps;
use dealbridge::queue::{InMemoryQueue, QueueName, Received};
use dealbridge::retry::RetryPolicy;
use dealbridge::runner::{
    DrainHooks, DrainOptions, Drained, Handled, Router, drain, run_batch, sqs_record,
};
use dealbridge::salesforce::{SalesforceClient, SfId};
use dealbridge::secrets::InMemorySecrets;
use dealbridge::settings::{Env, Section, Settings};
use dealbridge::snapshot::SnapshotLoader;
use dealbridge::whmcs::provision::WhmcsDeps;
use dealbridge::wiring::{Platform, StartError, Wiring};

use crate::harness::{SALESFORCE_SECRET, credentials_secret, environment};
use crate::maxio_ab::MaxioAbSandbox;
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
/// The secret that seals the queue messages (a sandbox key; it protects nothing).
pub const ENVELOPE_SECRET: &str = "dealbridge/envelope";
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

pub fn envelope_secret_json() -> String {
    serde_json::json!({
        "current": "sandbox1",
        "sandbox1": "sandbox-envelope-key-0123456789abcdef",
    })
    .to_string()
}

/// `body` sealed as the local stack's functions seal their messages (an existing seal replaced):
/// for tests that change a message before handing it to a worker.
pub fn reseal(body: &str) -> String {
    let keys = dealbridge::seal::SealKeys::parse(
        ENVELOPE_SECRET,
        &dealbridge::secrets::Secret::new(envelope_secret_json()),
    );
    match keys.map(|k| k.seal(&dealbridge::seal::unsealed(body))) {
        Ok(Ok(sealed)) => sealed,
        _ => body.to_string(),
    }
}

pub fn intake_secret_json() -> String {
    serde_json::json!({
        "hmac_key": SANDBOX_HMAC_KEY,
        "bearer_token": SANDBOX_BEARER_TOKEN,
        "soap_token": SANDBOX_SOAP_TOKEN,
        "maxio_webhook_keys": {
            "default": crate::maxio_ab::SANDBOX_WEBHOOK_KEY,
            crate::ab_sites::UK_SITE: crate::ab_sites::UK_WEBHOOK_KEY,
        },
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
    pub delayed: Arc<DelayedDeps>,
    /// The default AB site (USD, with EUR as a non-primary currency).
    pub maxio_ab: MaxioAbSandbox,
    /// The `uk` AB site (GBP).
    pub maxio_ab_uk: MaxioAbSandbox,
    pub maxio: Arc<MaxioDeps>,
    pub maxio_core: MaxioCoreSandbox,
    pub core_link: Arc<CoreLinkDeps>,
    pub whmcs: WhmcsSandbox,
    pub ledger: InMemoryLedger,
    pub whmcs_deps: Arc<WhmcsDeps>,
    /// The billing-sync function's runner (the billing-sync queue, the schedule).
    pub billing: Arc<BillingRun>,
    /// The AB request budgets' slots, shared by every handler (and [`LocalStack::maxio_instance`]).
    pub budget_table: Arc<dealbridge::budget::MemorySlotTable>,
    /// The platform the wiring was built on, before it sealed the queue.
    unsealed: Platform,
    /// The production wiring the handlers above were built with.
    pub wiring: Wiring,
    /// Kills the functions right after a chosen effect (disarmed unless a test arms it): every
    /// handler's queue sends and ledger writes, and the fakes' writes, are counted.
    pub kill: crate::kill::KillSwitch,
}

/// How the local stack's Maxio Core tenant starts.
#[derive(Debug, Clone, Default)]
pub struct CoreStart {
    pub settings: CoreSettings,
    /// Leave the tenant empty instead of loading `sandbox/data/maxio_core/seed.json`.
    pub empty: bool,
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
        let maxio_ab = MaxioAbSandbox::start(crate::ab_sites::default_site()).await?;
        let maxio_ab_uk = MaxioAbSandbox::start(crate::ab_sites::uk_site()).await?;
        // The sites judge dates on the stack's clock, as the workers do.
        maxio_ab.set_clock(sample_time());
        maxio_ab_uk.set_clock(sample_time());
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
        let whmcs = WhmcsSandbox::start(WhmcsSettings::default()).await?;
        // WHMCS dates services and runs its cron on the stack's clock too.
        whmcs.set_clock(sample_time());

        let secrets = InMemorySecrets::new();
        secrets.insert(
            SALESFORCE_SECRET,
            credentials_secret(&salesforce.settings()),
        );
        secrets.insert(INTAKE_SECRET, intake_secret_json());
        secrets.insert(ENVELOPE_SECRET, envelope_secret_json());
        secrets.insert(MAXIO_AB_SECRET, crate::ab_sites::secret_json(&maxio_ab));
        secrets.insert(
            crate::ab_sites::MAXIO_AB_UK_SECRET,
            crate::ab_sites::secret_json(&maxio_ab_uk),
        );
        secrets.insert(
            MAXIO_CORE_SECRET,
            serde_json::json!({"api_token": maxio_core.settings().api_token}).to_string(),
        );
        let whmcs_settings = whmcs.settings();
        secrets.insert(
            WHMCS_SECRET,
            serde_json::json!({"identifier": whmcs_settings.identifier, "secret": whmcs_settings.secret})
                .to_string(),
        );

        // The sandbox's endpoints, through the configuration every function reads.
        let org_id = SfId::parse(&salesforce.settings().org_id)?.to_string();
        let mut variables = environment(&salesforce, AuthFlow::ClientCredentials);
        for (name, value) in [
            ("INTAKE_SECRET_NAME", INTAKE_SECRET.to_string()),
            ("ENVELOPE_SECRET_NAME", ENVELOPE_SECRET.to_string()),
            ("SALESFORCE_ORG_IDS", org_id),
            ("WORKER_MAX_RECEIVES", MAX_RECEIVES.to_string()),
            ("MAXIO_AB_BASE_URL", maxio_ab.url().to_string()),
            ("MAXIO_AB_SECRET_NAME", MAXIO_AB_SECRET.to_string()),
            ("MAXIO_AB_TIMEOUT_SECONDS", "10".to_string()),
            ("MAXIO_CORE_LINK_ENABLED", "true".to_string()),
            ("MAXIO_CORE_BASE_URL", maxio_core.base_url()),
            ("MAXIO_CORE_SECRET_NAME", MAXIO_CORE_SECRET.to_string()),
            ("MAXIO_CORE_TIMEOUT_SECONDS", "10".to_string()),
            ("WHMCS_BASE_URL", whmcs.base_url()),
            ("WHMCS_SECRET_NAME", WHMCS_SECRET.to_string()),
            ("WHMCS_TIMEOUT_SECONDS", "10".to_string()),
            (
                "DEALBRIDGE_MAPPING",
                crate::ab_sites::mapping_json(maxio_ab_uk.url()),
            ),
        ] {
            variables.push((name.to_string(), value));
        }
        variables.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let lookup = |k: &str| {
            variables
                .iter()
                .rev()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.clone())
        };
        // Every section but the queues (in memory here) and the ledger's table (in memory too).
        let settings = Settings::read(
            &[
                Section::Worker,
                Section::MaxioAb,
                Section::MaxioCore,
                Section::Whmcs,
                Section::Intake,
                Section::EventSources,
                Section::Seal,
                Section::Reconciler,
            ],
            &mut Env::new(lookup),
        )?;

        let queue = InMemoryQueue::new(Duration::from_secs(360), 5);
        for q in QueueName::ALL {
            queue.set_max_receives(q, MAX_RECEIVES);
        }
        let clock = ManualClock::new(sample_time());
        let ledger = InMemoryLedger::new(DEFAULT_RETENTION);
        let kill = crate::kill::KillSwitch::default();
        for observer in [
            salesforce.observer(),
            maxio_ab.observer(),
            maxio_ab_uk.observer(),
            maxio_core.observer(),
            whmcs.observer(),
        ] {
            observer.set_kill(kill.clone());
        }
        let budget_table = Arc::new(dealbridge::budget::MemorySlotTable::new());
        let budgets = dealbridge::budget::SharedBudgets::new(budget_table.clone())
            .as_holder("local", Arc::new(clock.clone()));
        let platform = Platform {
            secrets: Arc::new(secrets.clone()),
            queue: Arc::new(crate::kill::KillingQueue {
                inner: Arc::new(queue.clone()),
                switch: kill.clone(),
            }),
            dead_letters: Some(Arc::new(queue.clone())),
            ledger: Some(Arc::new(crate::kill::KillingLedger {
                inner: Arc::new(ledger.clone()),
                switch: kill.clone(),
            })),
            clock: Arc::new(clock.clone()),
            retry: RetryPolicy {
                max_attempts: 4,
                base_delay: Duration::from_millis(5),
                max_delay: Duration::from_millis(40),
            },
            // One table for every handler, as the deployed containers share DynamoDB's.
            budget: Some(budgets),
        };
        let unsealed = platform.clone();
        let wiring = Wiring::new(settings, platform)?;
        Ok(LocalStack {
            config: wiring.settings.config.clone(),
            client: wiring.salesforce.clone(),
            intake: dealbridge_intake::Deps::new(&wiring)?,
            platform_events: dealbridge_platform_events::Deps::new(&wiring)?,
            delayed: Arc::new(wiring.delayed()?),
            maxio: Arc::new(wiring.maxio()?),
            core_link: Arc::new(wiring.core_link()?),
            whmcs_deps: Arc::new(wiring.whmcs()?),
            billing: Arc::new(wiring.billing_sync()?),
            salesforce,
            queue,
            clock,
            secrets,
            maxio_ab,
            maxio_ab_uk,
            maxio_core,
            whmcs,
            ledger,
            budget_table,
            unsealed,
            wiring,
            kill,
        })
    }

    /// The Maxio AB steps' handler of another function instance: its own AB clients, whose
    /// request budgets share this stack's slot table under `holder`'s name, as the deployed
    /// containers share DynamoDB's.
    pub fn maxio_instance(&self, holder: &str) -> Result<Arc<MaxioDeps>, StartError> {
        self.maxio_instance_at(holder, Arc::new(self.clock.clone()))
    }

    /// [`LocalStack::maxio_instance`] whose leases are read by `clock` (a container whose clock
    /// is skewed).
    pub fn maxio_instance_at(
        &self,
        holder: &str,
        clock: Arc<dyn dealbridge::clock::Clock>,
    ) -> Result<Arc<MaxioDeps>, StartError> {
        // Wiring::new seals what the platform's queue is given: from the platform before it did.
        let mut platform = self.unsealed.clone();
        platform.budget = platform.budget.map(|b| b.as_holder(holder, clock));
        Ok(Arc::new(
            Wiring::new(self.wiring.settings.clone(), platform)?.maxio()?,
        ))
    }

    /// Leaves the `Repair` deal's subscription in AB as an earlier run left it wrong (see
    /// [`crate::ab_sites::seed_broken_subscription`]), as `make sandbox` and the demo have it.
    /// Forgets the requests it took. Returns the subscription id.
    pub async fn seed_broken_subscription(&self) -> anyhow::Result<i64> {
        let seeded = |r: &str| {
            self.salesforce
                .id_of(r)
                .and_then(|id| SfId::parse(&id).ok())
                .ok_or_else(|| anyhow::anyhow!("the org has no {r}"))
        };
        let id = crate::ab_sites::seed_broken_subscription(
            &self.maxio_ab,
            &seeded("RepairAccount")?,
            &seeded("RepairOpportunity")?,
        )
        .await?;
        self.maxio_ab.observer().clear_log();
        Ok(id)
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

    /// Moves the queue's, the functions' and the fakes' time together (AB's delayed and
    /// scheduled cancellations come due, WHMCS's daily cron runs as midnight passes).
    pub fn advance(&self, by: Duration) {
        self.queue.advance(by);
        self.clock.advance(by);
        self.maxio_ab.advance_clock(by);
        self.maxio_ab_uk.advance_clock(by);
        self.whmcs.advance_clock(by);
    }

    /// The 18-character Id of a seeded record.
    pub fn id(&self, reference: &str) -> SfId {
        self.salesforce
            .id_of(reference)
            .and_then(|id| SfId::parse(&id).ok())
            .unwrap_or_else(|| panic!("no seeded record {reference}"))
    }
}

impl LocalStack {
    /// Every queue's handler, as the deployed functions serve them (the same handlers as
    /// [`Wiring::router`], kept as fields so tests can reach their clients).
    pub fn router(&self) -> Router {
        Router::new()
            .with(QueueName::Delayed, self.delayed.clone())
            .with(QueueName::MaxioCustomer, self.maxio.clone())
            .with(QueueName::MaxioPricePoints, self.maxio.clone())
            .with(QueueName::MaxioSubscription, self.maxio.clone())
            .with(QueueName::MaxioCoreLink, self.core_link.clone())
            .with(QueueName::WhmcsProvision, self.whmcs_deps.clone())
    }

    /// Hands `batch` to the function that consumes `queue`, as Lambda's SQS poller would (what can
    /// never be handled goes to the queue's dead-letter list), and returns the message ids the
    /// function asked to retry.
    pub async fn run_batch(&self, queue: QueueName, batch: &[Received]) -> Vec<String> {
        let router = self.router();
        let Some(handler) = router.handler(queue) else {
            return batch.iter().map(|r| r.message_id.clone()).collect();
        };
        self.run_batch_on(handler.as_ref(), queue, batch).await
    }

    /// [`LocalStack::run_batch`] with `handler` (another function instance's).
    pub async fn run_batch_on(
        &self,
        handler: &dyn dealbridge::runner::QueueHandler,
        queue: QueueName,
        batch: &[Received],
    ) -> Vec<String> {
        run_batch(queue, handler, &self.queue, &sqs_event(batch), None)
            .await
            .batch_item_failures
            .into_iter()
            .map(|f| f.item_identifier)
            .collect()
    }

    /// Runs every function over its queue until all queues are empty, moving virtual time
    /// forward to each next visible message instead of waiting. Failed deliveries stay in flight
    /// until their visibility timeout, as on SQS, and end in the dead-letter lists after
    /// `MAX_RECEIVES`.
    pub async fn drain(&self, max_rounds: usize) -> Drained {
        drain(
            &self.router(),
            &self.queue,
            &DrainOptions {
                max_rounds,
                ..DrainOptions::default()
            },
            &mut VirtualTime(self),
        )
        .await
    }

    /// Runs the delayed function over its queue until nothing is left, moving time forward to
    /// each next message instead of waiting: what became of each delivery, with its step.
    pub async fn drain_delayed(&self, max_rounds: usize) -> Vec<(&'static str, Handled)> {
        self.drain_queues(&[QueueName::Delayed], max_rounds)
            .await
            .deliveries
            .into_iter()
            .map(|d| (d.step.unwrap_or("unreadable"), d.handled))
            .collect()
    }

    /// Runs the billing-sync function over its queue, a batch of up to 10 at a time as Lambda
    /// would, until the queue is empty or a batch leaves records to retry (they stay in flight
    /// until their visibility timeout, as on SQS): what became of each record.
    pub async fn drain_billing(&self, max_batches: usize) -> Vec<dealbridge::runner::RecordResult> {
        self.drain_billing_on(&self.billing, max_batches).await
    }

    /// [`LocalStack::drain_billing`] with `billing` (another function instance's runner).
    pub async fn drain_billing_on(
        &self,
        billing: &BillingRun,
        max_batches: usize,
    ) -> Vec<dealbridge::runner::RecordResult> {
        let mut all = Vec::new();
        for _ in 0..max_batches {
            let batch = self.queue.receive(QueueName::BillingSync, 10);
            if batch.is_empty() {
                break;
            }
            let records: Vec<SqsMessage> = batch.iter().map(sqs_message).collect();
            let results = billing.handle_records(&records, &self.queue, None).await;
            let mut retried = false;
            for (received, result) in batch.iter().zip(&results) {
                if result.handled.is_finished() {
                    self.queue.delete(QueueName::BillingSync, &received.receipt);
                } else {
                    retried = true;
                }
            }
            all.extend(results);
            if retried {
                break;
            }
        }
        all
    }

    /// As [`LocalStack::drain_queues`], the process dying when [`LocalStack::kill`] says: the
    /// batch it was handling stays unacknowledged until its visibility timeout.
    pub async fn drain_killing(&self, queues: &[QueueName], max_rounds: usize) -> Drained {
        drain(
            &self.router().only(queues),
            &self.queue,
            &DrainOptions {
                max_rounds,
                ..DrainOptions::default()
            },
            &mut Killable(self),
        )
        .await
    }

    /// Runs the billing-sync function over its queue until it is empty, moving time to each next
    /// visible message, the process dying when [`LocalStack::kill`] says (the batch stays in
    /// flight until its visibility timeout); a record to retry stays in flight too, as on SQS.
    pub async fn drain_billing_killing(&self, max_batches: usize) {
        for _ in 0..max_batches {
            let batch = self.queue.receive(QueueName::BillingSync, 10);
            if batch.is_empty() {
                let Some(at) = self.queue.next_visible_at(QueueName::BillingSync) else {
                    break;
                };
                self.advance(
                    at.saturating_sub(self.queue.now())
                        .max(Duration::from_millis(1)),
                );
                continue;
            }
            let records: Vec<SqsMessage> = batch.iter().map(sqs_message).collect();
            let results = tokio::select! {
                biased;
                () = self.kill.killed() => continue,
                results = self.billing.handle_records(&records, &self.queue, None) => results,
            };
            for (received, result) in batch.iter().zip(&results) {
                if result.handled.is_finished() {
                    self.queue.delete(QueueName::BillingSync, &received.receipt);
                }
            }
        }
    }

    /// As [`LocalStack::drain`], over `queues` only.
    pub async fn drain_queues(&self, queues: &[QueueName], max_rounds: usize) -> Drained {
        let router = self.router().only(queues);
        let options = DrainOptions {
            max_rounds,
            ..DrainOptions::default()
        };
        drain(&router, &self.queue, &options, &mut VirtualTime(self)).await
    }
}

/// No AB request of any test on the local stack may carry a negative quantity: AB's spec sets
/// no minimum, so a negative allocation or starting quantity could bill a credit nobody agreed.
impl Drop for LocalStack {
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        for (site, fake) in [("default", &self.maxio_ab), ("uk", &self.maxio_ab_uk)] {
            let negative = fake.negative_quantities();
            assert!(
                negative.is_empty(),
                "AB site {site} received negative quantities: {negative:?}"
            );
        }
    }
}

/// Moves the local stack's queue and clock together.
pub struct VirtualTime<'a>(pub &'a LocalStack);

impl DrainHooks for VirtualTime<'_> {
    fn advance(&mut self, by: Duration) -> bool {
        self.0.advance(by);
        true
    }
}

/// An SQS record as Lambda delivers it, for a message received from the in-memory queue.
pub fn sqs_message(received: &Received) -> SqsMessage {
    dealbridge::runner::in_group(
        sqs_record(
            received.queue,
            &received.message_id,
            &received.body,
            received.receive_count,
        ),
        received.group_id.as_deref(),
    )
}

/// A Lambda SQS event holding `received`.
pub fn sqs_event(received: &[Received]) -> SqsEvent {
    let mut event = SqsEvent::default();
    event.records = received.iter().map(sqs_message).collect();
    event
}

/// [`VirtualTime`], and a process that dies when the stack's kill switch fires.
struct Killable<'a>(&'a LocalStack);

impl DrainHooks for Killable<'_> {
    fn interrupted(
        &mut self,
    ) -> Option<std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + '_>>> {
        Some(Box::pin(self.0.kill.killed()))
    }

    fn advance(&mut self, by: Duration) -> bool {
        self.0.advance(by);
        true
    }
}
