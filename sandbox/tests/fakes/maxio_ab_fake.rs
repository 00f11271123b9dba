//! The fake Maxio Advanced Billing site, driven over HTTP: auth, customers, price points and their
//! bracket rules, subscriptions and the default-price-point fallback, duplicate prevention, and
//! the concurrency limit.

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
        let ab = MaxioAbSandbox::start(AbSettings::default())
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
