//! The reconciler against the sandbox org: deals whose trigger was lost are found by one search and
//! provisioned through the normal dispatch path; deals in flight, too old, failed or already
//! provisioned are left alone; a run is bounded and says so.
//!
//! The sandbox org stamps `LastModifiedDate` with its own clock (the wall clock unless set), so
//! each test first dates every Opportunity and Order explicitly: all of them long before the
//! look-back window, then the deals under test at the time the test needs.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use dealbridge::clock::Clock;
use dealbridge::envelope::Envelope;
use dealbridge::queue::QueueName;
use dealbridge::reconcile::{ReconcileReport, ReconcileSettings};
use dealbridge_reconciler::{Deps, ReconcileError, handle};
use dealbridge_sandbox::events::sample;
use dealbridge_sandbox::local::LocalStack;
use dealbridge_sandbox::salesforce::routes as sf_routes;
use serde_json::{Map, Value, json};

const ALL_QUEUES: [QueueName; 6] = [
    QueueName::MaxioCustomer,
    QueueName::MaxioPricePoints,
    QueueName::MaxioSubscription,
    QueueName::MaxioCoreLink,
    QueueName::WhmcsProvision,
    QueueName::Delayed,
];

/// The won Opportunities of the seed that have an Order, and the approved Order.
const WON_WITH_ORDER: [&str; 6] = [
    "VolumeOpportunity",
    "GraduatedOpportunity",
    "FlatFeeOpportunity",
    "NoScheduleOpportunity",
    "NoEmailOpportunity",
    "UnmappedOpportunity",
];

fn deps(stack: &LocalStack, settings: ReconcileSettings) -> Deps {
    let mapping = Arc::new(stack.config.mapping.clone());
    Deps {
        // The production dispatcher: it seals what it sends.
        dispatcher: stack.wiring.dispatcher(),
        salesforce: stack.client.clone(),
        mapping,
        clock: Arc::new(stack.clock.clone()),
        settings,
    }
}

fn now(stack: &LocalStack) -> DateTime<Utc> {
    stack.clock.now()
}

fn ago(stack: &LocalStack, d: Duration) -> DateTime<Utc> {
    now(stack) - chrono::Duration::from_std(d).unwrap()
}

const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(86_400);

/// Writes `fields` to the seeded records as of `at` (the org stamps `LastModifiedDate` with it),
/// then sets the org's clock back to the functions' time.
fn change_at(stack: &LocalStack, references: &[&str], fields: Value, at: DateTime<Utc>) {
    let fields: Map<String, Value> = fields.as_object().cloned().unwrap_or_default();
    let ids: Vec<String> = references.iter().map(|r| stack.id(r).to_string()).collect();
    let back_to = now(stack);
    stack.salesforce.with_org(|org| {
        org.set_clock(at);
        for id in &ids {
            org.update(None, id, &fields).unwrap();
        }
        org.set_clock(back_to);
    });
}

/// Dates every Opportunity and Order a month back, outside the look-back window.
async fn stack() -> LocalStack {
    stack_with(&[]).await
}

async fn stack_with(extra: &[(&str, &str)]) -> LocalStack {
    let stack = LocalStack::start_with(extra).await.unwrap();
    let month_ago = ago(&stack, 30 * DAY);
    let back_to = now(&stack);
    stack.salesforce.with_org(|org| {
        org.set_clock(month_ago);
        for sobject in ["Opportunity", "Order"] {
            let ids: Vec<String> = org
                .records(sobject)
                .iter()
                .filter_map(|r| r.get("Id").and_then(Value::as_str).map(str::to_string))
                .collect();
            for id in ids {
                org.update(Some(sobject), &id, &Map::new()).unwrap();
            }
        }
        org.set_clock(back_to);
    });
    stack
}

async fn reconcile(stack: &LocalStack, deps: &Deps) -> ReconcileReport {
    stack.salesforce.observer().clear_log();
    handle(json!({}), deps).await.unwrap()
}

/// Salesforce API calls since the last `reconcile` (the token call is not one).
fn salesforce_calls(stack: &LocalStack) -> Vec<String> {
    stack
        .salesforce
        .observer()
        .requests()
        .into_iter()
        .filter(|r| r.route != sf_routes::TOKEN)
        .map(|r| r.route)
        .collect()
}

fn sent_counts(stack: &LocalStack) -> Vec<usize> {
    ALL_QUEUES
        .iter()
        .map(|q| stack.queue.sent(*q).len())
        .collect()
}

fn record(stack: &LocalStack, reference: &str) -> Map<String, Value> {
    stack
        .salesforce
        .record(stack.id(reference).as_str())
        .expect("a seeded record")
}

fn ids(stack: &LocalStack, references: &[&str]) -> Vec<String> {
    references.iter().map(|r| stack.id(r).to_string()).collect()
}

#[tokio::test]
async fn a_won_deal_and_an_approved_order_whose_triggers_were_lost_are_provisioned_by_the_next_run()
{
    let stack = stack().await;
    let deps = deps(&stack, ReconcileSettings::default());
    change_at(
        &stack,
        &["VolumeOpportunity", "InternetOrder"],
        json!({}),
        now(&stack),
    );
    stack.advance(31 * MINUTE);

    let report = reconcile(&stack, &deps).await;

    assert_eq!(
        report.opportunities.ids,
        ids(&stack, &["VolumeOpportunity"])
    );
    assert_eq!(report.opportunities.dispatched, 1);
    assert_eq!(report.orders.ids, ids(&stack, &["InternetOrder"]));
    assert_eq!(report.orders.dispatched, 1);
    assert!(!report.truncated);
    assert_eq!(
        salesforce_calls(&stack),
        [sf_routes::COMPOSITE; 3],
        "one search, then one snapshot load per deal"
    );
    let sent = stack.queue.sent(QueueName::MaxioCustomer);
    let envelope = Envelope::parse(&sent[0].body).unwrap();
    let volume = stack.id("VolumeOpportunity");
    assert_eq!(
        envelope.correlation_id,
        format!("reconcile-20261120T123100Z-{volume}")
    );
    assert_eq!(
        envelope.idempotency_key,
        Some(format!("{volume}-2026-11-20T12:00:00.000Z"))
    );

    stack.drain(500).await;

    let subscriptions = stack.maxio_ab.subscriptions();
    assert_eq!(subscriptions.len(), 1);
    assert_eq!(subscriptions[0]["reference"], json!(volume.to_string()));
    let opportunity = record(&stack, "VolumeOpportunity");
    assert_eq!(opportunity["Maxio_Sync_Status__c"], "Synced");
    assert!(opportunity["Maxio_Subscription_Id__c"].is_string());
    let whmcs_orders = stack.whmcs.orders();
    assert_eq!(whmcs_orders.len(), 1);
    let order = record(&stack, "InternetOrder");
    assert_eq!(order["Activation_Status__c"], "Provisioned");
    assert_eq!(
        order["WHMCS_Order_Id__c"].as_f64(),
        Some(whmcs_orders[0].id as f64)
    );
}

#[tokio::test]
async fn a_deal_already_provisioned_is_left_alone_by_the_next_run() {
    let stack = stack().await;
    let deps = deps(&stack, ReconcileSettings::default());
    change_at(
        &stack,
        &["VolumeOpportunity", "InternetOrder"],
        json!({}),
        ago(&stack, HOUR),
    );
    reconcile(&stack, &deps).await;
    stack.drain(500).await;
    assert_eq!(stack.maxio_ab.subscriptions().len(), 1);
    assert_eq!(stack.whmcs.orders().len(), 1);
    // The write-backs changed both records; let them age past the grace period.
    stack.advance(HOUR);
    let ab_calls = stack.maxio_ab.observer().total();
    let whmcs_calls = stack.whmcs.observer().total();
    let sent = sent_counts(&stack);

    let report = reconcile(&stack, &deps).await;

    assert_eq!((report.opportunities.found, report.orders.found), (0, 0));
    assert_eq!(stack.maxio_ab.observer().total(), ab_calls);
    assert_eq!(stack.whmcs.observer().total(), whmcs_calls);
    assert_eq!(sent_counts(&stack), sent, "nothing enqueued");
    assert_eq!(salesforce_calls(&stack), [sf_routes::COMPOSITE]);
}

#[tokio::test]
async fn deals_changed_within_the_grace_period_are_not_touched() {
    let stack = stack().await;
    let deps = deps(&stack, ReconcileSettings::default());
    change_at(
        &stack,
        &["VolumeOpportunity", "InternetOrder"],
        json!({}),
        ago(&stack, 29 * MINUTE),
    );

    let report = reconcile(&stack, &deps).await;

    assert_eq!((report.opportunities.found, report.orders.found), (0, 0));
    assert_eq!(sent_counts(&stack), [0; 6]);
    assert_eq!(salesforce_calls(&stack), [sf_routes::COMPOSITE]);
    assert_eq!(report.window.modified_before, "2026-11-20T11:30:00Z");

    // Two minutes later they are past the grace period.
    stack.advance(2 * MINUTE);
    let report = reconcile(&stack, &deps).await;
    assert_eq!((report.opportunities.found, report.orders.found), (1, 1));
}

#[tokio::test]
async fn deals_changed_before_the_look_back_window_are_not_touched() {
    let stack = stack().await;
    let deps = deps(&stack, ReconcileSettings::default());
    change_at(
        &stack,
        &["VolumeOpportunity", "InternetOrder"],
        json!({}),
        ago(&stack, 7 * DAY + MINUTE),
    );
    // Next to them, a deal changed just inside the window is found.
    change_at(
        &stack,
        &["NoScheduleOpportunity"],
        json!({}),
        ago(&stack, 7 * DAY - MINUTE),
    );

    let report = reconcile(&stack, &deps).await;

    assert_eq!(
        report.opportunities.ids,
        ids(&stack, &["NoScheduleOpportunity"])
    );
    assert_eq!(report.orders.found, 0);
    assert_eq!(report.window.modified_since, "2026-11-13T12:00:00Z");
}

#[tokio::test]
async fn failed_deals_are_not_dispatched_again() {
    let stack = stack().await;
    let deps = deps(&stack, ReconcileSettings::default());
    let an_hour_ago = ago(&stack, HOUR);
    change_at(
        &stack,
        &["VolumeOpportunity"],
        json!({"Maxio_Sync_Status__c": "Failed", "Maxio_Sync_Error__c": "MAXIO_NO_EMAIL: no email"}),
        an_hour_ago,
    );
    change_at(
        &stack,
        &["GraduatedOpportunity"],
        json!({"Maxio_Sync_Status__c": "Synced"}),
        an_hour_ago,
    );
    change_at(
        &stack,
        &["InternetOrder"],
        json!({"Activation_Status__c": "Failed", "Activation_Error__c": "WHMCS_CLIENT_NOT_FOUND"}),
        an_hour_ago,
    );
    // Next to them, a deal still marked Pending is a candidate.
    change_at(&stack, &["NoScheduleOpportunity"], json!({}), an_hour_ago);

    let report = reconcile(&stack, &deps).await;

    assert_eq!(
        report.opportunities.ids,
        ids(&stack, &["NoScheduleOpportunity"])
    );
    assert_eq!(report.orders.found, 0);
    assert!(stack.queue.sent(QueueName::WhmcsProvision).is_empty());
    let sent = stack.queue.sent(QueueName::MaxioCustomer);
    assert_eq!(sent.len(), 1);
    assert_eq!(
        Envelope::parse(&sent[0].body).unwrap().deal.id(),
        &stack.id("NoScheduleOpportunity")
    );
}

#[tokio::test]
async fn the_per_run_bound_is_honoured_and_the_report_says_more_are_left() {
    let stack = stack().await;
    let deps = deps(
        &stack,
        ReconcileSettings {
            max_per_run: 2,
            ..ReconcileSettings::default()
        },
    );
    // Oldest first: Volume 6 hours ago, then one deal an hour later each.
    for (hours, deal) in (1..=6).rev().zip(WON_WITH_ORDER) {
        change_at(&stack, &[deal], json!({}), ago(&stack, hours * HOUR));
    }

    let report = reconcile(&stack, &deps).await;

    assert_eq!(
        report.opportunities.ids,
        ids(&stack, &["VolumeOpportunity", "GraduatedOpportunity"])
    );
    assert_eq!(report.opportunities.found, 2);
    assert_eq!(report.opportunities.dispatched, 2);
    assert!(report.truncated);
    assert_eq!(stack.queue.sent(QueueName::MaxioCustomer).len(), 2);
    let search = &stack
        .salesforce
        .observer()
        .requests()
        .into_iter()
        .find(|r| r.route == sf_routes::COMPOSITE)
        .unwrap()
        .body;
    assert!(
        search.contains("LIMIT+3"),
        "the search asks for one row more than the bound: {search}"
    );

    // Once those two are synced, the next run takes the next two.
    stack.drain(500).await;
    stack.advance(HOUR);
    let report = reconcile(&stack, &deps).await;
    assert_eq!(
        report.opportunities.ids,
        ids(&stack, &["FlatFeeOpportunity", "NoScheduleOpportunity"])
    );
    assert!(report.truncated);
}

#[tokio::test]
async fn dispatching_stops_while_the_orgs_api_usage_is_above_the_limit() {
    let stack = stack().await;
    let deps = deps(&stack, ReconcileSettings::default());
    change_at(
        &stack,
        &["VolumeOpportunity", "InternetOrder"],
        json!({}),
        ago(&stack, HOUR),
    );
    stack.salesforce.set_api_usage(13_000);

    let report = reconcile(&stack, &deps).await;

    assert_eq!((report.opportunities.found, report.orders.found), (1, 1));
    assert_eq!(
        (report.opportunities.dispatched, report.orders.dispatched),
        (0, 0)
    );
    let reason = report.stopped.clone().unwrap();
    assert!(
        reason.contains("87% of the org's daily allocation (13001/15000)"),
        "{reason}"
    );
    assert_eq!(report.opportunities.skipped[0].reason, reason);
    assert_eq!(report.orders.skipped[0].reason, reason);
    assert!(report.truncated);
    assert_eq!(sent_counts(&stack), [0; 6]);
    assert_eq!(salesforce_calls(&stack), [sf_routes::COMPOSITE]);
}

#[tokio::test]
async fn the_result_json_lists_what_the_run_found_dispatched_and_could_not_dispatch() {
    let stack = stack().await;
    let deps = deps(&stack, ReconcileSettings::default());
    let an_hour_ago = ago(&stack, HOUR);
    change_at(&stack, &["GraduatedOpportunity"], json!({}), an_hour_ago);
    change_at(
        &stack,
        &["VolumeOpportunity", "InternetOrder"],
        json!({}),
        an_hour_ago + chrono::Duration::minutes(1),
    );
    // The Graduated deal's Account is gone, so its snapshot cannot be loaded.
    let account = stack.id("GraduatedAccount").to_string();
    stack
        .salesforce
        .with_org(|org| org.delete(Some("Account"), &account).unwrap());
    let (graduated, volume, order) = (
        stack.id("GraduatedOpportunity").to_string(),
        stack.id("VolumeOpportunity").to_string(),
        stack.id("InternetOrder").to_string(),
    );

    let report = reconcile(&stack, &deps).await;
    let result = serde_json::to_value(&report).unwrap();

    let failed = &result["opportunities"]["failed"];
    assert_eq!(failed[0]["id"], json!(graduated));
    assert_eq!(failed[0]["retryable"], json!(false));
    assert!(
        failed[0]["error"].as_str().unwrap().contains("Account"),
        "{failed}"
    );
    assert_eq!(
        result,
        json!({
            "runAt": "2026-11-20T12:00:00Z",
            "dryRun": false,
            "window": {"modifiedSince": "2026-11-13T12:00:00Z", "modifiedBefore": "2026-11-20T11:30:00Z"},
            "opportunities": {"found": 2, "ids": [graduated, volume], "dispatched": 1, "skipped": [], "failed": failed},
            "orders": {"found": 1, "ids": [order], "dispatched": 1, "skipped": [], "failed": []},
            "cancellations": {"found": 0, "ids": [], "dispatched": 0, "skipped": [], "failed": []},
            "truncated": false,
            "apiUsage": result["apiUsage"],
        })
    );
    assert_eq!(result["apiUsage"]["max"], json!(15_000));
}

#[tokio::test]
async fn the_sample_scheduled_event_drives_the_handler() {
    let stack = stack().await;
    let deps = deps(&stack, ReconcileSettings::default());
    change_at(&stack, &["InternetOrder"], json!({}), ago(&stack, HOUR));

    let report = handle(sample("reconciler-scheduled.json"), &deps)
        .await
        .unwrap();

    assert_eq!(report.run_at, "2026-11-20T12:00:00Z");
    assert_eq!(report.orders.dispatched, 1);
    let sent = stack.queue.sent(QueueName::WhmcsProvision);
    let envelope = Envelope::parse(&sent[0].body).unwrap();
    assert_eq!(
        envelope.correlation_id,
        format!("reconcile-20261120T120000Z-{}", stack.id("InternetOrder"))
    );
}

#[tokio::test]
async fn a_dry_run_reports_the_candidates_and_enqueues_nothing() {
    let stack = stack().await;
    let deps = deps(&stack, ReconcileSettings::default());
    change_at(
        &stack,
        &["VolumeOpportunity", "InternetOrder"],
        json!({}),
        ago(&stack, HOUR),
    );

    let report = handle(json!({"dryRun": true}), &deps).await.unwrap();

    assert!(report.dry_run);
    assert_eq!(
        (report.opportunities.dispatched, report.orders.dispatched),
        (1, 1)
    );
    assert_eq!(sent_counts(&stack), [0; 6]);
}

#[tokio::test]
async fn a_failed_search_fails_the_invocation_and_dispatches_nothing() {
    let stack = stack().await;
    let deps = deps(&stack, ReconcileSettings::default());
    change_at(&stack, &["InternetOrder"], json!({}), ago(&stack, HOUR));
    stack.salesforce.observer().inject(
        sf_routes::COMPOSITE,
        dealbridge_sandbox::observe::Fault::json(
            503,
            json!([{"errorCode": "SERVER_UNAVAILABLE", "message": "Server unavailable"}]),
        )
        .times(4),
    );

    let err = handle(json!({}), &deps).await.unwrap_err();

    assert!(matches!(err, ReconcileError::Search(_)), "{err}");
    assert_eq!(sent_counts(&stack), [0; 6]);
}

#[tokio::test]
async fn a_search_on_a_field_the_org_lacks_fails_the_invocation_after_the_other_kind_is_reconciled()
{
    let stack = stack_with(&[(
        "DEALBRIDGE_MAPPING",
        r#"{"order":{"activation_status":"Provisioning_State__c"}}"#,
    )])
    .await;
    let deps = deps(&stack, ReconcileSettings::default());
    change_at(&stack, &["VolumeOpportunity"], json!({}), ago(&stack, HOUR));

    let err = handle(json!({}), &deps).await.unwrap_err();

    let ReconcileError::Incomplete { problems, report } = err else {
        panic!("{err}")
    };
    assert!(problems.starts_with("orders: "), "{problems}");
    assert!(
        report
            .orders
            .error
            .as_deref()
            .is_some_and(|e| e.contains("Provisioning_State__c")),
        "{report:?}"
    );
    assert_eq!(
        report.opportunities.ids,
        ids(&stack, &["VolumeOpportunity"])
    );
}

#[tokio::test]
async fn an_amendment_whose_trigger_was_lost_is_applied_to_the_contracts_subscription() {
    let stack = stack().await;
    let deps = deps(&stack, ReconcileSettings::default());
    // The first sale was billed; the amendment's callout never arrived.
    change_at(&stack, &["AddSeatsOpportunity"], json!({}), now(&stack));
    stack.advance(31 * MINUTE);
    reconcile(&stack, &deps).await;
    stack.drain(2000).await;
    let first = record(&stack, "AddSeatsOpportunity");
    assert_eq!(first["Maxio_Sync_Status__c"], "Synced");

    change_at(
        &stack,
        &["AddSeatsAmendOpportunity"],
        json!({}),
        now(&stack),
    );
    stack.advance(31 * MINUTE);
    let report = reconcile(&stack, &deps).await;
    assert_eq!(
        report.opportunities.ids,
        ids(&stack, &["AddSeatsAmendOpportunity"])
    );
    assert_eq!(
        salesforce_calls(&stack),
        [sf_routes::COMPOSITE; 3],
        "one search, then the amendment and its Contract: two Composite calls"
    );
    stack.drain(2000).await;

    let amendment = record(&stack, "AddSeatsAmendOpportunity");
    assert_eq!(amendment["Maxio_Sync_Status__c"], "Synced");
    assert_eq!(
        amendment["Maxio_Subscription_Id__c"],
        first["Maxio_Subscription_Id__c"]
    );
    assert_eq!(
        stack.maxio_ab.subscriptions().len(),
        1,
        "no second subscription"
    );
    let sub: i64 = first["Maxio_Subscription_Id__c"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap();
    let seats = stack.maxio_ab.component_id("support-seats").unwrap();
    let allocated: Vec<Value> = stack
        .maxio_ab
        .allocations(sub)
        .into_iter()
        .filter(|a| a["component_id"] == seats)
        .map(|a| a["quantity"].clone())
        .collect();
    assert_eq!(allocated, [json!(15)]);
}

const CANCELLING: &str = "\u{25b3}Cancelling";
const CANCELLED: &str = "\u{25b3}Cancelled";

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn cancellation_status(stack: &LocalStack, reference: &str) -> (Value, Value) {
    let opp = record(stack, reference);
    (
        opp.get("Cancellation_Status__c")
            .cloned()
            .unwrap_or(Value::Null),
        opp["StageName"].clone(),
    )
}

/// Bills the seeded deal (its first sale) and returns its AB subscription id.
async fn billed(stack: &LocalStack, reference: &str) -> i64 {
    crate::support::run_deal(stack, reference).await;
    record(stack, reference)["Maxio_Subscription_Id__c"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("a subscription id")
}

#[tokio::test]
async fn a_cancellation_whose_trigger_was_lost_is_carried_out_by_the_next_run() {
    let stack = stack().await;
    let deps = deps(&stack, ReconcileSettings::default());
    let sub = billed(&stack, "AddSeatsOpportunity").await;
    // A person set the stage; the Outbound Message never arrived.
    change_at(
        &stack,
        &["AddSeatsOpportunity"],
        json!({"StageName": CANCELLING, "ScheduledCancellationDateAndTime__c": rfc3339(now(&stack))}),
        now(&stack),
    );
    let in_flight = reconcile(&stack, &deps).await;
    assert!(in_flight.cancellations.ids.is_empty(), "{in_flight:?}");

    stack.advance(31 * MINUTE);
    let report = reconcile(&stack, &deps).await;
    assert_eq!(
        report.cancellations.ids,
        ids(&stack, &["AddSeatsOpportunity"])
    );
    assert_eq!(report.cancellations.dispatched, 1);
    assert_eq!(
        salesforce_calls(&stack)[0],
        sf_routes::COMPOSITE,
        "the cancellation search travels with the others"
    );
    stack.drain(2000).await;
    assert_eq!(
        stack.maxio_ab.subscription(sub).unwrap()["state"],
        "canceled"
    );
    assert_eq!(
        cancellation_status(&stack, "AddSeatsOpportunity"),
        (json!("Cancelled"), json!(CANCELLED))
    );

    // Done: the next run finds nothing to do.
    stack.advance(31 * MINUTE);
    let report = reconcile(&stack, &deps).await;
    assert!(report.cancellations.ids.is_empty(), "{report:?}");
}

#[tokio::test]
async fn a_due_cancellation_is_confirmed_by_the_runs_after_whmcss_cron() {
    let stack = stack().await;
    let deps = deps(&stack, ReconcileSettings::default());
    crate::support::provision_internet_order(&stack).await;
    let at = now(&stack);
    change_at(
        &stack,
        &["InternetOpportunity"],
        json!({"StageName": CANCELLING, "ScheduledCancellationDateAndTime__c": rfc3339(at)}),
        now(&stack),
    );
    crate::support::run_deal(&stack, "InternetOpportunity").await;
    assert_eq!(stack.whmcs.action_count("AddCancelRequest"), 3);
    assert_eq!(
        cancellation_status(&stack, "InternetOpportunity"),
        (json!("Scheduled"), json!(CANCELLING)),
        "requested; WHMCS's cron has not run"
    );

    // Before the cron: each run past the grace period reads the services again, asks nothing new.
    stack.advance(31 * MINUTE);
    let report = reconcile(&stack, &deps).await;
    assert_eq!(
        report.cancellations.ids,
        ids(&stack, &["InternetOpportunity"])
    );
    stack.drain(500).await;
    assert_eq!(stack.whmcs.action_count("AddCancelRequest"), 3);
    assert_eq!(
        cancellation_status(&stack, "InternetOpportunity").0,
        json!("Scheduled")
    );

    // After WHMCS's cron terminated them, the next run confirms and moves the stage.
    stack.advance(DAY);
    let report = reconcile(&stack, &deps).await;
    assert_eq!(
        report.cancellations.ids,
        ids(&stack, &["InternetOpportunity"])
    );
    stack.drain(500).await;
    assert_eq!(
        cancellation_status(&stack, "InternetOpportunity"),
        (json!("Cancelled"), json!(CANCELLED))
    );
    assert_eq!(stack.whmcs.action_count("AddCancelRequest"), 3);
    stack.advance(31 * MINUTE);
    assert!(reconcile(&stack, &deps).await.cancellations.ids.is_empty());
}

#[tokio::test]
async fn a_lost_withdrawal_is_carried_out_and_a_cancellation_not_yet_due_is_left_alone() {
    let stack = stack().await;
    let deps = deps(&stack, ReconcileSettings::default());
    let sub = billed(&stack, "AddSeatsOpportunity").await;
    let end = stack.maxio_ab.subscription(sub).unwrap()["current_period_ends_at"]
        .as_str()
        .unwrap()
        .to_string();
    change_at(
        &stack,
        &["AddSeatsOpportunity"],
        json!({"StageName": CANCELLING, "ScheduledCancellationDateAndTime__c": end}),
        now(&stack),
    );
    crate::support::send_deal(&stack, "AddSeatsOpportunity").await;
    stack
        .drain_queues(
            &[
                QueueName::MaxioCustomer,
                QueueName::MaxioSubscription,
                QueueName::WhmcsProvision,
            ],
            200,
        )
        .await;
    assert_eq!(
        stack.maxio_ab.subscription(sub).unwrap()["cancel_at_end_of_period"],
        true
    );

    // Scheduled and not due: the runs leave it alone.
    stack.advance(31 * MINUTE);
    let report = reconcile(&stack, &deps).await;
    assert!(report.cancellations.ids.is_empty(), "{report:?}");

    // The customer stays; the stage change's trigger was lost.
    change_at(
        &stack,
        &["AddSeatsOpportunity"],
        json!({"StageName": "Closed Won"}),
        now(&stack),
    );
    stack.advance(31 * MINUTE);
    let report = reconcile(&stack, &deps).await;
    assert_eq!(
        report.cancellations.ids,
        ids(&stack, &["AddSeatsOpportunity"])
    );
    stack
        .drain_queues(
            &[
                QueueName::MaxioCustomer,
                QueueName::MaxioSubscription,
                QueueName::WhmcsProvision,
            ],
            200,
        )
        .await;
    let s = stack.maxio_ab.subscription(sub).unwrap();
    assert_eq!(
        (s["state"].as_str(), s["cancel_at_end_of_period"].as_bool()),
        (Some("active"), Some(false))
    );
    assert_eq!(
        cancellation_status(&stack, "AddSeatsOpportunity"),
        (json!("Withdrawn"), json!("Closed Won"))
    );
}

#[tokio::test]
async fn a_request_whmcss_cron_never_carries_out_fails_visibly_after_two_days() {
    use dealbridge_sandbox::whmcs::model::ServiceStatus;
    let stack = stack().await;
    let deps = deps(&stack, ReconcileSettings::default());
    crate::support::provision_internet_order(&stack).await;
    // The installation does not carry out cancellation requests by itself.
    stack.whmcs.set_cancellation_automation(false);
    change_at(
        &stack,
        &["InternetOpportunity"],
        json!({"StageName": CANCELLING, "ScheduledCancellationDateAndTime__c": rfc3339(now(&stack))}),
        now(&stack),
    );
    crate::support::run_deal(&stack, "InternetOpportunity").await;
    assert_eq!(stack.whmcs.action_count("AddCancelRequest"), 3);

    stack.advance(DAY);
    reconcile(&stack, &deps).await;
    stack.drain(500).await;
    assert_eq!(
        cancellation_status(&stack, "InternetOpportunity").0,
        json!("Scheduled"),
        "a day late: the cron may still run"
    );

    stack.advance(DAY);
    let report = reconcile(&stack, &deps).await;
    assert_eq!(
        report.cancellations.ids,
        ids(&stack, &["InternetOpportunity"])
    );
    stack.drain(500).await;
    let opp = record(&stack, "InternetOpportunity");
    assert_eq!(opp["Cancellation_Status__c"], "Failed");
    let error = opp["Cancellation_Error__c"].as_str().unwrap();
    assert!(error.starts_with("CANCELLATION_NOT_CONFIRMED"), "{error}");
    assert!(error.contains("Cancellation Requests"), "{error}");
    assert_eq!(
        stack.whmcs.action_count("AddCancelRequest"),
        3,
        "never asked twice"
    );
    stack.advance(31 * MINUTE);
    assert!(
        reconcile(&stack, &deps).await.cancellations.ids.is_empty(),
        "a failure waits for a person"
    );

    // A person terminates the services and clears the status: the next run confirms it.
    for s in stack.whmcs.services() {
        assert!(
            stack
                .whmcs
                .set_service_status(s.id, ServiceStatus::Terminated)
        );
    }
    change_at(
        &stack,
        &["InternetOpportunity"],
        json!({"Cancellation_Status__c": null}),
        now(&stack),
    );
    stack.advance(31 * MINUTE);
    let report = reconcile(&stack, &deps).await;
    assert_eq!(
        report.cancellations.ids,
        ids(&stack, &["InternetOpportunity"])
    );
    stack.drain(500).await;
    assert_eq!(
        cancellation_status(&stack, "InternetOpportunity"),
        (json!("Cancelled"), json!(CANCELLED))
    );
}
