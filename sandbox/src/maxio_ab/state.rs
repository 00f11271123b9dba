//! The site's records, its virtual clock and the remembered `uniqueness_token`s, and how each
//! record is rendered as JSON.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, FixedOffset, Offset, Utc};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde_json::{Map, Value, json};

use super::AbSettings;
use super::catalog;
use super::validate::{decimal_string, formatted_currency_price, formatted_price};

/// How long a `uniqueness_token` is remembered.
pub(super) const UNIQUENESS_WINDOW_MINUTES: i64 = 60;

/// The site's time zone. Real sites render timestamps with the site's offset (e.g.
/// `2021-03-29T07:47:00-04:00`); the fake uses a fixed US Eastern standard offset so that clients
/// see a non-UTC offset, without daylight-saving changes.
pub(super) fn site_offset() -> FixedOffset {
    FixedOffset::west_opt(5 * 3600).unwrap_or_else(|| Utc.fix())
}

/// A quantity as the API renders it: an integer when whole, else a decimal string.
pub(super) fn quantity_json(quantity: Decimal) -> Value {
    match quantity
        .fract()
        .is_zero()
        .then(|| quantity.to_i64())
        .flatten()
    {
        Some(n) => json!(n),
        None => json!(decimal_string(quantity)),
    }
}

/// A timestamp as the API renders it.
pub(super) fn ts(at: DateTime<Utc>) -> String {
    at.with_timezone(&site_offset())
        .format("%Y-%m-%dT%H:%M:%S%:z")
        .to_string()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PricePointType {
    Default,
    Catalog,
    Custom,
}

impl PricePointType {
    pub fn as_str(self) -> &'static str {
        match self {
            PricePointType::Default => "default",
            PricePointType::Catalog => "catalog",
            PricePointType::Custom => "custom",
        }
    }
}

#[derive(Debug, Clone)]
pub(super) struct Bracket {
    pub id: i64,
    pub starting_quantity: i64,
    pub ending_quantity: Option<i64>,
    pub unit_price: Decimal,
}

/// A price of one bracket in one of the site's non-primary currencies.
#[derive(Debug, Clone)]
pub(super) struct CurrencyPrice {
    pub id: i64,
    pub currency: String,
    pub price: Decimal,
    /// The bracket (`prices[].id`) it prices.
    pub price_id: i64,
}

#[derive(Debug, Clone)]
pub(super) struct PricePoint {
    pub id: i64,
    pub component_id: i64,
    pub kind: PricePointType,
    pub name: String,
    pub handle: Option<String>,
    pub pricing_scheme: String,
    pub prices: Vec<Bracket>,
    pub subscription_id: Option<i64>,
    pub tax_included: bool,
    pub use_site_exchange_rate: bool,
    pub interval: Value,
    pub interval_unit: Value,
    pub currency_prices: Vec<CurrencyPrice>,
    pub created_at: DateTime<Utc>,
}

impl PricePoint {
    /// True when every bracket has a price in `currency`.
    pub fn priced_in(&self, currency: &str) -> bool {
        self.prices.iter().all(|b| {
            self.currency_prices
                .iter()
                .any(|c| c.price_id == b.id && c.currency == currency)
        })
    }
}

#[derive(Debug, Clone)]
pub(super) struct Component {
    pub id: i64,
    pub handle: String,
    pub name: String,
    pub kind: &'static str,
    pub unit_name: String,
    pub default_price_point_id: i64,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub(super) struct Product {
    pub id: i64,
    pub handle: String,
    pub name: String,
    pub price_in_cents: i64,
    pub interval: i32,
    pub interval_unit: &'static str,
    pub price_point_id: i64,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub(super) struct Family {
    pub id: i64,
    pub name: String,
    pub handle: String,
    pub created_at: DateTime<Utc>,
}

/// A component on a subscription: its price point and quantity now. A component whose price
/// point was set (`POST /subscriptions/{id}/price_points.json`) but never allocated has a row
/// with quantity 0.
#[derive(Debug, Clone)]
pub(super) struct SubscriptionComponent {
    pub id: i64,
    pub subscription_id: i64,
    pub component_id: i64,
    /// Kept as set, even when it names no price point of the component (see
    /// `MaxioAbSandbox::set_component`).
    pub price_point_id: i64,
    pub allocated_quantity: Decimal,
    pub unit_balance: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One accepted `POST /subscriptions/{sid}/components/{cid}/allocations.json`.
#[derive(Debug, Clone)]
pub(super) struct Allocation {
    pub id: i64,
    pub subscription_id: i64,
    pub component_id: i64,
    pub quantity: Decimal,
    pub previous_quantity: Decimal,
    pub price_point_id: i64,
    /// `None` when the component was not on the subscription before.
    pub previous_price_point_id: Option<i64>,
    pub memo: Option<String>,
    pub upgrade_charge: String,
    pub downgrade_credit: String,
    pub accrue_charge: bool,
    pub initiate_dunning: bool,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub(super) struct Subscription {
    pub id: i64,
    pub customer_id: i64,
    pub product_id: i64,
    pub reference: Option<String>,
    pub state: &'static str,
    /// The state before the last change (at creation: the state itself, as AB renders it).
    pub previous_state: &'static str,
    pub payment_collection_method: String,
    /// `None` until the subscription is active (e.g. while `awaiting_signup`).
    pub activated_at: Option<DateTime<Utc>>,
    pub current_period_started_at: DateTime<Utc>,
    pub current_period_ends_at: DateTime<Utc>,
    pub next_assessment_at: DateTime<Utc>,
    pub net_terms: Value,
    pub currency: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub cancellation: CancelFields,
}

/// What a subscription records about its cancellation (see `cancellations.rs`): all unset until
/// a cancel, a delayed cancel or a scheduled cancel; cleared by reactivation.
#[derive(Debug, Clone, Default)]
pub(super) struct CancelFields {
    pub canceled_at: Option<DateTime<Utc>>,
    pub cancellation_message: Option<String>,
    /// ASSUMED values: `merchant_api` for every cancellation the API asked for (now, at the end
    /// of the period, or at a scheduled time); AB also knows e.g. `merchant_ui` and `dunning`,
    /// which nothing in the fake produces.
    pub cancellation_method: Option<&'static str>,
    pub reason_code: Option<String>,
    pub cancel_at_end_of_period: bool,
    pub delayed_cancel_at: Option<DateTime<Utc>>,
    pub scheduled_cancellation_at: Option<DateTime<Utc>>,
}

/// The subscription states AB documents (`maxio.md` §4), for the states tests may set.
pub(super) const STATES: [&str; 15] = [
    "pending",
    "failed_to_create",
    "trialing",
    "assessing",
    "active",
    "soft_failure",
    "past_due",
    "suspended",
    "canceled",
    "expired",
    "paused",
    "unpaid",
    "trial_ended",
    "on_hold",
    "awaiting_signup",
];

/// The `cancellation_method` of cancellations the API asked for (ASSUMED value).
pub(super) const MERCHANT_API: &str = "merchant_api";

#[derive(Debug, Default)]
pub(super) struct Sequences {
    next: HashMap<&'static str, i64>,
    /// Added to every range (`AbSettings::id_base`): AB ids are unique across sites.
    offset: i64,
}

impl Sequences {
    /// The next id of a kind of record; each kind has its own range so ids read well in logs.
    pub fn next(&mut self, kind: &'static str) -> i64 {
        let base = match kind {
            "family" => 1_000,
            "product" => 2_000,
            "component" => 3_000,
            "price_point" => 4_000,
            "price" => 5_000,
            "customer" => 6_000,
            "subscription" => 7_000,
            "subscription_component" => 8_000,
            "allocation" => 10_000,
            "currency_price" => 11_000,
            "event" => 20_000,
            "endpoint" => 21_000,
            "webhook" => 22_000,
            _ => 9_000,
        };
        let n = self.next.entry(kind).or_insert(base + self.offset);
        *n += 1;
        *n
    }
}

pub(super) struct Store {
    pub ids: Sequences,
    pub clock_offset: chrono::Duration,
    pub family: Family,
    pub products: Vec<Product>,
    pub components: Vec<Component>,
    pub price_points: Vec<PricePoint>,
    /// Customers as the API renders them (unwrapped).
    pub customers: Vec<Map<String, Value>>,
    pub subscriptions: Vec<Subscription>,
    pub subscription_components: Vec<SubscriptionComponent>,
    /// Every accepted allocation, oldest first.
    pub allocations: Vec<Allocation>,
    /// The site's primary currency (upper case).
    pub currency: String,
    /// The site's other currencies (upper case).
    pub non_primary_currencies: Vec<String>,
    /// `uniqueness_token` → when it was first seen (virtual time).
    pub tokens: HashMap<String, DateTime<Utc>>,
    /// Component handles whose requested price point the next subscription create ignores.
    pub forced_default: HashSet<String>,
    /// Whether the site has the "Schedule Subscription Cancellation" feature
    /// (`AbSettings::schedule_cancellation`).
    pub schedule_cancellation: bool,
    /// Every negative component quantity the site was sent, described (see
    /// `MaxioAbSandbox::negative_quantities`).
    pub negative_quantities: Vec<String>,
    /// The event log, oldest first, and what it last saw of each subscription (`events.rs`).
    pub events: Vec<super::events::Event>,
    pub seen: HashMap<i64, super::events::Seen>,
    /// Subscriptions changed since the log last looked.
    pub dirty: HashSet<i64>,
    /// Webhook endpoints and the webhooks queued for them (`webhooks.rs`), signed with the
    /// site's shared key; the subdomain goes into each payload.
    pub endpoints: Vec<super::webhooks::Endpoint>,
    pub webhooks: Vec<super::webhooks::Webhook>,
    pub webhook_key: String,
    pub subdomain: String,
}

impl Store {
    pub fn new(settings: &AbSettings) -> Store {
        let now = Utc::now();
        let mut ids = Sequences {
            offset: settings.id_base,
            ..Sequences::default()
        };
        let family = Family {
            id: ids.next("family"),
            name: "dealbridge".into(),
            handle: "dealbridge".into(),
            created_at: now,
        };
        let mut store = Store {
            ids,
            clock_offset: chrono::Duration::zero(),
            family,
            products: Vec::new(),
            components: Vec::new(),
            price_points: Vec::new(),
            customers: Vec::new(),
            subscriptions: Vec::new(),
            subscription_components: Vec::new(),
            allocations: Vec::new(),
            currency: settings.currency.trim().to_ascii_uppercase(),
            non_primary_currencies: settings
                .non_primary_currencies
                .iter()
                .map(|c| c.trim().to_ascii_uppercase())
                .collect(),
            tokens: HashMap::new(),
            forced_default: HashSet::new(),
            schedule_cancellation: settings.schedule_cancellation,
            negative_quantities: Vec::new(),
            events: Vec::new(),
            seen: HashMap::new(),
            dirty: HashSet::new(),
            endpoints: Vec::new(),
            webhooks: Vec::new(),
            webhook_key: settings.webhook_shared_key.clone(),
            subdomain: settings.subdomain.clone(),
        };
        catalog::seed(&mut store, settings, now);
        store
    }

    /// The virtual clock: real time plus whatever the tests advanced it by.
    pub fn now(&self) -> DateTime<Utc> {
        Utc::now() + self.clock_offset
    }

    /// Applies every cancellation whose time has come on the virtual clock: a subscription with
    /// a delayed cancel (`cancel_at_end_of_period` and `delayed_cancel_at`) or a
    /// `scheduled_cancellation_at` at or before now becomes `canceled`, `canceled_at` the time it
    /// was due (the earlier of the two), `previous_state` the state it had. The fake's clock does
    /// not tick on its own: this runs whenever the store is used (every request, every read of
    /// the sandbox handle), so the transition is seen as soon as anything looks, and
    /// deterministically.
    ///
    /// ASSUMED: the pending-cancellation fields (`cancel_at_end_of_period`, `delayed_cancel_at`,
    /// `scheduled_cancellation_at`) keep their values after the cancellation, and
    /// `cancellation_method` is `merchant_api`. Subscriptions do not renew in the fake: the
    /// period shown stays the one the subscription started with.
    pub fn settle(&mut self) {
        let now = self.now();
        for s in &mut self.subscriptions {
            if s.state == "canceled" {
                continue;
            }
            let c = &mut s.cancellation;
            let delayed = c.delayed_cancel_at.filter(|_| c.cancel_at_end_of_period);
            let due = match (delayed, c.scheduled_cancellation_at) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            if let Some(due) = due.filter(|due| *due <= now) {
                self.dirty.insert(s.id);
                s.previous_state = s.state;
                s.state = "canceled";
                c.canceled_at = Some(due);
                c.cancellation_method = Some(MERCHANT_API);
                s.updated_at = due;
            }
        }
    }

    pub fn subscription_mut(&mut self, id: i64) -> Option<&mut Subscription> {
        self.dirty.insert(id);
        self.subscriptions.iter_mut().find(|s| s.id == id)
    }

    pub fn component(&self, id: i64) -> Option<&Component> {
        self.components.iter().find(|c| c.id == id)
    }

    pub fn component_by_handle(&self, handle: &str) -> Option<&Component> {
        self.components.iter().find(|c| c.handle == handle)
    }

    /// A component named by a numeric id or `handle:<handle>`.
    pub fn component_by_ref(&self, reference: &str) -> Option<&Component> {
        match reference.strip_prefix("handle:") {
            Some(handle) => self.component_by_handle(handle),
            None => reference
                .parse::<i64>()
                .ok()
                .and_then(|id| self.component(id)),
        }
    }

    pub fn price_point(&self, id: i64) -> Option<&PricePoint> {
        self.price_points.iter().find(|p| p.id == id)
    }

    /// A price point of `component_id`, by numeric id or `handle:<handle>`. Custom price points
    /// (which belong to a subscription) only count when `include_custom`.
    pub fn price_point_by_ref(
        &self,
        component_id: i64,
        reference: &str,
        include_custom: bool,
    ) -> Option<&PricePoint> {
        let of_component = |p: &&PricePoint| {
            p.component_id == component_id && (include_custom || p.kind != PricePointType::Custom)
        };
        match reference.strip_prefix("handle:") {
            Some(handle) => self
                .price_points
                .iter()
                .filter(of_component)
                .find(|p| p.handle.as_deref() == Some(handle)),
            None => {
                let id = reference.parse::<i64>().ok()?;
                self.price_points
                    .iter()
                    .filter(of_component)
                    .find(|p| p.id == id)
            }
        }
    }

    pub fn product(&self, id: i64) -> Option<&Product> {
        self.products.iter().find(|p| p.id == id)
    }

    pub fn product_by_handle(&self, handle: &str) -> Option<&Product> {
        self.products.iter().find(|p| p.handle == handle)
    }

    pub fn customer(&self, id: i64) -> Option<&Map<String, Value>> {
        self.customers
            .iter()
            .find(|c| c.get("id").and_then(Value::as_i64) == Some(id))
    }

    pub fn customer_by_reference(&self, reference: &str) -> Option<&Map<String, Value>> {
        self.customers
            .iter()
            .find(|c| c.get("reference").and_then(Value::as_str) == Some(reference))
    }

    pub fn subscription(&self, id: i64) -> Option<&Subscription> {
        self.subscriptions.iter().find(|s| s.id == id)
    }

    /// The site currency `code` names (primary or non-primary), upper case.
    ///
    /// ASSUMED: currency codes are matched case-insensitively (`eur` is EUR).
    pub fn site_currency(&self, code: &str) -> Option<String> {
        let code = code.trim().to_ascii_uppercase();
        (code == self.currency || self.non_primary_currencies.contains(&code)).then_some(code)
    }

    /// The component `component_id` has on subscription `subscription_id`, if any.
    pub fn subscription_component(
        &self,
        subscription_id: i64,
        component_id: i64,
    ) -> Option<&SubscriptionComponent> {
        self.subscription_components
            .iter()
            .find(|a| a.subscription_id == subscription_id && a.component_id == component_id)
    }

    /// Puts `component_id` on subscription `subscription_id` at `price_point_id`, keeping its
    /// quantity, or adds it with quantity 0.
    pub fn set_subscription_price_point(
        &mut self,
        subscription_id: i64,
        component_id: i64,
        price_point_id: i64,
    ) -> &mut SubscriptionComponent {
        self.dirty.insert(subscription_id);
        let now = self.now();
        let index =
            match self.subscription_components.iter().position(|a| {
                a.subscription_id == subscription_id && a.component_id == component_id
            }) {
                Some(i) => i,
                None => {
                    let id = self.ids.next("subscription_component");
                    self.subscription_components.push(SubscriptionComponent {
                        id,
                        subscription_id,
                        component_id,
                        price_point_id,
                        allocated_quantity: Decimal::ZERO,
                        unit_balance: 0,
                        created_at: now,
                        updated_at: now,
                    });
                    self.subscription_components.len() - 1
                }
            };
        let row = &mut self.subscription_components[index];
        row.price_point_id = price_point_id;
        row.updated_at = now;
        row
    }

    /// True when `token` was seen less than 60 minutes (virtual time) ago.
    pub fn token_is_fresh(&self, token: &str) -> bool {
        self.tokens.get(token).is_some_and(|first| {
            self.now() - *first < chrono::Duration::minutes(UNIQUENESS_WINDOW_MINUTES)
        })
    }

    pub fn render_price_point(&self, p: &PricePoint, currency_prices: bool) -> Value {
        let prices: Vec<Value> = p
            .prices
            .iter()
            .map(|b| {
                json!({
                    "id": b.id,
                    "component_id": p.component_id,
                    "starting_quantity": b.starting_quantity,
                    "ending_quantity": b.ending_quantity,
                    "unit_price": decimal_string(b.unit_price),
                    "price_point_id": p.id,
                    "formatted_unit_price": formatted_price(b.unit_price),
                    "segment_id": null,
                })
            })
            .collect();
        let mut out = json!({
            "id": p.id,
            "default": p.kind == PricePointType::Default,
            "name": p.name,
            "type": p.kind.as_str(),
            "pricing_scheme": p.pricing_scheme,
            "component_id": p.component_id,
            "handle": p.handle,
            "archived_at": null,
            "created_at": ts(p.created_at),
            "updated_at": ts(p.created_at),
            "prices": prices,
            "tax_included": p.tax_included,
            "use_site_exchange_rate": p.use_site_exchange_rate,
            "interval": p.interval,
            "interval_unit": p.interval_unit,
        });
        if let Some(map) = out.as_object_mut() {
            if let Some(subscription_id) = p.subscription_id {
                map.insert("subscription_id".into(), json!(subscription_id));
            }
            if currency_prices {
                let list: Vec<Value> = p
                    .currency_prices
                    .iter()
                    .map(|c| render_currency_price(p, c))
                    .collect();
                map.insert("currency_prices".into(), Value::Array(list));
            }
        }
        out
    }

    pub fn render_component(&self, c: &Component) -> Value {
        let default = self.price_point(c.default_price_point_id);
        let prices: Vec<Value> = default
            .map(|p| {
                p.prices
                    .iter()
                    .map(|b| {
                        json!({
                            "id": b.id,
                            "component_id": c.id,
                            "starting_quantity": b.starting_quantity,
                            "ending_quantity": b.ending_quantity,
                            "unit_price": decimal_string(b.unit_price),
                            "price_point_id": p.id,
                            "formatted_unit_price": formatted_price(b.unit_price),
                            "segment_id": null,
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        let price_point_count = self
            .price_points
            .iter()
            .filter(|p| p.component_id == c.id && p.kind != PricePointType::Custom)
            .count();
        let per_unit_price = default
            .filter(|p| p.pricing_scheme == "per_unit")
            .and_then(|p| p.prices.first())
            .map(|b| decimal_string(b.unit_price));
        json!({
            "id": c.id,
            "name": c.name,
            "handle": c.handle,
            "pricing_scheme": default.map(|p| p.pricing_scheme.clone()),
            "unit_name": c.unit_name,
            "unit_price": per_unit_price,
            "product_family_id": self.family.id,
            "product_family_name": self.family.name,
            "product_family_handle": self.family.handle,
            "price_per_unit_in_cents": null,
            "kind": c.kind,
            "archived": false,
            "taxable": false,
            "description": null,
            "default_price_point_id": c.default_price_point_id,
            "default_price_point_name": default.map(|p| p.name.clone()),
            "prices": prices,
            "price_point_count": price_point_count,
            "price_points_url": format!("/components/{}/price_points", c.id),
            "tax_code": null,
            "recurring": c.kind != "metered_component",
            "upgrade_charge": null,
            "downgrade_credit": null,
            "created_at": ts(c.created_at),
            "updated_at": ts(c.created_at),
            "archived_at": null,
            "hide_date_range_on_invoice": false,
            "allow_fractional_quantities": false,
            "item_category": null,
            "use_site_exchange_rate": true,
            "accounting_code": null,
            "event_based_billing_metric_id": null,
            "interval": 1,
            "interval_unit": "month",
        })
    }

    pub fn render_family(&self) -> Value {
        json!({
            "id": self.family.id,
            "name": self.family.name,
            "handle": self.family.handle,
            "accounting_code": null,
            "description": "Products and components billed by dealbridge",
            "created_at": ts(self.family.created_at),
            "updated_at": ts(self.family.created_at),
        })
    }

    pub fn render_product(&self, p: &Product) -> Value {
        json!({
            "id": p.id,
            "name": p.name,
            "handle": p.handle,
            "description": null,
            "accounting_code": null,
            "request_credit_card": false,
            "expiration_interval": null,
            "expiration_interval_unit": null,
            "created_at": ts(p.created_at),
            "updated_at": ts(p.created_at),
            "price_in_cents": p.price_in_cents,
            "interval": p.interval,
            "interval_unit": p.interval_unit,
            "initial_charge_in_cents": null,
            "trial_price_in_cents": null,
            "trial_interval": null,
            "trial_interval_unit": null,
            "archived_at": null,
            "require_credit_card": false,
            "return_params": null,
            "taxable": false,
            "update_return_url": null,
            "tax_code": null,
            "initial_charge_after_trial": false,
            "version_number": 1,
            "update_return_params": null,
            "product_family": self.render_family(),
            "public_signup_pages": [],
            "product_price_point_name": "Default",
            "request_billing_address": false,
            "require_billing_address": false,
            "require_shipping_address": false,
            "use_site_exchange_rate": true,
            "item_category": null,
            "product_price_point_id": p.price_point_id,
            "product_price_point_handle": null,
            "default_product_price_point_id": p.price_point_id,
        })
    }

    pub fn render_subscription(&self, s: &Subscription) -> Value {
        let customer = self
            .customer(s.customer_id)
            .map(|c| Value::Object(c.clone()))
            .unwrap_or(Value::Null);
        let product = self.product(s.product_id);
        let price_in_cents = product.map(|p| p.price_in_cents).unwrap_or(0);
        let product_json = product
            .map(|p| self.render_product(p))
            .unwrap_or(Value::Null);
        let created = ts(s.created_at);
        let c = &s.cancellation;
        let mut head = json!({
            "id": s.id,
            "state": s.state,
            "previous_state": s.previous_state,
            "balance_in_cents": 0,
            "total_revenue_in_cents": 0,
            "product_price_in_cents": price_in_cents,
            // ASSUMED: what the next renewal bills is the product's price; the fake does not add
            // components' recurring charges.
            "current_billing_amount_in_cents": price_in_cents,
            "product_version_number": 1,
            "current_period_ends_at": ts(s.current_period_ends_at),
            "next_assessment_at": ts(s.next_assessment_at),
            "trial_started_at": null,
            "trial_ended_at": null,
            "activated_at": s.activated_at.map(ts),
            "expires_at": null,
            "created_at": created,
            "updated_at": ts(s.updated_at),
            "cancellation_message": c.cancellation_message,
            "cancellation_method": c.cancellation_method,
            "cancel_at_end_of_period": c.cancel_at_end_of_period,
            "canceled_at": c.canceled_at.map(ts),
            "current_period_started_at": ts(s.current_period_started_at),
            "signup_payment_id": null,
            "signup_revenue": "0.00",
            "delayed_cancel_at": c.delayed_cancel_at.map(ts),
            "coupon_code": null,
            "snap_day": null,
            "payment_collection_method": s.payment_collection_method,
        });
        let rest = json!({
            "customer": customer,
            "product": product_json,
            "group": null,
            "payment_type": null,
            "referral_code": null,
            "next_product_id": null,
            "next_product_handle": null,
            "coupon_use_count": null,
            "coupon_uses_allowed": null,
            "reason_code": c.reason_code,
            "automatically_resume_at": null,
            "coupon_codes": [],
            "offer_id": null,
            "payer_id": s.customer_id,
            "current_billing_amount_in_cents": price_in_cents,
            "product_price_point_id": product.map(|p| p.price_point_id),
            "product_price_point_type": "default",
            "next_product_price_point_id": null,
            "net_terms": s.net_terms,
            "stored_credential_transaction_id": null,
            "reference": s.reference,
            "on_hold_at": null,
            "prepaid_dunning": false,
            "dunning_communication_delay_enabled": false,
            "dunning_communication_delay_time_zone": null,
            "receives_invoice_emails": null,
            "locale": null,
            "currency": s.currency,
            "scheduled_cancellation_at": c.scheduled_cancellation_at.map(ts),
            "credit_balance_in_cents": 0,
            "prepayment_balance_in_cents": 0,
        });
        if let (Some(out), Value::Object(rest)) = (head.as_object_mut(), rest) {
            out.extend(rest);
        }
        head
    }

    /// `GET /subscriptions/{id}/components.json` items (unwrapped).
    ///
    /// UNCONFIRMED which components the real list contains. The endpoint documents a
    /// `price_point_ids=not_null` filter ("fetch components allocation only if price point id is
    /// present") and a `product_family_ids` filter, which implies it lists every component of
    /// the subscription's product family, including ones never allocated to it (with a null price
    /// point). The fake does that: components not on the subscription come back with
    /// `price_point_id: null` and zero quantities, and `only_priced` drops them. A component
    /// whose price point was set but that was never allocated has its price point and quantity 0.
    ///
    /// Every item has `allocated_quantity` and `unit_balance` (0 when they do not apply to the
    /// kind) and `enabled` (null except for on/off components), as the documented examples do;
    /// `currency` is the subscription's, `use_site_exchange_rate` and `pricing_scheme` the price
    /// point's.
    pub fn render_subscription_components(
        &self,
        s: &Subscription,
        only_priced: bool,
    ) -> Vec<Value> {
        let mut out = Vec::new();
        for c in &self.components {
            let row = self.subscription_component(s.id, c.id);
            if only_priced && row.is_none() {
                continue;
            }
            let price_point = row.and_then(|a| self.price_point(a.price_point_id));
            let quantity = row.map(|a| a.allocated_quantity).unwrap_or(Decimal::ZERO);
            let allocated_quantity = quantity_json(quantity);
            let enabled = if c.kind == "on_off_component" {
                json!(quantity > Decimal::ZERO)
            } else {
                Value::Null
            };
            let created = row.map(|a| a.created_at).unwrap_or(s.created_at);
            let updated = row.map(|a| a.updated_at).unwrap_or(s.created_at);
            out.push(json!({
                "id": row.map(|a| a.id),
                "component_id": c.id,
                "subscription_id": s.id,
                "component_handle": c.handle,
                "name": c.name,
                "kind": c.kind,
                "unit_name": c.unit_name,
                "unit_balance": row.map(|a| a.unit_balance).unwrap_or(0),
                "allocated_quantity": allocated_quantity,
                "enabled": enabled,
                "pricing_scheme": price_point.map(|p| p.pricing_scheme.clone()),
                "price_point_id": row.map(|a| a.price_point_id),
                "price_point_handle": price_point.and_then(|p| p.handle.clone()),
                "price_point_name": price_point.map(|p| p.name.clone()),
                "price_point_type": price_point.map(|p| p.kind.as_str()),
                "product_family_id": self.family.id,
                "product_family_handle": self.family.handle,
                "currency": s.currency,
                "use_site_exchange_rate": price_point.map(|p| p.use_site_exchange_rate),
                "archived_at": null,
                "created_at": ts(created),
                "updated_at": ts(updated),
                "allow_fractional_quantities": false,
                "recurring": c.kind != "metered_component",
                "upgrade_charge": null,
                "downgrade_credit": null,
                "description": null,
                "interval": 1,
                "interval_unit": "month",
            }));
        }
        out
    }

    /// An allocation as `POST …/allocations.json` answers it (unwrapped). Quantities render as
    /// the API does: whole numbers as integers, fractions as strings.
    pub fn render_allocation(&self, a: &Allocation) -> Value {
        let component = self.component(a.component_id);
        let price_point = self.price_point(a.price_point_id);
        let at = ts(a.created_at);
        json!({
            "allocation_id": a.id,
            "component_id": a.component_id,
            "component_handle": component.map(|c| c.handle.clone()),
            "subscription_id": a.subscription_id,
            "quantity": quantity_json(a.quantity),
            "previous_quantity": quantity_json(a.previous_quantity),
            "memo": a.memo,
            "timestamp": at,
            "created_at": at,
            "price_point_id": a.price_point_id,
            "price_point_name": price_point.map(|p| p.name.clone()),
            "price_point_handle": price_point.and_then(|p| p.handle.clone()),
            "previous_price_point_id": a.previous_price_point_id,
            "accrue_charge": a.accrue_charge,
            "initiate_dunning": a.initiate_dunning,
            "upgrade_charge": a.upgrade_charge,
            "downgrade_credit": a.downgrade_credit,
            "payment": null,
            "expires_at": null,
            "used_quantity": null,
            "charge_id": null,
        })
    }
}

/// A currency price as `POST /price_points/{id}/currency_prices.json` answers it.
///
/// ASSUMED: `price` is a decimal string like `unit_price` (`"0.1"`, `"51.0"`); `formatted_price`
/// uses the currency's symbol (see `formatted_currency_price`).
pub(super) fn render_currency_price(p: &PricePoint, c: &CurrencyPrice) -> Value {
    json!({
        "id": c.id,
        "currency": c.currency,
        "price": decimal_string(c.price),
        "formatted_price": formatted_currency_price(c.price, &c.currency),
        "price_id": c.price_id,
        "price_point_id": p.id,
    })
}
