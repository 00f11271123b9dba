use std::collections::BTreeSet;

use serde_json::{Value, json};

use super::*;

/// The units CloudWatch accepts (`MetricDatum.Unit`).
const CLOUDWATCH_UNITS: &[&str] = &[
    "Seconds",
    "Microseconds",
    "Milliseconds",
    "Bytes",
    "Kilobytes",
    "Megabytes",
    "Gigabytes",
    "Terabytes",
    "Bits",
    "Kilobits",
    "Megabits",
    "Gigabits",
    "Terabits",
    "Percent",
    "Count",
    "Bytes/Second",
    "Kilobytes/Second",
    "Megabytes/Second",
    "Gigabytes/Second",
    "Terabytes/Second",
    "Bits/Second",
    "Kilobits/Second",
    "Megabits/Second",
    "Gigabits/Second",
    "Terabits/Second",
    "Count/Second",
    "None",
];

/// Parses EMF lines, checking each is a document CloudWatch extracts metrics from: one
/// directive in the namespace, every dimension of every set a top-level string, every metric
/// named a top-level number or list of at most 100 numbers, with a known unit.
fn parse(lines: &[String]) -> Vec<Value> {
    lines
        .iter()
        .map(|line| {
            let doc: Value = serde_json::from_str(line).unwrap();
            let directives = doc["_aws"]["CloudWatchMetrics"].as_array().unwrap();
            assert_eq!(directives.len(), 1, "{doc}");
            let directive = &directives[0];
            assert_eq!(directive["Namespace"], NAMESPACE);
            for set in directive["Dimensions"].as_array().unwrap() {
                for dimension in set.as_array().unwrap() {
                    let key = dimension.as_str().unwrap();
                    assert!(
                        doc[key].is_string(),
                        "{key} is not a top-level string: {doc}"
                    );
                }
            }
            let metrics = directive["Metrics"].as_array().unwrap();
            assert!(!metrics.is_empty() && metrics.len() <= 100, "{doc}");
            for metric in metrics {
                let name = metric["Name"].as_str().unwrap();
                assert_eq!(metric["Unit"], unit(name), "{doc}");
                let value = &doc[name];
                let ok = value.is_number()
                    || value
                        .as_array()
                        .is_some_and(|v| v.len() <= 100 && v.iter().all(Value::is_number));
                assert!(ok, "{name} is not a value or list of values: {doc}");
            }
            doc
        })
        .collect()
}

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
    let docs = parse(&lines);
    let main = &docs[0];
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
    let ab = &docs[1];
    assert_eq!(ab["Service"], "maxio-ab");
    assert_eq!(ab["ExternalCallLatency"], json!([12.0, 30.0]));
    assert_eq!(
        ab["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
        json!([["Function", "Service"]])
    );
    assert_eq!(docs[2]["ExternalCallLatency"], 7.0);
    assert!(m.take_emf("maxio-customer", 0).is_empty(), "flushed once");
}

#[test]
fn a_counter_by_a_dimension_is_written_per_value_and_still_counts_in_the_roll_ups() {
    let m = Metrics::new();
    m.count_by(MESSAGES_DONE, STEP, "maxio-customer", 1);
    m.count_by(MESSAGES_DONE, STEP, "maxio-customer", 1);
    m.count_by(MESSAGES_DONE, STEP, "whmcs-provision", 1);
    m.count(MESSAGES_DONE, 1);
    m.count_by(FAILURES_REPORTED, CODE, "MAXIO_GAVE_UP", 1);

    let docs = parse(&m.take_emf("delayed", 5));

    assert_eq!(docs.len(), 4, "{docs:?}");
    let main = &docs[0];
    assert_eq!(
        main["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
        json!([["Function"], []])
    );
    assert_eq!(
        main["MessagesDone"], 4.0,
        "every message, with a step or not"
    );
    assert_eq!(main["FailuresReported"], 1.0);
    assert!(main.get("Step").is_none() && main.get("Code").is_none());

    let code = &docs[1];
    assert_eq!(code["Function"], "delayed");
    assert_eq!(code["Code"], "MAXIO_GAVE_UP");
    assert_eq!(code["FailuresReported"], 1.0);
    let directive = &code["_aws"]["CloudWatchMetrics"][0];
    assert_eq!(
        directive["Dimensions"],
        json!([["Function", "Code"], ["Code"]])
    );
    assert_eq!(
        directive["Metrics"],
        json!([{"Name": "FailuresReported", "Unit": "Count"}])
    );

    let steps: Vec<(&str, f64)> = docs[2..]
        .iter()
        .map(|d| {
            (
                d["Step"].as_str().unwrap(),
                d["MessagesDone"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(steps, [("maxio-customer", 2.0), ("whmcs-provision", 1.0)]);
    assert_eq!(
        docs[2]["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
        json!([["Function", "Step"], ["Step"]])
    );
}

#[test]
fn a_gauge_keeps_every_value_per_dimension_value_and_in_the_roll_ups() {
    let m = Metrics::new();
    for in_use in [1.0, 3.0, 2.0] {
        m.gauge_by(AB_BUDGET_SLOTS, SITE, "default", 4.0);
        m.gauge_by(AB_BUDGET_SLOTS_IN_USE, SITE, "default", in_use);
        m.gauge_by(AB_BUDGET_WAIT_MILLISECONDS, SITE, "default", 0.0);
    }
    m.gauge_by(AB_BUDGET_SLOTS_IN_USE, SITE, "eu", 1.0);
    m.count_by(AB_RATE_LIMITED, SITE, "eu", 1);

    let docs = parse(&m.take_emf("maxio-subscription", 5));

    assert_eq!(docs.len(), 3, "{docs:?}");
    assert_eq!(docs[0]["AbBudgetSlotsInUse"], json!([1.0, 3.0, 2.0, 1.0]));
    assert_eq!(docs[0]["AbRateLimited"], 1.0);
    let default = &docs[1];
    assert_eq!(default["Site"], "default");
    assert_eq!(default["AbBudgetSlots"], json!([4.0, 4.0, 4.0]));
    assert_eq!(default["AbBudgetSlotsInUse"], json!([1.0, 3.0, 2.0]));
    assert_eq!(default["AbBudgetWaitMilliseconds"], json!([0.0, 0.0, 0.0]));
    let directive = &default["_aws"]["CloudWatchMetrics"][0];
    assert_eq!(
        directive["Dimensions"],
        json!([["Function", "Site"], ["Site"]])
    );
    let units: Vec<(&str, &str)> = directive["Metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["Name"].as_str().unwrap(), m["Unit"].as_str().unwrap()))
        .collect();
    assert_eq!(
        units,
        [
            ("AbBudgetSlots", "Count"),
            ("AbBudgetSlotsInUse", "Count"),
            ("AbBudgetWaitMilliseconds", "Milliseconds"),
        ]
    );
    let eu = &docs[2];
    assert_eq!(eu["Site"], "eu");
    assert_eq!(eu["AbRateLimited"], 1.0);
    assert_eq!(eu["AbBudgetSlotsInUse"], 1.0);
}

#[test]
fn more_than_100_values_of_a_gauge_continue_in_further_documents() {
    let m = Metrics::new();
    m.count(MESSAGES_DONE, 1);
    for i in 0..250 {
        m.gauge_by(AB_BUDGET_SLOTS_IN_USE, SITE, "default", f64::from(i % 4));
    }
    m.gauge(SALESFORCE_API_USAGE_PERCENT, 10.0);

    let docs = parse(&m.take_emf("maxio-customer", 5));

    let main: Vec<&Value> = docs.iter().filter(|d| d.get("Site").is_none()).collect();
    let site: Vec<&Value> = docs.iter().filter(|d| d.get("Site").is_some()).collect();
    assert_eq!((main.len(), site.len()), (3, 3));
    let values = |d: &Value| d["AbBudgetSlotsInUse"].as_array().map_or(0, Vec::len);
    assert_eq!(
        main.iter().map(|d| values(d)).collect::<Vec<_>>(),
        [100, 100, 50]
    );
    assert_eq!(
        site.iter().map(|d| values(d)).collect::<Vec<_>>(),
        [100, 100, 50]
    );
    assert_eq!(main[0]["MessagesDone"], 1.0);
    assert_eq!(main[0]["SalesforceApiUsagePercent"], 10.0);
    assert!(
        main[1..].iter().all(
            |d| d.get("MessagesDone").is_none() && d.get("SalesforceApiUsagePercent").is_none()
        ),
        "counted once: {main:?}"
    );
}

#[test]
fn every_metric_has_one_name_and_a_cloudwatch_unit_and_the_dimensions_are_apart() {
    let names: BTreeSet<&str> = DEFINED.iter().map(|d| d.name).collect();
    assert_eq!(names.len(), DEFINED.len(), "a name is defined twice");
    for d in DEFINED {
        assert!(CLOUDWATCH_UNITS.contains(&d.unit), "{}: {}", d.name, d.unit);
        assert_eq!(unit(d.name), d.unit);
    }
    let mut dimensions: BTreeSet<&str> = DIMENSIONS.iter().copied().collect();
    assert_eq!(dimensions.len(), DIMENSIONS.len());
    assert!(dimensions.insert(FUNCTION) && dimensions.insert(SERVICE));
    assert!(
        dimensions
            .iter()
            .all(|d| !names.contains(d) && *d != "_aws"),
        "a dimension is named like a metric: {dimensions:?}"
    );
}
