//! The few shell scripts [`super::FakeRuntime`] acts out instead of "running" forever:
//! `<shell> -c "echo A; echo B >&2; exit N"`. Anything else is not a script the fake knows.

use crate::runtime::{LogLine, LogStream};

/// What a recognised script does: the lines it prints, then its exit code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Script {
    pub(super) output: Vec<LogLine>,
    pub(super) exit_code: i64,
}

impl Script {
    /// The lines printed on `stream`, each ending in a newline (as `exec` returns them).
    pub(super) fn text(&self, stream: LogStream) -> String {
        self.output
            .iter()
            .filter(|l| l.stream == stream)
            .map(|l| format!("{}\n", l.line))
            .collect()
    }
}

/// `Some` when `command` ends in `-c <script>` and every `;`-separated statement of the script
/// is `echo WORDS`, `echo WORDS >&2` or `exit N` (an integer); the script ends at the first
/// `exit`, else exits 0. `None` for anything else (loops, `sleep`, programs...).
pub(super) fn parse(command: &[String]) -> Option<Script> {
    let [.., flag, body] = command else {
        return None;
    };
    if flag != "-c" {
        return None;
    }
    let mut output = Vec::new();
    for statement in body.split(';').map(str::trim) {
        let words: Vec<&str> = statement.split_whitespace().collect();
        match words.as_slice() {
            ["exit", code] => {
                return Some(Script {
                    output,
                    exit_code: code.parse().ok()?,
                });
            }
            ["echo", rest @ .., ">&2"] => output.push(LogLine {
                stream: LogStream::Stderr,
                line: rest.join(" "),
            }),
            ["echo", rest @ ..] => output.push(LogLine {
                stream: LogStream::Stdout,
                line: rest.join(" "),
            }),
            _ => return None,
        }
    }
    Some(Script {
        output,
        exit_code: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn command(script: &str) -> Vec<String> {
        vec!["sh".into(), "-c".into(), script.into()]
    }

    #[test]
    fn echo_to_both_streams_then_exit_code() {
        let script = parse(&command("echo out 1; echo err >&2; exit 4")).unwrap();
        assert_eq!(script.exit_code, 4);
        assert_eq!(script.text(LogStream::Stdout), "out 1\n");
        assert_eq!(script.text(LogStream::Stderr), "err\n");
    }

    #[test]
    fn a_script_without_exit_exits_zero() {
        let script = parse(&command("echo hi")).unwrap();
        assert_eq!(
            (script.exit_code, script.text(LogStream::Stdout)),
            (0, "hi\n".to_owned())
        );
    }

    #[test]
    fn anything_else_is_not_a_script() {
        for other in [
            "sleep 300",
            "while :; do :; done",
            "exit three",
            "echo a; sleep 1",
        ] {
            assert_eq!(parse(&command(other)), None, "{other}");
        }
        assert_eq!(parse(&["echo".into(), "hi".into()]), None);
        assert_eq!(parse(&[]), None);
    }
}
