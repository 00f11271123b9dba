//! `POST /services/oauth2/token`: the client credentials and JWT bearer flows, with Salesforce's
//! OAuth error bodies (`{"error","error_description"}`, HTTP 400).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::State as AxState;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::json;

use super::{State, lock};

fn oauth_error(error: &str, description: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"error": error, "error_description": description})),
    )
        .into_response()
}

pub(super) async fn token(
    AxState(state): AxState<Arc<State>>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !content_type.starts_with("application/x-www-form-urlencoded") {
        return oauth_error(
            "invalid_request",
            "must use application/x-www-form-urlencoded",
        );
    }
    let form: HashMap<String, String> = url::form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect();
    let settings = state.settings();
    match form.get("grant_type").map(String::as_str) {
        Some("client_credentials") => {
            let (id, secret) = match basic_credentials(&headers) {
                Some(pair) => pair,
                None => (
                    form.get("client_id").cloned().unwrap_or_default(),
                    form.get("client_secret").cloned().unwrap_or_default(),
                ),
            };
            if id != settings.client_id || secret != settings.client_secret {
                return oauth_error("invalid_client", "invalid client credentials");
            }
        }
        Some("urn:ietf:params:oauth:grant-type:jwt-bearer") => {
            let Some(assertion) = form.get("assertion") else {
                return oauth_error("invalid_request", "assertion parameter is required");
            };
            if let Err((error, description)) = verify_assertion(assertion, &settings) {
                return oauth_error(error, description);
            }
        }
        Some(_) => return oauth_error("unsupported_grant_type", "grant type not supported"),
        None => return oauth_error("invalid_request", "grant_type parameter is required"),
    }
    let n = state.session_seq.fetch_add(1, Ordering::SeqCst) + 1;
    let token = format!("{}!AQ8AQ.sandbox.session.{n:06}", settings.org_id);
    lock(&state.sessions).insert(token.clone());
    let issued_at = chrono::Utc::now().timestamp_millis().to_string();
    Json(json!({
        "access_token": token,
        "signature": base64::engine::general_purpose::STANDARD.encode(format!("sig-{n}")),
        "scope": "api",
        "instance_url": state.base_url,
        "id": format!("{}/id/{}/{}", state.base_url, settings.org_id, settings.user_id),
        "token_type": "Bearer",
        "issued_at": issued_at,
    }))
    .into_response()
}

fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get("authorization")?.to_str().ok()?;
    let encoded = value.strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (id, secret) = text.split_once(':')?;
    Some((id.to_string(), secret.to_string()))
}

/// Verifies an RS256 assertion against the connected app's certificate, as Salesforce does.
fn verify_assertion(
    assertion: &str,
    settings: &super::OrgSettings,
) -> Result<(), (&'static str, &'static str)> {
    use jsonwebtoken::errors::ErrorKind;
    let header = jsonwebtoken::decode_header(assertion)
        .map_err(|_| ("invalid_grant", "invalid assertion"))?;
    if header.alg != jsonwebtoken::Algorithm::RS256 {
        return Err(("invalid_grant", "invalid assertion"));
    }
    let key = jsonwebtoken::DecodingKey::from_rsa_pem(settings.jwt_public_key_pem.as_bytes())
        .map_err(|_| ("invalid_client", "invalid client credentials"))?;
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_audience(&settings.jwt_audiences);
    validation.set_issuer(&[settings.client_id.as_str()]);
    validation.set_required_spec_claims(&["exp", "aud", "iss", "sub"]);
    validation.leeway = 180;
    let data = jsonwebtoken::decode::<serde_json::Value>(assertion, &key, &validation).map_err(
        |e| match e.kind() {
            ErrorKind::InvalidAudience => ("invalid_grant", "audience is invalid"),
            ErrorKind::InvalidIssuer => ("invalid_client_id", "client identifier invalid"),
            ErrorKind::ExpiredSignature => ("invalid_grant", "expired authorization code"),
            _ => ("invalid_grant", "invalid assertion"),
        },
    )?;
    if data.claims.get("sub").and_then(|s| s.as_str()) != Some(settings.username.as_str()) {
        return Err(("invalid_grant", "user hasn't approved this consumer"));
    }
    Ok(())
}

/// Whether `headers` carry a live session.
pub(super) fn authorized(state: &State, headers: &HeaderMap) -> bool {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|token| lock(&state.sessions).contains(token))
}
