//! Query-level tests on a small org: name resolution, literal checking, filter semantics, and the
//! error responses.

use serde_json::{Value, json};

use crate::{ApiError, Org, QueryOptions};

fn org() -> Org {
    let schema = json!({"sobjects": {
        "Account": {"keyPrefix": "001", "fields": {
            "Name": {"type": "string"},
            "ParentId": {"type": "reference", "referenceTo": "Account"},
            "AnnualRevenue": {"type": "currency"},
            "NumberOfEmployees": {"type": "int"},
            "IsPartner__c": {"type": "boolean"},
            "Founded__c": {"type": "date"},
            "Reviewed_At__c": {"type": "datetime"}
        }, "childRelationships": {
            "Contacts": {"childSObject": "Contact", "field": "AccountId"},
            "ChildAccounts": {"childSObject": "Account", "field": "ParentId"}
        }},
        "Contact": {"keyPrefix": "003", "fields": {
            "LastName": {"type": "string"},
            "AccountId": {"type": "reference", "referenceTo": "Account"}
        }}
    }});
    let data = json!({"records": [
        {"attributes": {"type": "Account", "referenceId": "Acme"}, "Name": "Acme",
         "AnnualRevenue": 1000.5, "NumberOfEmployees": 50, "IsPartner__c": true,
         "Founded__c": "1999-04-01", "Reviewed_At__c": "2026-11-01T09:00:00Z",
         "Contacts": {"records": [
             {"attributes": {"type": "Contact", "referenceId": "Ito"}, "LastName": "Ito"}
         ]}},
        {"attributes": {"type": "Account", "referenceId": "AcmeJapan"}, "Name": "acme japan",
         "ParentId": "@Acme", "AnnualRevenue": 20, "Founded__c": "2010-01-01"},
        {"attributes": {"type": "Account", "referenceId": "Blank"}}
    ]});
    match Org::from_json(&schema, &[data]) {
        Ok(org) => org,
        Err(e) => panic!("fixture does not load: {e}"),
    }
}

fn query(org: &Org, soql: &str) -> Vec<Value> {
    match org.query(soql, &QueryOptions::default()) {
        Ok(rows) => rows,
        Err(e) => panic!("{soql}: {e}"),
    }
}

fn names(org: &Org, soql: &str) -> Vec<Value> {
    query(org, soql)
        .into_iter()
        .map(|r| r.get("Name").cloned().unwrap_or(Value::Null))
        .collect()
}

fn fails(org: &Org, soql: &str) -> ApiError {
    match org.query(soql, &QueryOptions::default()) {
        Ok(rows) => panic!("{soql} should fail, got {rows:?}"),
        Err(e) => e,
    }
}

/// The explanation after Salesforce's `ERROR at Row:..:Column:..` line.
fn explanation(e: &ApiError) -> &str {
    e.message().rsplit('\n').next().unwrap_or_default()
}

#[test]
fn an_unknown_column_is_invalid_field_with_salesforces_message() {
    let org = org();
    let e = fails(&org, "SELECT Id, Nmae FROM Account");
    assert_eq!(e.status, 400);
    assert_eq!(e.error_code(), "INVALID_FIELD");
    assert_eq!(
        e.message(),
        "\nSELECT Id, Nmae FROM Account\n           ^\nERROR at Row:1:Column:12\nNo such column 'Nmae' on entity 'Account'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name. Please reference your WSDL or the describe call for the appropriate names."
    );
    let e = fails(&org, "SELECT Account.Nmae FROM Contact");
    assert!(explanation(&e).starts_with("No such column 'Nmae' on entity 'Account'."));
    let e = fails(&org, "SELECT Id FROM Contact WHERE Acount.Name = 'x'");
    assert_eq!(e.error_code(), "INVALID_FIELD");
    assert!(explanation(&e).starts_with("Didn't understand relationship 'Acount' in field path."));
    let e = fails(&org, "SELECT Id FROM Contact ORDER BY LastName, Nope");
    assert_eq!(e.error_code(), "INVALID_FIELD");
    let e = fails(&org, "SELECT Id FROM Contact WHERE AccountId.Name = 'x'");
    assert!(explanation(&e).starts_with("Didn't understand relationship 'AccountId'"));
}

#[test]
fn an_unknown_sobject_is_invalid_type() {
    let e = fails(&org(), "SELECT Id FROM Acount");
    assert_eq!(e.error_code(), "INVALID_TYPE");
    assert_eq!(
        explanation(&e),
        "sObject type 'Acount' is not supported. If you are attempting to use a custom object, be sure to append the '__c' after the entity name. Please reference your WSDL or the describe call for the appropriate names."
    );
}

#[test]
fn an_unknown_child_relationship_is_invalid_type() {
    let e = fails(&org(), "SELECT Id, (SELECT Id FROM Contact) FROM Account");
    assert_eq!(e.error_code(), "INVALID_TYPE");
    assert_eq!(
        explanation(&e),
        "Didn't understand relationship 'Contact' in FROM part of query call. If you are attempting to use a custom relationship, be sure to append the '__r' after the custom relationship name. Please reference your WSDL or the describe call for the appropriate names."
    );
}

#[test]
fn a_malformed_id_literal_is_an_invalid_filter() {
    let org = org();
    for soql in [
        "SELECT Id FROM Account WHERE Id = '001xyz'",
        "SELECT Id FROM Contact WHERE AccountId IN ('001SB0000000001', 'nope')",
        "SELECT Id FROM Contact WHERE Account.ParentId != '001SB0000000001AAB'",
    ] {
        let e = fails(&org, soql);
        assert_eq!(e.error_code(), "INVALID_QUERY_FILTER_OPERATOR", "{soql}");
        assert!(explanation(&e).starts_with("invalid ID field: "), "{soql}");
    }
    let e = fails(&org, "SELECT Id FROM Account WHERE Id = '001xyz'");
    assert_eq!(explanation(&e), "invalid ID field: 001xyz");
}

#[test]
fn literals_must_match_the_field_type() {
    let org = org();
    let cases = [
        (
            "Name = 5",
            "value of filter criterion for field 'Name' must be of type string and should be enclosed in quotes",
        ),
        (
            "AnnualRevenue = '5'",
            "value of filter criterion for field 'AnnualRevenue' must be of type double and should not be enclosed in quotes",
        ),
        (
            "IsPartner__c = 'true'",
            "value of filter criterion for field 'IsPartner__c' must be of type boolean and should not be enclosed in quotes",
        ),
        (
            "Founded__c = 2026-11-01T00:00:00Z",
            "value of filter criterion for field 'Founded__c' must be of type date",
        ),
        (
            "Reviewed_At__c > 2026-11-01",
            "value of filter criterion for field 'Reviewed_At__c' must be of type dateTime",
        ),
        (
            "Id = 5",
            "value of filter criterion for field 'Id' must be of type id and should be enclosed in quotes",
        ),
    ];
    for (cond, message) in cases {
        let e = fails(&org, &format!("SELECT Id FROM Account WHERE {cond}"));
        assert_eq!(e.error_code(), "INVALID_FIELD", "{cond}");
        assert_eq!(explanation(&e), message, "{cond}");
    }
    let e = fails(&org, "SELECT Id FROM Account WHERE IsPartner__c > false");
    assert_eq!(e.error_code(), "INVALID_QUERY_FILTER_OPERATOR");
    let e = fails(&org, "SELECT Id FROM Account WHERE AnnualRevenue LIKE '1%'");
    assert_eq!(e.error_code(), "INVALID_QUERY_FILTER_OPERATOR");
}

#[test]
fn like_escapes_are_errors_outside_like() {
    let e = fails(&org(), r"SELECT Id FROM Account WHERE Name = '50\%'");
    assert_eq!(e.error_code(), "MALFORMED_QUERY");
    assert!(explanation(&e).contains(r"Illegal character sequence '\%'"));
}

#[test]
fn semi_joins_follow_salesforces_placement_rules() {
    let org = org();
    let e = fails(
        &org,
        "SELECT Id FROM Account WHERE Name = 'x' OR Id IN (SELECT AccountId FROM Contact)",
    );
    assert_eq!(e.error_code(), "MALFORMED_QUERY");
    assert_eq!(
        explanation(&e),
        "Semi join sub-selects are not allowed with the 'OR' operator"
    );
    let e = fails(
        &org,
        "SELECT Id FROM Account WHERE (NOT Id IN (SELECT AccountId FROM Contact))",
    );
    assert_eq!(e.error_code(), "MALFORMED_QUERY");
    let e = fails(
        &org,
        "SELECT Id FROM Account WHERE Name IN (SELECT AccountId FROM Contact)",
    );
    assert_eq!(e.error_code(), "MALFORMED_QUERY");
    let e = fails(
        &org,
        "SELECT Id FROM Account WHERE Id IN (SELECT Id FROM Contact)",
    );
    assert!(explanation(&e).contains("should point to the same object type"));
    assert_eq!(
        names(
            &org,
            "SELECT Name FROM Account WHERE Name != 'x' AND Id IN (SELECT AccountId FROM Contact)"
        ),
        [json!("Acme")]
    );
}

#[test]
fn duplicate_fields_and_large_offsets_are_rejected() {
    let org = org();
    let e = fails(&org, "SELECT Id, Name, name FROM Account");
    assert_eq!(e.error_code(), "MALFORMED_QUERY");
    assert_eq!(explanation(&e), "duplicate field selected: name");
    let e = fails(&org, "SELECT Id FROM Account OFFSET 2001");
    assert_eq!(e.error_code(), "NUMBER_OUTSIDE_VALID_RANGE");
    assert!(
        org.query(
            "SELECT Id FROM Account OFFSET 2000",
            &QueryOptions::default()
        )
        .is_ok()
    );
}

#[test]
fn names_are_case_insensitive_and_output_uses_schema_casing() {
    let org = org();
    let rows = query(
        &org,
        "select NAME, parent.name, annualrevenue from ACCOUNT where name = 'ACME JAPAN'",
    );
    let acme = org.id_of("Acme").unwrap();
    let japan = org.id_of("AcmeJapan").unwrap();
    assert_eq!(
        rows,
        [json!({
            "attributes": {"type": "Account", "url": format!("/services/data/v62.0/sobjects/Account/{japan}")},
            "Name": "acme japan",
            "Parent": {
                "attributes": {"type": "Account", "url": format!("/services/data/v62.0/sobjects/Account/{acme}")},
                "Name": "Acme"
            },
            "AnnualRevenue": 20
        })]
    );
    let keys: Vec<&String> = rows[0].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["attributes", "Name", "Parent", "AnnualRevenue"]);
}

#[test]
fn the_from_object_may_qualify_a_field() {
    assert_eq!(
        names(
            &org(),
            "SELECT Account.Name FROM Account WHERE Account.Name = 'Acme'"
        )
        .len(),
        1
    );
}

#[test]
fn comparisons_are_typed() {
    let org = org();
    assert_eq!(
        names(&org, "SELECT Name FROM Account WHERE AnnualRevenue > 100"),
        [json!("Acme")]
    );
    assert_eq!(
        names(
            &org,
            "SELECT Name FROM Account WHERE AnnualRevenue = 1000.50"
        ),
        [json!("Acme")]
    );
    assert_eq!(
        names(&org, "SELECT Name FROM Account WHERE AnnualRevenue <= 20"),
        [json!("acme japan")]
    );
    assert_eq!(
        names(
            &org,
            "SELECT Name FROM Account WHERE NumberOfEmployees >= 50.0"
        ),
        [json!("Acme")]
    );
    assert_eq!(
        names(
            &org,
            "SELECT Name FROM Account WHERE Founded__c < 2000-01-01"
        ),
        [json!("Acme")]
    );
    assert_eq!(
        names(
            &org,
            "SELECT Name FROM Account WHERE Reviewed_At__c = 2026-11-01T18:00:00+09:00"
        ),
        [json!("Acme")]
    );
    assert_eq!(
        names(
            &org,
            "SELECT Name FROM Account WHERE Reviewed_At__c > 2026-11-01T09:00:00.001Z"
        )
        .len(),
        0
    );
    // Text comparison ignores case.
    assert_eq!(
        names(
            &org,
            "SELECT Name FROM Account WHERE Name > 'ACME' ORDER BY Name"
        ),
        [json!("acme japan")]
    );
}

#[test]
fn null_semantics_match_soql() {
    let org = org();
    assert_eq!(
        names(&org, "SELECT Name FROM Account WHERE Name = null"),
        [Value::Null]
    );
    assert_eq!(
        names(&org, "SELECT Name FROM Account WHERE Name = ''"),
        [Value::Null]
    );
    assert_eq!(
        names(&org, "SELECT Name FROM Account WHERE Name != null").len(),
        2
    );
    // `!=` includes records where the field is null; ordering operators never match null.
    assert_eq!(
        names(&org, "SELECT Name FROM Account WHERE Name != 'Acme'"),
        [json!("acme japan"), Value::Null]
    );
    assert_eq!(
        names(
            &org,
            "SELECT Name FROM Account WHERE AnnualRevenue < 1000000"
        )
        .len(),
        2
    );
    assert_eq!(
        names(&org, "SELECT Name FROM Account WHERE Name NOT IN ('Acme')"),
        [json!("acme japan"), Value::Null]
    );
    assert_eq!(
        names(
            &org,
            "SELECT Name FROM Account WHERE Name IN ('Acme', null)"
        ),
        [json!("Acme"), Value::Null]
    );
    // A checkbox is never null: unset is false.
    assert_eq!(
        names(&org, "SELECT Name FROM Account WHERE IsPartner__c = false").len(),
        2
    );
    // A path through an empty lookup reads as null.
    assert_eq!(
        names(&org, "SELECT Name FROM Account WHERE Parent.Name = null").len(),
        2
    );
}

#[test]
fn not_and_or_combine_with_parentheses() {
    let org = org();
    assert_eq!(
        names(
            &org,
            "SELECT Name FROM Account WHERE (Name = 'Acme' OR Name = null) AND (NOT AnnualRevenue > 500)"
        ),
        [Value::Null]
    );
    assert_eq!(
        names(&org, "SELECT Name FROM Account WHERE NOT Name LIKE 'acme%'"),
        [Value::Null]
    );
}

#[test]
fn a_parent_path_through_an_empty_lookup_renders_null() {
    let org = org();
    let rows = query(
        &org,
        "SELECT Name, Parent.Name, Parent.Parent.Name FROM Account WHERE Name = 'Acme JAPAN'",
    );
    assert_eq!(rows[0]["Parent"]["Name"], json!("Acme"));
    assert_eq!(rows[0]["Parent"]["Parent"], Value::Null);
    let rows = query(&org, "SELECT Parent.Name FROM Account WHERE Name = 'Acme'");
    assert_eq!(rows[0]["Parent"], Value::Null);
}

#[test]
fn a_child_subquery_with_no_rows_is_null() {
    let org = org();
    let rows = query(
        &org,
        "SELECT Name, (SELECT LastName FROM Contacts), (SELECT Name FROM ChildAccounts) FROM Account ORDER BY Name NULLS LAST",
    );
    assert_eq!(rows[0]["Contacts"]["totalSize"], json!(1));
    assert_eq!(rows[0]["Contacts"]["done"], json!(true));
    assert_eq!(rows[0]["Contacts"]["records"][0]["LastName"], json!("Ito"));
    assert_eq!(
        rows[0]["ChildAccounts"]["records"][0]["Name"],
        json!("acme japan")
    );
    assert_eq!(rows[1]["Contacts"], Value::Null);
    assert_eq!(rows[2]["ChildAccounts"], Value::Null);
}

#[test]
fn deleted_records_are_seen_only_by_query_all() {
    let mut org = org();
    let blank = org.id_of("Blank").unwrap();
    org.delete(Some("Account"), blank.as_str()).unwrap();
    assert_eq!(names(&org, "SELECT Name FROM Account").len(), 2);
    let all = org
        .query(
            "SELECT Id, IsDeleted FROM Account WHERE IsDeleted = true",
            &QueryOptions {
                api_version: "62.0".into(),
                include_deleted: true,
            },
        )
        .unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0]["Id"], json!(blank.as_str()));
    assert!(org.get(blank.as_str()).is_none());
    assert!(org.is_deleted(blank.as_str()));
    let e = org.delete(None, blank.as_str()).unwrap_err();
    assert_eq!(e.error_code(), "ENTITY_IS_DELETED");
}

#[test]
fn the_api_version_appears_in_record_urls() {
    let org = org();
    let rows = org
        .query("SELECT Id FROM Contact", &QueryOptions::new("v58.0"))
        .unwrap();
    let ito = org.id_of("Ito").unwrap();
    assert_eq!(
        rows[0]["attributes"]["url"],
        json!(format!("/services/data/v58.0/sobjects/Contact/{ito}"))
    );
    assert_eq!(rows[0]["Id"], json!(ito.as_str()));
}

#[test]
fn fields_selects_the_standard_the_custom_or_all_fields_in_the_objects_order() {
    let org = org();
    let keys = |soql: &str| -> Vec<String> {
        let rows = query(&org, soql);
        rows[0]
            .as_object()
            .unwrap()
            .keys()
            .filter(|k| *k != "attributes")
            .cloned()
            .collect()
    };
    let custom = keys("SELECT FIELDS(CUSTOM) FROM Account WHERE Name = 'Acme' LIMIT 200");
    assert_eq!(custom, ["IsPartner__c", "Founded__c", "Reviewed_At__c"]);
    let standard = keys("select fields(standard) from account where Name = 'Acme'");
    assert!(standard.starts_with(&["Id".to_string(), "Name".into(), "ParentId".into()]));
    assert!(standard.contains(&"SystemModstamp".to_string()));
    assert!(!standard.iter().any(|k| k.ends_with("__c")));
    let all = keys("SELECT Fields(All) FROM Account WHERE Name = 'Acme' LIMIT 1");
    assert_eq!(all.len(), custom.len() + standard.len());
    // Mixed with named fields and in a subquery, which has its own LIMIT.
    let mixed = query(
        &org,
        "SELECT Name, FIELDS(CUSTOM), (SELECT FIELDS(ALL) FROM Contacts LIMIT 200) \
         FROM Account WHERE Name = 'Acme' LIMIT 200",
    );
    assert_eq!(mixed[0]["Founded__c"], json!("1999-04-01"));
    assert_eq!(mixed[0]["Contacts"]["records"][0]["LastName"], json!("Ito"));
}

#[test]
fn unbounded_fields_need_a_limit_of_at_most_200_and_no_field_twice() {
    let org = org();
    for soql in [
        "SELECT FIELDS(ALL) FROM Account",
        "SELECT FIELDS(CUSTOM) FROM Account LIMIT 201",
        "SELECT Name, (SELECT FIELDS(ALL) FROM Contacts) FROM Account LIMIT 10",
    ] {
        let e = fails(&org, soql);
        assert_eq!(e.error_code(), "MALFORMED_QUERY", "{soql}");
        assert!(
            explanation(&e).contains("LIMIT of at most 200"),
            "{soql}: {}",
            e.message()
        );
    }
    let e = fails(&org, "SELECT Id, FIELDS(STANDARD) FROM Account");
    assert_eq!(explanation(&e), "duplicate field selected: Id");
    let e = fails(&org, "SELECT FIELDS(EVERYTHING) FROM Account LIMIT 1");
    assert_eq!(e.error_code(), "MALFORMED_QUERY");
    // Not a function call: a field of that name.
    let e = fails(&org, "SELECT Fields FROM Account");
    assert_eq!(e.error_code(), "INVALID_FIELD");
    // A semi-join selects one field.
    let e = fails(
        &org,
        "SELECT Id FROM Account WHERE Id IN (SELECT FIELDS(ALL) FROM Contact)",
    );
    assert_eq!(e.error_code(), "MALFORMED_QUERY");
}

fn last_names(rows: Vec<Value>) -> Vec<String> {
    rows.iter()
        .map(|r| r["LastName"].as_str().unwrap_or("null").to_string())
        .collect()
}

#[test]
fn lookup_filters_and_child_subqueries_follow_inserts_updates_and_deletes() {
    let mut org = org();
    let acme = org.id_of("Acme").unwrap();
    let japan = org.id_of("AcmeJapan").unwrap();
    let contact = |last: &str, account: &str| {
        json!({"LastName": last, "AccountId": account})
            .as_object()
            .unwrap()
            .clone()
    };
    let sato = org
        .insert("Contact", &contact("Sato", acme.as_str()))
        .unwrap();
    let kato = org
        .insert("Contact", &contact("Kato", acme.to_15()))
        .unwrap();
    let mori = org
        .insert("Contact", &contact("Mori", japan.as_str()))
        .unwrap();
    let moved = json!({"AccountId": japan.as_str()});
    org.update(None, sato.as_str(), moved.as_object().unwrap())
        .unwrap();
    org.delete(None, kato.as_str()).unwrap();

    let by_account = |org: &Org, id: &str| {
        last_names(query(
            org,
            &format!("SELECT LastName FROM Contact WHERE AccountId = '{id}'"),
        ))
    };
    assert_eq!(by_account(&org, acme.as_str()), ["Ito"]);
    assert_eq!(by_account(&org, acme.to_15()), ["Ito"]);
    assert_eq!(by_account(&org, japan.as_str()), ["Sato", "Mori"]);
    let all = QueryOptions {
        include_deleted: true,
        ..QueryOptions::default()
    };
    let soql = format!("SELECT LastName FROM Contact WHERE AccountId = '{acme}'");
    assert_eq!(last_names(org.query(&soql, &all).unwrap()), ["Ito", "Kato"]);

    // Through a parent path, in an OR of lookups, and by Id: rows keep insertion order.
    let soql = format!("SELECT LastName FROM Contact WHERE Account.ParentId = '{acme}'");
    assert_eq!(last_names(query(&org, &soql)), ["Sato", "Mori"]);
    let soql =
        format!("SELECT LastName FROM Contact WHERE AccountId = '{japan}' OR AccountId = '{acme}'");
    assert_eq!(last_names(query(&org, &soql)), ["Ito", "Sato", "Mori"]);
    let soql =
        format!("SELECT LastName FROM Contact WHERE AccountId = '{acme}' OR LastName = 'Mori'");
    assert_eq!(last_names(query(&org, &soql)), ["Ito", "Mori"]);
    let soql = format!("SELECT LastName FROM Contact WHERE Id IN ('{mori}', '{sato}', '{kato}')");
    assert_eq!(last_names(query(&org, &soql)), ["Sato", "Mori"]);
    let soql = format!("SELECT LastName FROM Contact WHERE Id = '{acme}'");
    assert!(query(&org, &soql).is_empty());
    let soql = format!(
        "SELECT LastName FROM Contact WHERE AccountId IN (SELECT Id FROM Account WHERE ParentId = '{acme}')"
    );
    assert_eq!(last_names(query(&org, &soql)), ["Sato", "Mori"]);

    let soql = "SELECT Name, (SELECT LastName FROM Contacts) FROM Account WHERE Name != null";
    let children: Vec<Vec<String>> = query(&org, soql)
        .into_iter()
        .map(|r| match r["Contacts"]["records"].as_array() {
            Some(rows) => last_names(rows.clone()),
            None => Vec::new(),
        })
        .collect();
    assert_eq!(children, [vec!["Ito"], vec!["Sato", "Mori"]]);
}
