//! Network measurements as one record per node ([`NodeLinks`] under [`keys::LINKS`]), read
//! together with the older one-record-per-link layout ([`keys::NETWORK`]).

use std::collections::BTreeMap;

use super::{ClusterStore, check_segment, decode, encode, keys};
use crate::error::{Result, ValidationErrors};
use crate::model::{
    MAX_LINKS_PER_RECORD, NetworkCoordinate, NetworkMatrix, NetworkMeasurement, NodeLinks,
};
use crate::store::{KeyValue, Op, Revision, Store, Txn};

impl<S: Store> ClusterStore<S> {
    /// Publishes node `from`'s network view in **one** write (one transaction): its whole
    /// [`NodeLinks`] record (replacing the previous one) and/or its coordinate. Nothing is written
    /// when both are `None` (the answer is then `None`).
    ///
    /// Errors ([`crate::Error::Invalid`]) when `from` is not a key segment, a link's `from` is not
    /// `from` or its `to` is not a key segment, there are more than [`MAX_LINKS_PER_RECORD`]
    /// links, or the coordinate is another node's.
    pub async fn publish_network(
        &self,
        from: &str,
        links: Option<&NodeLinks>,
        coordinate: Option<&NetworkCoordinate>,
    ) -> Result<Option<Revision>> {
        check_segment("from", from)?;
        let mut txn = Txn::new();
        let mut empty = true;
        if let Some(row) = links {
            check_links(from, row)?;
            let key = keys::links(from);
            txn = txn.and_then(Op::Put(key.clone(), encode(&key, row)?));
            empty = false;
        }
        if let Some(c) = coordinate {
            if c.node != from {
                let mut errors = ValidationErrors::default();
                errors.push(
                    "coordinate.node",
                    format!("{:?}", c.node),
                    format!("{from:?}"),
                );
                return Err(errors.into());
            }
            let key = keys::coordinate(from);
            txn = txn.and_then(Op::Put(key.clone(), encode(&key, c)?));
            empty = false;
        }
        if empty {
            return Ok(None);
        }
        Ok(Some(self.store.txn(txn).await?.revision))
    }

    /// Node `from`'s [`NodeLinks`] record, if it published one.
    pub async fn get_node_links(&self, from: &str) -> Result<Option<NodeLinks>> {
        check_segment("from", from)?;
        self.get_typed(&keys::links(from)).await
    }

    /// Every [`NodeLinks`] record, ordered by node id.
    pub async fn list_node_links(&self) -> Result<Vec<NodeLinks>> {
        self.list_typed(keys::LINKS).await
    }

    /// Every measurement, ordered by `(from, to)`: the per-node records flattened, plus the
    /// per-link records of pairs no per-node record has (a per-node record is the newer layout
    /// and wins). Two range reads.
    pub async fn list_measurements(&self) -> Result<Vec<NetworkMeasurement>> {
        let mut all: BTreeMap<(String, String), NetworkMeasurement> = BTreeMap::new();
        for m in self.list_typed::<NetworkMeasurement>(keys::NETWORK).await? {
            all.insert((m.from.clone(), m.to.clone()), m);
        }
        for row in self.list_node_links().await? {
            for m in row.links {
                all.insert((m.from.clone(), m.to.clone()), m);
            }
        }
        Ok(all.into_values().collect())
    }

    /// Every measurement as a [`NetworkMatrix`] (as [`ClusterStore::list_measurements`]).
    pub async fn network_matrix(&self) -> Result<NetworkMatrix> {
        let mut matrix = NetworkMatrix::new();
        for m in self.list_measurements().await? {
            matrix.insert(m);
        }
        Ok(matrix)
    }

    /// Deletes every measurement from or to `node`, in one write: its per-link records, its
    /// per-node record, and its links in the other nodes' records (rewritten without them).
    /// Returns how many measurements there were.
    pub async fn delete_measurements_of(&self, node: &str) -> Result<usize> {
        check_segment("node", node)?;
        let mut txn = Txn::new();
        let mut count = 0;
        let range = self.store.range(keys::NETWORK).await?;
        for kv in range.kvs {
            let id = &kv.key[keys::NETWORK.len()..];
            if id.starts_with(&format!("{node}/")) || id.ends_with(&format!("/{node}")) {
                txn = txn.and_then(Op::Delete(kv.key));
                count += 1;
            }
        }
        let rows = self.store.range(keys::LINKS).await?;
        for kv in &rows.kvs {
            let mut row: NodeLinks = decode(kv)?;
            if row.from == node {
                count += row.links.len();
                txn = txn.and_then(Op::Delete(kv.key.clone()));
                continue;
            }
            let before = row.links.len();
            row.links.retain(|m| m.to != node);
            if row.links.len() != before {
                count += before - row.links.len();
                txn = txn.and_then(Op::Put(kv.key.clone(), encode(&kv.key, &row)?));
            }
        }
        if count > 0 {
            self.store.txn(txn).await?;
        }
        Ok(count)
    }
}

/// Adds the links of a [`keys::LINKS`] record to `matrix` (for `load_state`).
pub(super) fn add_row(matrix: &mut NetworkMatrix, kv: &KeyValue) -> Result<()> {
    let row: NodeLinks = decode(kv)?;
    for m in row.links {
        matrix.insert(m);
    }
    Ok(())
}

fn check_links(from: &str, row: &NodeLinks) -> Result<()> {
    let mut errors = ValidationErrors::default();
    if row.from != from {
        errors.push("links.from", format!("{:?}", row.from), format!("{from:?}"));
    }
    if row.links.len() > MAX_LINKS_PER_RECORD {
        errors.push(
            "links",
            format!("{} links", row.links.len()),
            format!("at most {MAX_LINKS_PER_RECORD}"),
        );
    }
    for m in &row.links {
        if m.from != from {
            errors.push("links[].from", format!("{:?}", m.from), format!("{from:?}"));
        }
        if check_segment("links[].to", &m.to).is_err() {
            errors.push(
                "links[].to",
                format!("{:?}", m.to),
                "a non-empty node id without '/'",
            );
        }
    }
    Ok(errors.into_result()?)
}
