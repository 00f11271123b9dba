//! dealbridge intake: the API Gateway front door. Apex callouts send JSON naming an Opportunity or
//! Order; workflow Outbound Messages send SOAP notifications. Each is authenticated, validated,
//! loaded from Salesforce and fanned out to the worker queues, or refused with an answer naming
//! the problem and nothing enqueued.

pub mod auth;
pub mod body;
pub mod event;
pub mod handler;
pub mod request;
pub mod respond;

pub use event::handle_event;
pub use handler::{Deps, handle, serve};
