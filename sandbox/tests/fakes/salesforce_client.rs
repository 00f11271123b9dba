//! The Salesforce client against the sandbox org: login flows, session renewal, pagination,
//! Composite errors, limits, updates, and input validation before any request.

use std::time::Duration;

use dealbridge::config::AuthFlow;
use dealbridge::salesforce::soql::{id_literal, quote};
use dealbridge::salesforce::{CompositeRequest, RecordUpdate, RecordUpsert, SalesforceError, SfId};
use dealbridge::snapshot::{DealRef, SnapshotError};
use dealbridge_sandbox::harness::{SALESFORCE_SECRET, connect};
use dealbridge_sandbox::observe::Fault;
use dealbridge_sandbox::salesforce::{
    OrgSettings, SalesforceSandbox, routes, seeded_org, test_keys_dir,
};
use serde_json::{Map, Value, json};

async fn sandbox() -> SalesforceSandbox {
    SalesforceSandbox::start(OrgSettings::default(), seeded_org().expect("seed loads"))
        .await
        .expect("sandbox starts")
}

fn id(sandbox: &SalesforceSandbox, reference: &str) -> SfId {
    SfId::parse(&sandbox.id_of(reference).expect("seeded record")).unwrap()
}

fn routes_of(sf: &SalesforceSandbox) -> Vec<String> {
    sf.observer()
        .requests()
        .into_iter()
        .map(|r| r.route)
        .collect()
}

fn fields(pairs: &[(&str, Value)]) -> Map<String, Value> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

#[tokio::test]
async fn an_expired_session_is_renewed_once_and_the_call_retried() {
    let sf = sandbox().await;
    let c = connect(&sf, AuthFlow::ClientCredentials, &[]).unwrap();
    let deal = DealRef::Opportunity(id(&sf, "VolumeOpportunity"));
    c.loader.load(&deal).await.unwrap();
    sf.expire_sessions();
    c.loader.load(&deal).await.unwrap();
    assert_eq!(
        routes_of(&sf),
        [
            routes::TOKEN,
            routes::COMPOSITE,
            routes::COMPOSITE,
            routes::TOKEN,
            routes::COMPOSITE
        ]
    );
    let statuses: Vec<u16> = sf.observer().requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [200, 200, 401, 200, 200]);
}

#[tokio::test]
async fn a_session_refused_twice_fails_instead_of_looping() {
    let sf = sandbox().await;
    let c = connect(&sf, AuthFlow::ClientCredentials, &[]).unwrap();
    sf.observer().inject(
        routes::COMPOSITE,
        Fault::json(
            401,
            json!([{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]),
        )
        .times(10),
    );
    let err = c
        .loader
        .load(&DealRef::Opportunity(id(&sf, "VolumeOpportunity")))
        .await
        .unwrap_err();
    let SnapshotError::Salesforce(e) = &err else {
        panic!("{err}")
    };
    assert_eq!(e.error_code(), Some("INVALID_SESSION_ID"));
    assert_eq!(
        routes_of(&sf),
        [
            routes::TOKEN,
            routes::COMPOSITE,
            routes::TOKEN,
            routes::COMPOSITE
        ]
    );
}

#[tokio::test]
async fn the_jwt_bearer_flow_is_accepted_only_with_the_trusted_key() {
    let sf = sandbox().await;
    let deal = DealRef::Opportunity(id(&sf, "VolumeOpportunity"));
    let good = connect(&sf, AuthFlow::JwtBearer, &[]).unwrap();
    good.loader.load(&deal).await.expect("trusted key logs in");

    let other_key = std::fs::read_to_string(test_keys_dir().join("other-test-key.pem")).unwrap();
    let bad = connect(&sf, AuthFlow::JwtBearer, &[]).unwrap();
    let settings = sf.settings();
    bad.secrets.insert(
        SALESFORCE_SECRET,
        json!({"client_id": settings.client_id, "username": settings.username, "private_key": other_key})
            .to_string(),
    );
    sf.observer().clear_log();
    let err = bad.loader.load(&deal).await.unwrap_err();
    let SnapshotError::Salesforce(SalesforceError::Auth {
        status,
        error,
        description,
    }) = &err
    else {
        panic!("expected a login failure, got {err}")
    };
    assert_eq!(
        (*status, error.as_str(), description.as_str()),
        (400, "invalid_grant", "invalid assertion")
    );
    assert!(!err.is_retryable());
    assert_eq!(
        routes_of(&sf),
        [routes::TOKEN],
        "nothing but the refused login was sent"
    );
}

#[tokio::test]
async fn the_jwt_bearer_flow_checks_audience_and_user() {
    let sf = sandbox().await;
    let deal = DealRef::Opportunity(id(&sf, "VolumeOpportunity"));
    let wrong_aud = connect(
        &sf,
        AuthFlow::JwtBearer,
        &[("SALESFORCE_JWT_AUDIENCE", "https://example.com")],
    )
    .unwrap();
    let err = wrong_aud.loader.load(&deal).await.unwrap_err();
    assert!(err.to_string().contains("audience is invalid"), "{err}");

    let pkcs8 = std::fs::read_to_string(test_keys_dir().join("jwt-test-key.pkcs8.pem")).unwrap();
    let wrong_user = connect(&sf, AuthFlow::JwtBearer, &[]).unwrap();
    let settings = sf.settings();
    wrong_user.secrets.insert(
        SALESFORCE_SECRET,
        json!({"client_id": settings.client_id, "username": "someone@else.example", "private_key": pkcs8}).to_string(),
    );
    let err = wrong_user.loader.load(&deal).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("user hasn't approved this consumer"),
        "{err}"
    );
}

#[tokio::test]
async fn client_credentials_with_a_wrong_secret_are_refused() {
    let sf = sandbox().await;
    let c = connect(&sf, AuthFlow::ClientCredentials, &[]).unwrap();
    c.secrets.insert(
        SALESFORCE_SECRET,
        r#"{"client_id":"3MVG9.sandbox.dealbridge","client_secret":"guess"}"#,
    );
    let err = c.client.query("SELECT Id FROM Account").await.unwrap_err();
    assert!(
        matches!(&err, SalesforceError::Auth { error, .. } if error == "invalid_client"),
        "{err}"
    );
    assert!(!err.to_string().contains("guess"));
}

#[tokio::test]
async fn a_malformed_credentials_secret_is_named_without_its_content() {
    let sf = sandbox().await;
    let c = connect(&sf, AuthFlow::ClientCredentials, &[]).unwrap();
    c.secrets
        .insert(SALESFORCE_SECRET, r#"{"client_secret":"s3cr3t-value"}"#);
    let err = c.client.query("SELECT Id FROM Account").await.unwrap_err();
    let text = err.to_string();
    assert!(text.contains("missing field `client_id`"), "{text}");
    assert!(!text.contains("s3cr3t-value"));
    assert_eq!(sf.observer().total(), 0);
}

#[tokio::test]
async fn query_all_follows_next_records_url_to_the_last_page() {
    let sf = sandbox().await;
    sf.configure(|s| s.batch_size = 4);
    let c = connect(&sf, AuthFlow::ClientCredentials, &[]).unwrap();
    let expected = sf.with_org(|org| org.records("Product2").len());
    assert!(expected > 8, "the seed has a catalog");
    let rows = c
        .client
        .query_all("SELECT Id, ProductCode FROM Product2 ORDER BY ProductCode")
        .await
        .unwrap();
    assert_eq!(rows.len(), expected);
    let codes: Vec<&str> = rows
        .iter()
        .filter_map(|r| r["ProductCode"].as_str())
        .collect();
    let mut sorted = codes.clone();
    sorted.sort();
    assert_eq!(codes, sorted, "pages arrive in order");
    assert_eq!(
        sf.observer().count(routes::QUERY_MORE),
        expected.div_ceil(4) - 1
    );
    let page = c.client.query("SELECT Id FROM Product2").await.unwrap();
    assert!(!page.done);
    assert_eq!(page.total_size as usize, expected);
    assert!(
        page.next_records_url
            .unwrap()
            .starts_with("/services/data/v62.0/query/")
    );
}

#[tokio::test]
async fn a_composite_subrequest_error_is_surfaced_with_its_code_and_reference() {
    let sf = sandbox().await;
    let c = connect(&sf, AuthFlow::ClientCredentials, &[]).unwrap();
    let data = c.client.data_path();
    let mut req = CompositeRequest::new(false);
    req.query(&data, "good", "SELECT Id FROM Account LIMIT 1")
        .query(&data, "bad", "SELECT Id, No_Such_Field__c FROM Order")
        .query(
            &data,
            "dependent",
            "SELECT Id FROM Contact WHERE AccountId = '@{good.records[0].Id}'",
        );
    let mut resp = c.client.composite(&req).await.unwrap();
    let err = resp.take("bad").unwrap_err();
    assert_eq!(err.error_code(), Some("INVALID_FIELD"));
    assert!(err.to_string().contains("for bad"), "{err}");
    assert!(err.to_string().contains("No_Such_Field__c"), "{err}");
    assert!(resp.take("good").is_ok());
    assert!(resp.take("dependent").is_ok(), "independent of the failure");
    assert_eq!(sf.observer().count(routes::COMPOSITE), 1);
}

#[tokio::test]
async fn a_composite_over_the_query_limit_is_refused_before_sending() {
    let sf = sandbox().await;
    let c = connect(&sf, AuthFlow::ClientCredentials, &[]).unwrap();
    let data = c.client.data_path();
    let mut req = CompositeRequest::new(false);
    for i in 0..6 {
        req.query(&data, &format!("q{i}"), "SELECT Id FROM Account");
    }
    let err = c.client.composite(&req).await.unwrap_err();
    assert!(matches!(err, SalesforceError::InvalidRequest(_)), "{err}");
    assert_eq!(sf.observer().total(), 0);
}

#[tokio::test]
async fn an_exhausted_api_allocation_is_retryable_and_usage_is_exposed() {
    let sf = sandbox().await;
    let c = connect(&sf, AuthFlow::ClientCredentials, &[]).unwrap();
    c.client
        .query("SELECT Id FROM Account LIMIT 1")
        .await
        .unwrap();
    let usage = c.client.api_usage().expect("Sforce-Limit-Info read");
    assert_eq!((usage.used, usage.max), (1, 15_000));

    sf.set_api_usage(15_000);
    let err = c
        .loader
        .load(&DealRef::Opportunity(id(&sf, "VolumeOpportunity")))
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err}");
    let SnapshotError::Salesforce(e) = &err else {
        panic!("{err}")
    };
    assert_eq!(e.error_code(), Some("REQUEST_LIMIT_EXCEEDED"));
    assert_eq!(c.client.api_usage().map(|u| u.used), Some(15_000));
}

#[tokio::test]
async fn server_errors_carry_retry_after_and_lock_contention_is_retryable() {
    let sf = sandbox().await;
    let c = connect(&sf, AuthFlow::ClientCredentials, &[]).unwrap();
    sf.observer().inject(
        routes::QUERY,
        Fault::json(
            503,
            json!([{"message": "Server is unavailable", "errorCode": "SERVER_UNAVAILABLE"}]),
        )
        .header("Retry-After", "7"),
    );
    let err = c.client.query("SELECT Id FROM Account").await.unwrap_err();
    assert!(err.is_retryable());
    assert_eq!(err.retry_after(), Some(Duration::from_secs(7)));

    let order = id(&sf, "InternetOrder");
    sf.observer().inject(
        routes::SOBJECT_PATCH,
        Fault::json(400, json!([{"message": "unable to obtain exclusive access to this record", "errorCode": "UNABLE_TO_LOCK_ROW", "fields": []}])),
    );
    let err = c
        .client
        .update(
            "Order",
            &order,
            &fields(&[("Activation_Status__c", json!("Activating"))]),
        )
        .await
        .unwrap_err();
    assert_eq!(err.error_code(), Some("UNABLE_TO_LOCK_ROW"));
    assert!(err.is_retryable());
}

#[tokio::test]
async fn single_record_updates_write_the_org_and_report_field_errors() {
    let sf = sandbox().await;
    let c = connect(&sf, AuthFlow::ClientCredentials, &[]).unwrap();
    let order = id(&sf, "InternetOrder");
    c.client
        .update(
            "Order",
            &order,
            &fields(&[
                ("Activation_Status__c", json!("Provisioned")),
                ("WHMCS_Order_Id__c", json!(12345)),
            ]),
        )
        .await
        .unwrap();
    let record = sf.record(order.as_str()).unwrap();
    assert_eq!(record["Activation_Status__c"], "Provisioned");
    assert_eq!(record["WHMCS_Order_Id__c"], 12345);

    let err = c
        .client
        .update(
            "Order",
            &order,
            &fields(&[("Activation_Status__c", json!("Done-ish"))]),
        )
        .await
        .unwrap_err();
    assert_eq!(
        err.error_code(),
        Some("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST")
    );
    assert!(!err.is_retryable());
    assert_eq!(
        sf.record(order.as_str()).unwrap()["Activation_Status__c"],
        "Provisioned"
    );
}

#[tokio::test]
async fn collection_updates_report_each_record() {
    let sf = sandbox().await;
    let c = connect(&sf, AuthFlow::ClientCredentials, &[]).unwrap();
    let order = id(&sf, "InternetOrder");
    let opp = id(&sf, "InternetOpportunity");
    let results = c
        .client
        .update_records(
            &[
                RecordUpdate {
                    sobject: "Order".into(),
                    id: order.clone(),
                    fields: fields(&[("Status", json!("Activated"))]),
                },
                RecordUpdate {
                    sobject: "Opportunity".into(),
                    id: opp.clone(),
                    fields: fields(&[("No_Such_Field__c", json!("x"))]),
                },
            ],
            false,
        )
        .await
        .unwrap();
    assert!(results[0].success);
    assert!(!results[1].success);
    assert_eq!(results[1].errors[0].error_code, "INVALID_FIELD");
    assert_eq!(sf.record(order.as_str()).unwrap()["Status"], "Activated");
    assert_eq!(sf.observer().count(routes::COLLECTIONS_PATCH), 1);

    let rolled_back = c
        .client
        .update_records(
            &[
                RecordUpdate {
                    sobject: "Order".into(),
                    id: order.clone(),
                    fields: fields(&[("Status", json!("Cancelled"))]),
                },
                RecordUpdate {
                    sobject: "Opportunity".into(),
                    id: opp,
                    fields: fields(&[("No_Such_Field__c", json!("x"))]),
                },
            ],
            true,
        )
        .await
        .unwrap();
    assert_eq!(
        rolled_back[0].errors[0].error_code,
        "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    );
    assert_eq!(
        sf.record(order.as_str()).unwrap()["Status"],
        "Activated",
        "rolled back"
    );
}

#[tokio::test]
async fn upserts_by_external_id_update_the_matching_record_and_report_each_record() {
    let sf = sandbox().await;
    let c = connect(&sf, AuthFlow::ClientCredentials, &[]).unwrap();
    let opp = id(&sf, "InternetOpportunity");
    c.client
        .update(
            "Opportunity",
            &opp,
            &fields(&[("Maxio_Subscription_Id__c", json!("80293620"))]),
        )
        .await
        .unwrap();
    let upsert = |key: &str, pairs: &[(&str, Value)]| RecordUpsert {
        key: key.into(),
        fields: fields(pairs),
    };
    let results = c
        .client
        .upsert_records(
            "Opportunity",
            "Maxio_Subscription_Id__c",
            &[
                upsert("80293620", &[("Name", json!("Renamed by billing"))]),
                upsert("80293620", &[("No_Such_Field__c", json!("x"))]),
            ],
            false,
        )
        .await
        .unwrap();
    assert!(results[0].success, "{results:?}");
    assert_eq!(results[0].id.as_deref(), Some(opp.as_str()));
    assert_eq!(results[0].created, Some(false));
    assert!(!results[1].success);
    assert_eq!(results[1].errors[0].error_code, "INVALID_FIELD");
    assert_eq!(
        sf.record(opp.as_str()).unwrap()["Name"],
        "Renamed by billing"
    );
    assert_eq!(sf.observer().count(routes::COLLECTIONS_UPSERT), 1);

    let rolled_back = c
        .client
        .upsert_records(
            "Opportunity",
            "Maxio_Subscription_Id__c",
            &[
                upsert("80293620", &[("Name", json!("Not kept"))]),
                upsert("80293620", &[("No_Such_Field__c", json!("x"))]),
            ],
            true,
        )
        .await
        .unwrap();
    assert_eq!(
        rolled_back[0].errors[0].error_code,
        "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    );
    assert_eq!(
        sf.record(opp.as_str()).unwrap()["Name"],
        "Renamed by billing"
    );

    let not_external = c
        .client
        .upsert_records(
            "Opportunity",
            "Maxio_Site__c",
            &[upsert("default", &[("Name", json!("x"))])],
            false,
        )
        .await
        .unwrap_err();
    assert_eq!(not_external.error_code(), Some("INVALID_FIELD"));
    assert!(!not_external.is_retryable());
}

#[tokio::test]
async fn bad_ids_are_refused_before_any_request_is_sent() {
    let sf = sandbox().await;
    let c = connect(&sf, AuthFlow::ClientCredentials, &[]).unwrap();
    let good = sf.id_of("VolumeOpportunity").unwrap();
    let wrong_checksum = format!("{}BAA", &good[..15]);
    let bad = [
        wrong_checksum.as_str(),
        "006SB00000000",
        "006SB0000000001YAAX",
        "006SB000000'001",
        "006' OR Id != '",
        "006SB0000000001YA'",
        "' OR Name LIKE '%",
        "",
        "001SB0000000001",
    ];
    for raw in bad {
        assert!(DealRef::opportunity(raw).is_err(), "{raw:?} accepted");
    }
    assert_eq!(sf.observer().total(), 0, "nothing reached Salesforce");
    // The well-formed one does.
    let deal = DealRef::opportunity(&good).unwrap();
    c.loader.load(&deal).await.unwrap();
    assert_eq!(sf.observer().count(routes::COMPOSITE), 1);
}

#[tokio::test]
async fn quoted_literals_match_exactly_the_text_they_quote() {
    let sf = sandbox().await;
    let tricky = "O'Brien \\ \"Partners\" 50%_off\n";
    let inserted = sf.with_org(|org| {
        org.insert("Account", &fields(&[("Name", json!(tricky))]))
            .unwrap()
    });
    let c = connect(&sf, AuthFlow::ClientCredentials, &[]).unwrap();
    let rows = c
        .client
        .query_all(&format!(
            "SELECT Id, Name FROM Account WHERE Name = {}",
            quote(tricky)
        ))
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["Name"], tricky);
    assert_eq!(
        SfId::parse(rows[0]["Id"].as_str().unwrap()).unwrap(),
        inserted
    );
    let none = c
        .client
        .query_all(&format!(
            "SELECT Id FROM Account WHERE Name = {}",
            quote("x' OR Name != 'y")
        ))
        .await
        .unwrap();
    assert!(none.is_empty());
    let by_id = c
        .client
        .query_all(&format!(
            "SELECT Name FROM Account WHERE Id = {}",
            id_literal(&inserted)
        ))
        .await
        .unwrap();
    assert_eq!(by_id[0]["Name"], tricky);
}
