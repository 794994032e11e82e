//! Splitting byte chunks into log lines, shared by every runtime.

/// Accumulates bytes and hands out complete lines (without `\n` or a trailing `\r`).
#[derive(Debug, Default)]
pub(crate) struct LineSplitter {
    pending: Vec<u8>,
}

impl LineSplitter {
    /// Adds `bytes`; returns every line completed by them.
    pub(crate) fn push(&mut self, bytes: &[u8]) -> Vec<String> {
        self.pending.extend_from_slice(bytes);
        let mut lines = Vec::new();
        let mut start = 0;
        while let Some(pos) = self.pending[start..].iter().position(|b| *b == b'\n') {
            lines.push(decode_line(&self.pending[start..start + pos]));
            start += pos + 1;
        }
        self.pending.drain(..start);
        lines
    }

    /// The unterminated rest, if any (call once the source has ended).
    pub(crate) fn finish(&mut self) -> Option<String> {
        if self.pending.is_empty() {
            None
        } else {
            let line = decode_line(&self.pending);
            self.pending.clear();
            Some(line)
        }
    }
}

fn decode_line(bytes: &[u8]) -> String {
    let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
    String::from_utf8_lossy(bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_split_across_chunks_are_joined() {
        let mut s = LineSplitter::default();
        assert_eq!(s.push(b"ab"), Vec::<String>::new());
        assert_eq!(s.push(b"c\nde\r\nf"), vec!["abc", "de"]);
        assert_eq!(s.finish().as_deref(), Some("f"));
        assert_eq!(s.finish(), None);
    }

    #[test]
    fn empty_lines_are_kept() {
        let mut s = LineSplitter::default();
        assert_eq!(s.push(b"\n\nx\n"), vec!["", "", "x"]);
        assert_eq!(s.finish(), None);
    }
}
