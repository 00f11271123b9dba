//! The end-to-end suites: the real handlers, wired as deployed, against the sandbox fakes on
//! virtual time (one test binary, so CI links once).

mod amendments;
mod billing_sync;
mod billing_webhooks;
mod cancellations;
mod chaos;
mod chaos_budget;
mod chaos_kill_points;
mod first_sale;
mod forged_envelopes;
mod hostile_input;
mod intake;
mod maxio_chain;
mod maxio_core_link;
mod platform_events_and_delayed;
mod reconciler;
mod sample_events;
mod support;
mod whmcs_contract;
mod whmcs_provisioning;
