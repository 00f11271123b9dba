//! Turns SOQL text into tokens: names, string/number/date/datetime literals, operators and
//! punctuation. String escapes are exactly Salesforce's; anything else after a backslash is an
//! error.

use std::str::FromStr;

use rust_decimal::Decimal;

use super::QueryError;
use super::ast::{CmpOp, LitKind, StrPiece};
use crate::value::{parse_date, parse_datetime};

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    /// A name or keyword; keywords are recognised by the parser, case-insensitively.
    Ident(String),
    Lit(LitKind),
    Op(CmpOp),
    LParen,
    RParen,
    Comma,
    Dot,
    Colon,
    Eof,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token {
    pub(crate) tok: Tok,
    /// Byte offsets of the token in the query text.
    pub(crate) start: usize,
    pub(crate) end: usize,
}

/// Splits `src` into tokens, ending with [`Tok::Eof`].
pub(crate) fn lex(src: &str) -> Result<Vec<Token>, QueryError> {
    let mut lexer = Lexer {
        src,
        chars: src.char_indices().collect(),
        i: 0,
    };
    let mut tokens = Vec::new();
    loop {
        let token = lexer.next_token()?;
        let done = token.tok == Tok::Eof;
        tokens.push(token);
        if done {
            return Ok(tokens);
        }
    }
}

struct Lexer<'a> {
    src: &'a str,
    chars: Vec<(usize, char)>,
    i: usize,
}

impl Lexer<'_> {
    fn peek(&self, ahead: usize) -> Option<char> {
        self.chars.get(self.i + ahead).map(|&(_, c)| c)
    }

    /// Byte offset of the current character (or the end of the text).
    fn offset(&self) -> usize {
        self.chars.get(self.i).map_or(self.src.len(), |&(o, _)| o)
    }

    fn next_token(&mut self) -> Result<Token, QueryError> {
        while self.peek(0).is_some_and(char::is_whitespace) {
            self.i += 1;
        }
        let start = self.offset();
        let Some(c) = self.peek(0) else {
            return Ok(Token {
                tok: Tok::Eof,
                start,
                end: start,
            });
        };
        let tok = match c {
            '(' => self.single(Tok::LParen),
            ')' => self.single(Tok::RParen),
            ',' => self.single(Tok::Comma),
            '.' => self.single(Tok::Dot),
            ':' => self.single(Tok::Colon),
            '=' => self.single(Tok::Op(CmpOp::Eq)),
            '!' if self.peek(1) == Some('=') => {
                self.i += 2;
                Tok::Op(CmpOp::Ne)
            }
            '<' => {
                self.i += 1;
                match self.peek(0) {
                    Some('=') => self.single(Tok::Op(CmpOp::Le)),
                    Some('>') => self.single(Tok::Op(CmpOp::Ne)),
                    _ => Tok::Op(CmpOp::Lt),
                }
            }
            '>' => {
                self.i += 1;
                match self.peek(0) {
                    Some('=') => self.single(Tok::Op(CmpOp::Ge)),
                    _ => Tok::Op(CmpOp::Gt),
                }
            }
            '\'' => Tok::Lit(LitKind::Str(self.string(start)?)),
            c if c.is_ascii_digit() => self.number_or_date(start)?,
            '-' if self.peek(1).is_some_and(|d| d.is_ascii_digit()) => {
                self.number_or_date(start)?
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                while self
                    .peek(0)
                    .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
                {
                    self.i += 1;
                }
                Tok::Ident(self.src[start..self.offset()].to_string())
            }
            other => {
                return Err(QueryError::malformed(
                    start,
                    format!("no viable alternative at character '{other}'"),
                ));
            }
        };
        Ok(Token {
            tok,
            start,
            end: self.offset(),
        })
    }

    fn single(&mut self, tok: Tok) -> Tok {
        self.i += 1;
        tok
    }

    /// A quoted string; the opening quote is the current character.
    fn string(&mut self, start: usize) -> Result<Vec<StrPiece>, QueryError> {
        self.i += 1;
        let mut out = Vec::new();
        loop {
            let Some(c) = self.peek(0) else {
                return Err(QueryError::malformed(
                    start,
                    format!(
                        "unterminated string literal {}",
                        &self.src[start..self.offset()]
                    ),
                ));
            };
            self.i += 1;
            match c {
                '\'' => return Ok(out),
                '\\' => {
                    let escape = self.peek(0);
                    self.i += 1;
                    let piece = match escape {
                        Some('n' | 'N') => StrPiece::Char('\n'),
                        Some('r' | 'R') => StrPiece::Char('\r'),
                        Some('t' | 'T') => StrPiece::Char('\t'),
                        Some('b' | 'B') => StrPiece::Char('\u{8}'),
                        Some('f' | 'F') => StrPiece::Char('\u{c}'),
                        Some('"') => StrPiece::Char('"'),
                        Some('\'') => StrPiece::Char('\''),
                        Some('\\') => StrPiece::Char('\\'),
                        Some('%') => StrPiece::EscapedPercent,
                        Some('_') => StrPiece::EscapedUnderscore,
                        Some('u') => {
                            let hex: String = (0..4).filter_map(|k| self.peek(k)).collect();
                            let ch = (hex.len() == 4 && hex.chars().all(|h| h.is_ascii_hexdigit()))
                                .then(|| u32::from_str_radix(&hex, 16).ok())
                                .flatten()
                                .and_then(char::from_u32);
                            match ch {
                                Some(ch) => {
                                    self.i += 4;
                                    StrPiece::Char(ch)
                                }
                                None => return Err(self.bad_escape(start, "\\u")),
                            }
                        }
                        Some(other) => return Err(self.bad_escape(start, &format!("\\{other}"))),
                        None => return Err(self.bad_escape(start, "\\")),
                    };
                    out.push(piece);
                }
                c => out.push(StrPiece::Char(c)),
            }
        }
    }

    fn bad_escape(&self, start: usize, sequence: &str) -> QueryError {
        let end = self.offset().min(self.src.len());
        QueryError::malformed(
            start,
            format!(
                "Invalid string literal {}. Illegal character sequence '{sequence}' in string literal.",
                &self.src[start..end]
            ),
        )
    }

    /// A number (`42`, `-1.5`), date (`2026-11-01`) or datetime (`2026-11-01T09:00:00Z`).
    fn number_or_date(&mut self, start: usize) -> Result<Tok, QueryError> {
        let date_shape = (0..10).all(|k| match (k, self.peek(k)) {
            (4 | 7, Some(c)) => c == '-',
            (_, Some(c)) => c.is_ascii_digit(),
            _ => false,
        });
        if date_shape {
            self.i += 10;
            if self.peek(0) == Some('T') && self.peek(1).is_some_and(|c| c.is_ascii_digit()) {
                self.i += 1;
                while self
                    .peek(0)
                    .is_some_and(|c| c.is_ascii_digit() || matches!(c, ':' | '.' | '+' | '-' | 'Z'))
                {
                    self.i += 1;
                }
                let text = &self.src[start..self.offset()];
                return match parse_datetime(text) {
                    Some(dt) => Ok(Tok::Lit(LitKind::DateTime(dt))),
                    None => Err(QueryError::malformed(
                        start,
                        format!("invalid datetime literal: {text}"),
                    )),
                };
            }
            let text = &self.src[start..self.offset()];
            return parse_date(text)
                .map(|d| Tok::Lit(LitKind::Date(d)))
                .ok_or_else(|| {
                    QueryError::malformed(start, format!("invalid date literal: {text}"))
                });
        }
        if self.peek(0) == Some('-') {
            self.i += 1;
        }
        self.digits();
        if self.peek(0) == Some('.') && self.peek(1).is_some_and(|c| c.is_ascii_digit()) {
            self.i += 1;
            self.digits();
        }
        let text = &self.src[start..self.offset()];
        Decimal::from_str(text)
            .map(|d| Tok::Lit(LitKind::Number(d)))
            .map_err(|_| QueryError::malformed(start, format!("invalid number: {text}")))
    }

    fn digits(&mut self) {
        while self.peek(0).is_some_and(|c| c.is_ascii_digit()) {
            self.i += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(src: &str) -> Vec<Tok> {
        lex(src).unwrap().into_iter().map(|t| t.tok).collect()
    }

    fn string(src: &str) -> Vec<StrPiece> {
        match toks(src).remove(0) {
            Tok::Lit(LitKind::Str(p)) => p,
            other => panic!("not a string: {other:?}"),
        }
    }

    fn chars(s: &str) -> Vec<StrPiece> {
        s.chars().map(StrPiece::Char).collect()
    }

    #[test]
    fn splits_a_query_into_names_operators_and_literals() {
        assert_eq!(
            toks("SELECT Id FROM Account WHERE Amount >= -1.5 AND Name != 'x'"),
            vec![
                Tok::Ident("SELECT".into()),
                Tok::Ident("Id".into()),
                Tok::Ident("FROM".into()),
                Tok::Ident("Account".into()),
                Tok::Ident("WHERE".into()),
                Tok::Ident("Amount".into()),
                Tok::Op(CmpOp::Ge),
                Tok::Lit(LitKind::Number(Decimal::new(-15, 1))),
                Tok::Ident("AND".into()),
                Tok::Ident("Name".into()),
                Tok::Op(CmpOp::Ne),
                Tok::Lit(LitKind::Str(chars("x"))),
                Tok::Eof,
            ]
        );
        assert_eq!(
            toks("a<>b<=c<d>e"),
            vec![
                Tok::Ident("a".into()),
                Tok::Op(CmpOp::Ne),
                Tok::Ident("b".into()),
                Tok::Op(CmpOp::Le),
                Tok::Ident("c".into()),
                Tok::Op(CmpOp::Lt),
                Tok::Ident("d".into()),
                Tok::Op(CmpOp::Gt),
                Tok::Ident("e".into()),
                Tok::Eof,
            ]
        );
    }

    #[test]
    fn decodes_every_documented_escape() {
        assert_eq!(
            string(r#"'\n\N\r\R\t\T\b\B\f\F\"\'\\\u00e9'"#),
            chars("\n\n\r\r\t\t\u{8}\u{8}\u{c}\u{c}\"'\\é")
        );
        assert_eq!(
            string(r"'50\%\_a%_'"),
            vec![
                StrPiece::Char('5'),
                StrPiece::Char('0'),
                StrPiece::EscapedPercent,
                StrPiece::EscapedUnderscore,
                StrPiece::Char('a'),
                StrPiece::Char('%'),
                StrPiece::Char('_'),
            ]
        );
    }

    #[test]
    fn rejects_any_other_backslash_sequence() {
        for bad in [r"'\q'", r"'\u12'", r"'\uZZZZ'", r"'\uD800'", "'abc\\"] {
            let err = lex(bad).unwrap_err();
            assert_eq!(err.code, "MALFORMED_QUERY", "{bad}");
        }
        let err = lex(r"'a\qb'").unwrap_err();
        assert_eq!(
            err.message,
            r"Invalid string literal 'a\q. Illegal character sequence '\q' in string literal."
        );
    }

    #[test]
    fn an_unterminated_string_is_malformed() {
        let err = lex("Name = 'abc").unwrap_err();
        assert_eq!(err.code, "MALFORMED_QUERY");
        assert_eq!(err.pos, Some(7));
    }

    #[test]
    fn reads_dates_and_datetimes_unquoted() {
        let d = chrono::NaiveDate::from_ymd_opt(2026, 11, 1).unwrap();
        assert_eq!(toks("2026-11-01")[0], Tok::Lit(LitKind::Date(d)));
        let want = chrono::DateTime::parse_from_rfc3339("2026-11-01T00:00:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        for text in [
            "2026-11-01T00:00:00Z",
            "2026-11-01T00:00:00.000Z",
            "2026-11-01T09:00:00+09:00",
            "2026-10-31T16:00:00-08:00",
        ] {
            assert_eq!(toks(text)[0], Tok::Lit(LitKind::DateTime(want)), "{text}");
        }
        for bad in ["2026-13-01", "2026-11-01T00:00:00", "2026-11-31T00:00:00Z"] {
            assert_eq!(lex(bad).unwrap_err().code, "MALFORMED_QUERY", "{bad}");
        }
    }

    #[test]
    fn an_unknown_character_is_malformed() {
        let err = lex("SELECT Id FROM Account WHERE Name = $x").unwrap_err();
        assert_eq!(err.message, "no viable alternative at character '$'");
        assert_eq!(err.pos, Some(36));
    }
}
