//! OpenTelemetry traces (feature `otel`; docs/operations.md, "Traces").
//!
//! A node started with an OTLP endpoint (`--otel-endpoint` or `OTEL_EXPORTER_OTLP_ENDPOINT`)
//! exports the `orion.*` spans of `orion_core::trace` (API write -> store commit -> reconcile,
//! schedule -> assignment commit -> agent start -> running) over OTLP/HTTP (protobuf) to
//! `<endpoint>/v1/traces`, and installs the W3C `traceparent` propagator that carries a deploy's
//! context through the store. Without an endpoint, or for client commands, nothing is installed
//! and the node runs as without the feature.

use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::Duration;

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{SdkTracerProvider, Tracer};
use tracing::{Span, Subscriber};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;

use crate::cli::{Cli, Command, LogFormat};

/// The environment variable naming the OTLP endpoint (the OpenTelemetry convention).
pub const ENDPOINT_ENV: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";
/// Longest endpoint accepted.
pub const MAX_ENDPOINT_LEN: usize = 2048;
/// Bound on one export request.
pub const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

/// The W3C trace context propagator, between tracing spans and `traceparent` strings.
#[derive(Debug, Clone, Copy, Default)]
pub struct W3cPropagator;

impl orion_core::trace::Propagator for W3cPropagator {
    fn traceparent(&self, span: &Span) -> Option<String> {
        let mut carrier: HashMap<String, String> = HashMap::new();
        TraceContextPropagator::new().inject_context(&span.context(), &mut carrier);
        carrier.remove("traceparent")
    }

    fn set_parent(&self, span: &Span, traceparent: &str) {
        let carrier = HashMap::from([("traceparent".to_owned(), traceparent.to_owned())]);
        let parent = TraceContextPropagator::new().extract(&carrier);
        // A span already entered keeps its parent; the trace is then split, never wrong.
        let _ = span.set_parent(parent);
    }
}

/// The layer that turns the `orion.*` spans (and nothing else: no log events, no other spans)
/// into OpenTelemetry spans of `tracer`.
pub fn layer<S>(tracer: Tracer) -> impl Layer<S>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_filter(filter_fn(|meta| {
            meta.is_span() && meta.name().starts_with("orion.")
        }))
}

/// The endpoint a node exports to: `--otel-endpoint` / `OTEL_EXPORTER_OTLP_ENDPOINT`, checked;
/// `None` for client commands and when unset.
fn endpoint(cli: &Cli) -> Result<Option<String>, String> {
    let node = match &cli.command {
        Command::Server(_) | Command::Up(_) => true,
        Command::Start(start) => start.file.is_none(),
        _ => false,
    };
    let Some(text) = cli.otel_endpoint.as_deref().filter(|_| node) else {
        return Ok(None);
    };
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    if text.len() > MAX_ENDPOINT_LEN
        || !(text.starts_with("http://") || text.starts_with("https://"))
        || text.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(format!(
            "--otel-endpoint / {ENDPOINT_ENV}: got {text:?}, expected an http:// or https:// URL \
             of at most {MAX_ENDPOINT_LEN} characters, such as http://127.0.0.1:4318"
        ));
    }
    Ok(Some(text.trim_end_matches('/').to_owned()))
}

/// Sets up logging as `crate::init_tracing` does, plus, for a node with an endpoint, the OTLP
/// exporter, the `orion.*` span layer and the propagator.
pub fn init(cli: &Cli, filter: EnvFilter, format: LogFormat) -> Result<(), String> {
    let Some(endpoint) = endpoint(cli)? else {
        crate::init_tracing(filter, format);
        return Ok(());
    };
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(format!("{endpoint}/v1/traces"))
        .with_timeout(EXPORT_TIMEOUT)
        .build()
        .map_err(|e| format!("--otel-endpoint {endpoint}: cannot build the exporter: {e}"))?;
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(Resource::builder().with_service_name("orion").build())
        .build();
    let tracer = provider.tracer("orion");
    let _ = PROVIDER.set(provider);
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let fmt = match format {
        LogFormat::Json => fmt.json().with_ansi(false).boxed(),
        LogFormat::Text => {
            use std::io::IsTerminal;
            fmt.with_ansi(std::io::stderr().is_terminal()).boxed()
        }
    };
    tracing_subscriber::registry()
        .with(fmt.with_filter(filter))
        .with(layer(tracer))
        .init();
    orion_core::trace::install(Box::new(W3cPropagator));
    Ok(())
}

/// Exports what is left (bounded by the exporter's timeout); call before the process exits.
pub fn shutdown() {
    if let Some(provider) = PROVIDER.get() {
        let _ = provider.shutdown();
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    fn endpoint_of(argv: &[&str]) -> Result<Option<String>, String> {
        endpoint(&Cli::try_parse_from(argv).unwrap())
    }

    #[test]
    fn only_nodes_export_and_only_to_http_urls() {
        let url = "http://127.0.0.1:4318/";
        assert_eq!(
            endpoint_of(&["orion", "--otel-endpoint", url, "up"]).unwrap(),
            Some("http://127.0.0.1:4318".into())
        );
        assert_eq!(
            endpoint_of(&["orion", "--otel-endpoint", url, "ps"]).unwrap(),
            None
        );
        let err = endpoint_of(&["orion", "--otel-endpoint", "127.0.0.1:4318", "up"]).unwrap_err();
        assert!(err.contains("expected an http:// or https:// URL"), "{err}");
    }
}
