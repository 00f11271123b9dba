//! Billing state flowing back into Salesforce: AB's webhooks (hints that something changed), the
//! billing state read from AB, and the fields it is written to.

pub mod hint;
pub mod run;
pub mod service;
pub mod services_sync;
pub mod state;
pub mod sync;
pub mod upsert;
pub mod webhook;
