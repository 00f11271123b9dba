//! The reconciler function: finds deals whose trigger was lost, on a schedule
//! (`dealbridge_reconciler`).

use dealbridge::settings::Function;
use dealbridge::wiring::Wiring;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    dealbridge::lambda::init_tracing();
    let wiring = Wiring::from_env(Function::Reconciler).await?;
    dealbridge_reconciler::serve(&wiring).await
}
