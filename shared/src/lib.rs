//! dealbridge: turn won Salesforce deals into live billing.
//!
//! This crate holds everything the Lambda functions share: configuration, secrets, the Salesforce
//! client, the deal snapshot model and loader, and the mapping configuration. Pure logic (Id
//! checksums, SOQL escaping, snapshot parsing) lives apart from I/O so it is unit-tested.

pub mod config;
pub mod mapping;
pub mod salesforce;
pub mod secrets;
pub mod snapshot;
