//! The deal snapshot: everything dealbridge needs to know about one deal, loaded in one call.

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::salesforce::{IdError, SfId};

/// What a dispatch was asked to load.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "id")]
pub enum DealRef {
    Opportunity(SfId),
    Order(SfId),
}

/// Why a raw Id cannot name a deal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DealRefError {
    #[error("{field}: {source}")]
    InvalidId {
        field: &'static str,
        #[source]
        source: IdError,
    },
    #[error("{field}: {id} is not an {expected} Id (they start with {prefix})")]
    WrongObject {
        field: &'static str,
        id: String,
        expected: &'static str,
        prefix: &'static str,
    },
}

impl DealRef {
    /// Validates a raw Opportunity Id (15 or 18 characters, checksum, key prefix `006`).
    pub fn opportunity(raw: &str) -> Result<DealRef, DealRefError> {
        Self::checked(raw, "opportunityId", "Opportunity", "006").map(DealRef::Opportunity)
    }

    /// Validates a raw Order Id (15 or 18 characters, checksum, key prefix `801`).
    pub fn order(raw: &str) -> Result<DealRef, DealRefError> {
        Self::checked(raw, "orderId", "Order", "801").map(DealRef::Order)
    }

    fn checked(
        raw: &str,
        field: &'static str,
        expected: &'static str,
        prefix: &'static str,
    ) -> Result<SfId, DealRefError> {
        let id = SfId::parse(raw).map_err(|source| DealRefError::InvalidId { field, source })?;
        if id.key_prefix() != prefix {
            return Err(DealRefError::WrongObject {
                field,
                id: id.to_string(),
                expected,
                prefix,
            });
        }
        Ok(id)
    }

    /// Tells an Opportunity Id (`006`) from an Order Id (`801`) by its key prefix.
    pub fn from_id(id: SfId) -> Option<DealRef> {
        match id.key_prefix() {
            "006" => Some(DealRef::Opportunity(id)),
            "801" => Some(DealRef::Order(id)),
            _ => None,
        }
    }

    pub fn id(&self) -> &SfId {
        match self {
            DealRef::Opportunity(id) | DealRef::Order(id) => id,
        }
    }

    pub fn sobject(&self) -> &'static str {
        match self {
            DealRef::Opportunity(_) => "Opportunity",
            DealRef::Order(_) => "Order",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DealSnapshot {
    pub requested: DealRef,
    pub account: Account,
    /// Absent when an Order was requested that belongs to no Opportunity.
    pub opportunity: Option<Opportunity>,
    pub quote: Option<Quote>,
    /// The Opportunity's Orders (or the one requested Order), oldest first.
    pub orders: Vec<Order>,
    /// For a deal that changes a CPQ Contract (an amendment), or a first sale whose Contract
    /// has been amended since: the Contract, its original deal and every Order on it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contract: Option<ContractHistory>,
    /// The day dispatch received the deal (UTC): an amendment is judged backdated against it, so
    /// retries that run past midnight do not turn a same-day amendment into a backdated one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dispatched_on: Option<chrono::NaiveDate>,
}

/// A CPQ Contract and everything billed on it: the first sale's Orders and every amendment's,
/// oldest first. Loaded by a second Composite call, only for deals that need it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContractHistory {
    pub contract: Contract,
    /// The Contract's original deal: the Opportunity of the quote the Contract was made from.
    pub original: Option<Opportunity>,
    /// The original deal's Orders and every amendment's, oldest first.
    pub orders: Vec<Order>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Contract {
    pub id: SfId,
    pub number: Option<String>,
    pub account_id: Option<SfId>,
    pub start_date: Option<NaiveDate>,
    pub end_date: Option<NaiveDate>,
    /// Months.
    pub term: Option<Decimal>,
    pub currency: Option<String>,
    /// The quote the Contract was made from (`SBQQ__Quote__c`).
    pub quote_id: Option<SfId>,
    /// `SBQQ__DisableAmendmentCoTerm__c`.
    pub coterm_disabled: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Address {
    pub street: Option<String>,
    pub city: Option<String>,
    pub state: Option<String>,
    pub state_code: Option<String>,
    pub postal_code: Option<String>,
    pub country: Option<String>,
    pub country_code: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Account {
    pub id: SfId,
    pub name: String,
    pub phone: Option<String>,
    pub billing_address: Address,
    pub customer_number: Option<String>,
    /// The WHMCS client this account is linked to.
    pub whmcs_client_id: Option<String>,
    /// The Maxio Advanced Billing customer this account is linked to.
    pub maxio_customer_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Person {
    pub id: SfId,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContactRole {
    pub contact: Person,
    pub is_primary: bool,
    pub role: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Opportunity {
    pub id: SfId,
    pub name: String,
    pub stage: String,
    pub close_date: Option<NaiveDate>,
    pub is_won: bool,
    pub is_closed: bool,
    pub amount: Option<Decimal>,
    pub account_id: Option<SfId>,
    pub maxio_subscription_id: Option<String>,
    pub maxio_product_handle: Option<String>,
    pub whmcs_service_id: Option<String>,
    /// The Maxio sync status written by dealbridge (`Synced`, `Failed`, ...).
    #[serde(default)]
    pub maxio_sync_status: Option<String>,
    /// The AB site the deal was billed on.
    #[serde(default)]
    pub maxio_site: Option<String>,
    /// `CurrencyIsoCode` (multi-currency orgs).
    #[serde(default)]
    pub currency: Option<String>,
    /// The Contract this Opportunity amends (CPQ `SBQQ__AmendedContract__c`).
    #[serde(default)]
    pub amended_contract: Option<SfId>,
    /// The Contract this Opportunity renews (CPQ `SBQQ__RenewedContract__c`).
    #[serde(default)]
    pub renewed_contract: Option<SfId>,
    /// When the cancellation the stage asks for takes effect (seed 001
    /// `ScheduledCancellationDateAndTime__c`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduled_cancellation: Option<chrono::DateTime<chrono::Utc>>,
    /// The cancellation state dealbridge last wrote (`Cancellation_Status__c`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancellation_status: Option<String>,
    /// What each system does or did about it, as dealbridge last wrote it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancellation_detail: Option<String>,
    /// Contact roles, the primary one first.
    pub contact_roles: Vec<ContactRole>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Quote {
    pub id: SfId,
    pub name: Option<String>,
    pub primary_contact: Option<Person>,
    pub start_date: Option<NaiveDate>,
    pub subscription_term: Option<Decimal>,
    pub billing_frequency: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Order {
    pub id: SfId,
    pub number: Option<String>,
    pub status: String,
    /// The Order's start (the mapping's `order.start_date`, standard `EffectiveDate`).
    pub effective_date: Option<NaiveDate>,
    /// `CurrencyIsoCode` (multi-currency orgs): the currency the deal bills in.
    #[serde(default)]
    pub currency: Option<String>,
    #[serde(default)]
    pub end_date: Option<NaiveDate>,
    /// The Contract the Order's Opportunity renews (a CPQ renewal Order).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renews: Option<SfId>,
    pub account_id: Option<SfId>,
    pub opportunity_id: Option<SfId>,
    pub activation_status: Option<String>,
    pub whmcs_order_id: Option<String>,
    pub items: Vec<OrderItem>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderItem {
    pub id: SfId,
    pub quantity: Decimal,
    pub unit_price: Option<Decimal>,
    pub service_date: Option<NaiveDate>,
    pub end_date: Option<NaiveDate>,
    pub whmcs_service_id: Option<String>,
    pub product: Product,
    /// The consumption schedules priced on this item (normally none or one).
    pub schedules: Vec<ConsumptionSchedule>,
    /// On an amendment's line: the original order product it changes (a delta against it).
    #[serde(default)]
    pub revised_item: Option<SfId>,
    /// The segment of a multi-dimensional (MDQ) line.
    #[serde(default)]
    pub segment_index: Option<Decimal>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Product {
    pub id: SfId,
    pub name: String,
    pub code: Option<String>,
    pub maxio_component_handle: Option<String>,
    pub maxio_product_handle: Option<String>,
    /// WHMCS product id as text (Salesforce may hold it as a number: `185.0` reads as `185`).
    pub whmcs_product_id: Option<String>,
    pub billing_cycle: Option<String>,
    pub item_class: Option<String>,
    pub config_options_json: Option<String>,
}

/// Range prices the whole quantity at the tier it falls in (volume); Slab prices each slice at its
/// own tier (graduated).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ScheduleType {
    Range,
    Slab,
    Other(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PricingMethod {
    PerUnit,
    FlatFee,
    Other(String),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConsumptionSchedule {
    pub id: SfId,
    pub schedule_type: ScheduleType,
    pub rating_method: Option<String>,
    pub billing_term: Option<Decimal>,
    pub billing_term_unit: Option<String>,
    pub unit_of_measure: Option<String>,
    /// In processing order.
    pub rates: Vec<ConsumptionRate>,
}

/// One tier. Salesforce bounds are lower-inclusive and upper-exclusive; `None` is unbounded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConsumptionRate {
    pub id: SfId,
    pub processing_order: Option<Decimal>,
    pub lower_bound: Decimal,
    pub upper_bound: Option<Decimal>,
    pub price: Decimal,
    pub pricing_method: PricingMethod,
}

impl DealSnapshot {
    /// Every order product across the snapshot's orders.
    pub fn order_items(&self) -> impl Iterator<Item = (&Order, &OrderItem)> {
        self.orders
            .iter()
            .flat_map(|o| o.items.iter().map(move |i| (o, i)))
    }
}

impl ScheduleType {
    pub fn parse(s: &str) -> ScheduleType {
        match s {
            "Range" => ScheduleType::Range,
            "Slab" => ScheduleType::Slab,
            other => ScheduleType::Other(other.to_string()),
        }
    }
}

impl PricingMethod {
    /// Accepts the API values `PerUnit`/`FlatFee` and the labels `Per Unit`/`Flat Fee`.
    pub fn parse(s: &str) -> PricingMethod {
        match s.replace(' ', "").to_ascii_lowercase().as_str() {
            "perunit" => PricingMethod::PerUnit,
            "flatfee" => PricingMethod::FlatFee,
            _ => PricingMethod::Other(s.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_ids_are_validated_and_checked_against_their_object() {
        assert!(matches!(
            DealRef::opportunity("006A000010khO8J"),
            Ok(DealRef::Opportunity(_))
        ));
        assert!(matches!(
            DealRef::order("801A000010khO8J"),
            Ok(DealRef::Order(_))
        ));
        assert_eq!(
            DealRef::opportunity("001A000010khO8J")
                .unwrap_err()
                .to_string(),
            "opportunityId: 001A000010khO8JIAU is not an Opportunity Id (they start with 006)"
        );
        assert!(matches!(
            DealRef::order("801A000010khO8JBAA"),
            Err(DealRefError::InvalidId {
                field: "orderId",
                source: IdError::Checksum { .. }
            })
        ));
        assert!(DealRef::opportunity("006' OR Name != '").is_err());
    }
}
