//! `--env-file`: `KEY=VALUE` lines, as `make sandbox` writes `target/sandbox.env` (and as
//! `cargo lambda watch --env-file` reads them).
//!
//! Blank lines and lines starting with `#` are skipped; an `export ` prefix is allowed; a value
//! wrapped in matching single or double quotes is unwrapped (no escapes are interpreted).

use std::path::Path;

use crate::error::CliError;

/// Reads and parses `path`; a missing file or a malformed line is a usage error naming it.
pub fn read(path: &Path) -> Result<Vec<(String, String)>, CliError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        CliError::Usage(format!(
            "--env-file {}: cannot be read: {e}",
            path.display()
        ))
    })?;
    parse(&text).map_err(|e| CliError::Usage(format!("--env-file {}: {e}", path.display())))
}

/// Parses `KEY=VALUE` lines; the error names the first malformed line by number.
pub fn parse(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut vars = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line).trim_start();
        let Some((key, value)) = line.split_once('=') else {
            return Err(format!("line {}: expected KEY=VALUE, got {line:?}", n + 1));
        };
        let key = key.trim();
        let valid = key
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(format!(
                "line {}: {key:?} is not a variable name (letters, digits and _)",
                n + 1
            ));
        }
        vars.push((key.to_string(), unquote(value.trim()).to_string()));
    }
    Ok(vars)
}

fn unquote(value: &str) -> &str {
    for quote in ['"', '\''] {
        if value.len() >= 2 && value.starts_with(quote) && value.ends_with(quote) {
            return &value[1..value.len() - 1];
        }
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sandbox_environment_file_is_read() {
        let vars = parse(
            "# comment\n\nSALESFORCE_LOGIN_URL=http://127.0.0.1:8440\nexport RUST_LOG=info\nA=\"x y\"\nB='z'\nC=\nD=a=b\n",
        )
        .unwrap();
        assert_eq!(
            vars,
            [
                ("SALESFORCE_LOGIN_URL", "http://127.0.0.1:8440"),
                ("RUST_LOG", "info"),
                ("A", "x y"),
                ("B", "z"),
                ("C", ""),
                ("D", "a=b"),
            ]
            .map(|(k, v)| (k.to_string(), v.to_string()))
        );
    }

    #[test]
    fn a_malformed_line_is_named_by_its_number() {
        assert_eq!(
            parse("A=1\nnot a variable\n").unwrap_err(),
            "line 2: expected KEY=VALUE, got \"not a variable\""
        );
        assert!(parse("1A=x").unwrap_err().starts_with("line 1: \"1A\""));
    }
}
