//! Script text made safe for one log line, and [`LogOutput`], the writer that turns
//! `print` into log events.
//!
//! A script must not be able to forge log lines (an embedded `\n` followed by a fake
//! timestamp) or drive the terminal (ANSI escapes): control characters are escaped
//! (`\n`, `\r`, `\x1b`, `\u{2028}`, ...), tabs are kept, invalid UTF-8 bytes are
//! shown as `\xHH`.

use std::fmt::Write as _;

/// `text` as one log line: control characters (C0 but tab, DEL, C1, U+2028 and U+2029)
/// and invalid UTF-8 escaped.
pub(crate) fn escape(text: &[u8]) -> String {
    let mut out = String::with_capacity(text.len());
    for chunk in text.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push('\t'),
                '\0'..='\x1f' | '\x7f' => {
                    let _ = write!(out, "\\x{:02x}", c as u32);
                }
                '\u{80}'..='\u{9f}' | '\u{2028}' | '\u{2029}' => {
                    let _ = write!(out, "\\u{{{:04x}}}", c as u32);
                }
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    out
}

/// A writer for [`Vm::set_output`](crate::Vm::set_output) that makes each `print` one
/// `tracing` event (level INFO, target `luapool::script::print`), escaped like `log.*`
/// messages, so that a script's output cannot forge log lines. For hosts whose standard
/// output is a log (the HTTP server).
///
/// ```
/// use luapool::{LogOutput, Script, Vm, VmConfig};
///
/// let vm = Vm::new(VmConfig::default())?;
/// vm.set_output(LogOutput);
/// vm.exec(&Script::new("p.lua", r#"print("one event,\nnot two")"#))?;
/// # Ok::<(), luapool::Error>(())
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct LogOutput;

impl std::io::Write for LogOutput {
    /// Logs `buf` as one event (`print` writes each call whole, ending in `\n`, which is
    /// dropped).
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let line = buf.strip_suffix(b"\n").unwrap_or(buf);
        tracing::info!(target: "luapool::script::print", "{}", escape(line));
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn escapes_what_could_forge_a_line() {
        assert_eq!(escape(b"a\nb\r\tc"), "a\\nb\\r\tc");
        assert_eq!(escape(b"\x1b[31mred\x00\x7f"), "\\x1b[31mred\\x00\\x7f");
        assert_eq!(
            escape("x\u{2028}y\u{85}é".as_bytes()),
            "x\\u{2028}y\\u{0085}é"
        );
        assert_eq!(escape(b"bad \xff\xfe byte"), "bad \\xff\\xfe byte");
        assert_eq!(escape(b"plain \\n text"), "plain \\n text");
    }
}
