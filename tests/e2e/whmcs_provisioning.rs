//! WHMCS provisioning end to end: an approved Order (the seed-003 internet order) becomes exactly
//! one accepted WHMCS order, and the Order, its items and its Opportunity show the outcome;
//! duplicates and crashes never create a second order; broken rules, a WHMCS client in another
//! currency than the Order's and WHMCS's refusals end in `Failed` with a coded message and no
//! retries.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use dealbridge::envelope::Envelope;
use dealbridge::ledger::{Begin, Ledger, LedgerError, StepRecord, StepStatus};
use dealbridge::queue::QueueName;
use dealbridge::runner::{Delivery, Handled, QueueHandler};
use dealbridge::whmcs::provision::{
    STEP, TARGET_ACCEPTED, TARGET_ORDER, TARGET_SERVICES, WhmcsDeps,
};
use dealbridge_sandbox::events::sample;
use dealbridge_sandbox::local::LocalStack;
use dealbridge_sandbox::whmcs::catalog::USD_CURRENCY_ID;
use dealbridge_sandbox::whmcs::{Client, OrderStatus, ServiceStatus, routes as whmcs_routes};
use serde_json::{Map, Value, json};
use tokio::sync::Notify;

/// A provisioning message's `n`th delivery, with no Lambda deadline.
fn delivery(n: u32) -> Delivery {
    Delivery {
        queue: QueueName::WhmcsProvision,
        message_id: format!("m-{n}"),
        receive_count: n,
        deadline: None,
    }
}

/// The platform event seed 001's approval flow publishes for the internet Order, then the
/// workers until the queues drain.
async fn approve(stack: &LocalStack) {
    let event = serde_json::from_value(sample("platform-events-order-provision.json")).unwrap();
    dealbridge_platform_events::handle(event, &stack.platform_events)
        .await
        .unwrap();
    stack.drain(200).await;
}

fn record(stack: &LocalStack, reference: &str) -> Map<String, Value> {
    stack
        .salesforce
        .record(stack.id(reference).as_str())
        .unwrap()
}

fn update(stack: &LocalStack, sobject: &str, reference: &str, fields: Value) {
    let id = stack.id(reference);
    let Value::Object(fields) = fields else {
        panic!("fields")
    };
    stack.salesforce.with_org(|org| {
        org.update(Some(sobject), id.as_str(), &fields).unwrap();
    });
}

/// The form of every AddOrder WHMCS received, without the credentials.
fn add_orders(stack: &LocalStack) -> Vec<Vec<(String, String)>> {
    stack
        .whmcs
        .observer()
        .requests()
        .iter()
        .filter(|r| r.route == whmcs_routes::API)
        .map(|r| {
            url::form_urlencoded::parse(r.body.as_bytes())
                .into_owned()
                .collect::<Vec<_>>()
        })
        .filter(|pairs| pairs.iter().any(|(k, v)| k == "action" && v == "AddOrder"))
        .map(|pairs| {
            pairs
                .into_iter()
                .filter(|(k, _)| !["identifier", "secret", "responsetype"].contains(&k.as_str()))
                .collect()
        })
        .collect()
}

/// The `action` of every request WHMCS received, in order.
fn actions(stack: &LocalStack) -> Vec<String> {
    stack
        .whmcs
        .observer()
        .requests()
        .iter()
        .filter_map(|r| {
            url::form_urlencoded::parse(r.body.as_bytes())
                .into_owned()
                .find(|(k, _)| k == "action")
                .map(|(_, v)| v)
        })
        .collect()
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.as_f64().map(|f| format!("{f}")).unwrap_or_default(),
        other => other.to_string(),
    }
}

#[tokio::test]
async fn the_seed_003_order_is_provisioned_accepted_and_written_back() {
    let stack = LocalStack::start().await.unwrap();

    approve(&stack).await;

    let expected: Vec<(String, String)> = [
        ("action", "AddOrder"),
        ("clientid", "1"),
        ("paymentmethod", "mailin"),
        ("pid[0]", "185"),
        ("pid[1]", "242"),
        ("pid[2]", "246"),
        ("billingcycle[0]", "monthly"),
        ("billingcycle[1]", "onetime"),
        ("billingcycle[2]", "monthly"),
        ("qty[0]", "1"),
        ("qty[1]", "1"),
        ("qty[2]", "1"),
        ("noinvoice", "1"),
        ("noemail", "1"),
        ("promocode", ""),
        ("configoptions[0]", ""),
        ("configoptions[1]", ""),
        ("configoptions[2]", ""),
        ("customfields[0]", ""),
        ("customfields[1]", ""),
        ("customfields[2]", ""),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(add_orders(&stack), [expected]);
    assert_eq!(
        actions(&stack),
        ["GetClientsDetails", "GetOrders", "AddOrder", "AcceptOrder"],
        "the client's currency (JPY, the Order's) is read first"
    );
    assert_eq!(stack.whmcs.action_count("AcceptOrder"), 1);
    let orders = stack.whmcs.orders();
    assert_eq!(orders.len(), 1);
    let whmcs_order = &orders[0];
    assert_eq!(whmcs_order.status, OrderStatus::Active);
    assert_eq!(whmcs_order.client_id, 1);
    assert!(whmcs_order.invoice_id.is_none(), "noinvoice");
    assert!(
        whmcs_order
            .lines
            .iter()
            .all(|l| l.service_status == ServiceStatus::Active)
    );

    let order = record(&stack, "InternetOrder");
    assert_eq!(order["Activation_Status__c"], "Provisioned");
    assert_eq!(order["Status"], "Activated");
    assert_eq!(
        text(&order["WHMCS_Order_Id__c"]),
        whmcs_order.id.to_string()
    );
    assert!(order["Activation_Error__c"].is_null());
    assert!(order["Activation_Error_DateTime__c"].is_null());
    for (item, line) in [
        "InternetGoldItem",
        "InternetInstallItem",
        "InternetPhoneItem",
    ]
    .iter()
    .zip(&whmcs_order.lines)
    {
        assert_eq!(
            record(&stack, item)["WHMCS_Service_ID__c"],
            line.service_id.to_string().as_str(),
            "{item}"
        );
    }
    let opp = record(&stack, "InternetOpportunity");
    assert_eq!(opp["StageName"], "Active");
    assert_eq!(
        text(&opp["WHMCS_Service_ID__c"]),
        whmcs_order.lines[0].service_id.to_string(),
        "the internet service, not the installation"
    );
    let steps = stack
        .ledger
        .records()
        .into_iter()
        .filter(|r| r.step == STEP)
        .collect::<Vec<_>>();
    assert_eq!(steps.len(), 1);
    assert_eq!(
        steps[0].target(TARGET_ORDER),
        Some(whmcs_order.id.to_string().as_str())
    );
}

#[tokio::test]
async fn the_whmcs_product_id_field_of_seed_001_works_too() {
    let stack = LocalStack::start_with(&[(
        "DEALBRIDGE_MAPPING",
        r#"{"product":{"whmcs_product_id":"WHMCS_Product_Id__c"}}"#,
    )])
    .await
    .unwrap();
    approve(&stack).await;
    let forms = add_orders(&stack);
    assert_eq!(forms.len(), 1);
    let pids: Vec<&str> = forms[0]
        .iter()
        .filter(|(k, _)| k.starts_with("pid["))
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(pids, ["185", "242", "246"]);
    assert_eq!(
        record(&stack, "InternetOrder")["Activation_Status__c"],
        "Provisioned"
    );
}

#[tokio::test]
async fn config_options_json_is_sent_as_a_php_array_on_its_line() {
    let stack = LocalStack::start().await.unwrap();
    update(
        &stack,
        "Product2",
        "InternetGoldAptProduct",
        json!({"Portal_ConfigOptions_JSON__c": r#"{"12": "34"}"#}),
    );
    approve(&stack).await;
    let orders = stack.whmcs.orders();
    assert_eq!(orders.len(), 1);
    let form = &add_orders(&stack)[0];
    let first = form
        .iter()
        .find(|(k, _)| k == "configoptions[0]")
        .map(|(_, v)| v.as_str());
    assert_eq!(
        first,
        Some("YToxOntpOjEyO3M6MjoiMzQiO30="),
        "a:1:{{i:12;s:2:\"34\";}}"
    );
    assert!(
        orders[0].lines[0].config_options_error.is_none(),
        "the fake decoded it"
    );
}

/// The WHMCS message dispatch sent, for handing to the worker by hand.
async fn provisioning_message(stack: &LocalStack) -> Envelope {
    let event = serde_json::from_value(sample("platform-events-order-provision.json")).unwrap();
    dealbridge_platform_events::handle(event, &stack.platform_events)
        .await
        .unwrap();
    let sent = stack.queue.sent(QueueName::WhmcsProvision);
    Envelope::parse(&sent[0].body).unwrap()
}

#[tokio::test]
async fn a_message_delivered_twice_creates_one_whmcs_order() {
    let stack = LocalStack::start().await.unwrap();
    let envelope = provisioning_message(&stack).await;

    let first = stack
        .whmcs_deps
        .handle(envelope.clone(), &delivery(1))
        .await;
    let second = stack.whmcs_deps.handle(envelope, &delivery(1)).await;

    assert_eq!((first, second), (Handled::Done, Handled::Done));
    assert_eq!(stack.whmcs.order_count(), 1);
    assert_eq!(stack.whmcs.action_count("AddOrder"), 1);
    assert_eq!(stack.whmcs.action_count("AcceptOrder"), 1);
}

#[tokio::test]
async fn two_deliveries_at_once_create_one_whmcs_order() {
    let stack = LocalStack::start().await.unwrap();
    let envelope = provisioning_message(&stack).await;

    let first = delivery(1);
    let (a, b) = tokio::join!(
        stack.whmcs_deps.handle(envelope.clone(), &first),
        stack.whmcs_deps.handle(envelope.clone(), &first)
    );

    let retried = [&a, &b]
        .iter()
        .filter(|h| matches!(h, Handled::Retry(r) if r.code == "LEDGER_BUSY" && r.message.contains("another attempt")))
        .count();
    assert_eq!(retried, 1, "{a:?} {b:?}");
    assert_eq!(stack.whmcs.order_count(), 1);
    // The one that waited comes back later and finds the work done.
    assert_eq!(
        stack.whmcs_deps.handle(envelope, &delivery(2)).await,
        Handled::Done
    );
    assert_eq!(stack.whmcs.order_count(), 1);
}

/// A ledger that "crashes the process" when a write that saves a given target comes: it wakes
/// the test and never answers, so the handler's future is dropped mid-step, as when a Lambda
/// dies. With `keeping`, the write's targets named there are saved first (a write of some of the
/// ids that crashed before the rest, as an earlier build's two writes could).
struct CrashingLedger {
    inner: Arc<dyn Ledger>,
    at_target: &'static str,
    keeping: &'static [&'static str],
    crashed: Arc<Notify>,
}

#[async_trait]
impl Ledger for CrashingLedger {
    async fn begin(
        &self,
        deal_id: &str,
        step: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Begin, LedgerError> {
        self.inner.begin(deal_id, step, now, lease_until).await
    }
    async fn record_targets(
        &self,
        deal_id: &str,
        step: &str,
        targets: &BTreeMap<String, String>,
        now: DateTime<Utc>,
    ) -> Result<(), LedgerError> {
        if targets.contains_key(self.at_target) {
            let kept: BTreeMap<String, String> = targets
                .iter()
                .filter(|(name, _)| self.keeping.contains(&name.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            if !kept.is_empty() {
                self.inner.record_targets(deal_id, step, &kept, now).await?;
            }
            self.crashed.notify_one();
            std::future::pending::<()>().await;
        }
        self.inner.record_targets(deal_id, step, targets, now).await
    }
    async fn complete(
        &self,
        deal_id: &str,
        step: &str,
        targets: &BTreeMap<String, String>,
        now: DateTime<Utc>,
    ) -> Result<StepRecord, LedgerError> {
        self.inner.complete(deal_id, step, targets, now).await
    }
    async fn fail(
        &self,
        deal_id: &str,
        step: &str,
        error: &str,
        now: DateTime<Utc>,
    ) -> Result<StepRecord, LedgerError> {
        self.inner.fail(deal_id, step, error, now).await
    }
    async fn note(
        &self,
        deal_id: &str,
        step: &str,
        status: StepStatus,
        targets: &BTreeMap<String, String>,
        error: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<StepRecord, LedgerError> {
        self.inner
            .note(deal_id, step, status, targets, error, now)
            .await
    }
    async fn get(&self, deal_id: &str, step: &str) -> Result<Option<StepRecord>, LedgerError> {
        self.inner.get(deal_id, step).await
    }
    async fn for_deal(&self, deal_id: &str) -> Result<Vec<StepRecord>, LedgerError> {
        self.inner.for_deal(deal_id).await
    }
}

/// Runs the step with a ledger that crashes at `target`, then redelivers the message after its
/// visibility timeout to the healthy worker.
async fn crash_then_redeliver(stack: &LocalStack, target: &'static str) -> Handled {
    crash_keeping_then_redeliver(stack, target, &[]).await
}

/// As [`crash_then_redeliver`], the crashing write saving the targets in `keeping` first.
async fn crash_keeping_then_redeliver(
    stack: &LocalStack,
    target: &'static str,
    keeping: &'static [&'static str],
) -> Handled {
    let envelope = provisioning_message(stack).await;
    let crashed = Arc::new(Notify::new());
    let crashing = WhmcsDeps {
        whmcs: stack.whmcs_deps.whmcs.clone(),
        ledger: Arc::new(CrashingLedger {
            inner: Arc::new(stack.ledger.clone()),
            at_target: target,
            keeping,
            crashed: crashed.clone(),
        }),
        writeback: stack.whmcs_deps.writeback.clone(),
        mapping: stack.whmcs_deps.mapping.clone(),
        clock: stack.whmcs_deps.clock.clone(),
        lease_fallback: stack.whmcs_deps.lease_fallback,
        max_receives: stack.whmcs_deps.max_receives,
        seal: stack.whmcs_deps.seal.clone(),
    };
    let first = delivery(1);
    tokio::select! {
        handled = crashing.handle(envelope.clone(), &first) => panic!("did not crash: {handled:?}"),
        () = crashed.notified() => {}
    }
    // The message was never acknowledged: SQS hands it out again after the visibility timeout,
    // by when the dead attempt's lease has run out.
    stack.advance(Duration::from_secs(360));
    stack.whmcs_deps.handle(envelope, &delivery(2)).await
}

#[tokio::test]
async fn a_crash_right_after_add_order_answered_ends_with_one_whmcs_order() {
    let stack = LocalStack::start().await.unwrap();

    let handled = crash_then_redeliver(&stack, TARGET_ORDER).await;

    assert_eq!(handled, Handled::Done);
    assert_eq!(
        stack.whmcs.action_count("AddOrder"),
        1,
        "reconciled, not re-sent"
    );
    let orders = stack.whmcs.orders();
    assert_eq!(orders.len(), 1);
    assert_eq!(orders[0].status, OrderStatus::Active);
    let order = record(&stack, "InternetOrder");
    assert_eq!(order["Activation_Status__c"], "Provisioned");
    assert_eq!(text(&order["WHMCS_Order_Id__c"]), orders[0].id.to_string());
    assert_eq!(
        record(&stack, "InternetPhoneItem")["WHMCS_Service_ID__c"],
        orders[0].lines[2].service_id.to_string().as_str()
    );
}

/// What a clean provisioning of `InternetOrder` writes: the Order provisioned with its WHMCS
/// order, every order product with its own service, the Opportunity active.
fn assert_provisioned_as_a_clean_run(stack: &LocalStack) {
    let orders = stack.whmcs.orders();
    assert_eq!(orders.len(), 1, "one WHMCS order");
    assert_eq!(orders[0].status, OrderStatus::Active);
    let order = record(stack, "InternetOrder");
    assert_eq!(order["Activation_Status__c"], "Provisioned", "{order:?}");
    assert_eq!(text(&order["WHMCS_Order_Id__c"]), orders[0].id.to_string());
    for (i, item) in [
        "InternetGoldItem",
        "InternetInstallItem",
        "InternetPhoneItem",
    ]
    .iter()
    .enumerate()
    {
        assert_eq!(
            text(&record(stack, item)["WHMCS_Service_ID__c"]),
            orders[0].lines[i].service_id.to_string(),
            "{item}"
        );
    }
    let opp = record(stack, "InternetOpportunity");
    assert_eq!(
        opp["StageName"], "Active",
        "the Opportunity moves on once its services are known"
    );
    assert_eq!(
        text(&opp["WHMCS_Service_ID__c"]),
        orders[0].lines[0].service_id.to_string()
    );
}

#[tokio::test]
async fn a_crash_between_the_order_id_and_its_services_loses_no_service_id() {
    // The process dies as the ids of AddOrder's answer are saved: the order id and the service
    // ids go in one write, so the redelivery finds neither and adopts the order from WHMCS.
    let stack = LocalStack::start().await.unwrap();

    let handled = crash_then_redeliver(&stack, TARGET_SERVICES).await;

    assert_eq!(handled, Handled::Done);
    assert_eq!(stack.whmcs.action_count("AddOrder"), 1);
    assert_provisioned_as_a_clean_run(&stack);
}

#[tokio::test]
async fn an_order_id_saved_without_its_services_is_repaired_from_whmcs() {
    // A ledger record holding the order id alone (as an earlier build's two writes could leave
    // it): the resumed attempt reads the services from GetOrders instead of going on without.
    let stack = LocalStack::start().await.unwrap();

    let handled = crash_keeping_then_redeliver(&stack, TARGET_SERVICES, &[TARGET_ORDER]).await;

    assert_eq!(handled, Handled::Done);
    assert_eq!(stack.whmcs.action_count("AddOrder"), 1);
    assert_provisioned_as_a_clean_run(&stack);
    let deal = stack.id("InternetOrder").to_string();
    let ledger = stack.ledger.get(&deal, STEP).await.unwrap().unwrap();
    assert_eq!(
        ledger.target(TARGET_SERVICES).map(|s| s.split(',').count()),
        Some(3),
        "{ledger:?}"
    );
}

#[tokio::test]
async fn a_crash_after_accept_order_is_finished_without_a_second_order() {
    let stack = LocalStack::start().await.unwrap();

    let handled = crash_then_redeliver(&stack, TARGET_ACCEPTED).await;

    assert_eq!(handled, Handled::Done);
    assert_eq!(stack.whmcs.order_count(), 1);
    assert_eq!(
        stack.whmcs.action_count("AcceptOrder"),
        2,
        "the second accept answers 'not Pending', which GetOrders shows is our Active order"
    );
    assert_eq!(
        record(&stack, "InternetOrder")["Activation_Status__c"],
        "Provisioned"
    );
}

/// Runs the approval with the org changed by `change`, and returns the Order's error.
async fn failed_with(stack: &LocalStack) -> String {
    approve(stack).await;
    let order = record(stack, "InternetOrder");
    assert_eq!(order["Activation_Status__c"], "Failed", "{order:?}");
    assert!(order["Activation_Error_DateTime__c"].is_string());
    assert!(
        stack
            .queue
            .dead_letters(QueueName::WhmcsProvision)
            .is_empty()
    );
    assert_eq!(
        stack.queue.depth(QueueName::WhmcsProvision),
        0,
        "no retries"
    );
    order["Activation_Error__c"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn every_broken_rule_fails_the_order_before_any_whmcs_call() {
    type Change = fn(&LocalStack);
    let cases: [(&str, Change); 6] = [
        ("WHMCS_ORDER_NOT_APPROVED: Order 00000106", |s| {
            update(
                s,
                "Order",
                "InternetOrder",
                json!({"Status": "Draft", "Activation_Status__c": "Pending Review"}),
            )
        }),
        (
            "WHMCS_CLIENT_MISSING: Account Haruka Sato has no WHMCS client id (WH_Account__c)",
            |s| {
                update(
                    s,
                    "Account",
                    "InternetAccount",
                    json!({"WH_Account__c": null}),
                )
            },
        ),
        ("WHMCS_PRODUCT_UNMAPPED: Hikari Denwa Service", |s| {
            update(
                s,
                "Product2",
                "HikariDenwaProduct",
                json!({"WH_Product_ID__c": null}),
            )
        }),
        ("WHMCS_INVALID_QUANTITY: Single Installation", |s| {
            update(
                s,
                "OrderItem",
                "InternetInstallItem",
                json!({"Quantity": 1.5}),
            )
        }),
        (
            "WHMCS_BILLING_CYCLE_MISSING: Internet Gold (Apartment 1G)",
            |s| {
                update(
                    s,
                    "Product2",
                    "InternetGoldAptProduct",
                    json!({"Billing_Cycle__c": null}),
                )
            },
        ),
        (
            "WHMCS_INVALID_CONFIG_OPTIONS: Internet Gold (Apartment 1G)",
            |s| {
                update(
                    s,
                    "Product2",
                    "InternetGoldAptProduct",
                    json!({"Portal_ConfigOptions_JSON__c": "{not json"}),
                )
            },
        ),
    ];
    for (expected, change) in cases {
        let stack = LocalStack::start().await.unwrap();
        change(&stack);
        let error = failed_with(&stack).await;
        assert!(error.starts_with(expected), "{expected}\n  got {error}");
        assert_eq!(
            stack.whmcs.observer().total(),
            0,
            "{expected}: WHMCS was called"
        );
    }
}

#[tokio::test]
async fn every_documented_add_order_refusal_fails_the_order_with_its_code_and_text() {
    type Change = fn(&LocalStack);
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], Change);
    let cases: [Case; 3] = [
        (
            "WHMCS_CLIENT_CLOSED: Unable to add order when client status is Closed",
            &[],
            |s| {
                update(
                    s,
                    "Account",
                    "InternetAccount",
                    json!({"WH_Account__c": "2"}),
                )
            },
        ),
        (
            "WHMCS_INVALID_PAYMENT_METHOD: Invalid Payment Method. Valid options include mailin,banktransfer",
            &[(
                "DEALBRIDGE_MAPPING",
                r#"{"whmcs":{"payment_method":"paypal"}}"#,
            )],
            |_| {},
        ),
        (
            "WHMCS_INVALID_PRODUCT: No items added to cart so order cannot proceed",
            &[],
            |s| {
                for p in [
                    "InternetGoldAptProduct",
                    "InstallSingleProduct",
                    "HikariDenwaProduct",
                ] {
                    update(s, "Product2", p, json!({"WH_Product_ID__c": 9999}));
                }
            },
        ),
    ];
    for (expected, env, change) in cases {
        let stack = LocalStack::start_with(env).await.unwrap();
        change(&stack);
        let error = failed_with(&stack).await;
        assert_eq!(error, expected);
        assert_eq!(
            stack.whmcs.action_count("AddOrder"),
            1,
            "{expected}: no retry storm"
        );
        assert_eq!(stack.whmcs.order_count(), 0);
    }
}

#[tokio::test]
async fn an_unknown_client_is_refused_by_get_clients_details_before_add_order() {
    let stack = LocalStack::start().await.unwrap();
    update(
        &stack,
        "Account",
        "InternetAccount",
        json!({"WH_Account__c": "999"}),
    );
    let error = failed_with(&stack).await;
    assert_eq!(error, "WHMCS_CLIENT_NOT_FOUND: Client Not Found");
    assert_eq!(
        actions(&stack),
        ["GetClientsDetails"],
        "no retry, no AddOrder"
    );
}

/// A client in US dollars, added to the fake installation; its id.
fn usd_client(stack: &LocalStack) -> u64 {
    stack.whmcs.add_client(Client {
        first_name: "Emma".into(),
        last_name: "Clark".into(),
        email: "emma.clark@example.com".into(),
        country_code: "US".into(),
        currency: USD_CURRENCY_ID,
        ..Client::default()
    })
}

#[tokio::test]
async fn a_client_in_another_currency_fails_the_order_and_no_add_order_is_sent() {
    let stack = LocalStack::start().await.unwrap();
    let client = usd_client(&stack);
    update(
        &stack,
        "Account",
        "InternetAccount",
        json!({"WH_Account__c": client.to_string()}),
    );

    let error = failed_with(&stack).await;

    let order = stack.id("InternetOrder");
    assert_eq!(
        error,
        format!(
            "WHMCS_CURRENCY_MISMATCH: Order {order} is in JPY, but WHMCS client {client} bills in USD; a WHMCS client's currency is fixed when the client is created"
        )
    );
    assert_eq!(actions(&stack), ["GetClientsDetails"]);
    assert_eq!(stack.whmcs.action_count("AddOrder"), 0);
    assert_eq!(stack.whmcs.order_count(), 0);
    let record = record(&stack, "InternetOrder");
    assert!(record["WHMCS_Order_Id__c"].is_null());
    let steps: Vec<_> = stack
        .ledger
        .records()
        .into_iter()
        .filter(|r| r.step == STEP)
        .collect();
    assert_eq!(steps.len(), 1);
    assert_eq!(steps[0].status, StepStatus::Failed);
    assert!(steps[0].targets.is_empty(), "no baseline was taken");
}

#[tokio::test]
async fn an_order_in_another_currency_than_its_client_is_refused() {
    let stack = LocalStack::start().await.unwrap();
    update(
        &stack,
        "Order",
        "InternetOrder",
        json!({"CurrencyIsoCode": "USD"}),
    );

    let error = failed_with(&stack).await;

    assert!(
        error.starts_with("WHMCS_CURRENCY_MISMATCH: Order ")
            && error.contains(" is in USD, but WHMCS client 1 bills in JPY"),
        "{error}"
    );
    assert_eq!(stack.whmcs.action_count("AddOrder"), 0);
}

#[tokio::test]
async fn an_order_without_a_currency_is_provisioned_without_reading_the_client() {
    let stack = LocalStack::start().await.unwrap();
    usd_client(&stack);
    update(
        &stack,
        "Order",
        "InternetOrder",
        json!({"CurrencyIsoCode": null}),
    );

    approve(&stack).await;

    assert_eq!(
        record(&stack, "InternetOrder")["Activation_Status__c"],
        "Provisioned"
    );
    assert_eq!(actions(&stack), ["GetOrders", "AddOrder", "AcceptOrder"]);
}

#[tokio::test]
async fn a_client_answered_without_a_currency_code_is_looked_up_by_its_currency_id() {
    // GetClientsDetails as a WHMCS that gives the client's currency id only.
    let id_only = |client: u64, currency: u64| {
        dealbridge_sandbox::observe::Fault::json(
            200,
            json!({"result": "success", "client": {"id": client, "status": "Active", "currency": currency}}),
        )
    };
    let stack = LocalStack::start().await.unwrap();
    stack.whmcs.fail_next("GetClientsDetails", id_only(1, 1));

    approve(&stack).await;

    assert_eq!(
        record(&stack, "InternetOrder")["Activation_Status__c"],
        "Provisioned",
        "currency 1 is JPY, the Order's"
    );
    assert_eq!(
        actions(&stack),
        [
            "GetClientsDetails",
            "GetCurrencies",
            "GetOrders",
            "AddOrder",
            "AcceptOrder"
        ]
    );

    let stack = LocalStack::start().await.unwrap();
    stack
        .whmcs
        .fail_next("GetClientsDetails", id_only(1, USD_CURRENCY_ID));
    let error = failed_with(&stack).await;
    assert!(error.contains("but WHMCS client 1 bills in USD"), "{error}");
    assert_eq!(actions(&stack), ["GetClientsDetails", "GetCurrencies"]);

    let stack = LocalStack::start().await.unwrap();
    stack.whmcs.fail_next("GetClientsDetails", id_only(1, 9));
    let error = failed_with(&stack).await;
    assert!(
        error.starts_with(
            "WHMCS_UNEXPECTED_ANSWER: unexpected answer from WHMCS to GetCurrencies: client 1 has currency id 9, which is not among the currencies WHMCS lists (1 JPY, 2 USD, 3 EUR)"
        ),
        "{error}"
    );
    assert_eq!(stack.whmcs.action_count("AddOrder"), 0);
}

#[tokio::test]
async fn refused_credentials_fail_the_order_with_the_authentication_error() {
    let stack = LocalStack::start().await.unwrap();
    stack.secrets.insert(
        dealbridge_sandbox::local::WHMCS_SECRET,
        json!({"identifier": "sandbox-whmcs-identifier", "secret": "wrong"}).to_string(),
    );
    let error = failed_with(&stack).await;
    assert_eq!(error, "WHMCS_AUTHENTICATION_FAILED: Authentication Failed");
    assert_eq!(stack.whmcs.order_count(), 0);
}

#[tokio::test]
async fn an_outage_is_retried_and_the_order_is_provisioned_once() {
    let stack = LocalStack::start().await.unwrap();
    let unavailable = dealbridge_sandbox::observe::Fault::json(
        503,
        json!({"result": "error", "message": "Service Unavailable"}),
    );
    stack
        .whmcs
        .fail_next("AddOrder", unavailable.clone().times(6));

    approve(&stack).await;

    assert_eq!(stack.whmcs.order_count(), 1);
    assert_eq!(
        record(&stack, "InternetOrder")["Activation_Status__c"],
        "Provisioned"
    );
}
