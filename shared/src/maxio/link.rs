//! Linking an AB subscription to the customer's Maxio Core contract: the step's input, its
//! settings, how the customer and the contract are chosen from what Core lists, and how long to
//! wait for Core to sync. Pure logic, apart from I/O, so every rule is unit-tested.
//!
//! Core syncs customers and contracts from Salesforce and from Advanced Billing on its own
//! schedule, so a customer or contract that is not there yet is not an error: the link waits
//! 1, 5 and 15 minutes, then every hour, up to a deadline (24 hours by default).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::core::CoreRecord;
use crate::codes::ErrorCode;
use crate::failure::StepFailure;
use crate::salesforce::SfId;
use crate::settings::Env;

/// What the link step needs: everything comes from the subscription step, nothing is re-read
/// from Salesforce.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CoreLinkInput {
    pub opportunity_id: SfId,
    /// The AB customer id.
    pub customer_id: i64,
    /// The AB subscription id, the value written on the Core contract.
    pub subscription_id: i64,
    /// 1 for the first try.
    pub attempt: u32,
    /// Unix seconds of the first try (`None` until it has happened).
    #[serde(default)]
    pub started_at: Option<i64>,
    /// Whether the AB outcome ("Synced" and the ids) is already on the Opportunity; until it is,
    /// the link step writes it with the link status, in one call.
    #[serde(default)]
    pub sync_written: bool,
    /// The AB site of the subscription (written with the AB outcome).
    #[serde(default)]
    pub site: Option<String>,
}

/// How the link is made in this tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkSettings {
    /// The Core customer field holding the Salesforce Account Id (`number` or `sf_id`).
    pub customer_field: String,
    /// The Core contract field that receives the AB subscription id.
    pub contract_field: String,
    /// How long to wait for Core to show the customer and contract.
    pub deadline: Duration,
}

impl Default for LinkSettings {
    fn default() -> Self {
        LinkSettings {
            customer_field: "number".into(),
            contract_field: "text_field2".into(),
            deadline: Duration::from_secs(24 * 3600),
        }
    }
}

/// Contract fields Core sets itself or that tie the contract to other records.
const READ_ONLY_CONTRACT_FIELDS: [&str; 9] = [
    "id",
    "customer",
    "register",
    "created",
    "created_by",
    "modified",
    "modified_by",
    "auditentry",
    "billing_profile",
];

/// Checks a Core field name as configured: lowercase letters, digits and underscores.
pub fn check_field_name(variable: &str, name: &str) -> Result<(), String> {
    let ok = name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{variable} {name:?} is not a Maxio Core field name (lowercase letters, digits and _)"
        ))
    }
}

impl LinkSettings {
    /// Reads `MAXIO_CORE_CUSTOMER_FIELD`, `MAXIO_CORE_CONTRACT_FIELD` and
    /// `MAXIO_CORE_LINK_DEADLINE_HOURS`, every problem named.
    pub fn read(env: &mut Env<'_>) -> LinkSettings {
        let mut settings = LinkSettings::default();
        if let Some(f) = env.var("MAXIO_CORE_CUSTOMER_FIELD") {
            if let Err(p) = check_field_name("MAXIO_CORE_CUSTOMER_FIELD", &f) {
                env.problem(p);
            }
            settings.customer_field = f;
        }
        if let Some(f) = env.var("MAXIO_CORE_CONTRACT_FIELD") {
            if let Err(p) = check_field_name("MAXIO_CORE_CONTRACT_FIELD", &f) {
                env.problem(p);
            } else if READ_ONLY_CONTRACT_FIELDS.contains(&f.as_str()) {
                env.problem(format!(
                    "MAXIO_CORE_CONTRACT_FIELD {f:?} is not a field dealbridge may overwrite; use a free text field such as text_field2"
                ));
            }
            settings.contract_field = f;
        }
        if let Some(raw) = env.var("MAXIO_CORE_LINK_DEADLINE_HOURS") {
            match raw.parse::<u64>() {
                Ok(h) if (1..=24 * 14).contains(&h) => {
                    settings.deadline = Duration::from_secs(h * 3600)
                }
                _ => env.problem(format!(
                    "MAXIO_CORE_LINK_DEADLINE_HOURS {raw:?} is not a whole number of hours from 1 to 336"
                )),
            }
        }
        settings
    }
}

/// How long to wait after failed try number `attempt` (1-based): 1, 5, 15 minutes, then hourly.
pub fn wait_after(attempt: u32) -> Duration {
    Duration::from_secs(match attempt {
        0 | 1 => 60,
        2 => 5 * 60,
        3 => 15 * 60,
        _ => 3600,
    })
}

fn ids(records: &[&CoreRecord]) -> String {
    records
        .iter()
        .map(|r| r.id().map(|i| i.to_string()).unwrap_or_else(|| "?".into()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The Core customer whose `field` holds the Account Id, re-checked on every record (Core ignores
/// filters it does not know and would list every customer). Several matches: the single active
/// one, else an ambiguity no retry can resolve.
pub fn choose_customer(
    records: &[CoreRecord],
    field: &str,
    account: &SfId,
) -> Result<CoreRecord, StepFailure> {
    let matching: Vec<&CoreRecord> = records
        .iter()
        .filter(|r| r.holds_sf_id(field, account))
        .collect();
    let active: Vec<&CoreRecord> = matching.iter().copied().filter(|r| r.is_active()).collect();
    match (matching.as_slice(), active.as_slice()) {
        ([], _) => Err(StepFailure::not_yet(format!(
            "no Maxio Core customer has {field} = {account} yet"
        ))),
        ([only], _) | (_, [only]) => Ok((*only).clone()),
        (all, _) => Err(StepFailure::permanent(
            ErrorCode::CoreCustomerAmbiguous,
            format!(
                "Maxio Core customers {} all have {field} = {account}; keep one active so dealbridge knows which to link",
                ids(all)
            ),
        )),
    }
}

/// What to do with the contract chosen.
#[derive(Debug, Clone, PartialEq)]
pub enum ContractChoice {
    /// Its field already holds the subscription id: nothing to write.
    AlreadyLinked(i64),
    /// Write the subscription id into its field.
    Patch(i64),
}

/// The contract to link, among `records` listed for Core customer `customer_id`:
///
/// 1. the contract whose `sf_id` is the Opportunity Id;
/// 2. else the single active contract that belongs to no other Opportunity and is not linked to
///    another subscription.
///
/// None: Core has not synced it yet. More than one: a permanent, clearly worded error.
pub fn choose_contract(
    records: &[CoreRecord],
    customer_id: i64,
    opportunity: &SfId,
    field: &str,
    subscription_id: i64,
) -> Result<ContractChoice, StepFailure> {
    let wanted = subscription_id.to_string();
    let ours: Vec<&CoreRecord> = records
        .iter()
        .filter(|r| r.integer("customer") == Some(customer_id))
        .collect();
    let by_opportunity: Vec<&CoreRecord> = ours
        .iter()
        .copied()
        .filter(|r| r.holds_sf_id("sf_id", opportunity))
        .collect();
    let candidates: Vec<&CoreRecord> = if by_opportunity.is_empty() {
        ours.iter()
            .copied()
            .filter(|r| r.is_active())
            .filter(|r| r.text("sf_id").is_none())
            .filter(|r| r.text(field).is_none_or(|v| v == wanted))
            .collect()
    } else {
        by_opportunity
    };
    let contract = match candidates.as_slice() {
        [] => {
            return Err(StepFailure::not_yet(format!(
                "no contract for Maxio Core customer {customer_id} yet (none has sf_id = {opportunity}, and none is active and unlinked)"
            )));
        }
        [one] => *one,
        many => {
            return Err(StepFailure::permanent(
                ErrorCode::CoreContractAmbiguous,
                format!(
                    "Maxio Core customer {customer_id} has {} contracts that could belong to Opportunity {opportunity} ({}); set sf_id = {opportunity} on the right one",
                    many.len(),
                    ids(many)
                ),
            ));
        }
    };
    let Some(id) = contract.id() else {
        return Err(StepFailure::permanent(
            ErrorCode::CoreBadAnswer,
            "Maxio Core listed a contract without an id",
        ));
    };
    match contract.text(field) {
        Some(v) if v == wanted => Ok(ContractChoice::AlreadyLinked(id)),
        Some(other) => Err(StepFailure::permanent(
            ErrorCode::CoreContractLinkedElsewhere,
            format!(
                "Maxio Core contract {id} of Opportunity {opportunity} already has {field} = {other:?}, not subscription {subscription_id}; clear it if the link is wrong"
            ),
        )),
        None => Ok(ContractChoice::Patch(id)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_link(get: impl Fn(&str) -> Option<String>) -> Result<LinkSettings, Vec<String>> {
        let mut env = Env::new(get);
        let s = LinkSettings::read(&mut env);
        env.finish(Some(s))
    }
    use serde_json::{Value, json};

    fn records(v: Value) -> Vec<CoreRecord> {
        serde_json::from_value(v).unwrap()
    }

    fn account() -> SfId {
        SfId::parse("001A000010khO8JIAU").unwrap()
    }

    fn opportunity() -> SfId {
        SfId::parse("006A000010khO8JIAU").unwrap()
    }

    #[test]
    fn the_waits_grow_then_stay_hourly() {
        let waits: Vec<u64> = (1..=6).map(|a| wait_after(a).as_secs() / 60).collect();
        assert_eq!(waits, [1, 5, 15, 60, 60, 60]);
    }

    #[test]
    fn a_customer_is_matched_on_the_configured_field_whatever_else_is_listed() {
        let listed = records(json!([
            {"id": 1, "number": "001A000010khO8K", "sf_id": "001A000010khO8J"},
            {"id": 2, "number": "001A000010khO8J"},
        ]));
        assert_eq!(
            choose_customer(&listed, "number", &account()).unwrap().id(),
            Some(2)
        );
        assert_eq!(
            choose_customer(&listed, "sf_id", &account()).unwrap().id(),
            Some(1)
        );
        assert!(matches!(
            choose_customer(&listed[..1], "number", &account()),
            Err(StepFailure::NotYet(_))
        ));
    }

    #[test]
    fn of_two_matching_customers_the_active_one_wins_and_two_active_are_ambiguous() {
        let one_active = records(json!([
            {"id": 1, "number": "001A000010khO8J", "is_active": false},
            {"id": 2, "number": "001A000010khO8J", "is_active": true},
        ]));
        assert_eq!(
            choose_customer(&one_active, "number", &account())
                .unwrap()
                .id(),
            Some(2)
        );
        let both = records(json!([
            {"id": 1, "number": "001A000010khO8J"},
            {"id": 2, "number": "001A000010khO8JIAU"},
        ]));
        let err = choose_customer(&both, "number", &account()).unwrap_err();
        assert!(
            err.describe()
                .starts_with("CORE_CUSTOMER_AMBIGUOUS: Maxio Core customers 1, 2"),
            "{err:?}"
        );
    }

    #[test]
    fn the_contract_carrying_the_opportunity_id_wins_over_other_active_ones() {
        let listed = records(json!([
            {"id": 10, "customer": 5, "is_active": true},
            {"id": 11, "customer": 5, "is_active": true, "sf_id": "006A000010khO8J"},
            {"id": 12, "customer": 6, "is_active": true, "sf_id": "006A000010khO8J"},
        ]));
        assert_eq!(
            choose_contract(&listed, 5, &opportunity(), "text_field2", 77),
            Ok(ContractChoice::Patch(11))
        );
    }

    #[test]
    fn the_single_active_unlinked_contract_is_chosen_when_none_names_the_opportunity() {
        let listed = records(json!([
            {"id": 10, "customer": 5, "is_active": false},
            {"id": 11, "customer": 5, "is_active": true, "text_field2": "55"},
            {"id": 12, "customer": 5, "is_active": true, "sf_id": "006A000010khO8K"},
            {"id": 13, "customer": 5, "is_active": true, "text_field2": ""},
            {"id": 14, "customer": 9, "is_active": true},
        ]));
        assert_eq!(
            choose_contract(&listed, 5, &opportunity(), "text_field2", 77),
            Ok(ContractChoice::Patch(13))
        );
    }

    #[test]
    fn a_contract_already_holding_the_subscription_needs_no_write() {
        let listed = records(json!([{"id": 10, "customer": 5, "text_field2": "77"}]));
        assert_eq!(
            choose_contract(&listed, 5, &opportunity(), "text_field2", 77),
            Ok(ContractChoice::AlreadyLinked(10))
        );
    }

    #[test]
    fn two_candidate_contracts_are_an_ambiguity_that_names_them() {
        let listed = records(json!([
            {"id": 10, "customer": 5, "is_active": true},
            {"id": 11, "customer": 5, "is_active": true},
        ]));
        let err = choose_contract(&listed, 5, &opportunity(), "text_field2", 77).unwrap_err();
        assert_eq!(
            err.describe(),
            "CORE_CONTRACT_AMBIGUOUS: Maxio Core customer 5 has 2 contracts that could belong to Opportunity 006A000010khO8JIAU (10, 11); set sf_id = 006A000010khO8JIAU on the right one"
        );
    }

    #[test]
    fn no_contract_yet_is_something_to_wait_for() {
        let listed = records(json!([{"id": 10, "customer": 5, "is_active": false}]));
        assert!(matches!(
            choose_contract(&listed, 5, &opportunity(), "text_field2", 77),
            Err(StepFailure::NotYet(_))
        ));
    }

    #[test]
    fn the_opportunitys_contract_linked_to_another_subscription_is_not_overwritten() {
        let listed = records(json!([
            {"id": 10, "customer": 5, "sf_id": "006A000010khO8J", "text_field2": "12"}
        ]));
        let err = choose_contract(&listed, 5, &opportunity(), "text_field2", 77).unwrap_err();
        assert!(
            matches!(
                err,
                StepFailure::Permanent(ref f) if f.code == "CORE_CONTRACT_LINKED_ELSEWHERE"
            ),
            "{err:?}"
        );
    }

    #[test]
    fn settings_are_read_and_bad_ones_named() {
        let s = read_link(|_| None).unwrap();
        assert_eq!(s, LinkSettings::default());
        let s = read_link(|k| match k {
            "MAXIO_CORE_CUSTOMER_FIELD" => Some("sf_id".into()),
            "MAXIO_CORE_LINK_DEADLINE_HOURS" => Some("48".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(s.customer_field, "sf_id");
        assert_eq!(s.deadline, Duration::from_secs(48 * 3600));
        let problems = read_link(|k| match k {
            "MAXIO_CORE_CUSTOMER_FIELD" => Some("Number; DROP".into()),
            "MAXIO_CORE_CONTRACT_FIELD" => Some("customer".into()),
            "MAXIO_CORE_LINK_DEADLINE_HOURS" => Some("soon".into()),
            _ => None,
        })
        .unwrap_err();
        assert_eq!(problems.len(), 3, "{problems:?}");
    }
}
