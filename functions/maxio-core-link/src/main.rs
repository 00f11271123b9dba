//! The maxio-core-link worker: reads its FIFO queue, links each deal's AB subscription to its
//! Maxio Core contract and writes the outcome to the Opportunity (see
//! `dealbridge::maxio::core_link`), reporting partial batch failures.

use aws_lambda_events::sqs::SqsEvent;
use dealbridge::maxio::core_link::{deps_from_env, handle_batch};
use lambda_runtime::{Error, LambdaEvent, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let deps = deps_from_env().await?;
    let deps = &deps;
    run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        let response = handle_batch(&event.payload, deps).await;
        dealbridge::metrics::flush("maxio-core-link");
        Ok::<_, Error>(response)
    }))
    .await
}
