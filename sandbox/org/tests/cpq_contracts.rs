//! The sandbox seed's CPQ contracts, amendments and subscriptions (deals 16 and 18–33 of
//! `sandbox/data/salesforce/README.md`), read back with the queries dealbridge makes to apply an
//! amendment: the contract, its original Opportunity, every Order on it oldest first with its
//! delta lines, their consumption schedules and rates, the amendment Opportunity, and the
//! contract's subscriptions.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use dealbridge::salesforce::SfId;
use dealbridge_org::{ApiError, Org, QueryOptions};
use serde_json::{Map, Value, json};

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../data/salesforce")
        .join(name)
}

fn seed() -> Org {
    Org::from_files(&data("schema.json"), &[data("seed.json")])
        .unwrap_or_else(|e| panic!("the sandbox seed does not load: {e}"))
}

fn id(org: &Org, reference: &str) -> SfId {
    org.id_of(reference)
        .unwrap_or_else(|| panic!("the seed has no record {reference}"))
}

fn ids(org: &Org, references: &[&str]) -> Vec<Value> {
    references
        .iter()
        .map(|r| json!(id(org, r).as_str()))
        .collect()
}

fn reference(org: &Org, r: Option<&str>) -> Value {
    r.map_or(Value::Null, |r| json!(id(org, r).as_str()))
}

fn query(org: &Org, soql: &str) -> Vec<Value> {
    org.query(soql, &QueryOptions::new("62.0"))
        .unwrap_or_else(|e| panic!("{soql}\n{e}"))
}

fn column(rows: &[Value], key: &str) -> Vec<Value> {
    rows.iter().map(|r| r[key].clone()).collect()
}

fn url(sobject: &str, id: &SfId) -> String {
    format!("/services/data/v62.0/sobjects/{sobject}/{id}")
}

fn body(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        other => panic!("not an object: {other}"),
    }
}

// ---- the queries dealbridge runs, with `<C>` a contract Id and `<Q>` its quote ----

fn contract_query(c: &str) -> String {
    format!(
        "SELECT Id, ContractNumber, AccountId, StartDate, EndDate, ContractTerm, CurrencyIsoCode, \
         SBQQ__Quote__c, SBQQ__Opportunity__c, SBQQ__DisableAmendmentCoTerm__c \
         FROM Contract WHERE Id = '{c}'"
    )
}

fn original_opportunity_query(q: &str) -> String {
    format!(
        "SELECT Id, Name, StageName, Maxio_Subscription_Id__c, Maxio_Site__c FROM Opportunity \
         WHERE Id IN (SELECT SBQQ__Opportunity2__c FROM SBQQ__Quote__c WHERE Id = '{q}')"
    )
}

fn orders_query(c: &str, q: &str) -> String {
    format!(
        "SELECT Id, OrderNumber, Status, EffectiveDate, EndDate, OpportunityId, CurrencyIsoCode, \
         (SELECT Id, OrderItemNumber, Quantity, UnitPrice, ServiceDate, EndDate, Product2Id, Product2.Name, \
         SBQQ__RevisedOrderProduct__c, SBQQ__SegmentIndex__c, SBQQ__ContractAction__c \
         FROM OrderItems ORDER BY OrderItemNumber ASC, Id ASC) \
         FROM Order WHERE SBQQ__Quote__c = '{q}' OR Opportunity.SBQQ__AmendedContract__c = '{c}' \
         ORDER BY EffectiveDate ASC NULLS LAST, OrderNumber ASC"
    )
}

fn schedules_query(c: &str, q: &str) -> String {
    format!(
        "SELECT Id, SBQQ__OrderItem__c, SBQQ__Type__c FROM SBQQ__OrderItemConsumptionSchedule__c \
         WHERE SBQQ__OrderItem__r.Order.SBQQ__Quote__c = '{q}' \
         OR SBQQ__OrderItem__r.Order.Opportunity.SBQQ__AmendedContract__c = '{c}' ORDER BY Id ASC"
    )
}

fn rates_query(c: &str, q: &str) -> String {
    format!(
        "SELECT Id, SBQQ__OrderItemConsumptionSchedule__c, SBQQ__ProcessingOrder__c, SBQQ__LowerBound__c, \
         SBQQ__UpperBound__c, SBQQ__Price__c, SBQQ__PricingMethod__c FROM SBQQ__OrderItemConsumptionRate__c \
         WHERE SBQQ__OrderItemConsumptionSchedule__r.SBQQ__OrderItem__r.Order.SBQQ__Quote__c = '{q}' \
         OR SBQQ__OrderItemConsumptionSchedule__r.SBQQ__OrderItem__r.Order.Opportunity.SBQQ__AmendedContract__c = '{c}' \
         ORDER BY Id ASC"
    )
}

fn amendment_opportunity_query(original_opportunity: &str) -> String {
    format!(
        "SELECT Id FROM Opportunity \
         WHERE SBQQ__AmendedContract__r.SBQQ__Quote__r.SBQQ__Opportunity2__c = '{original_opportunity}' LIMIT 1"
    )
}

fn subscriptions_query(c: &str) -> String {
    format!(
        "SELECT Id, SBQQ__Quantity__c, SBQQ__RevisedSubscription__c, SBQQ__OrderProduct__c \
         FROM SBQQ__Subscription__c WHERE SBQQ__Contract__c = '{c}'"
    )
}

// ---- what the seed holds ----

/// One order product as the orders query returns it.
struct Line {
    item: &'static str,
    product: &'static str,
    quantity: f64,
    unit_price: f64,
    /// `SBQQ__RevisedOrderProduct__c`: the original line an amendment line revises.
    revises: Option<&'static str>,
    segment: Option<f64>,
    action: Option<&'static str>,
}

const SEATS: &str = "Support Seats";
const PREMIUM: &str = "Premium Support";
const API: &str = "API Calls";

fn line(item: &'static str, product: &'static str, quantity: f64, unit_price: f64) -> Line {
    Line {
        item,
        product,
        quantity,
        unit_price,
        revises: None,
        segment: None,
        action: None,
    }
}

fn revising(
    item: &'static str,
    product: &'static str,
    quantity: f64,
    unit_price: f64,
    original: &'static str,
) -> Line {
    Line {
        revises: Some(original),
        ..line(item, product, quantity, unit_price)
    }
}

/// One lifecycle scenario: a contract on `LifecycleAccount` and its one amendment. Its records
/// are `<name>Opportunity`, `<name>Quote`, `<name>Order`, `<name>Contract`,
/// `<name>AmendOpportunity`, `<name>AmendQuote` and `<name>AmendOrder`.
struct Scenario {
    name: &'static str,
    contract_number: &'static str,
    amended_on: &'static str,
    amendment_ends: &'static str,
    amendment_currency: &'static str,
    original: Vec<Line>,
    amendment: Vec<Line>,
    /// The order-level schedules on the contract's lines, oldest first, with their rates' prices.
    schedules: Vec<(&'static str, Vec<f64>)>,
    /// `(subscription, quantity, revised subscription, order product)`.
    subscriptions: Vec<(&'static str, f64, Option<&'static str>, &'static str)>,
}

impl Scenario {
    fn r(&self, suffix: &str) -> String {
        format!("{}{suffix}", self.name)
    }
}

const ORIGINAL_SEATS: &str = "SupportSeatsItem";

fn scenarios() -> Vec<Scenario> {
    let seats_rates = vec![500.0, 2000.0, 3500.0];
    let api_rates = vec![0.004, 0.0032, 0.0025, 0.0018];
    // Amendment lines of one kind: the scenario's seats line revised by `quantity` at `price`.
    let plain = |name: &'static str,
                 number: &'static str,
                 amended_on: &'static str,
                 quantity: f64,
                 price: f64| Scenario {
        name,
        contract_number: number,
        amended_on,
        amendment_ends: "2027-10-31",
        amendment_currency: "USD",
        original: vec![line(ORIGINAL_SEATS, SEATS, 10.0, 150.0)],
        amendment: vec![revising(
            "AmendSupportSeatsItem",
            SEATS,
            quantity,
            price,
            ORIGINAL_SEATS,
        )],
        schedules: vec![],
        subscriptions: vec![
            ("SupportSeatsSubscription", 10.0, None, ORIGINAL_SEATS),
            (
                "AmendSupportSeatsSubscription",
                quantity,
                Some("SupportSeatsSubscription"),
                "AmendSupportSeatsItem",
            ),
        ],
    };
    vec![
        Scenario {
            original: vec![
                line(ORIGINAL_SEATS, SEATS, 10.0, 150.0),
                line("PremiumSupportItem", PREMIUM, 1.0, 750.0),
            ],
            subscriptions: vec![
                ("SupportSeatsSubscription", 10.0, None, ORIGINAL_SEATS),
                (
                    "PremiumSupportSubscription",
                    1.0,
                    None,
                    "PremiumSupportItem",
                ),
                (
                    "AmendSupportSeatsSubscription",
                    5.0,
                    Some("SupportSeatsSubscription"),
                    "AmendSupportSeatsItem",
                ),
            ],
            ..plain("AddSeats", "00000101", "2026-11-20", 5.0, 150.0)
        },
        Scenario {
            original: vec![line(ORIGINAL_SEATS, SEATS, 25.0, 150.0)],
            subscriptions: vec![
                ("SupportSeatsSubscription", 25.0, None, ORIGINAL_SEATS),
                (
                    "AmendSupportSeatsSubscription",
                    -5.0,
                    Some("SupportSeatsSubscription"),
                    "AmendSupportSeatsItem",
                ),
            ],
            ..plain("RemoveSeats", "00000102", "2026-11-20", -5.0, 150.0)
        },
        Scenario {
            amendment: vec![line("AmendPremiumSupportItem", PREMIUM, 1.0, 750.0)],
            subscriptions: vec![
                ("SupportSeatsSubscription", 10.0, None, ORIGINAL_SEATS),
                (
                    "AmendPremiumSupportSubscription",
                    1.0,
                    None,
                    "AmendPremiumSupportItem",
                ),
            ],
            ..plain("AddProduct", "00000103", "2026-11-20", 0.0, 0.0)
        },
        Scenario {
            original: vec![
                line(ORIGINAL_SEATS, SEATS, 10.0, 150.0),
                line("PremiumSupportItem", PREMIUM, 1.0, 750.0),
            ],
            amendment: vec![revising(
                "AmendPremiumSupportItem",
                PREMIUM,
                -1.0,
                750.0,
                "PremiumSupportItem",
            )],
            subscriptions: vec![
                ("SupportSeatsSubscription", 10.0, None, ORIGINAL_SEATS),
                (
                    "PremiumSupportSubscription",
                    1.0,
                    None,
                    "PremiumSupportItem",
                ),
                (
                    "AmendPremiumSupportSubscription",
                    -1.0,
                    Some("PremiumSupportSubscription"),
                    "AmendPremiumSupportItem",
                ),
            ],
            ..plain("RemoveProduct", "00000104", "2026-11-20", 0.0, 0.0)
        },
        Scenario {
            original: vec![line(ORIGINAL_SEATS, SEATS, 25.0, 0.0)],
            amendment: vec![
                revising(
                    "AmendSupportSeatsDebookItem",
                    SEATS,
                    -25.0,
                    0.0,
                    ORIGINAL_SEATS,
                ),
                revising(
                    "AmendSupportSeatsRebookItem",
                    SEATS,
                    25.0,
                    0.0,
                    ORIGINAL_SEATS,
                ),
            ],
            schedules: vec![
                ("SupportSeatsSchedule", seats_rates.clone()),
                ("AmendSupportSeatsDebookSchedule", seats_rates.clone()),
                (
                    "AmendSupportSeatsRebookSchedule",
                    vec![450.0, 1800.0, 3200.0],
                ),
            ],
            subscriptions: vec![
                ("SupportSeatsSubscription", 25.0, None, ORIGINAL_SEATS),
                (
                    "AmendSupportSeatsDebookSubscription",
                    -25.0,
                    Some("SupportSeatsSubscription"),
                    "AmendSupportSeatsDebookItem",
                ),
                (
                    "AmendSupportSeatsRebookSubscription",
                    25.0,
                    Some("SupportSeatsSubscription"),
                    "AmendSupportSeatsRebookItem",
                ),
            ],
            ..plain("Reprice", "00000105", "2026-11-20", 0.0, 0.0)
        },
        plain("FutureSeats", "00000106", "2027-01-01", 5.0, 150.0),
        plain("Backdated", "00000107", "2026-11-10", 5.0, 150.0),
        plain("MixedPrice", "00000108", "2026-11-20", 5.0, 120.0),
        Scenario {
            amendment_ends: "2027-06-30",
            ..plain("NotCoterm", "00000109", "2026-11-20", 5.0, 150.0)
        },
        Scenario {
            original: vec![line("ApiCallsItem", API, 1.0, 0.0)],
            amendment: vec![
                revising("AmendApiCallsDebookItem", API, -1.0, 0.0, "ApiCallsItem"),
                revising("AmendApiCallsRebookItem", API, 1.0, 0.0, "ApiCallsItem"),
            ],
            schedules: vec![
                ("ApiCallsSchedule", api_rates.clone()),
                ("AmendApiCallsDebookSchedule", api_rates.clone()),
                (
                    "AmendApiCallsRebookSchedule",
                    vec![0.0036, 0.00288, 0.00225, 0.00162],
                ),
            ],
            subscriptions: vec![
                ("ApiCallsSubscription", 1.0, None, "ApiCallsItem"),
                (
                    "AmendApiCallsDebookSubscription",
                    -1.0,
                    Some("ApiCallsSubscription"),
                    "AmendApiCallsDebookItem",
                ),
                (
                    "AmendApiCallsRebookSubscription",
                    1.0,
                    Some("ApiCallsSubscription"),
                    "AmendApiCallsRebookItem",
                ),
            ],
            ..plain("Metered", "00000110", "2026-11-20", 0.0, 0.0)
        },
        Scenario {
            amendment_currency: "EUR",
            ..plain("CurrencyChange", "00000111", "2026-11-20", 5.0, 140.0)
        },
        plain("OverRemoved", "00000112", "2026-11-20", -15.0, 150.0),
        plain("Fractional", "00000113", "2026-11-20", 2.5, 150.0),
        Scenario {
            amendment: vec![Line {
                segment: Some(1.0),
                ..revising("AmendSupportSeatsItem", SEATS, 5.0, 150.0, ORIGINAL_SEATS)
            }],
            ..plain("Segmented", "00000114", "2026-11-20", 5.0, 150.0)
        },
        Scenario {
            amendment: vec![
                revising(
                    "AmendSupportSeatsDebookItem",
                    SEATS,
                    -10.0,
                    150.0,
                    ORIGINAL_SEATS,
                ),
                revising(
                    "AmendSupportSeatsRebookItem",
                    SEATS,
                    10.0,
                    135.0,
                    ORIGINAL_SEATS,
                ),
            ],
            subscriptions: vec![
                ("SupportSeatsSubscription", 10.0, None, ORIGINAL_SEATS),
                (
                    "AmendSupportSeatsDebookSubscription",
                    -10.0,
                    Some("SupportSeatsSubscription"),
                    "AmendSupportSeatsDebookItem",
                ),
                (
                    "AmendSupportSeatsRebookSubscription",
                    10.0,
                    Some("SupportSeatsSubscription"),
                    "AmendSupportSeatsRebookItem",
                ),
            ],
            ..plain("PriceUnscheduled", "00000115", "2026-11-20", 0.0, 0.0)
        },
        Scenario {
            original: vec![
                line(ORIGINAL_SEATS, SEATS, 10.0, 150.0),
                line("PremiumSupportItem", PREMIUM, 1.0, 750.0),
            ],
            amendment: vec![
                Line {
                    action: Some("Cancel"),
                    ..revising("AmendSupportSeatsItem", SEATS, -10.0, 150.0, ORIGINAL_SEATS)
                },
                Line {
                    action: Some("Cancel"),
                    ..revising(
                        "AmendPremiumSupportItem",
                        PREMIUM,
                        -1.0,
                        750.0,
                        "PremiumSupportItem",
                    )
                },
            ],
            subscriptions: vec![
                ("SupportSeatsSubscription", 10.0, None, ORIGINAL_SEATS),
                (
                    "PremiumSupportSubscription",
                    1.0,
                    None,
                    "PremiumSupportItem",
                ),
                (
                    "AmendSupportSeatsSubscription",
                    -10.0,
                    Some("SupportSeatsSubscription"),
                    "AmendSupportSeatsItem",
                ),
                (
                    "AmendPremiumSupportSubscription",
                    -1.0,
                    Some("PremiumSupportSubscription"),
                    "AmendPremiumSupportItem",
                ),
            ],
            ..plain("CancelAll", "00000116", "2026-12-01", 0.0, 0.0)
        },
    ]
}

/// The order lines as the orders query renders them (without `attributes`, checked apart).
fn expected_lines(org: &Org, s: &Scenario, lines: &[Line], service: &str, end: &str) -> Vec<Value> {
    lines
        .iter()
        .map(|l| {
            let product = match l.product {
                SEATS => "SupportSeatsProduct",
                PREMIUM => "PremiumSupportProduct",
                _ => "ApiCallsProduct",
            };
            json!({
                "Id": id(org, &s.r(l.item)).as_str(),
                "Quantity": l.quantity,
                "UnitPrice": l.unit_price,
                "ServiceDate": service,
                "EndDate": end,
                "Product2Id": id(org, product).as_str(),
                "ProductName": l.product,
                "SBQQ__RevisedOrderProduct__c": reference(org, l.revises.map(|r| s.r(r)).as_deref()),
                "SBQQ__SegmentIndex__c": l.segment,
                "SBQQ__ContractAction__c": l.action,
            })
        })
        .collect()
}

fn rendered_lines(order: &Value) -> Vec<Value> {
    order["OrderItems"]["records"]
        .as_array()
        .unwrap_or_else(|| panic!("an order without lines: {order}"))
        .iter()
        .map(|l| {
            json!({
                "Id": l["Id"],
                "Quantity": l["Quantity"],
                "UnitPrice": l["UnitPrice"],
                "ServiceDate": l["ServiceDate"],
                "EndDate": l["EndDate"],
                "Product2Id": l["Product2Id"],
                "ProductName": l["Product2"]["Name"],
                "SBQQ__RevisedOrderProduct__c": l["SBQQ__RevisedOrderProduct__c"],
                "SBQQ__SegmentIndex__c": l["SBQQ__SegmentIndex__c"],
                "SBQQ__ContractAction__c": l["SBQQ__ContractAction__c"],
            })
        })
        .collect()
}

#[test]
fn every_lifecycle_contract_answers_the_amendment_queries() {
    let org = seed();
    let account = id(&org, "LifecycleAccount");
    let mut numbers = BTreeSet::new();
    for s in scenarios() {
        let name = s.name;
        let contract = id(&org, &s.r("Contract"));
        let quote = id(&org, &s.r("Quote"));
        let (c, q) = (contract.as_str(), quote.as_str());

        let rows = query(&org, &contract_query(c));
        assert_eq!(rows.len(), 1, "{name}");
        let row = &rows[0];
        assert_eq!(row["Id"], json!(c), "{name}");
        assert_eq!(row["ContractNumber"], json!(s.contract_number), "{name}");
        assert!(numbers.insert(s.contract_number), "{name}");
        assert_eq!(row["AccountId"], json!(account.as_str()), "{name}");
        assert_eq!(row["StartDate"], json!("2026-11-01"), "{name}");
        assert_eq!(row["EndDate"], json!("2027-10-31"), "{name}");
        assert_eq!(row["ContractTerm"], json!(12), "{name}");
        assert_eq!(row["CurrencyIsoCode"], json!("USD"), "{name}");
        assert_eq!(row["SBQQ__Quote__c"], json!(q), "{name}");
        assert_eq!(
            row["SBQQ__Opportunity__c"],
            json!(id(&org, &s.r("Opportunity")).as_str()),
            "{name}"
        );
        assert_eq!(
            row["SBQQ__DisableAmendmentCoTerm__c"],
            json!(s.amendment_ends != "2027-10-31"),
            "{name}"
        );

        let rows = query(&org, &original_opportunity_query(q));
        assert_eq!(
            column(&rows, "Id"),
            ids(&org, &[&s.r("Opportunity")]),
            "{name}"
        );
        assert_eq!(rows[0]["StageName"], json!("Closed Won"), "{name}");
        assert_eq!(rows[0]["Maxio_Subscription_Id__c"], Value::Null, "{name}");
        assert_eq!(rows[0]["Maxio_Site__c"], Value::Null, "{name}");

        let rows = query(&org, &orders_query(c, q));
        assert_eq!(
            column(&rows, "Id"),
            ids(&org, &[&s.r("Order"), &s.r("AmendOrder")]),
            "{name}: the original order, then the amendment"
        );
        assert_eq!(
            column(&rows, "EffectiveDate"),
            [json!("2026-11-01"), json!(s.amended_on)],
            "{name}"
        );
        assert_eq!(
            column(&rows, "EndDate"),
            [json!("2027-10-31"), json!(s.amendment_ends)],
            "{name}"
        );
        assert_eq!(
            column(&rows, "OpportunityId"),
            ids(&org, &[&s.r("Opportunity"), &s.r("AmendOpportunity")]),
            "{name}"
        );
        assert_eq!(
            column(&rows, "CurrencyIsoCode"),
            [json!("USD"), json!(s.amendment_currency)],
            "{name}"
        );
        assert_eq!(
            column(&rows, "Status"),
            [json!("Activated"), json!("Activated")],
            "{name}"
        );
        assert_eq!(
            rendered_lines(&rows[0]),
            expected_lines(&org, &s, &s.original, "2026-11-01", "2027-10-31"),
            "{name}: the original lines"
        );
        assert_eq!(
            rendered_lines(&rows[1]),
            expected_lines(&org, &s, &s.amendment, s.amended_on, s.amendment_ends),
            "{name}: the amendment's delta lines"
        );

        let rows = query(&org, &schedules_query(c, q));
        let schedule_refs: Vec<String> = s.schedules.iter().map(|(r, _)| s.r(r)).collect();
        let schedule_refs: Vec<&str> = schedule_refs.iter().map(String::as_str).collect();
        assert_eq!(column(&rows, "Id"), ids(&org, &schedule_refs), "{name}");
        for (row, (schedule, _)) in rows.iter().zip(&s.schedules) {
            let item = s.r(&schedule.replace("Schedule", "Item"));
            assert_eq!(
                row["SBQQ__OrderItem__c"],
                json!(id(&org, &item).as_str()),
                "{name}"
            );
            assert_eq!(row["SBQQ__Type__c"], json!("Range"), "{name}");
        }

        let rows = query(&org, &rates_query(c, q));
        let expected: Vec<(Value, Value)> = s
            .schedules
            .iter()
            .flat_map(|(schedule, prices)| {
                let schedule = json!(id(&org, &s.r(schedule)).as_str());
                prices.iter().map(move |p| (schedule.clone(), json!(p)))
            })
            .collect();
        let found: Vec<(Value, Value)> = rows
            .iter()
            .map(|r| {
                (
                    r["SBQQ__OrderItemConsumptionSchedule__c"].clone(),
                    r["SBQQ__Price__c"].clone(),
                )
            })
            .collect();
        assert_eq!(found, expected, "{name}: the rates, schedule by schedule");

        let original = id(&org, &s.r("Opportunity"));
        let rows = query(&org, &amendment_opportunity_query(original.as_str()));
        assert_eq!(
            column(&rows, "Id"),
            ids(&org, &[&s.r("AmendOpportunity")]),
            "{name}"
        );

        let rows = query(&org, &subscriptions_query(c));
        let found: Vec<Value> = rows
            .iter()
            .map(|r| {
                json!([
                    r["Id"],
                    r["SBQQ__Quantity__c"],
                    r["SBQQ__RevisedSubscription__c"],
                    r["SBQQ__OrderProduct__c"]
                ])
            })
            .collect();
        let expected: Vec<Value> = s
            .subscriptions
            .iter()
            .map(|(sub, quantity, revised, item)| {
                json!([
                    id(&org, &s.r(sub)).as_str(),
                    quantity,
                    reference(&org, revised.map(|r| s.r(r)).as_deref()),
                    id(&org, &s.r(item)).as_str()
                ])
            })
            .collect();
        assert_eq!(found, expected, "{name}: the contract's subscriptions");
    }
}

#[test]
fn remove_seats_reads_as_one_original_order_and_one_negative_delta_line() {
    let org = seed();
    let contract = id(&org, "RemoveSeatsContract");
    let quote = id(&org, "RemoveSeatsQuote");
    let rows = query(&org, &orders_query(contract.as_str(), quote.as_str()));
    let (order, amend) = (
        id(&org, "RemoveSeatsOrder"),
        id(&org, "RemoveSeatsAmendOrder"),
    );
    let (line, delta) = (
        id(&org, "RemoveSeatsSupportSeatsItem"),
        id(&org, "RemoveSeatsAmendSupportSeatsItem"),
    );
    let product = id(&org, "SupportSeatsProduct");
    let item = |item: &SfId, number: &str, quantity: f64, service: &str, revises: Value| {
        json!({
            "attributes": {"type": "OrderItem", "url": url("OrderItem", item)},
            "Id": item.as_str(),
            "OrderItemNumber": number,
            "Quantity": quantity,
            "UnitPrice": 150.0,
            "ServiceDate": service,
            "EndDate": "2027-10-31",
            "Product2Id": product.as_str(),
            "Product2": {
                "attributes": {"type": "Product2", "url": url("Product2", &product)},
                "Name": "Support Seats"
            },
            "SBQQ__RevisedOrderProduct__c": revises,
            "SBQQ__SegmentIndex__c": null,
            "SBQQ__ContractAction__c": null
        })
    };
    assert_eq!(
        rows,
        [
            json!({
                "attributes": {"type": "Order", "url": url("Order", &order)},
                "Id": order.as_str(),
                "OrderNumber": "00000212",
                "Status": "Activated",
                "EffectiveDate": "2026-11-01",
                "EndDate": "2027-10-31",
                "OpportunityId": id(&org, "RemoveSeatsOpportunity").as_str(),
                "CurrencyIsoCode": "USD",
                "OrderItems": {"totalSize": 1, "done": true, "records": [
                    item(&line, "0000003006", 25.0, "2026-11-01", Value::Null)
                ]}
            }),
            json!({
                "attributes": {"type": "Order", "url": url("Order", &amend)},
                "Id": amend.as_str(),
                "OrderNumber": "00000213",
                "Status": "Activated",
                "EffectiveDate": "2026-11-20",
                "EndDate": "2027-10-31",
                "OpportunityId": id(&org, "RemoveSeatsAmendOpportunity").as_str(),
                "CurrencyIsoCode": "USD",
                "OrderItems": {"totalSize": 1, "done": true, "records": [
                    item(&delta, "0000003007", -5.0, "2026-11-20", json!(line.as_str()))
                ]}
            }),
        ]
    );
    // Neither query pulls in another contract's orders or schedules.
    let rows = query(&org, &schedules_query(contract.as_str(), quote.as_str()));
    assert!(rows.is_empty(), "{rows:?}");
}

#[test]
fn deal_16_amends_deal_3s_contract_with_a_copy_of_its_schedule() {
    let org = seed();
    let contract = id(&org, "FlatFeeContract");
    let quote = id(&org, "FlatFeeQuote");
    let (c, q) = (contract.as_str(), quote.as_str());

    let rows = query(&org, &contract_query(c));
    assert_eq!(rows[0]["ContractNumber"], json!("00000100"));
    assert_eq!(rows[0]["EndDate"], json!("2028-10-31"));
    assert_eq!(rows[0]["ContractTerm"], json!(24));
    assert_eq!(rows[0]["SBQQ__DisableAmendmentCoTerm__c"], json!(false));

    let rows = query(&org, &original_opportunity_query(q));
    assert_eq!(column(&rows, "Id"), ids(&org, &["FlatFeeOpportunity"]));

    // The renewal (deal 17) is not an order on this contract.
    let rows = query(&org, &orders_query(c, q));
    assert_eq!(
        column(&rows, "Id"),
        ids(&org, &["FlatFeeOrder", "AmendmentOrder"])
    );
    let amendment_line = &rows[1]["OrderItems"]["records"][0];
    assert_eq!(
        amendment_line["Id"],
        json!(id(&org, "AmendmentSupportSeatsItem").as_str())
    );
    assert_eq!(amendment_line["Quantity"], json!(5.0));
    assert_eq!(
        amendment_line["SBQQ__RevisedOrderProduct__c"],
        json!(id(&org, "FlatFeeSupportSeatsItem").as_str())
    );

    let rows = query(&org, &schedules_query(c, q));
    assert_eq!(
        column(&rows, "Id"),
        ids(
            &org,
            &[
                "FlatFeeSupportSeatsSchedule",
                "AmendmentSupportSeatsSchedule"
            ]
        )
    );
    assert_eq!(
        column(&rows, "SBQQ__OrderItem__c"),
        ids(
            &org,
            &["FlatFeeSupportSeatsItem", "AmendmentSupportSeatsItem"]
        )
    );
    let rows = query(&org, &rates_query(c, q));
    assert_eq!(
        column(&rows, "Id"),
        ids(
            &org,
            &[
                "FlatFeeSupportSeatsRate1",
                "FlatFeeSupportSeatsRate2",
                "FlatFeeSupportSeatsRate3",
                "AmendmentSupportSeatsRate1",
                "AmendmentSupportSeatsRate2",
                "AmendmentSupportSeatsRate3"
            ]
        )
    );
    let shape = |r: &Value| {
        json!([
            r["SBQQ__ProcessingOrder__c"],
            r["SBQQ__LowerBound__c"],
            r["SBQQ__UpperBound__c"],
            r["SBQQ__Price__c"],
            r["SBQQ__PricingMethod__c"]
        ])
    };
    let original: Vec<Value> = rows[..3].iter().map(shape).collect();
    let copy: Vec<Value> = rows[3..].iter().map(shape).collect();
    assert_eq!(
        original, copy,
        "the amendment line's rates copy the original's"
    );
    assert_eq!(
        original,
        [
            json!([1.0, 1.0, 11.0, 500.0, "FlatFee"]),
            json!([2.0, 11.0, 51.0, 2000.0, "FlatFee"]),
            json!([3.0, 51.0, null, 3500.0, "FlatFee"])
        ]
    );

    let rows = query(
        &org,
        &amendment_opportunity_query(id(&org, "FlatFeeOpportunity").as_str()),
    );
    assert_eq!(column(&rows, "Id"), ids(&org, &["AmendmentOpportunity"]));

    let rows = query(&org, &subscriptions_query(c));
    let first = id(&org, "FlatFeeSupportSeatsSubscription");
    assert_eq!(
        rows.iter()
            .map(|r| json!([
                r["Id"],
                r["SBQQ__Quantity__c"],
                r["SBQQ__RevisedSubscription__c"]
            ]))
            .collect::<Vec<_>>(),
        [
            json!([first.as_str(), 25.0, null]),
            json!([
                id(&org, "AmendmentSupportSeatsSubscription").as_str(),
                5.0,
                first.as_str()
            ])
        ]
    );
}

#[test]
fn every_amendment_line_revises_a_line_of_its_contracts_original_order() {
    let org = seed();
    let rows = query(
        &org,
        "SELECT Id, Order.Type, Order.Opportunity.SBQQ__AmendedContract__r.SBQQ__Quote__c, \
         SBQQ__RevisedOrderProduct__r.Order.Type, SBQQ__RevisedOrderProduct__r.Order.SBQQ__Quote__c, \
         SBQQ__RevisedOrderProduct__r.SBQQ__RevisedOrderProduct__c \
         FROM OrderItem WHERE SBQQ__RevisedOrderProduct__c != null ORDER BY OrderItemNumber",
    );
    // Deal 16's line, deal 37's (on the Contract of deal 35's renewal) and every scenario's
    // amendment lines but the one new product.
    let expected: usize = 2 + scenarios()
        .iter()
        .map(|s| s.amendment.iter().filter(|l| l.revises.is_some()).count())
        .sum::<usize>();
    assert_eq!(rows.len(), expected);
    for row in &rows {
        assert_eq!(row["Order"]["Type"], json!("Amendment"), "{row}");
        let revised = &row["SBQQ__RevisedOrderProduct__r"];
        // The Contract's first Order: a first sale, or the renewal that made the Contract.
        assert!(
            [json!("New"), json!("Renewal")].contains(&revised["Order"]["Type"]),
            "{row}"
        );
        assert_eq!(
            revised["Order"]["SBQQ__Quote__c"],
            row["Order"]["Opportunity"]["SBQQ__AmendedContract__r"]["SBQQ__Quote__c"],
            "{row}"
        );
        // Always the original line, never a revision of it.
        assert_eq!(
            revised["SBQQ__RevisedOrderProduct__c"],
            Value::Null,
            "{row}"
        );
    }
    let added = query(
        &org,
        "SELECT Id FROM OrderItem WHERE Order.Type = 'Amendment' AND SBQQ__RevisedOrderProduct__c = null",
    );
    assert_eq!(
        column(&added, "Id"),
        ids(&org, &["AddProductAmendPremiumSupportItem"])
    );
}

#[test]
fn quotes_and_orders_carry_their_cpq_types_and_contracting_leaves_contract_id_empty() {
    let org = seed();
    for soql in [
        "SELECT Id FROM SBQQ__Quote__c WHERE SBQQ__Type__c = null",
        "SELECT Id FROM Order WHERE Type = null",
        "SELECT Id FROM Order WHERE ContractId != null",
    ] {
        assert_eq!(query(&org, soql), Vec::<Value>::new(), "{soql}");
    }
    let rows = query(
        &org,
        "SELECT Id, SBQQ__MasterContract__c FROM SBQQ__Quote__c WHERE SBQQ__Type__c = 'Renewal'",
    );
    assert_eq!(
        column(&rows, "Id"),
        ids(
            &org,
            &[
                "RenewalQuote",
                "RenewSameRenewQuote",
                "RenewSeatsRenewQuote",
                "RenewUpliftRenewQuote"
            ]
        )
    );
    assert!(
        rows.iter()
            .all(|r| r["SBQQ__MasterContract__c"] == Value::Null)
    );

    // Every amendment quote co-terminates with its master contract, the one on its Opportunity.
    let rows = query(
        &org,
        "SELECT Id, SBQQ__MasterContract__c, SBQQ__Opportunity2__r.SBQQ__AmendedContract__c, \
         SBQQ__MasterContract__r.SBQQ__DisableAmendmentCoTerm__c, SBQQ__EndDate__c, SBQQ__MasterContract__r.EndDate \
         FROM SBQQ__Quote__c WHERE SBQQ__Type__c = 'Amendment' ORDER BY Name",
    );
    assert_eq!(rows.len(), 18);
    for row in &rows {
        assert_eq!(
            row["SBQQ__MasterContract__c"],
            row["SBQQ__Opportunity2__r"]["SBQQ__AmendedContract__c"],
            "{row}"
        );
        let coterm =
            row["SBQQ__MasterContract__r"]["SBQQ__DisableAmendmentCoTerm__c"] == json!(false);
        assert_eq!(
            row["SBQQ__EndDate__c"] == row["SBQQ__MasterContract__r"]["EndDate"],
            coterm,
            "{row}"
        );
    }

    // The orders CPQ has contracted.
    let rows = query(
        &org,
        "SELECT Id FROM Order WHERE SBQQ__Contracted__c = true AND Type = 'New' ORDER BY OrderNumber",
    );
    let mut expected = vec!["FlatFeeOrder".to_string()];
    expected.extend(scenarios().iter().map(|s| s.r("Order")));
    // The renewal deals' one-month first sales.
    expected.extend(["RenewSameOrder", "RenewSeatsOrder", "RenewUpliftOrder"].map(String::from));
    let expected: Vec<&str> = expected.iter().map(String::as_str).collect();
    assert_eq!(column(&rows, "Id"), ids(&org, &expected));
}

#[test]
fn a_contracts_subscriptions_nest_under_it_and_chain_to_the_first() {
    let org = seed();
    let contract = id(&org, "CancelAllContract");
    let rows = query(
        &org,
        &format!(
            "SELECT ContractNumber, (SELECT Name, SBQQ__Product__r.Name, SBQQ__Quantity__c, SBQQ__StartDate__c, \
             SBQQ__TerminatedDate__c, SBQQ__RevisedSubscription__r.SBQQ__OrderProduct__r.OrderItemNumber \
             FROM SBQQ__Subscriptions__r ORDER BY Name) FROM Contract WHERE Id = '{}'",
            contract.to_15()
        ),
    );
    let subs = rows[0]["SBQQ__Subscriptions__r"]["records"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let shape: Vec<Value> = subs
        .iter()
        .map(|s| {
            json!([
                s["SBQQ__Product__r"]["Name"],
                s["SBQQ__Quantity__c"],
                s["SBQQ__StartDate__c"],
                s["SBQQ__TerminatedDate__c"],
                s["SBQQ__RevisedSubscription__r"]
                    .get("SBQQ__OrderProduct__r")
                    .map_or(Value::Null, |p| p["OrderItemNumber"].clone())
            ])
        })
        .collect();
    assert_eq!(
        shape,
        [
            json!(["Support Seats", 10.0, "2026-11-01", "2026-11-30", null]),
            json!(["Premium Support", 1.0, "2026-11-01", "2026-11-30", null]),
            json!([
                "Support Seats",
                -10.0,
                "2026-12-01",
                "2026-11-30",
                "0000003038"
            ]),
            json!([
                "Premium Support",
                -1.0,
                "2026-12-01",
                "2026-11-30",
                "0000003039"
            ]),
        ]
    );
    // Each line nets to zero over the contract.
    let rows = query(
        &org,
        &format!(
            "SELECT SBQQ__Product__c, SBQQ__Quantity__c FROM SBQQ__Subscription__c \
             WHERE SBQQ__Contract__c = '{contract}'"
        ),
    );
    for product in ["SupportSeatsProduct", "PremiumSupportProduct"] {
        let product = json!(id(&org, product).as_str());
        let total: f64 = rows
            .iter()
            .filter(|r| r["SBQQ__Product__c"] == product)
            .filter_map(|r| r["SBQQ__Quantity__c"].as_f64())
            .sum();
        assert_eq!(total, 0.0, "{product}");
    }
    // The revisions of a subscription, from the other side.
    let first = id(&org, "RepriceSupportSeatsSubscription");
    let rows = query(
        &org,
        &format!(
            "SELECT Id, (SELECT Id FROM SBQQ__Revisions__r ORDER BY Name) FROM SBQQ__Subscription__c WHERE Id = '{first}'"
        ),
    );
    assert_eq!(
        column(
            rows[0]["SBQQ__Revisions__r"]["records"]
                .as_array()
                .map_or(&[][..], Vec::as_slice),
            "Id"
        ),
        ids(
            &org,
            &[
                "RepriceAmendSupportSeatsDebookSubscription",
                "RepriceAmendSupportSeatsRebookSubscription"
            ]
        )
    );
}

fn write_error(result: Result<SfId, ApiError>) -> ApiError {
    match result {
        Ok(id) => panic!("the insert should fail, created {id}"),
        Err(e) => e,
    }
}

#[test]
fn the_subscription_date_formulas_are_read_only_and_the_cpq_picklists_are_checked() {
    let mut org = seed();
    let contract = id(&org, "AddSeatsContract");
    let e = write_error(org.insert(
        "SBQQ__Subscription__c",
        &body(json!({
            "SBQQ__Contract__c": contract.as_str(),
            "SBQQ__Quantity__c": 1,
            "SBQQ__StartDate__c": "2026-12-01",
            "SBQQ__EndDate__c": "2027-10-31"
        })),
    ));
    assert_eq!(e.errors[0].error_code, "INVALID_FIELD_FOR_INSERT_UPDATE");
    assert_eq!(
        e.errors[0].fields,
        ["SBQQ__StartDate__c", "SBQQ__EndDate__c"]
    );
    let created = org
        .insert(
            "SBQQ__Subscription__c",
            &body(json!({
                "SBQQ__Contract__c": contract.as_str(),
                "SBQQ__Quantity__c": 1,
                "SBQQ__SubscriptionStartDate__c": "2026-12-01"
            })),
        )
        .unwrap_or_else(|e| panic!("{e:?}"));
    assert!(created.as_str().starts_with("a0D"));

    // The quote type is restricted; the order type and the contract action are not.
    let quote = id(&org, "AddSeatsAmendQuote");
    let e = org
        .update(
            None,
            quote.as_str(),
            &body(json!({"SBQQ__Type__c": "Upgrade"})),
        )
        .err()
        .unwrap_or_else(|| panic!("a quote type outside the list was accepted"));
    assert_eq!(
        e.errors[0].error_code,
        "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
    );
    let order = id(&org, "AddSeatsAmendOrder");
    org.update(None, order.as_str(), &body(json!({"Type": "Upsell"})))
        .unwrap_or_else(|e| panic!("{e:?}"));
    let item = id(&org, "AddSeatsAmendSupportSeatsItem");
    org.update(
        None,
        item.as_str(),
        &body(json!({"SBQQ__ContractAction__c": "Quantity Increase"})),
    )
    .unwrap_or_else(|e| panic!("{e:?}"));
}
