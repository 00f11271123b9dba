//! The maxio-customer function: finds or creates the Maxio AB customer (`dealbridge::maxio::steps`).

use dealbridge::settings::Function;
use dealbridge::wiring::Wiring;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    dealbridge::lambda::init_tracing();
    let wiring = Wiring::for_queue(Function::MaxioCustomer).await?;
    dealbridge::lambda::serve_queue(
        Function::MaxioCustomer,
        wiring.dead_letters(),
        wiring.maxio(),
    )
    .await
}
