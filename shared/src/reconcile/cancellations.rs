//! The reconciler's cancellation search: Opportunities whose cancellation was not carried out,
//! whose cancellation is due and not yet confirmed, or whose withdrawal was lost. Pure.
//!
//! A cancellation is a candidate when one of these holds (the fields are the mapping's
//! `opportunity.cancellation_status`, `opportunity.scheduled_cancellation` and
//! `opportunity.amended_contract`; the values are `values.*`):
//!
//! - **not carried out**: the stage is `opportunity_cancelling_stage` (`△Cancelling`) and the
//!   status is empty or anything but `cancellation_scheduled` / `cancellation_failed`, last
//!   changed inside the run's window (the trigger of the stage change was lost);
//! - **due**: the status is `cancellation_scheduled` and the scheduled time has passed by the
//!   grace period, within the look-back window of that time. What AB or WHMCS carries out by
//!   itself (AB's delayed cancel, WHMCS's cron) is only confirmed by reading it after the time,
//!   so the reconciler dispatches such a deal each run until every system shows it cancelled (or
//!   a failure says what a person does). The window is on the scheduled time, not on
//!   `LastModifiedDate`: the Opportunity was last written when the cancellation was scheduled,
//!   which can be months before it is due;
//! - **withdrawal lost**: the status is `cancellation_scheduled`, the stage is neither cancelling
//!   nor cancelled, the Opportunity is not a CPQ amendment (a CPQ cancellation keeps its stage),
//!   last changed inside the run's window.
//!
//! A status of `cancellation_failed` is never picked up, like every failed deal: a person fixes
//! the data and clears the status, which brings the deal back.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::{
    Candidate, SearchError, Window, last_modified, literal_list, record_id, soql_datetime, text,
};
use crate::mapping::Mapping;
use crate::reconcile::parse_sf_datetime;
use crate::salesforce::soql::quote;
use crate::snapshot::DealRef;

/// Composite reference id of the cancellation search.
pub const CANCELLATIONS: &str = "cancellations";

/// The mapped fields the search needs.
struct Fields<'a> {
    status: &'a str,
    scheduled: &'a str,
    amended: Option<&'a str>,
}

fn fields(mapping: &Mapping) -> Result<Fields<'_>, SearchError> {
    let o = &mapping.opportunity;
    Ok(Fields {
        status: o
            .cancellation_status
            .as_deref()
            .ok_or(SearchError::Unmapped {
                key: "opportunity.cancellation_status",
            })?,
        scheduled: o
            .scheduled_cancellation
            .as_deref()
            .ok_or(SearchError::Unmapped {
                key: "opportunity.scheduled_cancellation",
            })?,
        amended: o.amended_contract.as_deref(),
    })
}

/// The cancellation search (the three rules of the module, in one query), oldest change first,
/// `limit` rows.
pub fn cancellation_query(
    mapping: &Mapping,
    window: &Window,
    limit: usize,
) -> Result<String, SearchError> {
    let f = fields(mapping)?;
    let v = &mapping.values;
    let cancelling = quote(&v.opportunity_cancelling_stage);
    let scheduled = quote(&v.cancellation_scheduled);
    let modified = window.condition();
    let not_carried_out = format!(
        "(StageName = {cancelling} AND ({status} = null OR {status} NOT IN {}) AND {modified})",
        literal_list([&v.cancellation_scheduled, &v.cancellation_failed]),
        status = f.status,
    );
    let due = format!(
        "({status} = {scheduled} AND {at} < {} AND {at} >= {})",
        soql_datetime(window.modified_before),
        soql_datetime(window.modified_since),
        status = f.status,
        at = f.scheduled,
    );
    let withdrawal = format!(
        "({status} = {scheduled} AND StageName NOT IN {}{} AND {modified})",
        literal_list([
            &v.opportunity_cancelling_stage,
            &v.opportunity_cancelled_stage
        ]),
        f.amended
            .map(|a| format!(" AND {a} = null"))
            .unwrap_or_default(),
        status = f.status,
    );
    let mut select = vec!["Id", "AccountId", "StageName", f.status, f.scheduled];
    select.extend(f.amended);
    select.push("LastModifiedDate");
    Ok(format!(
        "SELECT {} FROM Opportunity WHERE {not_carried_out} OR {due} OR {withdrawal} ORDER BY LastModifiedDate ASC, Id ASC LIMIT {limit}",
        select.join(", ")
    ))
}

fn within(t: DateTime<Utc>, window: &Window) -> bool {
    t < window.modified_before && t >= window.modified_since
}

/// Applies the rules to a row of the search (which applies them too). `Err` is the reason to
/// skip it.
pub fn cancellation_candidate(
    row: &Value,
    mapping: &Mapping,
    window: &Window,
) -> Result<Candidate, String> {
    let raw = record_id(row);
    let deal = DealRef::opportunity(&raw).map_err(|e| format!("{raw}: {e}"))?;
    let f = fields(mapping).map_err(|e| e.to_string())?;
    let v = &mapping.values;
    let stage = text(row, "StageName").unwrap_or_default();
    let status = text(row, f.status);
    let at = text(row, f.scheduled).and_then(|s| parse_sf_datetime(&s));
    let changed = last_modified(row);
    let recent = changed.is_some_and(|t| within(t, window));
    let candidate = Candidate {
        deal,
        last_modified: changed,
    };
    let scheduled = status.as_deref() == Some(v.cancellation_scheduled.as_str());
    if scheduled {
        if at.is_some_and(|t| within(t, window)) {
            return Ok(candidate);
        }
        let amendment = f.amended.and_then(|a| text(row, a)).is_some();
        let moved_back = stage != v.opportunity_cancelling_stage.as_str()
            && stage != v.opportunity_cancelled_stage.as_str();
        if moved_back && !amendment && recent {
            return Ok(candidate);
        }
        return Err(format!(
            "Opportunity {raw}'s cancellation is scheduled{} and not yet due",
            at.map(|t| format!(" for {}", soql_datetime(t)))
                .unwrap_or_default()
        ));
    }
    if stage != v.opportunity_cancelling_stage.as_str() {
        return Err(format!(
            "Opportunity {raw} is not at stage {}",
            v.opportunity_cancelling_stage
        ));
    }
    if let Some(s) = status.as_deref()
        && s == v.cancellation_failed.as_str()
    {
        return Err(format!("Opportunity {raw} has cancellation status {s}"));
    }
    if !recent {
        return Err(format!(
            "Opportunity {raw} was not changed inside the run's window"
        ));
    }
    Ok(candidate)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;

    const OPP: &str = "006A000010khO8JIAU";

    fn window() -> Window {
        let noon = Utc.with_ymd_and_hms(2026, 11, 20, 12, 0, 0).unwrap();
        Window::new(noon, &super::super::ReconcileSettings::default())
    }

    fn row(fields: Value) -> Value {
        let mut row = json!({
            "Id": OPP, "AccountId": "001A000010khO8JIAU", "StageName": "\u{25b3}Cancelling",
            "Cancellation_Status__c": null, "ScheduledCancellationDateAndTime__c": null,
            "SBQQ__AmendedContract__c": null,
            "LastModifiedDate": "2026-11-20T10:00:00.000+0000"
        });
        for (k, v) in fields.as_object().unwrap() {
            row[k] = v.clone();
        }
        row
    }

    fn verdict(fields: Value) -> Result<(), String> {
        cancellation_candidate(&row(fields), &Mapping::default(), &window()).map(|_| ())
    }

    #[test]
    fn the_search_holds_the_three_rules_with_the_mappings_fields_and_values() {
        let q = cancellation_query(&Mapping::default(), &window(), 51).unwrap();
        assert_eq!(
            q,
            "SELECT Id, AccountId, StageName, Cancellation_Status__c, ScheduledCancellationDateAndTime__c, SBQQ__AmendedContract__c, LastModifiedDate FROM Opportunity WHERE \
             (StageName = '\u{25b3}Cancelling' AND (Cancellation_Status__c = null OR Cancellation_Status__c NOT IN ('Scheduled', 'Failed')) AND LastModifiedDate < 2026-11-20T11:30:00Z AND LastModifiedDate >= 2026-11-13T12:00:00Z) \
             OR (Cancellation_Status__c = 'Scheduled' AND ScheduledCancellationDateAndTime__c < 2026-11-20T11:30:00Z AND ScheduledCancellationDateAndTime__c >= 2026-11-13T12:00:00Z) \
             OR (Cancellation_Status__c = 'Scheduled' AND StageName NOT IN ('\u{25b3}Cancelling', '\u{25b3}Cancelled') AND SBQQ__AmendedContract__c = null AND LastModifiedDate < 2026-11-20T11:30:00Z AND LastModifiedDate >= 2026-11-13T12:00:00Z) \
             ORDER BY LastModifiedDate ASC, Id ASC LIMIT 51"
        );
    }

    #[test]
    fn without_the_cancellation_fields_the_search_is_off_and_named() {
        let mut mapping = Mapping::default();
        mapping.opportunity.scheduled_cancellation = None;
        let e = cancellation_query(&mapping, &window(), 51).unwrap_err();
        assert!(
            e.to_string().contains("opportunity.scheduled_cancellation"),
            "{e}"
        );
        let mut mapping = Mapping::default();
        mapping.opportunity.amended_contract = None;
        let q = cancellation_query(&mapping, &window(), 51).unwrap();
        assert!(!q.contains("SBQQ__AmendedContract__c"), "{q}");
    }

    #[test]
    fn a_cancelling_stage_never_carried_out_is_a_candidate_unless_failed_or_scheduled() {
        assert_eq!(verdict(json!({})), Ok(()));
        assert_eq!(
            verdict(json!({"Cancellation_Status__c": "Withdrawn"})),
            Ok(())
        );
        let failed = verdict(json!({"Cancellation_Status__c": "Failed"})).unwrap_err();
        assert!(failed.contains("cancellation status Failed"), "{failed}");
        let in_flight = verdict(json!({"LastModifiedDate": "2026-11-20T11:45:00.000+0000"}));
        assert!(in_flight.unwrap_err().contains("window"));
        let other = verdict(json!({"StageName": "Closed Won"})).unwrap_err();
        assert!(other.contains("not at stage"), "{other}");
    }

    #[test]
    fn a_scheduled_cancellation_is_a_candidate_once_due_past_the_grace_period() {
        let scheduled = |at: &str| {
            verdict(json!({
                "Cancellation_Status__c": "Scheduled",
                "ScheduledCancellationDateAndTime__c": at,
                "LastModifiedDate": "2026-09-01T10:00:00.000+0000"
            }))
        };
        assert_eq!(scheduled("2026-11-20T00:00:00.000+0000"), Ok(()));
        let not_due = scheduled("2026-11-20T11:45:00.000+0000").unwrap_err();
        assert!(
            not_due.contains("scheduled for 2026-11-20T11:45:00Z and not yet due"),
            "{not_due}"
        );
        assert!(scheduled("2026-12-20T00:00:00.000+0000").is_err());
        assert!(
            scheduled("2026-10-01T00:00:00.000+0000").is_err(),
            "due before the look-back window"
        );
    }

    #[test]
    fn a_stage_moved_back_from_a_scheduled_cancellation_is_a_withdrawal_candidate() {
        let moved = |fields: Value| {
            let mut f = json!({
                "StageName": "Closed Won", "Cancellation_Status__c": "Scheduled",
                "ScheduledCancellationDateAndTime__c": "2027-01-01T00:00:00.000+0000"
            });
            for (k, v) in fields.as_object().unwrap() {
                f[k] = v.clone();
            }
            verdict(f)
        };
        assert_eq!(moved(json!({})), Ok(()));
        assert!(
            moved(json!({"SBQQ__AmendedContract__c": "800A000010khO8JIAU"})).is_err(),
            "a CPQ cancellation keeps its stage"
        );
        assert!(moved(json!({"StageName": "\u{25b3}Cancelling"})).is_err());
        assert!(moved(json!({"LastModifiedDate": "2026-10-01T00:00:00.000+0000"})).is_err());
    }
}
