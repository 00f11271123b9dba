//! Maxio Advanced Billing resources as dealbridge reads and writes them. Reading is tolerant: every
//! field AB may omit or null is optional, and ids come as numbers.

use serde::{Deserialize, Serialize};

/// `POST /customers.json` body (inside `{"customer": ...}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewCustomer {
    pub first_name: String,
    pub last_name: String,
    pub email: String,
    pub organization: String,
    /// The Salesforce Account Id (18 characters): unique per AB site.
    pub reference: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address_2: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zip: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub salesforce_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Customer {
    pub id: i64,
    #[serde(default)]
    pub reference: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub organization: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Component {
    pub id: i64,
    #[serde(default)]
    pub handle: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub default_price_point_id: Option<i64>,
    #[serde(default)]
    pub allow_fractional_quantities: Option<bool>,
}

impl Component {
    pub fn is_quantity_based(&self) -> bool {
        self.kind.as_deref() == Some("quantity_based_component")
    }

    pub fn is_on_off(&self) -> bool {
        self.kind.as_deref() == Some("on_off_component")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PriceOut {
    #[serde(default)]
    pub id: Option<i64>,
    pub starting_quantity: serde_json::Value,
    #[serde(default)]
    pub ending_quantity: serde_json::Value,
    pub unit_price: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PricePoint {
    pub id: i64,
    #[serde(default)]
    pub handle: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub pricing_scheme: Option<String>,
    #[serde(default)]
    pub component_id: Option<i64>,
    #[serde(default)]
    pub prices: Vec<PriceOut>,
    #[serde(default)]
    pub archived_at: Option<String>,
    #[serde(default)]
    pub use_site_exchange_rate: Option<bool>,
    /// Only when read with `?currency_prices=true`.
    #[serde(default)]
    pub currency_prices: Vec<CurrencyPrice>,
}

/// A price of one bracket (`price_id`) in a non-primary currency.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct CurrencyPrice {
    #[serde(default)]
    pub id: Option<i64>,
    #[serde(default)]
    pub currency: Option<String>,
    #[serde(default)]
    pub price: serde_json::Value,
    #[serde(default)]
    pub price_id: Option<i64>,
}

/// One item of `POST /price_points/{id}/currency_prices.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NewCurrencyPrice {
    pub currency: String,
    pub price: String,
    pub price_id: i64,
}

/// `GET /site.json`, the parts dealbridge reads.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Site {
    #[serde(default)]
    pub subdomain: Option<String>,
    pub currency: String,
    #[serde(default)]
    pub non_primary_currencies: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Product {
    pub id: i64,
    #[serde(default)]
    pub handle: Option<String>,
    #[serde(default)]
    pub interval: Option<i64>,
    #[serde(default)]
    pub interval_unit: Option<String>,
}

/// `POST /subscriptions/{id}/components/{component_id}/allocations.json` body (inside
/// `{"allocation": ...}`): `quantity` is the new total.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NewAllocation {
    pub quantity: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub price_point_id: Option<i64>,
    pub memo: String,
    pub upgrade_charge: String,
    pub downgrade_credit: String,
    pub accrue_charge: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Allocation {
    #[serde(default)]
    pub allocation_id: Option<i64>,
    #[serde(default)]
    pub component_id: Option<i64>,
    #[serde(default)]
    pub quantity: serde_json::Value,
    #[serde(default)]
    pub price_point_id: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionComponentRequest {
    /// `handle:<component handle>` or the numeric id.
    pub component_id: serde_json::Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub price_point_id: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allocated_quantity: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
}

/// `POST /subscriptions.json` body (inside `{"subscription": ...}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewSubscription {
    pub product_handle: String,
    pub customer_id: i64,
    /// The Salesforce Opportunity (or Order) Id.
    pub reference: String,
    pub payment_collection_method: String,
    pub components: Vec<SubscriptionComponentRequest>,
    /// The deal's currency (a site currency; it cannot change later).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    /// A future start: the subscription waits in `awaiting_signup` until then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_billing_at: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Subscription {
    pub id: i64,
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub reference: Option<String>,
    #[serde(default)]
    pub customer: Option<Customer>,
    #[serde(default)]
    pub currency: Option<String>,
    #[serde(default)]
    pub next_assessment_at: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SubscriptionComponent {
    pub component_id: i64,
    #[serde(default)]
    pub kind: Option<String>,
    /// A number, or a string for fractional quantities (`"10.3"`).
    #[serde(default)]
    pub allocated_quantity: serde_json::Value,
    #[serde(default)]
    pub enabled: Option<bool>,
    #[serde(default)]
    pub currency: Option<String>,
    #[serde(default)]
    pub price_point_id: Option<i64>,
    #[serde(default)]
    pub price_point_handle: Option<String>,
}

impl SubscriptionComponent {
    /// The allocated quantity, whether AB sent a number or a string.
    pub fn quantity(&self) -> Option<rust_decimal::Decimal> {
        match &self.allocated_quantity {
            serde_json::Value::Number(n) => crate::snapshot::fields::decimal_from_number(n),
            serde_json::Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }
    }
}

/// The optional body of a cancel (`DELETE /subscriptions/{id}.json`) or a delayed cancel
/// (`POST /subscriptions/{id}/delayed_cancel.json`), inside `{"subscription": ...}`. Nothing set:
/// no body is sent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Cancellation {
    /// Free text kept on the subscription (at most 65535 characters), e.g. the Case and reason.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cancellation_message: Option<String>,
    /// The site's reason code (any text is accepted; at most 255 characters).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason_code: Option<String>,
    /// Cancel at the end of the current period instead of now. On a cancel it needs the site
    /// feature "Schedule Subscription Cancellation" (a 422 without it); the delayed cancel
    /// endpoint does the same without the feature.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cancel_at_end_of_period: Option<bool>,
    /// Cancel at this time (not for prepaid subscriptions); needs the site feature "Schedule
    /// Subscription Cancellation" (a 422 without it). Sent as RFC 3339 in UTC.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scheduled_cancellation_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl Cancellation {
    /// A cancellation with a message only.
    pub fn with_message(message: impl Into<String>) -> Cancellation {
        Cancellation {
            cancellation_message: Some(message.into()),
            ..Cancellation::default()
        }
    }

    pub fn is_empty(&self) -> bool {
        self == &Cancellation::default()
    }
}

/// A subscription as the lifecycle endpoints (read, cancel, reactivate) answer it: its state and
/// what it records about a cancellation. Timestamps are AB's text (site time zone offset); read
/// them with [`ab_time`].
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SubscriptionLifecycle {
    pub id: i64,
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub previous_state: Option<String>,
    #[serde(default)]
    pub reference: Option<String>,
    #[serde(default)]
    pub currency: Option<String>,
    #[serde(default)]
    pub canceled_at: Option<String>,
    #[serde(default, deserialize_with = "opt_text")]
    pub cancellation_message: Option<String>,
    #[serde(default, deserialize_with = "opt_text")]
    pub cancellation_method: Option<String>,
    #[serde(default, deserialize_with = "opt_text")]
    pub reason_code: Option<String>,
    /// `null` reads as false.
    #[serde(default, deserialize_with = "null_as_false")]
    pub cancel_at_end_of_period: bool,
    #[serde(default)]
    pub delayed_cancel_at: Option<String>,
    #[serde(default)]
    pub scheduled_cancellation_at: Option<String>,
    #[serde(default)]
    pub current_period_ends_at: Option<String>,
    #[serde(default)]
    pub next_assessment_at: Option<String>,
    /// Integer cents (a number; a string is tolerated): what the customer owes now.
    #[serde(default)]
    pub balance_in_cents: Option<serde_json::Value>,
    /// Integer cents: what the next renewal bills, before usage.
    #[serde(default)]
    pub current_billing_amount_in_cents: Option<serde_json::Value>,
}

impl SubscriptionLifecycle {
    pub fn is_canceled(&self) -> bool {
        self.state.as_deref() == Some("canceled")
    }

    /// When a pending cancellation takes effect: the earlier of a delayed cancel
    /// (`cancel_at_end_of_period` with `delayed_cancel_at`, else `current_period_ends_at`) and a
    /// `scheduled_cancellation_at`. `None` when none is pending (or the subscription is canceled).
    pub fn pending_cancellation_at(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        if self.is_canceled() {
            return None;
        }
        let delayed = self
            .cancel_at_end_of_period
            .then(|| {
                self.delayed_cancel_at
                    .as_deref()
                    .or(self.current_period_ends_at.as_deref())
                    .and_then(ab_time)
            })
            .flatten();
        let scheduled = self.scheduled_cancellation_at.as_deref().and_then(ab_time);
        match (delayed, scheduled) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// An AB timestamp (`2026-03-31T00:00:00-05:00`, RFC 3339), in UTC.
pub fn ab_time(text: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::parse_from_rfc3339(text.trim())
        .ok()
        .map(|t| t.with_timezone(&chrono::Utc))
}

fn null_as_false<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Ok(Option::<bool>::deserialize(d)?.unwrap_or(false))
}

/// Text from a string or a number (a numeric `reason_code`); `None` for null or blank.
fn opt_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match serde_json::Value::deserialize(d)? {
        serde_json::Value::String(s) if !s.trim().is_empty() => Some(s),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    })
}
