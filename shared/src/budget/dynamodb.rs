//! The budget's slots in Amazon DynamoDB.
//!
//! Table: partition key `site` (S), sort key `slot` (N); attributes `holder` (S: the container),
//! `until` (N: ms since the epoch, the holder's lease) and `expires_at` (N, epoch seconds, a day
//! after the lease: DynamoDB's TTL clears records of crashed containers that were never taken
//! over). A site's slots are one strongly consistent `Query`; taking a slot is a `PutItem` on the
//! condition `attribute_not_exists(#holder) OR #until < :stale`; giving it back a `DeleteItem` on
//! `#holder = :me`. A refused condition is an answer (held by another), not an error.

use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_dynamodb::types::AttributeValue;

use super::table::{SlotRecord, SlotTable, TableError};
use async_trait::async_trait;

/// The variable naming the table.
pub const BUDGET_TABLE_VARIABLE: &str = "MAXIO_AB_BUDGET_TABLE";

/// The partition key attribute (S): the AB site.
pub const SITE: &str = "site";
/// The sort key attribute (N): the slot's number, 0 to N - 1.
pub const SLOT: &str = "slot";
/// The attribute DynamoDB's TTL deletes left-over slots by.
pub const EXPIRES_AT: &str = "expires_at";
const HOLDER: &str = "holder";
const UNTIL: &str = "until";
const CONDITION_FAILED: &str = "ConditionalCheckFailedException";

pub struct DynamoDbSlotTable {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoDbSlotTable {
    pub fn new(client: aws_sdk_dynamodb::Client, table: String) -> DynamoDbSlotTable {
        DynamoDbSlotTable { client, table }
    }

    pub fn from_sdk(sdk: &aws_config::SdkConfig, table: &str) -> DynamoDbSlotTable {
        DynamoDbSlotTable::new(aws_sdk_dynamodb::Client::new(sdk), table.to_string())
    }
}

fn failed<E>(operation: &str, e: aws_sdk_dynamodb::error::SdkError<E>) -> TableError
where
    E: std::error::Error + ProvideErrorMetadata + Send + Sync + 'static,
{
    TableError(format!("{operation}: {}", DisplayErrorContext(e)))
}

fn refused<E: ProvideErrorMetadata>(e: &aws_sdk_dynamodb::error::SdkError<E>) -> bool {
    e.as_service_error()
        .and_then(ProvideErrorMetadata::code)
        .is_some_and(|c| c == CONDITION_FAILED)
}

fn number(item: &std::collections::HashMap<String, AttributeValue>, name: &str) -> Option<i64> {
    item.get(name)?.as_n().ok()?.parse().ok()
}

#[async_trait]
impl SlotTable for DynamoDbSlotTable {
    async fn slots(&self, site: &str) -> Result<Vec<SlotRecord>, TableError> {
        let mut records = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("#site = :site")
                .expression_attribute_names("#site", SITE)
                .expression_attribute_values(":site", AttributeValue::S(site.to_string()))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| failed("Query", e))?;
            for item in out.items() {
                let (Some(slot), Some(until_ms)) = (number(item, SLOT), number(item, UNTIL)) else {
                    return Err(TableError(format!(
                        "a slot of {site} lacks {SLOT} or {UNTIL}"
                    )));
                };
                records.push(SlotRecord {
                    slot: u32::try_from(slot)
                        .map_err(|_| TableError(format!("slot {slot} of {site}")))?,
                    holder: item
                        .get(HOLDER)
                        .and_then(|v| v.as_s().ok())
                        .cloned()
                        .unwrap_or_default(),
                    until_ms,
                });
            }
            match out.last_evaluated_key() {
                Some(key) => start = Some(key.clone()),
                None => return Ok(records),
            }
        }
    }

    async fn take(
        &self,
        site: &str,
        slot: u32,
        holder: &str,
        until_ms: i64,
        stale_before_ms: i64,
    ) -> Result<bool, TableError> {
        let expires_at = until_ms / 1000 + 24 * 3600;
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item(SITE, AttributeValue::S(site.to_string()))
            .item(SLOT, AttributeValue::N(slot.to_string()))
            .item(HOLDER, AttributeValue::S(holder.to_string()))
            .item(UNTIL, AttributeValue::N(until_ms.to_string()))
            .item(EXPIRES_AT, AttributeValue::N(expires_at.to_string()))
            .condition_expression("attribute_not_exists(#holder) OR #until < :stale")
            .expression_attribute_names("#holder", HOLDER)
            .expression_attribute_names("#until", UNTIL)
            .expression_attribute_values(":stale", AttributeValue::N(stale_before_ms.to_string()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if refused(&e) => Ok(false),
            Err(e) => Err(failed("PutItem", e)),
        }
    }

    async fn give_back(&self, site: &str, slot: u32, holder: &str) -> Result<(), TableError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key(SITE, AttributeValue::S(site.to_string()))
            .key(SLOT, AttributeValue::N(slot.to_string()))
            .condition_expression("#holder = :me")
            .expression_attribute_names("#holder", HOLDER)
            .expression_attribute_values(":me", AttributeValue::S(holder.to_string()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if refused(&e) => Ok(()),
            Err(e) => Err(failed("DeleteItem", e)),
        }
    }
}
