//! The tenant's customers and contracts, the list filters, and the contract PATCH validation.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeDelta, Utc};
use serde_json::{Map, Value, json};

/// The first id handed out to each kind. Customers and contracts are numbered from different
/// starting points so that a client mixing a customer id with a contract id finds nothing.
const FIRST_CUSTOMER_ID: i64 = 5001;
const FIRST_CONTRACT_ID: i64 = 9001;

/// Contract fields a PATCH may not set. Stock DRF silently drops read-only fields from the input;
/// the fake refuses them with 400 so that a client believing it changed one finds out (UNCONFIRMED
/// on Core; the message is the fake's own).
const CONTRACT_READ_ONLY: &[&str] = &[
    "id",
    "customer",
    "created",
    "modified",
    "created_by",
    "modified_by",
];
pub(super) const READ_ONLY_MESSAGE: &str = "This field is read-only.";
/// Stock DRF also ignores unknown fields; the fake refuses them (own wording).
pub(super) const UNKNOWN_FIELD_MESSAGE: &str = "Unknown field.";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Customers,
    Contracts,
}

/// One customer or contract, as the API renders it, and from which list request on it shows.
#[derive(Debug, Clone)]
pub(super) struct Record {
    pub fields: Map<String, Value>,
    /// Visible from the n-th request (1-based) to its kind's list endpoint on; 0 = always.
    pub visible_from: usize,
}

impl Record {
    pub fn id(&self) -> i64 {
        self.fields
            .get("id")
            .and_then(Value::as_i64)
            .unwrap_or_default()
    }
}

#[derive(Debug)]
pub(super) struct Store {
    pub customers: Vec<Record>,
    pub contracts: Vec<Record>,
    next_customer_id: i64,
    next_contract_id: i64,
    /// Requests answered by each list endpoint (past auth), which drive `visible_from`.
    customer_list_requests: usize,
    contract_list_requests: usize,
    last_stamp: DateTime<Utc>,
}

/// A timestamp as DRF renders a UTC `DateTimeField`: ISO 8601 with `Z`, microseconds shown unless
/// zero (Python's `isoformat`).
pub(super) fn ts(at: DateTime<Utc>) -> String {
    if at.timestamp_subsec_micros() == 0 {
        at.format("%Y-%m-%dT%H:%M:%SZ").to_string()
    } else {
        at.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
    }
}

/// A datetime as Django's `DateTimeField` form field parses it: ISO 8601 with an offset, or
/// without one (taken as UTC here; the tenant's time zone is unknown), or a bare date (midnight).
pub(super) fn parse_datetime(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Some(at.with_timezone(&Utc));
    }
    for format in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(at) = NaiveDateTime::parse_from_str(text, format) {
            return Some(at.and_utc());
        }
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|at| at.and_utc())
}

fn billing_profile() -> Map<String, Value> {
    let mut profile = Map::new();
    for key in [
        "name",
        "company_name",
        "first_name",
        "last_name",
        "addr1",
        "addr2",
        "addr3",
        "city",
        "state",
        "zip_code",
        "country",
        "shipping_addr1",
        "shipping_addr2",
        "shipping_addr3",
        "shipping_city",
        "shipping_state",
        "shipping_zip_code",
        "shipping_country",
        "phone",
        "email",
        "contact",
        "sales_rep",
    ] {
        profile.insert(key.into(), Value::Null);
    }
    profile.insert("payment_terms".into(), Value::Null);
    profile.insert("currency".into(), Value::Null);
    profile.insert("is_active".into(), Value::Bool(true));
    profile
}

fn customer_template(id: i64, modified: &str) -> Map<String, Value> {
    let mut fields = Map::new();
    for key in [
        "name",
        "number",
        "code",
        "domain",
        "notes",
        "email",
        "cc_email",
        "escalation_email",
        "sf_id",
        "sf_owner_id",
        "crm_id",
        "qb_id",
        "stripe_id",
        "recurly_id",
        "chargify_id",
        "einvoicing_id",
        "text_field1",
        "text_field2",
        "text_field3",
        "number_field1",
        "number_field2",
        "number_field3",
        "industry",
        "segment",
        "subsegment",
        "market",
        "parent",
    ] {
        fields.insert(key.into(), Value::Null);
    }
    fields.insert("id".into(), json!(id));
    fields.insert("name".into(), json!(""));
    fields.insert("is_active".into(), json!(true));
    fields.insert("modified".into(), json!(modified));
    fields.insert("billing_profile".into(), Value::Object(billing_profile()));
    fields
}

fn contract_template(id: i64, stamp: &str) -> Map<String, Value> {
    let mut fields = Map::new();
    for key in [
        "number",
        "customer",
        "register",
        "email",
        "notes",
        "channel",
        "lead_source",
        "lead_date",
        "entry_date",
        "sf_id",
        "qb_job_id",
        "maxio_id",
        "text_field1",
        "text_field2",
        "number_field1",
        "number_field2",
        "created_by",
        "modified_by",
    ] {
        fields.insert(key.into(), Value::Null);
    }
    fields.insert("id".into(), json!(id));
    fields.insert("is_active".into(), json!(true));
    fields.insert("is_job".into(), json!(false));
    fields.insert("unbalanced_revenue_exception".into(), json!(false));
    fields.insert("created".into(), json!(stamp));
    fields.insert("modified".into(), json!(stamp));
    let mut profile = billing_profile();
    profile.insert("parent_id".into(), Value::Null);
    fields.insert("billing_profile".into(), Value::Object(profile));
    fields
}

/// `seed` over `template`: unknown keys are kept (tenant-specific `c_*` fields), `id` is the
/// store's, and a `billing_profile` object is merged key by key.
fn merge(template: &mut Map<String, Value>, seed: Value) {
    let Value::Object(seed) = seed else {
        return;
    };
    for (key, value) in seed {
        match (key.as_str(), value) {
            ("id", _) => {}
            ("billing_profile", Value::Object(profile)) => {
                if let Some(Value::Object(target)) = template.get_mut("billing_profile") {
                    target.extend(profile);
                }
            }
            (_, value) => {
                template.insert(key, value);
            }
        }
    }
}

impl Store {
    pub fn new() -> Store {
        Store {
            customers: Vec::new(),
            contracts: Vec::new(),
            next_customer_id: FIRST_CUSTOMER_ID,
            next_contract_id: FIRST_CONTRACT_ID,
            customer_list_requests: 0,
            contract_list_requests: 0,
            last_stamp: DateTime::<Utc>::MIN_UTC,
        }
    }

    /// Now, to the microsecond, strictly after every earlier stamp (so `modified` always moves).
    fn stamp(&mut self) -> String {
        let now = Utc::now();
        let next = if now > self.last_stamp {
            now
        } else {
            self.last_stamp + TimeDelta::microseconds(1)
        };
        self.last_stamp = next;
        ts(next)
    }

    pub fn add_customer(&mut self, seed: Value, visible_from: usize) -> i64 {
        let id = self.next_customer_id;
        self.next_customer_id += 1;
        let stamp = self.stamp();
        let mut fields = customer_template(id, &stamp);
        merge(&mut fields, seed);
        self.customers.push(Record {
            fields,
            visible_from,
        });
        id
    }

    pub fn add_contract(&mut self, seed: Value, visible_from: usize) -> i64 {
        let id = self.next_contract_id;
        self.next_contract_id += 1;
        let stamp = self.stamp();
        let mut fields = contract_template(id, &stamp);
        merge(&mut fields, seed);
        self.contracts.push(Record {
            fields,
            visible_from,
        });
        id
    }

    fn records(&self, kind: Kind) -> &Vec<Record> {
        match kind {
            Kind::Customers => &self.customers,
            Kind::Contracts => &self.contracts,
        }
    }

    fn list_requests(&self, kind: Kind) -> usize {
        match kind {
            Kind::Customers => self.customer_list_requests,
            Kind::Contracts => self.contract_list_requests,
        }
    }

    /// A record the API shows now. Records not yet visible in their list are not found by id
    /// either.
    fn visible(&self, kind: Kind, id: i64) -> Option<&Record> {
        let seen = self.list_requests(kind);
        self.records(kind)
            .iter()
            .find(|r| r.id() == id && r.visible_from <= seen)
    }

    pub fn read(&self, kind: Kind, id: i64) -> Option<Value> {
        self.visible(kind, id)
            .map(|r| Value::Object(r.fields.clone()))
    }

    /// One request to a list endpoint: counts it, then filters the visible records, ordered by
    /// id. `Err` carries DRF's 400 body for a filter value that does not parse.
    pub fn list(&mut self, kind: Kind, query: &[(String, String)]) -> Result<Vec<Value>, Value> {
        let seen = match kind {
            Kind::Customers => {
                self.customer_list_requests += 1;
                self.customer_list_requests
            }
            Kind::Contracts => {
                self.contract_list_requests += 1;
                self.contract_list_requests
            }
        };
        let filters = Filters::parse(kind, query)?;
        let mut items: Vec<&Record> = self
            .records(kind)
            .iter()
            .filter(|r| r.visible_from <= seen && filters.matches(&r.fields))
            .collect();
        items.sort_by_key(|r| r.id());
        Ok(items
            .into_iter()
            .map(|r| Value::Object(r.fields.clone()))
            .collect())
    }

    /// PATCH of a contract. `None`: no such (visible) contract. `Some(Err(body))`: 400.
    pub fn patch_contract(&mut self, id: i64, body: &Value) -> Option<Result<Value, Value>> {
        let seen = self.contract_list_requests;
        let index = self
            .contracts
            .iter()
            .position(|r| r.id() == id && r.visible_from <= seen)?;
        let changes = match validate_contract_patch(&self.contracts[index].fields, body) {
            Ok(changes) => changes,
            Err(errors) => return Some(Err(errors)),
        };
        let stamp = self.stamp();
        let fields = &mut self.contracts[index].fields;
        for (key, value) in changes {
            match (key.as_str(), value) {
                ("billing_profile", Value::Object(profile)) => {
                    if let Some(Value::Object(target)) = fields.get_mut("billing_profile") {
                        target.extend(profile);
                    }
                }
                (_, value) => {
                    fields.insert(key, value);
                }
            }
        }
        // Django's `auto_now`: every save moves `modified`, even one that changes nothing.
        fields.insert("modified".into(), json!(stamp));
        Some(Ok(Value::Object(fields.clone())))
    }
}

/// The exact-match and range filters of a list endpoint, as django-filter applies them: the last
/// value of a repeated parameter wins, an empty value means no filter, and parameters that are
/// not filters are ignored (so a misspelt filter returns everything).
#[derive(Debug, Default)]
struct Filters {
    id: Option<i64>,
    number: Option<String>,
    sf_id: Option<String>,
    is_active: Option<bool>,
    customer: Option<i64>,
    modified_gte: Option<DateTime<Utc>>,
    modified_lte: Option<DateTime<Utc>>,
}

impl Filters {
    fn parse(kind: Kind, query: &[(String, String)]) -> Result<Filters, Value> {
        let mut last: HashMap<&str, &str> = HashMap::new();
        for (key, value) in query {
            last.insert(key.as_str(), value.as_str());
        }
        let get = |key: &str| last.get(key).copied().filter(|v| !v.is_empty());
        let mut errors = Map::new();
        let mut filters = Filters::default();
        let number = |key: &str, errors: &mut Map<String, Value>| {
            let value = get(key)?;
            match value.trim().parse::<i64>() {
                Ok(n) => Some(n),
                Err(_) => {
                    errors.insert(key.into(), json!(["Enter a number."]));
                    None
                }
            }
        };
        filters.id = number("id", &mut errors);
        if kind == Kind::Contracts {
            // UNCONFIRMED: django-filter's default for a foreign key would answer 400 "Select a
            // valid choice" for an unknown customer id; the fake is lenient and returns nothing.
            filters.customer = number("customer", &mut errors);
        }
        filters.number = get("number").map(str::to_string);
        filters.sf_id = get("sf_id").map(str::to_string);
        // django-filter's `BooleanWidget`: true/false/1/0 in any case; anything else, no filter.
        filters.is_active = get("is_active").and_then(|v| match v.to_ascii_lowercase().as_str() {
            "true" | "1" => Some(true),
            "false" | "0" => Some(false),
            _ => None,
        });
        let datetime = |key: &str, errors: &mut Map<String, Value>| {
            let value = get(key)?;
            let parsed = parse_datetime(value);
            if parsed.is_none() {
                errors.insert(key.into(), json!(["Enter a valid date/time."]));
            }
            parsed
        };
        filters.modified_gte = datetime("modified__gte", &mut errors);
        filters.modified_lte = datetime("modified__lte", &mut errors);
        if errors.is_empty() {
            Ok(filters)
        } else {
            Err(Value::Object(errors))
        }
    }

    fn matches(&self, fields: &Map<String, Value>) -> bool {
        let int = |key: &str| fields.get(key).and_then(Value::as_i64);
        let text = |key: &str| fields.get(key).and_then(Value::as_str);
        let modified = || text("modified").and_then(parse_datetime);
        self.id.is_none_or(|id| int("id") == Some(id))
            && self.customer.is_none_or(|c| int("customer") == Some(c))
            && self
                .number
                .as_deref()
                .is_none_or(|n| text("number") == Some(n))
            && self
                .sf_id
                .as_deref()
                .is_none_or(|s| text("sf_id") == Some(s))
            && self
                .is_active
                .is_none_or(|a| fields.get("is_active").and_then(Value::as_bool) == Some(a))
            && self
                .modified_gte
                .is_none_or(|t| modified().is_some_and(|m| m >= t))
            && self
                .modified_lte
                .is_none_or(|t| modified().is_some_and(|m| m <= t))
    }
}

/// The changes a PATCH body makes, normalised, or DRF's 400 body `{"field": ["message"]}` listing
/// every bad field.
///
/// Field types follow DRF's serializer fields: strings (numbers are taken as their text), booleans
/// (DRF's accepted spellings), the `register` key (an integer), decimals (rendered as strings),
/// dates (`YYYY-MM-DD`). UNCONFIRMED: which fields accept null on Core; the fake accepts null for
/// all but the booleans. `billing_profile` (a nested object, UNCONFIRMED as writable) is merged
/// key by key, and only its existing keys may be set.
fn validate_contract_patch(
    current: &Map<String, Value>,
    body: &Value,
) -> Result<Map<String, Value>, Value> {
    let Value::Object(body) = body else {
        let got = match body {
            Value::Array(_) => "list",
            Value::String(_) => "str",
            Value::Bool(_) => "bool",
            Value::Number(n) if n.is_f64() => "float",
            Value::Number(_) => "int",
            _ => "NoneType",
        };
        return Err(json!({
            "non_field_errors": [format!("Invalid data. Expected a dictionary, but got {got}.")]
        }));
    };
    let mut changes = Map::new();
    let mut errors = Map::new();
    for (key, value) in body {
        let checked = if CONTRACT_READ_ONLY.contains(&key.as_str()) {
            Err(json!([READ_ONLY_MESSAGE]))
        } else {
            match key.as_str() {
                "number" | "email" | "notes" | "channel" | "lead_source" | "sf_id"
                | "qb_job_id" | "maxio_id" | "text_field1" | "text_field2" => string_field(value),
                "is_active" | "is_job" | "unbalanced_revenue_exception" => boolean_field(value),
                "register" => pk_field(value),
                "number_field1" | "number_field2" => decimal_field(value),
                "lead_date" | "entry_date" => date_field(value),
                "billing_profile" => profile_field(current, value),
                _ => Err(json!([UNKNOWN_FIELD_MESSAGE])),
            }
        };
        match checked {
            Ok(value) => {
                changes.insert(key.clone(), value);
            }
            Err(messages) => {
                errors.insert(key.clone(), messages);
            }
        }
    }
    if errors.is_empty() {
        Ok(changes)
    } else {
        Err(Value::Object(errors))
    }
}

fn string_field(value: &Value) -> Result<Value, Value> {
    match value {
        Value::Null | Value::String(_) => Ok(value.clone()),
        Value::Number(n) => Ok(json!(n.to_string())),
        _ => Err(json!(["Not a valid string."])),
    }
}

fn boolean_field(value: &Value) -> Result<Value, Value> {
    let parsed = match value {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => match n.as_i64() {
            Some(1) => Some(true),
            Some(0) => Some(false),
            _ => None,
        },
        Value::String(s) => match s.as_str() {
            "t" | "T" | "y" | "Y" | "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on"
            | "On" | "ON" | "1" => Some(true),
            "f" | "F" | "n" | "N" | "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off"
            | "Off" | "OFF" | "0" => Some(false),
            _ => None,
        },
        Value::Null => return Err(json!(["This field may not be null."])),
        _ => None,
    };
    parsed
        .map(Value::Bool)
        .ok_or_else(|| json!(["Must be a valid boolean."]))
}

fn pk_field(value: &Value) -> Result<Value, Value> {
    match value {
        Value::Null => Ok(Value::Null),
        Value::Number(n) if n.as_i64().is_some() => Ok(value.clone()),
        Value::String(s) if s.trim().parse::<i64>().is_ok() => {
            Ok(json!(s.trim().parse::<i64>().unwrap_or_default()))
        }
        Value::String(_) => Err(json!(["Incorrect type. Expected pk value, received str."])),
        _ => Err(json!(["Incorrect type. Expected pk value."])),
    }
}

fn decimal_field(value: &Value) -> Result<Value, Value> {
    match value {
        Value::Null => Ok(Value::Null),
        Value::Number(n) => Ok(json!(n.to_string())),
        Value::String(s) if s.trim().parse::<f64>().is_ok_and(f64::is_finite) => {
            Ok(json!(s.trim()))
        }
        _ => Err(json!(["A valid number is required."])),
    }
}

fn date_field(value: &Value) -> Result<Value, Value> {
    match value {
        Value::Null => Ok(Value::Null),
        Value::String(s) if NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok() => Ok(value.clone()),
        _ => Err(json!([
            "Date has wrong format. Use one of these formats instead: YYYY-MM-DD."
        ])),
    }
}

fn profile_field(current: &Map<String, Value>, value: &Value) -> Result<Value, Value> {
    let Value::Object(changes) = value else {
        return Err(json!({"non_field_errors": ["Invalid data. Expected a dictionary."]}));
    };
    let known = current.get("billing_profile").and_then(Value::as_object);
    let mut errors = Map::new();
    for key in changes.keys() {
        if !known.is_some_and(|k| k.contains_key(key)) {
            errors.insert(key.clone(), json!([UNKNOWN_FIELD_MESSAGE]));
        }
    }
    if errors.is_empty() {
        Ok(value.clone())
    } else {
        Err(Value::Object(errors))
    }
}
