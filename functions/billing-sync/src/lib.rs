//! dealbridge billing sync, one function with two triggers:
//!
//! - the billing-sync FIFO queue (an SQS batch): hints from AB's webhooks (sent by the intake),
//!   from the schedule and from runs that stopped at their bounds; each target a batch names
//!   runs once ([`dealbridge::billing::run`]), and the records of a target whose run failed are
//!   reported for retry (`ReportBatchItemFailures`);
//! - EventBridge Scheduler (daily by default): one hint per target onto the queue, so every run
//!   of a target goes through its message group and no two overlap. A failed send fails the
//!   invocation; Scheduler's retry sends the same (deduplicated) hints.

use chrono::{DateTime, Utc};
use dealbridge::billing::hint::Target;
use dealbridge::billing::run::BillingRun;
use dealbridge::clock::Clock;
use dealbridge::queue::DeadLetterQueue;
use serde_json::{Value, json};
use tracing::error;

#[derive(Debug, thiserror::Error)]
pub enum InvocationError {
    #[error("the event is neither an SQS batch nor a schedule payload: {0}")]
    InvalidEvent(String),
    #[error("the schedule's hints could not all be sent: {0}")]
    Queue(#[from] dealbridge::queue::QueueError),
}

/// Serves the queue's batches and the schedule's invocations until the runtime stops.
pub async fn serve(wiring: &dealbridge::wiring::Wiring) -> Result<(), lambda_runtime::Error> {
    let run = wiring.billing_sync()?;
    let dead_letters = wiring.dead_letters()?;
    let (run, dead_letters) = (&run, dead_letters.as_ref());
    lambda_runtime::run(lambda_runtime::service_fn(
        move |event: lambda_runtime::LambdaEvent<Value>| async move {
            let deadline = dealbridge::ledger::deadline_from_epoch_millis(event.context.deadline);
            let outcome = handle(event.payload, run, dead_letters, deadline).await;
            dealbridge::metrics::flush("billing-sync");
            outcome.map_err(lambda_runtime::Error::from)
        },
    ))
    .await
}

/// True when `event` is an SQS batch (`Records` from `aws:sqs`).
fn is_sqs_batch(event: &Value) -> bool {
    event
        .get("Records")
        .and_then(Value::as_array)
        .is_some_and(|records| {
            records
                .iter()
                .all(|r| r.get("eventSource").and_then(Value::as_str) == Some("aws:sqs"))
        })
}

/// The time the schedule fired: Scheduler's `scheduledTime`, an EventBridge scheduled event's
/// `time`, or now for a manual invocation (`{}`).
pub fn scheduled_time(event: &Value, clock: &dyn Clock) -> Result<DateTime<Utc>, InvocationError> {
    let fields = match event {
        Value::Null => return Ok(clock.now()),
        Value::Object(fields) => fields,
        other => {
            return Err(InvocationError::InvalidEvent(format!(
                "expected a JSON object, got {other}"
            )));
        }
    };
    for key in ["scheduledTime", "time"] {
        match fields.get(key) {
            None | Some(Value::Null) => continue,
            Some(Value::String(s)) => {
                return DateTime::parse_from_rfc3339(s.trim())
                    .map(|t| t.with_timezone(&Utc))
                    .map_err(|e| {
                        InvocationError::InvalidEvent(format!(
                            "{key} {s:?} is not an RFC 3339 time: {e}"
                        ))
                    });
            }
            Some(other) => {
                return Err(InvocationError::InvalidEvent(format!(
                    "{key} must be a string, got {other}"
                )));
            }
        }
    }
    Ok(clock.now())
}

/// Handles one invocation: the batch response for an SQS batch, or the targets scheduled.
pub async fn handle(
    event: Value,
    run: &BillingRun,
    dead_letters: &dyn DeadLetterQueue,
    deadline: Option<DateTime<Utc>>,
) -> Result<Value, InvocationError> {
    if is_sqs_batch(&event) {
        let batch: aws_lambda_events::sqs::SqsEvent = serde_json::from_value(event)
            .map_err(|e| InvocationError::InvalidEvent(e.to_string()))?;
        let results = run
            .handle_records(&batch.records, dead_letters, deadline)
            .await;
        let response = dealbridge::runner::batch_response(&results);
        return serde_json::to_value(response)
            .map_err(|e| InvocationError::InvalidEvent(e.to_string()));
    }
    let at = scheduled_time(&event, run.clock.as_ref())?;
    let targets = run.schedule(at).await.inspect_err(|e| {
        error!(error = %e, "the billing sync's schedule could not send its hints");
    })?;
    Ok(json!({
        "scheduledTime": at.to_rfc3339(),
        "targets": targets.iter().map(Target::group).collect::<Vec<_>>(),
    }))
}
