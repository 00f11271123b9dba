//! The Secrets Manager adapter against moto's server, and a Salesforce login whose credentials come
//! from it, as in a deployment.

use std::sync::Arc;
use std::time::Duration;

use dealbridge::config::AuthFlow;
use dealbridge::salesforce::SalesforceClient;
use dealbridge::secrets::{AwsSecretsManager, CachedSecrets, SecretStore, SecretsError};
use dealbridge::snapshot::{DealRef, LoadOutcome, SnapshotLoader};
use dealbridge_sandbox::harness::{SALESFORCE_SECRET, config, credentials_secret};
use dealbridge_sandbox::moto::Moto;
use dealbridge_sandbox::salesforce::{OrgSettings, SalesforceSandbox, seeded_org};

#[tokio::test]
async fn secrets_are_read_from_secrets_manager_and_missing_ones_are_named() {
    let moto = Moto::start().await.expect("moto starts");
    let sdk = aws_sdk_secretsmanager::Client::new(&moto.sdk_config().await);
    sdk.create_secret()
        .name("dealbridge/test")
        .secret_string(r#"{"client_id":"abc","client_secret":"xyz"}"#)
        .send()
        .await
        .unwrap();
    sdk.create_secret()
        .name("dealbridge/binary")
        .secret_binary(aws_sdk_secretsmanager::primitives::Blob::new(vec![1, 2, 3]))
        .send()
        .await
        .unwrap();
    let store = AwsSecretsManager::new(sdk.clone());

    let secret = store.secret_string("dealbridge/test").await.unwrap();
    assert_eq!(
        secret.expose(),
        r#"{"client_id":"abc","client_secret":"xyz"}"#
    );
    assert_eq!(format!("{secret:?}"), "Secret([redacted])");

    let missing = store.secret_string("dealbridge/nope").await.unwrap_err();
    assert!(
        matches!(&missing, SecretsError::NotFound(n) if n == "dealbridge/nope"),
        "{missing}"
    );
    assert!(!missing.is_retryable());

    let binary = store.secret_string("dealbridge/binary").await.unwrap_err();
    assert!(matches!(binary, SecretsError::Malformed { .. }), "{binary}");
}

#[tokio::test]
async fn a_cached_secret_survives_rotation_until_it_is_invalidated() {
    let moto = Moto::start().await.expect("moto starts");
    let sdk = aws_sdk_secretsmanager::Client::new(&moto.sdk_config().await);
    sdk.create_secret()
        .name("s")
        .secret_string("v1")
        .send()
        .await
        .unwrap();
    let cache = CachedSecrets::new(
        Arc::new(AwsSecretsManager::new(sdk.clone())),
        Duration::from_secs(900),
    );
    assert_eq!(cache.secret_string("s").await.unwrap().expose(), "v1");
    sdk.put_secret_value()
        .secret_id("s")
        .secret_string("v2")
        .send()
        .await
        .unwrap();
    assert_eq!(
        cache.secret_string("s").await.unwrap().expose(),
        "v1",
        "served from the container cache"
    );
    cache.invalidate("s");
    assert_eq!(cache.secret_string("s").await.unwrap().expose(), "v2");
}

#[tokio::test]
async fn a_deal_loads_with_credentials_from_secrets_manager() {
    let moto = Moto::start().await.expect("moto starts");
    let sf = SalesforceSandbox::start(OrgSettings::default(), seeded_org().unwrap())
        .await
        .unwrap();
    let sdk = aws_sdk_secretsmanager::Client::new(&moto.sdk_config().await);
    sdk.create_secret()
        .name(SALESFORCE_SECRET)
        .secret_string(credentials_secret(&sf.settings()))
        .send()
        .await
        .unwrap();
    let cfg = config(&sf, AuthFlow::JwtBearer, &[]).unwrap();
    let secrets = Arc::new(CachedSecrets::new(
        Arc::new(AwsSecretsManager::new(sdk)),
        cfg.secrets_cache_ttl,
    ));
    let client = Arc::new(SalesforceClient::new(cfg.salesforce.clone(), secrets).unwrap());
    let loader = SnapshotLoader::new(client, Arc::new(cfg.mapping.clone()));
    let deal = DealRef::Opportunity(sf.id_of("VolumeOpportunity").unwrap().parse().unwrap());
    assert!(matches!(
        loader.load(&deal).await.unwrap(),
        LoadOutcome::Loaded(_)
    ));
}
