//! The requests a deal's sync would send, built without sending anything: what `sync --dry-run`
//! shows. Pure.
//!
//! Bodies are built from the same values and types the workers use ([`AbDealPlan`],
//! [`PricePointSpec`], [`AddOrder`]) and wrapped the way the clients wrap them: Maxio AB's POST
//! bodies are `{"<resource>": ..., "uniqueness_token": ...}` with the token the worker derives
//! from its step key; WHMCS forms are the request's `form()` (the client adds the credentials and
//! `responsetype=json`, which are never shown). Values that only an earlier answer can tell (the
//! AB customer id, component and price point ids, the Core customer and contract) are shown as
//! `<placeholders>`.

use dealbridge::envelope::{Envelope, Step};
use dealbridge::maxio::link::LinkSettings;
use dealbridge::maxio::prepare::AbDealPlan;
use dealbridge::salesforce::SfId;
use dealbridge::snapshot::{DealRef, DealSnapshot};
use dealbridge::whmcs::prepare::WhmcsOrderPlan;
use dealbridge::whmcs::{AcceptOrder, AddOrder, GetOrdersQuery, WhmcsRequest};
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// Maxio Core lists this many records per page (`dealbridge::maxio::core::client::PAGE_SIZE`).
const CORE_PAGE_SIZE: usize = 100;

/// One request a sync would send, in order.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlannedRequest {
    /// `maxio-ab`, `maxio-core` or `whmcs`.
    pub system: &'static str,
    pub method: &'static str,
    /// The full URL (with `<placeholders>` where an earlier answer fills in a value).
    pub url: String,
    /// Whether the request changes anything in the target system.
    pub write: bool,
    /// When it is sent, if not always.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub when: Option<String>,
    /// The JSON body.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<Value>,
    /// The form fields, in order (credentials left out).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub form: Option<Vec<(String, String)>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl PlannedRequest {
    fn read(system: &'static str, method: &'static str, url: String) -> Self {
        PlannedRequest {
            system,
            method,
            url,
            write: false,
            when: None,
            body: None,
            form: None,
            notes: Vec::new(),
        }
    }

    fn write(system: &'static str, method: &'static str, url: String) -> Self {
        PlannedRequest {
            write: true,
            ..PlannedRequest::read(system, method, url)
        }
    }

    fn when(mut self, condition: impl Into<String>) -> Self {
        self.when = Some(condition.into());
        self
    }

    fn body(mut self, body: Value) -> Self {
        self.body = Some(body);
        self
    }

    fn form(mut self, form: &dealbridge::whmcs::Form) -> Self {
        self.form = Some(form.pairs().to_vec());
        self
    }

    fn note(mut self, note: impl Into<String>) -> Self {
        self.notes.push(note.into());
        self
    }
}

/// The `uniqueness_token` the Maxio worker puts on a POST: derived from the step key and the
/// part of the step (`customer`, an order item Id, `subscription`), so a retried POST is
/// recognised by AB. Mirrors `dealbridge::maxio::steps`; the CLI's tests compare it with what
/// the worker really sends.
pub fn uniqueness_token(step_key: &str, part: &str) -> String {
    let digest = Sha256::digest(format!("{step_key}\n{part}").as_bytes());
    format!("dealbridge-{}", hex::encode(&digest[..16]))
}

fn encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// `base` without its trailing `/`, so absolute paths can follow it as the clients join them.
fn root(base: &url::Url) -> String {
    base.as_str().trim_end_matches('/').to_string()
}

/// The step keys of the Maxio chain for this deal, as dispatch and the workers make them.
fn maxio_step_keys(snapshot: &DealSnapshot, plan: &AbDealPlan) -> (String, String, String) {
    let key = |step: Step| {
        Envelope::new("", &snapshot.requested, &snapshot.account.id, None, step).step_key
    };
    (
        key(Step::MaxioCustomer {
            snapshot: Box::new(snapshot.clone()),
        }),
        key(Step::MaxioPricePoints {
            plan: Box::new(plan.clone()),
            customer_id: 0,
        }),
        key(Step::MaxioSubscription {
            plan: Box::new(plan.clone()),
            customer_id: 0,
            components: Vec::new(),
        }),
    )
}

/// The Maxio Advanced Billing requests of the chain (customer, price points, subscription), in
/// the order the workers send them.
pub fn maxio_ab_requests(
    base: &url::Url,
    snapshot: &DealSnapshot,
    plan: &AbDealPlan,
) -> Vec<PlannedRequest> {
    const AB: &str = "maxio-ab";
    let site = root(base);
    let (customer_key, price_points_key, subscription_key) = maxio_step_keys(snapshot, plan);
    let mut out = Vec::new();
    let reference = &plan.customer.reference;
    out.push(PlannedRequest::read(
        AB,
        "GET",
        format!(
            "{site}/customers/lookup.json?reference={}",
            encode(reference)
        ),
    ));
    if !plan.amends() {
        out.push(
            PlannedRequest::write(AB, "POST", format!("{site}/customers.json"))
                .when(format!("no AB customer has reference {reference}"))
                .body(json!({
                    "customer": plan.customer,
                    "uniqueness_token": uniqueness_token(&customer_key, "customer"),
                })),
        );
    }
    for item in &plan.items {
        let handle = item.component_handle.as_str();
        let component = item.component_id.map_or_else(
            || format!("<id of component {handle}>"),
            |id| id.to_string(),
        );
        let Some(spec) = &item.price_point else {
            continue;
        };
        out.push(PlannedRequest::read(
            AB,
            "GET",
            format!(
                "{site}/components/{component}/price_points/handle:{}.json?currency_prices=true",
                encode(&spec.handle)
            ),
        ));
        out.push(
            PlannedRequest::write(
                AB,
                "POST",
                format!("{site}/components/{component}/price_points.json"),
            )
            .when(format!(
                "component {handle} has no price point {} yet",
                spec.handle
            ))
            .body(json!({
                "price_point": spec.create_body(),
                "uniqueness_token": uniqueness_token(&price_points_key, item.order_item_id.as_str()),
            })),
        );
        if let Some(currency) = &spec.currency {
            let prices: Vec<Value> = spec
                .prices
                .iter()
                .map(|b| {
                    json!({
                        "currency": currency,
                        "price": b.unit_price,
                        "price_id": format!("<id of the bracket from {}>", b.starting_quantity),
                    })
                })
                .collect();
            out.push(
                PlannedRequest::write(
                    AB,
                    "POST",
                    format!("{site}/price_points/<id of price point {}>/currency_prices.json", spec.handle),
                )
                .when(format!("the price point has no {currency} prices yet"))
                .body(json!({ "currency_prices": prices }))
                .note(format!(
                    "{currency} is a non-primary currency of the site: the price point has its own {currency} prices, equal to the deal's, instead of AB's exchange rate"
                )),
            );
        }
    }
    let subscription_reference = &plan.subscription_reference;
    out.push(PlannedRequest::read(
        AB,
        "GET",
        format!(
            "{site}/subscriptions/lookup.json?reference={}",
            encode(subscription_reference)
        ),
    ));
    let components: Vec<Value> = plan
        .items
        .iter()
        .map(|item| {
            let mut c = serde_json::Map::new();
            c.insert(
                "component_id".into(),
                item.component_id.map_or_else(
                    || Value::String(format!("<id of component {}>", item.component_handle)),
                    Value::from,
                ),
            );
            if let Some(spec) = &item.price_point {
                c.insert(
                    "price_point_id".into(),
                    Value::String(format!("<id of price point {}>", spec.handle)),
                );
            }
            match item.kind.as_deref() {
                Some("quantity_based_component") => {
                    c.insert(
                        "allocated_quantity".into(),
                        Value::String(item.quantity.normalize().to_string()),
                    );
                }
                Some("on_off_component") => {
                    c.insert("enabled".into(), Value::Bool(true));
                }
                _ => {}
            }
            Value::Object(c)
        })
        .collect();
    let mut body = json!({
        "product_handle": plan.product_handle,
        "customer_id": "<id of the AB customer>",
        "reference": subscription_reference,
        "payment_collection_method": plan.payment_collection_method,
        "components": components,
    });
    if let Some(currency) = &plan.currency {
        body["currency"] = Value::String(currency.clone());
    }
    if let Some(at) = plan.start.and_then(|s| s.initial_billing_at()) {
        body["initial_billing_at"] = Value::String(at);
    }
    let mut subscription = PlannedRequest::write(AB, "POST", format!("{site}/subscriptions.json"))
        .when(format!(
            "no AB subscription has reference {subscription_reference}"
        ))
        .body(json!({
            "subscription": body,
            "uniqueness_token": uniqueness_token(&subscription_key, "subscription"),
        }))
        .note("<placeholders> are the ids Maxio answered to the requests before; the ids are sent as numbers");
    if let Some(start) = &plan.start {
        subscription = subscription.note(format!("the subscription {}", start.describe()));
    }
    if let Some(change) = plan.contract.as_ref().filter(|c| c.amends) {
        out.push(
            PlannedRequest::read(
                AB,
                "GET",
                format!("{site}/subscriptions/<id of the AB subscription>/components.json"),
            )
            .note(format!(
                "amends Contract {} of the first sale {}: never creates a customer or a subscription (without them it waits: AMENDMENT_ORIGINAL_NOT_BILLED); the Contract netted: {}",
                change.contract,
                change.original,
                change.summary.join(", ")
            )),
        );
        return out;
    }
    for item in plan.items.iter().filter(|i| i.lines.len() > 1) {
        subscription = subscription.note(format!(
            "{} ({}): {} order lines netted into one component of quantity {}",
            item.product_name,
            item.component_handle,
            item.lines.len(),
            item.quantity.normalize()
        ));
    }
    out.push(subscription);
    out.push(
        PlannedRequest::read(
            AB,
            "GET",
            format!("{site}/subscriptions/<id of the AB subscription>/components.json"),
        )
        .note("checks every component's price point and quantity; one that differs is moved (POST …/price_points.json) or allocated (POST …/components/<id>/allocations.json)"),
    );
    out
}

/// The requests that bring an existing subscription to the deal: each price point move and each
/// allocation (the new total, with the mapping's proration settings), as the sync sends them.
pub fn change_requests(
    base: &url::Url,
    plan: &AbDealPlan,
    subscription: Option<i64>,
    changes: &[dealbridge::maxio::converge::Difference],
    charges: &dealbridge::maxio::options::AllocationCharges,
) -> Vec<PlannedRequest> {
    use dealbridge::maxio::converge::Change;
    const AB: &str = "maxio-ab";
    let site = root(base);
    let sub = subscription.map_or_else(
        || "<id of the AB subscription>".to_string(),
        |s| s.to_string(),
    );
    let mut out = Vec::new();
    let moves: Vec<Value> = changes
        .iter()
        .filter_map(|d| match d.change {
            Some(Change::PricePoint { component_id, to }) => {
                Some(json!({"component_id": component_id, "price_point": to}))
            }
            _ => None,
        })
        .collect();
    if !moves.is_empty() {
        out.push(
            PlannedRequest::write(
                AB,
                "POST",
                format!("{site}/subscriptions/{sub}/price_points.json"),
            )
            .body(json!({ "components": moves })),
        );
    }
    for d in changes {
        if let Some(Change::Allocate {
            component_id,
            quantity,
            price_point_id,
        }) = d.change
        {
            out.push(
                PlannedRequest::write(
                    AB,
                    "POST",
                    format!(
                        "{site}/subscriptions/{sub}/components/{component_id}/allocations.json"
                    ),
                )
                .body(json!({"allocation": {
                    "quantity": quantity.normalize().to_string(),
                    "price_point_id": price_point_id,
                    "memo": format!("dealbridge: Opportunity {} — {}", plan.opportunity_id, d.what),
                    "upgrade_charge": charges.upgrade_charge,
                    "downgrade_credit": charges.downgrade_credit,
                    "accrue_charge": charges.accrue_charge,
                }}))
                .note(format!(
                    "{}; once per target (ledger step maxio-allocation {sub}/{component_id}={}@{})",
                    d.what,
                    quantity.normalize(),
                    price_point_id.map_or_else(|| "default".to_string(), |p| p.to_string())
                )),
            );
        }
    }
    out
}

/// The Maxio Core requests of the link: the customer and contract lists it filters, and the
/// contract field it sets.
pub fn maxio_core_requests(
    base: &url::Url,
    settings: &LinkSettings,
    account: &SfId,
    opportunity: &SfId,
) -> Vec<PlannedRequest> {
    const CORE: &str = "maxio-core";
    let list = |path: &str, filters: &[(&str, &str)]| {
        let mut url = base.join(path).unwrap_or_else(|_| base.clone());
        {
            let mut query = url.query_pairs_mut();
            for (k, v) in filters {
                query.append_pair(k, v);
            }
            query.append_pair("page_size", &CORE_PAGE_SIZE.to_string());
        }
        url.to_string()
    };
    let field = settings.customer_field.as_str();
    let contract_field = settings.contract_field.as_str();
    let base_text = base.as_str();
    vec![
        PlannedRequest::read(
            CORE,
            "GET",
            list("customers/", &[(field, account.as_str())]),
        )
        .note("every page is followed; each record is checked again, because Core ignores filters it does not know"),
        PlannedRequest::read(CORE, "GET", list("customers/", &[(field, account.to_15())]))
            .when(format!(
                "no customer's {field} holds the 18-character Account Id"
            )),
        PlannedRequest::read(
            CORE,
            "GET",
            format!("{base_text}contracts/?customer=<id of the Core customer>&page_size={CORE_PAGE_SIZE}"),
        )
        .note(format!(
            "the contract is the one whose sf_id is {opportunity}, else the single active contract that names no other Opportunity and is not linked to another subscription"
        )),
        PlannedRequest::write(
            CORE,
            "PATCH",
            format!("{base_text}contracts/<id of the Core contract>/"),
        )
        .when(format!(
            "the contract's {contract_field} does not hold the subscription id yet"
        ))
        .body(json!({ contract_field: "<id of the AB subscription>" }))
        .note(format!("then {contract_field} is read back from the answer")),
    ]
}

/// The WHMCS requests of provisioning one Order: the baseline, AddOrder and AcceptOrder.
pub fn whmcs_requests(
    endpoint: &url::Url,
    plan: &WhmcsOrderPlan,
    add: &AddOrder,
) -> Vec<PlannedRequest> {
    const WHMCS: &str = "whmcs";
    if !plan.orders_anything() {
        // A renewal carried on by the Contract's services: nothing is sent to WHMCS.
        return Vec::new();
    }
    let url = endpoint.to_string();
    let credentials = "the client adds identifier, secret (and accesskey, if set) and responsetype=json; they are not shown";
    let baseline = GetOrdersQuery {
        userid: Some(plan.client_id.clone()),
        limitnum: Some(1),
        ..GetOrdersQuery::default()
    };
    let accept = AcceptOrder {
        order_id: "<id of the WHMCS order>".into(),
        autosetup: None,
        send_email: None,
    };
    vec![
        PlannedRequest::read(WHMCS, "POST", url.clone())
            .form(&baseline.form())
            .note("the client's newest order, saved in the ledger as the baseline before AddOrder"),
        PlannedRequest::write(WHMCS, "POST", url.clone())
            .form(&add.form())
            .note(credentials),
        PlannedRequest::write(WHMCS, "POST", url)
            .form(&accept.form())
            .note("<id of the WHMCS order> is the orderid AddOrder answers"),
    ]
}

/// A short label for the deal: `Opportunity 006...` or `Order 801...`.
pub fn deal_label(deal: &DealRef) -> String {
    format!("{} {}", deal.sobject(), deal.id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_uniqueness_token_is_a_truncated_hash_of_the_step_key_and_part() {
        let t = uniqueness_token("006A000010khO8JIAU:maxio-customer", "customer");
        assert!(t.starts_with("dealbridge-"));
        assert_eq!(t.len(), "dealbridge-".len() + 32);
        assert_ne!(
            t,
            uniqueness_token("006A000010khO8JIAU:maxio-customer", "subscription")
        );
    }

    #[test]
    fn whmcs_forms_carry_no_credentials() {
        let plan = WhmcsOrderPlan {
            order_id: SfId::parse("801A000010khO8J").unwrap(),
            opportunity_id: None,
            client_id: "1".into(),
            items: vec![SfId::parse("802A000010khO8J").unwrap()],
            main_line: 0,
            needs_activating: false,
            continued: vec![],
            continued_order: None,
        };
        let add = AddOrder {
            client_id: "1".into(),
            payment_method: "mailin".into(),
            lines: vec![dealbridge::whmcs::OrderLine::new("185", "monthly")],
            ..AddOrder::default()
        };
        let endpoint = url::Url::parse("https://billing.example.com/includes/api.php").unwrap();
        let requests = whmcs_requests(&endpoint, &plan, &add);
        assert_eq!(requests.len(), 3);
        let form = requests[1].form.as_ref().unwrap();
        assert_eq!(form[0], ("action".to_string(), "AddOrder".to_string()));
        assert!(form.contains(&("pid[0]".to_string(), "185".to_string())));
        for r in &requests {
            for (k, _) in r.form.as_ref().unwrap() {
                assert!(!["identifier", "secret", "accesskey"].contains(&k.as_str()));
            }
        }
        assert!(requests[1].write && !requests[0].write);
    }

    #[test]
    fn the_core_link_lists_with_the_account_id_in_both_forms_and_patches_one_field() {
        let base = url::Url::parse("https://s1.saasoptics.com/acme/api/v1.0/").unwrap();
        let account = SfId::parse("001A000010khO8J").unwrap();
        let opp = SfId::parse("006A000010khO8J").unwrap();
        let r = maxio_core_requests(&base, &LinkSettings::default(), &account, &opp);
        assert_eq!(
            r[0].url,
            format!(
                "https://s1.saasoptics.com/acme/api/v1.0/customers/?number={account}&page_size=100"
            )
        );
        assert!(r[1].url.contains("number=001A000010khO8J&"));
        assert_eq!(r[3].method, "PATCH");
        assert_eq!(
            r[3].body,
            Some(json!({"text_field2": "<id of the AB subscription>"}))
        );
    }
}
