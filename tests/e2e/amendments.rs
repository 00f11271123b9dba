//! CPQ amendments and renewals applied to the Contract's one AB subscription: every Order on the
//! Contract netted (a renewal: its Order's lines), then set (allocations take the new totals, with
//! the mapping's proration settings), so a replay, or a re-run of the first sale, changes nothing;
//! what AB cannot bill exactly is refused on the deal's Opportunity before any AB write. Against
//! the seeded deals 16–36 of `sandbox/data/salesforce/README.md`.

use std::time::Duration;

use dealbridge::envelope::{Envelope, Step};
use dealbridge::ledger::{Ledger, StepStatus};
use dealbridge::queue::QueueName;
use dealbridge_sandbox::local::LocalStack;
use serde_json::{Map, Value};

use crate::support::{record, run_deal, send_deal};

/// Writes (POST, PUT, DELETE) the default AB site received.
fn writes(stack: &LocalStack) -> Vec<String> {
    stack
        .maxio_ab
        .observer()
        .requests()
        .into_iter()
        .map(|r| r.route)
        .filter(|r| !r.starts_with("GET "))
        .collect()
}

fn set_status(stack: &LocalStack, reference: &str, status: &str) {
    let id = stack.id(reference);
    stack.salesforce.with_org(|org| {
        let mut f = Map::new();
        f.insert("Maxio_Sync_Status__c".into(), Value::String(status.into()));
        org.update(Some("Opportunity"), id.as_str(), &f).unwrap();
    });
}

/// Bills the scenario's first sale; its subscription id.
async fn first_sale(stack: &LocalStack, opportunity: &str) -> i64 {
    run_deal(stack, opportunity).await;
    let opp = record(stack, opportunity);
    assert_eq!(
        opp["Maxio_Sync_Status__c"], "Synced",
        "{opportunity}: {opp:?}"
    );
    opp["Maxio_Subscription_Id__c"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{opportunity} has no subscription: {opp:?}"))
}

/// `(allocated quantity, enabled, price point)` of a component on the subscription.
fn component(stack: &LocalStack, subscription: i64, handle: &str) -> (Value, Value, Value) {
    let id = stack.maxio_ab.component_id(handle).expect("component");
    let c = stack
        .maxio_ab
        .subscription_components(subscription)
        .into_iter()
        .find(|c| c["component_id"] == id)
        .unwrap_or_else(|| panic!("{handle} is not listed"));
    (
        c["allocated_quantity"].clone(),
        c["enabled"].clone(),
        c["price_point_id"].clone(),
    )
}

fn quantity(stack: &LocalStack, subscription: i64, handle: &str) -> i64 {
    let (q, _, _) = component(stack, subscription, handle);
    q.as_i64()
        .or_else(|| {
            q.as_str()
                .and_then(|s| s.parse::<f64>().ok())
                .map(|f| f as i64)
        })
        .unwrap_or(0)
}

/// The allocations of `handle` on the subscription: `(quantity, upgrade, downgrade, accrue)`.
fn allocations(
    stack: &LocalStack,
    subscription: i64,
    handle: &str,
) -> Vec<(i64, String, String, bool)> {
    stack
        .maxio_ab
        .allocations(subscription)
        .into_iter()
        .filter(|a| a["component_handle"] == handle)
        .map(|a| {
            (
                a["quantity"].as_i64().unwrap_or(-1),
                a["upgrade_charge"].as_str().unwrap_or_default().to_string(),
                a["downgrade_credit"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                a["accrue_charge"].as_bool().unwrap_or_default(),
            )
        })
        .collect()
}

/// The amendment is synced to the first sale's subscription; a re-run of the amendment and of
/// the first sale then write nothing to AB.
async fn applied_and_stable(stack: &LocalStack, first: &str, amendment: &str, subscription: i64) {
    let opp = record(stack, amendment);
    assert_eq!(
        opp["Maxio_Sync_Status__c"], "Synced",
        "{amendment}: {opp:?}"
    );
    assert_eq!(
        opp["Maxio_Subscription_Id__c"],
        subscription.to_string(),
        "{amendment} names the Contract's subscription"
    );
    let subscriptions = stack.maxio_ab.subscriptions().len();
    let before = writes(stack);
    for deal in [amendment, first] {
        // Past the queues' five-minute deduplication window: a real second run.
        stack.advance(std::time::Duration::from_secs(600));
        set_status(stack, deal, "Failed");
        run_deal(stack, deal).await;
        let r = record(stack, deal);
        assert_eq!(
            r["Maxio_Sync_Status__c"], "Synced",
            "{deal}: {:?}",
            r["Maxio_Sync_Error__c"]
        );
    }
    assert_eq!(
        writes(stack),
        before,
        "re-running {amendment} and its first sale {first} writes nothing: the subscription already bills the netted Contract"
    );
    assert_eq!(stack.maxio_ab.subscriptions().len(), subscriptions);
}

/// The renewal is synced to the first sale's subscription; a re-run of the renewal writes nothing,
/// and a re-run of the first sale is refused (it would undo the renewal), writing nothing either.
async fn renewal_stable(stack: &LocalStack, first: &str, renewal: &str, subscription: i64) {
    let opp = record(stack, renewal);
    assert_eq!(opp["Maxio_Sync_Status__c"], "Synced", "{renewal}: {opp:?}");
    assert_eq!(opp["Maxio_Subscription_Id__c"], subscription.to_string());
    let before = writes(stack);
    stack.advance(std::time::Duration::from_secs(600));
    set_status(stack, renewal, "Failed");
    run_deal(stack, renewal).await;
    assert_eq!(record(stack, renewal)["Maxio_Sync_Status__c"], "Synced");
    stack.advance(std::time::Duration::from_secs(600));
    set_status(stack, first, "Failed");
    run_deal(stack, first).await;
    let first_sale = record(stack, first);
    let error = first_sale["Maxio_Sync_Error__c"]
        .as_str()
        .unwrap_or_default();
    assert!(error.starts_with("CONTRACT_RENEWED: "), "{first}: {error}");
    assert_eq!(
        writes(stack),
        before,
        "re-running {renewal} and {first} writes nothing to AB"
    );
}

#[tokio::test]
async fn quantity_changes_set_the_contracts_new_totals_on_the_first_sales_subscription_once() {
    let prorated = |q: i64| (q, "prorated".to_string(), "prorated".to_string(), true);

    // +5 seats on 10, Premium Support untouched.
    // Each scenario on a fresh stack: the virtual clock moves on as deals run.
    let stack = LocalStack::start().await.unwrap();
    let sub = first_sale(&stack, "AddSeatsOpportunity").await;
    assert!(stack.maxio_ab.allocations(sub).is_empty());
    run_deal(&stack, "AddSeatsAmendOpportunity").await;
    assert_eq!(quantity(&stack, sub, "support-seats"), 15);
    assert_eq!(component(&stack, sub, "premium-support").1, true);
    // The new total, with the mapping's proration settings (the site's own default credit for a
    // downgrade is "none": dealbridge never leaves it to the site).
    assert_eq!(allocations(&stack, sub, "support-seats"), [prorated(15)]);
    assert!(allocations(&stack, sub, "premium-support").is_empty());
    applied_and_stable(
        &stack,
        "AddSeatsOpportunity",
        "AddSeatsAmendOpportunity",
        sub,
    )
    .await;

    // −5 seats on 25.
    // Each scenario on a fresh stack: the virtual clock moves on as deals run.
    let stack = LocalStack::start().await.unwrap();
    let sub = first_sale(&stack, "RemoveSeatsOpportunity").await;
    run_deal(&stack, "RemoveSeatsAmendOpportunity").await;
    assert_eq!(quantity(&stack, sub, "support-seats"), 20);
    assert_eq!(allocations(&stack, sub, "support-seats"), [prorated(20)]);
    applied_and_stable(
        &stack,
        "RemoveSeatsOpportunity",
        "RemoveSeatsAmendOpportunity",
        sub,
    )
    .await;

    // A new product: Premium Support turned on.
    // Each scenario on a fresh stack: the virtual clock moves on as deals run.
    let stack = LocalStack::start().await.unwrap();
    let sub = first_sale(&stack, "AddProductOpportunity").await;
    assert_ne!(component(&stack, sub, "premium-support").1, true);
    run_deal(&stack, "AddProductAmendOpportunity").await;
    assert_eq!(component(&stack, sub, "premium-support").1, true);
    assert_eq!(allocations(&stack, sub, "premium-support"), [prorated(1)]);
    assert!(allocations(&stack, sub, "support-seats").is_empty());
    applied_and_stable(
        &stack,
        "AddProductOpportunity",
        "AddProductAmendOpportunity",
        sub,
    )
    .await;

    // A removed product: Premium Support turned off, seats untouched.
    // Each scenario on a fresh stack: the virtual clock moves on as deals run.
    let stack = LocalStack::start().await.unwrap();
    let sub = first_sale(&stack, "RemoveProductOpportunity").await;
    run_deal(&stack, "RemoveProductAmendOpportunity").await;
    assert_ne!(component(&stack, sub, "premium-support").1, true);
    assert_eq!(allocations(&stack, sub, "premium-support"), [prorated(0)]);
    assert_eq!(quantity(&stack, sub, "support-seats"), 10);
    applied_and_stable(
        &stack,
        "RemoveProductOpportunity",
        "RemoveProductAmendOpportunity",
        sub,
    )
    .await;

    // Deal 16: +5 seats on deal 3's stairstep price point (the amendment line carries the same
    // schedule), so the seats stay on the first sale's price point.
    // Each scenario on a fresh stack: the virtual clock moves on as deals run.
    let stack = LocalStack::start().await.unwrap();
    let sub = first_sale(&stack, "FlatFeeOpportunity").await;
    let (_, _, price_point) = component(&stack, sub, "support-seats");
    run_deal(&stack, "AmendmentOpportunity").await;
    assert_eq!(quantity(&stack, sub, "support-seats"), 30);
    assert_eq!(component(&stack, sub, "support-seats").2, price_point);
    applied_and_stable(&stack, "FlatFeeOpportunity", "AmendmentOpportunity", sub).await;

    assert!(stack.maxio_ab.negative_quantities().is_empty());
}

#[tokio::test]
async fn a_debook_and_rebook_moves_the_component_to_a_price_point_at_the_new_tiers() {
    let stack = LocalStack::start().await.unwrap();
    let sub = first_sale(&stack, "RepriceOpportunity").await;
    let (_, _, before) = component(&stack, sub, "support-seats");
    run_deal(&stack, "RepriceAmendOpportunity").await;
    let (q, _, after) = component(&stack, sub, "support-seats");
    assert_eq!(q, 25);
    assert_ne!(after, before, "moved to a new price point");
    let point = stack
        .maxio_ab
        .price_points()
        .into_iter()
        .find(|p| p["id"] == after)
        .expect("the new price point");
    let prices: Vec<String> = point["prices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["unit_price"].to_string().trim_matches('"').to_string())
        .collect();
    assert!(
        prices
            .iter()
            .map(|p| p.trim_end_matches(".0"))
            .eq(["450", "1800", "3200"]),
        "{prices:?}"
    );
    applied_and_stable(&stack, "RepriceOpportunity", "RepriceAmendOpportunity", sub).await;
}

#[tokio::test]
async fn a_future_amendment_waits_on_the_delayed_queue_and_applies_on_its_day() {
    let stack = LocalStack::start().await.unwrap();
    let sub = first_sale(&stack, "FutureSeatsOpportunity").await;
    let before = writes(&stack);
    send_deal(&stack, "FutureSeatsAmendOpportunity").await;
    let workers = [
        QueueName::MaxioCustomer,
        QueueName::MaxioPricePoints,
        QueueName::MaxioSubscription,
        QueueName::MaxioCoreLink,
    ];
    stack.drain_queues(&workers, 100).await;
    assert_eq!(writes(&stack), before, "nothing changes before 2027-01-01");
    assert_eq!(quantity(&stack, sub, "support-seats"), 10);
    assert_eq!(
        stack.queue.depth(QueueName::Delayed),
        1,
        "a re-dispatch waits"
    );
    let waiting = stack.queue.sent(QueueName::Delayed);
    assert!(
        waiting
            .last()
            .is_some_and(|m| m.body.contains("\"dispatch\"")),
        "{waiting:?}"
    );

    // Virtual time runs to the amendment's day through the delayed queue (never a sleep).
    stack.drain(10_000).await;
    assert!(
        stack.clock_now() >= 1_798_761_600,
        "the clock reached 2027-01-01"
    );
    assert_eq!(quantity(&stack, sub, "support-seats"), 15);
    assert_eq!(allocations(&stack, sub, "support-seats").len(), 1);
    applied_and_stable(
        &stack,
        "FutureSeatsOpportunity",
        "FutureSeatsAmendOpportunity",
        sub,
    )
    .await;
}

/// The delayed queue's messages that wait for a scheduled change, by chain.
fn waiting_chains(stack: &LocalStack) -> Vec<String> {
    let mut chains: Vec<String> = stack
        .queue
        .peek(QueueName::Delayed)
        .into_iter()
        .filter_map(|body| match Envelope::parse(&body).ok()?.step {
            Step::Dispatch { chain, .. } => chain,
            _ => None,
        })
        .collect();
    chains.sort();
    chains.dedup();
    chains
}

/// Fifteen minutes on (SQS's longest delay), the delayed function takes every message visible
/// then; `lose` drops them instead, as a message lost or dead-lettered.
async fn hop(stack: &LocalStack, lose: bool) {
    stack.advance(Duration::from_secs(900));
    let batch = stack.queue.receive(QueueName::Delayed, 10);
    let failed = if lose {
        Vec::new()
    } else {
        stack.run_batch(QueueName::Delayed, &batch).await
    };
    assert!(failed.is_empty(), "{failed:?}");
    for received in &batch {
        stack.queue.delete(QueueName::Delayed, &received.receipt);
    }
}

#[tokio::test]
async fn repeated_dispatches_of_a_future_amendment_leave_one_chain_waiting_that_applies_it_once() {
    let stack = LocalStack::start().await.unwrap();
    let sub = first_sale(&stack, "FutureSeatsOpportunity").await;
    let amendment = stack.id("FutureSeatsAmendOpportunity").to_string();
    // Three triggers for the same waiting amendment (a reconciler run, an edit's Outbound
    // Message, a person's callout): each starts a chain of delayed messages.
    for _ in 0..3 {
        send_deal(&stack, "FutureSeatsAmendOpportunity").await;
    }
    assert_eq!(waiting_chains(&stack).len(), 3);
    // One hop each: the first chain to hop holds the wait, the others stop.
    hop(&stack, false).await;
    let left = waiting_chains(&stack);
    assert_eq!(left.len(), 1, "one chain waits: {left:?}");
    assert_eq!(stack.queue.depth(QueueName::Delayed), 1);
    let step = dealbridge::delayed::chain_step(1_798_761_600);
    let record = stack.ledger.get(&amendment, &step).await.unwrap().unwrap();
    assert_eq!(record.targets["chain"], left[0]);

    // The waiting chain's message is lost (say, dead-lettered). A trigger within the next
    // three quarters of an hour stops at its first hop, since the wait looks held; once the lost
    // chain has not hopped for that long, the next trigger's chain takes the wait over.
    hop(&stack, true).await;
    send_deal(&stack, "FutureSeatsAmendOpportunity").await;
    hop(&stack, false).await;
    assert_eq!(
        stack.queue.depth(QueueName::Delayed),
        0,
        "the wait looked held"
    );
    stack.advance(dealbridge::delayed::CHAIN_STALE);
    send_deal(&stack, "FutureSeatsAmendOpportunity").await;
    let taker = waiting_chains(&stack);
    hop(&stack, false).await;
    assert_eq!(
        waiting_chains(&stack),
        taker,
        "the new chain took the wait over"
    );

    stack.drain(20_000).await;
    assert!(
        stack.clock_now() >= 1_798_761_600,
        "the clock reached 2027-01-01"
    );
    assert_eq!(quantity(&stack, sub, "support-seats"), 15);
    assert_eq!(allocations(&stack, sub, "support-seats").len(), 1);
    let record = stack.ledger.get(&amendment, &step).await.unwrap().unwrap();
    assert_eq!(record.status, StepStatus::Completed, "{record:?}");
    assert_eq!(record.targets["chain"], taker[0]);
    assert_eq!(stack.queue.depth(QueueName::Delayed), 0);
    applied_and_stable(
        &stack,
        "FutureSeatsOpportunity",
        "FutureSeatsAmendOpportunity",
        sub,
    )
    .await;
}

#[tokio::test]
async fn what_ab_cannot_bill_exactly_is_refused_on_the_amendment_before_any_ab_write() {
    for (scenario, code, says) in [
        (
            "Backdated",
            "AMENDMENT_BACKDATED",
            "takes effect 2026-11-10",
        ),
        ("MixedPrice", "AMENDMENT_SPLIT_PRICE", "support-seats"),
        ("NotCoterm", "AMENDMENT_NOT_COTERMINOUS", "co-termination"),
        ("Metered", "AMENDMENT_METERED_CHANGE", "api-calls"),
        ("CurrencyChange", "CURRENCY_MISMATCH", "EUR"),
        ("OverRemoved", "AMENDMENT_NEGATIVE_QUANTITY", "removes 15"),
        ("Fractional", "MAXIO_INVALID_QUANTITY", "12.5"),
        ("Segmented", "AMENDMENT_SEGMENTED", "MDQ"),
        (
            "PriceUnscheduled",
            "AMENDMENT_PRICE_NOT_SCHEDULED",
            "unit price 135",
        ),
    ] {
        let stack = LocalStack::start().await.unwrap();
        let first = format!("{scenario}Opportunity");
        let amendment = format!("{scenario}AmendOpportunity");
        let sub = first_sale(&stack, &first).await;
        let components = stack.maxio_ab.subscription_components(sub);
        let before = writes(&stack);
        send_deal(&stack, &amendment).await;
        stack.drain(20_000).await;
        let opp = record(&stack, &amendment);
        assert_eq!(opp["Maxio_Sync_Status__c"], "Failed", "{scenario}");
        let error = opp["Maxio_Sync_Error__c"].as_str().unwrap_or_default();
        assert!(
            error.starts_with(&format!("{code}: ")),
            "{scenario}: {error}"
        );
        assert!(error.contains(says), "{scenario}: {error}");
        assert_eq!(writes(&stack), before, "{scenario}: nothing written to AB");
        assert_eq!(stack.maxio_ab.subscription_components(sub), components);
    }
}

#[tokio::test]
async fn an_amendment_of_a_first_sale_never_billed_waits_and_then_says_so_creating_nothing() {
    let stack = LocalStack::start().await.unwrap();
    let before = writes(&stack);
    run_deal(&stack, "AddSeatsAmendOpportunity").await;
    let opp = record(&stack, "AddSeatsAmendOpportunity");
    assert_eq!(opp["Maxio_Sync_Status__c"], "Failed");
    let error = opp["Maxio_Sync_Error__c"].as_str().unwrap_or_default();
    assert!(error.contains("AMENDMENT_ORIGINAL_NOT_BILLED"), "{error}");
    assert!(
        error.contains(stack.id("AddSeatsOpportunity").as_str()),
        "names the first sale: {error}"
    );
    assert_eq!(writes(&stack), before, "no customer, no subscription");

    // Once the first sale is billed, dispatching the amendment again applies it.
    let sub = first_sale(&stack, "AddSeatsOpportunity").await;
    run_deal(&stack, "AddSeatsAmendOpportunity").await;
    assert_eq!(quantity(&stack, sub, "support-seats"), 15);
}

#[tokio::test]
async fn a_renewal_continues_the_subscription_from_its_day_changing_only_what_changed() {
    // Unchanged lines: nothing is written to AB; the renewal is linked to the subscription.
    let stack = LocalStack::start().await.unwrap();
    let sub = first_sale(&stack, "RenewSameOpportunity").await;
    let subscriptions = stack.maxio_ab.subscriptions().len();
    let before = writes(&stack);
    send_deal(&stack, "RenewSameRenewOpportunity").await;
    stack.drain(20_000).await;
    assert!(
        stack.clock_now() >= 1_796_083_200,
        "the clock reached 2026-12-01"
    );
    assert_eq!(
        writes(&stack),
        before,
        "an unchanged renewal changes nothing in AB"
    );
    assert_eq!(
        stack.maxio_ab.subscriptions().len(),
        subscriptions,
        "no second subscription"
    );
    renewal_stable(
        &stack,
        "RenewSameOpportunity",
        "RenewSameRenewOpportunity",
        sub,
    )
    .await;

    // More seats and Premium Support dropped at the renewal.
    let stack = LocalStack::start().await.unwrap();
    let sub = first_sale(&stack, "RenewSeatsOpportunity").await;
    send_deal(&stack, "RenewSeatsRenewOpportunity").await;
    stack.drain(20_000).await;
    assert_eq!(quantity(&stack, sub, "support-seats"), 12);
    assert_ne!(component(&stack, sub, "premium-support").1, true);
    let prorated = |q: i64| (q, "prorated".to_string(), "prorated".to_string(), true);
    assert_eq!(allocations(&stack, sub, "support-seats"), [prorated(12)]);
    assert_eq!(allocations(&stack, sub, "premium-support"), [prorated(0)]);
    renewal_stable(
        &stack,
        "RenewSeatsOpportunity",
        "RenewSeatsRenewOpportunity",
        sub,
    )
    .await;

    // An uplift on tiered seats: a price point at the new tiers from the renewal's day.
    let stack = LocalStack::start().await.unwrap();
    let sub = first_sale(&stack, "RenewUpliftOpportunity").await;
    let (_, _, old) = component(&stack, sub, "support-seats");
    send_deal(&stack, "RenewUpliftRenewOpportunity").await;
    stack.drain(20_000).await;
    let (q, _, new) = component(&stack, sub, "support-seats");
    assert_eq!(q, 25);
    assert_ne!(new, old);
    let point = stack
        .maxio_ab
        .price_points()
        .into_iter()
        .find(|p| p["id"] == new)
        .expect("the uplift's price point");
    assert_eq!(
        point["prices"][0]["unit_price"]
            .to_string()
            .trim_matches('"')
            .trim_end_matches(".0"),
        "550"
    );
    renewal_stable(
        &stack,
        "RenewUpliftOpportunity",
        "RenewUpliftRenewOpportunity",
        sub,
    )
    .await;
}

#[tokio::test]
async fn a_renewal_that_does_not_follow_its_contract_is_refused_before_any_ab_write() {
    let stack = LocalStack::start().await.unwrap();
    first_sale(&stack, "FlatFeeOpportunity").await;
    let subscriptions = stack.maxio_ab.subscriptions().len();
    let before = writes(&stack);
    run_deal(&stack, "RenewalOpportunity").await;
    let opp = record(&stack, "RenewalOpportunity");
    assert_eq!(opp["Maxio_Sync_Status__c"], "Failed");
    let error = opp["Maxio_Sync_Error__c"].as_str().unwrap_or_default();
    assert!(error.starts_with("RENEWAL_NOT_CONTIGUOUS: "), "{error}");
    assert!(error.contains("should start 2028-11-01"), "{error}");
    assert_eq!(writes(&stack), before);
    assert_eq!(stack.maxio_ab.subscriptions().len(), subscriptions);
}

#[tokio::test]
async fn an_amendment_of_the_renewals_contract_changes_the_same_subscription() {
    let stack = LocalStack::start().await.unwrap();
    let sub = first_sale(&stack, "RenewSeatsOpportunity").await;
    send_deal(&stack, "RenewSeatsRenewOpportunity").await;
    stack.drain(20_000).await;
    assert_eq!(quantity(&stack, sub, "support-seats"), 12);

    // The renewal's Contract names the renewal as its first sale; the subscription is still the
    // one the first Contract began (found through the renewal's Maxio_Subscription_Id__c).
    send_deal(&stack, "RenewSeatsNextAmendOpportunity").await;
    stack.drain(20_000).await;
    let opp = record(&stack, "RenewSeatsNextAmendOpportunity");
    assert_eq!(opp["Maxio_Sync_Status__c"], "Synced", "{opp:?}");
    assert_eq!(opp["Maxio_Subscription_Id__c"], sub.to_string());
    assert_eq!(quantity(&stack, sub, "support-seats"), 15);
    assert_eq!(
        stack.maxio_ab.subscriptions().len(),
        1,
        "still one subscription"
    );

    // Re-running the renewal now bills its own Contract as amended, so it keeps the 15 seats.
    let before = writes(&stack);
    stack.advance(std::time::Duration::from_secs(600));
    set_status(&stack, "RenewSeatsRenewOpportunity", "Failed");
    run_deal(&stack, "RenewSeatsRenewOpportunity").await;
    let renewal = record(&stack, "RenewSeatsRenewOpportunity");
    assert_eq!(renewal["Maxio_Sync_Status__c"], "Synced", "{renewal:?}");
    assert_eq!(writes(&stack), before, "nothing undone");
    assert_eq!(quantity(&stack, sub, "support-seats"), 15);
}
