//! The sandbox's own contract tests: the fakes refuse what the real APIs refuse and accept what
//! they accept, the clients work against them, and the demo shows no secret.

mod maxio_ab_cancel;
mod maxio_ab_fake;
mod maxio_core_fake;
mod salesforce_client;
mod salesforce_real_clients;
mod secrets_in_logs;
mod snapshot_loading;
mod whmcs_cancel;
mod whmcs_fake;
