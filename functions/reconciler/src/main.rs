use std::sync::Arc;

use dealbridge::clock::SystemClock;
use dealbridge::reconcile::ReconcileSettings;
use dealbridge::services::Services;
use dealbridge_reconciler::{Deps, handle};
use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let settings = ReconcileSettings::from_env()?;
    let services = Services::from_env().await?;
    let deps = Deps {
        dispatcher: services.dispatcher(),
        salesforce: services.salesforce.clone(),
        mapping: Arc::new(services.config.mapping.clone()),
        clock: Arc::new(SystemClock),
        settings,
    };
    let deps = &deps;
    run(service_fn(move |event: LambdaEvent<Value>| async move {
        let outcome = handle(event.payload, deps).await;
        dealbridge::metrics::flush("reconciler");
        outcome.map_err(Error::from)
    }))
    .await
}
