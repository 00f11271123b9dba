//! Input rules shared by the resources: decimals, handles, price brackets and customer fields.

use std::collections::BTreeMap;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde_json::{Map, Value};

use super::countries::{COUNTRIES, SUBDIVISIONS};

/// The most decimal places a unit price may have.
pub(super) const MAX_PRICE_DECIMALS: u32 = 8;

pub(super) const PRICING_SCHEMES: [&str; 4] = ["per_unit", "volume", "tiered", "stairstep"];

pub(super) const NO_BRACKETS: &str = "At least 1 price bracket must be defined";
pub(super) const GAP: &str = "Successive brackets may not have gaps in quantity (i.e. if one bracket ends at quantity 10, the next must begin at quantity 11)";
pub(super) const OVERLAP: &str = "There cannot be any overlapping bracket ranges";
pub(super) const ENDING_NOT_ABOVE_START: &str =
    "Ending quantity: must be greater than the low end bracket quantity, if given";
pub(super) const HANDLE_TAKEN: &str = "Handle: This handle is already in use.";

/// Renders a decimal the way the API does (Ruby `BigDecimal#to_s("F")`): no trailing zeros, but
/// at least one decimal digit, e.g. `"5.0"`, `"0.0045"`, `"0.3"`.
pub(super) fn decimal_string(d: Decimal) -> String {
    let n = d.normalize();
    if n.scale() == 0 {
        format!("{n}.0")
    } else {
        n.to_string()
    }
}

/// `formatted_unit_price`: a dollar amount with thousands separators and at least two decimals,
/// e.g. `"$1,500.00"`, `"$0.0045"`.
pub(super) fn formatted_price(d: Decimal) -> String {
    formatted_amount(d, "$", ',', '.')
}

/// `formatted_price` of a currency price. DOC: the documented example for EUR is `"€123,00"`
/// (symbol first, `.` for thousands, `,` for decimals). ASSUMED for the others: USD `$`, GBP
/// `£`, JPY `¥`, CAD `CA$`, AUD `A$` with `,` and `.`; any other currency its code and a space
/// (`"CHF 12.50"`).
pub(super) fn formatted_currency_price(d: Decimal, currency: &str) -> String {
    match currency {
        "EUR" => formatted_amount(d, "€", '.', ','),
        "USD" => formatted_amount(d, "$", ',', '.'),
        "GBP" => formatted_amount(d, "£", ',', '.'),
        "JPY" => formatted_amount(d, "¥", ',', '.'),
        "CAD" => formatted_amount(d, "CA$", ',', '.'),
        "AUD" => formatted_amount(d, "A$", ',', '.'),
        other => formatted_amount(d, &format!("{other} "), ',', '.'),
    }
}

/// An amount with a symbol, thousands separators and at least two decimals.
fn formatted_amount(d: Decimal, symbol: &str, thousands: char, decimals: char) -> String {
    let mut n = d.normalize();
    if n.scale() < 2 {
        n.rescale(2);
    }
    let text = n.abs().to_string();
    let (int, frac) = text.split_once('.').unwrap_or((text.as_str(), ""));
    let mut grouped = String::new();
    for (i, ch) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            grouped.push(thousands);
        }
        grouped.push(ch);
    }
    let sign = if d.is_sign_negative() && !d.is_zero() {
        "-"
    } else {
        ""
    };
    format!("{sign}{symbol}{grouped}{decimals}{frac}")
}

/// A decimal from a JSON number or numeric string. `None` when it is neither.
pub(super) fn decimal(v: &Value) -> Option<Decimal> {
    let text = match v {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.trim().to_string(),
        _ => return None,
    };
    if text.is_empty() {
        return None;
    }
    Decimal::from_str(&text)
        .or_else(|_| Decimal::from_scientific(&text))
        .ok()
}

/// An integer from a JSON integer or an integer string (`"10"`, also `"10.0"`).
pub(super) fn integer(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64)),
        Value::String(_) => {
            let d = decimal(v)?;
            if d.fract().is_zero() {
                d.trunc().to_string().parse().ok()
            } else {
                None
            }
        }
        _ => None,
    }
}

/// Text from a JSON string; numbers and booleans are taken as their text (as Rails would).
/// `Err(())` for arrays and objects.
pub(super) fn text(v: Option<&Value>) -> Result<Option<String>, ()> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(Value::Bool(b)) => Ok(Some(b.to_string())),
        Some(_) => Err(()),
    }
}

pub(super) fn is_blank(v: Option<&Value>) -> bool {
    match text(v) {
        Ok(Some(s)) => s.trim().is_empty(),
        Ok(None) => true,
        Err(()) => false,
    }
}

/// The component-handle charset: starts with a lowercase letter or digit, then lowercase
/// letters, digits, `.`, `:`, `-`, `_`.
pub(super) fn valid_handle(h: &str) -> bool {
    let mut chars = h.chars();
    match chars.next() {
        Some(c) if c.is_ascii_lowercase() || c.is_ascii_digit() => {}
        _ => return false,
    }
    chars
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | ':' | '-' | '_'))
}

/// A handle derived from a name: lowercase, runs of other characters become `-`.
pub(super) fn handle_from_name(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_end_matches('-').to_string()
}

/// One checked price bracket.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct BracketIn {
    pub starting_quantity: i64,
    pub ending_quantity: Option<i64>,
    pub unit_price: Decimal,
}

/// Errors keyed by field, as in `{"errors": {"prices": ["..."]}}`.
pub(super) type ErrorMap = BTreeMap<String, Vec<String>>;

pub(super) fn add(errors: &mut ErrorMap, field: &str, message: &str) {
    let list = errors.entry(field.to_string()).or_default();
    if !list.iter().any(|m| m == message) {
        list.push(message.to_string());
    }
}

pub(super) fn error_map_json(errors: &ErrorMap) -> Value {
    let map: Map<String, Value> = errors
        .iter()
        .map(|(k, v)| (k.clone(), Value::from(v.clone())))
        .collect();
    serde_json::json!({ "errors": map })
}

/// Checks `pricing_scheme` and `prices` of a price point (or a subscription's custom price).
///
/// The bracket rules are the documented ones: at least one bracket; successive brackets are
/// contiguous (next start = previous end + 1) and do not overlap; an ending quantity, when given,
/// is above the starting quantity; only the last bracket may be open. UNCONFIRMED whether the
/// first bracket must start at 1: the fake accepts 0 or 1 and rejects anything else with its own
/// wording ("The first price bracket must start at quantity 0 or 1"). `per_unit` takes exactly one
/// bracket (own wording). Messages not given by the reference are the fake's own wording.
pub(super) fn pricing(
    scheme: Option<&Value>,
    prices: Option<&Value>,
    errors: &mut ErrorMap,
) -> Option<(String, Vec<BracketIn>)> {
    let before = errors.len();
    let scheme = match text(scheme) {
        Ok(Some(s)) if PRICING_SCHEMES.contains(&s.as_str()) => Some(s),
        Ok(Some(s)) if !s.trim().is_empty() => {
            add(
                errors,
                "pricing_scheme",
                "Pricing scheme: is not included in the list (per_unit, volume, tiered, stairstep).",
            );
            None
        }
        _ => {
            add(errors, "pricing_scheme", "Pricing scheme: cannot be blank.");
            None
        }
    };
    let items: Vec<&Value> = match prices {
        Some(Value::Array(items)) => items.iter().collect(),
        None | Some(Value::Null) => Vec::new(),
        Some(_) => {
            add(
                errors,
                "prices",
                "Prices: must be a list of price brackets.",
            );
            return None;
        }
    };
    if items.is_empty() {
        add(errors, "prices", NO_BRACKETS);
        return None;
    }
    let mut brackets = Vec::new();
    let mut field_errors = false;
    for item in items {
        let Some(obj) = item.as_object() else {
            add(
                errors,
                "prices",
                "Prices: each price bracket must be an object.",
            );
            field_errors = true;
            continue;
        };
        let start = match obj.get("starting_quantity") {
            None | Some(Value::Null) => {
                add(
                    errors,
                    "prices.starting_quantity",
                    "Starting quantity: cannot be blank.",
                );
                None
            }
            Some(v) => match integer(v) {
                Some(n) if n >= 0 => Some(n),
                Some(_) => {
                    add(
                        errors,
                        "prices.starting_quantity",
                        "Starting quantity: must be greater than or equal to 0.",
                    );
                    None
                }
                None => {
                    add(
                        errors,
                        "prices.starting_quantity",
                        "Starting quantity: must be a whole number.",
                    );
                    None
                }
            },
        };
        let end = match obj.get("ending_quantity") {
            None | Some(Value::Null) => Some(None),
            Some(Value::String(s)) if s.trim().is_empty() => Some(None),
            Some(v) => match integer(v) {
                Some(n) => Some(Some(n)),
                None => {
                    add(
                        errors,
                        "prices.ending_quantity",
                        "Ending quantity: must be a whole number.",
                    );
                    None
                }
            },
        };
        let price = match obj.get("unit_price") {
            None | Some(Value::Null) => {
                add(errors, "prices.unit_price", "Unit price: cannot be blank.");
                None
            }
            Some(v) => match decimal(v) {
                Some(d) if d.is_sign_negative() && !d.is_zero() => {
                    add(
                        errors,
                        "prices.unit_price",
                        "Unit price: must be greater than or equal to 0.",
                    );
                    None
                }
                Some(d) if d.normalize().scale() > MAX_PRICE_DECIMALS => {
                    add(
                        errors,
                        "prices.unit_price",
                        "Unit price: may have at most 8 decimal places.",
                    );
                    None
                }
                Some(d) => Some(d),
                None => {
                    add(errors, "prices.unit_price", "Unit price: is not a number.");
                    None
                }
            },
        };
        match (start, end, price) {
            (Some(s), Some(e), Some(p)) => {
                if let Some(e) = e
                    && e <= s
                {
                    add(errors, "prices.ending_quantity", ENDING_NOT_ABOVE_START);
                    field_errors = true;
                }
                brackets.push(BracketIn {
                    starting_quantity: s,
                    ending_quantity: e,
                    unit_price: p,
                });
            }
            _ => field_errors = true,
        }
    }
    if !field_errors {
        let mut sorted = brackets.clone();
        sorted.sort_by_key(|b| b.starting_quantity);
        if let Some(first) = sorted.first()
            && first.starting_quantity > 1
        {
            add(
                errors,
                "prices",
                "The first price bracket must start at quantity 0 or 1",
            );
        }
        for pair in sorted.windows(2) {
            let (prev, next) = (&pair[0], &pair[1]);
            match prev.ending_quantity {
                // An open bracket followed by another one covers it.
                None => add(errors, "prices", OVERLAP),
                Some(end) if next.starting_quantity <= end => add(errors, "prices", OVERLAP),
                Some(end) if next.starting_quantity > end + 1 => add(errors, "prices", GAP),
                Some(_) => {}
            }
        }
        if scheme.as_deref() == Some("per_unit") && brackets.len() != 1 {
            add(
                errors,
                "prices",
                "The per_unit pricing scheme takes exactly one price bracket",
            );
        }
    }
    if errors.len() > before {
        return None;
    }
    scheme.map(|s| (s, brackets))
}

/// `(name, state_name)` lookups for customers.
pub(super) fn country_name(code: &str) -> Option<&'static str> {
    COUNTRIES
        .iter()
        .find(|(c, _)| *c == code)
        .map(|(_, name)| *name)
}

pub(super) fn state_name(country: &str, state: &str) -> Option<&'static str> {
    SUBDIVISIONS
        .iter()
        .find(|(c, s, _)| *c == country && s.eq_ignore_ascii_case(state))
        .map(|(_, _, name)| *name)
}

/// The string fields of a customer, with the labels Rails uses in messages.
pub(super) const CUSTOMER_TEXT_FIELDS: [(&str, &str); 17] = [
    ("first_name", "First name"),
    ("last_name", "Last name"),
    ("email", "Email address"),
    ("cc_emails", "Cc emails"),
    ("organization", "Organization"),
    ("reference", "Reference"),
    ("address", "Address"),
    ("address_2", "Address 2"),
    ("city", "City"),
    ("state", "State"),
    ("zip", "Zip"),
    ("country", "Country"),
    ("phone", "Phone"),
    ("locale", "Locale"),
    ("vat_number", "Vat number"),
    ("tax_exempt_reason", "Tax exempt reason"),
    ("salesforce_id", "Salesforce"),
];

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn decimals_render_like_ruby_bigdecimal() {
        let d = |s: &str| Decimal::from_str(s).unwrap();
        assert_eq!(decimal_string(d("0.0045")), "0.0045");
        assert_eq!(decimal_string(d("150")), "150.0");
        assert_eq!(decimal_string(d("0.30")), "0.3");
        assert_eq!(formatted_price(d("1500")), "$1,500.00");
        assert_eq!(formatted_price(d("0.0045")), "$0.0045");
        assert_eq!(formatted_price(d("1234567.5")), "$1,234,567.50");
        assert_eq!(formatted_currency_price(d("123"), "EUR"), "€123,00");
        assert_eq!(formatted_currency_price(d("1234.5"), "EUR"), "€1.234,50");
        assert_eq!(formatted_currency_price(d("0.1"), "CHF"), "CHF 0.10");
    }

    #[test]
    fn json_numbers_keep_their_decimal_text() {
        assert_eq!(decimal(&json!(0.0045)), Decimal::from_str("0.0045").ok());
        assert_eq!(
            decimal(&json!("0.00000001")),
            Decimal::from_str("0.00000001").ok()
        );
        assert_eq!(decimal(&json!("abc")), None);
        assert_eq!(integer(&json!("10")), Some(10));
        assert_eq!(integer(&json!("10.5")), None);
    }

    #[test]
    fn handles_follow_the_component_charset() {
        assert!(valid_handle("sf-0061x.v2:a_b"));
        assert!(valid_handle("9lives"));
        assert!(!valid_handle("-x"));
        assert!(!valid_handle("Upper"));
        assert!(!valid_handle("has space"));
        assert_eq!(
            handle_from_name("Volume 2026 / Acme, Inc."),
            "volume-2026-acme-inc"
        );
    }
}
