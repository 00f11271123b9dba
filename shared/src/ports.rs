//! The ports in front of the systems the steps change: narrow traits holding only the calls the
//! steps make, implemented by the HTTP clients. The steps' logic is tested fast against
//! in-memory stand-ins; the HTTP fakes in the sandbox stay for the clients' contract tests and the
//! end-to-end suites.

use async_trait::async_trait;

use crate::maxio::ab::{
    AbClient, AbEvent, AbMessage, Allocation, Cancellation, Component, CurrencyPrice, Customer,
    MaxioError, NewAllocation, NewCurrencyPrice, NewCustomer, NewSubscription, PricePoint, Product,
    Site, Subscription, SubscriptionComponent, SubscriptionLifecycle,
};
use crate::maxio::core::{CoreClient, CoreError, CoreRecord};
use crate::maxio::pricing::PricePointSpec;
use crate::salesforce::{
    RecordUpdate, RecordUpsert, SalesforceClient, SalesforceError, SaveResult, UpsertResult,
};
use crate::whmcs::model::{
    AddOrder, AddOrderResult, ClientDetails, Currency, GetOrdersQuery, Order, OrdersPage,
};
use crate::whmcs::services::{
    CancelRequestResult, CancelType, CancelledPackage, ClientProduct, UpdateClientProduct,
};
use crate::whmcs::{WhmcsClient, WhmcsError};

/// What a port's stand-in answers for a call it does not implement: a permanent refusal
/// (501, not retried).
fn ab_unsupported(call: &str) -> MaxioError {
    MaxioError::Rejected {
        status: 501,
        messages: vec![AbMessage {
            field: None,
            message: format!("{call} is not supported by this Maxio AB implementation"),
        }],
    }
}

/// What a port's stand-in answers for a WHMCS call it does not implement (permanent).
fn whmcs_unsupported(action: &str) -> WhmcsError {
    WhmcsError::Configuration(format!(
        "{action} is not supported by this WHMCS implementation"
    ))
}

/// Maxio Advanced Billing, as the Maxio chain uses it.
#[async_trait]
pub trait MaxioAb: Send + Sync {
    async fn lookup_customer(&self, reference: &str) -> Result<Option<Customer>, MaxioError>;
    async fn create_customer(
        &self,
        customer: &NewCustomer,
        token: &str,
    ) -> Result<Customer, MaxioError>;
    async fn component(&self, handle: &str) -> Result<Component, MaxioError>;
    async fn price_point_by_handle(
        &self,
        component_id: i64,
        handle: &str,
    ) -> Result<Option<PricePoint>, MaxioError>;
    async fn list_price_points(&self, component_id: i64) -> Result<Vec<PricePoint>, MaxioError>;
    async fn create_price_point(
        &self,
        component_id: i64,
        spec: &PricePointSpec,
        token: &str,
    ) -> Result<PricePoint, MaxioError>;
    async fn lookup_subscription(
        &self,
        reference: &str,
    ) -> Result<Option<Subscription>, MaxioError>;
    async fn create_subscription(
        &self,
        subscription: &NewSubscription,
        token: &str,
    ) -> Result<Subscription, MaxioError>;
    async fn subscription_components(
        &self,
        subscription_id: i64,
    ) -> Result<Vec<SubscriptionComponent>, MaxioError>;
    /// `GET /site.json`.
    async fn site(&self) -> Result<Site, MaxioError>;
    /// `None`: no product with this handle.
    async fn product(&self, handle: &str) -> Result<Option<Product>, MaxioError>;
    /// A price point with its currency prices.
    async fn price_point(
        &self,
        component_id: i64,
        price_point_id: i64,
    ) -> Result<Option<PricePoint>, MaxioError>;
    async fn add_currency_prices(
        &self,
        price_point_id: i64,
        prices: &[NewCurrencyPrice],
    ) -> Result<Vec<CurrencyPrice>, MaxioError>;
    /// Moves components of a subscription to other price points (`(component, price point)`).
    async fn change_price_points(
        &self,
        subscription_id: i64,
        changes: &[(i64, i64)],
    ) -> Result<(), MaxioError>;
    /// Sets a component's quantity (the new total). Not idempotent: guard it.
    async fn allocate(
        &self,
        subscription_id: i64,
        component_id: i64,
        allocation: &NewAllocation,
    ) -> Result<Allocation, MaxioError>;
    /// `GET /subscriptions/{id}.json`; `None`: no such subscription.
    async fn read_subscription(
        &self,
        _subscription_id: i64,
    ) -> Result<Option<SubscriptionLifecycle>, MaxioError> {
        Err(ab_unsupported("read_subscription"))
    }
    /// `GET /events.json`: up to `per_page` events after `since_id`, oldest first.
    async fn events_since(
        &self,
        _since_id: Option<i64>,
        _per_page: u32,
    ) -> Result<Vec<AbEvent>, MaxioError> {
        Err(ab_unsupported("events_since"))
    }
    /// Cancels now, or schedules the cancellation (`cancel_at_end_of_period`,
    /// `scheduled_cancellation_at`: site feature needed). A second cancel is a 422
    /// (`maxio::ab::is_already_canceled`).
    async fn cancel_subscription(
        &self,
        _subscription_id: i64,
        _cancellation: &Cancellation,
    ) -> Result<SubscriptionLifecycle, MaxioError> {
        Err(ab_unsupported("cancel_subscription"))
    }
    /// Cancels at the end of the current period; AB's message (text undocumented).
    async fn delayed_cancel(
        &self,
        _subscription_id: i64,
        _cancellation: &Cancellation,
    ) -> Result<Option<String>, MaxioError> {
        Err(ab_unsupported("delayed_cancel"))
    }
    /// Withdraws a delayed cancel (idempotent); AB's message.
    async fn withdraw_delayed_cancel(
        &self,
        _subscription_id: i64,
    ) -> Result<Option<String>, MaxioError> {
        Err(ab_unsupported("withdraw_delayed_cancel"))
    }
    /// Reactivates a `canceled`, `trial_ended` or `unpaid` subscription.
    async fn reactivate(&self, _subscription_id: i64) -> Result<SubscriptionLifecycle, MaxioError> {
        Err(ab_unsupported("reactivate"))
    }
}

#[async_trait]
impl MaxioAb for AbClient {
    async fn lookup_customer(&self, reference: &str) -> Result<Option<Customer>, MaxioError> {
        AbClient::lookup_customer(self, reference).await
    }
    async fn create_customer(
        &self,
        customer: &NewCustomer,
        token: &str,
    ) -> Result<Customer, MaxioError> {
        AbClient::create_customer(self, customer, token).await
    }
    async fn component(&self, handle: &str) -> Result<Component, MaxioError> {
        AbClient::component(self, handle).await
    }
    async fn price_point_by_handle(
        &self,
        component_id: i64,
        handle: &str,
    ) -> Result<Option<PricePoint>, MaxioError> {
        AbClient::price_point_by_handle(self, component_id, handle).await
    }
    async fn list_price_points(&self, component_id: i64) -> Result<Vec<PricePoint>, MaxioError> {
        AbClient::list_price_points(self, component_id).await
    }
    async fn create_price_point(
        &self,
        component_id: i64,
        spec: &PricePointSpec,
        token: &str,
    ) -> Result<PricePoint, MaxioError> {
        AbClient::create_price_point(self, component_id, spec, token).await
    }
    async fn lookup_subscription(
        &self,
        reference: &str,
    ) -> Result<Option<Subscription>, MaxioError> {
        AbClient::lookup_subscription(self, reference).await
    }
    async fn create_subscription(
        &self,
        subscription: &NewSubscription,
        token: &str,
    ) -> Result<Subscription, MaxioError> {
        AbClient::create_subscription(self, subscription, token).await
    }
    async fn subscription_components(
        &self,
        subscription_id: i64,
    ) -> Result<Vec<SubscriptionComponent>, MaxioError> {
        AbClient::subscription_components(self, subscription_id).await
    }
    async fn site(&self) -> Result<Site, MaxioError> {
        AbClient::site(self).await
    }
    async fn product(&self, handle: &str) -> Result<Option<Product>, MaxioError> {
        AbClient::product(self, handle).await
    }
    async fn price_point(
        &self,
        component_id: i64,
        price_point_id: i64,
    ) -> Result<Option<PricePoint>, MaxioError> {
        AbClient::price_point(self, component_id, price_point_id).await
    }
    async fn add_currency_prices(
        &self,
        price_point_id: i64,
        prices: &[NewCurrencyPrice],
    ) -> Result<Vec<CurrencyPrice>, MaxioError> {
        AbClient::add_currency_prices(self, price_point_id, prices).await
    }
    async fn change_price_points(
        &self,
        subscription_id: i64,
        changes: &[(i64, i64)],
    ) -> Result<(), MaxioError> {
        AbClient::change_price_points(self, subscription_id, changes).await
    }
    async fn allocate(
        &self,
        subscription_id: i64,
        component_id: i64,
        allocation: &NewAllocation,
    ) -> Result<Allocation, MaxioError> {
        AbClient::allocate(self, subscription_id, component_id, allocation).await
    }
    async fn read_subscription(
        &self,
        subscription_id: i64,
    ) -> Result<Option<SubscriptionLifecycle>, MaxioError> {
        AbClient::read_subscription(self, subscription_id).await
    }
    async fn events_since(
        &self,
        since_id: Option<i64>,
        per_page: u32,
    ) -> Result<Vec<AbEvent>, MaxioError> {
        AbClient::events_since(self, since_id, per_page).await
    }
    async fn cancel_subscription(
        &self,
        subscription_id: i64,
        cancellation: &Cancellation,
    ) -> Result<SubscriptionLifecycle, MaxioError> {
        AbClient::cancel_subscription(self, subscription_id, cancellation).await
    }
    async fn delayed_cancel(
        &self,
        subscription_id: i64,
        cancellation: &Cancellation,
    ) -> Result<Option<String>, MaxioError> {
        AbClient::delayed_cancel(self, subscription_id, cancellation).await
    }
    async fn withdraw_delayed_cancel(
        &self,
        subscription_id: i64,
    ) -> Result<Option<String>, MaxioError> {
        AbClient::withdraw_delayed_cancel(self, subscription_id).await
    }
    async fn reactivate(&self, subscription_id: i64) -> Result<SubscriptionLifecycle, MaxioError> {
        AbClient::reactivate(self, subscription_id).await
    }
}

/// Maxio Core, as the link uses it.
#[async_trait]
pub trait MaxioCore: Send + Sync {
    /// Every record of a list endpoint that the server returns for `filters`.
    async fn list(
        &self,
        path: &str,
        filters: &[(&str, String)],
    ) -> Result<Vec<CoreRecord>, CoreError>;
    /// Sets one text field of a contract; the contract as Core now has it.
    async fn set_contract_field(
        &self,
        id: i64,
        field: &str,
        value: &str,
    ) -> Result<CoreRecord, CoreError>;
}

#[async_trait]
impl MaxioCore for CoreClient {
    async fn list(
        &self,
        path: &str,
        filters: &[(&str, String)],
    ) -> Result<Vec<CoreRecord>, CoreError> {
        CoreClient::list(self, path, filters).await
    }
    async fn set_contract_field(
        &self,
        id: i64,
        field: &str,
        value: &str,
    ) -> Result<CoreRecord, CoreError> {
        CoreClient::set_contract_field(self, id, field, value).await
    }
}

/// WHMCS, as provisioning uses it.
#[async_trait]
pub trait Whmcs: Send + Sync {
    async fn add_order(&self, order: &AddOrder) -> Result<AddOrderResult, WhmcsError>;
    async fn accept_order(
        &self,
        order_id: &str,
        autosetup: Option<bool>,
        send_email: Option<bool>,
    ) -> Result<(), WhmcsError>;
    async fn get_orders(&self, query: &GetOrdersQuery) -> Result<OrdersPage, WhmcsError>;
    async fn order(&self, order_id: &str) -> Result<Option<Order>, WhmcsError>;
    async fn orders_for_client(&self, client_id: &str) -> Result<Vec<Order>, WhmcsError>;
    /// GetClientsDetails; an unknown client is `WHMCS_CLIENT_NOT_FOUND`.
    async fn client_details(&self, client_id: &str) -> Result<ClientDetails, WhmcsError>;
    /// GetCurrencies.
    async fn currencies(&self) -> Result<Vec<Currency>, WhmcsError>;
    /// AddCancelRequest; a repeat is `Existing Cancellation Request Exists`
    /// (`whmcs::is_existing_cancel_request`).
    async fn add_cancel_request(
        &self,
        _service_id: &str,
        _kind: CancelType,
        _reason: &str,
    ) -> Result<CancelRequestResult, WhmcsError> {
        Err(whmcs_unsupported("AddCancelRequest"))
    }
    /// Every cancellation request (GetCancelledPackages, all pages).
    async fn cancelled_packages(&self) -> Result<Vec<CancelledPackage>, WhmcsError> {
        Err(whmcs_unsupported("GetCancelledPackages"))
    }
    /// UpdateClientProduct; the service id.
    async fn update_client_product(
        &self,
        _update: &UpdateClientProduct,
    ) -> Result<String, WhmcsError> {
        Err(whmcs_unsupported("UpdateClientProduct"))
    }
    /// A service with its status (GetClientsProducts); `None`: no such service.
    async fn client_product(&self, _service_id: &str) -> Result<Option<ClientProduct>, WhmcsError> {
        Err(whmcs_unsupported("GetClientsProducts"))
    }
}

#[async_trait]
impl Whmcs for WhmcsClient {
    async fn add_order(&self, order: &AddOrder) -> Result<AddOrderResult, WhmcsError> {
        WhmcsClient::add_order(self, order).await
    }
    async fn accept_order(
        &self,
        order_id: &str,
        autosetup: Option<bool>,
        send_email: Option<bool>,
    ) -> Result<(), WhmcsError> {
        WhmcsClient::accept_order(self, order_id, autosetup, send_email).await
    }
    async fn get_orders(&self, query: &GetOrdersQuery) -> Result<OrdersPage, WhmcsError> {
        WhmcsClient::get_orders(self, query).await
    }
    async fn order(&self, order_id: &str) -> Result<Option<Order>, WhmcsError> {
        WhmcsClient::order(self, order_id).await
    }
    async fn orders_for_client(&self, client_id: &str) -> Result<Vec<Order>, WhmcsError> {
        WhmcsClient::orders_for_client(self, client_id).await
    }
    async fn client_details(&self, client_id: &str) -> Result<ClientDetails, WhmcsError> {
        WhmcsClient::client_details(self, client_id).await
    }
    async fn currencies(&self) -> Result<Vec<Currency>, WhmcsError> {
        WhmcsClient::currencies(self).await
    }
    async fn add_cancel_request(
        &self,
        service_id: &str,
        kind: CancelType,
        reason: &str,
    ) -> Result<CancelRequestResult, WhmcsError> {
        WhmcsClient::add_cancel_request(self, service_id, kind, reason).await
    }
    async fn cancelled_packages(&self) -> Result<Vec<CancelledPackage>, WhmcsError> {
        WhmcsClient::cancelled_packages(self).await
    }
    async fn update_client_product(
        &self,
        update: &UpdateClientProduct,
    ) -> Result<String, WhmcsError> {
        WhmcsClient::update_client_product(self, update).await
    }
    async fn client_product(&self, service_id: &str) -> Result<Option<ClientProduct>, WhmcsError> {
        WhmcsClient::client_product(self, service_id).await
    }
}

/// Salesforce, as the write-back uses it: sObject Collections updates.
#[async_trait]
pub trait SalesforceWrites: Send + Sync {
    async fn update_records(
        &self,
        records: &[RecordUpdate],
        all_or_none: bool,
    ) -> Result<Vec<SaveResult>, SalesforceError>;
}

#[async_trait]
impl SalesforceWrites for SalesforceClient {
    async fn update_records(
        &self,
        records: &[RecordUpdate],
        all_or_none: bool,
    ) -> Result<Vec<SaveResult>, SalesforceError> {
        SalesforceClient::update_records(self, records, all_or_none).await
    }
}

/// Salesforce, as the billing sync uses it: sObject Collections upserts by External ID.
#[async_trait]
pub trait SalesforceUpserts: Send + Sync {
    async fn upsert_records(
        &self,
        sobject: &str,
        key_field: &str,
        records: &[RecordUpsert],
        all_or_none: bool,
    ) -> Result<Vec<UpsertResult>, SalesforceError>;
}

#[async_trait]
impl SalesforceUpserts for SalesforceClient {
    async fn upsert_records(
        &self,
        sobject: &str,
        key_field: &str,
        records: &[RecordUpsert],
        all_or_none: bool,
    ) -> Result<Vec<UpsertResult>, SalesforceError> {
        SalesforceClient::upsert_records(self, sobject, key_field, records, all_or_none).await
    }
}

/// Salesforce, as the billing sync reads it: a query, every page.
#[async_trait]
pub trait SalesforceQueries: Send + Sync {
    async fn query_all(&self, soql: &str) -> Result<Vec<serde_json::Value>, SalesforceError>;
}

#[async_trait]
impl SalesforceQueries for SalesforceClient {
    async fn query_all(&self, soql: &str) -> Result<Vec<serde_json::Value>, SalesforceError> {
        SalesforceClient::query_all(self, soql).await
    }
}
