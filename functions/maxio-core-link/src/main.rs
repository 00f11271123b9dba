//! The maxio-core-link function: links the AB subscription to its Maxio Core contract (`dealbridge::maxio::core_link`).

use dealbridge::settings::Function;
use dealbridge::wiring::Wiring;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    dealbridge::lambda::init_tracing();
    let wiring = Wiring::for_queue(Function::MaxioCoreLink).await?;
    dealbridge::lambda::serve_queue(
        Function::MaxioCoreLink,
        wiring.dead_letters(),
        wiring.core_link(),
    )
    .await
}
