//! Wiring for the deployed functions: configuration, AWS clients, the cached secret store, the
//! Salesforce client, the queues and the dispatcher, built once per container before the runtime
//! loop starts.

use std::sync::Arc;

use crate::clock::SystemClock;
use crate::config::Config;
use crate::dispatch::{Dispatcher, RedispatchPolicy};
use crate::queue::{Queue, QueueUrls, SqsQueue};
use crate::salesforce::SalesforceClient;
use crate::secrets::{AwsSecretsManager, CachedSecrets, SecretStore};
use crate::snapshot::SnapshotLoader;

pub struct Services {
    pub config: Config,
    pub secrets: Arc<dyn SecretStore>,
    pub queue: Arc<dyn Queue>,
    pub salesforce: Arc<SalesforceClient>,
    /// The AWS configuration the clients were built from (for other AWS clients).
    pub aws: aws_config::SdkConfig,
}

#[derive(Debug, thiserror::Error)]
#[error("the function cannot start:\n  {}", .problems.join("\n  "))]
pub struct StartError {
    pub problems: Vec<String>,
}

impl Services {
    /// Reads the environment and builds every client; reports every configuration problem at once.
    pub async fn from_env() -> Result<Services, StartError> {
        let get = |k: &str| std::env::var(k).ok();
        let mut problems = Vec::new();
        let config = Config::from_lookup(get)
            .map_err(|e| problems.extend(e.problems))
            .ok();
        let urls = QueueUrls::from_lookup(get)
            .map_err(|p| problems.extend(p))
            .ok();
        let (Some(config), Some(urls)) = (config, urls) else {
            return Err(StartError { problems });
        };
        let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        let secrets: Arc<dyn SecretStore> = Arc::new(CachedSecrets::new(
            Arc::new(AwsSecretsManager::new(aws_sdk_secretsmanager::Client::new(
                &aws,
            ))),
            config.secrets_cache_ttl,
        ));
        let queue: Arc<dyn Queue> = Arc::new(SqsQueue::new(aws_sdk_sqs::Client::new(&aws), urls));
        let salesforce = Arc::new(
            SalesforceClient::new(config.salesforce.clone(), secrets.clone()).map_err(|e| {
                StartError {
                    problems: vec![e.to_string()],
                }
            })?,
        );
        Ok(Services {
            config,
            secrets,
            queue,
            salesforce,
            aws,
        })
    }

    pub fn dispatcher(&self) -> Dispatcher {
        Dispatcher::new(
            SnapshotLoader::new(
                self.salesforce.clone(),
                Arc::new(self.config.mapping.clone()),
            ),
            self.queue.clone(),
            Arc::new(self.config.mapping.clone()),
            RedispatchPolicy::default(),
            Arc::new(SystemClock),
        )
    }
}
