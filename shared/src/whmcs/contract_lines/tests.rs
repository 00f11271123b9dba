use serde_json::{Value, json};

use super::*;

const CURRENT: &str = "801A000020khO8J";

fn product(id: &str, name: &str) -> Value {
    json!({"id": id, "name": name, "whmcsProductId": "7"})
}

fn item(id: &str, product: Value, quantity: i64, price: i64, revises: Option<&str>) -> Value {
    json!({
        "id": id, "quantity": quantity, "unitPrice": price, "schedules": [],
        "product": product, "revisedItem": revises,
    })
}

const GOLD: &str = "01tA000010khO8J";
const PHONE: &str = "01tA000011khO8J";

/// The Contract's first sale: Gold × 1 at 5300 on WHMCS service 101 (WHMCS order 12).
fn first_sale() -> Value {
    let mut gold = item("802A000010khO8J", product(GOLD, "Gold"), 1, 5300, None);
    gold["whmcsServiceId"] = json!("101");
    json!({"id": "801A000010khO8J", "status": "Activated", "whmcsOrderId": "12", "items": [gold]})
}

/// A deal amending (or renewing) the Contract, whose Order holds `items`.
fn deal(renewal: bool, items: Vec<Value>, history: bool) -> DealSnapshot {
    let contract = "800A000010khO8J";
    let current = json!({"id": CURRENT, "status": "Activated", "items": items});
    let mut opp = json!({
        "id": "006A000020khO8J", "name": "Change", "stage": "Closed Won", "isWon": true,
        "isClosed": true, "accountId": "001A000010khO8J", "contactRoles": [],
    });
    opp[if renewal {
        "renewedContract"
    } else {
        "amendedContract"
    }] = json!(contract);
    let mut snapshot = json!({
        "requested": {"type": "Order", "id": CURRENT},
        "account": {"id": "001A000010khO8J", "name": "Sato", "billingAddress": {}},
        "opportunity": opp,
        "orders": [current.clone()],
    });
    if history {
        snapshot["contract"] = json!({
            "contract": {"id": contract, "cotermDisabled": false},
            "orders": [first_sale(), current],
        });
    }
    serde_json::from_value(snapshot).unwrap()
}

/// Ordered item ids, continued (item, service), the continued WHMCS order, problems.
type Split = (
    Vec<String>,
    Vec<(String, String)>,
    Option<String>,
    Vec<String>,
);

fn split(snapshot: &DealSnapshot) -> Split {
    let lines = contract_lines(snapshot, &snapshot.orders[0]);
    (
        lines.ordered.iter().map(|i| i.id.to_string()).collect(),
        lines
            .continued
            .iter()
            .map(|(i, s)| (i.to_string(), s.clone()))
            .collect(),
        lines.continued_order.clone(),
        lines.problems.iter().map(ToString::to_string).collect(),
    )
}

#[test]
fn an_amendment_orders_a_new_product_and_nothing_else() {
    let snapshot = deal(
        false,
        vec![item(
            "802A000020khO8J",
            product(PHONE, "Phone"),
            1,
            500,
            None,
        )],
        true,
    );
    let (ordered, continued, _, problems) = split(&snapshot);
    assert_eq!(ordered, ["802A000020khO8JIAU"]);
    assert!(continued.is_empty() && problems.is_empty(), "{problems:?}");
}

#[test]
fn a_quantity_change_removal_or_second_line_of_a_provisioned_product_is_refused() {
    for (items, says) in [
        (
            vec![item(
                "802A000020khO8J",
                product(GOLD, "Gold"),
                1,
                5300,
                Some("802A000010khO8J"),
            )],
            "changes Gold by 1 on WHMCS service 101",
        ),
        (
            vec![item(
                "802A000020khO8J",
                product(GOLD, "Gold"),
                -1,
                5300,
                Some("802A000010khO8J"),
            )],
            "changes Gold by -1 on WHMCS service 101",
        ),
        (
            vec![item(
                "802A000020khO8J",
                product(GOLD, "Gold"),
                1,
                5300,
                None,
            )],
            "adds 1 Gold to a Contract whose WHMCS service 101 already provides it",
        ),
    ] {
        let (ordered, continued, _, problems) = split(&deal(false, items, true));
        assert!(ordered.is_empty() && continued.is_empty());
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].starts_with("WHMCS_CHANGE_NOT_SUPPORTED"),
            "{problems:?}"
        );
        assert!(problems[0].contains(says), "{problems:?}");
        assert!(
            problems[0].contains("change the service in WHMCS"),
            "{problems:?}"
        );
    }
}

#[test]
fn an_unchanged_renewal_line_carries_on_the_existing_service_and_an_uplift_is_refused() {
    let same = deal(
        true,
        vec![item(
            "802A000030khO8J",
            product(GOLD, "Gold"),
            1,
            5300,
            None,
        )],
        true,
    );
    let (ordered, continued, order, problems) = split(&same);
    assert!(ordered.is_empty() && problems.is_empty(), "{problems:?}");
    assert_eq!(
        continued,
        [("802A000030khO8JIAU".to_string(), "101".to_string())]
    );
    assert_eq!(order.as_deref(), Some("12"));

    let uplift = deal(
        true,
        vec![
            item("802A000030khO8J", product(GOLD, "Gold"), 1, 5600, None),
            item("802A000031khO8J", product(PHONE, "Phone"), 1, 500, None),
        ],
        true,
    );
    let (ordered, continued, _, problems) = split(&uplift);
    assert_eq!(
        ordered,
        ["802A000031khO8JIAU"],
        "the new product is ordered"
    );
    assert!(continued.is_empty());
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].contains("renews Gold at 1 × 5600 where WHMCS service 101 has 1 × 5300"),
        "{problems:?}"
    );
}

#[test]
fn a_contract_whose_orders_cannot_be_read_orders_nothing_and_a_first_sale_orders_everything() {
    let unreadable = deal(
        false,
        vec![item(
            "802A000020khO8J",
            product(PHONE, "Phone"),
            1,
            500,
            None,
        )],
        false,
    );
    let (ordered, _, _, problems) = split(&unreadable);
    assert!(ordered.is_empty());
    assert!(
        problems[0].starts_with("AMENDMENT_NOT_SUPPORTED"),
        "{problems:?}"
    );

    let mut first: DealSnapshot = unreadable.clone();
    if let Some(o) = first.opportunity.as_mut() {
        o.amended_contract = None;
    }
    let (ordered, _, _, problems) = split(&first);
    assert_eq!(ordered, ["802A000020khO8JIAU"]);
    assert!(problems.is_empty());
}
