//! The maxio-subscription function: finds or creates the AB subscription and checks it (`dealbridge::maxio::steps`).

use dealbridge::settings::Function;
use dealbridge::wiring::Wiring;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    dealbridge::lambda::init_tracing();
    let wiring = Wiring::for_queue(Function::MaxioSubscription).await?;
    dealbridge::lambda::serve_queue(
        Function::MaxioSubscription,
        wiring.dead_letters(),
        wiring.maxio(),
    )
    .await
}
