//! Observability: every log line dealbridge writes while handling a deal carries the correlation
//! id and the deal's Salesforce Id (and, in the workers, the step and the Account), in the JSON
//! format Lambda's advanced logging uses; and the metrics gathered on the way come out as
//! CloudWatch Embedded Metric Format.

use std::io::Write;
use std::sync::{Arc, Mutex};

use dealbridge_sandbox::events::{http_request, sample, with_signed_body};
use dealbridge_sandbox::local::LocalStack;
use serde_json::{Value, json};
use tracing_subscriber::fmt::MakeWriter;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// The fields of the innermost span of a JSON log line, merged with its parents'.
fn span_fields(line: &Value) -> serde_json::Map<String, Value> {
    let mut fields = serde_json::Map::new();
    for span in line["spans"].as_array().into_iter().flatten() {
        if let Some(o) = span.as_object() {
            fields.extend(o.clone());
        }
    }
    fields
}

#[tokio::test]
async fn every_log_line_of_a_deal_carries_its_correlation_id_ids_and_step_and_metrics_are_emf() {
    let captured = Captured::default();
    use tracing_subscriber::Layer;
    use tracing_subscriber::layer::SubscriberExt;
    // The functions' filter (`dealbridge::logs::filter`) as RUST_LOG would set it.
    let filter = dealbridge::logs::filter(
        Some("dealbridge=info,dealbridge_intake=info"),
        None,
        tracing_subscriber::filter::LevelFilter::OFF,
    );
    let subscriber = tracing_subscriber::registry().with(
        tracing_subscriber::fmt::layer()
            .json()
            .with_writer(captured.clone())
            .with_filter(filter),
    );
    let _guard = tracing::subscriber::set_default(subscriber);
    let _ = dealbridge::metrics::take_emf("before", 0);

    let stack = LocalStack::start().await.unwrap();
    let opportunity = stack.id("VolumeOpportunity").to_string();
    let body = json!({"opportunityId": opportunity, "correlationId": "obs-1"}).to_string();
    let event = with_signed_body(
        &sample("intake-http-api-deal.json"),
        &body,
        stack.clock_now(),
    );
    let response = dealbridge_intake::handle(http_request(&event), &stack.intake).await;
    assert_eq!(response.status(), 202);
    stack.drain(200).await;

    let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("every line is JSON"))
        .collect();
    let worker_lines: Vec<&Value> = lines
        .iter()
        .filter(|l| {
            let target = l["target"].as_str().unwrap_or("");
            target.starts_with("dealbridge::maxio") || target.starts_with("dealbridge::worker")
        })
        .collect();
    assert!(worker_lines.len() >= 4, "the chain logs its steps: {text}");
    for line in &lines {
        let fields = span_fields(line);
        assert_eq!(
            fields.get("correlation_id"),
            Some(&json!("obs-1")),
            "{line}"
        );
        assert_eq!(fields.get("deal"), Some(&json!(opportunity)), "{line}");
    }
    for line in worker_lines {
        let fields = span_fields(line);
        assert!(fields.get("step").is_some_and(Value::is_string), "{line}");
        assert!(
            fields.get("account").is_some_and(Value::is_string),
            "{line}"
        );
    }

    let emf: Vec<Value> = dealbridge::metrics::take_emf("local", 1)
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let main = &emf[0];
    assert_eq!(
        main["_aws"]["CloudWatchMetrics"][0]["Namespace"],
        "dealbridge"
    );
    assert_eq!(main["DealsDispatched"], 1.0);
    assert!(main["MessagesDone"].as_f64().unwrap() >= 4.0, "{main}");
    // A gauge: one value per Salesforce answer, a list when there were several.
    let usage = &main["SalesforceApiUsagePercent"];
    assert!(
        usage.is_number()
            || usage
                .as_array()
                .is_some_and(|v| v.iter().all(Value::is_number)),
        "{main}"
    );
    // Every message's step was read, so the per-step counts add up to the roll-up.
    let per_step: Vec<(&str, f64)> = emf
        .iter()
        .filter_map(|d| Some((d["Step"].as_str()?, d["MessagesDone"].as_f64()?)))
        .collect();
    assert!(
        per_step.iter().any(|(step, _)| *step == "maxio-customer"),
        "{per_step:?}"
    );
    assert_eq!(
        per_step.iter().map(|(_, n)| n).sum::<f64>(),
        main["MessagesDone"].as_f64().unwrap(),
        "{per_step:?}"
    );
    let services: Vec<&str> = emf[1..]
        .iter()
        .filter_map(|d| d["Service"].as_str())
        .collect();
    assert_eq!(services, ["maxio-ab", "maxio-core", "salesforce"]);
}
