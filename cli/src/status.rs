//! `dealbridge status <id>`: the ledger's story of a deal, one row per step.
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
}
