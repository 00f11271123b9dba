//! AB webhooks and the schedule end to end: AB's fake signs and sends its webhooks over HTTP to
//! the intake, which checks them and enqueues a hint on the billing-sync queue; the billing-sync
//! function runs the site's sync from the hints (or from the schedule's, with no webhook at
//! all), and the Opportunity shows AB's state. A replayed webhook changes nothing twice; an
//! unsigned or wrongly signed one is refused and enqueues nothing.

use dealbridge::billing::hint::{Hint, Reason, Target};
use dealbridge::billing::webhook::{SIGNATURE_HEADER, sign};
use dealbridge::clock::Clock;
use dealbridge::queue::QueueName;
use dealbridge::runner::Handled;
use dealbridge_sandbox::intake_http;
use dealbridge_sandbox::local::LocalStack;
use dealbridge_sandbox::maxio_ab::SANDBOX_WEBHOOK_KEY;
use dealbridge_sandbox::salesforce::routes;
use dealbridge_sandbox::whmcs::model::ServiceStatus;
use lambda_http::http::StatusCode;
use serde_json::{Value, json};

use crate::support::{billed, record};

const CANCELLED: &str = "\u{25b3}Cancelled";

/// The Salesforce calls that wrote billing state to Opportunities.
fn billing_writes(stack: &LocalStack) -> usize {
    stack
        .salesforce
        .observer()
        .requests()
        .into_iter()
        .filter(|r| r.route == routes::COLLECTIONS_PATCH && !r.injected)
        .filter(|r| r.body.contains("Maxio_Billing_State__c"))
        .count()
}

/// Points the AB fake's default site at the intake's webhook route.
async fn subscribe(stack: &LocalStack, intake_url: &str) {
    let ab = stack.maxio_ab.settings();
    let response = reqwest::Client::new()
        .post(format!("{}/endpoints.json", stack.maxio_ab.url()))
        .basic_auth(&ab.api_key, Some("x"))
        .json(&json!({"endpoint": {
            "url": format!("{intake_url}/v1/maxio/webhooks/default"),
            "webhook_subscriptions": ["subscription_state_change", "signup_success"]}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
}

async fn replay(stack: &LocalStack, ids: &[i64]) {
    let ab = stack.maxio_ab.settings();
    let response = reqwest::Client::new()
        .post(format!("{}/webhooks/replay.json", stack.maxio_ab.url()))
        .basic_auth(&ab.api_key, Some("x"))
        .json(&json!({"ids": ids}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
}

fn done(results: &[dealbridge::runner::RecordResult]) -> bool {
    results.iter().all(|r| r.handled == Handled::Done)
}

#[tokio::test]
async fn a_state_change_reaches_the_opportunity_through_a_webhook_and_a_replay_changes_nothing() {
    let stack = LocalStack::start().await.unwrap();
    let sub = billed(&stack, "VolumeOpportunity").await;
    let intake = intake_http::start(dealbridge_intake::Deps::new(&stack.wiring).unwrap())
        .await
        .unwrap();
    subscribe(&stack, &intake.url).await;

    stack.maxio_ab.set_state(sub, "canceled").unwrap();
    let sent = stack.maxio_ab.deliver_webhooks().await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].event, "subscription_state_change");
    assert_eq!(sent[0].status, Some(200), "the intake took it");
    // Answered by enqueueing: nothing reached Salesforce yet.
    assert_eq!(stack.queue.depth(QueueName::BillingSync), 1);
    assert_eq!(billing_writes(&stack), 0);

    let results = stack.drain_billing(10).await;
    assert!(done(&results), "{results:?}");
    let opp = record(&stack, "VolumeOpportunity");
    assert_eq!(opp["Maxio_Billing_State__c"], "canceled");
    assert_eq!(opp["StageName"], CANCELLED);
    assert_eq!(billing_writes(&stack), 1);

    // AB replays the webhook: the intake takes it again, and the run finds nothing new.
    replay(&stack, &[sent[0].webhook_id]).await;
    let again = stack.maxio_ab.deliver_webhooks().await;
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].status, Some(200));
    let results = stack.drain_billing(10).await;
    assert!(done(&results), "{results:?}");
    assert_eq!(billing_writes(&stack), 1, "a replay writes nothing twice");
    assert_eq!(stack.queue.depth(QueueName::BillingSync), 0);
}

#[tokio::test]
async fn with_no_webhook_the_scheduled_run_brings_the_state_and_each_target_runs_once() {
    let stack = LocalStack::start().await.unwrap();
    let sub = billed(&stack, "VolumeOpportunity").await;
    stack.maxio_ab.set_state(sub, "past_due").unwrap();

    let at = stack.clock.now();
    let targets = stack.billing.schedule(at).await.unwrap();
    assert_eq!(
        targets,
        [
            Target::AbSite {
                site: "default".into()
            },
            Target::AbSite { site: "uk".into() },
            Target::WhmcsServices
        ]
    );
    // The schedule's invocation retried: the same hints, deduplicated.
    stack.billing.schedule(at).await.unwrap();
    assert_eq!(stack.queue.depth(QueueName::BillingSync), 3);

    let results = stack.drain_billing(10).await;
    assert_eq!(results.len(), 3);
    assert!(done(&results), "{results:?}");
    let opp = record(&stack, "VolumeOpportunity");
    assert_eq!(opp["Maxio_Billing_State__c"], "past_due");
    assert_eq!(billing_writes(&stack), 1);

    // Three webhooks for one site in one batch (SQS hands a FIFO group's messages over in
    // order, several a batch): one run.
    let seal = stack
        .billing
        .seal
        .clone()
        .expect("the local stack seals its messages");
    let mut records = Vec::new();
    for id in ["w-1", "w-2", "w-3"] {
        let hint = Hint::new(
            Target::AbSite {
                site: "default".into(),
            },
            Reason::Webhook {
                webhook_id: id.into(),
                event: "subscription_state_change".into(),
            },
        );
        let message = hint.to_message().unwrap();
        let body = seal.seal(&message.body).await.unwrap();
        records.push(dealbridge::runner::in_group(
            dealbridge::runner::sqs_record(QueueName::BillingSync, id, &body, 1),
            message.group_id.as_deref(),
        ));
    }
    stack.maxio_ab.set_state(sub, "active").unwrap();
    let events_reads = || {
        stack
            .maxio_ab
            .observer()
            .requests()
            .iter()
            .filter(|r| r.uri.starts_with("/events.json"))
            .count()
    };
    let before = events_reads();
    let results = stack
        .billing
        .handle_records(&records, &stack.queue, None)
        .await;
    assert_eq!(results.len(), 3);
    assert!(done(&results), "{results:?}");
    assert_eq!(events_reads() - before, 1, "one run read the log once");
    assert_eq!(
        record(&stack, "VolumeOpportunity")["Maxio_Billing_State__c"],
        "active"
    );
}

#[tokio::test]
async fn a_run_that_reaches_its_salesforce_bound_continues_in_a_new_run_without_a_second_chain() {
    let stack = LocalStack::start().await.unwrap();
    let first = billed(&stack, "VolumeOpportunity").await;
    let second = billed(&stack, "GraduatedOpportunity").await;
    let mut bounded = stack.wiring.billing_sync().unwrap();
    bounded.bounds.max_salesforce_calls = 1;
    bounded.bounds.batch = 1;
    stack.maxio_ab.set_state(first, "past_due").unwrap();
    let hint = |after| {
        Hint::new(
            Target::AbSite {
                site: "default".into(),
            },
            Reason::Continue { after },
        )
    };
    dealbridge::queue::Queue::send(&*stack.billing.queue, &hint(None).to_message().unwrap())
        .await
        .unwrap();
    // One subscription a batch and one Salesforce call a run: the first run writes the first
    // subscription and hands the rest to a continuation.
    let results = stack.drain_billing_on(&bounded, 1).await;
    assert!(done(&results), "{results:?}");
    let continuation = stack.queue.peek(QueueName::BillingSync);
    assert_eq!(continuation.len(), 1, "one continuation: {continuation:?}");
    stack.maxio_ab.set_state(second, "past_due").unwrap();
    let results = stack.drain_billing_on(&bounded, 10).await;
    assert!(done(&results), "{results:?}");
    for opp in ["VolumeOpportunity", "GraduatedOpportunity"] {
        assert_eq!(
            record(&stack, opp)["Maxio_Billing_State__c"],
            "past_due",
            "{opp}"
        );
    }
    assert_eq!(
        stack.queue.depth(QueueName::BillingSync),
        0,
        "the chain ends when caught up"
    );
}

#[tokio::test]
async fn a_hint_for_a_site_the_stack_does_not_have_goes_to_the_dead_letter_queue_at_once() {
    let stack = LocalStack::start().await.unwrap();
    let hint = Hint::new(
        Target::AbSite {
            site: "mars".into(),
        },
        Reason::Continue { after: None },
    );
    dealbridge::queue::Queue::send(&*stack.billing.queue, &hint.to_message().unwrap())
        .await
        .unwrap();
    let results = stack.drain_billing(10).await;
    assert!(
        matches!(&results[..], [r] if matches!(&r.handled, Handled::DeadLettered(f) if f.to_string().contains("mars"))),
        "{results:?}"
    );
    assert_eq!(stack.queue.dead_letters(QueueName::BillingSync).len(), 1);
}

fn webhook_request(site: &str, body: &str, signature: Option<&str>) -> lambda_http::Request {
    let mut request = lambda_http::http::Request::builder()
        .method("POST")
        .uri(format!("/v1/maxio/webhooks/{site}"))
        .header("content-type", "application/x-www-form-urlencoded");
    if let Some(s) = signature {
        request = request.header(SIGNATURE_HEADER, s);
    }
    request
        .body(lambda_http::Body::Text(body.to_string()))
        .unwrap()
}

async fn answer(stack: &LocalStack, request: lambda_http::Request) -> (StatusCode, Value) {
    let response = dealbridge_intake::handle(request, &stack.intake).await;
    let status = response.status();
    let body = serde_json::from_slice(response.body().as_ref()).unwrap_or(Value::Null);
    (status, body)
}

#[tokio::test]
async fn unsigned_wrongly_signed_malformed_oversized_and_unknown_webhooks_are_refused_and_enqueue_nothing()
 {
    let stack = LocalStack::start().await.unwrap();
    let hook = "id=777&event=subscription_state_change&payload[subscription][id]=42";
    let body = hook;
    let key = SANDBOX_WEBHOOK_KEY.as_bytes();
    let good = sign(key, body.as_bytes());
    let cases: Vec<(lambda_http::Request, StatusCode, &str)> = vec![
        (
            webhook_request("default", body, None),
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
        ),
        (
            webhook_request(
                "default",
                body,
                Some(&sign(b"another key", body.as_bytes())),
            ),
            StatusCode::UNAUTHORIZED,
            "invalid_signature",
        ),
        (
            webhook_request("default", &format!("{body}&x=1"), Some(&good)),
            StatusCode::UNAUTHORIZED,
            "invalid_signature",
        ),
        (
            webhook_request("uk", body, Some(&good)),
            StatusCode::UNAUTHORIZED,
            "invalid_signature",
        ),
        (
            webhook_request("mars", body, Some(&good)),
            StatusCode::NOT_FOUND,
            "unknown_site",
        ),
        (
            webhook_request(
                "default",
                "event=subscription_state_change",
                Some(&sign(key, b"event=subscription_state_change")),
            ),
            StatusCode::BAD_REQUEST,
            "malformed_webhook",
        ),
        (
            webhook_request(
                "default",
                &"a".repeat(2 * 1024 * 1024),
                Some(&sign(key, "a".repeat(2 * 1024 * 1024).as_bytes())),
            ),
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
        ),
    ];
    for (request, status, code) in cases {
        let (got, body) = answer(&stack, request).await;
        assert_eq!(
            (got, body["error"]["code"].as_str()),
            (status, Some(code)),
            "{body}"
        );
    }
    // An event that cannot change billing state: acknowledged, ignored.
    let invoice = "id=778&event=invoice_issued";
    let (got, body) = answer(
        &stack,
        webhook_request("default", invoice, Some(&sign(key, invoice.as_bytes()))),
    )
    .await;
    assert_eq!(got, StatusCode::OK);
    assert_eq!(body["ignored"], true);
    assert_eq!(
        stack.queue.depth(QueueName::BillingSync),
        0,
        "nothing enqueued"
    );

    // The good one, twice (AB's retry after a lost answer): one message.
    for _ in 0..2 {
        let (got, body) = answer(&stack, webhook_request("default", hook, Some(&good))).await;
        assert_eq!(got, StatusCode::OK, "{body}");
        assert_eq!(body["enqueued"], true);
    }
    assert_eq!(stack.queue.depth(QueueName::BillingSync), 1);
}

#[tokio::test]
async fn a_whmcs_termination_reaches_the_order_and_the_opportunity() {
    let stack = LocalStack::start().await.unwrap();
    crate::support::provision_internet_order(&stack).await;
    let services = stack.whmcs.services();
    let opportunity_before = record(&stack, "InternetOpportunity");
    for service in &services {
        stack
            .whmcs
            .set_service_status(service.id, ServiceStatus::Terminated);
    }
    let hint = Hint::new(Target::WhmcsServices, Reason::Continue { after: None });
    dealbridge::queue::Queue::send(&*stack.billing.queue, &hint.to_message().unwrap())
        .await
        .unwrap();
    let results = stack.drain_billing(10).await;
    assert!(done(&results), "{results:?}");
    let order = record(&stack, "InternetOrder");
    assert_eq!(order["WHMCS_Services_Status__c"], "Terminated");
    let opp = record(&stack, "InternetOpportunity");
    assert_eq!(opp["WHMCS_Services_Status__c"], "Terminated");
    assert!(
        opportunity_before["Maxio_Subscription_Id__c"].is_null(),
        "a WHMCS-only deal"
    );
    assert_eq!(
        opp["StageName"], CANCELLED,
        "every service ended, nothing in AB"
    );
}

#[tokio::test]
async fn the_function_takes_the_schedule_s_payload_and_the_queue_s_batches() {
    let stack = LocalStack::start().await.unwrap();
    let sub = billed(&stack, "VolumeOpportunity").await;
    stack.maxio_ab.set_state(sub, "past_due").unwrap();
    // Scheduler's input, as the template sends it.
    let scheduled = json!({"source": "dealbridge.billing-sync",
        "scheduleArn": "arn:aws:scheduler:us-east-1:123456789012:schedule/default/x",
        "scheduledTime": "2026-12-05T06:00:00Z"});
    let answer =
        dealbridge_billing_sync::handle(scheduled.clone(), &stack.billing, &stack.queue, None)
            .await
            .unwrap();
    assert_eq!(answer["targets"], json!(["ab:default", "ab:uk", "whmcs"]));
    // Retried by Scheduler: the same hints.
    dealbridge_billing_sync::handle(scheduled, &stack.billing, &stack.queue, None)
        .await
        .unwrap();
    assert_eq!(stack.queue.depth(QueueName::BillingSync), 3);
    assert!(
        dealbridge_billing_sync::handle(
            json!({"scheduledTime": "today"}),
            &stack.billing,
            &stack.queue,
            None
        )
        .await
        .is_err()
    );

    // The queue's batch, as Lambda delivers it: one record a group (the in-memory FIFO queue
    // hands a group's next message over once the one before is done).
    let batch = stack.queue.receive(QueueName::BillingSync, 10);
    assert_eq!(batch.len(), 3);
    let event = serde_json::to_value(dealbridge_sandbox::local::sqs_event(&batch)).unwrap();
    let answer = dealbridge_billing_sync::handle(event, &stack.billing, &stack.queue, None)
        .await
        .unwrap();
    assert_eq!(answer["batchItemFailures"], json!([]), "{answer}");
    assert_eq!(
        record(&stack, "VolumeOpportunity")["Maxio_Billing_State__c"],
        "past_due"
    );
}

#[tokio::test]
async fn a_services_sync_whose_time_is_up_goes_on_after_the_last_service_it_read() {
    use dealbridge::billing::services_sync::{ServicesRequest, sync_services};
    let stack = LocalStack::start().await.unwrap();
    crate::support::provision_internet_order(&stack).await;
    let mut services: Vec<u64> = stack.whmcs.services().iter().map(|s| s.id).collect();
    services.sort();
    let sync = |request: ServicesRequest| {
        let stack = &stack;
        async move {
            sync_services(
                stack.whmcs_deps.whmcs.as_ref(),
                stack.client.as_ref(),
                stack.client.as_ref(),
                stack.client.as_ref(),
                &stack.maxio.mapping,
                &stack.clock,
                &request,
            )
            .await
            .unwrap()
        }
    };
    sync(ServicesRequest::default()).await;
    for id in &services {
        stack
            .whmcs
            .set_service_status(*id, ServiceStatus::Terminated);
    }
    // Going on after the first service: the two after it are read and written, the first is
    // counted as Salesforce shows it.
    let rest = sync(ServicesRequest {
        after: Some(services[0] as i64),
        ..ServicesRequest::default()
    })
    .await;
    assert_eq!(
        rest.written,
        [services[1].to_string(), services[2].to_string()],
        "{rest:?}"
    );
    assert_eq!(rest.stopped_after, None);
    assert_eq!(
        record(&stack, "InternetOrder")["WHMCS_Services_Status__c"],
        "Active (1), Terminated (2)"
    );

    // A run whose time is already up reads nothing and hands over to a continuation, which
    // brings the rest.
    let deadline = stack.clock.now() + chrono::Duration::seconds(90);
    stack
        .billing
        .run(&Target::WhmcsServices, None, Some(deadline))
        .await
        .unwrap();
    let waiting = stack.queue.peek(QueueName::BillingSync);
    assert_eq!(waiting.len(), 1, "one continuation: {waiting:?}");
    let results = stack.drain_billing(10).await;
    assert!(done(&results), "{results:?}");
    assert_eq!(
        record(&stack, "InternetOrder")["WHMCS_Services_Status__c"],
        "Terminated"
    );
    assert_eq!(
        record(&stack, "InternetOpportunity")["StageName"],
        CANCELLED
    );
}
