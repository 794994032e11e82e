//! Trace contexts of services in the typed store (see [`crate::trace`]): the W3C `traceparent`
//! of each service's latest traced API write.

use std::collections::HashMap;

use super::{ClusterStore, check_segment, decode, keys};
use crate::error::{Error, Result, ValidationErrors};
use crate::store::{Revision, Store};

impl<S: Store> ClusterStore<S> {
    /// Records `traceparent` as service `name`'s trace context (replacing the previous one);
    /// [`Error::Invalid`] unless it is a valid version-00 `traceparent`.
    pub async fn put_trace_context(&self, name: &str, traceparent: &str) -> Result<Revision> {
        check_segment("name", name)?;
        if !crate::trace::is_valid(traceparent) {
            let mut errors = ValidationErrors::default();
            errors.push(
                format!("trace context of {name}"),
                format!("{traceparent:?}"),
                "a W3C traceparent 00-<32 hex>-<16 hex>-<2 hex>",
            );
            return Err(Error::Invalid(errors));
        }
        self.put_typed(&keys::trace(name), &traceparent).await
    }

    /// Every recorded trace context, by service name (invalid records are left out).
    pub async fn trace_contexts(&self) -> Result<HashMap<String, String>> {
        let range = self.store.range(keys::TRACES).await?;
        let mut out = HashMap::with_capacity(range.kvs.len());
        for kv in &range.kvs {
            let Some(name) = kv.key.strip_prefix(keys::TRACES) else {
                continue;
            };
            let traceparent: String = decode(kv)?;
            if crate::trace::is_valid(&traceparent) {
                out.insert(name.to_owned(), traceparent);
            }
        }
        Ok(out)
    }
}
