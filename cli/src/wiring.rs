//! The commands' wiring: the deployed functions' configuration and constructors
//! (`dealbridge::settings`, `dealbridge::wiring`), read from the process environment, except that
//! nothing here needs the deployed queues: `sync` drains an in-memory queue in this process.

use std::sync::Arc;

use dealbridge::clock::{Clock, SystemClock};
use dealbridge::config::Config;
use dealbridge::ledger::{
    DEFAULT_RETENTION, DynamoDbLedger, InMemoryLedger, Ledger, LedgerSettings, TABLE_VARIABLE,
};
use dealbridge::mapping::Mapping;
use dealbridge::queue::Queue;
use dealbridge::retry::RetryPolicy;
use dealbridge::salesforce::SalesforceClient;
use dealbridge::secrets::{AwsSecretsManager, CachedSecrets, SecretStore};
use dealbridge::settings::{Env, Section, Settings};
use dealbridge::snapshot::SnapshotLoader;
use dealbridge::wiring::{Platform, Wiring};
use dealbridge::writeback::WriteBack;

use crate::error::CliError;

/// A variable of the process environment (after `--env-file`), trimmed; empty counts as unset.
pub fn var(name: &str) -> Option<String> {
    Env::process().var(name)
}

/// One section of the configuration from the process environment, every problem named.
pub fn section<T>(reader: fn(&mut Env<'_>) -> Option<T>) -> Result<T, CliError> {
    let mut env = Env::process();
    let value = reader(&mut env);
    env.finish(value).map_err(CliError::Config)
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
        rehearsal_start()?;
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

    /// The AB budgets' table when `MAXIO_AB_BUDGET_TABLE` names one: the CLI's AB requests then
    /// count against the same budget as the deployed functions'. Else each site's budget is
    /// this process's own.
    pub fn budget_table(
        &self,
        ab: &dealbridge::maxio::settings::AbConfig,
    ) -> Option<dealbridge::budget::SharedBudgets> {
        ab.budget_table.as_deref().map(|table| {
            dealbridge::budget::SharedBudgets::new(Arc::new(
                dealbridge::budget::DynamoDbSlotTable::from_sdk(&self.aws, table),
            ))
        })
    }

    /// The deal loader (one Composite call per deal).
    pub fn loader(&self) -> SnapshotLoader {
        SnapshotLoader::new(self.salesforce.clone(), self.mapping.clone())
    }

    /// Outcomes written back to Salesforce as the handlers write them.
    pub fn writeback(&self, clock: Arc<dyn Clock>) -> Arc<WriteBack> {
        Arc::new(WriteBack::new(
            self.salesforce.clone(),
            self.mapping.clone(),
            clock,
            RetryPolicy::default(),
        ))
    }

    /// The deployed functions' wiring of `sections`, on `queue` and `ledger`. The worker
    /// section is never read: a handler in this process is never told it has a message's last
    /// delivery (giving up for good is left to the deployed queues).
    pub fn wiring(
        &self,
        sections: &[Section],
        queue: Arc<dyn Queue>,
        ledger: Arc<dyn Ledger>,
    ) -> Result<Wiring, CliError> {
        let sections: Vec<Section> = sections
            .iter()
            .copied()
            .filter(|s| *s != Section::Worker)
            .collect();
        let settings = Settings::read(&sections, &mut Env::process())
            .map_err(|e| CliError::Config(e.problems))?;
        let platform = Platform {
            secrets: self.secrets.clone(),
            queue,
            // The run drains its in-memory queue, whose dead-letter lists take what can never be
            // handled.
            dead_letters: None,
            ledger: Some(ledger),
            clock: system_clock(),
            retry: RetryPolicy::default(),
            budget: settings.ab.as_ref().and_then(|ab| self.budget_table(ab)),
        };
        Wiring::new(settings, platform).map_err(|e| CliError::Config(e.problems))
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
    match var(TABLE_VARIABLE) {
        Some(_) => {
            let settings = section(LedgerSettings::read)?;
            let table = settings.table.clone();
            Ok((
                Arc::new(DynamoDbLedger::from_settings(aws, &settings)),
                LedgerChoice::DynamoDb(table),
            ))
        }
        None => Ok((
            Arc::new(InMemoryLedger::new(DEFAULT_RETENTION)),
            LedgerChoice::InMemory,
        )),
    }
}

/// The system clock, shared.
pub fn system_clock() -> Arc<dyn Clock> {
    static CLOCK: std::sync::OnceLock<Arc<dyn Clock>> = std::sync::OnceLock::new();
    CLOCK
        .get_or_init(|| match rehearsal_start() {
            Ok(Some(start)) => Arc::new(dealbridge::clock::ShiftedClock::starting_at(start)),
            _ => Arc::new(SystemClock),
        })
        .clone()
}

/// `DEALBRIDGE_CLOCK` (RFC 3339): `sync`'s clock runs from that instant instead of the system's
/// time. The sandbox sets it to the time its deals are dated around, so that start dates are
/// judged as they are in the local stack. Never set it against a real org.
pub fn rehearsal_start() -> Result<Option<chrono::DateTime<chrono::Utc>>, CliError> {
    match var("DEALBRIDGE_CLOCK") {
        None => Ok(None),
        Some(v) => chrono::DateTime::parse_from_rfc3339(v.trim())
            .map(|t| Some(t.with_timezone(&chrono::Utc)))
            .map_err(|e| {
                CliError::config(format!(
                    "DEALBRIDGE_CLOCK {v:?} is not an RFC 3339 instant: {e}"
                ))
            }),
    }
}
