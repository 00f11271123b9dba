//! `make sandbox`: serves the fake Salesforce org on localhost and, with `--aws` (the default when
//! the project venv exists), moto's server with dealbridge's queues and secrets, then writes an
//! environment file with which the real function binaries run locally:
//!
//! ```sh
//! cargo lambda watch -A 127.0.0.1 -P 9000 --env-file target/sandbox.env
//! cargo lambda invoke intake -A 127.0.0.1 -P 9000 --data-file events/intake-http-api-deal.json
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use dealbridge::queue::QueueName;
use dealbridge::salesforce::SfId;
use dealbridge_sandbox::aws::{create_ledger_table, create_queues, put_secret};
use dealbridge_sandbox::harness::{SALESFORCE_SECRET, credentials_secret};
use dealbridge_sandbox::local::{
    INTAKE_SECRET, MAXIO_AB_SECRET, MAXIO_CORE_SECRET, WHMCS_SECRET, intake_secret_json,
};
use dealbridge_sandbox::maxio_ab::{AbSettings, MaxioAbSandbox};
use dealbridge_sandbox::maxio_core::{CoreSettings, MaxioCoreSandbox, SEED_FILE as CORE_SEED_FILE};
use dealbridge_sandbox::moto::Moto;
use dealbridge_sandbox::salesforce::{OrgSettings, SalesforceSandbox, data_dir};
use dealbridge_sandbox::whmcs::{WhmcsSandbox, WhmcsSettings};

#[derive(Parser)]
#[command(
    about = "Serve dealbridge's sandbox: a fake Salesforce org seeded with realistic deals, and moto with dealbridge's queues and secrets"
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
    /// Port of the fake Maxio Advanced Billing site.
    #[arg(long, default_value_t = 8441)]
    maxio_ab_port: u16,
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

/// The ledger table created in moto.
const LEDGER_TABLE: &str = "dealbridge-ledger";

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
    println!("Salesforce sandbox org: {}", sf.url());
    let ab = MaxioAbSandbox::start_on(
        AbSettings::default(),
        SocketAddr::from(([127, 0, 0, 1], args.maxio_ab_port)),
    )
    .await
    .context("starting the Maxio AB fake")?;
    println!("Maxio Advanced Billing site:  {}", ab.url());
    let core = MaxioCoreSandbox::start_on(
        CoreSettings::default(),
        SocketAddr::from(([127, 0, 0, 1], args.maxio_core_port)),
    )
    .await
    .context("starting the Maxio Core fake")?;
    core.seed(&data_dir().join(CORE_SEED_FILE), |r| {
        sf.id_of(r)
            .and_then(|id| SfId::parse(&id).ok())
            .map(|id| id.to_string())
    })?;
    println!("Maxio Core tenant:            {}", core.base_url());
    let whmcs = WhmcsSandbox::start_on(
        WhmcsSettings::default(),
        SocketAddr::from(([127, 0, 0, 1], args.whmcs_port)),
    )
    .await
    .context("starting the WHMCS fake")?;
    println!("WHMCS installation:           {}", whmcs.api_url());

    let mut env: Vec<(String, String)> = vec![
        ("SALESFORCE_LOGIN_URL".into(), sf.url().into()),
        ("SALESFORCE_AUTH_FLOW".into(), "client_credentials".into()),
        ("SALESFORCE_SECRET_NAME".into(), SALESFORCE_SECRET.into()),
        ("INTAKE_SECRET_NAME".into(), INTAKE_SECRET.into()),
        ("MAXIO_AB_BASE_URL".into(), ab.url().into()),
        ("MAXIO_AB_SECRET_NAME".into(), MAXIO_AB_SECRET.into()),
        ("MAXIO_CORE_LINK_ENABLED".into(), "true".into()),
        ("MAXIO_CORE_BASE_URL".into(), core.base_url()),
        ("MAXIO_CORE_SECRET_NAME".into(), MAXIO_CORE_SECRET.into()),
        ("WHMCS_BASE_URL".into(), whmcs.base_url()),
        ("WHMCS_SECRET_NAME".into(), WHMCS_SECRET.into()),
        ("LEDGER_TABLE_NAME".into(), LEDGER_TABLE.into()),
        ("WORKER_MAX_RECEIVES".into(), "10".into()),
        (
            "SALESFORCE_ORG_IDS".into(),
            SfId::parse(&settings.org_id)?.to_string(),
        ),
        // The sample events are signed at a fixed time; accept them whenever they are replayed.
        (
            "INTAKE_SIGNATURE_TOLERANCE_SECONDS".into(),
            "315360000".into(),
        ),
        ("RUST_LOG".into(), "info".into()),
    ];
    let _moto = if args.aws {
        let moto = Moto::start()
            .await
            .context("starting moto (run `make venv` first, or pass --aws false)")?;
        let aws = moto.sdk_config().await;
        let urls = create_queues(&aws_sdk_sqs::Client::new(&aws)).await?;
        let secrets = aws_sdk_secretsmanager::Client::new(&aws);
        put_secret(&secrets, SALESFORCE_SECRET, &credentials_secret(&settings)).await?;
        put_secret(&secrets, INTAKE_SECRET, &intake_secret_json()).await?;
        let ab_secret = serde_json::json!({"api_key": ab.settings().api_key}).to_string();
        put_secret(&secrets, MAXIO_AB_SECRET, &ab_secret).await?;
        let core_secret = serde_json::json!({"api_token": core.settings().api_token}).to_string();
        put_secret(&secrets, MAXIO_CORE_SECRET, &core_secret).await?;
        let whmcs_settings = whmcs.settings();
        let whmcs_secret = serde_json::json!({
            "identifier": whmcs_settings.identifier,
            "secret": whmcs_settings.secret,
        })
        .to_string();
        put_secret(&secrets, WHMCS_SECRET, &whmcs_secret).await?;
        create_ledger_table(&aws_sdk_dynamodb::Client::new(&aws), LEDGER_TABLE).await?;
        for q in QueueName::ALL {
            env.push((
                q.url_variable().into(),
                urls.get(q).unwrap_or_default().into(),
            ));
        }
        env.extend([
            ("AWS_ENDPOINT_URL".to_string(), moto.endpoint().to_string()),
            ("AWS_REGION".into(), "us-east-1".into()),
            ("AWS_ACCESS_KEY_ID".into(), "test".into()),
            ("AWS_SECRET_ACCESS_KEY".into(), "test".into()),
        ]);
        println!("moto (SQS, Secrets Manager, DynamoDB): {}", moto.endpoint());
        Some(moto)
    } else {
        None
    };

    if let Some(parent) = args.env_file.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let text: String = env.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
    std::fs::write(&args.env_file, text)?;
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
    Ok(())
}
