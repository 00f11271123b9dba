//! Route names for fault injection and request counting: `METHOD pattern`, the axum patterns the
//! fake registers. Paths end in a trailing slash, as Django REST Framework's routers make them.

pub const CUSTOMERS: &str = "GET /{account}/api/v1.0/customers/";
pub const CUSTOMER: &str = "GET /{account}/api/v1.0/customers/{id}/";
pub const CONTRACTS: &str = "GET /{account}/api/v1.0/contracts/";
pub const CONTRACT: &str = "GET /{account}/api/v1.0/contracts/{id}/";
pub const CONTRACT_PATCH: &str = "PATCH /{account}/api/v1.0/contracts/{id}/";

/// The path part of a route name.
pub(super) fn path(route: &'static str) -> &'static str {
    route.split_once(' ').map_or(route, |(_, path)| path)
}
