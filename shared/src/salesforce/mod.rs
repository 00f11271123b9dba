//! Salesforce REST API: Ids, SOQL literals, errors, authentication and the HTTP client.

pub mod id;
pub mod soql;

pub use id::{IdError, SfId};
