//! The hickory-server request handler and the sockets it serves.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use hickory_proto::op::{Edns, MessageType, Metadata, OpCode, ResponseCode};
use hickory_server::Server;
use hickory_server::net::runtime::Time;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;
use orion_core::store::{ClusterStore, Store};
use tracing::{info, warn};

use hickory_proto::rr::{Name, RecordType};
use hickory_resolver::Resolver;
use hickory_resolver::config::{NameServerConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;

use crate::answer::{Answer, MAX_ANSWERS, answer};
use crate::config::DnsConfig;
use crate::error::{Error, Result};
use crate::index::{DnsIndex, IndexWatcher};

/// A TCP connection that sends no query for this long is closed.
const TCP_IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// Responses buffered per TCP connection.
const TCP_RESPONSE_BUFFER: usize = 64;

/// Answers queries from a [`DnsIndex`]; never reads the store. Names outside the zone are
/// REFUSED, or asked of the configured upstreams when `forward` is set.
#[derive(Clone)]
pub struct DnsHandler {
    config: Arc<DnsConfig>,
    index: DnsIndex,
    turn: Arc<AtomicUsize>,
    forwarder: Option<Arc<Resolver<TokioRuntimeProvider>>>,
}

impl std::fmt::Debug for DnsHandler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DnsHandler")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// A resolver asking only `upstreams`, in order, 2 s per attempt, 2 attempts.
fn forwarder(upstreams: &[SocketAddr]) -> Result<Resolver<TokioRuntimeProvider>> {
    let servers = upstreams
        .iter()
        .map(|u| {
            let mut ns = NameServerConfig::udp_and_tcp(u.ip());
            for c in &mut ns.connections {
                c.port = u.port();
            }
            ns
        })
        .collect();
    let mut builder = Resolver::builder_with_config(
        ResolverConfig::from_parts(None, vec![], servers),
        TokioRuntimeProvider::default(),
    );
    let opts = builder.options_mut();
    opts.timeout = Duration::from_secs(2);
    opts.attempts = 2;
    builder.build().map_err(|e| Error::Config {
        field: "forward",
        value: format!("{upstreams:?}"),
        expected: format!("upstream servers a resolver can use ({e})"),
    })
}

/// Asks the upstreams; NXDOMAIN and empty answers are passed on, other failures are SERVFAIL.
async fn forward(
    resolver: &Resolver<TokioRuntimeProvider>,
    name: &Name,
    qtype: RecordType,
) -> Answer {
    let mut out = Answer::default();
    match resolver.lookup(name.clone(), qtype).await {
        Ok(lookup) => {
            out.answers = lookup.answers().iter().take(MAX_ANSWERS).cloned().collect();
        }
        Err(e) if e.is_nx_domain() => out.code = ResponseCode::NXDomain,
        Err(e) if e.is_no_records_found() => {}
        Err(e) => {
            warn!(%name, error = %e, "dns: forwarding failed");
            out.code = ResponseCode::ServFail;
        }
    }
    out
}

impl DnsHandler {
    /// A handler answering for `config.zone` from `index`.
    /// Fails only when a forwarding resolver cannot be built from `config.forward`.
    pub fn new(config: DnsConfig, index: DnsIndex) -> Result<Self> {
        let forwarder = if config.forward.is_empty() {
            None
        } else {
            Some(Arc::new(forwarder(&config.forward)?))
        };
        Ok(DnsHandler {
            config: Arc::new(config),
            index,
            turn: Arc::default(),
            forwarder,
        })
    }
}

#[async_trait::async_trait]
impl RequestHandler for DnsHandler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        response_handle: R,
    ) -> ResponseInfo {
        let received = std::time::Instant::now();
        let info = self.respond(request, response_handle).await;
        if let Some(observer) = &self.config.observer {
            let qtype = request
                .request_info()
                .map_or("none", |i| crate::query_type_label(i.query.query_type()));
            let rcode = crate::response_code_label(info.response_code);
            observer.0.observe(qtype, rcode, received.elapsed());
        }
        info
    }
}

impl DnsHandler {
    /// Answers `request` through `response_handle`; what was sent.
    async fn respond<R: ResponseHandler>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        let mut edns = None;
        if let Some(req) = &request.edns {
            let mut e = Edns::new();
            e.set_max_payload(req.max_payload().max(512));
            e.set_version(0);
            edns = Some(e);
        }
        let mut metadata = Metadata::response_from_request(&request.metadata);
        let mut builder = MessageResponseBuilder::from_message_request(request);
        if let Some(e) = &edns {
            builder.edns(e);
        }
        let query = match request.request_info() {
            Ok(info) => Some(info.query),
            Err(_) => None,
        };
        let outcome = match (
            request.metadata.message_type,
            request.metadata.op_code,
            query,
        ) {
            (MessageType::Query, OpCode::Query, Some(q))
                if self.forwarder.is_some() && !self.config.zone.zone_of(q.original().name()) =>
            {
                let resolver = self.forwarder.as_ref().expect("checked");
                let mut a = forward(resolver, q.original().name(), q.query_type()).await;
                a.recursion_available = true;
                Ok(a)
            }
            (MessageType::Query, OpCode::Query, Some(q)) => {
                let zone = self.index.snapshot();
                let turn = self.turn.fetch_add(1, Ordering::Relaxed);
                Ok(answer(
                    &self.config,
                    &zone,
                    q.original().name(),
                    q.query_type(),
                    q.query_class(),
                    turn,
                ))
            }
            (MessageType::Query, OpCode::Query, None) => Err(ResponseCode::FormErr),
            (MessageType::Query, _, _) => Err(ResponseCode::NotImp),
            (MessageType::Response, _, _) => Err(ResponseCode::FormErr),
        };
        let sent = match outcome {
            Ok(a) => {
                metadata.response_code = a.code;
                metadata.authoritative = a.authoritative;
                metadata.recursion_available = a.recursion_available;
                let response = builder.build(
                    metadata,
                    a.answers.iter(),
                    std::iter::empty(),
                    a.soa.iter(),
                    a.additionals.iter(),
                );
                response_handle.send_response(response).await
            }
            Err(code) => {
                let response = builder.error_msg(&request.metadata, code);
                response_handle.send_response(response).await
            }
        };
        sent.unwrap_or_else(|error| {
            warn!(%error, "dns: cannot send a response");
            let mut metadata = Metadata::response_from_request(&request.metadata);
            metadata.response_code = ResponseCode::ServFail;
            ResponseInfo::from(hickory_proto::op::Header {
                metadata,
                counts: Default::default(),
            })
        })
    }
}

/// A running DNS server: the index watcher and the UDP and TCP listeners. Dropping it stops
/// everything.
pub struct DnsServer {
    index: DnsIndex,
    addrs: Vec<SocketAddr>,
    _server: Server<DnsHandler>,
    _watcher: IndexWatcher,
}

impl std::fmt::Debug for DnsServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DnsServer")
            .field("addrs", &self.addrs)
            .finish_non_exhaustive()
    }
}

impl DnsServer {
    /// Follows `store` into a fresh index and serves it over UDP and TCP on every address of
    /// `listen` (each the same port for both). Fails naming the first address that cannot be
    /// bound. At most 16 addresses.
    pub async fn start<S: Store + Clone>(
        store: ClusterStore<S>,
        config: DnsConfig,
        listen: &[SocketAddr],
    ) -> Result<DnsServer> {
        let index = DnsIndex::new();
        let watcher = IndexWatcher::spawn(store, index.clone(), config.node_id.clone());
        Self::serve(index, watcher, config, listen).await
    }

    /// Serves an index that `watcher` keeps current.
    pub async fn serve(
        index: DnsIndex,
        watcher: IndexWatcher,
        config: DnsConfig,
        listen: &[SocketAddr],
    ) -> Result<DnsServer> {
        if listen.is_empty() || listen.len() > 16 {
            return Err(Error::Config {
                field: "listen",
                value: format!("{} addresses", listen.len()),
                expected: "1 to 16 addresses".into(),
            });
        }
        let zone = config.zone.to_ascii();
        let mut server = Server::new(DnsHandler::new(config, index.clone())?);
        let mut addrs = Vec::new();
        for &addr in listen {
            let bind_err = |protocol, source| Error::Bind {
                addr,
                protocol,
                source,
            };
            let udp = tokio::net::UdpSocket::bind(addr)
                .await
                .map_err(|e| bind_err("udp", e))?;
            let bound = udp.local_addr().map_err(|e| bind_err("udp", e))?;
            let tcp = tokio::net::TcpListener::bind(bound)
                .await
                .map_err(|e| bind_err("tcp", e))?;
            server.register_socket(udp);
            server.register_listener(tcp, TCP_IDLE_TIMEOUT, TCP_RESPONSE_BUFFER);
            addrs.push(bound);
        }
        info!(zone, addrs = ?addrs, "dns: serving");
        Ok(DnsServer {
            index,
            addrs,
            _server: server,
            _watcher: watcher,
        })
    }

    /// The addresses served (UDP and TCP on each), with the real ports.
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// The index answered from.
    pub fn index(&self) -> &DnsIndex {
        &self.index
    }
}
