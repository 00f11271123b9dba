//! `dealbridge status <id>`: the ledger's story of a deal, one row per step.
//!
//! The Maxio steps and the Core link are recorded under the Opportunity Id (the deal a sync was
//! dispatched with), WHMCS provisioning under the Order Id; the records of the given Id are shown.

use chrono::{DateTime, SecondsFormat, Utc};
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
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" "),
        r.last_error.clone().unwrap_or_default(),
    ]
}

/// Runs `status`.
pub async fn status(id: &str) -> Result<Outcome, CliError> {
    let deal = parse_deal(id)?;
    let Some(table_name) = var(TABLE_VARIABLE) else {
        return Err(CliError::config(format!(
            "{TABLE_VARIABLE} is not set: the ledger's DynamoDB table (the stack's ledger table, or dealbridge-ledger in the sandbox)"
        )));
    };
    let aws = wiring::aws().await;
    let ledger = DynamoDbLedger::from_settings(&aws, &wiring::section(LedgerSettings::read)?);
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
    let json = json!({
        "deal": {"type": deal.sobject(), "id": deal.id()},
        "table": table_name,
        "records": records,
    });
    Ok(Outcome::new(json, text, false))
}
