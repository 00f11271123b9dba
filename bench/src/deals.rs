//! The seeded deals the benchmark sends, how each is sent, and the fewest external calls its flow
//! needs.

use std::time::Duration;

use anyhow::{Context, bail};
use dealbridge::salesforce::SfId;
use dealbridge_sandbox::events::{events_dir, with_signed_body};
use dealbridge_sandbox::local::LocalStack;
use serde_json::{Value, json};

/// How Salesforce hands the deal to dealbridge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// A won Opportunity (Apex callout `{"opportunityId"}`): the Maxio chain.
    Opportunity,
    /// An approved Order (`{"orderId"}`, as its approval sends it): WHMCS provisioning.
    Order,
}

/// The fewest calls the deal's flow can make, per system, with a warm Salesforce token and
/// warm per-process caches (the AB component catalog).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Minimum {
    pub sf_reads: usize,
    pub sf_writes: usize,
    pub ab: usize,
    pub core: usize,
    pub whmcs: usize,
}

impl Minimum {
    /// Every one of these calls waits for the one before it (each needs the previous answer, or
    /// is the next step's input), so the critical path is their sum.
    pub fn critical_path(&self) -> usize {
        self.sf_reads + self.sf_writes + self.ab + self.core + self.whmcs
    }
}

/// One kind of seeded deal.
#[derive(Debug, Clone)]
pub struct DealKind {
    /// Short name used in the tables.
    pub name: &'static str,
    /// What it is.
    pub description: &'static str,
    /// The `referenceId` of the record sent (an Opportunity or an Order).
    pub record: &'static str,
    pub trigger: Trigger,
    /// How it is expected to end: the Opportunity's `Maxio_Sync_Status__c`, or the Order's
    /// `WHMCS_Order_Id__c` being set.
    pub expect: Expect,
    pub minimum: Minimum,
    /// Why the minimum is what it is, per system.
    pub why: &'static str,
    /// Whether its end-to-end latency is measured (not for a deal that waits on virtual time).
    pub timed: bool,
    /// A deal billed first, whose calls are not counted (an amendment's first sale).
    pub after: Option<&'static str>,
}

/// How a deal is expected to end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// `Maxio_Sync_Status__c` on the Opportunity.
    MaxioStatus(&'static str),
    /// The Order has a `WHMCS_Order_Id__c`.
    WhmcsOrder,
}

/// AB calls of a deal with `scheduled` custom-priced products: customer lookup + create, price
/// point lookup + create per scheduled product, subscription lookup + create + components read.
const fn ab_minimum(scheduled: usize) -> usize {
    2 + 2 * scheduled + 3
}

/// Maxio Core link: customer list (filtered by the Account Id), the customer's contracts, one
/// PATCH of the contract (its answer is the read-back).
const CORE_MINIMUM: usize = 3;

/// The seeded deals, in the order of `sandbox/data/salesforce/README.md`.
pub fn seeded() -> Vec<DealKind> {
    let maxio = |scheduled| Minimum {
        sf_reads: 1,
        sf_writes: 1,
        ab: ab_minimum(scheduled),
        core: CORE_MINIMUM,
        whmcs: 0,
    };
    let refused = Minimum {
        sf_reads: 1,
        sf_writes: 1,
        ..Minimum::default()
    };
    vec![
        DealKind {
            name: "volume",
            description: "Volume-priced usage (api-calls, 4 tiers) + flat platform fee",
            record: "VolumeOpportunity",
            trigger: Trigger::Opportunity,
            expect: Expect::MaxioStatus("Synced"),
            minimum: maxio(1),
            why: "1 scheduled product: 1 custom price point",
            timed: true,
            after: None,
        },
        DealKind {
            name: "graduated",
            description: "Graduated usage (storage-gb, Slab → tiered)",
            record: "GraduatedOpportunity",
            trigger: Trigger::Opportunity,
            expect: Expect::MaxioStatus("Synced"),
            minimum: maxio(1),
            why: "1 scheduled product: 1 custom price point",
            timed: true,
            after: None,
        },
        DealKind {
            name: "flat-fee",
            description: "Flat-fee tiers (support-seats ×25, FlatFee → stairstep)",
            record: "FlatFeeOpportunity",
            trigger: Trigger::Opportunity,
            expect: Expect::MaxioStatus("Synced"),
            minimum: maxio(1),
            why: "1 scheduled product: 1 custom price point",
            timed: true,
            after: None,
        },
        DealKind {
            name: "no-schedule",
            description: "A product without a consumption schedule (premium-support)",
            record: "NoScheduleOpportunity",
            trigger: Trigger::Opportunity,
            expect: Expect::MaxioStatus("Synced"),
            minimum: maxio(0),
            why: "no scheduled product: the component's default price point, no price point call",
            timed: true,
            after: None,
        },
        DealKind {
            name: "no-email",
            description: "No email anywhere: refused before any AB call",
            record: "NoEmailOpportunity",
            trigger: Trigger::Opportunity,
            expect: Expect::MaxioStatus("Failed"),
            minimum: refused,
            why: "the deal cannot be billed: load it, write MAXIO_NO_BILLING_EMAIL back",
            timed: true,
            after: None,
        },
        DealKind {
            name: "unmapped",
            description: "An unmapped product next to a mapped one: refused before any AB call",
            record: "UnmappedOpportunity",
            trigger: Trigger::Opportunity,
            expect: Expect::MaxioStatus("Failed"),
            minimum: refused,
            why: "the deal cannot be billed: load it, write MAXIO_UNMAPPED_PRODUCT back",
            timed: true,
            after: None,
        },
        DealKind {
            name: "whmcs-internet",
            description: "The approved internet Order (3 products) → WHMCS",
            record: "InternetOrder",
            trigger: Trigger::Order,
            expect: Expect::WhmcsOrder,
            minimum: Minimum {
                sf_reads: 1,
                sf_writes: 1,
                whmcs: 4,
                ..Minimum::default()
            },
            why: "WHMCS: GetClientsDetails (the client's currency must be the Order's) + GetOrders (the ledger guard's baseline, so a lost AddOrder answer can be reconciled) + AddOrder + AcceptOrder",
            timed: true,
            after: None,
        },
        DealKind {
            name: "amendment",
            description: "A CPQ amendment: +5 support seats on the first sale's 10 (deal 18)",
            record: "AddSeatsAmendOpportunity",
            trigger: Trigger::Opportunity,
            expect: Expect::MaxioStatus("Synced"),
            minimum: Minimum {
                sf_reads: 2,
                sf_writes: 1,
                ab: 5,
                ..Minimum::default()
            },
            why: "Salesforce: the deal and the Contract's history (two Composite calls). AB: customer lookup, subscription lookup, components read, one allocation (the new total), components read back; nothing created, no Core link (the first sale made it). Counted after the first sale was billed in the same process, so cold and warm are alike",
            timed: true,
            after: Some("AddSeatsOpportunity"),
        },
        DealKind {
            name: "no-order-yet",
            description: "Won, but CPQ never creates the Order: re-dispatched, then given up",
            record: "PendingOpportunity",
            trigger: Trigger::Opportunity,
            expect: Expect::MaxioStatus("Failed"),
            minimum: Minimum {
                sf_reads: 8,
                sf_writes: 1,
                ..Minimum::default()
            },
            why: "one load per dispatch while waiting for CPQ, 8 dispatches by RedispatchPolicy (1 min doubling to 15 min), then the reason written back",
            timed: false,
            after: None,
        },
    ]
}

/// Reads a sample event of `events/`.
pub fn sample_event(name: &str) -> anyhow::Result<Value> {
    let path = events_dir().join(name);
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

/// The signed Apex callout (HTTP API event) that sends `id`, signed at `now` (Unix seconds).
pub fn intake_event(
    template: &Value,
    trigger: Trigger,
    id: &SfId,
    correlation: &str,
    now: i64,
) -> Value {
    let field = match trigger {
        Trigger::Opportunity => "opportunityId",
        Trigger::Order => "orderId",
    };
    let body = json!({ field: id.as_str(), "correlationId": correlation }).to_string();
    with_signed_body(template, &body, now)
}

/// Sends the deal through the intake handler as Salesforce would; errors unless it is accepted.
pub async fn send(
    stack: &LocalStack,
    template: &Value,
    trigger: Trigger,
    id: &SfId,
    correlation: &str,
) -> anyhow::Result<()> {
    let event = intake_event(template, trigger, id, correlation, stack.clock_now());
    let request = lambda_http::request::from_str(&event.to_string())
        .map_err(|e| anyhow::anyhow!("not an API Gateway event: {e}"))?;
    let response = dealbridge_intake::handle(request, &stack.intake).await;
    if response.status() != 202 {
        bail!(
            "the intake answered {} for {id}: {}",
            response.status(),
            String::from_utf8_lossy(response.body().as_ref())
        );
    }
    Ok(())
}

/// Every Maxio component the seeded catalog maps to.
pub const COMPONENTS: [&str; 5] = [
    "api-calls",
    "platform-fee",
    "storage-gb",
    "support-seats",
    "premium-support",
];

/// Makes the stack a warm container: the Salesforce session exists and the AB sites' currencies
/// and component catalog are cached, as after a function's first deal. Nothing is logged afterwards ([`clear_logs`]).
pub async fn warm_up(stack: &LocalStack) -> anyhow::Result<()> {
    stack
        .client
        .query("SELECT Id FROM Account LIMIT 1")
        .await
        .context("warming up the Salesforce session")?;
    for site in stack.maxio.sites.names() {
        let Some(site) = stack.maxio.sites.get(site) else {
            continue;
        };
        site.currencies()
            .await
            .with_context(|| format!("warming up AB site {}", site.name))?;
        for handle in COMPONENTS {
            site.ab
                .component(handle)
                .await
                .with_context(|| format!("warming up AB component {handle}"))?;
        }
        site.ab
            .product("monthly-usage")
            .await
            .context("warming up the AB product")?;
    }
    // Outside a batch nothing gives the warm-up's request slots back (the runner does at the end
    // of each batch): give them back, or they stay held for the whole burst.
    stack.maxio.sites.release_slots().await;
    clear_logs(stack);
    Ok(())
}

/// Forgets every request the fakes have seen.
pub fn clear_logs(stack: &LocalStack) {
    stack.salesforce.observer().clear_log();
    stack.maxio_ab.observer().clear_log();
    stack.maxio_ab_uk.observer().clear_log();
    stack.maxio_core.observer().clear_log();
    stack.whmcs.observer().clear_log();
}

/// Adds `latency` to every answer of every fake.
pub fn set_latency(stack: &LocalStack, latency: Duration) {
    stack.salesforce.observer().set_default_latency(latency);
    stack.maxio_ab.observer().set_default_latency(latency);
    stack.maxio_ab_uk.observer().set_default_latency(latency);
    stack.maxio_core.observer().set_default_latency(latency);
    stack.whmcs.observer().set_default_latency(latency);
}

/// Whether the deal ended as expected; the reason when not.
pub fn check_outcome(stack: &LocalStack, kind: &DealKind, id: &SfId) -> Result<(), String> {
    let record = stack
        .salesforce
        .record(id.as_str())
        .ok_or_else(|| format!("{} {id} is gone", kind.record))?;
    let field = |name: &str| {
        record
            .get(name)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    match kind.expect {
        Expect::MaxioStatus("Synced")
            if field("Maxio_Sync_Status__c") == "Synced"
                && kind.after.is_none()
                && field("Maxio_Core_Contract_Id__c").is_empty() =>
        {
            Err(format!(
                "{} is Synced but not linked to a Maxio Core contract ({:?}: {})",
                kind.name,
                field("Maxio_Core_Link_Status__c"),
                field("Maxio_Core_Link_Error__c")
            ))
        }
        Expect::MaxioStatus(status) if field("Maxio_Sync_Status__c") == status => Ok(()),
        Expect::MaxioStatus(status) => Err(format!(
            "{} ended with Maxio_Sync_Status__c {:?} ({}), expected {status}",
            kind.name,
            field("Maxio_Sync_Status__c"),
            field("Maxio_Sync_Error__c")
        )),
        Expect::WhmcsOrder
            if record
                .get("WHMCS_Order_Id__c")
                .is_some_and(|v| !v.is_null()) =>
        {
            Ok(())
        }
        Expect::WhmcsOrder => Err(format!(
            "{} has no WHMCS_Order_Id__c after provisioning (Activation_Status__c {:?}: {})",
            kind.name,
            field("Activation_Status__c"),
            field("Activation_Error__c")
        )),
    }
}
