//! The WHMCS client against a wiremock server: the exact forms it sends, how answers and failures
//! become results and errors, which calls are retried, and order-list pagination.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use url::Url;
use wiremock::matchers::{body_string_contains, method, path};
use wiremock::{Mock, MockBuilder, MockServer, ResponseTemplate};

use super::client::{WhmcsClient, WhmcsClientSettings};
use super::error::{ApiErrorKind, WhmcsError};
use super::model::{AddOrder, GetOrdersQuery, OrderLine};
use super::services::{
    CancelType, ServiceStatus, UpdateClientProduct, is_existing_cancel_request,
    is_service_not_found,
};
use crate::retry::RetryPolicy;
use crate::secrets::InMemorySecrets;

const SECRET_NAME: &str = "dealbridge/whmcs";

fn settings(base: &str, timeout: Duration) -> WhmcsClientSettings {
    WhmcsClientSettings {
        base_url: Url::parse(base).unwrap(),
        secret_name: SECRET_NAME.into(),
        timeout,
        retry: RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(5),
        },
    }
}

fn client_with(base: &str, secret: &str, timeout: Duration) -> WhmcsClient {
    let secrets = InMemorySecrets::new();
    secrets.insert(SECRET_NAME, secret);
    WhmcsClient::new(settings(base, timeout), Arc::new(secrets)).unwrap()
}

fn client(server: &MockServer) -> WhmcsClient {
    client_with(
        &server.uri(),
        r#"{"identifier":"api-id","secret":"s3cr3t&="}"#,
        Duration::from_secs(5),
    )
}

fn seed_003_order() -> AddOrder {
    AddOrder {
        client_id: "1".into(),
        payment_method: "mailin".into(),
        lines: vec![
            OrderLine::new("185", "monthly"),
            OrderLine::new("242", "onetime"),
            OrderLine::new("246", "monthly"),
        ],
        promo_code: Some(String::new()),
        no_invoice: true,
        no_email: true,
        ..AddOrder::default()
    }
}

fn api() -> MockBuilder {
    Mock::given(method("POST")).and(path("/includes/api.php"))
}

fn answer(body: Value) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(body)
}

async fn bodies(server: &MockServer) -> Vec<String> {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|r| String::from_utf8(r.body).unwrap())
        .collect()
}

fn order_json(id: u64) -> Value {
    json!({"id": id.to_string(), "userid": "1", "status": "Active", "paymentmethod": "mailin",
           "lineitems": {"lineitem": [{"type": "product", "relid": id * 10}]}})
}

#[tokio::test]
async fn add_order_sends_exactly_the_seed_003_form_with_credentials_and_reads_the_answer() {
    let server = MockServer::start().await;
    api()
        .respond_with(answer(json!({
            "result": "success", "orderid": 12345, "serviceids": "67890,67891,67892",
            "addonids": "", "domainids": "", "invoiceid": 0
        })))
        .expect(1)
        .mount(&server)
        .await;
    let result = client(&server).add_order(&seed_003_order()).await.unwrap();
    assert_eq!(result.order_id, "12345");
    assert_eq!(result.service_ids, ["67890", "67891", "67892"]);
    assert_eq!(result.invoice_id, None);
    let requests = server.received_requests().await.unwrap();
    assert_eq!(
        requests[0]
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(
        bodies(&server).await,
        [concat!(
            "identifier=api-id&secret=s3cr3t%26%3D&responsetype=json",
            "&action=AddOrder&clientid=1&paymentmethod=mailin",
            "&pid%5B0%5D=185&pid%5B1%5D=242&pid%5B2%5D=246",
            "&billingcycle%5B0%5D=monthly&billingcycle%5B1%5D=onetime&billingcycle%5B2%5D=monthly",
            "&qty%5B0%5D=1&qty%5B1%5D=1&qty%5B2%5D=1",
            "&noinvoice=1&noemail=1&promocode=",
            "&configoptions%5B0%5D=&configoptions%5B1%5D=&configoptions%5B2%5D=",
            "&customfields%5B0%5D=&customfields%5B1%5D=&customfields%5B2%5D="
        )]
    );
}

#[tokio::test]
async fn the_access_key_is_sent_when_the_secret_has_one() {
    let server = MockServer::start().await;
    api()
        .respond_with(answer(json!({"result": "success", "totalresults": 0})))
        .mount(&server)
        .await;
    let client = client_with(
        &server.uri(),
        r#"{"identifier":"i","secret":"s","accesskey":"k!@#"}"#,
        Duration::from_secs(5),
    );
    client.payment_methods().await.unwrap();
    assert_eq!(
        bodies(&server).await,
        ["identifier=i&secret=s&accesskey=k%21%40%23&responsetype=json&action=GetPaymentMethods"]
    );
}

#[tokio::test]
async fn an_error_result_with_http_200_is_an_api_error_with_its_code_and_is_not_retried() {
    let server = MockServer::start().await;
    api()
        .respond_with(answer(
            json!({"result": "error", "message": "Client ID Not Found"}),
        ))
        .mount(&server)
        .await;
    let e = client(&server)
        .add_order(&seed_003_order())
        .await
        .unwrap_err();
    assert!(matches!(&e, WhmcsError::Api { action, message }
            if action == "AddOrder" && message == "Client ID Not Found"));
    assert_eq!(e.api_kind(), Some(ApiErrorKind::ClientNotFound));
    assert_eq!(e.to_string(), "WHMCS_CLIENT_NOT_FOUND: Client ID Not Found");
    assert!(!e.is_ambiguous());
    assert_eq!(bodies(&server).await.len(), 1);
}

#[tokio::test]
async fn a_403_is_an_authentication_error_and_is_not_retried() {
    let server = MockServer::start().await;
    api()
        .respond_with(
            ResponseTemplate::new(403)
                .set_body_json(json!({"result": "error", "message": "Authentication Failed"})),
        )
        .mount(&server)
        .await;
    let e = client(&server)
        .get_orders(&GetOrdersQuery::default())
        .await
        .unwrap_err();
    assert!(matches!(e, WhmcsError::Authentication { status: 403, .. }));
    assert_eq!(e.code(), "WHMCS_AUTHENTICATION_FAILED");
    assert!(!e.to_string().contains("s3cr3t"));
    assert_eq!(bodies(&server).await.len(), 1);
}

#[tokio::test]
async fn a_503_on_get_orders_is_retried_and_succeeds() {
    let server = MockServer::start().await;
    api()
        .respond_with(ResponseTemplate::new(503).insert_header("Retry-After", "0"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    api()
        .respond_with(answer(json!({
            "result": "success", "totalresults": "1", "startnumber": 0, "numreturned": 1,
            "orders": {"order": [order_json(12)]}
        })))
        .mount(&server)
        .await;
    let page = client(&server)
        .get_orders(&GetOrdersQuery {
            id: Some("12".into()),
            ..GetOrdersQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(page.orders[0].id, "12");
    assert_eq!(page.orders[0].service_ids(), ["120"]);
    assert_eq!(bodies(&server).await.len(), 2);
}

#[tokio::test]
async fn a_timed_out_read_is_retried() {
    let server = MockServer::start().await;
    api()
        .respond_with(answer(json!({"result": "success"})).set_delay(Duration::from_millis(1500)))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    api()
        .respond_with(answer(
            json!({"result": "success", "paymentmethods": {"paymentmethod": [
                {"module": "mailin", "displayname": "Mail In Payment"}
            ]}}),
        ))
        .mount(&server)
        .await;
    let client = client_with(
        &server.uri(),
        r#"{"identifier":"i","secret":"s"}"#,
        Duration::from_millis(300),
    );
    let methods = client.payment_methods().await.unwrap();
    assert_eq!(methods[0].module, "mailin");
    assert_eq!(bodies(&server).await.len(), 2);
}

#[tokio::test]
async fn a_timed_out_add_order_is_not_retried_and_is_ambiguous() {
    let server = MockServer::start().await;
    api()
        .respond_with(
            answer(json!({"result": "success", "orderid": "1"}))
                .set_delay(Duration::from_millis(1500)),
        )
        .mount(&server)
        .await;
    let client = client_with(
        &server.uri(),
        r#"{"identifier":"i","secret":"s"}"#,
        Duration::from_millis(300),
    );
    let e = client.add_order(&seed_003_order()).await.unwrap_err();
    assert!(e.is_ambiguous(), "{e}");
    assert!(!e.is_retryable());
    assert_eq!(e.code(), "WHMCS_ANSWER_LOST");
    assert!(matches!(&e, WhmcsError::AnswerLost { action, cause }
            if action == "AddOrder" && matches!(**cause, WhmcsError::Transport(_))));
    assert_eq!(bodies(&server).await.len(), 1);
}

#[tokio::test]
async fn a_502_or_an_unreadable_answer_to_add_order_is_ambiguous_and_not_retried() {
    for response in [
        ResponseTemplate::new(502).set_body_string("Bad Gateway"),
        ResponseTemplate::new(200).set_body_string("<b>Fatal error</b>: out of memory"),
        ResponseTemplate::new(200).set_body_json(json!({"result": "success"})),
    ] {
        let server = MockServer::start().await;
        api().respond_with(response).mount(&server).await;
        let e = client(&server)
            .add_order(&seed_003_order())
            .await
            .unwrap_err();
        assert!(e.is_ambiguous(), "{e}");
        assert_eq!(bodies(&server).await.len(), 1, "{e}");
    }
}

#[tokio::test]
async fn a_429_or_503_on_add_order_is_retried_because_it_was_not_processed() {
    let server = MockServer::start().await;
    api()
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "0"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    api()
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .with_priority(2)
        .mount(&server)
        .await;
    api()
        .respond_with(answer(json!({
            "result": "success", "orderid": "12", "serviceids": "34,35,36", "invoiceid": "56"
        })))
        .mount(&server)
        .await;
    let result = client(&server).add_order(&seed_003_order()).await.unwrap();
    assert_eq!(result.order_id, "12");
    assert_eq!(result.invoice_id.as_deref(), Some("56"));
    let sent = bodies(&server).await;
    assert_eq!(sent.len(), 3);
    assert!(sent.iter().all(|b| b == &sent[0]));
}

#[tokio::test]
async fn an_add_order_that_cannot_connect_is_retried_and_is_not_ambiguous() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let client = client_with(
        &format!("http://127.0.0.1:{port}"),
        r#"{"identifier":"i","secret":"s"}"#,
        Duration::from_secs(2),
    );
    let e = client.add_order(&seed_003_order()).await.unwrap_err();
    assert!(matches!(e, WhmcsError::Connect(_)), "{e}");
    assert!(!e.is_ambiguous());
    assert_eq!(e.code(), "WHMCS_UNREACHABLE");
}

#[tokio::test]
async fn an_invalid_order_or_missing_credentials_send_nothing() {
    let server = MockServer::start().await;
    api()
        .respond_with(answer(json!({"result": "success"})))
        .mount(&server)
        .await;
    let mut order = seed_003_order();
    order.lines[0].billing_cycle = "Monthly".into();
    let e = client(&server).add_order(&order).await.unwrap_err();
    assert_eq!(e.code(), "WHMCS_INVALID_REQUEST");
    let no_secret = WhmcsClient::new(
        settings(&server.uri(), Duration::from_secs(1)),
        Arc::new(InMemorySecrets::new()),
    )
    .unwrap();
    let e = no_secret.payment_methods().await.unwrap_err();
    assert_eq!(e.code(), "WHMCS_CREDENTIALS");
    assert!(!e.is_retryable());
    let bad_secret = client_with(
        &server.uri(),
        r#"{"identifier":"i"}"#,
        Duration::from_secs(1),
    );
    assert_eq!(
        bad_secret.payment_methods().await.unwrap_err().code(),
        "WHMCS_CREDENTIALS"
    );
    assert!(bodies(&server).await.is_empty());
}

#[tokio::test]
async fn orders_for_client_follows_limitstart_over_two_pages() {
    let server = MockServer::start().await;
    // The server gives 2 orders a page whatever limitnum asks for.
    api()
        .and(body_string_contains("action=GetOrders"))
        .and(body_string_contains("userid=1&limitstart=0&"))
        .respond_with(answer(json!({
            "result": "success", "totalresults": "3", "startnumber": "0", "numreturned": "2",
            "orders": {"order": [order_json(13), order_json(12)]}
        })))
        .expect(1)
        .mount(&server)
        .await;
    api()
        .and(body_string_contains("action=GetOrders"))
        .and(body_string_contains("userid=1&limitstart=2&"))
        .respond_with(answer(json!({
            "result": "success", "totalresults": 3, "startnumber": 2, "numreturned": 1,
            "orders": {"order": [order_json(11)]}
        })))
        .expect(1)
        .mount(&server)
        .await;
    let orders = client(&server).orders_for_client("1").await.unwrap();
    let ids: Vec<_> = orders.iter().map(|o| o.id.as_str()).collect();
    assert_eq!(ids, ["13", "12", "11"]);
    let sent = bodies(&server).await;
    assert_eq!(sent.len(), 2);
    assert!(sent[0].ends_with("action=GetOrders&userid=1&limitstart=0&limitnum=100"));
}

#[tokio::test]
async fn orders_for_client_stops_on_an_empty_list_or_a_server_ignoring_limitstart() {
    let server = MockServer::start().await;
    api()
        .respond_with(answer(
            json!({"result": "success", "totalresults": 0, "orders": ""}),
        ))
        .mount(&server)
        .await;
    assert!(
        client(&server)
            .orders_for_client("1")
            .await
            .unwrap()
            .is_empty()
    );

    let server = MockServer::start().await;
    // Claims 500 orders but always returns the same first page.
    api()
        .respond_with(answer(json!({
            "result": "success", "totalresults": 500,
            "orders": {"order": [order_json(2), order_json(1)]}
        })))
        .mount(&server)
        .await;
    let orders = client(&server).orders_for_client("1").await.unwrap();
    assert_eq!(orders.len(), 2);
    assert_eq!(bodies(&server).await.len(), 2);
}

#[tokio::test]
async fn accept_order_sends_its_flags_and_a_repeat_is_order_not_pending() {
    let server = MockServer::start().await;
    api()
        .respond_with(answer(json!({"result": "success"})))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    api()
        .respond_with(answer(json!({
            "result": "error", "message": "Order ID not found or Status not Pending"
        })))
        .mount(&server)
        .await;
    let client = client(&server);
    client
        .accept_order("12", Some(true), Some(false))
        .await
        .unwrap();
    let e = client.accept_order("12", None, None).await.unwrap_err();
    assert_eq!(e.code(), "WHMCS_ORDER_NOT_PENDING");
    let sent = bodies(&server).await;
    assert!(sent[0].ends_with("action=AcceptOrder&orderid=12&autosetup=1&sendemail=0"));
    assert!(sent[1].ends_with("action=AcceptOrder&orderid=12"));
}

#[tokio::test]
async fn client_details_and_order_lookups_are_read() {
    let server = MockServer::start().await;
    api()
        .and(body_string_contains("action=GetClientsDetails&clientid=1"))
        .respond_with(answer(json!({
            "result": "success",
            "client": {"id": "1", "client_id": "1", "email": "ada@example.com", "status": "Active"},
            "id": "1", "email": "ada@example.com"
        })))
        .mount(&server)
        .await;
    api()
        .and(body_string_contains("action=GetClientsDetails&clientid=9"))
        .respond_with(answer(
            json!({"result": "error", "message": "Client Not Found"}),
        ))
        .mount(&server)
        .await;
    api()
        .and(body_string_contains("action=GetOrders&id=12"))
        .respond_with(answer(json!({
            "result": "success", "totalresults": 1, "orders": {"order": [order_json(12)]}
        })))
        .mount(&server)
        .await;
    api()
        .and(body_string_contains("action=GetOrders&id=99"))
        .respond_with(answer(
            json!({"result": "success", "totalresults": 0, "orders": []}),
        ))
        .mount(&server)
        .await;
    let client = client(&server);
    let details = client.client_details("1").await.unwrap();
    assert_eq!(
        (details.id.as_str(), details.status.as_str()),
        ("1", "Active")
    );
    let e = client.client_details("9").await.unwrap_err();
    assert_eq!(e.code(), "WHMCS_CLIENT_NOT_FOUND");
    assert_eq!(
        client.order("12").await.unwrap().map(|o| o.id),
        Some("12".into())
    );
    assert_eq!(client.order("99").await.unwrap(), None);
}

#[tokio::test]
async fn get_currencies_is_sent_bare_and_read_with_the_clients_currency_id() {
    let server = MockServer::start().await;
    api()
        .and(body_string_contains("action=GetClientsDetails&clientid=4"))
        .respond_with(answer(json!({
            "result": "success",
            "client": {"id": 4, "status": "Active", "currency": 2},
        })))
        .mount(&server)
        .await;
    api()
        .and(body_string_contains("action=GetCurrencies"))
        .respond_with(answer(json!({
            "result": "success", "totalresults": "2",
            "currencies": {"currency": [
                {"id": "1", "code": "JPY", "prefix": "¥", "suffix": " JPY", "format": "1", "rate": "1.00000"},
                {"id": "2", "code": "USD", "prefix": "$", "suffix": " USD", "format": "2", "rate": "0.00670"}
            ]}
        })))
        .mount(&server)
        .await;
    let client = client(&server);
    let details = client.client_details("4").await.unwrap();
    assert_eq!(details.currency_id.as_deref(), Some("2"));
    assert_eq!(details.currency_code, None);
    let currencies = client.currencies().await.unwrap();
    let codes: Vec<(&str, &str)> = currencies
        .iter()
        .map(|c| (c.id.as_str(), c.code.as_str()))
        .collect();
    assert_eq!(codes, [("1", "JPY"), ("2", "USD")]);
    let sent = bodies(&server).await;
    assert!(
        sent[1].ends_with("responsetype=json&action=GetCurrencies"),
        "{}",
        sent[1]
    );
}

#[tokio::test]
async fn add_cancel_request_sends_its_type_and_reason_and_reads_the_refusals() {
    let server = MockServer::start().await;
    api()
        .and(body_string_contains(
            "action=AddCancelRequest&serviceid=101&",
        ))
        .respond_with(answer(
            json!({"result": "success", "serviceid": "101", "userid": "1"}),
        ))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    api()
        .and(body_string_contains(
            "action=AddCancelRequest&serviceid=101&",
        ))
        .respond_with(answer(json!({
            "result": "error", "message": "Existing Cancellation Request Exists"
        })))
        .mount(&server)
        .await;
    api()
        .and(body_string_contains(
            "action=AddCancelRequest&serviceid=999&",
        ))
        .respond_with(answer(
            json!({"result": "error", "message": "Service ID Not Found"}),
        ))
        .mount(&server)
        .await;
    let client = client(&server);
    let done = client
        .add_cancel_request("101", CancelType::EndOfBillingPeriod, "Case 500")
        .await
        .unwrap();
    assert_eq!(
        (done.service_id.as_str(), done.user_id.as_deref()),
        ("101", Some("1"))
    );
    let again = client
        .add_cancel_request("101", CancelType::Immediate, "")
        .await
        .unwrap_err();
    assert!(is_existing_cancel_request(&again), "{again}");
    assert!(!again.is_retryable());
    let missing = client
        .add_cancel_request("999", CancelType::Immediate, "x")
        .await
        .unwrap_err();
    assert!(is_service_not_found(&missing), "{missing}");
    assert!(!missing.is_retryable());
    let invalid = client
        .add_cancel_request("abc", CancelType::Immediate, "x")
        .await
        .unwrap_err();
    assert_eq!(invalid.code(), "WHMCS_INVALID_REQUEST");
    let sent = bodies(&server).await;
    assert_eq!(sent.len(), 3, "the invalid id is not sent");
    assert!(sent[0].ends_with(
        "action=AddCancelRequest&serviceid=101&type=End+of+Billing+Period&reason=Case+500"
    ));
    assert!(sent[1].ends_with("action=AddCancelRequest&serviceid=101&type=Immediate"));
}

#[tokio::test]
async fn cancelled_packages_follow_limitstart_and_accept_the_flattened_shape() {
    let server = MockServer::start().await;
    let package = |id: u64| json!({"id": id.to_string(), "relid": (100 + id).to_string(), "type": "Immediate"});
    let first: Vec<Value> = (1..=100).map(package).collect();
    api()
        .and(body_string_contains(
            "action=GetCancelledPackages&limitstart=0&limitnum=100",
        ))
        .respond_with(answer(json!({
            "result": "success", "totalresults": 101, "startnumber": 0, "numreturned": 100,
            "packages": {"package": first}
        })))
        .mount(&server)
        .await;
    api()
        .and(body_string_contains(
            "action=GetCancelledPackages&limitstart=100&limitnum=100",
        ))
        .respond_with(answer(json!({
            "result": "success", "totalresults": 101, "startnumber": 100, "numreturned": 1,
            "packages[package][0][id]": "101", "packages[package][0][relid]": "201",
            "packages[package][0][type]": "End of Billing Period"
        })))
        .mount(&server)
        .await;
    let all = client(&server).cancelled_packages().await.unwrap();
    assert_eq!(all.len(), 101);
    assert_eq!(all[100].relid, "201");
    assert_eq!(all[100].cancel_type(), Some(CancelType::EndOfBillingPeriod));
    assert_eq!(bodies(&server).await.len(), 2);
}

#[tokio::test]
async fn update_client_product_sends_only_what_changes_and_client_product_reads_the_status() {
    let server = MockServer::start().await;
    api()
        .and(body_string_contains("action=UpdateClientProduct"))
        .respond_with(answer(json!({"result": "success", "serviceid": 101})))
        .mount(&server)
        .await;
    api()
        .and(body_string_contains(
            "action=GetClientsProducts&serviceid=101",
        ))
        .respond_with(answer(json!({
            "result": "success", "serviceid": "101", "totalresults": 1,
            "products": {"product": [{"id": "101", "clientid": "1", "pid": "185",
                "regdate": "2026-03-10", "nextduedate": "2026-04-10",
                "terminationdate": "2026-04-10", "status": "Cancelled"}]}
        })))
        .mount(&server)
        .await;
    api()
        .and(body_string_contains(
            "action=GetClientsProducts&serviceid=999",
        ))
        .respond_with(answer(json!({
            "result": "success", "serviceid": "999", "totalresults": 0
        })))
        .mount(&server)
        .await;
    let client = client(&server);
    let mut update = UpdateClientProduct::new("101");
    update.status = Some(ServiceStatus::Cancelled);
    update.termination_date = chrono::NaiveDate::from_ymd_opt(2026, 4, 10);
    update.notes = Some("Case 500".into());
    assert_eq!(client.update_client_product(&update).await.unwrap(), "101");
    let service = client.client_product("101").await.unwrap().unwrap();
    assert_eq!(service.service_status(), Some(ServiceStatus::Cancelled));
    assert_eq!(
        service.termination_date,
        chrono::NaiveDate::from_ymd_opt(2026, 4, 10)
    );
    assert_eq!(client.client_product("999").await.unwrap(), None);
    let sent = bodies(&server).await;
    assert!(
        sent[0].ends_with(
            "action=UpdateClientProduct&serviceid=101&status=Cancelled&terminationdate=2026-04-10&notes=Case+500"
        ),
        "{}",
        sent[0]
    );
    let nothing = client
        .update_client_product(&UpdateClientProduct::new("101"))
        .await
        .unwrap_err();
    assert_eq!(nothing.code(), "WHMCS_INVALID_REQUEST");
    assert_eq!(bodies(&server).await.len(), 3);
}
