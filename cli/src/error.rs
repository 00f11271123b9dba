//! What can go wrong in a command, and the exit code each case gets.

use serde_json::{Value, json};

/// Exit code of a command that did what it was asked.
pub const EXIT_OK: u8 = 0;
/// Exit code of an operation that failed (a deal failed, a redrive stopped, a search failed).
pub const EXIT_FAILED: u8 = 1;
/// Exit code of a usage or configuration error: nothing was attempted.
pub const EXIT_USAGE: u8 = 2;

/// Why a command stopped before it could report.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CliError {
    /// The command line is wrong (a malformed Id, a bad duration, a flag out of range).
    #[error("{0}")]
    Usage(String),
    /// The configuration is incomplete or malformed; every problem is named.
    #[error("invalid configuration:\n  {}", .0.join("\n  "))]
    Config(Vec<String>),
    /// The operation was attempted and failed.
    #[error("{0}")]
    Failed(String),
}

impl CliError {
    /// A configuration error with one problem.
    pub fn config(problem: impl Into<String>) -> CliError {
        CliError::Config(vec![problem.into()])
    }

    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_) | CliError::Config(_) => EXIT_USAGE,
            CliError::Failed(_) => EXIT_FAILED,
        }
    }

    /// The error as `--json` prints it: `{"error": {"kind", "message", "problems"?}}`.
    pub fn to_json(&self) -> Value {
        match self {
            CliError::Usage(m) => json!({"error": {"kind": "usage", "message": m}}),
            CliError::Config(problems) => json!({"error": {
                "kind": "configuration",
                "message": "invalid configuration",
                "problems": problems,
            }}),
            CliError::Failed(m) => json!({"error": {"kind": "failed", "message": m}}),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_and_configuration_errors_exit_2_and_failures_exit_1() {
        assert_eq!(CliError::Usage("x".into()).exit_code(), 2);
        assert_eq!(CliError::config("X is not set").exit_code(), 2);
        assert_eq!(CliError::Failed("x".into()).exit_code(), 1);
    }

    #[test]
    fn every_configuration_problem_is_listed() {
        let e = CliError::Config(vec!["A is not set".into(), "B is malformed".into()]);
        assert_eq!(
            e.to_string(),
            "invalid configuration:\n  A is not set\n  B is malformed"
        );
        assert_eq!(e.to_json()["error"]["problems"][1], "B is malformed");
    }
}
