//! The delayed function: work that waits, over the standard delayed queue (`dealbridge::delayed`).

use dealbridge::settings::Function;
use dealbridge::wiring::Wiring;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    dealbridge::lambda::init_tracing();
    let wiring = Wiring::for_queue(Function::Delayed).await?;
    dealbridge::lambda::serve_queue(Function::Delayed, wiring.dead_letters(), wiring.delayed())
        .await
}
