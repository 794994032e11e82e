//! `orion completions SHELL` and `orion man --dir DIR`: shell completion scripts (clap_complete)
//! and man pages (clap_mangen), both generated from the same command definition as the parser,
//! so they list exactly the commands and flags `orion` accepts.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{CommandFactory, ValueEnum};

use crate::cli::Cli;

/// The shells `orion completions` writes a script for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CompletionShell {
    /// Bash: `source <(orion completions bash)`, or save it under
    /// `/etc/bash_completion.d/orion`.
    Bash,
    /// Zsh: save it as `_orion` in a directory of `$fpath`.
    Zsh,
    /// Fish: save it as `~/.config/fish/completions/orion.fish`.
    Fish,
}

impl CompletionShell {
    fn generator(self) -> clap_complete::Shell {
        match self {
            CompletionShell::Bash => clap_complete::Shell::Bash,
            CompletionShell::Zsh => clap_complete::Shell::Zsh,
            CompletionShell::Fish => clap_complete::Shell::Fish,
        }
    }
}

/// The completion script of `shell` for `orion`, written to `out`.
pub fn write_completions(shell: CompletionShell, out: &mut dyn std::io::Write) {
    let mut command = Cli::command();
    clap_complete::generate(shell.generator(), &mut command, "orion", out);
}

/// `orion completions SHELL`: the script on stdout.
pub fn completions(shell: CompletionShell) -> anyhow::Result<()> {
    write_completions(shell, &mut std::io::stdout().lock());
    Ok(())
}

/// Writes `orion.1` and one page per subcommand (`orion-deploy.1`, `orion-token-create.1`, ...)
/// into `dir`, which must exist; returns the files written, sorted.
pub fn write_man_pages(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    anyhow::ensure!(
        dir.is_dir(),
        "--dir {}: not a directory (create it first)",
        dir.display()
    );
    clap_mangen::generate_to(Cli::command(), dir)
        .with_context(|| format!("writing man pages into {}", dir.display()))?;
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("listing {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            name.starts_with("orion") && name.ends_with(".1")
        })
        .collect();
    files.sort();
    Ok(files)
}

/// `orion man --dir DIR`: the pages, and how many were written.
pub fn man(dir: &Path) -> anyhow::Result<()> {
    let files = write_man_pages(dir)?;
    println!("wrote {} man pages into {}", files.len(), dir.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn script(shell: CompletionShell) -> String {
        let mut out = Vec::new();
        write_completions(shell, &mut out);
        String::from_utf8(out).expect("UTF-8")
    }

    #[test]
    fn every_shell_gets_a_script_naming_the_commands() {
        for shell in [
            CompletionShell::Bash,
            CompletionShell::Zsh,
            CompletionShell::Fish,
        ] {
            let text = script(shell);
            for word in ["deploy", "rollout", "secret", "completions", "--addr"] {
                assert!(text.contains(word), "{shell:?} script lacks {word}");
            }
        }
    }

    #[test]
    fn bash_accepts_the_bash_script() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("orion.bash");
        std::fs::write(&path, script(CompletionShell::Bash)).unwrap();
        let out = std::process::Command::new("bash")
            .arg("-n")
            .arg(&path)
            .output()
            .expect("bash is installed");
        assert!(
            out.status.success(),
            "bash -n: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    #[test]
    fn man_pages_cover_the_command_and_its_subcommands() {
        let dir = tempfile::tempdir().unwrap();
        let files = write_man_pages(dir.path()).unwrap();
        let names: Vec<String> = files
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        for page in [
            "orion.1",
            "orion-deploy.1",
            "orion-token-create.1",
            "orion-man.1",
        ] {
            assert!(names.iter().any(|n| n == page), "{page} missing: {names:?}");
        }
        let top = std::fs::read_to_string(dir.path().join("orion.1")).unwrap();
        assert!(
            top.starts_with(".ie") || top.contains(".TH orion 1"),
            "{top}"
        );
        assert!(top.contains("deploy"));
    }

    #[test]
    fn man_refuses_a_missing_directory() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        let err = write_man_pages(&missing).unwrap_err().to_string();
        assert!(err.contains("not a directory"), "{err}");
    }
}
