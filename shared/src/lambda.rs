//! The Lambda runtime loop of the queue functions: one SQS entry for every worker, which hands
//! each batch to its handler through the [`crate::runner`] with the invocation's deadline and the
//! queue's dead-letter queue, and writes the invocation's metrics at its end.

use std::sync::Arc;

use aws_lambda_events::sqs::SqsEvent;
use lambda_runtime::{Error, LambdaEvent, run, service_fn};

use crate::ledger::deadline_from_epoch_millis;
use crate::queue::DeadLetterQueue;
use crate::runner::{QueueHandler, run_batch};
use crate::settings::Function;
use crate::wiring::StartError;

/// JSON logs (Lambda's advanced logging) filtered by `RUST_LOG`, once per container.
pub fn init_tracing() {
    lambda_runtime::tracing::init_default_subscriber();
}

/// Serves `function`'s queue with `handler` until the runtime stops, moving what can never be
/// handled to `dead_letters` (the queue's dead-letter queue, [`crate::wiring::Wiring::dead_letters`]).
/// The handler comes from its own constructor in `Wiring` (not `Wiring::handler`), so a
/// function's binary links only its own step.
pub async fn serve_queue<H, E>(
    function: Function,
    dead_letters: Result<Arc<dyn DeadLetterQueue>, StartError>,
    handler: Result<H, E>,
) -> Result<(), Error>
where
    H: QueueHandler + 'static,
    E: std::error::Error + Send + Sync + 'static,
{
    let queue = function
        .queue()
        .ok_or_else(|| StartError::new(format!("{} consumes no queue", function.name())))?;
    let dead_letters = dead_letters?;
    let handler = handler?;
    let (handler, dead_letters) = (&handler, dead_letters.as_ref());
    run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        let deadline = deadline_from_epoch_millis(event.context.deadline);
        let response = run_batch(queue, handler, dead_letters, &event.payload, deadline).await;
        crate::metrics::flush(function.name());
        Ok::<_, Error>(response)
    }))
    .await
}
