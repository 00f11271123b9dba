//! The org's metadata: sObjects, their fields and relationships, parsed from `schema.json`.
//!
//! Names are matched case-insensitively everywhere (as Salesforce does) and reported in the
//! schema's canonical casing.

use std::collections::HashMap;

use serde_json::Value;

use crate::error::LoadError;

/// The fields every sObject has whether or not the schema lists them. The org sets them.
pub const SYSTEM_DATETIME_FIELDS: [&str; 3] = ["CreatedDate", "LastModifiedDate", "SystemModstamp"];

/// Salesforce field types the org understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FieldType {
    Id,
    String,
    Textarea,
    Picklist,
    Email,
    Phone,
    Url,
    Boolean,
    Int,
    Double,
    Currency,
    Percent,
    Date,
    Datetime,
    Reference,
}

impl FieldType {
    /// Parses the schema's type name (`"string"`, `"reference"`, ...).
    pub fn parse(name: &str) -> Option<FieldType> {
        Some(match name.to_ascii_lowercase().as_str() {
            "id" => FieldType::Id,
            "string" => FieldType::String,
            "textarea" => FieldType::Textarea,
            "picklist" => FieldType::Picklist,
            "email" => FieldType::Email,
            "phone" => FieldType::Phone,
            "url" => FieldType::Url,
            "boolean" => FieldType::Boolean,
            "int" => FieldType::Int,
            "double" => FieldType::Double,
            "currency" => FieldType::Currency,
            "percent" => FieldType::Percent,
            "date" => FieldType::Date,
            "datetime" => FieldType::Datetime,
            "reference" => FieldType::Reference,
            _ => return None,
        })
    }

    /// The schema's name for the type.
    pub fn as_str(self) -> &'static str {
        match self {
            FieldType::Id => "id",
            FieldType::String => "string",
            FieldType::Textarea => "textarea",
            FieldType::Picklist => "picklist",
            FieldType::Email => "email",
            FieldType::Phone => "phone",
            FieldType::Url => "url",
            FieldType::Boolean => "boolean",
            FieldType::Int => "int",
            FieldType::Double => "double",
            FieldType::Currency => "currency",
            FieldType::Percent => "percent",
            FieldType::Date => "date",
            FieldType::Datetime => "datetime",
            FieldType::Reference => "reference",
        }
    }

    /// Text types: compared case-insensitively, `LIKE`-able, and an empty string is stored as null.
    pub fn is_text(self) -> bool {
        matches!(
            self,
            FieldType::String
                | FieldType::Textarea
                | FieldType::Picklist
                | FieldType::Email
                | FieldType::Phone
                | FieldType::Url
        )
    }

    pub fn is_numeric(self) -> bool {
        matches!(
            self,
            FieldType::Int | FieldType::Double | FieldType::Currency | FieldType::Percent
        )
    }

    /// Id and reference fields hold record Ids.
    pub fn is_id(self) -> bool {
        matches!(self, FieldType::Id | FieldType::Reference)
    }
}

/// One field of an sObject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub name: String,
    pub label: String,
    pub field_type: FieldType,
    /// For reference fields: the sObject the lookup points to.
    pub reference_to: Option<String>,
    /// For reference fields: the name used in parent paths (`Account` for `AccountId`).
    pub relationship_name: Option<String>,
    pub updateable: bool,
    pub createable: bool,
    pub picklist_values: Vec<String>,
    pub restricted: bool,
    /// An External ID field: records can be upserted by its value.
    pub external_id: bool,
    /// False for a field a record cannot be created without (`"nillable": false`, like
    /// Opportunity `Name`, `StageName` and `CloseDate`).
    pub nillable: bool,
}

/// A parent-to-child relationship: `Account.Contacts` is `Contact` records whose `AccountId` is the
/// account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildRelationship {
    pub name: String,
    pub child_sobject: String,
    pub field: String,
}

/// One sObject type.
#[derive(Debug, Clone)]
pub struct SObject {
    pub name: String,
    pub key_prefix: String,
    fields: Vec<Field>,
    field_index: HashMap<String, usize>,
    relationship_index: HashMap<String, usize>,
    child_relationships: Vec<ChildRelationship>,
    child_index: HashMap<String, usize>,
}

impl SObject {
    /// All fields, `Id` first, in schema order, then the system fields.
    pub fn fields(&self) -> &[Field] {
        &self.fields
    }

    /// The field named `name`, case-insensitively.
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.field_index
            .get(&name.to_ascii_lowercase())
            .map(|&i| &self.fields[i])
    }

    /// The reference field whose relationship name is `name`, case-insensitively.
    pub fn parent_relationship(&self, name: &str) -> Option<&Field> {
        self.relationship_index
            .get(&name.to_ascii_lowercase())
            .map(|&i| &self.fields[i])
    }

    pub fn child_relationships(&self) -> &[ChildRelationship] {
        &self.child_relationships
    }

    /// The child relationship named `name`, case-insensitively.
    pub fn child_relationship(&self, name: &str) -> Option<&ChildRelationship> {
        self.child_index
            .get(&name.to_ascii_lowercase())
            .map(|&i| &self.child_relationships[i])
    }
}

/// The org's metadata.
#[derive(Debug, Clone, Default)]
pub struct Schema {
    sobjects: Vec<SObject>,
    by_name: HashMap<String, usize>,
    by_prefix: HashMap<String, usize>,
}

impl Schema {
    /// Parses `{"sobjects": {...}}` and checks that every reference and child relationship points
    /// somewhere real.
    pub fn from_json(json: &Value) -> Result<Schema, LoadError> {
        let sobjects = json
            .get("sobjects")
            .and_then(Value::as_object)
            .ok_or_else(|| err("the top level needs an \"sobjects\" object"))?;
        let mut schema = Schema::default();
        for (name, def) in sobjects {
            let sobject = parse_sobject(name, def)?;
            let index = schema.sobjects.len();
            if schema
                .by_name
                .insert(name.to_ascii_lowercase(), index)
                .is_some()
            {
                return Err(err(format!("sObject {name} is defined twice")));
            }
            if let Some(&other) = schema.by_prefix.get(&sobject.key_prefix) {
                return Err(err(format!(
                    "{name} and {} share the key prefix {}",
                    schema.sobjects[other].name, sobject.key_prefix
                )));
            }
            schema.by_prefix.insert(sobject.key_prefix.clone(), index);
            schema.sobjects.push(sobject);
        }
        schema.canonicalize_and_check()?;
        Ok(schema)
    }

    /// All sObjects in schema order.
    pub fn sobjects(&self) -> &[SObject] {
        &self.sobjects
    }

    /// The sObject named `name`, case-insensitively.
    pub fn sobject(&self, name: &str) -> Option<&SObject> {
        self.by_name
            .get(&name.to_ascii_lowercase())
            .map(|&i| &self.sobjects[i])
    }

    /// The sObject whose Ids start with `prefix`.
    pub fn sobject_by_prefix(&self, prefix: &str) -> Option<&SObject> {
        self.by_prefix.get(prefix).map(|&i| &self.sobjects[i])
    }

    /// Resolves `referenceTo` and `childSObject` names to canonical casing and checks the
    /// relationships are consistent.
    fn canonicalize_and_check(&mut self) -> Result<(), LoadError> {
        let canonical: HashMap<String, String> = self
            .sobjects
            .iter()
            .map(|s| (s.name.to_ascii_lowercase(), s.name.clone()))
            .collect();
        let lookup = |name: &str| canonical.get(&name.to_ascii_lowercase()).cloned();
        for sobject in &mut self.sobjects {
            for field in &mut sobject.fields {
                if let Some(target) = &field.reference_to {
                    field.reference_to = Some(lookup(target).ok_or_else(|| {
                        err(format!(
                            "{}.{} refers to {target}, which is not in the schema",
                            sobject.name, field.name
                        ))
                    })?);
                }
            }
            for rel in &mut sobject.child_relationships {
                rel.child_sobject = lookup(&rel.child_sobject).ok_or_else(|| {
                    err(format!(
                        "child relationship {}.{} names {}, which is not in the schema",
                        sobject.name, rel.name, rel.child_sobject
                    ))
                })?;
            }
        }
        for i in 0..self.sobjects.len() {
            for r in 0..self.sobjects[i].child_relationships.len() {
                let parent = self.sobjects[i].name.clone();
                let rel = self.sobjects[i].child_relationships[r].clone();
                let child = self
                    .sobject(&rel.child_sobject)
                    .ok_or_else(|| err(format!("{} is not in the schema", rel.child_sobject)))?;
                let field = child.field(&rel.field).ok_or_else(|| {
                    err(format!(
                        "child relationship {parent}.{} names field {}.{}, which does not exist",
                        rel.name, rel.child_sobject, rel.field
                    ))
                })?;
                if field.reference_to.as_deref() != Some(parent.as_str()) {
                    return Err(err(format!(
                        "child relationship {parent}.{} uses {}.{}, which is not a lookup to {parent}",
                        rel.name, rel.child_sobject, field.name
                    )));
                }
                let field_name = field.name.clone();
                self.sobjects[i].child_relationships[r].field = field_name;
            }
        }
        Ok(())
    }
}

fn err(message: impl Into<String>) -> LoadError {
    LoadError::Schema(message.into())
}

fn parse_sobject(name: &str, def: &Value) -> Result<SObject, LoadError> {
    let key_prefix = def
        .get("keyPrefix")
        .and_then(Value::as_str)
        .ok_or_else(|| err(format!("{name} needs a keyPrefix")))?;
    if key_prefix.len() != 3 || !key_prefix.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(err(format!(
            "{name}: keyPrefix {key_prefix:?} is not three letters or digits"
        )));
    }
    let mut fields: Vec<Field> = Vec::new();
    if let Some(defs) = def.get("fields") {
        let defs = defs
            .as_object()
            .ok_or_else(|| err(format!("{name}.fields must be an object")))?;
        for (field_name, field_def) in defs {
            fields.push(parse_field(name, field_name, field_def)?);
        }
    }
    // Implicit fields: Id first, the system fields last.
    if !fields.iter().any(|f| f.name.eq_ignore_ascii_case("Id")) {
        fields.insert(0, implicit_field("Id", FieldType::Id));
    }
    for system in SYSTEM_DATETIME_FIELDS {
        if !fields.iter().any(|f| f.name.eq_ignore_ascii_case(system)) {
            fields.push(implicit_field(system, FieldType::Datetime));
        }
    }
    if !fields
        .iter()
        .any(|f| f.name.eq_ignore_ascii_case("IsDeleted"))
    {
        fields.push(implicit_field("IsDeleted", FieldType::Boolean));
    }
    let mut field_index = HashMap::new();
    let mut relationship_index = HashMap::new();
    for (i, field) in fields.iter().enumerate() {
        if field.name.eq_ignore_ascii_case("Id") && field.field_type != FieldType::Id {
            return Err(err(format!("{name}.Id must have type id")));
        }
        if field_index
            .insert(field.name.to_ascii_lowercase(), i)
            .is_some()
        {
            return Err(err(format!("{name}.{} is defined twice", field.name)));
        }
        if let Some(rel) = &field.relationship_name
            && relationship_index
                .insert(rel.to_ascii_lowercase(), i)
                .is_some()
        {
            return Err(err(format!(
                "{name} has two lookups with the relationship name {rel}"
            )));
        }
    }
    let mut child_relationships = Vec::new();
    let mut child_index = HashMap::new();
    if let Some(defs) = def.get("childRelationships") {
        let defs = defs
            .as_object()
            .ok_or_else(|| err(format!("{name}.childRelationships must be an object")))?;
        for (rel_name, rel_def) in defs {
            let get = |key: &str| {
                rel_def
                    .get(key)
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .ok_or_else(|| {
                        err(format!(
                            "child relationship {name}.{rel_name} needs a string \"{key}\""
                        ))
                    })
            };
            let rel = ChildRelationship {
                name: rel_name.clone(),
                child_sobject: get("childSObject")?,
                field: get("field")?,
            };
            if child_index
                .insert(rel_name.to_ascii_lowercase(), child_relationships.len())
                .is_some()
            {
                return Err(err(format!(
                    "child relationship {name}.{rel_name} is defined twice"
                )));
            }
            child_relationships.push(rel);
        }
    }
    Ok(SObject {
        name: name.to_string(),
        key_prefix: key_prefix.to_string(),
        fields,
        field_index,
        relationship_index,
        child_relationships,
        child_index,
    })
}

fn implicit_field(name: &str, field_type: FieldType) -> Field {
    Field {
        name: name.to_string(),
        label: default_label(name),
        field_type,
        reference_to: None,
        relationship_name: None,
        updateable: false,
        createable: false,
        picklist_values: Vec::new(),
        restricted: false,
        external_id: false,
        nillable: true,
    }
}

fn is_system_field(name: &str) -> bool {
    name.eq_ignore_ascii_case("Id")
        || name.eq_ignore_ascii_case("IsDeleted")
        || SYSTEM_DATETIME_FIELDS
            .iter()
            .any(|s| s.eq_ignore_ascii_case(name))
}

fn parse_field(sobject: &str, name: &str, def: &Value) -> Result<Field, LoadError> {
    let where_ = || format!("{sobject}.{name}");
    let type_name = def
        .get("type")
        .and_then(Value::as_str)
        .ok_or_else(|| err(format!("{} needs a type", where_())))?;
    let field_type = FieldType::parse(type_name)
        .ok_or_else(|| err(format!("{} has unknown type {type_name:?}", where_())))?;
    let flag = |key: &str, default: bool| -> Result<bool, LoadError> {
        match def.get(key) {
            None => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(_) => Err(err(format!("{}.{key} must be true or false", where_()))),
        }
    };
    let system = is_system_field(name);
    let is_id = name.eq_ignore_ascii_case("Id");
    let updateable = !is_id && flag("updateable", !system)?;
    let createable = !is_id && flag("createable", !system)?;
    let restricted = flag("restricted", false)?;
    let external_id = flag("externalId", false)?;
    let nillable = flag("nillable", true)?;
    let label = match def.get("label") {
        None => default_label(name),
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err(err(format!("{}.label must be a string", where_()))),
    };
    let picklist_values = match def.get("picklistValues") {
        None => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| match item {
                Value::String(s) => Ok(s.clone()),
                Value::Object(o) => o
                    .get("value")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .ok_or_else(|| err(format!("{}: a picklist value needs \"value\"", where_()))),
                _ => Err(err(format!(
                    "{}: picklist values are strings or {{\"value\": ...}}",
                    where_()
                ))),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(err(format!("{}.picklistValues must be a list", where_()))),
    };
    let (reference_to, relationship_name) = if field_type == FieldType::Reference {
        let target = match def.get("referenceTo") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Array(items)) if items.len() == 1 => items[0]
                .as_str()
                .map(str::to_string)
                .ok_or_else(|| err(format!("{}.referenceTo must name an sObject", where_())))?,
            _ => {
                return Err(err(format!(
                    "{} is a reference and needs referenceTo naming one sObject",
                    where_()
                )));
            }
        };
        let rel = match def.get("relationshipName") {
            Some(Value::String(s)) => s.clone(),
            Some(_) => {
                return Err(err(format!(
                    "{}.relationshipName must be a string",
                    where_()
                )));
            }
            None => default_relationship_name(name).ok_or_else(|| {
                err(format!(
                    "{} needs a relationshipName (it neither ends in __c nor in Id)",
                    where_()
                ))
            })?,
        };
        (Some(target), Some(rel))
    } else {
        (None, None)
    };
    Ok(Field {
        name: name.to_string(),
        label,
        field_type,
        reference_to,
        relationship_name,
        updateable,
        createable,
        picklist_values,
        restricted,
        external_id,
        nillable,
    })
}

/// `Foo__c` → `Foo__r`; `AccountId` → `Account`: the rule the client uses too.
pub use dealbridge::mapping::relationship_name as default_relationship_name;

/// A readable label for a field without one: `Activation_Status__c` → `Activation Status`,
/// `SBQQ__LowerBound__c` → `Lower Bound`, `AccountId` → `Account ID`, `OrderNumber` →
/// `Order Number`.
pub fn default_label(field: &str) -> String {
    if let Some(base) = field.strip_suffix("__c") {
        let base = base.rsplit("__").next().unwrap_or(base);
        let words = split_camel(&base.replace('_', " "));
        return words;
    }
    if field == "Id" {
        return "Record ID".to_string();
    }
    match field.strip_suffix("Id") {
        Some(base) if !base.is_empty() => format!("{} ID", split_camel(base)),
        _ => split_camel(field),
    }
}

fn split_camel(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len() + 4);
    for (i, &c) in chars.iter().enumerate() {
        if i > 0 && c.is_ascii_uppercase() {
            let prev = chars[i - 1];
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_ascii_lowercase());
            if prev.is_ascii_lowercase()
                || prev.is_ascii_digit()
                || (prev.is_ascii_uppercase() && next_lower)
            {
                out.push(' ');
            }
        }
        out.push(c);
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample() -> Value {
        json!({"sobjects": {
            "Account": {
                "keyPrefix": "001",
                "fields": {
                    "Name": {"type": "string"},
                    "ParentId": {"type": "reference", "referenceTo": "Account"},
                    "Activation_Status__c": {"type": "picklist",
                        "picklistValues": ["Pending Review", "Provisioned"], "restricted": true},
                    "OrderNumber": {"type": "string", "updateable": false}
                },
                "childRelationships": {"Contacts": {"childSObject": "contact", "field": "accountid"}}
            },
            "Contact": {
                "keyPrefix": "003",
                "fields": {
                    "LastName": {"type": "string"},
                    "AccountId": {"type": "reference", "referenceTo": "account"},
                    "Billing_Account__c": {"type": "reference", "referenceTo": "Account"},
                    "Owner_Account__c": {"type": "reference", "referenceTo": "Account",
                        "relationshipName": "OwnerAccount"}
                }
            }
        }})
    }

    #[test]
    fn every_sobject_gets_id_and_system_fields_even_when_not_listed() {
        let schema = Schema::from_json(&sample()).unwrap();
        let account = schema.sobject("account").unwrap();
        let names: Vec<&str> = account.fields().iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "Id",
                "Name",
                "ParentId",
                "Activation_Status__c",
                "OrderNumber",
                "CreatedDate",
                "LastModifiedDate",
                "SystemModstamp",
                "IsDeleted"
            ]
        );
        let id = account.field("ID").unwrap();
        assert_eq!(id.field_type, FieldType::Id);
        assert!(!id.updateable);
        assert!(!account.field("SystemModstamp").unwrap().updateable);
        assert!(account.field("Name").unwrap().updateable);
        assert!(!account.field("OrderNumber").unwrap().updateable);
    }

    #[test]
    fn relationship_names_default_from_the_field_name() {
        let schema = Schema::from_json(&sample()).unwrap();
        let contact = schema.sobject("Contact").unwrap();
        assert_eq!(
            contact.parent_relationship("account").unwrap().name,
            "AccountId"
        );
        assert_eq!(
            contact
                .parent_relationship("Billing_Account__r")
                .unwrap()
                .name,
            "Billing_Account__c"
        );
        assert_eq!(
            contact.parent_relationship("OwnerAccount").unwrap().name,
            "Owner_Account__c"
        );
        assert!(contact.parent_relationship("Owner_Account__r").is_none());
        assert_eq!(
            contact.field("AccountId").unwrap().reference_to.as_deref(),
            Some("Account")
        );
        assert_eq!(
            default_relationship_name("Product2Id").as_deref(),
            Some("Product2")
        );
        assert_eq!(default_relationship_name("Id"), None);
    }

    #[test]
    fn child_relationships_are_canonicalized() {
        let schema = Schema::from_json(&sample()).unwrap();
        let rel = schema
            .sobject("Account")
            .unwrap()
            .child_relationship("CONTACTS")
            .unwrap();
        assert_eq!(rel.child_sobject, "Contact");
        assert_eq!(rel.field, "AccountId");
        assert_eq!(schema.sobject_by_prefix("003").unwrap().name, "Contact");
    }

    #[test]
    fn labels_are_derived_from_api_names() {
        assert_eq!(default_label("Activation_Status__c"), "Activation Status");
        assert_eq!(default_label("SBQQ__LowerBound__c"), "Lower Bound");
        assert_eq!(default_label("AccountId"), "Account ID");
        assert_eq!(default_label("OrderNumber"), "Order Number");
        assert_eq!(default_label("Name"), "Name");
    }

    #[test]
    fn a_reference_to_an_unknown_sobject_is_rejected() {
        let mut json = sample();
        json["sobjects"]["Contact"]["fields"]["ReportsToId"] =
            json!({"type": "reference", "referenceTo": "User"});
        let err = Schema::from_json(&json).unwrap_err().to_string();
        assert!(err.contains("Contact.ReportsToId refers to User"), "{err}");
    }

    #[test]
    fn a_child_relationship_must_use_a_lookup_to_the_parent() {
        let mut json = sample();
        json["sobjects"]["Account"]["childRelationships"]["Contacts"]["field"] = json!("LastName");
        let err = Schema::from_json(&json).unwrap_err().to_string();
        assert!(err.contains("not a lookup to Account"), "{err}");
    }

    #[test]
    fn unknown_types_and_bad_prefixes_are_rejected() {
        let mut json = sample();
        json["sobjects"]["Contact"]["fields"]["Foo"] = json!({"type": "multipicklist"});
        assert!(Schema::from_json(&json).is_err());
        let mut json = sample();
        json["sobjects"]["Contact"]["keyPrefix"] = json!("001");
        let err = Schema::from_json(&json).unwrap_err().to_string();
        assert!(err.contains("share the key prefix 001"), "{err}");
    }
}
