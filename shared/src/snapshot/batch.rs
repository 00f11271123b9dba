//! Splits the results of one snapshot request for several deals ([`super::query::snapshot_request`])
//! into each deal's own, so each is assembled exactly as if it had been loaded alone. Pure: no
//! I/O.
//!
//! A row goes to a deal by the Id that ties it to the deal: an Opportunity by its `Id`, an Order by
//! its `Id` or `OpportunityId`, the Account by the Id the deal's Opportunity (or Order) names, a
//! consumption schedule by its order product (CPQ) or product (standard), a rate by its schedule.
//! A row whose tying Id cannot be read goes to every deal of the batch, so each reports it as
//! unreadable rather than losing it (a schedule dropped unseen would bill at the catalog price).

use serde_json::Value;

use super::assemble::QueryResults;
use super::fields;
use super::model::DealRef;
use crate::mapping::{Mapping, ScheduleSource};
use crate::salesforce::{SalesforceError, SfId};

type Rows = Result<Vec<Value>, SalesforceError>;

/// The rows of `rows` that `belongs` keeps (all of them if the query failed: its error).
fn rows_where(rows: &Rows, belongs: impl Fn(&Value) -> bool) -> Rows {
    match rows {
        Ok(rows) => Ok(rows.iter().filter(|r| belongs(r)).cloned().collect()),
        Err(e) => Err(e.clone()),
    }
}

/// Whether `row`'s `field` is one of `ids`, or cannot be read (see the module's note).
fn tied_to(row: &Value, field: &str, ids: &[SfId]) -> bool {
    match fields::id(row, field) {
        Ok(Some(id)) => ids.iter().any(|i| i.same_record(&id)),
        Ok(None) => false,
        Err(_) => true,
    }
}

/// The Ids `field` holds in `rows` (those that can be read).
fn ids_in<'a>(rows: impl IntoIterator<Item = &'a Value>, field: &str) -> Vec<SfId> {
    rows.into_iter()
        .filter_map(|r| fields::id(r, field).ok().flatten())
        .collect()
}

/// `deal`'s part of `all`, the results of a request that loaded it with others of its kind.
pub fn results_for(deal: &DealRef, all: &QueryResults, mapping: &Mapping) -> QueryResults {
    let id = std::slice::from_ref(deal.id());
    let (opportunity, orders) = match deal {
        DealRef::Opportunity(_) => (
            rows_where(&all.opportunity, |r| tied_to(r, "Id", id)),
            rows_where(&all.orders, |r| tied_to(r, "OpportunityId", id)),
        ),
        DealRef::Order(_) => {
            let orders = rows_where(&all.orders, |r| tied_to(r, "Id", id));
            let named = ids_in(orders.iter().flatten(), "OpportunityId");
            (
                rows_where(&all.opportunity, |r| tied_to(r, "Id", &named)),
                orders,
            )
        }
    };
    // The Account the deal's own records name, as `assemble` reads it.
    let account_ids = match deal {
        DealRef::Opportunity(_) => ids_in(opportunity.iter().flatten(), "AccountId"),
        DealRef::Order(_) => ids_in(orders.iter().flatten(), "AccountId"),
    };
    let account = rows_where(&all.account, |r| tied_to(r, "Id", &account_ids));
    let items: Vec<Value> = orders
        .iter()
        .flatten()
        .flat_map(|o| fields::children(o, "OrderItems").unwrap_or_default())
        .collect();
    let (owner, owner_ids, schedule_id, rate_schedule) = match mapping.schedules {
        ScheduleSource::Cpq => (
            "SBQQ__OrderItem__c",
            ids_in(&items, "Id"),
            "Id",
            "SBQQ__OrderItemConsumptionSchedule__c",
        ),
        ScheduleSource::Standard => (
            "ProductId",
            ids_in(&items, "Product2Id"),
            "ConsumptionScheduleId",
            "ConsumptionScheduleId",
        ),
    };
    let schedules = rows_where(&all.schedules, |r| tied_to(r, owner, &owner_ids));
    let schedule_ids = ids_in(schedules.iter().flatten(), schedule_id);
    let rates = rows_where(&all.rates, |r| tied_to(r, rate_schedule, &schedule_ids));
    QueryResults {
        opportunity,
        account,
        orders,
        schedules,
        rates,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn id(s: &str) -> SfId {
        SfId::parse(s).unwrap()
    }

    const OPP_A: &str = "006A000010khO8J";
    const OPP_B: &str = "006A000010khO8K";
    const ACC_A: &str = "001A000010khO8J";
    const ACC_B: &str = "001A000010khO8K";

    fn order(order: &str, opp: &str, account: &str, item: &str) -> Value {
        json!({
            "Id": id(order).as_str(), "OpportunityId": id(opp).as_str(),
            "AccountId": id(account).as_str(),
            "OrderItems": {"totalSize": 1, "done": true, "records": [
                {"Id": id(item).as_str(), "Product2Id": "01tA000010khO8JIAU"}
            ]}
        })
    }

    fn batch() -> QueryResults {
        QueryResults {
            opportunity: Ok(vec![
                json!({"Id": id(OPP_A).as_str(), "AccountId": id(ACC_A).as_str()}),
                json!({"Id": id(OPP_B).as_str(), "AccountId": id(ACC_B).as_str()}),
            ]),
            account: Ok(vec![
                json!({"Id": id(ACC_A).as_str()}),
                json!({"Id": id(ACC_B).as_str()}),
            ]),
            orders: Ok(vec![
                order("801A000010khO8J", OPP_A, ACC_A, "802A000010khO8J"),
                order("801A000010khO8K", OPP_B, ACC_B, "802A000010khO8K"),
            ]),
            schedules: Ok(vec![
                json!({"Id": id("a0BA000010khO8J").as_str(), "SBQQ__OrderItem__c": id("802A000010khO8J").as_str()}),
                json!({"Id": id("a0BA000010khO8K").as_str(), "SBQQ__OrderItem__c": id("802A000010khO8K").as_str()}),
                json!({"Id": "not an id", "SBQQ__OrderItem__c": "not an id"}),
            ]),
            rates: Ok(vec![
                json!({"Id": "x1", "SBQQ__OrderItemConsumptionSchedule__c": id("a0BA000010khO8J").as_str()}),
                json!({"Id": "x2", "SBQQ__OrderItemConsumptionSchedule__c": id("a0BA000010khO8K").as_str()}),
            ]),
        }
    }

    fn ids_of(rows: &Rows, field: &str) -> Vec<String> {
        rows.as_ref()
            .unwrap()
            .iter()
            .map(|r| r[field].as_str().unwrap_or_default().to_string())
            .collect()
    }

    #[test]
    fn each_opportunity_gets_its_own_rows_and_unreadable_ones_go_to_both() {
        let all = batch();
        let a = results_for(&DealRef::Opportunity(id(OPP_A)), &all, &Mapping::default());
        assert_eq!(ids_of(&a.opportunity, "Id"), [id(OPP_A).as_str()]);
        assert_eq!(ids_of(&a.account, "Id"), [id(ACC_A).as_str()]);
        assert_eq!(ids_of(&a.orders, "Id"), [id("801A000010khO8J").as_str()]);
        assert_eq!(
            ids_of(&a.schedules, "Id"),
            [id("a0BA000010khO8J").as_str(), "not an id"]
        );
        assert_eq!(ids_of(&a.rates, "Id"), ["x1"]);
        let b = results_for(&DealRef::Opportunity(id(OPP_B)), &all, &Mapping::default());
        assert_eq!(ids_of(&b.account, "Id"), [id(ACC_B).as_str()]);
        assert_eq!(ids_of(&b.rates, "Id"), ["x2"]);
        assert_eq!(ids_of(&b.schedules, "Id").len(), 2);
    }

    #[test]
    fn an_order_gets_the_opportunity_and_account_it_names_and_errors_are_shared() {
        let mut all = batch();
        all.account = Err(SalesforceError::Transport("reset".into()));
        let deal = DealRef::Order(id("801A000010khO8K"));
        let b = results_for(&deal, &all, &Mapping::default());
        assert_eq!(ids_of(&b.orders, "Id"), [id("801A000010khO8K").as_str()]);
        assert_eq!(ids_of(&b.opportunity, "Id"), [id(OPP_B).as_str()]);
        assert!(matches!(b.account, Err(SalesforceError::Transport(_))));
        // A deal the batch holds nothing for gets empty results: assemble says it is not found.
        let ghost = results_for(
            &DealRef::Opportunity(id("006A000010khO8L")),
            &batch(),
            &Mapping::default(),
        );
        assert!(ghost.opportunity.unwrap().is_empty());
        assert!(ghost.orders.unwrap().is_empty());
        assert!(ghost.account.unwrap().is_empty());
    }
}
