//! Sealed envelopes: every message dealbridge sends to its queues carries an HMAC-SHA256 of its
//! body under a key from Secrets Manager, and every worker refuses a message without a valid one.
//! Without it, whoever could send to a work queue could have AB bill what the envelope says.
//!
//! The seal is the envelope's last field, `"seal":"<key id>.<hex MAC>"`, over the body as it was
//! before the field was added, so the body stays an envelope every reader can parse. The secret
//! (`ENVELOPE_SECRET_NAME`) is JSON: `{"current": "<key id>", "<key id>": "<key>", ...}`. Messages
//! are sealed with the current key and opened with any key listed, so a key is rotated without
//! losing messages in flight: add the new key and make it current; remove the old one once the
//! queues hold nothing older than the queues' retention (14 days).

use std::collections::BTreeMap;
use std::sync::Arc;

use hmac::{KeyInit, Mac};
use subtle::ConstantTimeEq;

use crate::secrets::{Secret, SecretStore, SecretsError};

/// The field the seal is written to.
const FIELD: &str = ",\"seal\":\"";

/// The shortest key accepted.
pub const MIN_KEY_CHARS: usize = 32;

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

#[derive(Debug, Clone, thiserror::Error)]
pub enum SealError {
    #[error("the message is not sealed by dealbridge (no seal field)")]
    Unsealed,
    #[error("the message is sealed with key {0:?}, which the envelope secret does not hold")]
    UnknownKey(String),
    #[error("the message's seal does not match its body")]
    Mismatch,
    #[error("the message body is not a JSON object to seal")]
    NotAnObject,
    #[error(transparent)]
    Keys(#[from] SecretsError),
}

impl SealError {
    /// Only a secret store that did not answer may answer later.
    pub fn is_retryable(&self) -> bool {
        matches!(self, SealError::Keys(e) if e.is_retryable())
    }

    /// Whether the message itself is refused (no seal, a seal that does not match, a key the
    /// secret does not hold, not an object): it can never be opened, whatever is tried. Not so
    /// when the keys could not be read (the secret missing, malformed or not answering): that is
    /// the stack's trouble, and the message may well be genuine.
    pub fn refuses_the_message(&self) -> bool {
        !matches!(self, SealError::Keys(_))
    }
}

/// The keys of the envelope secret.
#[derive(Clone)]
pub struct SealKeys {
    current: String,
    keys: BTreeMap<String, Secret>,
}

fn valid_key_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 32
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'))
}

impl SealKeys {
    /// Reads the secret `name`'s JSON; errors name the problem, never a key.
    pub fn parse(name: &str, secret: &Secret) -> Result<SealKeys, SecretsError> {
        let malformed = |reason: String| SecretsError::Malformed {
            name: name.to_string(),
            reason,
        };
        let map: BTreeMap<String, String> = serde_json::from_str(secret.expose())
            .map_err(|_| malformed("expected a JSON object of strings".into()))?;
        let current = map
            .get("current")
            .cloned()
            .ok_or_else(|| malformed("no \"current\" key id".into()))?;
        let mut keys = BTreeMap::new();
        for (id, key) in map {
            if id == "current" {
                continue;
            }
            if !valid_key_id(&id) {
                return Err(malformed(
                    "key ids are 1 to 32 letters, digits, '_' or '-'".into(),
                ));
            }
            if key.chars().count() < MIN_KEY_CHARS {
                return Err(malformed(format!(
                    "key {id:?} is shorter than {MIN_KEY_CHARS} characters"
                )));
            }
            keys.insert(id, Secret::new(key));
        }
        if !keys.contains_key(&current) {
            return Err(malformed(format!(
                "the current key {current:?} is not among the keys"
            )));
        }
        Ok(SealKeys { current, keys })
    }

    /// HMAC takes keys of any length: the error never happens.
    fn tag(key: &Secret, body: &str) -> Result<Vec<u8>, SealError> {
        let mut mac = <HmacSha256 as KeyInit>::new_from_slice(key.expose().as_bytes())
            .map_err(|_| SealError::Mismatch)?;
        mac.update(body.as_bytes());
        Ok(mac.finalize().into_bytes().to_vec())
    }

    /// `body` (a JSON object) with its seal under the current key.
    pub fn seal(&self, body: &str) -> Result<String, SealError> {
        let open = body
            .trim_end()
            .strip_suffix('}')
            .filter(|b| b.trim_start().starts_with('{') && b.trim_start().len() > 1)
            .ok_or(SealError::NotAnObject)?;
        let key = self.keys.get(&self.current).ok_or(SealError::Unsealed)?;
        let tag = hex::encode(Self::tag(key, body)?);
        Ok(format!("{open}{FIELD}{}.{tag}\"}}", self.current))
    }

    /// Checks the seal of a sealed body.
    pub fn open(&self, sealed: &str) -> Result<(), SealError> {
        let at = sealed.rfind(FIELD).ok_or(SealError::Unsealed)?;
        let seal = sealed[at + FIELD.len()..]
            .strip_suffix("\"}")
            .ok_or(SealError::Unsealed)?;
        let (id, tag) = seal.split_once('.').ok_or(SealError::Mismatch)?;
        let key = self
            .keys
            .get(id)
            .ok_or_else(|| SealError::UnknownKey(id.chars().take(32).collect()))?;
        let tag = hex::decode(tag).map_err(|_| SealError::Mismatch)?;
        let body = format!("{}}}", &sealed[..at]);
        let expected = Self::tag(key, &body)?;
        if bool::from(expected.as_slice().ct_eq(&tag)) {
            Ok(())
        } else {
            Err(SealError::Mismatch)
        }
    }
}

/// `body` without its seal, if it has one: to change a sealed message and seal it again.
pub fn unsealed(body: &str) -> String {
    match body.rfind(FIELD) {
        Some(at) if body.ends_with("\"}") => format!("{}}}", &body[..at]),
        _ => body.to_string(),
    }
}

/// Seals and opens messages with the keys of the envelope secret, read through the (cached)
/// secret store on each use, so a rotation reaches running containers with the cache.
pub struct Seal {
    secrets: Arc<dyn SecretStore>,
    name: String,
}

impl Seal {
    pub fn new(secrets: Arc<dyn SecretStore>, name: impl Into<String>) -> Seal {
        Seal {
            secrets,
            name: name.into(),
        }
    }

    async fn keys(&self) -> Result<SealKeys, SealError> {
        let secret = self.secrets.secret_string(&self.name).await?;
        Ok(SealKeys::parse(&self.name, &secret)?)
    }

    pub async fn seal(&self, body: &str) -> Result<String, SealError> {
        self.keys().await?.seal(body)
    }

    pub async fn open(&self, sealed: &str) -> Result<(), SealError> {
        self.keys().await?.open(sealed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const K1: &str = "k1-0123456789abcdef0123456789abcdef";
    const K2: &str = "k2-fedcba9876543210fedcba9876543210";

    fn keys(json: serde_json::Value) -> SealKeys {
        SealKeys::parse("envelope", &Secret::new(json.to_string())).unwrap()
    }

    #[test]
    fn a_sealed_body_opens_and_stays_an_envelope() {
        let k = keys(serde_json::json!({"current": "k1", "k1": K1}));
        let body = r#"{"version":1,"step":{"name":"dispatch"}}"#;
        let sealed = k.seal(body).unwrap();
        assert!(sealed.starts_with(r#"{"version":1,"step":{"name":"dispatch"},"seal":"k1."#));
        let v: serde_json::Value = serde_json::from_str(&sealed).unwrap();
        assert_eq!(v["version"], 1);
        k.open(&sealed).unwrap();
    }

    #[test]
    fn unsealed_forged_and_tampered_bodies_are_refused() {
        let k = keys(serde_json::json!({"current": "k1", "k1": K1}));
        let body = r#"{"version":1,"deal":{"id":"006"}}"#;
        assert!(matches!(k.open(body), Err(SealError::Unsealed)));
        let sealed = k.seal(body).unwrap();
        let tampered = sealed.replace("006", "007");
        assert!(matches!(k.open(&tampered), Err(SealError::Mismatch)));
        let other = keys(serde_json::json!({"current": "k1", "k1": K2}));
        assert!(matches!(other.open(&sealed), Err(SealError::Mismatch)));
        let forged = format!(r#"{{"version":1{FIELD}k9.00"}}"#);
        assert!(matches!(k.open(&forged), Err(SealError::UnknownKey(_))));
        // A seal field smuggled inside a value does not help: the last one is checked.
        let smuggled = format!(r#"{{"a":"{}","b":1}}"#, sealed.replace('"', "\\\""));
        assert!(k.open(&smuggled).is_err());
        assert_eq!(unsealed(&sealed), body);
        assert_eq!(unsealed(body), body);
        assert!(matches!(k.seal("[1]"), Err(SealError::NotAnObject)));
        assert!(matches!(k.seal("{}"), Err(SealError::NotAnObject)));
    }

    #[test]
    fn a_rotation_opens_messages_sealed_with_the_previous_key() {
        let before = keys(serde_json::json!({"current": "k1", "k1": K1}));
        let during = keys(serde_json::json!({"current": "k2", "k1": K1, "k2": K2}));
        let after = keys(serde_json::json!({"current": "k2", "k2": K2}));
        let old = before.seal(r#"{"n":1}"#).unwrap();
        let new = during.seal(r#"{"n":2}"#).unwrap();
        during.open(&old).unwrap();
        during.open(&new).unwrap();
        after.open(&new).unwrap();
        assert!(matches!(after.open(&old), Err(SealError::UnknownKey(id)) if id == "k1"));
    }

    #[test]
    fn a_malformed_secret_is_named_without_its_keys() {
        for bad in [
            serde_json::json!({"k1": K1}),
            serde_json::json!({"current": "k2", "k1": K1}),
            serde_json::json!({"current": "k1", "k1": "short"}),
            serde_json::json!({"current": "k 1", "k 1": K1}),
            serde_json::json!(["x"]),
        ] {
            let e = SealKeys::parse("envelope", &Secret::new(bad.to_string()))
                .err()
                .unwrap();
            assert!(!e.to_string().contains(K1), "{e}");
        }
    }
}
