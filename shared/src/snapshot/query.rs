//! The one Composite request that loads a deal: five queries, the later ones referring to earlier
//! results, built from the mapping configuration. Pure: no I/O, so the queries are unit-tested.

use crate::mapping::{Mapping, ScheduleSource, relationship_name};
use crate::salesforce::soql::{id_list, id_literal};
use crate::salesforce::{CompositeRequest, SfId};

use super::model::DealRef;

pub const OPPORTUNITY: &str = "opportunity";
pub const ACCOUNT: &str = "account";
pub const ORDERS: &str = "orders";
pub const SCHEDULES: &str = "schedules";
pub const RATES: &str = "rates";
pub const CONTRACT: &str = "contract";
pub const ORIGINAL: &str = "original";

/// The most deals one snapshot request loads: a batch of Outbound Message notifications is read
/// in one Composite call per this many deals of a kind. Each query names every Id of the batch
/// (21 characters each), so this keeps the longest query (the consumption rates') well inside
/// Salesforce's 16,384-character request URI.
pub const MAX_DEALS_PER_REQUEST: usize = 50;

/// Which deals one snapshot request loads: Opportunities or Orders, never both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DealKind {
    Opportunity,
    Order,
}

impl DealKind {
    pub fn of(deal: &DealRef) -> DealKind {
        match deal {
            DealRef::Opportunity(_) => DealKind::Opportunity,
            DealRef::Order(_) => DealKind::Order,
        }
    }
}

/// `field = 'id'` for one Id, `field IN ('id','id')` for several.
fn id_condition(field: &str, ids: &[SfId]) -> String {
    match ids {
        [one] => format!("{field} = {}", id_literal(one)),
        _ => format!("{field} IN {}", id_list(ids)),
    }
}

/// Builds the snapshot request for the deals `ids` (at most [`MAX_DEALS_PER_REQUEST`], all of
/// `kind`): five queries whatever their number, each row naming the deal it belongs to
/// ([`super::batch`] splits them). Subrequests run in order.
pub fn snapshot_request(
    kind: DealKind,
    ids: &[SfId],
    mapping: &Mapping,
    data_path: &str,
) -> CompositeRequest {
    let mut req = CompositeRequest::new(false);
    match kind {
        DealKind::Opportunity => {
            let on = |field: &str| id_condition(field, ids);
            req.query(
                data_path,
                OPPORTUNITY,
                &opportunity_query(mapping, &on("Id")),
            )
            .query(
                data_path,
                ACCOUNT,
                &account_query(
                    mapping,
                    &format!(
                        "Id IN (SELECT AccountId FROM Opportunity WHERE {})",
                        on("Id")
                    ),
                ),
            )
            .query(
                data_path,
                ORDERS,
                &orders_query(
                    mapping,
                    &format!(
                        "{} ORDER BY EffectiveDate ASC NULLS LAST, OrderNumber ASC",
                        on("OpportunityId")
                    ),
                ),
            );
            add_schedule_queries(
                &mut req,
                mapping,
                data_path,
                &format!("{{item}}{}", on("Order.OpportunityId")),
            );
        }
        DealKind::Order => {
            let on = id_condition("Id", ids);
            req.query(data_path, ORDERS, &orders_query(mapping, &on))
                .query(
                    data_path,
                    OPPORTUNITY,
                    &opportunity_query(
                        mapping,
                        &format!("Id IN (SELECT OpportunityId FROM Order WHERE {on})"),
                    ),
                )
                .query(
                    data_path,
                    ACCOUNT,
                    &account_query(
                        mapping,
                        &format!("Id IN (SELECT AccountId FROM Order WHERE {on})"),
                    ),
                );
            add_schedule_queries(
                &mut req,
                mapping,
                data_path,
                &format!("{{item}}{}", id_condition("OrderId", ids)),
            );
        }
    }
    req
}

/// Which Contract the second Composite request loads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContractTarget {
    /// The Contract an amendment amends.
    Contract(crate::salesforce::SfId),
    /// An applied renewal (`renews`) re-run: the renewal's own Contract once CPQ has made it
    /// (its quote's Opportunity is this one: amendments may have changed it since), else the
    /// renewed Contract. The later-starting of the two.
    RenewedOrNext {
        renews: crate::salesforce::SfId,
        opportunity: crate::salesforce::SfId,
    },
    /// The Contract made from this first sale (the one whose quote is the first sale's): a re-run
    /// of a billed first sale must bill the Contract as amended since, never revert it, and must
    /// not bill at all once the Contract was renewed.
    AmendedFrom(crate::salesforce::SfId),
}

/// The second Composite request, for a deal on a CPQ Contract: the Contract, its original deal
/// (the Opportunity of the Contract's quote) and every Order on it (the first sale's, made from
/// the Contract's quote, and every amendment's), with their schedules; five queries, the most a
/// Composite request may hold. `None` when the mapping cannot trace a Contract to its first sale.
pub fn contract_request(
    target: &ContractTarget,
    mapping: &Mapping,
    data_path: &str,
) -> Option<CompositeRequest> {
    let quote_field = mapping.contract.quote.as_deref()?;
    let order_quote = mapping.order.quote.as_deref()?;
    let quote_opportunity = mapping.quote.opportunity.as_deref()?;
    let amended = mapping.opportunity.amended_contract.as_deref()?;
    let which = match target {
        ContractTarget::Contract(id) => format!("Id = {}", id_literal(id)),
        ContractTarget::AmendedFrom(opportunity) => {
            let quote = relationship_name(quote_field)?;
            format!("{quote}.{quote_opportunity} = {}", id_literal(opportunity))
        }
        ContractTarget::RenewedOrNext {
            renews,
            opportunity,
        } => {
            let quote = relationship_name(quote_field)?;
            format!(
                "(Id = {} OR {quote}.{quote_opportunity} = {})",
                id_literal(renews),
                id_literal(opportunity)
            )
        }
    };
    let order = match target {
        ContractTarget::RenewedOrNext { .. } => "DESC",
        _ => "ASC",
    };
    let renewed = mapping.opportunity.renewed_contract.as_deref();
    let lit = format!("'@{{{CONTRACT}.records[0].Id}}'");
    let quote_ref = format!("'@{{{CONTRACT}.records[0].{quote_field}}}'");
    let mut fields = vec![
        "Id".to_string(),
        "ContractNumber".into(),
        "AccountId".into(),
        "StartDate".into(),
        "EndDate".into(),
        "ContractTerm".into(),
        quote_field.to_string(),
    ];
    push_opt(&mut fields, "", &mapping.contract.currency);
    push_opt(&mut fields, "", &mapping.contract.coterm_disabled);
    let renewals = |prefix: &str| {
        renewed.map_or_else(String::new, |r| {
            format!(" OR {prefix}Opportunity.{r} = {lit}")
        })
    };
    let on_contract = format!(
        "({order_quote} = {quote_ref} OR Opportunity.{amended} = {lit}{})",
        renewals("")
    );
    let mut req = CompositeRequest::new(false);
    req.query(
        data_path,
        CONTRACT,
        &format!(
            "SELECT {} FROM Contract WHERE {which} ORDER BY StartDate {order} LIMIT 1",
            fields.join(", ")
        ),
    )
    .query(
        data_path,
        ORIGINAL,
        &opportunity_query(
            mapping,
            &format!(
                "Id IN (SELECT {quote_opportunity} FROM SBQQ__Quote__c WHERE Id = {quote_ref})"
            ),
        ),
    )
    .query(
        data_path,
        ORDERS,
        &orders_query(
            mapping,
            &format!("{on_contract} ORDER BY EffectiveDate ASC NULLS LAST, OrderNumber ASC"),
        ),
    );
    add_schedule_queries(
        &mut req,
        mapping,
        data_path,
        &format!(
            "({{item}}Order.{order_quote} = {quote_ref} OR {{item}}Order.Opportunity.{amended} = {lit}{})",
            renewals("{item}Order.")
        ),
    );
    Some(req)
}

fn push_opt(fields: &mut Vec<String>, prefix: &str, name: &Option<String>) {
    if let Some(n) = name {
        fields.push(format!("{prefix}{n}"));
    }
}

fn contact_fields(mapping: &Mapping, prefix: &str) -> Vec<String> {
    let c = &mapping.contact;
    let mut f = vec![
        format!("{prefix}Id"),
        format!("{prefix}{}", c.first_name),
        format!("{prefix}{}", c.last_name),
        format!("{prefix}{}", c.email),
    ];
    push_opt(&mut f, prefix, &c.phone);
    f
}

pub fn opportunity_query(mapping: &Mapping, condition: &str) -> String {
    let o = &mapping.opportunity;
    let mut fields: Vec<String> = [
        "Id",
        "Name",
        "StageName",
        "CloseDate",
        "IsWon",
        "IsClosed",
        "Amount",
        "AccountId",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    push_opt(&mut fields, "", &o.maxio_subscription_id);
    push_opt(&mut fields, "", &o.maxio_product_handle);
    push_opt(&mut fields, "", &o.whmcs_service_id);
    push_opt(&mut fields, "", &o.maxio_sync_status);
    push_opt(&mut fields, "", &o.maxio_site);
    push_opt(&mut fields, "", &o.currency);
    push_opt(&mut fields, "", &o.amended_contract);
    push_opt(&mut fields, "", &o.renewed_contract);
    push_opt(&mut fields, "", &o.scheduled_cancellation);
    push_opt(&mut fields, "", &o.cancellation_status);
    push_opt(&mut fields, "", &o.cancellation_detail);
    if let Some(quote) = o.primary_quote.as_deref().and_then(relationship_name) {
        let q = &mapping.quote;
        let prefix = format!("{quote}.");
        fields.push(format!("{prefix}Id"));
        fields.push(format!("{prefix}Name"));
        push_opt(&mut fields, &prefix, &q.start_date);
        push_opt(&mut fields, &prefix, &q.subscription_term);
        push_opt(&mut fields, &prefix, &q.billing_frequency);
        if let Some(contact) = q.primary_contact.as_deref().and_then(relationship_name) {
            fields.extend(contact_fields(mapping, &format!("{prefix}{contact}.")));
        }
    }
    if o.contact_roles {
        let mut role_fields = vec!["Id".to_string(), "IsPrimary".into(), "Role".into()];
        role_fields.extend(contact_fields(mapping, "Contact."));
        fields.push(format!(
            "(SELECT {} FROM OpportunityContactRoles ORDER BY IsPrimary DESC, CreatedDate ASC)",
            role_fields.join(", ")
        ));
    }
    format!(
        "SELECT {} FROM Opportunity WHERE {condition}",
        fields.join(", ")
    )
}

pub fn account_query(mapping: &Mapping, condition: &str) -> String {
    let a = &mapping.account;
    let mut fields: Vec<String> = [
        "Id",
        "Name",
        "Phone",
        "BillingStreet",
        "BillingCity",
        "BillingState",
        "BillingPostalCode",
        "BillingCountry",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    push_opt(&mut fields, "", &a.billing_state_code);
    push_opt(&mut fields, "", &a.billing_country_code);
    push_opt(&mut fields, "", &a.customer_number);
    push_opt(&mut fields, "", &a.whmcs_client_id);
    push_opt(&mut fields, "", &a.maxio_customer_id);
    format!(
        "SELECT {} FROM Account WHERE {condition}",
        fields.join(", ")
    )
}

pub fn orders_query(mapping: &Mapping, condition: &str) -> String {
    let o = &mapping.order;
    let mut fields: Vec<String> = [
        "Id",
        "OrderNumber",
        "Status",
        "EffectiveDate",
        "EndDate",
        "AccountId",
        "OpportunityId",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if o.start_date != "EffectiveDate" {
        fields.push(o.start_date.clone());
    }
    push_opt(&mut fields, "", &o.activation_status);
    push_opt(&mut fields, "", &o.whmcs_order_id);
    push_opt(&mut fields, "", &o.currency);
    push_opt(
        &mut fields,
        "Opportunity.",
        &mapping.opportunity.renewed_contract,
    );
    let p = &mapping.product;
    let mut item_fields: Vec<String> = [
        "Id",
        "OrderItemNumber",
        "Quantity",
        "UnitPrice",
        "ServiceDate",
        "EndDate",
        "Product2Id",
        "Product2.Name",
        "Product2.ProductCode",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    push_opt(&mut item_fields, "", &mapping.order_item.whmcs_service_id);
    push_opt(&mut item_fields, "", &mapping.order_item.revised_item);
    push_opt(&mut item_fields, "", &mapping.order_item.segment_index);
    for name in [
        &p.maxio_component_handle,
        &p.maxio_product_handle,
        &p.whmcs_product_id,
        &p.billing_cycle,
        &p.item_class,
        &p.config_options_json,
    ] {
        push_opt(&mut item_fields, "Product2.", name);
    }
    fields.push(format!(
        "(SELECT {} FROM OrderItems ORDER BY OrderItemNumber ASC, Id ASC)",
        item_fields.join(", ")
    ));
    format!("SELECT {} FROM Order WHERE {condition}", fields.join(", "))
}

/// `item_condition` filters OrderItem rows, each field path starting with `{item}` (e.g.
/// `{item}Order.OpportunityId = '006...'`), which becomes the path from the queried object to the
/// order product.
fn add_schedule_queries(
    req: &mut CompositeRequest,
    mapping: &Mapping,
    data_path: &str,
    item_condition: &str,
) {
    let on_item = |path: &str| item_condition.replace("{item}", path);
    match mapping.schedules {
        ScheduleSource::Cpq => {
            req.query(
                data_path,
                SCHEDULES,
                &format!(
                    "SELECT Id, SBQQ__OrderItem__c, SBQQ__Type__c, SBQQ__RatingMethod__c, \
                     SBQQ__BillingTerm__c, SBQQ__BillingTermUnit__c, SBQQ__UnitOfMeasure__c \
                     FROM SBQQ__OrderItemConsumptionSchedule__c \
                     WHERE {} ORDER BY Id ASC",
                    on_item("SBQQ__OrderItem__r.")
                ),
            )
            .query(
                data_path,
                RATES,
                &format!(
                    "SELECT Id, SBQQ__OrderItemConsumptionSchedule__c, SBQQ__ProcessingOrder__c, \
                     SBQQ__LowerBound__c, SBQQ__UpperBound__c, SBQQ__Price__c, SBQQ__PricingMethod__c \
                     FROM SBQQ__OrderItemConsumptionRate__c \
                     WHERE {} \
                     ORDER BY SBQQ__OrderItemConsumptionSchedule__c ASC, SBQQ__ProcessingOrder__c ASC, \
                     SBQQ__LowerBound__c ASC",
                    on_item("SBQQ__OrderItemConsumptionSchedule__r.SBQQ__OrderItem__r.")
                ),
            );
        }
        ScheduleSource::Standard => {
            // Standard schedules hang off products, not order items. The junction is filtered to the
            // deal's products with a semi-join; the rates query cannot nest a second semi-join, so it
            // reads the rates of every active product schedule (a catalog, not per-deal data).
            req.query(
                data_path,
                SCHEDULES,
                &format!(
                    "SELECT Id, ProductId, ConsumptionScheduleId, ConsumptionSchedule.Type, \
                     ConsumptionSchedule.RatingMethod, ConsumptionSchedule.BillingTerm, \
                     ConsumptionSchedule.BillingTermUnit, ConsumptionSchedule.UnitOfMeasure \
                     FROM ProductConsumptionSchedule \
                     WHERE ConsumptionSchedule.IsActive = true \
                     AND ProductId IN (SELECT Product2Id FROM OrderItem WHERE {}) \
                     ORDER BY Id ASC",
                    on_item("")
                ),
            )
            .query(
                data_path,
                RATES,
                "SELECT Id, ConsumptionScheduleId, ProcessingOrder, LowerBound, UpperBound, Price, \
                 PricingMethod FROM ConsumptionRate \
                 WHERE ConsumptionScheduleId IN (SELECT ConsumptionScheduleId FROM ProductConsumptionSchedule \
                 WHERE ConsumptionSchedule.IsActive = true) \
                 ORDER BY ConsumptionScheduleId ASC, ProcessingOrder ASC, LowerBound ASC",
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::salesforce::SfId;

    fn decoded_queries(req: &CompositeRequest) -> Vec<(String, String)> {
        req.composite_request
            .iter()
            .map(|s| {
                let q = s.url.split_once("?q=").map(|(_, q)| q).unwrap_or_default();
                let decoded: String = url::form_urlencoded::parse(format!("q={q}").as_bytes())
                    .map(|(_, v)| v.into_owned())
                    .collect();
                (s.reference_id.clone(), decoded)
            })
            .collect()
    }

    #[test]
    fn an_opportunity_loads_in_five_queries_with_the_account_by_reference() {
        let id = SfId::parse("006A000010khO8J").unwrap();
        let req = snapshot_request(
            DealKind::Opportunity,
            &[id],
            &Mapping::default(),
            "/services/data/v62.0",
        );
        req.validate().unwrap();
        let q = decoded_queries(&req);
        let refs: Vec<&str> = q.iter().map(|(r, _)| r.as_str()).collect();
        assert_eq!(refs, [OPPORTUNITY, ACCOUNT, ORDERS, SCHEDULES, RATES]);
        assert!(
            q[0].1
                .ends_with("FROM Opportunity WHERE Id = '006A000010khO8JIAU'"),
            "{}",
            q[0].1
        );
        assert!(
            q[0].1
                .contains("SBQQ__PrimaryQuote__r.SBQQ__PrimaryContact__r.Email")
        );
        assert!(
            q[1].1.ends_with(
                "WHERE Id IN (SELECT AccountId FROM Opportunity WHERE Id = '006A000010khO8JIAU')"
            ),
            "{}",
            q[1].1
        );
        assert!(q[1].1.contains("WH_Account__c"));
        assert!(q[2].1.contains("Product2.WH_Product_ID__c"));
        assert!(q[2].1.contains("FROM OrderItems"));
        assert!(
            q[4].1
                .contains("SBQQ__OrderItem__r.Order.OpportunityId = '006A000010khO8JIAU'")
        );
    }

    #[test]
    fn an_order_loads_its_opportunity_by_semi_join() {
        let id = SfId::parse("801A000010khO8J").unwrap();
        let req = snapshot_request(
            DealKind::Order,
            &[id],
            &Mapping::default(),
            "/services/data/v62.0",
        );
        req.validate().unwrap();
        let q = decoded_queries(&req);
        let refs: Vec<&str> = q.iter().map(|(r, _)| r.as_str()).collect();
        assert_eq!(refs, [ORDERS, OPPORTUNITY, ACCOUNT, SCHEDULES, RATES]);
        assert!(q[1].1.ends_with(
            "WHERE Id IN (SELECT OpportunityId FROM Order WHERE Id = '801A000010khO8JIAU')"
        ));
        assert!(q[2].1.ends_with(
            "WHERE Id IN (SELECT AccountId FROM Order WHERE Id = '801A000010khO8JIAU')"
        ));
        assert!(
            q[3].1
                .contains("WHERE SBQQ__OrderItem__r.OrderId = '801A000010khO8JIAU'")
        );
    }

    #[test]
    fn the_mapping_decides_field_names_and_schedule_objects() {
        let mapping = Mapping::from_json(
            r#"{"schedules":"standard","product":{"whmcs_product_id":"WHMCS_Product_Id__c"},
                "account":{"billing_state_code":null},"opportunity":{"contact_roles":false}}"#,
        )
        .unwrap();
        let id = SfId::parse("006A000010khO8J").unwrap();
        let q = decoded_queries(&snapshot_request(
            DealKind::Opportunity,
            &[id],
            &mapping,
            "/d",
        ));
        assert!(q[2].1.contains("Product2.WHMCS_Product_Id__c"));
        assert!(!q[2].1.contains("WH_Product_ID__c"));
        assert!(!q[1].1.contains("BillingStateCode"));
        assert!(!q[0].1.contains("OpportunityContactRoles"));
        assert!(q[3].1.contains("FROM ProductConsumptionSchedule"));
        assert!(q[4].1.contains("FROM ConsumptionRate"));
    }

    #[test]
    fn a_contract_loads_in_five_queries_from_its_quote_and_a_first_sale_finds_its_amended_contract()
    {
        let contract = SfId::parse("800A000010khO8J").unwrap();
        let req = contract_request(
            &ContractTarget::Contract(contract),
            &Mapping::default(),
            "/services/data/v62.0",
        )
        .unwrap();
        req.validate().unwrap();
        let q = decoded_queries(&req);
        let refs: Vec<&str> = q.iter().map(|(r, _)| r.as_str()).collect();
        assert_eq!(refs, [CONTRACT, ORIGINAL, ORDERS, SCHEDULES, RATES]);
        assert!(
            q[0].1
                .contains("FROM Contract WHERE Id = '800A000010khO8JIAU'"),
            "{}",
            q[0].1
        );
        assert!(q[0].1.contains("SBQQ__DisableAmendmentCoTerm__c"));
        assert!(
            q[1].1.ends_with(
                "WHERE Id IN (SELECT SBQQ__Opportunity2__c FROM SBQQ__Quote__c WHERE Id = '@{contract.records[0].SBQQ__Quote__c}')"
            ),
            "{}",
            q[1].1
        );
        assert!(
            q[2].1.contains(
                "WHERE (SBQQ__Quote__c = '@{contract.records[0].SBQQ__Quote__c}' OR Opportunity.SBQQ__AmendedContract__c = '@{contract.records[0].Id}' OR Opportunity.SBQQ__RenewedContract__c = '@{contract.records[0].Id}') ORDER BY EffectiveDate"
            ),
            "{}",
            q[2].1
        );
        assert!(q[2].1.contains("SBQQ__RevisedOrderProduct__c"));
        assert!(
            q[3].1
                .contains("(SBQQ__OrderItem__r.Order.SBQQ__Quote__c = "),
            "{}",
            q[3].1
        );
        assert!(
            q[4].1.contains(
                "SBQQ__OrderItemConsumptionSchedule__r.SBQQ__OrderItem__r.Order.Opportunity.SBQQ__AmendedContract__c"
            ),
            "{}",
            q[4].1
        );

        let first_sale = SfId::parse("006A000010khO8J").unwrap();
        let q = decoded_queries(
            &contract_request(
                &ContractTarget::AmendedFrom(first_sale),
                &Mapping::default(),
                "/d",
            )
            .unwrap(),
        );
        assert!(
            q[0].1.contains(
                "FROM Contract WHERE SBQQ__Quote__r.SBQQ__Opportunity2__c = '006A000010khO8JIAU'"
            ),
            "{}",
            q[0].1
        );

        // An org without CPQ contracts reads no history.
        let mapping = Mapping::from_json(r#"{"contract":{"quote":null}}"#).unwrap();
        assert!(
            contract_request(
                &ContractTarget::AmendedFrom(first_sale_id()),
                &mapping,
                "/d"
            )
            .is_none()
        );
    }

    #[test]
    fn a_batch_names_every_deal_in_each_of_its_five_queries_within_the_uri_limit() {
        let ids: Vec<SfId> = (0..MAX_DEALS_PER_REQUEST)
            .map(|i| SfId::parse(&format!("006A00001{i:06}")).unwrap())
            .collect();
        let list = crate::salesforce::soql::id_list(&ids);
        for (kind, schedules) in [
            (DealKind::Opportunity, r#"{"schedules":"cpq"}"#),
            (DealKind::Order, r#"{"schedules":"standard"}"#),
        ] {
            let mapping = Mapping::from_json(schedules).unwrap();
            let req = snapshot_request(kind, &ids, &mapping, "/services/data/v62.0");
            req.validate().unwrap();
            let q = decoded_queries(&req);
            assert_eq!(q.len(), 5);
            for (reference, soql) in &q {
                if reference != RATES || kind == DealKind::Opportunity {
                    assert!(soql.contains(&format!("IN {list}")), "{reference}: {soql}");
                }
            }
            // Salesforce refuses a request URI over 16,384 bytes; keep every subrequest's well
            // inside it (assumed to apply to a subrequest's url too).
            for sub in &req.composite_request {
                assert!(
                    sub.url.len() < 8_192,
                    "{}: {} bytes",
                    sub.reference_id,
                    sub.url.len()
                );
            }
        }
    }

    fn first_sale_id() -> SfId {
        SfId::parse("006A000010khO8J").unwrap()
    }
}
