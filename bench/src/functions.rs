//! The deployed functions as processes: each release binary started under a fake Lambda Runtime
//! API ([`crate::runtime_api`]) with the environment the template gives it. Measured: the stripped
//! binary's size, init time (process start until its first `invocation/next`), and peak resident
//! memory (`VmHWM`) after init and after a load of invocations against the sandbox fakes and moto.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use dealbridge::queue::{QueueName, QueueUrls};
use dealbridge::salesforce::SfId;
use dealbridge_sandbox::aws::{
    create_dead_letter_queues, create_ledger_table, create_queues, put_secret,
};
use dealbridge_sandbox::harness::{SALESFORCE_SECRET, credentials_secret};
use dealbridge_sandbox::local::{
    ENVELOPE_SECRET, INTAKE_SECRET, MAXIO_AB_SECRET, MAXIO_CORE_SECRET, WHMCS_SECRET,
    envelope_secret_json, intake_secret_json,
};
use dealbridge_sandbox::maxio_ab::{AbSettings, MaxioAbSandbox};
use dealbridge_sandbox::maxio_core::{CoreSettings, MaxioCoreSandbox, SEED_FILE};
use dealbridge_sandbox::moto::Moto;
use dealbridge_sandbox::salesforce::{OrgSettings, SalesforceSandbox, data_dir, seeded_org};
use dealbridge_sandbox::whmcs::{WhmcsSandbox, WhmcsSettings};
use serde_json::{Value, json};
use tokio::process::{Child, Command};

use crate::clones::load_copies;
use crate::deals::{Trigger, intake_event, sample_event};
use crate::runtime_api::{Hit, RuntimeApi};

/// Every function of the template, by binary name.
pub const FUNCTIONS: [&str; 9] = [
    "intake",
    "platform-events",
    "delayed",
    "maxio-customer",
    "maxio-price-points",
    "maxio-subscription",
    "maxio-core-link",
    "whmcs-provision",
    "reconciler",
];

/// The ledger table created in moto.
const LEDGER_TABLE: &str = "dealbridge-ledger";
const BUDGET_TABLE: &str = "dealbridge-ab-budget";

/// Lost won deals the reconciler finds on each run (its per-run bound, 50 by default).
const RECONCILER_DEALS: usize = 50;

/// How long a function may take to do its next thing before it is given up on.
const PROGRESS_TIMEOUT: Duration = Duration::from_secs(60);

/// What one function measured.
#[derive(Debug, Clone)]
pub struct FunctionFigures {
    pub name: &'static str,
    /// Bytes of `target/release/<name>`.
    pub size: u64,
    /// Process start until the first `invocation/next`, per start.
    pub init: Vec<Duration>,
    /// `VmHWM` when the first `invocation/next` arrives (kB), per start.
    pub init_rss_kb: Vec<u64>,
    /// Peak resident memory after the load, when measured.
    pub load: Option<Load>,
}

/// A load fed to one function process.
#[derive(Debug, Clone)]
pub struct Load {
    /// What the invocations were.
    pub what: String,
    pub invocations: usize,
    /// Invocations whose answer said something failed (a 4xx/5xx, batch item failures, an
    /// error), and the first such answer.
    pub failed: usize,
    pub first_failure: Option<String>,
    /// `VmHWM` after the last invocation (kB).
    pub peak_rss_kb: u64,
    /// What the invocations achieved, checked in the fakes afterwards.
    pub outcome: String,
    /// Every answer, in order (for the outcome).
    pub answers: Vec<String>,
}

/// Everything about the functions.
#[derive(Debug, Clone)]
pub struct FunctionsReport {
    pub dir: PathBuf,
    pub figures: Vec<FunctionFigures>,
    /// Connections made to the dummy endpoints (AWS, queues, Salesforce, Maxio, WHMCS) during
    /// all the init measurements: 0 means init calls nothing.
    pub init_connections: usize,
    /// Why the load was not run, if it was not.
    pub load_skipped: Option<String>,
}

/// `VmHWM` of a process, in kB.
pub fn peak_rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// The variables Lambda itself sets for a function (provided.al2023, 256 MB, JSON logs).
fn lambda_env(name: &str, runtime_api: &str) -> Vec<(String, String)> {
    [
        ("PATH", "/usr/local/bin:/usr/bin:/bin"),
        ("LANG", "en_US.UTF-8"),
        ("TZ", ":UTC"),
        ("_HANDLER", "bootstrap"),
        ("AWS_EXECUTION_ENV", "AWS_Lambda_provided.al2023"),
        ("AWS_LAMBDA_RUNTIME_API", runtime_api),
        ("AWS_LAMBDA_FUNCTION_NAME", &format!("dealbridge-{name}")),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256"),
        (
            "AWS_LAMBDA_LOG_GROUP_NAME",
            &format!("/aws/lambda/dealbridge/{name}"),
        ),
        ("AWS_LAMBDA_LOG_STREAM_NAME", "2026/11/20/[$LATEST]bench"),
        ("AWS_LAMBDA_LOG_FORMAT", "JSON"),
        ("AWS_LAMBDA_LOG_LEVEL", "INFO"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "bench"),
        ("AWS_SECRET_ACCESS_KEY", "bench"),
        ("AWS_SESSION_TOKEN", "bench"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// Where the function's dependencies are.
struct Endpoints {
    aws: String,
    queues: Vec<(QueueName, String)>,
    /// Their dead-letter queues (each queue function requires its own).
    dead_letter_queues: Vec<(QueueName, String)>,
    salesforce: String,
    maxio_ab: String,
    maxio_core: String,
    whmcs: String,
    /// The 18-character Organization Id whose Outbound Messages the intake accepts.
    org_id: String,
}

/// The template's Globals and per-function variables, pointed at `at`.
fn function_env(name: &str, at: &Endpoints) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = [
        ("SALESFORCE_LOGIN_URL", at.salesforce.as_str()),
        ("SALESFORCE_API_VERSION", "62.0"),
        ("SALESFORCE_AUTH_FLOW", "client_credentials"),
        ("SALESFORCE_SECRET_NAME", SALESFORCE_SECRET),
        ("DEALBRIDGE_MAPPING", ""),
        ("MAXIO_AB_BASE_URL", at.maxio_ab.as_str()),
        ("MAXIO_AB_SECRET_NAME", MAXIO_AB_SECRET),
        ("MAXIO_AB_PRODUCT_HANDLE", "monthly-usage"),
        ("MAXIO_AB_PAYMENT_COLLECTION_METHOD", "remittance"),
        ("MAXIO_CORE_LINK_ENABLED", "true"),
        ("MAXIO_CORE_BASE_URL", at.maxio_core.as_str()),
        ("MAXIO_CORE_SECRET_NAME", MAXIO_CORE_SECRET),
        ("MAXIO_CORE_CUSTOMER_FIELD", "number"),
        ("MAXIO_CORE_CONTRACT_FIELD", "text_field2"),
        ("MAXIO_CORE_LINK_DEADLINE_HOURS", "24"),
        ("WHMCS_BASE_URL", at.whmcs.as_str()),
        ("WHMCS_SECRET_NAME", WHMCS_SECRET),
        ("LEDGER_TABLE_NAME", LEDGER_TABLE),
        ("MAXIO_AB_BUDGET_TABLE", BUDGET_TABLE),
        ("LEDGER_RETENTION_DAYS", "90"),
        ("WORKER_MAX_RECEIVES", "10"),
        ("ENVELOPE_SECRET_NAME", ENVELOPE_SECRET),
        // Not in Lambda: sends the AWS SDK to moto (or the dummy endpoint).
        ("AWS_ENDPOINT_URL", at.aws.as_str()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for (q, url) in &at.queues {
        env.push((q.url_variable().to_string(), url.clone()));
    }
    for (q, url) in &at.dead_letter_queues {
        env.push((q.dead_letter_url_variable().to_string(), url.clone()));
    }
    let extra: &[(&str, &str)] = match name {
        "intake" => &[
            ("INTAKE_SECRET_NAME", INTAKE_SECRET),
            ("SALESFORCE_ORG_IDS", at.org_id.as_str()),
            ("INTAKE_MAX_BODY_BYTES", "1048576"),
            ("AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH", "true"),
        ],
        "platform-events" => &[("SALESFORCE_ORG_IDS", at.org_id.as_str())],
        "reconciler" => &[
            ("RECONCILER_GRACE_MINUTES", "30"),
            ("RECONCILER_LOOKBACK_DAYS", "7"),
            ("RECONCILER_MAX_PER_RUN", "50"),
        ],
        _ => &[],
    };
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    env
}

/// The sandbox org's Organization Id, in its 18-character form.
fn org_id() -> anyhow::Result<String> {
    Ok(SfId::parse(&OrgSettings::default().org_id)?.to_string())
}

fn spawn(binary: &Path, env: &[(String, String)]) -> anyhow::Result<Child> {
    Command::new(binary)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))
}

async fn stop(mut child: Child) {
    let _ = child.start_kill();
    let _ = child.wait().await;
}

/// A listener that accepts and counts connections, standing in for every endpoint during init.
async fn dummy_endpoint() -> anyhow::Result<(String, Arc<AtomicUsize>, tokio::task::JoinHandle<()>)>
{
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
    let addr = listener.local_addr()?;
    let seen = Arc::new(AtomicUsize::new(0));
    let counter = seen.clone();
    let task = tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            drop(socket);
        }
    });
    Ok((format!("http://{addr}"), seen, task))
}

/// Starts the function `starts` times and times each start until its first `invocation/next`.
async fn measure_init(
    binary: &Path,
    name: &str,
    at: &Endpoints,
    starts: usize,
) -> anyhow::Result<(Vec<Duration>, Vec<u64>)> {
    let mut times = Vec::with_capacity(starts);
    let mut rss = Vec::with_capacity(starts);
    for _ in 0..starts {
        let mut api = RuntimeApi::start().await?;
        let mut env = lambda_env(name, api.authority());
        env.extend(function_env(name, at));
        let started = Instant::now();
        let child = spawn(binary, &env)?;
        let pid = child.id().unwrap_or_default();
        let hit = api.hit(Duration::from_secs(30)).await;
        let kb = peak_rss_kb(pid).unwrap_or_default();
        stop(child).await;
        match hit {
            Some(Hit::Next(at)) => {
                times.push(at.saturating_duration_since(started));
                rss.push(kb);
            }
            Some(Hit::InitError(body)) => bail!("{name} failed to start: {body}"),
            other => bail!("{name} did not ask for an invocation within 30 s ({other:?})"),
        }
    }
    Ok((times, rss))
}

/// Whether an invocation's answer reports a failure; the answer when it does.
fn failure(name: &str, hit: &Hit) -> Option<String> {
    match hit {
        Hit::Response { body, .. } => {
            let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
            let bad = match name {
                "intake" => v["statusCode"].as_u64().is_none_or(|s| s >= 400),
                "reconciler" => ["opportunities", "orders"].iter().any(|s| {
                    v[s]["failed"].as_array().is_some_and(|f| !f.is_empty())
                        || !v[s]["error"].is_null()
                }),
                "platform-events" => v["status"].as_str() != Some("planned"),
                _ => v["batchItemFailures"]
                    .as_array()
                    .is_some_and(|f| !f.is_empty()),
            };
            bad.then(|| body.chars().take(400).collect())
        }
        Hit::Error { body, .. } | Hit::InitError(body) => Some(body.chars().take(400).collect()),
        Hit::Next(_) => None,
    }
}

/// Feeds `events` to one process of the function, one invocation each, then reads its `VmHWM`.
async fn feed(
    binary: &Path,
    name: &'static str,
    env: &[(String, String)],
    events: Vec<String>,
    what: String,
) -> anyhow::Result<Load> {
    let mut api = RuntimeApi::start().await?;
    let mut full = lambda_env(name, api.authority());
    full.extend(env.iter().cloned());
    let invocations = events.len();
    for e in events {
        api.push(e);
    }
    let child = spawn(binary, &full)?;
    let pid = child.id().unwrap_or_default();
    let (mut done, mut failed, mut first_failure) = (0, 0, None);
    let mut answers = Vec::with_capacity(invocations);
    while done < invocations {
        let Some(hit) = api.hit(PROGRESS_TIMEOUT).await else {
            stop(child).await;
            bail!("{name} stopped answering after {done} of {invocations} invocations");
        };
        if let Hit::InitError(body) = &hit {
            stop(child).await;
            bail!("{name} failed to start: {body}");
        }
        if matches!(hit, Hit::Next(_)) {
            continue;
        }
        done += 1;
        if let Hit::Response { body, .. } | Hit::Error { body, .. } = &hit {
            answers.push(body.clone());
        }
        if let Some(f) = failure(name, &hit) {
            failed += 1;
            first_failure.get_or_insert(f);
        }
    }
    let peak_rss_kb = peak_rss_kb(pid).unwrap_or_default();
    stop(child).await;
    Ok(Load {
        what,
        invocations,
        failed,
        first_failure,
        peak_rss_kb,
        outcome: String::new(),
        answers,
    })
}

/// The sandbox the loads run against: every fake, moto with the queues, secrets and ledger table,
/// and copies of seeded deals.
struct LoadSandbox {
    salesforce: SalesforceSandbox,
    _maxio_ab: MaxioAbSandbox,
    _maxio_core: MaxioCoreSandbox,
    _whmcs: WhmcsSandbox,
    _moto: Moto,
    sqs: aws_sdk_sqs::Client,
    queues: QueueUrls,
    endpoints: Endpoints,
    /// Copies of the volume deal: (Opportunity, Account).
    volume: Vec<(SfId, SfId)>,
    /// Copies of the internet Order.
    orders: Vec<SfId>,
    /// Copies of the deal without an Order: (Opportunity, Account).
    pending: Vec<(SfId, SfId)>,
}

async fn load_sandbox(deals: usize) -> anyhow::Result<LoadSandbox> {
    let settings = OrgSettings::default();
    let salesforce = SalesforceSandbox::start(settings.clone(), seeded_org()?).await?;
    let volume = load_copies(&salesforce, "Volume", deals, &["Opportunity", "Account"])?
        .into_iter()
        .filter_map(|v| Some((v.first()?.clone(), v.get(1)?.clone())))
        .collect::<Vec<_>>();
    let orders = load_copies(&salesforce, "Internet", deals, &["Order"])?
        .into_iter()
        .filter_map(|v| v.first().cloned())
        .collect::<Vec<_>>();
    let pending = load_copies(&salesforce, "Pending", deals, &["Opportunity", "Account"])?
        .into_iter()
        .filter_map(|v| Some((v.first()?.clone(), v.get(1)?.clone())))
        .collect::<Vec<_>>();
    // Lost triggers for the reconciler: won deals last changed two hours ago (past its grace).
    salesforce.with_org(|org| org.set_clock(chrono::Utc::now() - chrono::Duration::hours(2)));
    load_copies(&salesforce, "Graduated", RECONCILER_DEALS, &["Opportunity"])?;
    salesforce.with_org(|org| org.set_clock(chrono::Utc::now()));

    let maxio_ab = MaxioAbSandbox::start(AbSettings::default()).await?;
    let maxio_core = MaxioCoreSandbox::start(CoreSettings::default()).await?;
    maxio_core.seed(&data_dir().join(SEED_FILE), |r| {
        salesforce
            .id_of(r)
            .and_then(|id| SfId::parse(&id).ok())
            .map(|id| id.to_string())
    })?;
    for (n, (opportunity, account)) in volume.iter().enumerate() {
        let customer = maxio_core.add_customer(json!({
            "name": format!("Bench customer {n}"),
            "number": account.as_str(),
            "sf_id": account.as_str(),
        }));
        maxio_core.add_contract(json!({
            "customer": customer,
            "number": format!("BENCH-{n}"),
            "sf_id": opportunity.as_str(),
            "is_active": true,
        }));
    }
    let whmcs = WhmcsSandbox::start(WhmcsSettings::default()).await?;

    let moto = Moto::start().await?;
    let aws = moto.sdk_config().await;
    let sqs = aws_sdk_sqs::Client::new(&aws);
    let queues = create_queues(&sqs).await?;
    let dead_letter_queues = create_dead_letter_queues(&sqs, &queues, 10).await?;
    let secrets = aws_sdk_secretsmanager::Client::new(&aws);
    put_secret(&secrets, SALESFORCE_SECRET, &credentials_secret(&settings)).await?;
    put_secret(&secrets, INTAKE_SECRET, &intake_secret_json()).await?;
    put_secret(&secrets, ENVELOPE_SECRET, &envelope_secret_json()).await?;
    put_secret(
        &secrets,
        MAXIO_AB_SECRET,
        &json!({"api_key": maxio_ab.settings().api_key}).to_string(),
    )
    .await?;
    put_secret(
        &secrets,
        MAXIO_CORE_SECRET,
        &json!({"api_token": maxio_core.settings().api_token}).to_string(),
    )
    .await?;
    let w = whmcs.settings();
    put_secret(
        &secrets,
        WHMCS_SECRET,
        &json!({"identifier": w.identifier, "secret": w.secret}).to_string(),
    )
    .await?;
    create_ledger_table(&aws_sdk_dynamodb::Client::new(&aws), LEDGER_TABLE).await?;
    dealbridge_sandbox::aws::create_budget_table(
        &aws_sdk_dynamodb::Client::new(&aws),
        BUDGET_TABLE,
    )
    .await?;
    let endpoints = Endpoints {
        aws: moto.endpoint().to_string(),
        queues: QueueName::ALL
            .iter()
            .map(|q| (*q, queues.get(*q).unwrap_or_default().to_string()))
            .collect(),
        dead_letter_queues: QueueName::ALL
            .iter()
            .map(|q| {
                let url = dead_letter_queues.get(*q).unwrap_or_default();
                (*q, url.to_string())
            })
            .collect(),
        salesforce: salesforce.url().to_string(),
        maxio_ab: maxio_ab.url().to_string(),
        maxio_core: maxio_core.base_url(),
        whmcs: whmcs.base_url(),
        org_id: org_id()?,
    };
    Ok(LoadSandbox {
        salesforce,
        _maxio_ab: maxio_ab,
        _maxio_core: maxio_core,
        _whmcs: whmcs,
        _moto: moto,
        sqs,
        queues,
        endpoints,
        volume,
        orders,
        pending,
    })
}

/// Takes every message on `queue` (up to `max`) from moto, each as a one-record SQS event.
async fn take_all(
    sandbox: &LoadSandbox,
    queue: QueueName,
    max: usize,
) -> anyhow::Result<Vec<String>> {
    let url = sandbox
        .queues
        .get(queue)
        .with_context(|| format!("no queue {queue} in moto"))?
        .to_string();
    let name = url.rsplit('/').next().unwrap_or_default().to_string();
    let mut events = Vec::new();
    let mut empty = 0;
    while events.len() < max && empty < 3 {
        let out = sandbox
            .sqs
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(10)
            .visibility_timeout(3600)
            .wait_time_seconds(0)
            .send()
            .await
            .with_context(|| format!("receiving from {queue}"))?;
        let messages = out.messages();
        if messages.is_empty() {
            empty += 1;
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        empty = 0;
        for m in messages {
            let record = json!({
                "messageId": m.message_id().unwrap_or_default(),
                "receiptHandle": m.receipt_handle().unwrap_or_default(),
                "body": m.body().unwrap_or_default(),
                "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {},
                "md5OfBody": m.md5_of_body().unwrap_or_default(),
                "eventSource": "aws:sqs",
                "eventSourceARN": format!("arn:aws:sqs:us-east-1:123456789012:{name}"),
                "awsRegion": "us-east-1",
            });
            events.push(json!({ "Records": [record] }).to_string());
        }
    }
    Ok(events)
}

/// Messages on moto's delayed queue, visible or still delayed.
async fn delayed_messages(sandbox: &LoadSandbox) -> anyhow::Result<usize> {
    use aws_sdk_sqs::types::QueueAttributeName as A;
    let url = sandbox
        .queues
        .get(QueueName::Delayed)
        .context("no delayed queue in moto")?;
    let out = sandbox
        .sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(A::ApproximateNumberOfMessages)
        .attribute_names(A::ApproximateNumberOfMessagesDelayed)
        .send()
        .await
        .context("reading the delayed queue's attributes")?;
    let attributes = out.attributes();
    let get = |a: A| -> usize {
        attributes
            .and_then(|m| m.get(&a))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    Ok(get(A::ApproximateNumberOfMessages) + get(A::ApproximateNumberOfMessagesDelayed))
}

/// The delayed function's re-dispatch message for a deal without an Order (as
/// `events/delayed-redispatch.json`).
fn redispatch_event(n: usize, opportunity: &SfId, account: &SfId, now: i64) -> String {
    let body = json!({
        "version": 1,
        "correlationId": format!("bench-pending-{n}"),
        "stepKey": format!("{opportunity}:dispatch"),
        "deal": {"type": "Opportunity", "id": opportunity.as_str()},
        "accountId": account.as_str(),
        "step": {"name": "dispatch", "attempt": 1, "notBefore": now},
    })
    .to_string();
    json!({"Records": [{
        "messageId": format!("bench-delayed-{n}"),
        "receiptHandle": format!("bench-receipt-{n}"),
        "body": body,
        "attributes": {"ApproximateReceiveCount": "1"},
        "messageAttributes": {},
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:dealbridge-delayed",
        "awsRegion": "us-east-1",
    }]})
    .to_string()
}

/// The platform event an approval publishes for `order`.
fn platform_event(template: &Value, n: usize, order: &SfId) -> String {
    let mut e = template.clone();
    e["id"] = Value::String(format!("bench-event-{n}"));
    e["detail"]["payload"]["OrderId__c"] = Value::String(order.to_string());
    e["detail"]["payload"]["IdemKey__c"] = Value::String(format!("{order}-bench-{n}"));
    e["detail"]["payload"]["CorrelationId__c"] = Value::String(format!("bench-order-{n}"));
    e.to_string()
}

/// Runs the loads: the intake and the Maxio chain on the volume copies (each worker fed the
/// messages the one before it sent), platform events and WHMCS provisioning on the internet
/// Order copies, the delayed function on the deals without an Order, and the reconciler's
/// schedule.
async fn run_loads(dir: &Path, deals: usize) -> anyhow::Result<Vec<(&'static str, Load)>> {
    let sandbox = load_sandbox(deals).await?;
    let binary = |name: &str| dir.join(name);
    let env = |name: &str| function_env(name, &sandbox.endpoints);
    let run = |name: &'static str, events: Vec<String>, what: String| {
        let (binary, env) = (binary(name), env(name));
        async move { feed(&binary, name, &env, events, what).await }
    };
    let mut loads = Vec::new();
    let now = chrono::Utc::now().timestamp();

    let template = sample_event("intake-http-api-deal.json")?;
    let events: Vec<String> = sandbox
        .volume
        .iter()
        .enumerate()
        .map(|(n, (opportunity, _))| {
            intake_event(
                &template,
                Trigger::Opportunity,
                opportunity,
                &format!("bench-{n}"),
                now,
            )
            .to_string()
        })
        .collect();
    let what = format!(
        "{} signed Apex callouts (HTTP API events), one per copy of the volume deal: each loads the deal (1 Composite call) and enqueues its first Maxio step",
        events.len()
    );
    let mut intake = run("intake", events, what).await?;
    let accepted = intake
        .answers
        .iter()
        .filter(|a| a.contains("\"statusCode\":202"))
        .count();
    intake.outcome = format!("{accepted} answered 202 Accepted");
    loads.push(("intake", intake));

    let chain = [
        (
            "maxio-customer",
            QueueName::MaxioCustomer,
            "checks the deal, finds or creates the AB customer, enqueues the price points step",
        ),
        (
            "maxio-price-points",
            QueueName::MaxioPricePoints,
            "finds or creates the custom price point, enqueues the subscription step",
        ),
        (
            "maxio-subscription",
            QueueName::MaxioSubscription,
            "finds or creates the subscription, reads its components, enqueues the Core link",
        ),
        (
            "maxio-core-link",
            QueueName::MaxioCoreLink,
            "links the Core contract and writes the outcome to Salesforce",
        ),
    ];
    for (name, queue, does) in chain {
        let events = take_all(&sandbox, queue, deals).await?;
        let what = format!(
            "{} SQS events of one record each, the messages the previous function sent for the volume copies: each {does}",
            events.len()
        );
        let mut load = run(name, events, what).await?;
        if name == "maxio-core-link" {
            let linked = sandbox
                .volume
                .iter()
                .filter(|(opportunity, _)| {
                    let r = sandbox
                        .salesforce
                        .record(opportunity.as_str())
                        .unwrap_or_default();
                    let field = |f: &str| r.get(f).and_then(Value::as_str).unwrap_or_default();
                    field("Maxio_Sync_Status__c") == "Synced"
                        && !field("Maxio_Core_Contract_Id__c").is_empty()
                })
                .count();
            load.outcome = format!(
                "{linked} of {} volume copies ended Synced and linked in Salesforce",
                sandbox.volume.len()
            );
        }
        loads.push((name, load));
    }

    let pe_template = sample_event("platform-events-order-provision.json")?;
    let events: Vec<String> = sandbox
        .orders
        .iter()
        .enumerate()
        .map(|(n, order)| platform_event(&pe_template, n, order))
        .collect();
    let what = format!(
        "{} OrderProvisionRequested__e events (EventBridge), one per copy of the internet Order: each loads the Order and enqueues its WHMCS step",
        events.len()
    );
    let mut platform = run("platform-events", events, what).await?;
    let planned = platform
        .answers
        .iter()
        .filter(|a| a.contains("\"status\":\"planned\""))
        .count();
    platform.outcome = format!("{planned} planned their WHMCS step");
    loads.push(("platform-events", platform));
    let events = take_all(&sandbox, QueueName::WhmcsProvision, deals).await?;
    let what = format!(
        "{} SQS events of one record each, the messages platform-events sent: each guards the Order in the ledger (DynamoDB on moto), places and accepts the WHMCS order and writes it back",
        events.len()
    );
    let mut whmcs = run("whmcs-provision", events, what).await?;
    let provisioned = sandbox
        .orders
        .iter()
        .filter(|order| {
            sandbox
                .salesforce
                .record(order.as_str())
                .and_then(|r| r.get("WHMCS_Order_Id__c").cloned())
                .is_some_and(|v| !v.is_null())
        })
        .count();
    whmcs.outcome = format!(
        "{provisioned} of {} Order copies got their WHMCS order id in Salesforce",
        sandbox.orders.len()
    );
    loads.push(("whmcs-provision", whmcs));

    let events: Vec<String> = sandbox
        .pending
        .iter()
        .enumerate()
        .map(|(n, (opportunity, account))| redispatch_event(n, opportunity, account, now))
        .collect();
    let what = format!(
        "{} SQS events of one re-dispatch record each, for copies of the deal whose Order does not exist yet: each loads the deal and schedules the next try",
        events.len()
    );
    let mut delayed = run("delayed", events, what).await?;
    let rescheduled = delayed_messages(&sandbox).await?;
    delayed.outcome = format!("{rescheduled} next tries waiting on the delayed queue");
    loads.push(("delayed", delayed));

    let scheduled = sample_event("reconciler-scheduled.json")?;
    let events: Vec<String> = (0..deals)
        .map(|n| {
            let mut e = scheduled.clone();
            e["executionId"] = Value::String(format!("bench-{n}"));
            e.to_string()
        })
        .collect();
    let what = format!(
        "{} scheduled runs over an org holding {RECONCILER_DEALS} lost won deals (copies of the graduated deal last changed 2 hours ago; RECONCILER_MAX_PER_RUN 50): each run searches with one Composite call and dispatches what it finds",
        events.len()
    );
    let mut reconciler = run("reconciler", events, what).await?;
    let dispatched: Vec<u64> = reconciler
        .answers
        .iter()
        .map(|a| {
            serde_json::from_str::<Value>(a)
                .ok()
                .and_then(|v| v["opportunities"]["dispatched"].as_u64())
                .unwrap_or(0)
        })
        .collect();
    reconciler.outcome = format!(
        "{} dispatches in all ({} to {} per run)",
        dispatched.iter().sum::<u64>(),
        dispatched.iter().min().unwrap_or(&0),
        dispatched.iter().max().unwrap_or(&0)
    );
    loads.push(("reconciler", reconciler));
    for (_, load) in &mut loads {
        load.answers.clear();
    }
    Ok(loads)
}

/// Measures every function whose binary is in `dir`: size, `starts` timed starts, and, when
/// `load` is non-zero and moto is installed, the peak RSS after `load` invocations.
pub async fn measure(dir: &Path, starts: usize, load: usize) -> anyhow::Result<FunctionsReport> {
    let (dummy, connections, dummy_task) = dummy_endpoint().await?;
    let at = Endpoints {
        aws: dummy.clone(),
        queues: QueueName::ALL
            .iter()
            .map(|q| (*q, format!("{dummy}/123456789012/dealbridge-{q}")))
            .collect(),
        dead_letter_queues: QueueName::ALL
            .iter()
            .map(|q| (*q, format!("{dummy}/123456789012/dealbridge-{q}-dlq")))
            .collect(),
        salesforce: dummy.clone(),
        maxio_ab: dummy.clone(),
        maxio_core: format!("{dummy}/dealbridge-sandbox/api/v1.0/"),
        whmcs: dummy.clone(),
        org_id: org_id()?,
    };
    let mut figures = Vec::new();
    for name in FUNCTIONS {
        let binary = dir.join(name);
        let size = std::fs::metadata(&binary)
            .with_context(|| format!("{} (build it: cargo build --release)", binary.display()))?
            .len();
        let (init, init_rss_kb) = measure_init(&binary, name, &at, starts).await?;
        figures.push(FunctionFigures {
            name,
            size,
            init,
            init_rss_kb,
            load: None,
        });
    }
    let init_connections = connections.load(Ordering::SeqCst);
    dummy_task.abort();

    let mut load_skipped = None;
    if load == 0 {
        load_skipped = Some("not asked for".to_string());
    } else {
        match run_loads(dir, load).await {
            Ok(loads) => {
                for (name, l) in loads {
                    if let Some(f) = figures.iter_mut().find(|f| f.name == name) {
                        f.load = Some(l);
                    }
                }
            }
            Err(e) if format!("{e:#}").contains("moto_server") => {
                load_skipped = Some(format!("{e:#}"));
            }
            Err(e) => return Err(e),
        }
    }
    Ok(FunctionsReport {
        dir: dir.to_path_buf(),
        figures,
        init_connections,
        load_skipped,
    })
}
