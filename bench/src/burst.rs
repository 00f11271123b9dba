//! A burst of won deals handled by workers running concurrently, as Lambda runs them: several
//! tasks per queue, each taking a batch of up to 10 messages and handing it to the same handler
//! `LocalStack::run_batch` uses, on a multi-thread runtime. Every worker count is the template's
//! (read from template.yaml); each AB function instance has its own AB clients, whose request
//! budgets share one slot table (as the deployed containers share DynamoDB), answering after
//! [`BUDGET_TABLE_LATENCY`].

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use dealbridge::maxio::steps::MaxioDeps;
use dealbridge::queue::QueueName;
use dealbridge::salesforce::SfId;
use dealbridge_sandbox::ab_sites::UK_SITE;
use dealbridge_sandbox::local::LocalStack;
use dealbridge_sandbox::maxio_ab::AbSettings;
use serde_json::{Value, json};
use tokio::sync::Mutex;

use crate::calls::{Calls, count};
use crate::clones::load_copies;
use crate::deals::{Trigger, clear_logs, sample_event, send, set_latency, warm_up};

/// How many function instances consume each queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Concurrency {
    pub name: String,
    pub workers: Vec<(QueueName, usize)>,
}

/// The SAM template the numbers are read from.
const TEMPLATE: &str = include_str!("../../template.yaml");

/// Instances of a queue function the template does not bound (WHMCS: no WHMCS deal in the
/// burst).
const UNBOUNDED_INSTANCES: usize = 4;

impl Concurrency {
    /// template.yaml's: each worker function's SQS event source `ScalingConfig.MaximumConcurrency`,
    /// else its `ReservedConcurrentExecutions`, else [`UNBOUNDED_INSTANCES`].
    pub fn template() -> anyhow::Result<Concurrency> {
        Concurrency::from_template(TEMPLATE)
    }

    /// The numbers of the template `text` (`<Queue>Function` consumes the queue `<Queue>`).
    pub fn from_template(text: &str) -> anyhow::Result<Concurrency> {
        use yaml_rust2::{Yaml, YamlLoader};
        let docs = YamlLoader::load_from_str(text).context("template.yaml is not YAML")?;
        let resources = &docs.first().context("template.yaml is empty")?["Resources"];
        let whole = |y: &Yaml| match y {
            Yaml::Integer(n) => usize::try_from(*n).ok(),
            Yaml::String(s) => s.parse().ok(),
            _ => None,
        };
        let mut workers = Vec::new();
        for queue in QueueName::ALL {
            let logical = format!("{queue:?}Function");
            let function = &resources[logical.as_str()];
            if function.is_badvalue() {
                anyhow::bail!("template.yaml has no {logical}");
            }
            let properties = &function["Properties"];
            let from_events = properties["Events"].as_hash().and_then(|events| {
                events
                    .values()
                    .find_map(|e| whole(&e["Properties"]["ScalingConfig"]["MaximumConcurrency"]))
            });
            let n = from_events
                .or_else(|| whole(&properties["ReservedConcurrentExecutions"]))
                .unwrap_or(UNBOUNDED_INSTANCES);
            workers.push((queue, n));
        }
        let name = format!(
            "template (customer {}, price points {}, subscription {}, Core link {})",
            of(&workers, QueueName::MaxioCustomer),
            of(&workers, QueueName::MaxioPricePoints),
            of(&workers, QueueName::MaxioSubscription),
            of(&workers, QueueName::MaxioCoreLink),
        );
        Ok(Concurrency { name, workers })
    }

    /// Instances consuming `queue`.
    pub fn of(&self, queue: QueueName) -> usize {
        of(&self.workers, queue)
    }
}

fn of(workers: &[(QueueName, usize)], queue: QueueName) -> usize {
    workers
        .iter()
        .find(|(q, _)| *q == queue)
        .map_or(0, |(_, n)| *n)
}

/// The queues whose functions call Maxio AB: each instance has its own AB clients and budgets.
const AB_QUEUES: [QueueName; 3] = [
    QueueName::MaxioCustomer,
    QueueName::MaxioPricePoints,
    QueueName::MaxioSubscription,
];

/// The round trip assumed for each call to the budget's table (DynamoDB answers a single-item
/// read or write within a region in single-digit milliseconds).
pub const BUDGET_TABLE_LATENCY: Duration = Duration::from_millis(5);

/// What the AB request budget cost in a burst.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BudgetCost {
    /// Calls to the slot table (reads, takes, give-backs).
    pub table_calls: u64,
    /// Requests sent on a slot.
    pub permits: u64,
    /// Of those, on a slot the instance already held (no table call).
    pub reused: u64,
    /// Time requests waited for a slot, in all.
    pub waited: Duration,
}

/// One AB site's share of a burst.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteShare {
    pub site: String,
    /// Requests answered (not 429).
    pub answered: usize,
    pub rate_limited: usize,
    /// Its budget's slots.
    pub slots: usize,
}

/// What a burst did.
#[derive(Debug, Clone)]
pub struct BurstResult {
    pub deals: usize,
    pub concurrency: Concurrency,
    pub latency: Duration,
    /// From the first intake request until every queue is empty.
    pub wall: Duration,
    /// From the first intake request until the last AB step finished.
    pub ab_phase: Duration,
    pub calls: Calls,
    /// Messages handled per queue.
    pub handled: BTreeMap<String, usize>,
    /// Deliveries a worker asked to retry.
    pub retried: usize,
    /// Times virtual time was moved forward to a retried message's visibility.
    pub time_jumps: usize,
    /// Extra AB customers, subscriptions and custom price points beyond one per deal / item,
    /// and Core contracts written more than once.
    pub duplicates: Duplicates,
    /// Deals that did not end Synced and linked, with the first reasons.
    pub failures: Vec<String>,
    pub dead_letters: usize,
    /// Each AB site's requests.
    pub sites: Vec<SiteShare>,
    pub budget: BudgetCost,
    /// Sampled every millisecond of the AB phase, per site (in [`BurstResult::sites`]' order).
    pub occupancy: Vec<Occupancy>,
}

/// How busy one AB site's budget was: time-weighted means over samples taken every millisecond
/// of the AB phase.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Occupancy {
    /// Slots held in the slot table.
    pub held: f64,
    /// Requests the site was answering.
    pub in_flight: f64,
    /// The mean time the fake site took to answer a request (the injected latency and its own
    /// work).
    pub answer_time: Duration,
}

impl BurstResult {
    /// What AB's budgets allow: the busiest site's answered requests × the latency / its slots.
    pub fn bound(&self) -> Duration {
        self.sites
            .iter()
            .map(|s| {
                self.latency * u32::try_from(s.answered).unwrap_or(u32::MAX) / s.slots.max(1) as u32
            })
            .max()
            .unwrap_or_default()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Duplicates {
    pub customers: usize,
    pub subscriptions: usize,
    pub price_points: usize,
    pub core_links: usize,
}

impl Duplicates {
    pub fn total(&self) -> usize {
        self.customers + self.subscriptions + self.price_points + self.core_links
    }
}

/// Counters shared by the worker tasks.
#[derive(Default)]
struct Shared {
    /// Tasks between taking messages and finishing their batch.
    busy: AtomicUsize,
    /// Batches taken so far.
    generation: AtomicUsize,
    retried: AtomicUsize,
    intake_done: AtomicUsize,
    stop: AtomicUsize,
}

/// Loads `deals` copies of the volume deal (USD, the default site), or with `two_sites` every
/// other one a copy of the sterling deal (GBP, the `uk` site), with Core customers and contracts
/// for them.
fn seed(stack: &LocalStack, deals: usize, two_sites: bool) -> anyhow::Result<Vec<(SfId, SfId)>> {
    let sterling = if two_sites { deals / 2 } else { 0 };
    let mut ids = load_copies(
        &stack.salesforce,
        "Volume",
        deals - sterling,
        &["Opportunity", "Account"],
    )?;
    ids.extend(load_copies(
        &stack.salesforce,
        "Sterling",
        sterling,
        &["Opportunity", "Account"],
    )?);
    let mut out = Vec::with_capacity(ids.len());
    for (n, pair) in ids.into_iter().enumerate() {
        let [opportunity, account] = <[SfId; 2]>::try_from(pair)
            .map_err(|_| anyhow::anyhow!("copy {n} lacks its Opportunity or Account"))?;
        let customer = stack.maxio_core.add_customer(json!({
            "name": format!("Bench customer {n}"),
            "number": account.as_str(),
            "sf_id": account.as_str(),
        }));
        stack.maxio_core.add_contract(json!({
            "customer": customer,
            "number": format!("BENCH-{n}"),
            "sf_id": opportunity.as_str(),
            "is_active": true,
        }));
        out.push((opportunity, account));
    }
    Ok(out)
}

/// One function instance: takes batches from `queue` until told to stop.
async fn worker(
    stack: Arc<LocalStack>,
    shared: Arc<Shared>,
    queue: QueueName,
    instance: Option<Arc<MaxioDeps>>,
    handled: Arc<Mutex<BTreeMap<String, usize>>>,
    ab_done: Arc<Mutex<Option<Instant>>>,
) {
    loop {
        if shared.stop.load(Ordering::SeqCst) > 0 {
            return;
        }
        shared.busy.fetch_add(1, Ordering::SeqCst);
        let batch = stack.queue.receive(queue, 10);
        if batch.is_empty() {
            shared.busy.fetch_sub(1, Ordering::SeqCst);
            // Lambda's poller waits for messages; a short pause stands in for it.
            tokio::time::sleep(Duration::from_millis(1)).await;
            continue;
        }
        shared.generation.fetch_add(1, Ordering::SeqCst);
        let failed = match &instance {
            Some(handler) => stack.run_batch_on(handler.as_ref(), queue, &batch).await,
            None => stack.run_batch(queue, &batch).await,
        };
        for r in &batch {
            if !failed.contains(&r.message_id) {
                stack.queue.delete(queue, &r.receipt);
            }
        }
        shared.retried.fetch_add(failed.len(), Ordering::SeqCst);
        *handled.lock().await.entry(queue.to_string()).or_default() += batch.len();
        if queue == QueueName::MaxioSubscription {
            *ab_done.lock().await = Some(Instant::now());
        }
        shared.busy.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Sends the deals through the intake, `parallel` at a time.
async fn intake(
    stack: Arc<LocalStack>,
    deals: Arc<Vec<(SfId, SfId)>>,
    parallel: usize,
) -> anyhow::Result<()> {
    let template = Arc::new(sample_event("intake-http-api-deal.json")?);
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..parallel.max(1) {
        let (stack, deals, template, next) =
            (stack.clone(), deals.clone(), template.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::SeqCst);
                let Some((opportunity, _)) = deals.get(n) else {
                    return Ok::<(), anyhow::Error>(());
                };
                send(
                    &stack,
                    &template,
                    Trigger::Opportunity,
                    opportunity,
                    &format!("bench-burst-{n}"),
                )
                .await?;
            }
        }));
    }
    for t in tasks {
        t.await.context("an intake task panicked")??;
    }
    Ok(())
}

/// Duplicates in AB and Core, and deals that did not end Synced and linked.
fn audit(stack: &LocalStack, deals: &[(SfId, SfId)]) -> (Duplicates, Vec<String>) {
    let extra = |values: Vec<Value>, key: &str, keep: &dyn Fn(&Value) -> bool| -> usize {
        let mut seen: HashMap<String, usize> = HashMap::new();
        for v in values.iter().filter(|v| keep(v)) {
            *seen.entry(v[key].to_string()).or_default() += 1;
        }
        seen.values().map(|n| n.saturating_sub(1)).sum()
    };
    let custom = |v: &Value| v["handle"].as_str().is_some_and(|h| h.starts_with("sf-"));
    let duplicates = Duplicates {
        customers: extra(stack.maxio_ab.customers(), "reference", &|_| true),
        subscriptions: extra(stack.maxio_ab.subscriptions(), "reference", &|_| true),
        price_points: extra(stack.maxio_ab.price_points(), "handle", &custom),
        core_links: stack
            .maxio_core
            .observer()
            .requests()
            .iter()
            .filter(|r| r.method == "PATCH")
            .count()
            .saturating_sub(deals.len()),
    };
    let mut failures = Vec::new();
    for (opportunity, _) in deals {
        let record = stack
            .salesforce
            .record(opportunity.as_str())
            .unwrap_or_default();
        let field = |name: &str| record.get(name).and_then(Value::as_str).unwrap_or_default();
        if field("Maxio_Sync_Status__c") != "Synced"
            || field("Maxio_Core_Contract_Id__c").is_empty()
        {
            failures.push(format!(
                "{opportunity}: {} {} / Core {} {}",
                field("Maxio_Sync_Status__c"),
                field("Maxio_Sync_Error__c"),
                field("Maxio_Core_Link_Status__c"),
                field("Maxio_Core_Link_Error__c")
            ));
        }
    }
    (duplicates, failures)
}

/// Runs a burst of `deals` copies of the volume deal with `latency` per external call.
pub async fn run(
    deals: usize,
    latency: Duration,
    concurrency: Concurrency,
    two_sites: bool,
) -> anyhow::Result<BurstResult> {
    let stack = LocalStack::start().await?;
    let ids = Arc::new(seed(&stack, deals, two_sites)?);
    warm_up(&stack).await?;
    clear_logs(&stack);
    set_latency(&stack, latency);
    stack.budget_table.set_latency(BUDGET_TABLE_LATENCY);
    let table_calls_before = stack.budget_table.calls();
    let answered_before = [stack.maxio_ab.answered(), stack.maxio_ab_uk.answered()];
    let stack = Arc::new(stack);
    let shared = Arc::new(Shared::default());
    let handled = Arc::new(Mutex::new(BTreeMap::new()));
    let ab_done = Arc::new(Mutex::new(None));

    let started = Instant::now();
    let mut workers = Vec::new();
    let mut instances = Vec::new();
    for (queue, n) in &concurrency.workers {
        for i in 0..*n {
            // Each AB function instance is a container of its own: its own AB clients, its own
            // holder name in the shared budget table.
            let instance = if AB_QUEUES.contains(queue) {
                let deps = stack
                    .maxio_instance(&format!("{queue}-{i}"))
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                instances.push(deps.clone());
                Some(deps)
            } else {
                None
            };
            workers.push(tokio::spawn(worker(
                stack.clone(),
                shared.clone(),
                *queue,
                instance,
                handled.clone(),
                ab_done.clone(),
            )));
        }
    }
    // Every millisecond: each site's slots held and requests in flight.
    let sampler = {
        let (stack, shared) = (stack.clone(), shared.clone());
        tokio::spawn(async move {
            let mut samples = Vec::new();
            while shared.stop.load(Ordering::SeqCst) == 0 {
                let sites = [("default", &stack.maxio_ab), (UK_SITE, &stack.maxio_ab_uk)]
                    .map(|(site, fake)| (stack.budget_table.held(site), fake.in_flight()));
                samples.push((Instant::now(), sites));
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            samples
        })
    };
    let intake_task = {
        let (stack, ids, shared) = (stack.clone(), ids.clone(), shared.clone());
        tokio::spawn(async move {
            let result = intake(stack, ids, 16).await;
            shared.intake_done.store(1, Ordering::SeqCst);
            result
        })
    };

    let mut time_jumps = 0;
    let mut idle_ticks = 0;
    let mut last_generation = usize::MAX;
    loop {
        tokio::time::sleep(Duration::from_millis(2)).await;
        if intake_task.is_finished() && shared.intake_done.load(Ordering::SeqCst) == 0 {
            break;
        }
        let generation = shared.generation.load(Ordering::SeqCst);
        let quiet = shared.intake_done.load(Ordering::SeqCst) > 0
            && shared.busy.load(Ordering::SeqCst) == 0
            && generation == last_generation;
        last_generation = generation;
        if !quiet {
            idle_ticks = 0;
            continue;
        }
        let depth: usize = QueueName::ALL.iter().map(|q| stack.queue.depth(*q)).sum();
        let still_quiet = shared.busy.load(Ordering::SeqCst) == 0
            && shared.generation.load(Ordering::SeqCst) == generation;
        if !still_quiet {
            continue;
        }
        if depth == 0 {
            break;
        }
        // Only messages waiting out a visibility timeout or a delay are left: move virtual time
        // to the next one instead of waiting, as `LocalStack::drain` does.
        idle_ticks += 1;
        if idle_ticks >= 3
            && let Some(at) = QueueName::ALL
                .iter()
                .filter_map(|q| stack.queue.next_visible_at(*q))
                .min()
        {
            let now = stack.queue.now();
            stack.advance(at.saturating_sub(now).max(Duration::from_millis(1)));
            time_jumps += 1;
            idle_ticks = 0;
        }
    }
    let wall = started.elapsed();
    shared.stop.store(1, Ordering::SeqCst);
    for w in workers {
        w.await.context("a worker task panicked")?;
    }
    intake_task.await.context("the intake task panicked")??;
    let samples = sampler.await.context("the sampler panicked")?;

    let ab_phase = ab_done
        .lock()
        .await
        .map_or(Duration::ZERO, |t| t.saturating_duration_since(started));
    let ab_over = started + ab_phase;
    // Each sample weighs the time until the next one: the sampler wakes late when the runtime is
    // busy, which is when answers arrive and requests leave, so plain means over samples would
    // overweight the quiet moments with every slot in flight.
    let in_phase: Vec<(f64, [(usize, usize); 2])> = samples
        .windows(2)
        .filter(|w| w[0].0 <= ab_over)
        .map(|w| {
            let until = w[1].0.min(ab_over);
            (
                until.saturating_duration_since(w[0].0).as_secs_f64(),
                w[0].1,
            )
        })
        .collect();
    let n = in_phase
        .iter()
        .map(|(w, _)| w)
        .sum::<f64>()
        .max(f64::MIN_POSITIVE);
    let fakes = [&stack.maxio_ab, &stack.maxio_ab_uk];
    let occupancy = (0..if two_sites { 2 } else { 1 })
        .map(|i| {
            let (answered, took) = fakes[i].answered();
            let (answered, took) = (
                answered - answered_before[i].0,
                took.saturating_sub(answered_before[i].1),
            );
            Occupancy {
                held: in_phase.iter().map(|(w, s)| w * s[i].0 as f64).sum::<f64>() / n,
                in_flight: in_phase.iter().map(|(w, s)| w * s[i].1 as f64).sum::<f64>() / n,
                answer_time: took / u32::try_from(answered.max(1)).unwrap_or(u32::MAX),
            }
        })
        .collect();
    let calls = count(&stack);
    let handled = handled.lock().await.clone();
    let (duplicates, failures) = audit(&stack, &ids);
    let dead_letters = QueueName::ALL
        .iter()
        .map(|q| stack.queue.dead_letters(*q).len())
        .sum();
    let mut budget = BudgetCost {
        table_calls: stack.budget_table.calls() - table_calls_before,
        ..BudgetCost::default()
    };
    for deps in &instances {
        for b in deps.sites.budgets() {
            let stats = b.stats();
            budget.permits += stats.permits;
            budget.reused += stats.reused;
            budget.waited += Duration::from_micros(stats.waited_micros);
        }
    }
    let slots = AbSettings::default().max_concurrent_requests;
    let share = |site: &str, requests: Vec<dealbridge_sandbox::observe::LoggedRequest>| SiteShare {
        site: site.to_string(),
        answered: requests.iter().filter(|r| r.status != 429).count(),
        rate_limited: requests.iter().filter(|r| r.status == 429).count(),
        slots,
    };
    let mut sites = vec![share("default", stack.maxio_ab.observer().requests())];
    if two_sites {
        sites.push(share(UK_SITE, stack.maxio_ab_uk.observer().requests()));
    }
    Ok(BurstResult {
        deals,
        concurrency,
        sites,
        budget,
        occupancy,
        latency,
        wall,
        ab_phase,
        calls,
        handled,
        retried: shared.retried.load(Ordering::SeqCst),
        time_jumps,
        duplicates,
        failures,
        dead_letters,
    })
}
