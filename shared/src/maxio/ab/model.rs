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
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SubscriptionComponent {
    pub component_id: i64,
    #[serde(default)]
    pub price_point_id: Option<i64>,
    #[serde(default)]
    pub price_point_handle: Option<String>,
}
