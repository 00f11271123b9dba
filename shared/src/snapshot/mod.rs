//! The deal snapshot: its model, the one Composite request that loads it, and the loader.

pub mod assemble;
pub mod batch;
pub mod fields;
pub mod load;
pub mod model;
pub mod query;

pub use load::SnapshotLoader;
pub use model::*;

use crate::salesforce::{SalesforceError, SfId};

/// What loading a deal can give besides an error.
#[derive(Debug, Clone, PartialEq)]
pub enum LoadOutcome {
    Loaded(Box<DealSnapshot>),
    /// The Opportunity exists but CPQ has not created its Order yet: try again later (a delayed
    /// re-dispatch, never a sleep).
    OrderPending {
        opportunity_id: SfId,
        account_id: SfId,
        stage: String,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("{sobject} {id} does not exist or is not visible to the integration user")]
    NotFound { sobject: &'static str, id: SfId },
    #[error("{what} cannot be read: {reason}")]
    Invalid { what: String, reason: String },
    #[error(transparent)]
    Salesforce(#[from] SalesforceError),
}

impl SnapshotError {
    pub fn is_retryable(&self) -> bool {
        match self {
            SnapshotError::Salesforce(e) => e.is_retryable(),
            SnapshotError::NotFound { .. } | SnapshotError::Invalid { .. } => false,
        }
    }
}
