//! The Maxio Core link end to end: after the AB subscription, the deal's Core contract gets the
//! subscription id, once, and the Opportunity shows the link; Core that has not synced yet is
//! waited for through the delayed queue (asserted from the delays requested, not by sleeping).

use std::time::Duration;

use crate::support::{record as opportunity, run_deal, send_deal};
use dealbridge::envelope::{Envelope, Step};
use dealbridge::queue::QueueName;
use dealbridge_sandbox::local::{CoreStart, LocalStack};
use dealbridge_sandbox::maxio_core::{CoreSettings, routes as core_routes, throttled};
use dealbridge_sandbox::salesforce::routes as sf_routes;
use serde_json::{Value, json};

fn subscription_id(stack: &LocalStack, reference: &str) -> String {
    opportunity(stack, reference)["Maxio_Subscription_Id__c"]
        .as_str()
        .expect("a subscription id on the Opportunity")
        .to_string()
}

fn contract(stack: &LocalStack, id: i64) -> Value {
    stack
        .maxio_core
        .contracts()
        .into_iter()
        .find(|c| c["id"] == id)
        .expect("contract")
}

/// The waits the link asked for, in seconds, in order.
fn link_waits(stack: &LocalStack) -> Vec<u64> {
    stack
        .queue
        .sent(QueueName::Delayed)
        .iter()
        .filter_map(|m| {
            let e = Envelope::parse(&m.body).ok()?;
            matches!(e.step, Step::Deferred { .. }).then_some(m.delay.as_secs())
        })
        .collect()
}

async fn empty_core(settings: CoreSettings) -> LocalStack {
    LocalStack::start_with_core(
        &[],
        CoreStart {
            settings,
            empty: true,
        },
    )
    .await
    .unwrap()
}

fn volume_customer(stack: &LocalStack) -> i64 {
    stack.maxio_core.add_customer(json!({
        "name": "Larkspur Analytics, Inc.",
        "number": stack.id("VolumeAccount").to_string(),
    }))
}

#[tokio::test]
async fn a_seeded_deal_ends_with_its_core_contract_carrying_the_subscription_id() {
    let stack = LocalStack::start().await.unwrap();

    run_deal(&stack, "VolumeOpportunity").await;

    let subscription = subscription_id(&stack, "VolumeOpportunity");
    let linked: Vec<Value> = stack
        .maxio_core
        .contracts()
        .into_iter()
        .filter(|c| c["text_field2"] == subscription.as_str())
        .collect();
    assert_eq!(linked.len(), 1, "{linked:?}");
    assert_eq!(linked[0]["number"], "LARK-2027");
    let core = stack.maxio_core.observer();
    assert_eq!(core.count(core_routes::CONTRACT_PATCH), 1);
    let opp = opportunity(&stack, "VolumeOpportunity");
    assert_eq!(opp["Maxio_Sync_Status__c"], "Synced");
    assert_eq!(opp["Maxio_Core_Link_Status__c"], "Linked");
    assert_eq!(
        opp["Maxio_Core_Contract_Id__c"],
        linked[0]["id"].to_string().as_str()
    );
    assert!(opp["Maxio_Core_Link_Error__c"].is_null());
    assert_eq!(
        stack
            .salesforce
            .observer()
            .count(sf_routes::COLLECTIONS_PATCH),
        1,
        "the AB outcome and the link are written in one call"
    );
    assert!(link_waits(&stack).is_empty());
}

#[tokio::test]
async fn the_single_active_contract_is_linked_when_none_names_the_opportunity() {
    let stack = LocalStack::start().await.unwrap();

    run_deal(&stack, "GraduatedOpportunity").await;

    let subscription = subscription_id(&stack, "GraduatedOpportunity");
    let contract = stack
        .maxio_core
        .contracts()
        .into_iter()
        .find(|c| c["number"] == "COBALT-ARCHIVE")
        .unwrap();
    assert_eq!(contract["text_field2"], subscription.as_str());
    assert_eq!(
        opportunity(&stack, "GraduatedOpportunity")["Maxio_Core_Link_Status__c"],
        "Linked"
    );
}

#[tokio::test]
async fn a_contract_already_carrying_the_subscription_is_not_patched_again() {
    let stack = LocalStack::start().await.unwrap();
    run_deal(&stack, "VolumeOpportunity").await;
    let core = stack.maxio_core.observer();
    assert_eq!(core.count(core_routes::CONTRACT_PATCH), 1);

    // The whole chain again (the plan skips an Opportunity that has its subscription id, so
    // clear it as a person might): the subscription is found in AB and the link in Core.
    stack.advance(Duration::from_secs(600));
    let opp = stack.id("VolumeOpportunity");
    stack.salesforce.with_org(|org| {
        let mut f = serde_json::Map::new();
        f.insert("Maxio_Subscription_Id__c".into(), Value::Null);
        org.update(Some("Opportunity"), opp.as_str(), &f).unwrap();
    });
    run_deal(&stack, "VolumeOpportunity").await;

    assert_eq!(core.count(core_routes::CONTRACT_PATCH), 1);
    assert_eq!(
        core.count(core_routes::CONTRACTS),
        2,
        "the second run did look"
    );
    assert_eq!(
        opportunity(&stack, "VolumeOpportunity")["Maxio_Core_Link_Status__c"],
        "Linked"
    );
}

#[tokio::test]
async fn a_contract_that_appears_on_the_third_attempt_is_linked_after_two_delayed_retries() {
    let stack = empty_core(CoreSettings::default()).await;
    let customer = volume_customer(&stack);
    let contract_id = stack.maxio_core.add_contract_visible_after(
        json!({"customer": customer, "sf_id": stack.id("VolumeOpportunity").to_string(), "is_active": true}),
        3,
    );

    run_deal(&stack, "VolumeOpportunity").await;

    assert_eq!(link_waits(&stack), [60, 300], "waited 1 then 5 minutes");
    let subscription = subscription_id(&stack, "VolumeOpportunity");
    assert_eq!(
        contract(&stack, contract_id)["text_field2"],
        subscription.as_str()
    );
    let core = stack.maxio_core.observer();
    assert_eq!(core.count(core_routes::CONTRACTS), 3);
    assert_eq!(core.count(core_routes::CONTRACT_PATCH), 1);
    let opp = opportunity(&stack, "VolumeOpportunity");
    assert_eq!(opp["Maxio_Core_Link_Status__c"], "Linked");
    assert_eq!(
        opp["Maxio_Core_Contract_Id__c"],
        contract_id.to_string().as_str()
    );
    assert!(opp["Maxio_Core_Link_Error__c"].is_null());
    assert_eq!(opp["Maxio_Sync_Status__c"], "Synced");
    assert_eq!(
        stack
            .salesforce
            .observer()
            .count(sf_routes::COLLECTIONS_PATCH),
        2,
        "Synced + Pending while waiting, then Linked"
    );
    assert!(
        stack
            .queue
            .dead_letters(QueueName::MaxioCoreLink)
            .is_empty()
    );
}

#[tokio::test]
async fn while_core_has_not_synced_the_opportunity_shows_the_sync_and_the_pending_link() {
    let stack = empty_core(CoreSettings::default()).await;
    send_deal(&stack, "VolumeOpportunity").await;

    // Run the workers, but not the delayed queue: the link has asked to come back later.
    for _ in 0..20 {
        for queue in [
            QueueName::MaxioCustomer,
            QueueName::MaxioPricePoints,
            QueueName::MaxioSubscription,
            QueueName::MaxioCoreLink,
        ] {
            let batch = stack.queue.receive(queue, 10);
            if batch.is_empty() {
                continue;
            }
            let event = dealbridge_sandbox::local::sqs_event(&batch);
            let router = stack.router();
            let handler = router.handler(queue).unwrap();
            let failures =
                dealbridge::runner::run_batch(queue, handler.as_ref(), &stack.queue, &event, None)
                    .await;
            assert!(failures.batch_item_failures.is_empty());
            for r in &batch {
                stack.queue.delete(queue, &r.receipt);
            }
        }
    }

    let opp = opportunity(&stack, "VolumeOpportunity");
    assert_eq!(opp["Maxio_Sync_Status__c"], "Synced");
    assert_eq!(opp["Maxio_Core_Link_Status__c"], "Pending");
    let reason = opp["Maxio_Core_Link_Error__c"].as_str().unwrap();
    assert!(
        reason.starts_with("waiting for Maxio Core: no Maxio Core customer has number = "),
        "{reason}"
    );
    assert_eq!(link_waits(&stack), [60]);
}

#[tokio::test]
async fn a_contract_that_never_appears_ends_in_the_dead_letter_queue_with_the_pending_message() {
    let stack = empty_core(CoreSettings::default()).await;
    volume_customer(&stack);

    run_deal(&stack, "VolumeOpportunity").await;

    let waits = link_waits(&stack);
    assert_eq!(
        &waits[..4],
        [60, 300, 900, 900],
        "1, 5, 15 minutes, then an hour in 15-minute hops"
    );
    let dead = stack.queue.dead_letters(QueueName::MaxioCoreLink);
    assert_eq!(dead.len(), 1, "the link is dead-lettered, not lost");
    let opp = opportunity(&stack, "VolumeOpportunity");
    assert_eq!(opp["Maxio_Sync_Status__c"], "Synced");
    assert_eq!(opp["Maxio_Core_Link_Status__c"], "Pending");
    let account = stack.id("VolumeAccount");
    let reason = opp["Maxio_Core_Link_Error__c"].as_str().unwrap();
    assert!(
        reason.starts_with(&format!(
            "Core link pending: no contract for account {account} in Maxio Core after 24 hours"
        )),
        "{reason}"
    );
    assert_eq!(
        stack
            .maxio_core
            .observer()
            .count(core_routes::CONTRACT_PATCH),
        0
    );
    let Step::MaxioCoreLink { link } = Envelope::parse(&dead[0]).unwrap().step else {
        panic!("a link message")
    };
    let elapsed = stack.clock_now() - link.started_at.unwrap();
    assert!(elapsed >= 24 * 3600, "waited {elapsed} s");
}

#[tokio::test]
async fn two_candidate_contracts_give_the_ambiguity_error_and_no_patch() {
    let stack = empty_core(CoreSettings::default()).await;
    let customer = volume_customer(&stack);
    let a = stack
        .maxio_core
        .add_contract(json!({"customer": customer, "is_active": true, "number": "A"}));
    let b = stack
        .maxio_core
        .add_contract(json!({"customer": customer, "is_active": true, "number": "B"}));

    run_deal(&stack, "VolumeOpportunity").await;

    let opp = opportunity(&stack, "VolumeOpportunity");
    assert_eq!(opp["Maxio_Sync_Status__c"], "Synced");
    assert_eq!(opp["Maxio_Core_Link_Status__c"], "Failed");
    let opportunity_id = stack.id("VolumeOpportunity");
    assert_eq!(
        opp["Maxio_Core_Link_Error__c"],
        format!(
            "CORE_CONTRACT_AMBIGUOUS: Maxio Core customer {customer} has 2 contracts that could belong to Opportunity {opportunity_id} ({a}, {b}); set sf_id = {opportunity_id} on the right one"
        )
        .as_str()
    );
    assert_eq!(
        stack
            .maxio_core
            .observer()
            .count(core_routes::CONTRACT_PATCH),
        0
    );
    assert!(link_waits(&stack).is_empty(), "no retry storm");
    assert!(
        stack
            .queue
            .dead_letters(QueueName::MaxioCoreLink)
            .is_empty()
    );
}

#[tokio::test]
async fn a_customer_on_page_3_is_found_when_the_tenant_ignores_the_filter() {
    let stack = empty_core(CoreSettings {
        unsupported_filters: vec!["number".into()],
        ..CoreSettings::default()
    })
    .await;
    for n in 0..230 {
        stack
            .maxio_core
            .add_customer(json!({"name": format!("Other {n}"), "number": format!("N-{n}")}));
    }
    let customer = volume_customer(&stack);
    for n in 230..260 {
        stack
            .maxio_core
            .add_customer(json!({"name": format!("Other {n}"), "number": format!("N-{n}")}));
    }
    let contract_id = stack
        .maxio_core
        .add_contract(json!({"customer": customer, "is_active": true}));

    run_deal(&stack, "VolumeOpportunity").await;

    assert_eq!(
        contract(&stack, contract_id)["text_field2"],
        subscription_id(&stack, "VolumeOpportunity").as_str()
    );
    let pages = stack.maxio_core.observer().count(core_routes::CUSTOMERS);
    assert_eq!(pages, 3, "261 customers at 100 a page, followed to the end");
    assert_eq!(
        opportunity(&stack, "VolumeOpportunity")["Maxio_Core_Link_Status__c"],
        "Linked"
    );
}

#[tokio::test]
async fn throttling_by_core_is_waited_out_and_the_link_completes() {
    let stack = LocalStack::start().await.unwrap();
    stack
        .maxio_core
        .observer()
        .inject(core_routes::CUSTOMERS, throttled(0).times(2));

    run_deal(&stack, "FlatFeeOpportunity").await;

    assert_eq!(
        opportunity(&stack, "FlatFeeOpportunity")["Maxio_Core_Link_Status__c"],
        "Linked"
    );
    assert_eq!(stack.maxio_core.observer().count(core_routes::CUSTOMERS), 3);
}

#[tokio::test]
async fn a_refused_core_token_is_shown_as_pending_until_someone_fixes_it() {
    let stack = LocalStack::start().await.unwrap();
    stack.secrets.insert(
        dealbridge_sandbox::local::MAXIO_CORE_SECRET,
        json!({"api_token": "revoked"}).to_string(),
    );
    send_deal(&stack, "FlatFeeOpportunity").await;
    stack.drain(8).await;
    let opp = opportunity(&stack, "FlatFeeOpportunity");
    assert_eq!(opp["Maxio_Core_Link_Status__c"], "Pending");
    assert!(
        opp["Maxio_Core_Link_Error__c"]
            .as_str()
            .unwrap()
            .contains("Maxio Core refused the API token"),
        "{opp:?}"
    );

    // The operator puts the right token back; the next try links the contract.
    stack.secrets.insert(
        dealbridge_sandbox::local::MAXIO_CORE_SECRET,
        json!({"api_token": stack.maxio_core.settings().api_token}).to_string(),
    );
    stack.drain(2000).await;
    assert_eq!(
        opportunity(&stack, "FlatFeeOpportunity")["Maxio_Core_Link_Status__c"],
        "Linked"
    );
}

#[tokio::test]
async fn the_ledger_tells_each_step_of_the_deal_with_its_ids() {
    use dealbridge::ledger::{Ledger, StepStatus};
    let stack = LocalStack::start().await.unwrap();
    run_deal(&stack, "VolumeOpportunity").await;

    let deal = stack.id("VolumeOpportunity").to_string();
    let steps = stack.ledger.for_deal(&deal).await.unwrap();
    let story: Vec<(&str, StepStatus)> =
        steps.iter().map(|r| (r.step.as_str(), r.status)).collect();
    assert_eq!(
        story,
        [
            ("maxio-core-link", StepStatus::Completed),
            ("maxio-customer", StepStatus::Completed),
            ("maxio-price-points", StepStatus::Completed),
            ("maxio-subscription", StepStatus::Completed),
        ]
    );
    let opp = opportunity(&stack, "VolumeOpportunity");
    let by_step = |name: &str| steps.iter().find(|r| r.step == name).unwrap();
    assert_eq!(
        by_step("maxio-customer").target("maxio_customer_id"),
        opp["Maxio_Customer_Id__c"].as_str()
    );
    assert_eq!(
        by_step("maxio-subscription").target("maxio_subscription_id"),
        opp["Maxio_Subscription_Id__c"].as_str()
    );
    assert_eq!(
        by_step("maxio-core-link").target("maxio_core_contract_id"),
        opp["Maxio_Core_Contract_Id__c"].as_str()
    );
    assert!(
        by_step("maxio-price-points")
            .target("maxio_price_point_ids")
            .is_some()
    );
}
