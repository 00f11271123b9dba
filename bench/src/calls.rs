//! External calls, counted from the sandbox fakes' request logs (`Observer::requests()`): per
//! system, Salesforce reads and writes apart from its OAuth token call, and what each call was.

use std::collections::BTreeMap;

use dealbridge_sandbox::local::LocalStack;
use dealbridge_sandbox::maxio_ab::routes as ab;
use dealbridge_sandbox::maxio_core::routes as core;
use dealbridge_sandbox::observe::LoggedRequest;
use dealbridge_sandbox::salesforce::routes as sf;
use dealbridge_sandbox::whmcs::routes as whmcs;
use serde_json::Value;

/// Calls per system, with what they were.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Calls {
    pub sf_token: usize,
    pub sf_reads: usize,
    pub sf_writes: usize,
    /// Maxio AB requests (every site), 429 answers included.
    pub ab: usize,
    /// Maxio AB requests answered 429 (over the site's concurrency limit).
    pub ab_429: usize,
    pub core: usize,
    pub whmcs: usize,
    /// `system: call` → count.
    pub detail: BTreeMap<String, usize>,
}

impl Calls {
    /// The calls of one system, as `name ×n` in the order of the detail map.
    pub fn describe(&self, system: &str) -> String {
        let parts: Vec<String> = self
            .detail
            .iter()
            .filter_map(|(k, n)| {
                let (s, call) = k.split_once(": ")?;
                (s == system).then(|| format!("{call} ×{n}"))
            })
            .collect();
        if parts.is_empty() {
            "–".into()
        } else {
            parts.join(", ")
        }
    }

    fn note(&mut self, system: &str, call: &str) {
        *self.detail.entry(format!("{system}: {call}")).or_default() += 1;
    }
}

/// Whether a Composite request only reads (every subrequest a GET).
fn composite_reads_only(body: &str) -> bool {
    serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| {
            v.get("compositeRequest")?.as_array().map(|subs| {
                subs.iter().all(|s| {
                    s.get("method")
                        .and_then(Value::as_str)
                        .is_some_and(|m| m.eq_ignore_ascii_case("GET"))
                })
            })
        })
        .unwrap_or(false)
}

fn salesforce(calls: &mut Calls, r: &LoggedRequest) {
    let (kind, name) = match r.route.as_str() {
        sf::TOKEN => {
            calls.sf_token += 1;
            ("token", "OAuth token")
        }
        sf::COMPOSITE if composite_reads_only(&r.body) => ("read", "Composite (GETs)"),
        sf::COMPOSITE => ("write", "Composite (with writes)"),
        sf::COLLECTIONS_PATCH => ("write", "sObject Collections PATCH"),
        sf::SOBJECT_PATCH => ("write", "sObject PATCH"),
        sf::QUERY | sf::QUERY_SLASH => ("read", "query"),
        sf::QUERY_MORE => ("read", "queryMore"),
        sf::SOBJECT_GET => ("read", "sObject GET"),
        _ if r.method == "GET" => ("read", r.route.as_str()),
        _ => ("write", r.route.as_str()),
    };
    match kind {
        "read" => calls.sf_reads += 1,
        "write" => calls.sf_writes += 1,
        _ => {}
    }
    let name = name.to_string();
    calls.note("salesforce", &name);
}

fn maxio_ab(calls: &mut Calls, r: &LoggedRequest) {
    calls.ab += 1;
    if r.status == 429 {
        calls.ab_429 += 1;
        calls.note("ab", "429 Too Many Requests");
        return;
    }
    let name = match r.route.as_str() {
        ab::CUSTOMER_LOOKUP => "customer lookup",
        ab::CUSTOMERS_CREATE => "customer create",
        ab::COMPONENT_READ | ab::COMPONENT_LOOKUP => "component read",
        ab::PRICE_POINT_READ => "price point lookup",
        ab::PRICE_POINTS_LIST => "price point list",
        ab::PRICE_POINTS_CREATE => "price point create",
        ab::SUBSCRIPTION_LOOKUP => "subscription lookup",
        ab::SUBSCRIPTIONS_CREATE => "subscription create",
        ab::SUBSCRIPTION_COMPONENTS => "subscription components read",
        other => other,
    }
    .to_string();
    calls.note("ab", &name);
}

fn maxio_core(calls: &mut Calls, r: &LoggedRequest) {
    calls.core += 1;
    let name = match r.route.as_str() {
        core::CUSTOMERS => "customer list",
        core::CUSTOMER => "customer read",
        core::CONTRACTS => "contract list",
        core::CONTRACT => "contract read",
        core::CONTRACT_PATCH => "contract PATCH",
        other => other,
    }
    .to_string();
    calls.note("core", &name);
}

/// The `action` of a WHMCS API request (form body, or query string).
fn whmcs_action(r: &LoggedRequest) -> String {
    let query = r.uri.split_once('?').map_or("", |(_, q)| q);
    [r.body.as_str(), query]
        .iter()
        .find_map(|form| {
            url::form_urlencoded::parse(form.as_bytes())
                .find(|(k, _)| k == "action")
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "(no action)".into())
}

fn whmcs_call(calls: &mut Calls, r: &LoggedRequest) {
    calls.whmcs += 1;
    let name = match r.route.as_str() {
        whmcs::API | whmcs::API_GET => whmcs_action(r),
        other => other.to_string(),
    };
    calls.note("whmcs", &name);
}

/// Every call the stack's fakes have logged so far.
pub fn count(stack: &LocalStack) -> Calls {
    let mut calls = Calls::default();
    for r in stack.salesforce.observer().requests() {
        salesforce(&mut calls, &r);
    }
    // Every AB site's requests (the `uk` site's too: a cold process reads its currencies).
    for r in stack
        .maxio_ab
        .observer()
        .requests()
        .into_iter()
        .chain(stack.maxio_ab_uk.observer().requests())
    {
        maxio_ab(&mut calls, &r);
    }
    for r in stack.maxio_core.observer().requests() {
        maxio_core(&mut calls, &r);
    }
    for r in stack.whmcs.observer().requests() {
        whmcs_call(&mut calls, &r);
    }
    calls
}
