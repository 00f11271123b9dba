//! The intake handler fed the sample events in `events/` and their hostile variants.

use dealbridge::envelope::{Envelope, Step};
use dealbridge::outbound;
use dealbridge::queue::QueueName;
use dealbridge_intake::handle;
use dealbridge_sandbox::events::{http_request, sample, with_signed_body};
use dealbridge_sandbox::local::{LocalStack, sample_time};
use dealbridge_sandbox::observe::Fault;
use dealbridge_sandbox::salesforce::routes;
use lambda_http::{Body, Response};
use serde_json::{Value, json};

fn body_text(r: &Response<Body>) -> String {
    String::from_utf8_lossy(r.body().as_ref()).into_owned()
}

fn body_json(r: &Response<Body>) -> Value {
    serde_json::from_str(&body_text(r))
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", body_text(r)))
}

fn header<'a>(r: &'a Response<Body>, name: &str) -> Option<&'a str> {
    r.headers().get(name).and_then(|v| v.to_str().ok())
}

fn enqueued(stack: &LocalStack) -> usize {
    QueueName::ALL
        .iter()
        .map(|q| stack.queue.sent(*q).len())
        .sum()
}

fn t() -> i64 {
    sample_time().timestamp()
}

#[tokio::test]
async fn a_signed_deal_request_is_planned_and_enqueued_on_the_maxio_queue() {
    let stack = LocalStack::start().await.unwrap();
    let response = handle(
        http_request(&sample("intake-http-api-deal.json")),
        &stack.intake,
    )
    .await;
    assert_eq!(response.status(), 202, "{}", body_text(&response));
    let body = body_json(&response);
    assert_eq!(body["correlationId"], "sample-volume-deal");
    assert_eq!(body["status"], "planned");
    assert_eq!(
        body["deal"],
        json!({"type": "Opportunity", "id": stack.id("VolumeOpportunity").to_string()})
    );
    assert_eq!(body["plan"]["steps"][0]["step"], "maxio-customer");
    assert_eq!(body["messages"][0]["queue"], "maxio-customer");

    let sent = stack.queue.sent(QueueName::MaxioCustomer);
    assert_eq!(sent.len(), 1);
    assert_eq!(
        sent[0].group_id.as_deref(),
        Some(stack.id("VolumeAccount").as_str())
    );
    assert_eq!(
        sent[0].dedup_id.as_deref(),
        body["messages"][0]["deduplicationId"].as_str()
    );
    let envelope = Envelope::parse(&sent[0].body).unwrap();
    assert_eq!(envelope.correlation_id, "sample-volume-deal");
    assert_eq!(
        envelope.step_key,
        format!("{}:maxio-customer", stack.id("VolumeOpportunity"))
    );
    let Step::MaxioCustomer { snapshot } = envelope.step else {
        panic!("wrong step")
    };
    assert_eq!(snapshot.account.id, stack.id("VolumeAccount"));
    assert_eq!(
        stack.salesforce.observer().count(routes::COMPOSITE),
        1,
        "one Salesforce call"
    );
}

#[tokio::test]
async fn the_legacy_apex_payload_with_a_bearer_token_is_accepted_over_a_rest_api() {
    let stack = LocalStack::start().await.unwrap();
    let response = handle(
        http_request(&sample("intake-rest-api-legacy.json")),
        &stack.intake,
    )
    .await;
    assert_eq!(response.status(), 202, "{}", body_text(&response));
    let body = body_json(&response);
    assert_eq!(
        body["deal"]["id"],
        stack.id("GraduatedOpportunity").to_string()
    );
    assert!(
        body["correlationId"]
            .as_str()
            .is_some_and(|c| c.starts_with("db-"))
    );
    assert_eq!(stack.queue.sent(QueueName::MaxioCustomer).len(), 1);
}

#[tokio::test]
async fn the_bearer_scheme_is_matched_whatever_its_case() {
    let stack = LocalStack::start().await.unwrap();
    let mut event = sample("intake-rest-api-legacy.json");
    let token = event["headers"]["Authorization"]
        .as_str()
        .unwrap()
        .replace("Bearer ", "bearer ");
    event["headers"]["Authorization"] = serde_json::Value::String(token.clone());
    event["multiValueHeaders"]["Authorization"] = serde_json::json!([token]);
    let response = handle(http_request(&event), &stack.intake).await;
    assert_eq!(response.status(), 202, "{}", body_text(&response));
}

#[tokio::test]
async fn unsigned_wrongly_signed_and_stale_requests_get_401_and_enqueue_nothing() {
    let stack = LocalStack::start().await.unwrap();
    let event = sample("intake-http-api-deal.json");

    let mut unsigned = event.clone();
    unsigned["headers"]
        .as_object_mut()
        .unwrap()
        .remove("x-dealbridge-signature");
    let r = handle(http_request(&unsigned), &stack.intake).await;
    assert_eq!(r.status(), 401);
    assert_eq!(body_json(&r)["error"]["code"], "unauthenticated");

    let mut tampered = event.clone();
    tampered["body"] = Value::String(event["body"].as_str().unwrap().replace(
        &stack.id("VolumeOpportunity").to_string(),
        stack.id("GraduatedOpportunity").as_str(),
    ));
    let r = handle(http_request(&tampered), &stack.intake).await;
    assert_eq!(r.status(), 401);
    assert_eq!(
        body_json(&r)["error"]["message"],
        "the signature does not match the body"
    );

    let body = event["body"].as_str().unwrap();
    let stale = with_signed_body(&event, body, t() - 301);
    assert_eq!(
        handle(http_request(&stale), &stack.intake).await.status(),
        401
    );

    let mut wrong_token = sample("intake-rest-api-legacy.json");
    wrong_token["headers"]["Authorization"] = json!("Bearer guess");
    wrong_token["multiValueHeaders"]["Authorization"] = json!(["Bearer guess"]);
    assert_eq!(
        handle(http_request(&wrong_token), &stack.intake)
            .await
            .status(),
        401
    );

    assert_eq!(enqueued(&stack), 0);
    assert_eq!(
        stack.salesforce.observer().total(),
        0,
        "nothing reached Salesforce"
    );
}

#[tokio::test]
async fn bad_ids_and_bodies_get_400_naming_the_field() {
    let stack = LocalStack::start().await.unwrap();
    let event = sample("intake-http-api-deal.json");
    let good = stack.id("VolumeOpportunity").to_string();
    let bad_checksum = format!("{}BAA", &good[..15]);
    let cases = [
        (
            json!({"opportunityId": bad_checksum}).to_string(),
            "invalid_id",
            Some("opportunityId"),
        ),
        (
            json!({"opportunityId": "006' OR Name != '"}).to_string(),
            "invalid_id",
            Some("opportunityId"),
        ),
        (
            json!({"orderId": good}).to_string(),
            "invalid_id",
            Some("orderId"),
        ),
        (
            json!({"opportunityId": good, "extra": 1}).to_string(),
            "unknown_field",
            Some("extra"),
        ),
        ("{\"opportunityId\":".to_string(), "malformed_json", None),
        (String::new(), "empty_body", None),
    ];
    for (body, code, field) in cases {
        let r = handle(
            http_request(&with_signed_body(&event, &body, t())),
            &stack.intake,
        )
        .await;
        assert_eq!(r.status(), 400, "{body}: {}", body_text(&r));
        let json = body_json(&r);
        assert_eq!(json["error"]["code"], code, "{body}");
        assert_eq!(json["error"]["field"].as_str(), field, "{body}");
    }
    assert_eq!(enqueued(&stack), 0);
    assert_eq!(stack.salesforce.observer().total(), 0);
}

#[tokio::test]
async fn an_oversized_body_gets_413() {
    let stack = LocalStack::start().await.unwrap();
    let huge = format!(
        "{{\"opportunityId\":\"{}\",\"pad\":\"{}\"}}",
        stack.id("VolumeOpportunity"),
        "x".repeat(2 * 1024 * 1024)
    );
    let event = with_signed_body(&sample("intake-http-api-deal.json"), &huge, t());
    let r = handle(http_request(&event), &stack.intake).await;
    assert_eq!(r.status(), 413);
    assert_eq!(body_json(&r)["error"]["code"], "body_too_large");

    let mut soap = sample("intake-outbound-message.json");
    soap["body"] = Value::String(format!("<x>{}</x>", "y".repeat(2 * 1024 * 1024)));
    let r = handle(http_request(&soap), &stack.intake).await;
    assert_eq!(r.status(), 413);
    assert!(body_text(&r).contains("Fault"));
    assert_eq!(enqueued(&stack), 0);
}

#[tokio::test]
async fn a_dry_run_shows_the_plan_and_enqueues_nothing() {
    let stack = LocalStack::start().await.unwrap();
    let body =
        json!({"opportunityId": stack.id("UnmappedOpportunity").to_string(), "dryRun": true})
            .to_string();
    let r = handle(
        http_request(&with_signed_body(
            &sample("intake-http-api-deal.json"),
            &body,
            t(),
        )),
        &stack.intake,
    )
    .await;
    assert_eq!(r.status(), 200, "{}", body_text(&r));
    let json = body_json(&r);
    assert_eq!(json["dryRun"], true);
    assert_eq!(
        json["plan"]["unmappedProducts"],
        json!(["Custom Onboarding Workshop (ONBOARDING-WORKSHOP)"])
    );
    assert_eq!(json["messages"][0]["step"], "maxio-customer");
    assert!(json["messages"][0].get("messageId").is_none());
    assert_eq!(enqueued(&stack), 0);
}

#[tokio::test]
async fn an_opportunity_without_its_order_yet_is_deferred_through_the_delayed_queue() {
    let stack = LocalStack::start().await.unwrap();
    let body = json!({"opportunityId": stack.id("PendingOpportunity").to_string()}).to_string();
    let r = handle(
        http_request(&with_signed_body(
            &sample("intake-http-api-deal.json"),
            &body,
            t(),
        )),
        &stack.intake,
    )
    .await;
    assert_eq!(r.status(), 202, "{}", body_text(&r));
    let json = body_json(&r);
    assert_eq!(json["status"], "deferred");
    assert_eq!(json["retryInSeconds"], 60, "{json}");
    assert_eq!(json["attempt"], 1);
    let delayed = stack.queue.sent(QueueName::Delayed);
    assert_eq!(delayed.len(), 1);
    assert_eq!(delayed[0].delay.as_secs(), 60);
    assert!(matches!(
        Envelope::parse(&delayed[0].body).unwrap().step,
        Step::Dispatch { attempt: 1, .. }
    ));
    assert_eq!(stack.queue.sent(QueueName::MaxioCustomer).len(), 0);
}

#[tokio::test]
async fn salesforce_outages_answer_503_with_retry_after_and_missing_deals_404() {
    let stack = LocalStack::start().await.unwrap();
    let event = sample("intake-http-api-deal.json");
    stack.salesforce.observer().inject(
        routes::COMPOSITE,
        Fault::json(
            503,
            json!([{"message": "Server is unavailable", "errorCode": "SERVER_UNAVAILABLE"}]),
        )
        .header("Retry-After", "12"),
    );
    let r = handle(http_request(&event), &stack.intake).await;
    assert_eq!(r.status(), 503);
    assert_eq!(header(&r, "retry-after"), Some("12"));

    stack
        .salesforce
        .set_api_usage(stack.salesforce.settings().api_limit);
    let r = handle(http_request(&event), &stack.intake).await;
    assert_eq!(r.status(), 503, "{}", body_text(&r));
    assert!(body_text(&r).contains("REQUEST_LIMIT_EXCEEDED"));
    assert_eq!(header(&r, "retry-after"), Some("30"));
    stack.salesforce.set_api_usage(0);

    let ghost = json!({"opportunityId": "006SB0000000999"}).to_string();
    let r = handle(
        http_request(&with_signed_body(&event, &ghost, t())),
        &stack.intake,
    )
    .await;
    assert_eq!(r.status(), 404);
    assert_eq!(body_json(&r)["error"]["field"], "opportunityId");
    assert_eq!(enqueued(&stack), 0);
}

#[tokio::test]
async fn an_order_id_starts_whmcs_provisioning() {
    let stack = LocalStack::start().await.unwrap();
    let body = json!({"orderId": stack.id("InternetOrder").to_string()}).to_string();
    let r = handle(
        http_request(&with_signed_body(
            &sample("intake-http-api-deal.json"),
            &body,
            t(),
        )),
        &stack.intake,
    )
    .await;
    assert_eq!(r.status(), 202, "{}", body_text(&r));
    let sent = stack.queue.sent(QueueName::WhmcsProvision);
    assert_eq!(sent.len(), 1);
    assert_eq!(
        sent[0].group_id.as_deref(),
        Some(stack.id("InternetAccount").as_str())
    );
    assert_eq!(stack.queue.sent(QueueName::MaxioCustomer).len(), 0);
}

#[tokio::test]
async fn unknown_routes_and_methods_are_refused() {
    let stack = LocalStack::start().await.unwrap();
    let mut e = sample("intake-http-api-deal.json");
    e["rawPath"] = json!("/v1/other");
    e["requestContext"]["http"]["path"] = json!("/v1/other");
    assert_eq!(handle(http_request(&e), &stack.intake).await.status(), 404);
    let mut e = sample("intake-http-api-deal.json");
    e["requestContext"]["http"]["method"] = json!("GET");
    assert_eq!(handle(http_request(&e), &stack.intake).await.status(), 405);
}

// Outbound Messages

#[tokio::test]
async fn an_outbound_message_is_acknowledged_after_every_notification_is_enqueued() {
    let stack = LocalStack::start().await.unwrap();
    let r = handle(
        http_request(&sample("intake-outbound-message.json")),
        &stack.intake,
    )
    .await;
    assert_eq!(r.status(), 200, "{}", body_text(&r));
    assert_eq!(body_text(&r), outbound::ack());
    assert!(header(&r, "content-type").is_some_and(|c| c.starts_with("text/xml")));
    let sent = stack.queue.sent(QueueName::MaxioCustomer);
    let deals: Vec<String> = sent
        .iter()
        .map(|m| Envelope::parse(&m.body).unwrap().deal.id().to_string())
        .collect();
    assert_eq!(
        deals,
        [
            stack.id("VolumeOpportunity").to_string(),
            stack.id("GraduatedOpportunity").to_string()
        ]
    );
    let first = Envelope::parse(&sent[0].body).unwrap();
    assert_eq!(first.correlation_id, "om-04lSB0000000001AAA");
    assert_eq!(first.idempotency_key.as_deref(), Some("04lSB0000000001AAA"));
}

#[tokio::test]
async fn the_same_notification_delivered_twice_yields_one_set_of_messages() {
    let stack = LocalStack::start().await.unwrap();
    let event = sample("intake-outbound-message.json");
    assert_eq!(
        handle(http_request(&event), &stack.intake).await.status(),
        200
    );
    let first: Vec<Option<String>> = stack
        .queue
        .sent(QueueName::MaxioCustomer)
        .iter()
        .map(|m| m.dedup_id.clone())
        .collect();
    let r = handle(http_request(&event), &stack.intake).await;
    assert_eq!(r.status(), 200);
    assert_eq!(body_text(&r), outbound::ack());
    assert_eq!(
        stack.queue.depth(QueueName::MaxioCustomer),
        2,
        "the FIFO queue dropped the duplicates"
    );
    assert_eq!(stack.queue.sent(QueueName::MaxioCustomer).len(), 2);
    assert_eq!(first.len(), 2);
    assert!(first.iter().all(Option::is_some));
}

#[tokio::test]
async fn outbound_messages_from_unknown_orgs_or_with_a_bad_token_get_faults_and_enqueue_nothing() {
    let stack = LocalStack::start().await.unwrap();
    let event = sample("intake-outbound-message.json");
    let mut foreign = event.clone();
    foreign["body"] = json!(
        event["body"]
            .as_str()
            .unwrap()
            .replace("00DSB00000000012AA", "00DSB0000000002")
    );
    let r = handle(http_request(&foreign), &stack.intake).await;
    assert_eq!(r.status(), 403);
    let text = body_text(&r);
    assert!(
        text.contains("<faultcode>soapenv:Client</faultcode>"),
        "{text}"
    );
    assert!(text.contains("is not allowed"), "{text}");

    let mut bad_token = event.clone();
    bad_token["rawPath"] = json!("/v1/outbound-messages/guess");
    bad_token["requestContext"]["http"]["path"] = json!("/v1/outbound-messages/guess");
    let r = handle(http_request(&bad_token), &stack.intake).await;
    assert_eq!(r.status(), 401);
    assert!(body_text(&r).contains("Fault"));
    assert_eq!(enqueued(&stack), 0);
    assert_eq!(stack.salesforce.observer().total(), 0);
}

#[tokio::test]
async fn xml_with_a_doctype_is_refused() {
    let stack = LocalStack::start().await.unwrap();
    let mut event = sample("intake-outbound-message.json");
    let body = event["body"].as_str().unwrap().replacen(
        "<soapenv:Envelope",
        "<!DOCTYPE lolz [<!ENTITY lol \"lol\"><!ENTITY lol2 \"&lol;&lol;&lol;&lol;\">]>\n<soapenv:Envelope",
        1,
    );
    event["body"] = json!(body);
    let r = handle(http_request(&event), &stack.intake).await;
    assert_eq!(r.status(), 400);
    assert!(
        body_text(&r).to_ascii_lowercase().contains("doctype"),
        "{}",
        body_text(&r)
    );
    assert_eq!(enqueued(&stack), 0);
}

#[tokio::test]
async fn a_notification_with_a_bad_id_or_object_faults_before_anything_is_enqueued() {
    let stack = LocalStack::start().await.unwrap();
    let event = sample("intake-outbound-message.json");
    let graduated = stack.id("GraduatedOpportunity").to_string();
    let mut bad_id = event.clone();
    bad_id["body"] = json!(
        event["body"]
            .as_str()
            .unwrap()
            .replace(&graduated, &format!("{}BAA", &graduated[..15]))
    );
    let r = handle(http_request(&bad_id), &stack.intake).await;
    assert_eq!(r.status(), 400);
    assert!(
        body_text(&r).contains("04lSB0000000002AAA"),
        "names the notification: {}",
        body_text(&r)
    );

    let mut account = event.clone();
    account["body"] = json!(
        event["body"]
            .as_str()
            .unwrap()
            .replace("sf:Opportunity", "sf:Account")
    );
    let r = handle(http_request(&account), &stack.intake).await;
    assert_eq!(r.status(), 400);
    assert!(
        body_text(&r).contains("is for a Account"),
        "{}",
        body_text(&r)
    );
    assert_eq!(enqueued(&stack), 0);
}

#[tokio::test]
async fn a_salesforce_outage_faults_the_message_so_salesforce_resends_it() {
    let stack = LocalStack::start().await.unwrap();
    stack.salesforce.observer().inject(
        routes::COMPOSITE,
        Fault::json(
            503,
            json!([{"message": "Server is unavailable", "errorCode": "SERVER_UNAVAILABLE"}]),
        ),
    );
    let event = sample("intake-outbound-message.json");
    let r = handle(http_request(&event), &stack.intake).await;
    assert_eq!(r.status(), 503);
    assert!(body_text(&r).contains("<faultcode>soapenv:Server</faultcode>"));
    // Both notifications' deals are read by the one call that failed: each is named.
    assert!(
        body_text(&r).contains("unable to accept 2 notification(s)"),
        "{}",
        body_text(&r)
    );
    for deal in ["VolumeOpportunity", "GraduatedOpportunity"] {
        assert!(body_text(&r).contains(stack.id(deal).as_str()), "{deal}");
    }
    assert_eq!(stack.queue.sent(QueueName::MaxioCustomer).len(), 0);
    assert_eq!(stack.salesforce.observer().count(routes::COMPOSITE), 1);
    let r = handle(http_request(&event), &stack.intake).await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        stack.queue.depth(QueueName::MaxioCustomer),
        2,
        "the resend enqueues both"
    );
}

/// Adds `n` order products to the seeded `VolumeOrder`: a deal whose work message is larger than
/// SQS takes (256 KiB).
fn swell_volume_order(stack: &LocalStack, n: usize) {
    let order = stack.id("VolumeOrder").to_string();
    let product = stack
        .salesforce
        .record(stack.id("VolumePlatformFeeItem").as_str())
        .and_then(|r| r.get("Product2Id").cloned())
        .expect("the seeded order product's product");
    stack.salesforce.with_org(|org| {
        for i in 0..n {
            let item = json!({"OrderId": order, "Product2Id": product, "Quantity": 1,
                "UnitPrice": 10, "OrderItemNumber": format!("{:010}", 5000 + i)});
            org.insert("OrderItem", item.as_object().unwrap()).unwrap();
        }
    });
}

#[tokio::test]
async fn a_deal_too_large_to_enqueue_is_refused_and_its_notification_acknowledged_only_once_the_record_says_so()
 {
    let stack = LocalStack::start().await.unwrap();
    swell_volume_order(&stack, 1500);
    let opp = stack.id("VolumeOpportunity").to_string();

    // A caller is told at once.
    let e = with_signed_body(
        &sample("intake-http-api-deal.json"),
        &json!({ "opportunityId": opp }).to_string(),
        t(),
    );
    let r = handle(http_request(&e), &stack.intake).await;
    assert_eq!(r.status(), 422, "{}", body_text(&r));
    assert_eq!(body_json(&r)["error"]["code"], "deal_too_large");
    assert!(body_text(&r).contains("256 KiB"), "{}", body_text(&r));
    assert_eq!(enqueued(&stack), 0);

    // An Outbound Message is not acknowledged while the reason cannot be written to the record
    // (Salesforce resends it)...
    let event = sample("intake-outbound-message.json");
    // As many failures as the client's attempts (four).
    stack.salesforce.observer().inject(
        routes::COLLECTIONS_PATCH,
        Fault::json(
            503,
            json!([{"message": "Server is unavailable", "errorCode": "SERVER_UNAVAILABLE"}]),
        )
        .times(4),
    );
    let r = handle(http_request(&event), &stack.intake).await;
    assert_eq!(r.status(), 503, "{}", body_text(&r));
    assert_eq!(
        stack.salesforce.observer().count(routes::COLLECTIONS_PATCH),
        4
    );
    assert!(
        body_text(&r).contains("DISPATCH_TOO_LARGE"),
        "{}",
        body_text(&r)
    );
    // ...and once it is written, the message is acknowledged.
    let r = handle(http_request(&event), &stack.intake).await;
    assert_eq!(r.status(), 200, "{}", body_text(&r));
    let volume = stack.salesforce.record(&opp).unwrap();
    assert_eq!(volume["Maxio_Sync_Status__c"], "Failed");
    let error = volume["Maxio_Sync_Error__c"].as_str().unwrap();
    assert!(error.starts_with("DISPATCH_TOO_LARGE: "), "{error}");
    assert!(error.contains("bytes"), "{error}");
    let sent: Vec<String> = stack
        .queue
        .sent(QueueName::MaxioCustomer)
        .iter()
        .map(|m| Envelope::parse(&m.body).unwrap().deal.id().to_string())
        .collect();
    assert_eq!(
        sent,
        [stack.id("GraduatedOpportunity").to_string()],
        "the other notification went through once"
    );
}

#[tokio::test]
async fn a_delayed_re_dispatch_that_can_never_be_enqueued_writes_its_reason_on_the_first_try() {
    let stack = LocalStack::start().await.unwrap();
    swell_volume_order(&stack, 1500);
    let opp = stack.id("VolumeOpportunity");
    let envelope = Envelope::new(
        "c-delayed",
        &dealbridge::snapshot::DealRef::Opportunity(opp.clone()),
        &stack.id("VolumeAccount"),
        None,
        Step::Dispatch {
            attempt: 1,
            not_before: 0,
            chain: None,
        },
    );
    let delivery = dealbridge::runner::Delivery {
        queue: QueueName::Delayed,
        message_id: "m-1".into(),
        receive_count: 1,
        deadline: None,
    };
    let outcome = dealbridge::delayed::handle_record(&envelope, &delivery, &stack.delayed).await;
    assert!(
        matches!(outcome, dealbridge::delayed::RecordOutcome::GaveUp { .. }),
        "{outcome:?}"
    );
    let record = stack.salesforce.record(opp.as_str()).unwrap();
    assert_eq!(record["Maxio_Sync_Status__c"], "Failed");
    assert!(
        record["Maxio_Sync_Error__c"]
            .as_str()
            .unwrap()
            .starts_with("DISPATCH_TOO_LARGE: "),
        "{record:?}"
    );
    assert_eq!(enqueued(&stack), 0);
}
