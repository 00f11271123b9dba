//! In-memory Salesforce org.
