//! An in-memory Salesforce org: a schema, records loaded from `sf data export tree` JSON, REST
//! writes with Salesforce's errors, and a SOQL engine (parent paths, child subqueries, semi-joins,
//! ORDER BY / LIMIT / OFFSET) producing the REST API's query records.
//!
//! ```
//! use dealbridge_org::{Org, QueryOptions};
//! use serde_json::json;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let schema = json!({"sobjects": {"Account": {"keyPrefix": "001", "fields": {
//!     "Name": {"type": "string"}
//! }}}});
//! let seed = json!({"records": [
//!     {"attributes": {"type": "Account", "referenceId": "Acme"}, "Name": "Acme"}
//! ]});
//! let org = Org::from_json(&schema, &[seed])?;
//! let acme = org.id_of("Acme").ok_or("Acme was not loaded")?;
//! assert_eq!(acme.to_15(), "001SB0000000001");
//!
//! let rows = org.query(
//!     "SELECT Id, Name FROM Account WHERE Name = 'ACME'",
//!     &QueryOptions::new("62.0"),
//! )?;
//! assert_eq!(
//!     rows,
//!     [json!({
//!         "attributes": {"type": "Account", "url": format!("/services/data/v62.0/sobjects/Account/{acme}")},
//!         "Id": acme.as_str(),
//!         "Name": "Acme"
//!     })]
//! );
//! # Ok(())
//! # }
//! ```

mod error;
mod load;
mod lookups;
mod org;
mod schema;
mod soql;
mod value;

pub use error::{ApiError, LoadError, SfError};
pub use org::{Org, QueryOptions};
pub use schema::{ChildRelationship, Field, FieldType, SObject, Schema};
pub use value::{format_datetime, parse_date, parse_datetime};
