//! SOQL literals. [`quote`] is the one escaping function every string literal goes through; Ids go
//! through [`SfId`](super::SfId) and are quoted by [`id_literal`]. Nothing reaches a query
//! string-formatted from raw input.

use super::SfId;

/// Quotes `value` as a SOQL string literal: `'` delimited, with `\` escaped first, then `'`, `"`
/// and the control characters SOQL has escapes for. Other control characters (which SOQL has no
/// escape for and no business value carries) are written as `\u` and four hex digits.
pub fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if c.is_control() && (c as u32) <= 0xFFFF => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// Quotes `value` for the right-hand side of `LIKE`, where `%` and `_` are wildcards: they are
/// escaped so the pattern matches them literally. Callers add their own wildcards around the result
/// with [`like_pattern`].
pub fn quote_like_contains(value: &str) -> String {
    like_pattern("%", value, "%")
}

/// Builds a LIKE literal `prefix + escaped(value) + suffix`, where `prefix` and `suffix` are raw
/// wildcard text (for example `%`) and `value` is escaped so its `%` and `_` match literally.
pub fn like_pattern(prefix: &str, value: &str, suffix: &str) -> String {
    let escaped = quote(value);
    let inner = &escaped[1..escaped.len() - 1];
    let inner = inner.replace('%', "\\%").replace('_', "\\_");
    format!("'{prefix}{inner}{suffix}'")
}

/// Quotes a validated Id.
pub fn id_literal(id: &SfId) -> String {
    format!("'{}'", id.as_str())
}

/// A parenthesised list of Id literals for `IN`, e.g. `('001...','001...')`.
pub fn id_list<'a>(ids: impl IntoIterator<Item = &'a SfId>) -> String {
    let items: Vec<String> = ids.into_iter().map(id_literal).collect();
    format!("({})", items.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn escapes_quotes_and_backslashes() {
        assert_eq!(quote("O'Brien"), r"'O\'Brien'");
        assert_eq!(quote(r"C:\temp"), r"'C:\\temp'");
        assert_eq!(quote(r"\'"), r"'\\\''");
        assert_eq!(quote("say \"hi\""), r#"'say \"hi\"'"#);
    }

    #[test]
    fn escapes_control_characters() {
        assert_eq!(quote("a\nb\rc\td"), r"'a\nb\rc\td'");
        assert_eq!(quote("\u{8}\u{c}"), r"'\b\f'");
        assert_eq!(quote("\u{0}x\u{1b}"), r"'\u0000x\u001b'");
    }

    #[test]
    fn an_injection_attempt_stays_inside_the_literal() {
        let q = quote("x' OR Name != '");
        assert_eq!(q, r"'x\' OR Name != \''");
    }

    #[test]
    fn like_patterns_escape_wildcards_but_keep_the_callers() {
        assert_eq!(quote_like_contains("50%_off"), r"'%50\%\_off%'");
        assert_eq!(like_pattern("", "Acme's", "%"), r"'Acme\'s%'");
    }

    #[test]
    fn id_lists_are_built_from_validated_ids_only() {
        let a = SfId::parse("500x000000003TR").unwrap();
        let b = SfId::parse("001A000010khO8J").unwrap();
        assert_eq!(
            id_list([&a, &b]),
            "('500x000000003TRAAY','001A000010khO8JIAU')"
        );
    }

    /// Undoes [`quote`] the way SOQL reads a literal; any other escape is an error there.
    fn unquote(lit: &str) -> Option<String> {
        let inner = lit.strip_prefix('\'')?.strip_suffix('\'')?;
        let mut out = String::new();
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next()? {
                    'n' | 'N' => out.push('\n'),
                    'r' | 'R' => out.push('\r'),
                    't' | 'T' => out.push('\t'),
                    'b' | 'B' => out.push('\u{8}'),
                    'f' | 'F' => out.push('\u{c}'),
                    '"' => out.push('"'),
                    '\'' => out.push('\''),
                    '\\' => out.push('\\'),
                    'u' => {
                        let hex: String = chars.by_ref().take(4).collect();
                        out.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
                    }
                    _ => return None,
                },
                '\'' => return None,
                c if c.is_control() => return None,
                c => out.push(c),
            }
        }
        Some(out)
    }

    /// One element of a LIKE pattern as SOQL reads it.
    #[derive(Debug, PartialEq)]
    enum Like {
        /// An unescaped `%` or `_`.
        Wildcard(char),
        Literal(char),
    }

    /// Reads a LIKE literal: [`unquote`]'s escapes, plus `\%` and `\_` for literal wildcards.
    fn unquote_like(lit: &str) -> Option<Vec<Like>> {
        let inner = lit.strip_prefix('\'')?.strip_suffix('\'')?;
        let mut out = Vec::new();
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next()? {
                    c @ ('%' | '_') => out.push(Like::Literal(c)),
                    'u' => {
                        let hex: String = chars.by_ref().take(4).collect();
                        let code = u32::from_str_radix(&hex, 16).ok()?;
                        out.push(Like::Literal(char::from_u32(code)?));
                    }
                    other => {
                        let one = unquote(&format!("'\\{other}'"))?;
                        out.extend(one.chars().map(Like::Literal));
                    }
                },
                '%' | '_' => out.push(Like::Wildcard(c)),
                '\'' => return None,
                c if c.is_control() => return None,
                c => out.push(Like::Literal(c)),
            }
        }
        Some(out)
    }

    proptest! {
        #[test]
        fn quoting_round_trips_every_string_including_c1_controls_and_wildcards(
            s in any::<String>()
        ) {
            let q = quote(&s);
            prop_assert_eq!(unquote(&q), Some(s));
        }

        #[test]
        fn like_patterns_match_the_value_literally_between_the_callers_wildcards(
            s in any::<String>(),
            prefix in prop::sample::select(vec!["", "%", "_"]),
            suffix in prop::sample::select(vec!["", "%"]),
        ) {
            let lit = like_pattern(prefix, &s, suffix);
            let mut expected: Vec<Like> = prefix.chars().map(Like::Wildcard).collect();
            expected.extend(s.chars().map(Like::Literal));
            expected.extend(suffix.chars().map(Like::Wildcard));
            prop_assert_eq!(unquote_like(&lit), Some(expected));
        }

        #[test]
        fn quoting_round_trips_any_string(s in "\\PC*|[\\x00-\\x1f'\"\\\\]*") {
            let q = quote(&s);
            prop_assert_eq!(unquote(&q), Some(s));
        }

        #[test]
        fn a_quoted_literal_never_has_an_unescaped_quote_inside(s in ".*") {
            let q = quote(&s);
            let inner = &q[1..q.len() - 1];
            let mut escaped = false;
            for c in inner.chars() {
                if escaped { escaped = false; continue; }
                if c == '\\' { escaped = true; continue; }
                prop_assert!(c != '\'');
                prop_assert!(!c.is_control());
            }
            prop_assert!(!escaped);
        }
    }
}
