//! Checks a parsed query against the schema and turns it into a plan: names resolved to canonical
//! fields and relationships, literals converted to the compared field's type.

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;

use super::ast::{
    CmpOp, Cond, FieldGroup, LitKind, Literal, Name, Path, Query, SelectItem, StrPiece,
};
use super::{QueryError, fold};
use crate::schema::{FieldType, SObject, Schema};
use dealbridge::salesforce::SfId;

/// Salesforce allows skipping at most this many rows.
const MAX_OFFSET: u64 = 2000;

/// The largest LIMIT a query with `FIELDS(ALL)` or `FIELDS(CUSTOM)` may have.
const MAX_UNBOUNDED_FIELDS_ROWS: u64 = 200;

/// One hop of a parent path: follow lookup `lookup`, shown as `relationship`, to a `target`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Step {
    pub(crate) lookup: String,
    pub(crate) relationship: String,
    pub(crate) target: String,
}

/// A field reached from the queried sObject through zero or more parent hops.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FieldRef {
    pub(crate) steps: Vec<Step>,
    pub(crate) field: String,
    pub(crate) field_type: FieldType,
    /// For Id and reference fields: the sObject whose records the value names.
    pub(crate) points_to: Option<String>,
}

/// A literal converted for comparison with a field.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Scalar {
    Null,
    /// Case-folded text.
    Text(String),
    Number(Decimal),
    Bool(bool),
    Date(NaiveDate),
    DateTime(DateTime<Utc>),
    /// A record Id in its case-sensitive 15-character form.
    Id(String),
}

/// One element of a LIKE pattern, matched against case-folded text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LikeTok {
    /// `%`
    Any,
    /// `_`
    One,
    Char(char),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Filter {
    And(Vec<Filter>),
    Or(Vec<Filter>),
    Not(Box<Filter>),
    Compare {
        field: FieldRef,
        op: CmpOp,
        value: Scalar,
    },
    In {
        field: FieldRef,
        negated: bool,
        values: Vec<Scalar>,
    },
    Like {
        field: FieldRef,
        pattern: Vec<LikeTok>,
    },
    /// Membership of the field's Id in the result of semi-join number `slot`.
    SemiJoin {
        field: FieldRef,
        negated: bool,
        slot: usize,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SortKey {
    pub(crate) field: FieldRef,
    pub(crate) descending: bool,
    pub(crate) nulls_last: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Column {
    Field(FieldRef),
    Child {
        relationship: String,
        /// The child's lookup field pointing at the parent row.
        lookup: String,
        plan: Box<Plan>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Plan {
    pub(crate) sobject: String,
    pub(crate) columns: Vec<Column>,
    pub(crate) filter: Option<Filter>,
    pub(crate) order: Vec<SortKey>,
    pub(crate) limit: Option<u64>,
    pub(crate) offset: u64,
}

/// The inner query of a semi-join and the field whose values it yields.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SemiJoinPlan {
    pub(crate) plan: Plan,
    pub(crate) field: FieldRef,
}

/// A checked query: the main plan and the semi-joins its filters refer to by slot.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Compiled {
    pub(crate) plan: Plan,
    pub(crate) semi_joins: Vec<SemiJoinPlan>,
}

/// Checks `query` against `schema`.
pub(crate) fn compile(schema: &Schema, query: &Query) -> Result<Compiled, QueryError> {
    let so = schema.sobject(&query.from.text).ok_or_else(|| {
        QueryError::new(
            "INVALID_TYPE",
            query.from.pos,
            format!(
                "sObject type '{}' is not supported. If you are attempting to use a custom object, be sure to append the '__c' after the entity name. Please reference your WSDL or the describe call for the appropriate names.",
                query.from.text
            ),
        )
    })?;
    let mut compiler = Compiler {
        schema,
        semi_joins: Vec::new(),
    };
    let plan = compiler.plan(so, query)?;
    Ok(Compiled {
        plan,
        semi_joins: compiler.semi_joins,
    })
}

/// Where a condition sits, for Salesforce's rules on semi-join placement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    /// The whole WHERE expression.
    Root,
    /// A direct operand of the top-level AND.
    RootAnd,
    /// Inside parentheses or NOT.
    Nested,
    /// Below an OR.
    UnderOr,
}

struct Compiler<'s> {
    schema: &'s Schema,
    semi_joins: Vec<SemiJoinPlan>,
}

impl<'s> Compiler<'s> {
    fn plan(&mut self, so: &'s SObject, query: &Query) -> Result<Plan, QueryError> {
        let mut columns = Vec::new();
        let mut seen: Vec<String> = Vec::new();
        for item in &query.select {
            let selected = match item {
                SelectItem::Field(path) => vec![self.field_column(so, path)?],
                SelectItem::Fields { group, pos } => self.field_group(so, query, *group, *pos)?,
                SelectItem::Subquery(sub) => {
                    let rel = so.child_relationship(&sub.from.text).ok_or_else(|| {
                        QueryError::new(
                            "INVALID_TYPE",
                            sub.from.pos,
                            format!(
                                "Didn't understand relationship '{}' in FROM part of query call. If you are attempting to use a custom relationship, be sure to append the '__r' after the custom relationship name. Please reference your WSDL or the describe call for the appropriate names.",
                                sub.from.text
                            ),
                        )
                    })?;
                    let child = self.sobject(&rel.child_sobject, sub.from.pos)?;
                    let plan = self.plan(child, sub)?;
                    let column = Column::Child {
                        relationship: rel.name.clone(),
                        lookup: rel.field.clone(),
                        plan: Box::new(plan),
                    };
                    vec![(
                        column,
                        format!("({})", rel.name.to_ascii_lowercase()),
                        sub.from.pos,
                        rel.name.clone(),
                    )]
                }
            };
            for (column, key, pos, shown) in selected {
                if seen.contains(&key) {
                    return Err(QueryError::malformed(
                        pos,
                        format!("duplicate field selected: {shown}"),
                    ));
                }
                seen.push(key);
                columns.push(column);
            }
        }
        let filter = match &query.filter {
            Some(cond) => Some(self.filter(so, cond, Place::Root)?),
            None => None,
        };
        let order = query
            .order_by
            .iter()
            .map(|item| {
                Ok(SortKey {
                    field: self.resolve(so, &item.path)?,
                    descending: item.descending,
                    nulls_last: item.nulls_last.unwrap_or(item.descending),
                })
            })
            .collect::<Result<Vec<_>, QueryError>>()?;
        let offset = match query.offset {
            Some((n, pos)) if n > MAX_OFFSET => {
                return Err(QueryError::new(
                    "NUMBER_OUTSIDE_VALID_RANGE",
                    pos,
                    format!("Maximum SOQL offset allowed is {MAX_OFFSET}"),
                ));
            }
            Some((n, _)) => n,
            None => 0,
        };
        Ok(Plan {
            sobject: so.name.clone(),
            columns,
            filter,
            order,
            limit: query.limit,
            offset,
        })
    }

    /// One selected field path: its column, the key that tells duplicates, where it was written
    /// and how an error shows it.
    fn field_column(
        &self,
        so: &'s SObject,
        path: &Path,
    ) -> Result<(Column, String, usize, String), QueryError> {
        let field = self.resolve(so, path)?;
        let key = field
            .steps
            .iter()
            .map(|s| s.relationship.as_str())
            .chain([field.field.as_str()])
            .collect::<Vec<_>>()
            .join(".")
            .to_ascii_lowercase();
        Ok((Column::Field(field), key, path.pos(), path.text()))
    }

    /// The fields `FIELDS(group)` selects on `so`, in the object's field order: custom fields are
    /// those whose name ends in `__c` (a managed package's included), standard fields the rest.
    /// `ALL` and `CUSTOM` are unbounded (the set is not known in advance), so Salesforce takes
    /// them only with a LIMIT of at most 200, in a subquery too.
    fn field_group(
        &self,
        so: &'s SObject,
        query: &Query,
        group: FieldGroup,
        pos: usize,
    ) -> Result<Vec<(Column, String, usize, String)>, QueryError> {
        if group != FieldGroup::Standard
            && query.limit.is_none_or(|n| n > MAX_UNBOUNDED_FIELDS_ROWS)
        {
            // The code is Salesforce's; the wording is assumed.
            return Err(QueryError::malformed(
                pos,
                format!(
                    "The SOQL FIELDS function must have a LIMIT of at most {MAX_UNBOUNDED_FIELDS_ROWS}"
                ),
            ));
        }
        so.fields()
            .iter()
            .filter(|f| {
                let custom = f.name.to_ascii_lowercase().ends_with("__c");
                match group {
                    FieldGroup::All => true,
                    FieldGroup::Standard => !custom,
                    FieldGroup::Custom => custom,
                }
            })
            .map(|f| {
                let path = Path {
                    segments: vec![Name {
                        text: f.name.clone(),
                        pos,
                    }],
                };
                self.field_column(so, &path)
            })
            .collect()
    }

    fn sobject(&self, name: &str, pos: usize) -> Result<&'s SObject, QueryError> {
        self.schema.sobject(name).ok_or_else(|| {
            QueryError::new(
                "INVALID_TYPE",
                pos,
                format!("sObject type '{name}' is not supported."),
            )
        })
    }

    /// Resolves `Field` or `Rel.Rel.Field` from `so`. A leading segment naming `so` itself (and no
    /// relationship) is a qualifier and is skipped.
    fn resolve(&self, so: &'s SObject, path: &Path) -> Result<FieldRef, QueryError> {
        let mut segments = path.segments.as_slice();
        if segments.len() > 1
            && segments[0].text.eq_ignore_ascii_case(&so.name)
            && so.parent_relationship(&segments[0].text).is_none()
        {
            segments = &segments[1..];
        }
        let Some((last, hops)) = segments.split_last() else {
            return Err(QueryError::malformed(path.pos(), "unexpected token: <EOF>"));
        };
        let mut current = so;
        let mut steps = Vec::new();
        for hop in hops {
            let lookup = current.parent_relationship(&hop.text).ok_or_else(|| {
                QueryError::invalid_field(
                    hop.pos,
                    format!(
                        "Didn't understand relationship '{}' in field path. If you are attempting to use a custom relationship, be sure to append the '__r' after the custom relationship name. Please reference your WSDL or the describe call for the appropriate names.",
                        hop.text
                    ),
                )
            })?;
            let target_name = lookup.reference_to.clone().unwrap_or_default();
            let target = self.sobject(&target_name, hop.pos)?;
            steps.push(Step {
                lookup: lookup.name.clone(),
                relationship: lookup.relationship_name.clone().unwrap_or_default(),
                target: target.name.clone(),
            });
            current = target;
        }
        let field = current.field(&last.text).ok_or_else(|| {
            QueryError::invalid_field(
                last.pos,
                format!(
                    "No such column '{}' on entity '{}'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name. Please reference your WSDL or the describe call for the appropriate names.",
                    last.text, current.name
                ),
            )
        })?;
        let points_to = match field.field_type {
            FieldType::Id => Some(current.name.clone()),
            FieldType::Reference => field.reference_to.clone(),
            _ => None,
        };
        Ok(FieldRef {
            steps,
            field: field.name.clone(),
            field_type: field.field_type,
            points_to,
        })
    }

    fn filter(&mut self, so: &'s SObject, cond: &Cond, place: Place) -> Result<Filter, QueryError> {
        Ok(match cond {
            Cond::And(items) => {
                let inner = match place {
                    Place::Root => Place::RootAnd,
                    Place::UnderOr => Place::UnderOr,
                    _ => Place::Nested,
                };
                Filter::And(
                    items
                        .iter()
                        .map(|c| self.filter(so, c, inner))
                        .collect::<Result<_, _>>()?,
                )
            }
            Cond::Or(items) => Filter::Or(
                items
                    .iter()
                    .map(|c| self.filter(so, c, Place::UnderOr))
                    .collect::<Result<_, _>>()?,
            ),
            Cond::Not(inner) => {
                let inner_place = if place == Place::UnderOr {
                    Place::UnderOr
                } else {
                    Place::Nested
                };
                Filter::Not(Box::new(self.filter(so, inner, inner_place)?))
            }
            Cond::Compare { path, op, value } => {
                let field = self.resolve(so, path)?;
                let value = scalar(&field, *op, value)?;
                Filter::Compare {
                    field,
                    op: *op,
                    value,
                }
            }
            Cond::In {
                path,
                negated,
                values,
            } => {
                let field = self.resolve(so, path)?;
                let values = values
                    .iter()
                    .map(|v| scalar(&field, CmpOp::Eq, v))
                    .collect::<Result<_, _>>()?;
                Filter::In {
                    field,
                    negated: *negated,
                    values,
                }
            }
            Cond::Like { path, pattern } => {
                let field = self.resolve(so, path)?;
                if !field.field_type.is_text() {
                    return Err(QueryError::new(
                        "INVALID_QUERY_FILTER_OPERATOR",
                        path.pos(),
                        format!(
                            "invalid operator on {} field: LIKE",
                            field.field_type.as_str()
                        ),
                    ));
                }
                let LitKind::Str(pieces) = &pattern.kind else {
                    return Err(type_mismatch(&field, pattern));
                };
                Filter::Like {
                    field,
                    pattern: like_pattern(pieces),
                }
            }
            Cond::SemiJoin {
                path,
                negated,
                query,
            } => {
                if place == Place::UnderOr {
                    return Err(QueryError::malformed(
                        path.pos(),
                        "Semi join sub-selects are not allowed with the 'OR' operator",
                    ));
                }
                if place == Place::Nested {
                    return Err(QueryError::malformed(
                        path.pos(),
                        "Semi join sub-selects are only allowed at the top level WHERE expressions and not in nested WHERE expressions.",
                    ));
                }
                let field = self.resolve(so, path)?;
                let slot = self.semi_join(&field, path, query)?;
                Filter::SemiJoin {
                    field,
                    negated: *negated,
                    slot,
                }
            }
        })
    }

    /// Plans the inner query of a semi-join on `left` and returns its slot.
    fn semi_join(
        &mut self,
        left: &FieldRef,
        path: &Path,
        query: &Query,
    ) -> Result<usize, QueryError> {
        let Some(left_target) = &left.points_to else {
            return Err(QueryError::malformed(
                path.pos(),
                format!(
                    "The left operand field in the where expression for outer query should be an id field, cannot use: '{}'",
                    left.field
                ),
            ));
        };
        let inner_so = self.schema.sobject(&query.from.text).ok_or_else(|| {
            QueryError::new(
                "INVALID_TYPE",
                query.from.pos,
                format!(
                    "sObject type '{}' is not supported. If you are attempting to use a custom object, be sure to append the '__c' after the entity name. Please reference your WSDL or the describe call for the appropriate names.",
                    query.from.text
                ),
            )
        })?;
        let plan = self.plan(inner_so, query)?;
        let (inner, inner_pos) = match (plan.columns.first(), query.select.first()) {
            (Some(Column::Field(f)), Some(SelectItem::Field(p))) => (f.clone(), p.pos()),
            _ => return Err(QueryError::malformed(path.pos(), "unexpected token: '('")),
        };
        if inner.points_to.as_deref() != Some(left_target.as_str()) {
            return Err(QueryError::malformed(
                inner_pos,
                format!(
                    "The selected field '{}' in the subquery and the left operand field in the where expression in the outer query '{}' should point to the same object type",
                    inner.field, left.field
                ),
            ));
        }
        self.semi_joins.push(SemiJoinPlan { plan, field: inner });
        Ok(self.semi_joins.len() - 1)
    }
}

/// The type name Salesforce uses in filter-criterion errors.
fn type_word(t: FieldType) -> &'static str {
    match t {
        t if t.is_text() => "string",
        FieldType::Boolean => "boolean",
        FieldType::Int => "integer",
        t if t.is_numeric() => "double",
        FieldType::Date => "date",
        FieldType::Datetime => "dateTime",
        _ => "id",
    }
}

fn type_mismatch(field: &FieldRef, lit: &Literal) -> QueryError {
    let t = field.field_type;
    let quoting = match (&lit.kind, t.is_text() || t.is_id()) {
        (_, true) => " and should be enclosed in quotes",
        (LitKind::Str(_), false) => " and should not be enclosed in quotes",
        _ => "",
    };
    QueryError::invalid_field(
        lit.pos,
        format!(
            "value of filter criterion for field '{}' must be of type {}{quoting}",
            field.field,
            type_word(t)
        ),
    )
}

/// The text of a string literal outside LIKE, where `\%` and `\_` are not allowed.
fn plain_text(pieces: &[StrPiece], lit: &Literal) -> Result<String, QueryError> {
    pieces
        .iter()
        .map(|p| match p {
            StrPiece::Char(c) => Ok(*c),
            StrPiece::EscapedPercent | StrPiece::EscapedUnderscore => Err(QueryError::malformed(
                lit.pos,
                format!(
                    "Invalid string literal {}. Illegal character sequence '{}' in string literal.",
                    lit.text,
                    if *p == StrPiece::EscapedPercent {
                        "\\%"
                    } else {
                        "\\_"
                    }
                ),
            )),
        })
        .collect()
}

/// Converts `lit` for comparison with `field` by `op`, or explains why it cannot be.
fn scalar(field: &FieldRef, op: CmpOp, lit: &Literal) -> Result<Scalar, QueryError> {
    let t = field.field_type;
    if t == FieldType::Boolean && !matches!(op, CmpOp::Eq | CmpOp::Ne) {
        return Err(QueryError::new(
            "INVALID_QUERY_FILTER_OPERATOR",
            lit.pos,
            "invalid operator on boolean field",
        ));
    }
    Ok(match (&lit.kind, t) {
        (LitKind::Null, _) => Scalar::Null,
        (LitKind::Str(pieces), t) if t.is_text() => {
            let text = plain_text(pieces, lit)?;
            if text.is_empty() {
                Scalar::Null
            } else {
                Scalar::Text(fold(&text))
            }
        }
        (LitKind::Str(pieces), t) if t.is_id() => {
            let text = plain_text(pieces, lit)?;
            let id = SfId::parse_exact(&text).map_err(|_| {
                QueryError::new(
                    "INVALID_QUERY_FILTER_OPERATOR",
                    lit.pos,
                    format!("invalid ID field: {text}"),
                )
            })?;
            Scalar::Id(id.to_15().to_string())
        }
        (LitKind::Number(n), t) if t.is_numeric() => Scalar::Number(*n),
        (LitKind::Bool(b), FieldType::Boolean) => Scalar::Bool(*b),
        (LitKind::Date(d), FieldType::Date) => Scalar::Date(*d),
        (LitKind::DateTime(dt), FieldType::Datetime) => Scalar::DateTime(*dt),
        _ => return Err(type_mismatch(field, lit)),
    })
}

/// A LIKE pattern over case-folded text: `%` and `_` are wildcards, `\%` and `\_` literal.
fn like_pattern(pieces: &[StrPiece]) -> Vec<LikeTok> {
    let mut out = Vec::new();
    for p in pieces {
        match p {
            StrPiece::Char('%') => out.push(LikeTok::Any),
            StrPiece::Char('_') => out.push(LikeTok::One),
            StrPiece::Char(c) => out.extend(c.to_lowercase().map(LikeTok::Char)),
            StrPiece::EscapedPercent => out.push(LikeTok::Char('%')),
            StrPiece::EscapedUnderscore => out.push(LikeTok::Char('_')),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_patterns_fold_case_and_keep_escaped_wildcards_literal() {
        let pieces = [
            StrPiece::Char('A'),
            StrPiece::Char('%'),
            StrPiece::EscapedPercent,
            StrPiece::Char('_'),
            StrPiece::EscapedUnderscore,
        ];
        assert_eq!(
            like_pattern(&pieces),
            [
                LikeTok::Char('a'),
                LikeTok::Any,
                LikeTok::Char('%'),
                LikeTok::One,
                LikeTok::Char('_'),
            ]
        );
    }
}
