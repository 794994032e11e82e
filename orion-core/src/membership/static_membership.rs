//! `StaticMembership`: a fixed member list, everyone alive, with knobs for simulations.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use tokio::sync::mpsc;
use tokio_stream::wrappers::UnboundedReceiverStream;

use super::{Member, MemberState, Membership, MembershipEvent, MembershipEvents};
use crate::error::{Error, Result, ValidationErrors};

/// A fixed list of members: the local one and its peers, all `Alive`.
///
/// Nothing changes on its own: [`Membership::subscribe`] yields nothing until [`Membership::leave`]
/// (then `Left` for the local member) or until a test drives it with
/// [`StaticMembership::set_state`] / [`StaticMembership::join`], which emit the matching events.
/// Clones share one state, so a simulation can keep a handle while a controller owns another.
/// Event streams end once every clone is dropped.
#[derive(Debug, Clone)]
pub struct StaticMembership {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Debug)]
struct Inner {
    /// Local member first, then peers in the order given.
    members: Vec<Member>,
    subscribers: Vec<mpsc::UnboundedSender<MembershipEvent>>,
}

impl Inner {
    fn emit(&mut self, event: MembershipEvent) {
        self.subscribers.retain(|tx| tx.send(event.clone()).is_ok());
    }

    fn position(&self, id: &str) -> Option<usize> {
        self.members.iter().position(|m| m.id == id)
    }
}

impl StaticMembership {
    /// A membership of `local` and `peers`, all set `Alive`.
    ///
    /// Errors with [`Error::Invalid`] when an id is empty or appears twice (naming the entry).
    pub fn new(local: Member, peers: Vec<Member>) -> Result<Self> {
        let mut errs = ValidationErrors::default();
        let mut seen = HashSet::new();
        let entries = std::iter::once(("local".to_owned(), &local)).chain(
            peers
                .iter()
                .enumerate()
                .map(|(i, p)| (format!("peers[{i}]"), p)),
        );
        for (path, m) in entries {
            if m.id.is_empty() {
                errs.push(format!("{path}.id"), "\"\"", "a non-empty node id");
            } else if !seen.insert(m.id.clone()) {
                errs.push(
                    format!("{path}.id"),
                    format!("{:?}", m.id),
                    "an id not used by another member",
                );
            }
        }
        errs.into_result()?;
        let members = std::iter::once(local)
            .chain(peers)
            .map(|mut m| {
                m.state = MemberState::Alive;
                m
            })
            .collect();
        Ok(StaticMembership {
            inner: Arc::new(Mutex::new(Inner {
                members,
                subscribers: Vec::new(),
            })),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave `Inner` half-updated (every update is one
        // assignment), so a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Test knob: changes a peer's state and emits the matching event (`Suspect`, `Dead`, `Left`;
    /// `Alive` gives `Recovered` after `Suspect`/`Dead` and `Joined`, with a bumped incarnation,
    /// after `Left`). Setting the state it already has does nothing.
    ///
    /// Errors: [`Error::NotFound`] for an unknown id; [`Error::Invalid`] for the local member,
    /// which is always alive from its own point of view (use [`Membership::leave`]).
    pub fn set_state(&self, id: &str, state: MemberState) -> Result<()> {
        let mut inner = self.lock();
        let i = inner
            .position(id)
            .ok_or_else(|| Error::not_found("member", id))?;
        if i == 0 {
            let mut errs = ValidationErrors::default();
            errs.push(
                "id",
                format!("{id:?}"),
                "a peer: the local member is always alive to itself (call leave() instead)",
            );
            return Err(errs.into());
        }
        let before = inner.members[i].state;
        if before == state {
            return Ok(());
        }
        inner.members[i].state = state;
        let event = match state {
            MemberState::Suspect => MembershipEvent::Suspect(id.to_owned()),
            MemberState::Dead => MembershipEvent::Dead(id.to_owned()),
            MemberState::Left => MembershipEvent::Left(id.to_owned()),
            MemberState::Alive if before == MemberState::Left => {
                inner.members[i].incarnation += 1;
                MembershipEvent::Joined(inner.members[i].clone())
            }
            MemberState::Alive => MembershipEvent::Recovered(inner.members[i].clone()),
        };
        inner.emit(event);
        Ok(())
    }

    /// Test knob: adds a peer (`Joined`) or replaces a known peer's metadata (`Updated`, keeping
    /// its state). The local member cannot be replaced ([`Error::Invalid`]).
    pub fn join(&self, member: Member) -> Result<()> {
        let mut inner = self.lock();
        match inner.position(&member.id) {
            Some(0) => {
                let mut errs = ValidationErrors::default();
                errs.push(
                    "id",
                    format!("{:?}", member.id),
                    "a peer id (not the local member's)",
                );
                Err(errs.into())
            }
            Some(i) => {
                let state = inner.members[i].state;
                inner.members[i] = Member { state, ..member };
                let m = inner.members[i].clone();
                inner.emit(MembershipEvent::Updated(m));
                Ok(())
            }
            None => {
                let m = Member {
                    state: MemberState::Alive,
                    ..member
                };
                inner.members.push(m.clone());
                inner.emit(MembershipEvent::Joined(m));
                Ok(())
            }
        }
    }
}

#[async_trait]
impl Membership for StaticMembership {
    fn local(&self) -> Member {
        self.lock().members[0].clone()
    }

    async fn members(&self) -> Result<Vec<Member>> {
        Ok(self.lock().members.clone())
    }

    fn subscribe(&self) -> MembershipEvents {
        let (tx, rx) = mpsc::unbounded_channel();
        self.lock().subscribers.push(tx);
        Box::pin(UnboundedReceiverStream::new(rx))
    }

    /// Marks the local member `Left` and emits `Left` once; later calls do nothing.
    async fn leave(&self) -> Result<()> {
        let mut inner = self.lock();
        if inner.members[0].state != MemberState::Left {
            inner.members[0].state = MemberState::Left;
            let id = inner.members[0].id.clone();
            inner.emit(MembershipEvent::Left(id));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use futures::StreamExt;

    use super::*;
    use crate::model::{NodeAddresses, Resources};

    pub(crate) fn member(id: &str) -> Member {
        Member {
            id: id.to_owned(),
            addresses: NodeAddresses::default(),
            labels: Default::default(),
            capacity: Resources::new(1000, 1 << 30),
            state: MemberState::Dead,
            incarnation: 0,
        }
    }

    fn three() -> StaticMembership {
        StaticMembership::new(member("a"), vec![member("b"), member("c")]).unwrap()
    }

    #[tokio::test]
    async fn passes_the_membership_conformance_suite() {
        crate::testing::membership::run(|| async { three() }).await;
        crate::testing::membership::run(|| async {
            StaticMembership::new(member("solo"), Vec::new()).unwrap()
        })
        .await;
    }

    #[tokio::test]
    async fn everyone_starts_alive_local_first() {
        let m = three();
        let members = m.members().await.unwrap();
        let ids: Vec<_> = members.iter().map(|m| m.id.as_str()).collect();
        assert_eq!(ids, ["a", "b", "c"]);
        assert!(members.iter().all(|m| m.state == MemberState::Alive));
        assert_eq!(m.local().id, "a");
    }

    #[test]
    fn duplicate_and_empty_ids_are_rejected_with_their_path() {
        let err = StaticMembership::new(member("a"), vec![member("a"), member("")]).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("peers[0].id"), "{text}");
        assert!(text.contains("peers[1].id"), "{text}");
    }

    #[tokio::test]
    async fn set_state_emits_the_matching_events_in_order() {
        let m = three();
        let events = m.subscribe();
        m.set_state("b", MemberState::Suspect).unwrap();
        m.set_state("b", MemberState::Suspect).unwrap();
        m.set_state("b", MemberState::Alive).unwrap();
        m.set_state("c", MemberState::Dead).unwrap();
        m.set_state("c", MemberState::Left).unwrap();
        m.set_state("c", MemberState::Alive).unwrap();
        drop(m);
        let got: Vec<_> = events.collect().await;
        let kinds: Vec<String> = got
            .iter()
            .map(|e| match e {
                MembershipEvent::Joined(m) => format!("joined {} {}", m.id, m.incarnation),
                MembershipEvent::Recovered(m) => format!("recovered {}", m.id),
                other => format!("{other:?}"),
            })
            .collect();
        assert_eq!(
            kinds,
            [
                "Suspect(\"b\")",
                "recovered b",
                "Dead(\"c\")",
                "Left(\"c\")",
                "joined c 1"
            ]
        );
    }

    #[tokio::test]
    async fn set_state_refuses_the_local_member_and_unknown_ids() {
        let m = three();
        assert!(
            m.set_state("zz", MemberState::Dead)
                .unwrap_err()
                .is_not_found()
        );
        let err = m.set_state("a", MemberState::Dead).unwrap_err();
        assert!(err.to_string().contains("leave()"), "{err}");
        assert_eq!(m.local().state, MemberState::Alive);
    }

    #[tokio::test]
    async fn join_adds_then_updates_and_clones_share_state() {
        let m = three();
        let handle = m.clone();
        let mut events = m.subscribe();
        handle.join(member("d")).unwrap();
        let mut d = member("d");
        d.labels.insert("zone".into(), "z1".into());
        handle.join(d).unwrap();
        assert!(matches!(events.next().await, Some(MembershipEvent::Joined(j)) if j.id == "d"));
        match events.next().await {
            Some(MembershipEvent::Updated(u)) => {
                assert_eq!(u.labels.get("zone").map(String::as_str), Some("z1"));
                assert_eq!(u.state, MemberState::Alive);
            }
            other => panic!("expected Updated, got {other:?}"),
        }
        assert_eq!(m.members().await.unwrap().len(), 4);
        assert!(handle.join(member("a")).is_err());
    }
}
