//! The billing sync end to end: a subscription's state changed in AB (past due, canceled)
//! reaches its Opportunity through AB's event log and an upsert by subscription id; a second run
//! sends nothing; a run stopped by its bounds or by a Salesforce failure resumes from its cursor
//! without gaps or repeats, as the fakes' request logs show.

use std::sync::Arc;

use dealbridge::billing::sync::{
    LedgerCursors, SiteReport, SyncBounds, SyncRequest, cursor_key, sync_site,
};
use dealbridge::maxio::options::DEFAULT_SITE;
use dealbridge_sandbox::local::LocalStack;
use dealbridge_sandbox::observe::Fault;
use dealbridge_sandbox::salesforce::routes;
use serde_json::{Value, json};

use crate::support::{billed, record};

const CANCELLED: &str = "\u{25b3}Cancelled";

fn request(bounds: SyncBounds) -> SyncRequest {
    SyncRequest {
        site: DEFAULT_SITE.into(),
        since: None,
        dry_run: false,
        bounds,
    }
}

async fn sync(stack: &LocalStack, request: &SyncRequest) -> Result<SiteReport, String> {
    let site = stack.maxio.sites.get(DEFAULT_SITE).expect("default site");
    let cursors = LedgerCursors {
        ledger: stack.maxio.ledger.clone(),
        clock: Arc::new(stack.clock.clone()),
    };
    sync_site(
        site.ab.as_ref(),
        stack.client.as_ref(),
        &cursors,
        &stack.maxio.mapping,
        &stack.clock,
        request,
    )
    .await
    .map_err(|e| e.to_string())
}

/// The Opportunities each accepted billing-sync call wrote (sObject Collections updates carrying
/// the billing state), in order.
fn written(stack: &LocalStack) -> Vec<Vec<String>> {
    stack
        .salesforce
        .observer()
        .requests()
        .into_iter()
        .filter(|r| r.route == routes::COLLECTIONS_PATCH && !r.injected)
        .filter_map(|r| {
            let body: Value = serde_json::from_str(&r.body).expect("json body");
            let records = body["records"].as_array()?.clone();
            let billing = records
                .iter()
                .any(|rec| rec.get("Maxio_Billing_State__c").is_some());
            billing.then(|| {
                records
                    .iter()
                    .map(|rec| rec["id"].as_str().unwrap().to_string())
                    .collect()
            })
        })
        .collect()
}

#[tokio::test]
async fn a_past_due_then_canceled_subscription_reaches_its_opportunity_and_a_rerun_sends_nothing() {
    let stack = LocalStack::start().await.unwrap();
    let sub = billed(&stack, "VolumeOpportunity").await;
    let stage_before = record(&stack, "VolumeOpportunity")["StageName"].clone();
    stack.maxio_ab.set_state(sub, "past_due").unwrap();

    let report = sync(&stack, &request(SyncBounds::default())).await.unwrap();
    assert!(report.caught_up, "{report:?}");
    assert_eq!(report.written, [sub.to_string()]);
    assert_eq!(report.salesforce_calls, 1);
    assert!(report.failed.is_empty(), "{report:?}");
    let opp = record(&stack, "VolumeOpportunity");
    assert_eq!(opp["Maxio_Billing_State__c"], "past_due");
    assert_eq!(opp["StageName"], stage_before, "past due leaves the stage");
    assert_eq!(opp["Maxio_Cancel_At_Period_End__c"], false);
    assert!(opp["Maxio_Next_Billing_At__c"].is_string(), "{opp:?}");
    assert!(opp["Maxio_Recurring_Amount__c"].is_number(), "{opp:?}");
    let cursor = report.cursor.expect("a cursor");
    let stored = stack
        .maxio
        .ledger
        .get(&cursor_key(DEFAULT_SITE), "billing-events-cursor")
        .await
        .unwrap()
        .expect("the cursor is kept");
    assert_eq!(stored.targets["since_id"], cursor.to_string());

    let again = sync(&stack, &request(SyncBounds::default())).await.unwrap();
    assert_eq!(
        (again.events, again.salesforce_calls, again.cursor),
        (0, 0, Some(cursor))
    );

    stack.maxio_ab.set_state(sub, "canceled").unwrap();
    let report = sync(&stack, &request(SyncBounds::default())).await.unwrap();
    assert_eq!(report.written, [sub.to_string()]);
    let opp = record(&stack, "VolumeOpportunity");
    assert_eq!(opp["Maxio_Billing_State__c"], "canceled");
    assert_eq!(opp["StageName"], CANCELLED);
    assert_eq!(written(&stack).len(), 2, "one call per run with changes");
}

#[tokio::test]
async fn a_dry_run_shows_the_fields_and_writes_nothing() {
    let stack = LocalStack::start().await.unwrap();
    let sub = billed(&stack, "VolumeOpportunity").await;
    stack.maxio_ab.set_state(sub, "past_due").unwrap();
    let mut dry = request(SyncBounds::default());
    dry.dry_run = true;
    let report = sync(&stack, &dry).await.unwrap();
    assert_eq!(report.planned.len(), 1);
    assert_eq!(
        report.planned[0].1["Maxio_Billing_State__c"],
        json!("past_due")
    );
    assert_eq!(report.salesforce_calls, 0);
    assert!(written(&stack).is_empty());
    assert!(
        record(&stack, "VolumeOpportunity")["Maxio_Billing_State__c"].is_null(),
        "nothing written"
    );
    let stored = stack
        .maxio
        .ledger
        .get(&cursor_key(DEFAULT_SITE), "billing-events-cursor")
        .await
        .unwrap();
    assert!(stored.is_none(), "the cursor does not move");
}

#[tokio::test]
async fn a_run_stopped_after_some_batches_resumes_without_gaps_or_repeats() {
    let stack = LocalStack::start().await.unwrap();
    let mut subs = Vec::new();
    for opp in [
        "VolumeOpportunity",
        "GraduatedOpportunity",
        "FlatFeeOpportunity",
        "NoScheduleOpportunity",
    ] {
        subs.push(billed(&stack, opp).await);
    }
    // A first run takes the log as it is: the subscriptions as created.
    let first = sync(&stack, &request(SyncBounds::default())).await.unwrap();
    assert!(first.caught_up);
    stack.salesforce.observer().clear_log();
    for sub in &subs {
        stack.maxio_ab.set_state(*sub, "past_due").unwrap();
    }

    // One subscription a batch; the run's Salesforce calls are spent after the first.
    let bounded = SyncBounds {
        max_salesforce_calls: 1,
        batch: 1,
        ..SyncBounds::default()
    };
    let stopped = sync(&stack, &request(bounded)).await.unwrap();
    assert!(!stopped.caught_up);
    assert!(stopped.stopped.is_some(), "{stopped:?}");
    assert_eq!(stopped.written, [subs[0].to_string()]);

    // The next run's first call fails: Salesforce refuses it as a whole, and the run stops.
    stack.salesforce.observer().inject(
        routes::COLLECTIONS_PATCH,
        Fault::json(
            400,
            json!([{"message": "Request body is malformed", "errorCode": "JSON_PARSER_ERROR"}]),
        ),
    );
    let two = SyncBounds {
        batch: 1,
        ..SyncBounds::default()
    };
    let failed = sync(&stack, &request(two)).await;
    assert!(failed.is_err(), "{failed:?}");

    let rest = sync(&stack, &request(two)).await.unwrap();
    assert!(rest.caught_up, "{rest:?}");
    let sent: Vec<String> = written(&stack).into_iter().flatten().collect();
    let expected: Vec<String> = [
        "VolumeOpportunity",
        "GraduatedOpportunity",
        "FlatFeeOpportunity",
        "NoScheduleOpportunity",
    ]
    .iter()
    .map(|r| stack.id(r).to_string())
    .collect();
    assert_eq!(sent, expected, "each subscription once, in order");
    for opp in [
        "VolumeOpportunity",
        "GraduatedOpportunity",
        "FlatFeeOpportunity",
        "NoScheduleOpportunity",
    ] {
        assert_eq!(record(&stack, opp)["Maxio_Billing_State__c"], "past_due");
    }
}

#[tokio::test]
async fn a_subscription_whose_opportunity_is_gone_is_reported_kept_and_creates_nothing() {
    let stack = LocalStack::start().await.unwrap();
    let sub = billed(&stack, "VolumeOpportunity").await;
    let id = stack.id("VolumeOpportunity");
    stack.salesforce.with_org(|org| {
        org.delete(Some("Opportunity"), id.as_str()).unwrap();
    });
    let opportunities = stack
        .salesforce
        .with_org(|org| org.records("Opportunity").len());
    stack.maxio_ab.set_state(sub, "past_due").unwrap();

    let report = sync(&stack, &request(SyncBounds::default())).await.unwrap();
    assert!(report.written.is_empty(), "{report:?}");
    assert_eq!(report.failed.len(), 1, "{report:?}");
    assert_eq!(report.failed[0].0, sub.to_string());
    assert!(
        report.failed[0].1.contains("ENTITY_IS_DELETED"),
        "{report:?}"
    );
    assert_eq!(
        report.salesforce_calls, 2,
        "the batch, then the record alone"
    );
    assert_eq!(
        stack
            .salesforce
            .with_org(|org| org.records("Opportunity").len()),
        opportunities,
        "nothing is created"
    );
    assert!(
        report.caught_up,
        "a refused record does not hold the cursor"
    );

    // The refusal is kept: the next run, with no new event, tries it again and says so.
    let again = sync(&stack, &request(SyncBounds::default())).await.unwrap();
    assert_eq!(again.events, 0);
    assert_eq!(again.failed.len(), 1, "{again:?}");
}

#[tokio::test]
async fn an_amended_contract_s_billing_state_is_written_to_its_first_sale_only() {
    let stack = LocalStack::start().await.unwrap();
    let sub = billed(&stack, "VolumeOpportunity").await;
    // A later Opportunity of the same Contract carries the same subscription id.
    let later = stack.id("GraduatedOpportunity");
    stack.salesforce.with_org(|org| {
        let same = json!({"Maxio_Subscription_Id__c": sub.to_string()});
        org.update(None, later.as_str(), same.as_object().unwrap())
            .unwrap();
    });
    stack.maxio_ab.set_state(sub, "past_due").unwrap();
    let report = sync(&stack, &request(SyncBounds::default())).await.unwrap();
    assert!(report.failed.is_empty(), "{report:?}");
    assert_eq!(report.written, [sub.to_string()]);
    assert_eq!(
        record(&stack, "VolumeOpportunity")["Maxio_Billing_State__c"],
        "past_due"
    );
    assert!(record(&stack, "GraduatedOpportunity")["Maxio_Billing_State__c"].is_null());
}

#[tokio::test]
async fn a_suspended_and_a_terminated_whmcs_service_reach_their_order_products_once() {
    use dealbridge::billing::services_sync::sync_services;
    use dealbridge_sandbox::whmcs::model::ServiceStatus;

    let stack = LocalStack::start().await.unwrap();
    crate::support::provision_internet_order(&stack).await;
    let services = stack.whmcs.services();
    let run = |dry_run: bool| {
        let stack = &stack;
        async move {
            sync_services(
                stack.whmcs_deps.whmcs.as_ref(),
                stack.client.as_ref(),
                stack.client.as_ref(),
                stack.client.as_ref(),
                &stack.maxio.mapping,
                &stack.clock,
                &dealbridge::billing::services_sync::ServicesRequest {
                    dry_run,
                    ..Default::default()
                },
            )
            .await
            .unwrap()
        }
    };
    // The first run shows every service as WHMCS has it, and sums them up on the Order and the
    // Opportunity (a second call).
    let first = run(false).await;
    assert_eq!(first.services, 3);
    assert_eq!(first.written.len(), 3, "{first:?}");
    assert_eq!(first.rolled_up.len(), 2, "{first:?}");
    assert_eq!(first.salesforce_calls, 2);
    let order = record(&stack, "InternetOrder");
    assert_eq!(order["WHMCS_Services_Status__c"], "Active");
    let quiet = run(false).await;
    assert!(quiet.written.is_empty(), "nothing changed: {quiet:?}");
    assert_eq!(quiet.salesforce_calls, 0);

    stack
        .whmcs
        .set_service_status(services[0].id, ServiceStatus::Suspended);
    stack
        .whmcs
        .set_service_status(services[1].id, ServiceStatus::Terminated);
    let dry = run(true).await;
    assert_eq!(dry.written.len(), 2);
    assert_eq!(dry.salesforce_calls, 0);
    let changed = run(false).await;
    let mut written = changed.written.clone();
    written.sort();
    let mut expected = vec![services[0].id.to_string(), services[1].id.to_string()];
    expected.sort();
    assert_eq!(written, expected);
    assert_eq!(changed.salesforce_calls, 2);
    let order = record(&stack, "InternetOrder");
    assert_eq!(
        order["WHMCS_Services_Status__c"],
        "Active (1), Suspended (1), Terminated (1)"
    );
    let statuses: Vec<(String, String)> = stack.salesforce.with_org(|org| {
        org.records("OrderItem")
            .into_iter()
            .filter(|r| !r["WHMCS_Service_ID__c"].is_null())
            .map(|r| {
                (
                    r["WHMCS_Service_ID__c"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                    r["WHMCS_Service_Status__c"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                )
            })
            .collect()
    });
    let status_of = |id: u64| {
        statuses
            .iter()
            .find(|(s, _)| *s == id.to_string())
            .map(|(_, st)| st.clone())
    };
    assert_eq!(status_of(services[0].id).as_deref(), Some("Suspended"));
    assert_eq!(status_of(services[1].id).as_deref(), Some("Terminated"));
    assert_eq!(status_of(services[2].id).as_deref(), Some("Active"));
}
