//! The clients the commands need, built from the environment as the deployed functions build
//! them (`dealbridge::services`, the workers' `deps_from_env`), except that nothing here needs the
//! deployed queues: `sync` drains an in-memory queue in this process.

use std::sync::Arc;
use std::time::Duration;

use dealbridge::clock::{Clock, SystemClock};
use dealbridge::config::Config;
use dealbridge::ledger::{DEFAULT_RETENTION, DynamoDbLedger, InMemoryLedger, Ledger};
use dealbridge::mapping::Mapping;
use dealbridge::maxio::ab::AbClient;
use dealbridge::maxio::core::CoreClient;
use dealbridge::maxio::core_link::{CoreLinkDeps, core_config_from_lookup, core_link_enabled};
use dealbridge::maxio::steps::MaxioDeps;
use dealbridge::maxio::worker::ab_config_from_lookup;
use dealbridge::queue::Queue;
use dealbridge::retry::RetryPolicy;
use dealbridge::salesforce::SalesforceClient;
use dealbridge::secrets::{AwsSecretsManager, CachedSecrets, SecretStore};
use dealbridge::snapshot::SnapshotLoader;
use dealbridge::whmcs::provision::WhmcsDeps;
use dealbridge::whmcs::worker::whmcs_config_from_lookup;
use dealbridge::whmcs::{WhmcsClient, WhmcsClientSettings};
use dealbridge::writeback::WriteBack;

use crate::error::CliError;

/// A variable of the process environment (after `--env-file`), trimmed; empty counts as unset.
pub fn var(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// The AWS configuration: the default chain (`AWS_REGION`, `AWS_PROFILE`, ...), with
/// `AWS_ENDPOINT_URL` honoured (moto).
pub async fn aws() -> aws_config::SdkConfig {
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
}

/// Configuration, AWS, secrets and the Salesforce client.
pub struct Connected {
    pub config: Config,
    pub aws: aws_config::SdkConfig,
    pub secrets: Arc<dyn SecretStore>,
    pub salesforce: Arc<SalesforceClient>,
    pub mapping: Arc<Mapping>,
}

impl Connected {
    /// Reads the configuration (every problem named) and builds the clients. Nothing is sent yet.
    pub async fn from_env() -> Result<Connected, CliError> {
        let config = Config::from_env().map_err(|e| CliError::Config(e.problems))?;
        let aws = aws().await;
        let secrets: Arc<dyn SecretStore> = Arc::new(CachedSecrets::new(
            Arc::new(AwsSecretsManager::new(aws_sdk_secretsmanager::Client::new(
                &aws,
            ))),
            config.secrets_cache_ttl,
        ));
        let salesforce = Arc::new(
            SalesforceClient::new(config.salesforce.clone(), secrets.clone())
                .map_err(|e| CliError::config(e.to_string()))?,
        );
        let mapping = Arc::new(config.mapping.clone());
        Ok(Connected {
            config,
            aws,
            secrets,
            salesforce,
            mapping,
        })
    }

    /// The deal loader (one Composite call per deal).
    pub fn loader(&self) -> SnapshotLoader {
        SnapshotLoader::new(self.salesforce.clone(), self.mapping.clone())
    }

    /// Outcomes written back to Salesforce as the workers write them.
    pub fn writeback(&self, clock: Arc<dyn Clock>) -> Arc<WriteBack> {
        Arc::new(WriteBack::new(
            self.salesforce.clone(),
            self.mapping.clone(),
            clock,
            RetryPolicy::default(),
        ))
    }
}

/// Which ledger a run uses.
pub enum LedgerChoice {
    /// `LEDGER_TABLE_NAME`'s DynamoDB table: shared with the deployed functions.
    DynamoDb(String),
    /// No table configured: in memory, forgotten when the command ends.
    InMemory,
}

/// The ledger: DynamoDB when `LEDGER_TABLE_NAME` is set, else in memory.
pub fn ledger(aws: &aws_config::SdkConfig) -> Result<(Arc<dyn Ledger>, LedgerChoice), CliError> {
    match var(dealbridge::ledger::TABLE_VARIABLE) {
        Some(table) => {
            let ledger = DynamoDbLedger::from_env(aws).map_err(|e| CliError::config(e.message))?;
            Ok((Arc::new(ledger), LedgerChoice::DynamoDb(table)))
        }
        None => Ok((
            Arc::new(InMemoryLedger::new(DEFAULT_RETENTION)),
            LedgerChoice::InMemory,
        )),
    }
}

/// What the in-process workers share.
pub struct WorkerBase<'a> {
    pub connected: &'a Connected,
    pub queue: Arc<dyn Queue>,
    pub ledger: Arc<dyn Ledger>,
    pub clock: Arc<dyn Clock>,
    /// The deliveries a worker believes it has: high, so no in-process attempt is ever taken for
    /// a message's last delivery (giving up is left to the deployed queues).
    pub max_receives: u32,
}

/// The Maxio workers' dependencies (`maxio::worker::deps_from_env`, on the given queue).
pub fn maxio_deps(base: &WorkerBase<'_>) -> Result<MaxioDeps, CliError> {
    let (client, settings) = ab_config_from_lookup(var).map_err(CliError::Config)?;
    let ab = AbClient::new(client, base.connected.secrets.clone())
        .map_err(|e| CliError::config(e.to_string()))?;
    Ok(MaxioDeps {
        ab: Arc::new(ab),
        queue: base.queue.clone(),
        writeback: base.connected.writeback(base.clock.clone()),
        mapping: base.connected.mapping.clone(),
        settings,
        max_receives: base.max_receives,
        ledger: base.ledger.clone(),
        clock: base.clock.clone(),
        core_link: core_link_enabled(var),
    })
}

/// The Core link worker's dependencies (`maxio::core_link::deps_from_env`, on the given queue).
pub fn core_link_deps(base: &WorkerBase<'_>) -> Result<CoreLinkDeps, CliError> {
    let (client, settings) = core_config_from_lookup(var).map_err(CliError::Config)?;
    let core = CoreClient::new(client, base.connected.secrets.clone())
        .map_err(|e| CliError::config(e.to_string()))?;
    Ok(CoreLinkDeps {
        core: Arc::new(core),
        queue: base.queue.clone(),
        writeback: base.connected.writeback(base.clock.clone()),
        clock: base.clock.clone(),
        ledger: base.ledger.clone(),
        settings,
        max_receives: base.max_receives,
    })
}

/// The WHMCS client settings (`WHMCS_BASE_URL`, ...), every problem named.
pub fn whmcs_settings() -> Result<WhmcsClientSettings, CliError> {
    whmcs_config_from_lookup(var).map_err(CliError::Config)
}

/// The WHMCS worker's dependencies (`whmcs::worker::deps_from_env`, with the given ledger).
pub fn whmcs_deps(base: &WorkerBase<'_>) -> Result<WhmcsDeps, CliError> {
    let whmcs = WhmcsClient::new(whmcs_settings()?, base.connected.secrets.clone())
        .map_err(|e| CliError::config(e.to_string()))?;
    Ok(WhmcsDeps {
        whmcs: Arc::new(whmcs),
        ledger: base.ledger.clone(),
        writeback: base.connected.writeback(base.clock.clone()),
        mapping: base.connected.mapping.clone(),
        clock: base.clock.clone(),
        lease_fallback: Duration::from_secs(120),
        max_receives: base.max_receives,
    })
}

/// The system clock, shared.
pub fn system_clock() -> Arc<dyn Clock> {
    Arc::new(SystemClock)
}
