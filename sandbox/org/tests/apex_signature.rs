//! The Apex callout's signature vectors, recomputed the way the intake verifies a signature
//! (`functions/intake/src/auth.rs`: HMAC-SHA256 under the key's UTF-8 bytes over
//! `"<t>.<body>"`, sent as `t=<t>,v1=<64 lowercase hex digits>`).
//!
//! `salesforce/force-app/main/default/classes/DealbridgeCalloutTest.cls` asserts that Apex sends
//! each `*_BODY` with the header `*_HEADER_SENT` (a Named Credential formula) and that this
//! formula evaluates to `*_SIGNATURE`. This test reads those constants from the Apex source and
//! checks them independently of Apex: the signature is the intake's MAC of the body, the formula
//! carries exactly `"<t>.<body>"`, and the body is one the intake accepts. Apex, the vectors and
//! the intake cannot drift apart unnoticed.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use base64::Engine;
use dealbridge::salesforce::SfId;
use hmac::{KeyInit, Mac};
use serde_json::Value;

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

const FORMULA_PREFIX: &str = "{!HEX(HMAC('SHA-256', BASE64DECODE('";
const FORMULA_SUFFIX: &str = "'), BLOB($Credential.Dealbridge.HmacKey)))}";

/// `static final <Type> NAME = <value>;` constants of the Apex test class, string literals
/// unescaped (`\'` → `'`, `\\` → `\`).
fn apex_constants() -> BTreeMap<String, String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../salesforce/force-app/main/default/classes/DealbridgeCalloutTest.cls");
    let source = fs::read_to_string(&path).unwrap();
    let mut constants = BTreeMap::new();
    for line in source.lines() {
        let Some(rest) = line.trim().strip_prefix("static final ") else {
            continue;
        };
        let Some((declaration, value)) = rest.split_once(" = ") else {
            continue;
        };
        let name = declaration.split_whitespace().last().unwrap().to_owned();
        let value = value.trim().strip_suffix(';').unwrap().trim();
        let value = match value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')) {
            Some(literal) => literal.replace("\\'", "'").replace("\\\\", "\\"),
            None => value.trim_end_matches('L').to_owned(),
        };
        constants.insert(name, value);
    }
    constants
}

/// The header the intake's `sign` gives for `body` at `t` under `key`.
fn intake_signature(key: &str, t: i64, body: &str) -> String {
    let mut mac = <HmacSha256 as KeyInit>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

fn check_vector(c: &BTreeMap<String, String>, record: &str, id_field: &str, prefix: &str) {
    let key = &c["KEY"];
    let t: i64 = c["T"].parse().unwrap();
    let body = &c[&format!("{record}_BODY")];
    let sent = &c[&format!("{record}_HEADER_SENT")];
    let signature = &c[&format!("{record}_SIGNATURE")];

    // The signature is the intake's MAC of the body, in the intake's header format.
    assert_eq!(
        signature,
        &intake_signature(key, t, body),
        "{record}_SIGNATURE"
    );
    let v1 = signature.strip_prefix(&format!("t={t},v1=")).unwrap();
    assert!(
        v1.len() == 64
            && v1
                .chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()),
        "v1 is 64 lowercase hex digits: {v1}"
    );

    // The header Apex sends carries exactly "<t>.<body>" into the formula, and only that.
    let formula = sent.strip_prefix(&format!("t={t},v1=")).unwrap();
    let encoded = formula
        .strip_prefix(FORMULA_PREFIX)
        .and_then(|f| f.strip_suffix(FORMULA_SUFFIX))
        .unwrap_or_else(|| panic!("unexpected formula {formula}"));
    let signed = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .unwrap();
    assert_eq!(String::from_utf8(signed).unwrap(), format!("{t}.{body}"));
    assert!(
        !sent.contains(key.as_str()),
        "the key is never in the header Apex sets"
    );

    // The body is one the intake takes: the record's Id (valid, 18 characters, of the right
    // object) and a correlation id of 1 to 80 letters, digits, '.', '_', ':' or '-'.
    let json: serde_json::Map<String, Value> = serde_json::from_str(body).unwrap();
    assert_eq!(
        json.keys().collect::<Vec<_>>(),
        [id_field, "correlationId"],
        "{body}"
    );
    let id = json[id_field].as_str().unwrap();
    assert_eq!(SfId::parse(id).unwrap().as_str(), id, "an 18-character Id");
    assert!(id.starts_with(prefix), "{id} is not a {prefix} record");
    let correlation = json["correlationId"].as_str().unwrap();
    assert_eq!(correlation, format!("sf-{id}"));
    assert!(
        (1..=80).contains(&correlation.len())
            && correlation
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || ".:_-".contains(c)),
        "{correlation}"
    );
}

#[test]
fn the_opportunity_vector_is_the_intakes_signature() {
    check_vector(&apex_constants(), "OPPORTUNITY", "opportunityId", "006");
}

#[test]
fn the_order_vector_is_the_intakes_signature() {
    check_vector(&apex_constants(), "ORDER", "orderId", "801");
}

#[test]
fn the_apex_signature_class_builds_the_same_formula() {
    // DealbridgeSignature.cls and the test's mock must name the same credential and formula.
    let classes = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../salesforce/force-app/main/default/classes");
    let signature = fs::read_to_string(classes.join("DealbridgeSignature.cls")).unwrap();
    assert!(signature.contains("KEY_REFERENCE = '$Credential.Dealbridge.HmacKey'"));
    assert!(signature.contains(
        r"'{!HEX(HMAC(\'SHA-256\', BASE64DECODE(\'' + signedBase64 + '\'), BLOB(' + KEY_REFERENCE + ')))}'"
    ));
    let mock = fs::read_to_string(classes.join("DealbridgeIntakeMock.cls")).unwrap();
    assert!(mock.contains(r"FORMULA_PREFIX = '{!HEX(HMAC(\'SHA-256\', BASE64DECODE(\'';"));
    assert!(mock.contains(r"FORMULA_SUFFIX = '\'), BLOB($Credential.Dealbridge.HmacKey)))}';"));
}
