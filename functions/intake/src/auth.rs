//! Who may call the intake. JSON callers sign the body with HMAC-SHA256 or present a bearer token;
//! Outbound Messages carry a secret token in the URL. Every comparison is constant-time.
//!
//! Signature header: `X-Dealbridge-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`,
//! which Apex computes with `Crypto.generateMac('hmacSHA256', Blob.valueOf(t + '.' + body), key)`.
//! The timestamp bounds replays to the configured tolerance.

use dealbridge::secrets::Secret;
use hmac::{KeyInit, Mac};
use lambda_http::http::HeaderMap;
use serde::Deserialize;
use subtle::ConstantTimeEq;

pub const SIGNATURE_HEADER: &str = "x-dealbridge-signature";

/// The intake secret (JSON). Any of the three may be absent; absent means that way in is closed.
#[derive(Debug, Clone, Deserialize)]
pub struct IntakeCredentials {
    #[serde(default)]
    pub hmac_key: Option<Secret>,
    #[serde(default)]
    pub bearer_token: Option<Secret>,
    #[serde(default)]
    pub soap_token: Option<Secret>,
    /// Each AB site's webhook shared key (AB's Settings → Webhooks), by the site's name in
    /// dealbridge (`maxio.sites`): a site without one takes no webhooks.
    #[serde(default)]
    pub maxio_webhook_keys: std::collections::BTreeMap<String, Secret>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("no credentials: sign the body (X-Dealbridge-Signature) or send Authorization: Bearer")]
    Missing,
    #[error("the signature header is malformed; expected t=<unix seconds>,v1=<hex>")]
    MalformedSignature,
    #[error("the signature's timestamp is outside the accepted window")]
    Stale,
    #[error("the signature does not match the body")]
    BadSignature,
    #[error("the bearer token is not valid")]
    BadToken,
    #[error("this way in is not configured")]
    NotConfigured,
}

fn eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// `t=...,v1=...` → (t, signature bytes).
fn parse_signature(header: &str) -> Result<(i64, Vec<u8>), AuthError> {
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => t = v.trim().parse::<i64>().ok(),
            Some(("v1", v)) => v1 = hex::decode(v.trim()).ok(),
            _ => {}
        }
    }
    match (t, v1) {
        (Some(t), Some(v1)) if v1.len() == 32 => Ok((t, v1)),
        _ => Err(AuthError::MalformedSignature),
    }
}

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// The MAC of `"<t>.<body>"` (HMAC takes keys of any length; the error never happens).
fn mac(key: &[u8], t: i64, body: &[u8]) -> Result<HmacSha256, AuthError> {
    let mut mac =
        <HmacSha256 as KeyInit>::new_from_slice(key).map_err(|_| AuthError::NotConfigured)?;
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Ok(mac)
}

/// The signature header value a caller sends for `body` at time `t`.
pub fn sign(key: &[u8], t: i64, body: &[u8]) -> Result<String, AuthError> {
    let mac = mac(key, t, body)?;
    Ok(format!(
        "t={t},v1={}",
        hex::encode(mac.finalize().into_bytes())
    ))
}

/// Authenticates a JSON request: a signature if present, else a bearer token.
pub fn verify_json(
    headers: &HeaderMap,
    body: &[u8],
    creds: &IntakeCredentials,
    now: i64,
    tolerance_secs: i64,
) -> Result<(), AuthError> {
    if let Some(header) = headers.get(SIGNATURE_HEADER) {
        let key = creds.hmac_key.as_ref().ok_or(AuthError::NotConfigured)?;
        let header = header.to_str().map_err(|_| AuthError::MalformedSignature)?;
        let (t, given) = parse_signature(header)?;
        // abs_diff: no overflow whatever timestamp a caller sends.
        if now.abs_diff(t) > tolerance_secs.unsigned_abs() {
            return Err(AuthError::Stale);
        }
        return mac(key.expose().as_bytes(), t, body)?
            .verify_slice(&given)
            .map_err(|_| AuthError::BadSignature);
    }
    if let Some(value) = headers.get("authorization") {
        let expected = creds
            .bearer_token
            .as_ref()
            .ok_or(AuthError::NotConfigured)?;
        // The scheme name is case-insensitive (RFC 9110 §11.1).
        let given = value
            .to_str()
            .ok()
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token)
            .ok_or(AuthError::BadToken)?;
        return if !expected.is_empty() && eq(given.trim().as_bytes(), expected.expose().as_bytes())
        {
            Ok(())
        } else {
            Err(AuthError::BadToken)
        };
    }
    Err(AuthError::Missing)
}

/// Authenticates an Outbound Message by the token in its URL.
pub fn verify_soap_token(given: &str, creds: &IntakeCredentials) -> Result<(), AuthError> {
    let expected = creds.soap_token.as_ref().ok_or(AuthError::NotConfigured)?;
    if !expected.is_empty() && eq(given.as_bytes(), expected.expose().as_bytes()) {
        Ok(())
    } else {
        Err(AuthError::BadToken)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lambda_http::http::HeaderValue;

    fn creds() -> IntakeCredentials {
        IntakeCredentials {
            hmac_key: Some(Secret::new("k3y")),
            bearer_token: Some(Secret::new("t0ken")),
            soap_token: Some(Secret::new("s0ap")),
            maxio_webhook_keys: Default::default(),
        }
    }

    fn headers(name: &str, value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            lambda_http::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
        h
    }

    #[test]
    fn a_correct_signature_within_the_window_passes() {
        let body = br#"{"opportunityId":"006A000010khO8J"}"#;
        let sig = sign(b"k3y", 1_000, body).unwrap();
        assert_eq!(
            verify_json(&headers(SIGNATURE_HEADER, &sig), body, &creds(), 1_100, 300),
            Ok(())
        );
    }

    #[test]
    fn tampered_stale_and_malformed_signatures_fail() {
        let body = br#"{"opportunityId":"006A000010khO8J"}"#;
        let sig = sign(b"k3y", 1_000, body).unwrap();
        let h = headers(SIGNATURE_HEADER, &sig);
        assert_eq!(
            verify_json(&h, b"{}", &creds(), 1_000, 300),
            Err(AuthError::BadSignature)
        );
        assert_eq!(
            verify_json(&h, body, &creds(), 1_301, 300),
            Err(AuthError::Stale)
        );
        let other = sign(b"other", 1_000, body).unwrap();
        assert_eq!(
            verify_json(
                &headers(SIGNATURE_HEADER, &other),
                body,
                &creds(),
                1_000,
                300
            ),
            Err(AuthError::BadSignature)
        );
        assert_eq!(
            verify_json(
                &headers(SIGNATURE_HEADER, "v1=abc"),
                body,
                &creds(),
                1_000,
                300
            ),
            Err(AuthError::MalformedSignature)
        );
    }

    #[test]
    fn bearer_tokens_must_match_exactly() {
        assert_eq!(
            verify_json(
                &headers("authorization", "Bearer t0ken"),
                b"",
                &creds(),
                0,
                300
            ),
            Ok(())
        );
        assert_eq!(
            verify_json(
                &headers("authorization", "Bearer t0ke"),
                b"",
                &creds(),
                0,
                300
            ),
            Err(AuthError::BadToken)
        );
        assert_eq!(
            verify_json(
                &headers("authorization", "Basic t0ken"),
                b"",
                &creds(),
                0,
                300
            ),
            Err(AuthError::BadToken)
        );
        assert_eq!(
            verify_json(&HeaderMap::new(), b"", &creds(), 0, 300),
            Err(AuthError::Missing)
        );
        let mut c = creds();
        c.bearer_token = None;
        assert_eq!(
            verify_json(&headers("authorization", "Bearer t0ken"), b"", &c, 0, 300),
            Err(AuthError::NotConfigured)
        );
    }

    #[test]
    fn soap_tokens_must_match_and_be_configured() {
        assert_eq!(verify_soap_token("s0ap", &creds()), Ok(()));
        assert_eq!(verify_soap_token("s0a", &creds()), Err(AuthError::BadToken));
        let mut c = creds();
        c.soap_token = Some(Secret::new(""));
        assert_eq!(verify_soap_token("", &c), Err(AuthError::BadToken));
    }
}
