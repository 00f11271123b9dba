//! The Maxio Advanced Billing chain end to end: intake → customer → price points → subscription →
//! write-back, against the sandbox Salesforce org and the Maxio AB fake, on the in-memory queue.

use std::time::Duration;

use crate::support::{record as opportunity, run_deal};
use dealbridge::queue::{Queue, QueueName};
use dealbridge_sandbox::local::LocalStack;
use dealbridge_sandbox::maxio_ab::routes as ab_routes;
use dealbridge_sandbox::observe::Fault;
use dealbridge_sandbox::salesforce::routes as sf_routes;
use serde_json::{Value, json};

fn custom_price_points(stack: &LocalStack) -> Vec<Value> {
    stack
        .maxio_ab
        .price_points()
        .into_iter()
        .filter(|p| p["type"] != "default")
        .collect()
}

fn prices(pp: &Value) -> Vec<(Value, Value, Value)> {
    pp["prices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["starting_quantity"].clone(),
                p["ending_quantity"].clone(),
                p["unit_price"].clone(),
            )
        })
        .collect()
}

#[tokio::test]
async fn the_volume_deal_becomes_a_customer_a_volume_price_point_and_a_subscription() {
    let stack = LocalStack::start().await.unwrap();
    run_deal(&stack, "VolumeOpportunity").await;

    let customers = stack.maxio_ab.customers();
    assert_eq!(customers.len(), 1);
    let c = &customers[0];
    assert_eq!(c["reference"], stack.id("VolumeAccount").as_str());
    assert_eq!(c["organization"], "Larkspur Analytics, Inc.");
    assert_eq!(c["email"], "priya.raman@larkspur-analytics.example.com");
    assert_eq!(
        (c["first_name"].as_str(), c["last_name"].as_str()),
        (Some("Priya"), Some("Raman"))
    );
    assert_eq!(
        (
            c["country"].as_str(),
            c["state"].as_str(),
            c["city"].as_str()
        ),
        (Some("US"), Some("CA"), Some("San Francisco"))
    );

    let pps = custom_price_points(&stack);
    assert_eq!(pps.len(), 1, "{pps:?}");
    let pp = &pps[0];
    assert_eq!(
        pp["component_id"],
        json!(stack.maxio_ab.component_id("api-calls").unwrap())
    );
    assert_eq!(pp["pricing_scheme"], "volume");
    assert_eq!(
        prices(pp),
        vec![
            (json!(1), json!(100000), json!("0.004")),
            (json!(100001), json!(1000000), json!("0.0032")),
            (json!(1000001), json!(10000000), json!("0.0025")),
            (json!(10000001), Value::Null, json!("0.0018")),
        ]
    );
    let item = stack.id("VolumeApiCallsItem").to_string().to_lowercase();
    assert!(
        pp["handle"]
            .as_str()
            .unwrap()
            .starts_with(&format!("sf-{item}-")),
        "{}",
        pp["handle"]
    );
    assert!(
        pp["name"]
            .as_str()
            .unwrap()
            .contains("Larkspur Analytics, Inc."),
        "{}",
        pp["name"]
    );

    let subs = stack.maxio_ab.subscriptions();
    assert_eq!(subs.len(), 1);
    let s = &subs[0];
    assert_eq!(s["reference"], stack.id("VolumeOpportunity").as_str());
    assert_eq!(s["customer"]["id"], c["id"]);
    assert_eq!(s["product"]["handle"], "monthly-usage");
    let components = stack
        .maxio_ab
        .subscription_components(s["id"].as_i64().unwrap());
    let api = components
        .iter()
        .find(|x| x["component_handle"] == "api-calls")
        .expect("api-calls");
    assert_eq!(api["price_point_id"], pp["id"]);
    assert!(
        components
            .iter()
            .any(|x| x["component_handle"] == "platform-fee" && x["enabled"] == true)
    );

    let opp = opportunity(&stack, "VolumeOpportunity");
    assert_eq!(opp["Maxio_Sync_Status__c"], "Synced");
    assert_eq!(opp["Maxio_Subscription_Id__c"], s["id"].to_string());
    assert_eq!(opp["Maxio_Customer_Id__c"], c["id"].to_string());
    assert_eq!(opp["Maxio_Sync_Error__c"], Value::Null);
    assert!(
        opp["Maxio_Sync_DateTime__c"]
            .as_str()
            .is_some_and(|t| t.starts_with("2026-11-20"))
    );
    let account = stack
        .salesforce
        .record(stack.id("VolumeAccount").as_str())
        .unwrap();
    assert_eq!(account["Maxio_Customer_Id__c"], c["id"].to_string());
    assert_eq!(
        stack
            .salesforce
            .observer()
            .count(sf_routes::COLLECTIONS_PATCH),
        1,
        "one write call per deal"
    );
}

#[tokio::test]
async fn graduated_flat_fee_and_unscheduled_deals_get_their_schemes() {
    let stack = LocalStack::start().await.unwrap();
    for deal in [
        "GraduatedOpportunity",
        "FlatFeeOpportunity",
        "NoScheduleOpportunity",
    ] {
        run_deal(&stack, deal).await;
        assert_eq!(
            opportunity(&stack, deal)["Maxio_Sync_Status__c"],
            "Synced",
            "{deal}"
        );
    }
    let pps = custom_price_points(&stack);
    let by_component = |handle: &str| {
        let id = json!(stack.maxio_ab.component_id(handle).unwrap());
        pps.iter()
            .find(|p| p["component_id"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("no price point for {handle}"))
    };
    let storage = by_component("storage-gb");
    assert_eq!(storage["pricing_scheme"], "tiered");
    assert_eq!(
        prices(&storage),
        vec![
            (json!(1), json!(1000), json!("0.25")),
            (json!(1001), json!(10000), json!("0.2")),
            (json!(10001), Value::Null, json!("0.15")),
        ]
    );
    let seats = by_component("support-seats");
    assert_eq!(seats["pricing_scheme"], "stairstep");
    assert_eq!(
        prices(&seats)[0],
        (json!(1), json!(10), json!("500.0")),
        "AB prints decimals the way Ruby does"
    );
    assert_eq!(
        pps.len(),
        2,
        "the deal without a schedule uses the default price point"
    );

    let subs = stack.maxio_ab.subscriptions();
    assert_eq!(subs.len(), 3);
    let flat = subs
        .iter()
        .find(|s| s["reference"] == stack.id("FlatFeeOpportunity").as_str())
        .unwrap();
    let seats_component = stack
        .maxio_ab
        .subscription_components(flat["id"].as_i64().unwrap())
        .into_iter()
        .find(|c| c["component_handle"] == "support-seats")
        .unwrap();
    assert_eq!(
        seats_component["allocated_quantity"]
            .to_string()
            .trim_matches('"'),
        "25"
    );
    let plain = subs
        .iter()
        .find(|s| s["reference"] == stack.id("NoScheduleOpportunity").as_str())
        .unwrap();
    let support = stack
        .maxio_ab
        .subscription_components(plain["id"].as_i64().unwrap())
        .into_iter()
        .find(|c| c["component_handle"] == "premium-support")
        .unwrap();
    assert_eq!(support["price_point_type"], "default");
}

#[tokio::test]
async fn running_a_deal_twice_creates_nothing_twice() {
    let stack = LocalStack::start().await.unwrap();
    run_deal(&stack, "VolumeOpportunity").await;
    stack.advance(Duration::from_secs(3600));
    // The Opportunity now carries its subscription id, so a second dispatch is skipped by the plan;
    // clear it to force the whole chain to run again.
    let opp = stack.id("VolumeOpportunity");
    stack.salesforce.with_org(|org| {
        let mut f = serde_json::Map::new();
        f.insert("Maxio_Subscription_Id__c".into(), Value::Null);
        org.update(Some("Opportunity"), opp.as_str(), &f).unwrap();
    });
    run_deal(&stack, "VolumeOpportunity").await;
    assert_eq!(stack.maxio_ab.customers().len(), 1);
    assert_eq!(custom_price_points(&stack).len(), 1);
    assert_eq!(stack.maxio_ab.subscriptions().len(), 1);
    assert_eq!(
        opportunity(&stack, "VolumeOpportunity")["Maxio_Sync_Status__c"],
        "Synced"
    );
}

#[tokio::test]
async fn every_message_delivered_twice_creates_nothing_twice() {
    let stack = LocalStack::start().await.unwrap();
    run_deal(&stack, "GraduatedOpportunity").await;
    run_deal(&stack, "FlatFeeOpportunity").await;
    // Deliver every message of the chain again, as SQS may, bypassing FIFO deduplication.
    for q in [
        QueueName::MaxioCustomer,
        QueueName::MaxioPricePoints,
        QueueName::MaxioSubscription,
    ] {
        for mut m in stack.queue.sent(q) {
            m.dedup_id = m.dedup_id.map(|d| format!("{}again", &d[..20]));
            stack.queue.send(&m).await.unwrap();
        }
    }
    stack.drain(500).await;
    assert_eq!(stack.maxio_ab.customers().len(), 2);
    assert_eq!(custom_price_points(&stack).len(), 2);
    assert_eq!(stack.maxio_ab.subscriptions().len(), 2);
}

#[tokio::test]
async fn a_deal_without_any_email_creates_nothing_and_says_why_on_the_opportunity() {
    let stack = LocalStack::start().await.unwrap();
    run_deal(&stack, "NoEmailOpportunity").await;
    assert!(stack.maxio_ab.customers().is_empty());
    assert!(custom_price_points(&stack).is_empty());
    assert!(stack.maxio_ab.subscriptions().is_empty());
    let opp = opportunity(&stack, "NoEmailOpportunity");
    assert_eq!(opp["Maxio_Sync_Status__c"], "Failed");
    let error = opp["Maxio_Sync_Error__c"].as_str().unwrap();
    assert!(error.starts_with("MAXIO_NO_BILLING_EMAIL: "), "{error}");
    assert!(error.contains("Kestrel Freight"), "{error}");
    assert_eq!(
        stack
            .maxio_ab
            .observer()
            .requests()
            .iter()
            .filter(|r| !r.route.starts_with("GET "))
            .count(),
        0,
        "nothing was written to Maxio"
    );
}

#[tokio::test]
async fn an_unmapped_product_is_named_in_the_error() {
    let stack = LocalStack::start().await.unwrap();
    run_deal(&stack, "UnmappedOpportunity").await;
    let opp = opportunity(&stack, "UnmappedOpportunity");
    assert_eq!(opp["Maxio_Sync_Status__c"], "Failed");
    let error = opp["Maxio_Sync_Error__c"].as_str().unwrap();
    assert!(error.contains("MAXIO_UNMAPPED_PRODUCT"), "{error}");
    assert!(
        error.contains("Custom Onboarding Workshop (ONBOARDING-WORKSHOP)"),
        "{error}"
    );
    assert!(stack.maxio_ab.subscriptions().is_empty());
}

#[tokio::test]
async fn throttling_and_outages_are_retried_and_the_deal_completes() {
    let stack = LocalStack::start().await.unwrap();
    let ab = stack.maxio_ab.observer();
    ab.inject(
        ab_routes::CUSTOMERS_CREATE,
        Fault::json(503, json!({"errors": ["Service Unavailable"]})),
    );
    ab.inject(
        ab_routes::PRICE_POINTS_CREATE,
        Fault::json(429, json!({"errors": ["usage violation"]})).times(2),
    );
    ab.inject(
        ab_routes::SUBSCRIPTIONS_CREATE,
        Fault::json(503, json!({"errors": ["Service Unavailable"]})).times(5),
    );
    run_deal(&stack, "VolumeOpportunity").await;
    assert_eq!(
        opportunity(&stack, "VolumeOpportunity")["Maxio_Sync_Status__c"],
        "Synced"
    );
    assert_eq!(stack.maxio_ab.customers().len(), 1);
    assert_eq!(stack.maxio_ab.subscriptions().len(), 1);
    assert_eq!(ab.count(ab_routes::CUSTOMERS_CREATE), 2);
    assert_eq!(ab.count(ab_routes::PRICE_POINTS_CREATE), 3);
    assert!(
        ab.count(ab_routes::SUBSCRIPTIONS_CREATE) >= 6,
        "retried in the client and again by redelivery"
    );
}

#[tokio::test]
async fn a_silent_fallback_to_the_default_price_point_is_caught_and_moved_to_the_deals() {
    let stack = LocalStack::start().await.unwrap();
    stack.maxio_ab.force_default_price_point("api-calls");
    run_deal(&stack, "VolumeOpportunity").await;
    let opp = opportunity(&stack, "VolumeOpportunity");
    assert_eq!(opp["Maxio_Sync_Status__c"], "Synced");
    let ab = stack.maxio_ab.observer();
    assert_eq!(ab.count(ab_routes::SUBSCRIPTIONS_CREATE), 1);
    assert_eq!(
        ab.count(ab_routes::SUBSCRIPTION_PRICE_POINTS),
        1,
        "moved once"
    );
    let sub = &stack.maxio_ab.subscriptions()[0];
    let api_calls = stack.maxio_ab.component_id("api-calls").unwrap();
    let on = stack
        .maxio_ab
        .subscription_components(sub["id"].as_i64().unwrap())
        .into_iter()
        .find(|c| c["component_id"] == api_calls)
        .unwrap();
    let deal_point = custom_price_points(&stack)
        .into_iter()
        .find(|p| p["component_id"] == api_calls)
        .unwrap();
    assert_eq!(on["price_point_id"], deal_point["id"]);
    let record = dealbridge::ledger::Ledger::get(
        &stack.ledger,
        stack.id("VolumeOpportunity").as_str(),
        "maxio-subscription",
    )
    .await
    .unwrap()
    .unwrap();
    assert!(
        record.targets["maxio_repaired"].starts_with("API Calls (api-calls) is on price point"),
        "{:?}",
        record.targets
    );
}

#[tokio::test]
async fn a_locked_opportunity_is_written_again() {
    let stack = LocalStack::start().await.unwrap();
    stack.salesforce.observer().inject(
        sf_routes::COLLECTIONS_PATCH,
        Fault::json(200, json!([
            {"success": false, "errors": [{"statusCode": "UNABLE_TO_LOCK_ROW", "message": "unable to obtain exclusive access to this record", "fields": []}]},
            {"success": false, "errors": [{"statusCode": "UNABLE_TO_LOCK_ROW", "message": "unable to obtain exclusive access to this record", "fields": []}]}
        ])),
    );
    run_deal(&stack, "GraduatedOpportunity").await;
    assert_eq!(
        opportunity(&stack, "GraduatedOpportunity")["Maxio_Sync_Status__c"],
        "Synced"
    );
    assert_eq!(
        stack
            .salesforce
            .observer()
            .count(sf_routes::COLLECTIONS_PATCH),
        2
    );
}

#[tokio::test]
async fn the_client_lists_a_components_price_points() {
    let stack = LocalStack::start().await.unwrap();
    run_deal(&stack, "VolumeOpportunity").await;
    let id = stack.maxio_ab.component_id("api-calls").unwrap();
    let site = stack.maxio.sites.get("default").unwrap();
    let listed = site.ab.list_price_points(id).await.unwrap();
    let handles: Vec<Option<String>> = listed.iter().map(|p| p.handle.clone()).collect();
    assert_eq!(listed.len(), 2, "{handles:?}");
    assert!(
        handles
            .iter()
            .any(|h| h.as_deref().is_some_and(|h| h.starts_with("sf-")))
    );
}
