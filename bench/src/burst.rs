//! A burst of won deals handled by workers running concurrently, as Lambda runs them: several
//! tasks per queue, each taking a batch of up to 10 messages and handing it to the same handler
//! `LocalStack::run_batch` uses, on a multi-thread runtime. The Maxio AB workers' concurrency is
//! the template's reserved concurrency (1, 2, 1: at most 4 AB requests in flight, AB's limit per
//! site).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use dealbridge::queue::QueueName;
use dealbridge::salesforce::SfId;
use dealbridge_sandbox::local::LocalStack;
use serde_json::{Value, json};
use tokio::sync::Mutex;

use crate::calls::{Calls, count};
use crate::clones::load_copies;
use crate::deals::{Trigger, clear_logs, sample_event, send, set_latency, warm_up};

/// How many function instances consume each queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Concurrency {
    pub name: &'static str,
    pub workers: Vec<(QueueName, usize)>,
}

impl Concurrency {
    /// The template: reserved concurrency 1 / 2 / 1 for the AB workers, 1 for the Core link,
    /// the delayed queue's maximum concurrency 2, WHMCS unreserved (4 here; no WHMCS deal in
    /// the burst).
    pub fn template() -> Concurrency {
        Concurrency {
            name: "template (customer 1, price points 2, subscription 1, Core link 1)",
            workers: vec![
                (QueueName::MaxioCustomer, 1),
                (QueueName::MaxioPricePoints, 2),
                (QueueName::MaxioSubscription, 1),
                (QueueName::MaxioCoreLink, 1),
                (QueueName::WhmcsProvision, 4),
                (QueueName::Delayed, 2),
            ],
        }
    }

    /// AB's 4 slots split by the calls each step makes (2, 2, 3), and a Core link as wide as
    /// AB: what the burst would take with the reserved concurrency changed (not deployed).
    pub fn balanced() -> Concurrency {
        Concurrency {
            name: "alternative (customer 1, price points 1, subscription 2, Core link 4)",
            workers: vec![
                (QueueName::MaxioCustomer, 1),
                (QueueName::MaxioPricePoints, 1),
                (QueueName::MaxioSubscription, 2),
                (QueueName::MaxioCoreLink, 4),
                (QueueName::WhmcsProvision, 4),
                (QueueName::Delayed, 2),
            ],
        }
    }

    /// Instances consuming `queue`.
    pub fn of(&self, queue: QueueName) -> usize {
        self.workers
            .iter()
            .find(|(q, _)| *q == queue)
            .map_or(0, |(_, n)| *n)
    }

    /// Maxio AB requests that can be in flight at once (the three AB workers handle a batch's
    /// records one after the other, one request at a time).
    pub fn ab_slots(&self) -> usize {
        self.of(QueueName::MaxioCustomer)
            + self.of(QueueName::MaxioPricePoints)
            + self.of(QueueName::MaxioSubscription)
    }
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

/// Loads `deals` copies of the volume deal, with Core customers and contracts for them.
fn seed(stack: &LocalStack, deals: usize) -> anyhow::Result<Vec<(SfId, SfId)>> {
    let ids = load_copies(
        &stack.salesforce,
        "Volume",
        deals,
        &["Opportunity", "Account"],
    )?;
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
        let failed = stack.run_batch(queue, &batch).await;
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
) -> anyhow::Result<BurstResult> {
    let stack = LocalStack::start().await?;
    let ids = Arc::new(seed(&stack, deals)?);
    warm_up(&stack).await?;
    clear_logs(&stack);
    set_latency(&stack, latency);
    let stack = Arc::new(stack);
    let shared = Arc::new(Shared::default());
    let handled = Arc::new(Mutex::new(BTreeMap::new()));
    let ab_done = Arc::new(Mutex::new(None));

    let started = Instant::now();
    let mut workers = Vec::new();
    for (queue, n) in &concurrency.workers {
        for _ in 0..*n {
            workers.push(tokio::spawn(worker(
                stack.clone(),
                shared.clone(),
                *queue,
                handled.clone(),
                ab_done.clone(),
            )));
        }
    }
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

    let ab_phase = ab_done
        .lock()
        .await
        .map_or(Duration::ZERO, |t| t.saturating_duration_since(started));
    let calls = count(&stack);
    let handled = handled.lock().await.clone();
    let (duplicates, failures) = audit(&stack, &ids);
    let dead_letters = QueueName::ALL
        .iter()
        .map(|q| stack.queue.dead_letters(*q).len())
        .sum();
    Ok(BurstResult {
        deals,
        concurrency,
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
