//! How a rollout's progress is shown: one updating line on a terminal (stderr), a line per
//! change otherwise, nothing with `-o json|yaml`.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use super::{Look, counts_text};

/// Shows progress: one updating line on a terminal (stderr), a line per change otherwise.
pub(super) struct Display {
    bar: Option<ProgressBar>,
    last: Option<String>,
    quiet: bool,
}

impl Display {
    pub(super) fn new(service: &str, quiet: bool) -> Self {
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::new_spinner();
            bar.set_style(
                ProgressStyle::with_template("{spinner} {prefix}: {wide_msg} ({elapsed})")
                    .expect("static template"),
            );
            bar.set_prefix(service.to_owned());
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Display {
            bar,
            last: None,
            quiet,
        }
    }

    pub(super) fn show(&mut self, service: &str, desired: u32, l: &Look) {
        let mut text = format!(
            "{}/{desired} serving; {}",
            l.counts.healthy,
            counts_text(&l.counts)
        );
        if let Some(r) = &l.latest_reason {
            text.push_str(&format!("; latest: {}", one_line(r, 200)));
        }
        if self.last.as_deref() == Some(&text) {
            return;
        }
        match &self.bar {
            Some(bar) => bar.set_message(text.clone()),
            None if !self.quiet => eprintln!("{service}: {text}"),
            None => {}
        }
        self.last = Some(text);
    }

    pub(super) fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// `text` on one line, cut at `max` characters.
pub(super) fn one_line(text: &str, max: usize) -> String {
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match line.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &line[..i]),
        None => line,
    }
}
