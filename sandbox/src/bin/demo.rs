//! `make demo`: runs dealbridge locally, every function in one process, against the sandbox.
//!
//! The sandbox Salesforce org is seeded with realistic deals. Each deal is sent to the intake
//! exactly as Salesforce would send it (a signed Apex callout, an Outbound Message, a Platform
//! Event through EventBridge); the intake loads it in one Salesforce call, plans the work and
//! enqueues it on an in-memory queue with SQS's semantics; the delayed function handles deals whose
//! Order CPQ has not created yet, with time moved forward instead of waited for.

use anyhow::Context;
use dealbridge::ledger::Ledger;
use dealbridge::queue::QueueName;
use dealbridge::runner::Handled;
use dealbridge::snapshot::{DealRef, DealSnapshot, LoadOutcome};
use dealbridge_sandbox::events::{http_request, sample, with_signed_body};
use dealbridge_sandbox::local::LocalStack;
use dealbridge_sandbox::salesforce::routes;
use serde_json::Value;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Log lines go to stderr, filtered by RUST_LOG (default: warnings only).
    use tracing_subscriber::Layer;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = dealbridge::logs::filter_from_env(
        "RUST_LOG",
        tracing_subscriber::filter::LevelFilter::WARN,
    );
    let _ = tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(|| dealbridge::logs::EscapedLines::new(std::io::stderr()))
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                .with_filter(filter),
        )
        .try_init();
    let stack = LocalStack::start()
        .await
        .context("starting the local stack")?;
    stack
        .seed_broken_subscription()
        .await
        .context("leaving the Repair deal's subscription wrong")?;
    println!(
        "dealbridge demo: sandbox Salesforce org at {}",
        stack.salesforce.url()
    );
    println!("every function runs in this process on an in-memory queue\n");

    let mut opportunities: Vec<(String, String)> = stack.salesforce.with_org(|org| {
        org.records("Opportunity")
            .iter()
            .filter_map(|r| {
                Some((
                    r.get("Name")?.as_str()?.to_string(),
                    r.get("Id")?.as_str()?.to_string(),
                ))
            })
            .collect()
    });
    opportunities.sort();
    // Amendments and renewals are walked through after their first sales are billed (below).
    let amendments: Vec<String> = stack.salesforce.with_org(|org| {
        org.records("Opportunity")
            .iter()
            .filter(|r| {
                ["SBQQ__AmendedContract__c", "SBQQ__RenewedContract__c"]
                    .iter()
                    .any(|f| r.get(*f).is_some_and(|c| !c.is_null()))
            })
            .filter_map(|r| Some(r.get("Id")?.as_str()?.to_string()))
            .collect()
    });
    opportunities.retain(|(_, id)| !amendments.contains(id));
    let template = sample("intake-http-api-deal.json");
    let now = stack.clock_now();

    let repair_id = stack.id("RepairOpportunity").to_string();
    if let Some(s) = stack
        .maxio_ab
        .subscriptions()
        .into_iter()
        .find(|s| s["reference"] == repair_id.as_str())
    {
        println!("── Maxio AB before the run: a subscription an earlier run left wrong ──\n");
        println!(
            "  Calder Valley Foods: subscription {} (Opportunity Maxio sync Failed); the deal says 12 support seats and graduated storage tiers:",
            s["id"]
        );
        print_components(&stack.maxio_ab, s["id"].as_i64().unwrap_or_default());
        println!();
    }

    println!("── Apex callouts: POST /v1/deals for each won deal ──\n");
    for (name, id) in &opportunities {
        let calls_before = stack.salesforce.observer().count(routes::COMPOSITE);
        let body = serde_json::json!({"opportunityId": id}).to_string();
        let response = dealbridge_intake::handle(
            http_request(&with_signed_body(&template, &body, now)),
            &stack.intake,
        )
        .await;
        let calls = stack.salesforce.observer().count(routes::COMPOSITE) - calls_before;
        match stack
            .intake_loader()
            .load(&DealRef::Opportunity(id.parse()?))
            .await
        {
            Ok(LoadOutcome::Loaded(s)) => print_snapshot(&s),
            _ => println!("■ {name} ({id})"),
        }
        print_answer(
            "intake",
            response.status().as_u16(),
            response.body().as_ref(),
        );
        println!("  Salesforce API calls to load the deal: {calls}\n");
    }

    println!("── Outbound Message with two notifications ──");
    let r = dealbridge_intake::handle(
        http_request(&sample("intake-outbound-message.json")),
        &stack.intake,
    )
    .await;
    println!(
        "  HTTP {} {}",
        r.status().as_u16(),
        if r.status() == 200 {
            "<Ack>true</Ack>"
        } else {
            "fault"
        }
    );
    println!(
        "  (both deals were already queued: the FIFO deduplication ids match, nothing doubles)\n"
    );

    println!("── Platform Event OrderProvisionRequested__e for the approved internet Order ──");
    let event = serde_json::from_value(sample("platform-events-order-provision.json"))?;
    match dealbridge_platform_events::handle(event, &stack.platform_events).await {
        Ok(outcome) => print_answer(
            "platform-events",
            200,
            serde_json::to_string(&outcome)?.as_bytes(),
        ),
        Err(e) => println!("  error: {e}"),
    }
    println!();

    println!("── Waiting for CPQ: the delayed function re-dispatches the deal without an Order ──");
    let outcomes = stack.drain_delayed(100).await;
    let redispatched = outcomes
        .iter()
        .filter(|o| **o == ("dispatch", Handled::Done))
        .count();
    println!(
        "  {redispatched} re-dispatches over {} minutes of (simulated) waiting",
        stack.queue.now().as_secs() / 60
    );
    if let Some((_, Handled::Permanent(reason))) = outcomes.last() {
        println!("  then gave up, and wrote to the Opportunity: {reason}");
    }
    println!();

    println!(
        "── Workers: the Maxio Advanced Billing chain, the Maxio Core link and WHMCS provisioning ──"
    );
    let drained = stack.drain(1000).await;
    for (queue, n) in &drained.handled {
        if *queue != QueueName::Delayed {
            println!("  {queue}: {n} message(s) handled");
        }
    }
    if drained.retried > 0 {
        println!("  {} deliveries were retried", drained.retried);
    }
    println!();
    for (name, id) in &opportunities {
        let Some(opp) = stack.salesforce.record(id) else {
            continue;
        };
        let status = opp
            .get("Maxio_Sync_Status__c")
            .and_then(Value::as_str)
            .unwrap_or("-");
        if status == "Pending" || status == "-" {
            continue;
        }
        println!("■ {name}: Maxio sync {status}");
        let found = [("default", &stack.maxio_ab), ("uk", &stack.maxio_ab_uk)]
            .into_iter()
            .find_map(|(site, ab)| {
                ab.subscriptions()
                    .into_iter()
                    .find(|s| s["reference"] == id.as_str())
                    .map(|s| (site, ab, s))
            });
        if let Some((site, ab, s)) = found {
            let customer = &s["customer"];
            println!(
                "  AB site {site}: customer {} ({}, {}) · subscription {} on {} in {} · {}{}",
                customer["id"],
                customer["organization"].as_str().unwrap_or(""),
                customer["email"].as_str().unwrap_or(""),
                s["id"],
                s["product"]["handle"].as_str().unwrap_or(""),
                s["currency"].as_str().unwrap_or(""),
                s["state"].as_str().unwrap_or(""),
                s["next_assessment_at"]
                    .as_str()
                    .filter(|_| s["state"] == "awaiting_signup")
                    .map(|t| format!(" until {}", &t[..10.min(t.len())]))
                    .unwrap_or_default()
            );
            print_components(ab, s["id"].as_i64().unwrap_or_default());
            let record = stack
                .ledger
                .get(id, "maxio-subscription")
                .await
                .ok()
                .flatten();
            if let Some(r) = record {
                if let Some(start) = r.targets.get("maxio_start") {
                    println!("  the subscription {start}");
                }
                if let Some(repaired) = r.targets.get("maxio_repaired") {
                    println!("  repaired by this run: {repaired}");
                }
            }
        }
        let subscription_id = opp
            .get("Maxio_Subscription_Id__c")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let linked =
            stack.maxio_core.contracts().into_iter().find(|c| {
                !subscription_id.is_empty() && c["text_field2"] == subscription_id.as_str()
            });
        match linked {
            Some(c) => println!(
                "  Maxio Core: contract {} ({}) of customer {} now carries text_field2 = {}",
                c["id"],
                c["number"].as_str().unwrap_or(""),
                c["customer"],
                subscription_id
            ),
            None if status == "Synced" => println!("  Maxio Core: no contract linked yet"),
            None => {}
        }
        let written: Vec<String> = [
            "Maxio_Customer_Id__c",
            "Maxio_Subscription_Id__c",
            "Maxio_Site__c",
            "Maxio_Sync_Status__c",
            "Maxio_Sync_Error__c",
            "Maxio_Sync_DateTime__c",
            "Maxio_Core_Contract_Id__c",
            "Maxio_Core_Link_Status__c",
            "Maxio_Core_Link_Error__c",
        ]
        .iter()
        .filter_map(|f| {
            opp.get(*f).filter(|v| !v.is_null()).map(|v| {
                format!(
                    "{f} = {}",
                    v.as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| v.to_string())
                )
            })
        })
        .collect();
        println!("  written back to the Opportunity:");
        for w in written {
            println!("    {w}");
        }
    }
    println!();

    amendments_walk(&stack).await?;
    cancellations_walk(&stack).await?;
    billing_state_walk(&stack).await?;

    println!("── WHMCS: the approved internet Order (seed 003) ──");
    print_whmcs(&stack);
    println!();

    println!("── Queues ──");
    for q in QueueName::ALL {
        println!(
            "  {q}: {} message(s) waiting for their worker",
            stack.queue.depth(q)
        );
    }
    let log = stack.salesforce.observer();
    println!(
        "\nSalesforce requests in total: {} ({} login, {} composite, {} other)",
        log.total(),
        log.count(routes::TOKEN),
        log.count(routes::COMPOSITE),
        log.total() - log.count(routes::TOKEN) - log.count(routes::COMPOSITE)
    );
    Ok(())
}

/// Sends a seeded Opportunity as an Apex callout and runs the workers until the queues drain.
async fn run_deal(stack: &LocalStack, reference: &str) -> anyhow::Result<u16> {
    let body = serde_json::json!({"opportunityId": stack.id(reference).to_string()}).to_string();
    let response = dealbridge_intake::handle(
        http_request(&with_signed_body(
            &sample("intake-http-api-deal.json"),
            &body,
            stack.clock_now(),
        )),
        &stack.intake,
    )
    .await;
    stack.drain(20_000).await;
    Ok(response.status().as_u16())
}

fn field(stack: &LocalStack, reference: &str, name: &str) -> String {
    stack
        .salesforce
        .record(stack.id(reference).as_str())
        .and_then(|r| r.get(name).and_then(|v| v.as_str().map(str::to_string)))
        .unwrap_or_else(|| "-".to_string())
}

/// A Contract's later life: CPQ amendments applied to the first sale's subscription, a
/// future-dated one waiting for its day, and the ones AB cannot bill exactly refused.
async fn amendments_walk(stack: &LocalStack) -> anyhow::Result<()> {
    println!(
        "── A Contract's later life: CPQ amendments and renewals on Oakmont Software's contracts ──\n"
    );
    for (first, amendment, what) in [
        (
            "AddSeatsOpportunity",
            "AddSeatsAmendOpportunity",
            "+5 support seats on 10",
        ),
        (
            "RemoveProductOpportunity",
            "RemoveProductAmendOpportunity",
            "Premium Support removed",
        ),
        (
            "RepriceOpportunity",
            "RepriceAmendOpportunity",
            "seats debooked at the old tiers and rebooked at new ones",
        ),
    ] {
        walk_one(stack, first, amendment, what).await?;
    }
    println!("■ Amendments AB cannot bill exactly, refused before any AB write:");
    for scenario in [
        "Backdated",
        "MixedPrice",
        "NotCoterm",
        "Metered",
        "CurrencyChange",
        "OverRemoved",
        "Fractional",
        "Segmented",
        "PriceUnscheduled",
    ] {
        let amendment = format!("{scenario}AmendOpportunity");
        run_deal(stack, &amendment).await?;
        let error = field(stack, &amendment, "Maxio_Sync_Error__c");
        println!(
            "  {amendment}: {} {}",
            field(stack, &amendment, "Maxio_Sync_Status__c"),
            error.chars().take(160).collect::<String>()
        );
    }
    run_deal(stack, "RenewalOpportunity").await?;
    println!(
        "  RenewalOpportunity (deal 17, a renewal of deal 3's Contract): {} {}",
        field(stack, "RenewalOpportunity", "Maxio_Sync_Status__c"),
        field(stack, "RenewalOpportunity", "Maxio_Sync_Error__c")
            .chars()
            .take(160)
            .collect::<String>()
    );
    println!();
    // Renewals continue the subscription on the day after the Contract ends (2026-12-01).
    walk_one(
        stack,
        "RenewSameOpportunity",
        "RenewSameRenewOpportunity",
        "a renewal with unchanged lines, from 2026-12-01",
    )
    .await?;
    walk_one(
        stack,
        "RenewSeatsOpportunity",
        "RenewSeatsRenewOpportunity",
        "a renewal with 12 seats instead of 10 and without Premium Support, from 2026-12-01",
    )
    .await?;
    // Last: virtual time runs to its day.
    walk_one(
        stack,
        "FutureSeatsOpportunity",
        "FutureSeatsAmendOpportunity",
        "+5 seats from 2027-01-01",
    )
    .await
}

/// The end of a contract: a CPQ cancellation (an amendment to zero) and the seed-001 stage
/// (`△Cancelling` with its time) on the renewed Contract, each shown as AB and Salesforce have it.
async fn cancellations_walk(stack: &LocalStack) -> anyhow::Result<()> {
    println!("── The end of a contract: cancellations ──\n");
    let subscription_of = |reference: &str| {
        let reference = stack.id(reference).to_string();
        stack
            .maxio_ab
            .subscriptions()
            .into_iter()
            .find(|s| s["reference"] == reference.as_str())
    };
    let show = |opportunity: &str, stage_of: &str| {
        println!(
            "  Cancellation_Status__c = {}, StageName ({stage_of}) = {}",
            field(stack, opportunity, "Cancellation_Status__c"),
            field(stack, stage_of, "StageName")
        );
        for line in field(stack, opportunity, "Cancellation_Detail__c").lines() {
            println!("  Cancellation_Detail__c: {line}");
        }
        let error = field(stack, opportunity, "Cancellation_Error__c");
        if error != "-" {
            println!("  Cancellation_Error__c: {error}");
        }
    };
    run_deal(stack, "CancelAllOpportunity").await?;
    println!(
        "■ CancelAllAmendOpportunity: a CPQ amendment taking every line to zero from 2026-12-01"
    );
    run_deal(stack, "CancelAllAmendOpportunity").await?;
    if let Some(s) = subscription_of("CancelAllOpportunity") {
        println!("  AB subscription {}: state {}", s["id"], s["state"]);
    }
    show("CancelAllAmendOpportunity", "CancelAllOpportunity");

    let now = chrono::DateTime::from_timestamp(stack.clock_now(), 0).unwrap_or_default();
    println!(
        "\n■ RenewSeatsOpportunity (sold, then renewed): Customer Service sets StageName = △Cancelling and ScheduledCancellationDateAndTime__c = {}",
        now.to_rfc3339()
    );
    let id = stack.id("RenewSeatsOpportunity");
    stack.salesforce.with_org(|org| {
        let mut f = serde_json::Map::new();
        f.insert("StageName".into(), "\u{25b3}Cancelling".into());
        f.insert(
            "ScheduledCancellationDateAndTime__c".into(),
            now.to_rfc3339().into(),
        );
        org.update(Some("Opportunity"), id.as_str(), &f)
    })?;
    run_deal(stack, "RenewSeatsOpportunity").await?;
    if let Some(s) = subscription_of("RenewSeatsOpportunity") {
        println!("  AB subscription {}: state {}", s["id"], s["state"]);
    }
    show("RenewSeatsOpportunity", "RenewSeatsOpportunity");
    let writes = stack.maxio_ab.observer().requests().len();
    run_deal(stack, "RenewSeatsOpportunity").await?;
    println!(
        "  sent again: {} new AB request(s) (a cancelled deal is billed no more)\n",
        stack.maxio_ab.observer().requests().len() - writes
    );
    Ok(())
}

/// Billing state back into Salesforce: a subscription goes past due, then is canceled, in AB;
/// the billing sync reads AB's event log and shows it on the Opportunity.
async fn billing_state_walk(stack: &LocalStack) -> anyhow::Result<()> {
    use dealbridge::clock::Clock;
    println!("── Billing state back into Salesforce: the schedule and AB's webhooks ──\n");
    let reference = "VolumeOpportunity";
    let Some(subscription) = field(stack, reference, "Maxio_Subscription_Id__c")
        .parse::<i64>()
        .ok()
    else {
        println!("  {reference} has no AB subscription; nothing to show\n");
        return Ok(());
    };
    // The intake on loopback HTTP, and the AB site's webhooks pointed at it.
    let intake =
        dealbridge_sandbox::intake_http::start(dealbridge_intake::Deps::new(&stack.wiring)?)
            .await?;
    let ab = stack.maxio_ab.settings();
    let http = reqwest::Client::new();
    http.post(format!("{}/endpoints.json", stack.maxio_ab.url()))
        .basic_auth(&ab.api_key, Some("x"))
        .json(&serde_json::json!({"endpoint": {
            "url": format!("{}/v1/maxio/webhooks/default", intake.url),
            "webhook_subscriptions": ["subscription_state_change"]}}))
        .send()
        .await?
        .error_for_status()?;
    let show = |stack: &LocalStack| {
        for name in [
            "Maxio_Billing_State__c",
            "StageName",
            "Maxio_Next_Billing_At__c",
            "Maxio_Billing_Synced_At__c",
        ] {
            println!("    {name} = {}", field(stack, reference, name));
        }
    };
    let writes = |stack: &LocalStack| stack.salesforce.observer().count(routes::COLLECTIONS_PATCH);

    stack
        .maxio_ab
        .set_state(subscription, "past_due")
        .map_err(anyhow::Error::msg)?;
    println!("■ AB: subscription {subscription} is now past_due (webhooks not yet delivered)");
    let targets = stack.billing.schedule(stack.clock.now()).await?;
    println!(
        "  the daily schedule fires: one hint each for {}",
        targets
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    );
    // The webhook of the past-due change is delivered too; its run finds nothing new.
    stack.maxio_ab.deliver_webhooks().await;
    run_billing(stack).await;
    show(stack);

    stack
        .maxio_ab
        .set_state(subscription, "canceled")
        .map_err(anyhow::Error::msg)?;
    println!("■ AB: subscription {subscription} is now canceled");
    let sent = stack.maxio_ab.deliver_webhooks().await;
    for d in &sent {
        println!(
            "  AB sends webhook {} ({}) to the intake: HTTP {}",
            d.webhook_id,
            d.event,
            d.status.map_or_else(|| "-".to_string(), |s| s.to_string())
        );
    }
    run_billing(stack).await;
    show(stack);

    let before = writes(stack);
    let ids: Vec<i64> = sent.iter().map(|d| d.webhook_id).collect();
    http.post(format!("{}/webhooks/replay.json", stack.maxio_ab.url()))
        .basic_auth(&ab.api_key, Some("x"))
        .json(&serde_json::json!({ "ids": ids }))
        .send()
        .await?
        .error_for_status()?;
    stack.maxio_ab.deliver_webhooks().await;
    run_billing(stack).await;
    println!(
        "  AB replays the webhook (deduplicated by its id, and a run would find nothing new): {} more Salesforce write(s)\n",
        writes(stack) - before
    );
    Ok(())
}

/// Runs the billing-sync function over its queue, and says what it handled.
async fn run_billing(stack: &LocalStack) {
    let results = stack.drain_billing(10).await;
    let failed: Vec<String> = results.iter().filter_map(|r| r.handled.reason()).collect();
    println!(
        "  billing-sync function: {} hint(s) handled{}",
        results.len(),
        if failed.is_empty() {
            String::new()
        } else {
            format!(", failed: {}", failed.join("; "))
        }
    );
}

/// One amendment: the subscription before and after, the allocations made, what was written,
/// and a second send that changes nothing.
async fn walk_one(
    stack: &LocalStack,
    first: &str,
    amendment: &str,
    what: &str,
) -> anyhow::Result<()> {
    let reference = stack.id(first).to_string();
    let Some(sub) = stack
        .maxio_ab
        .subscriptions()
        .into_iter()
        .find(|s| s["reference"] == reference.as_str())
        .and_then(|s| s["id"].as_i64())
    else {
        println!("■ {first}: no subscription (the first sale was not billed)");
        return Ok(());
    };
    println!("■ {amendment}: {what}; Contract's subscription {sub} before:");
    print_components(&stack.maxio_ab, sub);
    let allocations_before = stack.maxio_ab.allocations(sub).len();
    let day_before = stack.clock_now() / 86_400;
    let status = run_deal(stack, amendment).await?;
    let waited = stack.clock_now() / 86_400 - day_before;
    if waited > 1 {
        println!(
            "  intake answered {status}; the amendment waited {waited} days on the delayed queue (simulated), then:"
        );
    } else {
        println!("  intake answered {status}; after the workers:");
    }
    print_components(&stack.maxio_ab, sub);
    for a in stack
        .maxio_ab
        .allocations(sub)
        .iter()
        .skip(allocations_before)
    {
        println!(
            "  allocation {}: {} {} → {} (upgrade_charge {}, downgrade_credit {}, accrue_charge {})",
            a["allocation_id"],
            a["component_handle"].as_str().unwrap_or(""),
            a["previous_quantity"],
            a["quantity"],
            a["upgrade_charge"].as_str().unwrap_or(""),
            a["downgrade_credit"].as_str().unwrap_or(""),
            a["accrue_charge"]
        );
    }
    println!(
        "  written back: Maxio_Sync_Status__c = {}, Maxio_Subscription_Id__c = {}",
        field(stack, amendment, "Maxio_Sync_Status__c"),
        field(stack, amendment, "Maxio_Subscription_Id__c")
    );
    let before = stack.maxio_ab.allocations(sub).len();
    run_deal(stack, amendment).await?;
    println!(
        "  sent again: {} new allocation(s) (net, then set: the totals are already there)\n",
        stack.maxio_ab.allocations(sub).len() - before
    );
    Ok(())
}

/// The components on an AB subscription: quantity or on/off, and the price point's tiers (with
/// its prices in a non-primary currency).
fn print_components(ab: &dealbridge_sandbox::maxio_ab::MaxioAbSandbox, subscription: i64) {
    let points = ab.price_points();
    for c in ab
        .subscription_components(subscription)
        .into_iter()
        .filter(|c| !c["price_point_id"].is_null())
    {
        let amount = match c["kind"].as_str() {
            Some("quantity_based_component") => format!("quantity {}", c["allocated_quantity"]),
            Some("on_off_component") => {
                if c["enabled"] == true {
                    "on".to_string()
                } else {
                    "off".to_string()
                }
            }
            _ => "usage".to_string(),
        };
        let detail = points
            .iter()
            .find(|p| p["id"] == c["price_point_id"])
            .map(|p| {
                let tiers: Vec<String> = p["prices"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|b| {
                        format!(
                            "{}–{} @ {}",
                            b["starting_quantity"],
                            if b["ending_quantity"].is_null() {
                                "∞".to_string()
                            } else {
                                b["ending_quantity"].to_string()
                            },
                            b["unit_price"].as_str().unwrap_or("")
                        )
                    })
                    .collect();
                let own: Vec<String> = p["currency_prices"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|cp| {
                        format!(
                            "{} {}",
                            cp["currency"].as_str().unwrap_or(""),
                            cp["price"].as_str().unwrap_or("")
                        )
                    })
                    .collect();
                format!(
                    "{} {} [{}]{}",
                    p["type"].as_str().unwrap_or(""),
                    p["pricing_scheme"].as_str().unwrap_or(""),
                    tiers.join(", "),
                    if own.is_empty() {
                        String::new()
                    } else {
                        format!(" own prices: {}", own.join(", "))
                    }
                )
            })
            .unwrap_or_default();
        println!(
            "    {} {amount} → price point {} {detail}",
            c["component_handle"].as_str().unwrap_or(""),
            c["price_point_id"]
        );
    }
}

fn print_answer(function: &str, status: u16, body: &[u8]) {
    let Ok(json) = serde_json::from_slice::<Value>(body) else {
        println!("  {function} answered HTTP {status}");
        return;
    };
    let steps: Vec<String> = json["messages"]
        .as_array()
        .map(|m| {
            m.iter()
                .filter_map(|s| {
                    Some(format!(
                        "{} → queue {}",
                        s["step"].as_str()?,
                        s["queue"].as_str()?
                    ))
                })
                .collect()
        })
        .unwrap_or_default();
    println!(
        "  {function} answered HTTP {status}: {}",
        json["status"].as_str().unwrap_or("error")
    );
    for step in steps {
        println!("    planned: {step}");
    }
    for skipped in json["plan"]["skipped"].as_array().into_iter().flatten() {
        println!(
            "    skipped {}: {}",
            skipped["flow"].as_str().unwrap_or(""),
            skipped["reason"].as_str().unwrap_or("")
        );
    }
    for product in json["plan"]["unmappedProducts"]
        .as_array()
        .into_iter()
        .flatten()
    {
        println!("    unmapped product: {}", product.as_str().unwrap_or(""));
    }
    if let Some(reason) = json["reason"].as_str() {
        println!("    {reason}");
    }
    if let Some(e) = json.get("error") {
        println!(
            "    error {}: {}",
            e["code"].as_str().unwrap_or(""),
            e["message"].as_str().unwrap_or("")
        );
    }
}

fn print_snapshot(s: &DealSnapshot) {
    let opp = s.opportunity.as_ref();
    println!(
        "■ {} ({})",
        opp.map(|o| o.name.as_str()).unwrap_or("(no opportunity)"),
        s.requested.id()
    );
    if let Some(o) = opp {
        println!(
            "  stage {} · won {} · close date {}",
            o.stage,
            o.is_won,
            o.close_date.map(|d| d.to_string()).unwrap_or_default()
        );
    }
    let a = &s.account;
    println!(
        "  account {} · {} {} {} · WHMCS client {} · Maxio customer {}",
        a.name,
        a.billing_address.city.as_deref().unwrap_or("-"),
        a.billing_address.state_code.as_deref().unwrap_or("-"),
        a.billing_address.country_code.as_deref().unwrap_or("-"),
        a.whmcs_client_id.as_deref().unwrap_or("-"),
        a.maxio_customer_id.as_deref().unwrap_or("-"),
    );
    let contact = s
        .quote
        .as_ref()
        .and_then(|q| q.primary_contact.as_ref())
        .or_else(|| {
            opp.and_then(|o| o.contact_roles.first())
                .map(|r| &r.contact)
        });
    match contact {
        Some(c) => println!(
            "  billing contact {} {} <{}>",
            c.first_name.as_deref().unwrap_or(""),
            c.last_name.as_deref().unwrap_or(""),
            c.email.as_deref().unwrap_or("no email")
        ),
        None => println!("  billing contact: none"),
    }
    for order in &s.orders {
        println!(
            "  order {} {} · status {} · activation {}",
            order.number.as_deref().unwrap_or("-"),
            order.id,
            order.status,
            order.activation_status.as_deref().unwrap_or("-")
        );
        for item in &order.items {
            let p = &item.product;
            let target = match (&p.maxio_component_handle, &p.whmcs_product_id) {
                (Some(h), _) => format!("Maxio component {h}"),
                (None, Some(pid)) => format!(
                    "WHMCS pid {pid} {}",
                    p.billing_cycle.as_deref().unwrap_or("")
                ),
                (None, None) => "unmapped".to_string(),
            };
            println!(
                "    {} × {} [{}] → {}",
                item.quantity.normalize(),
                p.name,
                p.code.as_deref().unwrap_or("-"),
                target
            );
            for schedule in &item.schedules {
                let tiers: Vec<String> = schedule
                    .rates
                    .iter()
                    .map(|r| {
                        format!(
                            "{}–{} @ {} {:?}",
                            r.lower_bound.normalize(),
                            r.upper_bound
                                .map(|u| u.normalize().to_string())
                                .unwrap_or_else(|| "∞".into()),
                            r.price.normalize(),
                            r.pricing_method
                        )
                    })
                    .collect();
                println!(
                    "      {:?} schedule: {}",
                    schedule.schedule_type,
                    tiers.join(", ")
                );
            }
        }
    }
}

/// The WHMCS order made for the internet Order, and what Salesforce shows of it.
fn print_whmcs(stack: &LocalStack) {
    let add_orders = stack.whmcs.action_count("AddOrder");
    let accepts = stack.whmcs.action_count("AcceptOrder");
    for order in stack.whmcs.orders() {
        println!(
            "  WHMCS order {} for client {}: {}, payment method {}, invoice {}",
            order.id,
            order.client_id,
            order.status.as_str(),
            order.payment_method,
            order
                .invoice_id
                .map(|i| i.to_string())
                .unwrap_or_else(|| "none (noinvoice)".into())
        );
        for line in &order.lines {
            println!(
                "    pid {} · {} · qty {} → service {} ({})",
                line.pid,
                line.billing_cycle.param(),
                line.qty,
                line.service_id,
                line.service_status.as_str()
            );
        }
    }
    println!("  WHMCS calls: {add_orders} AddOrder, {accepts} AcceptOrder");
    let fields = |reference: &str, names: &[&str]| -> Vec<String> {
        let Some(record) = stack
            .salesforce
            .id_of(reference)
            .and_then(|id| stack.salesforce.record(&id))
        else {
            return Vec::new();
        };
        names
            .iter()
            .filter_map(|f| {
                record.get(*f).filter(|v| !v.is_null()).map(|v| {
                    format!(
                        "{f} = {}",
                        v.as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| v.to_string())
                    )
                })
            })
            .collect()
    };
    println!("  written back to Salesforce:");
    for (label, reference, names) in [
        (
            "Order",
            "InternetOrder",
            &[
                "Status",
                "Activation_Status__c",
                "WHMCS_Order_Id__c",
                "Activation_Error__c",
                "Activation_Error_DateTime__c",
            ][..],
        ),
        (
            "OrderItem (internet)",
            "InternetGoldItem",
            &["WHMCS_Service_ID__c"][..],
        ),
        (
            "OrderItem (installation)",
            "InternetInstallItem",
            &["WHMCS_Service_ID__c"][..],
        ),
        (
            "OrderItem (phone)",
            "InternetPhoneItem",
            &["WHMCS_Service_ID__c"][..],
        ),
        (
            "Opportunity",
            "InternetOpportunity",
            &["StageName", "WHMCS_Service_ID__c"][..],
        ),
    ] {
        println!("    {label}: {}", fields(reference, names).join(", "));
    }
}
