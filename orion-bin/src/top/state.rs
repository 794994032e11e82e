//! What `orion top` shows and how keys change it: pure state, no I/O and no terminal, so the
//! key handling and (with ratatui's `TestBackend`) the rendering are unit-tested.
//!
//! A key yields at most one [`Action`] for the I/O loop to carry out (scale, drain, fetch
//! logs, quit); the loop reports the outcome back through [`App::apply_snapshot`],
//! [`App::set_logs`] and [`App::set_status`].

use std::collections::VecDeque;

use orion_core::model::{Node, NodeStatus, Task, TaskHealth, TaskState};

use crate::api::network::NetworkView;
use crate::api::types::ServiceStatus;

/// The most events kept (older ones are dropped first).
pub const MAX_EVENTS: usize = 500;
/// The most log lines kept for the selected task.
pub const MAX_LOG_LINES: usize = 1000;
/// The highest replica count `+` asks for (the node refuses above its own limit anyway).
pub const MAX_SCALE_FROM_KEYS: u32 = 10_000;

/// The views, in tab order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tab {
    Nodes,
    Services,
    Tasks,
    Events,
    Network,
}

impl Tab {
    pub const ALL: [Tab; 5] = [
        Tab::Nodes,
        Tab::Services,
        Tab::Tasks,
        Tab::Events,
        Tab::Network,
    ];

    /// The tab's title.
    pub fn title(self) -> &'static str {
        match self {
            Tab::Nodes => "Nodes",
            Tab::Services => "Services",
            Tab::Tasks => "Tasks",
            Tab::Events => "Events",
            Tab::Network => "Network",
        }
    }

    fn index(self) -> usize {
        Tab::ALL.iter().position(|t| *t == self).unwrap_or(0)
    }
}

/// Everything one poll of the API returned.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub nodes: Vec<Node>,
    pub services: Vec<ServiceStatus>,
    /// Active tasks.
    pub tasks: Vec<Task>,
    /// `None` when the node could not say (the view shows why in the status line).
    pub network: Option<NetworkView>,
}

/// One line of the events view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventLine {
    /// Wall-clock time it was seen, `HH:MM:SS` UTC.
    pub at: String,
    /// `node`, `service` or `task`.
    pub kind: &'static str,
    /// The object's id or name.
    pub object: String,
    pub message: String,
}

/// A key, decoupled from the terminal library.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    Char(char),
    Up,
    Down,
    Left,
    Right,
    Tab,
    BackTab,
    Enter,
    Esc,
    CtrlC,
}

/// What the I/O loop must do after a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Quit,
    /// Set the service's replica count.
    Scale {
        service: String,
        replicas: u32,
    },
    /// Drain the node (already confirmed).
    Drain {
        node: String,
    },
    /// Fetch the task's recent log lines.
    Logs {
        task: String,
    },
    /// Poll now instead of waiting for the next tick.
    Refresh,
}

/// A question waiting for `y` or `n`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Confirm {
    Drain { node: String },
}

/// The dashboard's state.
#[derive(Debug, Default)]
pub struct App {
    pub tab: usize,
    pub snapshot: Snapshot,
    /// Selected row of each tab.
    pub selected: [usize; Tab::ALL.len()],
    /// Newest last, at most [`MAX_EVENTS`].
    pub events: VecDeque<EventLine>,
    /// The logs pane, when open: the task and its last lines.
    pub logs: Option<(String, Vec<String>)>,
    pub confirm: Option<Confirm>,
    pub help: bool,
    /// The last outcome or error, shown in the status line.
    pub status: String,
    /// The address of the node polled (title bar).
    pub addr: String,
    /// Polls answered so far.
    pub polls: u64,
}

impl App {
    /// A dashboard of the node at `addr`, before the first poll.
    pub fn new(addr: &str) -> Self {
        App {
            addr: addr.to_owned(),
            status: "connecting…".to_owned(),
            ..App::default()
        }
    }

    /// The current view.
    pub fn current(&self) -> Tab {
        Tab::ALL[self.tab]
    }

    /// Takes a new poll's result and the events derived for it.
    pub fn apply_snapshot(&mut self, snapshot: Snapshot, events: Vec<EventLine>) {
        self.snapshot = snapshot;
        self.polls += 1;
        for e in events {
            if self.events.len() == MAX_EVENTS {
                self.events.pop_front();
            }
            self.events.push_back(e);
        }
        for tab in Tab::ALL {
            let rows = self.rows(tab);
            let sel = &mut self.selected[tab.index()];
            *sel = (*sel).min(rows.saturating_sub(1));
        }
    }

    /// Opens the logs pane on `task` with `lines` (the newest [`MAX_LOG_LINES`] kept).
    pub fn set_logs(&mut self, task: String, mut lines: Vec<String>) {
        if lines.len() > MAX_LOG_LINES {
            lines.drain(..lines.len() - MAX_LOG_LINES);
        }
        self.logs = Some((task, lines));
    }

    /// Sets the status line.
    pub fn set_status(&mut self, text: impl Into<String>) {
        self.status = text.into();
    }

    /// Rows in `tab`'s list.
    pub fn rows(&self, tab: Tab) -> usize {
        match tab {
            Tab::Nodes => self.snapshot.nodes.len(),
            Tab::Services => self.snapshot.services.len(),
            Tab::Tasks => self.snapshot.tasks.len(),
            Tab::Events => self.events.len(),
            Tab::Network => self.snapshot.network.as_ref().map_or(0, |n| n.nodes.len()),
        }
    }

    /// The selected row of the current tab.
    pub fn selection(&self) -> usize {
        self.selected[self.tab]
    }

    fn select_service(&self) -> Option<&ServiceStatus> {
        self.snapshot
            .services
            .get(self.selected[Tab::Services.index()])
    }

    fn select_node(&self) -> Option<&Node> {
        self.snapshot.nodes.get(self.selected[Tab::Nodes.index()])
    }

    fn select_task(&self) -> Option<&Task> {
        self.snapshot.tasks.get(self.selected[Tab::Tasks.index()])
    }

    fn move_selection(&mut self, down: bool) {
        let rows = self.rows(self.current());
        let sel = &mut self.selected[self.tab];
        *sel = if down {
            (*sel + 1).min(rows.saturating_sub(1))
        } else {
            sel.saturating_sub(1)
        };
    }

    fn switch_tab(&mut self, forward: bool) {
        let n = Tab::ALL.len();
        self.tab = if forward {
            (self.tab + 1) % n
        } else {
            (self.tab + n - 1) % n
        };
        self.logs = None;
    }

    /// Handles one key; returns what the I/O loop must do, if anything.
    pub fn on_key(&mut self, key: Key) -> Option<Action> {
        if key == Key::CtrlC {
            return Some(Action::Quit);
        }
        if let Some(confirm) = self.confirm.take() {
            return match (key, confirm) {
                (Key::Char('y' | 'Y'), Confirm::Drain { node }) => Some(Action::Drain { node }),
                (_, Confirm::Drain { node }) => {
                    self.set_status(format!("drain of {node} cancelled"));
                    None
                }
            };
        }
        if self.help {
            // Any key closes the help; `q` still quits.
            self.help = false;
            return (key == Key::Char('q')).then_some(Action::Quit);
        }
        match key {
            Key::Char('q') => return Some(Action::Quit),
            Key::Char('?') => self.help = true,
            Key::Esc => self.logs = None,
            Key::Tab | Key::Right | Key::Char('l') => self.switch_tab(true),
            Key::BackTab | Key::Left | Key::Char('h') => self.switch_tab(false),
            Key::Char(c @ '1'..='5') => {
                self.tab = c as usize - '1' as usize;
                self.logs = None;
            }
            Key::Down | Key::Char('j') => self.move_selection(true),
            Key::Up | Key::Char('k') => self.move_selection(false),
            Key::Char('r') => return Some(Action::Refresh),
            Key::Char(c @ ('+' | '=' | '-')) => return self.scale_key(c != '-'),
            Key::Char('d') => match (self.current(), self.select_node()) {
                (Tab::Nodes, Some(node)) if node.status == NodeStatus::Draining => {
                    let text = format!("{} is already draining", node.id);
                    self.set_status(text);
                }
                (Tab::Nodes, Some(node)) => {
                    self.confirm = Some(Confirm::Drain {
                        node: node.id.clone(),
                    });
                }
                _ => self.set_status("d drains the selected node: go to the Nodes tab (1)"),
            },
            Key::Enter | Key::Char('L') => match (self.current(), self.select_task()) {
                (Tab::Tasks, Some(task)) => {
                    return Some(Action::Logs {
                        task: task.id.to_string(),
                    });
                }
                _ => self.set_status("Enter shows the selected task's logs: go to Tasks (3)"),
            },
            _ => {}
        }
        None
    }

    fn scale_key(&mut self, up: bool) -> Option<Action> {
        let target = match (self.current(), self.select_service()) {
            (Tab::Services, Some(s)) => Some((s.spec.name.clone(), s.desired)),
            _ => None,
        };
        let Some((service, desired)) = target else {
            self.set_status("+/- scale the selected service: go to the Services tab (2)");
            return None;
        };
        let replicas = if up {
            (desired + 1).min(MAX_SCALE_FROM_KEYS)
        } else {
            desired.saturating_sub(1)
        };
        if replicas == desired {
            self.set_status(format!("{service} stays at {desired} replicas"));
            return None;
        }
        Some(Action::Scale { service, replicas })
    }
}

/// Counts of a service's replicas: running, and healthy (serving: running, and passing its
/// health check when it has one).
pub fn service_counts(s: &ServiceStatus) -> (u32, u32) {
    let running = s.by_state.get(&TaskState::Running).copied().unwrap_or(0);
    (running, s.running)
}

/// The tasks on `node` that are active.
pub fn tasks_on(snapshot: &Snapshot, node: &str) -> usize {
    snapshot
        .tasks
        .iter()
        .filter(|t| t.node.as_deref() == Some(node))
        .count()
}

/// Short health word of a task.
pub fn health_word(t: &Task) -> &'static str {
    match t.health {
        TaskHealth::Unknown => "-",
        TaskHealth::Starting => "starting",
        TaskHealth::Healthy => "healthy",
        TaskHealth::Unhealthy => "unhealthy",
    }
}
