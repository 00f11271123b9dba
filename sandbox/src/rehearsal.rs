//! What the sandbox derives from the Salesforce data it loads, so any export rehearses on its own:
//! the files of an `sf data export tree` folder, the Maxio Core tenant Core would have synced from
//! it (a customer per Account, a contract per won Opportunity), the WHMCS clients its Accounts
//! name, and the deals an operator can sync.

use std::path::{Path, PathBuf};

use anyhow::Context;
use dealbridge::salesforce::SfId;
use dealbridge_org::Org;
use serde_json::{Map, Value, json};

use crate::maxio_core::MaxioCoreSandbox;
use crate::whmcs::{Client, ClientStatus, WhmcsSandbox};

/// The data files `paths` name: a file as it is; a folder as `sf data export tree` writes it,
/// the files its `*plan.json` lists in order, or, without a plan, every `.json` file in name
/// order (references resolve across files in any order).
pub fn data_files(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in paths {
        if !path.is_dir() {
            files.push(path.clone());
            continue;
        }
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
            .with_context(|| format!("reading the folder {}", path.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        entries.sort();
        let plan = entries.iter().find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.to_ascii_lowercase().ends_with("plan.json"))
        });
        match plan {
            Some(plan) => files.extend(plan_files(plan)?),
            None => files.extend(entries),
        }
        if files.is_empty() {
            anyhow::bail!("the folder {} holds no .json data file", path.display());
        }
    }
    Ok(files)
}

/// The files an export plan lists (`[{"sobject": ..., "files": ["Account.json"]}, ...]`),
/// relative to the plan's folder.
fn plan_files(plan: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let text = std::fs::read_to_string(plan)
        .with_context(|| format!("reading the export plan {}", plan.display()))?;
    let steps: Vec<Value> = serde_json::from_str(&text)
        .with_context(|| format!("{} is not an export plan (a JSON array)", plan.display()))?;
    let dir = plan.parent().unwrap_or(Path::new("."));
    let mut files = Vec::new();
    for step in &steps {
        for file in step["files"].as_array().into_iter().flatten() {
            let Some(name) = file.as_str() else {
                anyhow::bail!("{}: a file name is not a string: {file}", plan.display());
            };
            files.push(dir.join(name));
        }
    }
    Ok(files)
}

fn text<'a>(record: &'a Map<String, Value>, field: &str) -> Option<&'a str> {
    record
        .get(field)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

fn id18(record: &Map<String, Value>, field: &str) -> Option<String> {
    text(record, field)
        .and_then(|id| SfId::parse(id).ok())
        .map(|id| id.to_string())
}

/// Seeds `core` as Core would have synced `org`: a customer per Account (its name, its Id as
/// number and `sf_id`) with an active contract per won Opportunity (its name, its Id as
/// `sf_id`). Returns the customers added.
pub fn seed_core_from(org: &Org, core: &MaxioCoreSandbox) -> usize {
    let opportunities = org.records("Opportunity");
    let mut added = 0;
    for account in org.records("Account") {
        let Some(account_id) = id18(account, "Id") else {
            continue;
        };
        let customer = core.add_customer(json!({
            "name": text(account, "Name").unwrap_or(&account_id),
            "number": account_id,
            "sf_id": account_id,
        }));
        for opportunity in opportunities.iter().filter(|o| {
            id18(o, "AccountId").as_deref() == Some(account_id.as_str())
                && o.get("IsWon").and_then(Value::as_bool) == Some(true)
        }) {
            let Some(opportunity_id) = id18(opportunity, "Id") else {
                continue;
            };
            core.add_contract(json!({
                "number": text(opportunity, "Name").unwrap_or(&opportunity_id),
                "sf_id": opportunity_id,
                "is_active": true,
                "customer": customer,
            }));
        }
        added += 1;
    }
    added
}

/// Adds to `whmcs` the clients `org`'s Accounts name in `client_field` (the mapping's
/// `account.whmcs_client_id`) that it does not have yet, from the Account's billing address and
/// its first Contact. Returns the client ids added.
pub fn add_whmcs_clients_from(org: &Org, whmcs: &WhmcsSandbox, client_field: &str) -> Vec<u64> {
    let known: Vec<u64> = whmcs.clients().iter().map(|c| c.id).collect();
    let contacts = org.records("Contact");
    let mut added = Vec::new();
    for account in org.records("Account") {
        let Some(client_id) = account
            .get(client_field)
            .and_then(|v| {
                v.as_u64()
                    .or_else(|| v.as_f64().map(|f| f as u64))
                    .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
            })
            .filter(|id| *id > 0)
        else {
            continue;
        };
        if known.contains(&client_id) || added.contains(&client_id) {
            continue;
        }
        let account_id = id18(account, "Id");
        let contact = contacts
            .iter()
            .find(|c| id18(c, "AccountId").is_some_and(|a| Some(a) == account_id));
        let from_contact = |field: &str| {
            contact
                .and_then(|c| text(c, field))
                .unwrap_or_default()
                .to_string()
        };
        let country = text(account, "BillingCountryCode")
            .or_else(|| text(account, "BillingCountry").filter(|c| c.len() == 2))
            .unwrap_or("US");
        let email = match from_contact("Email") {
            e if e.is_empty() => format!("client{client_id}@example.invalid"),
            e => e,
        };
        whmcs.add_client(Client {
            id: client_id,
            first_name: from_contact("FirstName"),
            last_name: from_contact("LastName"),
            company_name: text(account, "Name").unwrap_or_default().to_string(),
            email,
            status: ClientStatus::Active,
            address1: text(account, "BillingStreet")
                .unwrap_or_default()
                .lines()
                .next()
                .unwrap_or_default()
                .to_string(),
            city: text(account, "BillingCity").unwrap_or_default().to_string(),
            state: text(account, "BillingStateCode")
                .or_else(|| text(account, "BillingState"))
                .unwrap_or_default()
                .to_string(),
            postcode: text(account, "BillingPostalCode")
                .unwrap_or_default()
                .to_string(),
            country_code: country.to_string(),
            phone: text(account, "Phone").unwrap_or_default().to_string(),
            ..Client::default()
        });
        added.push(client_id);
    }
    added
}

/// A deal of the loaded data: an Opportunity, or an Order (the WHMCS approval trigger).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedDeal {
    pub id: String,
    pub sobject: &'static str,
    /// The record's `referenceId` in the export, if it had one.
    pub reference: Option<String>,
    pub name: String,
}

/// Every Opportunity, then every Order of `org`, in load order.
pub fn deals(org: &Org) -> Vec<LoadedDeal> {
    let mut out = Vec::new();
    for (sobject, name_field) in [("Opportunity", "Name"), ("Order", "OrderNumber")] {
        for record in org.records(sobject) {
            let Some(id) = text(record, "Id").and_then(|id| SfId::parse(id).ok()) else {
                continue;
            };
            out.push(LoadedDeal {
                reference: org.reference_of(&id).map(str::to_string),
                name: text(record, name_field).unwrap_or_default().to_string(),
                id: id.to_string(),
                sobject,
            });
        }
    }
    out
}
