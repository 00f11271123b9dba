//! The org's lookup index: for each sObject and lookup field, the records whose lookup names each
//! target record. A query filtered by a lookup (directly or through a parent path) and a child
//! subquery read the records that can match instead of every record of the sObject; the query's
//! own filter still decides which of them do. Deleted records stay indexed (`queryAll` sees them).

use std::collections::HashMap;

use dealbridge::salesforce::SfId;
use serde_json::Value;

/// sObject -> lookup field -> target (15-character Id) -> referring records (15-character Ids).
#[derive(Debug, Clone, Default)]
pub(crate) struct Lookups {
    by_sobject: HashMap<String, HashMap<String, HashMap<String, Vec<String>>>>,
}

impl Lookups {
    /// Records that `record` (of `sobject`) names `value`'s record in `field`.
    pub(crate) fn add(&mut self, sobject: &str, field: &str, value: &Value, record: &str) {
        let Some(target) = target_of(value) else {
            return;
        };
        let referrers = self
            .by_sobject
            .entry(sobject.to_string())
            .or_default()
            .entry(field.to_string())
            .or_default()
            .entry(target)
            .or_default();
        if !referrers.iter().any(|r| r == record) {
            referrers.push(record.to_string());
        }
    }

    /// Forgets that `record` names `value`'s record in `field`.
    pub(crate) fn remove(&mut self, sobject: &str, field: &str, value: &Value, record: &str) {
        let Some(target) = target_of(value) else {
            return;
        };
        if let Some(referrers) = self
            .by_sobject
            .get_mut(sobject)
            .and_then(|fields| fields.get_mut(field))
            .and_then(|targets| targets.get_mut(&target))
        {
            referrers.retain(|r| r != record);
        }
    }

    /// The records of `sobject` whose `field` names `target` (a 15-character Id), in no
    /// particular order.
    pub(crate) fn referrers(&self, sobject: &str, field: &str, target: &str) -> &[String] {
        self.by_sobject
            .get(sobject)
            .and_then(|fields| fields.get(field))
            .and_then(|targets| targets.get(target))
            .map_or(&[], Vec::as_slice)
    }
}

/// The 15-character Id a stored lookup value names, if it is set.
fn target_of(value: &Value) -> Option<String> {
    let id = SfId::parse_exact(value.as_str()?).ok()?;
    Some(id.to_15().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ACME: &str = "001SB0000000001";

    #[test]
    fn a_lookup_is_found_by_its_target_in_either_id_form_and_forgotten_when_it_changes() {
        let mut index = Lookups::default();
        let long = SfId::parse_exact(ACME).unwrap().as_str().to_string();
        index.add("Contact", "AccountId", &json!(long), "003SB0000000001");
        index.add("Contact", "AccountId", &json!(ACME), "003SB0000000002");
        index.add("Contact", "AccountId", &json!(ACME), "003SB0000000002");
        index.add("Contact", "AccountId", &Value::Null, "003SB0000000003");
        assert_eq!(
            index.referrers("Contact", "AccountId", ACME),
            ["003SB0000000001", "003SB0000000002"]
        );
        index.remove("Contact", "AccountId", &json!(ACME), "003SB0000000001");
        assert_eq!(
            index.referrers("Contact", "AccountId", ACME),
            ["003SB0000000002"]
        );
        assert!(index.referrers("Contact", "OwnerId", ACME).is_empty());
        assert!(index.referrers("Case", "AccountId", ACME).is_empty());
    }
}
