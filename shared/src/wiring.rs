//! The one place dealbridge is wired: every handler's dependencies built from the
//! [`Settings`] and a [`Platform`]. The deployed functions call [`Wiring::from_env`] (AWS: Secrets
//! Manager, SQS, DynamoDB); the local stack and the operator CLI build their own [`Platform`]
//! (in-memory queue and ledger, a manual clock) and call the same constructors, so the end-to-end
//! tests exercise the production wiring.

use std::sync::Arc;

use crate::budget::{DynamoDbSlotTable, SharedBudgets};
use crate::clock::{Clock, SystemClock};
use crate::config::ConfigError;
use crate::delayed::DelayedDeps;
use crate::dispatch::{Dispatcher, RedispatchPolicy};
use crate::ledger::{DynamoDbLedger, Ledger};
use crate::mapping::Mapping;
use crate::maxio::core::CoreClient;
use crate::maxio::core_link::CoreLinkDeps;
use crate::maxio::steps::MaxioDeps;
use crate::queue::{DeadLetterQueue, Queue, QueueName, SqsDeadLetters, SqsQueue};
use crate::retry::RetryPolicy;
use crate::runner::{QueueHandler, Router};
use crate::salesforce::SalesforceClient;
use crate::secrets::{AwsSecretsManager, CachedSecrets, SecretStore};
use crate::settings::{Function, Settings};
use crate::snapshot::SnapshotLoader;
use crate::whmcs::WhmcsClient;
use crate::whmcs::provision::WhmcsDeps;
use crate::writeback::WriteBack;

/// How long a WHMCS attempt holds its lease when the Lambda deadline is unknown.
pub const WHMCS_LEASE_FALLBACK: std::time::Duration = std::time::Duration::from_secs(120);

/// Why a function cannot start: every problem, one per line.
#[derive(Debug, thiserror::Error)]
#[error("the function cannot start:\n  {}", .problems.join("\n  "))]
pub struct StartError {
    pub problems: Vec<String>,
}

impl StartError {
    pub fn new(problem: impl Into<String>) -> StartError {
        StartError {
            problems: vec![problem.into()],
        }
    }
}

impl From<ConfigError> for StartError {
    fn from(e: ConfigError) -> Self {
        StartError {
            problems: e.problems,
        }
    }
}

/// What the handlers run on: where secrets come from, where messages go, where a queue
/// function moves what it can never handle, the ledger, the clock and how often a call is tried.
#[derive(Clone)]
pub struct Platform {
    pub secrets: Arc<dyn SecretStore>,
    pub queue: Arc<dyn Queue>,
    /// The dead-letter queue of the queue a function consumes, for the runner; `None` where no
    /// dead-letter queue was configured (the edge functions, and the in-memory runs, whose drain
    /// moves such messages to the in-memory queue's dead-letter lists).
    pub dead_letters: Option<Arc<dyn DeadLetterQueue>>,
    /// `None` where the function keeps no ledger.
    pub ledger: Option<Arc<dyn Ledger>>,
    pub clock: Arc<dyn Clock>,
    /// The retry policy of every HTTP client and of the Salesforce write-back.
    pub retry: RetryPolicy,
    /// Where the AB sites' request budgets keep their slots: the deployed functions' DynamoDB
    /// table, or one table for every handler of the local stack. `None`: each site's budget is
    /// this process's own.
    pub budget: Option<SharedBudgets>,
}

impl Platform {
    /// AWS, as the deployed functions see it: secrets cached per container, SQS, and the consumed
    /// queue's dead-letter queue when the settings name one; no ledger (see
    /// [`Platform::with_dynamodb_ledger`]).
    pub fn aws_with(
        aws: &aws_config::SdkConfig,
        settings: &Settings,
    ) -> Result<Platform, StartError> {
        let secrets: Arc<dyn SecretStore> = Arc::new(CachedSecrets::new(
            Arc::new(AwsSecretsManager::new(aws_sdk_secretsmanager::Client::new(
                aws,
            ))),
            settings.config.secrets_cache_ttl,
        ));
        let urls = settings
            .queues
            .clone()
            .ok_or_else(|| StartError::new("the queue URLs were not read"))?;
        let sqs = aws_sdk_sqs::Client::new(aws);
        let dead_letters = settings.dead_letters.clone().map(|urls| {
            Arc::new(SqsDeadLetters::new(sqs.clone(), urls)) as Arc<dyn DeadLetterQueue>
        });
        let queue: Arc<dyn Queue> = Arc::new(SqsQueue::new(sqs, urls));
        let budget = settings
            .ab
            .as_ref()
            .and_then(|ab| ab.budget_table.as_deref())
            .map(|table| SharedBudgets::new(Arc::new(DynamoDbSlotTable::from_sdk(aws, table))));
        Ok(Platform {
            secrets,
            queue,
            dead_letters,
            ledger: None,
            clock: Arc::new(SystemClock),
            retry: RetryPolicy::default(),
            budget,
        })
    }

    /// The same platform with the DynamoDB ledger the settings name. Apart from
    /// [`Platform::aws_with`], so a function without a ledger does not link DynamoDB's client.
    pub fn with_dynamodb_ledger(
        mut self,
        aws: &aws_config::SdkConfig,
        settings: &Settings,
    ) -> Result<Platform, StartError> {
        let table = settings.ledger.as_ref().ok_or_else(|| missing("ledger"))?;
        self.ledger = Some(Arc::new(DynamoDbLedger::from_settings(aws, table)));
        Ok(self)
    }
}

/// The settings, the platform and the Salesforce client every handler shares.
pub struct Wiring {
    pub settings: Settings,
    pub platform: Platform,
    pub salesforce: Arc<SalesforceClient>,
    mapping: Arc<Mapping>,
    /// Seals what is sent and opens what is handled, when the seal's secret was configured.
    seal: Option<Arc<crate::seal::Seal>>,
}

fn missing(section: &str) -> StartError {
    StartError::new(format!("the {section} configuration was not read"))
}

impl Wiring {
    /// A deployed edge function's wiring (intake, platform-events, reconciler): its settings
    /// from the environment, on AWS, without a ledger.
    pub async fn from_env(function: Function) -> Result<Wiring, StartError> {
        let settings = Settings::from_env(function)?;
        let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        let platform = Platform::aws_with(&aws, &settings)?;
        Wiring::new(settings, platform)
    }

    /// A deployed queue function's wiring: as [`Wiring::from_env`], with the DynamoDB ledger.
    pub async fn for_queue(function: Function) -> Result<Wiring, StartError> {
        let settings = Settings::from_env(function)?;
        if settings
            .ab
            .as_ref()
            .is_some_and(|ab| ab.budget_table.is_none())
        {
            return Err(StartError::new(format!(
                "{} is not set (the DynamoDB table of the AB sites' request budgets, which every \
                 AB function's containers share)",
                crate::budget::BUDGET_TABLE_VARIABLE
            )));
        }
        let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        let platform =
            Platform::aws_with(&aws, &settings)?.with_dynamodb_ledger(&aws, &settings)?;
        Wiring::new(settings, platform)
    }

    /// Builds the handlers' shared parts. With [`Settings::seal`], every message sent is sealed
    /// and every handler opens the messages it is given ([`crate::seal`]).
    pub fn new(settings: Settings, platform: Platform) -> Result<Wiring, StartError> {
        let mut platform = platform;
        let seal = settings.seal.as_ref().map(|s| {
            Arc::new(crate::seal::Seal::new(
                platform.secrets.clone(),
                s.secret_name.clone(),
            ))
        });
        if let Some(seal) = &seal {
            platform.queue = Arc::new(crate::queue::SealingQueue::new(
                platform.queue.clone(),
                seal.clone(),
            ));
        }
        let salesforce = Arc::new(
            SalesforceClient::new(settings.config.salesforce.clone(), platform.secrets.clone())
                .map_err(|e| StartError::new(e.to_string()))?,
        );
        let mapping = Arc::new(settings.config.mapping.clone());
        Ok(Wiring {
            settings,
            platform,
            salesforce,
            mapping,
            seal,
        })
    }

    pub fn mapping(&self) -> Arc<Mapping> {
        self.mapping.clone()
    }

    /// Where the runner moves a record of the consumed queue that can never be handled: its
    /// dead-letter queue (`<QUEUE>_DLQ_URL`, which a queue function requires).
    pub fn dead_letters(&self) -> Result<Arc<dyn DeadLetterQueue>, StartError> {
        self.platform
            .dead_letters
            .clone()
            .ok_or_else(|| missing("dead-letter queue"))
    }

    fn ledger(&self) -> Result<Arc<dyn Ledger>, StartError> {
        self.platform
            .ledger
            .clone()
            .ok_or_else(|| missing("ledger"))
    }

    /// The deal loader (one Composite call per deal).
    pub fn loader(&self) -> SnapshotLoader {
        SnapshotLoader::new(self.salesforce.clone(), self.mapping())
    }

    /// Validate, load, plan and enqueue a deal.
    pub fn dispatcher(&self) -> Dispatcher {
        Dispatcher::new(
            self.loader(),
            self.platform.queue.clone(),
            self.mapping(),
            RedispatchPolicy::default(),
            self.platform.clock.clone(),
        )
    }

    /// Outcomes written to Salesforce.
    pub fn writeback(&self) -> Arc<WriteBack> {
        Arc::new(WriteBack::new(
            self.salesforce.clone(),
            self.mapping(),
            self.platform.clock.clone(),
            self.platform.retry.clone(),
        ))
    }

    /// The Maxio AB chain's handler (its three queues).
    pub fn maxio(&self) -> Result<MaxioDeps, StartError> {
        let ab = self
            .settings
            .ab
            .as_ref()
            .ok_or_else(|| missing("Maxio AB"))?;
        let mut client = ab.client.clone();
        client.retry = self.platform.retry.clone();
        let sites = crate::maxio::sites::build(
            &client,
            &self.mapping.maxio,
            self.platform.secrets.clone(),
            self.platform.budget.clone(),
        )
        .map_err(StartError::new)?;
        Ok(MaxioDeps {
            sites: Arc::new(sites),
            queue: self.platform.queue.clone(),
            writeback: self.writeback(),
            mapping: self.mapping(),
            settings: ab.deal.clone(),
            max_receives: self.settings.max_receives,
            ledger: self.ledger()?,
            clock: self.platform.clock.clone(),
            core_link: ab.core_link,
            seal: self.seal.clone(),
        })
    }

    /// The Maxio Core link's handler.
    pub fn core_link(&self) -> Result<CoreLinkDeps, StartError> {
        let core = self
            .settings
            .core
            .as_ref()
            .ok_or_else(|| missing("Maxio Core"))?;
        let mut client = core.client.clone();
        client.retry = self.platform.retry.clone();
        let client = CoreClient::new(client, self.platform.secrets.clone())
            .map_err(|e| StartError::new(e.to_string()))?;
        Ok(CoreLinkDeps {
            core: Arc::new(client),
            queue: self.platform.queue.clone(),
            writeback: self.writeback(),
            clock: self.platform.clock.clone(),
            ledger: self.ledger()?,
            settings: core.link.clone(),
            max_receives: self.settings.max_receives,
            seal: self.seal.clone(),
        })
    }

    /// WHMCS provisioning's handler.
    pub fn whmcs(&self) -> Result<WhmcsDeps, StartError> {
        let mut settings = self
            .settings
            .whmcs
            .clone()
            .ok_or_else(|| missing("WHMCS"))?;
        settings.retry = self.platform.retry.clone();
        let client = WhmcsClient::new(settings, self.platform.secrets.clone())
            .map_err(|e| StartError::new(e.to_string()))?;
        Ok(WhmcsDeps {
            whmcs: Arc::new(client),
            ledger: self.ledger()?,
            writeback: self.writeback(),
            mapping: self.mapping(),
            clock: self.platform.clock.clone(),
            lease_fallback: WHMCS_LEASE_FALLBACK,
            max_receives: self.settings.max_receives,
            seal: self.seal.clone(),
        })
    }

    /// The billing sync's runner (the billing-sync queue and its schedule): every AB site, and
    /// the WHMCS services when WHMCS was configured; the site cursors in the ledger.
    pub fn billing_sync(&self) -> Result<crate::billing::run::BillingRun, StartError> {
        let sites = self.maxio()?.sites;
        let whmcs = match self.settings.whmcs {
            Some(_) => Some(self.whmcs()?.whmcs),
            None => None,
        };
        let cursors = crate::billing::sync::LedgerCursors {
            ledger: self.ledger()?,
            clock: self.platform.clock.clone(),
        };
        Ok(crate::billing::run::BillingRun {
            sites,
            whmcs,
            sf_writes: self.salesforce.clone(),
            sf_queries: self.salesforce.clone(),
            sf_upserts: self.salesforce.clone(),
            cursors: Arc::new(cursors),
            mapping: self.mapping(),
            clock: self.platform.clock.clone(),
            queue: self.platform.queue.clone(),
            seal: self.seal.clone(),
            bounds: crate::billing::sync::SyncBounds::default(),
        })
    }

    /// The delayed queue's handler.
    pub fn delayed(&self) -> Result<DelayedDeps, StartError> {
        Ok(DelayedDeps {
            dispatcher: self.dispatcher(),
            ledger: self.ledger()?,
            queue: self.platform.queue.clone(),
            clock: self.platform.clock.clone(),
            writeback: self.writeback(),
            max_receives: self.settings.max_receives,
            seal: self.seal.clone(),
        })
    }

    /// A handler for every queue whose configuration was read: the delayed queue first, then
    /// the chain in order (one Maxio handler serves its three queues).
    pub fn router(&self) -> Result<Router, StartError> {
        let mut router = Router::new();
        if self.platform.ledger.is_some() {
            router = router.with(QueueName::Delayed, Arc::new(self.delayed()?));
        }
        if self.settings.ab.is_some() {
            let maxio: Arc<dyn QueueHandler> = Arc::new(self.maxio()?);
            router = router
                .with(QueueName::MaxioCustomer, maxio.clone())
                .with(QueueName::MaxioPricePoints, maxio.clone())
                .with(QueueName::MaxioSubscription, maxio);
        }
        if self.settings.core.is_some() {
            router = router.with(QueueName::MaxioCoreLink, Arc::new(self.core_link()?));
        }
        if self.settings.whmcs.is_some() {
            router = router.with(QueueName::WhmcsProvision, Arc::new(self.whmcs()?));
        }
        Ok(router)
    }
}
