//! What was gathered, as EMF documents: one JSON object per line, its `_aws` directive naming
//! the metrics, their units and the dimension sets, and every dimension value and metric value a
//! top-level key.

use serde_json::{Map, Value, json};

use super::{FUNCTION, NAMESPACE, Registry, SERVICE, Values, unit};

/// EMF takes at most 100 values per metric and document.
const MAX_VALUES: usize = 100;

/// The documents of `registry`, in the order [`super::take_emf`] gives.
pub(super) fn render(registry: &Registry, function: &str, timestamp_ms: i64) -> Vec<String> {
    let mut docs = documents(
        &registry.all,
        &[(FUNCTION, function)],
        json!([[FUNCTION], []]),
        timestamp_ms,
    );
    for ((dimension, value), values) in &registry.by {
        docs.extend(documents(
            values,
            &[(FUNCTION, function), (dimension, value)],
            json!([[FUNCTION, dimension], [dimension]]),
            timestamp_ms,
        ));
    }
    for (service, values) in &registry.latencies {
        docs.extend(documents(
            values,
            &[(FUNCTION, function), (SERVICE, service)],
            json!([[FUNCTION, SERVICE]]),
            timestamp_ms,
        ));
    }
    docs.iter().map(Value::to_string).collect()
}

/// `values` as documents with the dimension values `keys` and the dimension sets `dimensions`:
/// the counters and the first 100 values of each gauge in the first, further gauge values in
/// more. None when there are no values.
fn documents(
    values: &Values,
    keys: &[(&str, &str)],
    dimensions: Value,
    timestamp_ms: i64,
) -> Vec<Value> {
    let gauge_docs = values
        .gauges
        .values()
        .map(|v| v.len().div_ceil(MAX_VALUES))
        .max()
        .unwrap_or(0);
    let count = gauge_docs.max(usize::from(!values.counters.is_empty()));
    (0..count)
        .map(|i| {
            let counters = values
                .counters
                .iter()
                .filter(|_| i == 0)
                .map(|(name, n)| (*name, json!(n)));
            let gauges = values.gauges.iter().filter_map(|(name, all)| {
                let chunk = all.chunks(MAX_VALUES).nth(i)?;
                Some((*name, sample(chunk)))
            });
            document(
                counters.chain(gauges).collect(),
                keys,
                &dimensions,
                timestamp_ms,
            )
        })
        .collect()
}

/// One document of `metrics` (name and value).
fn document(
    metrics: Vec<(&str, Value)>,
    keys: &[(&str, &str)],
    dimensions: &Value,
    timestamp_ms: i64,
) -> Value {
    let names: Vec<Value> = metrics
        .iter()
        .map(|(name, _)| json!({"Name": name, "Unit": unit(name)}))
        .collect();
    let mut doc = Map::new();
    doc.insert(
        "_aws".into(),
        json!({
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": dimensions,
                "Metrics": names,
            }]
        }),
    );
    for (key, value) in keys {
        doc.insert((*key).to_string(), Value::String((*value).to_string()));
    }
    for (name, value) in metrics {
        doc.insert(name.to_string(), value);
    }
    Value::Object(doc)
}

/// A gauge's values: a number when there is one, else the list (each a data point).
fn sample(values: &[f64]) -> Value {
    match values {
        [one] => json!(one),
        many => json!(many),
    }
}
