//! The Salesforce REST client: one cached session per container, refreshed once on
//! `INVALID_SESSION_ID`; queries with pagination; Composite; single-record and sObject Collections
//! updates; `Sforce-Limit-Info` read on every answer.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tracing::{debug, warn};

use super::auth::{AccessToken, SalesforceCredentials, request_token, without_url};
use super::composite::{CompositeRequest, CompositeResponse};
use super::error::ApiErrorItem;
use super::{ApiUsage, SalesforceError, SfId};
use crate::config::SalesforceConfig;
use crate::mapping::is_api_name;
use crate::secrets::{SecretStore, parse_json_secret};

/// Up to 200 records per sObject Collections call.
pub const MAX_COLLECTION_RECORDS: usize = 200;

/// One page of query results.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueryResult {
    #[serde(default)]
    pub total_size: u64,
    pub done: bool,
    #[serde(default)]
    pub next_records_url: Option<String>,
    #[serde(default)]
    pub records: Vec<Value>,
}

/// An update of one record in an sObject Collections call.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordUpdate {
    pub sobject: String,
    pub id: SfId,
    pub fields: serde_json::Map<String, Value>,
}

/// The outcome of one record of an sObject Collections call.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct SaveResult {
    #[serde(default)]
    pub id: Option<String>,
    pub success: bool,
    #[serde(default)]
    pub errors: Vec<ApiErrorItem>,
}

/// One record to upsert by an External ID field: the key's value and the other fields to write.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordUpsert {
    pub key: String,
    pub fields: serde_json::Map<String, Value>,
}

/// The outcome of one record of an upsert by External ID: `created` is false for an update.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct UpsertResult {
    #[serde(default)]
    pub id: Option<String>,
    pub success: bool,
    #[serde(default)]
    pub errors: Vec<ApiErrorItem>,
    #[serde(default)]
    pub created: Option<bool>,
}

struct Answer {
    body: String,
}

/// Talks to one org.
pub struct SalesforceClient {
    http: reqwest::Client,
    config: SalesforceConfig,
    secrets: Arc<dyn SecretStore>,
    session: tokio::sync::Mutex<Option<Arc<AccessToken>>>,
    usage: Mutex<Option<ApiUsage>>,
}

impl SalesforceClient {
    pub fn new(
        config: SalesforceConfig,
        secrets: Arc<dyn SecretStore>,
    ) -> Result<Self, SalesforceError> {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(Duration::from_secs(5))
            .user_agent(concat!("dealbridge/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| SalesforceError::InvalidRequest(e.to_string()))?;
        Ok(SalesforceClient {
            http,
            config,
            secrets,
            session: tokio::sync::Mutex::new(None),
            usage: Mutex::new(None),
        })
    }

    pub fn config(&self) -> &SalesforceConfig {
        &self.config
    }

    /// `/services/data/vNN.N`, the prefix of every REST path.
    pub fn data_path(&self) -> String {
        self.config.api_version.data_path()
    }

    /// The org's API usage from the most recent answer that reported it.
    pub fn api_usage(&self) -> Option<ApiUsage> {
        self.usage.lock().ok().and_then(|u| u.clone())
    }

    /// Runs one query and returns its first page.
    pub async fn query(&self, soql: &str) -> Result<QueryResult, SalesforceError> {
        let path = format!(
            "{}/query?q={}",
            self.data_path(),
            url::form_urlencoded::byte_serialize(soql.as_bytes()).collect::<String>()
        );
        let answer = self.send(Method::GET, &path, None).await?;
        decode(&answer.body, "query result")
    }

    /// Fetches the page behind a `nextRecordsUrl` (top-level or of a child subquery).
    pub async fn query_more(&self, next_records_url: &str) -> Result<QueryResult, SalesforceError> {
        let prefix = "/services/data/";
        if !next_records_url.starts_with(prefix) || next_records_url.contains("..") {
            return Err(SalesforceError::Decode(format!(
                "nextRecordsUrl {next_records_url:?} is not a REST path"
            )));
        }
        let answer = self.send(Method::GET, next_records_url, None).await?;
        decode(&answer.body, "query result")
    }

    /// Runs a query and follows `nextRecordsUrl` to the last page.
    pub async fn query_all(&self, soql: &str) -> Result<Vec<Value>, SalesforceError> {
        let mut page = self.query(soql).await?;
        let mut records = std::mem::take(&mut page.records);
        while let (false, Some(next)) = (page.done, page.next_records_url.take()) {
            page = self.query_more(&next).await?;
            records.append(&mut page.records);
        }
        Ok(records)
    }

    /// Sends a Composite request (one API call) after checking it against Salesforce's limits.
    pub async fn composite(
        &self,
        request: &CompositeRequest,
    ) -> Result<CompositeResponse, SalesforceError> {
        request.validate()?;
        let body = serde_json::to_value(request)
            .map_err(|e| SalesforceError::InvalidRequest(e.to_string()))?;
        let path = format!("{}/composite", self.data_path());
        let answer = self.send(Method::POST, &path, Some(&body)).await?;
        decode(&answer.body, "composite response")
    }

    /// Updates one record (`PATCH /sobjects/{type}/{id}`, 204 on success).
    pub async fn update(
        &self,
        sobject: &str,
        id: &SfId,
        fields: &serde_json::Map<String, Value>,
    ) -> Result<(), SalesforceError> {
        check_sobject(sobject)?;
        let path = format!("{}/sobjects/{sobject}/{id}", self.data_path());
        self.send(Method::PATCH, &path, Some(&Value::Object(fields.clone())))
            .await?;
        Ok(())
    }

    /// Updates up to 200 records in one call (`PATCH /composite/sobjects`). The answer holds one
    /// SaveResult per record, in order; a record's failure is in its result, not an `Err`.
    pub async fn update_records(
        &self,
        records: &[RecordUpdate],
        all_or_none: bool,
    ) -> Result<Vec<SaveResult>, SalesforceError> {
        if records.is_empty() {
            return Ok(Vec::new());
        }
        if records.len() > MAX_COLLECTION_RECORDS {
            return Err(SalesforceError::InvalidRequest(format!(
                "sObject Collections update at most {MAX_COLLECTION_RECORDS} records, got {}",
                records.len()
            )));
        }
        let body = collection_body(records, all_or_none)?;
        let path = format!("{}/composite/sobjects", self.data_path());
        let answer = self.send(Method::PATCH, &path, Some(&body)).await?;
        let results: Vec<SaveResult> = decode(&answer.body, "collection save results")?;
        if results.len() != records.len() {
            return Err(SalesforceError::Decode(format!(
                "{} save results for {} records",
                results.len(),
                records.len()
            )));
        }
        Ok(results)
    }

    /// Upserts up to 200 records of one sObject by its External ID field `key_field`
    /// (`PATCH /composite/sobjects/{sobject}/{key_field}`): a record whose key matches is
    /// updated, any other is created. One UpsertResult per record, in order; a record's failure
    /// is in its result, not an `Err`.
    pub async fn upsert_records(
        &self,
        sobject: &str,
        key_field: &str,
        records: &[RecordUpsert],
        all_or_none: bool,
    ) -> Result<Vec<UpsertResult>, SalesforceError> {
        if records.is_empty() {
            return Ok(Vec::new());
        }
        if records.len() > MAX_COLLECTION_RECORDS {
            return Err(SalesforceError::InvalidRequest(format!(
                "sObject Collections upsert at most {MAX_COLLECTION_RECORDS} records, got {}",
                records.len()
            )));
        }
        let body = upsert_body(sobject, key_field, records, all_or_none)?;
        let path = format!(
            "{}/composite/sobjects/{sobject}/{key_field}",
            self.data_path()
        );
        let answer = self.send(Method::PATCH, &path, Some(&body)).await?;
        let results: Vec<UpsertResult> = decode(&answer.body, "collection upsert results")?;
        if results.len() != records.len() {
            return Err(SalesforceError::Decode(format!(
                "{} upsert results for {} records",
                results.len(),
                records.len()
            )));
        }
        Ok(results)
    }

    /// Sends a request with the session, logging in when there is none and once more when
    /// Salesforce says the session is invalid.
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Answer, SalesforceError> {
        let session = self.session().await?;
        match self.send_with(&session, method.clone(), path, body).await {
            Err(e) if e.is_invalid_session() => {
                warn!(path, "Salesforce session invalid; logging in again");
                let fresh = self.renew_session(&session).await?;
                self.send_with(&fresh, method, path, body).await
            }
            other => other,
        }
    }

    async fn send_with(
        &self,
        session: &AccessToken,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Answer, SalesforceError> {
        let url = session
            .instance_url
            .join(path)
            .map_err(|e| SalesforceError::InvalidRequest(format!("{path}: {e}")))?;
        debug!(%method, path, "salesforce request");
        let mut request = self
            .http
            .request(method, url)
            .bearer_auth(session.token.expose())
            .header("Accept", "application/json");
        if let Some(body) = body {
            request = request.json(body);
        }
        let started = std::time::Instant::now();
        let response = request.send().await;
        crate::metrics::latency("salesforce", started.elapsed());
        let response = response.map_err(|e| SalesforceError::Transport(without_url(&e)))?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let usage = headers
            .get("Sforce-Limit-Info")
            .and_then(|v| v.to_str().ok())
            .and_then(ApiUsage::parse);
        if let Some(u) = &usage
            && u.max > 0
        {
            crate::metrics::gauge(
                crate::metrics::SALESFORCE_API_USAGE_PERCENT,
                u.used as f64 * 100.0 / u.max as f64,
            );
        }
        if let (Some(usage), Ok(mut slot)) = (usage, self.usage.lock()) {
            *slot = Some(usage);
        }
        let body = response
            .text()
            .await
            .map_err(|e| SalesforceError::Transport(without_url(&e)))?;
        if (200..300).contains(&status) {
            return Ok(Answer { body });
        }
        let retry_after = headers
            .get("Retry-After")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        Err(SalesforceError::from_response(status, &body, retry_after))
    }

    async fn session(&self) -> Result<Arc<AccessToken>, SalesforceError> {
        let mut slot = self.session.lock().await;
        if let Some(session) = slot.as_ref() {
            return Ok(session.clone());
        }
        let fresh = Arc::new(self.login().await?);
        *slot = Some(fresh.clone());
        Ok(fresh)
    }

    /// Replaces `stale` with a new session; if another task already replaced it, uses theirs.
    async fn renew_session(
        &self,
        stale: &Arc<AccessToken>,
    ) -> Result<Arc<AccessToken>, SalesforceError> {
        let mut slot = self.session.lock().await;
        if let Some(current) = slot.as_ref()
            && !Arc::ptr_eq(current, stale)
        {
            return Ok(current.clone());
        }
        *slot = None;
        let fresh = Arc::new(self.login().await?);
        *slot = Some(fresh.clone());
        Ok(fresh)
    }

    async fn login(&self) -> Result<AccessToken, SalesforceError> {
        let name = &self.config.secret_name;
        let secret = self
            .secrets
            .secret_string(name)
            .await
            .map_err(|e| SalesforceError::Credentials(e.to_string()))?;
        let creds: SalesforceCredentials = parse_json_secret(name, &secret)
            .map_err(|e| SalesforceError::Credentials(e.to_string()))?;
        let token = request_token(&self.http, &self.config, &creds).await?;
        debug!(instance = %token.instance_url, "logged in to Salesforce");
        Ok(token)
    }
}

fn check_sobject(sobject: &str) -> Result<(), SalesforceError> {
    if is_api_name(sobject) {
        Ok(())
    } else {
        Err(SalesforceError::InvalidRequest(format!(
            "{sobject:?} is not an sObject API name"
        )))
    }
}

/// The body of an sObject Collections update: `{"allOrNone", "records":[{"attributes":{"type"},"id",...}]}`.
pub fn collection_body(
    records: &[RecordUpdate],
    all_or_none: bool,
) -> Result<Value, SalesforceError> {
    let mut out = Vec::with_capacity(records.len());
    for r in records {
        check_sobject(&r.sobject)?;
        let mut rec = serde_json::Map::new();
        rec.insert("attributes".into(), serde_json::json!({"type": r.sobject}));
        rec.insert("id".into(), Value::String(r.id.to_string()));
        for (k, v) in &r.fields {
            if k.eq_ignore_ascii_case("id") || k == "attributes" {
                return Err(SalesforceError::InvalidRequest(format!(
                    "field {k:?} cannot be updated"
                )));
            }
            rec.insert(k.clone(), v.clone());
        }
        out.push(Value::Object(rec));
    }
    Ok(serde_json::json!({"allOrNone": all_or_none, "records": out}))
}

/// The body of an upsert by External ID: every record of the URI's type, its key in the key
/// field and no `Id` (lifecycle.md §5.1).
pub fn upsert_body(
    sobject: &str,
    key_field: &str,
    records: &[RecordUpsert],
    all_or_none: bool,
) -> Result<Value, SalesforceError> {
    check_sobject(sobject)?;
    if !is_api_name(key_field) || key_field.eq_ignore_ascii_case("id") {
        return Err(SalesforceError::InvalidRequest(format!(
            "{key_field:?} is not an External ID field name"
        )));
    }
    let mut out = Vec::with_capacity(records.len());
    for r in records {
        if r.key.trim().is_empty() {
            return Err(SalesforceError::InvalidRequest(format!(
                "a record to upsert by {key_field} has no key"
            )));
        }
        let mut rec = serde_json::Map::new();
        rec.insert("attributes".into(), serde_json::json!({"type": sobject}));
        for (k, v) in &r.fields {
            if k.eq_ignore_ascii_case("id")
                || k == "attributes"
                || k.eq_ignore_ascii_case(key_field)
            {
                return Err(SalesforceError::InvalidRequest(format!(
                    "field {k:?} cannot be set in an upsert by {key_field}"
                )));
            }
            rec.insert(k.clone(), v.clone());
        }
        rec.insert(key_field.to_string(), Value::String(r.key.clone()));
        out.push(Value::Object(rec));
    }
    Ok(serde_json::json!({"allOrNone": all_or_none, "records": out}))
}

fn decode<T: serde::de::DeserializeOwned>(body: &str, what: &str) -> Result<T, SalesforceError> {
    serde_json::from_str(body).map_err(|e| SalesforceError::Decode(format!("{what}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collection_bodies_carry_type_and_id_per_record() {
        let id = SfId::parse("801A000010khO8J").unwrap();
        let mut fields = serde_json::Map::new();
        fields.insert("Status".into(), "Activated".into());
        let body = collection_body(
            &[RecordUpdate {
                sobject: "Order".into(),
                id: id.clone(),
                fields,
            }],
            false,
        )
        .unwrap();
        assert_eq!(
            body,
            serde_json::json!({"allOrNone": false, "records": [
                {"attributes": {"type": "Order"}, "id": id.as_str(), "Status": "Activated"}]})
        );
    }

    #[test]
    fn upsert_bodies_carry_the_type_and_the_key_and_refuse_ids_and_second_keys() {
        let mut fields = serde_json::Map::new();
        fields.insert("AB_Subscription_State__c".into(), "past_due".into());
        let record = RecordUpsert {
            key: "80293620".into(),
            fields: fields.clone(),
        };
        let body =
            upsert_body("Opportunity", "Maxio_Subscription_Id__c", &[record], false).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"allOrNone": false, "records": [
                {"attributes": {"type": "Opportunity"}, "AB_Subscription_State__c": "past_due",
                 "Maxio_Subscription_Id__c": "80293620"}]})
        );
        for bad in ["Id", "maxio_subscription_id__c", "attributes"] {
            let mut f = fields.clone();
            f.insert(bad.into(), "x".into());
            let r = RecordUpsert {
                key: "1".into(),
                fields: f,
            };
            assert!(upsert_body("Opportunity", "Maxio_Subscription_Id__c", &[r], false).is_err());
        }
        let keyless = RecordUpsert {
            key: " ".into(),
            fields,
        };
        assert!(upsert_body("Opportunity", "Maxio_Subscription_Id__c", &[keyless], false).is_err());
        assert!(upsert_body("Opportunity", "Id", &[], false).is_err());
        assert!(upsert_body("Opportunity", "Bad Field", &[], false).is_err());
    }

    #[test]
    fn collection_bodies_refuse_id_fields_and_odd_types() {
        let id = SfId::parse("801A000010khO8J").unwrap();
        let mut fields = serde_json::Map::new();
        fields.insert("Id".into(), "x".into());
        let rec = RecordUpdate {
            sobject: "Order".into(),
            id: id.clone(),
            fields,
        };
        assert!(collection_body(&[rec], false).is_err());
        let rec = RecordUpdate {
            sobject: "Order/../x".into(),
            id,
            fields: serde_json::Map::new(),
        };
        assert!(collection_body(&[rec], false).is_err());
    }

    #[test]
    fn save_results_read_status_code_errors() {
        let r: Vec<SaveResult> = serde_json::from_str(
            r#"[{"id":"801","success":true,"errors":[]},
                {"success":false,"errors":[{"statusCode":"UNABLE_TO_LOCK_ROW","message":"unable to obtain exclusive access","fields":[]}]}]"#,
        )
        .unwrap();
        assert!(r[0].success);
        assert_eq!(r[1].errors[0].error_code, "UNABLE_TO_LOCK_ROW");
    }
}
