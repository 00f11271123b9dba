//! The whmcs-provision function: provisions an approved Order in WHMCS exactly once (`dealbridge::whmcs::provision`).

use dealbridge::settings::Function;
use dealbridge::wiring::Wiring;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    dealbridge::lambda::init_tracing();
    let wiring = Wiring::for_queue(Function::WhmcsProvision).await?;
    dealbridge::lambda::serve_queue(
        Function::WhmcsProvision,
        wiring.dead_letters(),
        wiring.whmcs(),
    )
    .await
}
