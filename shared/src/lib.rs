//! dealbridge: turn won Salesforce deals into live billing.
//!
//! This crate holds everything the Lambda functions share: configuration, secrets, the Salesforce
//! client, the deal snapshot model and loader, and the mapping configuration. Pure logic (Id
//! checksums, SOQL escaping, snapshot parsing) lives apart from I/O so it is unit-tested.

pub mod billing;
pub mod budget;
pub mod clock;
pub mod codes;
pub mod config;
pub mod contract;
pub mod delayed;
pub mod dispatch;
pub mod envelope;
pub mod failure;
pub mod http;
pub mod json;
pub mod lambda;
pub mod ledger;
pub mod logs;
pub mod mapping;
pub mod maxio;
pub mod metrics;
pub mod outbound;
pub mod plan;
pub mod ports;
pub mod queue;
pub mod reconcile;
pub mod retry;
pub mod runner;
pub mod salesforce;
pub mod seal;
pub mod secrets;
pub mod settings;
pub mod snapshot;
pub mod whmcs;
pub mod wiring;
pub mod writeback;
