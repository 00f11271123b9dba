//! The sandbox's two Maxio AB sites, as a deployment that bills in several currencies has them:
//! the default site (USD, with EUR as a non-primary currency) and `uk` (GBP), declared to
//! dealbridge in the mapping's `maxio.sites`. Also the one AB record the seed needs that
//! dealbridge did not make: the subscription an earlier run left wrong for the `Repair` deal.

use anyhow::Context;
use dealbridge::salesforce::SfId;
use serde_json::{Value, json};

use crate::maxio_ab::{AbSettings, MaxioAbSandbox};

/// The second site's name in the mapping.
pub const UK_SITE: &str = "uk";
/// The shared key the UK site signs its webhooks with.
pub const UK_WEBHOOK_KEY: &str = "sandbox-maxio-webhook-key-uk";
/// The second site's API key secret.
pub const MAXIO_AB_UK_SECRET: &str = "dealbridge/maxio-ab-uk";

/// The default site: USD, EUR as a non-primary currency.
pub fn default_site() -> AbSettings {
    AbSettings {
        currency: "USD".into(),
        non_primary_currencies: vec!["EUR".into()],
        ..AbSettings::default()
    }
}

/// The `uk` site: GBP only, its own key and subdomain, the same catalog.
pub fn uk_site() -> AbSettings {
    AbSettings {
        api_key: "sandbox-maxio-ab-uk-key".into(),
        subdomain: "dealbridge-sandbox-uk".into(),
        webhook_shared_key: UK_WEBHOOK_KEY.into(),
        currency: "GBP".into(),
        non_primary_currencies: Vec::new(),
        id_base: 100_000,
        ..AbSettings::default()
    }
}

/// The mapping's `maxio` section for the two sites.
pub fn maxio_section(uk_url: &str) -> Value {
    json!({
        "sites": [
            {"name": "default", "currencies": ["USD", "EUR"]},
            {"name": UK_SITE, "base_url": uk_url, "secret": MAXIO_AB_UK_SECRET, "currencies": ["GBP"]},
        ]
    })
}

/// `DEALBRIDGE_MAPPING` with the two sites (every other key at its default).
pub fn mapping_json(uk_url: &str) -> String {
    json!({ "maxio": maxio_section(uk_url) }).to_string()
}

/// As [`mapping_json`], for the sandbox the real function binaries run against (`make sandbox`,
/// `make watch`): they run on the real clock while the seeded Orders start in November 2026, so
/// a start before the current billing period starts on sync instead of being refused.
pub fn served_mapping_json(uk_url: &str) -> String {
    let mut maxio = maxio_section(uk_url);
    maxio["past_start"] = json!("start_on_sync");
    json!({ "maxio": maxio }).to_string()
}

/// The secret a site's client reads.
pub fn secret_json(site: &MaxioAbSandbox) -> String {
    json!({"api_key": site.settings().api_key}).to_string()
}

/// The `Repair` deal as an earlier run left it in AB: its customer, and a subscription with its
/// reference whose Support Seats are at 1 instead of 12 and whose Storage is on the component's
/// default price point instead of the deal's tiers. Made through the site's API. Returns the
/// subscription id.
pub async fn seed_broken_subscription(
    site: &MaxioAbSandbox,
    account: &SfId,
    opportunity: &SfId,
) -> anyhow::Result<i64> {
    let http = reqwest::Client::new();
    let key = site.settings().api_key;
    let post = |path: &str, body: Value| {
        http.post(format!("{}{path}", site.url()))
            .basic_auth(&key, Some("x"))
            .json(&body)
            .send()
    };
    let customer: Value = post(
        "/customers.json",
        json!({"customer": {
            "first_name": "Tom", "last_name": "Whitaker",
            "email": "tom.whitaker@calder-valley-foods.example.com",
            "organization": "Calder Valley Foods Ltd", "reference": account.to_string(),
        }}),
    )
    .await
    .context("creating the Repair deal's AB customer")?
    .error_for_status()?
    .json()
    .await?;
    let customer_id = customer["customer"]["id"]
        .as_i64()
        .context("the AB fake answered a customer without an id")?;
    let subscription: Value = post(
        "/subscriptions.json",
        json!({"subscription": {
            "product_handle": "monthly-usage",
            "customer_id": customer_id,
            "reference": opportunity.to_string(),
            "payment_collection_method": "remittance",
            "currency": "USD",
            "components": [
                {"component_id": "handle:support-seats", "allocated_quantity": "1"},
                {"component_id": "handle:storage-gb"},
            ],
        }}),
    )
    .await
    .context("creating the Repair deal's AB subscription")?
    .error_for_status()?
    .json()
    .await?;
    subscription["subscription"]["id"]
        .as_i64()
        .context("the AB fake answered a subscription without an id")
}
