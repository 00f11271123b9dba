//! The idempotency ledger on DynamoDB (moto's server). Every scenario runs against the DynamoDB
//! adapter and the in-memory one, and both must end with the same records, so the local runner
//! behaves like a deployment.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use aws_sdk_dynamodb::types::{AttributeValue, TimeToLiveStatus};
use chrono::{DateTime, TimeDelta, Utc};
use dealbridge::ledger::{
    Begin, DEFAULT_RETENTION, DynamoDbLedger, InMemoryLedger, Ledger, LedgerErrorKind, StepRecord,
    StepStatus, TTL_ATTRIBUTE,
};
use dealbridge_sandbox::aws::create_ledger_table;
use dealbridge_sandbox::moto::Moto;

const DEAL: &str = "0065g00000AbCdEAAV";
const STEP: &str = "8015g00000XyZaBAAV:whmcs-provision";
const TABLE: &str = "dealbridge-ledger";

fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-28T10:00:00Z")
        .unwrap()
        .to_utc()
}

fn at(minutes: i64) -> DateTime<Utc> {
    t0() + TimeDelta::minutes(minutes)
}

fn targets(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

async fn dynamodb(moto: &Moto) -> aws_sdk_dynamodb::Client {
    let client = aws_sdk_dynamodb::Client::new(&moto.sdk_config().await);
    create_ledger_table(&client, TABLE)
        .await
        .expect("the ledger table is created");
    client
}

/// Runs `scenario` against the in-memory ledger and against DynamoDB on a fresh moto server, and
/// checks that both end with the same records.
async fn on_both<F, Fut>(scenario: F)
where
    F: Fn(Arc<dyn Ledger>) -> Fut,
    Fut: Future<Output = Vec<StepRecord>>,
{
    eprintln!("in memory");
    let memory = scenario(Arc::new(InMemoryLedger::default())).await;
    eprintln!("on DynamoDB");
    let moto = Moto::start().await.expect("moto starts");
    let client = dynamodb(&moto).await;
    let stored = scenario(Arc::new(DynamoDbLedger::new(
        client,
        TABLE.to_string(),
        DEFAULT_RETENTION,
    )))
    .await;
    assert_eq!(
        memory, stored,
        "the in-memory ledger ends where DynamoDB does"
    );
}

async fn start_and_wait(ledger: Arc<dyn Ledger>) -> Vec<StepRecord> {
    let got = ledger.begin(DEAL, STEP, at(0), at(15)).await.unwrap();
    let Begin::Started(first) = got else {
        panic!("{got:?}")
    };
    assert_eq!(first.status, StepStatus::InProgress);
    assert_eq!(first.attempts, 1);
    assert_eq!((first.started_at, first.updated_at), (at(0), at(0)));
    assert_eq!(first.lease_until, Some(at(15)));
    assert!(first.targets.is_empty() && first.last_error.is_none());
    assert_eq!(ledger.get(DEAL, STEP).await.unwrap().as_ref(), Some(&first));

    let again = ledger.begin(DEAL, STEP, at(15), at(30)).await.unwrap();
    assert_eq!(
        again,
        Begin::Busy(first),
        "the lease still runs at its last instant"
    );
    ledger.for_deal(DEAL).await.unwrap()
}

#[tokio::test]
async fn a_new_step_starts_with_one_attempt_and_a_live_lease_makes_the_next_wait() {
    on_both(start_and_wait).await;
}

async fn die_and_resume(ledger: Arc<dyn Ledger>) -> Vec<StepRecord> {
    ledger.begin(DEAL, STEP, at(0), at(15)).await.unwrap();
    ledger
        .record_targets(
            DEAL,
            STEP,
            &targets(&[("whmcs_baseline_order_id", "7")]),
            at(1),
        )
        .await
        .unwrap();
    // One answer's ids go in one write, merged with what was recorded before.
    ledger
        .record_targets(
            DEAL,
            STEP,
            &targets(&[("whmcs_order_id", "123"), ("whmcs_service_ids", "1,2")]),
            at(1),
        )
        .await
        .unwrap();
    // The attempt dies here, before completing.
    let got = ledger.begin(DEAL, STEP, at(16), at(31)).await.unwrap();
    let Begin::Resumed(resumed) = got else {
        panic!("{got:?}")
    };
    assert_eq!(resumed.attempts, 2);
    assert_eq!(resumed.target("whmcs_order_id"), Some("123"));
    assert_eq!(resumed.target("whmcs_service_ids"), Some("1,2"));
    assert_eq!(resumed.target("whmcs_baseline_order_id"), Some("7"));
    assert_eq!(resumed.lease_until, Some(at(31)));
    assert_eq!(resumed.started_at, at(0));
    assert_eq!(resumed.updated_at, at(16));
    let third = ledger.begin(DEAL, STEP, at(17), at(32)).await.unwrap();
    assert_eq!(
        third,
        Begin::Busy(resumed),
        "the resumed attempt holds the lease"
    );
    ledger.for_deal(DEAL).await.unwrap()
}

#[tokio::test]
async fn an_attempt_that_died_is_resumed_with_the_target_it_recorded() {
    on_both(die_and_resume).await;
}

async fn complete_and_be_done(ledger: Arc<dyn Ledger>) -> Vec<StepRecord> {
    ledger.begin(DEAL, STEP, at(0), at(15)).await.unwrap();
    ledger
        .record_targets(DEAL, STEP, &targets(&[("whmcs_order_id", "123")]), at(1))
        .await
        .unwrap();
    let done = ledger
        .complete(DEAL, STEP, &targets(&[("service_ids", "7,8")]), at(2))
        .await
        .unwrap();
    assert_eq!(done.status, StepStatus::Completed);
    assert_eq!(
        done.targets,
        targets(&[("service_ids", "7,8"), ("whmcs_order_id", "123")])
    );
    assert_eq!(done.lease_until, None);
    assert_eq!(done.updated_at, at(2));

    let next = ledger.begin(DEAL, STEP, at(3), at(18)).await.unwrap();
    assert_eq!(next, Begin::Done(done.clone()));

    // A repeat of writes that already landed is accepted; different values are not.
    let repeat = ledger
        .complete(DEAL, STEP, &targets(&[("service_ids", "7,8")]), at(4))
        .await
        .unwrap();
    assert_eq!(repeat, done);
    ledger
        .record_targets(DEAL, STEP, &targets(&[("whmcs_order_id", "123")]), at(4))
        .await
        .unwrap();
    let err = ledger
        .record_targets(DEAL, STEP, &targets(&[("whmcs_order_id", "999")]), at(4))
        .await
        .unwrap_err();
    assert!(err.is_conflict() && !err.retryable, "{err:?}");
    assert!(err.message.contains("it is COMPLETED"), "{err}");
    ledger.for_deal(DEAL).await.unwrap()
}

#[tokio::test]
async fn a_completed_step_is_done_with_every_target_recorded() {
    on_both(complete_and_be_done).await;
}

async fn fail_and_start_again(ledger: Arc<dyn Ledger>) -> Vec<StepRecord> {
    ledger.begin(DEAL, STEP, at(0), at(15)).await.unwrap();
    let failed = ledger
        .fail(DEAL, STEP, "WHMCS said: Invalid Product ID", at(1))
        .await
        .unwrap();
    assert_eq!(failed.status, StepStatus::Failed);
    assert_eq!(failed.lease_until, None);
    assert_eq!(
        failed.last_error.as_deref(),
        Some("WHMCS said: Invalid Product ID")
    );

    let got = ledger.begin(DEAL, STEP, at(2), at(17)).await.unwrap();
    let Begin::Started(retry) = got else {
        panic!("{got:?}")
    };
    assert_eq!(retry.attempts, 2);
    assert_eq!(
        retry.last_error.as_deref(),
        Some("WHMCS said: Invalid Product ID"),
        "the error stays on record while the retry runs"
    );
    let done = ledger
        .complete(DEAL, STEP, &targets(&[("whmcs_order_id", "124")]), at(3))
        .await
        .unwrap();
    assert_eq!(done.last_error, None, "completion clears it");
    assert_eq!(done.attempts, 2);

    let err = ledger.fail(DEAL, STEP, "late", at(4)).await.unwrap_err();
    assert!(err.is_conflict() && !err.retryable, "{err:?}");
    ledger.for_deal(DEAL).await.unwrap()
}

#[tokio::test]
async fn a_failed_step_starts_again_and_keeps_its_error_until_it_completes() {
    on_both(fail_and_start_again).await;
}

async fn fail_before_begin(ledger: Arc<dyn Ledger>) -> Vec<StepRecord> {
    let err = ledger
        .record_targets(DEAL, STEP, &targets(&[("whmcs_order_id", "1")]), at(0))
        .await
        .unwrap_err();
    assert_eq!(err.kind, LedgerErrorKind::Conflict);
    assert!(!err.retryable);
    assert!(err.message.contains("no step in progress"), "{err}");
    let err = ledger
        .complete(DEAL, STEP, &BTreeMap::new(), at(0))
        .await
        .unwrap_err();
    assert!(err.message.contains("no step in progress"), "{err}");
    assert_eq!(ledger.get(DEAL, STEP).await.unwrap(), None);

    let failed = ledger
        .fail(DEAL, STEP, "the Order has no WHMCS product", at(1))
        .await
        .unwrap();
    assert_eq!(failed.status, StepStatus::Failed);
    assert_eq!(failed.attempts, 0);
    assert_eq!(failed.started_at, at(1));
    let again = ledger
        .fail(DEAL, STEP, "still no WHMCS product", at(2))
        .await
        .unwrap();
    assert_eq!(again.last_error.as_deref(), Some("still no WHMCS product"));
    assert_eq!(again.started_at, at(1));
    ledger.for_deal(DEAL).await.unwrap()
}

#[tokio::test]
async fn a_step_that_fails_before_any_attempt_is_recorded_and_other_writes_need_one_in_progress() {
    on_both(fail_before_begin).await;
}

async fn race(ledger: Arc<dyn Ledger>) -> Vec<StepRecord> {
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let ledger = ledger.clone();
        tasks.push(tokio::spawn(async move {
            ledger.begin(DEAL, STEP, at(0), at(15)).await
        }));
    }
    let mut started = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(Begin::Started(_)) => started += 1,
            Ok(Begin::Busy(_)) => {}
            // Lost the race while the record kept changing: "try later", as Busy says.
            Err(e) if e.is_conflict() && e.retryable => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(started, 1, "exactly one attempt gets the lease");

    // The lease runs out: of many attempts resuming at once, one wins.
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let ledger = ledger.clone();
        tasks.push(tokio::spawn(async move {
            ledger.begin(DEAL, STEP, at(20), at(35)).await
        }));
    }
    let mut resumed = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(Begin::Resumed(_)) => resumed += 1,
            Ok(Begin::Busy(_)) => {}
            Err(e) if e.is_conflict() && e.retryable => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(resumed, 1, "exactly one attempt takes over");
    ledger.for_deal(DEAL).await.unwrap()
}

/// Only the in-memory ledger is raced: moto's server runs requests on parallel threads without
/// serializing `UpdateItem`, so two conditional writes can both pass there (seen in practice),
/// while DynamoDB evaluates a condition and applies the write atomically. Against moto the same
/// conditions are checked one after another (`a_new_step_starts_with_one_attempt_and_a_live_lease_makes_the_next_wait`,
/// `an_attempt_that_died_is_resumed_with_the_target_it_recorded`).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_many_concurrent_begins_exactly_one_starts_and_exactly_one_resumes() {
    race(Arc::new(InMemoryLedger::default())).await;
}

async fn deals_apart(ledger: Arc<dyn Ledger>) -> Vec<StepRecord> {
    for (deal, step) in [
        (DEAL, "whmcs-provision"),
        ("0065g00000ZzZzZAAV", "maxio-customer"),
        (DEAL, "maxio-customer"),
        (DEAL, "maxio-subscription"),
    ] {
        ledger.begin(deal, step, at(0), at(15)).await.unwrap();
    }
    ledger
        .fail(DEAL, "maxio-subscription", "422 from Maxio", at(1))
        .await
        .unwrap();
    let records = ledger.for_deal(DEAL).await.unwrap();
    let steps: Vec<(&str, &str, StepStatus)> = records
        .iter()
        .map(|r| (r.deal_id.as_str(), r.step.as_str(), r.status))
        .collect();
    assert_eq!(
        steps,
        [
            (DEAL, "maxio-customer", StepStatus::InProgress),
            (DEAL, "maxio-subscription", StepStatus::Failed),
            (DEAL, "whmcs-provision", StepStatus::InProgress),
        ]
    );
    assert!(
        ledger
            .for_deal("0065g00000NoNeXAAV")
            .await
            .unwrap()
            .is_empty()
    );
    records
}

#[tokio::test]
async fn for_deal_lists_every_step_of_a_deal_by_name_and_no_other_deals() {
    on_both(deals_apart).await;
}

#[tokio::test]
async fn each_write_stores_its_expiry_as_a_number_and_the_table_expires_records_by_it() {
    let moto = Moto::start().await.expect("moto starts");
    let client = dynamodb(&moto).await;
    let ledger = DynamoDbLedger::new(client.clone(), TABLE.to_string(), DEFAULT_RETENTION);
    ledger.begin(DEAL, STEP, at(0), at(15)).await.unwrap();
    let done = ledger
        .complete(DEAL, STEP, &targets(&[("whmcs_order_id", "123")]), at(5))
        .await
        .unwrap();

    let raw = client
        .get_item()
        .table_name(TABLE)
        .key("deal", AttributeValue::S(DEAL.into()))
        .key("step", AttributeValue::S(STEP.into()))
        .send()
        .await
        .unwrap();
    let item = raw.item().expect("the record is stored");
    let expires = item[TTL_ATTRIBUTE].as_n().expect("a number");
    let ninety_days_on = (at(5) + TimeDelta::days(90)).timestamp();
    assert_eq!(expires.parse::<i64>().unwrap(), ninety_days_on);
    assert_eq!(done.expires_at, ninety_days_on);
    assert_eq!(item["status"].as_s().unwrap(), "COMPLETED");
    assert_eq!(item["attempts"].as_n().unwrap(), "1");
    assert_eq!(
        item["updated_at"].as_s().unwrap(),
        "2026-11-28T10:05:00.000Z"
    );
    assert!(!item.contains_key("lease_until") && !item.contains_key("last_error"));
    assert_eq!(
        item["targets"].as_m().unwrap()["whmcs_order_id"]
            .as_s()
            .unwrap(),
        "123"
    );

    let ttl = client
        .describe_time_to_live()
        .table_name(TABLE)
        .send()
        .await
        .unwrap();
    let ttl = ttl.time_to_live_description().expect("a TTL description");
    assert_eq!(ttl.time_to_live_status(), Some(&TimeToLiveStatus::Enabled));
    assert_eq!(ttl.attribute_name(), Some(TTL_ATTRIBUTE));
}

#[tokio::test]
async fn a_missing_table_is_an_error_that_names_it_and_is_not_retried() {
    let moto = Moto::start().await.expect("moto starts");
    let client = aws_sdk_dynamodb::Client::new(&moto.sdk_config().await);
    let ledger = DynamoDbLedger::new(client, "no-such-table".to_string(), DEFAULT_RETENTION);
    let err = ledger.begin(DEAL, STEP, at(0), at(15)).await.unwrap_err();
    assert_eq!(err.kind, LedgerErrorKind::Invalid);
    assert!(!err.retryable);
    assert!(err.message.contains("no-such-table"), "{err}");
    let err = ledger.for_deal(DEAL).await.unwrap_err();
    assert!(err.message.contains("no-such-table"), "{err}");
}

#[tokio::test]
async fn an_unreachable_store_is_a_retryable_outage() {
    let moto = Moto::start().await.expect("moto starts");
    let config = moto.sdk_config().await;
    drop(moto);
    let client = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&config)
            .retry_config(aws_sdk_dynamodb::config::retry::RetryConfig::disabled())
            .build(),
    );
    let ledger = DynamoDbLedger::new(client, TABLE.to_string(), DEFAULT_RETENTION);
    let err = ledger.get(DEAL, STEP).await.unwrap_err();
    assert_eq!(err.kind, LedgerErrorKind::Unavailable);
    assert!(err.retryable);
}

async fn noted(ledger: Arc<dyn Ledger>) -> Vec<StepRecord> {
    let mut ids = BTreeMap::new();
    ids.insert("maxio_subscription_id".to_string(), "7003".to_string());
    let waiting = ledger
        .note(
            DEAL,
            "maxio-subscription",
            StepStatus::InProgress,
            &BTreeMap::new(),
            Some("AB answered 502"),
            at(0),
        )
        .await
        .unwrap();
    assert_eq!(
        (waiting.attempts, waiting.status),
        (1, StepStatus::InProgress)
    );
    let done = ledger
        .note(
            DEAL,
            "maxio-subscription",
            StepStatus::Completed,
            &ids,
            None,
            at(1),
        )
        .await
        .unwrap();
    assert_eq!((done.attempts, done.status), (2, StepStatus::Completed));
    assert_eq!(done.target("maxio_subscription_id"), Some("7003"));
    assert_eq!(done.last_error, None);
    assert_eq!(done.started_at, at(0));
    let kept = ledger
        .note(
            DEAL,
            "maxio-subscription",
            StepStatus::Completed,
            &BTreeMap::new(),
            None,
            at(2),
        )
        .await
        .unwrap();
    assert_eq!(kept.target("maxio_subscription_id"), Some("7003"));
    ledger.for_deal(DEAL).await.unwrap()
}

#[tokio::test]
async fn a_noted_step_counts_its_attempts_and_keeps_its_latest_outcome() {
    on_both(noted).await;
}
