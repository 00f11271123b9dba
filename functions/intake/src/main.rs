use std::sync::Arc;

use dealbridge::clock::SystemClock;
use dealbridge::services::Services;
use dealbridge_intake::settings::IntakeSettings;
use dealbridge_intake::{Deps, handle};
use lambda_http::{Error, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_http::tracing::init_default_subscriber();
    let services = Services::from_env().await?;
    let settings = IntakeSettings::from_lookup(|k| std::env::var(k).ok()).map_err(|problems| {
        anyhow::anyhow!("invalid configuration:\n  {}", problems.join("\n  "))
    })?;
    let deps = Deps {
        dispatcher: services.dispatcher(),
        secrets: services.secrets.clone(),
        settings,
        clock: Arc::new(SystemClock),
    };
    let deps = &deps;
    run(service_fn(move |request| async move {
        let response = handle(request, deps).await;
        dealbridge::metrics::flush("intake");
        Ok::<_, Error>(response)
    }))
    .await
}
