//! Typed watch events.

use std::pin::Pin;

use futures::Stream;
use serde::de::DeserializeOwned;

use super::decode;
use crate::error::Result;
use crate::store::{EventKind, Revision, WatchEvent};

/// A decoded watch event. `id` is the key without its prefix: the service name, task id, node
/// id, or `<from>/<to>` for a measurement.
#[derive(Debug, Clone, PartialEq)]
pub enum TypedEvent<T> {
    /// Created or changed; `prev` is the value before, when the store reports it.
    Put {
        id: String,
        value: T,
        prev: Option<T>,
        revision: Revision,
    },
    /// Deleted; `prev` is the last value, when the store reports it.
    Delete {
        id: String,
        prev: Option<T>,
        revision: Revision,
    },
}

impl<T> TypedEvent<T> {
    /// The revision of the write.
    pub fn revision(&self) -> Revision {
        match self {
            TypedEvent::Put { revision, .. } | TypedEvent::Delete { revision, .. } => *revision,
        }
    }
    /// The id (key without prefix).
    pub fn id(&self) -> &str {
        match self {
            TypedEvent::Put { id, .. } | TypedEvent::Delete { id, .. } => id,
        }
    }
}

/// A stream of typed events; as with [`WatchStream`](crate::store::WatchStream), an `Err` item is the last.
pub type TypedWatch<T> = Pin<Box<dyn Stream<Item = Result<TypedEvent<T>>> + Send + 'static>>;

pub(super) fn decode_event<T: DeserializeOwned>(
    prefix: &str,
    event: WatchEvent,
) -> Result<TypedEvent<T>> {
    let id = event
        .kv
        .key
        .strip_prefix(prefix)
        .unwrap_or(&event.kv.key)
        .to_owned();
    let prev = event.prev.as_ref().map(decode).transpose()?;
    let revision = event.kv.mod_revision;
    Ok(match event.kind {
        EventKind::Put => TypedEvent::Put {
            value: decode(&event.kv)?,
            id,
            prev,
            revision,
        },
        EventKind::Delete => TypedEvent::Delete { id, prev, revision },
    })
}
