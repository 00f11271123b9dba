//! PHP's `serialize()` format, the subset WHMCS's API carries inside base64 in `configoptions[i]`,
//! `customfields[i]` and `domainfields[i]` (reference B1.1): arrays with integer or string keys,
//! strings with byte lengths, integers, floats, booleans and null.
//!
//! WHMCS reads these with `safe_unserialize(base64_decode(...))`, which refuses objects and
//! references; so does [`unserialize`], and it also refuses anything malformed: wrong lengths or
//! counts, missing terminators, trailing bytes.

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::{DecodePaddingMode, general_purpose};

/// Arrays nested deeper than this are refused rather than parsed recursively.
const MAX_DEPTH: usize = 64;

/// An array key. PHP stores a string key that is a canonical decimal integer (`"7"`, `"-3"`, not
/// `"07"` or `"+3"`) as that integer.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PhpKey {
    Int(i64),
    Str(String),
}

impl PhpKey {
    /// The key PHP makes of `text`.
    pub fn from_text(text: &str) -> PhpKey {
        canonical_int(text).map_or_else(|| PhpKey::Str(text.to_string()), PhpKey::Int)
    }
}

/// `text` as an integer if PHP would use it as an integer array key.
fn canonical_int(text: &str) -> Option<i64> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    let canonical = !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'))
        && text != "-0";
    if canonical { text.parse().ok() } else { None }
}

impl fmt::Display for PhpKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PhpKey::Int(n) => write!(f, "{n}"),
            PhpKey::Str(s) => f.write_str(s),
        }
    }
}

impl From<i64> for PhpKey {
    fn from(n: i64) -> PhpKey {
        PhpKey::Int(n)
    }
}

impl From<&str> for PhpKey {
    fn from(text: &str) -> PhpKey {
        PhpKey::from_text(text)
    }
}

/// A PHP value of the supported subset.
#[derive(Debug, Clone, PartialEq)]
pub enum PhpValue {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    /// PHP strings are bytes; these are read as UTF-8 (invalid sequences replaced).
    Str(String),
    Array(PhpArray),
}

impl PhpValue {
    /// The value as PHP's `(string)` cast gives it: null and false are `""`, true is `"1"`, an
    /// array is `"Array"`.
    pub fn to_php_string(&self) -> String {
        match self {
            PhpValue::Null | PhpValue::Bool(false) => String::new(),
            PhpValue::Bool(true) => "1".into(),
            PhpValue::Int(n) => n.to_string(),
            PhpValue::Float(x) => php_float(*x),
            PhpValue::Str(s) => s.clone(),
            PhpValue::Array(_) => "Array".into(),
        }
    }
}

impl From<&str> for PhpValue {
    fn from(text: &str) -> PhpValue {
        PhpValue::Str(text.to_string())
    }
}

impl From<i64> for PhpValue {
    fn from(n: i64) -> PhpValue {
        PhpValue::Int(n)
    }
}

/// A float as PHP ≥ 7.1 prints it (`serialize_precision = -1`): the shortest text that reads
/// back the same, `INF`, `-INF`, `NAN`.
fn php_float(x: f64) -> String {
    if x.is_nan() {
        "NAN".into()
    } else if x.is_infinite() {
        if x > 0.0 { "INF".into() } else { "-INF".into() }
    } else {
        format!("{x}")
    }
}

/// An ordered PHP array: entries keep their insertion order, and setting an existing key replaces
/// its value in place.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PhpArray {
    entries: Vec<(PhpKey, PhpValue)>,
}

impl PhpArray {
    pub fn new() -> PhpArray {
        PhpArray::default()
    }

    /// `$array[$key] = $value`.
    pub fn insert(&mut self, key: impl Into<PhpKey>, value: impl Into<PhpValue>) {
        let key = key.into();
        let value = value.into();
        match self.entries.iter_mut().find(|(k, _)| *k == key) {
            Some(entry) => entry.1 = value,
            None => self.entries.push((key, value)),
        }
    }

    /// `$array[$key] = $value`, returning the array (for building examples).
    pub fn with(mut self, key: impl Into<PhpKey>, value: impl Into<PhpValue>) -> PhpArray {
        self.insert(key, value);
        self
    }

    pub fn get(&self, key: impl Into<PhpKey>) -> Option<&PhpValue> {
        let key = key.into();
        self.entries.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&PhpKey, &PhpValue)> {
        self.entries.iter().map(|(k, v)| (k, v))
    }

    /// Keys and values as PHP casts them to strings, for asserting on what a client sent.
    pub fn to_text_map(&self) -> BTreeMap<String, String> {
        self.iter()
            .map(|(k, v)| (k.to_string(), v.to_php_string()))
            .collect()
    }
}

impl From<PhpArray> for PhpValue {
    fn from(array: PhpArray) -> PhpValue {
        PhpValue::Array(array)
    }
}

impl FromIterator<(PhpKey, PhpValue)> for PhpArray {
    fn from_iter<I: IntoIterator<Item = (PhpKey, PhpValue)>>(iter: I) -> PhpArray {
        let mut array = PhpArray::new();
        for (key, value) in iter {
            array.insert(key, value);
        }
        array
    }
}

/// Why a serialized value was refused. Positions are byte offsets into the serialized text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhpError {
    #[error("not base64: {0}")]
    Base64(String),
    #[error("input ends early at byte {0}")]
    UnexpectedEnd(usize),
    #[error("expected {expected} at byte {at}")]
    Expected { expected: &'static str, at: usize },
    #[error("unsupported type '{found}' at byte {at}")]
    UnsupportedType { found: char, at: usize },
    #[error("malformed integer at byte {0}")]
    BadInteger(usize),
    #[error("malformed float at byte {0}")]
    BadFloat(usize),
    #[error("string of {len} bytes at byte {at} runs past the input or its closing quote")]
    BadStringLength { len: usize, at: usize },
    #[error("array key at byte {0} is neither an integer nor a string")]
    BadKey(usize),
    #[error("arrays nested deeper than {MAX_DEPTH} levels")]
    TooDeep,
    #[error("{0} bytes of trailing data")]
    TrailingData(usize),
    #[error("the serialized value is {0}, not an array")]
    NotAnArray(&'static str),
}

/// PHP's `serialize($value)`.
pub fn serialize(value: &PhpValue) -> String {
    let mut out = String::new();
    write_value(&mut out, value);
    out
}

fn write_key(out: &mut String, key: &PhpKey) {
    match key {
        PhpKey::Int(n) => out.push_str(&format!("i:{n};")),
        PhpKey::Str(s) => out.push_str(&format!("s:{}:\"{s}\";", s.len())),
    }
}

fn write_value(out: &mut String, value: &PhpValue) {
    match value {
        PhpValue::Null => out.push_str("N;"),
        PhpValue::Bool(b) => out.push_str(if *b { "b:1;" } else { "b:0;" }),
        PhpValue::Int(n) => out.push_str(&format!("i:{n};")),
        PhpValue::Float(x) => out.push_str(&format!("d:{};", php_float(*x))),
        PhpValue::Str(s) => out.push_str(&format!("s:{}:\"{s}\";", s.len())),
        PhpValue::Array(array) => {
            out.push_str(&format!("a:{}:{{", array.len()));
            for (key, value) in array.iter() {
                write_key(out, key);
                write_value(out, value);
            }
            out.push('}');
        }
    }
}

/// PHP's `unserialize($input)` for the supported subset, refusing anything else.
pub fn unserialize(input: &[u8]) -> Result<PhpValue, PhpError> {
    let mut reader = Reader { input, at: 0 };
    let value = reader.value(0)?;
    match input.len() - reader.at {
        0 => Ok(value),
        rest => Err(PhpError::TrailingData(rest)),
    }
}

/// `base64(serialize($array))`, as a client builds `configoptions[i]`.
pub fn encode_field(array: &PhpArray) -> String {
    general_purpose::STANDARD.encode(serialize(&PhpValue::Array(array.clone())))
}

/// A `configoptions[i]` / `customfields[i]` value: base64 (padding optional, as PHP's
/// `base64_decode` takes it; but no whitespace, which a `+` sent unencoded in a form body turns
/// into) of a serialized array.
pub fn decode_field(text: &str) -> Result<PhpArray, PhpError> {
    const LENIENT_PADDING: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    let bytes = LENIENT_PADDING
        .decode(text)
        .map_err(|e| PhpError::Base64(e.to_string()))?;
    match unserialize(&bytes)? {
        PhpValue::Array(array) => Ok(array),
        PhpValue::Null => Err(PhpError::NotAnArray("null")),
        PhpValue::Bool(_) => Err(PhpError::NotAnArray("a boolean")),
        PhpValue::Int(_) => Err(PhpError::NotAnArray("an integer")),
        PhpValue::Float(_) => Err(PhpError::NotAnArray("a float")),
        PhpValue::Str(_) => Err(PhpError::NotAnArray("a string")),
    }
}

struct Reader<'a> {
    input: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn peek(&self) -> Result<u8, PhpError> {
        self.input
            .get(self.at)
            .copied()
            .ok_or(PhpError::UnexpectedEnd(self.at))
    }

    fn eat(&mut self, byte: u8, expected: &'static str) -> Result<(), PhpError> {
        if self.peek()? == byte {
            self.at += 1;
            Ok(())
        } else {
            Err(PhpError::Expected {
                expected,
                at: self.at,
            })
        }
    }

    /// The text up to (not including) `end`, which is consumed.
    fn until(&mut self, end: u8) -> Result<&[u8], PhpError> {
        let start = self.at;
        let rest = &self.input[start..];
        let Some(len) = rest.iter().position(|b| *b == end) else {
            return Err(PhpError::UnexpectedEnd(self.input.len()));
        };
        self.at = start + len + 1;
        Ok(&rest[..len])
    }

    /// An optionally signed decimal integer terminated by `end`.
    fn integer(&mut self, end: u8) -> Result<i64, PhpError> {
        let start = self.at;
        let text = self.until(end)?;
        let digits = text
            .strip_prefix(b"-")
            .or_else(|| text.strip_prefix(b"+"))
            .unwrap_or(text);
        if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
            return Err(PhpError::BadInteger(start));
        }
        std::str::from_utf8(text)
            .ok()
            .and_then(|t| t.parse().ok())
            .ok_or(PhpError::BadInteger(start))
    }

    /// An unsigned length or count terminated by `end`.
    fn length(&mut self, end: u8) -> Result<usize, PhpError> {
        let start = self.at;
        let text = self.until(end)?;
        if text.is_empty() || !text.iter().all(u8::is_ascii_digit) {
            return Err(PhpError::BadInteger(start));
        }
        std::str::from_utf8(text)
            .ok()
            .and_then(|t| t.parse().ok())
            .ok_or(PhpError::BadInteger(start))
    }

    fn float(&mut self) -> Result<f64, PhpError> {
        let start = self.at;
        let text = self.until(b';')?;
        let text = std::str::from_utf8(text).map_err(|_| PhpError::BadFloat(start))?;
        let plain = text.strip_prefix('-').unwrap_or(text);
        let shaped = matches!(plain, "INF" | "NAN")
            || (!plain.is_empty()
                && plain.starts_with(|c: char| c.is_ascii_digit() || c == '.')
                && plain
                    .chars()
                    .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-')));
        if !shaped {
            return Err(PhpError::BadFloat(start));
        }
        text.parse().map_err(|_| PhpError::BadFloat(start))
    }

    /// `s:<len>:"<bytes>";` after the `s:`.
    fn string(&mut self) -> Result<String, PhpError> {
        let at = self.at;
        let len = self.length(b':')?;
        self.eat(b'"', "'\"'")?;
        let start = self.at;
        let end = start
            .checked_add(len)
            .filter(|end| *end <= self.input.len())
            .ok_or(PhpError::BadStringLength { len, at })?;
        if self.input.get(end..end + 2) != Some(b"\";".as_slice()) {
            return Err(PhpError::BadStringLength { len, at });
        }
        self.at = end + 2;
        Ok(String::from_utf8_lossy(&self.input[start..end]).into_owned())
    }

    fn value(&mut self, depth: usize) -> Result<PhpValue, PhpError> {
        let at = self.at;
        let kind = self.peek()?;
        self.at += 1;
        if kind == b'N' {
            self.eat(b';', "';'")?;
            return Ok(PhpValue::Null);
        }
        self.eat(b':', "':'")?;
        match kind {
            b'b' => {
                let value = match self.peek()? {
                    b'0' => false,
                    b'1' => true,
                    _ => {
                        return Err(PhpError::Expected {
                            expected: "0 or 1",
                            at: self.at,
                        });
                    }
                };
                self.at += 1;
                self.eat(b';', "';'")?;
                Ok(PhpValue::Bool(value))
            }
            b'i' => Ok(PhpValue::Int(self.integer(b';')?)),
            b'd' => Ok(PhpValue::Float(self.float()?)),
            b's' => Ok(PhpValue::Str(self.string()?)),
            b'a' => {
                if depth >= MAX_DEPTH {
                    return Err(PhpError::TooDeep);
                }
                let count = self.length(b':')?;
                self.eat(b'{', "'{'")?;
                let mut array = PhpArray::new();
                for _ in 0..count {
                    let key = self.key()?;
                    let value = self.value(depth + 1)?;
                    array.insert(key, value);
                }
                self.eat(b'}', "'}' after the announced number of entries")?;
                Ok(PhpValue::Array(array))
            }
            other => Err(PhpError::UnsupportedType {
                found: char::from(other),
                at,
            }),
        }
    }

    fn key(&mut self) -> Result<PhpKey, PhpError> {
        let at = self.at;
        let kind = self.peek()?;
        self.at += 1;
        self.eat(b':', "':'")?;
        match kind {
            b'i' => Ok(PhpKey::Int(self.integer(b';')?)),
            b's' => Ok(PhpKey::from_text(&self.string()?)),
            _ => Err(PhpError::BadKey(at)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn array(entries: &[(PhpKey, PhpValue)]) -> PhpArray {
        entries.iter().cloned().collect()
    }

    #[test]
    fn the_reference_examples_decode_to_their_maps() {
        // Reference B1.1: {1 => 999} and {1 => "Google"}.
        let quantity = decode_field("YToxOntpOjE7aTo5OTk7fQ==").expect("decodes");
        assert_eq!(quantity, array(&[(PhpKey::Int(1), PhpValue::Int(999))]));
        let text = decode_field("YToxOntpOjE7czo2OiJHb29nbGUiO30=").expect("decodes");
        assert_eq!(text, array(&[(PhpKey::Int(1), "Google".into())]));
        assert_eq!(text.to_text_map()["1"], "Google");
    }

    #[test]
    fn the_reference_examples_are_what_serialize_writes() {
        let quantity = PhpArray::new().with(1, 999);
        assert_eq!(serialize(&quantity.clone().into()), "a:1:{i:1;i:999;}");
        assert_eq!(encode_field(&quantity), "YToxOntpOjE7aTo5OTk7fQ==");
        let text = PhpArray::new().with(1, "Google");
        assert_eq!(encode_field(&text), "YToxOntpOjE7czo2OiJHb29nbGUiO30=");
    }

    #[test]
    fn every_supported_type_round_trips() {
        let nested = PhpArray::new().with(0, "a").with("k", PhpValue::Null);
        let value: PhpValue = PhpArray::new()
            .with(1, PhpValue::Bool(true))
            .with(2, PhpValue::Bool(false))
            .with("neg", -42)
            .with("half", PhpValue::Float(0.5))
            .with("big", PhpValue::Float(1.0e25))
            .with("inf", PhpValue::Float(f64::INFINITY))
            .with("nested", nested)
            .into();
        let text = serialize(&value);
        assert_eq!(unserialize(text.as_bytes()), Ok(value));
    }

    #[test]
    fn string_lengths_count_bytes_not_characters() {
        let value = unserialize("a:1:{s:6:\"Router\";s:6:\"レ\";}".as_bytes());
        assert!(value.is_err(), "3 bytes claimed as 6");
        let value = unserialize("a:1:{s:6:\"Router\";s:3:\"レ\";}".as_bytes()).expect("decodes");
        let PhpValue::Array(array) = value else {
            panic!("array");
        };
        assert_eq!(array.get("Router"), Some(&PhpValue::Str("レ".into())));
    }

    #[test]
    fn string_keys_that_are_canonical_integers_become_integer_keys() {
        let value =
            unserialize(b"a:3:{s:1:\"5\";i:1;s:2:\"05\";i:2;s:2:\"-7\";i:3;}").expect("decodes");
        let PhpValue::Array(array) = value else {
            panic!("array");
        };
        let keys: Vec<_> = array.iter().map(|(k, _)| k.clone()).collect();
        assert_eq!(
            keys,
            vec![PhpKey::Int(5), PhpKey::Str("05".into()), PhpKey::Int(-7)]
        );
    }

    #[test]
    fn floats_in_the_forms_php_writes_are_read() {
        for (text, expected) in [
            ("d:0.1;", 0.1),
            ("d:-2;", -2.0),
            ("d:1.0E+25;", 1.0e25),
            ("d:-INF;", f64::NEG_INFINITY),
        ] {
            assert_eq!(
                unserialize(text.as_bytes()),
                Ok(PhpValue::Float(expected)),
                "{text}"
            );
        }
        assert!(matches!(
            unserialize(b"d:NAN;"),
            Ok(PhpValue::Float(x)) if x.is_nan()
        ));
    }

    #[test]
    fn malformed_input_is_refused() {
        let cases: &[&[u8]] = &[
            b"",
            b"a:2:{i:1;i:999;}",
            b"a:1:{i:1;i:999;i:2;i:3;}",
            b"a:1:{i:1;i:999;",
            b"a:1:{i:1;i:999;}x",
            b"a:1:{d:1.5;i:1;}",
            b"a:1:{N;i:1;}",
            b"s:5:\"abc\";",
            b"s:3:\"abc\"",
            b"s:-1:\"\";",
            b"i:12x;",
            b"i:;",
            b"i:99999999999999999999;",
            b"b:2;",
            b"d:abc;",
            b"O:8:\"stdClass\":0:{}",
            b"a:1:{i:0;r:1;}",
            b"a:1:{i:0;R:1;}",
            b"C:3:\"Foo\":0:{}",
            b"a:x:{}",
        ];
        for case in cases {
            assert!(
                unserialize(case).is_err(),
                "{:?} accepted",
                String::from_utf8_lossy(case)
            );
        }
    }

    #[test]
    fn deep_nesting_is_refused_without_overflowing_the_stack() {
        let mut text = String::new();
        for _ in 0..10_000 {
            text.push_str("a:1:{i:0;");
        }
        assert_eq!(unserialize(text.as_bytes()), Err(PhpError::TooDeep));
    }

    #[test]
    fn a_field_must_be_base64_of_an_array() {
        assert!(matches!(
            decode_field("not base64!"),
            Err(PhpError::Base64(_))
        ));
        // A `+` sent unencoded in a form body arrives as a space.
        assert!(matches!(
            decode_field("YToxOntpOjE7aTo5OTk7fQ== "),
            Err(PhpError::Base64(_))
        ));
        assert_eq!(
            decode_field(&general_purpose::STANDARD.encode("s:3:\"abc\";")),
            Err(PhpError::NotAnArray("a string"))
        );
        // Padding is optional, as for PHP's base64_decode.
        assert!(decode_field("YToxOntpOjE7aTo5OTk7fQ").is_ok());
    }

    #[test]
    fn duplicate_keys_keep_the_last_value_in_the_first_position() {
        let value =
            unserialize(b"a:3:{i:1;s:1:\"a\";i:2;s:1:\"b\";i:1;s:1:\"c\";}").expect("decodes");
        let PhpValue::Array(array) = value else {
            panic!("array");
        };
        assert_eq!(array.len(), 2);
        assert_eq!(
            array.iter().next(),
            Some((&PhpKey::Int(1), &PhpValue::Str("c".into())))
        );
    }
}
