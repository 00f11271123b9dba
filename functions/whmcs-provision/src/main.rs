//! The whmcs-provision worker: reads its FIFO queue and provisions each approved Order in WHMCS
//! exactly once (see `dealbridge::whmcs::provision`), reporting partial batch failures. The
//! invocation deadline bounds the ledger lease of each attempt.

use aws_lambda_events::sqs::SqsEvent;
use dealbridge::ledger::deadline_from_epoch_millis;
use dealbridge::whmcs::provision::handle_batch;
use dealbridge::whmcs::worker::deps_from_env;
use lambda_runtime::{Error, LambdaEvent, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let deps = deps_from_env().await?;
    let deps = &deps;
    run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        let deadline = deadline_from_epoch_millis(event.context.deadline);
        let response = handle_batch(&event.payload, deps, deadline).await;
        dealbridge::metrics::flush("whmcs-provision");
        Ok::<_, Error>(response)
    }))
    .await
}
