//! PHP `serialize()` of arbitrary values and of arbitrary JSON objects: it never panics, every
//! string is written with its length in bytes, and the output reads back to the same value.

#![no_main]

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use dealbridge::whmcs::php::{PhpKey, PhpValue, encode_map, serialize};
use libfuzzer_sys::arbitrary::{self, Unstructured};
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};

fn value(u: &mut Unstructured<'_>, depth: u32) -> arbitrary::Result<PhpValue> {
    let last = if depth >= 4 { 4 } else { 5 };
    Ok(match u.int_in_range(0..=last)? {
        0 => PhpValue::Null,
        1 => PhpValue::Bool(u.arbitrary()?),
        2 => PhpValue::Int(u.arbitrary()?),
        3 => PhpValue::Float(format!(
            "{}.{}",
            u.arbitrary::<i64>()?,
            u.arbitrary::<u32>()?
        )),
        4 => PhpValue::String(u.arbitrary()?),
        _ => {
            let len = u.int_in_range(0..=4)?;
            let mut entries = Vec::with_capacity(len);
            for _ in 0..len {
                let key = if u.arbitrary()? {
                    PhpKey::Int(u.arbitrary()?)
                } else {
                    PhpKey::from_text(&u.arbitrary::<String>()?)
                };
                entries.push((key, value(u, depth + 1)?));
            }
            PhpValue::Array(entries)
        }
    })
}

/// Reads `digits` up to `end`.
fn until(input: &[u8], end: u8) -> Option<(&[u8], &[u8])> {
    let at = input.iter().position(|b| *b == end)?;
    Some((&input[..at], &input[at + 1..]))
}

fn number<T: std::str::FromStr>(digits: &[u8]) -> Option<T> {
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// `s:<bytes>:"...";` with exactly `<bytes>` bytes between the quotes.
fn string(input: &[u8]) -> Option<(String, &[u8])> {
    let (len, rest) = until(input, b':')?;
    let len: usize = number(len)?;
    let rest = rest.strip_prefix(b"\"")?;
    let text = std::str::from_utf8(rest.get(..len)?).ok()?.to_owned();
    let rest = rest[len..].strip_prefix(b"\";")?;
    Some((text, rest))
}

/// A minimal `unserialize()` for what `serialize` writes.
fn read(input: &[u8]) -> Option<(PhpValue, &[u8])> {
    let (tag, rest) = (input.get(..2)?, &input[2..]);
    match tag {
        b"N;" => Some((PhpValue::Null, rest)),
        b"b:" => {
            let (b, rest) = until(rest, b';')?;
            Some((PhpValue::Bool(b == b"1"), rest))
        }
        b"i:" => {
            let (n, rest) = until(rest, b';')?;
            Some((PhpValue::Int(number(n)?), rest))
        }
        b"d:" => {
            let (d, rest) = until(rest, b';')?;
            Some((PhpValue::Float(String::from_utf8(d.to_vec()).ok()?), rest))
        }
        b"s:" => {
            let (s, rest) = string(rest)?;
            Some((PhpValue::String(s), rest))
        }
        b"a:" => {
            let (count, rest) = until(rest, b':')?;
            let count: usize = number(count)?;
            let mut rest = rest.strip_prefix(b"{")?;
            let mut entries = Vec::new();
            for _ in 0..count {
                let (key, after) = read(rest)?;
                let key = match key {
                    PhpValue::Int(n) => PhpKey::Int(n),
                    PhpValue::String(s) => PhpKey::Str(s),
                    _ => return None,
                };
                let (value, after) = read(after)?;
                entries.push((key, value));
                rest = after;
            }
            Some((PhpValue::Array(entries), rest.strip_prefix(b"}")?))
        }
        _ => None,
    }
}

fn check(value: &PhpValue) {
    let written = serialize(value);
    if let PhpValue::String(s) = value {
        assert!(
            written.starts_with(&format!("s:{}:\"", s.len())),
            "{written}"
        );
    }
    let (back, rest) = read(written.as_bytes()).expect("the output reads back");
    assert!(rest.is_empty(), "trailing output: {written}");
    assert_eq!(&back, value, "{written}");
}

fuzz_target!(|data: &[u8]| {
    if let Ok(map) = serde_json::from_slice::<Map<String, Value>>(data) {
        let value = PhpValue::from_json_map(&map);
        check(&value);
        let decoded = STANDARD.decode(encode_map(&map)).expect("base64");
        assert_eq!(decoded, serialize(&value).into_bytes());
    }
    let mut u = Unstructured::new(data);
    if let Ok(v) = value(&mut u, 0) {
        check(&v);
    }
});
