//! Every fake of the sandbox at once, as `make sandbox` serves them: the seeded Salesforce org,
//! the Maxio Advanced Billing site, the Maxio Core tenant (seeded), the WHMCS installation and,
//! optionally, moto with dealbridge's queues (and their dead-letter queues), secrets and ledger
//! table; plus the environment with which the functions, or the operator CLI, talk to them.
//!
//! The operator CLI (`dealbridge sandbox`) and its tests call [`serve_sandbox`]; every server
//! stops when the returned [`ServedSandbox`] is dropped.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use dealbridge::queue::{QueueName, QueueUrls};
use dealbridge::salesforce::SfId;

use crate::ab_sites;
use crate::aws::{create_dead_letter_queues, create_ledger_table, create_queues, put_secret};
use crate::harness::{SALESFORCE_SECRET, credentials_secret};
use crate::local::{
    ENVELOPE_SECRET, INTAKE_SECRET, MAX_RECEIVES, MAXIO_AB_SECRET, MAXIO_CORE_SECRET, WHMCS_SECRET,
    envelope_secret_json, intake_secret_json,
};
use crate::maxio_ab::MaxioAbSandbox;
use crate::maxio_core::{CoreSettings, MaxioCoreSandbox, SEED_FILE as CORE_SEED_FILE};
use crate::moto::Moto;
use crate::rehearsal;
use crate::salesforce::{OrgSettings, SalesforceSandbox, data_dir};
use crate::whmcs::{WhmcsSandbox, WhmcsSettings};

/// The seeded deals an operator rehearses with, by `referenceId` (see
/// `sandbox/data/salesforce/README.md`): the Opportunities, then the Order approval triggers.
pub const SEEDED_DEALS: &[&str] = &[
    "VolumeOpportunity",
    "GraduatedOpportunity",
    "FlatFeeOpportunity",
    "NoScheduleOpportunity",
    "NoEmailOpportunity",
    "PendingOpportunity",
    "UnmappedOpportunity",
    "InternetOpportunity",
    "EuroOpportunity",
    "SterlingOpportunity",
    "YenOpportunity",
    "SeatsOpportunity",
    "SplitPriceOpportunity",
    "FutureOpportunity",
    "RepairOpportunity",
    "AmendmentOpportunity",
    "RenewalOpportunity",
    "AddSeatsOpportunity",
    "AddSeatsAmendOpportunity",
    "RemoveSeatsOpportunity",
    "RemoveSeatsAmendOpportunity",
    "AddProductOpportunity",
    "AddProductAmendOpportunity",
    "RemoveProductOpportunity",
    "RemoveProductAmendOpportunity",
    "RepriceOpportunity",
    "RepriceAmendOpportunity",
    "FutureSeatsOpportunity",
    "FutureSeatsAmendOpportunity",
    "BackdatedOpportunity",
    "BackdatedAmendOpportunity",
    "MixedPriceOpportunity",
    "MixedPriceAmendOpportunity",
    "NotCotermOpportunity",
    "NotCotermAmendOpportunity",
    "MeteredOpportunity",
    "MeteredAmendOpportunity",
    "CurrencyChangeOpportunity",
    "CurrencyChangeAmendOpportunity",
    "OverRemovedOpportunity",
    "OverRemovedAmendOpportunity",
    "FractionalOpportunity",
    "FractionalAmendOpportunity",
    "SegmentedOpportunity",
    "SegmentedAmendOpportunity",
    "PriceUnscheduledOpportunity",
    "PriceUnscheduledAmendOpportunity",
    "CancelAllOpportunity",
    "CancelAllAmendOpportunity",
    "RenewSameOpportunity",
    "RenewSameRenewOpportunity",
    "RenewSeatsOpportunity",
    "RenewSeatsRenewOpportunity",
    "RenewSeatsNextAmendOpportunity",
    "RenewUpliftOpportunity",
    "RenewUpliftRenewOpportunity",
    "InternetOrder",
];

/// The ledger table created in moto (the name `make sandbox` uses).
pub const LEDGER_TABLE: &str = "dealbridge-ledger";
/// The AB request budgets' table the sandbox creates on moto.
pub const BUDGET_TABLE: &str = "dealbridge-ab-budget";

/// What to serve, and where. Port 0 picks a free port.
#[derive(Debug, Clone)]
pub struct SandboxOptions {
    pub salesforce_port: u16,
    /// Schema of the org (JSON); the bundled one when `None`.
    pub schema: Option<PathBuf>,
    /// Records to load, in `sf data export tree` form; the bundled seed when empty.
    pub data: Vec<PathBuf>,
    pub maxio_ab_port: u16,
    /// The second AB site (`uk`, GBP).
    pub maxio_ab_uk_port: u16,
    pub maxio_core_port: u16,
    pub whmcs_port: u16,
    /// Also start moto with the queues, secrets and ledger table (needs the project venv).
    pub aws: bool,
    /// With `aws`: also create each queue's dead-letter queue and point its `RedrivePolicy` at
    /// it after [`MAX_RECEIVES`] receives, as the template does, and give their URLs
    /// (`<QUEUE>_DLQ_URL`, which each queue function requires to start).
    pub dead_letter_queues: bool,
    /// Where to write the environment (`KEY=VALUE` lines); nothing is written when `None`.
    pub env_file: Option<PathBuf>,
    /// Leave the `Repair` deal's AB subscription as an earlier run left it wrong (with the
    /// bundled seed), so a sync shows the repair.
    pub broken_subscription: bool,
    /// The Maxio Core tenant's seed. `None`: the bundled one when every record it names was
    /// loaded, else a tenant derived from the loaded data ([`rehearsal::seed_core_from`]).
    pub core_seed: Option<PathBuf>,
    /// With `aws`: moto's port (a free one when `None`).
    pub moto_port: Option<u16>,
    /// Without `aws`: the AWS endpoint the written environment points at (a moto or LocalStack
    /// already running), with its test credentials; no AWS variables when `None`.
    pub aws_endpoint: Option<String>,
}

impl Default for SandboxOptions {
    /// The ports and files of `make sandbox`, with the dead-letter queues.
    fn default() -> Self {
        SandboxOptions {
            salesforce_port: 8440,
            schema: None,
            data: Vec::new(),
            maxio_ab_port: 8441,
            maxio_core_port: 8442,
            whmcs_port: 8443,
            maxio_ab_uk_port: 8444,
            aws: true,
            dead_letter_queues: true,
            env_file: Some(PathBuf::from("target/sandbox.env")),
            broken_subscription: true,
            core_seed: None,
            moto_port: None,
            aws_endpoint: None,
        }
    }
}

impl SandboxOptions {
    /// Every server on a free port, moto with dead-letter queues, no environment file, AB as
    /// dealbridge alone would leave it: for tests.
    pub fn ephemeral() -> Self {
        SandboxOptions {
            salesforce_port: 0,
            maxio_ab_port: 0,
            maxio_ab_uk_port: 0,
            maxio_core_port: 0,
            whmcs_port: 0,
            env_file: None,
            broken_subscription: false,
            ..SandboxOptions::default()
        }
    }
}

/// The running sandbox. Dropping it stops every server (and moto).
pub struct ServedSandbox {
    pub salesforce: SalesforceSandbox,
    /// The default AB site (USD, with EUR as a non-primary currency).
    pub maxio_ab: MaxioAbSandbox,
    /// The `uk` AB site (GBP).
    pub maxio_ab_uk: MaxioAbSandbox,
    pub maxio_core: MaxioCoreSandbox,
    pub whmcs: WhmcsSandbox,
    /// moto, when started.
    pub moto: Option<Moto>,
    /// The queues in moto, when started.
    pub queues: Option<QueueUrls>,
    /// Their dead-letter queues, when created.
    pub dead_letter_queues: Option<QueueUrls>,
    /// The functions' environment, in the order it is written.
    pub env: Vec<(String, String)>,
    /// Where the Maxio Core tenant's customers came from, in words.
    pub core_source: String,
}

impl ServedSandbox {
    /// The value of one variable of [`ServedSandbox::env`].
    pub fn var(&self, name: &str) -> Option<&str> {
        self.env
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The environment as `KEY=VALUE` lines.
    pub fn env_text(&self) -> String {
        self.env.iter().map(|(k, v)| format!("{k}={v}\n")).collect()
    }

    /// Every deal of the loaded data (Opportunities, then Orders).
    pub fn deals(&self) -> Vec<rehearsal::LoadedDeal> {
        self.salesforce.with_org(|org| rehearsal::deals(org))
    }

    /// The 18-character Id of a seeded record (its `referenceId` in the seed).
    pub fn id_of(&self, reference: &str) -> Option<SfId> {
        self.salesforce
            .id_of(reference)
            .and_then(|id| SfId::parse(&id).ok())
    }
}

/// The AWS variables of an environment whose AWS is at `endpoint` (moto's test credentials).
fn aws_endpoint_env(endpoint: &str) -> [(String, String); 4] {
    [
        ("AWS_ENDPOINT_URL".to_string(), endpoint.to_string()),
        ("AWS_REGION".into(), "us-east-1".into()),
        ("AWS_ACCESS_KEY_ID".into(), "test".into()),
        ("AWS_SECRET_ACCESS_KEY".into(), "test".into()),
    ]
}

/// Starts every fake as `options` says, and writes the environment file if asked.
pub async fn serve_sandbox(options: &SandboxOptions) -> anyhow::Result<ServedSandbox> {
    let loopback = |port: u16| SocketAddr::from(([127, 0, 0, 1], port));
    let dir = data_dir().join("salesforce");
    let schema = options
        .schema
        .clone()
        .unwrap_or_else(|| dir.join("schema.json"));
    let data = if options.data.is_empty() {
        vec![dir.join("seed.json")]
    } else {
        rehearsal::data_files(&options.data)?
    };
    let org = dealbridge_org::Org::from_files(&schema, &data)
        .with_context(|| format!("loading {}", schema.display()))?;
    let settings = OrgSettings::default();
    let addr = loopback(options.salesforce_port);
    let salesforce = SalesforceSandbox::start_on(settings.clone(), org, addr)
        .await
        .with_context(|| format!("binding {addr} for the Salesforce org"))?;
    let maxio_ab =
        MaxioAbSandbox::start_on(ab_sites::default_site(), loopback(options.maxio_ab_port))
            .await
            .context("starting the Maxio AB fake")?;
    let maxio_ab_uk =
        MaxioAbSandbox::start_on(ab_sites::uk_site(), loopback(options.maxio_ab_uk_port))
            .await
            .context("starting the second Maxio AB fake (uk)")?;
    let repair = (
        salesforce
            .id_of("RepairAccount")
            .and_then(|id| SfId::parse(&id).ok()),
        salesforce
            .id_of("RepairOpportunity")
            .and_then(|id| SfId::parse(&id).ok()),
    );
    if let (true, Some(account), Some(opportunity)) =
        (options.broken_subscription, repair.0, repair.1)
    {
        ab_sites::seed_broken_subscription(&maxio_ab, &account, &opportunity).await?;
        maxio_ab.observer().clear_log();
    }
    let maxio_core =
        MaxioCoreSandbox::start_on(CoreSettings::default(), loopback(options.maxio_core_port))
            .await
            .context("starting the Maxio Core fake")?;
    let resolve = |r: &str| {
        salesforce
            .id_of(r)
            .and_then(|id| SfId::parse(&id).ok())
            .map(|id| id.to_string())
    };
    let bundled_core = data_dir().join(CORE_SEED_FILE);
    let core_source = match &options.core_seed {
        Some(file) => {
            maxio_core.seed(file, resolve)?;
            format!("seeded from {}", file.display())
        }
        None if crate::maxio_core::unresolved(&bundled_core, resolve)?.is_empty() => {
            maxio_core.seed(&bundled_core, resolve)?;
            "the bundled seed".to_string()
        }
        None => {
            let customers = salesforce.with_org(|org| rehearsal::seed_core_from(org, &maxio_core));
            format!(
                "derived from the loaded data: {customers} customer(s), one per Account, with a contract per won Opportunity"
            )
        }
    };
    let whmcs = WhmcsSandbox::start_on(WhmcsSettings::default(), loopback(options.whmcs_port))
        .await
        .context("starting the WHMCS fake")?;
    if let Some(field) = dealbridge::mapping::Mapping::default()
        .account
        .whmcs_client_id
        .as_deref()
    {
        salesforce.with_org(|org| rehearsal::add_whmcs_clients_from(org, &whmcs, field));
    }

    let mut env: Vec<(String, String)> = vec![
        ("SALESFORCE_LOGIN_URL".into(), salesforce.url().into()),
        ("SALESFORCE_AUTH_FLOW".into(), "client_credentials".into()),
        ("SALESFORCE_SECRET_NAME".into(), SALESFORCE_SECRET.into()),
        ("INTAKE_SECRET_NAME".into(), INTAKE_SECRET.into()),
        ("ENVELOPE_SECRET_NAME".into(), ENVELOPE_SECRET.into()),
        ("MAXIO_AB_BASE_URL".into(), maxio_ab.url().into()),
        ("MAXIO_AB_SECRET_NAME".into(), MAXIO_AB_SECRET.into()),
        (
            "DEALBRIDGE_MAPPING".into(),
            ab_sites::served_mapping_json(maxio_ab_uk.url()),
        ),
        // The sandbox's deals are dated around the sample events' time; the CLI decides start
        // dates as of then (see cli/README.md).
        (
            "DEALBRIDGE_CLOCK".into(),
            crate::local::sample_time().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        ),
        ("MAXIO_CORE_LINK_ENABLED".into(), "true".into()),
        ("MAXIO_CORE_BASE_URL".into(), maxio_core.base_url()),
        ("MAXIO_CORE_SECRET_NAME".into(), MAXIO_CORE_SECRET.into()),
        ("WHMCS_BASE_URL".into(), whmcs.base_url()),
        ("WHMCS_SECRET_NAME".into(), WHMCS_SECRET.into()),
        ("WORKER_MAX_RECEIVES".into(), MAX_RECEIVES.to_string()),
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

    let mut queues = None;
    let mut dead_letter_queues = None;
    let moto = if options.aws {
        let moto = Moto::start_on(options.moto_port)
            .await
            .context("starting moto (run `make venv` first, or serve without AWS)")?;
        let aws = moto.sdk_config().await;
        let sqs = aws_sdk_sqs::Client::new(&aws);
        let urls = create_queues(&sqs).await?;
        if options.dead_letter_queues {
            dead_letter_queues = Some(create_dead_letter_queues(&sqs, &urls, MAX_RECEIVES).await?);
        }
        let secrets = aws_sdk_secretsmanager::Client::new(&aws);
        put_secret(&secrets, SALESFORCE_SECRET, &credentials_secret(&settings)).await?;
        put_secret(&secrets, INTAKE_SECRET, &intake_secret_json()).await?;
        put_secret(&secrets, ENVELOPE_SECRET, &envelope_secret_json()).await?;
        put_secret(&secrets, MAXIO_AB_SECRET, &ab_sites::secret_json(&maxio_ab)).await?;
        put_secret(
            &secrets,
            ab_sites::MAXIO_AB_UK_SECRET,
            &ab_sites::secret_json(&maxio_ab_uk),
        )
        .await?;
        let core_secret =
            serde_json::json!({"api_token": maxio_core.settings().api_token}).to_string();
        put_secret(&secrets, MAXIO_CORE_SECRET, &core_secret).await?;
        let whmcs_settings = whmcs.settings();
        let whmcs_secret = serde_json::json!({
            "identifier": whmcs_settings.identifier,
            "secret": whmcs_settings.secret,
        })
        .to_string();
        put_secret(&secrets, WHMCS_SECRET, &whmcs_secret).await?;
        create_ledger_table(&aws_sdk_dynamodb::Client::new(&aws), LEDGER_TABLE).await?;
        env.push(("LEDGER_TABLE_NAME".into(), LEDGER_TABLE.into()));
        crate::aws::create_budget_table(&aws_sdk_dynamodb::Client::new(&aws), BUDGET_TABLE).await?;
        env.push((
            dealbridge::budget::BUDGET_TABLE_VARIABLE.into(),
            BUDGET_TABLE.into(),
        ));
        for q in QueueName::ALL {
            env.push((
                q.url_variable().into(),
                urls.get(q).unwrap_or_default().into(),
            ));
        }
        if let Some(dlqs) = &dead_letter_queues {
            for q in QueueName::ALL {
                env.push((
                    q.dead_letter_url_variable().into(),
                    dlqs.get(q).unwrap_or_default().into(),
                ));
            }
        }
        env.extend(aws_endpoint_env(moto.endpoint()));
        queues = Some(urls);
        Some(moto)
    } else {
        if let Some(endpoint) = &options.aws_endpoint {
            env.extend(aws_endpoint_env(endpoint));
        }
        None
    };

    let served = ServedSandbox {
        salesforce,
        maxio_ab,
        maxio_ab_uk,
        maxio_core,
        whmcs,
        moto,
        queues,
        dead_letter_queues,
        env,
        core_source,
    };
    if let Some(path) = &options.env_file {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(path, served.env_text())
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(served)
}
