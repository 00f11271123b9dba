//! The dealbridge sandbox: faithful local fakes of the external APIs dealbridge talks to, the
//! seeded deals they serve, and helpers for the end-to-end tests.

pub mod ab_sites;
pub mod aws;
pub mod chaos;
pub mod events;
pub mod harness;
pub mod intake_http;
pub mod kill;
pub mod local;
pub mod maxio_ab;
pub mod maxio_core;
pub mod moto;
pub mod observe;
pub mod rehearsal;
pub mod salesforce;
pub mod serve;
pub mod serve_all;
pub mod whmcs;
