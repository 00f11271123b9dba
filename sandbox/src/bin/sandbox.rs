//! `make sandbox`: serves the fakes on localhost (the seeded Salesforce org, the two Maxio AB
//! sites, the Maxio Core tenant, WHMCS) and, with `--aws` (the default), moto's server with
//! dealbridge's queues, dead-letter queues, secrets and ledger table, then writes an environment
//! file with which the real function binaries run locally:
//!
//! ```sh
//! cargo lambda watch -A 127.0.0.1 -P 9000 --env-file target/sandbox.env
//! cargo lambda invoke intake -A 127.0.0.1 -P 9000 --data-file events/intake-http-api-deal.json
//! ```
//!
//! The servers are the ones `dealbridge sandbox` serves ([`serve_sandbox`]).

use std::path::PathBuf;

use clap::Parser;
use dealbridge_sandbox::harness::SALESFORCE_SECRET;
use dealbridge_sandbox::local::INTAKE_SECRET;
use dealbridge_sandbox::serve_all::{SandboxOptions, serve_sandbox};

#[derive(Parser)]
#[command(
    about = "Serve dealbridge's sandbox: a fake Salesforce org seeded with realistic deals, the billing fakes, and moto with dealbridge's queues and secrets"
)]
struct Args {
    /// Port of the fake Salesforce org (login and instance URL).
    #[arg(long, default_value_t = 8440)]
    salesforce_port: u16,
    /// Schema of the org (JSON).
    #[arg(long)]
    schema: Option<PathBuf>,
    /// Records to load, in `sf data export tree` form; repeat for several files.
    #[arg(long = "data")]
    data: Vec<PathBuf>,
    /// Port of the fake Maxio Advanced Billing site (USD, EUR as a non-primary currency).
    #[arg(long, default_value_t = 8441)]
    maxio_ab_port: u16,
    /// Port of the second fake Maxio Advanced Billing site (`uk`, GBP).
    #[arg(long, default_value_t = 8444)]
    maxio_ab_uk_port: u16,
    /// Port of the fake Maxio Core tenant.
    #[arg(long, default_value_t = 8442)]
    maxio_core_port: u16,
    /// Port of the fake WHMCS installation.
    #[arg(long, default_value_t = 8443)]
    whmcs_port: u16,
    /// Also start moto's server with the queues and secrets (needs the project venv: make venv).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    aws: bool,
    /// Where to write the functions' environment.
    #[arg(long, default_value = "target/sandbox.env")]
    env_file: PathBuf,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let options = SandboxOptions {
        salesforce_port: args.salesforce_port,
        schema: args.schema,
        data: args.data,
        maxio_ab_port: args.maxio_ab_port,
        maxio_ab_uk_port: args.maxio_ab_uk_port,
        maxio_core_port: args.maxio_core_port,
        whmcs_port: args.whmcs_port,
        aws: args.aws,
        dead_letter_queues: true,
        env_file: Some(args.env_file.clone()),
        broken_subscription: true,
        ..SandboxOptions::default()
    };
    let served = serve_sandbox(&options).await?;
    println!("Salesforce sandbox org:        {}", served.salesforce.url());
    println!("Maxio AB site (USD, EUR):      {}", served.maxio_ab.url());
    println!(
        "Maxio AB site uk (GBP):        {}",
        served.maxio_ab_uk.url()
    );
    println!(
        "Maxio Core tenant:             {}",
        served.maxio_core.base_url()
    );
    println!("WHMCS installation:            {}", served.whmcs.api_url());
    if let Some(moto) = &served.moto {
        println!("moto (SQS, Secrets Manager, DynamoDB): {}", moto.endpoint());
    }
    println!(
        "\nThe functions' environment is in {}. Run them with:",
        args.env_file.display()
    );
    println!(
        "  cargo lambda watch -A 127.0.0.1 -P 9000 --env-file {}",
        args.env_file.display()
    );
    println!(
        "  cargo lambda invoke intake -A 127.0.0.1 -P 9000 --data-file events/intake-http-api-deal.json"
    );
    println!(
        "\nSandbox credentials (they protect nothing) are in the secrets {SALESFORCE_SECRET} and {INTAKE_SECRET}."
    );
    println!("Press Ctrl-C to stop.");
    tokio::signal::ctrl_c().await?;
    drop(served);
    Ok(())
}
