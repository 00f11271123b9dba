//! `dealbridge sync <id> [--dry-run]`: one deal, now, through the code the Lambdas run.
//!
//! - With `--dry-run` the deal is loaded (the OAuth token and one Composite read are the only
//!   Salesforce calls), planned, and every request the workers would send to Maxio Advanced
//!   Billing, Maxio Core and WHMCS is shown, with the validation problems that would stop it.
//!   Nothing is sent to any of them.
//! - Otherwise the deal is dispatched onto an in-memory queue and the workers' handlers
//!   (`MaxioDeps`, `CoreLinkDeps`, `WhmcsDeps`) run over it in this process until it is empty.
//!   A message a handler asks to retry is tried again at once, up to `--attempts` times; the
//!   workers are never told it is their last delivery, so giving up for good stays with the
//!   deployed queues. Waits (for Maxio Core to sync, for CPQ to create the Order) are not waited
//!   for: the delayed message is handed to the deployed delayed queue when `DELAYED_QUEUE_URL` is
//!   set, and reported.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use dealbridge::codes::ErrorCode;
use dealbridge::dispatch::{DispatchOutcome, DispatchRequest, Dispatcher, RedispatchPolicy};
use dealbridge::envelope::{Envelope, Step};
use dealbridge::failure::Failure;
use dealbridge::ledger::{Ledger, StepRecord};
use dealbridge::maxio::prepare::DealProblem;
use dealbridge::maxio::settings::{AbConfig, CoreConfig};
use dealbridge::plan::{PlannedStep, WorkPlan};
use dealbridge::queue::{InMemoryQueue, OutgoingMessage, Queue, QueueName, QueueUrls, SqsQueue};
use dealbridge::runner::{
    self, Delivery, DrainOptions, Handled, NoWaiting, OnRetry, QueueHandler, Router,
};
use dealbridge::salesforce::{RecordUpdate, SalesforceClient, SfId};
use dealbridge::settings::Section;
use dealbridge::snapshot::{DealRef, DealSnapshot, LoadOutcome, SnapshotError};
use dealbridge::whmcs::WhmcsClientSettings;
use dealbridge::whmcs::prepare::prepare as whmcs_prepare;
use dealbridge::writeback::{CoreLinkOutcome, MaxioOutcome, WhmcsOutcome};
use serde_json::{Map, Value, json};

use crate::error::CliError;
use crate::maxio_preview::preview;
use crate::output::{Outcome, indent, show};
use crate::rehearse::{
    PlannedRequest, deal_label, maxio_ab_requests, maxio_core_requests, whmcs_requests,
};
use crate::wiring::{self, Connected, LedgerChoice, section, var};

/// What `sync` was asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncOptions {
    /// The Opportunity (`006…`) or Order (`801…`) Id, as typed.
    pub id: String,
    pub dry_run: bool,
    /// Tries per message in this process (at least 1).
    pub attempts: u32,
}

/// Validates an Opportunity or Order Id; anything else is a usage error naming it.
pub fn parse_deal(raw: &str) -> Result<DealRef, CliError> {
    let id = SfId::parse(raw.trim())
        .map_err(|e| CliError::Usage(format!("{raw:?} is not a valid Salesforce Id: {e}")))?;
    let prefix = id.key_prefix().to_string();
    DealRef::from_id(id).ok_or_else(|| {
        CliError::Usage(format!(
            "{raw:?} is not an Opportunity (006…) or Order (801…) Id: its key prefix is {prefix}"
        ))
    })
}

/// Runs `sync`.
pub async fn sync(options: &SyncOptions) -> Result<Outcome, CliError> {
    let deal = parse_deal(&options.id)?;
    let connected = Connected::from_env().await?;
    if options.dry_run {
        dry_run(&connected, &deal).await
    } else {
        real_run(&connected, &deal, options.attempts.max(1)).await
    }
}

fn load_failed(deal: &DealRef, e: SnapshotError) -> CliError {
    CliError::Failed(format!("loading {} failed: {e}", deal_label(deal)))
}

fn deal_json(deal: &DealRef) -> Value {
    json!({"type": deal.sobject(), "id": deal.id()})
}

fn plan_text(work: &WorkPlan) -> String {
    let mut text = String::from("Plan:\n");
    if work.steps.is_empty() {
        text.push_str("  nothing to do\n");
    }
    for step in &work.steps {
        match step {
            PlannedStep::MaxioCustomer { products } => text.push_str(&format!(
                "  Maxio Advanced Billing: {}\n",
                products.join(", ")
            )),
            PlannedStep::WhmcsProvision { order_id, products } => text.push_str(&format!(
                "  WHMCS provisioning of Order {order_id}: {}\n",
                products.join(", ")
            )),
            PlannedStep::Cancellation { summary, .. } => {
                text.push_str(&format!("  Cancellation: {summary}\n"))
            }
        }
    }
    for s in &work.skipped {
        let flow = serde_json::to_value(s.flow).unwrap_or_default();
        text.push_str(&format!("  skipped ({}): {}\n", show(&flow), s.reason));
    }
    if !work.unmapped_products.is_empty() {
        text.push_str(&format!(
            "  products mapped to neither system: {}\n",
            work.unmapped_products.join(", ")
        ));
    }
    text
}

fn requests_text(requests: &[PlannedRequest]) -> String {
    let mut text = String::new();
    for (n, r) in requests.iter().enumerate() {
        let kind = if r.write { "write" } else { "read" };
        text.push_str(&format!(
            "{:>3}. {} {}   ({kind})\n",
            n + 1,
            r.method,
            r.url
        ));
        if let Some(when) = &r.when {
            text.push_str(&format!("     only if {when}\n"));
        }
        if let Some(body) = &r.body {
            let pretty = serde_json::to_string_pretty(body).unwrap_or_default();
            text.push_str(&indent(&pretty, 5));
            text.push('\n');
        }
        if let Some(form) = &r.form {
            for (k, v) in form {
                text.push_str(&format!("     {k}={v}\n"));
            }
        }
        for note in &r.notes {
            text.push_str(&format!("     note: {note}\n"));
        }
    }
    text
}

fn problems_text(problems: &[(String, String)]) -> String {
    problems
        .iter()
        .map(|(code, message)| format!("  {code}: {message}\n"))
        .collect()
}

fn problems_json(problems: &[(String, String)]) -> Value {
    Value::Array(
        problems
            .iter()
            .map(|(code, message)| json!({"code": code, "kind": "permanent", "message": message}))
            .collect(),
    )
}

fn maxio_problems(problems: Vec<DealProblem>) -> Vec<(String, String)> {
    problems
        .into_iter()
        .map(|p| (p.code.to_string(), p.message))
        .collect()
}

/// The Salesforce records and fields a successful outcome writes (names only: the values come
/// from the answers), as text and JSON.
fn writes(intro: &str, records: &[RecordUpdate]) -> (String, Value) {
    let mut text = format!("{intro}\n");
    let mut json = Vec::new();
    for r in records {
        let fields: Vec<&String> = r.fields.keys().collect();
        text.push_str(&format!(
            "     {} {}: {}\n",
            r.sobject,
            r.id,
            fields
                .iter()
                .map(|f| f.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
        json.push(json!({"sobject": r.sobject, "id": r.id, "fields": fields}));
    }
    (text, Value::Array(json))
}

fn header(snapshot: &DealSnapshot) -> String {
    let mut text = format!(
        "{} — Account {} ({})\n",
        deal_label(&snapshot.requested),
        snapshot.account.id,
        snapshot.account.name
    );
    if let Some(o) = &snapshot.opportunity {
        text.push_str(&format!(
            "Opportunity {} \"{}\", stage {}\n",
            o.id, o.name, o.stage
        ));
    }
    for o in &snapshot.orders {
        text.push_str(&format!(
            "Order {}{}, status {}{}\n",
            o.id,
            o.number
                .as_deref()
                .map(|n| format!(" ({n})"))
                .unwrap_or_default(),
            o.status,
            o.activation_status
                .as_deref()
                .map(|a| format!(", activation {a}"))
                .unwrap_or_default()
        ));
    }
    text
}

/// The base URL of AB site `name`: `MAXIO_AB_BASE_URL` for the default one, else the mapping's.
fn site_url(
    default: &dealbridge::maxio::ab::AbClientSettings,
    mapping: &dealbridge::mapping::Mapping,
    name: &str,
) -> Result<url::Url, CliError> {
    if name == dealbridge::maxio::options::DEFAULT_SITE {
        return Ok(default.base_url.clone());
    }
    mapping
        .maxio
        .site(name)
        .and_then(|s| s.base_url.as_deref())
        .and_then(|u| url::Url::parse(u).ok())
        .ok_or_else(|| CliError::config(format!("AB site {name} has no base_url in the mapping")))
}

/// `--dry-run`: load, plan, read what exists, and show every request without sending a write.
async fn dry_run(connected: &Connected, deal: &DealRef) -> Result<Outcome, CliError> {
    let loaded = connected
        .loader()
        .load(deal)
        .await
        .map_err(|e| load_failed(deal, e))?;
    let snapshot = match loaded {
        LoadOutcome::Loaded(snapshot) => *snapshot,
        LoadOutcome::OrderPending {
            opportunity_id,
            account_id,
            stage,
        } => {
            let policy = RedispatchPolicy::default();
            let reason = format!(
                "Opportunity {opportunity_id} (stage {stage}) has no Order yet; a sync would dispatch it again in {} s (at most {} times) until CPQ creates it",
                policy.delay_before(1).as_secs(),
                policy.max_attempts
            );
            let json = json!({
                "deal": deal_json(deal),
                "dryRun": true,
                "accountId": account_id,
                "orderPending": reason,
                "wouldFail": false,
            });
            let text = format!(
                "{}\n{reason}\nNothing was sent anywhere (dry run).\n",
                deal_label(deal)
            );
            return Ok(Outcome::new(json, text, false));
        }
    };
    // As dispatch: a future-dated amendment, renewal or cancellation waits for its day.
    let now = wiring::system_clock().now();
    let (work, scheduled) = dealbridge::plan::for_dispatch(&snapshot, &connected.mapping, now);
    let mut text = header(&snapshot);
    text.push_str(&plan_text(&work));
    if let Some(at) = scheduled {
        text.push_str(&format!(
            "To see what it would do then: DEALBRIDGE_CLOCK={} dealbridge sync <id> --dry-run\n",
            dealbridge::contract::cancel::rfc3339(at)
        ));
    }
    let mut would_fail = false;
    let mut maxio = Value::Null;
    let mut whmcs = Vec::new();
    for step in &work.steps {
        match step {
            PlannedStep::MaxioCustomer { .. } => {
                let ab = section(AbConfig::read)?;
                let budget = connected.budget_table(&ab);
                let AbConfig {
                    client,
                    deal: settings,
                    core_link,
                    ..
                } = ab;
                let core = if core_link {
                    let CoreConfig { client, link } = section(CoreConfig::read)?;
                    Some((client, link))
                } else {
                    None
                };
                let sites = dealbridge::maxio::sites::build(
                    &client,
                    &connected.mapping.maxio,
                    connected.secrets.clone(),
                    budget,
                )
                .map_err(CliError::config)?;
                let today = wiring::system_clock().now().date_naive();
                let preview =
                    preview(&sites, &snapshot, &connected.mapping, &settings, today).await;
                // Outside the runner's batches nothing else gives the request slots back.
                sites.release_slots().await;
                let preview = preview?;
                match (preview.plan, preview.problems.is_empty()) {
                    (Some(ab_plan), true) => {
                        let base = site_url(&client, &connected.mapping, &ab_plan.site)?;
                        let mut ab = maxio_ab_requests(&base, &snapshot, &ab_plan);
                        ab.extend(crate::rehearse::change_requests(
                            &base,
                            &ab_plan,
                            preview.existing_json["subscriptionId"].as_i64(),
                            &preview.changes,
                            &connected.mapping.maxio.allocation,
                        ));
                        if let Some(change) = &ab_plan.contract {
                            text.push_str(&format!(
                                "\n{} Contract {} (first sale {}), effective {}: {}\n",
                                if change.amends {
                                    "Amends"
                                } else {
                                    "Bills the amended"
                                },
                                change.contract,
                                change.original,
                                change.effective,
                                change.summary.join(", ")
                            ));
                        }
                        text.push_str(&format!(
                            "\nMaxio Advanced Billing, site {} ({base}), in {}{}; the subscription {}\n",
                            ab_plan.site,
                            ab_plan.currency.as_deref().unwrap_or("the site's currency"),
                            if ab_plan.non_primary_currency {
                                " (a non-primary currency of the site: price points carry their own prices in it)"
                            } else {
                                ""
                            },
                            ab_plan
                                .start
                                .map_or_else(|| "starts now".to_string(), |s| s.describe())
                        ));
                        for item in ab_plan.items.iter().filter(|i| i.lines.len() > 1) {
                            text.push_str(&format!(
                                "  {} ({}): {} order lines netted into one component, quantity {}\n",
                                item.product_name,
                                item.component_handle,
                                item.lines.len(),
                                item.quantity.normalize()
                            ));
                        }
                        text.push_str("In AB now:\n");
                        for line in &preview.existing {
                            text.push_str(&format!("  {line}\n"));
                        }
                        if !preview.changes.is_empty() {
                            text.push_str("The subscription differs from the deal; the sync would change it:\n");
                            for d in &preview.changes {
                                text.push_str(&format!("  {}\n", d.what));
                            }
                        }
                        text.push_str("Requests, in order:\n");
                        text.push_str(&requests_text(&ab));
                        let core_requests = match &core {
                            Some((core_client, link)) => {
                                let requests = maxio_core_requests(
                                    &core_client.base_url,
                                    link,
                                    &ab_plan.account_id,
                                    &ab_plan.opportunity_id,
                                );
                                text.push_str(&format!(
                                    "\nMaxio Core ({}), after the subscription:\n",
                                    core_client.base_url
                                ));
                                text.push_str(&requests_text(&requests));
                                Some(requests)
                            }
                            None => {
                                text.push_str("\nMaxio Core: the link is off (MAXIO_CORE_LINK_ENABLED is not true)\n");
                                None
                            }
                        };
                        let writeback = connected.writeback(wiring::system_clock());
                        let synced = MaxioOutcome::Synced {
                            customer_id: 0,
                            subscription_id: 0,
                            site: Some(ab_plan.site.clone()),
                        };
                        let records = if core.is_some() {
                            writeback.core_link_records(
                                &ab_plan.opportunity_id,
                                &ab_plan.account_id,
                                &CoreLinkOutcome::Linked { contract_id: 0 },
                                Some(&synced),
                            )
                        } else {
                            writeback.maxio_records(
                                &ab_plan.opportunity_id,
                                &ab_plan.account_id,
                                &synced,
                            )
                        };
                        let (writes_text, writes_json) = writes(
                            "\nSalesforce, once done (one sObject Collections update; a failure writes the status Failed and the error instead):",
                            &records,
                        );
                        text.push_str(&writes_text);
                        maxio = json!({
                            "problems": [],
                            "site": ab_plan.site,
                            "currency": ab_plan.currency,
                            "start": ab_plan.start,
                            "existing": preview.existing_json,
                            "changes": preview.changes,
                            "plan": ab_plan,
                            "requests": ab,
                            "coreLink": core_requests,
                            "salesforceWrites": writes_json,
                        });
                    }
                    (_, _) => {
                        would_fail = true;
                        let problems = maxio_problems(preview.problems);
                        text.push_str(
                            "\nMaxio Advanced Billing: the deal cannot be billed; nothing would be created:\n",
                        );
                        text.push_str(&problems_text(&problems));
                        maxio = json!({"problems": problems_json(&problems), "requests": []});
                    }
                }
            }
            PlannedStep::Cancellation { cancellation, .. } => {
                let (lines, fails) =
                    crate::cancel_preview::preview(connected, cancellation, now).await?;
                would_fail |= fails;
                text.push_str(
                    "\nCancellation (each system is read; the sync would make these calls):\n",
                );
                for line in &lines {
                    text.push_str(&format!("  {line}\n"));
                }
                maxio = json!({"cancellation": cancellation, "preview": lines});
            }
            PlannedStep::WhmcsProvision { order_id, .. } => {
                let settings = section(WhmcsClientSettings::read)?;
                let endpoint = settings
                    .endpoint()
                    .map_err(|e| CliError::config(e.message()))?;
                let prepared = whmcs_prepare(&snapshot, order_id, &connected.mapping);
                let checked = prepared.and_then(|(plan, add)| match add.validate() {
                    Ok(()) => Ok((plan, add)),
                    Err(e) => Err(vec![dealbridge::whmcs::prepare::OrderProblem {
                        code: e.code(),
                        message: e.message(),
                    }]),
                });
                // The worker's currency check, with the same reads (GetClientsDetails, and
                // GetCurrencies when the client's details give only a currency id).
                let order_currency =
                    dealbridge::whmcs::currency::order_currency(&snapshot, order_id);
                let checked = match checked {
                    // Nothing is ordered, so the sync reads no currency either.
                    Ok((order_plan, add)) if !order_plan.orders_anything() => {
                        Ok((order_plan, add, None))
                    }
                    Ok((order_plan, add)) => {
                        let client = dealbridge::whmcs::WhmcsClient::new(
                            settings.clone(),
                            connected.secrets.clone(),
                        )
                        .map_err(|e| CliError::config(e.message()))?;
                        let check = dealbridge::whmcs::currency::check_currency(
                            &client,
                            order_id,
                            order_currency.as_deref(),
                            &order_plan.client_id,
                        )
                        .await;
                        match check {
                            Ok(dealbridge::whmcs::currency::CurrencyCheck::Same(c)) => {
                                Ok((order_plan, add, Some(c)))
                            }
                            Ok(dealbridge::whmcs::currency::CurrencyCheck::OrderHasNone) => {
                                Ok((order_plan, add, None))
                            }
                            Ok(dealbridge::whmcs::currency::CurrencyCheck::Mismatch(problem)) => {
                                Err(vec![problem])
                            }
                            Err(e) if e.is_retryable() || e.is_ambiguous() => {
                                return Err(CliError::Failed(format!(
                                    "reading the currency of WHMCS client {} failed, so the dry run cannot tell whether the sync would provision Order {order_id}: {e}",
                                    order_plan.client_id
                                )));
                            }
                            // The sync would stop at the same answer, for good.
                            Err(e) => Err(vec![dealbridge::whmcs::prepare::OrderProblem {
                                code: e.code(),
                                message: e.message(),
                            }]),
                        }
                    }
                    Err(problems) => Err(problems),
                };
                match checked {
                    Ok((order_plan, add, client_currency)) => {
                        let requests = whmcs_requests(&endpoint, &order_plan, &add);
                        text.push_str(&format!("\nWHMCS ({endpoint}), Order {order_id}:\n"));
                        if !order_plan.continued.is_empty() {
                            text.push_str(&format!(
                                "  Carried on by the Contract's services (nothing sent): {}\n",
                                order_plan
                                    .continued
                                    .iter()
                                    .map(|(item, service)| format!("{item} → service {service}"))
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ));
                        }
                        if order_plan.orders_anything() {
                            text.push_str(&match (&client_currency, &order_currency) {
                                (Some(c), Some(order)) => format!(
                                    "  Currency: the Order is in {order} and WHMCS client {} bills in {} (read now with GetClientsDetails{}; the sync reads it again before AddOrder)\n",
                                    c.client_id,
                                    c.code,
                                    if c.from_currencies {
                                        " and GetCurrencies"
                                    } else {
                                        ""
                                    }
                                ),
                                _ => "  Currency: the Order has none (no multi-currency), so the WHMCS client's currency is not checked\n".to_string(),
                            });
                        }
                        text.push_str("In order:\n");
                        text.push_str(&requests_text(&requests));
                        let writeback = connected.writeback(wiring::system_clock());
                        let mut records = Vec::new();
                        // The sync writes Activating only before an AddOrder.
                        if order_plan.needs_activating && order_plan.orders_anything() {
                            records.extend(
                                writeback.whmcs_records(order_id, &WhmcsOutcome::Activating),
                            );
                        }
                        records.extend(
                            writeback.whmcs_records(
                                order_id,
                                &WhmcsOutcome::Provisioned {
                                    whmcs_order_id: String::new(),
                                    services: order_plan
                                        .items
                                        .iter()
                                        .map(|i| (i.clone(), String::new()))
                                        .collect(),
                                    opportunity: order_plan
                                        .opportunity_id
                                        .clone()
                                        .or_else(|| {
                                            snapshot.opportunity.as_ref().map(|o| o.id.clone())
                                        })
                                        .map(|o| (o, String::new())),
                                },
                            ),
                        );
                        let (writes_text, writes_json) = writes(
                            "\nSalesforce (Activating before AddOrder when needed, the outcome after; a failure writes Failed and the error instead):",
                            &records,
                        );
                        text.push_str(&writes_text);
                        whmcs.push(json!({
                            "orderId": order_id,
                            "problems": [],
                            "currency": {"order": order_currency, "client": client_currency},
                            "plan": order_plan,
                            "requests": requests,
                            "salesforceWrites": writes_json,
                        }));
                    }
                    Err(problems) => {
                        let exists = problems
                            .iter()
                            .all(|p| p.code == ErrorCode::WhmcsOrderExists);
                        would_fail |= !exists;
                        let problems: Vec<(String, String)> = problems
                            .into_iter()
                            .map(|p| (p.code.to_string(), p.message))
                            .collect();
                        text.push_str(&format!(
                            "\nWHMCS, Order {order_id}: {}:\n",
                            if exists {
                                "already provisioned; nothing would be sent"
                            } else {
                                "the Order cannot be provisioned; nothing would be sent"
                            }
                        ));
                        text.push_str(&problems_text(&problems));
                        whmcs.push(json!({
                            "orderId": order_id,
                            "problems": problems_json(&problems),
                            "requests": [],
                        }));
                    }
                }
            }
        }
    }
    text.push_str("\nNothing was written to Maxio AB, Maxio Core or WHMCS (they were only read), nothing was sent to the queues, and nothing was written to Salesforce (dry run).\n");
    if would_fail {
        text.push_str("The sync would fail: see the problems above.\n");
    }
    let json = json!({
        "deal": deal_json(deal),
        "dryRun": true,
        "account": {"id": snapshot.account.id, "name": snapshot.account.name},
        "plan": work,
        "maxio": maxio,
        "whmcs": whmcs,
        "wouldFail": would_fail,
    });
    Ok(Outcome::new(json, text, would_fail))
}

/// What became of one message in this run.
#[derive(Debug, Clone)]
struct StepRun {
    step: &'static str,
    /// The ledger's deal key of the step.
    deal_key: String,
    attempts: u32,
    /// `done`, `retry` (tries used up in this run) or `dead-lettered` (can never be handled:
    /// unreadable, or on the wrong queue).
    result: &'static str,
    /// Why the last try asked to be retried, or why the message can never be handled.
    reason: Option<String>,
    /// What the last try became (`done`, `not-yet`, `permanent`, `transient`, `conflict`,
    /// `dead-lettered`).
    kind: &'static str,
    /// The last try's failure, if it failed.
    failure: Option<Failure>,
    /// The ledger's record after the step, if it keeps one.
    record: Option<StepRecord>,
}

impl StepRun {
    /// Failed for good (the ledger says so) or still failing when the tries ran out.
    fn failed(&self) -> bool {
        matches!(self.result, "retry" | "dead-lettered")
            || self
                .record
                .as_ref()
                .is_some_and(|r| r.status == dealbridge::ledger::StepStatus::Failed)
    }

    fn status(&self) -> String {
        match (&self.record, self.result) {
            (_, "retry" | "dead-lettered") => "NOT DONE".to_string(),
            (Some(r), _) => r.status.to_string(),
            (None, _) => "DONE".to_string(),
        }
    }

    fn detail(&self) -> String {
        let mut parts: Vec<String> = Vec::new();
        if let Some(r) = &self.record {
            parts.extend(r.targets.iter().map(|(k, v)| format!("{k}={v}")));
            if let Some(e) = &r.last_error {
                parts.push(e.clone());
            }
        }
        if self.result == "retry" {
            parts.push(format!(
                "still failing after {} tries: {}",
                self.attempts,
                self.reason.as_deref().unwrap_or_default()
            ));
        }
        if self.result == "dead-lettered" {
            parts.push(format!(
                "can never be handled, dead-lettered: {}",
                self.reason.as_deref().unwrap_or_default()
            ));
        }
        parts.join("; ")
    }

    fn to_json(&self) -> Value {
        json!({
            "step": self.step,
            "dealKey": self.deal_key,
            "attempts": self.attempts,
            "status": self.status(),
            "failed": self.failed(),
            "retryReason": self.reason,
            "outcome": self.kind,
            "error": self.failure.as_ref().map(|f| json!({
                "code": f.code,
                "kind": if self.kind == "transient" { "transient" } else { "permanent" },
                "needsPerson": matches!(self.kind, "conflict" | "dead-lettered"),
                "message": f.message,
            })),
            "ledger": self.record,
        })
    }
}

/// A wait the run did not wait for.
struct Wait {
    what: String,
    handed_over: Option<String>,
}

/// A queue this run set up no handler for: its messages are reported, never dropped.
struct Unserved;

#[async_trait::async_trait]
impl QueueHandler for Unserved {
    fn seal(&self) -> Option<&dealbridge::seal::Seal> {
        None
    }

    async fn handle(&self, _envelope: Envelope, delivery: &Delivery) -> Handled {
        Handled::Retry(Failure::new(
            ErrorCode::DealbridgeInternal,
            format!(
                "no {} handler was set up for this run (internal error)",
                delivery.queue
            ),
        ))
    }
}

/// The queues this process serves, in chain order (the delayed queue's waits are handed over).
const WORKED: [QueueName; 5] = [
    QueueName::MaxioCustomer,
    QueueName::MaxioPricePoints,
    QueueName::MaxioSubscription,
    QueueName::MaxioCoreLink,
    QueueName::WhmcsProvision,
];

/// More rounds than any deal needs; a bound, so a bug cannot loop for ever.
const MAX_ROUNDS: usize = 200;

/// The real run: dispatch onto an in-memory queue and drain it through the workers.
async fn real_run(
    connected: &Connected,
    deal: &DealRef,
    attempts: u32,
) -> Result<Outcome, CliError> {
    let clock = wiring::system_clock();
    let (ledger, choice) = wiring::ledger(&connected.aws)?;
    let mut warnings = Vec::new();
    let ledger_text = match &choice {
        LedgerChoice::DynamoDb(table) => format!("DynamoDB table {table}"),
        LedgerChoice::InMemory => {
            warnings.push(
                "LEDGER_TABLE_NAME is not set: the idempotency ledger is in memory for this run only, so WHMCS provisioning is not guarded against a deployed function working on the same Order, and `status` will not show this run".to_string(),
            );
            "in memory (LEDGER_TABLE_NAME is not set)".to_string()
        }
    };
    let queue = InMemoryQueue::new(Duration::from_secs(300), 1000);
    let dispatcher = Dispatcher::new(
        connected.loader(),
        Arc::new(queue.clone()),
        connected.mapping.clone(),
        RedispatchPolicy::default(),
        clock.clone(),
    );
    let request = DispatchRequest {
        deal: deal.clone(),
        correlation_id: format!("cli:{}:{}", deal.id(), clock.now().timestamp()),
        dry_run: false,
        attempt: 0,
        idempotency_key: None,
        delayed_key: None,
    };
    let dispatched = dispatcher
        .dispatch(&request)
        .await
        .map_err(|e| CliError::Failed(format!("dispatching {} failed: {e}", deal_label(deal))))?;

    let mut text = format!(
        "{} — correlation id {}; ledger: {ledger_text}\n",
        deal_label(deal),
        request.correlation_id
    );
    for w in &warnings {
        text.push_str(&format!("warning: {w}\n"));
    }
    let mut json = Map::new();
    json.insert("deal".into(), deal_json(deal));
    json.insert("dryRun".into(), Value::Bool(false));
    json.insert(
        "correlationId".into(),
        Value::String(request.correlation_id.clone()),
    );
    json.insert("ledger".into(), Value::String(ledger_text.clone()));
    json.insert("warnings".into(), json!(warnings));

    let work = match &dispatched {
        DispatchOutcome::Planned { plan, .. } => {
            text.push_str(&plan_text(plan));
            json.insert("plan".into(), json!(plan));
            Some(plan.clone())
        }
        DispatchOutcome::Deferred { reason, .. } => {
            json.insert("plan".into(), Value::Null);
            text.push_str(&format!("{reason}\n"));
            None
        }
    };
    let needs = |wanted: fn(&PlannedStep) -> bool| {
        work.as_ref().is_some_and(|w| w.steps.iter().any(wanted))
    };
    let mut sections = Vec::new();
    if needs(|s| matches!(s, PlannedStep::MaxioCustomer { .. })) {
        sections.push(Section::MaxioAb);
        if section(AbConfig::read)?.core_link {
            sections.push(Section::MaxioCore);
        }
    }
    if needs(|s| matches!(s, PlannedStep::WhmcsProvision { .. })) {
        sections.push(Section::Whmcs);
    }
    // A cancellation goes through the AB step (which writes the outcome when there is no WHMCS
    // service) and, with services, the WHMCS step.
    if needs(|s| matches!(s, PlannedStep::Cancellation { .. })) {
        if !sections.contains(&Section::MaxioAb) {
            sections.push(Section::MaxioAb);
        }
        if needs(
            |s| matches!(s, PlannedStep::Cancellation { cancellation, .. } if !cancellation.services.is_empty()),
        ) && !sections.contains(&Section::Whmcs)
        {
            sections.push(Section::Whmcs);
        }
    }
    let wiring = connected.wiring(&sections, Arc::new(queue.clone()), ledger.clone())?;
    let served = wiring.router().map_err(|e| CliError::Config(e.problems))?;
    let unserved: Arc<dyn QueueHandler> = Arc::new(Unserved);
    let mut router = Router::new();
    for q in WORKED {
        router = router.with(q, served.handler(q).cloned().unwrap_or(unserved.clone()));
    }

    let runs = drain(&queue, &router, ledger.as_ref(), attempts).await;
    if !runs.is_empty() {
        text.push_str("Steps:\n");
        let rows: Vec<Vec<String>> = runs
            .iter()
            .map(|r| {
                vec![
                    format!("  {}", r.step),
                    r.status(),
                    format!(
                        "{} tr{}",
                        r.attempts,
                        if r.attempts == 1 { "y" } else { "ies" }
                    ),
                    r.detail(),
                ]
            })
            .collect();
        let table = crate::output::table(&["  step", "status", "tries", "ids / error"], &rows);
        text.push_str(&table);
    }
    json.insert(
        "steps".into(),
        Value::Array(runs.iter().map(StepRun::to_json).collect()),
    );

    let waits = hand_over_waits(&queue).await;
    let mut waits_json = Vec::new();
    for w in &waits {
        let followup = match &w.handed_over {
            Some(url) => format!(
                "handed to the deployed delayed queue ({url}); the deployed functions will retry"
            ),
            None => format!(
                "DELAYED_QUEUE_URL is not set, so nothing will retry it: run `dealbridge sync {}` again later",
                deal.id()
            ),
        };
        text.push_str(&format!("{}; {followup}\n", w.what));
        waits_json.push(
            json!({"waiting": w.what, "handedToDelayedQueue": w.handed_over, "followUp": followup}),
        );
    }
    json.insert("waits".into(), Value::Array(waits_json));

    if !runs.is_empty() {
        let shown = salesforce_fields(connected, &runs, deal).await;
        match shown {
            Ok(records) if !records.is_empty() => {
                text.push_str("Salesforce now shows:\n");
                for (label, fields) in &records {
                    text.push_str(&format!("  {label}\n"));
                    for (k, v) in fields {
                        text.push_str(&format!("    {k} = {}\n", show(v)));
                    }
                }
                json.insert(
                    "salesforce".into(),
                    Value::Array(
                        records
                            .iter()
                            .map(|(label, fields)| json!({"record": label, "fields": fields}))
                            .collect(),
                    ),
                );
            }
            Ok(_) => {}
            Err(e) => {
                text.push_str(&format!(
                    "(reading the fields back from Salesforce failed: {e})\n"
                ));
                json.insert("salesforceReadError".into(), Value::String(e));
            }
        }
    }
    let failed = runs.iter().any(StepRun::failed);
    if failed {
        text.push_str("The sync failed: see the steps above.\n");
    } else if runs.is_empty() && waits.is_empty() {
        text.push_str("Nothing was done.\n");
    }
    json.insert("failed".into(), Value::Bool(failed));
    Ok(Outcome::new(Value::Object(json), text, failed))
}

/// Runs the handlers over the in-memory queue until nothing they handle is left, each message
/// tried at most `attempts` times; what became of each message, with its ledger record.
async fn drain(
    queue: &InMemoryQueue,
    router: &Router,
    ledger: &dyn Ledger,
    attempts: u32,
) -> Vec<StepRun> {
    let options = DrainOptions {
        max_rounds: MAX_ROUNDS,
        batch_size: 10,
        on_retry: OnRetry::ReleaseUntil(attempts),
    };
    let drained = runner::drain(router, queue, &options, &mut NoWaiting).await;
    let mut runs: Vec<StepRun> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for delivery in drained.deliveries {
        let step = delivery.step.unwrap_or("unreadable");
        let deal_key = delivery.deal.clone().unwrap_or_default();
        let record = match delivery.step {
            Some(step) => ledger.get(&deal_key, step).await.ok().flatten(),
            None => None,
        };
        let run = StepRun {
            step,
            deal_key,
            attempts: delivery.receive_count,
            result: match &delivery.handled {
                Handled::DeadLettered(_) => "dead-lettered",
                h if h.is_finished() => "done",
                _ => "retry",
            },
            reason: match &delivery.handled {
                Handled::Retry(f) | Handled::DeadLettered(f) => Some(f.to_string()),
                _ => None,
            },
            kind: delivery.handled.kind(),
            failure: delivery.handled.failure().cloned(),
            record,
        };
        match index.get(&delivery.message_id) {
            Some(&i) => runs[i] = run,
            None => {
                index.insert(delivery.message_id.clone(), runs.len());
                runs.push(run);
            }
        }
    }
    runs
}

/// Reports the waits the run left on the delayed queue, handing each to the deployed delayed
/// queue when `DELAYED_QUEUE_URL` is set.
async fn hand_over_waits(queue: &InMemoryQueue) -> Vec<Wait> {
    let sent: Vec<OutgoingMessage> = queue.sent(QueueName::Delayed);
    if sent.is_empty() {
        return Vec::new();
    }
    let deployed = match var(QueueName::Delayed.url_variable()) {
        Some(url) => {
            let aws = wiring::aws().await;
            let urls = QueueUrls::new(HashMap::from([(QueueName::Delayed, url.clone())]));
            Some((SqsQueue::new(aws_sdk_sqs::Client::new(&aws), urls), url))
        }
        None => None,
    };
    let mut waits = Vec::new();
    for message in sent {
        let what = match Envelope::parse(&message.body).map(|e| e.step) {
            Ok(Step::Deferred { then, not_before })
                if matches!(*then, Step::MaxioCoreLink { .. }) =>
            {
                format!("waiting for Maxio Core (next try due {})", due(not_before))
            }
            Ok(Step::Deferred { then, not_before }) => {
                format!("{} waits until {}", then.name(), due(not_before))
            }
            Ok(Step::Dispatch {
                not_before,
                chain: Some(_),
                ..
            }) => format!(
                "a scheduled change: the deal is dispatched again {}",
                due(not_before)
            ),
            Ok(Step::Dispatch {
                attempt,
                not_before,
                chain: None,
            }) => format!(
                "no Order yet: re-dispatch {attempt} is due {}",
                due(not_before)
            ),
            Ok(other) => format!("{} is waiting", other.name()),
            Err(e) => format!("an unreadable delayed message ({e})"),
        };
        let handed_over = match &deployed {
            Some((sqs, url)) => match sqs.send(&message).await {
                Ok(_) => Some(url.clone()),
                Err(e) => {
                    waits.push(Wait {
                        what: format!("{what}; handing it to the delayed queue failed: {e}"),
                        handed_over: None,
                    });
                    continue;
                }
            },
            None => None,
        };
        waits.push(Wait { what, handed_over });
    }
    waits
}

fn due(not_before: i64) -> String {
    chrono::DateTime::from_timestamp(not_before, 0)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| not_before.to_string())
}

/// The fields dealbridge writes, read back from the records the run worked on.
async fn salesforce_fields(
    connected: &Connected,
    runs: &[StepRun],
    deal: &DealRef,
) -> Result<Vec<(String, BTreeMap<String, Value>)>, String> {
    let m = &connected.mapping;
    let client = connected.salesforce.as_ref();
    let mut out = Vec::new();
    let maxio = runs.iter().any(|r| r.step.starts_with("maxio-"));
    let whmcs: Vec<&StepRun> = runs
        .iter()
        .filter(|r| r.step == "whmcs-provision")
        .collect();
    if maxio {
        let o = &m.opportunity;
        let fields: Vec<&String> = [
            &o.maxio_sync_status,
            &o.maxio_sync_error,
            &o.maxio_sync_datetime,
            &o.maxio_customer_id,
            &o.maxio_subscription_id,
            &o.maxio_core_link_status,
            &o.maxio_core_contract_id,
            &o.maxio_core_link_error,
        ]
        .into_iter()
        .flatten()
        .collect();
        let opportunity = read_record(client, "Opportunity", &fields, "Id", deal.id()).await?;
        for record in opportunity {
            let account = record
                .get("AccountId")
                .and_then(Value::as_str)
                .and_then(|a| SfId::parse(a).ok());
            out.push(labelled("Opportunity", record, &fields));
            if let (Some(account), Some(field)) = (account, &m.account.maxio_customer_id) {
                let fields = vec![field];
                for r in read_record(client, "Account", &fields, "Id", &account).await? {
                    out.push(labelled("Account", r, &fields));
                }
            }
        }
    }
    for run in whmcs {
        let Ok(order) = SfId::parse(&run.deal_key) else {
            continue;
        };
        let f = &m.order;
        let fields: Vec<&String> = [
            &f.activation_status,
            &f.status,
            &f.whmcs_order_id,
            &f.activation_error,
            &f.activation_error_datetime,
        ]
        .into_iter()
        .flatten()
        .collect();
        for record in read_record(client, "Order", &fields, "Id", &order).await? {
            let opportunity = record
                .get("OpportunityId")
                .and_then(Value::as_str)
                .and_then(|o| SfId::parse(o).ok());
            out.push(labelled("Order", record, &fields));
            if let Some(field) = &m.order_item.whmcs_service_id {
                let fields = vec![field];
                for r in read_record(client, "OrderItem", &fields, "OrderId", &order).await? {
                    out.push(labelled("OrderItem", r, &fields));
                }
            }
            let o = &m.opportunity;
            let fields: Vec<&String> = [&o.stage, &o.whmcs_service_id]
                .into_iter()
                .flatten()
                .collect();
            if let (Some(opportunity), false) = (opportunity, fields.is_empty()) {
                for r in read_record(client, "Opportunity", &fields, "Id", &opportunity).await? {
                    out.push(labelled("Opportunity", r, &fields));
                }
            }
        }
    }
    Ok(out)
}

fn labelled(
    sobject: &str,
    record: Map<String, Value>,
    fields: &[&String],
) -> (String, BTreeMap<String, Value>) {
    let id = record.get("Id").map(show).unwrap_or_default();
    let values = fields
        .iter()
        .map(|f| {
            (
                (*f).clone(),
                record.get(f.as_str()).cloned().unwrap_or(Value::Null),
            )
        })
        .collect();
    (format!("{sobject} {id}"), values)
}

/// `SELECT Id, <fields> FROM <sobject> WHERE <key> = '<id>'` (plus the parent lookups the
/// report follows). `id` is a validated Id, so it is safe in the literal.
async fn read_record(
    client: &SalesforceClient,
    sobject: &str,
    fields: &[&String],
    key: &str,
    id: &SfId,
) -> Result<Vec<Map<String, Value>>, String> {
    let mut select: Vec<&str> = vec!["Id"];
    match sobject {
        "Opportunity" => select.push("AccountId"),
        "Order" => select.push("OpportunityId"),
        _ => {}
    }
    for f in fields {
        if !select.contains(&f.as_str()) {
            select.push(f.as_str());
        }
    }
    let soql = format!(
        "SELECT {} FROM {sobject} WHERE {key} = '{id}'",
        select.join(", ")
    );
    let records = client.query_all(&soql).await.map_err(|e| e.to_string())?;
    Ok(records
        .into_iter()
        .filter_map(|r| match r {
            Value::Object(m) => Some(m),
            _ => None,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_opportunity_or_order_id_names_a_deal() {
        assert!(matches!(
            parse_deal("006A000010khO8J"),
            Ok(DealRef::Opportunity(_))
        ));
        assert!(matches!(
            parse_deal("801A000010khO8J"),
            Ok(DealRef::Order(_))
        ));
    }

    #[test]
    fn a_malformed_id_is_a_usage_error_naming_it() {
        let e = parse_deal("006-not-an-id").unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("\"006-not-an-id\""), "{e}");
        let e = parse_deal("001A000010khO8J").unwrap_err();
        assert!(e.to_string().contains("key prefix is 001"), "{e}");
    }
}
