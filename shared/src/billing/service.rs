//! The state of one WHMCS service as Salesforce shows it on its order product: the service's
//! status and next due date as WHMCS answers them (GetClientsProducts), written by upsert on the
//! order product's WHMCS service id (an External ID).

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::state::salesforce_datetime;
use crate::mapping::Mapping;
use crate::salesforce::RecordUpsert;
use crate::whmcs::ClientProduct;

/// The order product fields the mapping writes for `service`, keyed by its WHMCS service id;
/// None when the mapping names no service id field to upsert by.
///
/// The status is WHMCS's own text (`Active`, `Suspended`, `Terminated`, ...), kept as WHMCS
/// says it rather than checked against a list, so a status WHMCS adds is shown, not refused.
pub fn service_upsert(
    service: &ClientProduct,
    mapping: &Mapping,
    now: DateTime<Utc>,
) -> Option<RecordUpsert> {
    let item = &mapping.order_item;
    item.whmcs_service_id.as_ref()?;
    let mut fields = Map::new();
    if let Some(name) = &item.whmcs_service_status {
        fields.insert(
            name.clone(),
            Value::String(service.status.trim().to_string()),
        );
    }
    if let Some(name) = &item.whmcs_next_due_date {
        let due = service.next_due_date.map_or(Value::Null, |d| {
            Value::String(d.format("%Y-%m-%d").to_string())
        });
        fields.insert(name.clone(), due);
    }
    if let Some(name) = &item.whmcs_service_synced_at {
        fields.insert(name.clone(), salesforce_datetime(now));
    }
    Some(RecordUpsert {
        key: service.id.clone(),
        fields,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn service(status: &str, next_due: &str) -> ClientProduct {
        serde_json::from_value(json!({
            "id": 101, "clientid": 7, "orderid": 55, "pid": 3, "name": "Fibre 500",
            "domain": "", "regdate": "2026-11-01", "nextduedate": next_due,
            "terminationdate": "0000-00-00", "billingcycle": "Monthly",
            "recurringamount": "49.00", "status": status
        }))
        .unwrap()
    }

    #[test]
    fn a_service_is_written_by_its_id_with_its_status_and_next_due_date() {
        let now = DateTime::parse_from_rfc3339("2026-12-04T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let upsert = service_upsert(
            &service("Suspended", "2026-12-01"),
            &Mapping::default(),
            now,
        )
        .unwrap();
        assert_eq!(upsert.key, "101");
        assert_eq!(
            Value::Object(upsert.fields),
            json!({"WHMCS_Service_Status__c": "Suspended",
                   "WHMCS_Next_Due_Date__c": "2026-12-01",
                   "WHMCS_Service_Synced_At__c": "2026-12-04T10:00:00.000Z"})
        );
        let terminated = service_upsert(
            &service("Terminated", "0000-00-00"),
            &Mapping::default(),
            now,
        )
        .unwrap();
        assert_eq!(terminated.fields["WHMCS_Next_Due_Date__c"], Value::Null);
        let mut no_key = Mapping::default();
        no_key.order_item.whmcs_service_id = None;
        assert!(service_upsert(&service("Active", "2026-12-01"), &no_key, now).is_none());
    }
}
