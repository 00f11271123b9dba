//! Loading `sf data export tree` documents:
//! `{"records": [{"attributes": {"type": "Account", "referenceId": "Acme"}, "Name": "Acme",
//!   "Contacts": {"records": [...]}}]}`.
//!
//! Loading is two-pass so `@referenceId` values may point to records in any document, before or
//! after: the first pass flattens the trees and assigns Ids, the second resolves references and
//! checks values. Nothing is stored unless every record is valid.

use std::collections::HashMap;

use dealbridge::salesforce::SfId;
use serde_json::Value;

use crate::error::LoadError;
use crate::org::{Org, Record, blank_record};
use crate::schema::{FieldType, SObject, SYSTEM_DATETIME_FIELDS};
use crate::value::{self, Mode};

/// A record seen in the first pass.
struct Pending {
    sobject: String,
    id: SfId,
    /// How messages name the record: its referenceId, or its type and position.
    name: String,
    reference_id: Option<String>,
    values: Vec<(String, Value)>,
    /// The lookup field pointing at the record this one is nested under.
    parent_link: Option<(String, SfId)>,
}

#[derive(Default)]
struct Stage {
    pending: Vec<Pending>,
    /// 15-character Id → sObject, for records in this load.
    ids: HashMap<String, String>,
    refs: HashMap<String, SfId>,
    counts: HashMap<String, usize>,
}

fn err(message: impl Into<String>) -> LoadError {
    LoadError::Data(message.into())
}

/// Loads the documents into `org`, all or nothing.
pub(crate) fn load_trees(org: &mut Org, docs: &[&Value]) -> Result<(), LoadError> {
    let mut stage = Stage::default();
    for (n, doc) in docs.iter().enumerate() {
        let records = doc
            .get("records")
            .and_then(Value::as_array)
            .ok_or_else(|| err(format!("document {} has no \"records\" list", n + 1)))?;
        for record in records {
            flatten(org, &mut stage, record, None)?;
        }
    }
    let mut built = Vec::with_capacity(stage.pending.len());
    for pending in &stage.pending {
        built.push(build(org, &stage, pending)?);
    }
    for (pending, record) in stage.pending.iter().zip(built) {
        if let Some(reference_id) = &pending.reference_id {
            org.add_reference(reference_id.clone(), pending.id.clone());
        }
        org.store(record);
    }
    Ok(())
}

/// First pass: checks the record's type and field names, assigns its Id and recurses into nested
/// child records.
fn flatten(
    org: &Org,
    stage: &mut Stage,
    json: &Value,
    parent: Option<(&str, String, SfId)>,
) -> Result<(), LoadError> {
    let obj = json
        .as_object()
        .ok_or_else(|| err(format!("a record must be a JSON object, got {json}")))?;
    let attributes = obj.get("attributes");
    let type_name = attributes
        .and_then(|a| a.get("type"))
        .and_then(Value::as_str)
        .ok_or_else(|| err(format!("a record needs attributes.type: {json}")))?;
    let so = org
        .schema()
        .sobject(type_name)
        .ok_or_else(|| err(format!("unknown sObject type {type_name}")))?;
    if let Some((expected, _, _)) = &parent
        && so.name != *expected
    {
        return Err(err(format!(
            "a {} record is nested where {expected} records belong",
            so.name
        )));
    }
    let reference_id = match attributes.and_then(|a| a.get("referenceId")) {
        None => None,
        Some(Value::String(r)) => Some(r.clone()),
        Some(other) => return Err(err(format!("referenceId must be a string, got {other}"))),
    };
    let position = stage.counts.get(&so.name).copied().unwrap_or(0);
    let name = reference_id
        .clone()
        .unwrap_or_else(|| format!("{} #{}", so.name, org.count(&so.name) + position + 1));

    let id = match obj.iter().find(|(k, _)| k.eq_ignore_ascii_case("Id")) {
        Some((_, Value::String(raw))) => {
            let id = SfId::parse_exact(raw)
                .map_err(|e| err(format!("{name}: Id {raw} is not a Salesforce Id: {e}")))?;
            if id.key_prefix() != so.key_prefix {
                return Err(err(format!(
                    "{name}: Id {raw} does not start with {}'s key prefix {}",
                    so.name, so.key_prefix
                )));
            }
            id
        }
        Some((_, other)) => return Err(err(format!("{name}: Id must be a string, got {other}"))),
        None => org
            .generate_id(so, position, &stage.ids)
            .ok_or_else(|| err(format!("{name}: no Id left to generate for {}", so.name)))?,
    };
    if org.contains(&id) || stage.ids.contains_key(id.to_15()) {
        return Err(err(format!("{name}: Id {id} is used by another record")));
    }
    stage.ids.insert(id.to_15().to_string(), so.name.clone());
    *stage.counts.entry(so.name.clone()).or_default() += 1;
    if let Some(r) = &reference_id {
        if org.reference(r).is_some() || stage.refs.contains_key(r) {
            return Err(err(format!("referenceId {r} is used twice")));
        }
        stage.refs.insert(r.clone(), id.clone());
    }

    let mut values = Vec::new();
    let mut children: Vec<(&str, String, &Vec<Value>)> = Vec::new();
    for (key, v) in obj {
        if key == "attributes" || key.eq_ignore_ascii_case("Id") {
            continue;
        }
        if let Some(rel) = so.child_relationship(key)
            && let Some(nested) = v.get("records").and_then(Value::as_array)
        {
            children.push((rel.child_sobject.as_str(), rel.field.clone(), nested));
            continue;
        }
        let field = so
            .field(key)
            .ok_or_else(|| err(format!("{name}: {} has no field {key}", so.name)))?;
        values.push((field.name.clone(), v.clone()));
    }
    stage.pending.push(Pending {
        sobject: so.name.clone(),
        id: id.clone(),
        name,
        reference_id,
        values,
        parent_link: parent.map(|(_, field, parent_id)| (field, parent_id)),
    });
    for (child_type, field, nested) in children {
        for child in nested {
            flatten(
                org,
                stage,
                child,
                Some((child_type, field.clone(), id.clone())),
            )?;
        }
    }
    Ok(())
}

/// Second pass: resolves `@` references, checks and normalises values, fills system fields.
fn build(org: &Org, stage: &Stage, pending: &Pending) -> Result<Record, LoadError> {
    let so = org
        .schema()
        .sobject(&pending.sobject)
        .ok_or_else(|| err(format!("unknown sObject type {}", pending.sobject)))?;
    let name = &pending.name;
    let mut fields = blank_record(so, &pending.id);
    for (field_name, raw) in &pending.values {
        let field = so
            .field(field_name)
            .ok_or_else(|| err(format!("{name}: {} has no field {field_name}", so.name)))?;
        let at = || format!("{name}: {}.{}", so.name, field.name);
        let raw = match raw {
            Value::String(s) if s.starts_with('@') => {
                let target = &s[1..];
                let id = stage
                    .refs
                    .get(target)
                    .or_else(|| org.reference(target))
                    .ok_or_else(|| err(format!("{}: unknown reference {s}", at())))?;
                Value::String(id.as_str().to_string())
            }
            other => other.clone(),
        };
        let v = value::coerce(field, &raw, Mode::Load).map_err(|e| {
            err(format!(
                "{}: {raw} does not fit a {} field ({})",
                at(),
                field.field_type.as_str(),
                e.parser_message(&field.name)
            ))
        })?;
        if !value::picklist_allows(field, &v) {
            return Err(err(format!(
                "{}: {v} is not a value of the restricted picklist",
                at()
            )));
        }
        if field.field_type == FieldType::Reference {
            check_lookup(org, stage, so, field_name, &v)
                .map_err(|m| err(format!("{}: {m}", at())))?;
        }
        fields.insert(field.name.clone(), v);
    }
    if let Some((field, parent_id)) = &pending.parent_link {
        fields.insert(field.clone(), Value::String(parent_id.as_str().to_string()));
    }
    let stamp = Value::String(value::format_datetime(org.now()));
    for system in SYSTEM_DATETIME_FIELDS {
        if fields.get(system).is_none_or(Value::is_null) {
            fields.insert(system.to_string(), stamp.clone());
        }
    }
    let deleted = fields.get("IsDeleted") == Some(&Value::Bool(true));
    Ok(Record {
        sobject: so.name.clone(),
        id: pending.id.clone(),
        fields,
        deleted,
    })
}

/// A lookup must name a record of the type it points to, loaded now or before.
fn check_lookup(
    org: &Org,
    stage: &Stage,
    so: &SObject,
    field_name: &str,
    v: &Value,
) -> Result<(), String> {
    let Some(raw) = v.as_str() else {
        return Ok(());
    };
    let target = so
        .field(field_name)
        .and_then(|f| f.reference_to.clone())
        .unwrap_or_default();
    let id = SfId::parse_exact(raw).map_err(|e| e.to_string())?;
    let found = stage
        .ids
        .get(id.to_15())
        .cloned()
        .or_else(|| org.record(&id).map(|r| r.sobject.clone()));
    match found {
        Some(t) if t == target => Ok(()),
        Some(t) => Err(format!("{raw} is a {t}, not a {target}")),
        None => Err(format!("no {target} record has Id {raw}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({"sobjects": {
            "Account": {"keyPrefix": "001", "fields": {
                "Name": {"type": "string"},
                "Tier__c": {"type": "picklist", "picklistValues": ["Gold", "Silver"], "restricted": true}
            }, "childRelationships": {
                "Contacts": {"childSObject": "Contact", "field": "AccountId"}
            }},
            "Contact": {"keyPrefix": "003", "fields": {
                "LastName": {"type": "string"},
                "Email": {"type": "email"},
                "AccountId": {"type": "reference", "referenceTo": "Account"},
                "Birthdate": {"type": "date"},
                "Score__c": {"type": "double"}
            }}
        }})
    }

    #[test]
    fn nested_children_get_their_parents_id_and_ids_are_generated_in_load_order() {
        let tree = json!({"records": [
            {"attributes": {"type": "Account", "referenceId": "Acme"}, "Name": "Acme",
             "Contacts": {"records": [
                 {"attributes": {"type": "Contact", "referenceId": "Ito"}, "LastName": "Ito"},
                 {"attributes": {"type": "Contact", "referenceId": "Sato"}, "LastName": "Sato"}
             ]}},
            {"attributes": {"type": "Account", "referenceId": "Globex"}, "Name": "Globex"}
        ]});
        let org = Org::from_json(&schema(), &[tree]).unwrap();
        let acme = org.id_of("Acme").unwrap();
        assert_eq!(acme.to_15(), "001SB0000000001");
        assert_eq!(org.id_of("@Globex").unwrap().to_15(), "001SB0000000002");
        assert_eq!(org.id_of("Sato").unwrap().to_15(), "003SB0000000002");
        let ito = org.get(org.id_of("Ito").unwrap().as_str()).unwrap();
        assert_eq!(ito["AccountId"], json!(acme.as_str()));
        assert_eq!(ito["Email"], Value::Null);
        assert_eq!(ito["IsDeleted"], json!(false));
        let names: Vec<&Value> = org
            .records("contact")
            .iter()
            .map(|r| &r["LastName"])
            .collect();
        assert_eq!(names, [&json!("Ito"), &json!("Sato")]);
    }

    #[test]
    fn references_resolve_across_documents_in_either_order() {
        let contacts = json!({"records": [
            {"attributes": {"type": "Contact", "referenceId": "Ito"}, "LastName": "Ito",
             "AccountId": "@Acme"}
        ]});
        let accounts = json!({"records": [
            {"attributes": {"type": "Account", "referenceId": "Acme"}, "Name": "Acme"}
        ]});
        let org = Org::from_json(&schema(), &[contacts, accounts]).unwrap();
        let ito = org.get(org.id_of("Ito").unwrap().as_str()).unwrap();
        assert_eq!(ito["AccountId"], json!(org.id_of("Acme").unwrap().as_str()));
    }

    #[test]
    fn an_unknown_reference_is_a_load_error_naming_it() {
        let tree = json!({"records": [
            {"attributes": {"type": "Contact", "referenceId": "Ito"}, "AccountId": "@Nobody"}
        ]});
        let e = Org::from_json(&schema(), &[tree]).unwrap_err().to_string();
        assert!(e.contains("unknown reference @Nobody"), "{e}");
        assert!(e.contains("Contact.AccountId"), "{e}");
    }

    #[test]
    fn an_unknown_field_is_a_load_error_naming_sobject_and_field() {
        let tree = json!({"records": [
            {"attributes": {"type": "Contact", "referenceId": "Ito"}, "Nickname__c": "I"}
        ]});
        let e = Org::from_json(&schema(), &[tree]).unwrap_err().to_string();
        assert!(e.contains("Contact has no field Nickname__c"), "{e}");
    }

    #[test]
    fn values_are_type_checked() {
        for (field, value) in [
            ("Score__c", json!("12")),
            ("Birthdate", json!("12/01/2026")),
            ("LastName", json!(12)),
        ] {
            let mut rec = json!({"attributes": {"type": "Contact"}});
            rec[field] = value;
            let e = Org::from_json(&schema(), &[json!({"records": [rec]})]);
            assert!(e.is_err(), "{field}");
        }
        let bad_tier = json!({"records": [
            {"attributes": {"type": "Account"}, "Name": "A", "Tier__c": "Bronze"}
        ]});
        assert!(Org::from_json(&schema(), &[bad_tier]).is_err());
    }

    #[test]
    fn explicit_ids_are_validated_and_normalised() {
        let tree = json!({"records": [
            {"attributes": {"type": "Account", "referenceId": "A"}, "Id": "001A000010khO8J"},
            {"attributes": {"type": "Account", "referenceId": "B"}, "Name": "B"}
        ]});
        let org = Org::from_json(&schema(), &[tree]).unwrap();
        assert_eq!(org.id_of("A").unwrap().as_str(), "001A000010khO8JIAU");
        assert!(org.get("001A000010khO8JIAU").is_some());
        assert_eq!(org.id_of("B").unwrap().to_15(), "001SB0000000002");

        for bad in ["001A000010khO8JAAA", "003A000010khO8J", "xyz"] {
            let tree = json!({"records": [{"attributes": {"type": "Account"}, "Id": bad}]});
            assert!(Org::from_json(&schema(), &[tree]).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_lookup_must_point_at_a_record_of_the_right_type() {
        let tree = json!({"records": [
            {"attributes": {"type": "Contact", "referenceId": "Ito"}, "LastName": "Ito"},
            {"attributes": {"type": "Contact", "referenceId": "Sato"}, "AccountId": "@Ito"}
        ]});
        let e = Org::from_json(&schema(), &[tree]).unwrap_err().to_string();
        assert!(e.contains("is a Contact, not a Account"), "{e}");
    }

    #[test]
    fn a_failed_load_adds_nothing() {
        let mut org = Org::from_json(&schema(), &[]).unwrap();
        let tree = json!({"records": [
            {"attributes": {"type": "Account", "referenceId": "Acme"}, "Name": "Acme"},
            {"attributes": {"type": "Account"}, "Name": 5}
        ]});
        assert!(org.add_tree(&tree).is_err());
        assert!(org.records("Account").is_empty());
        assert!(org.id_of("Acme").is_none());
        let ok = json!({"records": [{"attributes": {"type": "Account", "referenceId": "Acme"}}]});
        org.add_tree(&ok).unwrap();
        assert_eq!(org.id_of("Acme").unwrap().to_15(), "001SB0000000001");
    }

    #[test]
    fn system_fields_come_from_the_clock_unless_given() {
        let mut org = Org::new(crate::Schema::from_json(&schema()).unwrap());
        let t = chrono::DateTime::parse_from_rfc3339("2026-11-01T09:00:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        org.set_clock(t);
        org.add_tree(&json!({"records": [
            {"attributes": {"type": "Account", "referenceId": "A"},
             "CreatedDate": "2025-01-02T03:04:05Z"}
        ]}))
        .unwrap();
        let a = org.get(org.id_of("A").unwrap().as_str()).unwrap();
        assert_eq!(a["CreatedDate"], json!("2025-01-02T03:04:05.000+0000"));
        assert_eq!(a["LastModifiedDate"], json!("2026-11-01T09:00:00.000+0000"));
        assert_eq!(a["SystemModstamp"], json!("2026-11-01T09:00:00.000+0000"));
    }
}
