//! The intake's pure edge: the JSON deal request parser and the signature check. The first byte
//! chooses which; the rest is the input.
//!
//! - Request parsing: never panics; an error carries one of the documented codes and names a field
//!   exactly when the code is about one; an accepted request names a valid Opportunity (006) or
//!   Order (801) Id and a valid correlation id.
//! - Signatures: the rest is `<header>\n<body>`; an arbitrary header never authenticates without
//!   the key, and a header made with the key verifies its own body only.

#![no_main]

use dealbridge_intake::auth::{IntakeCredentials, SIGNATURE_HEADER, sign, verify_json};
use dealbridge_intake::request::{parse_deal_request, valid_correlation_id};
use http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;

const CODES: [&str; 8] = [
    "empty_body",
    "malformed_json",
    "unknown_field",
    "missing_field",
    "conflicting_fields",
    "invalid_type",
    "invalid_id",
    "invalid_field",
];

const KEY: &str = "fuzz-key";
const NOW: i64 = 1_795_176_000;
const TOLERANCE: i64 = 300;

fn creds() -> IntakeCredentials {
    serde_json::from_str(r#"{"hmac_key":"fuzz-key","bearer_token":"fuzz-token"}"#)
        .expect("credentials")
}

fn request(body: &[u8]) {
    match parse_deal_request(body) {
        Ok(r) => {
            let id = r.deal.id();
            assert_eq!(id.as_str().len(), 18);
            assert!(matches!(id.key_prefix(), "006" | "801"));
            if let Some(c) = &r.correlation_id {
                assert!(valid_correlation_id(c), "{c:?}");
            }
        }
        Err(e) => {
            assert!(CODES.contains(&e.code), "{}", e.code);
            assert!(!e.message.is_empty());
            let names_a_field = !matches!(e.code, "empty_body" | "malformed_json");
            assert_eq!(e.field.is_some(), names_a_field, "{e:?}");
        }
    }
}

fn signature(data: &[u8]) {
    let (header, body) = match data.iter().position(|b| *b == b'\n') {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[][..]),
    };
    if let Ok(value) = HeaderValue::from_bytes(header) {
        let mut headers = HeaderMap::new();
        headers.insert(SIGNATURE_HEADER, value);
        assert!(verify_json(&headers, body, &creds(), NOW, TOLERANCE).is_err());
    }
    // A signature made with the key, at a time derived from the input, for this body.
    let skew = i64::from(header.first().copied().unwrap_or(0)) * 3 - 384;
    let signed = sign(KEY.as_bytes(), NOW + skew, body).expect("sign");
    let mut headers = HeaderMap::new();
    headers.insert(
        SIGNATURE_HEADER,
        HeaderValue::from_str(&signed).expect("header"),
    );
    let verdict = verify_json(&headers, body, &creds(), NOW, TOLERANCE);
    assert_eq!(verdict.is_ok(), skew.abs() <= TOLERANCE, "{verdict:?}");
    if !body.is_empty() && skew.abs() <= TOLERANCE {
        let mut other = body.to_vec();
        other[0] ^= 1;
        assert!(verify_json(&headers, &other, &creds(), NOW, TOLERANCE).is_err());
    }
}

fuzz_target!(|data: &[u8]| {
    match data.split_first() {
        Some((mode, rest)) if mode % 2 == 1 => signature(rest),
        Some((_, rest)) => request(rest),
        None => request(data),
    }
});
