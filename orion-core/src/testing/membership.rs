//! Conformance suite for [`Membership`]: what every implementation must satisfy, whatever its
//! failure detector. Run it with a factory that builds a fresh membership per check:
//!
//! ```no_run
//! # async fn demo() {
//! use orion_core::membership::{Member, MemberState, StaticMembership};
//! use orion_core::model::{NodeAddresses, Resources};
//!
//! let me = Member {
//!     id: "n1".into(),
//!     addresses: NodeAddresses::default(),
//!     labels: Default::default(),
//!     capacity: Resources::new(1000, 1 << 30),
//!     state: MemberState::Alive,
//!     incarnation: 0,
//! };
//! orion_core::testing::membership::run(|| {
//!     let me = me.clone();
//!     async move { StaticMembership::new(me, Vec::new()).unwrap() }
//! })
//! .await;
//! # }
//! ```
//!
//! Every check panics with a message naming the broken rule. Waits are bounded by [`WAIT`].

use std::future::Future;
use std::time::Duration;

use futures::StreamExt;

use crate::membership::{MemberState, Membership, MembershipEvent, MembershipEvents};

/// The longest the suite waits for an expected event.
pub const WAIT: Duration = Duration::from_secs(10);

/// Runs every check of the suite, each on a fresh membership from `factory`.
pub async fn run<F, Fut, M>(factory: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = M>,
    M: Membership,
{
    local_is_an_alive_member(&factory().await).await;
    member_ids_are_unique(&factory().await).await;
    leave_reports_left_never_dead(&factory().await).await;
    leave_is_idempotent(&factory().await).await;
    every_subscriber_sees_the_same_events_in_order(&factory().await).await;
}

/// `local()` is `Alive`, and `members()` lists it, `Alive`, with the same metadata.
pub async fn local_is_an_alive_member<M: Membership>(m: &M) {
    let local = m.local();
    assert_eq!(local.state, MemberState::Alive, "local() must be Alive");
    let members = m.members().await.expect("members() failed");
    let entry = members
        .iter()
        .find(|x| x.id == local.id)
        .unwrap_or_else(|| panic!("members() must include the local member {:?}", local.id));
    assert_eq!(
        entry.state,
        MemberState::Alive,
        "the local member must be Alive to itself"
    );
    assert_eq!(
        entry.addresses, local.addresses,
        "members() and local() disagree"
    );
}

/// No id appears twice in `members()`.
pub async fn member_ids_are_unique<M: Membership>(m: &M) {
    let members = m.members().await.expect("members() failed");
    let mut ids: Vec<_> = members.iter().map(|x| x.id.as_str()).collect();
    ids.sort_unstable();
    let before = ids.len();
    ids.dedup();
    assert_eq!(before, ids.len(), "members() lists an id twice");
}

/// After `leave()`, subscribers see `Left(local)`, never `Suspect`/`Dead` for it, and `members()`
/// never reports it `Dead`.
pub async fn leave_reports_left_never_dead<M: Membership>(m: &M) {
    let id = m.local().id;
    let mut events = m.subscribe();
    m.leave().await.expect("leave() failed");
    let seen = events_until_left(&mut events, &id).await;
    for e in &seen {
        assert!(
            !matches!(e, MembershipEvent::Dead(x) | MembershipEvent::Suspect(x) if *x == id),
            "a member that left must be reported Left, never {e:?}"
        );
    }
    let members = m.members().await.expect("members() after leave() failed");
    if let Some(me) = members.iter().find(|x| x.id == id) {
        assert_ne!(
            me.state,
            MemberState::Dead,
            "a member that left is never Dead"
        );
    }
}

/// A second `leave()` succeeds.
pub async fn leave_is_idempotent<M: Membership>(m: &M) {
    m.leave().await.expect("first leave() failed");
    m.leave().await.expect("a second leave() must succeed");
}

/// Two subscribers see the same events about the local member, in the same order, ending with
/// its `Left`.
pub async fn every_subscriber_sees_the_same_events_in_order<M: Membership>(m: &M) {
    let id = m.local().id;
    let mut first = m.subscribe();
    let mut second = m.subscribe();
    m.leave().await.expect("leave() failed");
    let about_me = |events: Vec<MembershipEvent>| -> Vec<MembershipEvent> {
        events.into_iter().filter(|e| e.node_id() == id).collect()
    };
    let a = about_me(events_until_left(&mut first, &id).await);
    let b = about_me(events_until_left(&mut second, &id).await);
    assert_eq!(
        a, b,
        "subscribers disagree on the events about the local member"
    );
}

/// Reads events until `Left(id)` (included), failing after [`WAIT`] or if the stream ends.
async fn events_until_left(events: &mut MembershipEvents, id: &str) -> Vec<MembershipEvent> {
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match tokio::time::timeout_at(deadline, events.next()).await {
            Ok(Some(e)) => {
                let done = matches!(&e, MembershipEvent::Left(x) if x == id);
                seen.push(e);
                if done {
                    return seen;
                }
            }
            Ok(None) => panic!("the event stream ended before Left({id:?}); saw {seen:?}"),
            Err(_) => panic!("no Left({id:?}) within {WAIT:?} of leave(); saw {seen:?}"),
        }
    }
}
