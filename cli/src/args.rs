//! The command line.

use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgAction, Args, Parser, Subcommand};
use dealbridge::queue::QueueName;

use crate::reconcile::parse_duration;
use crate::redrive::parse_queue;

/// dealbridge's operator CLI: sync a deal by hand (or rehearse it), read its ledger, run the
/// reconciler, redrive dead letters, serve the sandbox.
///
/// Configuration comes from the environment, as the deployed functions read it (see the
/// project README); `--env-file` loads `KEY=VALUE` lines first, such as `target/sandbox.env`
/// written by `make sandbox` or `dealbridge sandbox`. Secrets are read from Secrets Manager.
///
/// Exit codes: 0 done, 1 the operation failed (a deal failed, a redrive stopped), 2 a usage or
/// configuration error (nothing was attempted).
#[derive(Debug, Parser)]
#[command(name = "dealbridge", version)]
pub struct Cli {
    /// Load KEY=VALUE lines from this file before reading the configuration; they override
    /// variables already set in the environment.
    #[arg(long, global = true, value_name = "PATH")]
    pub env_file: Option<PathBuf>,
    /// Print one JSON document on stdout instead of text (errors too); logs stay on stderr.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Sync one deal now, in this process, through the code the Lambdas run; or, with
    /// --dry-run, show the plan and every request it would send, sending none.
    Sync(SyncArgs),
    /// Show the idempotency ledger's records of a deal (needs LEDGER_TABLE_NAME).
    Status(StatusArgs),
    /// Run the reconciler once and print its report.
    Reconcile(ReconcileArgs),
    /// Run the billing sync once: AB's events since each site's cursor, the billing state of
    /// the subscriptions they name written to their Opportunities.
    BillingSync(BillingSyncArgs),
    /// Move a queue's dead-lettered messages back to the queue.
    Redrive(RedriveArgs),
    /// Serve the sandbox's fakes and moto, write their environment, and wait for Ctrl-C.
    Sandbox(SandboxArgs),
}

#[derive(Debug, Args)]
pub struct SyncArgs {
    /// The Opportunity (006…) or Order (801…) Id, 15 or 18 characters.
    pub id: String,
    /// Load and plan the deal, show every request to Maxio, Maxio Core and WHMCS, and send none
    /// (the only Salesforce calls are the login and one read). Exits 1 if the deal would fail.
    #[arg(long)]
    pub dry_run: bool,
    /// How many times each step is tried in this run when it fails for a reason that may pass
    /// (an outage, throttling).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=10))]
    pub attempts: u32,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The Opportunity (006…) or Order (801…) Id. The Maxio steps are recorded under the
    /// Opportunity, WHMCS provisioning under the Order.
    pub id: String,
}

#[derive(Debug, Args)]
pub struct ReconcileArgs {
    /// Look back this far instead of RECONCILER_LOOKBACK_DAYS: a whole number and a unit (m, h,
    /// d or w), like 2h or 3d; longer than the grace period (RECONCILER_GRACE_MINUTES).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub since: Option<Duration>,
    /// Load and plan every deal found, enqueue nothing (no queue is needed).
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct BillingSyncArgs {
    /// Only this AB site (default: every configured site).
    #[arg(long, value_name = "NAME")]
    pub site: Option<String>,
    /// Start after this AB event id instead of the site's stored cursor (needs --site when
    /// several sites are configured).
    #[arg(long, value_name = "EVENT_ID", value_parser = clap::value_parser!(i64).range(0..))]
    pub since: Option<i64>,
    /// Read AB and show the fields each Opportunity would get; write nothing and move no
    /// cursor.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct RedriveArgs {
    /// The queue whose dead letters go back to it: maxio-customer, maxio-price-points,
    /// maxio-subscription, maxio-core-link, whmcs-provision or delayed.
    #[arg(value_parser = parse_queue, value_name = "QUEUE")]
    pub queue: QueueName,
    /// Move at most this many messages.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub max: Option<u64>,
    /// List the messages without moving any.
    #[arg(long)]
    pub dry_run: bool,
    /// The dead-letter queue's URL (default: the queue's RedrivePolicy).
    #[arg(long, value_name = "URL")]
    pub dlq_url: Option<String>,
}

#[derive(Debug, Args)]
pub struct SandboxArgs {
    /// Port of the fake Salesforce org (login and instance URL).
    #[arg(long, default_value_t = 8440)]
    pub salesforce_port: u16,
    /// Schema of the org (JSON); the bundled one by default.
    #[arg(long, value_name = "PATH")]
    pub schema: Option<PathBuf>,
    /// Records to load, in `sf data export tree` form: a file, or the folder the export wrote
    /// (its plan file's order, else every .json file); repeat for several. The bundled seed by
    /// default.
    #[arg(long = "data", value_name = "PATH")]
    pub data: Vec<PathBuf>,
    /// The Maxio Core tenant's seed. By default the bundled one when every record it names was
    /// loaded, else a customer per loaded Account with a contract per won Opportunity.
    #[arg(long, value_name = "PATH")]
    pub core_seed: Option<PathBuf>,
    /// Port of the fake Maxio Advanced Billing site.
    #[arg(long, default_value_t = 8441)]
    pub maxio_ab_port: u16,
    /// Port of the second fake Maxio Advanced Billing site (`uk`, GBP).
    #[arg(long, default_value_t = 8444)]
    pub maxio_ab_uk_port: u16,
    /// Port of the fake Maxio Core tenant.
    #[arg(long, default_value_t = 8442)]
    pub maxio_core_port: u16,
    /// Port of the fake WHMCS installation.
    #[arg(long, default_value_t = 8443)]
    pub whmcs_port: u16,
    /// Also start moto with the queues, dead-letter queues, secrets and ledger table (needs the
    /// project venv: make venv).
    #[arg(long, default_value_t = true, action = ArgAction::Set)]
    pub aws: bool,
    /// moto's port (a free one by default).
    #[arg(long, value_name = "PORT")]
    pub moto_port: Option<u16>,
    /// With `--aws false`: an AWS endpoint already running (moto, LocalStack) that the written
    /// environment points at, with test credentials.
    #[arg(long, value_name = "URL")]
    pub aws_endpoint: Option<String>,
    /// Where to write the environment.
    #[arg(long, value_name = "PATH", default_value = "target/sandbox.env")]
    pub write_env: PathBuf,
}
