//! Plain-text log lines that cannot be forged: [`EscapedLines`] writes each log line with its
//! control characters escaped (`\n`, `\r`, and the other C0 characters but tab and the escape
//! character of terminal colours), so a value that reached a log field with a line break in it
//! shows as `\n` on its own line instead of starting a line of its own. Lambda's logs are JSON
//! (`LoggingConfig.LogFormat` in template.yaml), which escapes by itself; the command-line tool
//! and the local demo write plain text through this.

use std::io::{self, Write};

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
