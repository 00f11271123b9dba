//! The intake function: API Gateway's front door (`dealbridge_intake`).

use dealbridge::settings::Function;
use dealbridge::wiring::Wiring;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    dealbridge::lambda::init_tracing();
    let wiring = Wiring::from_env(Function::Intake).await?;
    dealbridge_intake::serve(&wiring).await
}
