//! Plain-text log lines that cannot be forged: [`EscapedLines`] writes each log line with its
//! control characters escaped (`\n`, `\r`, and the other C0 characters but tab and the escape
//! character of terminal colours), so a value that reached a log field with a line break in it
//! shows as `\n` on its own line instead of starting a line of its own. Lambda's logs are JSON
//! (`LoggingConfig.LogFormat` in template.yaml), which escapes by itself; the command-line tool
//! and the local demo write plain text through this.

use std::io::{self, Write};

use tracing_subscriber::filter::{LevelFilter, Targets};

/// The log filter of a `RUST_LOG`-style value (`warn`, `dealbridge=debug,info`: a default level
/// and levels per target; a value that does not parse is ignored), its default level `level`
/// when given, else the value's own, else `fallback`.
///
/// Targets, not `EnvFilter`: the same directives but span filters, without the regular
/// expression engine `EnvFilter` links (a few hundred kB in every function binary).
pub fn filter(value: Option<&str>, level: Option<LevelFilter>, fallback: LevelFilter) -> Targets {
    let targets = value
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .and_then(|v| v.parse::<Targets>().ok())
        .unwrap_or_default();
    let default = level.or(targets.default_level()).unwrap_or(fallback);
    targets.with_default(default)
}

/// A level of Lambda's advanced logging controls (`AWS_LAMBDA_LOG_LEVEL`: TRACE, DEBUG, INFO,
/// WARN, ERROR, FATAL; FATAL is ERROR here), `None` for anything else.
pub fn lambda_level(value: &str) -> Option<LevelFilter> {
    match value.trim().to_ascii_uppercase().as_str() {
        "FATAL" => Some(LevelFilter::ERROR),
        other => other.parse().ok(),
    }
}

/// The filter of the environment variable `variable` (default `fallback`).
pub fn filter_from_env(variable: &str, fallback: LevelFilter) -> Targets {
    filter(std::env::var(variable).ok().as_deref(), None, fallback)
}

/// Wraps a writer that receives one formatted log line per `write` (as `tracing-subscriber`'s
/// fmt layer writes them); the line's last newline is kept, every other control character is
/// escaped.
pub struct EscapedLines<W: Write> {
    inner: W,
}

impl<W: Write> EscapedLines<W> {
    pub fn new(inner: W) -> Self {
        EscapedLines { inner }
    }
}

/// `line` with its control characters escaped, its final newline kept.
pub fn escape_line(line: &[u8]) -> Vec<u8> {
    let (body, end): (&[u8], &[u8]) = match line.strip_suffix(b"\n") {
        Some(body) => (body, b"\n"),
        None => (line, b""),
    };
    let mut out = Vec::with_capacity(line.len());
    for &b in body {
        match b {
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' | 0x1b => out.push(b),
            0..=0x1f | 0x7f => out.extend_from_slice(format!("\\x{b:02x}").as_bytes()),
            _ => out.push(b),
        }
    }
    out.extend_from_slice(end);
    out
}

impl<W: Write> Write for EscapedLines<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write_all(&escape_line(buf))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use tracing::Level;

    #[test]
    fn the_filter_takes_levels_per_target_and_a_default() {
        let f = filter(Some("dealbridge=debug,warn"), None, LevelFilter::INFO);
        assert!(f.would_enable("dealbridge::maxio", &Level::DEBUG));
        assert!(!f.would_enable("hyper", &Level::INFO));
        assert!(f.would_enable("hyper", &Level::WARN));
    }

    #[test]
    fn lambdas_level_is_the_default_and_rust_log_still_names_targets() {
        let level = lambda_level("FATAL");
        assert_eq!(level, Some(LevelFilter::ERROR));
        let f = filter(Some("dealbridge=trace"), level, LevelFilter::INFO);
        assert!(f.would_enable("dealbridge", &Level::TRACE));
        assert!(!f.would_enable("aws_config", &Level::WARN));
        assert_eq!(lambda_level("debug"), Some(LevelFilter::DEBUG));
        assert_eq!(lambda_level("loud"), None);
    }

    #[test]
    fn without_a_usable_value_the_fallback_level_holds() {
        for value in [None, Some(""), Some("dealbridge=chatty")] {
            let f = filter(value, None, LevelFilter::WARN);
            assert!(f.would_enable("dealbridge", &Level::WARN), "{value:?}");
            assert!(!f.would_enable("dealbridge", &Level::INFO), "{value:?}");
        }
    }

    #[test]
    fn a_line_break_inside_a_line_is_escaped_and_the_last_one_kept() {
        assert_eq!(
            escape_line(b"WARN refused id=006\r\nINFO forged line\n"),
            b"WARN refused id=006\\r\\nINFO forged line\n"
        );
        assert_eq!(escape_line(b"a\x00b\x7f\tc"), b"a\\x00b\\x7f\tc");
        assert_eq!(
            escape_line("\x1b[33mWARN\x1b[0m caf\u{e9}\n".as_bytes()),
            "\x1b[33mWARN\x1b[0m caf\u{e9}\n".as_bytes()
        );
    }

    #[test]
    fn the_writer_escapes_what_it_passes_on() {
        let mut out = Vec::new();
        let mut w = EscapedLines::new(&mut out);
        w.write_all(b"one\ntwo\n").unwrap();
        assert_eq!(out, b"one\\ntwo\n");
    }
}
