//! PHP `serialize()` for the subset WHMCS's `configoptions[]`, `customfields[]` and `domainfields[]`
//! parameters take (each is base64 of a serialized PHP array), and the conversion from JSON values.
//!
//! The output matches PHP byte for byte: string lengths are counted in bytes (`s:6:"héllo";`), array
//! keys that PHP would store as integers (`"12"`) are written as integers, and floats keep their
//! decimal text so nothing is rounded through `f64`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rust_decimal::Decimal;
use serde_json::{Map, Value};

/// An array key. PHP arrays have only integer and string keys.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PhpKey {
    Int(i64),
    Str(String),
}

impl PhpKey {
    /// The key PHP stores for the string `key`: a canonical decimal integer (`"12"`, `"-3"`, not
    /// `"012"`, `"+1"` or `"-0"`) that fits 64 bits becomes an integer key, anything else stays a
    /// string.
    pub fn from_text(key: &str) -> PhpKey {
        match canonical_int(key) {
            Some(n) => PhpKey::Int(n),
            None => PhpKey::Str(key.to_string()),
        }
    }
}

fn canonical_int(s: &str) -> Option<i64> {
    let digits = s.strip_prefix('-').unwrap_or(s);
    let canonical = !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'))
        && s != "-0";
    if canonical { s.parse().ok() } else { None }
}

impl From<i64> for PhpKey {
    fn from(n: i64) -> Self {
        PhpKey::Int(n)
    }
}

impl From<&str> for PhpKey {
    fn from(s: &str) -> Self {
        PhpKey::from_text(s)
    }
}

/// A PHP value as `serialize()` sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PhpValue {
    Null,
    Bool(bool),
    Int(i64),
    /// A float, held as its decimal text (`"0.5"`, `"1e100"`) so it is written exactly as given.
    Float(String),
    String(String),
    /// An ordered array; keys are unique in PHP and are expected to be unique here.
    Array(Vec<(PhpKey, PhpValue)>),
}

impl PhpValue {
    /// A float with the decimal's digits, trailing zeros dropped as PHP prints them (`1.50` → `1.5`).
    pub fn from_decimal(d: Decimal) -> PhpValue {
        PhpValue::Float(d.normalize().to_string())
    }

    /// A list: keys 0, 1, 2, ...
    pub fn list(items: impl IntoIterator<Item = PhpValue>) -> PhpValue {
        PhpValue::Array(
            items
                .into_iter()
                .enumerate()
                .map(|(i, v)| (PhpKey::Int(i64::try_from(i).unwrap_or(i64::MAX)), v))
                .collect(),
        )
    }

    /// Converts JSON as PHP's `json_decode($text, true)` would: objects become arrays with their
    /// keys (numeric strings as integer keys), lists become arrays keyed 0..n, integers stay
    /// integers, other numbers become floats with serde_json's text for them.
    pub fn from_json(value: &Value) -> PhpValue {
        match value {
            Value::Null => PhpValue::Null,
            Value::Bool(b) => PhpValue::Bool(*b),
            Value::Number(n) => match n.as_i64() {
                Some(i) => PhpValue::Int(i),
                // Past i64 (or fractional): PHP would hold a float too.
                None => PhpValue::Float(n.to_string()),
            },
            Value::String(s) => PhpValue::String(s.clone()),
            Value::Array(items) => PhpValue::list(items.iter().map(PhpValue::from_json)),
            Value::Object(map) => PhpValue::from_json_map(map),
        }
    }

    /// A JSON object as a PHP array.
    pub fn from_json_map(map: &Map<String, Value>) -> PhpValue {
        PhpValue::Array(
            map.iter()
                .map(|(k, v)| (PhpKey::from_text(k), PhpValue::from_json(v)))
                .collect(),
        )
    }
}

/// `serialize($value)`.
pub fn serialize(value: &PhpValue) -> String {
    let mut out = String::new();
    write_value(&mut out, value);
    out
}

/// `base64_encode(serialize($value))`.
pub fn encode(value: &PhpValue) -> String {
    STANDARD.encode(serialize(value))
}

/// `base64_encode(serialize($map))` for a JSON object, the form of one `configoptions[i]` or
/// `customfields[i]` entry.
pub fn encode_map(map: &Map<String, Value>) -> String {
    encode(&PhpValue::from_json_map(map))
}

fn write_str(out: &mut String, s: &str) {
    out.push_str("s:");
    out.push_str(&s.len().to_string());
    out.push_str(":\"");
    out.push_str(s);
    out.push_str("\";");
}

fn write_key(out: &mut String, key: &PhpKey) {
    match key {
        PhpKey::Int(n) => {
            out.push_str("i:");
            out.push_str(&n.to_string());
            out.push(';');
        }
        PhpKey::Str(s) => write_str(out, s),
    }
}

fn write_value(out: &mut String, value: &PhpValue) {
    match value {
        PhpValue::Null => out.push_str("N;"),
        PhpValue::Bool(b) => out.push_str(if *b { "b:1;" } else { "b:0;" }),
        PhpValue::Int(n) => {
            out.push_str("i:");
            out.push_str(&n.to_string());
            out.push(';');
        }
        PhpValue::Float(text) => {
            out.push_str("d:");
            out.push_str(text);
            out.push(';');
        }
        PhpValue::String(s) => write_str(out, s),
        PhpValue::Array(entries) => {
            out.push_str("a:");
            out.push_str(&entries.len().to_string());
            out.push_str(":{");
            for (k, v) in entries {
                write_key(out, k);
                write_value(out, v);
            }
            out.push('}');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;
    use std::str::FromStr;

    fn map(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            other => panic!("not an object: {other}"),
        }
    }

    /// A minimal `unserialize()` for the subset above, to check what was written reads back.
    fn unserialize(input: &str) -> (PhpValue, &str) {
        fn until(s: &str, end: char) -> (&str, &str) {
            let i = s.find(end).expect("terminator");
            (&s[..i], &s[i + 1..])
        }
        fn string(rest: &str) -> (String, &str) {
            let (len, rest) = until(rest, ':');
            let len: usize = len.parse().expect("length");
            let rest = rest.strip_prefix('"').expect("opening quote");
            let (text, rest) = rest.split_at(len);
            let rest = rest.strip_prefix("\";").expect("closing quote");
            (text.to_string(), rest)
        }
        let (tag, rest) = input.split_at(2);
        match tag {
            "N;" => (PhpValue::Null, rest),
            "b:" => {
                let (b, rest) = until(rest, ';');
                (PhpValue::Bool(b == "1"), rest)
            }
            "i:" => {
                let (n, rest) = until(rest, ';');
                (PhpValue::Int(n.parse().expect("int")), rest)
            }
            "d:" => {
                let (d, rest) = until(rest, ';');
                (PhpValue::Float(d.to_string()), rest)
            }
            "s:" => {
                let (s, rest) = string(rest);
                (PhpValue::String(s), rest)
            }
            "a:" => {
                let (count, rest) = until(rest, ':');
                let mut rest = rest.strip_prefix('{').expect("array opening");
                let mut entries = Vec::new();
                for _ in 0..count.parse::<usize>().expect("count") {
                    let (key, after_key) = unserialize(rest);
                    let key = match key {
                        PhpValue::Int(n) => PhpKey::Int(n),
                        PhpValue::String(s) => PhpKey::Str(s),
                        other => panic!("bad key {other:?}"),
                    };
                    let (value, after_value) = unserialize(after_key);
                    entries.push((key, value));
                    rest = after_value;
                }
                (
                    PhpValue::Array(entries),
                    rest.strip_prefix('}').expect("array closing"),
                )
            }
            other => panic!("unknown tag {other}"),
        }
    }

    #[test]
    fn the_documented_config_option_examples_serialize_and_encode_exactly() {
        let qty = PhpValue::Array(vec![(PhpKey::Int(1), PhpValue::Int(999))]);
        assert_eq!(serialize(&qty), "a:1:{i:1;i:999;}");
        assert_eq!(encode(&qty), "YToxOntpOjE7aTo5OTk7fQ==");
        let text = PhpValue::Array(vec![(PhpKey::Int(1), PhpValue::String("Google".into()))]);
        assert_eq!(serialize(&text), "a:1:{i:1;s:6:\"Google\";}");
        assert_eq!(encode(&text), "YToxOntpOjE7czo2OiJHb29nbGUiO30=");
        // The same two maps as JSON objects, as Salesforce holds them.
        assert_eq!(
            encode_map(&map(json!({"1": 999}))),
            "YToxOntpOjE7aTo5OTk7fQ=="
        );
        assert_eq!(
            encode_map(&map(json!({"1": "Google"}))),
            "YToxOntpOjE7czo2OiJHb29nbGUiO30="
        );
    }

    #[test]
    fn scalars_serialize_as_php_writes_them() {
        assert_eq!(serialize(&PhpValue::Null), "N;");
        assert_eq!(serialize(&PhpValue::Bool(true)), "b:1;");
        assert_eq!(serialize(&PhpValue::Bool(false)), "b:0;");
        assert_eq!(serialize(&PhpValue::Int(-42)), "i:-42;");
        assert_eq!(serialize(&PhpValue::Float("0.5".into())), "d:0.5;");
        assert_eq!(serialize(&PhpValue::String(String::new())), "s:0:\"\";");
    }

    #[test]
    fn string_lengths_are_counted_in_bytes_not_characters() {
        assert_eq!(
            serialize(&PhpValue::String("héllo".into())),
            "s:6:\"héllo\";"
        );
        assert_eq!(serialize(&PhpValue::String("光".into())), "s:3:\"光\";");
        assert_eq!(serialize(&PhpValue::String("a\"b".into())), "s:3:\"a\"b\";");
    }

    #[test]
    fn arrays_keep_their_order_and_mix_integer_and_string_keys() {
        let v = PhpValue::Array(vec![
            (PhpKey::Int(0), PhpValue::String("foo".into())),
            (PhpKey::from("k"), PhpValue::Int(5)),
        ]);
        assert_eq!(serialize(&v), "a:2:{i:0;s:3:\"foo\";s:1:\"k\";i:5;}");
        assert_eq!(serialize(&PhpValue::Array(vec![])), "a:0:{}");
    }

    #[test]
    fn numeric_string_keys_become_integer_keys_as_in_php() {
        assert_eq!(PhpKey::from_text("12"), PhpKey::Int(12));
        assert_eq!(PhpKey::from_text("0"), PhpKey::Int(0));
        assert_eq!(PhpKey::from_text("-3"), PhpKey::Int(-3));
        for stays in [
            "012",
            "+1",
            "-0",
            "1.5",
            " 1",
            "",
            "-",
            "9223372036854775808",
            "a1",
        ] {
            assert_eq!(
                PhpKey::from_text(stays),
                PhpKey::Str(stays.into()),
                "{stays}"
            );
        }
    }

    #[test]
    fn json_converts_as_php_json_decode_would() {
        let v = PhpValue::from_json(&json!({
            "12": "45",
            "name": "x",
            "list": [true, null],
            "qty": 3,
            "price": 1.25
        }));
        // serde_json keeps the document's key order (the workspace enables preserve_order), as
        // PHP's json_decode does.
        assert_eq!(
            serialize(&v),
            concat!(
                "a:5:{i:12;s:2:\"45\";",
                "s:4:\"name\";s:1:\"x\";",
                "s:4:\"list\";a:2:{i:0;b:1;i:1;N;}",
                "s:3:\"qty\";i:3;",
                "s:5:\"price\";d:1.25;}"
            )
        );
    }

    #[test]
    fn decimals_keep_their_digits() {
        let d = Decimal::from_str("0.10").unwrap();
        assert_eq!(serialize(&PhpValue::from_decimal(d)), "d:0.1;");
        let d = Decimal::from_str("12345678901234567.89").unwrap();
        assert_eq!(
            serialize(&PhpValue::from_decimal(d)),
            "d:12345678901234567.89;"
        );
        let big: Value = serde_json::from_str("18446744073709551615").unwrap();
        assert_eq!(
            serialize(&PhpValue::from_json(&big)),
            "d:18446744073709551615;"
        );
        let frac: Value = serde_json::from_str("0.1").unwrap();
        assert_eq!(serialize(&PhpValue::from_json(&frac)), "d:0.1;");
    }

    proptest! {
        #[test]
        fn any_unicode_string_reads_back_with_its_byte_length(s in any::<String>()) {
            let written = serialize(&PhpValue::String(s.clone()));
            let prefix = format!("s:{}:\"", s.len());
            prop_assert!(written.starts_with(&prefix));
            let (back, rest) = unserialize(&written);
            prop_assert_eq!(back, PhpValue::String(s));
            prop_assert_eq!(rest, "");
        }

        #[test]
        fn any_map_of_unicode_text_reads_back(
            entries in proptest::collection::btree_map(any::<String>(), any::<String>(), 0..6)
        ) {
            let m: Map<String, Value> =
                entries.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect();
            let value = PhpValue::from_json_map(&m);
            let written = serialize(&value);
            let (back, rest) = unserialize(&written);
            prop_assert_eq!(back, value);
            prop_assert_eq!(rest, "");
            let decoded = STANDARD.decode(encode_map(&m)).unwrap();
            prop_assert_eq!(decoded, written.into_bytes());
        }
    }
}
