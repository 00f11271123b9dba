//! Loads a deal snapshot: one Composite call (plus the token call when cold), and queryMore calls
//! only for results too large for one page. Several deals (an Outbound Message's notifications)
//! share that call, up to [`MAX_DEALS_PER_REQUEST`] of a kind. A deal on an amended CPQ Contract (an amendment, or a
//! first sale whose Contract was amended since) takes a second Composite call for the Contract's
//! history; every other deal stays at one.

use std::sync::Arc;

use serde_json::Value;
use tracing::info;

use super::assemble::{ContractResults, QueryResults, assemble, assemble_contract};
use super::batch::results_for;
use super::model::{ContractHistory, DealRef};
use super::query::{
    ACCOUNT, CONTRACT, ContractTarget, DealKind, MAX_DEALS_PER_REQUEST, OPPORTUNITY, ORDERS,
    ORIGINAL, RATES, SCHEDULES, contract_request, snapshot_request,
};
use super::{LoadOutcome, SnapshotError};
use crate::mapping::Mapping;
use crate::salesforce::{QueryResult, SalesforceClient, SalesforceError, SfId};

/// A deal a batch gave no outcome for: every deal gets one, so this is never seen.
fn not_loaded(deal: &DealRef) -> SnapshotError {
    SnapshotError::Invalid {
        what: deal.sobject().to_string(),
        reason: "loading it gave no result".into(),
    }
}

pub struct SnapshotLoader {
    client: Arc<SalesforceClient>,
    mapping: Arc<Mapping>,
}

impl SnapshotLoader {
    pub fn new(client: Arc<SalesforceClient>, mapping: Arc<Mapping>) -> Self {
        SnapshotLoader { client, mapping }
    }

    pub async fn load(&self, deal: &DealRef) -> Result<LoadOutcome, SnapshotError> {
        let mut loaded = self.load_many(std::slice::from_ref(deal)).await;
        loaded.pop().unwrap_or_else(|| Err(not_loaded(deal)))
    }

    /// Loads several deals at once, in the order given: one Composite call for up to
    /// [`MAX_DEALS_PER_REQUEST`] deals of a kind (Opportunities, Orders), each deal assembled from
    /// its own rows exactly as if it had been loaded alone; the Contract history of an amended
    /// deal is its own second call. A failure of the shared call is each deal's failure.
    pub async fn load_many(&self, deals: &[DealRef]) -> Vec<Result<LoadOutcome, SnapshotError>> {
        let mut out: Vec<Option<Result<LoadOutcome, SnapshotError>>> =
            deals.iter().map(|_| None).collect();
        for kind in [DealKind::Opportunity, DealKind::Order] {
            let of_kind: Vec<usize> = (0..deals.len())
                .filter(|&i| DealKind::of(&deals[i]) == kind)
                .collect();
            for chunk in of_kind.chunks(MAX_DEALS_PER_REQUEST) {
                let ids: Vec<SfId> = chunk.iter().map(|&i| deals[i].id().clone()).collect();
                let all = self.query(kind, &ids).await;
                for &i in chunk {
                    let deal = &deals[i];
                    let outcome = match &all {
                        Ok(all) => {
                            let mine = results_for(deal, all, &self.mapping);
                            self.complete(deal, mine).await
                        }
                        Err(e) => Err(SnapshotError::Salesforce(e.clone())),
                    };
                    out[i] = Some(outcome);
                }
            }
        }
        out.into_iter()
            .zip(deals)
            .map(|(o, deal)| o.unwrap_or_else(|| Err(not_loaded(deal))))
            .collect()
    }

    /// The snapshot request's results for `ids`, every page of each.
    async fn query(&self, kind: DealKind, ids: &[SfId]) -> Result<QueryResults, SalesforceError> {
        let request = snapshot_request(kind, ids, &self.mapping, &self.client.data_path());
        let mut response = self.client.composite(&request).await?;
        Ok(QueryResults {
            opportunity: self.all_pages(response.take(OPPORTUNITY)).await,
            account: self.all_pages(response.take(ACCOUNT)).await,
            orders: self.all_pages(response.take(ORDERS)).await,
            schedules: self.all_pages(response.take(SCHEDULES)).await,
            rates: self.all_pages(response.take(RATES)).await,
        })
    }

    /// Assembles `deal` from its results and reads its Contract's history when it has one.
    async fn complete(
        &self,
        deal: &DealRef,
        results: QueryResults,
    ) -> Result<LoadOutcome, SnapshotError> {
        let mut outcome = assemble(deal, &self.mapping, results)?;
        if let LoadOutcome::Loaded(snapshot) = &mut outcome
            && let Some(opportunity) = &snapshot.opportunity
        {
            // An amendment's or a renewal's Contract.
            let changed = opportunity
                .amended_contract
                .as_ref()
                .or(opportunity.renewed_contract.as_ref());
            let target = match (changed, &opportunity.maxio_subscription_id) {
                // A renewal already applied is also its own Contract's first sale.
                (Some(renewed), Some(_)) if opportunity.amended_contract.is_none() => {
                    Some(ContractTarget::RenewedOrNext {
                        renews: renewed.clone(),
                        opportunity: opportunity.id.clone(),
                    })
                }
                (Some(contract), _) => Some(ContractTarget::Contract(contract.clone())),
                (None, Some(_)) => Some(ContractTarget::AmendedFrom(opportunity.id.clone())),
                // A first sale not billed yet: no amendment can have been applied to it.
                (None, None) => None,
            };
            if let Some(target) = target {
                snapshot.contract = self.contract(&target).await?;
            }
        }
        match &outcome {
            LoadOutcome::Loaded(s) => info!(
                deal = %deal.id(),
                orders = s.orders.len(),
                items = s.order_items().count(),
                "deal snapshot loaded"
            ),
            LoadOutcome::OrderPending { opportunity_id, .. } => {
                info!(deal = %opportunity_id, "opportunity has no order yet")
            }
        }
        Ok(outcome)
    }

    /// The Contract's history: the second Composite call.
    async fn contract(
        &self,
        target: &ContractTarget,
    ) -> Result<Option<ContractHistory>, SnapshotError> {
        let Some(request) = contract_request(target, &self.mapping, &self.client.data_path())
        else {
            return Ok(None);
        };
        let mut response = self.client.composite(&request).await?;
        let contract = match (target, self.all_pages(response.take(CONTRACT)).await) {
            (ContractTarget::AmendedFrom(_) | ContractTarget::RenewedOrNext { .. }, Err(e)) => {
                return Err(e.into());
            }
            (_, rows) => rows,
        };
        let id = match (target, &contract) {
            (ContractTarget::Contract(id), _) => id.clone(),
            (ContractTarget::AmendedFrom(_) | ContractTarget::RenewedOrNext { .. }, Ok(rows)) => {
                match rows.first().map(|r| super::fields::required_id(r, "Id")) {
                    Some(Ok(id)) => id,
                    Some(Err(e)) => {
                        return Err(SnapshotError::Invalid {
                            what: "Contract".into(),
                            reason: e.to_string(),
                        });
                    }
                    // Not amended: the queries that refer to the Contract did not run.
                    None => return Ok(None),
                }
            }
            (_, Err(_)) => return Ok(None),
        };
        let results = ContractResults {
            contract,
            original: self.all_pages(response.take(ORIGINAL)).await,
            orders: self.all_pages(response.take(ORDERS)).await,
            schedules: self.all_pages(response.take(SCHEDULES)).await,
            rates: self.all_pages(response.take(RATES)).await,
        };
        let history = assemble_contract(&id, &self.mapping, results)?;
        info!(contract = %id, orders = history.orders.len(), "contract history loaded");
        Ok(Some(history))
    }

    /// The records of a query subresponse, following `nextRecordsUrl` at the top level and inside
    /// child subquery results.
    async fn all_pages(
        &self,
        subresponse: Result<Value, SalesforceError>,
    ) -> Result<Vec<Value>, SalesforceError> {
        let mut page: QueryResult = serde_json::from_value(subresponse?)
            .map_err(|e| SalesforceError::Decode(format!("query result: {e}")))?;
        let mut records = std::mem::take(&mut page.records);
        while let (false, Some(next)) = (page.done, page.next_records_url.take()) {
            page = self.client.query_more(&next).await?;
            records.append(&mut page.records);
        }
        for record in &mut records {
            self.complete_children(record).await?;
        }
        Ok(records)
    }

    async fn complete_children(&self, record: &mut Value) -> Result<(), SalesforceError> {
        let Some(map) = record.as_object_mut() else {
            return Ok(());
        };
        for child in map.values_mut() {
            let Some(result) = child.as_object_mut() else {
                continue;
            };
            let mut next = match (result.get("done"), result.get("nextRecordsUrl")) {
                (Some(Value::Bool(false)), Some(Value::String(url))) => Some(url.clone()),
                _ => None,
            };
            while let Some(url) = next.take() {
                let mut page = self.client.query_more(&url).await?;
                if let Some(Value::Array(rows)) = result.get_mut("records") {
                    rows.append(&mut page.records);
                } else {
                    result.insert("records".into(), Value::Array(page.records));
                }
                if !page.done {
                    next = page.next_records_url.clone();
                }
            }
            if result.get("done") == Some(&Value::Bool(false)) {
                result.insert("done".into(), Value::Bool(true));
                result.remove("nextRecordsUrl");
            }
        }
        Ok(())
    }
}
