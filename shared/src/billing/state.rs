//! The billing state of one AB subscription as Salesforce shows it, read from the subscription
//! AB answers (never from a webhook's payload, which may be older than what AB holds now), and
//! the Opportunity fields it is written to.

use chrono::{DateTime, SecondsFormat, Utc};
use rust_decimal::Decimal;
use serde_json::{Map, Value};

use crate::mapping::Mapping;
use crate::maxio::ab::{SubscriptionLifecycle, ab_time};

/// What sales and support see of a subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionBilling {
    pub subscription_id: i64,
    /// AB's state: `active`, `past_due`, `canceled`, `expired`, `on_hold`, ...
    pub state: String,
    pub current_period_ends_at: Option<DateTime<Utc>>,
    /// `next_assessment_at`: when AB bills next.
    pub next_billing_at: Option<DateTime<Utc>>,
    /// `current_billing_amount_in_cents`: what the next renewal bills, before usage.
    pub recurring_amount: Option<Decimal>,
    /// `balance_in_cents`: what the customer owes now (past due when positive).
    pub balance: Option<Decimal>,
    pub cancel_at_end_of_period: bool,
    /// When a pending cancellation takes effect (a delayed cancel at the end of the period or a
    /// scheduled one, the earlier); None when none is pending.
    pub scheduled_cancellation_at: Option<DateTime<Utc>>,
}

/// Why an AB subscription cannot be read as a billing state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("AB subscription {subscription_id} cannot be read: {problem}")]
pub struct BillingReadError {
    pub subscription_id: i64,
    pub problem: String,
}

impl SubscriptionBilling {
    /// Reads what AB answers for `GET /subscriptions/{id}.json`. Times come in the site's zone
    /// (AB's payloads say EST) and are kept in UTC; amounts are integer cents.
    ///
    /// ASSUMED: `*_in_cents` counts hundredths of the subscription's currency for every currency
    /// (AB documents cents; zero-decimal currencies are not described).
    pub fn from_ab(s: &SubscriptionLifecycle) -> Result<SubscriptionBilling, BillingReadError> {
        let fail = |problem: String| BillingReadError {
            subscription_id: s.id,
            problem,
        };
        let state = s
            .state
            .as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| fail("it has no state".into()))?
            .to_string();
        let time =
            |key: &str, v: &Option<String>| -> Result<Option<DateTime<Utc>>, BillingReadError> {
                match v.as_deref().map(str::trim) {
                    None | Some("") => Ok(None),
                    Some(text) => ab_time(text)
                        .map(Some)
                        .ok_or_else(|| fail(format!("{key} {text:?} is not a timestamp"))),
                }
            };
        let cents = |key: &str, v: &Option<Value>| -> Result<Option<Decimal>, BillingReadError> {
            let whole = match v {
                None | Some(Value::Null) => return Ok(None),
                Some(Value::Number(n)) => n.as_i64(),
                Some(Value::String(text)) => text.trim().parse::<i64>().ok(),
                Some(_) => None,
            };
            whole.map(|c| Some(Decimal::new(c, 2))).ok_or_else(|| {
                fail(format!(
                    "{key} {} is not whole cents",
                    v.clone().unwrap_or_default()
                ))
            })
        };
        time("delayed_cancel_at", &s.delayed_cancel_at)?;
        time("scheduled_cancellation_at", &s.scheduled_cancellation_at)?;
        Ok(SubscriptionBilling {
            subscription_id: s.id,
            state,
            current_period_ends_at: time("current_period_ends_at", &s.current_period_ends_at)?,
            next_billing_at: time("next_assessment_at", &s.next_assessment_at)?,
            recurring_amount: cents(
                "current_billing_amount_in_cents",
                &s.current_billing_amount_in_cents,
            )?,
            balance: cents("balance_in_cents", &s.balance_in_cents)?,
            cancel_at_end_of_period: s.cancel_at_end_of_period,
            scheduled_cancellation_at: s.pending_cancellation_at(),
        })
    }
}

/// A Salesforce DateTime value.
pub fn salesforce_datetime(t: DateTime<Utc>) -> Value {
    Value::String(t.to_rfc3339_opts(SecondsFormat::Millis, true))
}

/// A Decimal as a JSON number, exactly as written (cents have two places).
pub fn json_number(d: Decimal) -> Value {
    serde_json::from_str::<Value>(&d.normalize().to_string()).unwrap_or(Value::Null)
}

/// Where each part of the billing state is written on the Opportunity; None leaves a part out.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BillingFieldNames<'a> {
    pub state: Option<&'a str>,
    pub period_ends: Option<&'a str>,
    pub next_billing: Option<&'a str>,
    pub recurring_amount: Option<&'a str>,
    pub balance: Option<&'a str>,
    pub cancel_at_period_end: Option<&'a str>,
    pub scheduled_cancellation: Option<&'a str>,
    pub synced_at: Option<&'a str>,
    pub stage: Option<&'a str>,
}

impl<'a> BillingFieldNames<'a> {
    /// The Opportunity fields the mapping names for the billing state.
    pub fn of(mapping: &'a Mapping) -> BillingFieldNames<'a> {
        let o = &mapping.opportunity;
        BillingFieldNames {
            state: o.maxio_billing_state.as_deref(),
            period_ends: o.maxio_period_ends.as_deref(),
            next_billing: o.maxio_next_billing.as_deref(),
            recurring_amount: o.maxio_recurring_amount.as_deref(),
            balance: o.maxio_balance.as_deref(),
            cancel_at_period_end: o.maxio_cancel_at_period_end.as_deref(),
            scheduled_cancellation: o.maxio_pending_cancellation.as_deref(),
            synced_at: o.maxio_billing_synced_at.as_deref(),
            stage: o.stage.as_deref(),
        }
    }
}

/// The Opportunity fields the mapping writes for `billing`, with the stage its
/// `values.billing_stages` gives the subscription's state.
pub fn opportunity_billing_fields(
    billing: &SubscriptionBilling,
    mapping: &Mapping,
    now: DateTime<Utc>,
) -> Map<String, Value> {
    billing_fields(
        billing,
        &BillingFieldNames::of(mapping),
        |state| mapping.values.billing_stages.get(state).cloned(),
        now,
    )
}

/// The fields to write for `billing`: every configured part (nulls included, so a cleared date
/// is cleared in Salesforce too), and the stage where `stage_for` maps the state to one.
pub fn billing_fields(
    billing: &SubscriptionBilling,
    names: &BillingFieldNames<'_>,
    stage_for: impl Fn(&str) -> Option<String>,
    now: DateTime<Utc>,
) -> Map<String, Value> {
    let mut out = Map::new();
    let mut put = |name: Option<&str>, v: Value| {
        if let Some(n) = name {
            out.insert(n.to_string(), v);
        }
    };
    let time = |t: Option<DateTime<Utc>>| t.map_or(Value::Null, salesforce_datetime);
    let money = |d: Option<Decimal>| d.map_or(Value::Null, json_number);
    put(names.state, Value::String(billing.state.clone()));
    put(names.period_ends, time(billing.current_period_ends_at));
    put(names.next_billing, time(billing.next_billing_at));
    put(names.recurring_amount, money(billing.recurring_amount));
    put(names.balance, money(billing.balance));
    put(
        names.cancel_at_period_end,
        Value::Bool(billing.cancel_at_end_of_period),
    );
    put(
        names.scheduled_cancellation,
        time(billing.scheduled_cancellation_at),
    );
    put(names.synced_at, salesforce_datetime(now));
    if let Some(stage) = stage_for(&billing.state) {
        put(names.stage, Value::String(stage));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read(v: Value) -> Result<SubscriptionBilling, BillingReadError> {
        let lifecycle: SubscriptionLifecycle = serde_json::from_value(v).unwrap();
        SubscriptionBilling::from_ab(&lifecycle)
    }

    fn past_due() -> Value {
        json!({
            "id": 80293620, "state": "past_due",
            "current_period_ends_at": "2026-12-31T19:00:00-05:00",
            "next_assessment_at": "2026-12-31T19:00:00-05:00",
            "current_billing_amount_in_cents": 129900, "balance_in_cents": "4550",
            "cancel_at_end_of_period": false, "scheduled_cancellation_at": null,
            "delayed_cancel_at": null
        })
    }

    #[test]
    fn an_ab_subscription_reads_as_utc_times_and_exact_amounts() {
        let b = read(past_due()).unwrap();
        assert_eq!(b.state, "past_due");
        assert_eq!(
            b.current_period_ends_at.map(|t| t.to_rfc3339()),
            Some("2027-01-01T00:00:00+00:00".to_string())
        );
        assert_eq!(b.recurring_amount, Some(Decimal::new(129900, 2)));
        assert_eq!(b.balance, Some(Decimal::new(4550, 2)));
        assert_eq!(b.scheduled_cancellation_at, None);
        let mut delayed = past_due();
        delayed["cancel_at_end_of_period"] = json!(true);
        delayed["delayed_cancel_at"] = json!("2026-12-31T19:00:00-05:00");
        let d = read(delayed).unwrap();
        assert!(d.cancel_at_end_of_period);
        assert_eq!(d.scheduled_cancellation_at, d.current_period_ends_at);
    }

    #[test]
    fn a_subscription_without_state_or_with_odd_values_is_refused_naming_the_field() {
        for (key, value, named) in [
            ("state", json!(null), "no state"),
            (
                "next_assessment_at",
                json!("tomorrow"),
                "next_assessment_at",
            ),
            ("balance_in_cents", json!(12.5), "balance_in_cents"),
            (
                "current_billing_amount_in_cents",
                json!("12.50"),
                "current_billing_amount",
            ),
        ] {
            let mut s = past_due();
            s[key] = value;
            let e = read(s).unwrap_err();
            assert!(e.to_string().contains(named), "{e}");
            assert!(e.to_string().contains("80293620"), "{e}");
        }
    }

    #[test]
    fn the_fields_hold_every_configured_part_and_the_mapped_stage() {
        let b = read(past_due()).unwrap();
        let names = BillingFieldNames {
            state: Some("Maxio_Billing_State__c"),
            period_ends: Some("Maxio_Period_Ends__c"),
            recurring_amount: Some("Maxio_Recurring_Amount__c"),
            balance: Some("Maxio_Balance__c"),
            scheduled_cancellation: Some("Maxio_Scheduled_Cancellation__c"),
            stage: Some("StageName"),
            ..BillingFieldNames::default()
        };
        let now = DateTime::parse_from_rfc3339("2026-12-04T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let fields = billing_fields(&b, &names, |_| None, now);
        assert_eq!(
            Value::Object(fields),
            json!({
                "Maxio_Billing_State__c": "past_due",
                "Maxio_Period_Ends__c": "2027-01-01T00:00:00.000Z",
                "Maxio_Recurring_Amount__c": 1299,
                "Maxio_Balance__c": 45.5,
                "Maxio_Scheduled_Cancellation__c": null
            })
        );
        let stage = |s: &str| (s == "past_due").then(|| "Dunning".to_string());
        let fields = billing_fields(&b, &names, stage, now);
        assert_eq!(fields["StageName"], json!("Dunning"));
    }

    #[test]
    fn by_default_a_canceled_or_expired_subscription_moves_the_opportunity_to_cancelled() {
        let mapping = Mapping::default();
        let now = Utc::now();
        let mut s = past_due();
        let fields = opportunity_billing_fields(&read(s.clone()).unwrap(), &mapping, now);
        assert!(
            !fields.contains_key("StageName"),
            "past due leaves the stage"
        );
        assert_eq!(fields["Maxio_Billing_State__c"], json!("past_due"));
        assert_eq!(fields["Maxio_Balance__c"], json!(45.5));
        assert_eq!(fields["Maxio_Cancel_At_Period_End__c"], json!(false));
        assert_eq!(fields.len(), 8);
        for state in ["canceled", "expired"] {
            s["state"] = json!(state);
            let fields = opportunity_billing_fields(&read(s.clone()).unwrap(), &mapping, now);
            assert_eq!(fields["StageName"], json!("\u{25b3}Cancelled"), "{state}");
        }
    }
}
