//! The fake WHMCS installation, driven over HTTP as a WHMCS client would: credentials and their
//! 403, JSON and XML answers, AddOrder with the seeded internet order (pid 185, 242, 246) and
//! every documented error, PHP bracket arrays and base64-serialized config options, AcceptOrder
//! and CancelOrder, the lookups' shapes and filters, and currencies: GetCurrencies, each client's
//! own currency in GetClientsDetails and GetOrders, and AddClient's `currency`.

use dealbridge_sandbox::observe::Fault;
use dealbridge_sandbox::whmcs::catalog::{EUR_CURRENCY_ID, JPY_CURRENCY_ID, USD_CURRENCY_ID};
use dealbridge_sandbox::whmcs::php::encode_field;
use dealbridge_sandbox::whmcs::{
    BillingCycle, Client, ClientStatus, Currency, CyclePolicy, EmptyLists, INVALID_CYCLE_MESSAGE,
    InvoiceStatus, NoInvoiceId, OrderStatus, PhpArray, PhpValue, Product, ServiceStatus,
    WhmcsSandbox, WhmcsSettings, routes,
};
use rust_decimal::Decimal;
use serde_json::{Value, json};

struct Whmcs {
    fake: WhmcsSandbox,
    http: reqwest::Client,
}

/// The AddOrder of the seeded internet order (seed 003), as `http_build_query` sends it.
const SEED_ORDER: &[(&str, &str)] = &[
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
];

impl Whmcs {
    async fn start() -> Whmcs {
        Whmcs::start_with(WhmcsSettings::default()).await
    }

    async fn start_with(settings: WhmcsSettings) -> Whmcs {
        let fake = WhmcsSandbox::start(settings).await.expect("sandbox starts");
        Whmcs {
            fake,
            http: reqwest::Client::new(),
        }
    }

    /// Posts exactly `pairs` as a form; returns the status, the content type and the body text.
    async fn post_raw(&self, pairs: &[(&str, &str)]) -> (u16, String, String) {
        let response = self
            .http
            .post(self.fake.api_url())
            .form(pairs)
            .send()
            .await
            .expect("request");
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        (status, content_type, response.text().await.expect("body"))
    }

    /// Calls `action` with the default credentials, `responsetype=json` and `extra`.
    async fn call(&self, action: &str, extra: &[(&str, &str)]) -> (u16, Value) {
        let settings = self.fake.settings();
        let mut pairs = vec![
            ("action", action),
            ("identifier", settings.identifier.as_str()),
            ("secret", settings.secret.as_str()),
            ("responsetype", "json"),
        ];
        pairs.extend_from_slice(extra);
        let (status, _, text) = self.post_raw(&pairs).await;
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, body)
    }

    /// Calls `action` and expects HTTP 200 with `result: success`.
    async fn ok(&self, action: &str, extra: &[(&str, &str)]) -> Value {
        let (status, body) = self.call(action, extra).await;
        assert_eq!(status, 200, "{action}: {body}");
        assert_eq!(body["result"], "success", "{action}: {body}");
        body
    }

    /// Calls `action` and returns the message of its HTTP 200 `result: error`.
    async fn error(&self, action: &str, extra: &[(&str, &str)]) -> String {
        let (status, body) = self.call(action, extra).await;
        assert_eq!(status, 200, "{action}: {body}");
        assert_eq!(body["result"], "error", "{action}: {body}");
        body["message"].as_str().expect("message").to_string()
    }

    /// Places the seeded order and returns its id.
    async fn seed_order(&self) -> u64 {
        let body = self.ok("AddOrder", SEED_ORDER).await;
        body["orderid"]
            .as_str()
            .and_then(|id| id.parse().ok())
            .expect("orderid")
    }
}

/// A one-line AddOrder for client 1 with `extra` after it.
fn one_line<'a>(extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut pairs = vec![
        ("clientid", "1"),
        ("paymentmethod", "mailin"),
        ("pid[0]", "185"),
        ("billingcycle[0]", "monthly"),
    ];
    pairs.extend_from_slice(extra);
    pairs
}

#[tokio::test]
async fn missing_or_wrong_credentials_get_403_authentication_failed() {
    let whmcs = Whmcs::start().await;
    let settings = whmcs.fake.settings();
    let refused = json!({"result": "error", "message": "Authentication Failed"});
    let cases: Vec<Vec<(&str, &str)>> = vec![
        vec![],
        vec![("identifier", settings.identifier.as_str())],
        vec![
            ("identifier", settings.identifier.as_str()),
            ("secret", "wrong"),
        ],
        vec![
            ("identifier", "wrong"),
            ("secret", settings.secret.as_str()),
        ],
    ];
    for credentials in cases {
        let mut pairs = vec![("action", "GetPaymentMethods"), ("responsetype", "json")];
        pairs.extend(credentials.iter().copied());
        let (status, content_type, text) = whmcs.post_raw(&pairs).await;
        assert_eq!(status, 403, "{credentials:?}");
        assert_eq!(content_type, "application/json");
        let body: Value = serde_json::from_str(&text).expect("json");
        assert_eq!(body, refused, "{credentials:?}");
    }
    // The same pair is accepted as username/password.
    let (status, _, text) = whmcs
        .post_raw(&[
            ("action", "GetPaymentMethods"),
            ("username", settings.identifier.as_str()),
            ("password", settings.secret.as_str()),
            ("responsetype", "json"),
        ])
        .await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(whmcs.fake.order_count(), 0);
}

#[tokio::test]
async fn a_json_body_carries_no_variables_so_it_is_not_authenticated() {
    let whmcs = Whmcs::start().await;
    let settings = whmcs.fake.settings();
    let response = whmcs
        .http
        .post(whmcs.fake.api_url())
        .json(&json!({
            "action": "GetPaymentMethods",
            "identifier": settings.identifier,
            "secret": settings.secret,
            "responsetype": "json",
        }))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status().as_u16(), 403);
}

#[tokio::test]
async fn without_responsetype_json_the_answer_is_whmcs_xml() {
    let whmcs = Whmcs::start().await;
    let settings = whmcs.fake.settings();
    let (status, content_type, text) = whmcs
        .post_raw(&[
            ("action", "GetPaymentMethods"),
            ("identifier", settings.identifier.as_str()),
            ("secret", settings.secret.as_str()),
        ])
        .await;
    assert_eq!(status, 200);
    assert!(content_type.starts_with("text/xml"), "{content_type}");
    assert!(
        text.starts_with("<?xml version=\"1.0\" encoding=\"utf-8\"?>"),
        "{text}"
    );
    assert!(text.contains("<whmcsapi version="), "{text}");
    assert!(text.contains("<result>success</result>"), "{text}");
    assert!(
        text.contains("<paymentmethods>\n<paymentmethod>\n"),
        "{text}"
    );
    assert!(text.contains("<module>mailin</module>"), "{text}");
    let (status, _, text) = whmcs.post_raw(&[("action", "GetPaymentMethods")]).await;
    assert_eq!(status, 403);
    assert!(
        text.contains("<message>Authentication Failed</message>"),
        "{text}"
    );
}

#[tokio::test]
async fn an_unknown_action_is_an_http_200_error_and_an_empty_one_is_400() {
    let whmcs = Whmcs::start().await;
    assert_eq!(whmcs.error("NoSuchCommand", &[]).await, "Command Not Found");
    let (status, body) = whmcs.call("", &[]).await;
    assert_eq!(status, 400);
    assert_eq!(
        body,
        json!({"result": "error", "message": "Empty action request"})
    );
    // Commands are matched in any case.
    whmcs.ok("getpaymentmethods", &[]).await;
}

#[tokio::test]
async fn get_requests_with_query_variables_are_served_too() {
    let whmcs = Whmcs::start().await;
    let settings = whmcs.fake.settings();
    let response = whmcs
        .http
        .get(whmcs.fake.api_url())
        .query(&[
            ("action", "GetPaymentMethods"),
            ("identifier", settings.identifier.as_str()),
            ("secret", settings.secret.as_str()),
            ("responsetype", "json"),
        ])
        .send()
        .await
        .expect("request");
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(whmcs.fake.observer().count(routes::API_GET), 1);
}

#[tokio::test]
async fn the_seed_order_is_created_pending_with_one_pending_service_per_line() {
    let whmcs = Whmcs::start().await;
    let body = whmcs.ok("AddOrder", SEED_ORDER).await;
    assert_eq!(
        body,
        json!({
            "result": "success",
            "orderid": "1",
            "productids": "101,102,103",
            "serviceids": "101,102,103",
            "addonids": "",
            "domainids": "",
        })
    );
    assert_eq!(whmcs.fake.order_count(), 1);
    let order = whmcs.fake.order(1).expect("order 1");
    assert_eq!(order.client_id, 1);
    assert_eq!(order.status, OrderStatus::Pending);
    assert_eq!(order.payment_method, "mailin");
    assert_eq!(order.invoice_id, None);
    assert!(order.no_email);
    assert_eq!(order.amount, Decimal::from(5300 + 22000 + 550));
    assert_eq!(order.order_number.len(), 10);
    let lines: Vec<_> = order
        .lines
        .iter()
        .map(|l| {
            (
                l.pid,
                l.billing_cycle,
                l.qty,
                l.service_id,
                l.service_status,
            )
        })
        .collect();
    assert_eq!(
        lines,
        vec![
            (185, BillingCycle::Monthly, 1, 101, ServiceStatus::Pending),
            (242, BillingCycle::OneTime, 1, 102, ServiceStatus::Pending),
            (246, BillingCycle::Monthly, 1, 103, ServiceStatus::Pending),
        ]
    );
    assert!(order.lines.iter().all(|l| l.config_options.is_empty()
        && l.config_options_error.is_none()
        && l.custom_fields_error.is_none()));
    let services = whmcs.fake.services();
    assert_eq!(services.len(), 3);
    assert!(
        services
            .iter()
            .all(|s| s.order_id == 1 && s.client_id == 1 && s.status == ServiceStatus::Pending)
    );
    assert_eq!(services[1].first_payment_amount, Decimal::from(22000));
    assert_eq!(services[1].recurring_amount, Decimal::ZERO);
    assert_eq!(services[0].recurring_amount, Decimal::from(5300));
    assert!(whmcs.fake.invoices().is_empty());
    assert_eq!(whmcs.fake.action_count("addorder"), 1);
}

#[tokio::test]
async fn an_invoice_is_made_unless_noinvoice_is_truthy_in_php_terms() {
    let whmcs = Whmcs::start().await;
    let body = whmcs.ok("AddOrder", &one_line(&[("noinvoice", "0")])).await;
    assert_eq!(body["invoiceid"], "5001");
    let invoices = whmcs.fake.invoices();
    assert_eq!(invoices.len(), 1);
    assert_eq!(invoices[0].status, InvoiceStatus::Unpaid);
    assert_eq!(invoices[0].total, Decimal::from(5300));
    assert_eq!(whmcs.fake.order(1).expect("order").invoice_id, Some(5001));
    // PHP reads the string "false" as true: no invoice.
    let body = whmcs
        .ok("AddOrder", &one_line(&[("noinvoice", "false")]))
        .await;
    assert!(body.get("invoiceid").is_none(), "{body}");
    assert_eq!(whmcs.fake.invoices().len(), 1);
}

#[tokio::test]
async fn the_invoice_id_without_an_invoice_can_be_zero_or_empty() {
    for (shape, expected) in [
        (NoInvoiceId::Zero, json!(0)),
        (NoInvoiceId::Empty, json!("")),
    ] {
        let whmcs = Whmcs::start_with(WhmcsSettings {
            invoice_id_without_invoice: shape,
            ..WhmcsSettings::default()
        })
        .await;
        let body = whmcs.ok("AddOrder", SEED_ORDER).await;
        assert_eq!(body["invoiceid"], expected, "{shape:?}");
    }
}

#[tokio::test]
async fn every_documented_add_order_error_has_its_exact_text_and_creates_nothing() {
    let whmcs = Whmcs::start().await;
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (
            vec![
                ("clientid", "999"),
                ("paymentmethod", "mailin"),
                ("pid[0]", "185"),
            ],
            "Client ID Not Found",
        ),
        (
            vec![("paymentmethod", "mailin"), ("pid[0]", "185")],
            "Client ID Not Found",
        ),
        (
            vec![
                ("clientid", "2"),
                ("paymentmethod", "mailin"),
                ("pid[0]", "185"),
            ],
            "Unable to add order when client status is Closed",
        ),
        (
            vec![
                ("clientid", "1"),
                ("paymentmethod", "paypal"),
                ("pid[0]", "185"),
            ],
            "Invalid Payment Method. Valid options include mailin,banktransfer",
        ),
        (
            vec![("clientid", "1"), ("pid[0]", "185")],
            "Invalid Payment Method. Valid options include mailin,banktransfer",
        ),
        (
            vec![
                ("clientid", "1"),
                ("paymentmethod", "mailin"),
                ("pid[0]", "999"),
            ],
            "No items added to cart so order cannot proceed",
        ),
        (
            vec![
                ("clientid", "1"),
                ("paymentmethod", "mailin"),
                ("pid[0]", "0"),
            ],
            "No items added to cart so order cannot proceed",
        ),
        (
            vec![("clientid", "1"), ("paymentmethod", "mailin")],
            "No items added to cart so order cannot proceed",
        ),
        (
            one_line(&[("addonid", "5"), ("serviceid", "101")]),
            "Addon ID invalid",
        ),
        (
            one_line(&[("addonids[0]", "5"), ("serviceids[0]", "101")]),
            "Addon ID invalid",
        ),
        (
            one_line(&[("domainrenewals[example.com]", "1")]),
            "Domain not owned by Client ID provided",
        ),
        (
            one_line(&[("domaintype[0]", "register"), ("domain", "example.com")]),
            "Expecting parameter 'domain' to be an array",
        ),
        (
            one_line(&[("clientip", "not-an-ip")]),
            "Invalid IP address provided for 'clientip'",
        ),
    ];
    for (pairs, message) in cases {
        assert_eq!(whmcs.error("AddOrder", &pairs).await, message, "{pairs:?}");
    }
    assert_eq!(whmcs.fake.order_count(), 0);
    assert!(whmcs.fake.services().is_empty());
}

#[tokio::test]
async fn unknown_and_retired_pids_are_dropped_from_an_order_that_has_others() {
    let whmcs = Whmcs::start().await;
    let mut retired = Product::monthly(900, "Legacy Plan", "Internet", Decimal::from(1000));
    retired.retired = true;
    whmcs.fake.add_product(retired);
    let body = whmcs
        .ok(
            "AddOrder",
            &[
                ("clientid", "1"),
                ("paymentmethod", "mailin"),
                ("pid[0]", "999"),
                ("pid[1]", "900"),
                ("pid[2]", "246"),
                ("billingcycle[2]", "monthly"),
            ],
        )
        .await;
    assert_eq!(body["serviceids"], "101");
    let order = whmcs.fake.order(1).expect("order");
    assert_eq!(order.lines.len(), 1);
    assert_eq!(order.lines[0].pid, 246);
    assert_eq!(
        whmcs
            .error(
                "AddOrder",
                &[
                    ("clientid", "1"),
                    ("paymentmethod", "mailin"),
                    ("pid[0]", "900")
                ]
            )
            .await,
        "No items added to cart so order cannot proceed"
    );
}

#[tokio::test]
async fn inactive_clients_may_order_and_closed_ones_may_not() {
    let whmcs = Whmcs::start().await;
    whmcs
        .ok(
            "AddOrder",
            &[
                ("clientid", "3"),
                ("paymentmethod", "banktransfer"),
                ("pid[]", "33"),
            ],
        )
        .await;
    let id = whmcs.fake.add_client(Client {
        first_name: "Aiko".into(),
        last_name: "Mori".into(),
        email: "aiko.mori@example.com".into(),
        ..Client::default()
    });
    assert_eq!(id, 4);
    assert!(whmcs.fake.set_client_status(id, ClientStatus::Closed));
    let id_text = id.to_string();
    assert_eq!(
        whmcs
            .error(
                "AddOrder",
                &[
                    ("clientid", &id_text),
                    ("paymentmethod", "mailin"),
                    ("pid[]", "33")
                ]
            )
            .await,
        "Unable to add order when client status is Closed"
    );
    assert_eq!(whmcs.fake.order_count(), 1);
}

#[tokio::test]
async fn accepting_activates_the_order_and_its_services_and_a_second_accept_fails() {
    let whmcs = Whmcs::start().await;
    let id = whmcs.seed_order().await;
    let id_text = id.to_string();
    let body = whmcs.ok("AcceptOrder", &[("orderid", &id_text)]).await;
    assert_eq!(body, json!({"result": "success"}));
    let order = whmcs.fake.order(id).expect("order");
    assert_eq!(order.status, OrderStatus::Active);
    assert!(
        order
            .lines
            .iter()
            .all(|l| l.service_status == ServiceStatus::Active)
    );
    assert!(
        whmcs
            .fake
            .services()
            .iter()
            .all(|s| s.status == ServiceStatus::Active)
    );
    assert_eq!(
        whmcs.error("AcceptOrder", &[("orderid", &id_text)]).await,
        "Order ID not found or Status not Pending"
    );
    assert_eq!(
        whmcs.error("AcceptOrder", &[("orderid", "999")]).await,
        "Order ID not found or Status not Pending"
    );
    assert_eq!(
        whmcs.error("AcceptOrder", &[]).await,
        "Order ID not found or Status not Pending"
    );
}

#[tokio::test]
async fn a_cancelled_order_cannot_be_accepted() {
    let whmcs = Whmcs::start().await;
    whmcs.ok("AddOrder", &one_line(&[])).await;
    whmcs.ok("CancelOrder", &[("orderid", "1")]).await;
    let order = whmcs.fake.order(1).expect("order");
    assert_eq!(order.status, OrderStatus::Cancelled);
    assert_eq!(order.lines[0].service_status, ServiceStatus::Cancelled);
    assert_eq!(whmcs.fake.invoices()[0].status, InvoiceStatus::Cancelled);
    assert_eq!(
        whmcs.error("AcceptOrder", &[("orderid", "1")]).await,
        "Order ID not found or Status not Pending"
    );
    assert_eq!(
        whmcs.error("CancelOrder", &[("orderid", "1")]).await,
        "Order ID not found or Status not Pending"
    );
}

#[tokio::test]
async fn get_orders_lists_newest_first_with_line_items_and_filters() {
    let whmcs = Whmcs::start().await;
    whmcs.seed_order().await; // 1: client 1
    whmcs
        .ok(
            "AddOrder",
            &[
                ("clientid", "3"),
                ("paymentmethod", "banktransfer"),
                ("pid", "54"),
            ],
        )
        .await; // 2: client 3
    whmcs.ok("AddOrder", &one_line(&[])).await; // 3: client 1
    whmcs.ok("AcceptOrder", &[("orderid", "3")]).await;

    let all = whmcs.ok("GetOrders", &[]).await;
    assert_eq!(all["totalresults"], "3");
    assert_eq!(all["startnumber"], 0);
    assert_eq!(all["numreturned"], 3);
    let ids: Vec<&str> = all["orders"]["order"]
        .as_array()
        .expect("orders")
        .iter()
        .map(|o| o["id"].as_str().expect("id"))
        .collect();
    assert_eq!(ids, ["3", "2", "1"]);

    let seed = &all["orders"]["order"][2];
    assert_eq!(seed["userid"], "1");
    assert_eq!(seed["status"], "Pending");
    assert_eq!(seed["paymentmethod"], "mailin");
    assert_eq!(seed["paymentmethodname"], "Mail In Payment");
    assert_eq!(seed["invoiceid"], "0");
    assert_eq!(seed["amount"], "27850.00");
    assert_eq!(seed["name"], "Haruka Sato");
    let items = seed["lineitems"]["lineitem"].as_array().expect("lineitems");
    assert_eq!(items.len(), 3);
    assert_eq!(
        items[1],
        json!({
            "type": "product",
            "relid": "102",
            "producttype": "Other Product/Service",
            "product": "Internet Installation - Single Installation",
            "domain": "",
            "billingcycle": "One Time",
            "amount": "¥22000.00 JPY",
            "status": "Pending",
        })
    );

    let by_id = whmcs.ok("GetOrders", &[("id", "2")]).await;
    assert_eq!(by_id["totalresults"], "1");
    assert_eq!(by_id["orders"]["order"][0]["userid"], "3");
    let by_user = whmcs.ok("GetOrders", &[("userid", "1")]).await;
    assert_eq!(by_user["totalresults"], "2");
    let active = whmcs.ok("GetOrders", &[("status", "active")]).await;
    assert_eq!(active["totalresults"], "1");
    assert_eq!(active["orders"]["order"][0]["id"], "3");
    assert_eq!(
        active["orders"]["order"][0]["lineitems"]["lineitem"][0]["status"],
        "Active"
    );

    let page = whmcs
        .ok("GetOrders", &[("limitstart", "1"), ("limitnum", "1")])
        .await;
    assert_eq!(page["totalresults"], "3");
    assert_eq!(page["startnumber"], "1");
    assert_eq!(page["numreturned"], 1);
    assert_eq!(page["orders"]["order"][0]["id"], "2");

    let none = whmcs.ok("GetOrders", &[("id", "42")]).await;
    assert_eq!(none["totalresults"], "0");
    assert_eq!(none["numreturned"], 0);
    assert!(none.get("orders").is_none(), "{none}");
}

#[tokio::test]
async fn empty_lists_take_the_configured_shape() {
    let whmcs = Whmcs::start_with(WhmcsSettings {
        empty_lists: EmptyLists::EmptyContainer,
        ..WhmcsSettings::default()
    })
    .await;
    let none = whmcs.ok("GetOrders", &[]).await;
    assert_eq!(none["orders"], json!({"order": []}));
    let none = whmcs.ok("GetClientsProducts", &[("clientid", "1")]).await;
    assert_eq!(none["products"], json!({"product": []}));
}

#[tokio::test]
async fn get_clients_details_finds_by_id_or_email_and_reports_what_is_missing() {
    let whmcs = Whmcs::start().await;
    let body = whmcs.ok("GetClientsDetails", &[("clientid", "1")]).await;
    assert_eq!(body["client"]["id"], 1);
    assert_eq!(body["client"]["email"], "haruka.sato@example.com");
    assert_eq!(body["client"]["status"], "Active");
    assert_eq!(body["client"]["currency_code"], "JPY");
    assert_eq!(body["client"]["currency"], 1);
    assert_eq!(
        body["currency_code"], "JPY",
        "the deprecated top-level copy"
    );
    assert_eq!(body["email"], "haruka.sato@example.com");
    let body = whmcs
        .ok("GetClientsDetails", &[("email", "Haruka.Sato@example.com")])
        .await;
    assert_eq!(body["client"]["id"], 1);
    let body = whmcs.ok("GetClientsDetails", &[("clientid", "2")]).await;
    assert_eq!(body["client"]["status"], "Closed");
    assert_eq!(
        whmcs
            .error("GetClientsDetails", &[("clientid", "999")])
            .await,
        "Client Not Found"
    );
    assert_eq!(
        whmcs
            .error("GetClientsDetails", &[("email", "nobody@example.com")])
            .await,
        "Client Not Found"
    );
    assert_eq!(
        whmcs.error("GetClientsDetails", &[]).await,
        "Either clientid Or email Is Required"
    );
    whmcs.seed_order().await;
    let body = whmcs
        .ok("GetClientsDetails", &[("clientid", "1"), ("stats", "true")])
        .await;
    assert_eq!(body["stats"]["numorders"], 1);
    assert_eq!(body["stats"]["productsnumpending"], 3);
}

#[tokio::test]
async fn get_clients_searches_by_prefix_and_filters_by_status() {
    let whmcs = Whmcs::start().await;
    let all = whmcs.ok("GetClients", &[]).await;
    assert_eq!(all["totalresults"], 3);
    assert_eq!(all["clients"]["client"][0]["id"], "1");
    let found = whmcs.ok("GetClients", &[("search", "haruka.sato@")]).await;
    assert_eq!(found["numreturned"], 1);
    assert_eq!(
        found["clients"]["client"][0]["email"],
        "haruka.sato@example.com"
    );
    let closed = whmcs.ok("GetClients", &[("status", "Closed")]).await;
    assert_eq!(closed["clients"]["client"][0]["id"], "2");
    let none = whmcs.ok("GetClients", &[("search", "example.com")]).await;
    assert_eq!(none["totalresults"], 0);
    assert!(none.get("clients").is_none());
}

#[tokio::test]
async fn get_payment_methods_lists_the_modules_add_order_takes() {
    let whmcs = Whmcs::start().await;
    let body = whmcs.ok("GetPaymentMethods", &[]).await;
    assert_eq!(
        body,
        json!({
            "result": "success",
            "totalresults": 2,
            "paymentmethods": {"paymentmethod": [
                {"module": "mailin", "displayname": "Mail In Payment"},
                {"module": "banktransfer", "displayname": "Bank Transfer"},
            ]},
        })
    );
}

#[tokio::test]
async fn get_clients_products_shows_the_services_an_order_made() {
    let whmcs = Whmcs::start().await;
    whmcs.seed_order().await;
    let body = whmcs.ok("GetClientsProducts", &[("clientid", "1")]).await;
    assert_eq!(body["clientid"], "1");
    assert_eq!(body["serviceid"], Value::Null);
    assert_eq!(body["totalresults"], 3);
    let products = body["products"]["product"].as_array().expect("products");
    assert_eq!(products[0]["id"], "101");
    assert_eq!(products[0]["pid"], "185");
    assert_eq!(products[0]["orderid"], "1");
    assert_eq!(products[0]["name"], "Internet Gold (Apartment 1G)");
    assert_eq!(products[0]["billingcycle"], "Monthly");
    assert_eq!(products[0]["recurringamount"], "5300.00");
    assert_eq!(products[0]["status"], "Pending");
    assert_eq!(products[1]["billingcycle"], "One Time");
    let one = whmcs
        .ok("GetClientsProducts", &[("serviceid", "103")])
        .await;
    assert_eq!(one["numreturned"], 1);
    assert_eq!(one["products"]["product"][0]["pid"], "246");
    let other = whmcs.ok("GetClientsProducts", &[("clientid", "3")]).await;
    assert_eq!(other["totalresults"], 0);
}

#[tokio::test]
async fn config_options_and_custom_fields_are_decoded_onto_the_line_and_service() {
    let whmcs = Whmcs::start().await;
    // The reference's examples, and a map keyed by option name.
    let quantity = "YToxOntpOjE7aTo5OTk7fQ==";
    let text = "YToxOntpOjE7czo2OiJHb29nbGUiO30=";
    let named = encode_field(&PhpArray::new().with("Router", "Rental"));
    whmcs
        .ok(
            "AddOrder",
            &[
                ("clientid", "1"),
                ("paymentmethod", "mailin"),
                ("pid[0]", "185"),
                ("pid[1]", "246"),
                ("configoptions[0]", &named),
                ("customfields[0]", text),
                ("configoptions[1]", quantity),
                ("noinvoice", "1"),
            ],
        )
        .await;
    let order = whmcs.fake.order(1).expect("order");
    assert_eq!(
        order.lines[0].config_options.get("Router"),
        Some(&PhpValue::Str("Rental".into()))
    );
    assert_eq!(
        order.lines[0].custom_fields.get(1),
        Some(&PhpValue::Str("Google".into()))
    );
    assert_eq!(
        order.lines[1].config_options.get(1),
        Some(&PhpValue::Int(999))
    );
    assert_eq!(order.lines[1].config_options.to_text_map()["1"], "999");
    assert_eq!(
        whmcs.fake.services()[0].config_options,
        order.lines[0].config_options
    );
    let products = whmcs
        .ok("GetClientsProducts", &[("serviceid", "101")])
        .await;
    assert_eq!(
        products["products"]["product"][0]["configoptions"]["configoption"][0]["value"],
        "Rental"
    );
}

#[tokio::test]
async fn a_malformed_serialized_value_is_ignored_as_whmcs_does_but_recorded() {
    let whmcs = Whmcs::start().await;
    // Base64 of `a:2:{i:1;i:999;}`: the count says two entries, there is one.
    let wrong_count = "YToyOntpOjE7aTo5OTk7fQ==";
    whmcs
        .ok(
            "AddOrder",
            &one_line(&[
                ("configoptions[0]", wrong_count),
                ("customfields[0]", "%%%"),
            ]),
        )
        .await;
    let line = &whmcs.fake.order(1).expect("order").lines[0];
    assert!(line.config_options.is_empty());
    assert!(line.config_options_error.is_some());
    assert!(line.custom_fields_error.is_some());
}

#[tokio::test]
async fn bracket_arrays_pair_by_index_whatever_order_they_arrive_in() {
    let whmcs = Whmcs::start().await;
    whmcs
        .ok(
            "AddOrder",
            &[
                ("clientid", "1"),
                ("paymentmethod", "mailin"),
                ("billingcycle[0]", "monthly"),
                ("pid[1]", "242"),
                ("billingcycle[1]", "onetime"),
                ("pid[0]", "185"),
                ("domain[0]", "home.example.jp"),
            ],
        )
        .await;
    let order = whmcs.fake.order(1).expect("order");
    // Lines follow pid's arrival order (PHP's foreach); each reads the other arrays at its key.
    let lines: Vec<_> = order
        .lines
        .iter()
        .map(|l| (l.pid, l.billing_cycle, l.domain.as_str(), l.service_id))
        .collect();
    assert_eq!(
        lines,
        vec![
            (242, BillingCycle::OneTime, "", 101),
            (185, BillingCycle::Monthly, "home.example.jp", 102),
        ]
    );
    // `pid[]` appends in order.
    whmcs
        .ok(
            "AddOrder",
            &[
                ("clientid", "1"),
                ("paymentmethod", "mailin"),
                ("pid[]", "185"),
                ("pid[]", "246"),
                ("billingcycle[]", "monthly"),
                ("billingcycle[]", "monthly"),
            ],
        )
        .await;
    let order = whmcs.fake.order(2).expect("order");
    let pids: Vec<_> = order.lines.iter().map(|l| l.pid).collect();
    assert_eq!(pids, [185, 246]);
}

#[tokio::test]
async fn a_single_product_can_be_ordered_with_scalar_parameters() {
    let whmcs = Whmcs::start().await;
    let body = whmcs
        .ok(
            "AddOrder",
            &[
                ("clientid", "1"),
                ("paymentmethod", "mailin"),
                ("pid", "242"),
                ("billingcycle", "onetime"),
            ],
        )
        .await;
    assert_eq!(body["serviceids"], "101");
    let line = &whmcs.fake.order(1).expect("order").lines[0];
    assert_eq!((line.pid, line.billing_cycle), (242, BillingCycle::OneTime));
}

#[tokio::test]
async fn an_unpriced_cycle_falls_back_like_whmcs_unless_the_fake_is_told_to_refuse() {
    let whmcs = Whmcs::start().await;
    whmcs
        .ok(
            "AddOrder",
            &[
                ("clientid", "1"),
                ("paymentmethod", "mailin"),
                ("pid[0]", "185"),
                ("billingcycle[0]", "annually"),
                ("pid[1]", "242"),
                ("billingcycle[1]", "Monthly"),
            ],
        )
        .await;
    let order = whmcs.fake.order(1).expect("order");
    assert_eq!(order.lines[0].billing_cycle, BillingCycle::Monthly);
    assert_eq!(
        order.lines[0].requested_billing_cycle.as_deref(),
        Some("annually")
    );
    assert_eq!(order.lines[1].billing_cycle, BillingCycle::OneTime);

    let strict = Whmcs::start_with(WhmcsSettings {
        billing_cycles: CyclePolicy::Refuse,
        ..WhmcsSettings::default()
    })
    .await;
    for cycle in ["annually", "onetime", ""] {
        assert_eq!(
            strict
                .error(
                    "AddOrder",
                    &[
                        ("clientid", "1"),
                        ("paymentmethod", "mailin"),
                        ("pid[0]", "185"),
                        ("billingcycle[0]", cycle),
                    ],
                )
                .await,
            INVALID_CYCLE_MESSAGE,
            "{cycle}"
        );
    }
    assert_eq!(strict.fake.order_count(), 0);
    // The seeded order asks for cycles its products offer; case does not matter.
    strict.ok("AddOrder", SEED_ORDER).await;
    strict
        .ok(
            "AddOrder",
            &[
                ("clientid", "1"),
                ("paymentmethod", "mailin"),
                ("pid[0]", "242"),
                ("billingcycle[0]", "OneTime"),
            ],
        )
        .await;
}

#[tokio::test]
async fn quantities_count_only_for_products_that_allow_them() {
    let whmcs = Whmcs::start().await;
    let mut seats = Product::monthly(500, "Static IP", "Internet Add-ons", Decimal::from(300));
    seats.allow_quantity = true;
    whmcs.fake.add_product(seats);
    whmcs
        .ok(
            "AddOrder",
            &[
                ("clientid", "1"),
                ("paymentmethod", "mailin"),
                ("pid[0]", "500"),
                ("qty[0]", "3"),
                ("pid[1]", "185"),
                ("qty[1]", "2"),
                ("priceoverride[1]", "4800"),
            ],
        )
        .await;
    let order = whmcs.fake.order(1).expect("order");
    assert_eq!((order.lines[0].qty, order.lines[1].qty), (3, 1));
    assert_eq!(order.lines[1].requested_qty.as_deref(), Some("2"));
    assert_eq!(order.lines[1].price_override, Some(Decimal::from(4800)));
    assert_eq!(order.amount, Decimal::from(900 + 4800));
    assert_eq!(whmcs.fake.services()[0].qty, 3);
}

#[tokio::test]
async fn an_access_key_is_required_when_the_caller_is_not_on_the_ip_allow_list() {
    let whmcs = Whmcs::start_with(WhmcsSettings {
        access_key: Some("k3y!@#".into()),
        ..WhmcsSettings::default()
    })
    .await;
    let (status, body) = whmcs.call("GetPaymentMethods", &[]).await;
    assert_eq!(status, 400);
    assert_eq!(
        body,
        json!({"result": "error", "message": "Invalid IP 127.0.0.1"})
    );
    whmcs
        .ok("GetPaymentMethods", &[("accesskey", "k3y!@#")])
        .await;
}

#[tokio::test]
async fn a_fault_can_be_injected_for_one_command_only() {
    let whmcs = Whmcs::start().await;
    whmcs.fake.fail_next(
        "AddOrder",
        Fault::json(503, json!({"message": "down for maintenance"})),
    );
    let (status, body) = whmcs.call("AddOrder", SEED_ORDER).await;
    assert_eq!(status, 503);
    assert_eq!(body["message"], "down for maintenance");
    assert_eq!(whmcs.fake.order_count(), 0);
    whmcs.ok("GetPaymentMethods", &[]).await;
    whmcs.seed_order().await;
    assert_eq!(whmcs.fake.action_count("AddOrder"), 2);
    assert_eq!(whmcs.fake.observer().count(routes::API), 3);
    // Observer faults on the shared route still work.
    whmcs
        .fake
        .observer()
        .inject(routes::API, Fault::json(500, json!({})));
    let (status, _) = whmcs.call("GetOrders", &[]).await;
    assert_eq!(status, 500);
}

#[tokio::test]
async fn concurrent_orders_get_distinct_ids() {
    let whmcs = std::sync::Arc::new(Whmcs::start().await);
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let whmcs = whmcs.clone();
        tasks.push(tokio::spawn(async move { whmcs.seed_order().await }));
    }
    let mut ids = Vec::new();
    for task in tasks {
        ids.push(task.await.expect("task"));
    }
    ids.sort_unstable();
    assert_eq!(ids, (1..=8).collect::<Vec<u64>>());
    assert_eq!(whmcs.fake.services().len(), 24);
}

#[tokio::test]
async fn an_admin_status_change_shows_in_get_orders() {
    let whmcs = Whmcs::start().await;
    whmcs.seed_order().await;
    assert!(whmcs.fake.set_order_status(1, OrderStatus::Fraud));
    let body = whmcs.ok("GetOrders", &[("id", "1")]).await;
    assert_eq!(body["orders"]["order"][0]["status"], "Fraud");
    let statuses = whmcs.ok("GetOrderStatuses", &[]).await;
    assert_eq!(
        statuses["statuses"]["status"][2],
        json!({"title": "Fraud", "count": 1})
    );
    assert!(!whmcs.fake.set_order_status(42, OrderStatus::Active));
}

#[tokio::test]
async fn other_paths_are_a_404_page() {
    let whmcs = Whmcs::start().await;
    let response = whmcs
        .http
        .post(format!("{}/api.php", whmcs.fake.base_url()))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status().as_u16(), 404);
}

/// A client in `currency`, Active, with the next free id.
fn client_in(currency: u64, email: &str) -> Client {
    Client {
        first_name: "Emma".into(),
        last_name: "Clark".into(),
        email: email.into(),
        country_code: "US".into(),
        currency,
        ..Client::default()
    }
}

/// The AddClient parameters every documented check passes, with `extra` after them.
fn new_client<'a>(extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut pairs = vec![
        ("firstname", "Emma"),
        ("lastname", "Clark"),
        ("email", "emma.clark@example.com"),
        ("address1", "1 Market St"),
        ("city", "San Francisco"),
        ("state", "CA"),
        ("postcode", "94105"),
        ("country", "US"),
        ("phonenumber", "+1.4155550100"),
    ];
    pairs.extend_from_slice(extra);
    pairs
}

#[tokio::test]
async fn get_currencies_lists_the_default_and_the_other_currencies_by_id() {
    let whmcs = Whmcs::start().await;
    let body = whmcs.ok("GetCurrencies", &[]).await;
    assert_eq!(
        body,
        json!({
            "result": "success",
            "totalresults": "3",
            "currencies": {"currency": [
                {"id": "1", "code": "JPY", "prefix": "¥", "suffix": " JPY", "format": "1", "rate": "1.00000"},
                {"id": "2", "code": "USD", "prefix": "$", "suffix": " USD", "format": "2", "rate": "0.00670"},
                {"id": "3", "code": "EUR", "prefix": "€", "suffix": " EUR", "format": "3", "rate": "0.00620"},
            ]},
        })
    );
    let ids: Vec<u64> = whmcs.fake.currencies().iter().map(|c| c.id).collect();
    assert_eq!(ids, [JPY_CURRENCY_ID, USD_CURRENCY_ID, EUR_CURRENCY_ID]);

    let only_default = Whmcs::start_with(WhmcsSettings {
        other_currencies: vec![],
        ..WhmcsSettings::default()
    })
    .await;
    let body = only_default.ok("GetCurrencies", &[]).await;
    assert_eq!(body["totalresults"], "1");
    assert_eq!(body["currencies"]["currency"][0]["code"], "JPY");
}

#[tokio::test]
async fn a_client_in_another_currency_shows_it_in_its_details_and_orders() {
    let whmcs = Whmcs::start().await;
    let id = whmcs
        .fake
        .add_client(client_in(USD_CURRENCY_ID, "emma@example.com"));
    let id_text = id.to_string();
    let body = whmcs
        .ok("GetClientsDetails", &[("clientid", &id_text)])
        .await;
    assert_eq!(body["client"]["currency"], 2);
    assert_eq!(body["client"]["currency_code"], "USD");
    assert_eq!(body["currency"], 2);

    whmcs
        .ok(
            "AddOrder",
            &[
                ("clientid", &id_text),
                ("paymentmethod", "mailin"),
                ("pid[0]", "185"),
                ("billingcycle[0]", "monthly"),
            ],
        )
        .await;
    whmcs.seed_order().await;
    let orders = whmcs.ok("GetOrders", &[]).await;
    let usd = &orders["orders"]["order"][1];
    assert_eq!(usd["userid"], id_text.as_str());
    assert_eq!(usd["currencyprefix"], "$");
    assert_eq!(usd["currencysuffix"], " USD");
    assert_eq!(
        usd["lineitems"]["lineitem"][0]["amount"], "$5300.00 USD",
        "the same number as in yen (prices per currency are not modelled)"
    );
    let jpy = &orders["orders"]["order"][0];
    assert_eq!(jpy["currencyprefix"], "¥");
    assert_eq!(jpy["lineitems"]["lineitem"][0]["amount"], "¥5300.00 JPY");

    // A client added with currency 0 gets the default.
    let default = whmcs.fake.add_client(client_in(0, "plain@example.com"));
    let client = whmcs
        .fake
        .clients()
        .into_iter()
        .find(|c| c.id == default)
        .expect("client");
    assert_eq!(client.currency, JPY_CURRENCY_ID);
}

#[tokio::test]
async fn seeded_clients_can_start_in_other_currencies_and_currencies_can_be_set_up() {
    let mut settings = WhmcsSettings::default();
    settings.other_currencies.push(Currency {
        id: 7,
        code: "GBP".into(),
        prefix: "£".into(),
        suffix: " GBP".into(),
        format: 2,
        rate: Decimal::new(53, 4),
    });
    let mut london = client_in(7, "oliver@example.co.uk");
    london.id = 10;
    settings.clients.push(london);
    let whmcs = Whmcs::start_with(settings).await;
    let body = whmcs.ok("GetClientsDetails", &[("clientid", "10")]).await;
    assert_eq!(body["client"]["currency"], 7);
    assert_eq!(body["client"]["currency_code"], "GBP");
    let currencies = whmcs.ok("GetCurrencies", &[]).await;
    assert_eq!(currencies["currencies"]["currency"][3]["id"], "7");
}

#[tokio::test]
async fn a_currency_id_that_is_not_set_up_has_no_code_in_the_details() {
    let whmcs = Whmcs::start().await;
    let id = whmcs.fake.add_client(client_in(9, "odd@example.com"));
    let body = whmcs
        .ok("GetClientsDetails", &[("clientid", &id.to_string())])
        .await;
    assert_eq!(body["client"]["currency"], 9);
    assert_eq!(body["client"]["currency_code"], "");
}

#[tokio::test]
async fn add_client_takes_a_currency_id_and_defaults_to_the_installations() {
    let whmcs = Whmcs::start().await;
    let body = whmcs
        .ok("AddClient", &new_client(&[("currency", "2")]))
        .await;
    assert_eq!(body, json!({"result": "success", "clientid": "4"}));
    let details = whmcs.ok("GetClientsDetails", &[("clientid", "4")]).await;
    assert_eq!(details["client"]["currency"], 2);
    assert_eq!(details["client"]["currency_code"], "USD");
    assert_eq!(details["client"]["status"], "Active");
    assert_eq!(details["client"]["countrycode"], "US");

    for (currency, email) in [(None, "a@example.com"), (Some("0"), "b@example.com")] {
        let mut pairs = new_client(&[]);
        pairs.retain(|(k, _)| *k != "email");
        pairs.push(("email", email));
        if let Some(currency) = currency {
            pairs.push(("currency", currency));
        }
        let body = whmcs.ok("AddClient", &pairs).await;
        let id = body["clientid"].as_str().expect("clientid").to_string();
        let details = whmcs.ok("GetClientsDetails", &[("clientid", &id)]).await;
        assert_eq!(details["client"]["currency_code"], "JPY", "{currency:?}");
    }
    for currency in ["9", "USD", "-1"] {
        let mut pairs = new_client(&[("currency", currency)]);
        pairs.retain(|(k, _)| *k != "email");
        pairs.push(("email", "c@example.com"));
        assert_eq!(
            whmcs.error("AddClient", &pairs).await,
            "Invalid Currency ID",
            "{currency}"
        );
    }
    assert_eq!(whmcs.fake.clients().len(), 6, "3 seeded and 3 added");
}

#[tokio::test]
async fn add_client_refuses_with_its_documented_messages() {
    let whmcs = Whmcs::start().await;
    let without = |name: &'static str| {
        let mut pairs = new_client(&[]);
        pairs.retain(|(k, _)| *k != name);
        pairs
    };
    for (name, message) in [
        ("firstname", "You did not enter your first name"),
        ("lastname", "You did not enter your last name"),
        ("email", "You did not enter your email address"),
        ("address1", "You did not enter your  address line 1"),
        ("city", "You did not enter your city"),
        ("state", "You did not enter your state"),
        ("postcode", "You did not enter your postcode"),
        ("phonenumber", "You did not enter your phone number"),
        ("country", "Valid country required"),
    ] {
        assert_eq!(whmcs.error("AddClient", &without(name)).await, message);
    }
    let with = |name: &'static str, value: &'static str| {
        let mut pairs = without(name);
        pairs.push((name, value));
        pairs
    };
    assert_eq!(
        whmcs
            .error("AddClient", &with("email", "not-an-address"))
            .await,
        "The email address you entered was not valid"
    );
    assert_eq!(
        whmcs.error("AddClient", &with("country", "USA")).await,
        "Valid country required"
    );
    assert_eq!(
        whmcs
            .error("AddClient", &with("phonenumber", "call me"))
            .await,
        "Invalid telephone phone number"
    );
    assert_eq!(
        whmcs
            .error("AddClient", &with("email", "Haruka.Sato@example.com"))
            .await,
        "A user already exists with that email address"
    );
    assert_eq!(
        whmcs
            .error(
                "AddClient",
                &new_client(&[("owner_user_id", "1"), ("email", "haruka.sato@example.com")])
            )
            .await,
        "The email address entered is not available for use."
    );
    assert_eq!(
        whmcs
            .error("AddClient", &new_client(&[("owner_user_id", "99")]))
            .await,
        "Invalid Owner User ID"
    );
    assert_eq!(whmcs.fake.clients().len(), 3, "nothing was created");
    let skipped = whmcs
        .ok(
            "AddClient",
            &[
                ("email", "minimal@example.com"),
                ("skipvalidation", "true"),
                ("currency", "3"),
            ],
        )
        .await;
    assert_eq!(skipped["clientid"], "4");
    let details = whmcs.ok("GetClientsDetails", &[("clientid", "4")]).await;
    assert_eq!(details["client"]["currency_code"], "EUR");
    assert_eq!(
        whmcs
            .error("AddClient", &[("skipvalidation", "1"), ("email", "nope")])
            .await,
        "The email address you entered was not valid",
        "skipvalidation does not skip the email"
    );
}
