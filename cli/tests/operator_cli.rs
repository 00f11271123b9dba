//! The `dealbridge` binary against the sandbox: the fakes (Salesforce org, Maxio AB, Maxio Core,
//! WHMCS) run in the test process and moto holds the queues, dead-letter queues, secrets and the
//! ledger table; the CLI runs as a subprocess with the environment `make sandbox` writes, and the
//! fakes' state and request logs show what it did.

use std::collections::HashMap;
use std::process::Stdio;
use std::time::Duration;

use aws_sdk_sqs::types::QueueAttributeName;
use dealbridge::queue::QueueName;
use dealbridge::salesforce::SfId;
use dealbridge_sandbox::maxio_ab::routes as ab_routes;
use dealbridge_sandbox::maxio_core::{CoreSettings, MaxioCoreSandbox};
use dealbridge_sandbox::salesforce::routes as sf_routes;
use dealbridge_sandbox::serve_all::{SandboxOptions, ServedSandbox, serve_sandbox};
use serde_json::{Map, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_dealbridge");

/// What one run of the CLI printed, and how it exited.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not one JSON document ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }

    fn expect(self, code: i32) -> Run {
        assert_eq!(
            self.code, code,
            "exit code\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

/// Runs the CLI with exactly `env` (nothing of the test's own environment leaks in).
async fn dealbridge_with(env: &[(String, String)], args: &[&str]) -> Run {
    let out = Command::new(BIN)
        .args(args)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .stdin(Stdio::null())
        .output()
        .await
        .expect("the dealbridge binary runs");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs the CLI with the sandbox's environment.
async fn dealbridge(sandbox: &ServedSandbox, args: &[&str]) -> Run {
    dealbridge_with(&sandbox.env, args).await
}

async fn sandbox() -> ServedSandbox {
    serve_sandbox(&SandboxOptions::ephemeral())
        .await
        .expect("the sandbox starts (moto needs the project venv: make venv)")
}

fn id(sandbox: &ServedSandbox, reference: &str) -> SfId {
    sandbox
        .id_of(reference)
        .unwrap_or_else(|| panic!("no seeded record {reference}"))
}

fn record(sandbox: &ServedSandbox, id: &SfId) -> Map<String, Value> {
    sandbox
        .salesforce
        .record(id.as_str())
        .unwrap_or_else(|| panic!("no record {id}"))
}

fn field(record: &Map<String, Value>, name: &str) -> String {
    match record.get(name) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

async fn sqs(sandbox: &ServedSandbox) -> aws_sdk_sqs::Client {
    let moto = sandbox.moto.as_ref().expect("moto runs");
    aws_sdk_sqs::Client::new(&moto.sdk_config().await)
}

/// How many messages a queue holds (visible, in flight or delayed), as moto counts them.
async fn depth(sqs: &aws_sdk_sqs::Client, url: &str) -> u64 {
    let out = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesDelayed)
        .send()
        .await
        .unwrap();
    let attributes = out.attributes().cloned().unwrap_or_default();
    [
        QueueAttributeName::ApproximateNumberOfMessages,
        QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
        QueueAttributeName::ApproximateNumberOfMessagesDelayed,
    ]
    .iter()
    .filter_map(|a| attributes.get(a).and_then(|v| v.parse::<u64>().ok()))
    .sum()
}

fn queue_url(sandbox: &ServedSandbox, queue: QueueName) -> String {
    sandbox
        .queues
        .as_ref()
        .and_then(|q| q.get(queue))
        .expect("the queue exists")
        .to_string()
}

fn dead_letter_url(sandbox: &ServedSandbox, queue: QueueName) -> String {
    sandbox
        .dead_letter_queues
        .as_ref()
        .and_then(|q| q.get(queue))
        .expect("the dead-letter queue exists")
        .to_string()
}

/// The environment with one variable replaced (or added).
fn env_with(sandbox: &ServedSandbox, name: &str, value: &str) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = sandbox
        .env
        .iter()
        .filter(|(k, _)| k != name)
        .cloned()
        .collect();
    env.push((name.to_string(), value.to_string()));
    env
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_shows_the_plan_and_every_request_and_sends_no_write() {
    let sandbox = sandbox().await;
    let opportunity = id(&sandbox, "VolumeOpportunity");
    let before = record(&sandbox, &opportunity);

    let run = dealbridge(&sandbox, &["sync", opportunity.as_str(), "--dry-run"])
        .await
        .expect(0);
    for needle in [
        "Plan:",
        "Maxio Advanced Billing: ",
        "POST ",
        "/customers.json",
        "\"uniqueness_token\"",
        "\"pricing_scheme\": \"volume\"",
        "/subscriptions.json",
        "Maxio Core",
        "PATCH ",
        "\"text_field2\"",
        "Nothing was written",
    ] {
        assert!(
            run.stdout.contains(needle),
            "{needle:?} missing in:\n{}",
            run.stdout
        );
    }

    let ab: Vec<String> = sandbox
        .maxio_ab
        .observer()
        .requests()
        .into_iter()
        .map(|r| r.route)
        .collect();
    assert!(
        !ab.is_empty() && ab.iter().all(|r| r.starts_with("GET ")),
        "Maxio AB is read (site, product, components, what exists), never written: {ab:?}"
    );
    assert_eq!(
        sandbox.maxio_ab_uk.observer().total(),
        sandbox.maxio_ab_uk.observer().count(ab_routes::SITE),
        "the other site is only asked for its currencies"
    );
    assert_eq!(
        sandbox.maxio_core.observer().total(),
        0,
        "no request to Maxio Core"
    );
    assert_eq!(sandbox.whmcs.observer().total(), 0, "no request to WHMCS");
    let salesforce: Vec<String> = sandbox
        .salesforce
        .observer()
        .requests()
        .iter()
        .map(|r| r.route.clone())
        .collect();
    assert!(
        salesforce
            .iter()
            .all(|r| r == sf_routes::TOKEN || r == sf_routes::COMPOSITE),
        "only the token and the composite read: {salesforce:?}"
    );
    assert_eq!(
        salesforce
            .iter()
            .filter(|r| *r == sf_routes::COMPOSITE)
            .count(),
        1,
        "one read: {salesforce:?}"
    );
    assert_eq!(
        record(&sandbox, &opportunity),
        before,
        "the Opportunity is unchanged"
    );
    assert_eq!(
        depth(
            &sqs(&sandbox).await,
            &queue_url(&sandbox, QueueName::MaxioCustomer)
        )
        .await,
        0,
        "nothing was enqueued"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_shows_validation_problems_with_their_codes_and_exits_1() {
    let sandbox = sandbox().await;
    let opportunity = id(&sandbox, "NoEmailOpportunity");
    let run = dealbridge(&sandbox, &["sync", opportunity.as_str(), "--dry-run"])
        .await
        .expect(1);
    assert!(
        run.stdout.contains("MAXIO_NO_BILLING_EMAIL: "),
        "{}",
        run.stdout
    );
    let json = dealbridge(
        &sandbox,
        &["--json", "sync", opportunity.as_str(), "--dry-run"],
    )
    .await
    .expect(1)
    .json();
    assert_eq!(json["wouldFail"], true);
    assert_eq!(
        json["maxio"]["problems"][0]["code"],
        "MAXIO_NO_BILLING_EMAIL"
    );
    assert_eq!(json["maxio"]["problems"][0]["kind"], "permanent");
    assert!(
        sandbox
            .maxio_ab
            .observer()
            .requests()
            .iter()
            .all(|r| r.route.starts_with("GET ")),
        "the dry run only reads AB"
    );

    // The real sync fails at the same check: the step's error carries its code and kind as
    // fields, and nothing is written to AB.
    let real = dealbridge(&sandbox, &["--json", "sync", opportunity.as_str()])
        .await
        .expect(1)
        .json();
    let step = &real["steps"][0];
    assert_eq!(step["step"], "maxio-customer", "{real}");
    assert_eq!(step["outcome"], "permanent", "{real}");
    assert_eq!(step["error"]["code"], "MAXIO_NO_BILLING_EMAIL", "{real}");
    assert_eq!(step["error"]["kind"], "permanent", "{real}");
    assert!(
        sandbox
            .maxio_ab
            .observer()
            .requests()
            .iter()
            .all(|r| r.route.starts_with("GET ")),
        "nothing is written to AB"
    );
}

/// Every credential the sandbox holds.
fn secrets(sandbox: &ServedSandbox) -> Vec<String> {
    let whmcs = sandbox.whmcs.settings();
    vec![
        sandbox.salesforce.settings().client_secret,
        sandbox.maxio_ab.settings().api_key,
        sandbox.maxio_core.settings().api_token,
        whmcs.identifier,
        whmcs.secret,
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_of_the_internet_order_shows_the_addorder_form_and_no_credential() {
    let sandbox = sandbox().await;
    let order = id(&sandbox, "InternetOrder");
    let text = dealbridge(&sandbox, &["sync", order.as_str(), "--dry-run"])
        .await
        .expect(0);
    for needle in [
        "WHMCS provisioning of Order",
        "action=AddOrder",
        "clientid=1",
        "pid[0]=185",
        "billingcycle[1]=onetime",
        "pid[2]=246",
        "action=AcceptOrder",
        "Activation_Status__c",
    ] {
        assert!(
            text.stdout.contains(needle),
            "{needle:?} missing in:\n{}",
            text.stdout
        );
    }
    let json = dealbridge(&sandbox, &["--json", "sync", order.as_str(), "--dry-run"])
        .await
        .expect(0)
        .json();
    let form = &json["whmcs"][0]["requests"][1]["form"];
    assert_eq!(form[0], serde_json::json!(["action", "AddOrder"]));
    let actions: Vec<String> = sandbox
        .whmcs
        .observer()
        .requests()
        .into_iter()
        .map(|r| r.body)
        .collect();
    assert!(
        actions
            .iter()
            .all(|b| b.contains("action=GetClientsDetails") || b.contains("action=GetCurrencies")),
        "WHMCS is only read (the client's currency): {actions:?}"
    );
    assert_eq!(sandbox.whmcs.order_count(), 0);

    let real = dealbridge(&sandbox, &["sync", order.as_str()])
        .await
        .expect(0);
    for run in [&text, &real] {
        for secret in secrets(&sandbox) {
            assert!(
                !run.stdout.contains(&secret) && !run.stderr.contains(&secret),
                "a credential was printed"
            );
        }
    }
    assert!(!json.to_string().contains(&sandbox.whmcs.settings().secret));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dry_run_bodies_are_the_ones_the_real_sync_posts() {
    let sandbox = sandbox().await;
    let opportunity = id(&sandbox, "FlatFeeOpportunity");
    let dry = dealbridge(
        &sandbox,
        &["--json", "sync", opportunity.as_str(), "--dry-run"],
    )
    .await
    .expect(0)
    .json();
    let requests = dry["maxio"]["requests"].as_array().unwrap().clone();
    let planned_body = |suffix: &str| -> Value {
        requests
            .iter()
            .find(|r| r["method"] == "POST" && r["url"].as_str().unwrap().ends_with(suffix))
            .unwrap_or_else(|| panic!("no POST …{suffix} in {requests:?}"))["body"]
            .clone()
    };

    dealbridge(&sandbox, &["sync", opportunity.as_str()])
        .await
        .expect(0);
    let posted = |route: &str| -> Value {
        let logged = sandbox
            .maxio_ab
            .observer()
            .requests()
            .into_iter()
            .find(|r| r.route == route)
            .unwrap_or_else(|| panic!("no {route}"));
        serde_json::from_str(&logged.body).unwrap()
    };
    assert_eq!(
        posted(ab_routes::CUSTOMERS_CREATE),
        planned_body("/customers.json")
    );
    assert_eq!(
        posted(ab_routes::PRICE_POINTS_CREATE),
        planned_body("/price_points.json")
    );
    let subscription = posted(ab_routes::SUBSCRIPTIONS_CREATE);
    let planned = planned_body("/subscriptions.json");
    assert_eq!(
        subscription["uniqueness_token"],
        planned["uniqueness_token"]
    );
    for key in ["product_handle", "reference", "payment_collection_method"] {
        assert_eq!(
            subscription["subscription"][key], planned["subscription"][key],
            "{key}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_bills_the_deal_links_core_and_writes_salesforce_and_a_second_sync_creates_nothing()
{
    let sandbox = sandbox().await;
    let opportunity = id(&sandbox, "VolumeOpportunity");

    let run = dealbridge(&sandbox, &["sync", opportunity.as_str()])
        .await
        .expect(0);
    for needle in [
        "maxio-customer",
        "maxio-price-points",
        "maxio-subscription",
        "maxio-core-link",
        "COMPLETED",
        "Salesforce now shows:",
        "Maxio_Sync_Status__c = Synced",
    ] {
        assert!(
            run.stdout.contains(needle),
            "{needle:?} missing in:\n{}",
            run.stdout
        );
    }
    assert_eq!(sandbox.maxio_ab.customers().len(), 1);
    let subscriptions = sandbox.maxio_ab.subscriptions();
    assert_eq!(subscriptions.len(), 1);
    let subscription_id = subscriptions[0]["id"].to_string();
    let contract = sandbox
        .maxio_core
        .contracts()
        .into_iter()
        .find(|c| c["number"] == "LARK-2027")
        .unwrap();
    assert_eq!(
        contract["text_field2"].as_str(),
        Some(subscription_id.as_str())
    );
    let opp = record(&sandbox, &opportunity);
    assert_eq!(field(&opp, "Maxio_Sync_Status__c"), "Synced");
    assert_eq!(field(&opp, "Maxio_Subscription_Id__c"), subscription_id);
    assert_eq!(field(&opp, "Maxio_Core_Link_Status__c"), "Linked");
    assert_eq!(
        field(&opp, "Maxio_Core_Contract_Id__c"),
        contract["id"].to_string()
    );

    let ab_posts = |s: &ServedSandbox| {
        s.maxio_ab
            .observer()
            .requests()
            .iter()
            .filter(|r| r.method == "POST")
            .count()
    };
    let posts = ab_posts(&sandbox);
    let price_points = sandbox.maxio_ab.price_points().len();
    let again = dealbridge(&sandbox, &["--json", "sync", opportunity.as_str()])
        .await
        .expect(0)
        .json();
    assert_eq!(again["steps"], Value::Array(vec![]), "{again}");
    assert!(
        again["plan"]["skipped"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("already has Maxio subscription"),
        "{again}"
    );
    assert_eq!(ab_posts(&sandbox), posts, "nothing new was posted to AB");
    assert_eq!(sandbox.maxio_ab.customers().len(), 1);
    assert_eq!(sandbox.maxio_ab.subscriptions().len(), 1);
    assert_eq!(sandbox.maxio_ab.price_points().len(), price_points);
    assert_eq!(
        sandbox
            .maxio_core
            .observer()
            .requests()
            .iter()
            .filter(|r| r.method == "PATCH")
            .count(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_of_the_internet_order_provisions_one_whmcs_order() {
    let sandbox = sandbox().await;
    let order = id(&sandbox, "InternetOrder");
    let before = sandbox.whmcs.order_count();

    let run = dealbridge(&sandbox, &["--json", "sync", order.as_str()])
        .await
        .expect(0)
        .json();
    assert_eq!(sandbox.whmcs.order_count(), before + 1);
    let placed = sandbox
        .whmcs
        .orders()
        .into_iter()
        .max_by_key(|o| o.id)
        .unwrap();
    let step = &run["steps"][0];
    assert_eq!(step["step"], "whmcs-provision");
    assert_eq!(step["status"], "COMPLETED");
    assert_eq!(step["outcome"], "done");
    assert!(step["error"].is_null(), "{step}");
    assert_eq!(
        step["ledger"]["targets"]["whmcs_order_id"],
        placed.id.to_string()
    );
    let written = record(&sandbox, &order);
    assert_eq!(field(&written, "WHMCS_Order_Id__c"), placed.id.to_string());
    assert_eq!(field(&written, "Activation_Status__c"), "Provisioned");
    let shown: Vec<String> = run["salesforce"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["record"].as_str().unwrap().to_string())
        .collect();
    assert!(shown.contains(&format!("Order {order}")), "{shown:?}");

    dealbridge(&sandbox, &["sync", order.as_str()])
        .await
        .expect(0);
    assert_eq!(sandbox.whmcs.order_count(), before + 1, "provisioned once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_after_a_sync_shows_the_ledger_records() {
    let sandbox = sandbox().await;
    let opportunity = id(&sandbox, "GraduatedOpportunity");
    let order = id(&sandbox, "InternetOrder");
    dealbridge(&sandbox, &["sync", opportunity.as_str()])
        .await
        .expect(0);
    dealbridge(&sandbox, &["sync", order.as_str()])
        .await
        .expect(0);

    let run = dealbridge(&sandbox, &["status", opportunity.as_str()])
        .await
        .expect(0);
    for needle in [
        "step",
        "attempts",
        "last error",
        "maxio-customer",
        "maxio-price-points",
        "maxio-subscription",
        "maxio-core-link",
        "COMPLETED",
        "maxio_subscription_id=",
        "Ids: AB site default, AB customer ",
        "AB subscription ",
    ] {
        assert!(
            run.stdout.contains(needle),
            "{needle:?} missing in:\n{}",
            run.stdout
        );
    }
    let json = dealbridge(&sandbox, &["--json", "status", opportunity.as_str()])
        .await
        .expect(0)
        .json();
    let steps: Vec<&str> = json["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["step"].as_str().unwrap())
        .collect();
    assert_eq!(
        steps,
        [
            "maxio-core-link",
            "maxio-customer",
            "maxio-price-points",
            "maxio-subscription"
        ]
    );
    let whmcs = dealbridge(&sandbox, &["--json", "status", order.as_str()])
        .await
        .expect(0)
        .json();
    assert_eq!(whmcs["records"][0]["step"], "whmcs-provision");
    assert_eq!(whmcs["records"][0]["status"], "COMPLETED");

    let env = env_with(&sandbox, "LEDGER_TABLE_NAME", "");
    let run = dealbridge_with(&env, &["status", order.as_str()])
        .await
        .expect(2);
    assert!(
        run.stderr.contains("LEDGER_TABLE_NAME is not set"),
        "{}",
        run.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn billing_sync_writes_what_ab_shows_a_dry_run_writes_nothing_and_a_rerun_sends_nothing() {
    let sandbox = sandbox().await;
    let opportunity = id(&sandbox, "GraduatedOpportunity");
    dealbridge(&sandbox, &["sync", opportunity.as_str()])
        .await
        .expect(0);
    let sub: i64 = field(&record(&sandbox, &opportunity), "Maxio_Subscription_Id__c")
        .parse()
        .expect("a subscription id");
    sandbox.maxio_ab.set_state(sub, "past_due").unwrap();

    let dry = dealbridge(
        &sandbox,
        &["--json", "billing-sync", "--site", "default", "--dry-run"],
    )
    .await
    .expect(0)
    .json();
    let planned = &dry["sites"][0]["planned"];
    assert_eq!(planned[0]["subscription"], sub.to_string(), "{dry}");
    assert_eq!(planned[0]["fields"]["Maxio_Billing_State__c"], "past_due");
    assert_eq!(dry["sites"][0]["salesforceCalls"], 0);
    assert_eq!(dry["whmcs"]["salesforceCalls"], 0, "{dry}");
    assert_eq!(
        field(&record(&sandbox, &opportunity), "Maxio_Billing_State__c"),
        ""
    );

    let run = dealbridge(&sandbox, &["billing-sync"]).await.expect(0);
    assert!(run.stdout.contains("caught up"), "{}", run.stdout);
    assert_eq!(
        field(&record(&sandbox, &opportunity), "Maxio_Billing_State__c"),
        "past_due"
    );
    let again = dealbridge(&sandbox, &["--json", "billing-sync"])
        .await
        .expect(0)
        .json();
    for site in again["sites"].as_array().unwrap() {
        assert_eq!(site["events"], 0, "{again}");
        assert_eq!(site["salesforceCalls"], 0, "{again}");
    }

    // Where the site's sync stands, from the ledger.
    let cursor = again["sites"][0]["cursor"].as_i64().expect("a cursor");
    let status = dealbridge(&sandbox, &["status", "billing:default"])
        .await
        .expect(0);
    assert!(
        status
            .stdout
            .contains(&format!("Last event handled: {cursor}")),
        "{}",
        status.stdout
    );
    let none = dealbridge(&sandbox, &["status", "billing:nowhere"])
        .await
        .expect(0);
    assert!(none.stdout.contains("No cursor"), "{}", none.stdout);

    let unknown = dealbridge(&sandbox, &["billing-sync", "--site", "nowhere"])
        .await
        .expect(2);
    assert!(unknown.stderr.contains("nowhere"), "{}", unknown.stderr);
    let ambiguous = dealbridge(&sandbox, &["billing-sync", "--since", "5"])
        .await
        .expect(2);
    assert!(ambiguous.stderr.contains("--site"), "{}", ambiguous.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_that_waits_for_maxio_core_says_so_and_hands_the_wait_to_the_delayed_queue() {
    let sandbox = sandbox().await;
    let empty_core = MaxioCoreSandbox::start(CoreSettings::default())
        .await
        .unwrap();
    let env = env_with(&sandbox, "MAXIO_CORE_BASE_URL", &empty_core.base_url());
    let opportunity = id(&sandbox, "VolumeOpportunity");

    let run = dealbridge_with(&env, &["sync", opportunity.as_str()])
        .await
        .expect(0);
    assert!(
        run.stdout.contains("waiting for Maxio Core"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("the deployed functions will retry"),
        "{}",
        run.stdout
    );
    let opp = record(&sandbox, &opportunity);
    assert_eq!(field(&opp, "Maxio_Sync_Status__c"), "Synced");
    assert_eq!(field(&opp, "Maxio_Core_Link_Status__c"), "Pending");
    assert_eq!(
        depth(
            &sqs(&sandbox).await,
            &queue_url(&sandbox, QueueName::Delayed)
        )
        .await,
        1,
        "the wait is on the deployed delayed queue"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconcile_reports_in_a_dry_run_and_enqueues_on_the_deployed_queues_otherwise() {
    let sandbox = sandbox().await;
    let opportunity = id(&sandbox, "VolumeOpportunity");
    let now = chrono::Utc::now();
    sandbox.salesforce.with_org(|org| {
        org.set_clock(now - chrono::Duration::days(30));
        for sobject in ["Opportunity", "Order"] {
            let ids: Vec<String> = org
                .records(sobject)
                .iter()
                .filter_map(|r| r.get("Id").and_then(Value::as_str).map(str::to_string))
                .collect();
            for id in ids {
                org.update(Some(sobject), &id, &Map::new()).unwrap();
            }
        }
        org.set_clock(now - chrono::Duration::hours(2));
        org.update(Some("Opportunity"), opportunity.as_str(), &Map::new())
            .unwrap();
        org.set_clock(now);
    });

    let run = dealbridge(&sandbox, &["reconcile", "--dry-run", "--since", "1d"])
        .await
        .expect(0);
    assert!(run.stdout.contains("dry run"), "{}", run.stdout);
    assert!(run.stdout.contains("would dispatch 1"), "{}", run.stdout);
    let json = dealbridge(
        &sandbox,
        &["--json", "reconcile", "--dry-run", "--since", "1d"],
    )
    .await
    .expect(0)
    .json();
    let report = &json["report"];
    assert_eq!(report["dryRun"], true);
    assert_eq!(report["opportunities"]["ids"][0], opportunity.as_str());
    assert_eq!(report["opportunities"]["dispatched"], 1);
    let sqs = sqs(&sandbox).await;
    let customer_queue = queue_url(&sandbox, QueueName::MaxioCustomer);
    assert_eq!(
        depth(&sqs, &customer_queue).await,
        0,
        "a dry run enqueues nothing"
    );

    let too_short = dealbridge(&sandbox, &["reconcile", "--dry-run", "--since", "10m"])
        .await
        .expect(2);
    assert!(
        too_short.stderr.contains("grace period"),
        "{}",
        too_short.stderr
    );

    dealbridge(&sandbox, &["reconcile", "--since", "1d"])
        .await
        .expect(0);
    assert_eq!(depth(&sqs, &customer_queue).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redrive_lists_in_a_dry_run_and_moves_the_dead_letters_back() {
    let sandbox = sandbox().await;
    let sqs = sqs(&sandbox).await;
    let queue = queue_url(&sandbox, QueueName::WhmcsProvision);
    let dlq = dead_letter_url(&sandbox, QueueName::WhmcsProvision);
    for n in 0..3 {
        sqs.send_message()
            .queue_url(&dlq)
            .message_body(format!("{{\"dead\":{n}}}"))
            .message_group_id("001A000010khO8JIAU")
            .message_deduplication_id(format!("dead-{n}"))
            .send()
            .await
            .unwrap();
    }

    let listed = dealbridge(
        &sandbox,
        &["--json", "redrive", "whmcs-provision", "--dry-run"],
    )
    .await
    .expect(0)
    .json();
    assert_eq!(listed["report"]["dryRun"], true);
    assert_eq!(listed["report"]["moved"], 0);
    assert!(
        listed["report"]["received"].as_u64().unwrap() >= 1,
        "{listed}"
    );
    assert_eq!(listed["deadLetterQueueUrl"], dlq.as_str());
    assert_eq!(depth(&sqs, &queue).await, 0, "a dry run moves nothing");
    assert_eq!(depth(&sqs, &dlq).await, 3);

    let one = dealbridge(&sandbox, &["redrive", "whmcs-provision", "--max", "1"])
        .await
        .expect(0);
    assert!(one.stdout.contains("Moved 1 of 1"), "{}", one.stdout);
    let rest = dealbridge(&sandbox, &["--json", "redrive", "whmcs-provision"])
        .await
        .expect(0)
        .json();
    assert_eq!(rest["report"]["moved"], 2);
    assert_eq!(depth(&sqs, &queue).await, 3);
    assert_eq!(depth(&sqs, &dlq).await, 0);

    let run = dealbridge(&sandbox, &["redrive", "whmcs"]).await.expect(2);
    assert!(run.stderr.contains("\"whmcs\""), "{}", run.stderr);
}

#[tokio::test]
async fn help_works_for_every_subcommand() {
    let top = dealbridge_with(&[], &["--help"]).await.expect(0);
    for sub in [
        "sync",
        "status",
        "reconcile",
        "billing-sync",
        "redrive",
        "sandbox",
    ] {
        assert!(
            top.stdout.contains(sub),
            "{sub} missing in:\n{}",
            top.stdout
        );
        let run = dealbridge_with(&[], &[sub, "--help"]).await.expect(0);
        assert!(
            run.stdout.contains("Usage: dealbridge"),
            "{sub}:\n{}",
            run.stdout
        );
        assert!(run.stdout.contains("--json"), "{sub}:\n{}", run.stdout);
    }
}

#[tokio::test]
async fn a_malformed_id_exits_2_with_a_message_naming_it() {
    for command in ["sync", "status"] {
        let run = dealbridge_with(&[], &[command, "006NOTANID"])
            .await
            .expect(2);
        assert!(
            run.stderr.contains("\"006NOTANID\""),
            "{command}: {}",
            run.stderr
        );
        assert!(run.stdout.is_empty());
    }
    let run = dealbridge_with(&[], &["--json", "sync", "001A000010khO8J", "--dry-run"])
        .await
        .expect(2);
    let json = run.json();
    assert_eq!(json["error"]["kind"], "usage");
    assert!(
        json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("key prefix is 001"),
        "{json}"
    );
}

#[tokio::test]
async fn a_missing_configuration_exits_2_naming_every_variable() {
    let run = dealbridge_with(&[], &["--json", "sync", "006A000010khO8J", "--dry-run"])
        .await
        .expect(2);
    let problems = run.json()["error"]["problems"].clone();
    let text = problems.to_string();
    assert!(text.contains("SALESFORCE_LOGIN_URL is not set"), "{text}");
    assert!(text.contains("SALESFORCE_SECRET_NAME is not set"), "{text}");
    assert!(
        !run.stderr.contains("error:"),
        "with --json the error is printed once, as JSON: {}",
        run.stderr
    );
    let run = dealbridge_with(&[], &["redrive", "delayed"])
        .await
        .expect(2);
    assert!(
        run.stderr.contains("DELAYED_QUEUE_URL is not set"),
        "{}",
        run.stderr
    );
}

#[tokio::test]
async fn the_env_file_is_loaded_before_the_configuration_is_read() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    let path = dir.join(format!("cli-env-{}.env", std::process::id()));
    std::fs::write(
        &path,
        "# written by a test\nSALESFORCE_LOGIN_URL=http://example.com\nSALESFORCE_SECRET_NAME=s\n",
    )
    .unwrap();
    let run = dealbridge_with(
        &[],
        &[
            "--env-file",
            path.to_str().unwrap(),
            "sync",
            "006A000010khO8J",
            "--dry-run",
        ],
    )
    .await
    .expect(2);
    assert!(
        run.stderr
            .contains("SALESFORCE_LOGIN_URL \"http://example.com\" is malformed"),
        "{}",
        run.stderr
    );
    let missing = dealbridge_with(
        &[],
        &[
            "--env-file",
            "/nonexistent/x.env",
            "status",
            "006A000010khO8J",
        ],
    )
    .await
    .expect(2);
    assert!(
        missing.stderr.contains("/nonexistent/x.env"),
        "{}",
        missing.stderr
    );
    let _ = std::fs::remove_file(&path);
}

#[tokio::test]
async fn the_sandbox_command_serves_the_fakes_and_writes_their_environment() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    let env_file = dir.join(format!("cli-sandbox-{}.env", std::process::id()));
    let _ = std::fs::remove_file(&env_file);
    let mut child = Command::new(BIN)
        .args([
            "sandbox",
            "--aws",
            "false",
            "--salesforce-port",
            "0",
            "--maxio-ab-port",
            "0",
            "--maxio-core-port",
            "0",
            "--whmcs-port",
            "0",
            "--write-env",
            env_file.to_str().unwrap(),
        ])
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let mut seen = Vec::new();
    let ready = tokio::time::timeout(Duration::from_secs(60), async {
        while let Ok(Some(line)) = lines.next_line().await {
            let done = line.contains("Press Ctrl-C");
            seen.push(line);
            if done {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(ready, Ok(true), "the sandbox did not come up: {seen:?}");
    let text = std::fs::read_to_string(&env_file).unwrap();
    let env: HashMap<&str, &str> = text.lines().filter_map(|l| l.split_once('=')).collect();
    let login = env["SALESFORCE_LOGIN_URL"];
    assert!(login.starts_with("http://127.0.0.1:"), "{login}");
    let token = reqwest::Client::new()
        .post(format!("{login}/services/oauth2/token"))
        .send()
        .await
        .unwrap();
    assert!(token.status().is_client_error(), "the fake org answers");
    child.kill().await.unwrap();
    let _ = std::fs::remove_file(&env_file);
}

/// The first code of each flow the dry run says would fail, and whether it would fail at all.
fn dry_verdict(dry: &Value) -> (bool, Vec<String>) {
    let mut codes = Vec::new();
    if let Some(first) = dry["maxio"]["problems"].as_array().and_then(|p| p.first()) {
        codes.push(first["code"].as_str().unwrap_or_default().to_string());
    }
    for w in dry["whmcs"].as_array().into_iter().flatten() {
        if let Some(first) = w["problems"].as_array().and_then(|p| p.first())
            && first["code"] != "WHMCS_ORDER_EXISTS"
        {
            codes.push(first["code"].as_str().unwrap_or_default().to_string());
        }
    }
    (dry["wouldFail"] == true, codes)
}

/// Whether the sync failed, and the code of each step that did.
fn sync_verdict(run: &Value) -> (bool, Vec<String>) {
    let codes = run["steps"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|s| s["failed"] == true)
        .filter_map(|s| s["error"]["code"].as_str().map(str::to_string))
        .collect();
    (run["failed"] == true, codes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn for_every_seeded_deal_the_dry_run_fails_exactly_where_the_sync_does() {
    let sandbox = serve_sandbox(&SandboxOptions {
        broken_subscription: true,
        ..SandboxOptions::ephemeral()
    })
    .await
    .expect("the sandbox starts");
    let mut verdicts = Vec::new();
    for reference in dealbridge_sandbox::serve_all::SEEDED_DEALS {
        let deal = id(&sandbox, reference);
        let dry = dealbridge(&sandbox, &["--json", "sync", deal.as_str(), "--dry-run"]).await;
        let dry_json = dry.json();
        let writes_before: Vec<String> = [&sandbox.maxio_ab, &sandbox.maxio_ab_uk]
            .iter()
            .flat_map(|s| s.observer().requests())
            .filter(|r| !r.route.starts_with("GET "))
            .map(|r| r.route)
            .collect();
        let real = dealbridge(&sandbox, &["--json", "sync", deal.as_str()]).await;
        let real_json = real.json();
        let (would_fail, dry_codes) = dry_verdict(&dry_json);
        let (failed, sync_codes) = sync_verdict(&real_json);
        assert_eq!(
            (would_fail, &dry_codes),
            (failed, &sync_codes),
            "{reference}: the dry run said {dry_codes:?}, the sync failed with {sync_codes:?}\ndry run:\n{dry_json:#}\nsync:\n{real_json:#}"
        );
        assert_eq!(
            dry.code,
            i32::from(would_fail),
            "{reference}: dry-run exit code"
        );
        if would_fail
            && dry_codes.iter().all(|c| {
                ["MAXIO_", "CURRENCY_", "AMENDMENT_", "CONTRACT_"]
                    .iter()
                    .any(|p| c.starts_with(p))
            })
        {
            let writes_after: Vec<String> = [&sandbox.maxio_ab, &sandbox.maxio_ab_uk]
                .iter()
                .flat_map(|s| s.observer().requests())
                .filter(|r| !r.route.starts_with("GET "))
                .map(|r| r.route)
                .collect();
            assert_eq!(
                writes_after, writes_before,
                "{reference}: refused, yet written to AB"
            );
        }
        verdicts.push((reference.to_string(), failed, sync_codes));
    }
    let failing: Vec<&str> = verdicts
        .iter()
        .filter(|(_, failed, _)| *failed)
        .map(|(r, _, _)| r.as_str())
        .collect();
    assert_eq!(
        failing,
        [
            "NoEmailOpportunity",
            "UnmappedOpportunity",
            "YenOpportunity",
            "SplitPriceOpportunity",
            "RenewalOpportunity",
            // Amendments AB cannot bill exactly. BackdatedAmendOpportunity applies from today
            // (the sandbox's mapping sets maxio.past_start to start_on_sync) and
            // CancelAllAmendOpportunity waits for its day (2026-12-01).
            "MixedPriceAmendOpportunity",
            "NotCotermAmendOpportunity",
            "MeteredAmendOpportunity",
            "CurrencyChangeAmendOpportunity",
            "OverRemovedAmendOpportunity",
            "FractionalAmendOpportunity",
            "SegmentedAmendOpportunity",
            "PriceUnscheduledAmendOpportunity"
        ],
        "{verdicts:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_of_an_amendment_shows_the_allocation_with_its_proration_and_creates_nothing() {
    let sandbox = sandbox().await;
    let first = id(&sandbox, "AddSeatsOpportunity");
    // Before the first sale is billed, the dry run says the amendment would wait, creating nothing.
    let early = id(&sandbox, "AddSeatsAmendOpportunity");
    let waiting = dealbridge(&sandbox, &["sync", early.as_str(), "--dry-run"])
        .await
        .expect(0);
    assert!(
        waiting.stdout.contains("AMENDMENT_ORIGINAL_NOT_BILLED")
            && !waiting.stdout.contains("it would be created"),
        "{}",
        waiting.stdout
    );
    dealbridge(&sandbox, &["sync", first.as_str()])
        .await
        .expect(0);
    let amendment = id(&sandbox, "AddSeatsAmendOpportunity");
    let writes_before = sandbox
        .maxio_ab
        .observer()
        .requests()
        .into_iter()
        .filter(|r| !r.route.starts_with("GET "))
        .count();
    let run = dealbridge(
        &sandbox,
        &["--json", "sync", amendment.as_str(), "--dry-run"],
    )
    .await;
    let json = run.json();
    assert_eq!(json["wouldFail"], false, "{json:#}");
    let requests = json["maxio"]["requests"].as_array().expect("requests");
    let posts: Vec<&str> = requests
        .iter()
        .filter(|r| r["method"] == "POST")
        .filter_map(|r| r["url"].as_str())
        .collect();
    assert!(
        !posts
            .iter()
            .any(|u| u.ends_with("/customers.json") || u.ends_with("/subscriptions.json")),
        "an amendment creates no customer and no subscription: {posts:?}"
    );
    let allocation = requests
        .iter()
        .find(|r| {
            r["url"]
                .as_str()
                .is_some_and(|u| u.ends_with("/allocations.json"))
        })
        .unwrap_or_else(|| panic!("no allocation in {requests:#?}"));
    let body = &allocation["body"]["allocation"];
    assert_eq!(body["quantity"], "15");
    assert_eq!(body["upgrade_charge"], "prorated");
    assert_eq!(body["downgrade_credit"], "prorated");
    assert_eq!(body["accrue_charge"], true);
    assert_eq!(
        json["maxio"]["plan"]["contract"]["original"],
        first.as_str()
    );
    let after = sandbox
        .maxio_ab
        .observer()
        .requests()
        .into_iter()
        .filter(|r| !r.route.starts_with("GET "))
        .count();
    assert_eq!(after, writes_before, "the dry run writes nothing to AB");

    // The sync makes the allocation, and `status` shows it from the ledger.
    dealbridge(&sandbox, &["sync", amendment.as_str()])
        .await
        .expect(0);
    let status = dealbridge(&sandbox, &["status", amendment.as_str()])
        .await
        .expect(0);
    assert!(
        status.stdout.contains("maxio-allocation") && status.stdout.contains("=15@"),
        "{}",
        status.stdout
    );
}

/// An `sf data export tree` folder (with its plan) of a customer the bundled seed does not have.
fn harbor_export() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/harbor-export")
}

#[tokio::test]
async fn the_sandbox_rehearses_an_export_of_its_own_and_syncs_its_deal_end_to_end() {
    let moto_port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let sandbox = serve_sandbox(&SandboxOptions {
        data: vec![harbor_export()],
        moto_port: Some(moto_port),
        ..SandboxOptions::ephemeral()
    })
    .await
    .expect("the sandbox starts from the export alone");
    assert_eq!(
        sandbox.var("AWS_ENDPOINT_URL"),
        Some(format!("http://127.0.0.1:{moto_port}").as_str()),
        "moto on the port asked for"
    );
    assert!(
        sandbox.id_of("VolumeOpportunity").is_none(),
        "no bundled record"
    );
    assert!(
        sandbox
            .core_source
            .starts_with("derived from the loaded data: 1 customer"),
        "{}",
        sandbox.core_source
    );
    let deals = sandbox.deals();
    let opportunity = id(&sandbox, "OpportunityRef1");
    assert_eq!(
        deals
            .iter()
            .map(|d| (d.sobject, d.reference.as_deref()))
            .collect::<Vec<_>>(),
        [
            ("Opportunity", Some("OpportunityRef1")),
            ("Order", Some("OrderRef1"))
        ]
    );
    assert_eq!(deals[0].id, opportunity.to_string());
    assert_eq!(deals[0].name, "Harbor Freight - Platform 2027");

    let run = dealbridge(&sandbox, &["sync", opportunity.as_str()])
        .await
        .expect(0);
    assert!(run.stdout.contains("COMPLETED"), "{}", run.stdout);
    let customers = sandbox.maxio_ab.customers();
    assert_eq!(customers.len(), 1);
    assert_eq!(customers[0]["organization"], "Harbor Freight Logistics LLC");
    assert_eq!(
        customers[0]["state"], "Oregon",
        "BillingState as the org holds it"
    );
    assert_eq!(sandbox.maxio_ab.subscriptions().len(), 1);
    let opp = record(&sandbox, &opportunity);
    assert_eq!(field(&opp, "Maxio_Sync_Status__c"), "Synced");
    assert_eq!(field(&opp, "Maxio_Core_Link_Status__c"), "Linked");
    let contract = sandbox
        .maxio_core
        .contracts()
        .into_iter()
        .find(|c| c["sf_id"] == opportunity.as_str())
        .expect("the derived Core contract");
    assert_eq!(
        field(&opp, "Maxio_Core_Contract_Id__c"),
        contract["id"].to_string()
    );
}

#[tokio::test]
async fn an_error_is_printed_once_as_text_or_as_json() {
    let sandbox = sandbox().await;
    let ghost = "006SB0000009999";
    for json in [false, true] {
        let mut args = vec!["sync", ghost];
        if json {
            args.insert(0, "--json");
        }
        let run = dealbridge(&sandbox, &args).await;
        assert_ne!(run.code, 0);
        let all = format!("{}{}", run.stdout, run.stderr);
        let times = all.matches("does not exist").count();
        assert_eq!(
            times, 1,
            "json {json}:\nstdout:\n{}\nstderr:\n{}",
            run.stdout, run.stderr
        );
        if json {
            assert!(run.json()["error"]["message"].is_string());
            assert!(run.stderr.is_empty(), "{}", run.stderr);
        }
    }
}
