//! A node's key material for node-to-node security (`orion_consensus::security`): the cluster
//! CA, this node's certificate and key, and the cluster key, in `<data dir>/keys/`.
//!
//! - **First bootstrap** (`orion server --bootstrap`, `orion up`): generates the CA (its key
//!   mode 0600), or takes `security.externalCa` and copies it into the keys dir, then makes the
//!   cluster key and a voter certificate for this node.
//! - **First join** (`--join RAFT_ADDR --join-token TOKEN`): asks the member at `RAFT_ADDR` for
//!   admission over TLS pinned to the CA digest in the token (nothing is sent to a server of
//!   another CA), and keeps the certificate, the CA (with its key for a voter) and the cluster
//!   key it receives.
//! - **Any later start**: loads what is there; no token needed.
//!
//! [`renew_forever`] renews the certificate when a third of its lifetime is left: locally on a
//! node holding the CA key, otherwise through the member it joined by.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use orion_consensus::security::{
    ClusterCa, ClusterKey, JoinToken, NodeCert, NodeTls, Role, RotationPeriod, keys_dir,
};
use orion_consensus::transport::join::request_admission;
use tracing::info;

use super::{Settings, SharedStore};
use std::path::PathBuf;

/// How long an admission request may take.
const ADMISSION_TIMEOUT: Duration = Duration::from_secs(10);

/// What a node secures itself with.
pub struct NodeKeys {
    /// The cluster CA (with its key on nodes that admit and renew).
    pub ca: Arc<ClusterCa>,
    /// This node's certificate, as loaded or issued at this start.
    pub cert: NodeCert,
    /// The role in this node's certificate.
    pub role: Role,
    /// The cluster key (gossip, secrets at rest).
    pub cluster_key: ClusterKey,
}

/// The IP addresses this node's certificate names: those of its API, Raft and gossip addresses
/// (an unspecified address stands for none) and loopback, for local clients.
pub fn cert_addresses(settings: &Settings) -> Vec<IpAddr> {
    let mut ips: Vec<IpAddr> = vec![IpAddr::V4(Ipv4Addr::LOCALHOST)];
    for addr in [settings.raft_addr, settings.api_addr, settings.gossip_addr] {
        let ip = addr.ip();
        if !ip.is_unspecified() && !ips.contains(&ip) {
            ips.push(ip);
        }
    }
    ips
}

/// Loads this node's keys, or makes them (bootstrap) or obtains them (join) the first time.
/// `join_token` is needed only for a first join.
pub async fn prepare(settings: &Settings, join_token: Option<&str>) -> Result<NodeKeys> {
    let keys = keys_dir(&settings.data_dir);
    let period = settings.config.security.rotation()?;
    let addresses = cert_addresses(settings);
    let external = external_ca(settings, &keys)?;
    if let Some(cert) = NodeCert::load(&keys).context("this node's certificate")? {
        let ca = ClusterCa::load(&keys)
            .context("the cluster CA")?
            .with_context(|| format!("{} holds node.crt but no ca.crt", keys.display()))?;
        let cluster_key = ClusterKey::load(&settings.data_dir)
            .context("the cluster key")?
            .with_context(|| format!("{} holds node.crt but no cluster.key", keys.display()))?;
        let role = role_of(&cert);
        let mut cert = cert;
        if ca.can_sign() && cert.not_after() <= std::time::SystemTime::now() {
            // Expired while the node was down: a CA holder renews its own at once.
            cert = NodeCert::issue(&ca, &settings.node_id, role, &addresses, period.get())?;
            cert.save(&keys)?;
        }
        return Ok(NodeKeys {
            ca: Arc::new(ca),
            cert,
            role,
            cluster_key,
        });
    }
    if settings.bootstrap {
        let ca = match (ClusterCa::load(&keys).context("the cluster CA")?, external) {
            (Some(ca), _) => ca,
            (None, Some(external)) => {
                external
                    .save(&keys)
                    .context("cannot store the external CA")?;
                info!(ca = %external.digest(), "cluster CA: the external CA of security.externalCa");
                external
            }
            (None, None) => ClusterCa::load_or_generate(&keys, &settings.cluster_id)
                .context("cannot create the cluster CA")?,
        };
        let cluster_key =
            ClusterKey::load_or_create(&settings.data_dir).context("the cluster key")?;
        let cert = NodeCert::issue(
            &ca,
            &settings.node_id,
            Role::Voter,
            &addresses,
            period.get(),
        )
        .context("cannot issue this node's certificate")?;
        cert.save(&keys)?;
        info!(ca = %ca.digest(), keys = %keys.display(), "cluster CA and node certificate created");
        return Ok(NodeKeys {
            ca: Arc::new(ca),
            cert,
            role: Role::Voter,
            cluster_key,
        });
    }
    let Some(seed) = &settings.join else {
        bail!(
            "a cluster node needs --bootstrap (the first node) or --join ADDR --join-token TOKEN"
        );
    };
    let Some(token) = join_token.map(str::trim).filter(|t| !t.is_empty()) else {
        bail!(
            "--join {seed}: this node has no certificate yet, so it needs --join-token TOKEN (or \
             ORION_JOIN_TOKEN): the voter or worker token printed at bootstrap (also in the \
             bootstrap node's credentials file), or a new one from `orion token rotate voter|worker`"
        );
    };
    let token = JoinToken::parse(token).context("--join-token")?;
    let admitted = request_admission(
        seed,
        &token,
        &settings.node_id,
        &addresses,
        ADMISSION_TIMEOUT,
    )
    .await
    .with_context(|| format!("cannot join through {seed}"))?;
    admitted.ca.save(&keys)?;
    admitted.cert.save(&keys)?;
    admitted.cluster_key.save(&settings.data_dir)?;
    info!(role = %admitted.role, via = %seed, "admitted to the cluster; certificate and keys stored");
    Ok(NodeKeys {
        ca: Arc::new(admitted.ca),
        cert: admitted.cert,
        role: admitted.role,
        cluster_key: admitted.cluster_key,
    })
}

/// `security.externalCa`, loaded and checked, when this node is to take it: at a first
/// bootstrap (no CA in the data dir yet). `None` when not configured, or when the data dir
/// already holds that same CA (then only `certFile` is read, to compare). Refused, saying how to
/// proceed, on a node with no CA yet that does not bootstrap (a joining node gets the cluster's
/// CA at admission), and on a data dir that already holds another CA (a cluster's CA is fixed
/// at its first bootstrap).
fn external_ca(settings: &Settings, keys: &std::path::Path) -> Result<Option<ClusterCa>> {
    let Some(config) = &settings.config.security.external_ca else {
        return Ok(None);
    };
    let Some(current) = ClusterCa::load(keys).context("the cluster CA")? else {
        if !settings.bootstrap {
            bail!(
                "security.externalCa is only for the node that bootstraps the cluster: a joining \
                 node gets the cluster's CA at admission (pinned by its join token); remove \
                 security.externalCa from this node's orion.yaml"
            );
        }
        return config.load().map(Some);
    };
    let external = config.cert_digest()?;
    if current.digest() != external {
        bail!(
            "security.externalCa: the data dir {} already holds another cluster CA (digest {}; \
             the external CA's is {external}); a cluster's CA is fixed at its first bootstrap. \
             Remove security.externalCa to keep the current CA, or bootstrap a new cluster with \
             an empty --data-dir to use the external one",
            settings.data_dir.display(),
            current.digest(),
        );
    }
    Ok(None)
}

/// The role a certificate names (a certificate without one is taken as a worker's: the least).
fn role_of(cert: &NodeCert) -> Role {
    match cert.identity() {
        Some((_, Some(role))) => role,
        _ => Role::Worker,
    }
}

/// Renews `tls`'s certificate forever (see the module doc), saving each new one; run it in a
/// task.
pub fn renewal(
    tls: NodeTls,
    keys: &NodeKeys,
    settings: &Settings,
    period: RotationPeriod,
    transport: Option<orion_consensus::transport::Transport>,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    let ca = keys.ca.clone();
    let role = keys.role;
    let name = settings.node_id.clone();
    let addresses = cert_addresses(settings);
    let dir = keys_dir(&settings.data_dir);
    let via = settings.join.clone();
    tls.renew_forever(period, move || {
        let (ca, name, addresses, dir, via, transport) = (
            ca.clone(),
            name.clone(),
            addresses.clone(),
            dir.clone(),
            via.clone(),
            transport.clone(),
        );
        async move {
            let cert = if ca.can_sign() {
                NodeCert::issue(&ca, &name, role, &addresses, period.get())?
            } else {
                let (Some(via), Some(transport)) = (via, transport) else {
                    return Err(orion_consensus::Error::security(
                        "certificate renewal",
                        "this node holds no CA key and was not started with --join",
                    ));
                };
                orion_consensus::transport::join::renew(
                    &transport,
                    &via,
                    &name,
                    &addresses,
                    ca.cert_der(),
                    ADMISSION_TIMEOUT,
                )
                .await?
            };
            cert.save(&dir)?;
            info!(not_after = ?cert.not_after(), "node certificate renewed");
            Ok(cert)
        }
    })
}

/// The HTTP client a node reaches other nodes' APIs with (log proxy) when the API is served over
/// TLS: it trusts only the cluster CA and presents this node's certificate.
pub fn peer_client(settings: &crate::api::ApiSettings, tls: &NodeTls) -> Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .tls_backend_preconfigured((*tls.client_config()).clone())
        .connect_timeout(settings.proxy_timeout)
        .tcp_keepalive(Duration::from_secs(15))
        .build()?)
}

/// Attempts at making the management token while the store is not writable yet (no leader).
const TOKEN_BOOTSTRAP_ATTEMPTS: u32 = 120;
/// Pause between two of those attempts (so at most a minute in all).
const TOKEN_BOOTSTRAP_PAUSE: Duration = Duration::from_millis(500);

/// On a bootstrapping node: makes the cluster's management token (admin) and, in a cluster, the
/// voter and worker join tokens, the first time; prints them once on stdout, and writes them to
/// `<data dir>/credentials` (mode 0600) for local use. A later start finds them made and does
/// nothing. Retries (bounded) while the store has no leader yet.
pub async fn bootstrap_credentials(
    store: SharedStore,
    data_dir: PathBuf,
    ca_digest: Option<orion_consensus::security::CaDigest>,
) {
    use orion_consensus::security::JoinToken;
    let mut management: Option<Option<String>> = None;
    let mut join: Option<Option<(JoinToken, JoinToken)>> = match ca_digest {
        Some(_) => None,
        None => Some(None),
    };
    for _ in 0..TOKEN_BOOTSTRAP_ATTEMPTS {
        if management.is_none() {
            match crate::api::tokens::bootstrap_management_token(store.as_ref()).await {
                Ok(made) => management = Some(made),
                Err(e) => tracing::debug!("management token not made yet: {e}"),
            }
        }
        if join.is_none()
            && let Some(digest) = &ca_digest
        {
            match crate::api::join_tokens::bootstrap(store.as_ref(), digest).await {
                Ok(made) => join = Some(made),
                Err(e) => tracing::debug!("join tokens not made yet: {e}"),
            }
        }
        if management.is_some() && join.is_some() {
            break;
        }
        tokio::time::sleep(TOKEN_BOOTSTRAP_PAUSE).await;
    }
    if management.is_none() || join.is_none() {
        tracing::warn!(
            "could not make the management and join tokens within {:?}; they will be made on \
             the next start",
            TOKEN_BOOTSTRAP_PAUSE * TOKEN_BOOTSTRAP_ATTEMPTS
        );
    }
    let management = management.flatten();
    let join = join.flatten();
    if management.is_none() && join.is_none() {
        return;
    }
    let join_text = join
        .as_ref()
        .map(|(voter, worker)| (voter.to_string(), worker.to_string()));
    let written = management
        .as_deref()
        .map(|token| crate::credentials::write_credentials(&data_dir, token, join_text.as_ref()));
    let mut notice = String::new();
    if let Some(token) = &management {
        notice.push_str(&format!(
            "Orion management token (admin role), shown once:\n  {token}\n"
        ));
    }
    if let Some((voter, worker)) = &join_text {
        notice.push_str(&format!(
            "Join tokens (orion server --join <this node's Raft address> --join-token TOKEN), \
             shown once; rotate them with `orion token rotate voter|worker`:\n  voter:  \
             {voter}\n  worker: {worker}\n"
        ));
    }
    match written {
        Some(Ok(path)) => {
            info!(credentials = %path.display(), "management and join tokens created");
            notice.push_str(&format!(
                "(also written to {}, mode 0600)\n",
                path.display()
            ));
        }
        Some(Err(e)) => tracing::warn!("tokens created, but not written: {e:#}"),
        None => {}
    }
    print!("{notice}");
}
