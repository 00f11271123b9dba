use std::sync::Arc;

use aws_lambda_events::sqs::SqsEvent;
use dealbridge::clock::SystemClock;
use dealbridge::ledger::DynamoDbLedger;
use dealbridge::retry::RetryPolicy;
use dealbridge::services::Services;
use dealbridge::writeback::WriteBack;
use dealbridge_delayed::{Deps, handle};
use lambda_runtime::{Error, LambdaEvent, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let services = Services::from_env().await?;
    let ledger = DynamoDbLedger::from_env(&services.aws)?;
    let deps = Deps {
        dispatcher: services.dispatcher(),
        ledger: Arc::new(ledger),
        queue: services.queue.clone(),
        clock: Arc::new(SystemClock),
        writeback: Arc::new(WriteBack::new(
            services.salesforce.clone(),
            Arc::new(services.config.mapping.clone()),
            Arc::new(SystemClock),
            RetryPolicy::default(),
        )),
        max_receives: dealbridge::worker::max_receives_from_env(),
    };
    let deps = &deps;
    run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        let response = handle(event.payload, deps).await;
        dealbridge::metrics::flush("delayed");
        Ok::<_, Error>(response)
    }))
    .await
}
