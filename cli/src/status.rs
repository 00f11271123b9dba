//! `dealbridge status <id>`: the ledger's story of a deal, one row per step, and the id map it
//! holds (the deal's AB site, customer and subscription, its Core contract, its WHMCS order and
//! services). `dealbridge status billing:<site>`: where the billing sync of an AB site stands
//! (the last event handled, the subscriptions Salesforce refused).
//!
//! The Maxio steps and the Core link are recorded under the Opportunity Id (the deal a sync was
//! dispatched with), WHMCS provisioning under the Order Id; the records of the given Id are shown.

use chrono::{DateTime, SecondsFormat, Utc};
use dealbridge::contract::cancel::SystemState;
use dealbridge::ledger::{DynamoDbLedger, Ledger, LedgerSettings, StepRecord, TABLE_VARIABLE};
use serde_json::json;

use crate::error::CliError;
use crate::output::{Outcome, table};
use crate::sync::parse_deal;
use crate::wiring::{self, var};

fn instant(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// One row of the table: step, status, attempts, started, updated, targets, last error.
pub fn row(r: &StepRecord) -> Vec<String> {
    vec![
        r.step.clone(),
        r.status.to_string(),
        r.attempts.to_string(),
        instant(r.started_at),
        instant(r.updated_at),
        r.targets
            .iter()
            .map(|(k, v)| target_text(k, v))
            .collect::<Vec<_>>()
            .join(" "),
        r.last_error.clone().unwrap_or_default(),
    ]
}

/// One target: `key=value`, or for a cancellation step's system state `key=(scheduled: AB
/// cancels it at …)`.
fn target_text(key: &str, value: &str) -> String {
    match SystemState::from_ledger(value) {
        Some(state) => format!("{key}=({})", state.summary()),
        None => format!("{key}={value}"),
    }
}

/// The ids the records hold, as `(what, id)`: the map from the deal to its records elsewhere.
pub fn id_map(records: &[StepRecord]) -> Vec<(&'static str, String)> {
    const KEYS: [(&str, &str); 6] = [
        ("maxio_site", "AB site"),
        ("maxio_customer_id", "AB customer"),
        ("maxio_subscription_id", "AB subscription"),
        ("maxio_core_contract_id", "Core contract"),
        (dealbridge::whmcs::provision::TARGET_ORDER, "WHMCS order"),
        (
            dealbridge::whmcs::provision::TARGET_SERVICES,
            "WHMCS services",
        ),
    ];
    let mut out: Vec<(&'static str, String)> = Vec::new();
    for (key, what) in KEYS {
        for r in records {
            if let Some(v) = r.targets.get(key).filter(|v| !v.trim().is_empty())
                && !out.iter().any(|(w, seen)| *w == what && seen == v)
            {
                out.push((what, v.clone()));
            }
        }
    }
    out
}

/// The ledger's table (`LEDGER_TABLE_NAME`), and its name.
async fn open_ledger() -> Result<(DynamoDbLedger, String), CliError> {
    let Some(table_name) = var(TABLE_VARIABLE) else {
        return Err(CliError::config(format!(
            "{TABLE_VARIABLE} is not set: the ledger's DynamoDB table (the stack's ledger table, or dealbridge-ledger in the sandbox)"
        )));
    };
    let aws = wiring::aws().await;
    let ledger = DynamoDbLedger::from_settings(&aws, &wiring::section(LedgerSettings::read)?);
    Ok((ledger, table_name))
}

/// Runs `status`.
pub async fn status(id: &str) -> Result<Outcome, CliError> {
    if let Some(site) = id.strip_prefix("billing:") {
        return billing_status(site.trim()).await;
    }
    let deal = parse_deal(id)?;
    let (ledger, table_name) = open_ledger().await?;
    let key = deal.id().to_string();
    let records = ledger.for_deal(&key).await.map_err(|e| {
        CliError::Failed(format!(
            "reading the ledger (table {table_name}) failed: {}",
            e.message
        ))
    })?;
    let mut text = format!(
        "{} {} — ledger table {table_name}\n",
        deal.sobject(),
        deal.id()
    );
    if records.is_empty() {
        text.push_str("No ledger records: dealbridge has not worked on this Id (WHMCS provisioning is recorded under the Order Id, the Maxio steps under the Opportunity Id).\n");
    } else {
        let rows: Vec<Vec<String>> = records.iter().map(row).collect();
        text.push_str(&table(
            &[
                "step",
                "status",
                "attempts",
                "started",
                "updated",
                "targets",
                "last error",
            ],
            &rows,
        ));
    }
    let ids = id_map(&records);
    if !ids.is_empty() {
        let line: Vec<String> = ids
            .iter()
            .map(|(what, id)| format!("{what} {id}"))
            .collect();
        text.push_str(&format!("Ids: {}\n", line.join(", ")));
    }
    let json = json!({
        "deal": {"type": deal.sobject(), "id": deal.id()},
        "table": table_name,
        "records": records,
        "ids": ids.iter().map(|(what, id)| json!({"what": what, "id": id})).collect::<Vec<_>>(),
    });
    Ok(Outcome::new(json, text, false))
}

/// `status billing:<site>`: the site's cursor record.
async fn billing_status(site: &str) -> Result<Outcome, CliError> {
    use dealbridge::billing::sync::{CURSOR_STEP, cursor_key};
    if site.is_empty() {
        return Err(CliError::Usage(
            "billing: needs an AB site's name, e.g. billing:default".into(),
        ));
    }
    let (ledger, table_name) = open_ledger().await?;
    let key = cursor_key(site);
    let record = ledger.get(&key, CURSOR_STEP).await.map_err(|e| {
        CliError::Failed(format!(
            "reading the ledger (table {table_name}) failed: {}",
            e.message
        ))
    })?;
    let mut text = format!("Billing sync of AB site {site} — ledger table {table_name}\n");
    match &record {
        None => text.push_str(
            "No cursor: the billing sync has not run for this site; its first run reads AB's event log from the start.\n",
        ),
        Some(r) => {
            let since = r.targets.get("since_id").map_or("start", String::as_str);
            let refused = r.targets.get("refused").filter(|v| !v.is_empty());
            text.push_str(&format!(
                "Last event handled: {since}, at {}\nRefused by Salesforce (tried again next run): {}\n",
                instant(r.updated_at),
                refused.map_or("none", String::as_str)
            ));
        }
    }
    let json = json!({"site": site, "table": table_name, "cursor": record});
    Ok(Outcome::new(json, text, false))
}

#[cfg(test)]
mod tests {
    use super::*;
    use dealbridge::contract::cancel::{Standing, ledger_record};
    use dealbridge::ledger::StepStatus;

    #[test]
    fn a_cancellation_steps_states_read_as_words_and_other_targets_as_they_are() {
        let standings = [Standing {
            system: "AB subscription 42".into(),
            state: SystemState::Scheduled {
                note: "AB cancels it at 2026-12-31T05:00:00Z".into(),
            },
        }];
        let (mut targets, _) = ledger_record(&standings, None);
        targets.insert("whmcs_requested_101".into(), "End of Billing Period".into());
        let t = "2026-12-02T12:00:00Z".parse().unwrap();
        let record = StepRecord {
            deal_id: "006A000010khO8JIAU".into(),
            step: "maxio-cancel".into(),
            status: StepStatus::Completed,
            attempts: 1,
            started_at: t,
            updated_at: t,
            lease_until: None,
            targets,
            last_error: None,
            expires_at: 0,
        };
        assert_eq!(
            row(&record)[5],
            "ab_subscription_42=(scheduled: AB cancels it at 2026-12-31T05:00:00Z) whmcs_requested_101=End of Billing Period"
        );
    }

    #[test]
    fn the_id_map_gathers_each_step_s_ids_once() {
        let t = "2026-12-02T12:00:00Z".parse().unwrap();
        let record = |step: &str, targets: &[(&str, &str)]| StepRecord {
            deal_id: "006A000010khO8JIAU".into(),
            step: step.into(),
            status: StepStatus::Completed,
            attempts: 1,
            started_at: t,
            updated_at: t,
            lease_until: None,
            targets: targets
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            last_error: None,
            expires_at: 0,
        };
        let records = [
            record(
                "maxio-customer",
                &[("maxio_site", "uk"), ("maxio_customer_id", "7")],
            ),
            record(
                "maxio-subscription",
                &[
                    ("maxio_customer_id", "7"),
                    ("maxio_subscription_id", "9001"),
                ],
            ),
            record(
                "whmcs-provision",
                &[("whmcs_order_id", "55"), ("whmcs_service_ids", "101,102")],
            ),
        ];
        assert_eq!(
            id_map(&records),
            [
                ("AB site", "uk".to_string()),
                ("AB customer", "7".to_string()),
                ("AB subscription", "9001".to_string()),
                ("WHMCS order", "55".to_string()),
                ("WHMCS services", "101,102".to_string()),
            ]
        );
    }
}
