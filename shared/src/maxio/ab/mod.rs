//! Maxio Advanced Billing: the HTTP client, its resources and its errors.

pub mod cancel;
pub mod client;
pub mod error;
pub mod events;
pub mod model;

pub use cancel::{is_already_canceled, needs_scheduled_cancellation_feature};
pub use client::{AbClient, AbClientSettings, MAX_CONCURRENT_REQUESTS};
pub use error::{AbMessage, MaxioError};
pub use events::{AbEvent, MAX_EVENTS_PER_PAGE};
pub use model::*;
