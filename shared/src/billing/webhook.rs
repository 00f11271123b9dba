//! A Maxio AB webhook: its signature, checked over the raw body before anything is parsed, and
//! its form-encoded body (`id=<webhook id>&event=<key>&payload[subscription][id]=...`) read into
//! what dealbridge acts on.
//!
//! A webhook is a hint: it names the subscription (or customer) that changed, and the billing
//! state is then read from AB itself, so a late, replayed or out-of-order webhook never writes an
//! old state. `id` is stable across AB's retries and replays and is the deduplication key.

use hmac::{KeyInit, Mac};
use subtle::ConstantTimeEq;

/// The header carrying the hex HMAC-SHA-256 of the raw body, keyed with the site's shared key.
pub const SIGNATURE_HEADER: &str = "x-chargify-webhook-signature-hmac-sha-256";

/// The event keys dealbridge acts on: each can change what Salesforce shows of a subscription.
/// Others (`invoice_issued`, `customer_update`, ...) are acknowledged and ignored.
pub const BILLING_EVENTS: [&str; 12] = [
    "subscription_state_change",
    "billing_date_change",
    "component_allocation_change",
    "subscription_product_change",
    "pending_cancellation_change",
    "expiration_date_change",
    "renewal_success",
    "renewal_failure",
    "payment_success",
    "payment_failure",
    "dunning_step_reached",
    "signup_success",
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    #[error("the webhook is not signed (no {SIGNATURE_HEADER} header)")]
    Unsigned,
    #[error("the webhook's signature does not match its body")]
    BadSignature,
    #[error("the webhook body is malformed: {0}")]
    Malformed(String),
}

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// The signature AB sends for `body` under `key`: lower-case hex.
pub fn sign(key: &[u8], body: &[u8]) -> String {
    hex::encode(mac(key, body).finalize().into_bytes())
}

fn mac(key: &[u8], body: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length, so this never fails; an empty key signs like a zero key.
    let mut mac = match <HmacSha256 as KeyInit>::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => <HmacSha256 as KeyInit>::new(&Default::default()),
    };
    mac.update(body);
    mac
}

/// Checks `signature` (the header's value, hex in either case) against the raw body, in constant
/// time. An empty key verifies nothing: a site without a shared key takes no webhooks.
pub fn verify(key: &[u8], body: &[u8], signature: Option<&str>) -> Result<(), WebhookError> {
    let given = signature
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or(WebhookError::Unsigned)?;
    let given = hex::decode(given).map_err(|_| WebhookError::BadSignature)?;
    if key.is_empty() {
        return Err(WebhookError::BadSignature);
    }
    let expected = mac(key, body).finalize().into_bytes();
    if given.len() == expected.len() && bool::from(given.as_slice().ct_eq(expected.as_slice())) {
        Ok(())
    } else {
        Err(WebhookError::BadSignature)
    }
}

/// What a webhook says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    /// AB's webhook id: the same on every retry and replay of one webhook.
    pub id: String,
    /// The event key, e.g. `subscription_state_change`.
    pub event: String,
    /// `payload[subscription][id]`, when the event is about a subscription.
    pub subscription_id: Option<i64>,
    /// `payload[customer][id]` or `payload[subscription][customer][id]`.
    pub customer_id: Option<i64>,
    /// `payload[site][id]`: AB's own id of the site that sent it.
    pub site_id: Option<i64>,
    /// `payload[event_id]`: the id of the event in `/events.json`.
    pub event_id: Option<i64>,
}

impl Webhook {
    /// True when the event can change a subscription's billing state in Salesforce.
    pub fn is_billing_event(&self) -> bool {
        BILLING_EVENTS.contains(&self.event.as_str())
    }
}

/// Reads a form-encoded webhook body. `id` and `event` are required; ids in the payload must be
/// whole numbers where present (AB's are).
pub fn parse(body: &[u8]) -> Result<Webhook, WebhookError> {
    let mut id = None;
    let mut event = None;
    let mut subscription_id = None;
    let mut subscription_customer_id = None;
    let mut customer_id = None;
    let mut site_id = None;
    let mut event_id = None;
    for (key, value) in url::form_urlencoded::parse(body) {
        let slot = match key.as_ref() {
            "id" => {
                id = Some(value.trim().to_string());
                continue;
            }
            "event" => {
                event = Some(value.trim().to_string());
                continue;
            }
            "payload[subscription][id]" => &mut subscription_id,
            "payload[subscription][customer][id]" => &mut subscription_customer_id,
            "payload[customer][id]" => &mut customer_id,
            "payload[site][id]" => &mut site_id,
            "payload[event_id]" => &mut event_id,
            _ => continue,
        };
        let number = value.trim().parse::<i64>().map_err(|_| {
            WebhookError::Malformed(format!("{key} is {value:?}, not a whole number"))
        })?;
        *slot = Some(number);
    }
    let id = id
        .filter(|i| !i.is_empty())
        .ok_or_else(|| WebhookError::Malformed("no webhook id (`id`)".into()))?;
    if id.len() > 64
        || !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(WebhookError::Malformed(format!(
            "the webhook id {id:?} is not an id"
        )));
    }
    let event = event
        .filter(|e| !e.is_empty())
        .ok_or_else(|| WebhookError::Malformed("no event key (`event`)".into()))?;
    Ok(Webhook {
        id,
        event,
        subscription_id,
        customer_id: customer_id.or(subscription_customer_id),
        site_id,
        event_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] = b"id=3911&event=subscription_state_change&payload[site][id]=77\
&payload[site][subdomain]=acme&payload[subscription][id]=80293620\
&payload[subscription][state]=past_due&payload[subscription][customer][id]=501\
&payload[subscription][customer][email]=a%2Bb%40example.com&payload[event_id]=99001";

    #[test]
    fn a_signature_over_the_raw_body_verifies_in_either_hex_case() {
        let sig = sign(b"shared-key", BODY);
        assert_eq!(sig.len(), 64);
        assert_eq!(verify(b"shared-key", BODY, Some(&sig)), Ok(()));
        assert_eq!(
            verify(b"shared-key", BODY, Some(&sig.to_uppercase())),
            Ok(())
        );
    }

    #[test]
    fn unsigned_wrongly_signed_and_unkeyed_webhooks_are_refused() {
        let sig = sign(b"shared-key", BODY);
        assert_eq!(
            verify(b"shared-key", BODY, None),
            Err(WebhookError::Unsigned)
        );
        assert_eq!(
            verify(b"shared-key", BODY, Some(" ")),
            Err(WebhookError::Unsigned)
        );
        assert_eq!(
            verify(b"other-key", BODY, Some(&sig)),
            Err(WebhookError::BadSignature)
        );
        let mut tampered = BODY.to_vec();
        tampered.extend_from_slice(b"&x=1");
        assert_eq!(
            verify(b"shared-key", &tampered, Some(&sig)),
            Err(WebhookError::BadSignature)
        );
        assert_eq!(
            verify(b"shared-key", BODY, Some(&sig[..62])),
            Err(WebhookError::BadSignature)
        );
        assert_eq!(
            verify(b"shared-key", BODY, Some("not hex")),
            Err(WebhookError::BadSignature)
        );
        assert_eq!(
            verify(b"", BODY, Some(&sign(b"", BODY))),
            Err(WebhookError::BadSignature)
        );
    }

    #[test]
    fn the_form_body_names_the_webhook_its_event_and_the_subscription() {
        let w = parse(BODY).unwrap();
        assert_eq!(
            w,
            Webhook {
                id: "3911".into(),
                event: "subscription_state_change".into(),
                subscription_id: Some(80293620),
                customer_id: Some(501),
                site_id: Some(77),
                event_id: Some(99001),
            }
        );
        assert!(w.is_billing_event());
        let other = parse(b"id=1&event=invoice_issued&payload[customer][id]=7").unwrap();
        assert!(!other.is_billing_event());
        assert_eq!(other.customer_id, Some(7));
        assert_eq!(other.subscription_id, None);
    }

    #[test]
    fn a_body_without_id_or_event_or_with_a_bad_number_is_malformed_naming_it() {
        let cases: [(&[u8], &str); 5] = [
            (b"event=subscription_state_change", "no webhook id"),
            (b"id=&event=x", "no webhook id"),
            (b"id=1", "no event key"),
            (
                b"id=1&event=x&payload[subscription][id]=abc",
                "payload[subscription][id]",
            ),
            (b"id=1%0A2&event=x", "is not an id"),
        ];
        for (body, expected) in cases {
            match parse(body) {
                Err(WebhookError::Malformed(m)) => assert!(m.contains(expected), "{m}"),
                other => panic!("{:?}: {other:?}", String::from_utf8_lossy(body)),
            }
        }
    }
}
