//! Turns the five query results into a [`DealSnapshot`]. Pure: tested without a network.

use std::collections::HashMap;

use serde_json::Value;

use super::fields::{self, FieldError};
use super::model::*;
use super::{LoadOutcome, SnapshotError};
use crate::mapping::{Mapping, ScheduleSource, relationship_name};
use crate::salesforce::{SalesforceError, SfId};

/// The records each query returned (all pages), or its error.
pub struct QueryResults {
    pub opportunity: Result<Vec<Value>, SalesforceError>,
    pub account: Result<Vec<Value>, SalesforceError>,
    pub orders: Result<Vec<Value>, SalesforceError>,
    pub schedules: Result<Vec<Value>, SalesforceError>,
    pub rates: Result<Vec<Value>, SalesforceError>,
}

/// The records of the contract request ([`super::query::contract_request`]).
pub struct ContractResults {
    pub contract: Result<Vec<Value>, SalesforceError>,
    pub original: Result<Vec<Value>, SalesforceError>,
    pub orders: Result<Vec<Value>, SalesforceError>,
    pub schedules: Result<Vec<Value>, SalesforceError>,
    pub rates: Result<Vec<Value>, SalesforceError>,
}

fn invalid(what: &str, e: FieldError) -> SnapshotError {
    SnapshotError::Invalid {
        what: what.to_string(),
        reason: e.to_string(),
    }
}

/// Checks the results in dependency order (the requested record first, since a missing one makes
/// the queries that refer to it fail too) and builds the snapshot.
pub fn assemble(
    deal: &DealRef,
    mapping: &Mapping,
    results: QueryResults,
) -> Result<LoadOutcome, SnapshotError> {
    let not_found = |sobject: &'static str, id: &SfId| SnapshotError::NotFound {
        sobject,
        id: id.clone(),
    };
    let (opportunity_rows, order_rows) = match deal {
        DealRef::Opportunity(id) => {
            let opp = results.opportunity?;
            if opp.is_empty() {
                return Err(not_found("Opportunity", id));
            }
            (opp, results.orders?)
        }
        DealRef::Order(id) => {
            let orders = results.orders?;
            if orders.is_empty() {
                return Err(not_found("Order", id));
            }
            (results.opportunity?, orders)
        }
    };
    let opportunity = opportunity_rows
        .first()
        .map(|r| opportunity(r, mapping))
        .transpose()?;
    let quote = match opportunity_rows.first() {
        Some(r) => quote(r, mapping)?,
        None => None,
    };

    let account_owner = match (&opportunity, deal) {
        (Some(o), DealRef::Opportunity(_)) => o.account_id.clone(),
        _ => order_rows
            .first()
            .map(|r| fields::id(r, "AccountId"))
            .transpose()
            .map_err(|e| invalid("Order", e))?
            .flatten(),
    };
    let Some(account_id) = account_owner else {
        return Err(SnapshotError::Invalid {
            what: deal.sobject().to_string(),
            reason: format!("{} {} has no Account", deal.sobject(), deal.id()),
        });
    };
    let account_rows = results.account?;
    let account = match account_rows.first() {
        Some(r) => account(r, mapping)?,
        None => return Err(not_found("Account", &account_id)),
    };

    if let (true, DealRef::Opportunity(id), Some(opp)) = (order_rows.is_empty(), deal, &opportunity)
    {
        return Ok(LoadOutcome::OrderPending {
            opportunity_id: id.clone(),
            account_id: account.id.clone(),
            stage: opp.stage.clone(),
        });
    }

    let schedules = schedules_by_item(mapping, results.schedules?, results.rates?)?;
    let mut orders = Vec::with_capacity(order_rows.len());
    for row in &order_rows {
        orders.push(order(row, mapping, &schedules)?);
    }
    Ok(LoadOutcome::Loaded(Box::new(DealSnapshot {
        dispatched_on: None,
        requested: deal.clone(),
        account,
        opportunity,
        quote,
        orders,
        contract: None,
    })))
}

/// The Contract `id`, its original deal and every Order on it.
pub fn assemble_contract(
    id: &SfId,
    mapping: &Mapping,
    results: ContractResults,
) -> Result<ContractHistory, SnapshotError> {
    let rows = results.contract?;
    let Some(row) = rows.first() else {
        return Err(SnapshotError::NotFound {
            sobject: "Contract",
            id: id.clone(),
        });
    };
    let c = &mapping.contract;
    let build = || -> Result<Contract, FieldError> {
        Ok(Contract {
            id: fields::required_id(row, "Id")?,
            number: fields::text(row, "ContractNumber")?,
            account_id: fields::id(row, "AccountId")?,
            start_date: fields::date(row, "StartDate")?,
            end_date: fields::date(row, "EndDate")?,
            term: fields::decimal(row, "ContractTerm")?,
            currency: opt_text(row, &c.currency)?,
            quote_id: opt_id(row, &c.quote)?,
            coterm_disabled: match &c.coterm_disabled {
                Some(n) => fields::boolean(row, n)?,
                None => false,
            },
        })
    };
    let contract = build().map_err(|e| invalid("Contract", e))?;
    let original = results
        .original?
        .first()
        .map(|r| opportunity(r, mapping))
        .transpose()?;
    let schedules = schedules_by_item(mapping, results.schedules?, results.rates?)?;
    let mut orders = Vec::new();
    for row in &results.orders? {
        orders.push(order(row, mapping, &schedules)?);
    }
    Ok(ContractHistory {
        contract,
        original,
        orders,
    })
}

fn person(r: &Value, prefix: &str, mapping: &Mapping) -> Result<Option<Person>, FieldError> {
    let c = &mapping.contact;
    let Some(id) = fields::id(r, &format!("{prefix}Id"))? else {
        return Ok(None);
    };
    Ok(Some(Person {
        id,
        first_name: fields::text(r, &format!("{prefix}{}", c.first_name))?,
        last_name: fields::text(r, &format!("{prefix}{}", c.last_name))?,
        email: fields::text(r, &format!("{prefix}{}", c.email))?,
        phone: match &c.phone {
            Some(p) => fields::text(r, &format!("{prefix}{p}"))?,
            None => None,
        },
    }))
}

fn opt_text(r: &Value, name: &Option<String>) -> Result<Option<String>, FieldError> {
    match name {
        Some(n) => fields::text(r, n),
        None => Ok(None),
    }
}

fn opt_id(r: &Value, name: &Option<String>) -> Result<Option<SfId>, FieldError> {
    match name {
        Some(n) => fields::id(r, n),
        None => Ok(None),
    }
}

fn opportunity(r: &Value, mapping: &Mapping) -> Result<Opportunity, SnapshotError> {
    let o = &mapping.opportunity;
    let build = || -> Result<Opportunity, FieldError> {
        let mut contact_roles = Vec::new();
        if o.contact_roles {
            for role in fields::children(r, "OpportunityContactRoles")? {
                if let Some(contact) = person(&role, "Contact.", mapping)? {
                    contact_roles.push(ContactRole {
                        contact,
                        is_primary: fields::boolean(&role, "IsPrimary")?,
                        role: fields::text(&role, "Role")?,
                    });
                }
            }
            contact_roles.sort_by_key(|c| !c.is_primary);
        }
        Ok(Opportunity {
            id: fields::required_id(r, "Id")?,
            name: fields::text(r, "Name")?.unwrap_or_default(),
            stage: fields::text(r, "StageName")?.unwrap_or_default(),
            close_date: fields::date(r, "CloseDate")?,
            is_won: fields::boolean(r, "IsWon")?,
            is_closed: fields::boolean(r, "IsClosed")?,
            amount: fields::decimal(r, "Amount")?,
            account_id: fields::id(r, "AccountId")?,
            maxio_subscription_id: opt_text(r, &o.maxio_subscription_id)?,
            maxio_product_handle: opt_text(r, &o.maxio_product_handle)?,
            whmcs_service_id: opt_text(r, &o.whmcs_service_id)?,
            maxio_sync_status: opt_text(r, &o.maxio_sync_status)?,
            maxio_site: opt_text(r, &o.maxio_site)?,
            currency: opt_text(r, &o.currency)?,
            amended_contract: opt_id(r, &o.amended_contract)?,
            renewed_contract: opt_id(r, &o.renewed_contract)?,
            scheduled_cancellation: match &o.scheduled_cancellation {
                Some(n) => fields::datetime(r, n)?,
                None => None,
            },
            cancellation_status: opt_text(r, &o.cancellation_status)?,
            cancellation_detail: opt_text(r, &o.cancellation_detail)?,
            contact_roles,
        })
    };
    build().map_err(|e| invalid("Opportunity", e))
}

fn quote(r: &Value, mapping: &Mapping) -> Result<Option<Quote>, SnapshotError> {
    let Some(rel) = mapping
        .opportunity
        .primary_quote
        .as_deref()
        .and_then(relationship_name)
    else {
        return Ok(None);
    };
    let q = &mapping.quote;
    let p = format!("{rel}.");
    let build = || -> Result<Option<Quote>, FieldError> {
        let Some(id) = fields::id(r, &format!("{p}Id"))? else {
            return Ok(None);
        };
        let at = |name: &Option<String>| name.as_ref().map(|n| format!("{p}{n}"));
        let primary_contact = match q.primary_contact.as_deref().and_then(relationship_name) {
            Some(c) => person(r, &format!("{p}{c}."), mapping)?,
            None => None,
        };
        Ok(Some(Quote {
            id,
            name: fields::text(r, &format!("{p}Name"))?,
            primary_contact,
            start_date: match at(&q.start_date) {
                Some(path) => fields::date(r, &path)?,
                None => None,
            },
            subscription_term: match at(&q.subscription_term) {
                Some(path) => fields::decimal(r, &path)?,
                None => None,
            },
            billing_frequency: match at(&q.billing_frequency) {
                Some(path) => fields::text(r, &path)?,
                None => None,
            },
        }))
    };
    build().map_err(|e| invalid("Quote", e))
}

fn account(r: &Value, mapping: &Mapping) -> Result<Account, SnapshotError> {
    let a = &mapping.account;
    let build = || -> Result<Account, FieldError> {
        Ok(Account {
            id: fields::required_id(r, "Id")?,
            name: fields::text(r, "Name")?.unwrap_or_default(),
            phone: fields::text(r, "Phone")?,
            billing_address: Address {
                street: fields::text(r, "BillingStreet")?,
                city: fields::text(r, "BillingCity")?,
                state: fields::text(r, "BillingState")?,
                state_code: opt_text(r, &a.billing_state_code)?,
                postal_code: fields::text(r, "BillingPostalCode")?,
                country: fields::text(r, "BillingCountry")?,
                country_code: opt_text(r, &a.billing_country_code)?,
            },
            customer_number: opt_text(r, &a.customer_number)?,
            whmcs_client_id: opt_text(r, &a.whmcs_client_id)?,
            maxio_customer_id: opt_text(r, &a.maxio_customer_id)?,
        })
    };
    build().map_err(|e| invalid("Account", e))
}

/// Schedules keyed by the order item (CPQ) or product (standard) they price.
struct Schedules {
    source: ScheduleSource,
    by_owner: HashMap<SfId, Vec<ConsumptionSchedule>>,
}

impl Schedules {
    fn for_item(&self, item: &SfId, product: &SfId) -> Vec<ConsumptionSchedule> {
        let key = match self.source {
            ScheduleSource::Cpq => item,
            ScheduleSource::Standard => product,
        };
        self.by_owner.get(key).cloned().unwrap_or_default()
    }
}

fn rate(r: &Value, source: ScheduleSource) -> Result<(SfId, ConsumptionRate), FieldError> {
    let (schedule, order, lower, upper, price, method) = match source {
        ScheduleSource::Cpq => (
            "SBQQ__OrderItemConsumptionSchedule__c",
            "SBQQ__ProcessingOrder__c",
            "SBQQ__LowerBound__c",
            "SBQQ__UpperBound__c",
            "SBQQ__Price__c",
            "SBQQ__PricingMethod__c",
        ),
        ScheduleSource::Standard => (
            "ConsumptionScheduleId",
            "ProcessingOrder",
            "LowerBound",
            "UpperBound",
            "Price",
            "PricingMethod",
        ),
    };
    let id = fields::required_id(r, "Id")?;
    let required_decimal = |path: &str| {
        fields::decimal(r, path)?.ok_or_else(|| FieldError {
            path: format!("{path} of rate {id}"),
            expected: "a number",
            found: "nothing".to_string(),
        })
    };
    let rate = ConsumptionRate {
        id: id.clone(),
        processing_order: fields::decimal(r, order)?,
        lower_bound: required_decimal(lower)?,
        upper_bound: fields::decimal(r, upper)?,
        price: required_decimal(price)?,
        pricing_method: PricingMethod::parse(&fields::text(r, method)?.unwrap_or_default()),
    };
    Ok((fields::required_id(r, schedule)?, rate))
}

fn schedules_by_item(
    mapping: &Mapping,
    schedule_rows: Vec<Value>,
    rate_rows: Vec<Value>,
) -> Result<Schedules, SnapshotError> {
    let source = mapping.schedules;
    let mut rates: HashMap<SfId, Vec<ConsumptionRate>> = HashMap::new();
    for row in &rate_rows {
        let (schedule, rate) = rate(row, source).map_err(|e| invalid("ConsumptionRate", e))?;
        rates.entry(schedule).or_default().push(rate);
    }
    for list in rates.values_mut() {
        list.sort_by(|a, b| {
            (a.processing_order, a.lower_bound).cmp(&(b.processing_order, b.lower_bound))
        });
    }
    let mut by_owner: HashMap<SfId, Vec<ConsumptionSchedule>> = HashMap::new();
    for row in &schedule_rows {
        let build = || -> Result<(SfId, ConsumptionSchedule), FieldError> {
            let (owner, schedule_id, prefix, fields_) = match source {
                ScheduleSource::Cpq => (
                    fields::required_id(row, "SBQQ__OrderItem__c")?,
                    fields::required_id(row, "Id")?,
                    "",
                    [
                        "SBQQ__Type__c",
                        "SBQQ__RatingMethod__c",
                        "SBQQ__BillingTerm__c",
                        "SBQQ__BillingTermUnit__c",
                        "SBQQ__UnitOfMeasure__c",
                    ],
                ),
                ScheduleSource::Standard => (
                    fields::required_id(row, "ProductId")?,
                    fields::required_id(row, "ConsumptionScheduleId")?,
                    "ConsumptionSchedule.",
                    [
                        "Type",
                        "RatingMethod",
                        "BillingTerm",
                        "BillingTermUnit",
                        "UnitOfMeasure",
                    ],
                ),
            };
            let at = |i: usize| format!("{prefix}{}", fields_[i]);
            Ok((
                owner,
                ConsumptionSchedule {
                    rates: rates.get(&schedule_id).cloned().unwrap_or_default(),
                    id: schedule_id,
                    schedule_type: ScheduleType::parse(
                        &fields::text(row, &at(0))?.unwrap_or_default(),
                    ),
                    rating_method: fields::text(row, &at(1))?,
                    billing_term: fields::decimal(row, &at(2))?,
                    billing_term_unit: fields::text(row, &at(3))?,
                    unit_of_measure: fields::text(row, &at(4))?,
                },
            ))
        };
        let (owner, schedule) = build().map_err(|e| invalid("ConsumptionSchedule", e))?;
        by_owner.entry(owner).or_default().push(schedule);
    }
    Ok(Schedules { source, by_owner })
}

fn order(r: &Value, mapping: &Mapping, schedules: &Schedules) -> Result<Order, SnapshotError> {
    let o = &mapping.order;
    let p = &mapping.product;
    let build = || -> Result<Order, FieldError> {
        let mut items = Vec::new();
        for row in fields::children(r, "OrderItems")? {
            let item_id = fields::required_id(&row, "Id")?;
            let product_id = fields::required_id(&row, "Product2Id")?;
            let product_text = |name: &Option<String>| match name {
                Some(n) => fields::text(&row, &format!("Product2.{n}")),
                None => Ok(None),
            };
            let product = Product {
                name: fields::text(&row, "Product2.Name")?.unwrap_or_default(),
                code: fields::text(&row, "Product2.ProductCode")?,
                maxio_component_handle: product_text(&p.maxio_component_handle)?,
                maxio_product_handle: product_text(&p.maxio_product_handle)?,
                whmcs_product_id: product_text(&p.whmcs_product_id)?,
                billing_cycle: product_text(&p.billing_cycle)?,
                item_class: product_text(&p.item_class)?,
                config_options_json: product_text(&p.config_options_json)?,
                id: product_id.clone(),
            };
            items.push(OrderItem {
                quantity: fields::decimal(&row, "Quantity")?.ok_or_else(|| FieldError {
                    path: format!("Quantity of order product {item_id}"),
                    expected: "a number",
                    found: "nothing".into(),
                })?,
                unit_price: fields::decimal(&row, "UnitPrice")?,
                service_date: fields::date(&row, "ServiceDate")?,
                end_date: fields::date(&row, "EndDate")?,
                whmcs_service_id: opt_text(&row, &mapping.order_item.whmcs_service_id)?,
                revised_item: opt_id(&row, &mapping.order_item.revised_item)?,
                segment_index: match &mapping.order_item.segment_index {
                    Some(n) => fields::decimal(&row, n)?,
                    None => None,
                },
                schedules: schedules.for_item(&item_id, &product_id),
                product,
                id: item_id,
            });
        }
        Ok(Order {
            renews: match &mapping.opportunity.renewed_contract {
                Some(n) => fields::id(r, &format!("Opportunity.{n}"))?,
                None => None,
            },
            id: fields::required_id(r, "Id")?,
            number: fields::text(r, "OrderNumber")?,
            status: fields::text(r, "Status")?.unwrap_or_default(),
            effective_date: fields::date(r, &o.start_date)?,
            currency: opt_text(r, &o.currency)?,
            end_date: fields::date(r, "EndDate")?,
            account_id: fields::id(r, "AccountId")?,
            opportunity_id: fields::id(r, "OpportunityId")?,
            activation_status: opt_text(r, &o.activation_status)?,
            whmcs_order_id: opt_text(r, &o.whmcs_order_id)?,
            items,
        })
    };
    build().map_err(|e| invalid("Order", e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal::Decimal;
    use serde_json::json;
    use std::str::FromStr;

    const OPP: &str = "006A000010khO8J";
    const ACC: &str = "001A000010khO8J";
    const ORD: &str = "801A000010khO8J";
    const ITEM: &str = "802A000010khO8J";
    const PROD: &str = "01tA000010khO8J";
    const SCHED: &str = "a0BA000010khO8J";

    fn id(s: &str) -> SfId {
        SfId::parse(s).unwrap()
    }

    fn results(opps: Vec<Value>, orders: Vec<Value>, rates: Vec<Value>) -> QueryResults {
        QueryResults {
            opportunity: Ok(opps),
            account: Ok(vec![
                json!({"Id": ACC, "Name": "Northwind", "BillingCountryCode": "US",
                                    "WH_Account__c": 1.0}),
            ]),
            orders: Ok(orders),
            schedules: Ok(vec![
                json!({"Id": SCHED, "SBQQ__OrderItem__c": ITEM, "SBQQ__Type__c": "Range"}),
            ]),
            rates: Ok(rates),
        }
    }

    fn opp() -> Value {
        json!({"Id": OPP, "Name": "Deal", "StageName": "Closed Won", "IsWon": true, "AccountId": ACC,
               "SBQQ__PrimaryQuote__r": {"Id": "a0AA000010khO8J", "Name": "Q-1",
                   "SBQQ__PrimaryContact__r": {"Id": "003A000010khO8J", "FirstName": "Ada",
                                               "LastName": "Byron", "Email": "ada@example.com"}},
               "OpportunityContactRoles": null})
    }

    fn order() -> Value {
        json!({"Id": ORD, "Status": "Activated", "AccountId": ACC, "OpportunityId": OPP,
               "OrderItems": {"totalSize": 1, "done": true, "records": [
                   {"Id": ITEM, "Quantity": 1.0, "UnitPrice": 0.05, "Product2Id": PROD,
                    "Product2": {"Name": "API Calls", "ProductCode": "API", "Maxio_Component_Handle__c": "api-calls",
                                 "WH_Product_ID__c": 185.0}}]}})
    }

    fn rate(id: &str, order: Value, lower: Value, upper: Value, price: Value) -> Value {
        json!({"Id": id, "SBQQ__OrderItemConsumptionSchedule__c": SCHED, "SBQQ__ProcessingOrder__c": order,
               "SBQQ__LowerBound__c": lower, "SBQQ__UpperBound__c": upper, "SBQQ__Price__c": price,
               "SBQQ__PricingMethod__c": "PerUnit"})
    }

    #[test]
    fn rates_are_attached_to_their_order_item_in_processing_order() {
        let deal = DealRef::Opportunity(id(OPP));
        let out = assemble(
            &deal,
            &Mapping::default(),
            results(
                vec![opp()],
                vec![order()],
                vec![
                    rate(
                        "a0CA000010khO8J",
                        json!(2.0),
                        json!(1000.0),
                        Value::Null,
                        json!(0.04),
                    ),
                    rate(
                        "a0CA000010khO8K",
                        json!(1.0),
                        json!(1.0),
                        json!(1000.0),
                        json!(0.05),
                    ),
                ],
            ),
        )
        .unwrap();
        let LoadOutcome::Loaded(s) = out else {
            panic!("not loaded")
        };
        assert_eq!(s.account.whmcs_client_id.as_deref(), Some("1"));
        assert_eq!(
            s.quote
                .as_ref()
                .unwrap()
                .primary_contact
                .as_ref()
                .unwrap()
                .email
                .as_deref(),
            Some("ada@example.com")
        );
        let item = &s.orders[0].items[0];
        assert_eq!(item.product.whmcs_product_id.as_deref(), Some("185"));
        assert_eq!(item.unit_price, Some(Decimal::from_str("0.05").unwrap()));
        let sched = &item.schedules[0];
        assert_eq!(sched.schedule_type, ScheduleType::Range);
        let bounds: Vec<_> = sched
            .rates
            .iter()
            .map(|r| (r.lower_bound, r.upper_bound))
            .collect();
        assert_eq!(
            bounds,
            vec![
                (Decimal::from(1), Some(Decimal::from(1000))),
                (Decimal::from(1000), None)
            ]
        );
    }

    #[test]
    fn an_opportunity_without_orders_is_pending_not_an_error() {
        let deal = DealRef::Opportunity(id(OPP));
        let out = assemble(
            &deal,
            &Mapping::default(),
            results(vec![opp()], vec![], vec![]),
        )
        .unwrap();
        assert_eq!(
            out,
            LoadOutcome::OrderPending {
                opportunity_id: id(OPP),
                account_id: id(ACC),
                stage: "Closed Won".into()
            }
        );
    }

    #[test]
    fn a_missing_opportunity_is_reported_before_the_halted_account_query() {
        let deal = DealRef::Opportunity(id(OPP));
        let mut r = results(vec![], vec![], vec![]);
        r.account = Err(SalesforceError::Api {
            status: 400,
            errors: vec![],
            context: Some("account".into()),
            retry_after: None,
        });
        let err = assemble(&deal, &Mapping::default(), r).unwrap_err();
        assert!(
            matches!(
                err,
                SnapshotError::NotFound {
                    sobject: "Opportunity",
                    ..
                }
            ),
            "{err}"
        );
        assert!(!err.is_retryable());
    }

    #[test]
    fn an_order_without_an_opportunity_still_loads() {
        let deal = DealRef::Order(id(ORD));
        let out = assemble(
            &deal,
            &Mapping::default(),
            results(vec![], vec![order()], vec![]),
        )
        .unwrap();
        let LoadOutcome::Loaded(s) = out else {
            panic!("not loaded")
        };
        assert!(s.opportunity.is_none());
        assert!(s.quote.is_none());
        assert_eq!(s.account.id, id(ACC));
    }

    #[test]
    fn a_rate_without_a_price_is_named() {
        let deal = DealRef::Opportunity(id(OPP));
        let mut bad = rate(
            "a0CA000010khO8J",
            json!(1.0),
            json!(1.0),
            Value::Null,
            json!(1.0),
        );
        bad["SBQQ__Price__c"] = Value::Null;
        let err = assemble(
            &deal,
            &Mapping::default(),
            results(vec![opp()], vec![order()], vec![bad]),
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("SBQQ__Price__c of rate a0CA000010khO8J"),
            "{err}"
        );
    }
}
