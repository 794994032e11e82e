//! Human explanations of scheduling decisions: the score table of a [`Placement`] and the
//! grouped reasons of an unplaceable task ([`RejectionSummary`]).

use std::fmt::{self, Write as _};

use super::Rejection;
use super::pipeline::{Placement, PlacementOutcome};
use crate::model::NodeId;

/// How many distinct reasons a [`FilterRejections`] keeps as examples.
const SAMPLE_REASONS: usize = 3;

/// The nodes one filter turned down for one kind of reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterRejections {
    /// The filter's name.
    pub filter: &'static str,
    /// The reason's kind: the reason up to its first `" ("`, e.g. `"insufficient memory"`.
    pub kind: String,
    /// How many nodes.
    pub nodes: usize,
    /// Up to three example nodes with their full reasons, in view order.
    pub examples: Vec<(NodeId, String)>,
}

/// Why no node could take a task: rejections grouped by filter and reason kind, largest group
/// first (ties in filter order of first appearance). Its `Display` reads like
/// `no feasible node (4 nodes): 3 nodes: insufficient memory (n1: needs 512 MiB memory, 128 MiB
/// free; ...); 1 node: draining (n4: node is draining)`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RejectionSummary {
    /// Nodes rejected in total.
    pub nodes: usize,
    /// The groups, largest first.
    pub groups: Vec<FilterRejections>,
}

impl RejectionSummary {
    /// Groups `rejections` (as in [`PlacementOutcome::Unplaceable`]).
    pub fn from_rejections(rejections: &[(NodeId, Rejection)]) -> Self {
        let mut groups: Vec<FilterRejections> = Vec::new();
        for (node, r) in rejections {
            let kind = r.reason.split(" (").next().unwrap_or_default();
            let group = match groups
                .iter()
                .position(|g| g.filter == r.filter && g.kind == kind)
            {
                Some(i) => &mut groups[i],
                None => {
                    groups.push(FilterRejections {
                        filter: r.filter,
                        kind: kind.to_owned(),
                        nodes: 0,
                        examples: Vec::new(),
                    });
                    groups.last_mut().expect("just pushed")
                }
            };
            group.nodes += 1;
            if group.examples.len() < SAMPLE_REASONS {
                group.examples.push((node.clone(), r.reason.clone()));
            }
        }
        // Stable: equal counts keep their order of first appearance.
        groups.sort_by(|a, b| b.nodes.cmp(&a.nodes));
        RejectionSummary {
            nodes: rejections.len(),
            groups,
        }
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

impl fmt::Display for RejectionSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "no feasible node ({} node{} rejected)",
            self.nodes,
            plural(self.nodes)
        )?;
        for (i, g) in self.groups.iter().enumerate() {
            f.write_str(if i == 0 { ": " } else { "; " })?;
            write!(f, "{} node{}: {} (", g.nodes, plural(g.nodes), g.kind)?;
            for (j, (node, reason)) in g.examples.iter().enumerate() {
                if j > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "{node}: {reason}")?;
            }
            if g.nodes > g.examples.len() {
                write!(f, ", ...")?;
            }
            f.write_str(")")?;
        }
        Ok(())
    }
}

impl PlacementOutcome {
    /// The placement, if placed.
    pub fn placement(&self) -> Option<&Placement> {
        match self {
            PlacementOutcome::Placed(p) => Some(p),
            PlacementOutcome::Unplaceable { .. } => None,
        }
    }

    /// The chosen node, if placed.
    pub fn node(&self) -> Option<&str> {
        self.placement().map(|p| p.node.as_str())
    }

    /// The grouped rejections, if unplaceable.
    pub fn summary(&self) -> Option<RejectionSummary> {
        match self {
            PlacementOutcome::Placed(_) => None,
            PlacementOutcome::Unplaceable { rejections } => {
                Some(RejectionSummary::from_rejections(rejections))
            }
        }
    }
}

impl fmt::Display for PlacementOutcome {
    /// `placed on <node>` or the [`RejectionSummary`].
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlacementOutcome::Placed(p) => write!(f, "placed on {}", p.node),
            PlacementOutcome::Unplaceable { rejections } => {
                RejectionSummary::from_rejections(rejections).fmt(f)
            }
        }
    }
}

impl Placement {
    /// A human table of the kept candidates: one row per node (best first) with its weighted
    /// total and each scorer's raw score; the header gives each scorer's weight, and a first
    /// line says how many nodes were visited, feasible and filtered (by which filter).
    pub fn explain(&self) -> String {
        let mut out = String::new();
        let _ = write!(
            out,
            "placed on {}: visited {} of {} nodes, {} feasible",
            self.node, self.visited, self.nodes, self.feasible
        );
        for (i, (filter, count)) in self.filtered.iter().enumerate() {
            let sep = if i == 0 { ", filtered: " } else { ", " };
            let _ = write!(out, "{sep}{count} by {filter}");
        }
        out.push('\n');
        let node_width = self
            .candidates
            .iter()
            .map(|c| c.node.len())
            .chain(std::iter::once(4))
            .max()
            .unwrap_or(4);
        let headers: Vec<String> = self
            .weights
            .iter()
            .map(|(name, w)| format!("{name} x{w:.2}"))
            .collect();
        let _ = write!(out, "{:>4}  {:<node_width$}  {:>7}", "rank", "node", "total");
        for h in &headers {
            let _ = write!(out, "  {h:>7}");
        }
        out.push('\n');
        for (rank, c) in self.candidates.iter().enumerate() {
            let _ = write!(
                out,
                "{:>4}  {:<node_width$}  {:>7.4}",
                rank + 1,
                c.node,
                c.total
            );
            for (h, (_, s)) in headers.iter().zip(&c.by_scorer) {
                let width = h.len().max(7);
                let _ = write!(out, "  {s:>width$.4}");
            }
            out.push('\n');
        }
        out
    }
}
