//! `orion network`: the measured (and estimated) network between the nodes, from
//! `GET /v1/network`. In a terminal, a compact heat map of the RTT; otherwise (or with more
//! nodes than fit) a plain table; `-o json` / `-o yaml` print the answer as it is.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::IsTerminal;

use anyhow::Result;

use crate::api::network::{NetworkPair, NetworkView};
use crate::cli::OutputFormat;
use crate::client::Client;
use crate::output::render_value;

/// The most nodes drawn as a heat map; above, the table is printed.
const MAX_HEAT_MAP_NODES: usize = 40;

/// RTT bucket upper bounds (ms) and their ANSI 256 colours, green to red.
const BUCKETS: [(f64, u8); 7] = [
    (1.0, 46),
    (5.0, 118),
    (20.0, 226),
    (50.0, 214),
    (100.0, 208),
    (200.0, 202),
    (f64::INFINITY, 196),
];

/// `orion network [-o json|yaml]`.
pub async fn network(client: &Client, format: OutputFormat) -> Result<()> {
    let view: NetworkView = client.get("/v1/network").await?;
    match format {
        OutputFormat::Table => {
            let terminal = std::io::stdout().is_terminal();
            if terminal && view.nodes.len() <= MAX_HEAT_MAP_NODES {
                print!("{}", heat_map(&view, true));
            } else {
                print!("{}", table(&view));
            }
        }
        _ => println!("{}", render_value(&view, format)),
    }
    Ok(())
}

/// The pair between `a` and `b` in either direction: a measurement from `a`, else from `b`,
/// else an estimate.
pub(crate) fn lookup<'a>(
    index: &HashMap<(&'a str, &'a str), &'a NetworkPair>,
    a: &'a str,
    b: &'a str,
) -> Option<&'a NetworkPair> {
    let measured = |x, y| index.get(&(x, y)).copied().filter(|p| !p.estimated);
    measured(a, b)
        .or_else(|| measured(b, a))
        .or_else(|| index.get(&(a, b)).or_else(|| index.get(&(b, a))).copied())
}

pub(crate) fn index_of(view: &NetworkView) -> HashMap<(&str, &str), &NetworkPair> {
    let mut index = HashMap::new();
    for p in &view.pairs {
        // A measurement wins over an estimate of the same pair.
        let slot = index.entry((p.from.as_str(), p.to.as_str())).or_insert(p);
        if slot.estimated && !p.estimated {
            *slot = p;
        }
    }
    index
}

/// One row per node, one two-character cell per peer: `██` measured, `░░` estimated, `XX` link
/// down, `··` unknown; the colour is the RTT bucket (legend below).
fn heat_map(view: &NetworkView, color: bool) -> String {
    let index = index_of(view);
    let width = view.nodes.iter().map(String::len).max().unwrap_or(0);
    let mut out = String::new();
    let _ = write!(out, "{:>w$}    ", "", w = width);
    for i in 0..view.nodes.len() {
        let _ = write!(out, "{:<2}", i % 100);
    }
    out.push('\n');
    for (i, a) in view.nodes.iter().enumerate() {
        let _ = write!(out, "{a:>width$} {i:>2} ");
        for b in &view.nodes {
            let cell = if a == b {
                "  ".to_string()
            } else {
                match lookup(&index, a, b) {
                    None => "··".to_string(),
                    Some(p) if p.link_down => paint("XX", 196, color),
                    Some(p) => {
                        let glyph = if p.estimated { "░░" } else { "██" };
                        paint(glyph, bucket_color(p.rtt_ms), color)
                    }
                }
            };
            out.push_str(&cell);
        }
        out.push('\n');
    }
    out.push_str("\nRTT: ");
    let mut low = 0.0;
    for (high, code) in BUCKETS {
        let label = if high.is_finite() {
            format!("<{high} ms")
        } else {
            format!(">={low} ms")
        };
        let _ = write!(out, "{} {label}  ", paint("██", code, color));
        low = high;
    }
    out.push_str("\n██ measured  ░░ estimated (Vivaldi)  XX link down  ·· unknown\n");
    if view.estimates_omitted {
        out.push_str("(estimates omitted: too many nodes)\n");
    }
    out
}

pub(crate) fn bucket_color(rtt_ms: f64) -> u8 {
    BUCKETS
        .iter()
        .find(|(high, _)| rtt_ms < *high)
        .map_or(196, |(_, code)| *code)
}

fn paint(text: &str, code: u8, color: bool) -> String {
    if color {
        format!("\x1b[38;5;{code}m{text}\x1b[0m")
    } else {
        text.to_string()
    }
}

/// One line per pair: measured ones first, then estimated ones.
fn table(view: &NetworkView) -> String {
    let mut out = format!(
        "{:<16} {:<16} {:>9} {:>9} {:>8} {:>6} {:>10} {:>9}  {}\n",
        "FROM", "TO", "RTT_MS", "P90_MS", "JITTER", "LOSS", "BW_MBPS", "STABILITY", "SOURCE"
    );
    let opt =
        |v: Option<f64>, digits: usize| v.map_or("-".to_string(), |v| format!("{v:.digits$}"));
    for p in &view.pairs {
        let source = match (p.estimated, p.link_down) {
            (true, _) => "estimated",
            (false, true) => "measured, link down",
            (false, false) => "measured",
        };
        let _ = writeln!(
            out,
            "{:<16} {:<16} {:>9.2} {:>9} {:>8} {:>6} {:>10} {:>9}  {source}",
            p.from,
            p.to,
            p.rtt_ms,
            opt(p.rtt_p90_ms, 2),
            opt(p.jitter_ms, 2),
            opt(p.loss, 3),
            opt(p.bandwidth_mbps, 0),
            opt(p.stability, 2),
        );
    }
    if view.estimates_omitted {
        out.push_str("(estimates omitted: too many nodes)\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view() -> NetworkView {
        let pair =
            |from: &str, to: &str, rtt_ms: f64, estimated: bool, link_down: bool| NetworkPair {
                from: from.into(),
                to: to.into(),
                rtt_ms,
                loss: (!estimated).then_some(0.0),
                link_down,
                estimated,
                ..NetworkPair::default()
            };
        NetworkView {
            nodes: vec!["a".into(), "b".into(), "c".into(), "d".into()],
            pairs: vec![
                pair("a", "b", 0.5, false, false),
                pair("b", "c", 10.0, false, true),
                pair("a", "c", 120.0, true, false),
            ],
            estimates_omitted: false,
        }
    }

    #[test]
    fn heat_map_marks_measured_estimated_down_and_unknown() {
        let map = heat_map(&view(), false);
        let rows: Vec<&str> = map.lines().collect();
        // Row a: itself, b measured, c estimated, d unknown.
        assert_eq!(rows[1], "a  0   ██░░··");
        // Row b: a measured (reverse direction), c link down, d unknown.
        assert_eq!(rows[2], "b  1 ██  XX··");
        assert!(map.contains("░░ estimated"));
        assert!(!map.contains('\x1b'), "no colour codes when colour is off");
        assert!(heat_map(&view(), true).contains("\x1b[38;5;"));
    }

    #[test]
    fn table_lists_every_pair_with_its_source() {
        let text = table(&view());
        assert_eq!(text.lines().count(), 4);
        assert!(text.contains("measured, link down"));
        let estimated = text.lines().find(|l| l.ends_with("estimated")).unwrap();
        assert!(
            estimated.contains("120.00") && estimated.contains(" - "),
            "{estimated}"
        );
    }
}
