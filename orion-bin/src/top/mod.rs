//! `orion top`: a terminal dashboard of the cluster (ratatui on crossterm), polling the node's
//! API with the CLI's client and token.
//!
//! - [`state`]: what is shown and how keys change it (pure); [`render`]: drawing it (pure);
//!   [`events`]: events derived from two polls; [`source`]: the API requests, each bounded by
//!   `--request-timeout`.
//! - The poll runs every `--refresh` (bounded, [`MIN_REFRESH`]..=[`MAX_REFRESH`]) in its own task,
//!   so a slow node never freezes the keys; scale, drain and logs run in tasks too.
//! - The terminal (raw mode, alternate screen) is restored when `top` returns, on error, and on a
//!   panic (ratatui's panic hook).

pub mod events;
pub mod render;
pub mod source;
pub mod state;
#[cfg(test)]
mod tests;

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Args;
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
use tokio::sync::{Notify, mpsc};

use crate::client::Client;
use state::{Action, App, EventLine, Key, Snapshot};

/// Shortest `--refresh`.
pub const MIN_REFRESH: Duration = Duration::from_millis(200);
/// Longest `--refresh`.
pub const MAX_REFRESH: Duration = Duration::from_secs(60);
/// Shortest `--request-timeout`.
pub const MIN_REQUEST_TIMEOUT: Duration = Duration::from_millis(100);
/// Longest `--request-timeout`.
pub const MAX_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// `orion top` options.
#[derive(Debug, Clone, Args)]
pub struct TopArgs {
    /// How often the node is polled (200ms to 60s).
    #[arg(long, default_value = "2s", value_parser = parse_refresh)]
    pub refresh: Duration,
    /// How long one request may take before the poll (or action) reports it (100ms to 60s).
    #[arg(long, default_value = "5s", value_parser = parse_request_timeout)]
    pub request_timeout: Duration,
}

fn bounded_duration(text: &str, min: Duration, max: Duration) -> Result<Duration, String> {
    let d = humantime::parse_duration(text)
        .map_err(|e| format!("{e}; expected a duration such as 2s or 500ms"))?;
    if d < min || d > max {
        return Err(format!(
            "got {}, expected between {} and {}",
            humantime::format_duration(d),
            humantime::format_duration(min),
            humantime::format_duration(max)
        ));
    }
    Ok(d)
}

fn parse_refresh(text: &str) -> Result<Duration, String> {
    bounded_duration(text, MIN_REFRESH, MAX_REFRESH)
}

fn parse_request_timeout(text: &str) -> Result<Duration, String> {
    bounded_duration(text, MIN_REQUEST_TIMEOUT, MAX_REQUEST_TIMEOUT)
}

/// Restores the terminal when dropped (normal return and errors; panics go through ratatui's
/// hook installed by `try_init`).
struct RestoreTerminal;

impl Drop for RestoreTerminal {
    fn drop(&mut self) {
        ratatui::restore();
    }
}

/// What the background tasks report to the loop.
enum Report {
    Poll(Result<(Snapshot, Vec<EventLine>), String>),
    Logs(String, Result<Vec<String>, String>),
    Status(String),
}

/// Maps a crossterm key to a [`Key`].
fn key_of(k: event::KeyEvent) -> Option<Key> {
    let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
    Some(match k.code {
        KeyCode::Char('c') if ctrl => Key::CtrlC,
        KeyCode::Char(c) => Key::Char(c),
        KeyCode::Up => Key::Up,
        KeyCode::Down => Key::Down,
        KeyCode::Left => Key::Left,
        KeyCode::Right => Key::Right,
        KeyCode::Tab => Key::Tab,
        KeyCode::BackTab => Key::BackTab,
        KeyCode::Enter => Key::Enter,
        KeyCode::Esc => Key::Esc,
        _ => return None,
    })
}

/// Reads the terminal on a thread of its own; `None` asks for a redraw (a resize). Ends when the
/// loop is gone.
fn spawn_key_reader(tx: mpsc::Sender<Option<Key>>) {
    std::thread::spawn(move || {
        while !tx.is_closed() {
            match event::poll(Duration::from_millis(200)) {
                Ok(false) => continue,
                Ok(true) => {}
                Err(_) => return,
            }
            let sent = match event::read() {
                Ok(Event::Key(k)) if k.kind == KeyEventKind::Press => match key_of(k) {
                    Some(key) => tx.blocking_send(Some(key)),
                    None => Ok(()),
                },
                Ok(Event::Resize(..)) => tx.blocking_send(None),
                Ok(_) => Ok(()),
                Err(_) => return,
            };
            if sent.is_err() {
                return;
            }
        }
    });
}

/// Polls every `refresh` (or at once when `now` is notified) and reports each result with the
/// events since the previous answered poll.
fn spawn_poller(
    client: Client,
    refresh: Duration,
    timeout: Duration,
    now: Arc<Notify>,
    tx: mpsc::Sender<Report>,
) {
    tokio::spawn(async move {
        let mut previous: Option<Snapshot> = None;
        loop {
            let report = match source::poll(&client, timeout).await {
                Ok(snapshot) => {
                    let events =
                        source::events_between(&client, previous.as_ref(), &snapshot).await;
                    previous = Some(snapshot.clone());
                    Ok((snapshot, events))
                }
                Err(e) => Err(e),
            };
            if tx.send(Report::Poll(report)).await.is_err() {
                return;
            }
            tokio::select! {
                _ = tokio::time::sleep(refresh) => {}
                _ = now.notified() => {}
            }
        }
    });
}

/// `orion top`: runs the dashboard until `q` (or Ctrl-C). Refused when standard output is not
/// a terminal.
pub async fn top(client: &Client, addr: &str, args: &TopArgs) -> Result<()> {
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        bail!(
            "orion top needs a terminal on standard input and output; use `orion status`, `orion ps` or `orion nodes` in scripts"
        );
    }
    let mut terminal = ratatui::try_init().context("cannot set up the terminal")?;
    let _restore = RestoreTerminal;
    let timeout = args.request_timeout;
    let (key_tx, mut keys) = mpsc::channel(64);
    spawn_key_reader(key_tx);
    let (report_tx, mut reports) = mpsc::channel(16);
    let poll_now = Arc::new(Notify::new());
    spawn_poller(
        client.clone(),
        args.refresh,
        timeout,
        poll_now.clone(),
        report_tx.clone(),
    );
    let mut app = App::new(addr);
    loop {
        terminal
            .draw(|frame| render::draw(frame, &app))
            .context("cannot draw")?;
        tokio::select! {
            key = keys.recv() => {
                let Some(key) = key else { return Ok(()) };
                let Some(action) = key.and_then(|k| app.on_key(k)) else { continue };
                match action {
                    Action::Quit => return Ok(()),
                    Action::Refresh => poll_now.notify_one(),
                    action => run_action(client, action, timeout, &report_tx, &poll_now, &mut app),
                }
            }
            report = reports.recv() => match report {
                Some(Report::Poll(Ok((snapshot, events)))) => {
                    app.apply_snapshot(snapshot, events);
                    if app.status.starts_with("connecting") || app.status.starts_with("poll failed") {
                        app.set_status(format!("connected to {addr}"));
                    }
                }
                Some(Report::Poll(Err(e))) => app.set_status(format!("poll failed: {e}")),
                Some(Report::Logs(task, Ok(lines))) => {
                    app.set_status(format!("logs of {task}: last {} lines", lines.len()));
                    app.set_logs(task, lines);
                }
                Some(Report::Logs(task, Err(e))) => app.set_status(format!("logs of {task}: {e}")),
                Some(Report::Status(text)) => app.set_status(text),
                None => return Ok(()),
            },
        }
    }
}

/// Starts `action` in a task of its own; its outcome comes back as a [`Report`].
fn run_action(
    client: &Client,
    action: Action,
    timeout: Duration,
    tx: &mpsc::Sender<Report>,
    poll_now: &Arc<Notify>,
    app: &mut App,
) {
    let client = client.clone();
    let tx = tx.clone();
    let poll_now = poll_now.clone();
    match action {
        Action::Scale { service, replicas } => {
            app.set_status(format!("scaling {service} to {replicas}…"));
            tokio::spawn(async move {
                let text = match source::scale(&client, &service, replicas, timeout).await {
                    Ok(n) => format!("{service} scaled to {n}"),
                    Err(e) => format!("scale failed: {e}"),
                };
                poll_now.notify_one();
                let _ = tx.send(Report::Status(text)).await;
            });
        }
        Action::Drain { node } => {
            app.set_status(format!("draining {node}…"));
            tokio::spawn(async move {
                let text = match source::drain(&client, &node, timeout).await {
                    Ok(()) => format!("{node} draining (undo with `orion undrain {node}`)"),
                    Err(e) => format!("drain failed: {e}"),
                };
                poll_now.notify_one();
                let _ = tx.send(Report::Status(text)).await;
            });
        }
        Action::Logs { task } => {
            app.set_status(format!("fetching the logs of {task}…"));
            tokio::spawn(async move {
                let lines = source::task_logs(&client, &task, timeout).await;
                let _ = tx.send(Report::Logs(task, lines)).await;
            });
        }
        Action::Quit | Action::Refresh => {}
    }
}
