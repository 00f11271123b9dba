//! The fake Maxio Core tenant, driven over HTTP: token auth, DRF pagination and filters (and the
//! ignored unknown filter), the contract PATCH, records that appear after a few list requests,
//! and injected throttling.

use dealbridge_sandbox::maxio_core::{CoreSettings, MaxioCoreSandbox, routes, throttled};
use serde_json::{Value, json};

struct Tenant {
    core: MaxioCoreSandbox,
    http: reqwest::Client,
    token: String,
}

impl Tenant {
    async fn start() -> Tenant {
        let core = MaxioCoreSandbox::start(CoreSettings::default())
            .await
            .expect("sandbox starts");
        let token = core.settings().api_token;
        Tenant {
            core,
            http: reqwest::Client::new(),
            token,
        }
    }

    /// `path` relative to the base URL (`customers/?number=x`), or an absolute URL.
    fn url(&self, path: &str) -> String {
        if path.starts_with("http") {
            path.to_string()
        } else {
            format!("{}{path}", self.core.base_url())
        }
    }

    fn auth(&self) -> String {
        format!("Token {}", self.token)
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        let response = self
            .http
            .get(self.url(path))
            .header("Authorization", self.auth())
            .header("Accept", "application/json")
            .send()
            .await
            .expect("request");
        read(response).await
    }

    async fn patch(&self, path: &str, body: Value) -> (u16, Value) {
        let response = self
            .http
            .patch(self.url(path))
            .header("Authorization", self.auth())
            .json(&body)
            .send()
            .await
            .expect("request");
        read(response).await
    }
}

async fn read(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, body)
}

fn numbers(page: &Value) -> Vec<String> {
    page["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|c| c["number"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[tokio::test]
async fn only_the_drf_token_scheme_with_the_right_key_is_let_in() {
    let tenant = Tenant::start().await;
    tenant
        .core
        .add_customer(json!({"name": "Acme", "number": "001A"}));
    let url = tenant.url("customers/");
    let cases = [
        (None, "Authentication credentials were not provided."),
        (Some("Token wrong-key".to_string()), "Invalid token."),
        (
            Some(format!("Bearer {}", tenant.token)),
            "Authentication credentials were not provided.",
        ),
        (
            Some("Token".to_string()),
            "Invalid token header. No credentials provided.",
        ),
    ];
    for (header, detail) in cases {
        let mut request = tenant.http.get(&url);
        if let Some(header) = &header {
            request = request.header("Authorization", header);
        }
        let response = request.send().await.expect("request");
        assert_eq!(response.status().as_u16(), 401, "{header:?}");
        assert_eq!(response.headers()["www-authenticate"], "Token");
        let (_, body) = read(response).await;
        assert_eq!(body, json!({ "detail": detail }), "{header:?}");
    }
    // The keyword is matched in any case, as DRF does.
    let response = tenant
        .http
        .get(&url)
        .header("Authorization", format!("token {}", tenant.token))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status().as_u16(), 200);
    let (status, page) = tenant.get("customers/").await;
    assert_eq!(status, 200);
    assert_eq!(page["count"], 1);
    assert_eq!(tenant.core.observer().count(routes::CUSTOMERS), 6);
}

#[tokio::test]
async fn a_patch_without_a_token_changes_nothing() {
    let tenant = Tenant::start().await;
    let id = tenant.core.add_contract(json!({"customer": 1}));
    let response = tenant
        .http
        .patch(tenant.url(&format!("contracts/{id}/")))
        .header("Authorization", "Token nope")
        .json(&json!({"text_field2": "x"}))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status().as_u16(), 401);
    assert_eq!(tenant.core.contracts()[0]["text_field2"], Value::Null);
}

#[tokio::test]
async fn pages_hold_at_most_100_records_and_next_leads_to_the_last_page() {
    let tenant = Tenant::start().await;
    for n in 1..=250 {
        tenant
            .core
            .add_customer(json!({"name": format!("Customer {n}"), "number": format!("N{n:03}")}));
    }
    let (status, first) = tenant.get("customers/?page_size=500&is_active=true").await;
    assert_eq!(status, 200);
    assert_eq!(first["count"], 250);
    assert_eq!(first["previous"], Value::Null);
    assert_eq!(numbers(&first).len(), 100);
    assert_eq!(numbers(&first)[0], "N001");
    let next = first["next"].as_str().expect("next").to_string();
    assert!(next.starts_with("http://127.0.0.1:"), "{next}");
    assert!(
        next.contains("page=2") && next.contains("page_size=500"),
        "{next}"
    );
    assert!(next.contains("is_active=true"), "{next}");

    let mut page = first;
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        pages += 1;
        seen.extend(numbers(&page));
        let Some(next) = page["next"].as_str().map(str::to_string) else {
            break;
        };
        let (status, body) = tenant.get(&next).await;
        assert_eq!(status, 200, "{body}");
        page = body;
    }
    assert_eq!(pages, 3);
    assert_eq!(numbers(&page).len(), 50);
    assert!(numbers(&page).contains(&"N242".to_string()));
    assert_eq!(seen.len(), 250);
    let previous = page["previous"].as_str().expect("previous on page 3");
    assert!(previous.contains("page=2"), "{previous}");

    let (status, second) = tenant.get(previous).await;
    assert_eq!(status, 200);
    assert_eq!(numbers(&second)[0], "N101");
    // Page 1 is linked without `page`, as DRF does.
    let back = second["previous"].as_str().expect("previous on page 2");
    assert!(!back.contains("page="), "{back}");

    let (status, body) = tenant.get("customers/?page=4").await;
    assert_eq!((status, body), (404, json!({"detail": "Invalid page."})));
    let (_, small) = tenant.get("customers/?page_size=10&page=last").await;
    assert_eq!(
        numbers(&small),
        (241..=250).map(|n| format!("N{n:03}")).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn exact_filters_pick_the_customer_by_number_and_the_contracts_by_customer() {
    let tenant = Tenant::start().await;
    let acme = tenant.core.add_customer(
        json!({"name": "Acme", "number": "001SB00000ACME", "sf_id": "001SB00000ACME"}),
    );
    tenant
        .core
        .add_customer(json!({"name": "Acme Two", "number": "001SB00000ACME2"}));
    let globex = tenant
        .core
        .add_customer(json!({"name": "Globex", "number": "001SB0000GLOBX", "is_active": false}));
    let first = tenant
        .core
        .add_contract(json!({"customer": acme, "number": "C-1"}));
    let second = tenant
        .core
        .add_contract(json!({"customer": acme, "number": "C-2"}));
    tenant
        .core
        .add_contract(json!({"customer": globex, "number": "C-3"}));

    let (status, page) = tenant.get("customers/?number=001SB00000ACME").await;
    assert_eq!(status, 200);
    assert_eq!(page["count"], 1, "exact, not a prefix match: {page}");
    assert_eq!(page["results"][0]["id"], acme);
    assert_eq!(page["results"][0]["name"], "Acme");

    let (_, page) = tenant.get(&format!("contracts/?customer={acme}")).await;
    let ids: Vec<i64> = page["results"]
        .as_array()
        .expect("results")
        .iter()
        .filter_map(|c| c["id"].as_i64())
        .collect();
    assert_eq!(ids, vec![first, second]);
    assert_eq!(page["results"][0]["customer"], acme);

    let (_, page) = tenant.get("customers/?is_active=false").await;
    assert_eq!(page["count"], 1);
    assert_eq!(page["results"][0]["id"], globex);
    let (_, page) = tenant.get("customers/?sf_id=001SB00000ACME").await;
    assert_eq!(page["count"], 1);
    let (_, page) = tenant.get("customers/?number=nobody").await;
    assert_eq!(
        (page["count"].clone(), page["results"].clone()),
        (json!(0), json!([]))
    );
    let (_, page) = tenant.get("contracts/?customer=123456").await;
    assert_eq!(page["count"], 0);
    let (status, body) = tenant.get("contracts/?customer=acme").await;
    assert_eq!(
        (status, body),
        (400, json!({"customer": ["Enter a number."]}))
    );
    let (_, page) = tenant
        .get("customers/?modified__gte=2000-01-01T00:00:00Z")
        .await;
    assert_eq!(page["count"], 3);
    let (_, page) = tenant
        .get("customers/?modified__lte=2000-01-01T00:00:00Z")
        .await;
    assert_eq!(page["count"], 0);
}

#[tokio::test]
async fn an_unknown_or_misspelt_filter_is_ignored_and_returns_everything() {
    let tenant = Tenant::start().await;
    tenant
        .core
        .add_customer(json!({"name": "Acme", "number": "001A"}));
    tenant
        .core
        .add_customer(json!({"name": "Globex", "number": "001G"}));
    tenant.core.add_contract(json!({"customer": 1}));
    let (status, page) = tenant.get("customers/?numbr=001A").await;
    assert_eq!(status, 200);
    assert_eq!(page["count"], 2);
    let (_, page) = tenant
        .get("customers/?number__exact_typo=001A&customer_id=1")
        .await;
    assert_eq!(page["count"], 2);
    // An empty value is no filter either.
    let (_, page) = tenant.get("customers/?number=").await;
    assert_eq!(page["count"], 2);
    // `customer` filters contracts only.
    let (_, page) = tenant.get("customers/?customer=999").await;
    assert_eq!(page["count"], 2);
}

#[tokio::test]
async fn patching_a_contract_returns_it_whole_with_a_new_modified() {
    let tenant = Tenant::start().await;
    let customer = tenant.core.add_customer(json!({"name": "Acme"}));
    let id = tenant.core.add_contract(json!({
        "customer": customer, "number": "C-1", "sf_id": "006SB0000001", "text_field1": "keep",
    }));
    let (_, before) = tenant.get(&format!("contracts/{id}/")).await;
    assert_eq!(before["text_field2"], Value::Null);

    let (status, after) = tenant
        .patch(
            &format!("contracts/{id}/"),
            json!({"text_field2": "sub_4242", "number_field1": 12.5}),
        )
        .await;
    assert_eq!(status, 200, "{after}");
    assert_eq!(after["id"], id);
    assert_eq!(after["text_field2"], "sub_4242");
    assert_eq!(after["number_field1"], "12.5");
    assert_eq!(after["text_field1"], "keep");
    assert_eq!(after["customer"], customer);
    assert_eq!(after["created"], before["created"]);
    assert!(after["billing_profile"].is_object());
    assert_ne!(after["modified"], before["modified"]);

    let (_, read_back) = tenant.get(&format!("contracts/{id}/")).await;
    assert_eq!(read_back, after);
    assert_eq!(tenant.core.contracts(), vec![after.clone()]);
    let (_, page) = tenant
        .get(&format!(
            "contracts/?modified__gte={}",
            after["modified"].as_str().unwrap_or_default()
        ))
        .await;
    assert_eq!(page["count"], 1);
    assert_eq!(tenant.core.observer().count(routes::CONTRACT_PATCH), 1);
}

#[tokio::test]
async fn a_patch_of_a_read_only_or_unknown_field_is_refused_and_changes_nothing() {
    let tenant = Tenant::start().await;
    let id = tenant.core.add_contract(json!({"customer": 7}));
    let before = tenant.core.contracts();
    let (status, body) = tenant
        .patch(
            &format!("contracts/{id}/"),
            json!({"customer": 8, "modified": "2030-01-01T00:00:00Z", "text_feild2": "x", "text_field2": "ok"}),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        body,
        json!({
            "customer": ["This field is read-only."],
            "modified": ["This field is read-only."],
            "text_feild2": ["Unknown field."],
        })
    );
    for field in ["id", "created"] {
        let (status, body) = tenant
            .patch(&format!("contracts/{id}/"), json!({ field: 1 }))
            .await;
        assert_eq!(status, 400);
        assert_eq!(body[field], json!(["This field is read-only."]));
    }
    let (status, body) = tenant
        .patch(&format!("contracts/{id}/"), json!({"is_active": "maybe"}))
        .await;
    assert_eq!(
        (status, body),
        (400, json!({"is_active": ["Must be a valid boolean."]}))
    );
    let (status, _) = tenant
        .patch(&format!("contracts/{id}/"), json!(["text_field2"]))
        .await;
    assert_eq!(status, 400);
    assert_eq!(tenant.core.contracts(), before);
}

#[tokio::test]
async fn an_unknown_contract_is_404_not_found() {
    let tenant = Tenant::start().await;
    let customer = tenant.core.add_customer(json!({"name": "Acme"}));
    tenant.core.add_contract(json!({"customer": customer}));
    for path in [
        "contracts/999999/",
        "contracts/abc/",
        &format!("contracts/{customer}/"),
    ] {
        let (status, body) = tenant.patch(path, json!({"text_field2": "x"})).await;
        assert_eq!(
            (status, body),
            (404, json!({"detail": "Not found."})),
            "{path}"
        );
        let (status, _) = tenant.get(path).await;
        assert_eq!(status, 404, "{path}");
    }
    // Another tenant's path, or a path without its trailing slash, is not routed.
    let other = tenant
        .core
        .base_url()
        .replace("dealbridge-sandbox", "someone-else");
    let (status, _) = tenant.get(&format!("{other}customers/")).await;
    assert_eq!(status, 404);
    let (status, _) = tenant.get("customers").await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn a_record_added_visible_after_3_shows_from_the_third_list_request() {
    let tenant = Tenant::start().await;
    let customer = tenant
        .core
        .add_customer_visible_after(json!({"name": "Late", "number": "001LATE"}), 3);
    let contract = tenant
        .core
        .add_contract_visible_after(json!({"customer": customer, "sf_id": "006LATE"}), 3);
    for request in 1..=2 {
        let (_, page) = tenant.get("customers/?number=001LATE").await;
        assert_eq!(page["count"], 0, "customer list request {request}");
        let (_, page) = tenant.get(&format!("contracts/?customer={customer}")).await;
        assert_eq!(page["count"], 0, "contract list request {request}");
    }
    let (status, _) = tenant
        .patch(
            &format!("contracts/{contract}/"),
            json!({"text_field2": "early"}),
        )
        .await;
    assert_eq!(status, 404, "not patchable before it shows");

    let (_, page) = tenant.get("customers/?number=001LATE").await;
    assert_eq!(page["count"], 1);
    assert_eq!(page["results"][0]["id"], customer);
    let (_, page) = tenant.get(&format!("contracts/?customer={customer}")).await;
    assert_eq!(page["count"], 1);
    let (status, _) = tenant
        .patch(
            &format!("contracts/{contract}/"),
            json!({"text_field2": "now"}),
        )
        .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn injected_throttling_answers_429_with_retry_after_then_recovers() {
    let tenant = Tenant::start().await;
    let id = tenant.core.add_contract(json!({"customer": 1}));
    tenant
        .core
        .observer()
        .inject(routes::CONTRACT_PATCH, throttled(3).times(2));
    for _ in 0..2 {
        let response = tenant
            .http
            .patch(tenant.url(&format!("contracts/{id}/")))
            .header("Authorization", tenant.auth())
            .json(&json!({"text_field2": "sub_1"}))
            .send()
            .await
            .expect("request");
        assert_eq!(response.status().as_u16(), 429);
        assert_eq!(response.headers()["retry-after"], "3");
        let (_, body) = read(response).await;
        assert_eq!(
            body["detail"],
            "Request was throttled. Expected available in 3 seconds."
        );
    }
    assert_eq!(tenant.core.contracts()[0]["text_field2"], Value::Null);
    let (status, body) = tenant
        .patch(&format!("contracts/{id}/"), json!({"text_field2": "sub_1"}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["text_field2"], "sub_1");
    let log = tenant.core.observer().requests();
    assert_eq!(log.iter().filter(|r| r.injected).count(), 2);
    assert!(log.iter().all(|r| r.service == "maxio-core"));
}
