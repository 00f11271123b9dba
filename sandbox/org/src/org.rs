//! The org: records by Id, per-sObject load order, and the REST write operations (update, insert,
//! delete) with the errors Salesforce gives.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use dealbridge::salesforce::SfId;
use serde_json::{Map, Value};

use crate::error::{ApiError, LoadError, SfError};
use crate::load;
use crate::lookups::Lookups;
use crate::schema::{FieldType, SObject, SYSTEM_DATETIME_FIELDS, Schema};
use crate::soql;
use crate::value::{self, Mode, ValueError};

/// Options of one query call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryOptions {
    /// The API version of the request path, e.g. `"62.0"`; used in `attributes.url`.
    pub api_version: String,
    /// `queryAll`: include deleted records.
    pub include_deleted: bool,
}

impl QueryOptions {
    pub fn new(api_version: &str) -> QueryOptions {
        QueryOptions {
            api_version: api_version.trim_start_matches(['v', 'V']).to_string(),
            include_deleted: false,
        }
    }
}

impl Default for QueryOptions {
    fn default() -> Self {
        QueryOptions::new("62.0")
    }
}

/// One stored record.
#[derive(Debug, Clone)]
pub(crate) struct Record {
    pub(crate) sobject: String,
    pub(crate) id: SfId,
    pub(crate) fields: Map<String, Value>,
    pub(crate) deleted: bool,
}

/// An in-memory Salesforce org.
#[derive(Debug, Clone)]
pub struct Org {
    schema: Schema,
    /// Keyed by the case-sensitive 15-character Id.
    records: HashMap<String, Record>,
    /// Per sObject (canonical name), the 15-character Ids in insertion order.
    order: HashMap<String, Vec<String>>,
    /// Each record's place in its sObject's insertion order.
    position: HashMap<String, usize>,
    /// The records each lookup value points at.
    lookups: Lookups,
    references: HashMap<String, SfId>,
    clock: Option<DateTime<Utc>>,
}

/// Whether a write creates or updates a record.
#[derive(Debug, Clone, Copy)]
enum Write<'a> {
    Create,
    Update(&'a SfId),
}

impl Org {
    /// An empty org.
    pub fn new(schema: Schema) -> Org {
        Org {
            schema,
            records: HashMap::new(),
            order: HashMap::new(),
            position: HashMap::new(),
            lookups: Lookups::default(),
            references: HashMap::new(),
            clock: None,
        }
    }

    /// Builds an org from a parsed schema and export-tree documents; references between documents
    /// may point either way.
    pub fn from_json(schema: &Value, data: &[Value]) -> Result<Org, LoadError> {
        let mut org = Org::new(Schema::from_json(schema)?);
        let docs: Vec<&Value> = data.iter().collect();
        load::load_trees(&mut org, &docs)?;
        Ok(org)
    }

    /// Reads the schema and export-tree files and builds the org.
    pub fn from_files(schema: &Path, data: &[PathBuf]) -> Result<Org, LoadError> {
        let schema = read_json(schema)?;
        let data = data
            .iter()
            .map(|p| read_json(p))
            .collect::<Result<Vec<_>, _>>()?;
        Org::from_json(&schema, &data)
    }

    /// Loads one more export-tree document. Nothing is added if it fails.
    pub fn add_tree(&mut self, export_tree: &Value) -> Result<(), LoadError> {
        load::load_trees(self, &[export_tree])
    }

    /// Fixes the time the org writes into CreatedDate, LastModifiedDate and SystemModstamp. Until
    /// it is set, the current time is used.
    pub fn set_clock(&mut self, now: DateTime<Utc>) {
        self.clock = Some(now);
    }

    /// The time system fields are set to.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.unwrap_or_else(Utc::now)
    }

    /// The Id of the record loaded with `referenceId` (with or without the leading `@`).
    pub fn id_of(&self, reference_id: &str) -> Option<SfId> {
        self.references
            .get(reference_id.trim_start_matches('@'))
            .cloned()
    }

    /// The `referenceId` a record was loaded with, if it had one.
    pub fn reference_of(&self, id: &SfId) -> Option<&str> {
        self.references
            .iter()
            .find(|(_, v)| v.same_record(id))
            .map(|(k, _)| k.as_str())
    }

    /// The sObject type of a record Id (15 or 18 characters): the record's type if it exists,
    /// otherwise the type whose key prefix the Id carries.
    pub fn sobject_of(&self, id: &str) -> Option<&str> {
        let id = SfId::parse_exact(id).ok()?;
        if let Some(rec) = self.records.get(id.to_15()) {
            return Some(&rec.sobject);
        }
        self.schema
            .sobject_by_prefix(id.key_prefix())
            .map(|s| s.name.as_str())
    }

    /// A live record's fields (every schema field, null when unset), by 15- or 18-character Id.
    pub fn get(&self, id: &str) -> Option<&Map<String, Value>> {
        let id = SfId::parse_exact(id).ok()?;
        self.records
            .get(id.to_15())
            .filter(|r| !r.deleted)
            .map(|r| &r.fields)
    }

    /// True when the record exists in the recycle bin.
    pub fn is_deleted(&self, id: &str) -> bool {
        SfId::parse_exact(id)
            .ok()
            .and_then(|id| self.records.get(id.to_15()))
            .is_some_and(|r| r.deleted)
    }

    /// The live records of an sObject, in insertion order.
    pub fn records(&self, sobject: &str) -> Vec<&Map<String, Value>> {
        self.all_records(sobject)
            .filter(|r| !r.deleted)
            .map(|r| &r.fields)
            .collect()
    }

    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// Runs a SOQL query and returns every matching row as the REST API renders it.
    pub fn query(&self, soql: &str, opts: &QueryOptions) -> Result<Vec<Value>, ApiError> {
        soql::run(self, soql, opts)
    }

    /// `PATCH /sobjects/{sobject}/{id}`. Nothing is written if any field is invalid.
    pub fn update(
        &mut self,
        sobject: Option<&str>,
        id: &str,
        fields: &Map<String, Value>,
    ) -> Result<(), ApiError> {
        let sfid = self.live_record(sobject, id)?;
        let record_type = self
            .records
            .get(sfid.to_15())
            .map(|r| r.sobject.clone())
            .ok_or_else(ApiError::not_found)?;
        let so = self
            .schema
            .sobject(&record_type)
            .ok_or_else(ApiError::not_found)?;
        let changes = self.check_write(so, fields, Write::Update(&sfid))?;
        let stamp = Value::String(value::format_datetime(self.now()));
        let record = self
            .records
            .get_mut(sfid.to_15())
            .ok_or_else(ApiError::not_found)?;
        for (name, v) in changes {
            if so
                .field(&name)
                .is_some_and(|f| f.field_type == FieldType::Reference)
            {
                let old = record.fields.get(&name).unwrap_or(&Value::Null);
                self.lookups.remove(&so.name, &name, old, sfid.to_15());
                self.lookups.add(&so.name, &name, &v, sfid.to_15());
            }
            record.fields.insert(name, v);
        }
        record
            .fields
            .insert("LastModifiedDate".to_string(), stamp.clone());
        record.fields.insert("SystemModstamp".to_string(), stamp);
        Ok(())
    }

    /// `POST /sobjects/{sobject}`: creates a record and returns its Id.
    pub fn insert(&mut self, sobject: &str, fields: &Map<String, Value>) -> Result<SfId, ApiError> {
        let so = self
            .schema
            .sobject(sobject)
            .ok_or_else(ApiError::not_found)?;
        let changes = self.check_write(so, fields, Write::Create)?;
        let id = self
            .generate_id(so, 0, &HashMap::new())
            .ok_or_else(|| ApiError::new(500, "UNKNOWN_EXCEPTION", "no Id left to assign"))?;
        let mut record = blank_record(so, &id);
        for (name, v) in changes {
            record.insert(name, v);
        }
        let stamp = Value::String(value::format_datetime(self.now()));
        for system in SYSTEM_DATETIME_FIELDS {
            record.insert(system.to_string(), stamp.clone());
        }
        let name = so.name.clone();
        self.store(Record {
            sobject: name,
            id: id.clone(),
            fields: record,
            deleted: false,
        });
        Ok(id)
    }

    /// One record of `PATCH /composite/sobjects/{sobject}/{key_field}`: updates the live record
    /// whose External ID `key_field` holds the record's value of it, or creates one with it.
    /// Returns the record's Id and whether it was created.
    ///
    /// ASSUMED (lifecycle.md §5.1 leaves the codes unconfirmed): a key field that is not an
    /// External ID is `INVALID_FIELD` for the whole call (the caller's check); a record without a
    /// value for the key is `MISSING_ARGUMENT`; a value matching several records is
    /// `DUPLICATE_EXTERNAL_ID`. Text keys match case-insensitively, as Salesforce's
    /// non-case-sensitive External IDs do. Upserting by `Id` is not supported here.
    pub fn upsert(
        &mut self,
        sobject: &str,
        key_field: &str,
        fields: &Map<String, Value>,
    ) -> Result<(SfId, bool), ApiError> {
        let (canonical, key) = self.external_key(sobject, key_field)?;
        let value = fields
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(&key))
            .map(|(_, v)| v)
            .filter(|v| !v.is_null() && v.as_str() != Some(""))
            .ok_or_else(|| {
                ApiError::with_fields(
                    400,
                    "MISSING_ARGUMENT",
                    format!("{key} not specified"),
                    vec![key.clone()],
                )
            })?;
        let wanted = key_text(value);
        let matches: Vec<SfId> = self
            .all_records(&canonical)
            .filter(|r| !r.deleted)
            .filter(|r| r.fields.get(&key).map(key_text) == Some(wanted.clone()))
            .map(|r| r.id.clone())
            .collect();
        match matches.as_slice() {
            [] => self.insert(&canonical, fields).map(|id| (id, true)),
            [one] => {
                let changes: Map<String, Value> = fields
                    .iter()
                    .filter(|(k, _)| !k.eq_ignore_ascii_case(&key))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                self.update(Some(&canonical), one.as_str(), &changes)?;
                Ok((one.clone(), false))
            }
            several => Err(ApiError::with_fields(
                300,
                "DUPLICATE_EXTERNAL_ID",
                format!(
                    "{key}: more than one record found for external id field: [{}]",
                    several
                        .iter()
                        .map(SfId::as_str)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                vec![key.clone()],
            )),
        }
    }

    /// The canonical names of `sobject` and of its External ID field `key_field`.
    pub fn external_key(
        &self,
        sobject: &str,
        key_field: &str,
    ) -> Result<(String, String), ApiError> {
        let so = self
            .schema
            .sobject(sobject)
            .ok_or_else(ApiError::not_found)?;
        match so.field(key_field) {
            Some(f) if f.external_id => Ok((so.name.clone(), f.name.clone())),
            _ => Err(ApiError::new(
                400,
                "INVALID_FIELD",
                format!(
                    "Provided external ID field does not exist or is not accessible: {key_field}"
                ),
            )),
        }
    }

    /// `DELETE /sobjects/{sobject}/{id}`: moves the record to the recycle bin, where only
    /// `queryAll` sees it.
    pub fn delete(&mut self, sobject: Option<&str>, id: &str) -> Result<(), ApiError> {
        let sfid = self.live_record(sobject, id)?;
        let stamp = Value::String(value::format_datetime(self.now()));
        let record = self
            .records
            .get_mut(sfid.to_15())
            .ok_or_else(ApiError::not_found)?;
        record.deleted = true;
        record
            .fields
            .insert("IsDeleted".to_string(), Value::Bool(true));
        record.fields.insert("SystemModstamp".to_string(), stamp);
        Ok(())
    }

    /// Validates the Id of a record the caller wants to change and finds it.
    fn live_record(&self, sobject: Option<&str>, id: &str) -> Result<SfId, ApiError> {
        let sfid = SfId::parse_exact(id).map_err(|_| ApiError::malformed_id(id))?;
        let record = self
            .records
            .get(sfid.to_15())
            .ok_or_else(ApiError::not_found)?;
        if let Some(expected) = sobject
            && !expected.eq_ignore_ascii_case(&record.sobject)
        {
            return Err(ApiError::not_found());
        }
        if record.deleted {
            return Err(ApiError::new(404, "ENTITY_IS_DELETED", "entity is deleted"));
        }
        Ok(sfid)
    }

    /// Checks a REST body against the schema and returns the values to store, canonical names
    /// first. Reading errors (unknown field, wrong JSON type) stop at the first; the remaining
    /// checks report every problem at once.
    fn check_write(
        &self,
        so: &SObject,
        body: &Map<String, Value>,
        write: Write<'_>,
    ) -> Result<Vec<(String, Value)>, ApiError> {
        let mut changes: Vec<(String, Value)> = Vec::new();
        let mut not_writable: Vec<String> = Vec::new();
        let mut errors: Vec<SfError> = Vec::new();
        for (key, raw) in body {
            if key == "attributes" {
                continue;
            }
            let field = so.field(key).ok_or_else(|| {
                ApiError::new(
                    400,
                    "INVALID_FIELD",
                    format!("No such column '{key}' on sobject of type {}", so.name),
                )
            })?;
            if field.field_type == FieldType::Id {
                let matches = match (write, raw.as_str().map(SfId::parse_exact)) {
                    (Write::Update(id), Some(Ok(given))) => given.same_record(id),
                    _ => false,
                };
                if matches {
                    continue;
                }
                return Err(ApiError::new(
                    400,
                    "INVALID_FIELD",
                    "The Id field should not be specified in the sobject data.",
                ));
            }
            let v = value::coerce(field, raw, Mode::Api).map_err(|e| match &e {
                ValueError::Type { .. } => ApiError::with_fields(
                    400,
                    "JSON_PARSER_ERROR",
                    e.parser_message(&field.name),
                    vec![field.name.clone()],
                ),
                ValueError::MalformedId(v) => ApiError::with_fields(
                    400,
                    "MALFORMED_ID",
                    format!("{}: id value of incorrect type: {v}", field.label),
                    vec![field.name.clone()],
                ),
            })?;
            let writable = match write {
                Write::Create => field.createable,
                Write::Update(_) => field.updateable,
            };
            if !writable {
                if !not_writable.contains(&field.name) {
                    not_writable.push(field.name.clone());
                }
                continue;
            }
            if !value::picklist_allows(field, &v) {
                errors.push(SfError {
                    message: format!(
                        "{}: bad value for restricted picklist field: {}",
                        field.label,
                        v.as_str().unwrap_or_default()
                    ),
                    error_code: "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST".to_string(),
                    fields: vec![field.name.clone()],
                });
            }
            if field.field_type == FieldType::Reference
                && let (Some(target), Some(raw_id)) = (&field.reference_to, v.as_str())
                && let Some(e) = self.check_lookup(&field.name, &field.label, target, raw_id)
            {
                errors.push(e);
            }
            changes.retain(|(n, _)| n != &field.name);
            changes.push((field.name.clone(), v));
        }
        if matches!(write, Write::Create) {
            let missing: Vec<String> = so
                .fields()
                .iter()
                .filter(|f| !f.nillable && f.createable && f.field_type != FieldType::Boolean)
                .filter(|f| {
                    !changes
                        .iter()
                        .any(|(n, v)| n == &f.name && !v.is_null() && v.as_str() != Some(""))
                })
                .map(|f| f.name.clone())
                .collect();
            if !missing.is_empty() {
                errors.push(SfError {
                    message: format!("Required fields are missing: [{}]", missing.join(", ")),
                    error_code: "REQUIRED_FIELD_MISSING".to_string(),
                    fields: missing,
                });
            }
        }
        if !not_writable.is_empty() {
            errors.insert(
                0,
                SfError {
                    message: format!(
                        "Unable to create/update fields: {}. Please check the security settings of this field and verify that it is read/write for your profile or permission set.",
                        not_writable.join(", ")
                    ),
                    error_code: "INVALID_FIELD_FOR_INSERT_UPDATE".to_string(),
                    fields: not_writable,
                },
            );
        }
        if errors.is_empty() {
            Ok(changes)
        } else {
            Err(ApiError {
                status: 400,
                errors,
            })
        }
    }

    /// A lookup must name a live record of the type it points to.
    fn check_lookup(&self, field: &str, label: &str, target: &str, id: &str) -> Option<SfError> {
        let sfid = SfId::parse_exact(id).ok()?;
        let target_prefix = self.schema.sobject(target).map(|s| s.key_prefix.as_str());
        if target_prefix != Some(sfid.key_prefix()) {
            return Some(SfError {
                message: format!("{label}: id value of incorrect type: {id}"),
                error_code: "FIELD_INTEGRITY_EXCEPTION".to_string(),
                fields: vec![field.to_string()],
            });
        }
        match self.records.get(sfid.to_15()) {
            Some(r) if !r.deleted => None,
            _ => Some(SfError {
                message: "invalid cross reference id".to_string(),
                error_code: "INVALID_CROSS_REFERENCE_KEY".to_string(),
                fields: vec![field.to_string()],
            }),
        }
    }

    // ---- crate-internal access for the loader and the query engine ----

    /// The record with this Id, deleted or not.
    pub(crate) fn record(&self, id: &SfId) -> Option<&Record> {
        self.records.get(id.to_15())
    }

    /// Every record of an sObject (deleted ones included), in insertion order.
    pub(crate) fn all_records<'a>(&'a self, sobject: &str) -> impl Iterator<Item = &'a Record> {
        let canonical = self.schema.sobject(sobject).map(|s| s.name.as_str());
        canonical
            .and_then(|name| self.order.get(name))
            .into_iter()
            .flatten()
            .filter_map(|id| self.records.get(id))
    }

    pub(crate) fn contains(&self, id: &SfId) -> bool {
        self.records.contains_key(id.to_15())
    }

    pub(crate) fn reference(&self, reference_id: &str) -> Option<&SfId> {
        self.references.get(reference_id)
    }

    pub(crate) fn add_reference(&mut self, reference_id: String, id: SfId) {
        self.references.insert(reference_id, id);
    }

    /// How many records of `sobject` exist (deleted included).
    pub(crate) fn count(&self, sobject: &str) -> usize {
        self.order.get(sobject).map_or(0, Vec::len)
    }

    /// The next free generated Id for `so`: key prefix + `SB` + a 10-digit, 1-based sequence
    /// number of the record among its sObject's records. `staged` counts the records of `so` being
    /// loaded ahead of this one; `taken` holds their Ids (15 characters).
    pub(crate) fn generate_id(
        &self,
        so: &SObject,
        staged: usize,
        taken: &HashMap<String, String>,
    ) -> Option<SfId> {
        let mut n = (self.count(&so.name) + staged + 1) as u64;
        loop {
            if n > 9_999_999_999 {
                return None;
            }
            let id = SfId::parse_exact(&format!("{}SB{n:010}", so.key_prefix)).ok()?;
            if !self.contains(&id) && !taken.contains_key(id.to_15()) {
                return Some(id);
            }
            n += 1;
        }
    }

    /// The records of `sobject` (deleted ones included) whose lookup `field` names `target`, in
    /// insertion order.
    pub(crate) fn referrers<'a>(
        &'a self,
        sobject: &str,
        field: &str,
        target: &str,
    ) -> Vec<&'a Record> {
        let ids = self.lookups.referrers(sobject, field, target);
        self.in_order(sobject, ids.iter().map(String::as_str))
    }

    /// The records of `sobject` among these 15-character Ids (deleted ones included), in
    /// insertion order.
    pub(crate) fn in_order<'a, 'i>(
        &'a self,
        sobject: &str,
        ids: impl Iterator<Item = &'i str>,
    ) -> Vec<&'a Record> {
        let mut found: Vec<(usize, &'a Record)> = ids
            .filter_map(|id| Some((*self.position.get(id)?, self.records.get(id)?)))
            .filter(|(_, r)| r.sobject.eq_ignore_ascii_case(sobject))
            .collect();
        found.sort_by_key(|(position, _)| *position);
        found.dedup_by_key(|(position, _)| *position);
        found.into_iter().map(|(_, r)| r).collect()
    }

    pub(crate) fn store(&mut self, record: Record) {
        let key = record.id.to_15().to_string();
        if let Some(so) = self.schema.sobject(&record.sobject) {
            for field in so.fields() {
                if field.field_type == FieldType::Reference
                    && let Some(v) = record.fields.get(&field.name)
                {
                    self.lookups.add(&so.name, &field.name, v, &key);
                }
            }
        }
        let order = self.order.entry(record.sobject.clone()).or_default();
        self.position.insert(key.clone(), order.len());
        order.push(key.clone());
        self.records.insert(key, record);
    }
}

/// A record with every field of `so` present: Id set, checkboxes false, everything else null.
pub(crate) fn blank_record(so: &SObject, id: &SfId) -> Map<String, Value> {
    so.fields()
        .iter()
        .map(|f| {
            let v = match f.field_type {
                FieldType::Id => Value::String(id.as_str().to_string()),
                FieldType::Boolean => Value::Bool(false),
                _ => Value::Null,
            };
            (f.name.clone(), v)
        })
        .collect()
}

/// An External ID value as compared: text without regard to case, numbers as written.
fn key_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.to_lowercase(),
        other => other.to_string(),
    }
}

fn read_json(path: &Path) -> Result<Value, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|source| LoadError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|source| LoadError::Json {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn org() -> Org {
        let schema = json!({"sobjects": {"Account": {"keyPrefix": "001", "fields": {
            "Name": {"type": "string"},
            "Rating": {"type": "picklist", "picklistValues": ["Hot", "Cold"], "restricted": true}
        }}}});
        let data = json!({"records": [
            {"attributes": {"type": "Account", "referenceId": "Acme"}, "Name": "Acme"}
        ]});
        Org::from_json(&schema, &[data]).unwrap()
    }

    #[test]
    fn an_org_can_be_shared_between_threads_and_cloned() {
        fn shareable<T: Clone + Send + Sync>() {}
        shareable::<Org>();
        let original = org();
        let mut copy = original.clone();
        let acme = original.id_of("Acme").unwrap();
        copy.update(
            None,
            acme.as_str(),
            &json!({"Name": "Changed"}).as_object().unwrap().clone(),
        )
        .unwrap();
        assert_eq!(original.get(acme.as_str()).unwrap()["Name"], json!("Acme"));
        assert_eq!(copy.get(acme.as_str()).unwrap()["Name"], json!("Changed"));
    }

    #[test]
    fn records_are_found_by_15_or_18_character_ids() {
        let org = org();
        let acme = org.id_of("Acme").unwrap();
        let lower_suffix = format!("{}{}", acme.to_15(), acme.as_str()[15..].to_lowercase());
        for id in [acme.as_str(), acme.to_15(), lower_suffix.as_str()] {
            assert_eq!(org.get(id).unwrap()["Id"], json!(acme.as_str()), "{id}");
        }
        assert!(org.get(&acme.to_15().to_lowercase()).is_none());
        assert!(org.get("not an id").is_none());
        assert_eq!(org.sobject_of("not an id"), None);
    }

    #[test]
    fn every_invalid_field_is_reported_and_nothing_is_written() {
        let mut org = org();
        let acme = org.id_of("Acme").unwrap();
        let body = json!({"Name": "New", "Rating": "Warm", "CreatedDate": "2026-01-01T00:00:00Z",
                          "SystemModstamp": "2026-01-01T00:00:00Z"});
        let e = org
            .update(Some("Account"), acme.as_str(), body.as_object().unwrap())
            .unwrap_err();
        let codes: Vec<&str> = e.errors.iter().map(|e| e.error_code.as_str()).collect();
        assert_eq!(
            codes,
            [
                "INVALID_FIELD_FOR_INSERT_UPDATE",
                "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
            ]
        );
        assert_eq!(e.errors[0].fields, ["CreatedDate", "SystemModstamp"]);
        assert!(
            e.errors[0]
                .message
                .starts_with("Unable to create/update fields: CreatedDate, SystemModstamp.")
        );
        assert_eq!(org.get(acme.as_str()).unwrap()["Name"], json!("Acme"));
    }

    #[test]
    fn attributes_in_a_body_are_ignored_and_field_names_are_case_insensitive() {
        let mut org = org();
        let acme = org.id_of("Acme").unwrap();
        let body = json!({"attributes": {"type": "Account"}, "name": "Lower", "RATING": "Hot"});
        org.update(Some("ACCOUNT"), acme.as_str(), body.as_object().unwrap())
            .unwrap();
        let rec = org.get(acme.as_str()).unwrap();
        assert_eq!(rec["Name"], json!("Lower"));
        assert_eq!(rec["Rating"], json!("Hot"));
        assert!(rec.get("name").is_none());
    }

    #[test]
    fn an_upsert_updates_the_record_its_key_names_creates_one_for_a_new_key_and_refuses_ambiguity()
    {
        let schema = json!({"sobjects": {"Account": {"keyPrefix": "001", "fields": {
            "Name": {"type": "string"},
            "Billing_Key__c": {"type": "string", "externalId": true}
        }}}});
        let data = json!({"records": [
            {"attributes": {"type": "Account", "referenceId": "Acme"}, "Name": "Acme",
             "Billing_Key__c": "AB-1"}
        ]});
        let mut org = Org::from_json(&schema, &[data]).unwrap();
        let acme = org.id_of("Acme").unwrap();
        let body = |pairs: Value| pairs.as_object().unwrap().clone();
        let (id, created) = org
            .upsert(
                "account",
                "billing_key__c",
                &body(json!({"Billing_Key__c": "ab-1", "Name": "Acme Renamed"})),
            )
            .unwrap();
        assert!(id.same_record(&acme) && !created);
        assert_eq!(
            org.get(acme.as_str()).unwrap()["Name"],
            json!("Acme Renamed")
        );
        assert_eq!(
            org.get(acme.as_str()).unwrap()["Billing_Key__c"],
            json!("AB-1"),
            "the key is not rewritten"
        );
        let (new, created) = org
            .upsert(
                "Account",
                "Billing_Key__c",
                &body(json!({"Billing_Key__c": "AB-2", "Name": "Second"})),
            )
            .unwrap();
        assert!(created);
        assert_eq!(
            org.get(new.as_str()).unwrap()["Billing_Key__c"],
            json!("AB-2")
        );

        let missing = org
            .upsert("Account", "Billing_Key__c", &body(json!({"Name": "x"})))
            .unwrap_err();
        assert_eq!(missing.errors[0].error_code, "MISSING_ARGUMENT");
        let not_external = org
            .upsert("Account", "Name", &body(json!({"Name": "x"})))
            .unwrap_err();
        assert_eq!(not_external.errors[0].error_code, "INVALID_FIELD");
        org.update(None, new.as_str(), &body(json!({"Billing_Key__c": "AB-1"})))
            .unwrap();
        let ambiguous = org
            .upsert(
                "Account",
                "Billing_Key__c",
                &body(json!({"Billing_Key__c": "AB-1", "Name": "x"})),
            )
            .unwrap_err();
        assert_eq!(ambiguous.errors[0].error_code, "DUPLICATE_EXTERNAL_ID");
        assert_eq!(org.records("Account").len(), 2, "nothing created");
    }

    #[test]
    fn a_record_is_not_created_without_its_required_fields() {
        let schema = json!({"sobjects": {"Opportunity": {"keyPrefix": "006", "fields": {
            "Name": {"type": "string", "nillable": false},
            "CloseDate": {"type": "date", "nillable": false},
            "IsPrivate": {"type": "boolean", "nillable": false},
            "Key__c": {"type": "string", "externalId": true}
        }}}});
        let mut org = Org::from_json(&schema, &[]).unwrap();
        let body = |v: Value| v.as_object().unwrap().clone();
        let e = org
            .insert("Opportunity", &body(json!({"Name": "", "Key__c": "1"})))
            .unwrap_err();
        assert_eq!(e.errors[0].error_code, "REQUIRED_FIELD_MISSING");
        assert_eq!(e.errors[0].fields, ["Name", "CloseDate"]);
        assert_eq!(
            e.errors[0].message,
            "Required fields are missing: [Name, CloseDate]"
        );
        let e = org
            .upsert("Opportunity", "Key__c", &body(json!({"Key__c": "1"})))
            .unwrap_err();
        assert_eq!(e.errors[0].error_code, "REQUIRED_FIELD_MISSING");
        assert!(org.records("Opportunity").is_empty());
        org.insert(
            "Opportunity",
            &body(json!({"Name": "Deal", "CloseDate": "2026-12-31"})),
        )
        .unwrap();
        assert_eq!(org.records("Opportunity").len(), 1);
    }

    #[test]
    fn a_missing_file_is_an_io_error_naming_it() {
        let e = Org::from_files(Path::new("/nonexistent/schema.json"), &[]).unwrap_err();
        assert!(matches!(e, LoadError::Io { .. }));
        assert!(e.to_string().contains("/nonexistent/schema.json"));
    }
}
