//! Cancellations end to end: the seed-001 stage (`△Cancelling` with
//! `ScheduledCancellationDateAndTime__c`) and a CPQ amendment to zero cancel the deal's AB
//! subscription and WHMCS services at the time asked for; the Opportunity shows the
//! cancellation as Scheduled, then Cancelled with the stage `△Cancelled` once every system shows
//! it; moving the stage back withdraws what can be withdrawn and says what cannot. Re-runs and
//! replays send nothing new.

use dealbridge_sandbox::local::LocalStack;
use serde_json::{Map, Value, json};

use crate::support::{billed, record, run_deal, send_deal, update_opportunity};

const CANCELLING: &str = "\u{25b3}Cancelling";
const CANCELLED: &str = "\u{25b3}Cancelled";
const WORKERS: [dealbridge::queue::QueueName; 3] = [
    dealbridge::queue::QueueName::MaxioCustomer,
    dealbridge::queue::QueueName::MaxioSubscription,
    dealbridge::queue::QueueName::WhmcsProvision,
];

/// Writes (POST, PUT, DELETE) the default AB site received.
fn ab_writes(stack: &LocalStack) -> Vec<String> {
    stack
        .maxio_ab
        .observer()
        .requests()
        .into_iter()
        .map(|r| r.route)
        .filter(|r| !r.starts_with("GET "))
        .collect()
}

fn subscription(stack: &LocalStack, id: i64) -> Value {
    stack.maxio_ab.subscription(id).expect("subscription")
}

/// Dispatches the Opportunity and runs the workers (not the delayed queue: nothing comes due).
async fn dispatch_now(stack: &LocalStack, opportunity: &str) {
    send_deal(stack, opportunity).await;
    stack.drain_queues(&WORKERS, 200).await;
}

fn cancellation(opp: &Map<String, Value>) -> (String, String, Value) {
    (
        opp["Cancellation_Status__c"]
            .as_str()
            .unwrap_or("")
            .to_string(),
        opp["StageName"].as_str().unwrap_or("").to_string(),
        opp.get("Cancellation_Error__c")
            .cloned()
            .unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn a_cancellation_at_the_period_end_is_scheduled_in_ab_and_shown_cancelled_on_the_day() {
    let stack = LocalStack::start().await.unwrap();
    let sub = billed(&stack, "AddSeatsOpportunity").await;
    let end = subscription(&stack, sub)["current_period_ends_at"]
        .as_str()
        .unwrap()
        .to_string();
    update_opportunity(
        &stack,
        "AddSeatsOpportunity",
        json!({"StageName": CANCELLING, "ScheduledCancellationDateAndTime__c": end}),
    );
    let before = ab_writes(&stack).len();
    dispatch_now(&stack, "AddSeatsOpportunity").await;
    let writes = ab_writes(&stack)[before..].to_vec();
    assert_eq!(writes.len(), 1, "{writes:?}");
    assert!(writes[0].contains("delayed_cancel"), "{writes:?}");
    let s = subscription(&stack, sub);
    assert_eq!(
        (s["state"].as_str(), s["cancel_at_end_of_period"].as_bool()),
        (Some("active"), Some(true))
    );
    let opp = record(&stack, "AddSeatsOpportunity");
    assert_eq!(
        cancellation(&opp),
        ("Scheduled".into(), CANCELLING.into(), Value::Null)
    );
    assert!(
        opp["Cancellation_Detail__c"]
            .as_str()
            .unwrap()
            .contains("AB cancels it at"),
        "{opp:?}"
    );

    // A replay past the FIFO window changes nothing in AB.
    stack.advance(std::time::Duration::from_secs(600));
    dispatch_now(&stack, "AddSeatsOpportunity").await;
    assert_eq!(
        ab_writes(&stack).len(),
        before + 1,
        "{:?}",
        ab_writes(&stack)
    );

    // The re-dispatch waits on the delayed queue until the time, then finds AB cancelled.
    stack.drain(20_000).await;
    assert_eq!(subscription(&stack, sub)["state"], "canceled");
    let opp = record(&stack, "AddSeatsOpportunity");
    assert_eq!(
        cancellation(&opp),
        ("Cancelled".into(), CANCELLED.into(), Value::Null)
    );
    assert_eq!(
        ab_writes(&stack).len(),
        before + 1,
        "AB cancelled it by itself"
    );
    // A cancelled deal is billed no more: a re-run of it sends nothing.
    stack.advance(std::time::Duration::from_secs(600));
    run_deal(&stack, "AddSeatsOpportunity").await;
    assert_eq!(ab_writes(&stack).len(), before + 1);
}

#[tokio::test]
async fn moving_the_stage_back_before_the_date_withdraws_the_ab_cancellation() {
    let stack = LocalStack::start().await.unwrap();
    let sub = billed(&stack, "RemoveSeatsOpportunity").await;
    let end = subscription(&stack, sub)["current_period_ends_at"]
        .as_str()
        .unwrap()
        .to_string();
    update_opportunity(
        &stack,
        "RemoveSeatsOpportunity",
        json!({"StageName": CANCELLING, "ScheduledCancellationDateAndTime__c": end}),
    );
    dispatch_now(&stack, "RemoveSeatsOpportunity").await;
    assert_eq!(subscription(&stack, sub)["cancel_at_end_of_period"], true);

    update_opportunity(
        &stack,
        "RemoveSeatsOpportunity",
        json!({"StageName": "Active"}),
    );
    stack.advance(std::time::Duration::from_secs(600));
    dispatch_now(&stack, "RemoveSeatsOpportunity").await;
    let s = subscription(&stack, sub);
    assert_eq!(
        (s["state"].as_str(), s["cancel_at_end_of_period"].as_bool()),
        (Some("active"), Some(false))
    );
    let opp = record(&stack, "RemoveSeatsOpportunity");
    assert_eq!(
        cancellation(&opp),
        ("Withdrawn".into(), "Active".into(), Value::Null)
    );

    // The day passes: the re-dispatch finds the stage moved back and the subscription still
    // billing.
    stack.drain(20_000).await;
    assert_eq!(subscription(&stack, sub)["state"], "active");
    assert_eq!(
        record(&stack, "RemoveSeatsOpportunity")["Cancellation_Status__c"],
        "Withdrawn"
    );
}

#[tokio::test]
async fn a_due_cancellation_of_a_whmcs_order_asks_for_an_immediate_cancellation_once() {
    let stack = LocalStack::start().await.unwrap();
    let event = serde_json::from_value(dealbridge_sandbox::events::sample(
        "platform-events-order-provision.json",
    ))
    .unwrap();
    dealbridge_platform_events::handle(event, &stack.platform_events)
        .await
        .unwrap();
    stack.drain(200).await;
    let services: Vec<u64> = stack.whmcs.services().iter().map(|s| s.id).collect();
    assert_eq!(services.len(), 3, "provisioned first");

    let now = chrono::DateTime::from_timestamp(stack.clock_now(), 0).unwrap();
    update_opportunity(
        &stack,
        "InternetOpportunity",
        json!({"StageName": CANCELLING, "ScheduledCancellationDateAndTime__c": now.to_rfc3339()}),
    );
    dispatch_now(&stack, "InternetOpportunity").await;
    let requests = stack.whmcs.cancel_requests();
    assert_eq!(requests.len(), 3, "{requests:?}");
    assert!(
        requests
            .iter()
            .all(|r| r.kind == dealbridge_sandbox::whmcs::model::CancelType::Immediate)
    );
    let opp = record(&stack, "InternetOpportunity");
    assert_eq!(
        cancellation(&opp),
        ("Scheduled".into(), CANCELLING.into(), Value::Null)
    );

    // A replay asks nothing new.
    stack.advance(std::time::Duration::from_secs(600));
    dispatch_now(&stack, "InternetOpportunity").await;
    assert_eq!(stack.whmcs.cancel_requests().len(), 3);

    // WHMCS's cron runs at midnight; the next dispatch (the reconciler's, here by hand) sees
    // the services cancelled.
    stack.advance(std::time::Duration::from_secs(86_400));
    dispatch_now(&stack, "InternetOpportunity").await;
    assert!(
        stack
            .whmcs
            .services()
            .iter()
            .all(|s| s.status == dealbridge_sandbox::whmcs::model::ServiceStatus::Cancelled)
    );
    let opp = record(&stack, "InternetOpportunity");
    assert_eq!(
        cancellation(&opp),
        ("Cancelled".into(), CANCELLED.into(), Value::Null)
    );
    assert_eq!(stack.whmcs.action_count("AddCancelRequest"), 3);
}

#[tokio::test]
async fn a_whmcs_request_cannot_be_withdrawn_and_the_opportunity_says_what_to_do() {
    let stack = LocalStack::start().await.unwrap();
    let event = serde_json::from_value(dealbridge_sandbox::events::sample(
        "platform-events-order-provision.json",
    ))
    .unwrap();
    dealbridge_platform_events::handle(event, &stack.platform_events)
        .await
        .unwrap();
    stack.drain(200).await;
    // The first invoices were paid: the monthly services are next due on 2026-12-20.
    let due = "2026-12-20";
    for s in stack.whmcs.services() {
        if s.recurring_amount > rust_decimal::Decimal::ZERO {
            assert!(stack.whmcs.set_next_due(s.id, due));
        }
    }
    update_opportunity(
        &stack,
        "InternetOpportunity",
        json!({"StageName": CANCELLING, "ScheduledCancellationDateAndTime__c": format!("{due}T00:00:00Z")}),
    );
    dispatch_now(&stack, "InternetOpportunity").await;
    let end_of_period = stack
        .whmcs
        .cancel_requests()
        .into_iter()
        .filter(|r| r.kind == dealbridge_sandbox::whmcs::model::CancelType::EndOfBillingPeriod)
        .count();
    assert!(end_of_period >= 1, "{:?}", stack.whmcs.cancel_requests());

    update_opportunity(
        &stack,
        "InternetOpportunity",
        json!({"StageName": "Active"}),
    );
    stack.advance(std::time::Duration::from_secs(600));
    dispatch_now(&stack, "InternetOpportunity").await;
    let opp = record(&stack, "InternetOpportunity");
    let (status, stage, error) = cancellation(&opp);
    assert_eq!((status.as_str(), stage.as_str()), ("Failed", "Active"));
    let error = error.as_str().unwrap().to_string();
    assert!(
        error.starts_with("CANCELLATION_NOT_WITHDRAWABLE"),
        "{error}"
    );
    assert!(error.contains("WHMCS admin area"), "{error}");
}

#[tokio::test]
async fn a_cpq_amendment_to_zero_cancels_the_contracts_subscription_from_its_day() {
    let stack = LocalStack::start().await.unwrap();
    let sub = billed(&stack, "CancelAllOpportunity").await;
    let before = ab_writes(&stack).len();
    dispatch_now(&stack, "CancelAllAmendOpportunity").await;
    let amendment = record(&stack, "CancelAllAmendOpportunity");
    assert_eq!(
        amendment["Cancellation_Status__c"], "Scheduled",
        "{amendment:?}"
    );
    assert_eq!(
        amendment["ScheduledCancellationDateAndTime__c"]
            .as_str()
            .map(|t| t.starts_with("2026-12-01T00:00:00")),
        Some(true),
        "{amendment:?}"
    );
    assert_eq!(subscription(&stack, sub)["state"], "active");
    // No allocation to zero: the AB chain does not run for a cancellation.
    assert!(
        ab_writes(&stack)[before..]
            .iter()
            .all(|w| !w.contains("allocation"))
    );

    stack.drain(20_000).await;
    assert_eq!(subscription(&stack, sub)["state"], "canceled");
    let amendment = record(&stack, "CancelAllAmendOpportunity");
    assert_eq!(
        amendment["Cancellation_Status__c"], "Cancelled",
        "{amendment:?}"
    );
    assert_eq!(
        record(&stack, "CancelAllOpportunity")["StageName"],
        CANCELLED
    );
}

#[tokio::test]
async fn a_cancelling_stage_without_its_time_is_refused_and_nothing_is_cancelled() {
    let stack = LocalStack::start().await.unwrap();
    let sub = billed(&stack, "AddProductOpportunity").await;
    let before = ab_writes(&stack).len();
    update_opportunity(
        &stack,
        "AddProductOpportunity",
        json!({"StageName": CANCELLING}),
    );
    dispatch_now(&stack, "AddProductOpportunity").await;
    assert_eq!(ab_writes(&stack).len(), before);
    assert_eq!(subscription(&stack, sub)["state"], "active");
    let opp = record(&stack, "AddProductOpportunity");
    let (status, _, error) = cancellation(&opp);
    assert_eq!(status, "Failed");
    assert!(
        error
            .as_str()
            .unwrap()
            .starts_with("CANCELLATION_DATE_MISSING"),
        "{error}"
    );
}

#[tokio::test]
async fn a_cpq_cancellation_approved_while_its_sale_is_being_billed_waits_for_it_then_cancels() {
    let stack = LocalStack::start().await.unwrap();
    // The amendment to zero comes first: its first sale has no AB subscription yet.
    dispatch_now(&stack, "CancelAllAmendOpportunity").await;
    assert!(ab_writes(&stack).is_empty());
    let amendment = record(&stack, "CancelAllAmendOpportunity");
    assert_eq!(
        cancellation(&amendment).0,
        "",
        "nothing refused: {amendment:?}"
    );
    let waiting = stack.queue.sent(dealbridge::queue::QueueName::Delayed);
    assert_eq!(waiting.len(), 1, "a re-dispatch waits: {waiting:?}");
    assert!(waiting[0].body.contains("\"attempt\":1"), "{waiting:?}");

    // The first sale lands; the waiting re-dispatch then schedules the cancellation.
    let sub = billed(&stack, "CancelAllOpportunity").await;
    stack.drain(20_000).await;
    assert_eq!(subscription(&stack, sub)["state"], "canceled");
    let amendment = record(&stack, "CancelAllAmendOpportunity");
    assert_eq!(
        cancellation(&amendment),
        (
            "Cancelled".to_string(),
            amendment["StageName"].as_str().unwrap_or("").to_string(),
            Value::Null
        ),
        "{amendment:?}"
    );
    assert_eq!(
        record(&stack, "CancelAllOpportunity")["StageName"],
        CANCELLED
    );
}

#[tokio::test]
async fn a_cancellation_of_a_deal_never_billed_waits_about_an_hour_then_says_so() {
    let stack = LocalStack::start().await.unwrap();
    update_opportunity(
        &stack,
        "CancelAllOpportunity",
        json!({"StageName": CANCELLING, "ScheduledCancellationDateAndTime__c": "2026-12-31T05:00:00.000+0000"}),
    );
    let start = stack.clock_now();
    dispatch_now(&stack, "CancelAllOpportunity").await;
    assert_eq!(cancellation(&record(&stack, "CancelAllOpportunity")).0, "");
    stack.drain(2_000).await;
    let opp = record(&stack, "CancelAllOpportunity");
    let (status, _, error) = cancellation(&opp);
    assert_eq!(status, "Failed", "{opp:?}");
    assert!(
        error
            .as_str()
            .is_some_and(|e| e.starts_with("CANCELLATION_NOTHING_BILLED")),
        "{error}"
    );
    assert!(ab_writes(&stack).is_empty());
    assert!(stack.whmcs.cancel_requests().is_empty());
    let redispatches = stack
        .queue
        .sent(dealbridge::queue::QueueName::Delayed)
        .len();
    assert_eq!(redispatches, 7, "eight dispatches in all");
    let waited = stack.clock_now() - start;
    assert!((3_000..7_200).contains(&waited), "waited {waited} s");
}
