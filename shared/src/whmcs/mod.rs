//! WHMCS: the API client and the PHP serialization its array parameters need.
//!
//! - `php`: PHP `serialize()` and base64, for `configoptions[]`/`customfields[]`.
//! - `form`: form bodies with PHP bracket arrays.
//! - `model`: the requests (AddOrder, AcceptOrder, GetOrders, GetClientsDetails,
//!   GetPaymentMethods, GetCurrencies) and their answers.
//! - `services`: a service after its order: AddCancelRequest, GetCancelledPackages,
//!   UpdateClientProduct, GetClientsProducts.
//! - `currency`: the check that the WHMCS client bills in the Order's currency, shared by the
//!   provisioning step and the dry run.
//! - `error`: [`WhmcsError`], its stable codes, and the ambiguous AddOrder.
//! - `client`: [`WhmcsClient`].

mod cancel;
pub mod client;
pub mod contract_lines;
pub mod currency;
mod de;
pub mod error;
pub mod form;
pub mod model;
pub mod php;
pub mod prepare;
pub mod provision;
pub mod services;
mod settings;

#[cfg(test)]
mod client_tests;
#[cfg(test)]
mod provision_tests;

pub use client::{MAX_ORDER_PAGES, ORDERS_PAGE_SIZE, WhmcsClient, WhmcsClientSettings};
pub use error::{ApiErrorKind, WhmcsError, is_authentication_message};
pub use form::Form;
pub use model::{
    AcceptOrder, AddOrder, AddOrderResult, BILLING_CYCLES, ClientDetails, Currency,
    GetClientsDetails, GetCurrencies, GetOrdersQuery, GetPaymentMethods, Order, OrderLine,
    OrderLineItem, OrdersPage, PaymentMethod, WhmcsRequest, billing_cycle_from_label,
    currencies_from, parse_option_map,
};
pub use php::{PhpKey, PhpValue};
pub use services::{
    AddCancelRequest, CancelRequestResult, CancelType, CancelledPackage, CancelledPackagesPage,
    ClientProduct, GetCancelledPackages, GetClientsProducts, ServiceStatus, UpdateClientProduct,
    is_existing_cancel_request, is_service_not_found,
};
