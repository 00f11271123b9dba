//! The whmcs-provision function's configuration and wiring.

use std::sync::Arc;
use std::time::Duration;

use super::client::{WhmcsClient, WhmcsClientSettings};
use super::provision::WhmcsDeps;
use crate::clock::{Clock, SystemClock};
use crate::config::parse_api_root;
use crate::ledger::DynamoDbLedger;
use crate::retry::RetryPolicy;
use crate::services::{Services, StartError};
use crate::worker::max_receives_from_env;
use crate::writeback::WriteBack;

/// The WHMCS client settings from the environment, every problem named.
pub fn whmcs_config_from_lookup(
    get: impl Fn(&str) -> Option<String>,
) -> Result<WhmcsClientSettings, Vec<String>> {
    let var = |k: &str| {
        get(k)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let mut problems = Vec::new();
    let base_url = match var("WHMCS_BASE_URL") {
        None => {
            problems.push(
                "WHMCS_BASE_URL is not set (the WHMCS installation, e.g. https://billing.example.com/)"
                    .to_string(),
            );
            None
        }
        Some(raw) => parse_api_root(&raw)
            .map_err(|why| problems.push(format!("WHMCS_BASE_URL {raw:?} is malformed: {why}")))
            .ok(),
    };
    let timeout = match var("WHMCS_TIMEOUT_SECONDS") {
        None => Duration::from_secs(30),
        Some(raw) => raw.parse().map(Duration::from_secs).unwrap_or_else(|_| {
            problems.push(format!(
                "WHMCS_TIMEOUT_SECONDS {raw:?} is not a whole number of seconds"
            ));
            Duration::from_secs(30)
        }),
    };
    let Some(base_url) = base_url.filter(|_| problems.is_empty()) else {
        return Err(problems);
    };
    Ok(WhmcsClientSettings {
        base_url,
        secret_name: var("WHMCS_SECRET_NAME").unwrap_or_else(|| "dealbridge/whmcs".into()),
        timeout,
        retry: RetryPolicy::default(),
    })
}

/// Builds the worker's dependencies from the environment.
pub async fn deps_from_env() -> Result<WhmcsDeps, StartError> {
    let services = Services::from_env().await?;
    let mut problems = Vec::new();
    let settings = whmcs_config_from_lookup(|k| std::env::var(k).ok())
        .map_err(|p| problems.extend(p))
        .ok();
    let ledger = DynamoDbLedger::from_env(&services.aws)
        .map_err(|e| problems.push(e.to_string()))
        .ok();
    let (Some(settings), Some(ledger)) = (settings, ledger) else {
        return Err(StartError { problems });
    };
    let whmcs = WhmcsClient::new(settings, services.secrets.clone()).map_err(|e| StartError {
        problems: vec![e.to_string()],
    })?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let mapping = Arc::new(services.config.mapping.clone());
    Ok(WhmcsDeps {
        whmcs: Arc::new(whmcs),
        ledger: Arc::new(ledger),
        writeback: Arc::new(WriteBack::new(
            services.salesforce.clone(),
            mapping.clone(),
            clock.clone(),
            RetryPolicy::default(),
        )),
        mapping,
        clock,
        lease_fallback: Duration::from_secs(120),
        max_receives: max_receives_from_env(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_whmcs_configuration_is_read_and_problems_named() {
        let s = whmcs_config_from_lookup(|k| match k {
            "WHMCS_BASE_URL" => Some("https://billing.example.com/whmcs".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(s.base_url.as_str(), "https://billing.example.com/whmcs/");
        assert_eq!(s.secret_name, "dealbridge/whmcs");
        let problems = whmcs_config_from_lookup(|k| match k {
            "WHMCS_BASE_URL" => Some("http://billing.example.com".into()),
            "WHMCS_TIMEOUT_SECONDS" => Some("slow".into()),
            _ => None,
        })
        .unwrap_err();
        assert_eq!(problems.len(), 2, "{problems:?}");
    }
}
