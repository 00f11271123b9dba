//! The WHMCS side of a CPQ Contract after its first sale: an approved renewal Order whose lines
//! equal the services carries them on without ordering anything; an amendment's new product is
//! ordered as a new service and nothing else; a change to a service's quantity is refused with
//! `WHMCS_CHANGE_NOT_SUPPORTED` before any WHMCS call. Re-runs send nothing new.

use dealbridge::salesforce::SfId;
use dealbridge_sandbox::local::LocalStack;
use serde_json::{Map, Value, json};

use crate::support::record;

fn fields(v: Value) -> Map<String, Value> {
    v.as_object().cloned().expect("an object")
}

fn insert(stack: &LocalStack, sobject: &str, v: Value) -> SfId {
    stack
        .salesforce
        .with_org(|org| org.insert(sobject, &fields(v)))
        .unwrap_or_else(|e| panic!("insert {sobject}: {e:?}"))
}

fn get(stack: &LocalStack, id: &SfId) -> Map<String, Value> {
    stack.salesforce.record(id.as_str()).expect("a record")
}

/// Provisions the seeded Internet Order (Gold, its installation and Hikari Denwa), then makes it
/// the first sale of a CPQ Contract. Returns the Contract.
async fn contracted(stack: &LocalStack) -> SfId {
    crate::support::provision_internet_order(stack).await;
    let opportunity = stack.id("InternetOpportunity");
    let quote = insert(
        stack,
        "SBQQ__Quote__c",
        json!({"SBQQ__Opportunity2__c": opportunity.as_str(), "SBQQ__Primary__c": true,
               "SBQQ__Type__c": "Quote", "SBQQ__StartDate__c": "2026-11-12"}),
    );
    let order = stack.id("InternetOrder");
    stack.salesforce.with_org(|org| {
        org.update(
            Some("Order"),
            order.as_str(),
            &fields(json!({"SBQQ__Quote__c": quote.as_str()})),
        )
        .unwrap()
    });
    insert(
        stack,
        "Contract",
        json!({"AccountId": stack.id("InternetAccount").as_str(), "StartDate": "2026-11-12",
               "ContractTerm": 12, "CurrencyIsoCode": "JPY",
               "SBQQ__Opportunity__c": opportunity.as_str(), "SBQQ__Quote__c": quote.as_str()}),
    )
}

/// A won Opportunity of the Contract (`link` is `SBQQ__AmendedContract__c` or
/// `SBQQ__RenewedContract__c`) with an approved Order of `items` (product reference, quantity,
/// unit price, the seeded order product it revises).
fn change(
    stack: &LocalStack,
    contract: &SfId,
    link: &str,
    items: &[(&str, i64, i64, Option<&str>)],
) -> SfId {
    let account = stack.id("InternetAccount");
    let mut opp = json!({"Name": "Haruka Sato - change", "AccountId": account.as_str(),
        "StageName": "Closed Won", "CloseDate": "2026-11-20", "IsWon": true, "IsClosed": true,
        "CurrencyIsoCode": "JPY"});
    opp[link] = json!(contract.as_str());
    let opportunity = insert(stack, "Opportunity", opp);
    let order = insert(
        stack,
        "Order",
        json!({"AccountId": account.as_str(), "OpportunityId": opportunity.as_str(),
               "Status": "Pending Review", "Activation_Status__c": "Activating",
               "EffectiveDate": "2026-11-20", "CurrencyIsoCode": "JPY",
               "Type": if link == "SBQQ__RenewedContract__c" { "Renewal" } else { "Amendment" }}),
    );
    for (n, (product, quantity, price, revises)) in items.iter().enumerate() {
        let mut item = json!({"OrderId": order.as_str(), "Product2Id": stack.id(product).as_str(),
            "Quantity": quantity, "UnitPrice": price, "OrderItemNumber": format!("00000090{n:02}")});
        if let Some(r) = revises {
            item["SBQQ__RevisedOrderProduct__c"] = json!(stack.id(r).as_str());
        }
        insert(stack, "OrderItem", item);
    }
    order
}

/// Sends the Order to the intake as a signed callout and runs the workers.
async fn run_order(stack: &LocalStack, order: &SfId) {
    crate::support::send_callout(stack, &json!({"orderId": order.as_str()})).await;
    stack.drain(500).await;
}

fn items_of(stack: &LocalStack, order: &SfId) -> Vec<Map<String, Value>> {
    let id = order.to_string();
    stack.salesforce.with_org(|org| {
        org.records("OrderItem")
            .into_iter()
            .filter(|r| r.get("OrderId").and_then(Value::as_str) == Some(id.as_str()))
            .cloned()
            .collect()
    })
}

fn service_of(stack: &LocalStack, reference: &str) -> Value {
    record(stack, reference)["WHMCS_Service_ID__c"].clone()
}

#[tokio::test]
async fn an_unchanged_renewal_carries_on_the_services_and_orders_nothing() {
    let stack = LocalStack::start().await.unwrap();
    let contract = contracted(&stack).await;
    let first_order = record(&stack, "InternetOrder")["WHMCS_Order_Id__c"].clone();
    let renewal = change(
        &stack,
        &contract,
        "SBQQ__RenewedContract__c",
        &[
            ("InternetGoldAptProduct", 1, 5300, None),
            ("HikariDenwaProduct", 1, 550, None),
        ],
    );
    let add_orders = stack.whmcs.action_count("AddOrder");
    run_order(&stack, &renewal).await;

    assert_eq!(
        stack.whmcs.action_count("AddOrder"),
        add_orders,
        "nothing ordered"
    );
    assert_eq!(stack.whmcs.services().len(), 3);
    let order = get(&stack, &renewal);
    assert_eq!(order["Activation_Status__c"], "Provisioned", "{order:?}");
    assert_eq!(order["WHMCS_Order_Id__c"], first_order);
    let services: Vec<Value> = items_of(&stack, &renewal)
        .iter()
        .map(|i| i["WHMCS_Service_ID__c"].clone())
        .collect();
    assert_eq!(
        services,
        [
            service_of(&stack, "InternetGoldItem"),
            service_of(&stack, "InternetPhoneItem")
        ]
    );

    // A re-run past the FIFO window sends nothing.
    stack.advance(std::time::Duration::from_secs(600));
    run_order(&stack, &renewal).await;
    assert_eq!(stack.whmcs.action_count("AddOrder"), add_orders);
}

#[tokio::test]
async fn an_amendment_orders_its_new_product_alone_once() {
    let stack = LocalStack::start().await.unwrap();
    let contract = contracted(&stack).await;
    let amendment = change(
        &stack,
        &contract,
        "SBQQ__AmendedContract__c",
        &[("InstallWeekendProduct", 1, 11000, None)],
    );
    let add_orders = stack.whmcs.action_count("AddOrder");
    run_order(&stack, &amendment).await;

    assert_eq!(stack.whmcs.action_count("AddOrder"), add_orders + 1);
    let orders = stack.whmcs.orders();
    let placed = orders.last().unwrap();
    assert_eq!(placed.lines.len(), 1, "{placed:?}");
    let order = get(&stack, &amendment);
    assert_eq!(order["Activation_Status__c"], "Provisioned", "{order:?}");
    assert_eq!(order["WHMCS_Order_Id__c"].as_f64(), Some(placed.id as f64));
    assert_eq!(stack.whmcs.services().len(), 4);

    stack.advance(std::time::Duration::from_secs(600));
    run_order(&stack, &amendment).await;
    assert_eq!(stack.whmcs.action_count("AddOrder"), add_orders + 1);
}

#[tokio::test]
async fn a_quantity_change_on_a_service_is_refused_before_any_whmcs_call() {
    let stack = LocalStack::start().await.unwrap();
    let contract = contracted(&stack).await;
    let amendment = change(
        &stack,
        &contract,
        "SBQQ__AmendedContract__c",
        &[("InternetGoldAptProduct", 1, 5300, Some("InternetGoldItem"))],
    );
    let calls = stack.whmcs.observer().requests().len();
    run_order(&stack, &amendment).await;

    let writes: Vec<String> = stack.whmcs.observer().requests()[calls..]
        .iter()
        .map(|r| r.route.clone())
        .collect();
    assert!(writes.is_empty(), "no WHMCS call: {writes:?}");
    let order = get(&stack, &amendment);
    assert_eq!(order["Activation_Status__c"], "Failed");
    let error = order["Activation_Error__c"].as_str().unwrap_or_default();
    assert!(error.starts_with("WHMCS_CHANGE_NOT_SUPPORTED"), "{order:?}");
    assert!(
        error.contains(&format!(
            "on WHMCS service {}",
            service_of(&stack, "InternetGoldItem").as_str().unwrap()
        )),
        "{error}"
    );
}
