//! What a command reports: one JSON document for `--json`, text for people, and the exit code.

use serde_json::Value;

use crate::error::{EXIT_FAILED, EXIT_OK};

/// A finished command's report.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// Printed on stdout with `--json`.
    pub json: Value,
    /// Printed on stdout otherwise.
    pub text: String,
    /// The process exit code.
    pub exit: u8,
}

impl Outcome {
    /// A report whose exit code is 1 when `failed`, else 0.
    pub fn new(json: Value, text: String, failed: bool) -> Outcome {
        Outcome {
            json,
            text,
            exit: if failed { EXIT_FAILED } else { EXIT_OK },
        }
    }
}

/// Lays out `rows` under `header` in columns separated by two spaces; the last column is not
/// padded, so long text (an error) runs on.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let columns = header.len();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate().take(columns) {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                out.push_str(cell);
            } else {
                out.push_str(cell);
                let pad = widths[i].saturating_sub(cell.chars().count()) + 2;
                out.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.trim_end().to_string()
    };
    let mut text = line(header.to_vec());
    text.push('\n');
    for row in rows {
        text.push_str(&line(row.iter().map(String::as_str).collect()));
        text.push('\n');
    }
    text
}

/// `value` as text: strings bare, `null` as `(empty)`, anything else as JSON.
pub fn show(value: &Value) -> String {
    match value {
        Value::Null => "(empty)".to_string(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Every line of `text` indented by `by` spaces.
pub fn indent(text: &str, by: usize) -> String {
    let pad = " ".repeat(by);
    text.lines()
        .map(|l| {
            if l.is_empty() {
                String::new()
            } else {
                format!("{pad}{l}")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_aligns_every_column_but_the_last() {
        let t = table(
            &["step", "status", "error"],
            &[
                vec![
                    "maxio-customer".into(),
                    "FAILED".into(),
                    "a long error".into(),
                ],
                vec!["x".into(), "COMPLETED".into(), String::new()],
            ],
        );
        assert_eq!(
            t,
            "step            status     error\nmaxio-customer  FAILED     a long error\nx               COMPLETED\n"
        );
    }

    #[test]
    fn values_show_bare() {
        assert_eq!(show(&Value::Null), "(empty)");
        assert_eq!(show(&Value::String("Synced".into())), "Synced");
        assert_eq!(show(&serde_json::json!(3)), "3");
        assert_eq!(indent("a\n\nb", 2), "  a\n\n  b");
    }
}
