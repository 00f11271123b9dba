//! Writing outcomes back to Salesforce, where sales and billing people see them: one sObject
//! Collections call per outcome (Opportunity and Account together), retried while a record is
//! locked (`UNABLE_TO_LOCK_ROW`).

use std::sync::Arc;

use serde_json::{Map, Value};
use tracing::info;

use crate::clock::Clock;
use crate::codes::ErrorCode;
use crate::contract::cancel::{CancellationOutcome, CancellationPlan, Source};
use crate::mapping::Mapping;
use crate::ports::SalesforceWrites;
use crate::retry::RetryPolicy;
use crate::retry::{Again, run_with_retries};
use crate::salesforce::{RecordUpdate, SalesforceError, SfId};

/// Long enough for a list of problems, short enough for any long text area.
pub const MAX_ERROR_CHARS: usize = 4000;

/// How a deal's Maxio AB sync ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MaxioOutcome {
    Synced {
        customer_id: i64,
        subscription_id: i64,
        /// The AB site (written when known).
        site: Option<String>,
    },
    Failed {
        customer_id: Option<i64>,
        subscription_id: Option<i64>,
        site: Option<String>,
        error: String,
    },
}

/// How linking a deal's AB subscription to its Maxio Core contract stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CoreLinkOutcome {
    Linked {
        contract_id: i64,
    },
    /// Still waiting for Core (or given up waiting), with the reason.
    Pending {
        reason: String,
    },
    Failed {
        error: String,
    },
}

/// Where an Order's WHMCS provisioning stands (seeds 001 and 003).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WhmcsOutcome {
    /// Work has started: `Activation_Status__c = Activating`, the last error cleared.
    Activating,
    /// WHMCS accepted the order.
    Provisioned {
        whmcs_order_id: String,
        /// Each OrderItem's WHMCS service, in order.
        services: Vec<(SfId, String)>,
        /// The Opportunity and the service id it shows (its main service).
        opportunity: Option<(SfId, String)>,
    },
    /// `CODE: message`, with the time it happened.
    Failed { error: String },
}

pub struct WriteBack {
    client: Arc<dyn SalesforceWrites>,
    mapping: Arc<Mapping>,
    clock: Arc<dyn Clock>,
    retry: RetryPolicy,
}

fn put(fields: &mut Map<String, Value>, name: &Option<String>, value: Value) {
    if let Some(n) = name {
        fields.insert(n.clone(), value);
    }
}

/// Counts a failure written to a Salesforce record, by its stable error code (the failure's, or
/// the one its `CODE: message` text starts with); one without a code counts in the roll-ups only.
fn count_reported(code: Option<ErrorCode>) {
    use crate::metrics::{CODE, FAILURES_REPORTED, count, count_by};
    match code {
        Some(code) => count_by(FAILURES_REPORTED, CODE, code.as_str(), 1),
        None => count(FAILURES_REPORTED, 1),
    }
}

/// Cuts `text` to at most `max` characters on a character boundary, marking the cut.
pub fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

impl WriteBack {
    pub fn new(
        client: Arc<dyn SalesforceWrites>,
        mapping: Arc<Mapping>,
        clock: Arc<dyn Clock>,
        retry: RetryPolicy,
    ) -> Self {
        WriteBack {
            client,
            mapping,
            clock,
            retry,
        }
    }

    /// The records a Maxio outcome writes. Pure, so it is tested without Salesforce.
    pub fn maxio_records(
        &self,
        opportunity: &SfId,
        account: &SfId,
        outcome: &MaxioOutcome,
    ) -> Vec<RecordUpdate> {
        let o = &self.mapping.opportunity;
        let mut opp = Map::new();
        let now = self
            .clock
            .now()
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        put(&mut opp, &o.maxio_sync_datetime, Value::String(now));
        let (customer, subscription) = match outcome {
            MaxioOutcome::Synced {
                customer_id,
                subscription_id,
                ..
            } => {
                put(
                    &mut opp,
                    &o.maxio_sync_status,
                    Value::String(self.mapping.values.maxio_synced.clone()),
                );
                put(&mut opp, &o.maxio_sync_error, Value::Null);
                (Some(*customer_id), Some(*subscription_id))
            }
            MaxioOutcome::Failed {
                customer_id,
                subscription_id,
                error,
                ..
            } => {
                put(
                    &mut opp,
                    &o.maxio_sync_status,
                    Value::String(self.mapping.values.maxio_failed.clone()),
                );
                put(
                    &mut opp,
                    &o.maxio_sync_error,
                    Value::String(truncate(error, MAX_ERROR_CHARS)),
                );
                (*customer_id, *subscription_id)
            }
        };
        if let Some(c) = customer {
            put(&mut opp, &o.maxio_customer_id, Value::String(c.to_string()));
        }
        let (MaxioOutcome::Synced { site, .. } | MaxioOutcome::Failed { site, .. }) = outcome;
        if let Some(site) = site {
            put(&mut opp, &o.maxio_site, Value::String(site.clone()));
        }
        if let Some(s) = subscription {
            put(
                &mut opp,
                &o.maxio_subscription_id,
                Value::String(s.to_string()),
            );
        }
        let mut records = vec![RecordUpdate {
            sobject: "Opportunity".into(),
            id: opportunity.clone(),
            fields: opp,
        }];
        if let (Some(c), Some(field)) = (customer, &self.mapping.account.maxio_customer_id) {
            let mut acct = Map::new();
            acct.insert(field.clone(), Value::String(c.to_string()));
            records.push(RecordUpdate {
                sobject: "Account".into(),
                id: account.clone(),
                fields: acct,
            });
        }
        records
    }

    /// The Opportunity fields a Core link outcome sets.
    pub fn core_link_fields(&self, outcome: &CoreLinkOutcome) -> Map<String, Value> {
        let o = &self.mapping.opportunity;
        let v = &self.mapping.values;
        let mut fields = Map::new();
        let (status, contract, error) = match outcome {
            CoreLinkOutcome::Linked { contract_id } => (
                &v.core_linked,
                Some(Value::String(contract_id.to_string())),
                Value::Null,
            ),
            CoreLinkOutcome::Pending { reason } => (
                &v.core_pending,
                None,
                Value::String(truncate(reason, MAX_ERROR_CHARS)),
            ),
            CoreLinkOutcome::Failed { error } => (
                &v.core_failed,
                None,
                Value::String(truncate(error, MAX_ERROR_CHARS)),
            ),
        };
        put(
            &mut fields,
            &o.maxio_core_link_status,
            Value::String(status.clone()),
        );
        put(&mut fields, &o.maxio_core_link_error, error);
        if let Some(contract) = contract {
            put(&mut fields, &o.maxio_core_contract_id, contract);
        }
        fields
    }

    /// The records a Core link outcome writes, together with the deal's Maxio AB outcome when
    /// that has not been written yet (one call either way).
    pub fn core_link_records(
        &self,
        opportunity: &SfId,
        account: &SfId,
        link: &CoreLinkOutcome,
        maxio: Option<&MaxioOutcome>,
    ) -> Vec<RecordUpdate> {
        let fields = self.core_link_fields(link);
        match maxio {
            Some(outcome) => {
                let mut records = self.maxio_records(opportunity, account, outcome);
                if let Some(opp) = records.iter_mut().find(|r| r.sobject == "Opportunity") {
                    opp.fields.extend(fields);
                }
                records
            }
            None => vec![RecordUpdate {
                sobject: "Opportunity".into(),
                id: opportunity.clone(),
                fields,
            }],
        }
    }

    pub async fn core_link(
        &self,
        opportunity: &SfId,
        account: &SfId,
        link: &CoreLinkOutcome,
        maxio: Option<&MaxioOutcome>,
    ) -> Result<(), SalesforceError> {
        let records = self.core_link_records(opportunity, account, link, maxio);
        self.update(&records).await?;
        if let CoreLinkOutcome::Failed { error } = link {
            count_reported(ErrorCode::of_text(error));
        }
        info!(opportunity = %opportunity, ?link, with_maxio_outcome = maxio.is_some(), "Maxio Core link written to Salesforce");
        Ok(())
    }

    /// The records a WHMCS outcome writes. Pure.
    pub fn whmcs_records(&self, order: &SfId, outcome: &WhmcsOutcome) -> Vec<RecordUpdate> {
        let f = &self.mapping.order;
        let v = &self.mapping.values;
        let mut fields = Map::new();
        let mut records = Vec::new();
        let clear_error = |fields: &mut Map<String, Value>| {
            put(fields, &f.activation_error, Value::Null);
            put(fields, &f.activation_error_datetime, Value::Null);
        };
        match outcome {
            WhmcsOutcome::Activating => {
                put(
                    &mut fields,
                    &f.activation_status,
                    Value::String(v.activation_activating.clone()),
                );
                clear_error(&mut fields);
            }
            WhmcsOutcome::Provisioned {
                whmcs_order_id,
                services,
                opportunity,
            } => {
                put(
                    &mut fields,
                    &f.activation_status,
                    Value::String(v.activation_provisioned.clone()),
                );
                put(
                    &mut fields,
                    &f.status,
                    Value::String(v.order_activated.clone()),
                );
                if !whmcs_order_id.is_empty() {
                    put(
                        &mut fields,
                        &f.whmcs_order_id,
                        Value::String(whmcs_order_id.clone()),
                    );
                }
                clear_error(&mut fields);
                if let Some(field) = &self.mapping.order_item.whmcs_service_id {
                    for (item, service) in services {
                        let mut item_fields = Map::new();
                        item_fields.insert(field.clone(), Value::String(service.clone()));
                        records.push(RecordUpdate {
                            sobject: "OrderItem".into(),
                            id: item.clone(),
                            fields: item_fields,
                        });
                    }
                }
                if let Some((opportunity, service)) = opportunity {
                    let o = &self.mapping.opportunity;
                    let mut opp = Map::new();
                    put(
                        &mut opp,
                        &o.stage,
                        Value::String(v.opportunity_active_stage.clone()),
                    );
                    put(
                        &mut opp,
                        &o.whmcs_service_id,
                        Value::String(service.clone()),
                    );
                    if !opp.is_empty() {
                        records.push(RecordUpdate {
                            sobject: "Opportunity".into(),
                            id: opportunity.clone(),
                            fields: opp,
                        });
                    }
                }
            }
            WhmcsOutcome::Failed { error } => {
                put(
                    &mut fields,
                    &f.activation_status,
                    Value::String(v.activation_failed.clone()),
                );
                put(
                    &mut fields,
                    &f.activation_error,
                    Value::String(truncate(error, 255)),
                );
                put(
                    &mut fields,
                    &f.activation_error_datetime,
                    Value::String(
                        self.clock
                            .now()
                            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                    ),
                );
            }
        }
        records.insert(
            0,
            RecordUpdate {
                sobject: "Order".into(),
                id: order.clone(),
                fields,
            },
        );
        records
    }

    /// Writes a WHMCS outcome in one Collections call (200 records each; an Order with more
    /// products takes more calls).
    pub async fn whmcs(&self, order: &SfId, outcome: &WhmcsOutcome) -> Result<(), SalesforceError> {
        let records = self.whmcs_records(order, outcome);
        for chunk in records.chunks(200) {
            self.update(chunk).await?;
        }
        if let WhmcsOutcome::Failed { error } = outcome {
            count_reported(ErrorCode::of_text(error));
        }
        info!(order = %order, ?outcome, "WHMCS outcome written to Salesforce");
        Ok(())
    }

    /// Writes a failure that concerns the whole deal (it could not be dispatched, or its
    /// re-dispatch gave up) to the record it names: an Opportunity's Maxio status and error, an
    /// Order's activation status and error.
    pub async fn deal_failure(
        &self,
        deal: &crate::snapshot::DealRef,
        error: &str,
    ) -> Result<(), SalesforceError> {
        match deal {
            crate::snapshot::DealRef::Order(order) => {
                self.whmcs(
                    order,
                    &WhmcsOutcome::Failed {
                        error: error.to_string(),
                    },
                )
                .await
            }
            // No customer id: the Account is not written, so the Opportunity stands in for it.
            crate::snapshot::DealRef::Opportunity(opportunity) => {
                self.maxio(
                    opportunity,
                    opportunity,
                    &MaxioOutcome::Failed {
                        customer_id: None,
                        subscription_id: None,
                        site: None,
                        error: error.to_string(),
                    },
                )
                .await
            }
        }
    }

    pub async fn maxio(
        &self,
        opportunity: &SfId,
        account: &SfId,
        outcome: &MaxioOutcome,
    ) -> Result<(), SalesforceError> {
        let records = self.maxio_records(opportunity, account, outcome);
        self.update(&records).await?;
        if let MaxioOutcome::Failed { error, .. } = outcome {
            count_reported(ErrorCode::of_text(error));
        }
        info!(opportunity = %opportunity, ?outcome, "Maxio outcome written to Salesforce");
        Ok(())
    }

    /// Updates `records` in one call, again while any is locked; other record errors are returned.
    /// The records a cancellation's outcome writes: the dispatched Opportunity's cancellation
    /// status, detail and error (for a CPQ cancellation also its scheduled time, so the
    /// reconciler finds it when it is due), and the cancelled stage on the Opportunity that
    /// follows the service once every system shows it. Empty when the Opportunity already says
    /// exactly this (a re-check that found nothing new writes nothing, and leaves
    /// `LastModifiedDate` alone).
    pub fn cancellation_records(
        &self,
        plan: &CancellationPlan,
        outcome: &CancellationOutcome,
    ) -> Vec<RecordUpdate> {
        let unchanged = plan.status_now.as_deref() == Some(outcome.status.as_str())
            && plan.detail_now.as_deref()
                == Some(truncate(&outcome.detail, MAX_ERROR_CHARS).as_str())
            && outcome.error.is_none()
            && outcome.stage.is_none();
        if unchanged {
            return Vec::new();
        }
        let o = &self.mapping.opportunity;
        let mut opp = Map::new();
        put(
            &mut opp,
            &o.cancellation_status,
            Value::String(outcome.status.clone()),
        );
        put(
            &mut opp,
            &o.cancellation_detail,
            Value::String(truncate(&outcome.detail, MAX_ERROR_CHARS)),
        );
        put(
            &mut opp,
            &o.cancellation_error,
            outcome.error.as_ref().map_or(Value::Null, |e| {
                Value::String(truncate(&e.to_string(), MAX_ERROR_CHARS))
            }),
        );
        if let (Source::Amendment, Some(at)) = (plan.source, plan.at()) {
            put(
                &mut opp,
                &o.scheduled_cancellation,
                Value::String(crate::contract::cancel::rfc3339(at)),
            );
        }
        let mut records = vec![RecordUpdate {
            sobject: "Opportunity".into(),
            id: plan.opportunity_id.clone(),
            fields: opp,
        }];
        if let (Some(stage), Some(field)) = (&outcome.stage, &o.stage) {
            let mut fields = Map::new();
            fields.insert(field.clone(), Value::String(stage.clone()));
            match records.iter_mut().find(|r| r.id == plan.stage_opportunity) {
                Some(r) => r.fields.extend(fields),
                None => records.push(RecordUpdate {
                    sobject: "Opportunity".into(),
                    id: plan.stage_opportunity.clone(),
                    fields,
                }),
            }
        }
        records
    }

    pub async fn cancellation(
        &self,
        plan: &CancellationPlan,
        outcome: &CancellationOutcome,
    ) -> Result<(), SalesforceError> {
        let records = self.cancellation_records(plan, outcome);
        if records.is_empty() {
            info!(opportunity = %plan.opportunity_id, status = %outcome.status, "cancellation unchanged; nothing written");
            return Ok(());
        }
        self.update(&records).await?;
        if let Some(failure) = &outcome.error {
            count_reported(Some(failure.code));
        }
        info!(opportunity = %plan.opportunity_id, status = %outcome.status, done = outcome.done, "cancellation written to Salesforce");
        Ok(())
    }

    pub async fn update(&self, records: &[RecordUpdate]) -> Result<(), SalesforceError> {
        run_with_retries(
            &self.retry,
            "Salesforce write-back",
            |_| self.update_once(records),
            |e: &SalesforceError| {
                // A locked record (UNABLE_TO_LOCK_ROW) is retryable like an outage.
                if e.is_retryable() {
                    Again::After(e.retry_after())
                } else {
                    Again::No
                }
            },
        )
        .await
    }

    /// One Collections call: the first record that failed for a reason other than a lock, else
    /// the first locked one.
    async fn update_once(&self, records: &[RecordUpdate]) -> Result<(), SalesforceError> {
        let results = self.client.update_records(records, false).await?;
        let failed: Vec<(usize, &crate::salesforce::SaveResult)> = results
            .iter()
            .enumerate()
            .filter(|(_, r)| !r.success)
            .collect();
        let locked = |r: &crate::salesforce::SaveResult| {
            r.errors
                .iter()
                .any(|e| e.error_code == "UNABLE_TO_LOCK_ROW")
        };
        let worst = failed
            .iter()
            .find(|(_, r)| !locked(r))
            .or_else(|| failed.first());
        let Some(&(index, first)) = worst else {
            return Ok(());
        };
        Err(SalesforceError::Api {
            status: 400,
            errors: first.errors.clone(),
            context: Some(format!("{} {}", records[index].sobject, records[index].id)),
            retry_after: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use async_trait::async_trait;

    use super::*;
    use crate::clock::SystemClock;
    use crate::metrics::{CODE, FAILURES_REPORTED, counted};
    use crate::salesforce::SaveResult;

    /// Salesforce accepting every update.
    #[derive(Default)]
    struct Accepting(Mutex<Vec<RecordUpdate>>);

    #[async_trait]
    impl SalesforceWrites for Accepting {
        async fn update_records(
            &self,
            records: &[RecordUpdate],
            _all_or_none: bool,
        ) -> Result<Vec<SaveResult>, SalesforceError> {
            self.0.lock().unwrap().extend(records.iter().cloned());
            Ok(records
                .iter()
                .map(|r| SaveResult {
                    id: Some(r.id.to_string()),
                    success: true,
                    errors: Vec::new(),
                })
                .collect())
        }
    }

    #[tokio::test]
    async fn failures_written_are_counted_by_their_error_code() {
        let salesforce = Arc::new(Accepting::default());
        let writeback = WriteBack::new(
            salesforce.clone(),
            Arc::new(Mapping::default()),
            Arc::new(SystemClock),
            RetryPolicy::immediate(1),
        );
        let order = SfId::parse("801A000010khO8J").unwrap();
        let opportunity = SfId::parse("006A000010khO8J").unwrap();
        let gave_up = counted(FAILURES_REPORTED, CODE, "WHMCS_GAVE_UP");
        let price = counted(FAILURES_REPORTED, CODE, "MAXIO_INVALID_PRICE");

        let failed = WhmcsOutcome::Failed {
            error: "WHMCS_GAVE_UP: failed 10 times".into(),
        };
        writeback.whmcs(&order, &failed).await.unwrap();
        writeback
            .deal_failure(
                &crate::snapshot::DealRef::Opportunity(opportunity.clone()),
                "MAXIO_INVALID_PRICE: -1 is negative",
            )
            .await
            .unwrap();
        writeback
            .whmcs(&order, &WhmcsOutcome::Activating)
            .await
            .unwrap();

        assert_eq!(salesforce.0.lock().unwrap().len(), 3);
        // Other tests count in the same process meanwhile: at least these.
        assert!(counted(FAILURES_REPORTED, CODE, "WHMCS_GAVE_UP") - gave_up >= 1.0);
        assert!(counted(FAILURES_REPORTED, CODE, "MAXIO_INVALID_PRICE") - price >= 1.0);
    }

    #[test]
    fn long_errors_are_cut_on_a_character_boundary() {
        assert_eq!(truncate("abc", 3), "abc");
        assert_eq!(truncate("abcdé", 4), "abc…");
        assert_eq!(truncate(&"é".repeat(10), 5).chars().count(), 5);
    }
}
