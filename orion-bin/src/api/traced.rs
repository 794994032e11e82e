//! The API's part of a deploy's trace (`orion_core::trace`): a service write runs under an
//! `orion.api.write` span (child of the request's W3C `traceparent` header when it has a valid
//! one), which records its context as the service's trace context and wraps the store write in
//! `orion.store.commit`. Without tracing installed (orion-bin built without `otel`), the write
//! runs as it is: no span, no extra store write.

use std::future::Future;

use axum::http::HeaderMap;
use orion_core::trace;
use tracing::{Instrument, Span, info_span, warn};

use super::routes::ApiState;

/// Runs `write` (the store write of service `service`) traced; see the module docs.
pub(super) async fn write<T, E>(
    state: &ApiState,
    service: &str,
    headers: Option<&HeaderMap>,
    write: impl Future<Output = Result<T, E>>,
) -> Result<T, E> {
    if !trace::enabled() {
        return write.await;
    }
    let incoming = headers
        .and_then(|h| h.get("traceparent"))
        .and_then(|v| v.to_str().ok());
    let span = trace::child_of(incoming, || info_span!("orion.api.write", service));
    async {
        if let Some(context) = trace::traceparent(&Span::current())
            && let Err(e) = state.store.put_trace_context(service, &context).await
        {
            warn!(service, error = %e, "cannot record the trace context; the deploy goes on untraced");
        }
        write
            .instrument(info_span!("orion.store.commit", service))
            .await
    }
    .instrument(span)
    .await
}
