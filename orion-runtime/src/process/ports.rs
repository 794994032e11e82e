//! Host ports of supervised processes. There is no port mapping: the program binds the host port
//! itself, which it finds in `$PORT` (the first port) and `$ORION_PORT_<container_port>`. A host
//! port of 0 asks the runtime to choose one that is free on the binding's `host_ip` right now.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, TcpListener, UdpSocket};

use orion_core::model::spec::Protocol;
use orion_core::runtime::ContainerSpec;

use crate::error::{Result, RuntimeError};

/// How many ports `choose_free_ports` tries per binding before it gives up.
const PICK_ATTEMPTS: usize = 32;

/// The IP a binding listens on (`0.0.0.0` when empty), or an error naming the field.
fn host_ip(spec: &ContainerSpec, i: usize) -> Result<IpAddr> {
    let text = spec.ports[i].host_ip.as_str();
    if text.is_empty() {
        return Ok(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    }
    text.parse().map_err(|_| RuntimeError::InvalidSpec {
        field: format!("ports[{i}].host_ip"),
        value: text.to_owned(),
        expected: "an IP address such as 127.0.0.1, or empty for all addresses".to_owned(),
    })
}

/// One port the kernel says is free on `ip` for `protocol` now (bound, then released).
fn pick(ip: IpAddr, protocol: Protocol) -> std::io::Result<u16> {
    match protocol {
        Protocol::Udp => UdpSocket::bind((ip, 0))?.local_addr().map(|a| a.port()),
        Protocol::Tcp => TcpListener::bind((ip, 0))?.local_addr().map(|a| a.port()),
    }
}

/// Replaces every `host_port: 0` of `spec` with a port free on its `host_ip` and not in `taken`
/// (the ports of this runtime's running processes, which may not have bound theirs yet).
///
/// The port is free when chosen; the program binds it a moment later, so another program of the
/// host may take it in between (then the program fails to bind and exits, as under Docker when
/// a fixed port is taken).
pub(crate) fn choose_free_ports(spec: &mut ContainerSpec, taken: &HashSet<u16>) -> Result<()> {
    let mut chosen: HashSet<u16> = HashSet::new();
    for i in 0..spec.ports.len() {
        let ip = host_ip(spec, i)?;
        if spec.ports[i].host_port != 0 {
            continue;
        }
        let protocol = spec.ports[i].protocol;
        let mut found = None;
        for _ in 0..PICK_ATTEMPTS {
            let port = pick(ip, protocol).map_err(|e| {
                RuntimeError::io(format!("finding a free port on {ip} for ports[{i}]"), e)
            })?;
            if !taken.contains(&port) && chosen.insert(port) {
                found = Some(port);
                break;
            }
        }
        spec.ports[i].host_port = found.ok_or_else(|| {
            RuntimeError::io(
                format!("finding a free port on {ip} for ports[{i}]"),
                std::io::Error::other(format!("{PICK_ATTEMPTS} candidates were all taken")),
            )
        })?;
    }
    Ok(())
}

/// `PORT` (the first port) and `ORION_PORT_<container_port>` for every port.
pub(crate) fn port_env(spec: &ContainerSpec) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = spec
        .ports
        .iter()
        .map(|p| {
            (
                format!("ORION_PORT_{}", p.container_port),
                p.host_port.to_string(),
            )
        })
        .collect();
    if let Some(first) = spec.ports.first() {
        env.push(("PORT".to_owned(), first.host_port.to_string()));
    }
    env
}

#[cfg(test)]
mod tests {
    use orion_core::runtime::PortBinding;

    use super::*;

    fn binding(host_port: u16, host_ip: &str) -> PortBinding {
        PortBinding {
            container_port: 8080,
            host_port,
            protocol: Protocol::Tcp,
            host_ip: host_ip.to_owned(),
        }
    }

    #[test]
    fn zero_gets_a_free_port_fixed_ports_stay_and_a_bad_ip_is_named() {
        let mut spec = ContainerSpec {
            ports: vec![binding(0, "127.0.0.1"), binding(18081, "127.0.0.1")],
            ..ContainerSpec::default()
        };
        choose_free_ports(&mut spec, &HashSet::new()).unwrap();
        let chosen = spec.ports[0].host_port;
        assert_ne!(chosen, 0);
        assert_eq!(spec.ports[1].host_port, 18081);
        TcpListener::bind(("127.0.0.1", chosen)).expect("the chosen port is free");
        let env = port_env(&spec);
        assert!(
            env.contains(&("PORT".to_owned(), chosen.to_string())),
            "{env:?}"
        );

        let mut bad = ContainerSpec {
            ports: vec![binding(0, "localhost")],
            ..ContainerSpec::default()
        };
        let err = choose_free_ports(&mut bad, &HashSet::new()).unwrap_err();
        assert!(err.to_string().contains("ports[0].host_ip"), "{err}");
    }
}
