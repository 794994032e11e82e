//! A minimal in-memory `Store` used as the inner store of the Raft tests (no watch history).

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;
use orion_core::store::{
    Compare, KeyValue, Op, RangeResult, Revision, Store, StoreSnapshot, Txn, TxnResult, WatchStream,
};
use orion_core::{Error, Result};

#[derive(Debug, Default)]
struct State {
    revision: Revision,
    compacted: Revision,
    kvs: BTreeMap<String, KeyValue>,
}

/// A plain map with a revision per write.
#[derive(Debug, Default)]
pub struct MemStore {
    state: Mutex<State>,
}

impl MemStore {
    pub fn new() -> Self {
        Self::default()
    }
}

fn holds(state: &State, c: &Compare) -> bool {
    match c {
        Compare::Exists(k) => state.kvs.contains_key(k),
        Compare::Missing(k) => !state.kvs.contains_key(k),
        Compare::ModRevision(k, r) => state.kvs.get(k).map_or(0, |kv| kv.mod_revision) == *r,
        Compare::Version(k, v) => state.kvs.get(k).map_or(0, |kv| kv.version) == *v,
        Compare::Value(k, v) => state.kvs.get(k).is_some_and(|kv| &kv.value == v),
    }
}

#[async_trait]
impl Store for MemStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        Ok(self.state.lock().unwrap().kvs.get(key).cloned())
    }

    async fn range(&self, prefix: &str) -> Result<RangeResult> {
        let s = self.state.lock().unwrap();
        Ok(RangeResult {
            kvs: s
                .kvs
                .range(prefix.to_owned()..)
                .take_while(|(k, _)| k.starts_with(prefix))
                .map(|(_, v)| v.clone())
                .collect(),
            revision: s.revision,
        })
    }

    async fn txn(&self, txn: Txn) -> Result<TxnResult> {
        let mut s = self.state.lock().unwrap();
        let succeeded = txn.compare.iter().all(|c| holds(&s, c));
        let ops = if succeeded { txn.success } else { txn.failure };
        let rev = s.revision + 1;
        let mut changed = false;
        for op in ops {
            match op {
                Op::Put(k, v) => {
                    let (create, version) = match s.kvs.get(&k) {
                        Some(kv) => (kv.create_revision, kv.version + 1),
                        None => (rev, 1),
                    };
                    s.kvs.insert(
                        k.clone(),
                        KeyValue {
                            key: k,
                            value: v,
                            create_revision: create,
                            mod_revision: rev,
                            version,
                        },
                    );
                    changed = true;
                }
                Op::Delete(k) => changed |= s.kvs.remove(&k).is_some(),
                Op::DeletePrefix(p) => {
                    let keys: Vec<String> = s
                        .kvs
                        .keys()
                        .filter(|k| k.starts_with(&p))
                        .cloned()
                        .collect();
                    for k in keys {
                        s.kvs.remove(&k);
                        changed = true;
                    }
                }
            }
        }
        if changed {
            s.revision = rev;
        }
        Ok(TxnResult {
            succeeded,
            revision: s.revision,
        })
    }

    async fn watch(&self, _prefix: &str, _from: Revision) -> Result<WatchStream> {
        Err(Error::Unsupported {
            backend: "test MemStore",
            feature: "watch".into(),
            hint: "use orion_core::store::MemoryStore".into(),
        })
    }

    async fn compact(&self, revision: Revision) -> Result<()> {
        let mut s = self.state.lock().unwrap();
        s.compacted = s.compacted.max(revision.min(s.revision));
        Ok(())
    }

    async fn revision(&self) -> Result<Revision> {
        Ok(self.state.lock().unwrap().revision)
    }

    async fn snapshot(&self) -> Result<StoreSnapshot> {
        let s = self.state.lock().unwrap();
        Ok(StoreSnapshot {
            revision: s.revision,
            compacted: s.compacted,
            kvs: s.kvs.values().cloned().collect(),
        })
    }

    async fn restore(&self, snapshot: StoreSnapshot) -> Result<()> {
        let mut s = self.state.lock().unwrap();
        s.revision = snapshot.revision;
        s.compacted = snapshot.compacted;
        s.kvs = snapshot
            .kvs
            .into_iter()
            .map(|kv| (kv.key.clone(), kv))
            .collect();
        Ok(())
    }
}
