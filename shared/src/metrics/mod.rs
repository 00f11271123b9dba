//! Metrics in CloudWatch Embedded Metric Format (EMF): counters, gauges and call latencies are
//! gathered in the process while a function works, and written to stdout as EMF JSON lines at
//! the end of each invocation ([`flush`]); CloudWatch Logs turns them into metrics in the
//! `dealbridge` namespace, per function and rolled up over all functions.
//!
//! What is measured: deals dispatched, messages handled and retried (per step), failures written
//! to Salesforce (per error code), the org's API usage from `Sforce-Limit-Info`, the latency of
//! every call to Salesforce, Maxio AB, Maxio Core and WHMCS, and how full each Maxio AB site's
//! request budget is.
//!
//! Dimensions: every counter and gauge is written per function (`[Function]`) and rolled up over
//! all functions (`[]`); the alarms read the roll-ups. A counter or gauge may carry one more
//! dimension ([`count_by`], [`gauge_by`]; one of [`DIMENSIONS`]): it is then also written per
//! value of that dimension, over all functions (`[D]`, what the dashboard graphs) and per function
//! (`[Function, D]`). A value given with a dimension still counts in the roll-ups, so the
//! roll-ups always hold every value. Latencies are written per function and service
//! (`[Function, Service]`).
//!
//! A counter adds up over an invocation and is written once. A gauge keeps every value it is
//! given in the invocation, each a data point: its Maximum, Average and percentiles are over all
//! of them.
//!
//! Every metric's name is a constant here, listed with its unit in [`DEFINED`]; the dashboard in
//! `template.yaml` may graph only these (a test checks).

mod emf;

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

/// The CloudWatch namespace.
pub const NAMESPACE: &str = "dealbridge";

/// A metric dealbridge writes: its name and its CloudWatch unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Definition {
    pub name: &'static str,
    pub unit: &'static str,
}

/// Declares each metric's name constant and lists them all, with their units, in [`DEFINED`], so
/// that no metric can be named without a unit.
macro_rules! metrics {
    ($( $(#[$doc:meta])* $constant:ident = $name:literal in $unit:literal; )*) => {
        $( $(#[$doc])* pub const $constant: &str = $name; )*

        /// Every metric dealbridge writes, with its unit.
        pub const DEFINED: &[Definition] = &[ $( Definition { name: $name, unit: $unit } ),* ];
    };
}

metrics! {
    /// Deals handed to dispatch successfully (intake, platform events, reconciler, re-dispatch).
    DEALS_DISPATCHED = "DealsDispatched" in "Count";
    /// Queue messages a worker finished (done, failed for good and said so in Salesforce, or moved
    /// to the dead-letter queue at once because they can never be handled); with [`STEP`] when
    /// the message's step could be read.
    MESSAGES_DONE = "MessagesDone" in "Count";
    /// Queue messages a worker asked to have delivered again; with [`STEP`] when the message's
    /// step could be read.
    MESSAGES_RETRIED = "MessagesRetried" in "Count";
    /// Failures written to a Salesforce record (an Opportunity's or Order's error field), with
    /// [`CODE`]: the failure's stable error code.
    FAILURES_REPORTED = "FailuresReported" in "Count";
    /// The org's daily API requests used, in percent of its allocation (a gauge: one value per
    /// Salesforce answer that reports it).
    SALESFORCE_API_USAGE_PERCENT = "SalesforceApiUsagePercent" in "Percent";
    /// Milliseconds per external call, with the `Service` dimension.
    EXTERNAL_CALL_LATENCY = "ExternalCallLatency" in "Milliseconds";
    /// A Maxio AB site's request budget: how many requests may be in flight against it at once
    /// (its slots). A gauge with [`SITE`], given when a request takes a slot.
    AB_BUDGET_SLOTS = "AbBudgetSlots" in "Count";
    /// The slots of a Maxio AB site's budget found held at the moment a request took one,
    /// including its own. A gauge with [`SITE`], one value per request; its Maximum over a
    /// period, against [`AB_BUDGET_SLOTS`], shows how full the budget was.
    AB_BUDGET_SLOTS_IN_USE = "AbBudgetSlotsInUse" in "Count";
    /// How long a Maxio AB request waited for a slot of its site's budget, in milliseconds (0
    /// when one was free). A gauge with [`SITE`], one value per request that took a slot.
    AB_BUDGET_WAIT_MILLISECONDS = "AbBudgetWaitMilliseconds" in "Milliseconds";
    /// Answers 429 (too many requests) from Maxio AB. A counter with [`SITE`].
    AB_RATE_LIMITED = "AbRateLimited" in "Count";
}

/// The function that wrote a metric: every metric is written with it, and without it rolled up.
pub const FUNCTION: &str = "Function";
/// The external service of [`EXTERNAL_CALL_LATENCY`] (`salesforce`, `maxio-ab`, `maxio-core`,
/// `whmcs`).
pub const SERVICE: &str = "Service";
/// A queue message's step, as its envelope names it (`maxio-customer`, `whmcs-provision`, ...).
pub const STEP: &str = "Step";
/// A failure's stable error code, as written to Salesforce (`MAXIO_GAVE_UP`, ...).
pub const CODE: &str = "Code";
/// A Maxio AB site's key: its name among the mapping document's AB sites (`default` for the
/// default site).
pub const SITE: &str = "Site";

/// The dimensions a counter or gauge can carry besides [`FUNCTION`] ([`count_by`], [`gauge_by`]).
pub const DIMENSIONS: &[&str] = &[STEP, CODE, SITE];

/// The unit `name` is written with (`None` for a name not in [`DEFINED`]).
pub fn unit(name: &str) -> &'static str {
    DEFINED
        .iter()
        .find(|d| d.name == name)
        .map_or("None", |d| d.unit)
}

/// What was gathered under one set of dimensions.
#[derive(Default)]
struct Values {
    counters: BTreeMap<&'static str, f64>,
    gauges: BTreeMap<&'static str, Vec<f64>>,
}

impl Values {
    fn count(&mut self, name: &'static str, n: u64) {
        *self.counters.entry(name).or_default() += n as f64;
    }

    fn gauge(&mut self, name: &'static str, value: f64) {
        self.gauges.entry(name).or_default().push(value);
    }
}

#[derive(Default)]
struct Registry {
    /// Every counter and gauge, with or without an extra dimension: the roll-ups.
    all: Values,
    /// Those given with an extra dimension, by dimension and value.
    by: BTreeMap<(&'static str, String), Values>,
    /// Milliseconds per call ([`EXTERNAL_CALL_LATENCY`]), by service.
    latencies: BTreeMap<&'static str, Values>,
}

impl Registry {
    fn by(&mut self, dimension: &'static str, value: &str) -> &mut Values {
        self.by.entry((dimension, value.to_string())).or_default()
    }
}

/// A set of metrics being gathered; the process has one ([`count`], [`count_by`], [`gauge`],
/// [`gauge_by`], [`latency`], [`flush`]).
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

    fn with<T>(&self, f: impl FnOnce(&mut Registry) -> T) -> T {
        let mut guard: MutexGuard<'_, Option<Registry>> =
            self.registry.lock().unwrap_or_else(|p| p.into_inner());
        f(guard.get_or_insert_with(Registry::default))
    }

    pub fn count(&self, name: &'static str, n: u64) {
        self.with(|r| r.all.count(name, n));
    }

    pub fn count_by(&self, name: &'static str, dimension: &'static str, value: &str, n: u64) {
        self.with(|r| {
            r.all.count(name, n);
            r.by(dimension, value).count(name, n);
        });
    }

    pub fn gauge(&self, name: &'static str, value: f64) {
        self.with(|r| r.all.gauge(name, value));
    }

    pub fn gauge_by(
        &self,
        name: &'static str,
        dimension: &'static str,
        dimension_value: &str,
        value: f64,
    ) {
        self.with(|r| {
            r.all.gauge(name, value);
            r.by(dimension, dimension_value).gauge(name, value);
        });
    }

    pub fn latency(&self, service: &'static str, took: Duration) {
        self.with(|r| {
            r.latencies
                .entry(service)
                .or_default()
                .gauge(EXTERNAL_CALL_LATENCY, took.as_secs_f64() * 1000.0)
        });
    }

    /// As [`take_emf`], for this set.
    pub fn take_emf(&self, function: &str, timestamp_ms: i64) -> Vec<String> {
        let taken = self
            .registry
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        taken.map_or_else(Vec::new, |r| emf::render(&r, function, timestamp_ms))
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

/// Adds `n` to a counter, for `value` of `dimension` (one of [`DIMENSIONS`]; `value` not empty)
/// and in its roll-ups.
pub fn count_by(name: &'static str, dimension: &'static str, value: &str, n: u64) {
    GLOBAL.count_by(name, dimension, value, n);
}

/// Gives a gauge a value (each value is a data point; alarms read the Maximum).
pub fn gauge(name: &'static str, value: f64) {
    GLOBAL.gauge(name, value);
}

/// Gives a gauge a value, for `dimension_value` of `dimension` (one of [`DIMENSIONS`]; not
/// empty) and in its roll-ups.
pub fn gauge_by(name: &'static str, dimension: &'static str, dimension_value: &str, value: f64) {
    GLOBAL.gauge_by(name, dimension, dimension_value, value);
}

/// Records one call to `service` (`salesforce`, `maxio-ab`, `maxio-core`, `whmcs`).
pub fn latency(service: &'static str, took: Duration) {
    GLOBAL.latency(service, took);
}

/// Takes what was gathered and renders it as EMF documents (none when nothing was gathered):
/// first the counters and gauges with the dimension sets `[Function]` and `[]` (the roll-ups
/// alarms read), then one document per extra dimension value with `[Function, D]` and `[D]`,
/// then each service's latencies with `[Function, Service]`. A gauge with more than 100 values
/// (EMF's limit per metric and document) continues in further documents of its kind.
pub fn take_emf(function: &str, timestamp_ms: i64) -> Vec<String> {
    GLOBAL.take_emf(function, timestamp_ms)
}

/// Writes what was gathered to stdout as EMF lines; call it at the end of each invocation.
pub fn flush(function: &str) {
    let now = chrono::Utc::now().timestamp_millis();
    for line in take_emf(function, now) {
        println!("{line}");
    }
}

/// How much of the counter `name` the process has gathered for `value` of `dimension` since it
/// was last flushed (for tests elsewhere in the crate, which share the process's set: it only
/// grows while nothing flushes it, so they compare it before and after).
#[cfg(test)]
pub(crate) fn counted(name: &str, dimension: &'static str, value: &str) -> f64 {
    GLOBAL.with(|r| {
        r.by.get(&(dimension, value.to_string()))
            .and_then(|v| v.counters.get(name))
            .copied()
            .unwrap_or(0.0)
    })
}

#[cfg(test)]
mod tests;
