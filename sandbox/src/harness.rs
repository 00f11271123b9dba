//! Wiring the real dealbridge clients to the sandbox, the way a deployment wires them to real
//! endpoints: through `Config` and a secret store.

use std::sync::Arc;

use dealbridge::config::{AuthFlow, Config};
use dealbridge::salesforce::SalesforceClient;
use dealbridge::secrets::InMemorySecrets;
use dealbridge::snapshot::SnapshotLoader;

use crate::salesforce::{OrgSettings, SalesforceSandbox, test_keys_dir};

/// The name the Salesforce credentials secret has in the sandbox setups.
pub const SALESFORCE_SECRET: &str = "dealbridge/salesforce";

/// The environment a function would get to talk to `sandbox`.
pub fn environment(sandbox: &SalesforceSandbox, flow: AuthFlow) -> Vec<(String, String)> {
    let flow = match flow {
        AuthFlow::ClientCredentials => "client_credentials",
        AuthFlow::JwtBearer => "jwt_bearer",
    };
    vec![
        ("SALESFORCE_LOGIN_URL".into(), sandbox.url().to_string()),
        ("SALESFORCE_AUTH_FLOW".into(), flow.into()),
        ("SALESFORCE_SECRET_NAME".into(), SALESFORCE_SECRET.into()),
        ("SALESFORCE_API_VERSION".into(), "62.0".into()),
    ]
}

/// The credentials secret (JSON) the sandbox org accepts for both flows.
pub fn credentials_secret(settings: &OrgSettings) -> String {
    let key = std::fs::read_to_string(test_keys_dir().join("jwt-test-key.pem")).unwrap_or_default();
    serde_json::json!({
        "client_id": settings.client_id,
        "client_secret": settings.client_secret,
        "username": settings.username,
        "private_key": key,
    })
    .to_string()
}

/// Configuration read from `environment(...)` plus `extra` variables.
pub fn config(
    sandbox: &SalesforceSandbox,
    flow: AuthFlow,
    extra: &[(&str, &str)],
) -> Result<Config, dealbridge::config::ConfigError> {
    let mut env = environment(sandbox, flow);
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    Config::from_lookup(|k| {
        env.iter()
            .rev()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
    })
}

/// A Salesforce client and snapshot loader for `sandbox`, with the secret in memory.
pub struct Connected {
    pub config: Config,
    pub secrets: InMemorySecrets,
    pub client: Arc<SalesforceClient>,
    pub loader: SnapshotLoader,
}

pub fn connect(
    sandbox: &SalesforceSandbox,
    flow: AuthFlow,
    extra: &[(&str, &str)],
) -> anyhow::Result<Connected> {
    let config = config(sandbox, flow, extra)?;
    let secrets = InMemorySecrets::new();
    secrets.insert(SALESFORCE_SECRET, credentials_secret(&sandbox.settings()));
    let client = Arc::new(SalesforceClient::new(
        config.salesforce.clone(),
        Arc::new(secrets.clone()),
    )?);
    let loader = SnapshotLoader::new(client.clone(), Arc::new(config.mapping.clone()));
    Ok(Connected {
        config,
        secrets,
        client,
        loader,
    })
}
