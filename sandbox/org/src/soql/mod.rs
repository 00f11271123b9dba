//! SOQL: [`lexer`] → [`parser`] (syntax tree in [`ast`]) → [`plan`] (names and literals checked
//! against the schema) → [`eval`] (rows rendered as the REST API returns them).

pub(crate) mod ast;
pub(crate) mod eval;
pub(crate) mod lexer;
pub(crate) mod parser;
pub(crate) mod plan;
#[cfg(test)]
mod tests;

use serde_json::Value;

use crate::error::ApiError;
use crate::org::{Org, QueryOptions};

/// A query failure before rendering: the Salesforce error code, the message, and where in the
/// query text it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct QueryError {
    pub(crate) code: &'static str,
    pub(crate) message: String,
    pub(crate) pos: Option<usize>,
}

impl QueryError {
    pub(crate) fn new(code: &'static str, pos: usize, message: impl Into<String>) -> QueryError {
        QueryError {
            code,
            message: message.into(),
            pos: Some(pos),
        }
    }

    pub(crate) fn malformed(pos: usize, message: impl Into<String>) -> QueryError {
        QueryError::new("MALFORMED_QUERY", pos, message)
    }

    pub(crate) fn invalid_field(pos: usize, message: impl Into<String>) -> QueryError {
        QueryError::new("INVALID_FIELD", pos, message)
    }

    /// The REST error: like Salesforce, the message quotes the offending line, marks the column
    /// and gives row and column before the explanation.
    pub(crate) fn render(&self, src: &str) -> ApiError {
        let message = match self.pos {
            Some(pos) => {
                let (row, col, line) = locate(src, pos);
                format!(
                    "\n{line}\n{caret}^\nERROR at Row:{row}:Column:{col}\n{}",
                    self.message,
                    caret = " ".repeat(col.saturating_sub(1))
                )
            }
            None => self.message.clone(),
        };
        ApiError::new(400, self.code, message)
    }
}

/// 1-based row and column (in characters) of byte offset `pos`, and the text of that line.
fn locate(src: &str, pos: usize) -> (usize, usize, &str) {
    let pos = pos.min(src.len());
    let before = src.get(..pos).unwrap_or(src);
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let row = before.matches('\n').count() + 1;
    let col = before[line_start..].chars().count() + 1;
    let line_end = src[line_start..]
        .find('\n')
        .map_or(src.len(), |i| line_start + i);
    (row, col, src[line_start..line_end].trim_end_matches('\r'))
}

/// Case folding for SOQL's case-insensitive text comparisons.
pub(crate) fn fold(s: &str) -> String {
    s.chars().flat_map(char::to_lowercase).collect()
}

/// Parses, checks and runs a query.
pub(crate) fn run(org: &Org, soql: &str, opts: &QueryOptions) -> Result<Vec<Value>, ApiError> {
    let query = parser::parse(soql).map_err(|e| e.render(soql))?;
    let compiled = plan::compile(org.schema(), &query).map_err(|e| e.render(soql))?;
    Ok(eval::execute(org, opts, &compiled))
}

#[cfg(test)]
mod rendering_tests {
    use super::*;

    #[test]
    fn errors_quote_the_line_and_point_at_the_column() {
        let err =
            QueryError::malformed(10, "unexpected token: 'FORM'").render("SELECT Id FORM Account");
        assert_eq!(
            err.message(),
            "\nSELECT Id FORM Account\n          ^\nERROR at Row:1:Column:11\nunexpected token: 'FORM'"
        );
        assert_eq!(err.error_code(), "MALFORMED_QUERY");
        assert_eq!(err.status, 400);
    }

    #[test]
    fn errors_on_later_lines_give_that_row() {
        let src = "SELECT Id\nFROM Account\nWHERE Nme = 'x'";
        let pos = src.find("Nme").unwrap();
        assert_eq!(locate(src, pos), (3, 7, "WHERE Nme = 'x'"));
    }
}
