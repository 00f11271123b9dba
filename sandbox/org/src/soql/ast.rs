//! The syntax tree of a SOQL query, before names are checked against the schema. Every node keeps
//! the byte offset it started at, for error messages.

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;

/// One character of a string literal. The LIKE-only escapes `\%` and `\_` are kept apart from the
/// wildcards `%` and `_`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StrPiece {
    Char(char),
    EscapedPercent,
    EscapedUnderscore,
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CmpOp {
    Eq,
    Ne,
    Lt,
    Gt,
    Le,
    Ge,
}

/// A name as written, with its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Name {
    pub(crate) text: String,
    pub(crate) pos: usize,
}

/// `Field` or `Rel.Rel.Field`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Path {
    pub(crate) segments: Vec<Name>,
}

impl Path {
    pub(crate) fn pos(&self) -> usize {
        self.segments.first().map_or(0, |n| n.pos)
    }

    /// The path as written, e.g. `Account.Name`.
    pub(crate) fn text(&self) -> String {
        self.segments
            .iter()
            .map(|n| n.text.as_str())
            .collect::<Vec<_>>()
            .join(".")
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum LitKind {
    Str(Vec<StrPiece>),
    Number(Decimal),
    Bool(bool),
    Null,
    Date(NaiveDate),
    DateTime(DateTime<Utc>),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Literal {
    pub(crate) kind: LitKind,
    pub(crate) pos: usize,
    /// The literal as written in the query.
    pub(crate) text: String,
}

/// The group of fields `FIELDS(...)` selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FieldGroup {
    All,
    Standard,
    Custom,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum SelectItem {
    Field(Path),
    /// `FIELDS(ALL)`, `FIELDS(STANDARD)` or `FIELDS(CUSTOM)` (API 51.0 and later).
    Fields {
        group: FieldGroup,
        pos: usize,
    },
    /// A parent-to-child subquery `(SELECT ... FROM ChildRelationship ...)`.
    Subquery(Box<Query>),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Cond {
    And(Vec<Cond>),
    Or(Vec<Cond>),
    Not(Box<Cond>),
    Compare {
        path: Path,
        op: CmpOp,
        value: Literal,
    },
    Like {
        path: Path,
        pattern: Literal,
    },
    In {
        path: Path,
        negated: bool,
        values: Vec<Literal>,
    },
    /// `Field [NOT] IN (SELECT OneField FROM SObject [WHERE ...])`.
    SemiJoin {
        path: Path,
        negated: bool,
        query: Box<Query>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct OrderItem {
    pub(crate) path: Path,
    pub(crate) descending: bool,
    /// Explicit NULLS FIRST / NULLS LAST; by default nulls come first ascending, last descending.
    pub(crate) nulls_last: Option<bool>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Query {
    pub(crate) select: Vec<SelectItem>,
    pub(crate) from: Name,
    pub(crate) filter: Option<Cond>,
    pub(crate) order_by: Vec<OrderItem>,
    pub(crate) limit: Option<u64>,
    /// The OFFSET value and where it was written.
    pub(crate) offset: Option<(u64, usize)>,
}
