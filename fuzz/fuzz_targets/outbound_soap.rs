//! The Outbound Message (SOAP) parser on arbitrary bytes: it never panics, never accepts DTD
//! markup, and whatever it accepts keeps the documented guarantees; every error message fits in a
//! SOAP fault.

#![no_main]

use dealbridge::outbound::{self, FaultCode, MAX_NOTIFICATIONS};
use dealbridge::salesforce::SfId;
use libfuzzer_sys::fuzz_target;

const DTD_MARKUP: [&[u8]; 5] = [b"doctype", b"entity", b"element", b"attlist", b"notation"];

/// Whether `body` holds `<!`, optional whitespace and a DTD keyword, in any casing.
fn has_dtd_markup(body: &[u8]) -> bool {
    body.windows(2)
        .enumerate()
        .filter(|(_, w)| *w == b"<!")
        .any(|(at, _)| {
            let rest = &body[at + 2..];
            let blanks = rest.iter().take_while(|b| b.is_ascii_whitespace()).count();
            let rest = &rest[blanks..];
            DTD_MARKUP.iter().any(|k| {
                rest.get(..k.len())
                    .is_some_and(|head| head.eq_ignore_ascii_case(k))
            })
        })
}

fuzz_target!(|data: &[u8]| {
    match outbound::parse(data) {
        Ok(message) => {
            assert!(!has_dtd_markup(data), "accepted DTD markup");
            assert!(
                std::str::from_utf8(data).is_ok(),
                "accepted a body that is not UTF-8"
            );
            assert!(SfId::parse(&message.organization_id).is_ok());
            assert!((1..=MAX_NOTIFICATIONS).contains(&message.notifications.len()));
            for n in &message.notifications {
                assert!(!n.id.is_empty());
                assert!(!n.sobject_type.is_empty());
                assert_eq!(n.record_id.as_ref(), n.fields.get("Id"));
            }
        }
        Err(e) => {
            let text = e.to_string();
            assert!(!text.is_empty());
            let _ = e.field();
            // The message goes into a fault escaped: the faultstring holds no markup.
            let fault = outbound::fault(FaultCode::Client, &text);
            let inside = fault
                .split_once("<faultstring>")
                .and_then(|(_, rest)| rest.split_once("</faultstring>"))
                .map(|(inside, _)| inside)
                .expect("a faultstring");
            assert!(!inside.contains('<'), "{fault}");
        }
    }
});
