//! The platform-events function's validation of an EventBridge event, on arbitrary JSON: it never
//! panics, and an accepted event names a valid Order Id with its keys within their limits.

#![no_main]

use aws_lambda_events::eventbridge::EventBridgeEvent;
use dealbridge_platform_events::parse;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(event) = serde_json::from_slice::<EventBridgeEvent<Value>>(data) else {
        return;
    };
    match parse(&event) {
        Ok(request) => {
            assert_eq!(request.deal.id().key_prefix(), "801");
            assert_eq!(request.deal.id().as_str().len(), 18);
            assert!(
                request
                    .idempotency_key
                    .as_ref()
                    .is_none_or(|k| !k.is_empty() && k.chars().count() <= 80)
            );
            assert!(!request.correlation_id.is_empty());
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
});
