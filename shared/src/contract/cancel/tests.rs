use chrono::TimeZone;
use serde_json::{Value, json};

use super::*;
use crate::whmcs::services::CancelType;

const OPP: &str = "006A000010khO8J";

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 2, 12, 0, 0).unwrap()
}

/// A billed first sale: AB subscription 42 on site `uk`, WHMCS services 101 (order product) and
/// 7 (the Opportunity's own field), with `opportunity` fields merged over it.
fn deal(opportunity: Value) -> DealSnapshot {
    let mut opp = json!({
        "id": OPP, "name": "Oakmont", "stage": "Active", "isWon": true, "isClosed": true,
        "accountId": "001A000010khO8J", "maxioSubscriptionId": "42", "maxioSite": "uk",
        "whmcsServiceId": "7", "contactRoles": [],
    });
    for (k, v) in opportunity.as_object().unwrap() {
        opp[k] = v.clone();
    }
    serde_json::from_value(json!({
        "requested": {"type": "Opportunity", "id": OPP},
        "account": {"id": "001A000010khO8J", "name": "Oakmont", "billingAddress": {}},
        "opportunity": opp,
        "orders": [{
            "id": "801A000010khO8J", "status": "Activated", "effectiveDate": "2026-11-01",
            "items": [{
                "id": "802A000010khO8J", "quantity": 1, "whmcsServiceId": "101", "schedules": [],
                "product": {"id": "01tA000010khO8J", "name": "Home Internet"},
            }],
        }],
    }))
    .unwrap()
}

fn cancelling(at: &str) -> DealSnapshot {
    deal(json!({"stage": "\u{25b3}Cancelling", "scheduledCancellation": at}))
}

fn plan_of(snapshot: &DealSnapshot) -> CancellationPlan {
    cancellation(snapshot, &Mapping::default(), now().date_naive()).expect("a cancellation")
}

fn subscription(fields: Value) -> SubscriptionLifecycle {
    let mut sub =
        json!({"id": 42, "state": "active", "current_period_ends_at": "2026-12-31T00:00:00-05:00"});
    for (k, v) in fields.as_object().unwrap() {
        sub[k] = v.clone();
    }
    serde_json::from_value(sub).unwrap()
}

fn service(status: &str, next_due: &str) -> ClientProduct {
    serde_json::from_value(json!({"id": 101, "status": status, "nextduedate": next_due})).unwrap()
}

#[test]
fn the_cancelling_stage_asks_to_cancel_the_subscription_and_every_service_at_its_time() {
    let plan = plan_of(&cancelling("2026-12-31T05:00:00.000+0000"));
    assert_eq!(
        plan.target,
        Target::Cancel {
            at: t("2026-12-31T05:00:00Z")
        }
    );
    assert_eq!(plan.source, Source::Stage);
    assert_eq!(
        plan.subscription,
        Some(BilledSubscription {
            site: "uk".into(),
            id: 42
        })
    );
    assert_eq!(plan.services, ["7", "101"]);
    assert!(plan.refused.is_empty());
    assert_eq!(
        plan.stage_opportunity.as_str(),
        plan.opportunity_id.as_str()
    );
    assert!(
        plan.message.contains("2026-12-31T05:00:00Z"),
        "{}",
        plan.message
    );
}

#[test]
fn a_cancellation_without_its_time_or_with_nothing_billed_is_refused() {
    let plan = plan_of(&deal(json!({"stage": "\u{25b3}Cancelling"})));
    assert_eq!(plan.refused.len(), 1);
    assert_eq!(plan.refused[0].code, ErrorCode::CancellationDateMissing);
    assert!(
        plan.refused[0]
            .message
            .contains("ScheduledCancellationDateAndTime__c")
    );

    let mut unbilled = cancelling("2026-12-31T05:00:00Z");
    unbilled.orders[0].items[0].whmcs_service_id = None;
    if let Some(o) = unbilled.opportunity.as_mut() {
        o.maxio_subscription_id = None;
        o.whmcs_service_id = None;
    }
    let plan = plan_of(&unbilled);
    assert_eq!(plan.refused[0].code, ErrorCode::CancellationNothingBilled);
    // Dispatch waits for the billing rather than refusing at once; not when something else is
    // wrong too, since waiting cannot help then.
    let m = Mapping::default();
    let today = now().date_naive();
    let waits = crate::plan::waits_for_billing(&unbilled, &m, today);
    assert!(waits.is_some_and(|w| w.contains("nothing billed")));
    let mut undated = unbilled.clone();
    if let Some(o) = undated.opportunity.as_mut() {
        o.scheduled_cancellation = None;
    }
    assert_eq!(crate::plan::waits_for_billing(&undated, &m, today), None);
    assert_eq!(
        crate::plan::waits_for_billing(&deal(json!({"stage": "\u{25b3}Cancelling"})), &m, today),
        None
    );
}

#[test]
fn moving_the_stage_back_withdraws_only_a_scheduled_cancellation() {
    let plan = plan_of(&deal(json!({"cancellationStatus": "Scheduled"})));
    assert_eq!(plan.target, Target::Withdraw);
    let today = now().date_naive();
    let m = Mapping::default();
    assert_eq!(cancellation(&deal(json!({})), &m, today), None);
    assert_eq!(
        cancellation(&deal(json!({"cancellationStatus": "Withdrawn"})), &m, today),
        None
    );
    assert_eq!(
        cancellation(
            &deal(json!({"stage": "\u{25b3}Cancelled", "cancellationStatus": "Scheduled"})),
            &m,
            today
        ),
        None
    );
}

#[test]
fn ab_is_moved_to_the_target_by_the_fewest_calls() {
    let period_end = t("2026-12-31T05:00:00Z");
    let cancel = |at| Target::Cancel { at };
    let active = subscription(json!({}));
    // Due: cancel now, whatever is pending.
    assert_eq!(
        ab_moves(&cancel(now()), &active, now()),
        Err(vec![AbMove::CancelNow])
    );
    // The period end (within a day, whatever the time zones): a delayed cancel.
    assert_eq!(
        ab_moves(&cancel(t("2026-12-31T00:00:00Z")), &active, now()),
        Err(vec![AbMove::DelayedCancel])
    );
    // Another day: scheduled at that time.
    assert_eq!(
        ab_moves(&cancel(t("2026-12-15T00:00:00Z")), &active, now()),
        Err(vec![AbMove::Schedule(t("2026-12-15T00:00:00Z"))])
    );
    // Already pending at that time: nothing.
    let delayed = subscription(
        json!({"cancel_at_end_of_period": true, "delayed_cancel_at": "2026-12-31T00:00:00-05:00"}),
    );
    assert!(matches!(
        ab_moves(&cancel(period_end), &delayed, now()),
        Ok(SystemState::Scheduled { .. })
    ));
    // Pending at another time: withdrawn first.
    assert_eq!(
        ab_moves(&cancel(t("2026-12-15T00:00:00Z")), &delayed, now()),
        Err(vec![
            AbMove::Withdraw,
            AbMove::Schedule(t("2026-12-15T00:00:00Z"))
        ])
    );
    let canceled =
        subscription(json!({"state": "canceled", "canceled_at": "2026-12-01T10:00:00-05:00"}));
    assert!(matches!(
        ab_moves(&cancel(period_end), &canceled, now()),
        Ok(SystemState::Cancelled { .. })
    ));
    // Withdrawal.
    assert_eq!(
        ab_moves(&Target::Withdraw, &delayed, now()),
        Err(vec![AbMove::Withdraw])
    );
    assert!(matches!(
        ab_moves(&Target::Withdraw, &active, now()),
        Ok(SystemState::Withdrawn { .. })
    ));
    assert!(matches!(
        ab_moves(&Target::Withdraw, &canceled, now()),
        Ok(SystemState::Failed {
            code: ErrorCode::CancellationNotWithdrawable,
            ..
        })
    ));
}

#[test]
fn a_cancel_says_what_ab_cannot_credit_or_backdate() {
    let note = early_cancel_note(&subscription(json!({})), now(), Some(now()));
    assert!(note.contains("credits nothing"), "{note}");
    assert!(note.contains("2026-12-31T05:00:00Z"), "{note}");
    assert!(!note.contains("after the requested"), "{note}");
    // Dispatched days after the time asked for: said, as AB cannot cancel in the past.
    let late = early_cancel_note(
        &subscription(json!({"current_period_ends_at": "2026-12-01T00:00:00-05:00"})),
        now(),
        Some(t("2026-11-25T00:00:00Z")),
    );
    assert!(
        late.contains("after the requested 2026-11-25T00:00:00Z"),
        "{late}"
    );
    assert!(!late.contains("credits nothing"), "{late}");
}

#[test]
fn a_subscription_found_canceled_is_told_as_the_cancel_that_canceled_it() {
    // A delivery that cancels, dies, and is redelivered finds the subscription canceled: the
    // Opportunity must read as if the first delivery had finished.
    let before = subscription(json!({"current_period_ends_at": "2026-12-31T00:00:00-05:00"}));
    let at = t("2026-12-01T15:00:00Z");
    let told_by_the_cancel = early_cancel_note(&before, at, Some(at));
    let canceled = subscription(json!({
        "state": "canceled",
        "canceled_at": "2026-12-01T10:00:00-05:00",
        "current_period_ends_at": "2026-12-31T00:00:00-05:00"
    }));
    assert_eq!(
        ab_moves(
            &Target::Cancel { at },
            &canceled,
            at + chrono::TimeDelta::minutes(6)
        ),
        Ok(SystemState::Cancelled {
            note: told_by_the_cancel
        })
    );
}

#[test]
fn whmcs_gets_the_request_type_the_time_implies() {
    let cancel = |at| Target::Cancel { at };
    let active = service("Active", "2026-12-31");
    assert_eq!(
        whmcs_move(&cancel(now()), &active, None, now()),
        Err(WhmcsMove::Request(CancelType::Immediate))
    );
    assert_eq!(
        whmcs_move(&cancel(t("2026-12-31T05:00:00Z")), &active, None, now()),
        Err(WhmcsMove::Request(CancelType::EndOfBillingPeriod))
    );
    assert!(matches!(
        whmcs_move(&cancel(t("2026-12-15T00:00:00Z")), &active, None, now()),
        Ok(SystemState::Waiting { .. })
    ));
    assert!(matches!(
        whmcs_move(
            &cancel(now()),
            &service("Cancelled", "2026-12-31"),
            None,
            now()
        ),
        Ok(SystemState::Cancelled { .. })
    ));
    assert!(matches!(
        whmcs_move(
            &Target::Withdraw,
            &active,
            Some("End of Billing Period"),
            now()
        ),
        Ok(SystemState::Failed {
            code: ErrorCode::CancellationNotWithdrawable,
            ..
        })
    ));
    assert!(matches!(
        whmcs_move(&Target::Withdraw, &active, None, now()),
        Ok(SystemState::Withdrawn { .. })
    ));
}

#[test]
fn a_request_whmcs_has_not_carried_out_two_days_after_its_time_needs_a_person() {
    let active = service("Active", "2026-12-31");
    let at = t("2026-11-30T12:00:01Z");
    assert_eq!(
        whmcs_unconfirmed(&active, CancelType::Immediate, at, now()),
        None,
        "one second short of two days: the cron may still run"
    );
    let late = whmcs_unconfirmed(
        &active,
        CancelType::EndOfBillingPeriod,
        t("2026-11-30T12:00:00Z"),
        now(),
    );
    let Some(SystemState::Failed { code, message }) = late else {
        panic!("{late:?}")
    };
    assert_eq!(code, ErrorCode::CancellationNotConfirmed);
    assert!(
        message.contains("still shows the service Active 48 hours after the cancellation's time 2026-11-30T12:00:00Z")
            && message.contains("End of Billing Period"),
        "{message}"
    );
}

#[test]
fn the_opportunity_is_cancelled_only_once_every_system_shows_it() {
    let plan = plan_of(&cancelling("2026-12-31T05:00:00Z"));
    let m = Mapping::default();
    let standing = |system: &str, state| Standing {
        system: system.into(),
        state,
    };
    let done = |n: &str| SystemState::Cancelled { note: n.into() };
    let both = outcome(
        &plan,
        &[
            standing("AB", done("canceled")),
            standing("WHMCS", done("Cancelled")),
        ],
        &m,
    );
    assert_eq!(both.status, "Cancelled");
    assert_eq!(both.stage.as_deref(), Some("\u{25b3}Cancelled"));
    assert!(both.done && both.error.is_none());

    let half = outcome(
        &plan,
        &[
            standing("AB", done("canceled")),
            standing(
                "WHMCS",
                SystemState::Scheduled {
                    note: "request".into(),
                },
            ),
        ],
        &m,
    );
    assert_eq!((half.status.as_str(), half.stage), ("Scheduled", None));
    assert_eq!(half.detail, "AB: canceled\nWHMCS: request");

    let failed = outcome(
        &plan,
        &[
            standing("AB", done("canceled")),
            standing(
                "WHMCS",
                SystemState::Failed {
                    code: ErrorCode::WhmcsOrderNotFound,
                    message: "no service".into(),
                },
            ),
        ],
        &m,
    );
    assert_eq!(failed.status, "Failed");
    let error = failed.error.unwrap();
    assert_eq!(error.code, ErrorCode::WhmcsOrderNotFound);
    assert_eq!(error.message, "WHMCS: no service");
}

#[test]
fn dispatch_plans_the_chain_now_and_dispatches_again_at_a_future_time() {
    let m = Mapping::default();
    let (work, again) = crate::plan::for_dispatch(&cancelling("2026-12-31T05:00:00Z"), &m, now());
    assert_eq!(again, Some(t("2026-12-31T05:00:00Z")));
    assert!(matches!(
        work.steps.as_slice(),
        [crate::plan::PlannedStep::Cancellation { .. }]
    ));
    let (_, again) = crate::plan::for_dispatch(&cancelling("2026-12-01T00:00:00Z"), &m, now());
    assert_eq!(again, None, "a due cancellation is carried out now");
    // A cancelled deal is billed no more.
    let (work, again) =
        crate::plan::for_dispatch(&deal(json!({"stage": "\u{25b3}Cancelled"})), &m, now());
    assert!(work.steps.is_empty() && again.is_none(), "{work:?}");
}
