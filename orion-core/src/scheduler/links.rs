//! A dense index of the network matrix by node position, so network filters and scorers look a
//! link up without hashing node ids (see [`ClusterView::link`](super::ClusterView::link)).

use crate::hash::StableMap;
use crate::model::{NetworkMatrix, NetworkMeasurement, NodeId};

/// What the scheduler knows of the link between two nodes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Link {
    /// Round-trip time, milliseconds.
    pub rtt_ms: f64,
    /// Fraction of probes lost, 0.0 to 1.0.
    pub loss: f64,
    /// Megabits per second; `None` when not measured.
    pub bandwidth_mbps: Option<f64>,
}

impl From<&NetworkMeasurement> for Link {
    fn from(m: &NetworkMeasurement) -> Self {
        Link {
            rtt_ms: m.rtt_ms,
            loss: m.loss,
            bandwidth_mbps: m.bandwidth_mbps,
        }
    }
}

/// Per node position, its links sorted by peer position, in compressed rows: node `a`'s peers
/// are `peers[offsets[a]..offsets[a + 1]]` (a few cache lines to search) and their links are
/// at the same places in `links`. A measurement `a -> b` is `a`'s link to `b`, and `b`'s to `a`
/// unless `b -> a` was measured too (as [`NetworkMatrix::get`] falls back to the reverse
/// direction).
#[derive(Debug, Clone, Default)]
pub(crate) struct LinkIndex {
    offsets: Vec<usize>,
    peers: Vec<u32>,
    links: Vec<Link>,
}

impl LinkIndex {
    pub(crate) fn build(nodes: usize, index: &StableMap<NodeId, usize>, m: &NetworkMatrix) -> Self {
        // (peer, is the reverse of a measurement, link): a direct measurement sorts first.
        let mut rows: Vec<Vec<(u32, bool, Link)>> = vec![Vec::new(); nodes];
        for meas in m.iter() {
            let (Some(&a), Some(&b)) = (index.get(meas.from.as_str()), index.get(meas.to.as_str()))
            else {
                continue;
            };
            if a != b {
                rows[a].push((b as u32, false, Link::from(meas)));
                rows[b].push((a as u32, true, Link::from(meas)));
            }
        }
        let mut index = LinkIndex {
            offsets: Vec::with_capacity(nodes + 1),
            peers: Vec::new(),
            links: Vec::new(),
        };
        index.offsets.push(0);
        for mut row in rows {
            row.sort_unstable_by_key(|(p, reverse, _)| (*p, *reverse));
            row.dedup_by_key(|(p, _, _)| *p);
            for (p, _, l) in row {
                index.peers.push(p);
                index.links.push(l);
            }
            index.offsets.push(index.peers.len());
        }
        index
    }

    /// Node `a`'s peers and links (empty out of range).
    pub(crate) fn row(&self, a: usize) -> (&[u32], &[Link]) {
        match (self.offsets.get(a), self.offsets.get(a + 1)) {
            (Some(&start), Some(&end)) => (&self.peers[start..end], &self.links[start..end]),
            _ => (&[], &[]),
        }
    }

    /// The link between positions `a` and `b` (`a != b`), if measured.
    pub(crate) fn get(&self, a: usize, b: usize) -> Option<&Link> {
        let (start, end) = (*self.offsets.get(a)?, *self.offsets.get(a + 1)?);
        let b = u32::try_from(b).ok()?;
        let i = self.peers[start..end].binary_search(&b).ok()?;
        self.links.get(start + i)
    }
}

#[cfg(test)]
mod tests {
    use crate::model::{NetworkMatrix, NetworkMeasurement, Node, Resources};
    use crate::scheduler::ClusterView;

    fn m(from: &str, to: &str, rtt_ms: f64) -> NetworkMeasurement {
        NetworkMeasurement {
            from: from.into(),
            to: to.into(),
            rtt_ms,
            jitter_ms: 0.0,
            loss: 0.0,
            bandwidth_mbps: None,
            measured_at: 0,
            ..NetworkMeasurement::default()
        }
    }

    #[test]
    fn links_agree_with_the_matrix_in_both_directions() {
        let mut net = NetworkMatrix::new();
        net.insert(m("a", "b", 1.0));
        net.insert(m("b", "c", 2.0));
        net.insert(m("c", "b", 3.0));
        net.insert(m("a", "ghost", 9.0));
        let nodes = ["a", "b", "c", "d"].map(|id| Node::new(id, Resources::new(1000, 1 << 30)));
        let v = ClusterView::new(nodes.to_vec(), &[], net.clone());
        for a in 0..4 {
            for b in 0..4 {
                let (ia, ib) = (nodes[a].id.as_str(), nodes[b].id.as_str());
                let want = if a == b {
                    None
                } else {
                    net.get(ia, ib).map(|m| m.rtt_ms)
                };
                assert_eq!(v.link(a, b).map(|l| l.rtt_ms), want, "{ia} -> {ib}");
            }
        }
        assert_eq!(
            v.link(1, 2).map(|l| l.rtt_ms),
            Some(2.0),
            "the direct measurement first"
        );
        assert_eq!(v.link(2, 1).map(|l| l.rtt_ms), Some(3.0));
        assert_eq!(v.link(0, 99), None);
    }
}
