//! The sandbox's own schema and seed (`sandbox/data/salesforce`) load, and the queries the
//! provisioning functions make return what the seed describes.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use dealbridge_org::{Org, QueryOptions};
use serde_json::{Value, json};

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../data/salesforce")
        .join(name)
}

fn query(org: &Org, soql: &str) -> Vec<Value> {
    org.query(soql, &QueryOptions::new("62.0"))
        .unwrap_or_else(|e| panic!("{soql}\n{e}"))
}

#[test]
fn the_seed_loads_and_answers_the_deal_queries() {
    let org = Org::from_files(&data("schema.json"), &[data("seed.json")])
        .unwrap_or_else(|e| panic!("the sandbox seed does not load: {e}"));
    let id = |r: &str| {
        org.id_of(r)
            .unwrap_or_else(|| panic!("the seed has no record {r}"))
    };

    // The opportunity with its account, primary quote and primary contact role.
    let opportunity = id("VolumeOpportunity");
    let rows = query(
        &org,
        &format!(
            "SELECT Id, Name, IsWon, Account.Name, SBQQ__PrimaryQuote__r.Name, \
             (SELECT Contact.FirstName, Contact.LastName, Role FROM OpportunityContactRoles WHERE IsPrimary = true) \
             FROM Opportunity WHERE Id = '{}'",
            opportunity.to_15()
        ),
    );
    assert_eq!(rows.len(), 1);
    let opp = &rows[0];
    assert_eq!(opp["Id"], json!(opportunity.as_str()));
    assert_eq!(opp["IsWon"], json!(true));
    assert_eq!(opp["Account"]["Name"], json!("Larkspur Analytics, Inc."));
    assert_eq!(opp["SBQQ__PrimaryQuote__r"]["Name"], json!("Q-01102"));
    let roles = &opp["OpportunityContactRoles"];
    assert_eq!(roles["totalSize"], json!(1));
    assert_eq!(roles["records"][0]["Contact"]["LastName"], json!("Raman"));

    // The CPQ rates of an order, through two custom relationships, in tier order.
    let rows = query(
        &org,
        &format!(
            "SELECT Id, SBQQ__LowerBound__c, SBQQ__UpperBound__c, SBQQ__Price__c, SBQQ__PricingMethod__c \
             FROM SBQQ__OrderItemConsumptionRate__c \
             WHERE SBQQ__OrderItemConsumptionSchedule__r.SBQQ__OrderItem__r.OrderId = '{}' \
             ORDER BY SBQQ__LowerBound__c",
            id("VolumeOrder")
        ),
    );
    let lower: Vec<&Value> = rows.iter().map(|r| &r["SBQQ__LowerBound__c"]).collect();
    assert_eq!(
        lower,
        [
            &json!(1.0),
            &json!(100001.0),
            &json!(1000001.0),
            &json!(10000001.0)
        ]
    );
    assert_eq!(rows[3]["SBQQ__UpperBound__c"], Value::Null);
    assert_eq!(rows[0]["Id"], json!(id("VolumeApiCallsRate1").as_str()));

    // Order lines with their products and schedules; a line without a schedule gives null.
    let rows = query(
        &org,
        &format!(
            "SELECT Id, (SELECT Id, Quantity, Product2.Name, \
             (SELECT SBQQ__Type__c FROM SBQQ__OrderItemConsumptionSchedules__r) \
             FROM OrderItems ORDER BY OrderItemNumber) FROM Order WHERE Id = '{}'",
            id("NoScheduleOrder")
        ),
    );
    let items = &rows[0]["OrderItems"]["records"];
    assert_eq!(items.as_array().map(Vec::len), Some(1));
    assert_eq!(
        items[0]["SBQQ__OrderItemConsumptionSchedules__r"],
        Value::Null
    );

    // A won deal without an order: its Orders subquery is null.
    let rows = query(
        &org,
        &format!(
            "SELECT Id, (SELECT Id FROM Orders) FROM Opportunity WHERE Id = '{}'",
            id("PendingOpportunity")
        ),
    );
    assert_eq!(rows[0]["Orders"], Value::Null);

    // Accounts that have an order: a semi-join agrees with the records themselves.
    let rows = query(
        &org,
        "SELECT Id FROM Account WHERE Id IN (SELECT AccountId FROM Order) ORDER BY Name",
    );
    let with_orders: BTreeSet<String> = org
        .records("Order")
        .iter()
        .filter_map(|o| o["AccountId"].as_str().map(str::to_string))
        .collect();
    let found: BTreeSet<String> = rows
        .iter()
        .filter_map(|r| r["Id"].as_str().map(str::to_string))
        .collect();
    assert_eq!(found, with_orders);
    assert!(!found.contains(id("PendingAccount").as_str()));

    // Text with `&` and a LIKE on it.
    let rows = query(
        &org,
        "SELECT Name FROM Account WHERE Name LIKE 'sable & finch%'",
    );
    assert_eq!(rows[0]["Name"], json!("Sable & Finch Consulting LLP"));
}
