//! What the end-to-end suites share: sending a seeded deal as Salesforce's Apex callout does,
//! running the workers until the queues drain, and reading a record back.

use dealbridge_sandbox::events::{http_request, sample, with_signed_body};
use dealbridge_sandbox::local::LocalStack;
use serde_json::{Map, Value, json};

/// Sends the seeded Opportunity to the intake as a signed callout; the intake must accept it.
pub async fn send_deal(stack: &LocalStack, opportunity: &str) {
    let id = stack.id(opportunity).to_string();
    let body = json!({"opportunityId": id}).to_string();
    let event = with_signed_body(
        &sample("intake-http-api-deal.json"),
        &body,
        stack.clock_now(),
    );
    let response = dealbridge_intake::handle(http_request(&event), &stack.intake).await;
    assert_eq!(
        response.status(),
        202,
        "{}",
        String::from_utf8_lossy(response.body().as_ref())
    );
}

/// Sends the deal, then runs the workers until the queues drain.
pub async fn run_deal(stack: &LocalStack, opportunity: &str) {
    send_deal(stack, opportunity).await;
    stack.drain(2000).await;
}

/// A seeded record as the org holds it now.
pub fn record(stack: &LocalStack, reference: &str) -> Map<String, Value> {
    stack
        .salesforce
        .record(stack.id(reference).as_str())
        .expect("record")
}
