//! Recursive-descent parser for the supported SOQL subset:
//!
//! ```text
//! query      := SELECT item (',' item)* FROM name [WHERE cond] [ORDER BY order (',' order)*]
//!               [LIMIT n] [OFFSET n]
//! item       := path | '(' child-query ')'
//! path       := name ('.' name)*
//! cond       := NOT simple | simple (AND simple)* | simple (OR simple)*
//! simple     := '(' cond ')' | path op literal | path LIKE string
//!             | path [NOT] IN '(' literal (',' literal)* ')'
//!             | path [NOT] IN '(' SELECT path FROM name [WHERE cond] ')'
//! order      := path [ASC | DESC] [NULLS (FIRST | LAST)]
//! ```
//!
//! As in Salesforce, AND and OR (or NOT with either) cannot be mixed at one level without
//! parentheses, a child subquery has no OFFSET, and a semi-join cannot contain another.

use rust_decimal::prelude::ToPrimitive;

use super::QueryError;
use super::ast::{Cond, FieldGroup, LitKind, Literal, Name, OrderItem, Path, Query, SelectItem};
use super::lexer::{Tok, Token, lex};

/// Words that cannot be field or object names.
const RESERVED: &[&str] = &[
    "SELECT", "FROM", "WHERE", "AND", "OR", "NOT", "IN", "LIKE", "LIMIT", "OFFSET", "NULL", "TRUE",
    "FALSE", "GROUP", "HAVING", "WITH", "USING", "INCLUDES", "EXCLUDES", "TYPEOF",
];

/// Where a query appears, which decides the clauses it may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Top,
    Child,
    SemiJoin,
}

/// Parses a whole SOQL statement.
pub(crate) fn parse(src: &str) -> Result<Query, QueryError> {
    let mut p = Parser {
        src,
        tokens: lex(src)?,
        i: 0,
    };
    let query = p.query(Kind::Top)?;
    if p.peek().tok != Tok::Eof {
        return Err(p.unexpected());
    }
    Ok(query)
}

struct Parser<'a> {
    src: &'a str,
    tokens: Vec<Token>,
    i: usize,
}

impl Parser<'_> {
    fn peek(&self) -> &Token {
        // The token list always ends with Eof, and `advance` never moves past it.
        &self.tokens[self.i.min(self.tokens.len() - 1)]
    }

    fn advance(&mut self) -> Token {
        let t = self.peek().clone();
        if self.i < self.tokens.len() - 1 {
            self.i += 1;
        }
        t
    }

    fn is_kw(&self, kw: &str) -> bool {
        matches!(&self.peek().tok, Tok::Ident(w) if w.eq_ignore_ascii_case(kw))
    }

    fn eat_kw(&mut self, kw: &str) -> bool {
        let found = self.is_kw(kw);
        if found {
            self.advance();
        }
        found
    }

    fn expect_kw(&mut self, kw: &str) -> Result<(), QueryError> {
        if self.eat_kw(kw) {
            Ok(())
        } else {
            Err(self.unexpected())
        }
    }

    fn expect(&mut self, tok: &Tok) -> Result<Token, QueryError> {
        if &self.peek().tok == tok {
            Ok(self.advance())
        } else {
            Err(self.unexpected())
        }
    }

    /// `unexpected token: 'X'` at the current token.
    fn unexpected(&self) -> QueryError {
        let t = self.peek();
        let message = if t.tok == Tok::Eof {
            "unexpected token: <EOF>".to_string()
        } else {
            format!("unexpected token: '{}'", &self.src[t.start..t.end])
        };
        QueryError::malformed(t.start, message)
    }

    fn query(&mut self, kind: Kind) -> Result<Query, QueryError> {
        self.expect_kw("SELECT")?;
        let mut select = Vec::new();
        loop {
            if self.peek().tok == Tok::LParen {
                if kind == Kind::SemiJoin {
                    return Err(self.unexpected());
                }
                self.advance();
                let sub = self.query(Kind::Child)?;
                self.expect(&Tok::RParen)?;
                select.push(SelectItem::Subquery(Box::new(sub)));
            } else if kind != Kind::SemiJoin
                && self.is_kw("FIELDS")
                && self.tokens.get(self.i + 1).map(|t| &t.tok) == Some(&Tok::LParen)
            {
                select.push(self.fields_function()?);
            } else {
                select.push(SelectItem::Field(self.path()?));
            }
            if kind == Kind::SemiJoin || self.peek().tok != Tok::Comma {
                break;
            }
            self.advance();
        }
        self.expect_kw("FROM")?;
        let from = self.name()?;
        let filter = if self.eat_kw("WHERE") {
            Some(self.cond(kind)?)
        } else {
            None
        };
        let mut order_by = Vec::new();
        if kind != Kind::SemiJoin && self.eat_kw("ORDER") {
            self.expect_kw("BY")?;
            loop {
                order_by.push(self.order_item()?);
                if self.peek().tok != Tok::Comma {
                    break;
                }
                self.advance();
            }
        }
        let limit = if kind != Kind::SemiJoin && self.eat_kw("LIMIT") {
            Some(self.count()?.0)
        } else {
            None
        };
        let offset = if kind == Kind::Top && self.eat_kw("OFFSET") {
            Some(self.count()?)
        } else {
            None
        };
        Ok(Query {
            select,
            from,
            filter,
            order_by,
            limit,
            offset,
        })
    }

    /// `FIELDS(ALL | STANDARD | CUSTOM)`, the keyword case-insensitive like every other.
    fn fields_function(&mut self) -> Result<SelectItem, QueryError> {
        let pos = self.advance().start;
        self.expect(&Tok::LParen)?;
        let group = if self.eat_kw("ALL") {
            FieldGroup::All
        } else if self.eat_kw("STANDARD") {
            FieldGroup::Standard
        } else if self.eat_kw("CUSTOM") {
            FieldGroup::Custom
        } else {
            return Err(self.unexpected());
        };
        self.expect(&Tok::RParen)?;
        Ok(SelectItem::Fields { group, pos })
    }

    /// A non-negative integer (LIMIT, OFFSET) and its position.
    fn count(&mut self) -> Result<(u64, usize), QueryError> {
        match &self.peek().tok {
            Tok::Lit(LitKind::Number(n)) if n.is_integer() && !n.is_sign_negative() => {
                let n = n.to_u64().ok_or_else(|| self.unexpected())?;
                let pos = self.advance().start;
                Ok((n, pos))
            }
            _ => Err(self.unexpected()),
        }
    }

    fn name(&mut self) -> Result<Name, QueryError> {
        match &self.peek().tok {
            Tok::Ident(w) if !RESERVED.iter().any(|r| r.eq_ignore_ascii_case(w)) => {
                let text = w.clone();
                let pos = self.advance().start;
                Ok(Name { text, pos })
            }
            _ => Err(self.unexpected()),
        }
    }

    fn path(&mut self) -> Result<Path, QueryError> {
        let mut segments = vec![self.name()?];
        while self.peek().tok == Tok::Dot {
            self.advance();
            segments.push(self.name()?);
        }
        Ok(Path { segments })
    }

    fn order_item(&mut self) -> Result<OrderItem, QueryError> {
        let path = self.path()?;
        let descending = if self.eat_kw("DESC") {
            true
        } else {
            self.eat_kw("ASC");
            false
        };
        let nulls_last = if self.eat_kw("NULLS") {
            if self.eat_kw("FIRST") {
                Some(false)
            } else {
                self.expect_kw("LAST")?;
                Some(true)
            }
        } else {
            None
        };
        Ok(OrderItem {
            path,
            descending,
            nulls_last,
        })
    }

    fn cond(&mut self, kind: Kind) -> Result<Cond, QueryError> {
        if self.eat_kw("NOT") {
            return Ok(Cond::Not(Box::new(self.simple(kind)?)));
        }
        let first = self.simple(kind)?;
        for (op, other) in [("AND", "OR"), ("OR", "AND")] {
            if self.is_kw(op) {
                let mut items = vec![first];
                while self.eat_kw(op) {
                    items.push(self.simple(kind)?);
                }
                if self.is_kw(other) {
                    return Err(self.unexpected());
                }
                return Ok(if op == "AND" {
                    Cond::And(items)
                } else {
                    Cond::Or(items)
                });
            }
        }
        Ok(first)
    }

    fn simple(&mut self, kind: Kind) -> Result<Cond, QueryError> {
        if self.peek().tok == Tok::LParen {
            self.advance();
            let inner = self.cond(kind)?;
            self.expect(&Tok::RParen)?;
            return Ok(inner);
        }
        let path = self.path()?;
        match self.peek().tok.clone() {
            Tok::Op(op) => {
                self.advance();
                let value = self.literal()?;
                Ok(Cond::Compare { path, op, value })
            }
            Tok::Ident(w) if w.eq_ignore_ascii_case("LIKE") => {
                self.advance();
                let pattern = self.literal()?;
                Ok(Cond::Like { path, pattern })
            }
            Tok::Ident(w) if w.eq_ignore_ascii_case("IN") => {
                self.advance();
                self.in_list(kind, path, false)
            }
            Tok::Ident(w) if w.eq_ignore_ascii_case("NOT") => {
                self.advance();
                self.expect_kw("IN")?;
                self.in_list(kind, path, true)
            }
            _ => Err(self.unexpected()),
        }
    }

    /// After `IN`: a literal list or a semi-join subquery.
    fn in_list(&mut self, kind: Kind, path: Path, negated: bool) -> Result<Cond, QueryError> {
        self.expect(&Tok::LParen)?;
        if self.is_kw("SELECT") {
            if kind == Kind::SemiJoin {
                return Err(QueryError::malformed(
                    self.peek().start,
                    "Nesting of semi join sub-selects is not supported",
                ));
            }
            let query = self.query(Kind::SemiJoin)?;
            self.expect(&Tok::RParen)?;
            return Ok(Cond::SemiJoin {
                path,
                negated,
                query: Box::new(query),
            });
        }
        let mut values = vec![self.literal()?];
        while self.peek().tok == Tok::Comma {
            self.advance();
            values.push(self.literal()?);
        }
        self.expect(&Tok::RParen)?;
        Ok(Cond::In {
            path,
            negated,
            values,
        })
    }

    fn literal(&mut self) -> Result<Literal, QueryError> {
        let t = self.peek().clone();
        let kind = match &t.tok {
            Tok::Lit(kind) => kind.clone(),
            Tok::Ident(w) if w.eq_ignore_ascii_case("TRUE") => LitKind::Bool(true),
            Tok::Ident(w) if w.eq_ignore_ascii_case("FALSE") => LitKind::Bool(false),
            Tok::Ident(w) if w.eq_ignore_ascii_case("NULL") => LitKind::Null,
            _ => return Err(self.unexpected()),
        };
        self.advance();
        Ok(Literal {
            kind,
            pos: t.start,
            text: self.src[t.start..t.end].to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::ast::{CmpOp, StrPiece};
    use super::*;
    use rust_decimal::Decimal;

    fn names(path: &Path) -> Vec<&str> {
        path.segments.iter().map(|n| n.text.as_str()).collect()
    }

    fn malformed(src: &str) -> String {
        let err = parse(src).unwrap_err();
        assert_eq!(err.code, "MALFORMED_QUERY", "{src}");
        err.message
    }

    #[test]
    fn parses_fields_parent_paths_and_child_subqueries() {
        let q = parse(
            "select Id, Order.Opportunity.Account.Name, \
             (SELECT Quantity, Product2.ProductCode FROM OrderItems WHERE Quantity > 0 \
              ORDER BY Product2.ProductCode DESC NULLS LAST LIMIT 5) \
             from OrderItem where Id = '802000000000001' order by Id limit 10 offset 20",
        )
        .unwrap();
        assert_eq!(q.select.len(), 3);
        match &q.select[1] {
            SelectItem::Field(p) => {
                assert_eq!(names(p), ["Order", "Opportunity", "Account", "Name"])
            }
            other => panic!("{other:?}"),
        }
        match &q.select[2] {
            SelectItem::Subquery(sub) => {
                assert_eq!(sub.from.text, "OrderItems");
                assert_eq!(sub.limit, Some(5));
                assert!(sub.filter.is_some());
                assert_eq!(sub.order_by.len(), 1);
                assert!(sub.order_by[0].descending);
                assert_eq!(sub.order_by[0].nulls_last, Some(true));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(q.from.text, "OrderItem");
        assert_eq!(q.limit, Some(10));
        assert_eq!(q.offset.map(|o| o.0), Some(20));
    }

    #[test]
    fn parses_conditions_with_parentheses_not_in_and_like() {
        let q = parse(
            "SELECT Id FROM Contact WHERE (Name LIKE 'A%' OR Email = null) AND NOT (Id IN ('a','b')) \
             AND AccountId NOT IN (SELECT Id FROM Account WHERE Name != 'x')",
        );
        // `AND NOT` without parentheses around the NOT is malformed in Salesforce.
        assert!(q.is_err());
        let q = parse(
            "SELECT Id FROM Contact WHERE (Name LIKE 'A%' OR Email = null) AND (NOT Id IN ('a','b')) \
             AND AccountId NOT IN (SELECT Id FROM Account WHERE Name != 'x')",
        )
        .unwrap();
        let Some(Cond::And(items)) = q.filter else {
            panic!("not an AND");
        };
        assert_eq!(items.len(), 3);
        assert!(matches!(&items[0], Cond::Or(v) if v.len() == 2));
        assert!(
            matches!(&items[1], Cond::Not(inner) if matches!(**inner, Cond::In { negated: false, .. }))
        );
        assert!(matches!(&items[2], Cond::SemiJoin { negated: true, .. }));
    }

    #[test]
    fn parses_every_literal_form() {
        let q = parse(
            "SELECT Id FROM X WHERE A = 'it\\'s' AND B = -12.50 AND C = TRUE AND D = null \
             AND E = 2026-11-01 AND F < 2026-11-01T09:00:00Z AND G <> false",
        )
        .unwrap();
        let Some(Cond::And(items)) = q.filter else {
            panic!("not an AND");
        };
        let kinds: Vec<LitKind> = items
            .iter()
            .map(|c| match c {
                Cond::Compare { value, .. } => value.kind.clone(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            kinds[0],
            LitKind::Str("it's".chars().map(StrPiece::Char).collect())
        );
        assert_eq!(kinds[1], LitKind::Number(Decimal::new(-1250, 2)));
        assert_eq!(kinds[2], LitKind::Bool(true));
        assert_eq!(kinds[3], LitKind::Null);
        assert!(matches!(kinds[4], LitKind::Date(_)));
        assert!(matches!(kinds[5], LitKind::DateTime(_)));
        assert!(matches!(
            &items[6],
            Cond::Compare { op: CmpOp::Ne, value, .. } if value.kind == LitKind::Bool(false)
        ));
    }

    #[test]
    fn a_misspelt_keyword_is_an_unexpected_token() {
        assert_eq!(
            malformed("SELECT Id FORM Account"),
            "unexpected token: 'FORM'"
        );
        assert_eq!(
            malformed("SELECT Id FROM Account WHERE"),
            "unexpected token: <EOF>"
        );
        assert_eq!(malformed("SELECT FROM Account"), "unexpected token: 'FROM'");
        assert_eq!(
            malformed("SELECT Id, FROM Account"),
            "unexpected token: 'FROM'"
        );
        assert_eq!(
            malformed("SELECT Id FROM Account LIMIT 5 WHERE Name = 'x'"),
            "unexpected token: 'WHERE'"
        );
    }

    #[test]
    fn mixing_and_with_or_without_parentheses_is_malformed() {
        assert_eq!(
            malformed("SELECT Id FROM Contact WHERE A = 1 AND B = 2 OR C = 3"),
            "unexpected token: 'OR'"
        );
        assert_eq!(
            malformed("SELECT Id FROM Contact WHERE A = 1 OR B = 2 AND C = 3"),
            "unexpected token: 'AND'"
        );
        assert_eq!(
            malformed("SELECT Id FROM Contact WHERE NOT A = 1 AND B = 2"),
            "unexpected token: 'AND'"
        );
        assert!(parse("SELECT Id FROM Contact WHERE (A = 1 AND B = 2) OR C = 3").is_ok());
        assert!(parse("SELECT Id FROM Contact WHERE A = 1 AND B = 2 AND C = 3").is_ok());
    }

    #[test]
    fn a_semi_join_inside_a_semi_join_is_malformed() {
        assert_eq!(
            malformed(
                "SELECT Id FROM Account WHERE Id IN (SELECT AccountId FROM Contact \
                 WHERE Id IN (SELECT ContactId FROM Case))"
            ),
            "Nesting of semi join sub-selects is not supported"
        );
    }

    #[test]
    fn a_semi_join_selects_exactly_one_plain_field() {
        assert_eq!(
            malformed("SELECT Id FROM Account WHERE Id IN (SELECT AccountId, Id FROM Contact)"),
            "unexpected token: ','"
        );
        assert_eq!(
            malformed("SELECT Id FROM Account WHERE Id IN (SELECT AccountId FROM Contact LIMIT 1)"),
            "unexpected token: 'LIMIT'"
        );
    }

    #[test]
    fn a_child_subquery_has_no_offset() {
        assert_eq!(
            malformed("SELECT Id, (SELECT Id FROM Contacts LIMIT 1 OFFSET 1) FROM Account"),
            "unexpected token: 'OFFSET'"
        );
    }

    #[test]
    fn relative_dates_bind_variables_and_aggregates_are_rejected() {
        assert_eq!(
            malformed("SELECT Id FROM Opportunity WHERE CloseDate = TODAY"),
            "unexpected token: 'TODAY'"
        );
        assert_eq!(
            malformed("SELECT Id FROM Opportunity WHERE CloseDate = LAST_N_DAYS:30"),
            "unexpected token: 'LAST_N_DAYS'"
        );
        assert_eq!(
            malformed("SELECT Id FROM Account WHERE Id = :accountId"),
            "unexpected token: ':'"
        );
        assert_eq!(
            malformed("SELECT COUNT() FROM Account"),
            "unexpected token: '('"
        );
        assert_eq!(
            malformed("SELECT Id FROM Account FOR UPDATE"),
            "unexpected token: 'FOR'"
        );
    }

    #[test]
    fn limit_and_offset_take_non_negative_integers() {
        assert_eq!(
            malformed("SELECT Id FROM Account LIMIT -1"),
            "unexpected token: '-1'"
        );
        assert_eq!(
            malformed("SELECT Id FROM Account LIMIT 1.5"),
            "unexpected token: '1.5'"
        );
        assert_eq!(
            malformed("SELECT Id FROM Account LIMIT 'a'"),
            "unexpected token: ''a''"
        );
    }

    #[test]
    fn keywords_are_case_insensitive_and_order_can_be_an_object_name() {
        let q = parse("sElEcT Id FrOm Order oRdEr By OrderNumber aSc NuLlS fIrSt").unwrap();
        assert_eq!(q.from.text, "Order");
        assert_eq!(q.order_by[0].nulls_last, Some(false));
        let q =
            parse("SELECT Order.OrderNumber FROM OrderItem WHERE Order.Status = 'Draft'").unwrap();
        assert_eq!(q.from.text, "OrderItem");
    }
}
