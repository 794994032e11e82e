//! Turns foca's membership table into Orion's [`MembershipEvent`]s.
//!
//! foca knows `Alive`, `Suspect` and `Down` per identity and notifies only "up" and "down"; the
//! [`View`] diffs the whole table after every step, so suspicions, refutations, renewals and
//! metadata changes become events too, and graceful leaves are told apart from deaths.

use std::collections::BTreeMap;

use foca::State;
use orion_core::membership::{Member, MemberState, MembershipEvent};
use orion_core::model::NodeId;

use super::identity::NodeIdentity;

#[derive(Debug, Clone)]
struct Known {
    identity: NodeIdentity,
    state: MemberState,
    incarnation: u16,
}

impl Known {
    fn member(&self) -> Member {
        self.identity.to_member(self.state, self.incarnation)
    }
}

/// The members this node knows about (itself excluded) and what it last reported about them.
#[derive(Debug)]
pub(crate) struct View {
    local_id: NodeId,
    known: BTreeMap<NodeId, Known>,
}

fn member_state(state: State) -> MemberState {
    match state {
        State::Alive => MemberState::Alive,
        State::Suspect => MemberState::Suspect,
        State::Down => MemberState::Dead,
    }
}

fn is_active(state: MemberState) -> bool {
    matches!(state, MemberState::Alive | MemberState::Suspect)
}

impl View {
    pub(crate) fn new(local_id: NodeId) -> Self {
        View {
            local_id,
            known: BTreeMap::new(),
        }
    }

    /// Every known member except the local one, in id order.
    pub(crate) fn members(&self) -> Vec<Member> {
        self.known.values().map(Known::member).collect()
    }

    /// Applies foca's current table; returns the events it implies, in order per member.
    ///
    /// Rules: a new live identity is `Joined` (also when the process restarted, i.e. a new
    /// `boot`); `Alive -> Suspect` is `Suspect`; `Suspect -> Alive` and a renewed identity after
    /// `Dead` are `Recovered`; `-> Down` is `Suspect` (if not reported yet) then `Dead`; a member
    /// marked `Left` stays `Left` until a new identity of it is alive (`Joined`); a metadata
    /// change of a live member is `Updated`.
    pub(crate) fn sync<'a>(
        &mut self,
        table: impl Iterator<Item = &'a foca::Member<NodeIdentity>>,
    ) -> Vec<MembershipEvent> {
        let mut events = Vec::new();
        for entry in table {
            let identity = entry.id();
            if identity.id == self.local_id {
                continue;
            }
            let state = member_state(entry.state());
            let next = Known {
                identity: identity.clone(),
                state,
                incarnation: entry.incarnation(),
            };
            let Some(previous) = self.known.get(&identity.id) else {
                if is_active(state) {
                    events.push(MembershipEvent::Joined(
                        identity.to_member(MemberState::Alive, next.incarnation),
                    ));
                    if state == MemberState::Suspect {
                        events.push(MembershipEvent::Suspect(identity.id.clone()));
                    }
                    self.known.insert(identity.id.clone(), next);
                }
                continue;
            };
            let new_life = previous.identity.boot != identity.boot;
            let new_identity = new_life || previous.identity.generation != identity.generation;
            match (previous.state, state) {
                (MemberState::Left, _) if !(new_identity && is_active(state)) => continue,
                (MemberState::Left, _) => events.push(MembershipEvent::Joined(next.member())),
                (_, MemberState::Alive | MemberState::Suspect) if new_life => {
                    events.push(MembershipEvent::Joined(
                        identity.to_member(MemberState::Alive, next.incarnation),
                    ));
                    if state == MemberState::Suspect {
                        events.push(MembershipEvent::Suspect(identity.id.clone()));
                    }
                }
                (MemberState::Alive, MemberState::Alive) => {
                    if !previous.identity.same_metadata(identity) {
                        events.push(MembershipEvent::Updated(next.member()));
                    }
                }
                (MemberState::Alive, MemberState::Suspect) => {
                    events.push(MembershipEvent::Suspect(identity.id.clone()));
                }
                (MemberState::Suspect | MemberState::Dead, MemberState::Alive) => {
                    events.push(MembershipEvent::Recovered(next.member()));
                }
                (MemberState::Dead, MemberState::Suspect) => {
                    events.push(MembershipEvent::Recovered(
                        identity.to_member(MemberState::Alive, next.incarnation),
                    ));
                    events.push(MembershipEvent::Suspect(identity.id.clone()));
                }
                (MemberState::Alive, MemberState::Dead) => {
                    events.push(MembershipEvent::Suspect(identity.id.clone()));
                    events.push(MembershipEvent::Dead(identity.id.clone()));
                }
                (MemberState::Suspect, MemberState::Dead) => {
                    events.push(MembershipEvent::Dead(identity.id.clone()));
                }
                (MemberState::Suspect, MemberState::Suspect)
                | (MemberState::Dead, MemberState::Dead)
                | (_, MemberState::Left) => {}
            }
            self.known.insert(identity.id.clone(), next);
        }
        events
    }

    /// Records a graceful leave announced by `identity`; `Left` if the member was live.
    pub(crate) fn mark_left(&mut self, identity: &NodeIdentity) -> Option<MembershipEvent> {
        let known = self.known.get_mut(&identity.id)?;
        if known.identity.boot != identity.boot || !is_active(known.state) {
            return None;
        }
        known.state = MemberState::Left;
        Some(MembershipEvent::Left(identity.id.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use orion_core::model::{NodeAddresses, Resources};

    fn identity(id: &str, boot: u64, generation: u64) -> NodeIdentity {
        NodeIdentity {
            id: id.into(),
            boot,
            generation,
            gossip_addr: "127.0.0.1:7000".parse().expect("literal address"),
            addresses: NodeAddresses::default(),
            labels: BTreeMap::new(),
            capacity: Resources::default(),
        }
    }

    fn step(view: &mut View, identity: &NodeIdentity, state: State) -> Vec<String> {
        let table = [foca::Member::new(identity.clone(), 0, state)];
        view.sync(table.iter())
            .iter()
            .map(|event| match event {
                MembershipEvent::Joined(_) => "joined",
                MembershipEvent::Suspect(_) => "suspect",
                MembershipEvent::Dead(_) => "dead",
                MembershipEvent::Left(_) => "left",
                MembershipEvent::Recovered(_) => "recovered",
                MembershipEvent::Updated(_) => "updated",
            })
            .map(String::from)
            .collect()
    }

    #[test]
    fn suspicion_refuted_then_death_then_renewal() {
        let mut view = View::new("me".into());
        let a = identity("a", 1, 0);
        assert_eq!(step(&mut view, &a, State::Alive), ["joined"]);
        assert_eq!(step(&mut view, &a, State::Alive), Vec::<String>::new());
        assert_eq!(step(&mut view, &a, State::Suspect), ["suspect"]);
        assert_eq!(step(&mut view, &a, State::Alive), ["recovered"]);
        assert_eq!(step(&mut view, &a, State::Down), ["suspect", "dead"]);
        assert_eq!(step(&mut view, &a, State::Down), Vec::<String>::new());
        let renewed = identity("a", 1, 1);
        assert_eq!(step(&mut view, &renewed, State::Alive), ["recovered"]);
        let restarted = identity("a", 2, 0);
        assert_eq!(step(&mut view, &restarted, State::Alive), ["joined"]);
    }

    #[test]
    fn leave_is_never_reported_dead_and_a_new_life_joins_again() {
        let mut view = View::new("me".into());
        let a = identity("a", 1, 0);
        step(&mut view, &a, State::Alive);
        assert!(matches!(view.mark_left(&a), Some(MembershipEvent::Left(id)) if id == "a"));
        assert!(view.mark_left(&a).is_none());
        assert_eq!(step(&mut view, &a, State::Suspect), Vec::<String>::new());
        assert_eq!(step(&mut view, &a, State::Down), Vec::<String>::new());
        assert_eq!(view.members()[0].state, MemberState::Left);
        assert_eq!(
            step(&mut view, &identity("a", 3, 0), State::Alive),
            ["joined"]
        );
    }

    #[test]
    fn metadata_change_is_an_update_and_self_is_ignored() {
        let mut view = View::new("me".into());
        assert!(step(&mut view, &identity("me", 1, 0), State::Alive).is_empty());
        let a = identity("a", 1, 0);
        step(&mut view, &a, State::Alive);
        let mut relabelled = identity("a", 1, 1);
        relabelled.labels.insert("zone".into(), "b".into());
        assert_eq!(step(&mut view, &relabelled, State::Alive), ["updated"]);
        assert_eq!(view.members()[0].labels["zone"], "b");
    }
}
