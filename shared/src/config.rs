//! Configuration, read once per container from the environment.
//!
//! Every problem is reported at once, each naming its variable, so a deployment is fixed in one
//! round rather than one variable at a time.

use std::fmt;
use std::time::Duration;

use url::Url;

use crate::mapping::Mapping;
use crate::settings::Env;

/// How dealbridge logs in to Salesforce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFlow {
    /// OAuth 2.0 client credentials (consumer key and secret; needs a My Domain login URL).
    ClientCredentials,
    /// OAuth 2.0 JWT bearer (consumer key, username and an RSA private key).
    JwtBearer,
}

/// A REST API version such as `62.0`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiVersion(String);

impl ApiVersion {
    pub fn parse(s: &str) -> Option<ApiVersion> {
        let (major, minor) = s.split_once('.')?;
        let ok = !major.is_empty()
            && major.len() <= 3
            && major.chars().all(|c| c.is_ascii_digit())
            && minor == "0";
        ok.then(|| ApiVersion(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `/services/data/vNN.N`
    pub fn data_path(&self) -> String {
        format!("/services/data/v{}", self.0)
    }
}

impl fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone)]
pub struct SalesforceConfig {
    /// `https://login.salesforce.com`, `https://test.salesforce.com` or the org's My Domain.
    pub login_url: Url,
    pub api_version: ApiVersion,
    pub auth_flow: AuthFlow,
    /// Name of the Secrets Manager secret holding the Salesforce credentials (JSON).
    pub secret_name: String,
    /// `aud` of the JWT bearer assertion.
    pub jwt_audience: String,
    pub timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub salesforce: SalesforceConfig,
    /// How long a warm container keeps a secret before reading it again.
    pub secrets_cache_ttl: Duration,
    pub mapping: Mapping,
}

/// Everything wrong with the environment, one line per variable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid configuration:\n  {}", .problems.join("\n  "))]
pub struct ConfigError {
    pub problems: Vec<String>,
}

pub const DEFAULT_API_VERSION: &str = "62.0";

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads configuration through `get` (the environment in production, a map in tests).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let mut env = Env::new(get);
        let config = Config::read(&mut env);
        env.finish(config)
            .map_err(|problems| ConfigError { problems })
    }

    /// Reads the Salesforce connection, the secrets cache and the mapping document.
    pub fn read(env: &mut Env<'_>) -> Option<Config> {
        let login_url = env.url(
            "SALESFORCE_LOGIN_URL",
            "e.g. https://login.salesforce.com or https://<domain>.my.salesforce.com",
            parse_base_url,
        );
        let version_raw = env.or("SALESFORCE_API_VERSION", DEFAULT_API_VERSION);
        let api_version = ApiVersion::parse(&version_raw);
        if api_version.is_none() {
            env.problem(format!(
                "SALESFORCE_API_VERSION {version_raw:?} is malformed: expected a version like {DEFAULT_API_VERSION}"
            ));
        }
        let flow_raw = env.or("SALESFORCE_AUTH_FLOW", "client_credentials");
        let auth_flow = match flow_raw.as_str() {
            "client_credentials" => Some(AuthFlow::ClientCredentials),
            "jwt_bearer" | "jwt" => Some(AuthFlow::JwtBearer),
            other => {
                env.problem(format!(
                    "SALESFORCE_AUTH_FLOW {other:?} is not one of client_credentials, jwt_bearer"
                ));
                None
            }
        };
        let secret_name = env.required(
            "SALESFORCE_SECRET_NAME",
            "the Secrets Manager secret with the Salesforce credentials",
        );
        let jwt_audience = env
            .var("SALESFORCE_JWT_AUDIENCE")
            .or_else(|| login_url.as_ref().map(default_audience));
        let timeout = env.seconds("SALESFORCE_TIMEOUT_SECONDS", 20);
        let secrets_cache_ttl = env.seconds("SECRETS_CACHE_TTL_SECONDS", 900);
        let mapping = match (
            env.var("DEALBRIDGE_MAPPING"),
            env.var("DEALBRIDGE_MAPPING_FILE"),
        ) {
            (Some(_), Some(_)) => {
                env.problem("DEALBRIDGE_MAPPING and DEALBRIDGE_MAPPING_FILE are both set; set one");
                None
            }
            (Some(text), None) => Mapping::from_json(&text)
                .map_err(|e| env.problem(format!("DEALBRIDGE_MAPPING: {e}")))
                .ok(),
            (None, Some(path)) => match std::fs::read_to_string(&path) {
                Ok(text) => Mapping::from_json(&text)
                    .map_err(|e| env.problem(format!("DEALBRIDGE_MAPPING_FILE {path:?}: {e}")))
                    .ok(),
                Err(e) => {
                    env.problem(format!(
                        "DEALBRIDGE_MAPPING_FILE {path:?} cannot be read: {e}"
                    ));
                    None
                }
            },
            (None, None) => Some(Mapping::default()),
        };
        Some(Config {
            salesforce: SalesforceConfig {
                login_url: login_url?,
                api_version: api_version?,
                auth_flow: auth_flow?,
                secret_name: secret_name?,
                jwt_audience: jwt_audience?,
                timeout,
            },
            secrets_cache_ttl,
            mapping: mapping?,
        })
    }
}

pub fn parse_base_url(raw: &str) -> Result<Url, String> {
    let url = parse_api_root(raw)?;
    if url.path() != "/" && !url.path().is_empty() {
        return Err("must not have a path".into());
    }
    Ok(url)
}

/// As [`parse_base_url`], for an API root that has a path (e.g. Maxio Core's
/// `https://s12.saasoptics.com/acme/api/v1.0/`); the result ends in `/`, so relative paths join
/// under it.
pub fn parse_api_root(raw: &str) -> Result<Url, String> {
    let mut url = Url::parse(raw).map_err(|e| e.to_string())?;
    let host = url.host_str().unwrap_or_default().to_string();
    let loopback = host == "localhost" || host == "127.0.0.1" || host == "[::1]";
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        "http" => return Err("must use https".into()),
        other => return Err(format!("unsupported scheme {other:?}")),
    }
    if host.is_empty() {
        return Err("no host".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not contain credentials".into());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("must not have a query or fragment".into());
    }
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

/// `https://test.salesforce.com` for sandboxes, `https://login.salesforce.com` otherwise.
fn default_audience(login_url: &Url) -> String {
    let host = login_url.host_str().unwrap_or_default();
    if host == "test.salesforce.com" || host.ends_with(".sandbox.my.salesforce.com") {
        "https://test.salesforce.com".to_string()
    } else {
        "https://login.salesforce.com".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn a_minimal_environment_gets_the_documented_defaults() {
        let c = Config::from_lookup(lookup(&[
            ("SALESFORCE_LOGIN_URL", "https://acme.my.salesforce.com"),
            ("SALESFORCE_SECRET_NAME", "dealbridge/salesforce"),
        ]))
        .unwrap();
        assert_eq!(c.salesforce.api_version.as_str(), "62.0");
        assert_eq!(c.salesforce.auth_flow, AuthFlow::ClientCredentials);
        assert_eq!(c.salesforce.jwt_audience, "https://login.salesforce.com");
        assert_eq!(c.salesforce.timeout, Duration::from_secs(20));
        assert_eq!(c.secrets_cache_ttl, Duration::from_secs(900));
        assert_eq!(c.mapping, Mapping::default());
    }

    #[test]
    fn every_problem_is_named_at_once() {
        let err = Config::from_lookup(lookup(&[
            ("SALESFORCE_API_VERSION", "62"),
            ("SALESFORCE_AUTH_FLOW", "password"),
            ("SALESFORCE_TIMEOUT_SECONDS", "soon"),
        ]))
        .unwrap_err();
        let text = err.to_string();
        assert_eq!(err.problems.len(), 5, "{text}");
        for needle in [
            "SALESFORCE_LOGIN_URL is not set",
            "SALESFORCE_API_VERSION \"62\" is malformed",
            "SALESFORCE_AUTH_FLOW \"password\"",
            "SALESFORCE_SECRET_NAME is not set",
            "SALESFORCE_TIMEOUT_SECONDS \"soon\"",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in {text}");
        }
    }

    #[test]
    fn login_urls_must_be_https_except_on_loopback() {
        assert!(parse_base_url("http://acme.my.salesforce.com").is_err());
        assert!(parse_base_url("https://user:pw@acme.my.salesforce.com").is_err());
        assert!(parse_base_url("https://acme.my.salesforce.com/services").is_err());
        assert!(parse_base_url("ftp://x").is_err());
        assert!(parse_base_url("http://127.0.0.1:8080").is_ok());
        assert!(parse_base_url("https://test.salesforce.com/").is_ok());
    }

    #[test]
    fn sandboxes_get_the_test_audience() {
        let c = Config::from_lookup(lookup(&[
            ("SALESFORCE_LOGIN_URL", "https://test.salesforce.com"),
            ("SALESFORCE_SECRET_NAME", "s"),
            ("SALESFORCE_AUTH_FLOW", "jwt_bearer"),
        ]))
        .unwrap();
        assert_eq!(c.salesforce.auth_flow, AuthFlow::JwtBearer);
        assert_eq!(c.salesforce.jwt_audience, "https://test.salesforce.com");
    }

    #[test]
    fn a_bad_mapping_document_is_named() {
        let err = Config::from_lookup(lookup(&[
            ("SALESFORCE_LOGIN_URL", "https://acme.my.salesforce.com"),
            ("SALESFORCE_SECRET_NAME", "s"),
            (
                "DEALBRIDGE_MAPPING",
                "{\"schedules\":\"cpq\",\"order\":{\"whmcs_order_id\":\"1bad\"}}",
            ),
        ]))
        .unwrap_err();
        assert_eq!(err.problems.len(), 1);
        assert!(err.problems[0].starts_with("DEALBRIDGE_MAPPING: mapping order.whmcs_order_id"));
    }
}
