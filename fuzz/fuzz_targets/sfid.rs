//! `SfId::parse` on arbitrary text: it never panics, accepts only 15 or 18 letters and digits with
//! a right checksum, and what it accepts is canonical: the 18-character form re-parses to itself,
//! the 15-character form to the same record, and any other checksum is refused.

#![no_main]

use dealbridge::salesforce::SfId;
use libfuzzer_sys::fuzz_target;

const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

fn check_text(raw: &str) {
    let Ok(id) = SfId::parse(raw) else {
        return;
    };
    assert!(raw.len() == 15 || raw.len() == 18, "{raw:?}");
    assert!(raw.bytes().all(|b| b.is_ascii_alphanumeric()), "{raw:?}");
    assert_eq!(id.as_str().len(), 18);
    assert_eq!(id.to_15(), &raw[..15]);
    if raw.len() == 18 {
        assert!(
            raw[15..].eq_ignore_ascii_case(&id.as_str()[15..]),
            "{raw:?}"
        );
    }
    assert_eq!(SfId::parse(id.as_str()).as_ref(), Ok(&id));
    let short = SfId::parse(id.to_15()).expect("the 15-character form");
    assert!(short.same_record(&id));
}

/// Builds a valid 15-character Id from the bytes and checks every other checksum is refused.
fn check_checksums(data: &[u8]) {
    if data.len() < 18 {
        return;
    }
    let base: String = data[..15]
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
        .collect();
    let id = SfId::parse(&base).expect("15 letters and digits");
    for (pos, b) in data[15..18].iter().enumerate() {
        let replacement = char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]);
        let mut forged: Vec<char> = id.as_str().chars().collect();
        if forged[15 + pos].eq_ignore_ascii_case(&replacement) {
            continue;
        }
        forged[15 + pos] = replacement;
        let forged: String = forged.into_iter().collect();
        assert!(SfId::parse(&forged).is_err(), "{forged} accepted");
    }
}

fuzz_target!(|data: &[u8]| {
    check_text(&String::from_utf8_lossy(data));
    check_checksums(data);
});
