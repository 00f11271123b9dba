//! Metrics in CloudWatch Embedded Metric Format (EMF): counters, gauges and call latencies are
//! gathered in the process while a function works, and written to stdout as EMF JSON lines at
//! the end of each invocation ([`flush`]); CloudWatch Logs turns them into metrics in the
//! `dealbridge` namespace, per function and rolled up over all functions.
//!
//! What is measured: deals dispatched, messages handled and retried, failures written to
//! Salesforce, the org's API usage from `Sforce-Limit-Info`, and the latency of every call to
//! Salesforce, Maxio AB, Maxio Core and WHMCS.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use serde_json::{Map, Value, json};

/// The CloudWatch namespace.
pub const NAMESPACE: &str = "dealbridge";

/// Deals handed to dispatch successfully (intake, platform events, reconciler, re-dispatch).
pub const DEALS_DISPATCHED: &str = "DealsDispatched";
/// Queue messages a worker finished (done, failed for good and said so in Salesforce, or moved
/// to the dead-letter queue at once because they can never be handled).
pub const MESSAGES_DONE: &str = "MessagesDone";
/// Queue messages a worker asked to have delivered again.
pub const MESSAGES_RETRIED: &str = "MessagesRetried";
/// Failures written to a Salesforce record (an Opportunity's or Order's error field).
pub const FAILURES_REPORTED: &str = "FailuresReported";
/// The org's daily API requests used, in percent of its allocation (the latest seen).
pub const SALESFORCE_API_USAGE_PERCENT: &str = "SalesforceApiUsagePercent";
/// Milliseconds per external call, with the `Service` dimension.
pub const EXTERNAL_CALL_LATENCY: &str = "ExternalCallLatency";

#[derive(Default)]
struct Registry {
    counters: BTreeMap<&'static str, f64>,
    gauges: BTreeMap<&'static str, f64>,
    latencies: BTreeMap<&'static str, Vec<f64>>,
}

/// A set of metrics being gathered; the process has one ([`count`], [`gauge`], [`latency`],
/// [`flush`]).
pub struct Metrics {
    registry: Mutex<Option<Registry>>,
}

static GLOBAL: Metrics = Metrics::new();

impl Metrics {
    pub const fn new() -> Metrics {
        Metrics {
            registry: Mutex::new(None),
        }
    }

    fn registry(&self) -> MutexGuard<'_, Option<Registry>> {
        self.registry.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn count(&self, name: &'static str, n: u64) {
        *self
            .registry()
            .get_or_insert_with(Registry::default)
            .counters
            .entry(name)
            .or_default() += n as f64;
    }

    pub fn gauge(&self, name: &'static str, value: f64) {
        self.registry()
            .get_or_insert_with(Registry::default)
            .gauges
            .insert(name, value);
    }

    pub fn latency(&self, service: &'static str, took: Duration) {
        self.registry()
            .get_or_insert_with(Registry::default)
            .latencies
            .entry(service)
            .or_default()
            .push(took.as_secs_f64() * 1000.0);
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// Adds `n` to a counter.
pub fn count(name: &'static str, n: u64) {
    GLOBAL.count(name, n);
}

/// Sets a gauge (the last value in an invocation wins; the maximum is what alarms read).
pub fn gauge(name: &'static str, value: f64) {
    GLOBAL.gauge(name, value);
}

/// Records one call to `service` (`salesforce`, `maxio-ab`, `maxio-core`, `whmcs`).
pub fn latency(service: &'static str, took: Duration) {
    GLOBAL.latency(service, took);
}

fn metric_list(names: &[(&str, &str)]) -> Value {
    Value::Array(
        names
            .iter()
            .map(|(name, unit)| json!({"Name": name, "Unit": unit}))
            .collect(),
    )
}

/// Takes what was gathered and renders it as EMF documents (none when nothing was gathered).
/// Counters and gauges share one document, with the dimension sets `[Function]` and `[]` (the
/// roll-up alarms read); each service's latencies get their own, with `[Function, Service]`.
pub fn take_emf(function: &str, timestamp_ms: i64) -> Vec<String> {
    GLOBAL.take_emf(function, timestamp_ms)
}

impl Metrics {
    /// As [`take_emf`], for this set.
    pub fn take_emf(&self, function: &str, timestamp_ms: i64) -> Vec<String> {
        let Some(r) = self.registry().take() else {
            return Vec::new();
        };
        let mut lines = Vec::new();
        if !r.counters.is_empty() || !r.gauges.is_empty() {
            let mut names: Vec<(&str, &str)> = r.counters.keys().map(|k| (*k, "Count")).collect();
            names.extend(r.gauges.keys().map(|k| (*k, "Percent")));
            let mut doc = Map::new();
            doc.insert(
                "_aws".into(),
                json!({
                    "Timestamp": timestamp_ms,
                    "CloudWatchMetrics": [{
                        "Namespace": NAMESPACE,
                        "Dimensions": [["Function"], []],
                        "Metrics": metric_list(&names),
                    }]
                }),
            );
            doc.insert("Function".into(), Value::String(function.to_string()));
            for (k, v) in r.counters.iter().chain(r.gauges.iter()) {
                doc.insert((*k).to_string(), json!(v));
            }
            lines.push(Value::Object(doc).to_string());
        }
        for (service, values) in &r.latencies {
            // EMF takes at most 100 values per metric and document.
            for chunk in values.chunks(100) {
                let doc = json!({
                    "_aws": {
                        "Timestamp": timestamp_ms,
                        "CloudWatchMetrics": [{
                            "Namespace": NAMESPACE,
                            "Dimensions": [["Function", "Service"]],
                            "Metrics": metric_list(&[(EXTERNAL_CALL_LATENCY, "Milliseconds")]),
                        }]
                    },
                    "Function": function,
                    "Service": service,
                    EXTERNAL_CALL_LATENCY: chunk,
                });
                lines.push(doc.to_string());
            }
        }
        lines
    }
}

/// Writes what was gathered to stdout as EMF lines; call it at the end of each invocation.
pub fn flush(function: &str) {
    let now = chrono::Utc::now().timestamp_millis();
    for line in take_emf(function, now) {
        println!("{line}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gathered_metrics_become_emf_documents_and_the_set_empties() {
        let m = Metrics::new();
        m.count(DEALS_DISPATCHED, 2);
        m.count(DEALS_DISPATCHED, 1);
        m.count(MESSAGES_RETRIED, 1);
        m.gauge(SALESFORCE_API_USAGE_PERCENT, 81.5);
        m.latency("maxio-ab", Duration::from_millis(12));
        m.latency("maxio-ab", Duration::from_millis(30));
        m.latency("salesforce", Duration::from_millis(7));

        let lines = m.take_emf("maxio-customer", 1_795_176_000_000);

        assert_eq!(lines.len(), 3);
        let main: Value = serde_json::from_str(&lines[0]).unwrap();
        assert_eq!(main["Function"], "maxio-customer");
        assert_eq!(main["DealsDispatched"], 3.0);
        assert_eq!(main["MessagesRetried"], 1.0);
        assert_eq!(main["SalesforceApiUsagePercent"], 81.5);
        let directive = &main["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "dealbridge");
        assert_eq!(directive["Dimensions"], json!([["Function"], []]));
        assert_eq!(
            directive["Metrics"][2],
            json!({"Name": "SalesforceApiUsagePercent", "Unit": "Percent"})
        );
        assert_eq!(main["_aws"]["Timestamp"], 1_795_176_000_000i64);
        let ab: Value = serde_json::from_str(&lines[1]).unwrap();
        assert_eq!(ab["Service"], "maxio-ab");
        assert_eq!(ab["ExternalCallLatency"], json!([12.0, 30.0]));
        assert!(m.take_emf("maxio-customer", 0).is_empty(), "flushed once");
    }
}
