//! One source of truth for the org's shape: the custom fields of the Salesforce package
//! (`salesforce/force-app/main/default/objects/<Object>/fields/<Field>__c.field-meta.xml`) and the
//! sandbox org (`sandbox/data/salesforce/schema.json`) must agree, field by field.
//!
//! - Every custom field the package creates on a standard object is in the sandbox schema, with
//!   the same type, and for picklists the same values and restriction.
//! - Every custom field of the sandbox schema is in the package, unless it is CPQ's (`SBQQ__`, the
//!   managed package's) or listed in `salesforce/fields-not-in-package.txt` with a reason.
//! - Every custom field the mapping reads or writes by default (`Mapping::default()`) is in the
//!   package, and every picklist value dealbridge writes by default is one of its field's values.
//! - The integration user's permission set grants read on every package field and names no
//!   field that does not exist.
//!
//! Each problem names the field. The package's own objects (the platform event, the custom
//! setting: names with `__`) are not in the sandbox schema and are not compared.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use dealbridge::mapping::Mapping;
use dealbridge_org::{FieldType, Schema};
use quick_xml::Reader;
use quick_xml::events::Event;
use serde_json::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn package_dir() -> PathBuf {
    repo().join("salesforce/force-app/main/default")
}

fn sandbox_schema() -> Schema {
    let text = fs::read_to_string(repo().join("sandbox/data/salesforce/schema.json")).unwrap();
    Schema::from_json(&serde_json::from_str::<Value>(&text).unwrap()).unwrap()
}

fn not_in_package() -> NotInPackage {
    NotInPackage::read(&repo().join("salesforce/fields-not-in-package.txt")).unwrap()
}

// ---------------------------------------------------------------------------------------------
// Reading the package

/// An element of a metadata file: its local name, its text and its child elements.
#[derive(Debug, Default)]
struct Element {
    name: String,
    text: String,
    children: Vec<Element>,
}

impl Element {
    fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    fn text_of(&self, name: &str) -> Option<&str> {
        self.child(name).map(|c| c.text.trim())
    }
}

/// Parses a metadata XML file into its root element, with the XML crate the workspace uses.
fn read_xml(path: &Path) -> Result<Element, String> {
    let text = fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut reader = Reader::from_str(&text);
    let mut stack = vec![Element::default()];
    loop {
        let event = reader
            .read_event()
            .map_err(|e| format!("{}: malformed XML: {e}", path.display()))?;
        match event {
            Event::Start(start) => stack.push(Element {
                name: start.local_name().into_inner().to_owned(),
                ..Element::default()
            }),
            Event::Empty(empty) => {
                let name = empty.local_name().into_inner().to_owned();
                stack.last_mut().unwrap().children.push(Element {
                    name,
                    ..Element::default()
                });
            }
            Event::End(_) => {
                let done = stack.pop().unwrap();
                let parent = stack
                    .last_mut()
                    .ok_or_else(|| format!("{}: unbalanced XML", path.display()))?;
                parent.children.push(done);
            }
            Event::Text(t) => stack.last_mut().unwrap().text.push_str(&t.xml10_content()),
            Event::CData(t) => stack.last_mut().unwrap().text.push_str(&t.xml10_content()),
            Event::GeneralRef(r) => {
                let c = match &*r {
                    "lt" => '<',
                    "gt" => '>',
                    "amp" => '&',
                    "quot" => '"',
                    "apos" => '\'',
                    other => other
                        .strip_prefix("#x")
                        .and_then(|h| u32::from_str_radix(h, 16).ok())
                        .or_else(|| other.strip_prefix('#').and_then(|d| d.parse().ok()))
                        .and_then(char::from_u32)
                        .ok_or_else(|| format!("{}: unknown entity &{other};", path.display()))?,
                };
                stack.last_mut().unwrap().text.push(c);
            }
            Event::Eof => break,
            _ => {}
        }
    }
    let mut document = stack
        .pop()
        .filter(|_| stack.is_empty())
        .ok_or_else(|| format!("{}: unbalanced XML", path.display()))?;
    match document.children.len() {
        1 => Ok(document.children.pop().unwrap()),
        _ => Err(format!("{}: not one root element", path.display())),
    }
}

/// One custom field of the package.
#[derive(Debug, Clone, PartialEq)]
struct PackageField {
    object: String,
    name: String,
    /// The metadata type: `Text`, `Picklist`, `Number`, ...
    kind: String,
    picklist_values: Vec<String>,
    restricted: bool,
}

impl PackageField {
    fn key(&self) -> String {
        format!("{}.{}", self.object, self.name)
    }
}

/// The describe type (`schema.json`'s) a metadata field type reads as.
fn describe_type(kind: &str) -> Option<FieldType> {
    Some(match kind {
        "Text" | "EncryptedText" => FieldType::String,
        "TextArea" | "LongTextArea" | "Html" => FieldType::Textarea,
        "Picklist" => FieldType::Picklist,
        "Email" => FieldType::Email,
        "Phone" => FieldType::Phone,
        "Url" => FieldType::Url,
        "Checkbox" => FieldType::Boolean,
        "Number" => FieldType::Double,
        "Currency" => FieldType::Currency,
        "Percent" => FieldType::Percent,
        "Date" => FieldType::Date,
        "DateTime" => FieldType::Datetime,
        "Lookup" | "MasterDetail" => FieldType::Reference,
        _ => return None,
    })
}

/// Every custom field under `<dir>/objects/*/fields/`, keyed by `Object.Field`.
fn read_package_fields(dir: &Path) -> Result<BTreeMap<String, PackageField>, String> {
    let mut fields = BTreeMap::new();
    let objects = dir.join("objects");
    let mut object_dirs: Vec<_> = fs::read_dir(&objects)
        .map_err(|e| format!("{}: {e}", objects.display()))?
        .map(|e| e.unwrap().path())
        .collect();
    object_dirs.sort();
    for object_dir in object_dirs {
        let object = object_dir
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let Ok(entries) = fs::read_dir(object_dir.join("fields")) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            let file = path.file_name().unwrap().to_string_lossy().into_owned();
            let Some(stem) = file.strip_suffix(".field-meta.xml") else {
                return Err(format!("{}: not a .field-meta.xml file", path.display()));
            };
            let root = read_xml(&path)?;
            if root.name != "CustomField" {
                return Err(format!(
                    "{}: the root is <{}>, not <CustomField>",
                    path.display(),
                    root.name
                ));
            }
            let name = root.text_of("fullName").unwrap_or_default().to_owned();
            if name != stem {
                return Err(format!(
                    "{}: fullName {name} is not the file's name",
                    path.display()
                ));
            }
            let value_set = root.child("valueSet");
            let field = PackageField {
                object: object.clone(),
                name,
                kind: root.text_of("type").unwrap_or_default().to_owned(),
                picklist_values: value_set
                    .and_then(|v| v.child("valueSetDefinition"))
                    .map(|d| {
                        d.children_named("value")
                            .filter_map(|v| v.text_of("fullName").map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default(),
                restricted: value_set.and_then(|v| v.text_of("restricted")) == Some("true"),
            };
            fields.insert(field.key(), field);
        }
    }
    Ok(fields)
}

/// `salesforce/fields-not-in-package.txt`: `Object.Field  reason` lines, `#` comments.
struct NotInPackage(BTreeMap<String, String>);

impl NotInPackage {
    fn read(path: &Path) -> Result<NotInPackage, String> {
        let text = fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut entries = BTreeMap::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (field, reason) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
            if reason.trim().is_empty() {
                return Err(format!(
                    "{}:{}: {field} has no reason",
                    path.display(),
                    n + 1
                ));
            }
            entries.insert(field.to_owned(), reason.trim().to_owned());
        }
        Ok(NotInPackage(entries))
    }
}

// ---------------------------------------------------------------------------------------------
// The checks

/// A custom field that is not CPQ's (the managed package owns `SBQQ__` fields).
fn is_dealbridge_custom(field: &str) -> bool {
    field.ends_with("__c") && !field.starts_with("SBQQ__")
}

/// A standard object (the package's own objects have `__` in their names).
fn is_standard_object(object: &str) -> bool {
    !object.contains("__")
}

/// Every disagreement between the package in `dir`, the sandbox schema, the list of fields the
/// package leaves out and the mapping's defaults, each naming its field.
fn problems(dir: &Path, schema: &Schema, not_in_package: &NotInPackage) -> Vec<String> {
    let mut problems = Vec::new();
    let fields = match read_package_fields(dir) {
        Ok(fields) => fields,
        Err(e) => return vec![e],
    };

    // Package → sandbox schema.
    for field in fields.values().filter(|f| is_standard_object(&f.object)) {
        let key = field.key();
        let Some(sobject) = schema.sobject(&field.object) else {
            problems.push(format!(
                "{key} is in the package, but sandbox/data/salesforce/schema.json has no sObject {}",
                field.object
            ));
            continue;
        };
        let Some(org_field) = sobject.field(&field.name) else {
            problems.push(format!(
                "{key} is in the package but not in sandbox/data/salesforce/schema.json"
            ));
            continue;
        };
        match describe_type(&field.kind) {
            None => problems.push(format!("{key}: the package's type {} is not one the sandbox org knows", field.kind)),
            Some(t) if t != org_field.field_type => problems.push(format!(
                "{key}: the package says {} (describe type {}), sandbox/data/salesforce/schema.json says {}",
                field.kind,
                t.as_str(),
                org_field.field_type.as_str()
            )),
            Some(_) => {}
        }
        if field.kind == "Picklist" {
            if field.picklist_values != org_field.picklist_values {
                problems.push(format!(
                    "{key}: the package's picklist values {:?} differ from sandbox/data/salesforce/schema.json's {:?}",
                    field.picklist_values, org_field.picklist_values
                ));
            }
            if field.restricted != org_field.restricted {
                problems.push(format!(
                    "{key}: restricted is {} in the package, {} in sandbox/data/salesforce/schema.json",
                    field.restricted, org_field.restricted
                ));
            }
        }
    }

    // Sandbox schema → package.
    for sobject in schema.sobjects() {
        for org_field in sobject
            .fields()
            .iter()
            .filter(|f| is_dealbridge_custom(&f.name))
        {
            let key = format!("{}.{}", sobject.name, org_field.name);
            let in_package = fields.contains_key(&key);
            let listed = not_in_package.0.contains_key(&key);
            if !in_package && !listed {
                problems.push(format!(
                    "{key} is in sandbox/data/salesforce/schema.json but not in the package: add \
                     salesforce/force-app/main/default/objects/{}/fields/{}.field-meta.xml, or list it \
                     in salesforce/fields-not-in-package.txt if dealbridge does not own it",
                    sobject.name, org_field.name
                ));
            }
            if in_package && listed {
                problems.push(format!(
                    "{key} is in the package and also in salesforce/fields-not-in-package.txt"
                ));
            }
        }
    }
    for key in not_in_package.0.keys() {
        let exists = key.split_once('.').is_some_and(|(object, field)| {
            schema
                .sobject(object)
                .and_then(|o| o.field(field))
                .is_some()
        });
        if !exists {
            problems.push(format!(
                "{key} is listed in salesforce/fields-not-in-package.txt but is not in sandbox/data/salesforce/schema.json"
            ));
        }
    }

    // The mapping's defaults → package.
    let mapping = serde_json::to_value(Mapping::default()).unwrap();
    let sections = [
        ("account", "Account"),
        ("contact", "Contact"),
        ("opportunity", "Opportunity"),
        ("order", "Order"),
        ("order_item", "OrderItem"),
        ("product", "Product2"),
        ("contract", "Contract"),
    ];
    for (section, object) in sections {
        let Some(keys) = mapping[section].as_object() else {
            problems.push(format!("the mapping has no section {section}"));
            continue;
        };
        for (key, value) in keys {
            if let Some(name) = value.as_str().filter(|n| is_dealbridge_custom(n)) {
                let field = format!("{object}.{name}");
                if !fields.contains_key(&field) {
                    problems.push(format!(
                        "{field} (the mapping's default {section}.{key}) is not in the package"
                    ));
                }
            }
        }
    }
    let values = &mapping["values"];
    let written = [
        ("maxio_synced", "Opportunity.Maxio_Sync_Status__c"),
        ("maxio_failed", "Opportunity.Maxio_Sync_Status__c"),
        ("core_linked", "Opportunity.Maxio_Core_Link_Status__c"),
        ("core_pending", "Opportunity.Maxio_Core_Link_Status__c"),
        ("core_failed", "Opportunity.Maxio_Core_Link_Status__c"),
        ("activation_activating", "Order.Activation_Status__c"),
        ("activation_provisioned", "Order.Activation_Status__c"),
        ("activation_failed", "Order.Activation_Status__c"),
        (
            "cancellation_scheduled",
            "Opportunity.Cancellation_Status__c",
        ),
        (
            "cancellation_cancelled",
            "Opportunity.Cancellation_Status__c",
        ),
        (
            "cancellation_withdrawn",
            "Opportunity.Cancellation_Status__c",
        ),
        ("cancellation_failed", "Opportunity.Cancellation_Status__c"),
    ];
    for (key, field) in written {
        let value = values[key].as_str().unwrap_or_default();
        let allowed = fields.get(field).map(|f| &f.picklist_values);
        if !allowed.is_some_and(|a| a.iter().any(|v| v == value)) {
            problems.push(format!(
                "{field}: the package's picklist lacks {value:?}, which dealbridge writes by default (values.{key})"
            ));
        }
    }

    // The integration user's permission set.
    let permission_set = dir.join("permissionsets/Dealbridge_Integration.permissionset-meta.xml");
    match read_xml(&permission_set) {
        Err(e) => problems.push(e),
        Ok(root) => {
            let mut granted = BTreeMap::new();
            for p in root.children_named("fieldPermissions") {
                let field = p.text_of("field").unwrap_or_default().to_owned();
                granted.insert(field, p.text_of("readable") == Some("true"));
            }
            for field in fields.values().filter(|f| is_standard_object(&f.object)) {
                if granted.get(&field.key()) != Some(&true) {
                    problems.push(format!(
                        "{}: Dealbridge_Integration does not grant read on it",
                        field.key()
                    ));
                }
            }
            for field in granted.keys() {
                let known = fields.contains_key(field)
                    || field.split_once('.').is_some_and(|(object, name)| {
                        !name.ends_with("__c") && schema.sobject(object).is_some()
                    });
                if !known {
                    problems.push(format!(
                        "{field}: Dealbridge_Integration grants a field the package does not create"
                    ));
                }
            }
        }
    }
    problems
}

fn assert_no_problems(problems: &[String]) {
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_package_and_the_sandbox_org_agree() {
    assert_no_problems(&problems(
        &package_dir(),
        &sandbox_schema(),
        &not_in_package(),
    ));
}

#[test]
fn the_package_creates_every_custom_field_of_the_mapping_and_no_cpq_field() {
    let fields = read_package_fields(&package_dir()).unwrap();
    assert!(fields.len() >= 29, "{} fields", fields.len());
    let cpq: Vec<_> = fields.keys().filter(|k| k.contains("SBQQ__")).collect();
    assert!(
        cpq.is_empty(),
        "CPQ's fields belong to its managed package: {cpq:?}"
    );
    let objects: BTreeSet<_> = fields.values().map(|f| f.object.as_str()).collect();
    for object in ["Account", "Opportunity", "Order", "OrderItem", "Product2"] {
        assert!(objects.contains(object), "no field on {object}");
    }
}

// ---------------------------------------------------------------------------------------------
// The check catches what it should: a copy of the package, changed

/// A copy of the package's metadata in a fresh temporary directory, removed when dropped.
struct PackageCopy(PathBuf);

impl PackageCopy {
    fn new(tag: &str) -> PackageCopy {
        let dir = std::env::temp_dir().join(format!(
            "dealbridge-package-{tag}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        copy_dir(&package_dir(), &dir);
        PackageCopy(dir)
    }

    fn field(&self, object: &str, field: &str) -> PathBuf {
        self.0
            .join(format!("objects/{object}/fields/{field}.field-meta.xml"))
    }
}

impl Drop for PackageCopy {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), target).unwrap();
        }
    }
}

fn edit(path: &Path, from: &str, to: &str) {
    let text = fs::read_to_string(path).unwrap();
    assert!(text.contains(from), "{} has no {from:?}", path.display());
    fs::write(path, text.replacen(from, to, 1)).unwrap();
}

#[test]
fn an_unchanged_copy_passes() {
    let copy = PackageCopy::new("unchanged");
    assert_no_problems(&problems(&copy.0, &sandbox_schema(), &not_in_package()));
}

#[test]
fn a_field_removed_from_the_package_fails_with_its_name() {
    let copy = PackageCopy::new("removed");
    fs::remove_file(copy.field("Order", "WHMCS_Order_Id__c")).unwrap();
    let found = problems(&copy.0, &sandbox_schema(), &not_in_package());
    assert!(
        found.iter().any(|p| p.starts_with(
            "Order.WHMCS_Order_Id__c is in sandbox/data/salesforce/schema.json but not in the package"
        )),
        "{found:#?}"
    );
    // The mapping reads it by default, and the permission set grants it: both are named too.
    assert!(
        found.iter().any(|p| p
            .starts_with("Order.WHMCS_Order_Id__c (the mapping's default order.whmcs_order_id)")),
        "{found:#?}"
    );
    assert!(
        found
            .iter()
            .any(|p| p.starts_with("Order.WHMCS_Order_Id__c: Dealbridge_Integration grants")),
        "{found:#?}"
    );
}

#[test]
fn a_field_only_in_the_package_fails_with_its_name() {
    let copy = PackageCopy::new("extra");
    let extra = copy.field("Opportunity", "Maxio_Extra__c");
    fs::copy(copy.field("Opportunity", "Maxio_Site__c"), &extra).unwrap();
    edit(
        &extra,
        "<fullName>Maxio_Site__c</fullName>",
        "<fullName>Maxio_Extra__c</fullName>",
    );
    let found = problems(&copy.0, &sandbox_schema(), &not_in_package());
    assert!(
        found.contains(&"Opportunity.Maxio_Extra__c is in the package but not in sandbox/data/salesforce/schema.json".to_owned()),
        "{found:#?}"
    );
    assert!(
        found.contains(
            &"Opportunity.Maxio_Extra__c: Dealbridge_Integration does not grant read on it"
                .to_owned()
        ),
        "{found:#?}"
    );
}

#[test]
fn a_type_that_disagrees_fails_with_the_field_and_both_types() {
    let copy = PackageCopy::new("type");
    let site = copy.field("Opportunity", "Maxio_Site__c");
    edit(&site, "<type>Text</type>", "<type>Number</type>");
    let found = problems(&copy.0, &sandbox_schema(), &not_in_package());
    assert_eq!(
        found,
        [
            "Opportunity.Maxio_Site__c: the package says Number (describe type double), sandbox/data/salesforce/schema.json says string"
        ],
    );
}

#[test]
fn picklist_values_that_disagree_fail_with_the_field() {
    let copy = PackageCopy::new("picklist");
    let status = copy.field("Order", "Activation_Status__c");
    edit(
        &status,
        "<fullName>Provisioned</fullName>",
        "<fullName>Done</fullName>",
    );
    let found = problems(&copy.0, &sandbox_schema(), &not_in_package());
    assert!(
        found
            .iter()
            .any(|p| p.starts_with("Order.Activation_Status__c: the package's picklist values")),
        "{found:#?}"
    );
    assert!(
        found.iter().any(|p| p.contains("lacks \"Provisioned\", which dealbridge writes by default (values.activation_provisioned)")),
        "{found:#?}"
    );
}

#[test]
fn a_field_the_sandbox_org_has_and_nobody_owns_fails_with_its_name() {
    let mut listed = not_in_package();
    listed.0.remove("Order.Order_Type__c");
    let found = problems(&package_dir(), &sandbox_schema(), &listed);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(found[0].starts_with(
        "Order.Order_Type__c is in sandbox/data/salesforce/schema.json but not in the package"
    ));
}
