//! The maxio-customer worker: reads its FIFO queue and runs this step of the Maxio Advanced Billing chain
//! (see `dealbridge::maxio::steps`), reporting partial batch failures.

use aws_lambda_events::sqs::SqsEvent;
use dealbridge::maxio::worker::{deps_from_env, handle_batch};
use dealbridge::queue::QueueName;
use lambda_runtime::{Error, LambdaEvent, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let deps = deps_from_env().await?;
    let deps = &deps;
    run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        let response = handle_batch(&event.payload, deps, QueueName::MaxioCustomer).await;
        dealbridge::metrics::flush("maxio-customer");
        Ok::<_, Error>(response)
    }))
    .await
}
