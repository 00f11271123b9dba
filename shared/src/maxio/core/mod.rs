//! Maxio Core (ex-SaaSOptics): the REST client, its records and its errors.

pub mod client;
pub mod error;
pub mod model;

pub use client::{CoreClient, CoreClientSettings};
pub use error::CoreError;
pub use model::CoreRecord;
