//! A small but realistic org (accounts, contacts, opportunities, orders with products, and CPQ
//! consumption schedules and rates) loaded from export-tree files, queried and updated the way
//! the provisioning functions do.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use dealbridge::salesforce::SfId;
use dealbridge_org::{ApiError, Org, QueryOptions};
use serde_json::{Map, Value, json};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn load_clock() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-01T00:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

/// Orders are loaded before the accounts they refer to: references resolve across files in
/// either order.
fn org() -> Org {
    Org::from_files(
        &fixture("schema.json"),
        &[fixture("orders.json"), fixture("accounts.json")],
    )
    .unwrap()
}

fn id(org: &Org, reference: &str) -> SfId {
    org.id_of(reference)
        .unwrap_or_else(|| panic!("no record {reference}"))
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

fn update_error(org: &mut Org, sobject: Option<&str>, id: &str, fields: Value) -> ApiError {
    match org.update(sobject, id, &body(fields)) {
        Ok(()) => panic!("update of {id} should fail"),
        Err(e) => e,
    }
}

#[test]
fn the_export_tree_nests_children_under_their_parents_and_resolves_references() {
    let org = org();
    let acme = id(&org, "Acme");
    for contact in ["AcmeBuyer", "AcmeBilling"] {
        let rec = org.get(id(&org, contact).as_str()).unwrap();
        assert_eq!(rec["AccountId"], json!(acme.as_str()), "{contact}");
    }
    let order = org.get(id(&org, "AcmeOrder").as_str()).unwrap();
    assert_eq!(order["AccountId"], json!(acme.as_str()));
    assert_eq!(order["OpportunityId"], json!(id(&org, "AcmeDeal").as_str()));
    let rate = org.get(id(&org, "RateMid").to_15()).unwrap();
    assert_eq!(
        rate["SBQQ__OrderItemConsumptionSchedule__c"],
        json!(id(&org, "AcmeUsageSchedule").as_str())
    );
    // Generated Ids: key prefix, "SB", and the record's 1-based position among its type.
    assert_eq!(acme.to_15(), "001SB0000000001");
    assert_eq!(id(&org, "Umbrella").to_15(), "001SB0000000004");
    assert_eq!(id(&org, "AcmeOrder").to_15(), "801SB0000000001");
    assert_eq!(id(&org, "RateMid").to_15(), "a0BSB0000000003");
    assert_eq!(org.sobject_of(acme.to_15()), Some("Account"));
    assert_eq!(
        org.sobject_of(id(&org, "RateMid").as_str()),
        Some("SBQQ__OrderItemConsumptionRate__c")
    );
    assert_eq!(org.sobject_of("006000000000000"), Some("Opportunity"));
    assert_eq!(org.sobject_of("zzz000000000000"), None);
    assert_eq!(org.records("Account").len(), 4);
    assert_eq!(org.records("OrderItem").len(), 4);
}

#[test]
fn parent_paths_three_levels_deep_work_in_select_and_where() {
    let org = org();
    let rows = query(
        &org,
        "SELECT Id, Order.Opportunity.Account.Name, Order.OrderNumber, Product2.ProductCode \
         FROM OrderItem WHERE Order.Opportunity.Account.Name = 'ACME CORP' \
         ORDER BY Product2.ProductCode NULLS LAST",
    );
    let order = id(&org, "AcmeOrder");
    let deal = id(&org, "AcmeDeal");
    let acme = id(&org, "Acme");
    let cloud = id(&org, "AcmeItemCloud");
    let product = id(&org, "ProdCloud");
    assert_eq!(rows.len(), 3);
    // API-USAGE, CLOUD-1, then the support item whose product has no code.
    assert_eq!(
        column(&rows, "Id"),
        [
            json!(id(&org, "AcmeItemUsage").as_str()),
            json!(cloud.as_str()),
            json!(id(&org, "AcmeItemSupport").as_str()),
        ]
    );
    assert_eq!(
        rows[1],
        json!({
            "attributes": {"type": "OrderItem", "url": url("OrderItem", &cloud)},
            "Id": cloud.as_str(),
            "Order": {
                "attributes": {"type": "Order", "url": url("Order", &order)},
                "Opportunity": {
                    "attributes": {"type": "Opportunity", "url": url("Opportunity", &deal)},
                    "Account": {
                        "attributes": {"type": "Account", "url": url("Account", &acme)},
                        "Name": "Acme Corp"
                    }
                },
                "OrderNumber": "00000100"
            },
            "Product2": {
                "attributes": {"type": "Product2", "url": url("Product2", &product)},
                "ProductCode": "CLOUD-1"
            }
        })
    );
    let keys: Vec<&String> = rows[1]["Order"].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["attributes", "Opportunity", "OrderNumber"]);
    assert_eq!(rows[2]["Product2"]["ProductCode"], Value::Null);
}

#[test]
fn an_empty_lookup_in_a_path_is_null_at_that_level() {
    let org = org();
    let rows = query(
        &org,
        "SELECT OrderNumber, Opportunity.Account.Name, Account.Name FROM Order \
         WHERE OrderNumber = '00000102'",
    );
    assert_eq!(rows[0]["Opportunity"], Value::Null);
    assert_eq!(rows[0]["Account"]["Name"], json!("Initech"));
    // A WHERE through the empty lookup sees null.
    let rows = query(
        &org,
        "SELECT OrderNumber FROM Order WHERE Opportunity.Account.Name = null",
    );
    assert_eq!(column(&rows, "OrderNumber"), [json!("00000102")]);
}

#[test]
fn the_cpq_rate_query_walks_two_custom_relationships_to_the_order() {
    let org = org();
    let order = id(&org, "AcmeOrder");
    let lowercase_suffix = format!("{}{}", order.to_15(), order.as_str()[15..].to_lowercase());
    for order_id in [order.as_str(), order.to_15(), lowercase_suffix.as_str()] {
        let rows = query(
            &org,
            &format!(
                "SELECT Id, SBQQ__LowerBound__c, SBQQ__UpperBound__c, SBQQ__Price__c, SBQQ__PricingMethod__c \
                 FROM SBQQ__OrderItemConsumptionRate__c \
                 WHERE SBQQ__OrderItemConsumptionSchedule__r.SBQQ__OrderItem__r.OrderId = '{order_id}' \
                 ORDER BY SBQQ__LowerBound__c"
            ),
        );
        assert_eq!(
            column(&rows, "SBQQ__LowerBound__c"),
            [json!(0), json!(1000), json!(100000)]
        );
        assert_eq!(
            column(&rows, "SBQQ__UpperBound__c"),
            [json!(1000), json!(100000), Value::Null]
        );
        assert_eq!(rows[2]["SBQQ__Price__c"], json!(0.001));
        assert_eq!(rows[0]["SBQQ__PricingMethod__c"], json!("FlatFee"));
        assert_eq!(
            rows[0]["attributes"]["type"],
            json!("SBQQ__OrderItemConsumptionRate__c")
        );
    }
    let rows = query(
        &org,
        &format!(
            "SELECT Id FROM SBQQ__OrderItemConsumptionRate__c \
             WHERE SBQQ__OrderItemConsumptionSchedule__r.SBQQ__OrderItem__r.OrderId = '{}'",
            id(&org, "GlobexOrder")
        ),
    );
    assert!(rows.is_empty());
}

#[test]
fn a_child_subquery_has_nested_parent_fields_and_its_own_order() {
    let org = org();
    let order = id(&org, "AcmeOrder");
    let rows = query(
        &org,
        &format!(
            "SELECT Id, OrderNumber, Account.Name, \
             (SELECT Id, Quantity, UnitPrice, Product2.ProductCode, Product2.Name FROM OrderItems \
              ORDER BY Product2.ProductCode DESC NULLS FIRST) \
             FROM Order WHERE Id = '{}'",
            order.to_15()
        ),
    );
    assert_eq!(rows.len(), 1);
    let items = &rows[0]["OrderItems"];
    assert_eq!(items["totalSize"], json!(3));
    assert_eq!(items["done"], json!(true));
    let records = items["records"].as_array().unwrap();
    let codes: Vec<Value> = records
        .iter()
        .map(|r| r["Product2"]["ProductCode"].clone())
        .collect();
    assert_eq!(codes, [Value::Null, json!("CLOUD-1"), json!("API-USAGE")]);
    let support = id(&org, "AcmeItemSupport");
    let product = id(&org, "ProdSupport");
    assert_eq!(
        records[0],
        json!({
            "attributes": {"type": "OrderItem", "url": url("OrderItem", &support)},
            "Id": support.as_str(),
            "Quantity": 2,
            "UnitPrice": 150.25,
            "Product2": {
                "attributes": {"type": "Product2", "url": url("Product2", &product)},
                "ProductCode": null,
                "Name": "Support"
            }
        })
    );
    let keys: Vec<&String> = rows[0].as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        ["attributes", "Id", "OrderNumber", "Account", "OrderItems"]
    );
}

#[test]
fn a_child_subquery_filters_and_limits_and_an_empty_one_is_null() {
    let org = org();
    let rows = query(
        &org,
        "SELECT OrderNumber, (SELECT Quantity FROM OrderItems WHERE UnitPrice > 0 ORDER BY UnitPrice LIMIT 1) \
         FROM Order ORDER BY OrderNumber",
    );
    assert_eq!(
        column(&rows, "OrderNumber"),
        [json!("00000100"), json!("00000101"), json!("00000102")]
    );
    assert_eq!(rows[0]["OrderItems"]["totalSize"], json!(1));
    assert_eq!(rows[0]["OrderItems"]["records"][0]["Quantity"], json!(2));
    assert_eq!(rows[1]["OrderItems"]["records"][0]["Quantity"], json!(3));
    assert_eq!(rows[2]["OrderItems"], Value::Null);
}

#[test]
fn nested_child_subqueries_reach_the_consumption_rates() {
    let org = org();
    let rows = query(
        &org,
        "SELECT Id, (SELECT SBQQ__Type__c, (SELECT SBQQ__LowerBound__c FROM SBQQ__OrderItemConsumptionRates__r \
         ORDER BY SBQQ__ProcessingOrder__c) FROM SBQQ__OrderItemConsumptionSchedules__r) \
         FROM OrderItem WHERE Product2.ProductCode = 'API-USAGE'",
    );
    let schedule = &rows[0]["SBQQ__OrderItemConsumptionSchedules__r"]["records"][0];
    assert_eq!(schedule["SBQQ__Type__c"], json!("Slab"));
    let bounds: Vec<Value> = schedule["SBQQ__OrderItemConsumptionRates__r"]["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["SBQQ__LowerBound__c"].clone())
        .collect();
    assert_eq!(bounds, [json!(0), json!(1000), json!(100000)]);
}

#[test]
fn semi_joins_and_anti_joins_filter_by_another_objects_ids() {
    let org = org();
    let rows = query(
        &org,
        "SELECT Name FROM Account WHERE Id IN (SELECT AccountId FROM Order WHERE Status = 'Draft') ORDER BY Name",
    );
    assert_eq!(
        column(&rows, "Name"),
        [json!("Acme Corp"), json!("Initech")]
    );
    let rows = query(
        &org,
        "SELECT Name FROM Account WHERE Id NOT IN (SELECT AccountId FROM Opportunity WHERE StageName = 'Closed Won') \
         ORDER BY Name",
    );
    assert_eq!(
        column(&rows, "Name"),
        [json!("Initech"), json!("umbrella ltd")]
    );
    let rows = query(
        &org,
        "SELECT OrderNumber FROM Order WHERE OpportunityId IN (SELECT Id FROM Opportunity WHERE Amount > 10000) \
         AND Status = 'Draft'",
    );
    assert_eq!(column(&rows, "OrderNumber"), [json!("00000100")]);
    let e = org
        .query(
            "SELECT Id FROM Account WHERE Id IN (SELECT AccountId FROM Order WHERE OpportunityId IN \
             (SELECT Id FROM Opportunity))",
            &QueryOptions::default(),
        )
        .unwrap_err();
    assert_eq!(e.error_code(), "MALFORMED_QUERY");
}

#[test]
fn order_by_places_nulls_as_asked() {
    let org = org();
    let rows = query(&org, "SELECT Name, Industry FROM Account ORDER BY Industry");
    assert_eq!(
        column(&rows, "Industry"),
        [
            Value::Null,
            json!("Manufacturing"),
            json!("Retail"),
            json!("Technology")
        ]
    );
    let rows = query(
        &org,
        "SELECT Name FROM Account ORDER BY Industry NULLS LAST",
    );
    assert_eq!(rows[3]["Name"], json!("Initech"));
    let rows = query(&org, "SELECT Name FROM Account ORDER BY Industry DESC");
    assert_eq!(rows[0]["Name"], json!("Acme Corp"));
    assert_eq!(rows[3]["Name"], json!("Initech"));
    let rows = query(
        &org,
        "SELECT Name FROM Account ORDER BY Industry DESC NULLS FIRST",
    );
    assert_eq!(rows[0]["Name"], json!("Initech"));
    // Text sorts ignoring case; ties keep load order; several keys apply in turn.
    let rows = query(&org, "SELECT Name FROM Account ORDER BY Name DESC");
    assert_eq!(
        column(&rows, "Name"),
        [
            json!("umbrella ltd"),
            json!("Initech"),
            json!("Globex 50% Off_Sale"),
            json!("Acme Corp")
        ]
    );
    let rows = query(
        &org,
        "SELECT Name FROM Opportunity ORDER BY StageName ASC, Amount DESC NULLS LAST",
    );
    assert_eq!(
        column(&rows, "Name"),
        [
            json!("Acme - Cloud Plan"),
            json!("Globex renewal"),
            json!("Umbrella pilot")
        ]
    );
    let rows = query(
        &org,
        "SELECT OrderNumber FROM Order ORDER BY EffectiveDate DESC",
    );
    assert_eq!(
        column(&rows, "OrderNumber"),
        [json!("00000102"), json!("00000100"), json!("00000101")]
    );
}

#[test]
fn limit_and_offset_page_through_the_sorted_rows() {
    let org = org();
    let rows = query(
        &org,
        "SELECT Name FROM Account ORDER BY Name LIMIT 2 OFFSET 1",
    );
    assert_eq!(
        column(&rows, "Name"),
        [json!("Globex 50% Off_Sale"), json!("Initech")]
    );
    assert_eq!(query(&org, "SELECT Name FROM Account LIMIT 0").len(), 0);
    assert_eq!(query(&org, "SELECT Name FROM Account OFFSET 10").len(), 0);
    assert_eq!(query(&org, "SELECT Name FROM Account LIMIT 100").len(), 4);
}

#[test]
fn in_lists_match_15_and_18_character_ids_alike() {
    let org = org();
    let acme = id(&org, "Acme");
    let globex = id(&org, "Globex");
    let initech = id(&org, "Initech");
    let soql = format!(
        "SELECT Name FROM Account WHERE Id IN ('{}', '{}', '{}') ORDER BY Name",
        acme.to_15(),
        globex.as_str(),
        initech.as_str().to_string()[..15].to_string() + &initech.as_str()[15..].to_lowercase()
    );
    assert_eq!(
        column(&query(&org, &soql), "Name"),
        [
            json!("Acme Corp"),
            json!("Globex 50% Off_Sale"),
            json!("Initech")
        ]
    );
    let soql = format!(
        "SELECT LastName FROM Contact WHERE AccountId = '{}' ORDER BY LastName",
        acme.to_15()
    );
    assert_eq!(
        column(&query(&org, &soql), "LastName"),
        [json!("Ito"), json!("Sato")]
    );
    let soql = format!(
        "SELECT Name FROM Account WHERE Id NOT IN ('{}', '{}') AND ParentId != null",
        acme.as_str(),
        initech.to_15()
    );
    assert_eq!(
        column(&query(&org, &soql), "Name"),
        [json!("Globex 50% Off_Sale")]
    );
    // A 15-character Id is case-sensitive: changing a letter's case names another record.
    let wrong_case = acme.to_15().replace("SB", "sb");
    let soql = format!("SELECT Name FROM Account WHERE Id = '{wrong_case}'");
    assert!(query(&org, &soql).is_empty());
}

#[test]
fn like_supports_wildcards_and_their_escaped_literals() {
    let org = org();
    let names = |pattern: &str| {
        column(
            &query(
                &org,
                &format!("SELECT Name FROM Account WHERE Name LIKE '{pattern}' ORDER BY Name"),
            ),
            "Name",
        )
    };
    assert_eq!(names("acme%"), [json!("Acme Corp")]);
    assert_eq!(names("%LTD"), [json!("umbrella ltd")]);
    assert_eq!(names("%50\\%%"), [json!("Globex 50% Off_Sale")]);
    assert_eq!(names("%\\_%"), [json!("Globex 50% Off_Sale")]);
    assert_eq!(names("%\\%"), Vec::<Value>::new());
    assert_eq!(names("I_itech"), [json!("Initech")]);
    assert_eq!(
        names("%"),
        column(
            &query(&org, "SELECT Name FROM Account ORDER BY Name"),
            "Name"
        )
    );
    let quoted = dealbridge::salesforce::soql::like_pattern("", "Globex 50% Off_", "%");
    let rows = query(
        &org,
        &format!("SELECT Name FROM Account WHERE Name LIKE {quoted}"),
    );
    assert_eq!(column(&rows, "Name"), [json!("Globex 50% Off_Sale")]);
}

#[test]
fn an_update_writes_the_fields_and_bumps_the_modification_stamps() {
    let mut org = org();
    let later = load_clock() + chrono::Duration::hours(5);
    org.set_clock(later);
    let acme = id(&org, "Acme");
    let before = org.get(acme.as_str()).unwrap().clone();
    org.update(
        Some("account"),
        acme.to_15(),
        &body(json!({
            "Activation_Status__c": "Provisioned",
            "Billing_Client_Id__c": "WH-42",
            "Website": null,
            "Id": acme.as_str()
        })),
    )
    .unwrap();
    let after = org.get(acme.as_str()).unwrap();
    assert_eq!(after["Activation_Status__c"], json!("Provisioned"));
    assert_eq!(after["Billing_Client_Id__c"], json!("WH-42"));
    assert_eq!(after["Website"], Value::Null);
    assert_eq!(after["Name"], before["Name"]);
    assert_eq!(after["CreatedDate"], before["CreatedDate"]);
    assert_eq!(
        after["LastModifiedDate"],
        json!("2026-11-01T05:00:00.000+0000")
    );
    assert_eq!(
        after["SystemModstamp"],
        json!("2026-11-01T05:00:00.000+0000")
    );
    let rows = query(
        &org,
        "SELECT Name FROM Account WHERE Activation_Status__c = 'provisioned'",
    );
    assert_eq!(column(&rows, "Name"), [json!("Acme Corp")]);

    let order = id(&org, "AcmeOrder");
    org.update(
        Some("Order"),
        order.as_str(),
        &body(json!({
            "Provisioned_At__c": "2026-11-01T18:00:00+09:00",
            "Billing_Order_Id__c": "7",
            "Status": "Activated"
        })),
    )
    .unwrap();
    let rec = org.get(order.as_str()).unwrap();
    assert_eq!(
        rec["Provisioned_At__c"],
        json!("2026-11-01T09:00:00.000+0000")
    );
    assert_eq!(rec["Billing_Order_Id__c"], json!(7));
}

#[test]
fn update_errors_are_salesforces_and_nothing_is_written() {
    let mut org = org();
    let acme = id(&org, "Acme");
    let order = id(&org, "AcmeOrder");
    let snapshot = org.get(acme.as_str()).unwrap().clone();

    let e = update_error(
        &mut org,
        Some("Account"),
        "001SB0000000001AAA",
        json!({"Name": "x"}),
    );
    assert_eq!((e.status, e.error_code()), (400, "MALFORMED_ID"));
    assert_eq!(e.message(), "malformed id 001SB0000000001AAA");

    let e = update_error(
        &mut org,
        Some("Account"),
        "001SB0000009999",
        json!({"Name": "x"}),
    );
    assert_eq!((e.status, e.error_code()), (404, "NOT_FOUND"));
    assert_eq!(e.message(), "The requested resource does not exist");
    let e = update_error(&mut org, Some("Order"), acme.as_str(), json!({"Name": "x"}));
    assert_eq!((e.status, e.error_code()), (404, "NOT_FOUND"));

    let e = update_error(
        &mut org,
        Some("Account"),
        acme.as_str(),
        json!({"Name": "Renamed", "Nickname__c": "x"}),
    );
    assert_eq!((e.status, e.error_code()), (400, "INVALID_FIELD"));
    assert_eq!(
        e.message(),
        "No such column 'Nickname__c' on sobject of type Account"
    );

    let e = update_error(
        &mut org,
        None,
        order.as_str(),
        json!({"OrderNumber": "1", "Status": "Draft"}),
    );
    assert_eq!(
        (e.status, e.error_code()),
        (400, "INVALID_FIELD_FOR_INSERT_UPDATE")
    );
    assert_eq!(
        e.message(),
        "Unable to create/update fields: OrderNumber. Please check the security settings of this field and verify that it is read/write for your profile or permission set."
    );
    assert_eq!(e.errors[0].fields, ["OrderNumber"]);
    let e = update_error(
        &mut org,
        None,
        acme.as_str(),
        json!({"CreatedDate": "2026-01-01T00:00:00Z"}),
    );
    assert_eq!(e.error_code(), "INVALID_FIELD_FOR_INSERT_UPDATE");

    let e = update_error(
        &mut org,
        None,
        acme.as_str(),
        json!({"AnnualRevenue": "lots"}),
    );
    assert_eq!((e.status, e.error_code()), (400, "JSON_PARSER_ERROR"));
    assert!(e.message().contains("value lots"), "{}", e.message());
    assert!(e.message().contains("AnnualRevenue"), "{}", e.message());
    let e = update_error(&mut org, None, acme.as_str(), json!({"Name": ["a"]}));
    assert_eq!(e.error_code(), "JSON_PARSER_ERROR");
    let e = update_error(
        &mut org,
        None,
        order.as_str(),
        json!({"EffectiveDate": "2026-02-30"}),
    );
    assert_eq!(e.error_code(), "JSON_PARSER_ERROR");
    let e = update_error(
        &mut org,
        None,
        order.as_str(),
        json!({"Provisioned_At__c": "yesterday"}),
    );
    assert_eq!(e.error_code(), "JSON_PARSER_ERROR");

    let e = update_error(
        &mut org,
        None,
        acme.as_str(),
        json!({"Name": "Renamed", "Activation_Status__c": "Done"}),
    );
    assert_eq!(
        (e.status, e.error_code()),
        (400, "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST")
    );
    assert_eq!(
        e.message(),
        "Activation Status: bad value for restricted picklist field: Done"
    );
    assert_eq!(e.errors[0].fields, ["Activation_Status__c"]);
    let deal = id(&org, "AcmeDeal");
    let e = update_error(&mut org, None, deal.as_str(), json!({"StageName": "Won"}));
    assert_eq!(
        e.message(),
        "Stage: bad value for restricted picklist field: Won"
    );

    let globex = id(&org, "Globex");
    let e = update_error(
        &mut org,
        None,
        acme.as_str(),
        json!({"Id": globex.as_str()}),
    );
    assert_eq!(e.error_code(), "INVALID_FIELD");

    let e = update_error(
        &mut org,
        None,
        order.as_str(),
        json!({"AccountId": "001nope"}),
    );
    assert_eq!(e.error_code(), "MALFORMED_ID");
    let e = update_error(
        &mut org,
        None,
        order.as_str(),
        json!({"AccountId": deal.as_str()}),
    );
    assert_eq!(e.error_code(), "FIELD_INTEGRITY_EXCEPTION");

    assert_eq!(org.get(acme.as_str()).unwrap(), &snapshot);
    assert_eq!(org.get(order.as_str()).unwrap()["Status"], json!("Draft"));

    let body_json = serde_json::to_value(&e.errors).unwrap();
    assert_eq!(
        body_json[0]["errorCode"],
        json!("FIELD_INTEGRITY_EXCEPTION")
    );
    assert_eq!(body_json[0]["fields"], json!(["AccountId"]));
}

#[test]
fn insert_creates_a_queryable_record_with_the_next_generated_id() {
    let mut org = org();
    org.set_clock(load_clock());
    let acme = id(&org, "Acme");
    let new = org
        .insert(
            "Contact",
            &body(json!({"LastName": "Tanaka", "AccountId": acme.to_15(), "HasOptedOutOfEmail": "true"})),
        )
        .unwrap();
    assert_eq!(new.to_15(), "003SB0000000003");
    let rec = org.get(new.as_str()).unwrap();
    assert_eq!(rec["AccountId"], json!(acme.as_str()));
    assert_eq!(rec["HasOptedOutOfEmail"], json!(true));
    assert_eq!(rec["CreatedDate"], json!("2026-11-01T00:00:00.000+0000"));
    let rows = query(
        &org,
        "SELECT Account.Name, (SELECT LastName FROM Contacts ORDER BY LastName) FROM Account WHERE Name = 'Acme Corp'",
    );
    assert_eq!(rows[0]["Contacts"]["totalSize"], json!(3));
    let e = org
        .insert("Opportunity", &body(json!({"Name": "x", "IsWon": true})))
        .unwrap_err();
    assert_eq!(e.error_code(), "INVALID_FIELD_FOR_INSERT_UPDATE");
    let e = org
        .insert("Lead", &body(json!({"LastName": "x"})))
        .unwrap_err();
    assert_eq!((e.status, e.error_code()), (404, "NOT_FOUND"));
}

#[test]
fn query_errors_carry_salesforces_codes() {
    let org = org();
    let cases = [
        (
            "SELECT Id FORM Account",
            "MALFORMED_QUERY",
            "unexpected token: 'FORM'",
        ),
        (
            "SELECT Id, Nmae FROM Account",
            "INVALID_FIELD",
            "No such column 'Nmae' on entity 'Account'.",
        ),
        (
            "SELECT Id FROM Acount",
            "INVALID_TYPE",
            "sObject type 'Acount' is not supported.",
        ),
        (
            "SELECT Id, (SELECT Id FROM Items) FROM Order",
            "INVALID_TYPE",
            "Didn't understand relationship 'Items' in FROM part of query call.",
        ),
        (
            "SELECT Id FROM Order WHERE AccountId = '001bad'",
            "INVALID_QUERY_FILTER_OPERATOR",
            "invalid ID field: 001bad",
        ),
        (
            "SELECT Id FROM Order WHERE Status = 'Draft' AND EffectiveDate > 2026-01-01 OR Status = 'Activated'",
            "MALFORMED_QUERY",
            "unexpected token: 'OR'",
        ),
        (
            "SELECT Id FROM Order WHERE Status = 'Dr\\aft'",
            "MALFORMED_QUERY",
            "Illegal character sequence '\\a'",
        ),
        (
            "SELECT Id FROM Opportunity WHERE CloseDate = THIS_MONTH",
            "MALFORMED_QUERY",
            "unexpected token: 'THIS_MONTH'",
        ),
    ];
    for (soql, code, text) in cases {
        let e = org.query(soql, &QueryOptions::default()).unwrap_err();
        assert_eq!((e.status, e.error_code()), (400, code), "{soql}");
        assert!(e.message().contains(text), "{soql}: {}", e.message());
        assert!(e.message().contains("ERROR at Row:1:Column:"), "{soql}");
    }
}
