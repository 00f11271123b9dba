//! Salesforce REST API: Ids, SOQL literals, errors, authentication and the HTTP client.

pub mod auth;
pub mod client;
pub mod composite;
pub mod error;
pub mod id;
pub mod limits;
pub mod soql;

pub use client::{
    QueryResult, RecordUpdate, RecordUpsert, SalesforceClient, SaveResult, UpsertResult,
};
pub use composite::{CompositeRequest, CompositeResponse};
pub use error::{ApiErrorItem, SalesforceError};
pub use id::{IdError, SfId};
pub use limits::ApiUsage;
