//! Serves the sandbox fakes on localhost for manual use.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use dealbridge_sandbox::harness::SALESFORCE_SECRET;
use dealbridge_sandbox::salesforce::{OrgSettings, SalesforceSandbox, data_dir, test_keys_dir};

#[derive(Parser)]
#[command(about = "Serve dealbridge's sandbox: a fake Salesforce org seeded with realistic deals")]
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
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let dir = data_dir().join("salesforce");
    let schema = args.schema.unwrap_or_else(|| dir.join("schema.json"));
    let data = if args.data.is_empty() {
        vec![dir.join("seed.json")]
    } else {
        args.data
    };
    let org = dealbridge_org::Org::from_files(&schema, &data)
        .with_context(|| format!("loading {}", schema.display()))?;
    let settings = OrgSettings::default();
    let addr = SocketAddr::from(([127, 0, 0, 1], args.salesforce_port));
    let sf = SalesforceSandbox::start_on(settings.clone(), org, addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    println!("Salesforce sandbox org listening on {}", sf.url());
    println!();
    println!("Point dealbridge at it with:");
    println!("  export SALESFORCE_LOGIN_URL={}", sf.url());
    println!("  export SALESFORCE_AUTH_FLOW=client_credentials   # or jwt_bearer");
    println!("  export SALESFORCE_SECRET_NAME={SALESFORCE_SECRET}");
    println!("with that secret holding the sandbox's own credentials (they protect nothing):");
    println!(
        "  {{\"client_id\":\"{}\",\"client_secret\":\"{}\",\"username\":\"{}\",\"private_key\":\"<{}>\"}}",
        settings.client_id,
        settings.client_secret,
        settings.username,
        test_keys_dir().join("jwt-test-key.pem").display()
    );
    println!();
    println!("Press Ctrl-C to stop.");
    tokio::signal::ctrl_c().await?;
    Ok(())
}
