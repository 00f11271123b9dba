//! The provisioning step against in-memory stand-ins of WHMCS and Salesforce (the ports): the
//! currency check before `Activating` and AddOrder, and its absence on the resume path.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{TimeZone, Utc};
use serde_json::{Value, json};

use super::error::WhmcsError;
use super::model::{
    AddOrder, AddOrderResult, ClientDetails, Currency, GetOrdersQuery, Order, OrdersPage,
};
use super::prepare::tests::{order_id, seed_003};
use super::provision::{STEP, TARGET_ORDER, TARGET_SERVICES, WhmcsDeps};
use crate::clock::{Clock, ManualClock};
use crate::codes::ErrorCode;
use crate::envelope::{Envelope, Step};
use crate::ledger::{DEFAULT_RETENTION, InMemoryLedger, Ledger};
use crate::mapping::Mapping;
use crate::ports::{SalesforceWrites, Whmcs};
use crate::queue::QueueName;
use crate::retry::RetryPolicy;
use crate::runner::{Delivery, Handled, QueueHandler};
use crate::salesforce::{RecordUpdate, SalesforceError, SaveResult};
use crate::snapshot::{DealRef, DealSnapshot};
use crate::writeback::WriteBack;

/// WHMCS in memory: one client in `currency` (client 1), every call recorded.
struct MemoryWhmcs {
    /// GetClientsDetails' client object.
    client: Value,
    /// GetClientsDetails answers 503 this many more times.
    details_down: Mutex<u32>,
    /// GetOrders' answer for one order id (`None`: no such order).
    held: Option<Value>,
    calls: Mutex<Vec<String>>,
}

impl MemoryWhmcs {
    fn in_currency(id: u32, code: &str) -> MemoryWhmcs {
        MemoryWhmcs {
            client: json!({"id": 1, "status": "Active", "currency": id, "currency_code": code}),
            details_down: Mutex::new(0),
            held: None,
            calls: Mutex::new(Vec::new()),
        }
    }

    fn call(&self, what: String) {
        self.calls.lock().unwrap().push(what);
    }

    fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }
}

#[async_trait]
impl Whmcs for MemoryWhmcs {
    async fn add_order(&self, order: &AddOrder) -> Result<AddOrderResult, WhmcsError> {
        self.call(format!("AddOrder {}", order.client_id));
        Ok(AddOrderResult {
            order_id: "12".into(),
            service_ids: (0..order.lines.len()).map(|i| format!("3{i}")).collect(),
            addon_ids: vec![],
            domain_ids: vec![],
            invoice_id: None,
        })
    }
    async fn accept_order(
        &self,
        order_id: &str,
        _: Option<bool>,
        _: Option<bool>,
    ) -> Result<(), WhmcsError> {
        self.call(format!("AcceptOrder {order_id}"));
        Ok(())
    }
    async fn get_orders(&self, query: &GetOrdersQuery) -> Result<OrdersPage, WhmcsError> {
        self.call(format!(
            "GetOrders {}",
            query.userid.as_deref().unwrap_or_default()
        ));
        Ok(OrdersPage::default())
    }
    async fn order(&self, order_id: &str) -> Result<Option<Order>, WhmcsError> {
        self.call(format!("GetOrders id {order_id}"));
        self.held
            .clone()
            .map(serde_json::from_value)
            .transpose()
            .map_err(|e| WhmcsError::InvalidRequest(e.to_string()))
    }
    async fn orders_for_client(&self, client_id: &str) -> Result<Vec<Order>, WhmcsError> {
        self.call(format!("GetOrders all {client_id}"));
        Ok(vec![])
    }
    async fn client_details(&self, client_id: &str) -> Result<ClientDetails, WhmcsError> {
        self.call(format!("GetClientsDetails {client_id}"));
        {
            let mut down = self.details_down.lock().unwrap();
            if *down > 0 {
                *down -= 1;
                return Err(WhmcsError::Http {
                    status: 503,
                    body: String::new(),
                    retry_after: None,
                });
            }
        }
        serde_json::from_value(json!({"result": "success", "client": self.client}))
            .map_err(|e| WhmcsError::InvalidRequest(e.to_string()))
    }
    async fn currencies(&self) -> Result<Vec<Currency>, WhmcsError> {
        self.call("GetCurrencies".into());
        serde_json::from_value(json!([{"id": 1, "code": "JPY"}, {"id": 2, "code": "USD"}]))
            .map_err(|e| WhmcsError::InvalidRequest(e.to_string()))
    }
}

/// Salesforce in memory: every Collections update, all accepted.
#[derive(Default)]
struct MemorySalesforce {
    updates: Mutex<Vec<RecordUpdate>>,
}

impl MemorySalesforce {
    /// The Order's `Activation_Status__c` in each update, in order.
    fn statuses(&self) -> Vec<String> {
        self.updates
            .lock()
            .unwrap()
            .iter()
            .filter(|u| u.sobject == "Order")
            .filter_map(|u| u.fields.get("Activation_Status__c"))
            .map(|v| v.as_str().unwrap_or_default().to_string())
            .collect()
    }

    fn last_error(&self) -> Option<String> {
        self.updates
            .lock()
            .unwrap()
            .iter()
            .rev()
            .find_map(|u| u.fields.get("Activation_Error__c"))
            .and_then(|v| v.as_str().map(str::to_string))
    }
}

#[async_trait]
impl SalesforceWrites for MemorySalesforce {
    async fn update_records(
        &self,
        records: &[RecordUpdate],
        _all_or_none: bool,
    ) -> Result<Vec<SaveResult>, SalesforceError> {
        self.updates.lock().unwrap().extend(records.iter().cloned());
        Ok(records
            .iter()
            .map(|r| SaveResult {
                id: Some(r.id.to_string()),
                success: true,
                errors: Vec::new(),
            })
            .collect())
    }
}

struct Harness {
    deps: WhmcsDeps,
    whmcs: Arc<MemoryWhmcs>,
    salesforce: Arc<MemorySalesforce>,
    ledger: InMemoryLedger,
    clock: Arc<ManualClock>,
}

fn step(whmcs: MemoryWhmcs) -> Harness {
    let whmcs = Arc::new(whmcs);
    let salesforce = Arc::new(MemorySalesforce::default());
    let clock = Arc::new(ManualClock::new(
        Utc.timestamp_opt(1_795_176_000, 0).single().unwrap(),
    ));
    let mapping = Arc::new(Mapping::default());
    let ledger = InMemoryLedger::new(DEFAULT_RETENTION);
    let deps = WhmcsDeps {
        whmcs: whmcs.clone(),
        ledger: Arc::new(ledger.clone()),
        writeback: Arc::new(WriteBack::new(
            salesforce.clone(),
            mapping.clone(),
            clock.clone(),
            RetryPolicy::immediate(1),
        )),
        mapping,
        clock: clock.clone(),
        lease_fallback: Duration::from_secs(60),
        max_receives: 10,
        seal: None,
    };
    Harness {
        deps,
        whmcs,
        salesforce,
        ledger,
        clock,
    }
}

/// The seed-003 Order (no activation status yet, so `Activating` is due) in `currency`.
fn message(currency: Option<&str>) -> Envelope {
    let mut snapshot: DealSnapshot = seed_003();
    snapshot.orders[0].currency = currency.map(str::to_string);
    let account = snapshot.account.id.clone();
    Envelope::new(
        "c-1",
        &DealRef::Order(order_id()),
        &account,
        None,
        Step::WhmcsProvision {
            order_id: order_id(),
            snapshot: Box::new(snapshot),
        },
    )
}

fn delivery(n: u32) -> Delivery {
    Delivery {
        queue: QueueName::WhmcsProvision,
        message_id: "m-1".into(),
        receive_count: n,
        deadline: None,
    }
}

#[tokio::test]
async fn a_client_in_another_currency_fails_the_order_before_activating_and_add_order() {
    let s = step(MemoryWhmcs::in_currency(1, "JPY"));

    let handled = s.deps.handle(message(Some("USD")), &delivery(1)).await;

    let Handled::Permanent(failure) = handled else {
        panic!("{handled:?}")
    };
    assert_eq!(failure.code, "WHMCS_CURRENCY_MISMATCH");
    assert_eq!(s.whmcs.calls(), ["GetClientsDetails 1"], "no AddOrder");
    assert_eq!(
        s.salesforce.statuses(),
        ["Failed"],
        "Activating is not written"
    );
    let error = s.salesforce.last_error().unwrap();
    assert_eq!(
        error,
        "WHMCS_CURRENCY_MISMATCH: Order 801A000010khO8JIAU is in USD, but WHMCS client 1 bills in JPY; a WHMCS client's currency is fixed when the client is created"
    );
    let record = s.ledger.get(order_id().as_ref(), STEP).await.unwrap();
    let record = record.unwrap();
    assert!(record.targets.is_empty(), "no baseline: nothing was placed");
    assert_eq!(record.last_error.as_deref(), Some(error.as_str()));
}

#[tokio::test]
async fn a_client_in_the_orders_currency_is_provisioned_after_the_check() {
    let s = step(MemoryWhmcs::in_currency(1, "JPY"));

    let handled = s.deps.handle(message(Some("jpy")), &delivery(1)).await;

    assert_eq!(handled, Handled::Done);
    assert_eq!(
        s.whmcs.calls(),
        [
            "GetClientsDetails 1",
            "GetOrders 1",
            "AddOrder 1",
            "AcceptOrder 12"
        ]
    );
    assert_eq!(s.salesforce.statuses(), ["Activating", "Provisioned"]);
}

#[tokio::test]
async fn an_order_without_a_currency_is_provisioned_without_reading_the_client() {
    let s = step(MemoryWhmcs::in_currency(2, "USD"));

    let handled = s.deps.handle(message(None), &delivery(1)).await;

    assert_eq!(handled, Handled::Done);
    assert_eq!(
        s.whmcs.calls(),
        ["GetOrders 1", "AddOrder 1", "AcceptOrder 12"]
    );
}

#[tokio::test]
async fn a_client_without_a_currency_code_is_looked_up_in_get_currencies() {
    let mut whmcs = MemoryWhmcs::in_currency(2, "USD");
    whmcs.client = json!({"id": 1, "status": "Active", "currency": "2"});
    let s = step(whmcs);

    let handled = s.deps.handle(message(Some("JPY")), &delivery(1)).await;

    assert!(
        matches!(&handled, Handled::Permanent(f) if f.code == "WHMCS_CURRENCY_MISMATCH" && f.message.contains("bills in USD")),
        "{handled:?}"
    );
    assert_eq!(s.whmcs.calls(), ["GetClientsDetails 1", "GetCurrencies"]);
}

#[tokio::test]
async fn a_client_whose_currency_cannot_be_told_fails_the_order() {
    let mut whmcs = MemoryWhmcs::in_currency(1, "JPY");
    whmcs.client = json!({"id": 1, "status": "Active"});
    let s = step(whmcs);

    let handled = s.deps.handle(message(Some("JPY")), &delivery(1)).await;

    let Handled::Permanent(failure) = handled else {
        panic!("{handled:?}")
    };
    assert_eq!(failure.code, "WHMCS_UNEXPECTED_ANSWER");
    assert!(
        failure
            .message
            .contains("client 1 has neither a currency_code nor a currency id"),
        "{failure}"
    );
    assert_eq!(s.whmcs.calls(), ["GetClientsDetails 1"]);
    assert_eq!(s.salesforce.statuses(), ["Failed"]);
}

#[tokio::test]
async fn a_passing_failure_of_the_check_is_retried_and_activating_still_written_first() {
    let whmcs = MemoryWhmcs::in_currency(1, "JPY");
    *whmcs.details_down.lock().unwrap() = 1;
    let s = step(whmcs);

    let first = s.deps.handle(message(Some("JPY")), &delivery(1)).await;
    assert!(
        matches!(&first, Handled::Retry(f) if f.code == "WHMCS_UNAVAILABLE"),
        "{first:?}"
    );
    assert!(s.salesforce.statuses().is_empty(), "nothing written yet");
    s.clock.advance(Duration::from_secs(120));
    let second = s.deps.handle(message(Some("JPY")), &delivery(2)).await;

    assert_eq!(second, Handled::Done);
    assert_eq!(s.salesforce.statuses(), ["Activating", "Provisioned"]);
    assert_eq!(
        s.whmcs.calls(),
        [
            "GetClientsDetails 1",
            "GetClientsDetails 1",
            "GetOrders 1",
            "AddOrder 1",
            "AcceptOrder 12"
        ]
    );
}

#[tokio::test]
async fn an_order_already_placed_in_the_ledger_is_not_checked_again() {
    // A client now in another currency: the order exists, so only its acceptance is left.
    let s = step(MemoryWhmcs::in_currency(2, "USD"));
    let deal = order_id().to_string();
    let now = s.clock.now();
    s.ledger
        .begin(&deal, STEP, now, now + chrono::Duration::seconds(60))
        .await
        .unwrap();
    let placed = BTreeMap::from([
        (TARGET_ORDER.to_string(), "12".to_string()),
        (TARGET_SERVICES.to_string(), "30,31,32".to_string()),
    ]);
    s.ledger
        .record_targets(&deal, STEP, &placed, now)
        .await
        .unwrap();
    s.ledger.fail(&deal, STEP, "crashed", now).await.unwrap();

    let handled = s.deps.handle(message(Some("JPY")), &delivery(2)).await;

    assert_eq!(handled, Handled::Done);
    assert_eq!(s.whmcs.calls(), ["AcceptOrder 12"]);
    assert_eq!(s.salesforce.statuses(), ["Provisioned"]);
}

/// A step whose ledger holds WHMCS order 12 with `services` (an earlier attempt died), and whose
/// WHMCS holds order 12 with `products` product lines.
async fn resumed_with(services: &str, products: usize) -> Harness {
    let mut whmcs = MemoryWhmcs::in_currency(1, "JPY");
    whmcs.held = Some(json!({
        "id": "12", "userid": "1", "status": "Pending", "paymentmethod": "mailin",
        "lineitems": {"lineitem": (0..products).map(|i| json!({
            "type": "product", "relid": format!("4{i}"), "producttype": "Other", "product": "P"
        })).collect::<Vec<_>>()}
    }));
    let s = step(whmcs);
    let deal = order_id().to_string();
    let now = s.clock.now();
    s.ledger
        .begin(&deal, STEP, now, now + chrono::Duration::seconds(60))
        .await
        .unwrap();
    let mut placed = BTreeMap::from([(TARGET_ORDER.to_string(), "12".to_string())]);
    if !services.is_empty() {
        placed.insert(TARGET_SERVICES.to_string(), services.to_string());
    }
    s.ledger
        .record_targets(&deal, STEP, &placed, now)
        .await
        .unwrap();
    s.ledger.fail(&deal, STEP, "crashed", now).await.unwrap();
    s
}

#[tokio::test]
async fn an_order_id_without_its_services_reads_them_from_whmcs_before_accepting() {
    let s = resumed_with("", 3).await;

    let handled = s.deps.handle(message(Some("JPY")), &delivery(2)).await;

    assert_eq!(handled, Handled::Done);
    assert_eq!(s.whmcs.calls(), ["GetOrders id 12", "AcceptOrder 12"]);
    assert_eq!(s.salesforce.statuses(), ["Provisioned"]);
    let record = s.ledger.get(order_id().as_ref(), STEP).await.unwrap();
    assert_eq!(
        record.unwrap().target(TARGET_SERVICES),
        Some("40,41,42"),
        "saved for the next attempt"
    );
}

#[tokio::test]
async fn a_whmcs_order_with_other_products_than_the_order_is_a_conflict_not_a_guess() {
    let s = resumed_with("30", 2).await;

    let handled = s.deps.handle(message(Some("JPY")), &delivery(2)).await;

    let Handled::Conflict(failure) = handled else {
        panic!("{handled:?}")
    };
    assert_eq!(failure.code, ErrorCode::WhmcsServicesMismatch);
    assert!(
        failure.message.contains("WHMCS order 12 holds 2 products"),
        "{failure}"
    );
    assert_eq!(s.whmcs.calls(), ["GetOrders id 12"], "not accepted");
    assert_eq!(s.salesforce.statuses(), ["Failed"]);
    assert!(
        s.salesforce
            .last_error()
            .is_some_and(|e| e.starts_with("WHMCS_SERVICES_MISMATCH")),
        "{:?}",
        s.salesforce.last_error()
    );
}
