//! Kill points: every step of every flow killed right after each of its effects in turn, then
//! redelivered after its visibility timeout, must end exactly where a run without the kill ends.
//!
//! An effect is a write to Salesforce, Maxio AB, Maxio Core or WHMCS, a ledger write, or a queue
//! send ([`dealbridge_sandbox::kill`]). For each flow the suite runs it once cleanly, counting its
//! effects, then once per kill point on a fresh stack, the process dying right after that effect,
//! and compares what users can see: the records in AB (customers, subscriptions, components, price
//! points, allocations), Core (contracts) and WHMCS (orders, services, cancellation requests),
//! every field of the org's Accounts, Opportunities, Orders and order products, the messages
//! still waiting or dead-lettered on every queue, and the ledger's records (a doubled chain of
//! delayed messages dispatches once more per extra chain, even once both chains have ended). Instants are left out (a killed run ends
//! minutes later); everything else must be equal. The kill points are every effect but the
//! repeats of a round already killed (see [`kill_points`]): a crash between every pair of
//! consecutive effects of every step.
//!
//! The flows cover every step: the first sale through AB and Core (customer, price points,
//! subscription, Core link, and a Core link's deferred wait), the WHMCS provisioning of an Order,
//! the re-dispatch chain of a deal whose Order never comes, a renewal waiting for its day in
//! 15-minute hops, a CPQ amendment's allocation and another's price point move, a due
//! cancellation in AB and WHMCS and a withdrawn one, and the scheduled billing sync.

use std::collections::BTreeMap;

use dealbridge::delayed::OUTCOME_TARGET;
use dealbridge::queue::QueueName;
use dealbridge_sandbox::local::{CoreStart, LocalStack};
use dealbridge_sandbox::whmcs::ServiceStatus;
use serde_json::{Map, Value, json};

use crate::support::{record, run_deal, send_deal, update_opportunity};
use dealbridge_sandbox::chaos::WORKED;

#[derive(Debug, Clone, Copy)]
enum Flow {
    /// A won Opportunity billed in AB and linked to its Core contract.
    FirstSale,
    /// An approved Order provisioned in WHMCS.
    WhmcsOrder,
    /// A won Opportunity whose Order never comes: re-dispatched until it gives up.
    OrderNeverComes,
    /// A renewal due in under an hour, waiting on the delayed queue.
    RenewalOnItsDay,
    /// A CPQ amendment adding seats: one allocation.
    Amendment,
    /// A due cancellation of an AB deal and of a WHMCS deal.
    Cancellation,
    /// A first sale whose Core contract never syncs: the link waits on the delayed queue
    /// (deferred), then gives up.
    CoreNeverSyncs,
    /// The scheduled billing sync after AB put a subscription past due and WHMCS suspended a
    /// service.
    BillingSync,
    /// A CPQ amendment that moves a component to a price point at new tiers.
    Reprice,
    /// A cancellation at the period end, withdrawn by moving the stage back.
    Withdrawal,
}

const FLOWS: [Flow; 10] = [
    Flow::FirstSale,
    Flow::WhmcsOrder,
    Flow::OrderNeverComes,
    Flow::RenewalOnItsDay,
    Flow::Amendment,
    Flow::Cancellation,
    Flow::CoreNeverSyncs,
    Flow::BillingSync,
    Flow::Reprice,
    Flow::Withdrawal,
];

const CANCELLING: &str = "\u{25b3}Cancelling";

/// The worker queues but the delayed one: for a flow that leaves a wait of weeks behind it,
/// compared as a message waiting.
const NOT_DELAYED: [QueueName; 5] = [
    QueueName::MaxioCustomer,
    QueueName::MaxioPricePoints,
    QueueName::MaxioSubscription,
    QueueName::MaxioCoreLink,
    QueueName::WhmcsProvision,
];

async fn provision_order(stack: &LocalStack) {
    let event = serde_json::from_value(dealbridge_sandbox::events::sample(
        "platform-events-order-provision.json",
    ))
    .unwrap();
    dealbridge_platform_events::handle(event, &stack.platform_events)
        .await
        .unwrap();
}

impl Flow {
    async fn stack(self) -> LocalStack {
        match self {
            Flow::CoreNeverSyncs => {
                let stack = LocalStack::start_with_core(
                    &[],
                    CoreStart {
                        empty: true,
                        ..CoreStart::default()
                    },
                )
                .await
                .unwrap();
                stack.maxio_core.add_customer(json!({
                    "name": "Larkspur Analytics, Inc.",
                    "number": stack.id("VolumeAccount").to_string(),
                }));
                stack
            }
            _ => LocalStack::start().await.unwrap(),
        }
    }

    /// Runs the functions the flow needs until their queues are empty.
    async fn drain(self, stack: &LocalStack) {
        match self {
            Flow::BillingSync => stack.drain_billing_killing(500).await,
            Flow::Withdrawal => {
                stack.drain_killing(&NOT_DELAYED, 5_000).await;
            }
            _ => {
                stack.drain_killing(&WORKED, 5_000).await;
            }
        }
    }

    /// The deal's history before the kill switch is armed, and the trigger of the flow (the
    /// intake's or the Platform Event's dispatch: its caller retries it, so it is not killed).
    async fn setup(self, stack: &LocalStack) {
        match self {
            Flow::FirstSale => send_deal(stack, "VolumeOpportunity").await,
            Flow::WhmcsOrder => provision_order(stack).await,
            Flow::OrderNeverComes => send_deal(stack, "PendingOpportunity").await,
            Flow::RenewalOnItsDay => {
                run_deal(stack, "RenewSameOpportunity").await;
                // 50 minutes before the renewal's first day (2026-12-01).
                let due = chrono::DateTime::parse_from_rfc3339("2026-12-01T00:00:00Z")
                    .unwrap()
                    .timestamp();
                let wait = due - 50 * 60 - stack.clock_now();
                stack.advance(std::time::Duration::from_secs(wait.try_into().unwrap()));
                send_deal(stack, "RenewSameRenewOpportunity").await;
            }
            Flow::Amendment => {
                run_deal(stack, "AddSeatsOpportunity").await;
                send_deal(stack, "AddSeatsAmendOpportunity").await;
            }
            Flow::Cancellation => {
                run_deal(stack, "VolumeOpportunity").await;
                provision_order(stack).await;
                stack.drain(500).await;
                let now = chrono::DateTime::from_timestamp(stack.clock_now(), 0).unwrap();
                for deal in ["VolumeOpportunity", "InternetOpportunity"] {
                    update_opportunity(
                        stack,
                        deal,
                        json!({"StageName": CANCELLING, "ScheduledCancellationDateAndTime__c": now.to_rfc3339()}),
                    );
                    send_deal(stack, deal).await;
                }
            }
            Flow::CoreNeverSyncs => send_deal(stack, "VolumeOpportunity").await,
            Flow::Reprice => {
                run_deal(stack, "RepriceOpportunity").await;
                send_deal(stack, "RepriceAmendOpportunity").await;
            }
            Flow::Withdrawal => {
                run_deal(stack, "RemoveSeatsOpportunity").await;
                let sub: i64 = record(stack, "RemoveSeatsOpportunity")["Maxio_Subscription_Id__c"]
                    .as_str()
                    .and_then(|s| s.parse().ok())
                    .unwrap();
                let end = stack.maxio_ab.subscription(sub).unwrap()["current_period_ends_at"]
                    .as_str()
                    .unwrap()
                    .to_string();
                update_opportunity(
                    stack,
                    "RemoveSeatsOpportunity",
                    json!({"StageName": CANCELLING, "ScheduledCancellationDateAndTime__c": end}),
                );
                send_deal(stack, "RemoveSeatsOpportunity").await;
                stack.drain_queues(&NOT_DELAYED, 500).await;
                update_opportunity(
                    stack,
                    "RemoveSeatsOpportunity",
                    json!({"StageName": "Active"}),
                );
                stack.advance(std::time::Duration::from_secs(600));
                send_deal(stack, "RemoveSeatsOpportunity").await;
            }
            Flow::BillingSync => {
                run_deal(stack, "VolumeOpportunity").await;
                provision_order(stack).await;
                stack.drain(500).await;
                let sub = record(stack, "VolumeOpportunity")["Maxio_Subscription_Id__c"]
                    .as_str()
                    .and_then(|s| s.parse().ok())
                    .unwrap();
                stack.maxio_ab.set_state(sub, "past_due").unwrap();
                let service = stack.whmcs.services()[0].id;
                stack
                    .whmcs
                    .set_service_status(service, ServiceStatus::Suspended);
                let now = chrono::DateTime::from_timestamp(stack.clock_now(), 0).unwrap();
                stack.billing.schedule(now).await.unwrap();
            }
        }
    }
}

/// Whether a value is an instant (RFC 3339, or WHMCS's `Y-m-d H:i:s`): left out of comparisons.
fn is_instant(v: &Value) -> bool {
    v.as_str().is_some_and(|s| {
        chrono::DateTime::parse_from_rfc3339(s).is_ok()
            || chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").is_ok()
            || chrono::DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z").is_ok()
    })
}

/// `v` without its instants and the keys that name one (`..._at`).
fn without_instants(v: &Value) -> Value {
    match v {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, v)| !k.ends_with("_at") && !is_instant(v))
                .map(|(k, v)| (k.clone(), without_instants(v)))
                .collect::<Map<String, Value>>(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(without_instants).collect()),
        other => other.clone(),
    }
}

/// What users can see once a flow has run, by a stable key.
fn world(stack: &LocalStack) -> BTreeMap<String, String> {
    let mut seen = BTreeMap::new();
    let mut put = |key: String, value: Value| {
        seen.insert(key, without_instants(&value).to_string());
    };
    for (site, ab) in [("default", &stack.maxio_ab), ("uk", &stack.maxio_ab_uk)] {
        for c in ab.customers() {
            put(format!("ab {site} customer {}", c["id"]), c);
        }
        for s in ab.subscriptions() {
            let id = s["id"].as_i64().unwrap_or_default();
            put(format!("ab {site} subscription {id}"), s);
            for c in ab.subscription_components(id) {
                put(
                    format!(
                        "ab {site} subscription {id} component {}",
                        c["component_id"]
                    ),
                    c,
                );
            }
            let allocations: Vec<Value> = ab.allocations(id);
            put(
                format!("ab {site} subscription {id} allocations"),
                Value::Array(allocations),
            );
        }
        for p in ab.price_points() {
            put(format!("ab {site} price point {}", p["id"]), p);
        }
    }
    for c in stack.maxio_core.contracts() {
        put(format!("core contract {}", c["id"]), c);
    }
    for o in stack.whmcs.orders() {
        let lines: Vec<Value> = o
            .lines
            .iter()
            .map(|l| {
                json!([
                    l.pid,
                    l.qty,
                    l.service_id,
                    format!("{:?}", l.service_status)
                ])
            })
            .collect();
        put(
            format!("whmcs order {}", o.id),
            json!({"client": o.client_id, "status": format!("{:?}", o.status), "lines": lines}),
        );
    }
    for s in stack.whmcs.services() {
        put(
            format!("whmcs service {}", s.id),
            json!({"order": s.order_id, "status": format!("{:?}", s.status), "next_due": s.next_due, "terminated": s.termination_date}),
        );
    }
    for r in stack.whmcs.cancel_requests() {
        put(
            format!("whmcs cancel request for service {}", r.service_id),
            json!({"kind": format!("{:?}", r.kind), "processed": r.processed_at.is_some()}),
        );
    }
    stack.salesforce.with_org(|org| {
        for sobject in ["Account", "Opportunity", "Order", "OrderItem"] {
            for r in org.records(sobject) {
                let id = r.get("Id").and_then(Value::as_str).unwrap_or("?");
                let fields: Map<String, Value> = r
                    .iter()
                    .filter(|(k, _)| !matches!(k.as_str(), "LastModifiedDate" | "SystemModstamp"))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                put(format!("salesforce {sobject} {id}"), Value::Object(fields));
            }
        }
    });
    // The ledger's records of the steps it guards, by deal and kind of step: the WHMCS
    // provisioning with the ids it recorded (what exactly-once rests on), the allocations, and
    // what each delayed message did: a chain that doubled dispatches once more per extra chain,
    // even once both chains have ended. (How many hops a long wait takes depends on when each hop
    // was handled, and a killed hop is handled minutes late: hops are not compared, nor the
    // repeats a kill leaves that stop without doing anything. The other steps only note what
    // their last run did, for the audit trail.)
    let mut steps: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in stack.ledger.records() {
        let kind = r
            .step
            .split([':', ' '])
            .next()
            .unwrap_or_default()
            .to_string();
        let outcome = r.target(OUTCOME_TARGET).unwrap_or_default();
        let said = match kind.as_str() {
            "whmcs-provision" => format!("{:?} {:?}", r.status, r.targets),
            "maxio-allocation" | "scheduled-dispatch" => format!("{:?}", r.status),
            "delayed-message" if !matches!(outcome, "delayed again" | "skipped") => {
                format!("{:?} {outcome}", r.status)
            }
            _ => continue,
        };
        steps
            .entry(format!(
                "ledger {} {}",
                r.deal_id,
                r.step.split(':').next().unwrap_or_default()
            ))
            .or_default()
            .push(said);
    }
    for (key, mut statuses) in steps {
        statuses.sort();
        put(key, json!(statuses));
    }
    for q in QueueName::ALL {
        put(
            format!("queue {}", q.as_str()),
            json!({"waiting": stack.queue.depth(q), "dead letters": stack.queue.dead_letters(q).len()}),
        );
    }
    seen
}

/// The keys whose values differ, with both values (of an object, the fields that differ).
fn differences(clean: &BTreeMap<String, String>, killed: &BTreeMap<String, String>) -> Vec<String> {
    let keys: std::collections::BTreeSet<&String> = clean.keys().chain(killed.keys()).collect();
    let parse = |v: Option<&String>| v.and_then(|v| serde_json::from_str::<Value>(v).ok());
    keys.into_iter()
        .filter(|k| clean.get(*k) != killed.get(*k))
        .map(|k| match (parse(clean.get(k)), parse(killed.get(k))) {
            (Some(Value::Object(a)), Some(Value::Object(b))) => {
                let fields: std::collections::BTreeSet<&String> =
                    a.keys().chain(b.keys()).collect();
                let differ: Vec<String> = fields
                    .into_iter()
                    .filter(|f| a.get(*f) != b.get(*f))
                    .map(|f| {
                        format!(
                            "{f}: clean {} / killed {}",
                            a.get(f).unwrap_or(&Value::Null),
                            b.get(f).unwrap_or(&Value::Null)
                        )
                    })
                    .collect();
                format!("{k}: {}", differ.join("; "))
            }
            _ => format!(
                "{k}: clean {} / killed {}",
                clean.get(k).map_or("(none)", String::as_str),
                killed.get(k).map_or("(none)", String::as_str)
            ),
        })
        .collect()
}

/// `effect` without the names that differ between repeats of one step (a delayed message's
/// name, ids in a ledger step).
fn kind_of(effect: &str) -> String {
    effect
        .split(' ')
        .map(|word| match word.split_once(':') {
            Some((kind, _)) => kind,
            None if word.chars().any(|c| c.is_ascii_digit()) => "#",
            None => word,
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The effects to kill after: every one whose kind, between the kinds of its neighbours, has not
/// come yet. Every pair of consecutive effects of every step is split by a kill once; a wait that
/// repeats the same step (a delayed hop every 15 minutes, a Core link retried for hours) is
/// killed in its first rounds and at its end, not in every round.
fn kill_points(effects: &[String]) -> Vec<usize> {
    let kinds: Vec<String> = effects.iter().map(|e| kind_of(e)).collect();
    let mut seen = std::collections::BTreeSet::new();
    (0..effects.len())
        .filter(|&i| {
            let before = i.checked_sub(1).map(|b| kinds[b].as_str());
            let after = kinds.get(i + 1).map(String::as_str);
            seen.insert((before, kinds[i].as_str(), after))
        })
        .collect()
}

/// Runs `flow` on a fresh stack, killed after effect `at` (`None`: not killed): the effects it
/// counted, whether the kill happened, and the world it left.
async fn run(flow: Flow, at: Option<usize>) -> (Vec<String>, bool, BTreeMap<String, String>) {
    let stack = flow.stack().await;
    flow.setup(&stack).await;
    stack.kill.arm(at);
    flow.drain(&stack).await;
    stack.kill.disarm();
    (stack.kill.effects(), stack.kill.fired(), world(&stack))
}

#[tokio::test]
async fn a_kill_after_any_effect_of_any_step_ends_as_a_clean_run() {
    let mut problems = Vec::new();
    let mut summary = Vec::new();
    for flow in FLOWS {
        let (effects, fired, clean) = run(flow, None).await;
        assert!(!fired);
        assert!(!effects.is_empty(), "{flow:?} had no effect");
        let points = kill_points(&effects);
        for &i in &points {
            let effect = &effects[i];
            let at = i + 1;
            let (_, fired, killed) = run(flow, Some(at)).await;
            if !fired {
                problems.push(format!(
                    "{flow:?}: effect {at} ({effect}) never came in the killed run"
                ));
                continue;
            }
            let differ = differences(&clean, &killed);
            if !differ.is_empty() {
                problems.push(format!(
                    "{flow:?} killed after effect {at} ({effect}):\n    {}",
                    differ.join("\n    ")
                ));
            }
        }
        summary.push(format!(
            "{flow:?}: {} effects, killed after {}: {}",
            effects.len(),
            points.len(),
            points
                .iter()
                .map(|&i| effects[i].as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    println!("kill points\n  {}", summary.join("\n  "));
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[tokio::test]
async fn the_clean_runs_end_as_the_flows_specify() {
    // The suite compares kills with clean runs: the clean runs must be right themselves.
    let stack = LocalStack::start().await.unwrap();
    Flow::Cancellation.setup(&stack).await;
    stack.drain_killing(&WORKED, 5_000).await;
    assert_eq!(
        record(&stack, "VolumeOpportunity")["Cancellation_Status__c"],
        "Cancelled"
    );
    assert_eq!(stack.whmcs.cancel_requests().len(), 3);
    let stack = LocalStack::start().await.unwrap();
    Flow::OrderNeverComes.setup(&stack).await;
    stack.drain_killing(&WORKED, 5_000).await;
    let opp = record(&stack, "PendingOpportunity");
    assert!(
        opp["Maxio_Sync_Error__c"]
            .as_str()
            .is_some_and(|e| e.starts_with("DISPATCH_NO_ORDER")),
        "{opp:?}"
    );
    let stack = Flow::CoreNeverSyncs.stack().await;
    Flow::CoreNeverSyncs.setup(&stack).await;
    Flow::CoreNeverSyncs.drain(&stack).await;
    let opp = record(&stack, "VolumeOpportunity");
    assert_eq!(opp["Maxio_Sync_Status__c"], "Synced");
    assert_ne!(opp["Maxio_Core_Link_Status__c"], "Linked", "{opp:?}");
    assert!(
        stack.queue.sent(QueueName::Delayed).len() > 1,
        "the link waited on the delayed queue"
    );
    let stack = Flow::BillingSync.stack().await;
    Flow::BillingSync.setup(&stack).await;
    Flow::BillingSync.drain(&stack).await;
    assert_eq!(
        record(&stack, "VolumeOpportunity")["Maxio_Billing_State__c"],
        "past_due"
    );
    assert_eq!(
        record(&stack, "InternetOrder")["WHMCS_Services_Status__c"],
        "Active (2), Suspended (1)"
    );
    let stack = Flow::Withdrawal.stack().await;
    Flow::Withdrawal.setup(&stack).await;
    Flow::Withdrawal.drain(&stack).await;
    assert_eq!(
        record(&stack, "RemoveSeatsOpportunity")["Cancellation_Status__c"],
        "Withdrawn"
    );
    let stack = Flow::Reprice.stack().await;
    Flow::Reprice.setup(&stack).await;
    Flow::Reprice.drain(&stack).await;
    assert_eq!(
        record(&stack, "RepriceAmendOpportunity")["Maxio_Sync_Status__c"],
        "Synced"
    );
    let stack = LocalStack::start().await.unwrap();
    Flow::RenewalOnItsDay.setup(&stack).await;
    stack.drain_killing(&WORKED, 5_000).await;
    assert_eq!(
        record(&stack, "RenewSameRenewOpportunity")["Maxio_Sync_Status__c"],
        "Synced"
    );
}
