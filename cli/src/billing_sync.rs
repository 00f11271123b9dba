//! `dealbridge billing-sync [--site <name>] [--since <event id>] [--dry-run]`: one run of the
//! billing sync (`dealbridge::billing::sync`) for each AB site (or the one named): AB's events
//! since the site's cursor, the subscriptions they name read from AB, their billing state written
//! onto their Opportunities, the cursor moved once Salesforce accepted each batch.
//!
//! With WHMCS configured (`WHMCS_BASE_URL`), the WHMCS services of the order products are synced
//! too: each service's status and next due date, upserted where they changed.
//!
//! The cursor lives in the ledger (`LEDGER_TABLE_NAME`); without a table it is this process's
//! own, so each run starts from the beginning of the log. A dry run reads and shows the fields
//! each Opportunity would get, and writes nothing (no Salesforce write, no cursor).

use std::sync::Arc;
use std::time::Duration;

use dealbridge::billing::services_sync::{ServicesReport, sync_services};
use dealbridge::billing::sync::{LedgerCursors, SiteReport, SyncBounds, SyncRequest, sync_site};
use dealbridge::queue::InMemoryQueue;
use dealbridge::settings::Section;
use serde_json::json;

use crate::error::CliError;
use crate::output::{Outcome, table};
use crate::wiring::{self, Connected, LedgerChoice};

/// What `billing-sync` was asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BillingSyncOptions {
    pub site: Option<String>,
    pub since: Option<i64>,
    pub dry_run: bool,
}

fn report_json(r: &SiteReport) -> serde_json::Value {
    json!({
        "site": r.site,
        "from": r.from,
        "cursor": r.cursor,
        "events": r.events,
        "subscriptions": r.subscriptions,
        "written": r.written,
        "failed": r.failed.iter().map(|(k, why)| json!({"subscription": k, "error": why})).collect::<Vec<_>>(),
        "notOurs": r.not_ours,
        "gone": r.gone,
        "salesforceCalls": r.salesforce_calls,
        "caughtUp": r.caught_up,
        "stopped": r.stopped,
        "planned": r.planned.iter().map(|(k, f)| json!({"subscription": k, "fields": f})).collect::<Vec<_>>(),
    })
}

fn cursor_text(c: Option<i64>) -> String {
    c.map_or_else(|| "start".to_string(), |c| c.to_string())
}

/// Runs `billing-sync`.
pub async fn billing_sync(options: &BillingSyncOptions) -> Result<Outcome, CliError> {
    let connected = Connected::from_env().await?;
    let (ledger, choice) = wiring::ledger(&connected.aws)?;
    // The sync sends nothing to a queue; the wiring wants one.
    let queue = Arc::new(InMemoryQueue::new(Duration::from_secs(30), 1));
    let with_whmcs = wiring::var("WHMCS_BASE_URL").is_some();
    let sections: &[Section] = if with_whmcs {
        &[Section::MaxioAb, Section::Whmcs]
    } else {
        &[Section::MaxioAb]
    };
    let wiring = connected.wiring(sections, queue, ledger.clone())?;
    let maxio = wiring.maxio().map_err(|e| CliError::Config(e.problems))?;
    let names: Vec<String> = match &options.site {
        Some(site) => {
            if maxio.sites.get(site).is_none() {
                return Err(CliError::Usage(format!(
                    "no AB site {site:?}; the configured sites are {}",
                    maxio.sites.names().join(", ")
                )));
            }
            vec![site.clone()]
        }
        None => maxio.sites.names().iter().map(|s| s.to_string()).collect(),
    };
    if options.since.is_some() && names.len() > 1 {
        return Err(CliError::Usage(
            "--since is an event id of one site: name it with --site".into(),
        ));
    }
    let clock = wiring::system_clock();
    let cursors = LedgerCursors {
        ledger,
        clock: clock.clone(),
    };
    let mut reports = Vec::new();
    let mut failed = false;
    for name in &names {
        let Some(site) = maxio.sites.get(name) else {
            continue;
        };
        let request = SyncRequest {
            site: name.clone(),
            since: options.since,
            dry_run: options.dry_run,
            bounds: SyncBounds::default(),
        };
        let report = sync_site(
            site.ab.as_ref(),
            connected.salesforce.as_ref(),
            &cursors,
            &connected.mapping,
            clock.as_ref(),
            &request,
        )
        .await
        .map_err(|e| CliError::Failed(format!("the billing sync of site {name} failed: {e}")))?;
        failed |= !report.failed.is_empty();
        reports.push(report);
    }
    let services: Option<ServicesReport> = if with_whmcs {
        let whmcs = wiring.whmcs().map_err(|e| CliError::Config(e.problems))?;
        let report = sync_services(
            whmcs.whmcs.as_ref(),
            connected.salesforce.as_ref(),
            connected.salesforce.as_ref(),
            connected.salesforce.as_ref(),
            &connected.mapping,
            clock.as_ref(),
            &dealbridge::billing::services_sync::ServicesRequest {
                dry_run: options.dry_run,
                ..Default::default()
            },
        )
        .await
        .map_err(|e| CliError::Failed(format!("the WHMCS services sync failed: {e}")))?;
        failed |= !report.failed.is_empty();
        Some(report)
    } else {
        None
    };
    let mut text = String::new();
    if matches!(choice, LedgerChoice::InMemory) {
        text.push_str("LEDGER_TABLE_NAME is not set: the cursors are this run's own, so the sync read each site's log from its start.\n");
    }
    if options.dry_run {
        text.push_str("Dry run: nothing written to Salesforce, no cursor moved.\n");
    }
    let rows: Vec<Vec<String>> = reports
        .iter()
        .map(|r| {
            vec![
                r.site.clone(),
                format!("{} → {}", cursor_text(r.from), cursor_text(r.cursor)),
                r.events.to_string(),
                r.subscriptions.to_string(),
                r.written.len().to_string(),
                r.failed.len().to_string(),
                r.not_ours.len().to_string(),
                r.salesforce_calls.to_string(),
                match (&r.stopped, r.caught_up) {
                    (Some(why), _) => format!("stopped: {why}"),
                    (None, true) => "caught up".to_string(),
                    (None, false) => "not caught up".to_string(),
                },
            ]
        })
        .collect();
    text.push_str(&table(
        &[
            "site",
            "cursor",
            "events",
            "subscriptions",
            if options.dry_run {
                "would write"
            } else {
                "written"
            },
            "failed",
            "not dealbridge's",
            "Salesforce calls",
            "",
        ],
        &rows,
    ));
    for r in &reports {
        for (key, why) in &r.failed {
            text.push_str(&format!("  {} subscription {key}: {why}\n", r.site));
        }
        for (key, fields) in &r.planned {
            text.push_str(&format!(
                "  {} subscription {key}: {}\n",
                r.site,
                serde_json::Value::Object(fields.clone())
            ));
        }
    }
    if let Some(s) = &services {
        text.push_str(&format!(
            "WHMCS services: {} on order products, {} {}, {} failed, {} gone from WHMCS, {} Salesforce write call(s)\n",
            s.services,
            s.written.len(),
            if options.dry_run { "would be written" } else { "written" },
            s.failed.len(),
            s.gone.len(),
            s.salesforce_calls
        ));
        for (key, why) in &s.failed {
            text.push_str(&format!("  WHMCS service {key}: {why}\n"));
        }
    }
    let services_json = services.as_ref().map(|s| {
        json!({
            "services": s.services,
            "written": s.written,
            "gone": s.gone,
            "failed": s.failed.iter().map(|(k, why)| json!({"service": k, "error": why})).collect::<Vec<_>>(),
            "salesforceCalls": s.salesforce_calls,
        })
    });
    Ok(Outcome::new(
        json!({"dryRun": options.dry_run, "sites": reports.iter().map(report_json).collect::<Vec<_>>(),
               "whmcs": services_json}),
        text,
        failed,
    ))
}
