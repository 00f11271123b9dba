//! Writing billing states to Salesforce, by Id ([`update_all`]: the Opportunities) or by upsert
//! on an External ID ([`upsert_all`]: the order products, by WHMCS service id): at most 200
//! records a call (one call per 200 changed records), one record per key (the last state wins),
//! and a record Salesforce refuses retried alone once, so one bad record never holds back the
//! others of its batch and a per-record failure caused by its batch (a lock, a duplicate) gets a
//! second chance. What still fails is reported with Salesforce's errors.

use std::collections::BTreeMap;

use async_trait::async_trait;

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
    let keyed = records
        .into_iter()
        .map(|r| Keyed {
            same: r.key.clone(),
            report: r.key.clone(),
            record: r,
        })
        .collect();
    write_all(
        &Upserter {
            sf,
            sobject,
            key_field,
        },
        keyed,
    )
    .await
}

/// Updates `records` (each with the key it is reported by) by Id, with the same rules as
/// [`upsert_all`]: one record per Id (the last wins).
pub async fn update_all(
    sf: &dyn SalesforceWrites,
    records: Vec<(String, RecordUpdate)>,
) -> Result<UpsertReport, SalesforceError> {
    let keyed = records
        .into_iter()
        .map(|(report, r)| Keyed {
            same: r.id.to_string(),
            report,
            record: r,
        })
        .collect();
    write_all(&Updater(sf), keyed).await
}

/// A record to write: what makes two records the same one, and the key it is reported by.
struct Keyed<R> {
    same: String,
    report: String,
    record: R,
}

/// Sends one batch and answers, per record in order, whether it was written and else why not.
#[async_trait]
trait BatchSender<R>: Sync {
    async fn send(&self, batch: &[R]) -> Result<Vec<(bool, Vec<ApiErrorItem>)>, SalesforceError>;
}

struct Upserter<'a> {
    sf: &'a dyn SalesforceUpserts,
    sobject: &'a str,
    key_field: &'a str,
}

#[async_trait]
impl BatchSender<RecordUpsert> for Upserter<'_> {
    async fn send(
        &self,
        batch: &[RecordUpsert],
    ) -> Result<Vec<(bool, Vec<ApiErrorItem>)>, SalesforceError> {
        let results = self
            .sf
            .upsert_records(self.sobject, self.key_field, batch, false)
            .await?;
        Ok(results.into_iter().map(|r| (r.success, r.errors)).collect())
    }
}

struct Updater<'a>(&'a dyn SalesforceWrites);

#[async_trait]
impl BatchSender<RecordUpdate> for Updater<'_> {
    async fn send(
        &self,
        batch: &[RecordUpdate],
    ) -> Result<Vec<(bool, Vec<ApiErrorItem>)>, SalesforceError> {
        let results = self.0.update_records(batch, false).await?;
        Ok(results.into_iter().map(|r| (r.success, r.errors)).collect())
    }
}

/// The one way both write: one record per `same` key (the last wins), [`BATCH`] a call, a refused
/// record sent again alone once, and reported with its errors if refused again.
async fn write_all<R: Clone + Send + Sync>(
    sender: &dyn BatchSender<R>,
    records: Vec<Keyed<R>>,
) -> Result<UpsertReport, SalesforceError> {
    let mut index: BTreeMap<String, usize> = BTreeMap::new();
    let mut unique: Vec<Keyed<R>> = Vec::with_capacity(records.len());
    for record in records {
        match index.get(&record.same) {
            Some(&i) => unique[i] = record,
            None => {
                index.insert(record.same.clone(), unique.len());
                unique.push(record);
            }
        }
    }
    let mut report = UpsertReport::default();
    let mut refused: Vec<&Keyed<R>> = Vec::new();
    for batch in unique.chunks(BATCH) {
        let records: Vec<R> = batch.iter().map(|k| k.record.clone()).collect();
        let answers = sender.send(&records).await?;
        report.calls += 1;
        for (keyed, (written, _)) in batch.iter().zip(answers) {
            if written {
                report.written.push(keyed.report.clone());
            } else {
                refused.push(keyed);
            }
        }
    }
    for keyed in refused {
        let answers = sender.send(std::slice::from_ref(&keyed.record)).await?;
        report.calls += 1;
        match answers.into_iter().next() {
            Some((true, _)) => report.written.push(keyed.report.clone()),
            Some((false, errors)) => report.failed.push((keyed.report.clone(), errors)),
            None => report.failed.push((keyed.report.clone(), Vec::new())),
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
