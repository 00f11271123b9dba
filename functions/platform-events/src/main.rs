//! The platform-events function: Salesforce Platform Events relayed by EventBridge
//! (`dealbridge_platform_events`).

use dealbridge::settings::Function;
use dealbridge::wiring::Wiring;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    dealbridge::lambda::init_tracing();
    let wiring = Wiring::from_env(Function::PlatformEvents).await?;
    dealbridge_platform_events::serve(&wiring).await
}
