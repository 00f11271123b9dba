//! A first sale billed exactly as Salesforce says, or refused before any AB write: currencies and
//! the two AB sites, repeated lines netted, start dates, and a subscription an earlier run left
//! wrong brought to the deal by a re-run. Against the seeded deals 9–15 of
//! `sandbox/data/salesforce/README.md`.

use dealbridge::ledger::Ledger;
use dealbridge_sandbox::local::LocalStack;
use dealbridge_sandbox::maxio_ab::{MaxioAbSandbox, routes as ab_routes};
use serde_json::{Map, Value, json};

use crate::support::{record, run_deal};

/// The deal's subscription on `site`, found by its reference (the Opportunity Id).
fn subscription(stack: &LocalStack, site: &MaxioAbSandbox, opportunity: &str) -> Option<Value> {
    let reference = stack.id(opportunity).to_string();
    site.subscriptions()
        .into_iter()
        .find(|s| s["reference"] == reference.as_str())
}

fn component<'a>(components: &'a [Value], site: &MaxioAbSandbox, handle: &str) -> &'a Value {
    let id = site.component_id(handle).expect("component");
    components
        .iter()
        .find(|c| c["component_id"] == id)
        .unwrap_or_else(|| panic!("{handle} is not on the subscription: {components:?}"))
}

/// Writes (POST, PUT, DELETE) a site received.
fn writes(site: &MaxioAbSandbox) -> Vec<String> {
    site.observer()
        .requests()
        .into_iter()
        .map(|r| r.route)
        .filter(|r| !r.starts_with("GET "))
        .collect()
}

#[tokio::test]
async fn a_eur_deal_bills_in_eur_on_the_site_that_has_eur_with_the_deals_own_eur_prices() {
    let stack = LocalStack::start().await.unwrap();
    let before = writes(&stack.maxio_ab).len();
    run_deal(&stack, "EuroOpportunity").await;

    let sub = subscription(&stack, &stack.maxio_ab, "EuroOpportunity").expect("subscription");
    assert_eq!(sub["currency"], "EUR");
    let point = stack
        .maxio_ab
        .price_points()
        .into_iter()
        .find(|p| {
            p["handle"]
                .as_str()
                .is_some_and(|h| h.contains(&stack.id("EuroStorageGbItem").as_str().to_lowercase()))
        })
        .expect("the deal's price point");
    assert_eq!(point["use_site_exchange_rate"], false);
    assert!(
        point["name"].as_str().unwrap().contains("EUR"),
        "{}",
        point["name"]
    );
    let brackets: Vec<(Value, Value)> = point["prices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["id"].clone(), p["unit_price"].clone()))
        .collect();
    let eur: Vec<(Value, String)> = point["currency_prices"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["currency"] == "EUR")
        .map(|c| {
            (
                c["price_id"].clone(),
                c["price"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(eur.len(), 2, "one EUR price per bracket: {point}");
    for ((bracket, _), (price_id, price)) in brackets.iter().zip(&eur) {
        assert_eq!(bracket, price_id);
        assert!(
            ["0.1", "0.10", "0.08"].iter().any(|p| price.starts_with(p)),
            "{price}"
        );
    }
    let components = stack
        .maxio_ab
        .subscription_components(sub["id"].as_i64().unwrap());
    assert_eq!(
        component(&components, &stack.maxio_ab, "storage-gb")["price_point_id"],
        point["id"]
    );
    assert!(
        stack.maxio_ab_uk.customers().is_empty(),
        "nothing on the GBP site"
    );
    assert!(writes(&stack.maxio_ab).len() > before);

    let opp = record(&stack, "EuroOpportunity");
    assert_eq!(opp["Maxio_Sync_Status__c"], "Synced");
    assert_eq!(opp["Maxio_Site__c"], "default");
    assert_eq!(
        opp["Maxio_Subscription_Id__c"].as_str(),
        Some(sub["id"].to_string().as_str())
    );
}

#[tokio::test]
async fn a_gbp_deal_goes_to_the_gbp_site_and_nothing_is_made_on_the_other() {
    let stack = LocalStack::start().await.unwrap();
    let default_writes = writes(&stack.maxio_ab);
    run_deal(&stack, "SterlingOpportunity").await;

    let sub = subscription(&stack, &stack.maxio_ab_uk, "SterlingOpportunity")
        .expect("a subscription on the uk site");
    assert_eq!(sub["currency"], "GBP");
    let customers = stack.maxio_ab_uk.customers();
    assert_eq!(customers.len(), 1);
    assert_eq!(
        customers[0]["reference"],
        stack.id("SterlingAccount").as_str()
    );
    let points: Vec<Value> = stack
        .maxio_ab_uk
        .price_points()
        .into_iter()
        .filter(|p| p["type"] != "default")
        .collect();
    assert_eq!(points.len(), 1);
    assert_eq!(points[0]["prices"][0]["unit_price"], "0.2");
    assert_eq!(
        writes(&stack.maxio_ab),
        default_writes,
        "the USD site received no write"
    );
    let opp = record(&stack, "SterlingOpportunity");
    assert_eq!(opp["Maxio_Site__c"], "uk");
    assert_eq!(opp["Maxio_Sync_Status__c"], "Synced");
    let ledger = stack
        .ledger
        .get(
            stack.id("SterlingOpportunity").as_str(),
            "maxio-subscription",
        )
        .await
        .unwrap()
        .expect("ledger record");
    assert_eq!(ledger.targets["maxio_site"], "uk");
}

#[tokio::test]
async fn a_jpy_deal_no_site_bills_is_refused_before_any_ab_write() {
    let stack = LocalStack::start().await.unwrap();
    let before = (writes(&stack.maxio_ab), writes(&stack.maxio_ab_uk));
    run_deal(&stack, "YenOpportunity").await;

    let opp = record(&stack, "YenOpportunity");
    assert_eq!(opp["Maxio_Sync_Status__c"], "Failed");
    assert_eq!(
        opp["Maxio_Sync_Error__c"],
        "MAXIO_CURRENCY_UNSUPPORTED: no AB site bills JPY: default bills USD, EUR; uk bills GBP"
    );
    assert_eq!(
        (writes(&stack.maxio_ab), writes(&stack.maxio_ab_uk)),
        before
    );
}

#[tokio::test]
async fn forty_seat_lines_at_one_price_bill_forty_seats_on_one_component() {
    let stack = LocalStack::start().await.unwrap();
    run_deal(&stack, "SeatsOpportunity").await;

    let sub = subscription(&stack, &stack.maxio_ab, "SeatsOpportunity").expect("subscription");
    let components = stack
        .maxio_ab
        .subscription_components(sub["id"].as_i64().unwrap());
    let seats = component(&components, &stack.maxio_ab, "support-seats");
    assert_eq!(seats["allocated_quantity"], json!(40));
    let created = stack
        .maxio_ab
        .observer()
        .requests()
        .into_iter()
        .rfind(|r| r.route == ab_routes::SUBSCRIPTIONS_CREATE)
        .expect("the create");
    let body: Value = serde_json::from_str(&created.body).unwrap();
    assert_eq!(
        body["subscription"]["components"].as_array().unwrap().len(),
        1,
        "one component in the create body: {body}"
    );
    assert_eq!(
        stack
            .maxio_ab
            .observer()
            .count(ab_routes::PRICE_POINTS_CREATE),
        0
    );
    let opp = record(&stack, "SeatsOpportunity");
    assert_eq!(opp["Maxio_Sync_Status__c"], "Synced");
}

#[tokio::test]
async fn seat_lines_at_two_prices_are_refused_naming_the_lines_and_nothing_is_made() {
    let stack = LocalStack::start().await.unwrap();
    let before = writes(&stack.maxio_ab);
    run_deal(&stack, "SplitPriceOpportunity").await;

    let opp = record(&stack, "SplitPriceOpportunity");
    assert_eq!(opp["Maxio_Sync_Status__c"], "Failed");
    let error = opp["Maxio_Sync_Error__c"].as_str().unwrap();
    assert!(
        error.starts_with(
            "MAXIO_SPLIT_PRICE: the lines of component support-seats bill at different prices"
        ),
        "{error}"
    );
    assert!(
        error.contains(stack.id("SplitPriceSupportSeatsItem1").as_str()),
        "{error}"
    );
    assert!(error.contains("unit price 150"), "{error}");
    assert!(error.contains("unit price 90"), "{error}");
    assert_eq!(writes(&stack.maxio_ab), before, "no AB record at all");
}

#[tokio::test]
async fn a_future_order_starts_the_subscription_on_its_date() {
    let stack = LocalStack::start().await.unwrap();
    run_deal(&stack, "FutureOpportunity").await;

    let sub = subscription(&stack, &stack.maxio_ab, "FutureOpportunity").expect("subscription");
    assert_eq!(sub["state"], "awaiting_signup");
    assert!(
        sub["next_assessment_at"]
            .as_str()
            .is_some_and(|t| t.starts_with("2027-01-01")),
        "{sub}"
    );
    let created = stack
        .maxio_ab
        .observer()
        .requests()
        .into_iter()
        .find(|r| {
            r.route == ab_routes::SUBSCRIPTIONS_CREATE
                && r.body.contains(stack.id("FutureOpportunity").as_str())
        })
        .expect("the create");
    let body: Value = serde_json::from_str(&created.body).unwrap();
    assert_eq!(body["subscription"]["initial_billing_at"], "2027-01-01");
    let ledger = stack
        .ledger
        .get(stack.id("FutureOpportunity").as_str(), "maxio-subscription")
        .await
        .unwrap()
        .expect("ledger record");
    assert!(
        ledger.targets["maxio_start"].starts_with("starts 2027-01-01"),
        "{:?}",
        ledger.targets
    );
    assert_eq!(
        record(&stack, "FutureOpportunity")["Maxio_Sync_Status__c"],
        "Synced"
    );
}

#[tokio::test]
async fn a_subscription_left_wrong_is_brought_to_the_deal_by_a_rerun_and_allocated_once() {
    let stack = LocalStack::start().await.unwrap();
    stack.seed_broken_subscription().await.unwrap();
    let sub = subscription(&stack, &stack.maxio_ab, "RepairOpportunity").expect("seeded");
    let id = sub["id"].as_i64().unwrap();
    let seeded = stack.maxio_ab.subscription_components(id);
    assert_eq!(
        component(&seeded, &stack.maxio_ab, "support-seats")["allocated_quantity"],
        json!(1)
    );

    run_deal(&stack, "RepairOpportunity").await;

    let after = stack.maxio_ab.subscription_components(id);
    assert_eq!(
        component(&after, &stack.maxio_ab, "support-seats")["allocated_quantity"],
        json!(12)
    );
    let storage = component(&after, &stack.maxio_ab, "storage-gb");
    let point = stack
        .maxio_ab
        .price_points()
        .into_iter()
        .find(|p| p["id"] == storage["price_point_id"])
        .unwrap();
    assert_eq!(
        point["pricing_scheme"], "tiered",
        "the deal's tiers: {point}"
    );
    let allocations = stack.maxio_ab.allocations(id);
    assert_eq!(allocations.len(), 1, "{allocations:?}");
    assert_eq!(allocations[0]["quantity"], json!(12));
    assert_eq!(allocations[0]["upgrade_charge"], "prorated");
    let references: Vec<Value> = stack
        .maxio_ab
        .subscriptions()
        .into_iter()
        .filter(|s| s["reference"] == sub["reference"])
        .collect();
    assert_eq!(references.len(), 1, "no second subscription");
    let opp = record(&stack, "RepairOpportunity");
    assert_eq!(opp["Maxio_Sync_Status__c"], "Synced");
    assert_eq!(opp["Maxio_Subscription_Id__c"], id.to_string().as_str());
    let ledger = stack
        .ledger
        .get(stack.id("RepairOpportunity").as_str(), "maxio-subscription")
        .await
        .unwrap()
        .unwrap();
    let repaired = &ledger.targets["maxio_repaired"];
    assert!(
        repaired.contains("has quantity 1 instead of 12"),
        "{repaired}"
    );

    // Run again (as if someone set the deal back to Failed): the subscription matches the deal
    // now, so nothing at all is written to AB.
    opp_status(&stack, "RepairOpportunity", "Failed");
    let before = writes(&stack.maxio_ab);
    run_deal(&stack, "RepairOpportunity").await;
    assert_eq!(writes(&stack.maxio_ab), before);
    assert_eq!(stack.maxio_ab.allocations(id).len(), 1);
}

fn opp_status(stack: &LocalStack, reference: &str, status: &str) {
    let id = stack.id(reference);
    stack.salesforce.with_org(|org| {
        let mut f = Map::new();
        f.insert("Maxio_Sync_Status__c".into(), Value::String(status.into()));
        org.update(Some("Opportunity"), id.as_str(), &f).unwrap();
    });
}
