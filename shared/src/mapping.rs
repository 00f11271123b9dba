//! The mapping configuration: which Salesforce fields hold what, in this org.
//!
//! Orgs differ (seed 001 calls the WHMCS product field `WHMCS_Product_Id__c`, seed 003
//! `WH_Product_ID__c`), so field API names are data, not code. The defaults match the
//! specification documents; a deployment overrides any of them with a JSON document (every key
//! optional) without a rebuild. Names are validated as Salesforce API names when loaded, because
//! they are written into SOQL.

use serde::{Deserialize, Serialize};

/// Which objects hold the consumption schedules of order products.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScheduleSource {
    /// Salesforce CPQ's `SBQQ__OrderItemConsumptionSchedule__c` / `SBQQ__OrderItemConsumptionRate__c`,
    /// copied onto each order product.
    Cpq,
    /// The standard `ConsumptionSchedule` / `ConsumptionRate`, attached to products through
    /// `ProductConsumptionSchedule`.
    Standard,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Mapping {
    /// Version of this document's shape.
    pub version: u32,
    pub schedules: ScheduleSource,
    pub account: AccountFields,
    pub contact: ContactFields,
    pub opportunity: OpportunityFields,
    pub quote: QuoteFields,
    pub order: OrderFields,
    pub order_item: OrderItemFields,
    pub product: ProductFields,
    /// The CPQ Contract an amendment or renewal changes.
    pub contract: ContractFields,
    /// Maxio AB component handles for products whose Product2 record does not name one.
    pub maxio_components: ComponentMap,
    /// Picklist values dealbridge writes.
    pub values: StatusValues,
    /// How approved Orders become WHMCS orders.
    pub whmcs: WhmcsOptions,
    /// Maxio AB sites and currencies, past start dates, repair charges.
    pub maxio: crate::maxio::options::MaxioOptions,
}

/// WHMCS AddOrder options and the Order statuses that may be provisioned (seeds 001 and 003).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WhmcsOptions {
    /// `paymentmethod`: a gateway module name.
    pub payment_method: String,
    /// `noinvoice`: no invoice while provisioning.
    pub no_invoice: bool,
    /// `noemail`: no order confirmation email.
    pub no_email: bool,
    /// Order `Status` values that may be provisioned.
    pub approved_order_statuses: Vec<String>,
    /// Order activation status values that may be provisioned whatever the Status (seed 001's
    /// approval flow sets `Activating`).
    pub approved_activation_statuses: Vec<String>,
    /// Order `Status` values that prove an Order was approved, for the reconciler's search of
    /// Orders whose trigger was lost. Narrower than `approved_order_statuses`: an Order waits
    /// for approval in `Pending Review` (seeds 001 and 003), so the reconciler must not take it
    /// for approved, while an explicit approval trigger may still provision it.
    pub reconcile_order_statuses: Vec<String>,
    /// Salesforce billing cycle label → WHMCS `billingcycle` (matched without regard to case).
    pub billing_cycles: std::collections::BTreeMap<String, String>,
}

impl Default for WhmcsOptions {
    fn default() -> Self {
        let cycles = [
            ("Monthly", "monthly"),
            ("Quarterly", "quarterly"),
            ("Semiannually", "semiannually"),
            ("Annually", "annually"),
            ("Biennially", "biennially"),
            ("Triennially", "triennially"),
            ("One-time", "onetime"),
            ("Onetime", "onetime"),
            ("Free", "free"),
        ];
        WhmcsOptions {
            payment_method: "mailin".into(),
            no_invoice: true,
            no_email: true,
            approved_order_statuses: vec!["Pending Review".into(), "Activating".into()],
            approved_activation_statuses: vec!["Activating".into()],
            reconcile_order_statuses: vec!["Activating".into()],
            billing_cycles: cycles
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }
}

/// The status values written back; change them to match the org's picklists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StatusValues {
    pub maxio_synced: String,
    pub maxio_failed: String,
    /// Maxio Core link status values.
    pub core_linked: String,
    pub core_pending: String,
    pub core_failed: String,
    /// Order activation status values (seed 001 `Activation_Status__c`).
    pub activation_activating: String,
    pub activation_provisioned: String,
    pub activation_failed: String,
    /// The Order `Status` once WHMCS has accepted the order.
    pub order_activated: String,
    /// The Opportunity stage once the service is live.
    pub opportunity_active_stage: String,
    /// The stage that asks for a cancellation (seed 001 `△Cancelling`, with
    /// `opportunity.scheduled_cancellation`), and the stage written once every system shows it.
    pub opportunity_cancelling_stage: String,
    pub opportunity_cancelled_stage: String,
    /// `opportunity.cancellation_status` values: requested in every system and due later; done
    /// in every system; withdrawn (the stage moved back before the date); needs a person.
    pub cancellation_scheduled: String,
    pub cancellation_cancelled: String,
    pub cancellation_withdrawn: String,
    pub cancellation_failed: String,
    /// AB subscription state → the Opportunity stage the billing sync writes when a subscription
    /// is in it (seed 001's `△Cancelled` for `canceled` and `expired`); a state not listed leaves
    /// the stage alone.
    pub billing_stages: std::collections::BTreeMap<String, String>,
    /// The WHMCS service statuses of a service that no longer runs: when every service of a
    /// deal is in one of them, and the deal has no AB subscription still billing, the billing
    /// sync moves the Opportunity to `opportunity_cancelled_stage`.
    pub whmcs_ended_statuses: Vec<String>,
}

impl Default for StatusValues {
    fn default() -> Self {
        StatusValues {
            maxio_synced: "Synced".into(),
            maxio_failed: "Failed".into(),
            core_linked: "Linked".into(),
            core_pending: "Pending".into(),
            core_failed: "Failed".into(),
            activation_activating: "Activating".into(),
            activation_provisioned: "Provisioned".into(),
            activation_failed: "Failed".into(),
            order_activated: "Activated".into(),
            opportunity_active_stage: "Active".into(),
            opportunity_cancelling_stage: "\u{25b3}Cancelling".into(),
            opportunity_cancelled_stage: "\u{25b3}Cancelled".into(),
            cancellation_scheduled: "Scheduled".into(),
            cancellation_cancelled: "Cancelled".into(),
            cancellation_withdrawn: "Withdrawn".into(),
            cancellation_failed: "Failed".into(),
            billing_stages: [
                ("canceled".to_string(), "\u{25b3}Cancelled".to_string()),
                ("expired".to_string(), "\u{25b3}Cancelled".to_string()),
            ]
            .into_iter()
            .collect(),
            whmcs_ended_statuses: vec!["Terminated".into(), "Cancelled".into()],
        }
    }
}

/// Product → Maxio AB component handle, for orgs that map products here rather than on Product2.
/// The Product2 field wins; then the ProductCode; then the product name.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ComponentMap {
    pub by_product_code: std::collections::BTreeMap<String, String>,
    pub by_product_name: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AccountFields {
    /// The WHMCS client id of the account (seed 001 `WH_Account__c`).
    pub whmcs_client_id: Option<String>,
    /// The Maxio Advanced Billing customer id, once known.
    pub maxio_customer_id: Option<String>,
    /// A customer number (seed 001 `SF_Account_No__c`).
    pub customer_number: Option<String>,
    /// ISO state code; `None` in orgs without State and Country picklists.
    pub billing_state_code: Option<String>,
    /// ISO country code; `None` in orgs without State and Country picklists.
    pub billing_country_code: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ContactFields {
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub phone: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OpportunityFields {
    /// The stage (standard `StageName`), set to `values.opportunity_active_stage` when the WHMCS
    /// services are live.
    pub stage: Option<String>,
    /// Lookup to the primary quote (CPQ `SBQQ__PrimaryQuote__c`; standard `SyncedQuoteId`).
    pub primary_quote: Option<String>,
    pub maxio_subscription_id: Option<String>,
    pub maxio_customer_id: Option<String>,
    /// Maxio sync status picklist (values in `values`).
    pub maxio_sync_status: Option<String>,
    pub maxio_sync_error: Option<String>,
    pub maxio_sync_datetime: Option<String>,
    /// Per-deal override of the Maxio AB product handle.
    pub maxio_product_handle: Option<String>,
    pub whmcs_service_id: Option<String>,
    /// The Maxio Core contract the AB subscription was linked to.
    pub maxio_core_contract_id: Option<String>,
    /// Maxio Core link status picklist (values in `values`).
    pub maxio_core_link_status: Option<String>,
    /// Why the Maxio Core link is pending or failed.
    pub maxio_core_link_error: Option<String>,
    /// The AB site the deal is billed on (written with the outcome).
    pub maxio_site: Option<String>,
    /// Lookup to the Contract a CPQ amendment amends (`SBQQ__AmendedContract__c`).
    pub amended_contract: Option<String>,
    /// Lookup to the Contract a CPQ renewal renews (`SBQQ__RenewedContract__c`).
    pub renewed_contract: Option<String>,
    /// The deal's currency (multi-currency orgs: `CurrencyIsoCode`); must agree with the Order's.
    /// Null in an org without multi-currency (then `maxio.org_currency` is the currency).
    pub currency: Option<String>,
    /// When a cancellation asked for by `values.opportunity_cancelling_stage` takes effect
    /// (seed 001 `ScheduledCancellationDateAndTime__c`, a DateTime).
    pub scheduled_cancellation: Option<String>,
    /// Where the cancellation's state is written (values `values.cancellation_*`), what each
    /// system does or did about it, and why it failed.
    pub cancellation_status: Option<String>,
    pub cancellation_detail: Option<String>,
    pub cancellation_error: Option<String>,
    /// The billing state read back from AB (written by the billing sync, never read): the
    /// subscription's state, when its period ends, when AB bills next, the recurring amount, the
    /// balance owed, whether it cancels at the end of the period, when a pending cancellation
    /// takes effect, and when it was read. Written to the Opportunity the subscription's
    /// `reference` names, by Id.
    pub maxio_billing_state: Option<String>,
    pub maxio_period_ends: Option<String>,
    pub maxio_next_billing: Option<String>,
    pub maxio_recurring_amount: Option<String>,
    pub maxio_balance: Option<String>,
    pub maxio_cancel_at_period_end: Option<String>,
    pub maxio_pending_cancellation: Option<String>,
    pub maxio_billing_synced_at: Option<String>,
    /// The WHMCS services of the deal's Orders, summed up (written by the billing sync).
    pub whmcs_services_status: Option<String>,
    /// Whether to read the Opportunity's contact roles as a fallback billing contact.
    pub contact_roles: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QuoteFields {
    /// Lookup from the quote to its primary contact (CPQ `SBQQ__PrimaryContact__c`; standard
    /// `ContactId`).
    pub primary_contact: Option<String>,
    pub start_date: Option<String>,
    pub subscription_term: Option<String>,
    pub billing_frequency: Option<String>,
    /// Lookup from the quote to its Opportunity (CPQ `SBQQ__Opportunity2__c`): how a Contract's
    /// quote names the contract's original deal.
    pub opportunity: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OrderFields {
    /// The Order's status (standard `Status`), set to `values.order_activated` when provisioned.
    pub status: Option<String>,
    pub activation_status: Option<String>,
    pub activation_error: Option<String>,
    pub activation_error_datetime: Option<String>,
    /// The Order's WHMCS services, summed up (written by the billing sync): their one status
    /// when they agree (`Active`, `Terminated`), else each status with its count.
    pub whmcs_services_status: Option<String>,
    pub whmcs_order_id: Option<String>,
    /// The currency the deal bills in (multi-currency orgs: `CurrencyIsoCode`). Null in an org
    /// without multi-currency (then `maxio.org_currency` is the currency).
    pub currency: Option<String>,
    /// The date the subscription starts (standard `EffectiveDate`).
    pub start_date: String,
    /// Lookup to the quote the Order was made from (CPQ `SBQQ__Quote__c`): a Contract's first
    /// Order is the one made from the Contract's quote.
    pub quote: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OrderItemFields {
    /// The WHMCS service of the order product: written by provisioning, and the External ID the
    /// billing sync upserts the service's state by.
    pub whmcs_service_id: Option<String>,
    /// The WHMCS service's state (written by the billing sync): its status, its next due date,
    /// and when it was read.
    pub whmcs_service_status: Option<String>,
    pub whmcs_next_due_date: Option<String>,
    pub whmcs_service_synced_at: Option<String>,
    /// On an amendment's line, the original order product it changes (CPQ
    /// `SBQQ__RevisedOrderProduct__c`); empty on a new product's line.
    pub revised_item: Option<String>,
    /// The segment of a multi-dimensional (MDQ) line (CPQ `SBQQ__SegmentIndex__c`).
    pub segment_index: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ContractFields {
    /// Lookup to the quote the Contract was made from (CPQ `SBQQ__Quote__c`; stable, while
    /// `SBQQ__Order__c` is overwritten by every amendment).
    pub quote: Option<String>,
    /// CPQ `SBQQ__DisableAmendmentCoTerm__c`: amendments of this Contract do not co-terminate.
    pub coterm_disabled: Option<String>,
    /// `CurrencyIsoCode` (multi-currency orgs).
    pub currency: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProductFields {
    /// The Maxio AB component handle this product bills as.
    pub maxio_component_handle: Option<String>,
    /// Per-product override of the Maxio AB product handle.
    pub maxio_product_handle: Option<String>,
    /// The WHMCS product id (seed 003 `WH_Product_ID__c`, seed 001 `WHMCS_Product_Id__c`).
    pub whmcs_product_id: Option<String>,
    pub billing_cycle: Option<String>,
    pub item_class: Option<String>,
    pub config_options_json: Option<String>,
}

fn some(s: &str) -> Option<String> {
    Some(s.to_string())
}

impl Default for Mapping {
    fn default() -> Self {
        Mapping {
            version: 1,
            schedules: ScheduleSource::Cpq,
            account: AccountFields::default(),
            contact: ContactFields::default(),
            opportunity: OpportunityFields::default(),
            quote: QuoteFields::default(),
            order: OrderFields::default(),
            order_item: OrderItemFields::default(),
            product: ProductFields::default(),
            contract: ContractFields::default(),
            maxio_components: ComponentMap::default(),
            values: StatusValues::default(),
            whmcs: WhmcsOptions::default(),
            maxio: crate::maxio::options::MaxioOptions::default(),
        }
    }
}

impl Default for AccountFields {
    fn default() -> Self {
        AccountFields {
            whmcs_client_id: some("WH_Account__c"),
            maxio_customer_id: some("Maxio_Customer_Id__c"),
            customer_number: some("SF_Account_No__c"),
            billing_state_code: some("BillingStateCode"),
            billing_country_code: some("BillingCountryCode"),
        }
    }
}

impl Default for ContactFields {
    fn default() -> Self {
        ContactFields {
            email: "Email".into(),
            first_name: "FirstName".into(),
            last_name: "LastName".into(),
            phone: some("Phone"),
        }
    }
}

impl Default for OpportunityFields {
    fn default() -> Self {
        OpportunityFields {
            stage: some("StageName"),
            primary_quote: some("SBQQ__PrimaryQuote__c"),
            maxio_subscription_id: some("Maxio_Subscription_Id__c"),
            maxio_customer_id: some("Maxio_Customer_Id__c"),
            maxio_sync_status: some("Maxio_Sync_Status__c"),
            maxio_sync_error: some("Maxio_Sync_Error__c"),
            maxio_sync_datetime: some("Maxio_Sync_DateTime__c"),
            maxio_product_handle: some("Maxio_Product_Handle__c"),
            whmcs_service_id: some("WHMCS_Service_ID__c"),
            maxio_core_contract_id: some("Maxio_Core_Contract_Id__c"),
            maxio_core_link_status: some("Maxio_Core_Link_Status__c"),
            maxio_core_link_error: some("Maxio_Core_Link_Error__c"),
            maxio_site: some("Maxio_Site__c"),
            amended_contract: some("SBQQ__AmendedContract__c"),
            renewed_contract: some("SBQQ__RenewedContract__c"),
            currency: some("CurrencyIsoCode"),
            scheduled_cancellation: some("ScheduledCancellationDateAndTime__c"),
            cancellation_status: some("Cancellation_Status__c"),
            cancellation_detail: some("Cancellation_Detail__c"),
            cancellation_error: some("Cancellation_Error__c"),
            maxio_billing_state: some("Maxio_Billing_State__c"),
            maxio_period_ends: some("Maxio_Current_Period_Ends__c"),
            maxio_next_billing: some("Maxio_Next_Billing_At__c"),
            maxio_recurring_amount: some("Maxio_Recurring_Amount__c"),
            maxio_balance: some("Maxio_Balance__c"),
            maxio_cancel_at_period_end: some("Maxio_Cancel_At_Period_End__c"),
            maxio_pending_cancellation: some("Maxio_Pending_Cancellation_At__c"),
            maxio_billing_synced_at: some("Maxio_Billing_Synced_At__c"),
            whmcs_services_status: some("WHMCS_Services_Status__c"),
            contact_roles: true,
        }
    }
}

impl Default for QuoteFields {
    fn default() -> Self {
        QuoteFields {
            primary_contact: some("SBQQ__PrimaryContact__c"),
            start_date: some("SBQQ__StartDate__c"),
            subscription_term: some("SBQQ__SubscriptionTerm__c"),
            billing_frequency: some("SBQQ__BillingFrequency__c"),
            opportunity: some("SBQQ__Opportunity2__c"),
        }
    }
}

impl Default for OrderFields {
    fn default() -> Self {
        OrderFields {
            status: some("Status"),
            activation_status: some("Activation_Status__c"),
            activation_error: some("Activation_Error__c"),
            activation_error_datetime: some("Activation_Error_DateTime__c"),
            whmcs_services_status: some("WHMCS_Services_Status__c"),
            whmcs_order_id: some("WHMCS_Order_Id__c"),
            currency: some("CurrencyIsoCode"),
            start_date: "EffectiveDate".into(),
            quote: some("SBQQ__Quote__c"),
        }
    }
}

impl Default for OrderItemFields {
    fn default() -> Self {
        OrderItemFields {
            whmcs_service_id: some("WHMCS_Service_ID__c"),
            whmcs_service_status: some("WHMCS_Service_Status__c"),
            whmcs_next_due_date: some("WHMCS_Next_Due_Date__c"),
            whmcs_service_synced_at: some("WHMCS_Service_Synced_At__c"),
            revised_item: some("SBQQ__RevisedOrderProduct__c"),
            segment_index: some("SBQQ__SegmentIndex__c"),
        }
    }
}

impl Default for ContractFields {
    fn default() -> Self {
        ContractFields {
            quote: some("SBQQ__Quote__c"),
            coterm_disabled: some("SBQQ__DisableAmendmentCoTerm__c"),
            currency: some("CurrencyIsoCode"),
        }
    }
}

impl Default for ProductFields {
    fn default() -> Self {
        ProductFields {
            maxio_component_handle: some("Maxio_Component_Handle__c"),
            maxio_product_handle: some("Maxio_Product_Handle__c"),
            whmcs_product_id: some("WH_Product_ID__c"),
            billing_cycle: some("Billing_Cycle__c"),
            item_class: some("Item_Class__c"),
            config_options_json: some("Portal_ConfigOptions_JSON__c"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MappingError {
    #[error("the mapping document is not valid: {0}")]
    Parse(String),
    #[error("mapping {key} = {value:?} is not a Salesforce field API name")]
    InvalidName { key: String, value: String },
    #[error("mapping {key} = {value:?} must be a lookup field (ending in __c or Id)")]
    NotALookup { key: String, value: String },
    #[error("the mapping's maxio section: {}", .0.join("; "))]
    Maxio(Vec<String>),
}

impl Mapping {
    /// Reads a JSON mapping document over the defaults and validates every name.
    pub fn from_json(text: &str) -> Result<Mapping, MappingError> {
        let mapping: Mapping =
            serde_json::from_str(text).map_err(|e| MappingError::Parse(e.to_string()))?;
        mapping.validate()?;
        Ok(mapping)
    }

    /// Every configured name must be a plain API name; lookups must have a relationship form.
    pub fn validate(&self) -> Result<(), MappingError> {
        for (key, value) in self.names() {
            if !is_api_name(value) {
                return Err(MappingError::InvalidName {
                    key: key.to_string(),
                    value: value.to_string(),
                });
            }
        }
        for (key, value) in [
            ("opportunity.primary_quote", &self.opportunity.primary_quote),
            ("quote.primary_contact", &self.quote.primary_contact),
            (
                "opportunity.amended_contract",
                &self.opportunity.amended_contract,
            ),
            ("contract.quote", &self.contract.quote),
        ] {
            if let Some(v) = value
                && relationship_name(v).is_none()
            {
                return Err(MappingError::NotALookup {
                    key: key.to_string(),
                    value: v.clone(),
                });
            }
        }
        let problems = self.maxio.problems();
        if !problems.is_empty() {
            return Err(MappingError::Maxio(problems));
        }
        Ok(())
    }

    fn names(&self) -> Vec<(&'static str, &str)> {
        let mut out: Vec<(&'static str, &str)> = vec![
            ("contact.email", self.contact.email.as_str()),
            ("contact.first_name", self.contact.first_name.as_str()),
            ("contact.last_name", self.contact.last_name.as_str()),
            ("order.start_date", self.order.start_date.as_str()),
        ];
        let optional = [
            ("account.whmcs_client_id", &self.account.whmcs_client_id),
            ("account.maxio_customer_id", &self.account.maxio_customer_id),
            ("account.customer_number", &self.account.customer_number),
            (
                "account.billing_state_code",
                &self.account.billing_state_code,
            ),
            (
                "account.billing_country_code",
                &self.account.billing_country_code,
            ),
            ("contact.phone", &self.contact.phone),
            ("opportunity.primary_quote", &self.opportunity.primary_quote),
            (
                "opportunity.maxio_subscription_id",
                &self.opportunity.maxio_subscription_id,
            ),
            (
                "opportunity.maxio_customer_id",
                &self.opportunity.maxio_customer_id,
            ),
            (
                "opportunity.maxio_sync_status",
                &self.opportunity.maxio_sync_status,
            ),
            (
                "opportunity.maxio_sync_error",
                &self.opportunity.maxio_sync_error,
            ),
            (
                "opportunity.maxio_sync_datetime",
                &self.opportunity.maxio_sync_datetime,
            ),
            (
                "opportunity.maxio_product_handle",
                &self.opportunity.maxio_product_handle,
            ),
            (
                "opportunity.whmcs_service_id",
                &self.opportunity.whmcs_service_id,
            ),
            (
                "opportunity.maxio_core_contract_id",
                &self.opportunity.maxio_core_contract_id,
            ),
            (
                "opportunity.maxio_core_link_status",
                &self.opportunity.maxio_core_link_status,
            ),
            (
                "opportunity.maxio_core_link_error",
                &self.opportunity.maxio_core_link_error,
            ),
            ("quote.primary_contact", &self.quote.primary_contact),
            ("quote.opportunity", &self.quote.opportunity),
            ("order.quote", &self.order.quote),
            ("order_item.revised_item", &self.order_item.revised_item),
            (
                "order_item.whmcs_service_status",
                &self.order_item.whmcs_service_status,
            ),
            (
                "order_item.whmcs_next_due_date",
                &self.order_item.whmcs_next_due_date,
            ),
            (
                "order_item.whmcs_service_synced_at",
                &self.order_item.whmcs_service_synced_at,
            ),
            (
                "opportunity.maxio_billing_state",
                &self.opportunity.maxio_billing_state,
            ),
            (
                "opportunity.maxio_period_ends",
                &self.opportunity.maxio_period_ends,
            ),
            (
                "opportunity.maxio_next_billing",
                &self.opportunity.maxio_next_billing,
            ),
            (
                "opportunity.maxio_recurring_amount",
                &self.opportunity.maxio_recurring_amount,
            ),
            ("opportunity.maxio_balance", &self.opportunity.maxio_balance),
            (
                "opportunity.maxio_cancel_at_period_end",
                &self.opportunity.maxio_cancel_at_period_end,
            ),
            (
                "opportunity.maxio_pending_cancellation",
                &self.opportunity.maxio_pending_cancellation,
            ),
            (
                "opportunity.maxio_billing_synced_at",
                &self.opportunity.maxio_billing_synced_at,
            ),
            ("order_item.segment_index", &self.order_item.segment_index),
            ("contract.quote", &self.contract.quote),
            ("contract.coterm_disabled", &self.contract.coterm_disabled),
            ("contract.currency", &self.contract.currency),
            ("quote.start_date", &self.quote.start_date),
            ("quote.subscription_term", &self.quote.subscription_term),
            ("quote.billing_frequency", &self.quote.billing_frequency),
            ("order.status", &self.order.status),
            ("opportunity.stage", &self.opportunity.stage),
            ("order.activation_status", &self.order.activation_status),
            ("order.activation_error", &self.order.activation_error),
            (
                "order.activation_error_datetime",
                &self.order.activation_error_datetime,
            ),
            ("order.whmcs_order_id", &self.order.whmcs_order_id),
            (
                "order.whmcs_services_status",
                &self.order.whmcs_services_status,
            ),
            (
                "opportunity.whmcs_services_status",
                &self.opportunity.whmcs_services_status,
            ),
            ("order.currency", &self.order.currency),
            ("opportunity.currency", &self.opportunity.currency),
            ("opportunity.maxio_site", &self.opportunity.maxio_site),
            (
                "opportunity.scheduled_cancellation",
                &self.opportunity.scheduled_cancellation,
            ),
            (
                "opportunity.cancellation_status",
                &self.opportunity.cancellation_status,
            ),
            (
                "opportunity.cancellation_detail",
                &self.opportunity.cancellation_detail,
            ),
            (
                "opportunity.cancellation_error",
                &self.opportunity.cancellation_error,
            ),
            (
                "opportunity.amended_contract",
                &self.opportunity.amended_contract,
            ),
            (
                "opportunity.renewed_contract",
                &self.opportunity.renewed_contract,
            ),
            (
                "order_item.whmcs_service_id",
                &self.order_item.whmcs_service_id,
            ),
            (
                "product.maxio_component_handle",
                &self.product.maxio_component_handle,
            ),
            (
                "product.maxio_product_handle",
                &self.product.maxio_product_handle,
            ),
            ("product.whmcs_product_id", &self.product.whmcs_product_id),
            ("product.billing_cycle", &self.product.billing_cycle),
            ("product.item_class", &self.product.item_class),
            (
                "product.config_options_json",
                &self.product.config_options_json,
            ),
        ];
        for (key, value) in optional {
            if let Some(v) = value {
                out.push((key, v.as_str()));
            }
        }
        out
    }
}

impl Mapping {
    /// The Maxio AB component a product bills as: the Product2 field first, then this mapping by
    /// ProductCode, then by product name.
    pub fn component_handle<'a>(
        &'a self,
        product: &'a crate::snapshot::Product,
    ) -> Option<&'a str> {
        product
            .maxio_component_handle
            .as_deref()
            .or_else(|| {
                product
                    .code
                    .as_ref()
                    .and_then(|c| self.maxio_components.by_product_code.get(c))
                    .map(String::as_str)
            })
            .or_else(|| {
                self.maxio_components
                    .by_product_name
                    .get(&product.name)
                    .map(String::as_str)
            })
    }
}

/// A Salesforce field or object API name: a letter, then letters, digits and underscores, no
/// double underscore except a namespace prefix or the `__c`/`__r` suffix.
pub fn is_api_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !s.ends_with('_')
        && s.len() <= 80
}

/// The relationship name of a lookup field: `Foo__c` → `Foo__r`, standard `FooId` → `Foo`.
pub fn relationship_name(field: &str) -> Option<String> {
    if let Some(base) = field.strip_suffix("__c") {
        return Some(format!("{base}__r"));
    }
    field
        .strip_suffix("Id")
        .filter(|base| !base.is_empty())
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_match_the_specification() {
        let m = Mapping::default();
        assert_eq!(m.account.whmcs_client_id.as_deref(), Some("WH_Account__c"));
        assert_eq!(
            m.product.whmcs_product_id.as_deref(),
            Some("WH_Product_ID__c")
        );
        assert_eq!(m.product.billing_cycle.as_deref(), Some("Billing_Cycle__c"));
        assert_eq!(
            m.order.activation_error_datetime.as_deref(),
            Some("Activation_Error_DateTime__c")
        );
        assert_eq!(m.schedules, ScheduleSource::Cpq);
        m.validate().unwrap();
    }

    #[test]
    fn a_partial_document_overrides_only_what_it_names() {
        let m = Mapping::from_json(
            r#"{"schedules":"standard","product":{"whmcs_product_id":"WHMCS_Product_Id__c"}}"#,
        )
        .unwrap();
        assert_eq!(m.schedules, ScheduleSource::Standard);
        assert_eq!(
            m.product.whmcs_product_id.as_deref(),
            Some("WHMCS_Product_Id__c")
        );
        assert_eq!(m.product.billing_cycle.as_deref(), Some("Billing_Cycle__c"));
        assert_eq!(m.account, AccountFields::default());
    }

    #[test]
    fn null_removes_a_field_the_org_does_not_have() {
        let m = Mapping::from_json(r#"{"account":{"billing_state_code":null}}"#).unwrap();
        assert_eq!(m.account.billing_state_code, None);
    }

    #[test]
    fn names_that_could_change_a_query_are_refused() {
        let err =
            Mapping::from_json(r#"{"product":{"item_class":"Name FROM User --"}}"#).unwrap_err();
        assert_eq!(
            err,
            MappingError::InvalidName {
                key: "product.item_class".into(),
                value: "Name FROM User --".into()
            }
        );
        assert!(Mapping::from_json(r#"{"contact":{"email":"Email,Id"}}"#).is_err());
    }

    #[test]
    fn unknown_keys_and_bad_lookups_are_reported() {
        assert!(matches!(
            Mapping::from_json(r#"{"produkt":{}}"#),
            Err(MappingError::Parse(m)) if m.contains("produkt")
        ));
        assert_eq!(
            Mapping::from_json(r#"{"opportunity":{"primary_quote":"Quote"}}"#).unwrap_err(),
            MappingError::NotALookup {
                key: "opportunity.primary_quote".into(),
                value: "Quote".into()
            }
        );
    }

    #[test]
    fn component_handles_come_from_product2_then_code_then_name() {
        let m = Mapping::from_json(
            r#"{"maxio_components":{"by_product_code":{"SUP-1":"support"},"by_product_name":{"Seats":"seats"}}}"#,
        )
        .unwrap();
        let id = crate::salesforce::SfId::parse("01tA000010khO8J").unwrap();
        let mut p = crate::snapshot::Product {
            id,
            name: "Seats".into(),
            code: Some("SUP-1".into()),
            maxio_component_handle: Some("from-field".into()),
            maxio_product_handle: None,
            whmcs_product_id: None,
            billing_cycle: None,
            item_class: None,
            config_options_json: None,
        };
        assert_eq!(m.component_handle(&p), Some("from-field"));
        p.maxio_component_handle = None;
        assert_eq!(m.component_handle(&p), Some("support"));
        p.code = None;
        assert_eq!(m.component_handle(&p), Some("seats"));
        p.name = "Other".into();
        assert_eq!(m.component_handle(&p), None);
    }

    #[test]
    fn relationship_names_follow_salesforce_rules() {
        assert_eq!(
            relationship_name("SBQQ__PrimaryQuote__c").as_deref(),
            Some("SBQQ__PrimaryQuote__r")
        );
        assert_eq!(
            relationship_name("SyncedQuoteId").as_deref(),
            Some("SyncedQuote")
        );
        assert_eq!(relationship_name("Id"), None);
        assert_eq!(relationship_name("Name"), None);
    }
}
