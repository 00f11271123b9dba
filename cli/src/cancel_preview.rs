//! `sync --dry-run` for a cancellation: each system is read (AB's subscription, WHMCS's
//! services) and the same pure decisions the steps make say which calls the sync would send.
//! Nothing is written.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use dealbridge::contract::cancel::{
    AbMove, CancellationPlan, SystemState, Target, WhmcsMove, ab_moves, whmcs_move,
};
use dealbridge::maxio::settings::AbConfig;
use dealbridge::ports::MaxioAb;
use dealbridge::whmcs::WhmcsClientSettings;

use crate::error::CliError;
use crate::wiring::{Connected, section};

fn state_line(system: &str, state: &SystemState) -> (String, bool) {
    match state {
        SystemState::Failed { code, message } => (format!("{system}: {code}: {message}"), true),
        SystemState::Cancelled { note }
        | SystemState::Scheduled { note }
        | SystemState::Waiting { note }
        | SystemState::Withdrawn { note } => (format!("{system}: nothing to send ({note})"), false),
    }
}

fn ab_call(id: i64, step: &AbMove) -> String {
    match step {
        AbMove::CancelNow => format!("DELETE /subscriptions/{id}.json (cancel now)"),
        AbMove::DelayedCancel => {
            format!("POST /subscriptions/{id}/delayed_cancel.json (at the end of the period)")
        }
        AbMove::Schedule(at) => format!(
            "DELETE /subscriptions/{id}.json with scheduled_cancellation_at {} (on a site without the feature, dealbridge cancels it then)",
            dealbridge::contract::cancel::rfc3339(*at)
        ),
        AbMove::Withdraw => format!("DELETE /subscriptions/{id}/delayed_cancel.json (withdraw)"),
    }
}

/// The lines to show, and whether the sync would fail.
pub async fn preview(
    connected: &Connected,
    plan: &CancellationPlan,
    now: DateTime<Utc>,
) -> Result<(Vec<String>, bool), CliError> {
    let mut lines = Vec::new();
    let mut fails = !plan.refused.is_empty();
    for p in &plan.refused {
        lines.push(format!("refused: {}: {}", p.code, p.message));
    }
    if fails {
        return Ok((lines, true));
    }
    if let Some(sub) = &plan.subscription {
        let ab = section(AbConfig::read)?;
        let sites = dealbridge::maxio::sites::build(
            &ab.client,
            &connected.mapping.maxio,
            connected.secrets.clone(),
            connected.budget_table(&ab),
        )
        .map_err(CliError::config)?;
        let system = format!("AB subscription {} (site {})", sub.id, sub.site);
        let ab: Arc<dyn MaxioAb> = sites
            .get(&sub.site)
            .map(|s| s.ab.clone())
            .ok_or_else(|| CliError::config(format!("AB site {} is not configured", sub.site)))?;
        let read = ab.read_subscription(sub.id).await;
        // Outside the runner's batches nothing else gives the request slot back.
        sites.release_slots().await;
        match read {
            Ok(Some(current)) => match ab_moves(&plan.target, &current, now) {
                Ok(state) => {
                    let (line, failed) = state_line(&system, &state);
                    fails |= failed;
                    lines.push(line);
                }
                Err(moves) => {
                    for step in &moves {
                        lines.push(format!("{system}: {}", ab_call(sub.id, step)));
                    }
                }
            },
            Ok(None) => {
                fails = true;
                lines.push(format!(
                    "{system}: MAXIO_NOT_FOUND: AB has no such subscription"
                ));
            }
            Err(e) => {
                return Err(CliError::Failed(format!(
                    "reading AB subscription {} failed, so the dry run cannot tell what the sync would do: {e}",
                    sub.id
                )));
            }
        }
    }
    if !plan.services.is_empty() {
        let settings = section(WhmcsClientSettings::read)?;
        let whmcs = dealbridge::whmcs::WhmcsClient::new(settings, connected.secrets.clone())
            .map_err(|e| CliError::config(e.message()))?;
        let packages = match plan.target {
            Target::Withdraw => whmcs.cancelled_packages().await.map_err(|e| {
                CliError::Failed(format!("reading WHMCS's cancellation requests failed: {e}"))
            })?,
            Target::Cancel { .. } => Vec::new(),
        };
        for service in &plan.services {
            let system = format!("WHMCS service {service}");
            let product = whmcs.client_product(service).await.map_err(|e| {
                CliError::Failed(format!("reading WHMCS service {service} failed: {e}"))
            })?;
            let Some(product) = product else {
                fails = true;
                lines.push(format!("{system}: WHMCS has no such service"));
                continue;
            };
            let requested = packages
                .iter()
                .find(|p| p.relid == *service)
                .map(|p| p.kind.clone().unwrap_or_default());
            match whmcs_move(&plan.target, &product, requested.as_deref(), now) {
                Ok(state) => {
                    let (line, failed) = state_line(&system, &state);
                    fails |= failed;
                    lines.push(line);
                }
                Err(WhmcsMove::Request(kind)) => lines.push(format!(
                    "{system}: AddCancelRequest serviceid={service} type={}",
                    kind.as_str()
                )),
            }
        }
    }
    Ok((lines, fails))
}
