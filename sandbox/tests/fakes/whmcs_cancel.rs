//! The fake WHMCS installation after the order, through dealbridge's WHMCS client where it can
//! be: AddCancelRequest and its refusals, the daily cron carrying out `Immediate` and `End of
//! Billing Period` requests as the virtual clock crosses midnight (or on demand), the
//! automation switch, GetCancelledPackages and its pages, UpdateClientProduct, and the statuses
//! GetClientsProducts shows as a service moves.

use std::sync::Arc;
use std::time::Duration;

use chrono::{NaiveDate, TimeZone, Utc};
use dealbridge::retry::RetryPolicy;
use dealbridge::secrets::InMemorySecrets;
use dealbridge::whmcs::model::{AddOrder, OrderLine};
use dealbridge::whmcs::{
    CancelType, ServiceStatus, UpdateClientProduct, WhmcsClient, WhmcsClientSettings,
    is_existing_cancel_request, is_service_not_found,
};
use dealbridge_sandbox::whmcs::php::encode_field;
use dealbridge_sandbox::whmcs::{
    CancelType as FakeCancelType, OrderStatus, PhpArray, PhpValue,
    ServiceStatus as FakeServiceStatus, WhmcsSandbox, WhmcsSettings,
};
use serde_json::{Value, json};

const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(24 * 3600);

struct Whmcs {
    fake: WhmcsSandbox,
    client: WhmcsClient,
    http: reqwest::Client,
}

impl Whmcs {
    /// An installation whose clock reads 2026-03-10 12:00 UTC.
    async fn start(settings: WhmcsSettings) -> Whmcs {
        let fake = WhmcsSandbox::start(settings).await.expect("sandbox starts");
        fake.set_clock(Utc.with_ymd_and_hms(2026, 3, 10, 12, 0, 0).unwrap());
        let s = fake.settings();
        let secrets = InMemorySecrets::new();
        secrets.insert(
            "whmcs",
            json!({"identifier": s.identifier, "secret": s.secret}).to_string(),
        );
        let client = WhmcsClient::new(
            WhmcsClientSettings {
                base_url: url::Url::parse(&fake.base_url()).expect("url"),
                secret_name: "whmcs".into(),
                timeout: Duration::from_secs(5),
                retry: RetryPolicy::immediate(1),
            },
            Arc::new(secrets),
        )
        .expect("client");
        Whmcs {
            fake,
            client,
            http: reqwest::Client::new(),
        }
    }

    /// Calls `action` with the credentials, `responsetype=json` and `extra`.
    async fn call(&self, action: &str, extra: &[(&str, &str)]) -> Value {
        let s = self.fake.settings();
        let mut pairs = vec![
            ("action", action),
            ("identifier", s.identifier.as_str()),
            ("secret", s.secret.as_str()),
            ("responsetype", "json"),
        ];
        pairs.extend_from_slice(extra);
        let response = self
            .http
            .post(self.fake.api_url())
            .form(&pairs)
            .send()
            .await
            .expect("request");
        assert_eq!(response.status().as_u16(), 200);
        response.json().await.expect("JSON")
    }

    /// An accepted monthly Internet Gold order for client 1; its one service.
    async fn active_service(&self) -> String {
        let placed = self
            .client
            .add_order(&AddOrder {
                client_id: "1".into(),
                payment_method: "mailin".into(),
                lines: vec![OrderLine::new("185", "monthly")],
                no_invoice: true,
                no_email: true,
                ..AddOrder::default()
            })
            .await
            .expect("order");
        self.client
            .accept_order(&placed.order_id, Some(true), Some(false))
            .await
            .expect("accepted");
        placed.service_ids[0].clone()
    }

    async fn status(&self, service_id: &str) -> Option<ServiceStatus> {
        self.client
            .client_product(service_id)
            .await
            .expect("read")
            .expect("the service exists")
            .service_status()
    }
}

fn id(text: &str) -> u64 {
    text.parse().expect("an id")
}

#[tokio::test]
async fn a_cancel_request_is_recorded_once_and_refused_with_the_documented_texts() {
    let whmcs = Whmcs::start(WhmcsSettings::default()).await;
    let service = whmcs.active_service().await;
    let done = whmcs
        .client
        .add_cancel_request(
            &service,
            CancelType::EndOfBillingPeriod,
            "Case 00001026: moving",
        )
        .await
        .expect("requested");
    assert_eq!(done.service_id, service);
    assert_eq!(done.user_id.as_deref(), Some("1"));
    let requests = whmcs.fake.cancel_requests();
    assert_eq!(requests.len(), 1);
    let r = &requests[0];
    assert_eq!(r.service_id, id(&service));
    assert_eq!(r.kind, FakeCancelType::EndOfBillingPeriod);
    assert_eq!(r.reason, "Case 00001026: moving");
    assert!(r.date.starts_with("2026-03-10 12:00"), "{}", r.date);
    assert_eq!(
        (r.created_at.as_str(), r.processed_at.clone()),
        (r.date.as_str(), None)
    );

    let again = whmcs
        .client
        .add_cancel_request(&service, CancelType::Immediate, "")
        .await
        .unwrap_err();
    assert!(is_existing_cancel_request(&again), "{again}");
    assert_eq!(again.message(), "Existing Cancellation Request Exists");
    assert!(!again.is_retryable());
    let missing = whmcs
        .client
        .add_cancel_request("9999", CancelType::Immediate, "")
        .await
        .unwrap_err();
    assert!(is_service_not_found(&missing), "{missing}");
    for extra in [vec![], vec![("serviceid", "0")], vec![("serviceid", "abc")]] {
        let body = whmcs.call("AddCancelRequest", &extra).await;
        assert_eq!(
            body,
            json!({"result": "error", "message": "Service ID Not Found"})
        );
    }
    let other = whmcs.active_service().await;
    let body = whmcs
        .call(
            "AddCancelRequest",
            &[("serviceid", &other), ("type", "Tomorrow")],
        )
        .await;
    assert_eq!(body["result"], "error");
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("Immediate")),
        "{body}"
    );
    // ASSUMED by the fake: without a type, the request waits for the end of the period.
    let body = whmcs
        .call("AddCancelRequest", &[("serviceid", &other)])
        .await;
    assert_eq!(
        body,
        json!({"result": "success", "serviceid": other, "userid": "1"})
    );
    assert_eq!(
        whmcs.fake.cancel_requests()[1].kind,
        FakeCancelType::EndOfBillingPeriod
    );
    assert_eq!(whmcs.fake.action_count("AddCancelRequest"), 8);
}

#[tokio::test]
async fn an_immediate_request_is_carried_out_when_the_clock_crosses_midnight() {
    let whmcs = Whmcs::start(WhmcsSettings::default()).await;
    let service = whmcs.active_service().await;
    let order = whmcs.fake.service(id(&service)).expect("service").order_id;
    whmcs
        .client
        .add_cancel_request(&service, CancelType::Immediate, "Case 1")
        .await
        .expect("requested");
    // The same afternoon: the cron has not run since.
    whmcs.fake.advance_clock(6 * HOUR);
    assert_eq!(whmcs.status(&service).await, Some(ServiceStatus::Active));
    // Past midnight: the cron ran once, before this read was answered.
    whmcs.fake.advance_clock(7 * HOUR);
    let read = whmcs
        .client
        .client_product(&service)
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(read.service_status(), Some(ServiceStatus::Cancelled));
    assert_eq!(read.termination_date, NaiveDate::from_ymd_opt(2026, 3, 11));
    assert_eq!(read.regdate, NaiveDate::from_ymd_opt(2026, 3, 10));
    let r = &whmcs.fake.cancel_requests()[0];
    assert!(
        r.processed_at
            .as_deref()
            .is_some_and(|p| p.starts_with("2026-03-11")),
        "{r:?}"
    );
    // GetOrders shows the line's service as it now is.
    let order = whmcs
        .client
        .order(&order.to_string())
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(order.lineitems[0].status.as_deref(), Some("Cancelled"));
    // The request stays listed.
    assert_eq!(
        whmcs.client.cancelled_packages().await.expect("list").len(),
        1
    );
}

#[tokio::test]
async fn an_end_of_billing_period_request_waits_for_the_next_due_date() {
    let whmcs = Whmcs::start(WhmcsSettings::default()).await;
    let service = whmcs.active_service().await;
    let mut update = UpdateClientProduct::new(service.clone());
    update.next_due_date = NaiveDate::from_ymd_opt(2026, 4, 10);
    whmcs
        .client
        .update_client_product(&update)
        .await
        .expect("updated");
    whmcs
        .client
        .add_cancel_request(&service, CancelType::EndOfBillingPeriod, "Case 2")
        .await
        .expect("requested");
    // Every midnight until the due date (2026-03-10 12:00 → 2026-04-09 12:00): nothing.
    whmcs.fake.advance_clock(30 * DAY);
    assert_eq!(whmcs.status(&service).await, Some(ServiceStatus::Active));
    assert!(whmcs.fake.run_cron().is_empty());
    // Past 2026-04-10 00:00: the cron on the due date cancels it.
    whmcs.fake.advance_clock(13 * HOUR);
    let read = whmcs
        .client
        .client_product(&service)
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(read.service_status(), Some(ServiceStatus::Cancelled));
    assert_eq!(read.termination_date, NaiveDate::from_ymd_opt(2026, 4, 10));
    assert_eq!(read.next_due_date, NaiveDate::from_ymd_opt(2026, 4, 10));
}

#[tokio::test]
async fn with_the_automation_off_requests_wait_until_it_is_on_again() {
    let whmcs = Whmcs::start(WhmcsSettings {
        cancellation_automation: false,
        ..WhmcsSettings::default()
    })
    .await;
    let service = whmcs.active_service().await;
    whmcs
        .client
        .add_cancel_request(&service, CancelType::Immediate, "Case 3")
        .await
        .expect("requested");
    whmcs.fake.advance_clock(3 * DAY);
    assert_eq!(whmcs.status(&service).await, Some(ServiceStatus::Active));
    assert!(whmcs.fake.run_cron().is_empty());
    assert_eq!(whmcs.fake.cancel_requests()[0].processed_at, None);
    whmcs.fake.set_cancellation_automation(true);
    // The next run (on demand here, as a cron run at any hour would) carries it out.
    assert_eq!(whmcs.fake.run_cron(), vec![id(&service)]);
    assert_eq!(whmcs.status(&service).await, Some(ServiceStatus::Cancelled));
    // A second run finds nothing left to do.
    assert!(whmcs.fake.run_cron().is_empty());
}

#[tokio::test]
async fn cancelled_packages_are_listed_in_pages_and_read_whole_by_the_client() {
    let whmcs = Whmcs::start(WhmcsSettings::default()).await;
    let empty = whmcs.call("GetCancelledPackages", &[]).await;
    assert_eq!(
        empty,
        json!({"result": "success", "totalresults": 0, "startnumber": 0, "numreturned": 0})
    );
    assert!(
        whmcs
            .client
            .cancelled_packages()
            .await
            .expect("list")
            .is_empty()
    );
    let mut services = Vec::new();
    for (i, kind) in [
        CancelType::Immediate,
        CancelType::EndOfBillingPeriod,
        CancelType::Immediate,
    ]
    .into_iter()
    .enumerate()
    {
        let service = whmcs.active_service().await;
        whmcs
            .client
            .add_cancel_request(&service, kind, &format!("reason {i}"))
            .await
            .expect("requested");
        services.push(service);
    }
    let page = whmcs
        .call(
            "GetCancelledPackages",
            &[("limitstart", "0"), ("limitnum", "2")],
        )
        .await;
    assert_eq!(
        (page["totalresults"].clone(), page["numreturned"].clone()),
        (json!(3), json!(2))
    );
    let first = &page["packages"]["package"][0];
    assert_eq!(first["id"], "1");
    assert_eq!(first["relid"], services[0].as_str());
    assert_eq!(first["type"], "Immediate");
    assert_eq!(first["reason"], "reason 0");
    for field in ["date", "created_at", "updated_at"] {
        assert!(
            first[field]
                .as_str()
                .is_some_and(|d| d.starts_with("2026-03-10 ")),
            "{field}: {first}"
        );
    }
    let rest = whmcs
        .call(
            "GetCancelledPackages",
            &[("limitstart", "2"), ("limitnum", "2")],
        )
        .await;
    assert_eq!(rest["startnumber"], "2");
    assert_eq!(
        rest["packages"]["package"].as_array().map(Vec::len),
        Some(1)
    );

    let all = whmcs.client.cancelled_packages().await.expect("list");
    let relids: Vec<&str> = all.iter().map(|p| p.relid.as_str()).collect();
    assert_eq!(
        relids,
        services.iter().map(String::as_str).collect::<Vec<_>>()
    );
    assert_eq!(all[1].cancel_type(), Some(CancelType::EndOfBillingPeriod));
    assert_eq!(all[2].reason.as_deref(), Some("reason 2"));
    assert_eq!(whmcs.fake.action_count("GetCancelledPackages"), 5);
}

#[tokio::test]
async fn update_client_product_changes_what_is_sent_and_nothing_else() {
    let whmcs = Whmcs::start(WhmcsSettings::default()).await;
    let service = whmcs.active_service().await;
    let before = whmcs.fake.service(id(&service)).expect("service");
    let mut update = UpdateClientProduct::new(service.clone());
    update.status = Some(ServiceStatus::Suspended);
    update.next_due_date = NaiveDate::from_ymd_opt(2026, 4, 10);
    update.termination_date = NaiveDate::from_ymd_opt(2026, 5, 31);
    update.recurring_amount = Some(rust_decimal::Decimal::new(499_000, 2));
    update.notes = Some("Case 4: to end in May".into());
    update.config_options = Some(
        json!({"12": 45, "13": {"optionid": 50, "qty": 3}})
            .as_object()
            .cloned()
            .expect("object"),
    );
    assert_eq!(
        whmcs
            .client
            .update_client_product(&update)
            .await
            .expect("updated"),
        service
    );
    let read = whmcs
        .client
        .client_product(&service)
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(read.service_status(), Some(ServiceStatus::Suspended));
    assert_eq!(read.next_due_date, NaiveDate::from_ymd_opt(2026, 4, 10));
    assert_eq!(read.termination_date, NaiveDate::from_ymd_opt(2026, 5, 31));
    assert_eq!(
        read.recurring_amount,
        Some(rust_decimal::Decimal::new(499_000, 2))
    );
    assert_eq!(read.notes.as_deref(), Some("Case 4: to end in May"));
    assert_eq!(read.regdate, NaiveDate::from_ymd_opt(2026, 3, 10));
    let after = whmcs.fake.service(id(&service)).expect("service");
    assert_eq!(after.config_options.get(12), Some(&PhpValue::Int(45)));
    assert_eq!(
        after.config_options.get(13),
        Some(&PhpValue::Array(
            PhpArray::new().with("optionid", 50).with("qty", 3)
        ))
    );
    assert_eq!(
        (after.first_payment_amount, after.domain.clone(), after.pid),
        (before.first_payment_amount, before.domain, before.pid)
    );
    // GetClientsProducts shows a quantity option's quantity.
    let raw = whmcs
        .call("GetClientsProducts", &[("serviceid", &service)])
        .await;
    let options = &raw["products"]["product"][0]["configoptions"]["configoption"];
    assert_eq!(options[1]["value"], "3");

    // Only the option sent changes; one that does not decode is ignored and recorded.
    let one = encode_field(&PhpArray::new().with(12, 46));
    whmcs
        .call(
            "UpdateClientProduct",
            &[("serviceid", &service), ("configoptions", &one)],
        )
        .await;
    let after = whmcs.fake.service(id(&service)).expect("service");
    assert_eq!(after.config_options.len(), 2);
    assert_eq!(after.config_options.get(12), Some(&PhpValue::Int(46)));
    let body = whmcs
        .call(
            "UpdateClientProduct",
            &[("serviceid", &service), ("configoptions", "%%%")],
        )
        .await;
    assert_eq!(body["result"], "success");
    let after = whmcs.fake.service(id(&service)).expect("service");
    assert!(after.config_options_error.is_some());
    assert_eq!(after.config_options.len(), 2);

    // Refusals: the documented one, and the fake's own (ASSUMED) for unreadable values.
    let missing = whmcs
        .client
        .update_client_product(&{
            let mut u = UpdateClientProduct::new("9999");
            u.notes = Some("x".into());
            u
        })
        .await
        .unwrap_err();
    assert!(is_service_not_found(&missing), "{missing}");
    for (name, value) in [
        ("status", "Gone"),
        ("nextduedate", "10/04/2026"),
        ("recurringamount", "lots"),
    ] {
        let body = whmcs
            .call(
                "UpdateClientProduct",
                &[("serviceid", &service), (name, value)],
            )
            .await;
        assert_eq!(body["result"], "error", "{name}: {body}");
    }
    assert_eq!(whmcs.status(&service).await, Some(ServiceStatus::Suspended));
    // Setting the status runs no cron work: a waiting request stays waiting.
    whmcs.fake.set_cancellation_automation(false);
    whmcs
        .client
        .add_cancel_request(&service, CancelType::Immediate, "")
        .await
        .expect("requested");
    let mut cancel = UpdateClientProduct::new(service.clone());
    cancel.status = Some(ServiceStatus::Cancelled);
    whmcs
        .client
        .update_client_product(&cancel)
        .await
        .expect("updated");
    assert_eq!(whmcs.status(&service).await, Some(ServiceStatus::Cancelled));
    assert_eq!(whmcs.fake.cancel_requests()[0].processed_at, None);
}

#[tokio::test]
async fn get_clients_products_shows_every_status_a_service_moves_through() {
    let whmcs = Whmcs::start(WhmcsSettings::default()).await;
    let placed = whmcs
        .client
        .add_order(&AddOrder {
            client_id: "1".into(),
            payment_method: "mailin".into(),
            lines: vec![OrderLine::new("185", "monthly")],
            no_invoice: true,
            ..AddOrder::default()
        })
        .await
        .expect("order");
    let service = placed.service_ids[0].clone();
    let read = whmcs
        .client
        .client_product(&service)
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(read.service_status(), Some(ServiceStatus::Pending));
    assert_eq!(read.next_due_date, NaiveDate::from_ymd_opt(2026, 3, 10));
    assert_eq!(read.termination_date, None);
    let raw = whmcs
        .call("GetClientsProducts", &[("serviceid", &service)])
        .await;
    let product = &raw["products"]["product"][0];
    assert_eq!(
        (
            product["regdate"].clone(),
            product["terminationdate"].clone()
        ),
        (json!("2026-03-10"), json!("0000-00-00"))
    );
    whmcs
        .client
        .accept_order(&placed.order_id, None, None)
        .await
        .expect("accepted");
    assert_eq!(whmcs.status(&service).await, Some(ServiceStatus::Active));
    assert!(
        whmcs
            .fake
            .set_service_status(id(&service), FakeServiceStatus::Suspended)
    );
    assert_eq!(whmcs.status(&service).await, Some(ServiceStatus::Suspended));
    assert!(
        whmcs
            .fake
            .set_service_status(id(&service), FakeServiceStatus::Terminated)
    );
    assert_eq!(
        whmcs.status(&service).await,
        Some(ServiceStatus::Terminated)
    );
    assert!(
        whmcs
            .fake
            .set_order_status(id(&placed.order_id), OrderStatus::Fraud)
    );
    assert_eq!(whmcs.status(&service).await, Some(ServiceStatus::Fraud));
    let mut complete = UpdateClientProduct::new(service.clone());
    complete.status = Some(ServiceStatus::Completed);
    whmcs
        .client
        .update_client_product(&complete)
        .await
        .expect("updated");
    assert_eq!(whmcs.status(&service).await, Some(ServiceStatus::Completed));
    assert!(
        whmcs
            .fake
            .set_order_status(id(&placed.order_id), OrderStatus::Cancelled)
    );
    assert_eq!(whmcs.status(&service).await, Some(ServiceStatus::Cancelled));
    assert_eq!(
        whmcs.client.client_product("9999").await.expect("read"),
        None
    );
    // A cron run leaves an ended service as it is (and marks the request done).
    whmcs
        .client
        .add_cancel_request(&service, CancelType::Immediate, "")
        .await
        .expect("requested");
    assert!(whmcs.fake.run_cron().is_empty());
    assert!(whmcs.fake.cancel_requests()[0].processed_at.is_some());
    assert_eq!(whmcs.status(&service).await, Some(ServiceStatus::Cancelled));
}
