//! The billing-sync function: AB's and WHMCS's billing state into Salesforce, from the
//! billing-sync queue (AB's webhooks, continuations) and the schedule (`dealbridge_billing_sync`).

use dealbridge::settings::Function;
use dealbridge::wiring::Wiring;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    dealbridge::lambda::init_tracing();
    let wiring = Wiring::for_queue(Function::BillingSync).await?;
    dealbridge_billing_sync::serve(&wiring).await
}
