use aws_lambda_events::eventbridge::EventBridgeEvent;
use dealbridge::services::Services;
use dealbridge_platform_events::{Deps, handle};
use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let services = Services::from_env().await?;
    let deps = Deps {
        dispatcher: services.dispatcher(),
    };
    let deps = &deps;
    run(service_fn(
        move |event: LambdaEvent<EventBridgeEvent<Value>>| async move {
            let outcome = handle(event.payload, deps).await;
            dealbridge::metrics::flush("platform-events");
            outcome.map_err(Error::from)
        },
    ))
    .await
}
