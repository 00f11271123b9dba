//! The chaos suite's driver: the whole local stack with every external call failing at random
//! (seeded, so a seed replays exactly), every queue message delivered twice and in shuffled order
//! across queues and groups, and the worker "crashing" (its future dropped, its messages left
//! unacknowledged) right after an external effect. Then the invariants users care about are
//! checked: no duplicate in any system, every deal finished or dead-lettered with its error
//! visible in Salesforce, nothing left behind.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use rand::SeedableRng;
use rand::seq::SliceRandom;
use serde_json::{Map, Value, json};

use crate::events::{http_request, sample, with_signed_body};
use crate::local::LocalStack;
use crate::maxio_core::throttled;
use crate::observe::{ChaosPlan, ChaosStats, Fault};
use dealbridge::queue::{QueueName, Received};
use dealbridge::runner::{Ack, DrainHooks, DrainOptions, drain};

/// The queues the workers consume, the delayed one too.
pub const WORKED: [QueueName; 6] = [
    QueueName::Delayed,
    QueueName::MaxioCustomer,
    QueueName::MaxioPricePoints,
    QueueName::MaxioSubscription,
    QueueName::MaxioCoreLink,
    QueueName::WhmcsProvision,
];

/// The won Opportunities of the seed and how each ends without chaos. Amendments are sent with
/// their first sales, in any order: one that arrives first waits for its first sale. Renewals
/// from 2026-12-01 wait eleven days of 15-minute hops on the delayed queue; the amendment due
/// 2027-01-01 goes with the second phase ([`LATER_DEALS`]), so the CPQ cancellation from
/// 2026-12-01 is not backdated when it is sent.
const MAXIO_DEALS: [(&str, Expected); 39] = [
    ("VolumeOpportunity", Expected::Synced),
    ("GraduatedOpportunity", Expected::Synced),
    ("FlatFeeOpportunity", Expected::Synced),
    ("NoScheduleOpportunity", Expected::Synced),
    (
        "NoEmailOpportunity",
        Expected::Failed("MAXIO_NO_BILLING_EMAIL"),
    ),
    (
        "UnmappedOpportunity",
        Expected::Failed("MAXIO_UNMAPPED_PRODUCT"),
    ),
    ("PendingOpportunity", Expected::Failed("DISPATCH_NO_ORDER")),
    ("EuroOpportunity", Expected::Synced),
    ("SterlingOpportunity", Expected::Synced),
    (
        "YenOpportunity",
        Expected::Failed("MAXIO_CURRENCY_UNSUPPORTED"),
    ),
    ("SeatsOpportunity", Expected::Synced),
    (
        "SplitPriceOpportunity",
        Expected::Failed("MAXIO_SPLIT_PRICE"),
    ),
    ("FutureOpportunity", Expected::Synced),
    ("RepairOpportunity", Expected::Synced),
    (
        "AmendmentOpportunity",
        Expected::Applied("FlatFeeOpportunity", "support-seats", 30),
    ),
    (
        "RenewalOpportunity",
        Expected::Failed("RENEWAL_NOT_CONTIGUOUS"),
    ),
    ("AddSeatsOpportunity", Expected::Synced),
    (
        "AddSeatsAmendOpportunity",
        Expected::Applied("AddSeatsOpportunity", "support-seats", 15),
    ),
    ("RemoveSeatsOpportunity", Expected::Synced),
    (
        "RemoveSeatsAmendOpportunity",
        Expected::Applied("RemoveSeatsOpportunity", "support-seats", 20),
    ),
    ("AddProductOpportunity", Expected::Synced),
    (
        "AddProductAmendOpportunity",
        Expected::Applied("AddProductOpportunity", "premium-support", 1),
    ),
    ("RemoveProductOpportunity", Expected::Synced),
    (
        "RemoveProductAmendOpportunity",
        Expected::Applied("RemoveProductOpportunity", "premium-support", 0),
    ),
    ("RepriceOpportunity", Expected::Synced),
    (
        "RepriceAmendOpportunity",
        Expected::Applied("RepriceOpportunity", "support-seats", 25),
    ),
    ("OverRemovedOpportunity", Expected::Synced),
    (
        "OverRemovedAmendOpportunity",
        Expected::Failed("AMENDMENT_NEGATIVE_QUANTITY"),
    ),
    ("MixedPriceOpportunity", Expected::Synced),
    (
        "MixedPriceAmendOpportunity",
        Expected::Failed("AMENDMENT_SPLIT_PRICE"),
    ),
    // Renewals from 2026-12-01 (they wait on the delayed queue for their day).
    ("RenewSameOpportunity", Expected::Synced),
    (
        "RenewSameRenewOpportunity",
        Expected::Applied("RenewSameOpportunity", "support-seats", 10),
    ),
    ("RenewSeatsOpportunity", Expected::Synced),
    (
        "RenewSeatsRenewOpportunity",
        Expected::Applied("RenewSeatsOpportunity", "support-seats", 12),
    ),
    ("RenewUpliftOpportunity", Expected::Synced),
    (
        "RenewUpliftRenewOpportunity",
        Expected::Applied("RenewUpliftOpportunity", "support-seats", 25),
    ),
    // Cancelled by its CPQ amendment in the second phase.
    ("CancelAllOpportunity", Expected::Synced),
    // An amendment from 2027-01-01, sent in the second phase: six weeks of hops.
    ("FutureSeatsOpportunity", Expected::Synced),
    (
        "FutureSeatsAmendOpportunity",
        Expected::Applied("FutureSeatsOpportunity", "support-seats", 15),
    ),
];

/// Deals of [`MAXIO_DEALS`] sent with the second phase rather than the first.
const LATER_DEALS: [&str; 1] = ["FutureSeatsAmendOpportunity"];

/// How the second phase cancels a deal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CancelBy {
    /// The seed-001 stage, due now.
    StageNow,
    /// The seed-001 stage at the AB subscription's period end, weeks ahead: AB's delayed cancel,
    /// and a re-dispatch waiting on the delayed queue for the day.
    StageAtPeriodEnd,
    /// Its CPQ amendment to zero, sent as the seed has it.
    Amendment,
}

/// Deals cancelled once the first phase billed them: `(deal, the Opportunity whose stage and
/// billing follow the service, how)`. By the seed-001 stage due now (an AB subscription, and the
/// WHMCS services of the Internet Order) and at a future date (an AB subscription's period end),
/// and the seed's CPQ cancellation (an amendment taking its Contract to zero from 2026-12-01).
const CANCELLED_DEALS: [(&str, &str, CancelBy); 4] = [
    ("VolumeOpportunity", "VolumeOpportunity", CancelBy::StageNow),
    (
        "InternetOpportunity",
        "InternetOpportunity",
        CancelBy::StageNow,
    ),
    (
        "GraduatedOpportunity",
        "GraduatedOpportunity",
        CancelBy::StageAtPeriodEnd,
    ),
    (
        "CancelAllAmendOpportunity",
        "CancelAllOpportunity",
        CancelBy::Amendment,
    ),
];

/// Set to cancel at its period end in the second phase, then moved back to the stage it had
/// once AB holds the cancellation: AB's delayed cancel is withdrawn and the subscription bills on.
const WITHDRAWN_DEAL: &str = "SeatsOpportunity";

const CANCELLING: &str = "\u{25b3}Cancelling";
const CANCELLED: &str = "\u{25b3}Cancelled";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expected {
    Synced,
    Failed(&'static str),
    /// An amendment on the first sale's subscription: synced to it, the component at the
    /// quantity.
    Applied(&'static str, &'static str, i64),
}

fn salesforce_faults(route: &str) -> Vec<Fault> {
    let unavailable = Fault::json(
        503,
        json!([{"message": "Server temporarily unavailable", "errorCode": "SERVER_UNAVAILABLE"}]),
    );
    let mut faults = vec![
        unavailable,
        Fault::json(
            500,
            json!([{"message": "An unexpected error occurred", "errorCode": "UNKNOWN_EXCEPTION"}]),
        ),
    ];
    if route.starts_with("PATCH") {
        faults.push(Fault::json(
            400,
            json!([{"message": "unable to obtain exclusive access to this record", "errorCode": "UNABLE_TO_LOCK_ROW"}]),
        ));
    }
    faults
}

fn ab_faults(_: &str) -> Vec<Fault> {
    vec![
        Fault::json(500, json!({"errors": ["Internal Server Error"]})),
        Fault::json(502, json!({"errors": ["Bad Gateway"]})),
        Fault::json(429, json!({"errors": ["Too many requests"]})).header("Retry-After", "0"),
    ]
}

fn core_faults(_: &str) -> Vec<Fault> {
    vec![
        throttled(0),
        Fault::json(502, json!({"detail": "Bad Gateway"})),
    ]
}

fn whmcs_faults(_: &str) -> Vec<Fault> {
    vec![
        Fault::json(
            503,
            json!({"result": "error", "message": "Service Unavailable"}),
        ),
        Fault::json(
            500,
            json!({"result": "error", "message": "Internal Server Error"}),
        ),
    ]
}

/// What one seed did and found.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub seed: u64,
    pub deals: usize,
    pub chaos: ChaosStats,
    /// Deliveries beyond the first of each message (duplicates, retries, redeliveries after
    /// crashes).
    pub redeliveries: usize,
    pub dead_letters: usize,
    pub duplicates: usize,
    /// Every broken invariant, in words.
    pub problems: Vec<String>,
}

impl Summary {
    pub fn header() -> String {
        format!(
            "{:>6} {:>6} {:>9} {:>8} {:>6} {:>8} {:>8} {:>5} {:>11}",
            "seed",
            "deals",
            "requests",
            "failures",
            "lost",
            "crashes",
            "redeliv.",
            "DLQ",
            "duplicates"
        )
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:>6} {:>6} {:>9} {:>8} {:>6} {:>8} {:>8} {:>5} {:>11}",
            self.seed,
            self.deals,
            self.chaos.requests,
            self.chaos.failures,
            self.chaos.lost_answers,
            self.chaos.crashes,
            self.redeliveries,
            self.dead_letters,
            self.duplicates
        )
    }
}

/// One seeded run over the whole local stack.
pub struct ChaosRun {
    pub seed: u64,
    pub stack: LocalStack,
    pub plan: ChaosPlan,
    rng: rand::rngs::StdRng,
    /// Messages already delivered once and acknowledged (they come back once more).
    duplicated: HashSet<String>,
    redeliveries: usize,
    /// The deals the second phase asked to cancel (those the first phase billed).
    cancelled: Vec<&'static str>,
    /// The stage [`WITHDRAWN_DEAL`] had and went back to, once the second phase set it to cancel.
    withdrawn: Option<String>,
}

impl ChaosRun {
    /// A fresh stack whose fakes fail a `rate` share of requests.
    pub async fn start(seed: u64, rate: f64) -> anyhow::Result<ChaosRun> {
        let stack = LocalStack::start().await?;
        stack.seed_broken_subscription().await?;
        let plan = ChaosPlan::new(seed, rate);
        stack
            .salesforce
            .observer()
            .set_chaos(plan.clone(), salesforce_faults);
        stack.maxio_ab.observer().set_chaos(plan.clone(), ab_faults);
        stack
            .maxio_ab_uk
            .observer()
            .set_chaos(plan.clone(), ab_faults);
        stack
            .maxio_core
            .observer()
            .set_chaos(plan.clone(), core_faults);
        stack.whmcs.observer().set_chaos(plan.clone(), whmcs_faults);
        Ok(ChaosRun {
            seed,
            stack,
            plan,
            rng: rand::rngs::StdRng::seed_from_u64(seed ^ 0x5eed),
            duplicated: HashSet::new(),
            redeliveries: 0,
            cancelled: Vec::new(),
            withdrawn: None,
        })
    }

    /// Sends every deal the way Salesforce does (each twice, as Outbound Messages and Event
    /// Relay deliver at least once; again after any 5xx, as Salesforce retries), then runs the
    /// workers until every queue is empty.
    pub async fn run(&mut self) -> Summary {
        let mut problems = Vec::new();
        // Intake has no effect to crash after; its failures are Salesforce's to retry.
        self.plan.set_crashes(false);
        for (deal, _) in MAXIO_DEALS {
            if LATER_DEALS.contains(&deal) {
                continue;
            }
            for _ in 0..2 {
                if let Err(p) = self.send_deal(deal).await {
                    problems.push(p);
                }
            }
        }
        for _ in 0..2 {
            if let Err(p) = self.send_order_event().await {
                problems.push(p);
            }
        }
        self.plan.set_crashes(true);
        self.drain(20_000).await;
        problems.extend(self.cancel_billed().await);
        let mut summary = self.check();
        summary.problems.splice(0..0, problems);
        summary
    }

    async fn send_deal(&self, reference: &str) -> Result<(), String> {
        let id = self.stack.id(reference).to_string();
        let body = json!({"opportunityId": id}).to_string();
        for _ in 0..50 {
            let event = with_signed_body(
                &sample("intake-http-api-deal.json"),
                &body,
                self.stack.clock_now(),
            );
            let response =
                dealbridge_intake::handle(http_request(&event), &self.stack.intake).await;
            let status = response.status().as_u16();
            match status {
                200..=299 => return Ok(()),
                500..=599 => continue,
                other => {
                    return Err(format!(
                        "intake answered {other} for {reference}: {}",
                        String::from_utf8_lossy(response.body().as_ref())
                    ));
                }
            }
        }
        Err(format!("intake never accepted {reference}"))
    }

    /// The second phase: a person sets the billed deals to `△Cancelling` (due now, or at the AB
    /// subscription's period end) and one more at its period end that is moved back once AB holds
    /// the cancellation; each is sent twice with the CPQ cancellation and the later deals, the
    /// workers run under the same chaos, and a day after everything was due (after WHMCS's cron)
    /// each cancellation is sent again, as the reconciler does for a due cancellation.
    async fn cancel_billed(&mut self) -> Vec<String> {
        let mut problems = Vec::new();
        let now = chrono::DateTime::from_timestamp(self.stack.clock_now(), 0).unwrap_or_default();
        let now = now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        for (deal, billing, how) in CANCELLED_DEALS {
            if !is_billed(&self.record(billing)) {
                continue;
            }
            let at = match how {
                CancelBy::Amendment => {
                    self.cancelled.push(deal);
                    continue;
                }
                CancelBy::StageNow => now.clone(),
                CancelBy::StageAtPeriodEnd => match self.period_end(deal) {
                    Some(at) => at,
                    None => {
                        problems.push(format!("{deal}: AB has no period end for its subscription"));
                        continue;
                    }
                },
            };
            match self.set_stage(deal, CANCELLING, Some(&at)) {
                Ok(()) => self.cancelled.push(deal),
                Err(p) => problems.push(p),
            }
        }
        let withdrawn = self.record(WITHDRAWN_DEAL);
        if is_billed(&withdrawn)
            && let Some(at) = self.period_end(WITHDRAWN_DEAL)
        {
            let stage = withdrawn["StageName"].as_str().unwrap_or("").to_string();
            match self.set_stage(WITHDRAWN_DEAL, CANCELLING, Some(&at)) {
                Ok(()) => self.withdrawn = Some(stage),
                Err(p) => problems.push(p),
            }
        }

        self.plan.set_crashes(false);
        let first: Vec<&str> = self
            .cancelled
            .iter()
            .copied()
            .chain(self.withdrawn.as_ref().map(|_| WITHDRAWN_DEAL))
            .chain(LATER_DEALS)
            .collect();
        for deal in first {
            for _ in 0..2 {
                if let Err(p) = self.send_deal(deal).await {
                    problems.push(p);
                }
            }
        }
        if let Some(stage) = self.withdrawn.clone() {
            // The workers (not the delayed queue) bring AB to the cancellation; then the stage
            // moves back before the day.
            self.plan.set_crashes(true);
            self.drain_queues(&WORKED[1..], 20_000).await;
            self.plan.set_crashes(false);
            if let Err(p) = self.set_stage(WITHDRAWN_DEAL, &stage, None) {
                problems.push(p);
            }
            for _ in 0..2 {
                if let Err(p) = self.send_deal(WITHDRAWN_DEAL).await {
                    problems.push(p);
                }
            }
        }
        self.plan.set_crashes(true);
        self.drain(50_000).await;
        // WHMCS's cron runs at midnight; past the FIFO deduplication window too.
        self.stack.advance(Duration::from_secs(86_400));
        self.plan.set_crashes(false);
        for deal in self.cancelled.clone() {
            if let Err(p) = self.send_deal(deal).await {
                problems.push(p);
            }
        }
        self.plan.set_crashes(true);
        self.drain(20_000).await;
        problems
    }

    /// Sets an Opportunity's stage (and its cancellation time, when given), as a person does.
    fn set_stage(&self, deal: &str, stage: &str, at: Option<&str>) -> Result<(), String> {
        let id = self.stack.id(deal).to_string();
        let mut fields = Map::new();
        fields.insert("StageName".into(), stage.into());
        if let Some(at) = at {
            fields.insert("ScheduledCancellationDateAndTime__c".into(), at.into());
        }
        self.stack
            .salesforce
            .with_org(|org| org.update(Some("Opportunity"), &id, &fields))
            .map(|_| ())
            .map_err(|e| format!("{deal}: could not set the stage {stage}: {e:?}"))
    }

    /// When the deal's AB subscription (default site) ends its current period.
    fn period_end(&self, deal: &str) -> Option<String> {
        let id = self.record(deal)["Maxio_Subscription_Id__c"]
            .as_str()?
            .parse()
            .ok()?;
        let subscription = self.stack.maxio_ab.subscription(id)?;
        Some(subscription["current_period_ends_at"].as_str()?.to_string())
    }

    async fn send_order_event(&self) -> Result<(), String> {
        for _ in 0..50 {
            let event = serde_json::from_value(sample("platform-events-order-provision.json"))
                .map_err(|e| e.to_string())?;
            match dealbridge_platform_events::handle(event, &self.stack.platform_events).await {
                Ok(_) => return Ok(()),
                // A failed invocation is retried by EventBridge.
                Err(dealbridge_platform_events::EventError::Dispatch(e)) if e.is_retryable() => {
                    continue;
                }
                Err(e) => return Err(format!("platform-events refused the order event: {e}")),
            }
        }
        Err("platform-events never took the order event".into())
    }

    /// Runs the workers with duplicate deliveries, shuffled order and crashes until nothing is
    /// left to do (moving virtual time instead of waiting).
    async fn drain(&mut self, max_rounds: usize) {
        self.drain_queues(&WORKED, max_rounds).await;
    }

    /// As [`ChaosRun::drain`], over `queues` only.
    async fn drain_queues(&mut self, queues: &[QueueName], max_rounds: usize) {
        let router = self.stack.router().only(queues);
        let mut hooks = Chaos {
            stack: &self.stack,
            plan: &self.plan,
            rng: &mut self.rng,
            duplicated: &mut self.duplicated,
            redeliveries: &mut self.redeliveries,
        };
        let options = DrainOptions {
            max_rounds,
            ..DrainOptions::default()
        };
        drain(&router, &self.stack.queue, &options, &mut hooks).await;
    }

    fn record(&self, reference: &str) -> Map<String, Value> {
        self.stack
            .salesforce
            .record(self.stack.id(reference).as_str())
            .unwrap_or_default()
    }

    /// The quantity of `handle` on the default site's subscription `subscription` (on/off: 1 or 0).
    fn component_quantity(&self, subscription: &str, handle: &str) -> Option<i64> {
        let ab = &self.stack.maxio_ab;
        let id = ab.component_id(handle)?;
        let c = ab
            .subscription_components(subscription.parse().ok()?)
            .into_iter()
            .find(|c| c["component_id"] == id)?;
        if c["kind"] == "on_off_component" {
            return Some(i64::from(c["enabled"] == true));
        }
        c["allocated_quantity"]
            .as_i64()
            .or_else(|| c["allocated_quantity"].as_str()?.parse().ok())
    }

    fn dead(&self, queue: QueueName) -> usize {
        self.stack.queue.dead_letters(queue).len()
    }

    /// The invariants, after the queues have drained.
    pub fn check(&self) -> Summary {
        let mut problems = Vec::new();
        let mut duplicates = 0;
        let mut count_dupes = |what: &str, keys: Vec<String>| {
            let mut seen: BTreeMap<String, usize> = BTreeMap::new();
            for k in keys {
                *seen.entry(k).or_default() += 1;
            }
            for (k, n) in seen {
                if n > 1 {
                    duplicates += n - 1;
                    problems.push(format!("{n} {what} for {k}"));
                }
            }
        };
        for (site, ab) in [
            ("default", &self.stack.maxio_ab),
            ("uk", &self.stack.maxio_ab_uk),
        ] {
            count_dupes(
                "AB customers",
                ab.customers()
                    .iter()
                    .map(|c| format!("{site}/{}", c["reference"].as_str().unwrap_or("?")))
                    .collect(),
            );
            let subscriptions = ab.subscriptions();
            count_dupes(
                "AB subscriptions",
                subscriptions
                    .iter()
                    .map(|s| format!("{site}/{}", s["reference"].as_str().unwrap_or("?")))
                    .collect(),
            );
            count_dupes(
                "AB price points",
                ab.price_points()
                    .iter()
                    .filter(|p| p["type"] != "default")
                    .map(|p| {
                        format!(
                            "{site}/{}/{}",
                            p["component_id"],
                            p["handle"].as_str().unwrap_or("?")
                        )
                    })
                    .collect(),
            );
            // A repair sets each component once: a second allocation is a double charge.
            count_dupes(
                "AB allocations",
                subscriptions
                    .iter()
                    .filter_map(|s| s["id"].as_i64())
                    .flat_map(|id| ab.allocations(id))
                    .map(|a| format!("{site}/{}/{}", a["subscription_id"], a["component_id"]))
                    .collect(),
            );
        }
        count_dupes(
            "WHMCS orders",
            self.stack
                .whmcs
                .orders()
                .iter()
                .map(|o| format!("client {}", o.client_id))
                .collect(),
        );
        count_dupes(
            "Core contracts linked",
            self.stack
                .maxio_core
                .contracts()
                .iter()
                .filter_map(|c| c["text_field2"].as_str().map(str::to_string))
                .filter(|v| !v.is_empty())
                .collect(),
        );

        for queue in WORKED {
            let depth = self.stack.queue.depth(queue);
            if depth > 0 {
                problems.push(format!("{depth} message(s) left on {queue}: lost work"));
            }
        }
        // Whether one of the deal's messages is in a dead-letter queue (the DLQ alarm fires).
        let dead_for = |deal: &str| {
            let id = self.stack.id(deal).to_string();
            WORKED.iter().any(|q| {
                self.stack
                    .queue
                    .dead_letters(*q)
                    .iter()
                    .any(|body| body.contains(id.as_str()))
            })
        };
        for (deal, expected) in MAXIO_DEALS {
            let opp = self.record(deal);
            let status = opp["Maxio_Sync_Status__c"].as_str().unwrap_or("");
            let error = opp["Maxio_Sync_Error__c"].as_str().unwrap_or("");
            match expected {
                Expected::Synced if status == "Synced" => {
                    let link = opp["Maxio_Core_Link_Status__c"].as_str().unwrap_or("");
                    let subscription = opp["Maxio_Subscription_Id__c"].as_str().unwrap_or("");
                    let linked = self
                        .stack
                        .maxio_core
                        .contracts()
                        .iter()
                        .any(|c| c["text_field2"] == subscription);
                    let visible_failure = link != "Linked" && dead_for(deal);
                    let done = link == "Linked" && linked;
                    if !done && !visible_failure {
                        problems.push(format!(
                            "{deal}: Core link {link:?}, contract linked: {linked}, and nothing in the link's dead-letter queue"
                        ));
                    }
                }
                Expected::Failed(code) if status == "Failed" && error.starts_with(code) => {}
                Expected::Applied(first, handle, quantity) if status == "Synced" => {
                    let subscription = opp["Maxio_Subscription_Id__c"].as_str().unwrap_or("");
                    // The first sale's subscription in AB (its Opportunity may show a failure
                    // Salesforce refused to record over).
                    let reference = self.stack.id(first).to_string();
                    let first_sale = self
                        .stack
                        .maxio_ab
                        .subscriptions()
                        .into_iter()
                        .find(|s| s["reference"] == reference.as_str())
                        .and_then(|s| s["id"].as_i64());
                    if first_sale.map(|id| id.to_string()).as_deref() != Some(subscription) {
                        problems.push(format!(
                            "{deal}: synced to subscription {subscription:?}, not its first sale's {first_sale:?}"
                        ));
                    }
                    let at = self.component_quantity(subscription, handle);
                    if at != Some(quantity) {
                        problems.push(format!(
                            "{deal}: {handle} is at {at:?} on subscription {subscription}, not {quantity}"
                        ));
                    }
                }
                // Chaos may defeat a deal: then one of its messages is in a dead-letter queue,
                // whose alarm makes it visible. Its error is on the record too, unless
                // Salesforce refused that last write as well (at a 0.6 fault rate it does).
                _ if dead_for(deal) => {}
                _ => problems.push(format!(
                    "{deal}: expected {expected:?}, Salesforce shows {status:?} {error:?}"
                )),
            }
        }
        let order = self.record("InternetOrder");
        let activation = order["Activation_Status__c"].as_str().unwrap_or("");
        let whmcs_orders = self.stack.whmcs.orders();
        match activation {
            "Provisioned" => {
                let id = order["WHMCS_Order_Id__c"]
                    .as_f64()
                    .map(|f| f as u64)
                    .or_else(|| {
                        order["WHMCS_Order_Id__c"]
                            .as_str()
                            .and_then(|s| s.parse().ok())
                    });
                if !whmcs_orders.iter().any(|o| Some(o.id) == id) {
                    problems.push(format!(
                        "InternetOrder shows WHMCS order {id:?}, which WHMCS does not have"
                    ));
                }
            }
            "Failed"
                if self.dead(QueueName::WhmcsProvision) > 0
                    && order["Activation_Error__c"].is_string() => {}
            // As for the Maxio deals: defeated, its message is in the dead-letter queue (whose
            // alarm makes it visible), and Salesforce refused the last write of its error too.
            _ if self.dead(QueueName::WhmcsProvision) > 0 => {}
            other => problems.push(format!(
                "InternetOrder ends {other:?} ({:?}) and is not in the dead-letter queue",
                order["Activation_Error__c"]
            )),
        }
        problems.extend(self.check_cancellations());
        Summary {
            seed: self.seed,
            deals: MAXIO_DEALS.len() + 1,
            chaos: self.plan.stats(),
            redeliveries: self.redeliveries,
            dead_letters: WORKED.iter().map(|q| self.dead(*q)).sum(),
            duplicates,
            problems,
        }
    }
}

/// Whether the Opportunity shows an AB subscription id or a WHMCS service id.
fn is_billed(opp: &Map<String, Value>) -> bool {
    ["Maxio_Subscription_Id__c", "WHMCS_Service_ID__c"]
        .iter()
        .any(|f| match opp.get(*f) {
            Some(Value::String(v)) => !v.is_empty(),
            Some(Value::Number(_)) => true,
            _ => false,
        })
}

impl ChaosRun {
    /// The deals the second phase asked to cancel.
    pub fn cancelled(&self) -> &[&'static str] {
        &self.cancelled
    }

    /// Every cancelled deal shows `Cancelled` (and its billed Opportunity `△Cancelled`) with AB
    /// and WHMCS agreeing, or has
    /// a cancellation message in a dead-letter queue; WHMCS holds one request per service.
    fn check_cancellations(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let mut requests: BTreeMap<u64, usize> = BTreeMap::new();
        for r in self.stack.whmcs.cancel_requests() {
            *requests.entry(r.service_id).or_default() += 1;
        }
        for (service, n) in requests {
            if n > 1 {
                problems.push(format!(
                    "{n} WHMCS cancellation requests for service {service}"
                ));
            }
        }
        for deal in &self.cancelled {
            let opp = self.record(deal);
            let billing = CANCELLED_DEALS
                .iter()
                .find(|(d, _, _)| d == deal)
                .map_or(*deal, |(_, b, _)| *b);
            let billed = self.record(billing);
            let status = opp["Cancellation_Status__c"].as_str().unwrap_or("");
            let stage = billed["StageName"].as_str().unwrap_or("");
            let cancel_dead = {
                let id = self.stack.id(deal).to_string();
                [QueueName::MaxioSubscription, QueueName::WhmcsProvision]
                    .iter()
                    .any(|q| {
                        self.stack
                            .queue
                            .dead_letters(*q)
                            .iter()
                            .any(|b| b.contains(id.as_str()) && b.contains("-cancel"))
                    })
            };
            if status == "Cancelled" && stage == CANCELLED {
                let subscription = billed["Maxio_Subscription_Id__c"]
                    .as_str()
                    .and_then(|s| s.parse::<i64>().ok());
                if let Some(sub) = subscription {
                    let state = self
                        .stack
                        .maxio_ab
                        .subscription(sub)
                        .map(|s| s["state"].clone())
                        .unwrap_or_default();
                    if state != "canceled" {
                        problems.push(format!(
                            "{deal}: shown cancelled, but AB subscription {sub} is {state}"
                        ));
                    }
                }
                continue;
            }
            if cancel_dead {
                continue;
            }
            problems.push(format!(
                "{deal}: cancellation ends {status:?} at stage {stage:?} ({:?}) and is not in a dead-letter queue",
                opp.get("Cancellation_Error__c")
            ));
        }
        if let Some(stage) = &self.withdrawn {
            problems.extend(self.check_withdrawn(stage));
        }
        problems
    }

    /// The deal moved back before its cancellation: `Withdrawn` at the stage it went back to,
    /// with AB's subscription active and no cancellation pending, or a cancellation message in a
    /// dead-letter queue.
    fn check_withdrawn(&self, stage: &str) -> Vec<String> {
        let deal = WITHDRAWN_DEAL;
        let opp = self.record(deal);
        let id = self.stack.id(deal).to_string();
        let dead = WORKED.iter().any(|q| {
            self.stack.queue.dead_letters(*q).iter().any(|b| {
                b.contains(id.as_str()) && (b.contains("-cancel") || b.contains("\"dispatch\""))
            })
        });
        if dead {
            return Vec::new();
        }
        let mut problems = Vec::new();
        let status = opp["Cancellation_Status__c"].as_str().unwrap_or("");
        let now = opp["StageName"].as_str().unwrap_or("");
        if (status, now) != ("Withdrawn", stage) {
            problems.push(format!(
                "{deal}: moved back to {stage:?}, shows {status:?} at {now:?} ({:?}) and is not in a dead-letter queue",
                opp.get("Cancellation_Error__c")
            ));
        }
        let subscription = opp["Maxio_Subscription_Id__c"]
            .as_str()
            .and_then(|s| s.parse::<i64>().ok())
            .and_then(|sub| self.stack.maxio_ab.subscription(sub));
        match subscription {
            Some(s) if s["state"] == "active" && s["cancel_at_end_of_period"] != true => {}
            Some(s) => problems.push(format!(
                "{deal}: moved back, but AB subscription {} is {} (cancel at period end: {})",
                s["id"], s["state"], s["cancel_at_end_of_period"]
            )),
            None => problems.push(format!("{deal}: AB has no subscription for it")),
        }
        problems
    }

    /// The stage the withdrawn deal went back to, if the second phase set it to cancel.
    pub fn withdrawn(&self) -> Option<&str> {
        self.withdrawn.as_deref()
    }
}

/// The chaos a drain runs under: queues served in a random order, standard-queue batches
/// shuffled, the process dying right after an effect, every acknowledgement lost once.
struct Chaos<'a> {
    stack: &'a LocalStack,
    plan: &'a ChaosPlan,
    rng: &'a mut rand::rngs::StdRng,
    duplicated: &'a mut HashSet<String>,
    redeliveries: &'a mut usize,
}

impl DrainHooks for Chaos<'_> {
    fn order(&mut self, queues: &mut [QueueName]) {
        queues.shuffle(self.rng);
    }

    fn batch(&mut self, queue: QueueName, batch: &mut [Received]) {
        if !queue.is_fifo() {
            batch.shuffle(self.rng);
        }
        *self.redeliveries += batch.iter().filter(|r| r.receive_count > 1).count();
    }

    fn interrupted(&mut self) -> Option<Pin<Box<dyn Future<Output = ()> + Send + '_>>> {
        // The process died: nothing was acknowledged; SQS hands the messages out again after
        // their visibility timeout.
        Some(Box::pin(self.plan.crashed()))
    }

    fn acknowledge(&mut self, _queue: QueueName, received: &Received) -> Ack {
        if self.duplicated.insert(received.message_id.clone()) {
            // At-least-once: this acknowledgement is "lost", the message comes back.
            Ack::Release
        } else {
            Ack::Delete
        }
    }

    fn advance(&mut self, by: Duration) -> bool {
        self.stack.advance(by);
        true
    }
}
