//! Runs a compiled query over the org's records and renders rows as the REST API does:
//! `attributes` first, then the selected fields in SELECT order, parent paths as nested records,
//! child subqueries as nested query results (or null when empty).

use std::cmp::Ordering;
use std::collections::HashSet;

use dealbridge::salesforce::SfId;
use rust_decimal::Decimal;
use serde_json::{Map, Value, json};

use super::ast::CmpOp;
use super::fold;
use super::plan::{Column, Compiled, FieldRef, Filter, LikeTok, Plan, Scalar, Step};
use crate::org::{Org, QueryOptions, Record};
use crate::schema::FieldType;
use crate::value::{parse_date, parse_datetime};

/// Runs the query and returns every row.
pub(crate) fn execute(org: &Org, opts: &QueryOptions, compiled: &Compiled) -> Vec<Value> {
    let mut eval = Eval {
        org,
        opts,
        sets: Vec::new(),
    };
    // Semi-joins are uncorrelated: each is evaluated once, before the rows that use it.
    let sets: Vec<HashSet<String>> = compiled
        .semi_joins
        .iter()
        .map(|sj| {
            eval.rows(&sj.plan, eval.candidates(&sj.plan))
                .into_iter()
                .filter_map(|r| eval.scalar(r, &sj.field))
                .filter_map(|s| match s {
                    Scalar::Id(id) => Some(id),
                    _ => None,
                })
                .collect()
        })
        .collect();
    eval.sets = sets;
    let rows = eval.rows(&compiled.plan, eval.candidates(&compiled.plan));
    rows.into_iter()
        .map(|r| eval.render(&compiled.plan, r))
        .collect()
}

struct Eval<'a> {
    org: &'a Org,
    opts: &'a QueryOptions,
    sets: Vec<HashSet<String>>,
}

impl<'a> Eval<'a> {
    fn visible(&self, r: &Record) -> bool {
        self.opts.include_deleted || !r.deleted
    }

    /// The visible records of the plan's sObject that its filter can match, in insertion order:
    /// those the lookup index narrows the filter to, or every record where it cannot.
    fn candidates(&self, plan: &Plan) -> Vec<&'a Record> {
        let narrowed = plan
            .filter
            .as_ref()
            .and_then(|f| self.narrow(&plan.sobject, f));
        let records = match narrowed {
            Some(ids) => self
                .org
                .in_order(&plan.sobject, ids.iter().map(String::as_str)),
            None => self.org.all_records(&plan.sobject).collect(),
        };
        records.into_iter().filter(|r| self.visible(r)).collect()
    }

    /// A superset of the records of `sobject` (15-character Ids) that `filter` can match, where
    /// the filter pins an Id or a lookup (directly or through parent paths) to known values; None
    /// where it does not.
    fn narrow(&self, sobject: &str, filter: &Filter) -> Option<HashSet<String>> {
        match filter {
            Filter::And(items) => items
                .iter()
                .filter_map(|f| self.narrow(sobject, f))
                .min_by_key(HashSet::len),
            Filter::Or(items) => items
                .iter()
                .map(|f| self.narrow(sobject, f))
                .collect::<Option<Vec<_>>>()
                .map(|sets| sets.into_iter().flatten().collect()),
            Filter::Compare {
                field,
                op: CmpOp::Eq,
                value: Scalar::Id(id),
            } => self.holding(sobject, field, std::iter::once(id)),
            Filter::In {
                field,
                negated: false,
                values,
            } => {
                let ids = values
                    .iter()
                    .map(|v| match v {
                        Scalar::Id(id) => Some(id),
                        _ => None,
                    })
                    .collect::<Option<Vec<_>>>()?;
                self.holding(sobject, field, ids.into_iter())
            }
            Filter::SemiJoin {
                field,
                negated: false,
                slot,
            } => self.holding(sobject, field, self.sets.get(*slot)?.iter()),
            _ => None,
        }
    }

    /// The records of `sobject` whose `field` (an Id or a lookup, reached through its parent
    /// path) can hold one of `ids`.
    fn holding<'i>(
        &self,
        sobject: &str,
        field: &FieldRef,
        ids: impl Iterator<Item = &'i String>,
    ) -> Option<HashSet<String>> {
        let owner_of_field = field.steps.last().map_or(sobject, |s| s.target.as_str());
        let mut set: HashSet<String> = match field.field_type {
            FieldType::Id => ids.cloned().collect(),
            FieldType::Reference => ids
                .flat_map(|id| self.org.referrers(owner_of_field, &field.field, id))
                .map(|r| r.id.to_15().to_string())
                .collect(),
            _ => return None,
        };
        for (i, step) in field.steps.iter().enumerate().rev() {
            let owner = match i {
                0 => sobject,
                _ => field.steps[i - 1].target.as_str(),
            };
            set = set
                .iter()
                .flat_map(|id| self.org.referrers(owner, &step.lookup, id))
                .map(|r| r.id.to_15().to_string())
                .collect();
        }
        Some(set)
    }

    /// Filters, sorts and pages `candidates` by `plan`.
    fn rows(&self, plan: &Plan, candidates: Vec<&'a Record>) -> Vec<&'a Record> {
        let matching = candidates
            .into_iter()
            .filter(|r| plan.filter.as_ref().is_none_or(|f| self.matches(r, f)));
        let mut keyed: Vec<(Vec<Option<Scalar>>, &'a Record)> = matching
            .map(|r| {
                let keys = plan
                    .order
                    .iter()
                    .map(|k| self.scalar(r, &k.field))
                    .collect();
                (keys, r)
            })
            .collect();
        if !plan.order.is_empty() {
            keyed.sort_by(|(a, _), (b, _)| {
                plan.order
                    .iter()
                    .zip(a.iter().zip(b))
                    .map(|(key, (x, y))| match (x, y) {
                        (None, None) => Ordering::Equal,
                        (None, Some(_)) if key.nulls_last => Ordering::Greater,
                        (None, Some(_)) => Ordering::Less,
                        (Some(_), None) if key.nulls_last => Ordering::Less,
                        (Some(_), None) => Ordering::Greater,
                        (Some(x), Some(y)) => {
                            let o = compare(x, y).unwrap_or(Ordering::Equal);
                            if key.descending { o.reverse() } else { o }
                        }
                    })
                    .find(|o| *o != Ordering::Equal)
                    .unwrap_or(Ordering::Equal)
            });
        }
        let limit = plan.limit.map_or(usize::MAX, |l| l as usize);
        keyed
            .into_iter()
            .skip(plan.offset as usize)
            .take(limit)
            .map(|(_, r)| r)
            .collect()
    }

    /// The record a lookup field of `record` points at, if set and visible.
    fn parent(&self, record: &Record, lookup: &str) -> Option<&'a Record> {
        let id = SfId::parse_exact(record.fields.get(lookup)?.as_str()?).ok()?;
        self.org.record(&id).filter(|p| self.visible(p))
    }

    /// The record at the end of `steps`, or None where a lookup is empty.
    fn follow(&self, record: &'a Record, steps: &[Step]) -> Option<&'a Record> {
        steps
            .iter()
            .try_fold(record, |r, step| self.parent(r, &step.lookup))
    }

    /// The field's value as a comparable scalar; None when null or unreachable.
    fn scalar(&self, record: &'a Record, field: &FieldRef) -> Option<Scalar> {
        let target = self.follow(record, &field.steps)?;
        to_scalar(field.field_type, target.fields.get(&field.field)?)
    }

    fn matches(&self, record: &'a Record, filter: &Filter) -> bool {
        match filter {
            Filter::And(items) => items.iter().all(|f| self.matches(record, f)),
            Filter::Or(items) => items.iter().any(|f| self.matches(record, f)),
            Filter::Not(inner) => !self.matches(record, inner),
            Filter::Compare { field, op, value } => {
                test(*op, self.scalar(record, field).as_ref(), value)
            }
            Filter::In {
                field,
                negated,
                values,
            } => {
                let actual = self.scalar(record, field);
                let found = values.iter().any(|v| test(CmpOp::Eq, actual.as_ref(), v));
                found != *negated
            }
            Filter::Like { field, pattern } => match self.scalar(record, field) {
                Some(Scalar::Text(text)) => like(&text.chars().collect::<Vec<_>>(), pattern),
                _ => false,
            },
            Filter::SemiJoin {
                field,
                negated,
                slot,
            } => {
                let found = match self.scalar(record, field) {
                    Some(Scalar::Id(id)) => self.sets.get(*slot).is_some_and(|s| s.contains(&id)),
                    _ => false,
                };
                found != *negated
            }
        }
    }

    /// The visible records of `sobject` whose `lookup` names `parent`, in insertion order: from
    /// the lookup index where `lookup` is a lookup field, else by reading every record.
    fn children(&self, sobject: &str, lookup: &str, parent: &Record) -> Vec<&'a Record> {
        let indexed = self
            .org
            .schema()
            .sobject(sobject)
            .and_then(|so| so.field(lookup))
            .is_some_and(|f| f.field_type == FieldType::Reference && f.name == lookup);
        let records: Vec<&'a Record> = if indexed {
            self.org.referrers(sobject, lookup, parent.id.to_15())
        } else {
            self.org
                .all_records(sobject)
                .filter(|c| {
                    c.fields
                        .get(lookup)
                        .and_then(Value::as_str)
                        .and_then(|v| v.get(..15))
                        == Some(parent.id.to_15())
                })
                .collect()
        };
        records.into_iter().filter(|r| self.visible(r)).collect()
    }

    fn attributes(&self, record: &Record) -> Value {
        json!({
            "type": record.sobject,
            "url": format!(
                "/services/data/v{}/sobjects/{}/{}",
                self.opts.api_version,
                record.sobject,
                record.id.as_str()
            ),
        })
    }

    fn render(&self, plan: &Plan, record: &'a Record) -> Value {
        let mut out = Map::new();
        out.insert("attributes".to_string(), self.attributes(record));
        for column in &plan.columns {
            match column {
                Column::Field(field) => self.put(&mut out, record, &field.steps, &field.field),
                Column::Child {
                    relationship,
                    lookup,
                    plan: child,
                } => {
                    let linked = self.children(&child.sobject, lookup, record);
                    let rows = self.rows(child, linked);
                    let value = if rows.is_empty() {
                        Value::Null
                    } else {
                        json!({
                            "totalSize": rows.len(),
                            "done": true,
                            "records": rows.into_iter().map(|r| self.render(child, r)).collect::<Vec<_>>(),
                        })
                    };
                    out.insert(relationship.clone(), value);
                }
            }
        }
        Value::Object(out)
    }

    /// Writes `field`, reached through `steps`, into `out`: parent records nest under their
    /// relationship name (merged when several fields share a parent), an empty lookup is null.
    fn put(&self, out: &mut Map<String, Value>, record: &'a Record, steps: &[Step], field: &str) {
        match steps.split_first() {
            None => {
                let v = record.fields.get(field).cloned().unwrap_or(Value::Null);
                out.insert(field.to_string(), v);
            }
            Some((step, rest)) => match self.parent(record, &step.lookup) {
                None => {
                    out.entry(step.relationship.clone()).or_insert(Value::Null);
                }
                Some(parent) => {
                    let entry = out
                        .entry(step.relationship.clone())
                        .or_insert_with(|| json!({"attributes": self.attributes(parent)}));
                    if let Value::Object(nested) = entry {
                        self.put(nested, parent, rest, field);
                    }
                }
            },
        }
    }
}

/// A stored value as a comparable scalar of the field's type.
fn to_scalar(t: FieldType, v: &Value) -> Option<Scalar> {
    match (t, v) {
        (_, Value::Null) => None,
        (t, Value::String(s)) if t.is_text() => Some(Scalar::Text(fold(s))),
        (t, Value::String(s)) if t.is_id() => SfId::parse_exact(s)
            .ok()
            .map(|id| Scalar::Id(id.to_15().to_string())),
        (t, Value::Number(n)) if t.is_numeric() => {
            let text = n.to_string();
            text.parse::<Decimal>()
                .or_else(|_| Decimal::from_scientific(&text))
                .ok()
                .map(Scalar::Number)
        }
        (FieldType::Boolean, Value::Bool(b)) => Some(Scalar::Bool(*b)),
        (FieldType::Date, Value::String(s)) => parse_date(s).map(Scalar::Date),
        (FieldType::Datetime, Value::String(s)) => parse_datetime(s).map(Scalar::DateTime),
        _ => None,
    }
}

/// Orders two scalars of the same kind.
fn compare(a: &Scalar, b: &Scalar) -> Option<Ordering> {
    match (a, b) {
        (Scalar::Text(x), Scalar::Text(y)) => Some(x.cmp(y)),
        (Scalar::Number(x), Scalar::Number(y)) => Some(x.cmp(y)),
        (Scalar::Bool(x), Scalar::Bool(y)) => Some(x.cmp(y)),
        (Scalar::Date(x), Scalar::Date(y)) => Some(x.cmp(y)),
        (Scalar::DateTime(x), Scalar::DateTime(y)) => Some(x.cmp(y)),
        (Scalar::Id(x), Scalar::Id(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

/// `actual op expected`. SOQL null semantics: `= null` matches only null, `!= value` matches
/// null too, ordering comparisons never match null.
fn test(op: CmpOp, actual: Option<&Scalar>, expected: &Scalar) -> bool {
    match (actual, expected) {
        (None, Scalar::Null) => op == CmpOp::Eq,
        (Some(_), Scalar::Null) => op == CmpOp::Ne,
        (None, _) => op == CmpOp::Ne,
        (Some(a), b) => {
            let ord = compare(a, b);
            match op {
                CmpOp::Eq => ord == Some(Ordering::Equal),
                CmpOp::Ne => ord != Some(Ordering::Equal),
                CmpOp::Lt => ord == Some(Ordering::Less),
                CmpOp::Gt => ord == Some(Ordering::Greater),
                CmpOp::Le => matches!(ord, Some(Ordering::Less | Ordering::Equal)),
                CmpOp::Ge => matches!(ord, Some(Ordering::Greater | Ordering::Equal)),
            }
        }
    }
}

/// Wildcard matching: `%` any run of characters, `_` exactly one.
fn like(text: &[char], pattern: &[LikeTok]) -> bool {
    let (mut t, mut p) = (0, 0);
    let mut backtrack: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(LikeTok::Any) => {
                backtrack = Some((p, t));
                p += 1;
            }
            Some(LikeTok::One) => {
                t += 1;
                p += 1;
            }
            Some(LikeTok::Char(c)) if *c == text[t] => {
                t += 1;
                p += 1;
            }
            _ => match backtrack {
                Some((bp, bt)) => {
                    p = bp + 1;
                    t = bt + 1;
                    backtrack = Some((bp, bt + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p.min(pattern.len())..]
        .iter()
        .all(|tok| *tok == LikeTok::Any)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(s: &str) -> Vec<LikeTok> {
        s.chars()
            .map(|c| match c {
                '%' => LikeTok::Any,
                '_' => LikeTok::One,
                c => LikeTok::Char(c),
            })
            .collect()
    }

    fn like_str(text: &str, p: &str) -> bool {
        like(&text.chars().collect::<Vec<_>>(), &pattern(p))
    }

    #[test]
    fn like_matches_percent_and_underscore_wildcards() {
        assert!(like_str("acme corp", "acme%"));
        assert!(like_str("acme corp", "%corp"));
        assert!(like_str("acme corp", "%me c%"));
        assert!(like_str("acme", "a_me"));
        assert!(like_str("", "%"));
        assert!(like_str("abc", "%%c"));
        assert!(like_str("aaab", "%a%b"));
        assert!(!like_str("acme", "a_e"));
        assert!(!like_str("acme", "acm"));
        assert!(!like_str("", "_"));
        assert!(!like_str("abcd", "%c"));
    }

    #[test]
    fn null_comparisons_follow_soql() {
        let x = Scalar::Text("x".into());
        assert!(test(CmpOp::Eq, None, &Scalar::Null));
        assert!(!test(CmpOp::Ne, None, &Scalar::Null));
        assert!(test(CmpOp::Ne, Some(&x), &Scalar::Null));
        assert!(test(CmpOp::Ne, None, &x));
        assert!(!test(CmpOp::Eq, None, &x));
        assert!(!test(CmpOp::Lt, None, &x));
        assert!(!test(CmpOp::Gt, None, &x));
    }

    #[test]
    fn numbers_compare_as_decimals() {
        let stored = to_scalar(FieldType::Currency, &json!(10.10)).unwrap();
        assert!(test(
            CmpOp::Eq,
            Some(&stored),
            &Scalar::Number(Decimal::new(101, 1))
        ));
        assert!(test(
            CmpOp::Gt,
            Some(&stored),
            &Scalar::Number(Decimal::new(9, 0))
        ));
        let big = to_scalar(FieldType::Double, &json!(1e20)).unwrap();
        assert!(test(
            CmpOp::Gt,
            Some(&big),
            &Scalar::Number(Decimal::new(1, 0))
        ));
    }
}
