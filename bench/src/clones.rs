//! Copies of a seeded deal for load: the deal's records in `sandbox/data/salesforce/seed.json`
//! (the `sf data export tree` shape), loaded again under new `referenceId`s so the org gives them
//! new Ids, with their references to each other rewritten and their references to the catalog
//! (products, consumption schedules) kept.

use std::collections::HashSet;

use anyhow::{Context, bail};
use dealbridge::salesforce::SfId;
use dealbridge_sandbox::salesforce::{SalesforceSandbox, data_dir};
use serde_json::{Map, Value, json};

/// Record types that belong to the catalog, shared by every deal, never copied.
const CATALOG: [&str; 3] = ["Product2", "ConsumptionSchedule", "Pricebook2"];

/// The bundled seed document.
pub fn seed() -> anyhow::Result<Value> {
    let path = data_dir().join("salesforce").join("seed.json");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

fn collect_reference_ids(value: &Value, out: &mut HashSet<String>) {
    match value {
        Value::Object(map) => {
            if let Some(r) = map
                .get("attributes")
                .and_then(|a| a.get("referenceId"))
                .and_then(Value::as_str)
            {
                out.insert(r.to_string());
            }
            for v in map.values() {
                collect_reference_ids(v, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_reference_ids(v, out)),
        _ => {}
    }
}

/// `value` with every `referenceId` in `ids` and every `@reference` to one of them renamed by
/// `rename`.
fn renamed(value: &Value, ids: &HashSet<String>, rename: &dyn Fn(&str) -> String) -> Value {
    match value {
        Value::Object(map) => {
            let mut out = Map::with_capacity(map.len());
            for (k, v) in map {
                let v = match (k.as_str(), v) {
                    ("referenceId", Value::String(s)) if ids.contains(s) => {
                        Value::String(rename(s))
                    }
                    _ => renamed(v, ids, rename),
                };
                out.insert(k.clone(), v);
            }
            Value::Object(out)
        }
        Value::Array(items) => {
            Value::Array(items.iter().map(|v| renamed(v, ids, rename)).collect())
        }
        Value::String(s) => match s.strip_prefix('@') {
            Some(r) if ids.contains(r) => Value::String(format!("@{}", rename(r))),
            _ => value.clone(),
        },
        other => other.clone(),
    }
}

/// The top-level records of the deal whose `referenceId`s start with `deal` (e.g. `Volume`),
/// catalog records excluded.
fn deal_records(seed: &Value, deal: &str) -> anyhow::Result<Vec<Value>> {
    let records = seed
        .get("records")
        .and_then(Value::as_array)
        .context("the seed has no records")?;
    let picked: Vec<Value> = records
        .iter()
        .filter(|r| {
            let attributes = r.get("attributes");
            let kind = attributes
                .and_then(|a| a.get("type"))
                .and_then(Value::as_str)
                .unwrap_or_default();
            let reference = attributes
                .and_then(|a| a.get("referenceId"))
                .and_then(Value::as_str)
                .unwrap_or_default();
            reference.starts_with(deal) && !CATALOG.contains(&kind)
        })
        .cloned()
        .collect();
    if picked.is_empty() {
        bail!("the seed has no deal {deal}");
    }
    Ok(picked)
}

/// What copy `n` puts before its records' original `referenceId`s.
pub fn copy_prefix(n: usize) -> String {
    format!("Bench{n:05}")
}

/// An export-tree document with `copies` copies of the seeded deal `deal` (the prefix of its
/// `referenceId`s, e.g. `Volume`). Copy `n`'s records are named [`copy_prefix`]`(n)` + the
/// original `referenceId` (e.g. `Bench00007VolumeOpportunity`).
pub fn copies(seed: &Value, deal: &str, copies: usize) -> anyhow::Result<Value> {
    let records = deal_records(seed, deal)?;
    let mut ids = HashSet::new();
    for r in &records {
        collect_reference_ids(r, &mut ids);
    }
    let mut out = Vec::with_capacity(records.len() * copies);
    for n in 0..copies {
        let prefix = copy_prefix(n);
        let rename = |r: &str| format!("{prefix}{r}");
        out.extend(records.iter().map(|r| renamed(r, &ids, &rename)));
    }
    Ok(json!({ "records": out }))
}

/// Loads `copies` copies of the seeded deal `deal` into the sandbox org. Returns each copy's
/// Ids, by the original `referenceId` suffixes asked for in `wanted` (e.g. `["Opportunity",
/// "Account"]` gives `[opportunity, account]` per copy).
pub fn load_copies(
    salesforce: &SalesforceSandbox,
    deal: &str,
    count: usize,
    wanted: &[&str],
) -> anyhow::Result<Vec<Vec<SfId>>> {
    if count == 0 {
        return Ok(Vec::new());
    }
    let doc = copies(&seed()?, deal, count)?;
    salesforce
        .with_org(|org| org.add_tree(&doc))
        .map_err(|e| anyhow::anyhow!("loading copies of {deal}: {e}"))?;
    (0..count)
        .map(|n| {
            wanted
                .iter()
                .map(|suffix| {
                    let reference = format!("{}{deal}{suffix}", copy_prefix(n));
                    salesforce
                        .id_of(&reference)
                        .and_then(|id| SfId::parse(&id).ok())
                        .with_context(|| format!("no record {reference} after loading"))
                })
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_renames_the_deal_and_keeps_the_catalog() {
        let doc = copies(&seed().unwrap(), "Volume", 2).unwrap();
        let text = doc.to_string();
        assert!(text.contains("\"Bench00001VolumeOpportunity\""));
        assert!(text.contains("\"@Bench00000VolumeAccount\""));
        assert!(text.contains("\"@ApiCallsProduct\""));
        assert!(!text.contains("\"@VolumeAccount\""));
    }
}
