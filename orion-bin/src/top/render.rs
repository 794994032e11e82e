//! Drawing `orion top` from an [`App`]: a title, the tabs, the current view (with the logs pane
//! under the tasks when open), a status line, and the help and confirmation pop-ups. Pure: it
//! reads the state and draws into a frame, so it is tested on ratatui's `TestBackend`.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Row, Table, TableState, Tabs};

use super::state::{App, Confirm, Tab, health_word, service_counts, tasks_on};
use crate::network_cli::{bucket_color, index_of, lookup};

/// The keys, as the help pop-up lists them.
pub const HELP: &[(&str, &str)] = &[
    ("Tab / → / l", "next view"),
    ("Shift-Tab / ← / h", "previous view"),
    ("1-5", "go to a view"),
    ("↓ / j, ↑ / k", "select a row"),
    ("Enter / L", "logs of the selected task (Tasks)"),
    ("Esc", "close the logs"),
    ("+ / -", "scale the selected service by one (Services)"),
    ("d", "drain the selected node, after y (Nodes)"),
    ("r", "refresh now"),
    ("?", "this help"),
    ("q / Ctrl-C", "quit"),
];

fn mib(bytes: u64) -> String {
    format!("{}Mi", bytes / (1024 * 1024))
}

fn header(cells: &[&'static str]) -> Row<'static> {
    Row::new(cells.to_vec()).style(Style::new().add_modifier(Modifier::BOLD))
}

/// Draws the whole dashboard.
pub fn draw(frame: &mut Frame<'_>, app: &App) {
    let [title, tabs, body, status] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Min(3),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    let s = &app.snapshot;
    frame.render_widget(
        Paragraph::new(format!(
            "orion top — {} — {} nodes, {} services, {} tasks",
            app.addr,
            s.nodes.len(),
            s.services.len(),
            s.tasks.len()
        ))
        .style(Style::new().add_modifier(Modifier::BOLD)),
        title,
    );
    let titles: Vec<String> = Tab::ALL
        .iter()
        .enumerate()
        .map(|(i, t)| format!("{} {}", i + 1, t.title()))
        .collect();
    frame.render_widget(
        Tabs::new(titles)
            .select(app.tab)
            .highlight_style(Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD)),
        tabs,
    );
    match app.current() {
        Tab::Nodes => nodes(frame, body, app),
        Tab::Services => services(frame, body, app),
        Tab::Tasks => match &app.logs {
            Some((task, lines)) => {
                let [top, bottom] =
                    Layout::vertical([Constraint::Percentage(45), Constraint::Percentage(55)])
                        .areas(body);
                tasks(frame, top, app);
                logs(frame, bottom, task, lines);
            }
            None => tasks(frame, body, app),
        },
        Tab::Events => events(frame, body, app),
        Tab::Network => network(frame, body, app),
    }
    frame.render_widget(
        Paragraph::new(format!("{}   (? help, q quit)", app.status)),
        status,
    );
    if app.help {
        help(frame);
    }
    if let Some(Confirm::Drain { node }) = &app.confirm {
        let area = popup(frame.area(), 60, 5);
        frame.render_widget(Clear, area);
        frame.render_widget(
            Paragraph::new(vec![
                Line::from(format!("Drain node {node}?")),
                Line::from("Its tasks move elsewhere; nothing new is placed on it."),
                Line::from("y: drain   any other key: cancel"),
            ])
            .block(Block::bordered().title(" Confirm ")),
            area,
        );
    }
}

fn table(
    frame: &mut Frame<'_>,
    area: Rect,
    app: &App,
    head: &[&'static str],
    rows: Vec<Row<'static>>,
    widths: &[Constraint],
) {
    let mut state = TableState::default().with_selected(Some(app.selection()));
    let block = Block::new().borders(Borders::TOP);
    frame.render_stateful_widget(
        Table::new(rows, widths.to_vec())
            .header(header(head))
            .block(block)
            .row_highlight_style(Style::new().add_modifier(Modifier::REVERSED))
            .highlight_symbol("> "),
        area,
        &mut state,
    );
}

fn nodes(frame: &mut Frame<'_>, area: Rect, app: &App) {
    let s = &app.snapshot;
    let rows = s
        .nodes
        .iter()
        .map(|n| {
            Row::new(vec![
                n.id.clone(),
                n.status.to_string(),
                n.zone().unwrap_or("-").to_owned(),
                format!(
                    "{}/{}m",
                    n.allocated.cpu_millicores, n.capacity.cpu_millicores
                ),
                format!(
                    "{}/{}",
                    mib(n.allocated.memory_bytes),
                    mib(n.capacity.memory_bytes)
                ),
                tasks_on(s, &n.id).to_string(),
            ])
        })
        .collect();
    table(
        frame,
        area,
        app,
        &["NODE", "STATUS", "ZONE", "CPU", "MEMORY", "TASKS"],
        rows,
        &[
            Constraint::Fill(3),
            Constraint::Length(9),
            Constraint::Length(10),
            Constraint::Length(14),
            Constraint::Length(16),
            Constraint::Length(6),
        ],
    );
}

fn services(frame: &mut Frame<'_>, area: Rect, app: &App) {
    let rows = app
        .snapshot
        .services
        .iter()
        .map(|svc| {
            let (running, healthy) = service_counts(svc);
            Row::new(vec![
                svc.spec.name.clone(),
                svc.spec.image.clone(),
                svc.desired.to_string(),
                running.to_string(),
                healthy.to_string(),
                svc.version.to_string(),
            ])
        })
        .collect();
    table(
        frame,
        area,
        app,
        &[
            "SERVICE", "IMAGE", "DESIRED", "RUNNING", "HEALTHY", "VERSION",
        ],
        rows,
        &[
            Constraint::Fill(2),
            Constraint::Fill(3),
            Constraint::Length(8),
            Constraint::Length(8),
            Constraint::Length(8),
            Constraint::Length(8),
        ],
    );
}

fn tasks(frame: &mut Frame<'_>, area: Rect, app: &App) {
    let rows = app
        .snapshot
        .tasks
        .iter()
        .map(|t| {
            Row::new(vec![
                t.id.to_string(),
                t.service.to_string(),
                t.node.as_deref().unwrap_or("-").to_owned(),
                t.state.to_string(),
                health_word(t).to_owned(),
                t.restarts.to_string(),
                t.error.as_deref().unwrap_or_default().to_owned(),
            ])
        })
        .collect();
    table(
        frame,
        area,
        app,
        &[
            "TASK", "SERVICE", "NODE", "STATE", "HEALTH", "RESTARTS", "REASON",
        ],
        rows,
        &[
            Constraint::Fill(3),
            Constraint::Fill(2),
            Constraint::Fill(2),
            Constraint::Length(9),
            Constraint::Length(9),
            Constraint::Length(8),
            Constraint::Fill(2),
        ],
    );
}

fn logs(frame: &mut Frame<'_>, area: Rect, task: &str, lines: &[String]) {
    let block = Block::bordered().title(format!(" Logs of {task} (Esc closes) "));
    let height = block.inner(area).height as usize;
    let shown: Vec<Line<'_>> = lines
        .iter()
        .skip(lines.len().saturating_sub(height))
        .map(|l| Line::raw(l.as_str()))
        .collect();
    let text = if shown.is_empty() {
        vec![Line::raw("(no output)")]
    } else {
        shown
    };
    frame.render_widget(Paragraph::new(text).block(block), area);
}

fn events(frame: &mut Frame<'_>, area: Rect, app: &App) {
    // Newest first.
    let rows = app
        .events
        .iter()
        .rev()
        .map(|e| {
            Row::new(vec![
                e.at.clone(),
                e.kind.to_owned(),
                e.object.clone(),
                e.message.clone(),
            ])
        })
        .collect();
    table(
        frame,
        area,
        app,
        &["TIME", "KIND", "OBJECT", "EVENT"],
        rows,
        &[
            Constraint::Length(9),
            Constraint::Length(8),
            Constraint::Fill(2),
            Constraint::Fill(3),
        ],
    );
}

/// The latency matrix as a heat map: one row per node, a two-cell square per peer coloured by
/// RTT (`██` measured, `░░` estimated, `XX` link down, `··` unknown), as `orion network` draws it.
fn network(frame: &mut Frame<'_>, area: Rect, app: &App) {
    let block = Block::new().borders(Borders::TOP);
    let Some(view) = &app.snapshot.network else {
        frame.render_widget(
            Paragraph::new("no network view from this node").block(block),
            area,
        );
        return;
    };
    let index = index_of(view);
    let width = view.nodes.iter().map(String::len).max().unwrap_or(0);
    let selected = app.selection();
    let mut lines = Vec::with_capacity(view.nodes.len() + 3);
    for (i, a) in view.nodes.iter().enumerate() {
        let marker = if i == selected { "> " } else { "  " };
        let mut spans = vec![Span::raw(format!("{marker}{a:>width$} {i:>2} "))];
        for b in &view.nodes {
            spans.push(match lookup(&index, a, b) {
                _ if a == b => Span::raw("  "),
                None => Span::raw("··"),
                Some(p) if p.link_down => Span::styled("XX", Style::new().fg(Color::Red)),
                Some(p) => Span::styled(
                    if p.estimated { "░░" } else { "██" },
                    Style::new().fg(Color::Indexed(bucket_color(p.rtt_ms))),
                ),
            });
        }
        lines.push(Line::from(spans));
    }
    if let Some(a) = view.nodes.get(selected) {
        let mut peers: Vec<String> = view
            .nodes
            .iter()
            .filter(|b| *b != a)
            .filter_map(|b| lookup(&index, a, b).map(|p| format!("{b} {:.1} ms", p.rtt_ms)))
            .collect();
        peers.truncate(8);
        lines.push(Line::raw(""));
        lines.push(Line::raw(format!("{a}: {}", peers.join(", "))));
    }
    lines.push(Line::raw(
        "██ measured  ░░ estimated  XX link down  ·· unknown  (green < 1 ms … red ≥ 200 ms)",
    ));
    frame.render_widget(Paragraph::new(lines).block(block), area);
}

fn help(frame: &mut Frame<'_>) {
    let area = popup(frame.area(), 64, HELP.len() as u16 + 2);
    let lines: Vec<Line<'_>> = HELP
        .iter()
        .map(|(keys, what)| Line::raw(format!("{keys:<20} {what}")))
        .collect();
    frame.render_widget(Clear, area);
    frame.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(" Keys (any key closes) ")),
        area,
    );
}

/// A `width` x `height` rectangle centred in `area` (clipped to it).
fn popup(area: Rect, width: u16, height: u16) -> Rect {
    let w = width.min(area.width);
    let h = height.min(area.height);
    Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    )
}
