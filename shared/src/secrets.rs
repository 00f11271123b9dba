//! Secrets: a redacting wrapper, a store trait with the AWS Secrets Manager and in-memory
//! implementations, and a per-container cache.
//!
//! Secrets are JSON documents (Secrets Manager's `SecretString`). Their values never reach a log:
//! [`Secret`] prints as `[redacted]` in `Debug` and `Display`, and errors name the secret, never its
//! content.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde::de::DeserializeOwned;

/// A secret value. Only [`Secret::expose`] reveals it.
#[derive(Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The secret text, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum SecretsError {
    #[error("secret {0:?} does not exist")]
    NotFound(String),
    #[error("secret {name:?} could not be read: {reason}")]
    Unavailable { name: String, reason: String },
    #[error("secret {name:?} is not in the expected form: {reason}")]
    Malformed { name: String, reason: String },
}

impl SecretsError {
    /// A store that could not answer may answer later; a missing or malformed secret needs a person.
    pub fn is_retryable(&self) -> bool {
        matches!(self, SecretsError::Unavailable { .. })
    }
}

/// Where secret strings come from.
#[async_trait]
pub trait SecretStore: Send + Sync {
    /// The raw secret string named `name`.
    async fn secret_string(&self, name: &str) -> Result<Secret, SecretsError>;
}

/// Parses a JSON secret into `T`. A parse failure reports the field serde complained about but never
/// the secret's text.
pub fn parse_json_secret<T: DeserializeOwned>(
    name: &str,
    secret: &Secret,
) -> Result<T, SecretsError> {
    serde_json::from_str(secret.expose()).map_err(|e| SecretsError::Malformed {
        name: name.to_string(),
        reason: describe_json_error(&e),
    })
}

fn describe_json_error(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    match e.classify() {
        Category::Syntax | Category::Eof | Category::Io => {
            format!("not valid JSON (line {}, column {})", e.line(), e.column())
        }
        // serde's data errors name fields ("missing field `client_id`") and types, not values,
        // except for unknown-variant messages, which never apply to our string-only secrets.
        Category::Data => {
            let text = e.to_string();
            match text.find(" at line ") {
                Some(i) => text[..i].to_string(),
                None => text,
            }
        }
    }
}

/// AWS Secrets Manager.
pub struct AwsSecretsManager {
    client: aws_sdk_secretsmanager::Client,
}

impl AwsSecretsManager {
    pub fn new(client: aws_sdk_secretsmanager::Client) -> Self {
        AwsSecretsManager { client }
    }
}

#[async_trait]
impl SecretStore for AwsSecretsManager {
    async fn secret_string(&self, name: &str) -> Result<Secret, SecretsError> {
        use aws_sdk_secretsmanager::error::SdkError;
        use aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueError;
        let out = self
            .client
            .get_secret_value()
            .secret_id(name)
            .send()
            .await
            .map_err(|e| match &e {
                SdkError::ServiceError(se)
                    if matches!(se.err(), GetSecretValueError::ResourceNotFoundException(_)) =>
                {
                    SecretsError::NotFound(name.to_string())
                }
                SdkError::ServiceError(se) => SecretsError::Unavailable {
                    name: name.to_string(),
                    reason: se
                        .err()
                        .meta()
                        .code()
                        .unwrap_or("service error")
                        .to_string(),
                },
                other => SecretsError::Unavailable {
                    name: name.to_string(),
                    reason: aws_sdk_secretsmanager::error::DisplayErrorContext(other).to_string(),
                },
            })?;
        match out.secret_string() {
            Some(s) => Ok(Secret::new(s)),
            None => Err(SecretsError::Malformed {
                name: name.to_string(),
                reason: "it has no SecretString (binary secrets are not supported)".to_string(),
            }),
        }
    }
}

/// Secrets held in memory, for the local runner and tests.
#[derive(Default, Clone)]
pub struct InMemorySecrets {
    values: Arc<Mutex<HashMap<String, Secret>>>,
}

impl InMemorySecrets {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn insert(&self, name: impl Into<String>, value: impl Into<String>) {
        if let Ok(mut map) = self.values.lock() {
            map.insert(name.into(), Secret::new(value));
        }
    }
}

#[async_trait]
impl SecretStore for InMemorySecrets {
    async fn secret_string(&self, name: &str) -> Result<Secret, SecretsError> {
        let map = self.values.lock().map_err(|_| SecretsError::Unavailable {
            name: name.to_string(),
            reason: "in-memory store poisoned".to_string(),
        })?;
        map.get(name)
            .cloned()
            .ok_or_else(|| SecretsError::NotFound(name.to_string()))
    }
}

/// Caches another store's answers for `ttl`, so a warm container reads each secret once per TTL.
pub struct CachedSecrets {
    inner: Arc<dyn SecretStore>,
    ttl: Duration,
    cache: Mutex<HashMap<String, (Instant, Secret)>>,
}

impl CachedSecrets {
    pub fn new(inner: Arc<dyn SecretStore>, ttl: Duration) -> Self {
        CachedSecrets {
            inner,
            ttl,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Forgets a cached value, e.g. after the credentials in it were refused.
    pub fn invalidate(&self, name: &str) {
        if let Ok(mut cache) = self.cache.lock() {
            cache.remove(name);
        }
    }

    fn cached(&self, name: &str) -> Option<Secret> {
        let cache = self.cache.lock().ok()?;
        let (at, value) = cache.get(name)?;
        (at.elapsed() < self.ttl).then(|| value.clone())
    }
}

#[async_trait]
impl SecretStore for CachedSecrets {
    async fn secret_string(&self, name: &str) -> Result<Secret, SecretsError> {
        if let Some(hit) = self.cached(name) {
            return Ok(hit);
        }
        let value = self.inner.secret_string(name).await?;
        if let Ok(mut cache) = self.cache.lock() {
            cache.insert(name.to_string(), (Instant::now(), value.clone()));
        }
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn secrets_redact_themselves() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s}"), "[redacted]");
        assert_eq!(format!("{s:?}"), "Secret([redacted])");
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Creds {
            client_id: String,
            client_secret: Secret,
        }
        let c: Creds = parse_json_secret(
            "sf",
            &Secret::new(r#"{"client_id":"abc","client_secret":"hunter2"}"#),
        )
        .unwrap();
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    #[test]
    fn a_malformed_secret_is_described_without_its_content() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Creds {
            client_id: String,
            client_secret: Secret,
        }
        let err = parse_json_secret::<Creds>("sf", &Secret::new(r#"{"client_id":"topsecret"}"#))
            .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("missing field `client_secret`"), "{text}");
        assert!(!text.contains("topsecret"));
        let err = parse_json_secret::<Creds>("sf", &Secret::new("topsecret{")).unwrap_err();
        assert!(err.to_string().contains("not valid JSON"));
        assert!(!err.to_string().contains("topsecret"));
    }

    struct Counting {
        calls: AtomicUsize,
    }

    #[async_trait]
    impl SecretStore for Counting {
        async fn secret_string(&self, _name: &str) -> Result<Secret, SecretsError> {
            let n = self.calls.fetch_add(1, Ordering::SeqCst);
            Ok(Secret::new(format!("v{n}")))
        }
    }

    #[tokio::test]
    async fn the_cache_reads_each_secret_once_per_ttl() {
        let inner = Arc::new(Counting {
            calls: AtomicUsize::new(0),
        });
        let cache = CachedSecrets::new(inner.clone(), Duration::from_secs(600));
        assert_eq!(cache.secret_string("a").await.unwrap().expose(), "v0");
        assert_eq!(cache.secret_string("a").await.unwrap().expose(), "v0");
        assert_eq!(cache.secret_string("b").await.unwrap().expose(), "v1");
        assert_eq!(inner.calls.load(Ordering::SeqCst), 2);
        cache.invalidate("a");
        assert_eq!(cache.secret_string("a").await.unwrap().expose(), "v2");
    }

    #[tokio::test]
    async fn a_zero_ttl_cache_always_asks_again() {
        let inner = Arc::new(Counting {
            calls: AtomicUsize::new(0),
        });
        let cache = CachedSecrets::new(inner.clone(), Duration::ZERO);
        cache.secret_string("a").await.unwrap();
        cache.secret_string("a").await.unwrap();
        assert_eq!(inner.calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn in_memory_secrets_report_missing_names() {
        let store = InMemorySecrets::new();
        store.insert("x", "1");
        assert_eq!(store.secret_string("x").await.unwrap().expose(), "1");
        assert!(matches!(
            store.secret_string("y").await,
            Err(SecretsError::NotFound(n)) if n == "y"
        ));
    }
}
