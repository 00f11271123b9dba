//! OAuth 2.0 for the Salesforce REST API: the client credentials flow and the JWT bearer flow.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use url::Url;

use super::SalesforceError;
use crate::config::{AuthFlow, SalesforceConfig, parse_base_url};
use crate::secrets::Secret;

/// The Salesforce credentials secret (JSON). The client credentials flow needs `client_id` and
/// `client_secret`; the JWT bearer flow needs `client_id`, `username` and `private_key` (PEM).
#[derive(Debug, Clone, Deserialize)]
pub struct SalesforceCredentials {
    pub client_id: String,
    #[serde(default)]
    pub client_secret: Option<Secret>,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub private_key: Option<Secret>,
}

/// A session: the bearer token and the instance every REST call goes to.
#[derive(Debug)]
pub struct AccessToken {
    pub token: Secret,
    pub instance_url: Url,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: Secret,
    instance_url: String,
}

#[derive(Deserialize)]
struct OAuthError {
    error: String,
    #[serde(default)]
    error_description: String,
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    exp: u64,
}

/// How long a JWT assertion is valid. Salesforce allows about three minutes of clock skew.
const ASSERTION_LIFETIME_SECS: u64 = 180;

/// Builds and signs (RS256) the JWT bearer assertion.
pub fn jwt_assertion(
    creds: &SalesforceCredentials,
    audience: &str,
    now: SystemTime,
) -> Result<String, SalesforceError> {
    let username = creds.username.as_deref().ok_or_else(|| {
        SalesforceError::Credentials("the JWT bearer flow needs \"username\" in the secret".into())
    })?;
    let key = creds.private_key.as_ref().ok_or_else(|| {
        SalesforceError::Credentials(
            "the JWT bearer flow needs \"private_key\" in the secret".into(),
        )
    })?;
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(key.expose().as_bytes()).map_err(|_| {
        SalesforceError::Credentials("\"private_key\" is not an RSA private key in PEM form".into())
    })?;
    let now = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let claims = Claims {
        iss: &creds.client_id,
        sub: username,
        aud: audience,
        exp: now + ASSERTION_LIFETIME_SECS,
    };
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
        &claims,
        &key,
    )
    .map_err(|e| SalesforceError::Credentials(format!("could not sign the JWT assertion: {e}")))
}

/// Asks the token endpoint for a session.
pub async fn request_token(
    http: &reqwest::Client,
    config: &SalesforceConfig,
    creds: &SalesforceCredentials,
) -> Result<AccessToken, SalesforceError> {
    let url = config
        .login_url
        .join("/services/oauth2/token")
        .map_err(|e| SalesforceError::InvalidRequest(e.to_string()))?;
    let form: Vec<(&str, String)> = match config.auth_flow {
        AuthFlow::ClientCredentials => {
            let secret = creds.client_secret.as_ref().ok_or_else(|| {
                SalesforceError::Credentials(
                    "the client credentials flow needs \"client_secret\" in the secret".into(),
                )
            })?;
            vec![
                ("grant_type", "client_credentials".to_string()),
                ("client_id", creds.client_id.clone()),
                ("client_secret", secret.expose().to_string()),
            ]
        }
        AuthFlow::JwtBearer => vec![
            (
                "grant_type",
                "urn:ietf:params:oauth:grant-type:jwt-bearer".to_string(),
            ),
            (
                "assertion",
                jwt_assertion(creds, &config.jwt_audience, SystemTime::now())?,
            ),
        ],
    };
    let response = http
        .post(url)
        .form(&form)
        .send()
        .await
        .map_err(|e| SalesforceError::Transport(without_url(&e)))?;
    let status = response.status().as_u16();
    let body = response
        .text()
        .await
        .map_err(|e| SalesforceError::Transport(without_url(&e)))?;
    if !(200..300).contains(&status) {
        let (error, description) = match serde_json::from_str::<OAuthError>(&body) {
            Ok(e) => (e.error, e.error_description),
            Err(_) => (
                "unknown_error".to_string(),
                body.chars().take(200).collect(),
            ),
        };
        return Err(SalesforceError::Auth {
            status,
            error,
            description,
        });
    }
    let token: TokenResponse = serde_json::from_str(&body)
        .map_err(|e| SalesforceError::Decode(format!("token response: {}", strip_position(&e))))?;
    let instance_url = parse_base_url(&token.instance_url).map_err(|why| {
        SalesforceError::Decode(format!("instance_url {:?}: {why}", token.instance_url))
    })?;
    Ok(AccessToken {
        token: token.access_token,
        instance_url,
    })
}

/// A reqwest error's text without the URL (which carries nothing secret here, but is noise).
pub(crate) fn without_url(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_body() || e.is_decode() {
        "response body could not be read"
    } else {
        "request failed"
    };
    let mut text = kind.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

fn strip_position(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.find(" at line ") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEST_KEY: &str = include_str!("../../testdata/jwt-test-key.pem");
    const TEST_PUB: &str = include_str!("../../testdata/jwt-test-key.pub.pem");

    fn creds() -> SalesforceCredentials {
        SalesforceCredentials {
            client_id: "3MVG9-consumer-key".into(),
            client_secret: None,
            username: Some("integration@example.com".into()),
            private_key: Some(Secret::new(TEST_KEY)),
        }
    }

    #[test]
    fn the_assertion_carries_the_documented_claims_and_verifies_with_the_public_key() {
        let now = UNIX_EPOCH + std::time::Duration::from_secs(1_800_000_000);
        let jwt = jwt_assertion(&creds(), "https://login.salesforce.com", now).unwrap();
        let header = jsonwebtoken::decode_header(&jwt).unwrap();
        assert_eq!(header.alg, jsonwebtoken::Algorithm::RS256);
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
        validation.set_audience(&["https://login.salesforce.com"]);
        validation.validate_exp = false;
        let key = jsonwebtoken::DecodingKey::from_rsa_pem(TEST_PUB.as_bytes()).unwrap();
        let data = jsonwebtoken::decode::<serde_json::Value>(&jwt, &key, &validation).unwrap();
        assert_eq!(data.claims["iss"], "3MVG9-consumer-key");
        assert_eq!(data.claims["sub"], "integration@example.com");
        assert_eq!(data.claims["aud"], "https://login.salesforce.com");
        assert_eq!(data.claims["exp"], 1_800_000_180u64);
    }

    #[test]
    fn missing_jwt_material_is_named() {
        let mut c = creds();
        c.username = None;
        let err = jwt_assertion(&c, "a", SystemTime::now()).unwrap_err();
        assert!(err.to_string().contains("\"username\""));
        let mut c = creds();
        c.private_key = Some(Secret::new("not a key"));
        let err = jwt_assertion(&c, "a", SystemTime::now()).unwrap_err();
        assert!(err.to_string().contains("not an RSA private key"));
        assert!(!err.to_string().contains("not a key\""));
    }
}
