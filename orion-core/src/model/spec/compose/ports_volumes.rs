//! A Compose service's `ports` and `volumes`, short and long forms.

use serde_json::{Map, Value};

use super::values::{
    check_host_ip, pair_ports, port_range, protocol_named, scalar_text, short_ports,
};
use super::{Importer, describe};
use crate::model::spec::{PortSpec, VolumeSpec};

impl Importer<'_> {
    pub(super) fn ports(&mut self, path: &str, value: &Value) -> Vec<PortSpec> {
        let Value::Array(items) = value else {
            self.refuse(path, describe(value), "a list of ports");
            return Vec::new();
        };
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let at = format!("{path}[{i}]");
            let ports = match item {
                Value::Object(map) => self.long_port(&at, map),
                other => match scalar_text(other).map(|t| short_ports(&t)) {
                    Some(Ok(ports)) => Ok(ports),
                    Some(Err(e)) => Err(e),
                    None => Err("`[published:]target[/protocol]`".into()),
                },
            };
            match ports {
                Ok(ports) => out.extend(ports),
                Err(e) => self.refuse(&at, describe(item), e),
            }
        }
        out
    }

    fn long_port(&mut self, path: &str, map: &Map<String, Value>) -> Result<Vec<PortSpec>, String> {
        let mut targets = Vec::new();
        let mut published = Vec::new();
        let mut protocol = crate::model::spec::Protocol::Tcp;
        let mut name = None;
        for (key, value) in map {
            let text = scalar_text(value).unwrap_or_default();
            match key.as_str() {
                "target" => targets = port_range(&text)?,
                "published" => published = port_range(&text)?,
                "protocol" => protocol = protocol_named(&text)?,
                "host_ip" => check_host_ip(&text)?,
                "name" => name = Some(text),
                "mode" if text == "host" || text == "ingress" => self.notes.push(format!(
                    "{path}.mode: Orion publishes the port on the node that runs each replica"
                )),
                k if k.starts_with("x-") => {}
                other => {
                    return Err(format!(
                        "target, published, protocol, host_ip, name and mode only (`{other}` is not imported)"
                    ));
                }
            }
        }
        if targets.is_empty() {
            return Err("a port mapping with a `target`".into());
        }
        pair_ports(path, &targets, &published, protocol, name)
    }

    pub(super) fn volumes(&mut self, path: &str, value: &Value) -> Vec<VolumeSpec> {
        let Value::Array(items) = value else {
            self.refuse(path, describe(value), "a list of volumes");
            return Vec::new();
        };
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let at = format!("{path}[{i}]");
            match volume(item) {
                Ok(v) => out.push(v),
                Err(e) => self.refuse(&at, describe(item), e),
            }
        }
        out
    }
}

/// A volume in the short form `source:target[:ro|rw]` or the long form `{type, source, target,
/// read_only}`. Relative host paths, anonymous volumes and tmpfs are refused.
fn volume(value: &Value) -> Result<VolumeSpec, String> {
    let (source, target, read_only) = match value {
        Value::String(text) => {
            let parts: Vec<&str> = text.split(':').collect();
            let read_only = match parts.get(2).copied() {
                None | Some("rw") => false,
                Some("ro") => true,
                Some(mode) => return Err(format!("ro or rw as the mode, not `{mode}`")),
            };
            match parts.as_slice() {
                [_] => {
                    return Err(
                        "a named volume (`data:/path`): anonymous volumes are not imported".into(),
                    );
                }
                [source, target, ..] if parts.len() <= 3 => {
                    (source.to_string(), target.to_string(), read_only)
                }
                _ => return Err("`source:target[:ro]`".into()),
            }
        }
        Value::Object(map) => {
            let get = |k: &str| {
                map.get(k)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned()
            };
            for key in map.keys() {
                if !matches!(key.as_str(), "type" | "source" | "target" | "read_only")
                    && !key.starts_with("x-")
                {
                    return Err(format!(
                        "type, source, target and read_only only (`{key}` is not imported)"
                    ));
                }
            }
            match get("type").as_str() {
                "volume" | "bind" => {}
                other => return Err(format!("type volume or bind, not `{other}`")),
            }
            if get("source").is_empty() {
                return Err("a `source` name: anonymous volumes are not imported".into());
            }
            (
                get("source"),
                get("target"),
                map.get("read_only")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
            )
        }
        _ => return Err("`source:target[:ro]` or a mapping".into()),
    };
    if source.starts_with('.') || source.starts_with('~') {
        return Err(format!(
            "an absolute host path that exists on every node, or a named volume (the relative \
             path `{source}` would be read on whichever node runs the replica)"
        ));
    }
    Ok(VolumeSpec {
        source,
        target,
        read_only,
    })
}
