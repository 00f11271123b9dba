//! The maxio-price-points function: finds or creates the deal's custom price points (`dealbridge::maxio::steps`).

use dealbridge::settings::Function;
use dealbridge::wiring::Wiring;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    dealbridge::lambda::init_tracing();
    let wiring = Wiring::for_queue(Function::MaxioPricePoints).await?;
    dealbridge::lambda::serve_queue(
        Function::MaxioPricePoints,
        wiring.dead_letters(),
        wiring.maxio(),
    )
    .await
}
