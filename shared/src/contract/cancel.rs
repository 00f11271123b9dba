//! Cancellations, pure: which deal asks for one, what each system must do to reach it, and what
//! the Opportunity is told.
//!
//! Two ways in:
//! - **the stage** (seed 001): an Opportunity at `values.opportunity_cancelling_stage`
//!   (`△Cancelling`) with `opportunity.scheduled_cancellation` (`ScheduledCancellationDateAndTime__c`)
//!   cancels its AB subscription and its WHMCS services at that time. Moving the stage back while
//!   the cancellation is still `values.cancellation_scheduled` withdraws it.
//! - **a CPQ cancellation**: an amendment that nets every line of the Contract to zero cancels
//!   the Contract's subscription and services from the amendment's start.
//!
//! Converge, don't replay: every dispatch of such a deal reads where each system stands and
//! moves it the rest of the way ([`ab_moves`], [`whmcs_move`]), so a redelivery, a re-run or the
//! reconciler's re-dispatch changes nothing that is already right.
//!
//! AB's cancel stops billing at that moment and credits nothing for the rest of a period
//! already charged (lifecycle reference §3.5): a cancellation on a day inside the period bills
//! to that day's charge, as the customer was charged at the period's start. The detail written
//! to the Opportunity says so whenever AB cancels before its period end.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::codes::ErrorCode;
use crate::failure::Failure;
use crate::mapping::Mapping;
use crate::maxio::ab::SubscriptionLifecycle;
use crate::maxio::prepare::DealProblem;
use crate::salesforce::SfId;
use crate::snapshot::{DealSnapshot, Opportunity};
use crate::whmcs::services::{CancelType, ClientProduct};

/// How close a requested time must be to AB's period end (or to a pending cancellation) to be
/// that time: AB keeps its site's time zone, Salesforce a user's, and neither says which day a
/// person meant; a day either way is the same day.
pub const SAME_DAY_HOURS: i64 = 24;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "kind",
    rename_all = "kebab-case",
    rename_all_fields = "camelCase"
)]
pub enum Target {
    /// Cancelled in every system at `at`.
    Cancel { at: DateTime<Utc> },
    /// Nothing pending any more: the stage moved back before the date.
    Withdraw,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// The Opportunity's stage (seed 001).
    Stage,
    /// A CPQ amendment that takes every line to zero.
    Amendment,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BilledSubscription {
    pub site: String,
    pub id: i64,
}

/// What dispatch hands the cancellation steps: the target and everything it applies to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CancellationPlan {
    pub target: Target,
    pub source: Source,
    /// Where the cancellation's state is written: the dispatched Opportunity.
    pub opportunity_id: SfId,
    pub account_id: SfId,
    /// The Opportunity whose stage follows the service (seed 001): the dispatched one, or for a
    /// CPQ cancellation the Contract's first sale. Set to the cancelled stage when done.
    pub stage_opportunity: SfId,
    pub subscription: Option<BilledSubscription>,
    /// WHMCS service ids, ascending.
    pub services: Vec<String>,
    /// Kept by AB with the cancellation (`cancellation_message`).
    pub message: String,
    /// Refusals found before any call: the steps write them and change nothing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub refused: Vec<DealProblem>,
    /// What the Opportunity says now (`Cancellation_Status__c`), so an unchanged state is not
    /// written again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_now: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail_now: Option<String>,
}

impl CancellationPlan {
    /// When the cancellation is due, for a cancellation.
    pub fn at(&self) -> Option<DateTime<Utc>> {
        match self.target {
            Target::Cancel { at } => Some(at),
            Target::Withdraw => None,
        }
    }

    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(s) = &self.subscription {
            parts.push(format!("AB subscription {} (site {})", s.id, s.site));
        }
        if !self.services.is_empty() {
            parts.push(format!("WHMCS services {}", self.services.join(", ")));
        }
        let what = if parts.is_empty() {
            "nothing billed".to_string()
        } else {
            parts.join(" and ")
        };
        match self.target {
            Target::Cancel { at } => format!("cancel {what} at {}", rfc3339(at)),
            Target::Withdraw => format!("withdraw the cancellation of {what}"),
        }
    }
}

pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn contract_name(snapshot: &DealSnapshot) -> String {
    snapshot.contract.as_ref().map_or_else(String::new, |h| {
        h.contract
            .number
            .clone()
            .unwrap_or_else(|| h.contract.id.to_string())
    })
}

/// The WHMCS services of the deal: the Opportunity's own field and every order product's, the
/// Contract's Orders included. Ascending by number, without repeats.
fn services(snapshot: &DealSnapshot, opportunities: &[&Opportunity]) -> Vec<String> {
    let mut ids: Vec<String> = opportunities
        .iter()
        .filter_map(|o| o.whmcs_service_id.clone())
        .chain(
            snapshot
                .orders
                .iter()
                .chain(snapshot.contract.iter().flat_map(|h| h.orders.iter()))
                .flat_map(|o| o.items.iter())
                .filter_map(|i| i.whmcs_service_id.clone()),
        )
        .filter(|s| !s.is_empty())
        .collect();
    ids.sort_by_key(|s| (s.len(), s.clone()));
    ids.dedup();
    ids
}

fn subscription(opportunity: &Opportunity) -> Option<BilledSubscription> {
    let id = opportunity.maxio_subscription_id.as_deref()?.parse().ok()?;
    Some(BilledSubscription {
        site: opportunity
            .maxio_site
            .clone()
            .unwrap_or_else(|| crate::maxio::options::DEFAULT_SITE.to_string()),
        id,
    })
}

/// The cancellation `snapshot` asks for, if any; problems that refuse it before any call go in
/// the plan's `refused`. `today` (UTC) dates a CPQ cancellation's netting.
pub fn cancellation(
    snapshot: &DealSnapshot,
    mapping: &Mapping,
    today: NaiveDate,
) -> Option<CancellationPlan> {
    let opportunity = snapshot.opportunity.as_ref()?;
    let values = &mapping.values;
    let stage = &opportunity.stage;
    let scheduled =
        opportunity.cancellation_status.as_deref() == Some(values.cancellation_scheduled.as_str());
    let mut refused = Vec::new();
    let (target, source, billed) = if *stage == values.opportunity_cancelling_stage {
        let at = match opportunity.scheduled_cancellation {
            Some(at) => at,
            None => {
                refused.push(DealProblem::new(
                    ErrorCode::CancellationDateMissing,
                    format!(
                        "Opportunity {} is at stage {stage} but {} is empty: set when the cancellation takes effect (now, for an immediate one) and dispatch it again",
                        opportunity.id,
                        mapping
                            .opportunity
                            .scheduled_cancellation
                            .as_deref()
                            .unwrap_or("the mapping's opportunity.scheduled_cancellation field")
                    ),
                ));
                DateTime::<Utc>::MIN_UTC
            }
        };
        (Target::Cancel { at }, Source::Stage, opportunity)
    } else if let Some(day) = crate::contract::net::cancellation_day(snapshot, mapping, today) {
        let original = snapshot
            .contract
            .as_ref()
            .and_then(|h| h.original.as_ref())?;
        let at = day.and_hms_opt(0, 0, 0)?.and_utc();
        (Target::Cancel { at }, Source::Amendment, original)
    } else if scheduled && *stage != values.opportunity_cancelled_stage {
        let billed = snapshot
            .contract
            .as_ref()
            .and_then(|h| h.original.as_ref())
            .filter(|_| opportunity.amended_contract.is_some())
            .unwrap_or(opportunity);
        let source = if opportunity.amended_contract.is_some() {
            Source::Amendment
        } else {
            Source::Stage
        };
        (Target::Withdraw, source, billed)
    } else {
        return None;
    };
    let subscription = subscription(billed);
    let services = services(snapshot, &[opportunity, billed]);
    if subscription.is_none() && services.is_empty() && refused.is_empty() {
        refused.push(DealProblem::new(
            ErrorCode::CancellationNothingBilled,
            format!(
                "Opportunity {} has no Maxio subscription id and no WHMCS service id{}: there is nothing billed to cancel. If its billing is still under way, dispatch the cancellation again once it has landed",
                billed.id,
                if billed.id == opportunity.id {
                    String::new()
                } else {
                    format!(" (the first sale of Contract {})", contract_name(snapshot))
                }
            ),
        ));
    }
    let message = match (&target, source) {
        (Target::Cancel { at }, Source::Stage) => format!(
            "Salesforce Opportunity {} at stage {stage}, scheduled {} (dealbridge)",
            opportunity.id,
            rfc3339(*at)
        ),
        (Target::Cancel { at }, Source::Amendment) => format!(
            "Salesforce CPQ amendment (Opportunity {}) takes Contract {} to zero from {} (dealbridge)",
            opportunity.id,
            contract_name(snapshot),
            at.date_naive()
        ),
        (Target::Withdraw, _) => format!(
            "Salesforce Opportunity {} moved back to stage {stage} (dealbridge)",
            opportunity.id
        ),
    };
    Some(CancellationPlan {
        target,
        source,
        opportunity_id: opportunity.id.clone(),
        account_id: snapshot.account.id.clone(),
        stage_opportunity: billed.id.clone(),
        subscription,
        services,
        message,
        refused,
        status_now: opportunity.cancellation_status.clone(),
        detail_now: opportunity.cancellation_detail.clone(),
    })
}

/// Where one system stands on the cancellation, after its step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "state",
    rename_all = "kebab-case",
    rename_all_fields = "camelCase"
)]
pub enum SystemState {
    /// Cancelled in the system.
    Cancelled { note: String },
    /// The system will cancel by itself (an AB delayed or scheduled cancel, a WHMCS request its
    /// cron carries out).
    Scheduled { note: String },
    /// Nothing asked of the system yet: dealbridge asks on the day.
    Waiting { note: String },
    /// Nothing pending (after a withdrawal).
    Withdrawn { note: String },
    /// Needs a person.
    Failed { code: ErrorCode, message: String },
}

impl SystemState {
    /// The state as one line: `scheduled: AB cancels it at …`, `failed: CODE: message`.
    pub fn summary(&self) -> String {
        match self {
            SystemState::Cancelled { note } => format!("cancelled: {note}"),
            SystemState::Scheduled { note } => format!("scheduled: {note}"),
            SystemState::Waiting { note } => format!("waiting: {note}"),
            SystemState::Withdrawn { note } => format!("withdrawn: {note}"),
            SystemState::Failed { code, message } => format!("failed: {code}: {message}"),
        }
    }

    /// A cancellation step's ledger target value (see [`ledger_record`]) read back, if it is one.
    pub fn from_ledger(value: &str) -> Option<SystemState> {
        serde_json::from_str(value).ok()
    }

    fn line(&self, system: &str) -> String {
        match self {
            SystemState::Cancelled { note }
            | SystemState::Scheduled { note }
            | SystemState::Waiting { note }
            | SystemState::Withdrawn { note } => format!("{system}: {note}"),
            SystemState::Failed { code, message } => format!("{system}: {code}: {message}"),
        }
    }
}

/// One system's state, named (`AB subscription 123`, `WHMCS service 101`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Standing {
    pub system: String,
    pub state: SystemState,
}

/// What a cancellation step keeps in its ledger record: each system's state by name
/// (`ab_subscription_42_(site_uk)`, `whmcs_service_101`), and the first failure (`CODE: text`)
/// unless `error` (the step's own, e.g. a retry's reason) is given.
pub fn ledger_record(
    standings: &[Standing],
    error: Option<&Failure>,
) -> (std::collections::BTreeMap<String, String>, Option<String>) {
    let targets = standings
        .iter()
        .map(|s| {
            (
                s.system.to_lowercase().replace(' ', "_"),
                serde_json::to_string(&s.state).unwrap_or_default(),
            )
        })
        .collect();
    let error = error.map(ToString::to_string).or_else(|| {
        standings.iter().find_map(|s| match &s.state {
            SystemState::Failed { code, message } => Some(format!("{code}: {message}")),
            _ => None,
        })
    });
    (targets, error)
}

/// One AB call that brings the subscription to the target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AbMove {
    /// `DELETE /subscriptions/{id}.json` now.
    CancelNow,
    /// `POST …/delayed_cancel.json` (the period end is the requested time).
    DelayedCancel,
    /// `DELETE …` with `scheduled_cancellation_at` (site feature; without it, dealbridge asks
    /// on the day).
    Schedule(DateTime<Utc>),
    /// `DELETE …/delayed_cancel.json`: drop a pending cancellation.
    Withdraw,
}

fn near(a: DateTime<Utc>, b: DateTime<Utc>) -> bool {
    (a - b).num_hours().abs() < SAME_DAY_HOURS
}

/// AB's period end, in UTC.
fn period_end(sub: &SubscriptionLifecycle) -> Option<DateTime<Utc>> {
    sub.current_period_ends_at
        .as_deref()
        .and_then(crate::maxio::ab::ab_time)
}

/// Where the subscription stands against `target`, or the calls that move it there (in order).
pub fn ab_moves(
    target: &Target,
    sub: &SubscriptionLifecycle,
    now: DateTime<Utc>,
) -> Result<SystemState, Vec<AbMove>> {
    let pending = sub.pending_cancellation_at();
    match target {
        Target::Cancel { at } => {
            if sub.is_canceled() {
                // Told as when dealbridge cancels it (a redelivery after the cancel finds it
                // canceled, and must say the same), from AB's time of the cancellation.
                let note = match sub
                    .canceled_at
                    .as_deref()
                    .and_then(crate::maxio::ab::ab_time)
                {
                    Some(canceled) => early_cancel_note(sub, canceled, Some(*at)),
                    None => "canceled".to_string(),
                };
                return Ok(SystemState::Cancelled { note });
            }
            if *at <= now {
                return Err(vec![AbMove::CancelNow]);
            }
            if let Some(p) = pending
                && near(p, *at)
            {
                return Ok(SystemState::Scheduled {
                    note: format!("AB cancels it at {}", rfc3339(p)),
                });
            }
            let mut moves = Vec::new();
            if pending.is_some() {
                moves.push(AbMove::Withdraw);
            }
            if period_end(sub).is_some_and(|end| near(end, *at)) {
                moves.push(AbMove::DelayedCancel);
            } else {
                moves.push(AbMove::Schedule(*at));
            }
            Err(moves)
        }
        Target::Withdraw => {
            if sub.is_canceled() {
                return Ok(SystemState::Failed {
                    code: ErrorCode::CancellationNotWithdrawable,
                    message: format!(
                        "AB canceled the subscription{} already; reactivate it in AB by hand if the customer stays (dealbridge does not reactivate: it can charge the card at once)",
                        sub.canceled_at
                            .as_deref()
                            .map(|t| format!(" at {t}"))
                            .unwrap_or_default()
                    ),
                });
            }
            match pending {
                Some(_) => Err(vec![AbMove::Withdraw]),
                None => Ok(SystemState::Withdrawn {
                    note: "no cancellation pending; the subscription keeps billing".into(),
                }),
            }
        }
    }
}

/// What the Opportunity is told after dealbridge cancelled the subscription at `now`, for a
/// cancellation asked for `at`: AB credits nothing for the rest of a charged period, and cannot
/// cancel in the past.
pub fn early_cancel_note(
    sub: &SubscriptionLifecycle,
    now: DateTime<Utc>,
    at: Option<DateTime<Utc>>,
) -> String {
    let mut note = format!("canceled {}", rfc3339(now));
    if let Some(at) = at.filter(|at| !near(*at, now) && *at < now) {
        note.push_str(&format!(
            ", after the requested {}: AB cannot cancel in the past, so charges after that time stand (credit them in AB by hand)",
            rfc3339(at)
        ));
    }
    if let Some(end) = period_end(sub).filter(|end| *end > now) {
        note.push_str(&format!(
            "; AB credits nothing for the rest of the period charged to {} (issue a credit in AB by hand if the contract refunds it)",
            rfc3339(end)
        ));
    }
    note
}

/// The one WHMCS call for a service, or where it stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WhmcsMove {
    Request(CancelType),
}

/// Where the service stands against `target`, or the request that moves it there. `requested`:
/// a cancellation request for it is known (WHMCS lists it); only read for a withdrawal.
pub fn whmcs_move(
    target: &Target,
    service: &ClientProduct,
    requested: Option<&str>,
    now: DateTime<Utc>,
) -> Result<SystemState, WhmcsMove> {
    let status = if service.status.is_empty() {
        "unknown"
    } else {
        service.status.as_str()
    };
    let ended = service.service_status().is_some_and(|s| s.has_ended());
    match target {
        Target::Cancel { at } => {
            if ended {
                return Ok(SystemState::Cancelled {
                    note: format!(
                        "{status}{}",
                        service
                            .termination_date
                            .map(|d| format!(" {d}"))
                            .unwrap_or_default()
                    ),
                });
            }
            if *at <= now {
                return Err(WhmcsMove::Request(CancelType::Immediate));
            }
            match service.next_due_date {
                Some(due) if due == at.date_naive() => {
                    Err(WhmcsMove::Request(CancelType::EndOfBillingPeriod))
                }
                _ => Ok(SystemState::Waiting {
                    note: format!(
                        "{status}; dealbridge asks WHMCS for an Immediate cancellation at {} (the service's next due date {} is not that day)",
                        rfc3339(*at),
                        service
                            .next_due_date
                            .map_or_else(|| "unknown".to_string(), |d| d.to_string())
                    ),
                }),
            }
        }
        Target::Withdraw => {
            if ended {
                return Ok(SystemState::Failed {
                    code: ErrorCode::CancellationNotWithdrawable,
                    message: format!(
                        "the service is {status} in WHMCS already; reactivate it in WHMCS by hand if the customer stays"
                    ),
                });
            }
            match requested {
                Some(kind) => Ok(SystemState::Failed {
                    code: ErrorCode::CancellationNotWithdrawable,
                    message: format!(
                        "WHMCS holds a cancellation request ({kind}) for it, which the WHMCS API cannot delete: delete it in the WHMCS admin area (the service's Cancellation Request, or Clients → Cancellation Requests) before WHMCS's cron carries it out"
                    ),
                }),
                None => Ok(SystemState::Withdrawn {
                    note: format!("{status}; no cancellation request"),
                }),
            }
        }
    }
}

/// How long after a cancellation's time WHMCS's daily cron has to carry out a request made for
/// it: two runs. A service still not ended after that needs a person.
pub const WHMCS_CONFIRM_HOURS: i64 = 48;

/// The failure of a request WHMCS was given (before this dispatch) and has not carried out
/// `WHMCS_CONFIRM_HOURS` after `at`, if so.
pub fn whmcs_unconfirmed(
    service: &ClientProduct,
    kind: CancelType,
    at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Option<SystemState> {
    let overdue = now - at >= chrono::Duration::hours(WHMCS_CONFIRM_HOURS);
    overdue.then(|| SystemState::Failed {
        code: ErrorCode::CancellationNotConfirmed,
        message: format!(
            "WHMCS still shows the service {} {WHMCS_CONFIRM_HOURS} hours after the cancellation's time {} although its {} cancellation request was made: check that WHMCS's cron runs (Utilities → System → System Health) and the request under Clients → Cancellation Requests, then terminate the service by hand or dispatch the deal again",
            if service.status.is_empty() { "unknown" } else { service.status.as_str() },
            rfc3339(at),
            kind.as_str()
        ),
    })
}

/// What the Opportunity is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CancellationOutcome {
    pub status: String,
    pub detail: String,
    /// The first failure's code, with every failure's text.
    pub error: Option<Failure>,
    /// The stage for `stage_opportunity`, once every system shows the cancellation.
    pub stage: Option<String>,
    /// Every system shows the target.
    pub done: bool,
}

/// The Opportunity's view of every system's state.
pub fn outcome(
    plan: &CancellationPlan,
    standings: &[Standing],
    mapping: &Mapping,
) -> CancellationOutcome {
    let v = &mapping.values;
    let detail = standings
        .iter()
        .map(|s| s.state.line(&s.system))
        .collect::<Vec<_>>()
        .join("\n");
    let failures: Vec<(ErrorCode, String)> = plan
        .refused
        .iter()
        .map(|p| (p.code, p.message.clone()))
        .chain(standings.iter().filter_map(|s| match &s.state {
            SystemState::Failed { code, message } => {
                Some((*code, format!("{}: {message}", s.system)))
            }
            _ => None,
        }))
        .collect();
    if let Some((code, _)) = failures.first() {
        let text = failures
            .iter()
            .enumerate()
            .map(|(n, (c, m))| {
                if n == 0 {
                    m.clone()
                } else {
                    format!("{c}: {m}")
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        return CancellationOutcome {
            status: v.cancellation_failed.clone(),
            detail,
            error: Some(Failure::new(*code, text)),
            stage: None,
            done: false,
        };
    }
    let all = |f: fn(&SystemState) -> bool| standings.iter().all(|s| f(&s.state));
    match plan.target {
        Target::Cancel { .. } => {
            let done = all(|s| matches!(s, SystemState::Cancelled { .. }));
            CancellationOutcome {
                status: if done {
                    v.cancellation_cancelled.clone()
                } else {
                    v.cancellation_scheduled.clone()
                },
                detail,
                error: None,
                stage: done.then(|| v.opportunity_cancelled_stage.clone()),
                done,
            }
        }
        Target::Withdraw => CancellationOutcome {
            status: v.cancellation_withdrawn.clone(),
            detail,
            error: None,
            stage: None,
            done: all(|s| matches!(s, SystemState::Withdrawn { .. })),
        },
    }
}

#[cfg(test)]
mod tests;
