//! Composite requests (`POST /composite`): up to 25 subrequests in one API call, at most 5 of them
//! queries or sObject Collections, later subrequests referring to earlier results with
//! `@{referenceId.path}`. The request is checked against those limits before anything is sent, and
//! each subrequest's error is surfaced with its code and reference id.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::SalesforceError;
use super::error::parse_error_body;

pub const MAX_SUBREQUESTS: usize = 25;
pub const MAX_QUERIES: usize = 5;

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Subrequest {
    pub method: String,
    pub url: String,
    pub reference_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<Value>,
    #[serde(skip)]
    counts_as_query: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CompositeRequest {
    pub all_or_none: bool,
    pub collate_subrequests: bool,
    pub composite_request: Vec<Subrequest>,
}

impl CompositeRequest {
    /// An empty request. Subrequests run in order (`collateSubrequests` false).
    pub fn new(all_or_none: bool) -> Self {
        CompositeRequest {
            all_or_none,
            collate_subrequests: false,
            composite_request: Vec::new(),
        }
    }

    /// Adds a query. `soql` may contain `@{ref.path}` references to earlier subrequests; they are
    /// kept verbatim while the rest of the query is URL-encoded.
    pub fn query(&mut self, data_path: &str, reference_id: &str, soql: &str) -> &mut Self {
        self.composite_request.push(Subrequest {
            method: "GET".into(),
            url: format!("{data_path}/query/?q={}", encode_keeping_references(soql)),
            reference_id: reference_id.into(),
            body: None,
            counts_as_query: true,
        });
        self
    }

    /// Adds a single-record update.
    pub fn update(
        &mut self,
        data_path: &str,
        reference_id: &str,
        sobject: &str,
        id: &super::SfId,
        fields: serde_json::Map<String, Value>,
    ) -> &mut Self {
        self.composite_request.push(Subrequest {
            method: "PATCH".into(),
            url: format!("{data_path}/sobjects/{sobject}/{id}"),
            reference_id: reference_id.into(),
            body: Some(Value::Object(fields)),
            counts_as_query: false,
        });
        self
    }

    /// Adds an sObject Collections update (counts against the query limit, as Salesforce counts it).
    pub fn update_collection(
        &mut self,
        data_path: &str,
        reference_id: &str,
        body: Value,
    ) -> &mut Self {
        self.composite_request.push(Subrequest {
            method: "PATCH".into(),
            url: format!("{data_path}/composite/sobjects"),
            reference_id: reference_id.into(),
            body: Some(body),
            counts_as_query: true,
        });
        self
    }

    pub fn len(&self) -> usize {
        self.composite_request.len()
    }

    pub fn is_empty(&self) -> bool {
        self.composite_request.is_empty()
    }

    /// Checks Salesforce's documented limits and the reference ids before sending.
    pub fn validate(&self) -> Result<(), SalesforceError> {
        let invalid = |m: String| Err(SalesforceError::InvalidRequest(m));
        if self.composite_request.is_empty() {
            return invalid("a composite request needs at least one subrequest".into());
        }
        if self.composite_request.len() > MAX_SUBREQUESTS {
            return invalid(format!(
                "a composite request holds at most {MAX_SUBREQUESTS} subrequests, this one has {}",
                self.composite_request.len()
            ));
        }
        let queries = self
            .composite_request
            .iter()
            .filter(|s| s.counts_as_query)
            .count();
        if queries > MAX_QUERIES {
            return invalid(format!(
                "a composite request holds at most {MAX_QUERIES} queries or collections, this one has {queries}"
            ));
        }
        let mut seen: Vec<&str> = Vec::new();
        for sub in &self.composite_request {
            if !is_reference_id(&sub.reference_id) {
                return invalid(format!(
                    "referenceId {:?} must start with a letter or digit and hold only letters, digits and underscores",
                    sub.reference_id
                ));
            }
            if seen.contains(&sub.reference_id.as_str()) {
                return invalid(format!("referenceId {:?} is used twice", sub.reference_id));
            }
            let mut texts = vec![sub.url.clone()];
            if let Some(body) = &sub.body {
                texts.push(body.to_string());
            }
            for text in texts {
                for target in references_in(&text) {
                    if !seen.contains(&target.as_str()) {
                        return invalid(format!(
                            "subrequest {:?} refers to @{{{target}...}}, which is not an earlier subrequest",
                            sub.reference_id
                        ));
                    }
                }
            }
            seen.push(&sub.reference_id);
        }
        Ok(())
    }
}

fn is_reference_id(s: &str) -> bool {
    s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The reference ids named by `@{ref...}` occurrences in `text`.
fn references_in(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("@{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else { break };
        let inner = &after[..end];
        let name: String = inner
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        out.push(name);
        rest = &after[end..];
    }
    out
}

/// URL-encodes a query for the `q` parameter, leaving `@{...}` references readable for Salesforce.
fn encode_keeping_references(soql: &str) -> String {
    let mut out = String::new();
    let mut rest = soql;
    while let Some(start) = rest.find("@{") {
        let Some(len) = rest[start..].find('}') else {
            break;
        };
        out.extend(url::form_urlencoded::byte_serialize(
            &rest.as_bytes()[..start],
        ));
        out.push_str(&rest[start..start + len + 1]);
        rest = &rest[start + len + 1..];
    }
    out.extend(url::form_urlencoded::byte_serialize(rest.as_bytes()));
    out
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubResponse {
    #[serde(default)]
    pub body: Value,
    #[serde(default)]
    pub http_headers: serde_json::Map<String, Value>,
    pub http_status_code: u16,
    pub reference_id: String,
}

impl SubResponse {
    /// The body of a successful subrequest, or its error with the code, message and reference id.
    pub fn into_result(self) -> Result<Value, SalesforceError> {
        if (200..300).contains(&self.http_status_code) {
            return Ok(self.body);
        }
        let errors = match &self.body {
            Value::Array(_) | Value::Object(_) => parse_error_body(&self.body.to_string()),
            Value::String(s) => parse_error_body(s),
            _ => Vec::new(),
        };
        Err(SalesforceError::Api {
            status: self.http_status_code,
            errors,
            context: Some(self.reference_id),
            retry_after: None,
        })
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CompositeResponse {
    pub composite_response: Vec<SubResponse>,
}

impl CompositeResponse {
    /// Takes the result of the subrequest named `reference_id`.
    pub fn take(&mut self, reference_id: &str) -> Result<Value, SalesforceError> {
        let pos = self
            .composite_response
            .iter()
            .position(|s| s.reference_id == reference_id)
            .ok_or_else(|| {
                SalesforceError::Decode(format!(
                    "the composite response has no subresponse {reference_id:?}"
                ))
            })?;
        self.composite_response.remove(pos).into_result()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::salesforce::SfId;

    const DATA: &str = "/services/data/v62.0";

    #[test]
    fn queries_are_encoded_but_references_stay_readable() {
        let mut req = CompositeRequest::new(false);
        req.query(
            DATA,
            "opp",
            "SELECT Id, AccountId FROM Opportunity WHERE Id = '006x'",
        )
        .query(
            DATA,
            "acct",
            "SELECT Id FROM Account WHERE Id = '@{opp.records[0].AccountId}'",
        );
        req.validate().unwrap();
        assert_eq!(
            req.composite_request[0].url,
            "/services/data/v62.0/query/?q=SELECT+Id%2C+AccountId+FROM+Opportunity+WHERE+Id+%3D+%27006x%27"
        );
        assert_eq!(
            req.composite_request[1].url,
            "/services/data/v62.0/query/?q=SELECT+Id+FROM+Account+WHERE+Id+%3D+%27@{opp.records[0].AccountId}%27"
        );
        let json = serde_json::to_value(&req).unwrap();
        assert_eq!(json["allOrNone"], false);
        assert_eq!(json["collateSubrequests"], false);
        assert_eq!(json["compositeRequest"][1]["referenceId"], "acct");
        assert!(json["compositeRequest"][0].get("body").is_none());
    }

    #[test]
    fn more_than_five_queries_are_refused_before_sending() {
        let mut req = CompositeRequest::new(false);
        for i in 0..6 {
            req.query(DATA, &format!("q{i}"), "SELECT Id FROM Account");
        }
        let err = req.validate().unwrap_err();
        assert!(err.to_string().contains("at most 5 queries"), "{err}");
    }

    #[test]
    fn more_than_25_subrequests_are_refused_before_sending() {
        let mut req = CompositeRequest::new(false);
        let id = SfId::parse("001A000010khO8J").unwrap();
        for i in 0..26 {
            req.update(
                DATA,
                &format!("u{i}"),
                "Account",
                &id,
                serde_json::Map::new(),
            );
        }
        let err = req.validate().unwrap_err();
        assert!(err.to_string().contains("at most 25 subrequests"), "{err}");
    }

    #[test]
    fn references_must_point_backwards_and_ids_must_be_unique() {
        let mut req = CompositeRequest::new(false);
        req.query(
            DATA,
            "a",
            "SELECT Id FROM Account WHERE Id = '@{b.records[0].Id}'",
        )
        .query(DATA, "b", "SELECT Id FROM Account");
        assert!(
            req.validate()
                .unwrap_err()
                .to_string()
                .contains("not an earlier")
        );
        let mut req = CompositeRequest::new(false);
        req.query(DATA, "a", "SELECT Id FROM Account")
            .query(DATA, "a", "SELECT Id FROM Contact");
        assert!(
            req.validate()
                .unwrap_err()
                .to_string()
                .contains("used twice")
        );
        let mut req = CompositeRequest::new(false);
        req.query(DATA, "_a", "SELECT Id FROM Account");
        assert!(req.validate().is_err());
    }

    #[test]
    fn a_subrequest_error_is_surfaced_with_its_code_and_reference() {
        let mut resp: CompositeResponse = serde_json::from_str(
            r#"{"compositeResponse":[
                {"body":{"totalSize":0,"done":true,"records":[]},"httpHeaders":{},"httpStatusCode":200,"referenceId":"ok"},
                {"body":[{"errorCode":"INVALID_FIELD","message":"No such column 'Foo__c' on entity 'Order'"}],
                 "httpHeaders":{},"httpStatusCode":400,"referenceId":"orders"}]}"#,
        )
        .unwrap();
        assert_eq!(resp.take("ok").unwrap()["done"], true);
        let err = resp.take("orders").unwrap_err();
        assert_eq!(err.error_code(), Some("INVALID_FIELD"));
        assert!(!err.is_retryable());
        assert!(err.to_string().contains("for orders"), "{err}");
        assert!(resp.take("missing").is_err());
    }

    #[test]
    fn a_204_subresponse_has_a_null_body() {
        let mut resp: CompositeResponse = serde_json::from_str(
            r#"{"compositeResponse":[{"body":null,"httpHeaders":{},"httpStatusCode":204,"referenceId":"u"}]}"#,
        )
        .unwrap();
        assert_eq!(resp.take("u").unwrap(), Value::Null);
    }
}
