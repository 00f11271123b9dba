//! dealbridge platform-events: Salesforce Event Relay delivers `OrderProvisionRequested__e` platform
//! events to EventBridge; each names an approved Order (`OrderId__c`), dispatched like an Order Id,
//! with its idempotency key (`IdemKey__c`) and correlation id (`CorrelationId__c`) carried through.
//!
//! A failure is returned as an error, so EventBridge retries the invocation and then delivers the
//! event to the function's failure destination, where the dead-letter alarm sees it.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use dealbridge::dispatch::{DispatchError, DispatchOutcome, DispatchRequest, Dispatcher};
use dealbridge::settings::{EventSourceSettings, SourceRefused};
use dealbridge::snapshot::{DealRef, DealRefError};
use dealbridge::wiring::StartError;
use serde_json::Value;
use tracing::{info, warn};

/// The platform event this function takes.
pub const ORDER_PROVISION_REQUESTED: &str = "OrderProvisionRequested__e";

pub struct Deps {
    pub dispatcher: Dispatcher,
    /// The Salesforce event sources whose events are taken.
    pub sources: EventSourceSettings,
}

impl Deps {
    pub fn new(wiring: &dealbridge::wiring::Wiring) -> Result<Deps, StartError> {
        let sources = wiring
            .settings
            .event_sources
            .clone()
            .ok_or_else(|| StartError::new("the event sources configuration was not read"))?;
        Ok(Deps {
            dispatcher: wiring.dispatcher(),
            sources,
        })
    }
}

/// Serves EventBridge's events until the runtime stops. The event is read from its raw text, so a
/// duplicate key is refused rather than resolved to its last value.
pub async fn serve(wiring: &dealbridge::wiring::Wiring) -> Result<(), lambda_runtime::Error> {
    let deps = Deps::new(wiring)?;
    let deps = &deps;
    lambda_runtime::run(lambda_runtime::service_fn(
        move |event: lambda_runtime::LambdaEvent<Box<serde_json::value::RawValue>>| async move {
            let outcome = handle_json(event.payload.get(), deps).await;
            dealbridge::metrics::flush("platform-events");
            outcome.map_err(lambda_runtime::Error::from)
        },
    ))
    .await
}

#[derive(Debug, thiserror::Error)]
pub enum EventError {
    #[error("detail-type {0:?} is not {ORDER_PROVISION_REQUESTED}")]
    UnsupportedType(String),
    #[error("the event has no detail.payload")]
    NoPayload,
    #[error("detail.payload.OrderId__c is missing")]
    MissingOrderId,
    #[error("detail.payload.{field} must be text of at most 80 characters")]
    InvalidText { field: &'static str },
    #[error("OrderId__c: {0}")]
    InvalidOrderId(DealRefError),
    #[error("the event is not valid EventBridge JSON: {0}")]
    Malformed(String),
    #[error("{0}")]
    Source(#[from] SourceRefused),
    #[error(transparent)]
    Dispatch(#[from] DispatchError),
}

/// The parts of the event dispatch needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvisionRequest {
    pub deal: DealRef,
    pub idempotency_key: Option<String>,
    pub correlation_id: String,
}

fn text(payload: &Value, field: &'static str) -> Result<Option<String>, EventError> {
    match payload.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.chars().count() <= 80 && !s.chars().any(char::is_control) => {
            Ok(Some(s.trim().to_string()).filter(|s| !s.is_empty()))
        }
        Some(_) => Err(EventError::InvalidText { field }),
    }
}

/// An optional field that is not what dealbridge takes is ignored, never fatal for the event:
/// the log says which and why (docs/salesforce-setup.md states the rule).
fn optional(payload: &Value, field: &'static str, valid: impl Fn(&str) -> bool) -> Option<String> {
    match text(payload, field) {
        Ok(Some(v)) if valid(&v) => Some(v),
        Ok(None) => None,
        Ok(Some(_)) | Err(_) => {
            warn!(
                field,
                "platform event field ignored: it is not 1 to 80 characters of the kind dealbridge takes"
            );
            None
        }
    }
}

pub fn parse(event: &EventBridgeEvent<Value>) -> Result<ProvisionRequest, EventError> {
    let detail_type = event.detail_type.as_str();
    if detail_type != ORDER_PROVISION_REQUESTED {
        return Err(EventError::UnsupportedType(detail_type.to_string()));
    }
    let payload = event
        .detail
        .get("payload")
        .filter(|p| p.is_object())
        .ok_or(EventError::NoPayload)?;
    let order_id = text(payload, "OrderId__c")?.ok_or(EventError::MissingOrderId)?;
    let deal = DealRef::order(&order_id).map_err(EventError::InvalidOrderId)?;
    let idempotency_key = optional(payload, "IdemKey__c", |_| true);
    let correlation_id = match optional(payload, "CorrelationId__c", valid_correlation_id) {
        Some(c) => c,
        None => match event.id.as_deref() {
            Some(id) if valid_correlation_id(&format!("pe-{id}")) => format!("pe-{id}"),
            _ => format!("pe-{}", hex::encode(rand::random::<[u8; 12]>())),
        },
    };
    Ok(ProvisionRequest {
        deal,
        idempotency_key,
        correlation_id,
    })
}

/// Letters, digits and `.`, `_`, `:`, `-`, at most 80: what a correlation id may be.
fn valid_correlation_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 80
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-'))
}

/// Handles an event from its raw JSON text (as Lambda delivers it): a duplicate key anywhere is
/// refused.
pub async fn handle_json(raw: &str, deps: &Deps) -> Result<DispatchOutcome, EventError> {
    let event: EventBridgeEvent<Value> = dealbridge::json::from_str(raw)
        .map_err(|e| EventError::Malformed(e.to_string()))
        .inspect_err(|e| warn!(error = %e, "platform event refused"))?;
    handle(event, deps).await
}

pub async fn handle(
    event: EventBridgeEvent<Value>,
    deps: &Deps,
) -> Result<DispatchOutcome, EventError> {
    let source = event.source.as_str();
    deps.sources
        .check(source)
        .inspect_err(|e| warn!(reason = %e, "platform event refused: not from an allowed Salesforce event source"))?;
    let request = parse(&event).inspect_err(|e| warn!(error = %e, "platform event refused"))?;
    let outcome = deps
        .dispatcher
        .dispatch(&DispatchRequest {
            deal: request.deal.clone(),
            correlation_id: request.correlation_id.clone(),
            dry_run: false,
            attempt: 0,
            idempotency_key: request.idempotency_key.clone(),
            delayed_key: None,
        })
        .await
        .inspect_err(|e| warn!(deal = %request.deal.id(), correlation_id = %request.correlation_id, error = %e, "platform event not dispatched"))?;
    info!(deal = %request.deal.id(), correlation_id = %request.correlation_id, idempotency_key = ?request.idempotency_key, "platform event dispatched");
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(detail_type: &str, payload: Value) -> EventBridgeEvent<Value> {
        serde_json::from_value(serde_json::json!({
            "version": "0", "id": "7f1c0000-0000-0000-0000-000000000001", "detail-type": detail_type,
            "source": "aws.partner/salesforce.com/00DSB0000000001EAA/0YLSB0000000001AAA",
            "account": "123456789012", "time": "2026-11-20T12:00:00Z", "region": "us-east-1", "resources": [],
            "detail": {"payload": payload}
        }))
        .unwrap()
    }

    #[test]
    fn the_order_id_keys_and_correlation_are_read() {
        let e = event(
            ORDER_PROVISION_REQUESTED,
            serde_json::json!({
                "OrderId__c": "801A000010khO8J", "IdemKey__c": "801A000010khO8J-2026", "CorrelationId__c": "c-9",
                "CreatedDate": 1795000000000i64, "Unknown__c": true
            }),
        );
        let r = parse(&e).unwrap();
        assert_eq!(r.deal, DealRef::order("801A000010khO8J").unwrap());
        assert_eq!(r.idempotency_key.as_deref(), Some("801A000010khO8J-2026"));
        assert_eq!(r.correlation_id, "c-9");
        let e = event(
            ORDER_PROVISION_REQUESTED,
            serde_json::json!({"OrderId__c": "801A000010khO8J"}),
        );
        assert_eq!(
            parse(&e).unwrap().correlation_id,
            "pe-7f1c0000-0000-0000-0000-000000000001"
        );
    }

    #[test]
    fn bad_events_are_named() {
        assert!(matches!(
            parse(&event("AccountChangeEvent", serde_json::json!({}))),
            Err(EventError::UnsupportedType(_))
        ));
        assert!(matches!(
            parse(&event(ORDER_PROVISION_REQUESTED, serde_json::json!({}))),
            Err(EventError::MissingOrderId)
        ));
        assert!(matches!(
            parse(&event(
                ORDER_PROVISION_REQUESTED,
                serde_json::json!({"OrderId__c": "006A000010khO8J"})
            )),
            Err(EventError::InvalidOrderId(_))
        ));
        assert!(matches!(
            parse(&event(
                ORDER_PROVISION_REQUESTED,
                serde_json::json!({"OrderId__c": 801})
            )),
            Err(EventError::InvalidText {
                field: "OrderId__c"
            })
        ));
        let mut e = event(ORDER_PROVISION_REQUESTED, Value::Null);
        e.detail = serde_json::json!({});
        assert!(matches!(parse(&e), Err(EventError::NoPayload)));
    }

    #[test]
    fn a_malformed_optional_field_is_ignored_not_fatal() {
        let e = event(
            ORDER_PROVISION_REQUESTED,
            serde_json::json!({
                "OrderId__c": "801A000010khO8J", "IdemKey__c": "key\nforged", "CorrelationId__c": "has a space"
            }),
        );
        let r = parse(&e).unwrap();
        assert_eq!(r.idempotency_key, None);
        assert_eq!(r.correlation_id, "pe-7f1c0000-0000-0000-0000-000000000001");
    }
}
