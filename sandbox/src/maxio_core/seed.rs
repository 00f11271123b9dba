//! Seeding the fake tenant from a JSON document (`sandbox/data/maxio_core/seed.json`): customers
//! with their contracts, as Core would have synced them. Values starting with `@` name records of
//! the Salesforce seed and are replaced by their Ids.

use std::path::PathBuf;

use serde::Deserialize;
use serde_json::{Map, Value};

use super::MaxioCoreSandbox;

/// The sandbox tenant's data.
pub const SEED_FILE: &str = "maxio_core/seed.json";

#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error("cannot read {0}: {1}")]
    Read(PathBuf, std::io::Error),
    #[error("{0} is not a Maxio Core seed: {1}")]
    Shape(PathBuf, serde_json::Error),
    #[error("{path} refers to {reference}, which the loaded Salesforce data does not have")]
    Unknown { path: PathBuf, reference: String },
}

#[derive(Deserialize)]
struct Seed {
    customers: Vec<SeedCustomer>,
}

#[derive(Deserialize)]
struct SeedCustomer {
    fields: Map<String, Value>,
    #[serde(default)]
    contracts: Vec<Map<String, Value>>,
}

/// The `@references` of the seed document at `path` that `resolve` does not know, in order.
pub fn unresolved(
    path: &std::path::Path,
    resolve: impl Fn(&str) -> Option<String>,
) -> Result<Vec<String>, SeedError> {
    let text = std::fs::read_to_string(path).map_err(|e| SeedError::Read(path.to_path_buf(), e))?;
    let seed: Seed =
        serde_json::from_str(&text).map_err(|e| SeedError::Shape(path.to_path_buf(), e))?;
    let mut missing = Vec::new();
    for customer in &seed.customers {
        for fields in std::iter::once(&customer.fields).chain(&customer.contracts) {
            for value in fields.values() {
                if let Some(reference) = value.as_str().and_then(|s| s.strip_prefix('@'))
                    && resolve(reference).is_none()
                    && !missing.iter().any(|m| m == reference)
                {
                    missing.push(reference.to_string());
                }
            }
        }
    }
    Ok(missing)
}

impl MaxioCoreSandbox {
    /// Adds the customers and contracts of the seed document at `path`, resolving `@reference`
    /// values with `resolve`. Returns the customer ids added.
    pub fn seed(
        &self,
        path: &std::path::Path,
        resolve: impl Fn(&str) -> Option<String>,
    ) -> Result<Vec<i64>, SeedError> {
        let text =
            std::fs::read_to_string(path).map_err(|e| SeedError::Read(path.to_path_buf(), e))?;
        let seed: Seed =
            serde_json::from_str(&text).map_err(|e| SeedError::Shape(path.to_path_buf(), e))?;
        let resolved = |fields: &Map<String, Value>| -> Result<Value, SeedError> {
            let mut out = Map::new();
            for (key, value) in fields {
                let value = match value.as_str().and_then(|s| s.strip_prefix('@')) {
                    Some(reference) => {
                        Value::String(resolve(reference).ok_or_else(|| SeedError::Unknown {
                            path: path.to_path_buf(),
                            reference: reference.to_string(),
                        })?)
                    }
                    None => value.clone(),
                };
                out.insert(key.clone(), value);
            }
            Ok(Value::Object(out))
        };
        let mut ids = Vec::new();
        for customer in &seed.customers {
            let id = self.add_customer(resolved(&customer.fields)?);
            for contract in &customer.contracts {
                let mut fields = resolved(contract)?;
                if let Value::Object(f) = &mut fields {
                    f.insert("customer".into(), Value::from(id));
                }
                self.add_contract(fields);
            }
            ids.push(id);
        }
        Ok(ids)
    }
}
