//! One task watch shared by many agents in one process: a demultiplexer that routes each task
//! event to the node the task is on.
//!
//! Why: a store's watch is a cursor over the write history (`crate::store` hub), so N agents
//! each watching the task prefix read and decode every task event N times, to keep the few
//! that are theirs. A process that hosts many agents (a simulation of thousands of nodes, or an
//! embedder running one agent per virtual node) watches once and routes with [`TaskDemux`]:
//! each event is decoded once and handed to one receiver.

use std::collections::HashMap;

use tokio::sync::mpsc;

use crate::model::Task;
use crate::store::TypedEvent;

/// Routes task events to per-node receivers. A `Put` goes to the node of its new value (and,
/// when the task moved, also to the node of its previous value); a `Delete` to the node of its
/// previous value. Events of tasks on no node, or on a node with no receiver, are dropped.
#[derive(Debug, Default)]
pub struct TaskDemux {
    routes: HashMap<String, mpsc::UnboundedSender<TypedEvent<Task>>>,
}

impl TaskDemux {
    /// A demultiplexer with no receivers.
    pub fn new() -> Self {
        Self::default()
    }

    /// The receiver of the events of tasks on `node`. Subscribing again replaces the previous
    /// receiver (which then ends).
    pub fn subscribe(&mut self, node: &str) -> mpsc::UnboundedReceiver<TypedEvent<Task>> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.routes.insert(node.to_owned(), tx);
        rx
    }

    /// How many nodes have a receiver.
    pub fn nodes(&self) -> usize {
        self.routes.len()
    }

    /// Hands `event` to the receiver(s) of its node; returns how many received it (0, 1, or 2
    /// when a task moved between two subscribed nodes). A receiver that was dropped is removed.
    pub fn route(&mut self, event: TypedEvent<Task>) -> usize {
        let (now, before) = match &event {
            TypedEvent::Put { value, prev, .. } => (
                value.node.clone(),
                prev.as_ref().and_then(|p| p.node.clone()),
            ),
            TypedEvent::Delete { prev, .. } => (prev.as_ref().and_then(|p| p.node.clone()), None),
        };
        let before = before.filter(|b| Some(b) != now.as_ref());
        let mut delivered = 0;
        if let Some(node) = before {
            delivered += self.send(&node, event.clone());
        }
        if let Some(node) = now {
            delivered += self.send(&node, event);
        }
        delivered
    }

    fn send(&mut self, node: &str, event: TypedEvent<Task>) -> usize {
        let Some(tx) = self.routes.get(node) else {
            return 0;
        };
        if tx.send(event).is_ok() {
            1
        } else {
            self.routes.remove(node);
            0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Resources;

    fn task(id: &str, node: Option<&str>) -> Task {
        let mut t = Task::new("web", 0, 1, Resources::new(100, 1 << 20));
        t.id = id.into();
        t.node = node.map(Into::into);
        t
    }

    fn put(t: Task, prev: Option<Task>) -> TypedEvent<Task> {
        TypedEvent::Put {
            id: t.id.to_string(),
            value: t,
            prev,
            revision: 1,
        }
    }

    #[test]
    fn each_event_reaches_only_its_nodes_receiver() {
        let mut demux = TaskDemux::new();
        let mut a = demux.subscribe("a");
        let mut b = demux.subscribe("b");
        assert_eq!(demux.route(put(task("t1", Some("a")), None)), 1);
        assert_eq!(demux.route(put(task("t2", None), None)), 0);
        assert_eq!(demux.route(put(task("t3", Some("c")), None)), 0);
        assert_eq!(a.try_recv().unwrap().id(), "t1");
        assert!(a.try_recv().is_err());
        assert!(b.try_recv().is_err());
    }

    #[test]
    fn a_moved_task_reaches_both_nodes_and_a_delete_its_last_node() {
        let mut demux = TaskDemux::new();
        let mut a = demux.subscribe("a");
        let mut b = demux.subscribe("b");
        let moved = put(task("t1", Some("b")), Some(task("t1", Some("a"))));
        assert_eq!(demux.route(moved), 2);
        assert_eq!(a.try_recv().unwrap().id(), "t1");
        assert_eq!(b.try_recv().unwrap().id(), "t1");
        let deleted = TypedEvent::Delete {
            id: "t1".into(),
            prev: Some(task("t1", Some("b"))),
            revision: 2,
        };
        assert_eq!(demux.route(deleted), 1);
        assert!(matches!(b.try_recv().unwrap(), TypedEvent::Delete { .. }));
        assert!(a.try_recv().is_err());
    }

    #[test]
    fn a_dropped_receiver_is_removed() {
        let mut demux = TaskDemux::new();
        drop(demux.subscribe("a"));
        assert_eq!(demux.nodes(), 1);
        assert_eq!(demux.route(put(task("t1", Some("a")), None)), 0);
        assert_eq!(demux.nodes(), 0);
    }
}
