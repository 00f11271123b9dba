//! Request variables as PHP builds `$_GET` / `$_POST` from a query string or a
//! `application/x-www-form-urlencoded` body: bracket keys make (nested) arrays (`pid[0]=185`,
//! `pid[]=185`, `domainrenewals[example.com]=1`), arrays keep insertion order, a repeated key
//! overwrites; and the loose readings WHMCS applies to them (truthiness, `(int)` casts).

use super::php::PhpKey;

/// One request variable: a string, or an array of them.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Param {
    Scalar(String),
    Array(Vec<(PhpKey, Param)>),
}

impl Param {
    /// `$param[$key]` when `$param` is an array.
    pub fn at(&self, key: &PhpKey) -> Option<&Param> {
        match self {
            Param::Array(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            Param::Scalar(_) => None,
        }
    }

    pub fn as_scalar(&self) -> Option<&str> {
        match self {
            Param::Scalar(s) => Some(s),
            Param::Array(_) => None,
        }
    }

    /// PHP's truthiness: `""` and `"0"` are false, every other string (`"false"` too) is true; an
    /// array is true when not empty.
    pub fn truthy(&self) -> bool {
        match self {
            Param::Scalar(s) => php_truthy(s),
            Param::Array(entries) => !entries.is_empty(),
        }
    }

    fn set(&mut self, path: &[Option<PhpKey>], value: String) {
        let Some((first, rest)) = path.split_first() else {
            *self = Param::Scalar(value);
            return;
        };
        if !matches!(self, Param::Array(_)) {
            *self = Param::Array(Vec::new());
        }
        let Param::Array(entries) = self else {
            return;
        };
        let key = match first {
            Some(key) => key.clone(),
            None => PhpKey::Int(next_index(entries)),
        };
        let position = match entries.iter().position(|(k, _)| *k == key) {
            Some(position) => position,
            None => {
                entries.push((key, Param::Array(Vec::new())));
                entries.len() - 1
            }
        };
        entries[position].1.set(rest, value);
    }
}

/// The index `$array[] = ...` uses: one past the largest integer key, or 0.
fn next_index(entries: &[(PhpKey, Param)]) -> i64 {
    entries
        .iter()
        .filter_map(|(k, _)| match k {
            PhpKey::Int(n) => Some(n.saturating_add(1)),
            PhpKey::Str(_) => None,
        })
        .max()
        .unwrap_or(0)
        .max(0)
}

/// PHP's truthiness of a string.
pub(super) fn php_truthy(text: &str) -> bool {
    !(text.is_empty() || text == "0")
}

/// PHP's `(int)` cast of a string: leading whitespace, an optional sign, then the leading digits;
/// `"12abc"` is 12, `"abc"` is 0.
pub(super) fn php_int(text: &str) -> i64 {
    let text = text.trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    let (sign, rest) = match text.as_bytes().first() {
        Some(b'-') => (-1, &text[1..]),
        Some(b'+') => (1, &text[1..]),
        _ => (1, text),
    };
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse::<i64>().map_or(0, |n| sign * n)
}

/// A request's variables, by name, in arrival order.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Params {
    vars: Vec<(String, Param)>,
}

impl Params {
    /// The variables PHP makes of decoded `name=value` pairs.
    pub fn parse<I, K, V>(pairs: I) -> Params
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: Into<String>,
    {
        let mut params = Params::default();
        for (key, value) in pairs {
            let Some((name, path)) = split_key(key.as_ref()) else {
                continue;
            };
            let position = match params.vars.iter().position(|(n, _)| *n == name) {
                Some(position) => position,
                None => {
                    params.vars.push((name, Param::Scalar(String::new())));
                    params.vars.len() - 1
                }
            };
            params.vars[position].1.set(&path, value.into());
        }
        params
    }

    /// `$_REQUEST` from `$_GET` (self) and `$_POST` (`post`): a variable in both is `$_POST`'s.
    pub fn overlaid_with(mut self, post: Params) -> Params {
        for (name, value) in post.vars {
            match self.vars.iter_mut().find(|(n, _)| *n == name) {
                Some(slot) => slot.1 = value,
                None => self.vars.push((name, value)),
            }
        }
        self
    }

    pub fn get(&self, name: &str) -> Option<&Param> {
        self.vars.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    /// The variable's text when it is a string (not an array).
    pub fn scalar(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(Param::as_scalar)
    }

    pub fn truthy(&self, name: &str) -> bool {
        self.get(name).is_some_and(Param::truthy)
    }

    /// `(int) $name`, 0 when absent or an array.
    pub fn int(&self, name: &str) -> i64 {
        self.scalar(name).map_or(0, php_int)
    }
}

/// A key as PHP's `php_register_variable_ex` splits it: the variable name (leading spaces
/// dropped, spaces and dots made underscores) and its bracket path, `None` for `[]`. A first `[`
/// with no `]` is part of the name (as `_`); anything after the last well-formed bracket is
/// ignored.
fn split_key(key: &str) -> Option<(String, Vec<Option<PhpKey>>)> {
    let key = key.trim_start_matches(' ');
    let (name, mut rest) = match key.find('[') {
        Some(open) if key[open..].contains(']') => (&key[..open], &key[open..]),
        _ => (key, ""),
    };
    let name: String = name
        .chars()
        .map(|c| if matches!(c, ' ' | '.' | '[') { '_' } else { c })
        .collect();
    if name.is_empty() {
        return None;
    }
    let mut path = Vec::new();
    while let Some(inner) = rest.strip_prefix('[') {
        let Some(close) = inner.find(']') else {
            break;
        };
        let segment = &inner[..close];
        path.push((!segment.is_empty()).then(|| PhpKey::from_text(segment)));
        rest = &inner[close + 1..];
    }
    Some((name, path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(pairs: &[(&str, &str)]) -> Params {
        Params::parse(pairs.iter().map(|(k, v)| (*k, v.to_string())))
    }

    fn keys(param: &Param) -> Vec<PhpKey> {
        match param {
            Param::Array(entries) => entries.iter().map(|(k, _)| k.clone()).collect(),
            Param::Scalar(_) => Vec::new(),
        }
    }

    #[test]
    fn indexed_and_appended_brackets_make_the_same_array() {
        let indexed = parse(&[("pid[0]", "185"), ("pid[1]", "242")]);
        let appended = parse(&[("pid[]", "185"), ("pid[]", "242")]);
        assert_eq!(indexed, appended);
        let pid = indexed.get("pid").expect("pid");
        assert_eq!(pid.at(&PhpKey::Int(1)), Some(&Param::Scalar("242".into())));
    }

    #[test]
    fn arrays_keep_arrival_order_and_append_after_the_largest_index() {
        let params = parse(&[("pid[1]", "242"), ("pid[0]", "185"), ("pid[]", "246")]);
        let pid = params.get("pid").expect("pid");
        assert_eq!(
            keys(pid),
            vec![PhpKey::Int(1), PhpKey::Int(0), PhpKey::Int(2)]
        );
    }

    #[test]
    fn string_keys_and_nesting_are_kept() {
        let params = parse(&[("domainrenewals[example.com]", "2"), ("a[b][]", "x")]);
        let renewals = params.get("domainrenewals").expect("renewals");
        assert_eq!(
            renewals.at(&PhpKey::Str("example.com".into())),
            Some(&Param::Scalar("2".into()))
        );
        let nested = params
            .get("a")
            .and_then(|a| a.at(&PhpKey::Str("b".into())))
            .and_then(|b| b.at(&PhpKey::Int(0)));
        assert_eq!(nested, Some(&Param::Scalar("x".into())));
    }

    #[test]
    fn a_repeated_key_overwrites_and_a_scalar_can_become_an_array() {
        let params = parse(&[("action", "GetOrders"), ("action", "AddOrder")]);
        assert_eq!(params.scalar("action"), Some("AddOrder"));
        let params = parse(&[("pid", "1"), ("pid[0]", "2")]);
        assert_eq!(params.scalar("pid"), None);
        assert_eq!(keys(params.get("pid").expect("pid")), vec![PhpKey::Int(0)]);
    }

    #[test]
    fn names_are_mangled_as_php_does() {
        let params = parse(&[("a.b", "1"), ("c d", "2"), ("e[f", "3"), ("[x]", "4")]);
        assert_eq!(params.scalar("a_b"), Some("1"));
        assert_eq!(params.scalar("c_d"), Some("2"));
        assert_eq!(params.scalar("e_f"), Some("3"));
        assert_eq!(params.get("[x]"), None);
    }

    #[test]
    fn post_variables_replace_query_variables_of_the_same_name() {
        let get = parse(&[("action", "GetOrders"), ("responsetype", "json")]);
        let post = parse(&[("action", "AddOrder")]);
        let merged = get.overlaid_with(post);
        assert_eq!(merged.scalar("action"), Some("AddOrder"));
        assert_eq!(merged.scalar("responsetype"), Some("json"));
    }

    #[test]
    fn truthiness_and_int_casts_follow_php() {
        assert!(!php_truthy(""));
        assert!(!php_truthy("0"));
        assert!(php_truthy("false"));
        assert!(php_truthy("0.0"));
        assert_eq!(php_int("12abc"), 12);
        assert_eq!(php_int("  -7"), -7);
        assert_eq!(php_int("abc"), 0);
    }
}
