//! dealbridge's operator CLI, `dealbridge`: for the people on call.
//!
//! - `sync <id> [--dry-run]`: one deal, now, through the workers' own code, or a rehearsal that
//!   shows every request and sends none ([`sync`], [`rehearse`]);
//! - `status <id>`: the idempotency ledger's records of a deal ([`status`]);
//! - `reconcile [--since] [--dry-run]`: one reconciler run ([`reconcile`]);
//! - `redrive <queue>`: dead letters back to their queue ([`redrive`]);
//! - `sandbox`: the fakes and moto, as `make sandbox` serves them ([`sandbox`]).
//!
//! Each command returns an [`output::Outcome`] (JSON, text and exit code) or a
//! [`error::CliError`]; `main` prints them.

pub mod args;
pub mod billing_sync;
pub mod cancel_preview;
pub mod env_file;
pub mod error;
pub mod maxio_preview;
pub mod output;
pub mod reconcile;
pub mod redrive;
pub mod rehearse;
#[cfg(feature = "sandbox")]
pub mod sandbox;
pub mod status;
pub mod sync;
pub mod wiring;
