//! `orion top`'s keys and drawing, on ratatui's `TestBackend`.

use orion_core::model::{Node, NodeStatus, Resources, ServiceSpec, Task, TaskState};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

use super::render::draw;
use super::state::{Action, App, Key, Snapshot, Tab};
use crate::api::network::{NetworkPair, NetworkView};
use crate::api::types::ServiceStatus;

fn snapshot() -> Snapshot {
    let mut node = Node::new("node-a", Resources::new(4000, 8 << 30));
    node.allocated = Resources::new(500, 256 << 20);
    let mut task = Task::new("web", 0, 1, Resources::new(500, 256 << 20));
    task.state = TaskState::Running;
    task.node = Some("node-a".into());
    let mut pending = Task::new("web", 1, 1, Resources::new(500, 256 << 20));
    pending.error = Some("no node fits".into());
    let tasks = vec![task, pending];
    Snapshot {
        nodes: vec![node, Node::new("node-b", Resources::new(2000, 4 << 30))],
        services: vec![ServiceStatus::new(
            ServiceSpec::new("web", "busybox", 2),
            1,
            &tasks,
        )],
        tasks,
        network: Some(NetworkView {
            nodes: vec!["node-a".into(), "node-b".into()],
            pairs: vec![NetworkPair {
                from: "node-a".into(),
                to: "node-b".into(),
                rtt_ms: 0.4,
                ..NetworkPair::default()
            }],
            estimates_omitted: false,
        }),
    }
}

fn app() -> App {
    let mut app = App::new("127.0.0.1:8000");
    app.apply_snapshot(snapshot(), vec![]);
    app
}

/// The screen as text, one line per row.
fn screen(app: &App) -> String {
    let mut terminal = Terminal::new(TestBackend::new(100, 24)).unwrap();
    terminal.draw(|f| draw(f, app)).unwrap();
    let buffer = terminal.backend().buffer();
    (0..buffer.area.height)
        .map(|y| {
            (0..buffer.area.width)
                .map(|x| buffer[(x, y)].symbol())
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn line_with<'a>(screen: &'a str, needle: &str) -> &'a str {
    screen
        .lines()
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no line with {needle:?} in\n{screen}"))
}

#[test]
fn nodes_show_cpu_memory_task_count_and_status() {
    let s = screen(&app());
    assert!(s.contains("orion top — 127.0.0.1:8000 — 2 nodes, 1 services, 2 tasks"));
    let row = line_with(&s, "node-a");
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(
        cells,
        vec![
            ">",
            "node-a",
            "ready",
            "-",
            "500/4000m",
            "256Mi/8192Mi",
            "1"
        ],
        "{row}"
    );
    assert!(line_with(&s, "node-b").trim_end().ends_with(" 0"));
}

#[test]
fn services_show_desired_running_and_healthy() {
    let mut app = app();
    app.on_key(Key::Tab);
    assert_eq!(app.current(), Tab::Services);
    let s = screen(&app);
    assert!(line_with(&s, "SERVICE").contains("HEALTHY"));
    let cells: Vec<String> = line_with(&s, "busybox")
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    assert_eq!(cells, vec![">", "web", "busybox", "2", "1", "1", "1"]);
}

#[test]
fn keys_move_between_tabs_and_rows() {
    let mut app = app();
    assert_eq!(app.on_key(Key::Char('3')), None);
    assert_eq!(app.current(), Tab::Tasks);
    app.on_key(Key::Char('j'));
    assert_eq!(app.selection(), 1);
    app.on_key(Key::Down);
    assert_eq!(app.selection(), 1, "the selection stops at the last row");
    app.on_key(Key::Char('k'));
    assert_eq!(app.selection(), 0);
    app.on_key(Key::BackTab);
    assert_eq!(app.current(), Tab::Services);
    app.on_key(Key::Left);
    app.on_key(Key::Left);
    assert_eq!(app.current(), Tab::Network, "tabs wrap around");
    let s = screen(&app);
    assert!(line_with(&s, "node-a  0").contains("██"), "{s}");
    assert!(s.contains("node-a: node-b 0.4 ms"), "{s}");
    assert_eq!(app.on_key(Key::Char('q')), Some(Action::Quit));
    assert_eq!(app.on_key(Key::CtrlC), Some(Action::Quit));
}

#[test]
fn plus_and_minus_scale_the_selected_service() {
    let mut app = app();
    assert_eq!(app.on_key(Key::Char('+')), None, "not on the services tab");
    assert!(app.status.contains("Services"));
    app.on_key(Key::Char('2'));
    assert_eq!(
        app.on_key(Key::Char('+')),
        Some(Action::Scale {
            service: "web".into(),
            replicas: 3
        })
    );
    assert_eq!(
        app.on_key(Key::Char('-')),
        Some(Action::Scale {
            service: "web".into(),
            replicas: 1
        })
    );
}

#[test]
fn drain_asks_first_and_only_y_confirms() {
    let mut app = app();
    assert_eq!(app.on_key(Key::Char('d')), None);
    let s = screen(&app);
    assert!(s.contains("Drain node node-a?"), "{s}");
    assert_eq!(app.on_key(Key::Char('n')), None);
    assert!(app.status.contains("cancelled"));
    assert!(!screen(&app).contains("Drain node"));
    app.on_key(Key::Char('d'));
    assert_eq!(
        app.on_key(Key::Char('y')),
        Some(Action::Drain {
            node: "node-a".into()
        })
    );
    let mut snap = snapshot();
    snap.nodes[0].status = NodeStatus::Draining;
    app.apply_snapshot(snap, vec![]);
    assert_eq!(app.on_key(Key::Char('d')), None);
    assert!(app.confirm.is_none() && app.status.contains("already draining"));
}

#[test]
fn enter_opens_the_selected_tasks_logs_and_esc_closes_them() {
    let mut app = app();
    app.on_key(Key::Char('3'));
    let id = app.snapshot.tasks[0].id.to_string();
    assert_eq!(
        app.on_key(Key::Enter),
        Some(Action::Logs { task: id.clone() })
    );
    app.set_logs(id.clone(), vec!["hello-from-web".into()]);
    let s = screen(&app);
    assert!(s.contains(&format!("Logs of {id}")), "{s}");
    assert!(s.contains("hello-from-web"));
    assert!(line_with(&s, "no node fits").contains("pending"));
    app.on_key(Key::Esc);
    assert!(!screen(&app).contains("hello-from-web"));
}

#[test]
fn help_lists_the_keys_and_any_key_closes_it() {
    let mut app = app();
    app.on_key(Key::Char('?'));
    let s = screen(&app);
    assert!(s.contains("drain the selected node"), "{s}");
    assert_eq!(app.on_key(Key::Char('x')), None);
    assert!(!screen(&app).contains("drain the selected node"));
}

#[test]
fn events_are_bounded_and_shown_newest_first() {
    let mut app = app();
    let line = |i: usize| super::state::EventLine {
        at: "12:00:00".into(),
        kind: "task",
        object: format!("t{i}"),
        message: "ended".into(),
    };
    let events: Vec<_> = (0..super::state::MAX_EVENTS + 5).map(line).collect();
    app.apply_snapshot(snapshot(), events);
    assert_eq!(app.events.len(), super::state::MAX_EVENTS);
    app.on_key(Key::Char('4'));
    let s = screen(&app);
    let first = line_with(&s, "ended");
    assert!(
        first.contains(&format!("t{}", super::state::MAX_EVENTS + 4)),
        "{s}"
    );
}

#[test]
fn refresh_and_request_timeout_are_bounded() {
    use clap::Parser;

    use crate::cli::{Cli, Command};
    let cli = Cli::try_parse_from(["orion", "top"]).unwrap();
    let Command::Top(args) = cli.command else {
        panic!("not top")
    };
    assert_eq!(args.refresh, std::time::Duration::from_secs(2));
    assert_eq!(args.request_timeout, std::time::Duration::from_secs(5));
    for argv in [
        &["orion", "top", "--refresh", "10ms"][..],
        &["orion", "top", "--refresh", "2h"],
        &["orion", "top", "--request-timeout", "0s"],
        &["orion", "top", "--refresh", "soon"],
    ] {
        let err = Cli::try_parse_from(argv).unwrap_err().to_string();
        assert!(
            err.contains("expected between") || err.contains("expected a duration"),
            "{argv:?}: {err}"
        );
    }
}
