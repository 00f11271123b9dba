//! Maxio Advanced Billing: the HTTP client, its resources and its errors.

pub mod client;
pub mod error;
pub mod model;

pub use client::{AbClient, AbClientSettings, MAX_CONCURRENT_REQUESTS};
pub use error::{AbMessage, MaxioError};
pub use model::*;
