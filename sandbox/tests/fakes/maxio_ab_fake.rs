//! The fake Maxio Advanced Billing site, driven over HTTP: auth, customers, products, price points
//! and their bracket rules and currency prices, subscriptions (currencies, start dates) and the
//! default-price-point fallback, the price points and allocations of a subscription's components,
//! duplicate prevention, and the concurrency limit.

use std::time::Duration;

use dealbridge_sandbox::maxio_ab::{AbSettings, MaxioAbSandbox, routes};
use serde_json::{Value, json};

struct Site {
    ab: MaxioAbSandbox,
    http: reqwest::Client,
    key: String,
}

impl Site {
    async fn start() -> Site {
        Site::start_with(AbSettings::default()).await
    }

    /// A USD site that also sells in EUR.
    async fn start_eur() -> Site {
        Site::start_with(AbSettings {
            non_primary_currencies: vec!["EUR".into()],
            ..AbSettings::default()
        })
        .await
    }

    async fn start_with(settings: AbSettings) -> Site {
        let ab = MaxioAbSandbox::start(settings)
            .await
            .expect("sandbox starts");
        let key = ab.settings().api_key;
        Site {
            ab,
            http: reqwest::Client::new(),
            key,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.ab.url())
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        let response = self
            .http
            .get(self.url(path))
            .basic_auth(&self.key, Some("x"))
            .send()
            .await
            .expect("request");
        read(response).await
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let response = self
            .http
            .post(self.url(path))
            .basic_auth(&self.key, Some("x"))
            .json(&body)
            .send()
            .await
            .expect("request");
        read(response).await
    }

    async fn put(&self, path: &str, body: Value) -> (u16, Value) {
        let response = self
            .http
            .put(self.url(path))
            .basic_auth(&self.key, Some("x"))
            .json(&body)
            .send()
            .await
            .expect("request");
        read(response).await
    }

    /// Creates a subscription and returns its id.
    async fn subscription(&self, body: Value) -> i64 {
        let (status, created) = self
            .post("/subscriptions.json", json!({ "subscription": body }))
            .await;
        assert_eq!(status, 201, "{created}");
        created["subscription"]["id"]
            .as_i64()
            .expect("subscription id")
    }

    /// `GET /subscriptions/{id}/components.json`.
    async fn components_of(&self, subscription_id: i64) -> Value {
        let (status, list) = self
            .get(&format!("/subscriptions/{subscription_id}/components.json"))
            .await;
        assert_eq!(status, 200, "{list}");
        list
    }

    async fn allocate(&self, subscription_id: i64, component: &str, body: Value) -> (u16, Value) {
        self.post(
            &format!("/subscriptions/{subscription_id}/components/{component}/allocations.json"),
            json!({ "allocation": body }),
        )
        .await
    }

    async fn customer(&self, reference: &str) -> i64 {
        let (status, body) = self
            .post(
                "/customers.json",
                json!({"customer": {
                    "first_name": "Ada", "last_name": "Lovelace",
                    "email": "ada@example.com", "reference": reference,
                }}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        body["customer"]["id"].as_i64().expect("customer id")
    }

    async fn price_point(&self, component: &str, body: Value) -> (u16, Value) {
        self.post(
            &format!("/components/{component}/price_points.json"),
            json!({ "price_point": body }),
        )
        .await
    }

    fn component(&self, handle: &str) -> i64 {
        self.ab.component_id(handle).expect("seeded component")
    }
}

async fn read(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, body)
}

fn volume(handle: &str) -> Value {
    json!({
        "name": "Acme volume", "handle": handle, "pricing_scheme": "volume",
        "prices": [
            {"starting_quantity": 1, "ending_quantity": 1000000, "unit_price": "0.0045"},
            {"starting_quantity": 1000001, "ending_quantity": null, "unit_price": 0.0035},
        ],
    })
}

fn brackets(prices: Value) -> Value {
    json!({"name": "Bad", "pricing_scheme": "tiered", "prices": prices})
}

/// The components of a subscription, keyed by component handle.
fn by_handle(list: &Value, handle: &str) -> Value {
    list.as_array()
        .and_then(|items| {
            items
                .iter()
                .map(|i| &i["component"])
                .find(|c| c["component_handle"] == handle)
        })
        .cloned()
        .unwrap_or(Value::Null)
}

#[tokio::test]
async fn wrong_or_missing_credentials_get_the_plain_text_401() {
    let site = Site::start().await;
    let http = reqwest::Client::new();
    for request in [
        http.get(site.url("/site.json"))
            .basic_auth("wrong-key", Some("x")),
        http.get(site.url("/site.json")),
        http.get(site.url("/customers/lookup.json?reference=x"))
            .basic_auth(&site.key, Some("")),
        http.post(site.url("/customers.json"))
            .basic_auth("wrong-key", Some("x"))
            .json(&json!({"customer": {}})),
    ] {
        let response = request.send().await.expect("request");
        assert_eq!(response.status().as_u16(), 401);
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(content_type.starts_with("text/plain"), "{content_type}");
        assert_eq!(
            response.text().await.unwrap(),
            "HTTP Basic: Access denied.\n"
        );
    }
    assert!(site.ab.customers().is_empty());
    let (status, body) = site.get("/site.json").await;
    assert_eq!(status, 200);
    assert_eq!(body["site"]["subdomain"], "dealbridge-sandbox");
}

#[tokio::test]
async fn a_customer_is_created_with_201_and_found_by_reference() {
    let site = Site::start().await;
    let (status, body) = site
        .post(
            "/customers.json",
            json!({"customer": {
                "first_name": "Grace", "last_name": "Hopper", "email": "grace@navy.example",
                "reference": "001SB0000000001AAA", "country": "US", "state": "VA",
            }}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let customer = &body["customer"];
    let id = customer["id"].as_i64().unwrap();
    assert_eq!(customer["organization"], "Grace Hopper");
    assert_eq!(customer["country_name"], "United States");
    assert_eq!(customer["state_name"], "Virginia");
    assert!(customer["created_at"].as_str().unwrap().ends_with("-05:00"));
    assert!(customer["cc_emails"].is_null());

    let (status, found) = site
        .get("/customers/lookup.json?reference=001SB0000000001AAA")
        .await;
    assert_eq!(status, 200);
    assert_eq!(found["customer"], *customer);
    let (status, read) = site.get(&format!("/customers/{id}.json")).await;
    assert_eq!((status, &read["customer"]), (200, customer));
    assert_eq!(site.ab.customers(), vec![customer.clone()]);

    let (status, _) = site.get("/customers/lookup.json?reference=nope").await;
    assert_eq!(status, 404);
    let (status, list) = site.get("/customers.json?q=NAVY").await;
    assert_eq!(status, 200);
    assert_eq!(list, json!([{ "customer": customer }]));
    let (_, none) = site.get("/customers.json?q=zzz").await;
    assert_eq!(none, json!([]));
    let (_, paged) = site.get("/customers.json?page=2").await;
    assert_eq!(paged, json!([]));
}

#[tokio::test]
async fn a_full_state_name_is_stored_as_sent() {
    // AB documents an ISO 3166-2 code but is not known to refuse a name: orgs without state
    // picklists hold "California" in BillingState.
    let site = Site::start().await;
    for (state, name) in [("California", Value::Null), ("ca", json!("California"))] {
        let (status, body) = site
            .post(
                "/customers.json",
                json!({"customer": {
                    "first_name": "Grace", "last_name": "Hopper", "email": "grace@navy.example",
                    "reference": format!("ref-{state}"), "country": "US", "state": state,
                }}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(body["customer"]["state"], state);
        assert_eq!(body["customer"]["state_name"], name);
    }
}

#[tokio::test]
async fn a_duplicate_customer_reference_is_a_422_with_the_live_message() {
    let site = Site::start().await;
    site.customer("001-dup").await;
    let (status, body) = site
        .post(
            "/customers.json",
            json!({"customer": {
                "first_name": "B", "last_name": "C", "email": "b@example.com",
                "reference": "001-dup",
            }}),
        )
        .await;
    assert_eq!(status, 422);
    assert_eq!(
        body,
        json!({"errors": ["Reference: must be unique - that value has been taken."]})
    );
    assert_eq!(site.ab.customers().len(), 1);
}

#[tokio::test]
async fn blank_customer_fields_are_listed_in_one_422() {
    let site = Site::start().await;
    let (status, body) = site
        .post(
            "/customers.json",
            json!({"customer": {"first_name": " ", "organization": "Acme"}}),
        )
        .await;
    assert_eq!(status, 422);
    assert_eq!(
        body,
        json!({"errors": [
            "First name: cannot be blank.",
            "Last name: cannot be blank.",
            "Email address: cannot be blank.",
        ]})
    );
    let (status, body) = site.post("/customers.json", json!({"person": {}})).await;
    assert_eq!(status, 422);
    assert_eq!(body, json!({"errors": {"customer": "can't be blank"}}));
    let (status, body) = site
        .post(
            "/customers.json",
            json!({"customer": {
                "first_name": "A", "last_name": "B", "email": "a@example.com",
                "country": "United States",
            }}),
        )
        .await;
    assert_eq!(status, 422);
    assert!(body["errors"][0].as_str().unwrap().starts_with("Country:"));
    assert!(site.ab.customers().is_empty());
}

#[tokio::test]
async fn volume_tiered_and_stairstep_price_points_keep_their_prices_as_exact_strings() {
    let site = Site::start().await;
    let api_calls = site.component("api-calls");
    let (status, body) = site
        .price_point(&api_calls.to_string(), volume("sf-vol-1"))
        .await;
    assert_eq!(status, 201, "{body}");
    let pp = &body["price_point"];
    assert_eq!(pp["type"], "catalog");
    assert_eq!(pp["component_id"], api_calls);
    assert_eq!(pp["handle"], "sf-vol-1");
    assert_eq!(pp["pricing_scheme"], "volume");
    let prices: Vec<(Value, Value, Value)> = pp["prices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["starting_quantity"].clone(),
                p["ending_quantity"].clone(),
                p["unit_price"].clone(),
            )
        })
        .collect();
    assert_eq!(
        prices,
        [
            (json!(1), json!(1000000), json!("0.0045")),
            (json!(1000001), Value::Null, json!("0.0035")),
        ]
    );

    let (status, body) = site
        .price_point(
            "handle:storage-gb",
            json!({"name": "Tiered storage", "pricing_scheme": "tiered", "prices": [
                {"starting_quantity": "0", "ending_quantity": "100", "unit_price": "0.25"},
                {"starting_quantity": "101", "unit_price": "0.12345678"},
            ]}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["price_point"]["handle"], "tiered-storage");
    assert_eq!(body["price_point"]["prices"][0]["unit_price"], "0.25");
    assert_eq!(body["price_point"]["prices"][1]["unit_price"], "0.12345678");

    let (status, body) = site
        .price_point(
            &site.component("support-seats").to_string(),
            json!({"name": "Seats", "handle": "seats-stair", "pricing_scheme": "stairstep", "prices": [
                {"starting_quantity": 1, "ending_quantity": 10, "unit_price": 1000},
                {"starting_quantity": 11, "ending_quantity": 50, "unit_price": "4000.50"},
                {"starting_quantity": 51, "unit_price": "9000"},
            ]}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let unit_prices: Vec<&Value> = body["price_point"]["prices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| &p["unit_price"])
        .collect();
    assert_eq!(
        unit_prices,
        [&json!("1000.0"), &json!("4000.5"), &json!("9000.0")]
    );
    assert_eq!(
        body["price_point"]["prices"][1]["formatted_unit_price"],
        "$4,000.50"
    );

    // 5 seeded defaults and the 3 new ones.
    assert_eq!(site.ab.price_points().len(), 8);
    let (status, list) = site
        .get(&format!("/components/{api_calls}/price_points.json"))
        .await;
    assert_eq!(status, 200);
    let types: Vec<&Value> = list["price_points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| &p["type"])
        .collect();
    assert_eq!(types, [&json!("default"), &json!("catalog")]);
}

#[tokio::test]
async fn each_invalid_bracket_set_gets_the_documented_422() {
    let site = Site::start().await;
    let cid = site.component("api-calls").to_string();
    let gap = "Successive brackets may not have gaps in quantity (i.e. if one bracket ends at quantity 10, the next must begin at quantity 11)";
    let overlap = "There cannot be any overlapping bracket ranges";
    let cases = [
        (
            brackets(json!([])),
            json!({"errors": {"prices": ["At least 1 price bracket must be defined"]}}),
        ),
        (
            json!({"name": "No prices", "pricing_scheme": "volume"}),
            json!({"errors": {"prices": ["At least 1 price bracket must be defined"]}}),
        ),
        (
            brackets(json!([
                {"starting_quantity": 1, "ending_quantity": 10, "unit_price": "1"},
                {"starting_quantity": 12, "unit_price": "0.5"},
            ])),
            json!({"errors": {"prices": [gap]}}),
        ),
        (
            brackets(json!([
                {"starting_quantity": 1, "ending_quantity": 10, "unit_price": "1"},
                {"starting_quantity": 10, "unit_price": "0.5"},
            ])),
            json!({"errors": {"prices": [overlap]}}),
        ),
        (
            // Only the last bracket may be open.
            brackets(json!([
                {"starting_quantity": 1, "unit_price": "1"},
                {"starting_quantity": 11, "unit_price": "0.5"},
            ])),
            json!({"errors": {"prices": [overlap]}}),
        ),
        (
            brackets(json!([
                {"starting_quantity": 5, "ending_quantity": 5, "unit_price": "1"},
            ])),
            json!({"errors": {"prices.ending_quantity": [
                "Ending quantity: must be greater than the low end bracket quantity, if given"
            ]}}),
        ),
    ];
    for (body, expected) in cases {
        let (status, got) = site.price_point(&cid, body.clone()).await;
        assert_eq!(status, 422, "{body}");
        assert_eq!(got, expected, "{body}");
    }
    let (status, got) = site
        .price_point(
            &cid,
            json!({"name": "X", "pricing_scheme": "flat", "prices": [
                {"starting_quantity": 1, "unit_price": "0.000000001"}]}),
        )
        .await;
    assert_eq!(status, 422);
    assert!(got["errors"]["pricing_scheme"].is_array(), "{got}");
    assert!(got["errors"]["prices.unit_price"].is_array(), "{got}");
    let (status, got) = site
        .price_point(
            &cid,
            json!({"pricing_scheme": "per_unit", "prices": [
                {"starting_quantity": 1, "ending_quantity": 10, "unit_price": 1},
                {"starting_quantity": 11, "unit_price": 1}]}),
        )
        .await;
    assert_eq!(status, 422);
    assert_eq!(got["errors"]["name"], json!(["Name: cannot be blank."]));
    assert!(got["errors"]["prices"].is_array(), "{got}");
    assert_eq!(site.ab.price_points().len(), 5);
}

#[tokio::test]
async fn a_price_point_handle_is_unique_within_its_component() {
    let site = Site::start().await;
    let api_calls = site.component("api-calls").to_string();
    let storage = site.component("storage-gb").to_string();
    assert_eq!(
        site.price_point(&api_calls, volume("acme-2026")).await.0,
        201
    );
    let (status, body) = site.price_point(&api_calls, volume("acme-2026")).await;
    assert_eq!(status, 422);
    assert_eq!(
        body,
        json!({"errors": {"handle": ["Handle: This handle is already in use."]}})
    );
    assert_eq!(site.price_point(&storage, volume("acme-2026")).await.0, 201);
    let (status, body) = site.price_point(&api_calls, volume("Acme 2026")).await;
    assert_eq!(status, 422);
    assert!(
        body["errors"]["handle"][0]
            .as_str()
            .unwrap()
            .starts_with("Handle:")
    );
}

#[tokio::test]
async fn price_points_and_components_are_read_by_id_or_handle() {
    let site = Site::start().await;
    let cid = site.component("api-calls");
    let (_, created) = site
        .price_point("handle:api-calls", volume("acme-vol"))
        .await;
    let pp = &created["price_point"];
    let id = pp["id"].as_i64().unwrap();
    for path in [
        format!("/components/{cid}/price_points/handle:acme-vol.json"),
        format!("/components/handle:api-calls/price_points/{id}.json"),
        "/components/handle:api-calls/price_points/handle%3Aacme-vol.json".to_string(),
    ] {
        let (status, body) = site.get(&path).await;
        assert_eq!(status, 200, "{path}");
        assert_eq!(body["price_point"], *pp, "{path}");
    }
    let (status, _) = site
        .get(&format!(
            "/components/{cid}/price_points/handle:missing.json"
        ))
        .await;
    assert_eq!(status, 404);
    // A price point of another component is not found under this one.
    let storage = site.component("storage-gb");
    let (status, _) = site
        .get(&format!("/components/{storage}/price_points/{id}.json"))
        .await;
    assert_eq!(status, 404);

    let (status, component) = site.get("/components/lookup.json?handle=api-calls").await;
    assert_eq!(status, 200);
    let component = &component["component"];
    assert_eq!(component["id"], cid);
    assert_eq!(component["kind"], "metered_component");
    assert_eq!(component["unit_name"], "API call");
    assert_eq!(component["pricing_scheme"], "per_unit");
    assert_eq!(component["prices"][0]["unit_price"], "0.005");
    let default_id = component["default_price_point_id"].as_i64().unwrap();
    let (_, default) = site
        .get(&format!("/components/{cid}/price_points/{default_id}.json"))
        .await;
    assert_eq!(default["price_point"]["type"], "default");
    assert_eq!(default["price_point"]["handle"], "api-calls-default");
    let (status, same) = site.get("/components/handle:api-calls.json").await;
    assert_eq!((status, &same["component"]), (200, component));
    let (status, same) = site.get(&format!("/components/{cid}.json")).await;
    assert_eq!((status, &same["component"]), (200, component));
    assert_eq!(site.get("/components/lookup.json?handle=nope").await.0, 404);
}

#[tokio::test]
async fn a_subscription_created_with_handle_ids_reads_back_its_requested_price_points() {
    let site = Site::start().await;
    let customer = site.customer("001-sub").await;
    let (_, vol) = site
        .price_point("handle:api-calls", volume("acme-vol"))
        .await;
    let vol_id = vol["price_point"]["id"].as_i64().unwrap();
    let seats = site.component("support-seats");
    let (_, stair) = site
        .price_point(
            &seats.to_string(),
            json!({"name": "Seats", "handle": "acme-seats", "pricing_scheme": "per_unit",
                   "prices": [{"starting_quantity": 1, "unit_price": "120"}]}),
        )
        .await;
    let seats_pp = stair["price_point"]["id"].as_i64().unwrap();
    let (status, body) = site
        .post(
            "/subscriptions.json",
            json!({"subscription": {
                "product_handle": "annual-usage",
                "customer_id": customer,
                "reference": "006SB0000000001AAA",
                "payment_collection_method": "remittance",
                "components": [
                    {"component_id": "handle:api-calls", "price_point_id": "handle:acme-vol"},
                    {"component_id": seats, "price_point_id": seats_pp, "allocated_quantity": "5"},
                    {"component_id": "handle:platform-fee", "enabled": true},
                ],
            }}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let sub = &body["subscription"];
    assert_eq!(sub["state"], "active");
    assert_eq!(sub["reference"], "006SB0000000001AAA");
    assert_eq!(sub["customer"]["id"], customer);
    assert_eq!(sub["product"]["handle"], "annual-usage");
    assert_eq!(sub["product"]["product_family"]["handle"], "dealbridge");
    assert_eq!(sub["payment_collection_method"], "remittance");
    assert!(sub.get("components").is_none());
    let id = sub["id"].as_i64().unwrap();

    let (status, list) = site
        .get(&format!(
            "/subscriptions/{id}/components.json?price_point_ids=not_null"
        ))
        .await;
    assert_eq!(status, 200);
    assert_eq!(list.as_array().unwrap().len(), 3);
    let api = by_handle(&list, "api-calls");
    assert_eq!(api["price_point_id"], vol_id);
    assert_eq!(api["price_point_handle"], "acme-vol");
    assert_eq!(api["price_point_type"], "catalog");
    assert_eq!(api["pricing_scheme"], "volume");
    assert_eq!(api["subscription_id"], id);
    let seats_row = by_handle(&list, "support-seats");
    assert_eq!(seats_row["price_point_id"], seats_pp);
    assert_eq!(seats_row["allocated_quantity"], 5);
    let fee = by_handle(&list, "platform-fee");
    assert_eq!(fee["enabled"], true);
    assert_eq!(fee["price_point_type"], "default");

    // Without the filter, the family's other components are listed without a price point.
    let (_, all) = site
        .get(&format!("/subscriptions/{id}/components.json"))
        .await;
    assert_eq!(all.as_array().unwrap().len(), 5);
    assert!(by_handle(&all, "storage-gb")["price_point_id"].is_null());
    assert_eq!(site.ab.subscription_components(id).len(), 5);

    let (status, read) = site.get(&format!("/subscriptions/{id}.json")).await;
    assert_eq!((status, &read["subscription"]), (200, sub));
    let (_, of_customer) = site
        .get(&format!("/customers/{customer}/subscriptions.json"))
        .await;
    assert_eq!(of_customer, json!([{ "subscription": sub }]));
    assert_eq!(site.ab.subscriptions(), vec![sub.clone()]);
}

#[tokio::test]
async fn an_unknown_price_point_silently_falls_back_to_the_default() {
    let site = Site::start().await;
    let customer = site.customer("001-fallback").await;
    let storage = site.component("storage-gb");
    let (_, other) = site
        .price_point(&storage.to_string(), volume("storage-vol"))
        .await;
    let foreign = other["price_point"]["id"].as_i64().unwrap();
    let (status, body) = site
        .post(
            "/subscriptions.json",
            json!({"subscription": {
                "product_handle": "monthly-usage", "customer_id": customer,
                "components": [
                    {"component_id": "handle:api-calls", "price_point_id": 987654321},
                    {"component_id": "handle:support-seats", "price_point_id": foreign, "allocated_quantity": 2},
                    {"component_id": "handle:premium-support", "price_point_id": "handle:nope", "enabled": true},
                ],
            }}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let id = body["subscription"]["id"].as_i64().unwrap();
    let components = site.ab.subscription_components(id);
    let list = json!(
        components
            .into_iter()
            .map(|c| json!({"component": c}))
            .collect::<Vec<_>>()
    );
    for handle in ["api-calls", "support-seats", "premium-support"] {
        let row = by_handle(&list, handle);
        assert_eq!(row["price_point_type"], "default", "{handle}");
        assert_eq!(row["price_point_handle"], format!("{handle}-default"));
    }
}

#[tokio::test]
async fn force_default_price_point_overrides_the_next_subscription_only() {
    let site = Site::start().await;
    let customer = site.customer("001-forced").await;
    let (_, vol) = site
        .price_point("handle:api-calls", volume("acme-vol"))
        .await;
    let vol_id = vol["price_point"]["id"].as_i64().unwrap();
    site.ab.force_default_price_point("api-calls");
    let mut ids = Vec::new();
    for reference in ["006-a", "006-b"] {
        let (status, body) = site
            .post(
                "/subscriptions.json",
                json!({"subscription": {
                    "product_handle": "monthly-usage", "customer_id": customer,
                    "reference": reference,
                    "components": [{"component_id": "handle:api-calls", "price_point_id": vol_id}],
                }}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        ids.push(body["subscription"]["id"].as_i64().unwrap());
    }
    let (_, first) = site
        .get(&format!("/subscriptions/{}/components.json", ids[0]))
        .await;
    let default_id = site.get("/components/lookup.json?handle=api-calls").await.1["component"]
        ["default_price_point_id"]
        .clone();
    assert_eq!(by_handle(&first, "api-calls")["price_point_id"], default_id);
    let (_, second) = site
        .get(&format!("/subscriptions/{}/components.json", ids[1]))
        .await;
    assert_eq!(by_handle(&second, "api-calls")["price_point_id"], vol_id);
}

#[tokio::test]
async fn a_subscription_is_found_by_reference_and_its_reference_is_unique() {
    let site = Site::start().await;
    let customer = site.customer("001-ref").await;
    let body = json!({"subscription": {
        "product_handle": "monthly-usage", "customer_reference": "001-ref",
        "reference": "006-unique", "payment_collection_method": "remittance",
    }});
    let (status, created) = site.post("/subscriptions.json", body.clone()).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["subscription"]["customer"]["id"], customer);
    let (status, found) = site
        .get("/subscriptions/lookup.json?reference=006-unique")
        .await;
    assert_eq!(status, 200);
    assert_eq!(found, created);
    assert_eq!(
        site.get("/subscriptions/lookup.json?reference=006-other")
            .await
            .0,
        404
    );
    let (status, again) = site.post("/subscriptions.json", body).await;
    assert_eq!(status, 422);
    assert_eq!(
        again,
        json!({"errors": ["Reference: must be unique - that value has been taken."]})
    );
    assert_eq!(site.ab.subscriptions().len(), 1);
}

#[tokio::test]
async fn an_unknown_customer_product_or_component_is_a_422_and_creates_nothing() {
    let site = Site::start().await;
    let customer = site.customer("001-x").await;
    let (status, body) = site
        .post(
            "/subscriptions.json",
            json!({"subscription": {"product_handle": "monthly-usage", "customer_id": 424242}}),
        )
        .await;
    assert_eq!(status, 422);
    assert_eq!(
        body,
        json!({"errors": ["A Customer must be specified for the subscription to be valid."]})
    );
    let (status, body) = site
        .post(
            "/subscriptions.json",
            json!({"subscription": {"product_handle": "monthly-usage", "customer_reference": "nobody"}}),
        )
        .await;
    assert_eq!(status, 422);
    assert_eq!(
        body["errors"],
        json!(["A Customer must be specified for the subscription to be valid."])
    );
    let (status, body) = site
        .post(
            "/subscriptions.json",
            json!({"subscription": {"product_handle": "weekly", "customer_id": customer}}),
        )
        .await;
    assert_eq!(status, 422);
    assert_eq!(body["errors"], json!(["Product: could not be found."]));
    let (status, body) = site
        .post(
            "/subscriptions.json",
            json!({"subscription": {
                "product_handle": "monthly-usage", "customer_id": customer,
                "reference": "006-x",
                "components": [
                    {"component_id": "handle:api-calls", "price_point_id": "handle:api-calls-default"},
                    {"component_id": "handle:nope"},
                ],
            }}),
        )
        .await;
    assert_eq!(status, 422);
    assert_eq!(
        body["errors"],
        json!(["Component: 'handle:nope' could not be found."])
    );
    assert!(site.ab.subscriptions().is_empty());
    assert_eq!(
        site.get("/subscriptions/lookup.json?reference=006-x")
            .await
            .0,
        404
    );
}

#[tokio::test]
async fn a_repeated_uniqueness_token_is_a_409_for_60_minutes() {
    let site = Site::start().await;
    let create = |reference: &str| {
        json!({
            "customer": {"first_name": "T", "last_name": "K", "email": "t@example.com", "reference": reference},
            "uniqueness_token": "3f0c1f2e-token",
        })
    };
    assert_eq!(site.post("/customers.json", create("001-t1")).await.0, 201);
    let duplicate = json!({"errors": ["DuplicatePrevention::DuplicateSubmissionError"]});
    let (status, body) = site.post("/customers.json", create("001-t2")).await;
    assert_eq!((status, &body), (409, &duplicate));
    site.ab.advance_clock(Duration::from_secs(59 * 60));
    let (status, body) = site.post("/customers.json", create("001-t2")).await;
    assert_eq!((status, &body), (409, &duplicate));
    assert_eq!(site.ab.customers().len(), 1);
    assert_eq!(
        site.get("/customers/lookup.json?reference=001-t2").await.0,
        404
    );
    site.ab.advance_clock(Duration::from_secs(2 * 60));
    assert_eq!(site.post("/customers.json", create("001-t2")).await.0, 201);
    assert_eq!(site.ab.customers().len(), 2);

    // The token of a request that was answered with a 422 is remembered too, across endpoints.
    let (status, _) = site
        .post(
            "/subscriptions.json",
            json!({"subscription": {"product_handle": "monthly-usage"}, "uniqueness_token": "u-2"}),
        )
        .await;
    assert_eq!(status, 422);
    let (status, body) = site
        .post(
            "/customers.json",
            json!({"customer": {"first_name": "A", "last_name": "B", "email": "a@example.com"},
                   "uniqueness_token": "u-2"}),
        )
        .await;
    assert_eq!((status, body), (409, duplicate));
    assert_eq!(site.ab.customers().len(), 2);
}

#[tokio::test]
async fn five_overlapping_requests_get_exactly_one_429() {
    let site = Site::start().await;
    site.ab
        .observer()
        .set_default_latency(Duration::from_millis(400));
    let mut tasks = Vec::new();
    for _ in 0..5 {
        let request = site
            .http
            .get(site.url("/site.json"))
            .basic_auth(&site.key, Some("x"));
        tasks.push(tokio::spawn(async move {
            let response = request.send().await.expect("request");
            let status = response.status().as_u16();
            (status, response.text().await.expect("body"))
        }));
    }
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.expect("task"));
    }
    let denied: Vec<&(u16, String)> = answers.iter().filter(|(s, _)| *s == 429).collect();
    assert_eq!(denied.len(), 1, "{answers:?}");
    assert!(
        denied[0]
            .1
            .starts_with("Your request was denied due to a usage violation. You can track this request with support by referencing ")
    );
    assert_eq!(answers.iter().filter(|(s, _)| *s == 200).count(), 4);
    let logged: Vec<u16> = site
        .ab
        .observer()
        .requests()
        .iter()
        .filter(|r| r.route == routes::SITE)
        .map(|r| r.status)
        .collect();
    assert_eq!(logged.iter().filter(|s| **s == 429).count(), 1);

    // Slots are released: the next request goes through.
    site.ab.observer().set_default_latency(Duration::ZERO);
    assert_eq!(site.get("/site.json").await.0, 200);
}

#[tokio::test]
async fn writes_need_a_json_content_type_and_valid_json() {
    let site = Site::start().await;
    let response = site
        .http
        .post(site.url("/customers.json"))
        .basic_auth(&site.key, Some("x"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("customer[first_name]=A&customer[last_name]=B&customer[email]=a%40b.c")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 422);
    let body: Value = response.json().await.unwrap();
    assert!(body["errors"][0].as_str().unwrap().contains("Content-Type"));
    let response = site
        .http
        .post(site.url("/customers.json"))
        .basic_auth(&site.key, Some("x"))
        .header("content-type", "application/json; charset=utf-8")
        .body("{\"customer\": {")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);
    assert!(site.ab.customers().is_empty());
    assert_eq!(site.ab.observer().count(routes::CUSTOMERS_CREATE), 2);
}

#[tokio::test]
async fn unknown_ids_and_paths_are_404() {
    let site = Site::start().await;
    let cid = site.component("api-calls");
    for path in [
        "/customers/999999.json".to_string(),
        "/customers/999999/subscriptions.json".into(),
        "/subscriptions/999999.json".into(),
        "/subscriptions/999999/components.json".into(),
        "/components/999999.json".into(),
        "/components/handle:nope.json".into(),
        "/components/999999/price_points.json".into(),
        format!("/components/{cid}/price_points/999999.json"),
        "/products/999999.json".into(),
        "/products/handle/nope.json".into(),
        format!("/subscriptions/999999/components/{cid}/allocations.json"),
        "/no/such/path.json".into(),
    ] {
        assert_eq!(site.get(&path).await.0, 404, "{path}");
    }
    let (status, _) = site.price_point("handle:nope", volume("x")).await;
    assert_eq!(status, 404);
    let response = reqwest::Client::new()
        .get(site.url("/no/such/path.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 401);
}

/// A volume price point on `api-calls` with its own prices per currency
/// (`use_site_exchange_rate: false`): its id and its bracket ids.
async fn own_rates(site: &Site, handle: &str) -> (i64, Vec<i64>) {
    let mut body = volume(handle);
    body["use_site_exchange_rate"] = json!(false);
    let (status, created) = site.price_point("handle:api-calls", body).await;
    assert_eq!(status, 201, "{created}");
    let pp = &created["price_point"];
    let brackets = pp["prices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_i64().expect("bracket id"))
        .collect();
    (pp["id"].as_i64().unwrap(), brackets)
}

/// EUR prices for every bracket of `price_point`.
async fn euro_prices(site: &Site, price_point: i64, brackets: &[i64]) -> (u16, Value) {
    let prices: Vec<Value> = brackets
        .iter()
        .zip(["0.1", "0.08"])
        .map(|(id, price)| json!({"currency": "EUR", "price": price, "price_id": id}))
        .collect();
    site.post(
        &format!("/price_points/{price_point}/currency_prices.json"),
        json!({ "currency_prices": prices }),
    )
    .await
}

fn allocation_error(component_id: i64, on: &str, message: &str) -> Value {
    json!({"errors": [{"kind": "allocation", "component_id": component_id, "on": on, "message": message}]})
}

#[tokio::test]
async fn the_site_reports_its_currencies() {
    let site = Site::start().await;
    let (status, body) = site.get("/site.json").await;
    assert_eq!(status, 200);
    assert_eq!(body["site"]["currency"], "USD");
    assert_eq!(body["site"]["non_primary_currencies"], json!([]));

    let site = Site::start_with(AbSettings {
        currency: "CAD".into(),
        non_primary_currencies: vec!["EUR".into(), "GBP".into()],
        ..AbSettings::default()
    })
    .await;
    let (status, body) = site.get("/site.json").await;
    assert_eq!(status, 200);
    assert_eq!(body["site"]["currency"], "CAD");
    assert_eq!(
        body["site"]["non_primary_currencies"],
        json!(["EUR", "GBP"])
    );
}

#[tokio::test]
async fn products_are_read_by_id_and_by_handle() {
    let site = Site::start().await;
    let (status, body) = site.get("/products/handle/annual-usage.json").await;
    assert_eq!(status, 200, "{body}");
    let product = &body["product"];
    assert_eq!(product["handle"], "annual-usage");
    assert_eq!(product["name"], "Annual Usage");
    assert_eq!(product["price_in_cents"], 0);
    assert_eq!(product["interval"], 12);
    assert_eq!(product["interval_unit"], "month");
    assert!(product["product_family"]["id"].is_i64());
    assert_eq!(product["product_family"]["name"], "dealbridge");
    assert_eq!(product["product_family"]["handle"], "dealbridge");
    let id = product["id"].as_i64().unwrap();
    let (status, by_id) = site.get(&format!("/products/{id}.json")).await;
    assert_eq!((status, &by_id), (200, &body));
    let (_, monthly) = site.get("/products/handle/monthly-usage.json").await;
    assert_eq!(monthly["product"]["interval"], 1);

    for path in [
        "/products/handle/weekly.json",
        "/products/999999.json",
        // Not the documented path.
        "/products/handle:annual-usage.json",
    ] {
        assert_eq!(site.get(path).await.0, 404, "{path}");
    }
    assert_eq!(site.ab.observer().count(routes::PRODUCT_BY_HANDLE), 3);
    assert_eq!(site.ab.observer().count(routes::PRODUCT_READ), 3);
}

#[tokio::test]
async fn a_price_point_keeps_use_site_exchange_rate_and_its_bracket_ids() {
    let site = Site::start().await;
    let cid = site.component("api-calls");
    let mut body = volume("own-rates");
    body["use_site_exchange_rate"] = json!(false);
    let (status, created) = site.price_point(&cid.to_string(), body).await;
    assert_eq!(status, 201, "{created}");
    let pp = &created["price_point"];
    let id = pp["id"].as_i64().unwrap();
    assert_eq!(pp["use_site_exchange_rate"], false);
    let prices = pp["prices"].as_array().unwrap();
    let ids: Vec<i64> = prices
        .iter()
        .map(|p| p["id"].as_i64().expect("bracket id"))
        .collect();
    assert_eq!(ids.len(), 2);
    assert_ne!(ids[0], ids[1]);
    assert!(prices.iter().all(|p| p["price_point_id"] == id));

    let (_, read) = site
        .get(&format!("/components/{cid}/price_points/{id}.json"))
        .await;
    assert_eq!(read["price_point"], *pp);
    let (_, list) = site
        .get(&format!("/components/{cid}/price_points.json"))
        .await;
    let flags: Vec<&Value> = list["price_points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| &p["use_site_exchange_rate"])
        .collect();
    assert_eq!(flags, [&json!(true), &json!(false)]);
    let stored = site
        .ab
        .price_points()
        .into_iter()
        .find(|p| p["id"] == id)
        .unwrap();
    assert_eq!(stored["use_site_exchange_rate"], false);
    assert_eq!(stored["currency_prices"], json!([]));

    // Without the flag, the documented default.
    let (_, default) = site
        .price_point(&cid.to_string(), volume("site-rates"))
        .await;
    assert_eq!(default["price_point"]["use_site_exchange_rate"], true);
    let mut bad = volume("bad-flag");
    bad["use_site_exchange_rate"] = json!("no");
    let (status, refused) = site.price_point(&cid.to_string(), bad).await;
    assert_eq!(status, 422);
    assert_eq!(
        refused,
        json!({"errors": {"use_site_exchange_rate": ["use_site_exchange_rate: must be true or false."]}})
    );
}

#[tokio::test]
async fn currency_prices_are_created_listed_and_updated() {
    let site = Site::start_eur().await;
    let cid = site.component("api-calls");
    let (pp, brackets) = own_rates(&site, "eur-vol").await;
    let (status, body) = euro_prices(&site, pp, &brackets).await;
    assert_eq!(status, 200, "{body}");
    let ids: Vec<i64> = body["currency_prices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_i64().expect("currency price id"))
        .collect();
    assert_eq!(ids.len(), 2);
    let created = json!([
        {"id": ids[0], "currency": "EUR", "price": "0.1", "formatted_price": "€0,10",
         "price_id": brackets[0], "price_point_id": pp},
        {"id": ids[1], "currency": "EUR", "price": "0.08", "formatted_price": "€0,08",
         "price_id": brackets[1], "price_point_id": pp},
    ]);
    assert_eq!(body, json!({ "currency_prices": created }));

    let (status, list) = site
        .get(&format!(
            "/components/{cid}/price_points.json?currency_prices=true"
        ))
        .await;
    assert_eq!(status, 200);
    let listed: Vec<&Value> = list["price_points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| &p["currency_prices"])
        .collect();
    assert_eq!(listed, [&json!([]), &created]);
    let (_, plain) = site
        .get(&format!("/components/{cid}/price_points.json"))
        .await;
    assert!(plain["price_points"][1].get("currency_prices").is_none());
    let (_, read) = site
        .get(&format!(
            "/components/{cid}/price_points/{pp}.json?currency_prices=true"
        ))
        .await;
    assert_eq!(read["price_point"]["currency_prices"], created);

    let path = format!("/price_points/{pp}/currency_prices.json");
    let (status, updated) = site
        .put(
            &path,
            json!({"currency_prices": [{"id": ids[0], "price": "51"}]}),
        )
        .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(
        updated,
        json!({"currency_prices": [
            {"id": ids[0], "currency": "EUR", "price": "51.0", "formatted_price": "€51,00",
             "price_id": brackets[0], "price_point_id": pp},
        ]})
    );
    let stored = site
        .ab
        .price_points()
        .into_iter()
        .find(|p| p["id"] == pp)
        .unwrap();
    assert_eq!(stored["currency_prices"][0]["price"], "51.0");
    assert_eq!(stored["currency_prices"][1]["price"], "0.08");

    // An update naming a currency price of no price point, or a bad price, changes nothing.
    for (body, expected) in [
        (
            json!({"currency_prices": [{"id": 424242, "price": "1"}]}),
            json!({"errors": {"base": ["all prices must belong to the price point"]}}),
        ),
        (
            json!({"currency_prices": [{"id": ids[1], "price": "-3"}]}),
            json!({"errors": {"currency_prices[0].price": ["Price: must be greater than or equal to 0."]}}),
        ),
        (
            json!({"currency_prices": [{"id": ids[1], "currency": "JPY"}]}),
            json!({"errors": {"currency_prices[0].currency": ["Currency: is not one of the allowed values."]}}),
        ),
    ] {
        let (status, answer) = site.put(&path, body.clone()).await;
        assert_eq!((status, &answer), (422, &expected), "{body}");
    }
    let stored = site
        .ab
        .price_points()
        .into_iter()
        .find(|p| p["id"] == pp)
        .unwrap();
    assert_eq!(stored["currency_prices"][1]["price"], "0.08");
    assert_eq!(site.ab.observer().count(routes::CURRENCY_PRICES_CREATE), 1);
    assert_eq!(site.ab.observer().count(routes::CURRENCY_PRICES_UPDATE), 4);
}

#[tokio::test]
async fn currency_prices_outside_the_site_currencies_or_on_custom_price_points_are_refused() {
    let site = Site::start_eur().await;
    let customer = site.customer("001-cp").await;
    let (pp, brackets) = own_rates(&site, "eur-vol").await;
    let (_, other_brackets) = own_rates(&site, "other-vol").await;
    let path = format!("/price_points/{pp}/currency_prices.json");
    let one = |currency: Value, price: Value, price_id: i64| json!({"currency_prices": [{"currency": currency, "price": price, "price_id": price_id}]});
    let b0 = brackets[0];
    let not_allowed = json!({"errors": {"currency_prices[0].currency": ["Currency: is not one of the allowed values."]}});
    let blank = json!({"errors": {"currency_prices[0].currency": [
        "Currency: cannot be blank.", "Currency: is not one of the allowed values.",
    ]}});
    let foreign = json!({"errors": {"base": ["all prices must belong to the price point"]}});
    let exists = json!({"errors": {"base": ["Pricing already exists for this currency."]}});
    let cases = [
        (one(json!("JPY"), json!("12"), b0), not_allowed.clone()),
        // The primary currency is the brackets' own.
        (one(json!("USD"), json!("0.1"), b0), not_allowed.clone()),
        (one(json!(""), json!("0.1"), b0), blank.clone()),
        (one(Value::Null, json!("0.1"), b0), blank),
        (
            one(json!("EUR"), json!("-0.1"), b0),
            json!({"errors": {"currency_prices[0].price": ["Price: must be greater than or equal to 0."]}}),
        ),
        (
            one(json!("EUR"), json!("ten"), b0),
            json!({"errors": {"currency_prices[0].price": ["Price: is not a number."]}}),
        ),
        (one(json!("EUR"), json!("0.1"), 424242), foreign.clone()),
        (one(json!("EUR"), json!("0.1"), other_brackets[0]), foreign),
        (
            json!({"currency_prices": [
                {"currency": "EUR", "price": "0.1", "price_id": b0},
                {"currency": "EUR", "price": "0.2", "price_id": b0},
            ]}),
            exists.clone(),
        ),
        (
            json!({"currency_prices": []}),
            json!({"errors": {"currency_prices": ["Currency prices: cannot be blank."]}}),
        ),
    ];
    for (body, expected) in cases {
        let (status, answer) = site.post(&path, body.clone()).await;
        assert_eq!((status, &answer), (422, &expected), "{body}");
    }
    let stored_prices = |site: &Site| {
        site.ab
            .price_points()
            .into_iter()
            .find(|p| p["id"] == pp)
            .unwrap()["currency_prices"]
            .clone()
    };
    assert_eq!(stored_prices(&site), json!([]));

    // A second EUR price for a bracket that has one.
    let (status, _) = site.post(&path, one(json!("EUR"), json!("0.1"), b0)).await;
    assert_eq!(status, 200);
    let (status, again) = site.post(&path, one(json!("EUR"), json!("0.2"), b0)).await;
    assert_eq!((status, again), (422, exists));
    assert_eq!(stored_prices(&site).as_array().unwrap().len(), 1);

    // A custom (subscription-specific) price point takes none.
    let id = site
        .subscription(json!({
            "product_handle": "monthly-usage", "customer_id": customer,
            "components": [{"component_id": "handle:api-calls", "custom_price": {
                "pricing_scheme": "per_unit", "prices": [{"starting_quantity": 1, "unit_price": "0.002"}],
            }}],
        }))
        .await;
    let custom = by_handle(&site.components_of(id).await, "api-calls");
    assert_eq!(custom["price_point_type"], "custom");
    let custom_id = custom["price_point_id"].as_i64().unwrap();
    let custom_bracket = site
        .ab
        .price_points()
        .into_iter()
        .find(|p| p["id"] == custom_id)
        .unwrap()["prices"][0]["id"]
        .as_i64()
        .unwrap();
    let (status, body) = site
        .post(
            &format!("/price_points/{custom_id}/currency_prices.json"),
            one(json!("EUR"), json!("0.002"), custom_bracket),
        )
        .await;
    assert_eq!(status, 422);
    assert_eq!(
        body,
        json!({"errors": {"base": ["Currency prices cannot be defined on custom (subscription-specific) price points."]}})
    );

    let (status, _) = site
        .post(
            "/price_points/999999/currency_prices.json",
            one(json!("EUR"), json!("1"), b0),
        )
        .await;
    assert_eq!(status, 404);

    // A site without other currencies allows none.
    let usd_only = Site::start().await;
    let (pp, brackets) = own_rates(&usd_only, "eur-vol").await;
    let (status, body) = euro_prices(&usd_only, pp, &brackets).await;
    assert_eq!(status, 422);
    assert_eq!(
        body,
        json!({"errors": {
            "currency_prices[0].currency": ["Currency: is not one of the allowed values."],
            "currency_prices[1].currency": ["Currency: is not one of the allowed values."],
        }})
    );
}

#[tokio::test]
async fn a_subscription_in_a_non_primary_currency_needs_prices_in_it_unless_it_uses_the_site_rate()
{
    let site = Site::start_eur().await;
    let customer = site.customer("001-eur").await;
    let (priced, brackets) = own_rates(&site, "eur-priced").await;
    assert_eq!(euro_prices(&site, priced, &brackets).await.0, 200);
    // One of two brackets priced in EUR is not enough.
    let (unpriced, unpriced_brackets) = own_rates(&site, "eur-unpriced").await;
    let (status, _) = site
        .post(
            &format!("/price_points/{unpriced}/currency_prices.json"),
            json!({"currency_prices": [{"currency": "EUR", "price": "0.1", "price_id": unpriced_brackets[0]}]}),
        )
        .await;
    assert_eq!(status, 200);
    let (_, site_rate) = site
        .price_point("handle:api-calls", volume("site-rate"))
        .await;
    let site_rate = site_rate["price_point"]["id"].as_i64().unwrap();

    let create = |currency: Value, price_point: i64, reference: &str| {
        json!({"subscription": {
            "product_handle": "monthly-usage", "customer_id": customer, "reference": reference,
            "currency": currency,
            "components": [
                {"component_id": "handle:api-calls", "price_point_id": price_point},
                {"component_id": "handle:support-seats", "allocated_quantity": 2},
            ],
        }})
    };
    let (status, body) = site
        .post(
            "/subscriptions.json",
            create(json!("EUR"), priced, "006-eur"),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["subscription"]["currency"], "EUR");
    let id = body["subscription"]["id"].as_i64().unwrap();
    let list = site.components_of(id).await;
    for handle in ["api-calls", "support-seats", "storage-gb"] {
        assert_eq!(by_handle(&list, handle)["currency"], "EUR", "{handle}");
    }
    let api = by_handle(&list, "api-calls");
    assert_eq!(api["price_point_id"], priced);
    assert_eq!(api["use_site_exchange_rate"], false);
    assert_eq!(
        by_handle(&list, "support-seats")["use_site_exchange_rate"],
        true
    );

    let (status, body) = site
        .post(
            "/subscriptions.json",
            create(json!("EUR"), unpriced, "006-eur-2"),
        )
        .await;
    assert_eq!(
        (status, body),
        (
            422,
            json!({"errors": [format!("api-calls: price point {unpriced} has no EUR prices.")]})
        )
    );
    let (status, body) = site
        .post(
            "/subscriptions.json",
            create(json!("JPY"), priced, "006-jpy"),
        )
        .await;
    assert_eq!(
        (status, body),
        (
            422,
            json!({"errors": ["Currency: is not one of the allowed values."]})
        )
    );
    assert_eq!(site.ab.subscriptions().len(), 1);

    // Without a currency: the primary one, where the brackets' own prices apply.
    let (status, body) = site
        .post(
            "/subscriptions.json",
            create(Value::Null, unpriced, "006-usd"),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["subscription"]["currency"], "USD");
    // A price point on the site's exchange rate needs no EUR prices.
    let (status, body) = site
        .post(
            "/subscriptions.json",
            create(json!("eur"), site_rate, "006-eur-3"),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["subscription"]["currency"], "EUR");
    let currencies: Vec<Value> = site
        .ab
        .subscriptions()
        .iter()
        .map(|s| s["currency"].clone())
        .collect();
    assert_eq!(currencies, [json!("EUR"), json!("USD"), json!("EUR")]);
}

#[tokio::test]
async fn a_component_listed_twice_is_refused() {
    let site = Site::start().await;
    let customer = site.customer("001-twice").await;
    let seats = site.component("support-seats");
    for components in [
        json!([
            {"component_id": seats, "allocated_quantity": 1},
            {"component_id": "handle:support-seats", "allocated_quantity": 2},
        ]),
        json!([
            {"component_id": "handle:support-seats"},
            {"component_id": "handle:api-calls"},
            {"component_id": "handle:support-seats"},
            {"component_id": seats},
        ]),
    ] {
        let (status, body) = site
            .post(
                "/subscriptions.json",
                json!({"subscription": {
                    "product_handle": "monthly-usage", "customer_id": customer,
                    "components": components,
                }}),
            )
            .await;
        assert_eq!(
            (status, body),
            (
                422,
                json!({"errors": [format!("Component {seats} was listed more than once.")]})
            )
        );
    }
    assert!(site.ab.subscriptions().is_empty());
}

#[tokio::test]
async fn start_dates_set_the_state_and_the_first_period() {
    use chrono::{DateTime, Datelike, Months, Utc};
    let parse = |v: &Value| {
        DateTime::parse_from_rfc3339(v.as_str().expect("a timestamp"))
            .expect("RFC 3339")
            .with_timezone(&Utc)
    };
    let site = Site::start().await;
    let customer = site.customer("001-dates").await;
    let base = json!({"product_handle": "monthly-usage", "customer_id": customer});
    let with = |key: &str, value: Value| {
        let mut body = base.clone();
        body[key] = value;
        json!({ "subscription": body })
    };
    let next_year = Utc::now().year() + 1;

    // In the future, `initial_billing_at` waits for the signup until then.
    let (status, body) = site
        .post(
            "/subscriptions.json",
            with("initial_billing_at", json!(format!("{next_year}-01-15"))),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let sub = &body["subscription"];
    assert_eq!(sub["state"], "awaiting_signup");
    assert!(sub["activated_at"].is_null());
    let start = format!("{next_year}-01-15T00:00:00-05:00");
    assert_eq!(sub["next_assessment_at"], start);
    assert_eq!(sub["current_period_started_at"], start);
    assert_eq!(
        sub["current_period_ends_at"],
        format!("{next_year}-02-15T00:00:00-05:00")
    );
    let (_, waiting) = site.get("/subscriptions.json?state=awaiting_signup").await;
    assert_eq!(waiting.as_array().unwrap().len(), 1);

    // In the future, `next_billing_at` ends the first period then.
    let (status, body) = site
        .post(
            "/subscriptions.json",
            with(
                "next_billing_at",
                json!(format!("{next_year}-03-01T12:00:00Z")),
            ),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let sub = &body["subscription"];
    assert_eq!(sub["state"], "active");
    let ends = format!("{next_year}-03-01T07:00:00-05:00");
    assert_eq!(sub["current_period_ends_at"], ends);
    assert_eq!(sub["next_assessment_at"], ends);
    assert_eq!(sub["activated_at"], sub["created_at"]);
    assert_eq!(sub["current_period_started_at"], sub["created_at"]);

    // No dates, or dates in the past: active now, for one interval of the product.
    for (body, months) in [
        (json!({ "subscription": base }), 1),
        (with("initial_billing_at", json!("2020-01-01")), 1),
        (with("next_billing_at", json!("2020-01-01T00:00:00Z")), 1),
        (
            json!({"subscription": {"product_handle": "annual-usage", "customer_id": customer}}),
            12,
        ),
    ] {
        let (status, created) = site.post("/subscriptions.json", body.clone()).await;
        assert_eq!(status, 201, "{created}");
        let sub = &created["subscription"];
        assert_eq!(sub["state"], "active", "{body}");
        assert_eq!(sub["activated_at"], sub["created_at"], "{body}");
        assert_eq!(
            sub["current_period_started_at"], sub["created_at"],
            "{body}"
        );
        assert_eq!(sub["next_assessment_at"], sub["current_period_ends_at"]);
        let started = parse(&sub["current_period_started_at"]);
        assert_eq!(
            started.checked_add_months(Months::new(months)),
            Some(parse(&sub["current_period_ends_at"])),
            "{body}"
        );
    }

    for (key, label) in [
        ("initial_billing_at", "Initial billing at"),
        ("next_billing_at", "Next billing at"),
    ] {
        let (status, body) = site
            .post("/subscriptions.json", with(key, json!("next tuesday")))
            .await;
        assert_eq!(
            (status, body),
            (
                422,
                json!({"errors": [format!("{label}: must be a valid date/time")]})
            )
        );
    }
    assert_eq!(site.ab.subscriptions().len(), 6);
}

#[tokio::test]
async fn the_price_points_of_a_subscriptions_components_are_changed() {
    let site = Site::start().await;
    let customer = site.customer("001-pp").await;
    let (_, vol) = site
        .price_point("handle:api-calls", volume("acme-vol"))
        .await;
    let vol_id = vol["price_point"]["id"].as_i64().unwrap();
    let (_, wholesale) = site
        .price_point(
            "handle:support-seats",
            json!({"name": "Wholesale", "handle": "wholesale", "pricing_scheme": "per_unit",
                   "prices": [{"starting_quantity": 1, "unit_price": "99"}]}),
        )
        .await;
    let wholesale_id = wholesale["price_point"]["id"].as_i64().unwrap();
    let id = site
        .subscription(json!({
            "product_handle": "monthly-usage", "customer_id": customer,
            "components": [
                {"component_id": "handle:api-calls"},
                {"component_id": "handle:support-seats", "price_point_id": wholesale_id, "allocated_quantity": 3},
            ],
        }))
        .await;
    let (api, seats, fee) = (
        site.component("api-calls"),
        site.component("support-seats"),
        site.component("platform-fee"),
    );
    let path = format!("/subscriptions/{id}/price_points.json");
    let request = json!({"components": [
        {"component_id": api, "price_point": vol_id},
        {"component_id": seats, "price_point": "_default"},
        // Not on the subscription yet, by handle.
        {"component_id": fee, "price_point": "platform-fee-default"},
    ]});
    let (status, body) = site.post(&path, request.clone()).await;
    assert_eq!((status, &body), (200, &request));
    let list = site.components_of(id).await;
    let api_row = by_handle(&list, "api-calls");
    assert_eq!(api_row["price_point_id"], vol_id);
    assert_eq!(api_row["price_point_handle"], "acme-vol");
    assert_eq!(api_row["price_point_type"], "catalog");
    assert_eq!(api_row["pricing_scheme"], "volume");
    let seats_row = by_handle(&list, "support-seats");
    assert_eq!(seats_row["price_point_type"], "default");
    assert_eq!(seats_row["price_point_handle"], "support-seats-default");
    assert_eq!(seats_row["allocated_quantity"], 3);
    let fee_row = by_handle(&list, "platform-fee");
    assert_eq!(fee_row["price_point_handle"], "platform-fee-default");
    assert_eq!(fee_row["enabled"], false);

    let back = json!({"components": [{"component_id": seats, "price_point": "wholesale"}]});
    let (status, body) = site.post(&path, back.clone()).await;
    assert_eq!((status, body), (200, back));
    assert_eq!(
        by_handle(&site.components_of(id).await, "support-seats")["price_point_id"],
        wholesale_id
    );

    // A price point of another component, or none: refused, and nothing changes.
    let (status, body) = site
        .post(
            &path,
            json!({"components": [
                {"component_id": api, "price_point": wholesale_id},
                {"component_id": seats, "price_point": 424242},
                {"component_id": api, "price_point": "_default"},
            ]}),
        )
        .await;
    assert_eq!(status, 422);
    assert_eq!(
        body,
        json!({"errors": [
            {"component_id": api, "price_point": wholesale_id, "message": "Price Point does not belong to Component"},
            {"component_id": seats, "price_point": 424242, "message": "Price Point does not belong to Component"},
        ]})
    );
    assert_eq!(
        by_handle(&site.components_of(id).await, "api-calls")["price_point_id"],
        vol_id
    );
    let (status, _) = site
        .post("/subscriptions/999999/price_points.json", request)
        .await;
    assert_eq!(status, 404);
    assert_eq!(
        site.ab.observer().count(routes::SUBSCRIPTION_PRICE_POINTS),
        4
    );
}

#[tokio::test]
async fn an_allocation_sets_the_new_total_and_is_listed() {
    let site = Site::start().await;
    let customer = site.customer("001-alloc").await;
    let (_, wholesale) = site
        .price_point(
            "handle:support-seats",
            json!({"name": "Wholesale", "handle": "wholesale", "pricing_scheme": "per_unit",
                   "prices": [{"starting_quantity": 1, "unit_price": "99"}]}),
        )
        .await;
    let wholesale_id = wholesale["price_point"]["id"].as_i64().unwrap();
    let id = site
        .subscription(json!({
            "product_handle": "monthly-usage", "customer_id": customer,
            "components": [{"component_id": "handle:support-seats", "allocated_quantity": 5}],
        }))
        .await;
    let seats = site.component("support-seats");
    let default_id = by_handle(&site.components_of(id).await, "support-seats")["price_point_id"]
        .as_i64()
        .unwrap();

    let (status, body) = site
        .allocate(
            id,
            &seats.to_string(),
            json!({"quantity": 40, "price_point_id": wholesale_id, "memo": "Q3 amendment",
                   "upgrade_charge": "prorated", "downgrade_credit": "none", "accrue_charge": true}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let first = body["allocation"].clone();
    let timestamp = first["timestamp"].clone();
    assert!(timestamp.as_str().unwrap().ends_with("-05:00"));
    assert_eq!(
        first,
        json!({
            "allocation_id": first["allocation_id"].as_i64().expect("allocation id"),
            "component_id": seats, "component_handle": "support-seats", "subscription_id": id,
            "quantity": 40, "previous_quantity": 5, "memo": "Q3 amendment",
            "timestamp": timestamp, "created_at": timestamp,
            "price_point_id": wholesale_id, "price_point_name": "Wholesale",
            "price_point_handle": "wholesale", "previous_price_point_id": default_id,
            "accrue_charge": true, "initiate_dunning": false,
            "upgrade_charge": "prorated", "downgrade_credit": "none",
            "payment": null, "expires_at": null, "used_quantity": null, "charge_id": null,
        })
    );
    let row = by_handle(&site.components_of(id).await, "support-seats");
    assert_eq!(row["allocated_quantity"], 40);
    assert_eq!(row["price_point_id"], wholesale_id);
    assert_eq!(row["price_point_handle"], "wholesale");

    // By handle, without a price point (kept) and with the site's defaults.
    let (status, body) = site
        .allocate(
            id,
            "handle:support-seats",
            json!({"quantity": "45", "upgrade_charge": "full"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let second = body["allocation"].clone();
    assert_eq!(second["quantity"], 45);
    assert_eq!(second["previous_quantity"], 40);
    assert_eq!(second["price_point_id"], wholesale_id);
    assert_eq!(second["previous_price_point_id"], wholesale_id);
    assert_eq!(second["upgrade_charge"], "full");
    assert_eq!(second["downgrade_credit"], "none");
    assert_eq!(second["accrue_charge"], true);
    assert!(second["memo"].is_null());

    // The same quantity and price point again is no change.
    let no_change = json!({"errors": ["One or more allocation changes are required."]});
    for body in [
        json!({"quantity": 45}),
        json!({"quantity": 45, "price_point_id": wholesale_id}),
        json!({"quantity": 45, "price_point_id": "handle:wholesale"}),
    ] {
        let (status, answer) = site
            .allocate(id, "handle:support-seats", body.clone())
            .await;
        assert_eq!((status, &answer), (422, &no_change), "{body}");
    }

    let list_path = format!("/subscriptions/{id}/components/{seats}/allocations.json");
    let (status, list) = site.get(&list_path).await;
    assert_eq!(status, 200);
    assert_eq!(
        list,
        json!([{"allocation": second.clone()}, {"allocation": first.clone()}])
    );
    assert_eq!(site.ab.allocations(id), vec![first, second]);

    // The price point alone is a change.
    let (status, body) = site
        .allocate(
            id,
            "handle:support-seats",
            json!({"quantity": 45, "price_point_id": default_id}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["allocation"]["previous_price_point_id"], wholesale_id);
    let row = by_handle(&site.components_of(id).await, "support-seats");
    assert_eq!(row["price_point_type"], "default");
    assert_eq!(row["allocated_quantity"], 45);
    assert_eq!(site.ab.allocations(id).len(), 3);
    assert_eq!(site.ab.observer().count(routes::ALLOCATION_CREATE), 6);
    assert_eq!(site.ab.observer().count(routes::ALLOCATIONS_LIST), 1);
}

#[tokio::test]
async fn an_on_off_component_not_on_the_subscription_can_be_allocated() {
    let site = Site::start().await;
    let customer = site.customer("001-onoff").await;
    let id = site
        .subscription(json!({"product_handle": "monthly-usage", "customer_id": customer}))
        .await;
    let premium = site.component("premium-support");
    let (status, body) = site
        .allocate(id, "handle:premium-support", json!({"quantity": 1}))
        .await;
    assert_eq!(status, 200, "{body}");
    let allocation = &body["allocation"];
    assert_eq!(allocation["quantity"], 1);
    assert_eq!(allocation["previous_quantity"], 0);
    assert!(allocation["previous_price_point_id"].is_null());
    assert_eq!(allocation["price_point_handle"], "premium-support-default");
    let (_, priced) = site
        .get(&format!(
            "/subscriptions/{id}/components.json?price_point_ids=not_null"
        ))
        .await;
    assert_eq!(priced.as_array().unwrap().len(), 1);
    let row = by_handle(&priced, "premium-support");
    assert_eq!(row["enabled"], true);
    assert_eq!(row["price_point_type"], "default");

    let (status, _) = site
        .allocate(id, "handle:premium-support", json!({"quantity": 0}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        by_handle(&site.components_of(id).await, "premium-support")["enabled"],
        false
    );
    let (status, body) = site
        .allocate(id, "handle:premium-support", json!({"quantity": 2}))
        .await;
    assert_eq!(
        (status, body),
        (
            422,
            allocation_error(
                premium,
                "quantity",
                "Quantity: must be either 1 (on) or 0 (off)."
            )
        )
    );
    // Off on a component that was never on the subscription changes nothing.
    let (status, body) = site
        .allocate(id, "handle:platform-fee", json!({"quantity": 0}))
        .await;
    assert_eq!(
        (status, body),
        (
            422,
            json!({"errors": ["One or more allocation changes are required."]})
        )
    );
    assert_eq!(site.ab.allocations(id).len(), 2);
}

#[tokio::test]
async fn allocations_refuse_what_cannot_be_allocated() {
    let site = Site::start().await;
    let customer = site.customer("001-refuse").await;
    let id = site
        .subscription(json!({
            "product_handle": "monthly-usage", "customer_id": customer,
            "components": [{"component_id": "handle:support-seats", "allocated_quantity": 5}],
        }))
        .await;
    let (api, storage, seats) = (
        site.component("api-calls"),
        site.component("storage-gb"),
        site.component("support-seats"),
    );
    let api_default = site.get("/components/lookup.json?handle=api-calls").await.1["component"]
        ["default_price_point_id"]
        .as_i64()
        .unwrap();
    let metered = "Allocations can only be updated for quantity and on/off components.";
    let blank = json!({"errors": ["Quantity: cannot be blank."]});
    let cases = [
        (
            "handle:api-calls",
            json!({"quantity": 10}),
            allocation_error(api, "base", metered),
        ),
        (
            "handle:storage-gb",
            json!({"quantity": 10}),
            allocation_error(storage, "base", metered),
        ),
        (
            "handle:support-seats",
            json!({"memo": "no quantity"}),
            blank.clone(),
        ),
        (
            "handle:support-seats",
            json!({"quantity": null}),
            blank.clone(),
        ),
        ("handle:support-seats", json!({"quantity": " "}), blank),
        (
            "handle:support-seats",
            json!({"quantity": "2.5"}),
            allocation_error(
                seats,
                "quantity",
                "Quantity: must be a whole number; support-seats does not allow fractional quantities.",
            ),
        ),
        (
            "handle:support-seats",
            json!({"quantity": -1}),
            allocation_error(
                seats,
                "quantity",
                "Quantity: must be greater than or equal to 0.",
            ),
        ),
        (
            "handle:support-seats",
            json!({"quantity": "many"}),
            allocation_error(seats, "quantity", "Quantity: is not a number."),
        ),
        (
            "handle:support-seats",
            json!({"quantity": 6, "upgrade_charge": "sometimes"}),
            allocation_error(
                seats,
                "upgrade_charge",
                "Upgrade charge: must be one of full, prorated, none.",
            ),
        ),
        (
            "handle:support-seats",
            json!({"quantity": 4, "downgrade_credit": "refund"}),
            allocation_error(
                seats,
                "downgrade_credit",
                "Downgrade credit: must be one of full, prorated, none.",
            ),
        ),
        (
            "handle:support-seats",
            json!({"quantity": 6, "accrue_charge": "maybe"}),
            allocation_error(
                seats,
                "accrue_charge",
                "Accrue charge: must be true or false.",
            ),
        ),
        (
            "handle:support-seats",
            json!({"quantity": 6, "price_point_id": api_default}),
            allocation_error(
                seats,
                "price_point_id",
                "Price Point does not belong to Component",
            ),
        ),
    ];
    for (component, body, expected) in cases {
        let (status, answer) = site.allocate(id, component, body.clone()).await;
        assert_eq!((status, &answer), (422, &expected), "{component} {body}");
    }
    let (status, body) = site
        .post(
            &format!("/subscriptions/{id}/components/{seats}/allocations.json"),
            json!({"quantity": 6}),
        )
        .await;
    assert_eq!(
        (status, body),
        (422, json!({"errors": ["Quantity: cannot be blank."]}))
    );
    assert!(site.ab.allocations(id).is_empty());
    assert_eq!(
        by_handle(&site.components_of(id).await, "support-seats")["allocated_quantity"],
        5
    );

    assert_eq!(
        site.allocate(999999, "handle:support-seats", json!({"quantity": 1}))
            .await
            .0,
        404
    );
    assert_eq!(
        site.allocate(id, "handle:nope", json!({"quantity": 1}))
            .await
            .0,
        404
    );
    for path in [
        format!("/subscriptions/999999/components/{seats}/allocations.json"),
        format!("/subscriptions/{id}/components/handle:nope/allocations.json"),
    ] {
        assert_eq!(site.get(&path).await.0, 404, "{path}");
    }
}

#[tokio::test]
async fn the_allocation_list_has_the_50_newest_per_page() {
    let site = Site::start().await;
    let customer = site.customer("001-many").await;
    let id = site
        .subscription(json!({"product_handle": "monthly-usage", "customer_id": customer}))
        .await;
    for quantity in 1..=52 {
        let (status, body) = site
            .allocate(id, "handle:support-seats", json!({"quantity": quantity}))
            .await;
        assert_eq!(status, 200, "{body}");
    }
    let path = format!("/subscriptions/{id}/components/handle:support-seats/allocations.json");
    let quantities = |list: &Value| -> Vec<i64> {
        list.as_array()
            .unwrap()
            .iter()
            .map(|a| a["allocation"]["quantity"].as_i64().unwrap())
            .collect()
    };
    let (status, first) = site.get(&path).await;
    assert_eq!(status, 200);
    let first = quantities(&first);
    assert_eq!(first.len(), 50);
    assert_eq!((first[0], first[49]), (52, 3));
    let (_, second) = site.get(&format!("{path}?page=2")).await;
    assert_eq!(quantities(&second), [2, 1]);
    let (status, body) = site.get(&format!("{path}?page=0")).await;
    assert_eq!(
        (status, body),
        (422, json!({"errors": ["invalid page: 0"]}))
    );
    assert_eq!(site.ab.allocations(id).len(), 52);
}

#[tokio::test]
async fn set_component_leaves_a_subscription_wrong_without_an_api_call() {
    let site = Site::start().await;
    let customer = site.customer("001-wrong").await;
    let id = site
        .subscription(json!({
            "product_handle": "monthly-usage", "customer_id": customer,
            "components": [{"component_id": "handle:support-seats", "allocated_quantity": 5}],
        }))
        .await;
    let api_default = site.get("/components/lookup.json?handle=api-calls").await.1["component"]
        ["default_price_point_id"]
        .as_i64()
        .unwrap();
    let requests = site.ab.observer().requests().len();
    // A price point of another component, an on/off component switched on, a metered balance.
    site.ab
        .set_component(id, "support-seats", 7, Some(api_default))
        .expect("set");
    site.ab
        .set_component(id, "premium-support", 1, None)
        .expect("set");
    site.ab
        .set_component(id, "storage-gb", 12, None)
        .expect("set");
    assert_eq!(site.ab.observer().requests().len(), requests);
    assert!(site.ab.allocations(id).is_empty());
    let list = site.components_of(id).await;
    let seats = by_handle(&list, "support-seats");
    assert_eq!(seats["allocated_quantity"], 7);
    assert_eq!(seats["price_point_id"], api_default);
    assert_eq!(seats["price_point_handle"], "api-calls-default");
    let premium = by_handle(&list, "premium-support");
    assert_eq!(premium["enabled"], true);
    assert_eq!(premium["price_point_handle"], "premium-support-default");
    assert_eq!(by_handle(&list, "storage-gb")["unit_balance"], 12);
    assert!(
        site.ab
            .set_component(999999, "support-seats", 1, None)
            .is_err()
    );
    assert!(site.ab.set_component(id, "nope", 1, None).is_err());

    // The API then starts from the wrong state; it does not repair it.
    let (status, body) = site
        .allocate(id, "handle:support-seats", json!({"quantity": 8}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["allocation"]["previous_quantity"], 7);
    assert_eq!(body["allocation"]["previous_price_point_id"], api_default);
    assert_eq!(body["allocation"]["price_point_id"], api_default);
}
