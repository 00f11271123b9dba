//! What the end-to-end suites share: sending a seeded deal as Salesforce's Apex callout does,
//! running the workers until the queues drain, and reading a record back.

use dealbridge_sandbox::events::{http_request, sample, with_signed_body};
use dealbridge_sandbox::local::LocalStack;
use serde_json::{Map, Value, json};

/// Sends the seeded Opportunity to the intake as a signed callout; the intake must accept it.
pub async fn send_deal(stack: &LocalStack, opportunity: &str) {
    let id = stack.id(opportunity).to_string();
    send_callout(stack, &json!({"opportunityId": id})).await;
}

/// Sends `body` (`{"opportunityId"}` or `{"orderId"}`) to the intake as a signed callout; the
/// intake must accept it.
pub async fn send_callout(stack: &LocalStack, body: &Value) {
    let body = body.to_string();
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

/// Runs the seeded Opportunity's deal; it must end Synced. Its AB subscription id.
pub async fn billed(stack: &LocalStack, opportunity: &str) -> i64 {
    run_deal(stack, opportunity).await;
    let opp = record(stack, opportunity);
    assert_eq!(opp["Maxio_Sync_Status__c"], "Synced", "{opp:?}");
    opp["Maxio_Subscription_Id__c"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("subscription id")
}

/// A seeded record as the org holds it now.
pub fn record(stack: &LocalStack, reference: &str) -> Map<String, Value> {
    stack
        .salesforce
        .record(stack.id(reference).as_str())
        .expect("record")
}

/// Provisions the seeded Internet Order as its approval's Platform Event does, and runs the
/// workers: three WHMCS services.
pub async fn provision_internet_order(stack: &LocalStack) {
    let event = serde_json::from_value(sample("platform-events-order-provision.json")).unwrap();
    dealbridge_platform_events::handle(event, &stack.platform_events)
        .await
        .unwrap();
    stack.drain(500).await;
    assert_eq!(stack.whmcs.services().len(), 3, "provisioned first");
}

/// Sets `fields` on the seeded Opportunity, as a person editing it in the org would.
pub fn update_opportunity(stack: &LocalStack, reference: &str, fields: Value) {
    let id = stack.id(reference);
    let Value::Object(fields) = fields else {
        panic!("fields")
    };
    stack.salesforce.with_org(|org| {
        org.update(Some("Opportunity"), id.as_str(), &fields)
            .unwrap();
    });
}
