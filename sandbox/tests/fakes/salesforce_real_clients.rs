//! The sandbox org answers real-world clients as Salesforce does. The queries below are those a
//! public Lambda integration (Salesforce → Maxio AB, client-credentials login, REST `query/`)
//! sends for one won Opportunity, written the way it writes them: lower-case keywords and object
//! names, `FIELDS(ALL)` with `LIMIT 200`, the standard `OpportunityLineItem` object, `IN` lists
//! built from earlier answers. Each must answer 200 with the records a real org holds.

use dealbridge_sandbox::salesforce::{OrgSettings, SalesforceSandbox, seeded_org};
use serde_json::Value;

struct RawClient {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl RawClient {
    /// Logs in with the client-credentials flow, as a plain HTTP client.
    async fn login(sf: &SalesforceSandbox) -> RawClient {
        let settings = sf.settings();
        let http = reqwest::Client::new();
        let answer: Value = http
            .post(format!("{}/services/oauth2/token", sf.url()))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", settings.client_id.as_str()),
                ("client_secret", settings.client_secret.as_str()),
            ])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        RawClient {
            http,
            base: answer["instance_url"].as_str().unwrap().to_string(),
            token: answer["access_token"].as_str().unwrap().to_string(),
        }
    }

    /// `GET /services/data/v61.0/query/?q=...`: the records, or the status and error body.
    async fn query(&self, soql: &str) -> Result<Vec<Value>, (u16, Value)> {
        let r = self
            .http
            .get(format!("{}/services/data/v61.0/query/", self.base))
            .bearer_auth(&self.token)
            .query(&[("q", soql)])
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let body: Value = r.json().await.unwrap();
        if status == 200 {
            Ok(body["records"].as_array().cloned().unwrap_or_default())
        } else {
            Err((status, body))
        }
    }

    async fn rows(&self, soql: &str) -> Vec<Value> {
        self.query(soql)
            .await
            .unwrap_or_else(|(status, body)| panic!("{soql}\n{status}: {body}"))
    }
}

fn ids(rows: &[Value], field: &str) -> String {
    rows.iter()
        .filter_map(|r| r[field].as_str())
        .map(|id| format!("'{id}'"))
        .collect::<Vec<_>>()
        .join(",")
}

fn text<'a>(row: &'a Value, field: &str) -> &'a str {
    row[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} missing from {row}"))
}

#[tokio::test]
async fn the_queries_of_a_public_lambda_integration_are_answered_as_salesforce_answers_them() {
    let sf = SalesforceSandbox::start(OrgSettings::default(), seeded_org().unwrap())
        .await
        .unwrap();
    let c = RawClient::login(&sf).await;
    let opportunity = sf.id_of("VolumeOpportunity").unwrap();

    let opp = c
        .rows(&format!(
            "\n        SELECT fields(all)\n        from opportunity\n        where Id = '{opportunity}'\n        limit 200\n        "
        ))
        .await;
    assert_eq!(opp.len(), 1);
    let quote = text(&opp[0], "SBQQ__PrimaryQuote__c");
    assert_eq!(opp[0]["attributes"]["type"], "Opportunity");
    // Standard fields every Opportunity has, custom ones of installed packages too.
    assert_eq!(
        opp[0]["ContactId"].as_str(),
        sf.id_of("VolumeContact").as_deref()
    );
    for field in [
        "CreatedDate",
        "LastModifiedDate",
        "SystemModstamp",
        "IsDeleted",
        "AccountId",
    ] {
        assert!(opp[0].get(field).is_some(), "{field}");
    }

    let lines = c
        .rows(&format!(
            "SELECT fields(all) FROM OpportunityLineItem WHERE OpportunityId = '{opportunity}' LIMIT 200"
        ))
        .await;
    assert_eq!(lines.len(), 2, "CPQ syncs the primary quote's lines");
    let products = c
        .rows(&format!(
            "SELECT fields(ALL) from Product2 where Id in ({}) limit 200",
            ids(&lines, "Product2Id")
        ))
        .await;
    assert_eq!(products.len(), 2);
    assert!(products.iter().all(|p| p["ProductCode"].is_string()));

    let quote_rows = c
        .rows(&format!(
            "SELECT fields(ALL) from SBQQ__Quote__c where Id = '{quote}' limit 200"
        ))
        .await;
    let contact = text(&quote_rows[0], "SBQQ__PrimaryContact__c").to_string();
    let contacts = c
        .rows(&format!(
            "SELECT fields(ALL) from Contact where Id = '{contact}' limit 200"
        ))
        .await;
    assert!(contacts[0]["Email"].is_string());

    let orders = c
        .rows(&format!(
            "SELECT fields(all) from order where SBQQ__Quote__c = '{quote}' limit 200"
        ))
        .await;
    assert_eq!(orders.len(), 1);
    let order = text(&orders[0], "Id");
    let items = c
        .rows(&format!(
            "SELECT fields(ALL) from OrderItem where orderid = '{order}' limit 200"
        ))
        .await;
    assert_eq!(items.len(), 2);
    let schedules = c
        .rows(&format!(
            "SELECT fields(ALL) from SBQQ__OrderItemConsumptionSchedule__c where SBQQ__OrderItem__c in ({}) limit 200",
            ids(&items, "Id")
        ))
        .await;
    assert_eq!(schedules.len(), 1);
    let rates = c
        .rows(&format!(
            "SELECT fields(all) from SBQQ__OrderItemConsumptionRate__c where SBQQ__OrderItemConsumptionSchedule__c in ({}) limit 200",
            ids(&schedules, "Id")
        ))
        .await;
    assert!(rates.len() >= 2);
    assert!(rates.iter().all(|r| r["SBQQ__LowerBound__c"].is_number()));
    let account = text(&opp[0], "AccountId");
    let accounts = c
        .rows(&format!(
            "SELECT fields(ALL) from Account where Id = '{account}' limit 200"
        ))
        .await;
    for field in [
        "Name",
        "BillingStreet",
        "BillingCity",
        "BillingPostalCode",
        "Phone",
    ] {
        assert!(accounts[0].get(field).is_some(), "{field}");
    }
    // A field an org does not have is absent from FIELDS(ALL), as the integration expects.
    assert!(accounts[0].get("ia_crm__Email_ID__c").is_none());

    // What Salesforce refuses, the sandbox refuses the same way.
    let (status, body) = c
        .query("SELECT fields(all) from opportunity")
        .await
        .unwrap_err();
    assert_eq!(status, 400);
    assert_eq!(body[0]["errorCode"], "MALFORMED_QUERY");
}
