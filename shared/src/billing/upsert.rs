//! Writing billing states to Salesforce, by Id ([`update_all`]: the Opportunities) or by upsert
//! on an External ID ([`upsert_all`]: the order products, by WHMCS service id): at most 200
//! records a call (one call per 200 changed records), one record per key (the last state wins),
//! and a record Salesforce refuses retried alone once, so one bad record never holds back the
//! others of its batch and a per-record failure caused by its batch (a lock, a duplicate) gets a
//! second chance. What still fails is reported with Salesforce's errors.

use std::collections::BTreeMap;

use crate::ports::{SalesforceUpserts, SalesforceWrites};
use crate::salesforce::{ApiErrorItem, RecordUpdate, RecordUpsert, SalesforceError};

/// Salesforce's limit on records in one sObject Collections call.
pub const BATCH: usize = 200;

/// What an upsert run did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UpsertReport {
    /// Calls made to Salesforce.
    pub calls: usize,
    /// Keys written (updated or created).
    pub written: Vec<String>,
    /// Keys Salesforce refused, in its batch and again alone, with its errors.
    pub failed: Vec<(String, Vec<ApiErrorItem>)>,
}

/// Upserts `records` into `sobject` by `key_field`. A call that fails as a whole is an `Err`
/// (nothing after it is sent; what was written before stays written, and the report of it is
/// lost with the error, so a caller that keeps a cursor advances it only on `Ok`).
pub async fn upsert_all(
    sf: &dyn SalesforceUpserts,
    sobject: &str,
    key_field: &str,
    records: Vec<RecordUpsert>,
) -> Result<UpsertReport, SalesforceError> {
    let mut by_key: BTreeMap<String, usize> = BTreeMap::new();
    let mut unique: Vec<RecordUpsert> = Vec::with_capacity(records.len());
    for record in records {
        match by_key.get(&record.key) {
            Some(&i) => unique[i] = record,
            None => {
                by_key.insert(record.key.clone(), unique.len());
                unique.push(record);
            }
        }
    }
    let mut report = UpsertReport::default();
    let mut refused: Vec<RecordUpsert> = Vec::new();
    for batch in unique.chunks(BATCH) {
        let results = sf.upsert_records(sobject, key_field, batch, false).await?;
        report.calls += 1;
        for (record, result) in batch.iter().zip(results) {
            if result.success {
                report.written.push(record.key.clone());
            } else {
                refused.push(record.clone());
            }
        }
    }
    for record in refused {
        let results = sf
            .upsert_records(sobject, key_field, std::slice::from_ref(&record), false)
            .await?;
        report.calls += 1;
        match results.into_iter().next() {
            Some(r) if r.success => report.written.push(record.key),
            Some(r) => report.failed.push((record.key, r.errors)),
            None => report.failed.push((record.key, Vec::new())),
        }
    }
    Ok(report)
}

/// Updates `records` (each with the key it is reported by) through sObject Collections, 200 a
/// call, with the same rules as [`upsert_all`]: one record per Id (the last wins), a refused
/// record sent again alone once, what still fails reported by its key.
pub async fn update_all(
    sf: &dyn SalesforceWrites,
    records: Vec<(String, RecordUpdate)>,
) -> Result<UpsertReport, SalesforceError> {
    let mut by_id: BTreeMap<String, usize> = BTreeMap::new();
    let mut unique: Vec<(String, RecordUpdate)> = Vec::with_capacity(records.len());
    for record in records {
        let id = record.1.id.to_string();
        match by_id.get(&id) {
            Some(&i) => unique[i] = record,
            None => {
                by_id.insert(id, unique.len());
                unique.push(record);
            }
        }
    }
    let mut report = UpsertReport::default();
    let mut refused = Vec::new();
    for batch in unique.chunks(BATCH) {
        let updates: Vec<RecordUpdate> = batch.iter().map(|(_, r)| r.clone()).collect();
        let results = sf.update_records(&updates, false).await?;
        report.calls += 1;
        for ((key, record), result) in batch.iter().zip(results) {
            if result.success {
                report.written.push(key.clone());
            } else {
                refused.push((key.clone(), record.clone()));
            }
        }
    }
    for (key, record) in refused {
        let results = sf
            .update_records(std::slice::from_ref(&record), false)
            .await?;
        report.calls += 1;
        match results.into_iter().next() {
            Some(r) if r.success => report.written.push(key),
            Some(r) => report.failed.push((key, r.errors)),
            None => report.failed.push((key, Vec::new())),
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Mutex;

    use async_trait::async_trait;
    use serde_json::{Map, json};

    use super::*;
    use crate::salesforce::UpsertResult;

    /// Refuses a key a given number of times, then accepts it; records every call's keys.
    #[derive(Default)]
    struct Org {
        refusals: Mutex<HashMap<String, usize>>,
        calls: Mutex<Vec<Vec<String>>>,
    }

    #[async_trait]
    impl SalesforceUpserts for Org {
        async fn upsert_records(
            &self,
            sobject: &str,
            key_field: &str,
            records: &[RecordUpsert],
            all_or_none: bool,
        ) -> Result<Vec<UpsertResult>, SalesforceError> {
            assert_eq!(
                (sobject, key_field, all_or_none),
                ("Opportunity", "Key__c", false)
            );
            assert!(records.len() <= BATCH);
            self.calls.lock().unwrap().push(
                records
                    .iter()
                    .map(|r| format!("{}={}", r.key, r.fields["State__c"].as_str().unwrap()))
                    .collect(),
            );
            let mut refusals = self.refusals.lock().unwrap();
            Ok(records
                .iter()
                .map(|r| match refusals.get_mut(&r.key) {
                    Some(n) if *n > 0 => {
                        *n -= 1;
                        UpsertResult {
                            id: None,
                            success: false,
                            errors: vec![ApiErrorItem {
                                error_code: "UNABLE_TO_LOCK_ROW".into(),
                                message: "unable to obtain exclusive access".into(),
                                fields: vec![],
                            }],
                            created: None,
                        }
                    }
                    _ => UpsertResult {
                        id: Some("006SB0000000001AAA".into()),
                        success: true,
                        errors: vec![],
                        created: Some(false),
                    },
                })
                .collect())
        }
    }

    fn record(key: usize, state: &str) -> RecordUpsert {
        let mut fields = Map::new();
        fields.insert("State__c".into(), json!(state));
        RecordUpsert {
            key: key.to_string(),
            fields,
        }
    }

    #[tokio::test]
    async fn four_hundred_and_fifty_records_take_three_calls() {
        let org = Org::default();
        let records = (0..450).map(|k| record(k, "active")).collect();
        let report = upsert_all(&org, "Opportunity", "Key__c", records)
            .await
            .unwrap();
        assert_eq!(report.calls, 3);
        assert_eq!(report.written.len(), 450);
        let sizes: Vec<usize> = org.calls.lock().unwrap().iter().map(Vec::len).collect();
        assert_eq!(sizes, [200, 200, 50]);
    }

    #[tokio::test]
    async fn a_refused_record_is_retried_alone_and_reported_if_refused_again() {
        let org = Org::default();
        org.refusals.lock().unwrap().insert("3".into(), 1);
        org.refusals.lock().unwrap().insert("7".into(), 2);
        let records = (0..10).map(|k| record(k, "active")).collect();
        let report = upsert_all(&org, "Opportunity", "Key__c", records)
            .await
            .unwrap();
        assert_eq!(report.calls, 3);
        assert_eq!(report.written.len(), 9);
        assert_eq!(report.failed.len(), 1);
        assert_eq!(report.failed[0].0, "7");
        assert_eq!(report.failed[0].1[0].error_code, "UNABLE_TO_LOCK_ROW");
        let calls = org.calls.lock().unwrap().clone();
        assert_eq!(calls[1], ["3=active"]);
        assert_eq!(calls[2], ["7=active"]);
    }

    #[tokio::test]
    async fn one_record_per_key_is_sent_and_the_last_state_wins() {
        let org = Org::default();
        let records = vec![
            record(1, "active"),
            record(2, "active"),
            record(1, "canceled"),
        ];
        let report = upsert_all(&org, "Opportunity", "Key__c", records)
            .await
            .unwrap();
        assert_eq!(report.calls, 1);
        assert_eq!(report.written, ["1", "2"]);
        assert_eq!(org.calls.lock().unwrap()[0], ["1=canceled", "2=active"]);
    }
}
