//! Human explanations of scheduling decisions: the score table of a [`Placement`] and the
//! grouped reasons of an unplaceable task ([`RejectionSummary`]).

use std::fmt::{self, Write as _};

use super::Rejection;
use super::pipeline::{Placement, PlacementOutcome};
use crate::model::NodeId;

/// How many distinct details and example nodes a [`FilterRejections`] keeps.
const SAMPLES: usize = 3;

/// The nodes one filter turned down for one kind of reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterRejections {
    /// The filter's name.
    pub filter: &'static str,
    /// The reason's kind ([`Rejection::kind`]), e.g. `"insufficient memory"`.
    pub kind: &'static str,
    /// True when every rejection of the group can resolve by itself ([`Rejection::transient`]).
    pub transient: bool,
    /// How many nodes.
    pub nodes: usize,
    /// Up to three distinct details ([`Rejection::detail`], e.g.
    /// `"needs 512 MiB, 128 MiB free"`), each with how many nodes gave it, first seen first.
    pub details: Vec<(String, usize)>,
    /// Up to three of the nodes, in view order.
    pub examples: Vec<NodeId>,
}

/// Why no node could take a task: rejections grouped by filter and reason kind, largest group
/// first (equal groups in order of first appearance). Its `Display` reads like
/// `no feasible node (4 nodes rejected): 3 nodes: insufficient memory (needs 512 MiB, 128 MiB
/// free) on n0, n1, n2; 1 node: draining (node accepts no new tasks) on n3`.
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
            let (kind, detail) = (r.kind, r.detail.as_str());
            let i = match groups
                .iter()
                .position(|g| g.filter == r.filter && g.kind == kind)
            {
                Some(i) => i,
                None => {
                    groups.push(FilterRejections {
                        filter: r.filter,
                        kind,
                        transient: true,
                        nodes: 0,
                        details: Vec::new(),
                        examples: Vec::new(),
                    });
                    groups.len() - 1
                }
            };
            let group = &mut groups[i];
            group.nodes += 1;
            group.transient &= r.transient;
            if group.examples.len() < SAMPLES {
                group.examples.push(node.clone());
            }
            if !detail.is_empty() {
                match group.details.iter().position(|(d, _)| d == detail) {
                    Some(j) => group.details[j].1 += 1,
                    None if group.details.len() < SAMPLES => {
                        group.details.push((detail.to_owned(), 1));
                    }
                    None => {}
                }
            }
        }
        // Stable: equal counts keep their order of first appearance.
        groups.sort_by_key(|g| std::cmp::Reverse(g.nodes));
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
            write!(f, "{} node{}: {}", g.nodes, plural(g.nodes), g.kind)?;
            if !g.details.is_empty() {
                let counted: usize = g.details.iter().map(|(_, c)| c).sum();
                let details: Vec<&str> = g.details.iter().map(|(d, _)| d.as_str()).collect();
                write!(f, " ({}", details.join("; "))?;
                if counted < g.nodes {
                    f.write_str("; ...")?;
                }
                f.write_str(")")?;
            }
            write!(f, " on {}", g.examples.join(", "))?;
            if g.nodes > g.examples.len() {
                f.write_str(", ...")?;
            }
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
        let _ = write!(
            out,
            "{:>4}  {:<node_width$}  {:>7}",
            "rank", "node", "total"
        );
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
