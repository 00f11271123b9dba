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

/// Logs as Lambda's advanced logging controls ask, once per container: JSON when
/// `AWS_LAMBDA_LOG_FORMAT` is `JSON` (template.yaml's `LoggingConfig`), at `AWS_LAMBDA_LOG_LEVEL`,
/// with `RUST_LOG`'s levels per target (and its default level when Lambda sets none; INFO
/// without either), without timestamps (CloudWatch has them) or targets: the lines
/// `lambda_runtime`'s default subscriber writes, with the filter of [`crate::logs::filter`].
pub fn init_tracing() {
    use tracing_subscriber::filter::LevelFilter;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::{Layer, fmt, registry};

    let var = |name: &str| std::env::var(name).ok();
    let filter = crate::logs::filter(
        var("RUST_LOG").as_deref(),
        var("AWS_LAMBDA_LOG_LEVEL")
            .as_deref()
            .and_then(crate::logs::lambda_level),
        LevelFilter::INFO,
    );
    let json = var("AWS_LAMBDA_LOG_FORMAT").is_some_and(|f| f.eq_ignore_ascii_case("json"));
    let layer = fmt::layer().with_target(false).without_time();
    // Already set (a test harness, a second call): the first subscriber stays.
    let _ = if json {
        registry().with(layer.json().with_filter(filter)).try_init()
    } else {
        registry().with(layer.with_filter(filter)).try_init()
    };
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
