//! The ledger in Amazon DynamoDB.
//!
//! Table: partition key `deal` (S), sort key `step` (S), TTL on `expires_at` (N, epoch seconds).
//! Other attributes: `status` (S: `INPROGRESS` | `COMPLETED` | `FAILED`), `attempts` (N),
//! `started_at`, `updated_at`, `lease_until` (S, RFC 3339 UTC with milliseconds, so text order is
//! time order), `targets` (M of S), `last_error` (S).
//!
//! Every state change is one `UpdateItem` with a `ConditionExpression`, answering the new item
//! (`ReturnValues=ALL_NEW`) or, when the condition fails, the item that made it fail
//! (`ReturnValuesOnConditionCheckFailure=ALL_OLD`), so no decision rests on a separate read.
//! `begin` first tries to start (`attribute_not_exists(#deal) OR #status = :failed`); when that is
//! refused by an `INPROGRESS` item whose lease ran out, it takes that item over on the condition
//! that it is still the one it saw (`#status = :inprogress AND #attempts = :seen AND
//! (attribute_not_exists(#lease) OR #lease < :now)`), so of two attempts resuming at once only
//! one wins.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use crate::settings::Env;
use async_trait::async_trait;
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};
use chrono::{DateTime, Utc};

use super::record::{
    already_holds, check_key, check_target_name, clip_error, expiry, instant, not_in_progress,
    timestamp_text,
};
use super::{Begin, Ledger, LedgerError, StepRecord, StepStatus};

/// The partition key attribute: the deal (Opportunity or Order Id).
pub const PARTITION_KEY: &str = "deal";
/// The sort key attribute: the step.
pub const SORT_KEY: &str = "step";
/// The attribute DynamoDB's TTL deletes expired records by.
pub const TTL_ATTRIBUTE: &str = "expires_at";
/// The variable naming the table.
pub const TABLE_VARIABLE: &str = "LEDGER_TABLE_NAME";
/// The variable giving the retention in days.
pub const RETENTION_VARIABLE: &str = "LEDGER_RETENTION_DAYS";
pub const DEFAULT_RETENTION_DAYS: u64 = 90;

const STATUS: &str = "status";
const ATTEMPTS: &str = "attempts";
const STARTED_AT: &str = "started_at";
const UPDATED_AT: &str = "updated_at";
const LEASE_UNTIL: &str = "lease_until";
const TARGETS: &str = "targets";
const LAST_ERROR: &str = "last_error";

/// How many times `begin` re-reads a record that changed under it before giving up (retryably).
const BEGIN_ROUNDS: usize = 4;

/// The ledger's table and how long its records are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerSettings {
    pub table: String,
    pub retention: Duration,
}

impl LedgerSettings {
    /// Reads `LEDGER_TABLE_NAME` and `LEDGER_RETENTION_DAYS` (default 90).
    pub fn read(env: &mut Env<'_>) -> Option<LedgerSettings> {
        let table = env.required(TABLE_VARIABLE, "the DynamoDB ledger table");
        let days = env.whole(RETENTION_VARIABLE, DEFAULT_RETENTION_DAYS, 1, 36_500);
        Some(LedgerSettings {
            table: table?,
            retention: Duration::from_secs(days * 24 * 3600),
        })
    }
}

/// The ledger in a DynamoDB table (see the module documentation for its layout).
pub struct DynamoDbLedger {
    client: aws_sdk_dynamodb::Client,
    table: String,
    retention: Duration,
}

/// The outcome of a conditional write.
enum Written {
    Applied(StepRecord),
    /// The condition failed; the item that failed it, if there was one.
    Refused(Option<StepRecord>),
}

/// Expression attribute names and values, only those an expression uses (DynamoDB refuses unused
/// ones).
#[derive(Default)]
struct Expr {
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

impl Expr {
    fn name(mut self, placeholder: &str, attribute: &str) -> Self {
        self.names
            .insert(placeholder.to_string(), attribute.to_string());
        self
    }

    fn value(mut self, placeholder: &str, value: AttributeValue) -> Self {
        self.values.insert(placeholder.to_string(), value);
        self
    }

    fn s(self, placeholder: &str, value: impl Into<String>) -> Self {
        self.value(placeholder, AttributeValue::S(value.into()))
    }

    fn n(self, placeholder: &str, value: impl ToString) -> Self {
        self.value(placeholder, AttributeValue::N(value.to_string()))
    }
}

impl DynamoDbLedger {
    pub fn new(client: aws_sdk_dynamodb::Client, table: String, retention: Duration) -> Self {
        DynamoDbLedger {
            client,
            table,
            retention,
        }
    }

    /// The ledger of `settings`' table.
    pub fn from_settings(sdk: &aws_config::SdkConfig, settings: &LedgerSettings) -> Self {
        DynamoDbLedger::new(
            aws_sdk_dynamodb::Client::new(sdk),
            settings.table.clone(),
            settings.retention,
        )
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    pub fn retention(&self) -> Duration {
        self.retention
    }

    fn expires(&self, now: DateTime<Utc>) -> AttributeValue {
        AttributeValue::N(expiry(now, self.retention).to_string())
    }

    /// One conditional `UpdateItem`.
    async fn update(
        &self,
        deal_id: &str,
        step: &str,
        update: String,
        condition: &str,
        expr: Expr,
    ) -> Result<Written, LedgerError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PARTITION_KEY, AttributeValue::S(deal_id.to_string()))
            .key(SORT_KEY, AttributeValue::S(step.to_string()))
            .update_expression(update)
            .condition_expression(condition)
            .set_expression_attribute_names(Some(expr.names))
            .set_expression_attribute_values(Some(expr.values))
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(out) => match out.attributes() {
                Some(item) => Ok(Written::Applied(self.parse(item)?)),
                None => Err(LedgerError::invalid(format!(
                    "table {}: UpdateItem for deal {deal_id} step {step} answered no item",
                    self.table
                ))),
            },
            Err(e) => {
                if let SdkError::ServiceError(se) = &e
                    && let UpdateItemError::ConditionalCheckFailedException(ccf) = se.err()
                {
                    let seen = ccf.item().map(|i| self.parse(i)).transpose()?;
                    return Ok(Written::Refused(seen));
                }
                Err(self.sdk_error("UpdateItem", deal_id, step, e))
            }
        }
    }

    /// Takes a new or `FAILED` step.
    async fn start(
        &self,
        deal_id: &str,
        step: &str,
        now: DateTime<Utc>,
        lease: DateTime<Utc>,
    ) -> Result<Written, LedgerError> {
        let update =
            "SET #status = :inprogress, #attempts = if_not_exists(#attempts, :zero) + :one, \
             #started = if_not_exists(#started, :now), #updated = :now, #lease = :lease, \
             #targets = if_not_exists(#targets, :empty), #expires = :expires"
                .to_string();
        let condition = "attribute_not_exists(#deal) OR #status = :failed";
        let expr = Expr::default()
            .name("#deal", PARTITION_KEY)
            .name("#status", STATUS)
            .name("#attempts", ATTEMPTS)
            .name("#started", STARTED_AT)
            .name("#updated", UPDATED_AT)
            .name("#lease", LEASE_UNTIL)
            .name("#targets", TARGETS)
            .name("#expires", TTL_ATTRIBUTE)
            .s(":inprogress", StepStatus::InProgress.as_str())
            .s(":failed", StepStatus::Failed.as_str())
            .n(":zero", 0)
            .n(":one", 1)
            .s(":now", timestamp_text(now))
            .s(":lease", timestamp_text(lease))
            .value(":empty", AttributeValue::M(HashMap::new()))
            .value(":expires", self.expires(now));
        self.update(deal_id, step, update, condition, expr).await
    }

    /// Takes over the `INPROGRESS` step `seen` whose lease ran out, if it is still that one.
    async fn resume(
        &self,
        seen: &StepRecord,
        now: DateTime<Utc>,
        lease: DateTime<Utc>,
    ) -> Result<Written, LedgerError> {
        let update = "SET #attempts = #attempts + :one, #updated = :now, #lease = :lease, \
             #targets = if_not_exists(#targets, :empty), #expires = :expires"
            .to_string();
        let condition = "#status = :inprogress AND #attempts = :seen \
             AND (attribute_not_exists(#lease) OR #lease < :now)";
        let expr = Expr::default()
            .name("#status", STATUS)
            .name("#attempts", ATTEMPTS)
            .name("#updated", UPDATED_AT)
            .name("#lease", LEASE_UNTIL)
            .name("#targets", TARGETS)
            .name("#expires", TTL_ATTRIBUTE)
            .s(":inprogress", StepStatus::InProgress.as_str())
            .n(":seen", seen.attempts)
            .n(":one", 1)
            .s(":now", timestamp_text(now))
            .s(":lease", timestamp_text(lease))
            .value(":empty", AttributeValue::M(HashMap::new()))
            .value(":expires", self.expires(now));
        self.update(&seen.deal_id, &seen.step, update, condition, expr)
            .await
    }

    /// `SET` clauses writing `targets` into the map one entry each (so recorded ones stay).
    fn target_clauses(targets: &BTreeMap<String, String>, mut expr: Expr) -> (String, Expr) {
        let mut clauses = String::new();
        for (i, (name, value)) in targets.iter().enumerate() {
            clauses.push_str(&format!(", #targets.#t{i} = :t{i}"));
            expr = expr
                .name(&format!("#t{i}"), name)
                .s(&format!(":t{i}"), value.clone());
        }
        if !targets.is_empty() {
            expr = expr.name("#targets", TARGETS);
        }
        (clauses, expr)
    }

    fn parse(&self, item: &HashMap<String, AttributeValue>) -> Result<StepRecord, LedgerError> {
        parse_item(item).map_err(|problem| {
            let key = |k| {
                item.get(k)
                    .and_then(|v| v.as_s().ok())
                    .map_or("?", String::as_str)
            };
            LedgerError::invalid(format!(
                "table {}: the record of deal {} step {} is malformed: {problem}",
                self.table,
                key(PARTITION_KEY),
                key(SORT_KEY)
            ))
        })
    }

    fn sdk_error<E>(
        &self,
        operation: &str,
        deal_id: &str,
        step: &str,
        e: SdkError<E, HttpResponse>,
    ) -> LedgerError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let context = format!(
            "table {}: {operation} for deal {deal_id} step {step}",
            self.table
        );
        match &e {
            SdkError::ServiceError(se) => {
                let code = se.err().code().unwrap_or_default();
                let detail = se.err().message().unwrap_or_default();
                match code {
                    "ResourceNotFoundException" => LedgerError::invalid(format!(
                        "table {} does not exist ({operation}: {code} {detail})",
                        self.table
                    )),
                    "ThrottlingException"
                    | "ProvisionedThroughputExceededException"
                    | "RequestLimitExceeded"
                    | "InternalServerError"
                    | "ServiceUnavailable"
                    | "TransactionConflictException"
                    | "ReplicatedWriteConflictException" => {
                        LedgerError::unavailable(format!("{context}: {code} {detail}"))
                    }
                    _ if se.raw().status().is_server_error() => LedgerError::unavailable(format!(
                        "{context}: HTTP {} {code} {detail}",
                        se.raw().status().as_u16()
                    )),
                    _ => LedgerError::invalid(format!("{context}: {code} {detail}")),
                }
            }
            SdkError::ConstructionFailure(_) => {
                LedgerError::invalid(format!("{context}: {}", DisplayErrorContext(&e)))
            }
            _ => LedgerError::unavailable(format!("{context}: {}", DisplayErrorContext(&e))),
        }
    }
}

fn text<'a>(item: &'a HashMap<String, AttributeValue>, name: &str) -> Result<&'a str, String> {
    match item.get(name) {
        Some(AttributeValue::S(s)) => Ok(s),
        Some(_) => Err(format!("{name} is not a string")),
        None => Err(format!("{name} is missing")),
    }
}

fn number<T: std::str::FromStr>(
    item: &HashMap<String, AttributeValue>,
    name: &str,
) -> Result<T, String> {
    match item.get(name) {
        Some(AttributeValue::N(n)) => n
            .parse()
            .map_err(|_| format!("{name} {n:?} is not a whole number in range")),
        Some(_) => Err(format!("{name} is not a number")),
        None => Err(format!("{name} is missing")),
    }
}

fn time(item: &HashMap<String, AttributeValue>, name: &str) -> Result<DateTime<Utc>, String> {
    let s = text(item, name)?;
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.to_utc())
        .map_err(|_| format!("{name} {s:?} is not an RFC 3339 instant"))
}

fn parse_item(item: &HashMap<String, AttributeValue>) -> Result<StepRecord, String> {
    let status = text(item, STATUS)?;
    let status = StepStatus::parse(status).ok_or_else(|| format!("unknown status {status:?}"))?;
    let mut targets = BTreeMap::new();
    match item.get(TARGETS) {
        None => {}
        Some(AttributeValue::M(map)) => {
            for (k, v) in map {
                match v {
                    AttributeValue::S(s) => {
                        targets.insert(k.clone(), s.clone());
                    }
                    _ => return Err(format!("target {k} is not a string")),
                }
            }
        }
        Some(_) => return Err("targets is not a map".to_string()),
    }
    Ok(StepRecord {
        deal_id: text(item, PARTITION_KEY)?.to_string(),
        step: text(item, SORT_KEY)?.to_string(),
        status,
        attempts: number(item, ATTEMPTS)?,
        started_at: time(item, STARTED_AT)?,
        updated_at: time(item, UPDATED_AT)?,
        lease_until: match item.get(LEASE_UNTIL) {
            None => None,
            Some(_) => Some(time(item, LEASE_UNTIL)?),
        },
        targets,
        last_error: match item.get(LAST_ERROR) {
            None => None,
            Some(_) => Some(text(item, LAST_ERROR)?.to_string()),
        },
        expires_at: number(item, TTL_ATTRIBUTE)?,
    })
}

#[async_trait]
impl Ledger for DynamoDbLedger {
    async fn begin(
        &self,
        deal_id: &str,
        step: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Begin, LedgerError> {
        check_key(deal_id, step)?;
        let (now, lease) = (instant(now)?, instant(lease_until)?);
        for _ in 0..BEGIN_ROUNDS {
            let seen = match self.start(deal_id, step, now, lease).await? {
                Written::Applied(r) => return Ok(Begin::Started(r)),
                Written::Refused(Some(r)) => r,
                // No item came back with the refusal: read it (consistently).
                Written::Refused(None) => match self.get(deal_id, step).await? {
                    Some(r) => r,
                    None => continue,
                },
            };
            match seen.status {
                StepStatus::Completed => return Ok(Begin::Done(seen)),
                StepStatus::InProgress if seen.lease_is_live(now) => return Ok(Begin::Busy(seen)),
                StepStatus::InProgress => match self.resume(&seen, now, lease).await? {
                    Written::Applied(r) => return Ok(Begin::Resumed(r)),
                    // Another attempt changed it first: look again.
                    Written::Refused(_) => continue,
                },
                // Changed between the write and the read: try again.
                StepStatus::Failed => continue,
            }
        }
        Err(LedgerError::conflict(
            format!(
                "table {}: deal {deal_id} step {step} kept changing while beginning it",
                self.table
            ),
            true,
        ))
    }

    async fn record_targets(
        &self,
        deal_id: &str,
        step: &str,
        targets: &BTreeMap<String, String>,
        now: DateTime<Utc>,
    ) -> Result<(), LedgerError> {
        check_key(deal_id, step)?;
        for name in targets.keys() {
            check_target_name(name)?;
        }
        let now = instant(now)?;
        let expr = Expr::default()
            .name("#status", STATUS)
            .name("#updated", UPDATED_AT)
            .name("#expires", TTL_ATTRIBUTE)
            .s(":inprogress", StepStatus::InProgress.as_str())
            .s(":now", timestamp_text(now))
            .value(":expires", self.expires(now));
        let (clauses, expr) = Self::target_clauses(targets, expr);
        let update = format!("SET #updated = :now, #expires = :expires{clauses}");
        match self
            .update(deal_id, step, update, "#status = :inprogress", expr)
            .await?
        {
            Written::Applied(_) => Ok(()),
            Written::Refused(seen) if already_holds(seen.as_ref(), targets) => Ok(()),
            Written::Refused(seen) => Err(not_in_progress(deal_id, step, seen.as_ref())),
        }
    }

    async fn complete(
        &self,
        deal_id: &str,
        step: &str,
        targets: &BTreeMap<String, String>,
        now: DateTime<Utc>,
    ) -> Result<StepRecord, LedgerError> {
        check_key(deal_id, step)?;
        for name in targets.keys() {
            check_target_name(name)?;
        }
        let now = instant(now)?;
        let expr = Expr::default()
            .name("#status", STATUS)
            .name("#updated", UPDATED_AT)
            .name("#lease", LEASE_UNTIL)
            .name("#error", LAST_ERROR)
            .name("#expires", TTL_ATTRIBUTE)
            .s(":inprogress", StepStatus::InProgress.as_str())
            .s(":completed", StepStatus::Completed.as_str())
            .s(":now", timestamp_text(now))
            .value(":expires", self.expires(now));
        let (target_clauses, expr) = Self::target_clauses(targets, expr);
        let update = format!(
            "SET #status = :completed, #updated = :now, #expires = :expires{target_clauses} \
             REMOVE #lease, #error"
        );
        match self
            .update(deal_id, step, update, "#status = :inprogress", expr)
            .await?
        {
            Written::Applied(r) => Ok(r),
            Written::Refused(Some(r)) if already_holds(Some(&r), targets) => Ok(r),
            Written::Refused(seen) => Err(not_in_progress(deal_id, step, seen.as_ref())),
        }
    }

    async fn fail(
        &self,
        deal_id: &str,
        step: &str,
        error: &str,
        now: DateTime<Utc>,
    ) -> Result<StepRecord, LedgerError> {
        check_key(deal_id, step)?;
        let now = instant(now)?;
        let update = "SET #status = :failed, #error = :error, \
             #attempts = if_not_exists(#attempts, :zero), \
             #started = if_not_exists(#started, :now), #updated = :now, \
             #targets = if_not_exists(#targets, :empty), #expires = :expires REMOVE #lease"
            .to_string();
        let condition = "attribute_not_exists(#deal) OR #status <> :completed";
        let expr = Expr::default()
            .name("#deal", PARTITION_KEY)
            .name("#status", STATUS)
            .name("#error", LAST_ERROR)
            .name("#attempts", ATTEMPTS)
            .name("#started", STARTED_AT)
            .name("#updated", UPDATED_AT)
            .name("#targets", TARGETS)
            .name("#lease", LEASE_UNTIL)
            .name("#expires", TTL_ATTRIBUTE)
            .s(":failed", StepStatus::Failed.as_str())
            .s(":completed", StepStatus::Completed.as_str())
            .s(":error", clip_error(error))
            .n(":zero", 0)
            .s(":now", timestamp_text(now))
            .value(":empty", AttributeValue::M(HashMap::new()))
            .value(":expires", self.expires(now));
        match self.update(deal_id, step, update, condition, expr).await? {
            Written::Applied(r) => Ok(r),
            Written::Refused(_) => Err(LedgerError::conflict(
                format!(
                    "deal {deal_id} step {step} is already COMPLETED; a failure is not recorded \
                     over it"
                ),
                false,
            )),
        }
    }

    async fn note(
        &self,
        deal_id: &str,
        step: &str,
        status: StepStatus,
        targets: &BTreeMap<String, String>,
        error: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<StepRecord, LedgerError> {
        check_key(deal_id, step)?;
        for name in targets.keys() {
            check_target_name(name)?;
        }
        let now = instant(now)?;
        let mut sets = vec![
            "#status = :status",
            "#attempts = if_not_exists(#attempts, :zero) + :one",
            "#started = if_not_exists(#started, :now)",
            "#updated = :now",
            "#expires = :expires",
        ];
        let mut removes = vec!["#lease"];
        let mut expr = Expr::default()
            .name("#status", STATUS)
            .name("#attempts", ATTEMPTS)
            .name("#started", STARTED_AT)
            .name("#updated", UPDATED_AT)
            .name("#expires", TTL_ATTRIBUTE)
            .name("#lease", LEASE_UNTIL)
            .name("#targets", TARGETS)
            .name("#error", LAST_ERROR)
            .s(":status", status.as_str())
            .n(":zero", 0)
            .n(":one", 1)
            .s(":now", timestamp_text(now))
            .value(":expires", self.expires(now));
        if targets.is_empty() {
            sets.push("#targets = if_not_exists(#targets, :targets)");
        } else {
            sets.push("#targets = :targets");
        }
        expr = expr.value(
            ":targets",
            AttributeValue::M(
                targets
                    .iter()
                    .map(|(k, v)| (k.clone(), AttributeValue::S(v.clone())))
                    .collect(),
            ),
        );
        match error {
            Some(e) => {
                sets.push("#error = :error");
                expr = expr.s(":error", clip_error(e));
            }
            None => removes.push("#error"),
        }
        let update = format!("SET {} REMOVE {}", sets.join(", "), removes.join(", "));
        // Always true: `update` wants a condition, and a noted step has none.
        let condition = "attribute_not_exists(#lease) OR attribute_exists(#lease)";
        match self.update(deal_id, step, update, condition, expr).await? {
            Written::Applied(r) => Ok(r),
            Written::Refused(_) => Err(LedgerError::conflict(
                format!("deal {deal_id} step {step}: the note was refused"),
                true,
            )),
        }
    }

    async fn get(&self, deal_id: &str, step: &str) -> Result<Option<StepRecord>, LedgerError> {
        check_key(deal_id, step)?;
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PARTITION_KEY, AttributeValue::S(deal_id.to_string()))
            .key(SORT_KEY, AttributeValue::S(step.to_string()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.sdk_error("GetItem", deal_id, step, e))?;
        out.item().map(|i| self.parse(i)).transpose()
    }

    async fn for_deal(&self, deal_id: &str) -> Result<Vec<StepRecord>, LedgerError> {
        check_key(deal_id, "-")?;
        let mut records = Vec::new();
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("#deal = :deal")
                .expression_attribute_names("#deal", PARTITION_KEY)
                .expression_attribute_values(":deal", AttributeValue::S(deal_id.to_string()))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| self.sdk_error("Query", deal_id, "(all)", e))?;
            for item in out.items() {
                records.push(self.parse(item)?);
            }
            match out.last_evaluated_key() {
                Some(key) if !key.is_empty() => start = Some(key.clone()),
                _ => break,
            }
        }
        Ok(records)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(pairs: &[(&str, AttributeValue)]) -> HashMap<String, AttributeValue> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    fn s(v: &str) -> AttributeValue {
        AttributeValue::S(v.to_string())
    }

    fn n(v: &str) -> AttributeValue {
        AttributeValue::N(v.to_string())
    }

    fn stored() -> Vec<(&'static str, AttributeValue)> {
        vec![
            ("deal", s("006A")),
            ("step", s("whmcs-provision")),
            ("status", s("INPROGRESS")),
            ("attempts", n("2")),
            ("started_at", s("2026-11-28T10:00:00.000Z")),
            ("updated_at", s("2026-11-28T10:05:00.123Z")),
            ("lease_until", s("2026-11-28T10:20:00.000Z")),
            (
                "targets",
                AttributeValue::M(HashMap::from([("whmcs_order_id".to_string(), s("123"))])),
            ),
            ("expires_at", n("1802685900")),
        ]
    }

    #[test]
    fn a_stored_item_reads_back_as_a_record() {
        let r = parse_item(&item(&stored())).unwrap();
        assert_eq!(r.deal_id, "006A");
        assert_eq!(r.status, StepStatus::InProgress);
        assert_eq!(r.attempts, 2);
        assert_eq!(timestamp_text(r.updated_at), "2026-11-28T10:05:00.123Z");
        assert_eq!(r.target("whmcs_order_id"), Some("123"));
        assert_eq!(r.last_error, None);
        assert_eq!(r.expires_at, 1_802_685_900);
    }

    #[test]
    fn a_malformed_item_names_what_is_wrong() {
        let mut pairs = stored();
        pairs[2] = ("status", s("PENDING"));
        assert_eq!(
            parse_item(&item(&pairs)).unwrap_err(),
            "unknown status \"PENDING\""
        );
        let mut pairs = stored();
        pairs[3] = ("attempts", s("2"));
        assert_eq!(
            parse_item(&item(&pairs)).unwrap_err(),
            "attempts is not a number"
        );
        let mut pairs = stored();
        pairs.remove(4);
        assert_eq!(
            parse_item(&item(&pairs)).unwrap_err(),
            "started_at is missing"
        );
    }

    #[test]
    fn the_retention_variable_defaults_to_ninety_days_and_must_be_a_day_count() {
        let read = |get: &dyn Fn(&str) -> Option<String>| {
            let mut env = Env::new(get);
            let s = LedgerSettings::read(&mut env);
            env.finish(s)
        };
        let ledger =
            read(&|k| (k == TABLE_VARIABLE).then(|| "dealbridge-ledger".to_string())).unwrap();
        assert_eq!(ledger.table, "dealbridge-ledger");
        assert_eq!(ledger.retention, Duration::from_secs(90 * 86_400));
        let err = read(&|k| match k {
            TABLE_VARIABLE => Some("t".to_string()),
            _ => Some("ninety".to_string()),
        })
        .unwrap_err();
        assert!(err[0].contains(RETENTION_VARIABLE), "{err:?}");
        let err = read(&|_| None).unwrap_err();
        assert!(err[0].contains(TABLE_VARIABLE), "{err:?}");
    }
}
