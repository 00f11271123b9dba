//! Secrets never reach a log: the whole local demo (`make demo`) runs with every log line of every
//! crate on (`RUST_LOG=trace`), and nothing it writes, stdout or stderr, holds a secret of the
//! sandbox: the intake's HMAC key, bearer token and SOAP token, the Maxio AB API key, the Maxio Core
//! token, the WHMCS identifier and secret, the Salesforce client secret and private key, the
//! `Authorization` values built from them, or a Salesforce session token or JWT assertion.

use std::path::Path;
use std::process::Command;

use base64::Engine;
use dealbridge_sandbox::local::{SANDBOX_BEARER_TOKEN, SANDBOX_HMAC_KEY, SANDBOX_SOAP_TOKEN};
use dealbridge_sandbox::maxio_ab::AbSettings;
use dealbridge_sandbox::maxio_core::CoreSettings;
use dealbridge_sandbox::salesforce::{OrgSettings, test_keys_dir};
use dealbridge_sandbox::whmcs::WhmcsSettings;

/// A secret value, and what it is.
struct Known {
    what: String,
    value: String,
}

fn known(what: &str, value: &str) -> Known {
    Known {
        what: what.to_string(),
        value: value.to_string(),
    }
}

/// Every secret value the demo holds, and the header values made from them.
fn sandbox_secrets() -> Vec<Known> {
    let ab = AbSettings::default();
    let core = CoreSettings::default();
    let whmcs = WhmcsSettings::default();
    let org = OrgSettings::default();
    let b64 = |s: String| base64::engine::general_purpose::STANDARD.encode(s);
    let mut all = vec![
        known("intake hmac_key", SANDBOX_HMAC_KEY),
        known("intake bearer_token", SANDBOX_BEARER_TOKEN),
        known("intake soap_token", SANDBOX_SOAP_TOKEN),
        known("Maxio AB api_key", &ab.api_key),
        known(
            "Maxio AB Authorization: Basic",
            &b64(format!("{}:x", ab.api_key)),
        ),
        known("Maxio Core api_token", &core.api_token),
        known("WHMCS identifier", &whmcs.identifier),
        known("WHMCS secret", &whmcs.secret),
        known("Salesforce client_secret", &org.client_secret),
        known(
            "Salesforce client credentials (Basic)",
            &b64(format!("{}:{}", org.client_id, org.client_secret)),
        ),
    ];
    let pem = std::fs::read_to_string(test_keys_dir().join("jwt-test-key.pem"))
        .expect("the sandbox private key");
    let body: Vec<&str> = pem
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with("-----") && l.len() >= 32)
        .collect();
    assert!(body.len() > 10, "the private key has a body");
    for (i, line) in body.into_iter().enumerate() {
        all.push(known(
            &format!("Salesforce private key, line {}", i + 2),
            line,
        ));
    }
    all
}

#[derive(Debug, PartialEq, Eq)]
struct Leak {
    what: String,
    line: usize,
    text: String,
}

/// Removes terminal colour sequences (`ESC [ ... m`), which could split a value.
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '!')
}

/// A Salesforce session token: the org id (`00D`, 15 or 18 characters), `!`, then at least 20
/// characters. The sandbox org mints `00DSB0000000001!AQ8AQ.sandbox.session.000001`.
fn is_session_token(word: &str) -> bool {
    let Some((org, rest)) = word.split_once('!') else {
        return false;
    };
    let org = org.trim_start_matches(|c: char| !c.is_ascii_alphanumeric());
    org.starts_with("00D")
        && (org.len() == 15 || org.len() == 18)
        && org.chars().all(|c| c.is_ascii_alphanumeric())
        && rest.len() >= 20
}

/// A JWT (the client's signed assertion): three dot-separated base64url parts, the first a JSON
/// header (`eyJ`).
fn is_jwt(word: &str) -> bool {
    let parts: Vec<&str> = word.split('.').collect();
    parts.len() == 3
        && parts[0].starts_with("eyJ")
        && parts.iter().all(|p| {
            p.len() >= 10
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
}

/// Every place in `log` where a secret shows.
fn scan(log: &str, secrets: &[Known]) -> Vec<Leak> {
    let log = strip_ansi(log);
    let mut leaks = Vec::new();
    for (n, line) in log.lines().enumerate() {
        let mut leak = |what: &str| {
            leaks.push(Leak {
                what: what.to_string(),
                line: n + 1,
                text: line.chars().take(400).collect(),
            })
        };
        for s in secrets {
            if line.contains(&s.value) {
                leak(&s.what);
            }
        }
        if line.contains("PRIVATE KEY") {
            leak("a PEM private key");
        }
        for word in line.split(|c: char| !is_token_char(c)) {
            if is_session_token(word) {
                leak("a Salesforce session token");
            }
            if is_jwt(word) {
                leak("a JWT");
            }
        }
    }
    leaks
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[test]
fn the_whole_demo_logged_at_trace_level_shows_no_secret() {
    let demo = env!("CARGO_BIN_EXE_demo");
    assert!(Path::new(demo).exists(), "{demo}");
    let out = Command::new(demo)
        .env("RUST_LOG", "trace")
        .env("NO_COLOR", "1")
        .output()
        .expect("the demo runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the demo failed ({}):\n{}",
        out.status,
        tail(&stderr, 40)
    );

    // Not vacuous: the log has every level, and the lines written where credentials are used.
    for expected in [
        " TRACE ",
        " DEBUG ",
        " INFO ",
        "salesforce request",
        "maxio request",
        "WHMCS request",
        "deal snapshot loaded",
        "Maxio subscription ready",
        "WHMCS order placed",
    ] {
        assert!(
            stderr.contains(expected),
            "the log has no {expected:?}; its end:\n{}",
            tail(&stderr, 20)
        );
    }
    assert!(stderr.lines().count() > 200, "a full trace-level log");

    let secrets = sandbox_secrets();
    let leaks: Vec<String> = [("stdout", &stdout), ("stderr", &stderr)]
        .iter()
        .flat_map(|(stream, text)| {
            scan(text, &secrets)
                .into_iter()
                .map(move |l| format!("{stream}:{}: {}: {}", l.line, l.what, l.text))
        })
        .collect();
    assert!(
        leaks.is_empty(),
        "{} secret(s) in the demo's output:\n{}",
        leaks.len(),
        leaks.join("\n")
    );
}

#[test]
fn the_scan_finds_a_secret_written_into_a_log_line() {
    let secrets = sandbox_secrets();
    let ab = AbSettings::default();
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let pem = std::fs::read_to_string(test_keys_dir().join("jwt-test-key.pem")).expect("key");
    let key_line = pem.lines().nth(5).expect("a key line");
    let lines = [
        (
            format!(
                "2026-11-20T12:00:00Z DEBUG maxio request api_key={}",
                ab.api_key
            ),
            "Maxio AB api_key",
        ),
        (
            format!(
                "TRACE hyper: authorization: Basic {}",
                b64(&format!("{}:x", ab.api_key))
            ),
            "Maxio AB Authorization: Basic",
        ),
        (
            format!(
                "DEBUG core: Authorization: Token {}",
                CoreSettings::default().api_token
            ),
            "Maxio Core api_token",
        ),
        (
            format!(
                "DEBUG whmcs body=action=AddOrder&identifier=x&secret={}",
                WhmcsSettings::default().secret
            ),
            "WHMCS secret",
        ),
        (
            format!("\u{1b}[2mkey\u{1b}[0m={SANDBOX_HMAC_KEY}"),
            "intake hmac_key",
        ),
        (
            format!("INFO path=/v1/outbound-messages/{SANDBOX_SOAP_TOKEN}"),
            "intake soap_token",
        ),
        (
            "DEBUG session token=\"00DSB0000000001!AQ8AQ.sandbox.session.000001\"".to_string(),
            "a Salesforce session token",
        ),
        (
            "authorization: Bearer 00D5e000001AbCd!AQ0AQHk3.xYzLongOpaqueSessionValue".to_string(),
            "a Salesforce session token",
        ),
        (
            "assertion=eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiIzTVZHOSJ9.c2lnbmF0dXJlLWJ5dGVz".to_string(),
            "a JWT",
        ),
        (format!("key material {key_line}"), "Salesforce private key"),
        (
            "-----BEGIN RSA PRIVATE KEY-----".to_string(),
            "a PEM private key",
        ),
    ];
    for (line, what) in &lines {
        let leaks = scan(line, &secrets);
        assert!(
            leaks
                .iter()
                .any(|l| l.what.starts_with(what) && l.line == 1),
            "{what} not found in {line:?}: {leaks:?}"
        );
    }
}

#[test]
fn the_scan_passes_redacted_values_signatures_and_ids() {
    let secrets = sandbox_secrets();
    let clean = "\
INFO deal snapshot loaded deal=006A000010khO8JIAU orders=1
DEBUG salesforce request method=GET path=/services/data/v62.0/composite
DEBUG secret client_secret=Secret([redacted]) token=[redacted]
DEBUG X-Dealbridge-Signature: t=1795176000,v1=5d41402abc4b2a76b9719d911017c592aa5d41402abc4b2a76b9719d91101
INFO logged in to Salesforce instance=http://127.0.0.1:4000 id=http://127.0.0.1:4000/id/00DSB0000000001/005SB0000000001
WARN WHMCS call failed action=AddOrder code=429 error=Too Many Requests
";
    assert_eq!(scan(clean, &secrets), Vec::new());
}
