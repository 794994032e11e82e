//! Asking before a destructive command: `stop SERVICE` removes a service only when the user says
//! so on a terminal, or passed `--yes`.
//!
//! Contract: with `--yes` nothing is asked; on a terminal (stdin and stderr) the question goes to
//! stderr and only `y` or `yes` proceeds (anything else: exit code 1, nothing changed); without a
//! terminal and without `--yes` the command is refused (exit code 2, nothing changed), since no
//! one can answer.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::Result;

use crate::api::types::ServiceStatus;
use crate::client::exit;
use crate::commands::Exit;

/// Asks whether `svc` may be removed (see the module's contract).
pub fn confirm_removal(svc: &ServiceStatus, yes: bool) -> Result<()> {
    if yes {
        return Ok(());
    }
    let name = &svc.spec.name;
    let active: u32 = svc.by_state.values().sum();
    let what = format!(
        "`stop {name}` removes service {name} and stops its {active} task{}",
        if active == 1 { "" } else { "s" }
    );
    if !(std::io::stdin().is_terminal() && std::io::stderr().is_terminal()) {
        return Err(Exit {
            code: exit::USAGE,
            message: format!(
                "{what}; refused without a terminal to confirm on: pass --yes (or use \
                 `orion rm {name}`) to remove it"
            ),
        }
        .into());
    }
    eprint!("{what}. Remove it? [y/N] ");
    std::io::stderr().flush().ok();
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer).ok();
    if is_yes(&answer) {
        Ok(())
    } else {
        Err(Exit {
            code: exit::FAILURE,
            message: format!("not removed: service {name} is unchanged"),
        }
        .into())
    }
}

/// `y` or `yes`, in any case, with surrounding blanks.
fn is_yes(answer: &str) -> bool {
    matches!(answer.trim().to_lowercase().as_str(), "y" | "yes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_yes_proceeds() {
        for a in ["y\n", "YES", " yes \n"] {
            assert!(is_yes(a), "{a:?}");
        }
        for a in ["", "\n", "n", "no", "yep", "sure"] {
            assert!(!is_yes(a), "{a:?}");
        }
    }
}
