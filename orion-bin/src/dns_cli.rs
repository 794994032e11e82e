//! `orion dns lookup NAME [--type A|AAAA|SRV|SOA|NS]`: one question to the node's own DNS
//! server, with hickory's message types; the answer as a table, or `-o json|yaml` as
//! `{server, name, type, status, answers, additionals}`.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use comfy_table::{Table, presets::NOTHING};
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Name, Record, RecordType};
use serde::Serialize;

use crate::cli::{DnsAction, DnsType, OutputFormat};
use crate::output::render_value;

/// The answer as printed.
#[derive(Debug, Serialize)]
struct LookupOutput {
    server: String,
    name: String,
    #[serde(rename = "type")]
    qtype: String,
    status: String,
    answers: Vec<RecordOutput>,
    additionals: Vec<RecordOutput>,
}

#[derive(Debug, Serialize)]
struct RecordOutput {
    name: String,
    #[serde(rename = "type")]
    rtype: String,
    ttl: u32,
    data: String,
}

impl From<&Record> for RecordOutput {
    fn from(r: &Record) -> Self {
        RecordOutput {
            name: r.name.to_ascii(),
            rtype: r.record_type().to_string(),
            ttl: r.ttl,
            data: r.data.to_string(),
        }
    }
}

/// How long `dns lookup` waits for the answer without `--timeout`.
pub const DEFAULT_DNS_TIMEOUT: Duration = Duration::from_secs(2);

/// `orion dns ...`; `api_addr` is the global `--addr`, whose IP the default server uses;
/// `timeout` the global `--timeout` (default [`DEFAULT_DNS_TIMEOUT`], at most 60 s).
pub async fn dns(
    api_addr: &str,
    action: DnsAction,
    format: OutputFormat,
    timeout: Option<Duration>,
) -> Result<()> {
    let DnsAction::Lookup {
        name,
        qtype,
        server,
        zone,
    } = action;
    let timeout = timeout.unwrap_or(DEFAULT_DNS_TIMEOUT);
    if timeout.is_zero() || timeout > Duration::from_secs(60) {
        return Err(crate::commands::Exit {
            code: crate::client::exit::INVALID,
            message: format!(
                "--timeout {}: dns lookup waits 100ms to 60s",
                humantime::format_duration(timeout)
            ),
        }
        .into());
    }
    let server = match server {
        Some(s) => s
            .parse::<SocketAddr>()
            .with_context(|| format!("--server {s:?}: expected IP:PORT, e.g. 127.0.0.1:5353"))?,
        None => default_server(api_addr).await?,
    };
    let fqdn = qualify(&name, &zone)?;
    let rtype = match qtype {
        DnsType::A => RecordType::A,
        DnsType::Aaaa => RecordType::AAAA,
        DnsType::Srv => RecordType::SRV,
        DnsType::Soa => RecordType::SOA,
        DnsType::Ns => RecordType::NS,
    };
    let answer = orion_dns::client::lookup(server, &fqdn, rtype, timeout).await?;
    let code = answer.metadata.response_code;
    let out = LookupOutput {
        server: server.to_string(),
        name: fqdn.to_ascii(),
        qtype: rtype.to_string(),
        status: status_name(code),
        answers: answer.answers.iter().map(RecordOutput::from).collect(),
        additionals: answer.additionals.iter().map(RecordOutput::from).collect(),
    };
    match format {
        OutputFormat::Table => {
            let mut table = Table::new();
            table
                .load_preset(NOTHING)
                .set_header(["NAME", "TYPE", "TTL", "DATA"]);
            for r in &out.answers {
                table.add_row([
                    r.name.clone(),
                    r.rtype.clone(),
                    r.ttl.to_string(),
                    r.data.clone(),
                ]);
            }
            if out.answers.is_empty() {
                println!("{} {}: {} (no records)", out.name, out.qtype, out.status);
            } else {
                println!("{table}");
            }
        }
        _ => println!("{}", render_value(&out, format)),
    }
    if code != ResponseCode::NoError {
        bail!("{} {}: {}", out.name, out.qtype, out.status);
    }
    Ok(())
}

/// The response code as dig prints it (`NOERROR`, `NXDOMAIN`, `REFUSED`...).
fn status_name(code: ResponseCode) -> String {
    match code {
        ResponseCode::NoError => "NOERROR".into(),
        ResponseCode::NXDomain => "NXDOMAIN".into(),
        ResponseCode::Refused => "REFUSED".into(),
        ResponseCode::ServFail => "SERVFAIL".into(),
        ResponseCode::FormErr => "FORMERR".into(),
        ResponseCode::NotImp => "NOTIMP".into(),
        other => format!("{other:?}").to_uppercase(),
    }
}

/// `NAME` as an absolute name: kept when it has a dot (a trailing one is optional), completed
/// with `zone` when it is a single label.
fn qualify(name: &str, zone: &str) -> Result<Name> {
    let text = if name.trim_end_matches('.') == zone.trim_end_matches('.') {
        zone.trim_end_matches('.').to_owned()
    } else if name.contains('.') {
        name.trim_end_matches('.').to_owned()
    } else {
        format!("{name}.{}", zone.trim_end_matches('.'))
    };
    let mut n = Name::from_ascii(&text)
        .with_context(|| format!("{name:?}: expected a domain name such as web or web.orion."))?;
    n.set_fqdn(true);
    Ok(n)
}

/// The DNS server of the node at `--addr`: its IP (or host name, resolved), port 5353.
async fn default_server(api_addr: &str) -> Result<SocketAddr> {
    let host_port = api_addr
        .trim_start_matches("http://")
        .trim_start_matches("https://")
        .trim_end_matches('/');
    let mut addrs = tokio::net::lookup_host(host_port).await.with_context(|| {
        format!("--addr {api_addr:?}: cannot find its address; pass --server IP:PORT")
    })?;
    let api = addrs
        .next()
        .with_context(|| format!("--addr {api_addr:?} has no address; pass --server IP:PORT"))?;
    Ok(SocketAddr::new(api.ip(), orion_dns::DEFAULT_PORT))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_qualified() {
        assert_eq!(qualify("web", "orion.").unwrap().to_ascii(), "web.orion.");
        assert_eq!(qualify("orion", "orion.").unwrap().to_ascii(), "orion.");
        assert_eq!(qualify("web.orion", "x.").unwrap().to_ascii(), "web.orion.");
        assert_eq!(
            qualify("_http._tcp.web.orion.", "orion.")
                .unwrap()
                .to_ascii(),
            "_http._tcp.web.orion."
        );
    }
}
