//! The Lambda runtime loop of the queue functions: one SQS entry for every worker, which hands
//! each batch to its handler through the [`crate::runner`] with the invocation's deadline and
//! writes the invocation's metrics at its end.

use aws_lambda_events::sqs::SqsEvent;
use lambda_runtime::{Error, LambdaEvent, run, service_fn};

use crate::ledger::deadline_from_epoch_millis;
use crate::runner::run_batch;
use crate::settings::Function;
use crate::wiring::{StartError, Wiring};

/// JSON logs (Lambda's advanced logging) filtered by `RUST_LOG`, once per container.
pub fn init_tracing() {
    lambda_runtime::tracing::init_default_subscriber();
}

/// Serves `function`'s queue with its handler until the runtime stops.
pub async fn serve_queue(wiring: &Wiring, function: Function) -> Result<(), Error> {
    let queue = function
        .queue()
        .ok_or_else(|| StartError::new(format!("{} consumes no queue", function.name())))?;
    let handler = wiring.handler(queue)?;
    let handler = &handler;
    run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        let deadline = deadline_from_epoch_millis(event.context.deadline);
        let response = run_batch(queue, handler.as_ref(), &event.payload, deadline).await;
        crate::metrics::flush(function.name());
        Ok::<_, Error>(response)
    }))
    .await
}
