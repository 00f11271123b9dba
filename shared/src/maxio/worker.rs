//! The SQS entry point shared by the three Maxio workers, and their configuration.

use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use tracing::Instrument;

use super::ab::{AbClient, AbClientSettings};
use super::prepare::AbSettings;
use super::steps::MaxioDeps;
use crate::clock::SystemClock;
use crate::config::parse_base_url;
use crate::envelope::Envelope;
use crate::ledger::DynamoDbLedger;
use crate::queue::QueueName;
use crate::retry::RetryPolicy;
use crate::services::{Services, StartError};
use crate::worker::{Handled, max_receives_from_env, receive_count, run_fifo_batch};
use crate::writeback::WriteBack;

/// Handles a batch from `queue`, in order, with partial batch failures.
pub async fn handle_batch(
    event: &SqsEvent,
    deps: &MaxioDeps,
    queue: QueueName,
) -> SqsBatchResponse {
    run_fifo_batch(event, |message| async move {
        let Some(body) = message.body.as_deref() else {
            return Handled::Retry("the message has no body".into());
        };
        match Envelope::parse(body) {
            Ok(envelope) if envelope.step.queue() == queue => {
                let span = envelope.span();
                deps.handle(envelope, receive_count(&message))
                    .instrument(span)
                    .await
            }
            Ok(envelope) => Handled::Retry(format!(
                "a {} message does not belong on the {queue} queue",
                envelope.step.name()
            )),
            Err(e) => Handled::Retry(e.to_string()),
        }
    })
    .await
}

/// The Maxio AB settings from the environment, every problem named.
pub fn ab_config_from_lookup(
    get: impl Fn(&str) -> Option<String>,
) -> Result<(AbClientSettings, AbSettings), Vec<String>> {
    let var = |k: &str| {
        get(k)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let mut problems = Vec::new();
    let base_url = match var("MAXIO_AB_BASE_URL") {
        None => {
            problems.push(
                "MAXIO_AB_BASE_URL is not set (https://<subdomain>.chargify.com)".to_string(),
            );
            None
        }
        Some(raw) => parse_base_url(&raw)
            .map_err(|why| problems.push(format!("MAXIO_AB_BASE_URL {raw:?} is malformed: {why}")))
            .ok(),
    };
    let timeout = match var("MAXIO_AB_TIMEOUT_SECONDS") {
        None => Duration::from_secs(15),
        Some(raw) => raw.parse().map(Duration::from_secs).unwrap_or_else(|_| {
            problems.push(format!(
                "MAXIO_AB_TIMEOUT_SECONDS {raw:?} is not a whole number of seconds"
            ));
            Duration::from_secs(15)
        }),
    };
    let method = var("MAXIO_AB_PAYMENT_COLLECTION_METHOD").unwrap_or_else(|| "remittance".into());
    if !["automatic", "remittance", "prepaid", "invoice"].contains(&method.as_str()) {
        problems.push(format!(
            "MAXIO_AB_PAYMENT_COLLECTION_METHOD {method:?} is not one of automatic, remittance, prepaid, invoice"
        ));
    }
    let Some(base_url) = base_url.filter(|_| problems.is_empty()) else {
        return Err(problems);
    };
    Ok((
        AbClientSettings {
            base_url,
            secret_name: var("MAXIO_AB_SECRET_NAME")
                .unwrap_or_else(|| "dealbridge/maxio-ab".into()),
            timeout,
            retry: RetryPolicy::default(),
            max_concurrent_requests: super::ab::MAX_CONCURRENT_REQUESTS,
        },
        AbSettings {
            product_handle: var("MAXIO_AB_PRODUCT_HANDLE")
                .unwrap_or_else(|| "monthly-usage".into()),
            payment_collection_method: method,
        },
    ))
}

/// Builds a Maxio worker's dependencies from the environment.
pub async fn deps_from_env() -> Result<MaxioDeps, StartError> {
    let services = Services::from_env().await?;
    let (client, settings) = ab_config_from_lookup(|k| std::env::var(k).ok())
        .map_err(|problems| StartError { problems })?;
    let ab = AbClient::new(client, services.secrets.clone()).map_err(|e| StartError {
        problems: vec![e.to_string()],
    })?;
    let mapping = Arc::new(services.config.mapping.clone());
    let ledger = DynamoDbLedger::from_env(&services.aws).map_err(|e| StartError {
        problems: vec![e.to_string()],
    })?;
    Ok(MaxioDeps {
        ledger: Arc::new(ledger),
        clock: Arc::new(SystemClock),
        ab: Arc::new(ab),
        queue: services.queue.clone(),
        writeback: Arc::new(WriteBack::new(
            services.salesforce.clone(),
            mapping.clone(),
            Arc::new(SystemClock),
            RetryPolicy::default(),
        )),
        mapping,
        settings,
        max_receives: max_receives_from_env(),
        core_link: super::core_link::core_link_enabled(|k| std::env::var(k).ok()),
    })
}
