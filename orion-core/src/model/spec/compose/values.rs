//! Compose's value forms: `${VAR}` interpolation, Go durations (`1m30s`), byte sizes (`512m`),
//! `cpus` (`"0.5"`) and the short port syntax (`"127.0.0.1:8080-8081:80-81/udp"`).

use std::collections::BTreeMap;

use serde_json::Value;

use crate::model::spec::units::parse_duration_ms;
use crate::model::spec::{PortSpec, Protocol};

/// Most ports one port range may expand to.
pub const MAX_PORT_RANGE: u32 = 100;

/// Replaces `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?message}`,
/// `${VAR?message}`, `${VAR:+other}` and `${VAR+other}` in `text` with values from `vars`;
/// `$$` is a literal `$`. An unset variable without a default becomes the empty string and is
/// added to `unset` (Compose warns the same way). The `:?` forms fail with their message.
pub fn interpolate(
    text: &str,
    vars: &BTreeMap<String, String>,
    unset: &mut Vec<String>,
) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(braced) = after.strip_prefix('{') {
            let end = closing_brace(braced)
                .ok_or_else(|| format!("`${{` without a closing `}}` in {text:?}"))?;
            out.push_str(&expand(&braced[..end], vars, unset)?);
            rest = &braced[end + 1..];
        } else {
            let len = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            if len == 0 {
                return Err(format!(
                    "a lone `$` in {text:?}; write `$$` for a literal dollar sign"
                ));
            }
            out.push_str(&lookup(&after[..len], vars, unset));
            rest = &after[len..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// The index of the `}` that closes a `${` whose body starts `text` (nested `${...}` in
/// defaults are skipped).
fn closing_brace(text: &str) -> Option<usize> {
    let mut depth = 0usize;
    for (i, c) in text.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => return Some(i),
            '}' => depth -= 1,
            _ => {}
        }
    }
    None
}

fn lookup(name: &str, vars: &BTreeMap<String, String>, unset: &mut Vec<String>) -> String {
    match vars.get(name) {
        Some(value) => value.clone(),
        None => {
            if !unset.iter().any(|u| u == name) {
                unset.push(name.to_owned());
            }
            String::new()
        }
    }
}

/// One `${...}` body: `NAME`, or `NAME` followed by an operator and a word.
fn expand(
    body: &str,
    vars: &BTreeMap<String, String>,
    unset: &mut Vec<String>,
) -> Result<String, String> {
    let name_len = body
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(body.len());
    let (name, op) = body.split_at(name_len);
    if name.is_empty() {
        return Err(format!("`${{{body}}}` names no variable"));
    }
    let value = vars.get(name);
    let empty = value.is_none_or(|v| v.is_empty());
    let mut word = |prefix: &str| op.strip_prefix(prefix).map(|w| interpolate(w, vars, unset));
    if op.is_empty() {
        return Ok(lookup(name, vars, unset));
    }
    if let Some(default) = word(":-") {
        return if empty {
            default
        } else {
            Ok(value.cloned().unwrap_or_default())
        };
    }
    if let Some(default) = word("-") {
        return value.cloned().map_or(default, Ok);
    }
    if let Some(message) = word(":?") {
        return if empty {
            Err(format!("{name}: {}", message?))
        } else {
            Ok(value.cloned().unwrap_or_default())
        };
    }
    if let Some(message) = word("?") {
        return value.cloned().ok_or(format!("{name}: {}", message?));
    }
    if let Some(other) = word(":+") {
        return if empty { Ok(String::new()) } else { other };
    }
    if let Some(other) = word("+") {
        return if value.is_none() {
            Ok(String::new())
        } else {
            other
        };
    }
    Err(format!(
        "`${{{body}}}`: expected `${{NAME}}`, `${{NAME:-default}}`, `${{NAME-default}}`, \
         `${{NAME:?error}}`, `${{NAME?error}}`, `${{NAME:+other}}` or `${{NAME+other}}`"
    ))
}

/// Seconds in a Go duration (`30s`, `1m30s`, `1h`, `500ms`, `1.5s`), rounded up to whole
/// seconds. Compose writes every duration this way.
pub fn go_duration_secs(text: &str) -> Result<u64, String> {
    let bad = || format!("a duration such as `30s`, `1m30s`, `500ms` or `1h`, not `{text}`");
    let text = text.trim();
    if text.is_empty() {
        return Err(bad());
    }
    let mut total_ms = 0.0;
    let mut rest = text;
    while !rest.is_empty() {
        let number_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let unit_end = rest[number_end..]
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .map_or(rest.len(), |i| number_end + i);
        total_ms += parse_duration_ms(&rest[..unit_end]).map_err(|_| bad())?;
        rest = &rest[unit_end..];
    }
    Ok((total_ms / 1000.0).ceil() as u64)
}

/// Bytes in a Compose size: a number with an optional unit `b`, `k`/`kb`, `m`/`mb`, `g`/`gb`
/// (any case, 1024-based, as Docker reads them); fractions are allowed (`1.5g`).
pub fn compose_bytes(value: &Value) -> Result<u64, String> {
    let text = scalar_text(value).ok_or_else(|| format!("a size such as `512m`, not {value}"))?;
    let bad = || format!("bytes or a size such as `512m`, `1g`, `64mb`, not `{text}`");
    let lower = text.trim().to_ascii_lowercase();
    let split = lower
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(lower.len());
    let (number, unit) = lower.split_at(split);
    let number: f64 = number.parse().map_err(|_| bad())?;
    let factor: f64 = match unit.trim() {
        "" | "b" => 1.0,
        "k" | "kb" | "ki" | "kib" => 1024.0,
        "m" | "mb" | "mi" | "mib" => 1024.0 * 1024.0,
        "g" | "gb" | "gi" | "gib" => 1024.0 * 1024.0 * 1024.0,
        _ => return Err(bad()),
    };
    let bytes = number * factor;
    if !bytes.is_finite() || bytes >= u64::MAX as f64 {
        return Err(bad());
    }
    Ok(bytes.round() as u64)
}

/// Millicores in a Compose `cpus` value (`0.5`, `"1.5"`).
pub fn compose_millicores(value: &Value) -> Result<u64, String> {
    let text =
        scalar_text(value).ok_or_else(|| format!("a CPU count such as `0.5`, not {value}"))?;
    let cpus: f64 = text
        .trim()
        .parse()
        .ok()
        .filter(|c: &f64| c.is_finite() && *c > 0.0 && *c <= 1024.0)
        .ok_or_else(|| format!("a CPU count above 0 such as `0.5` or `2`, not `{text}`"))?;
    Ok((cpus * 1000.0).round() as u64)
}

/// The text of a string, number or boolean.
pub fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A port or a range of ports (`8080`, `8000-8010`).
pub fn port_range(text: &str) -> Result<Vec<u16>, String> {
    let bad = || format!("a port or a range of ports, 1-65535 (`8080`, `8000-8010`), not `{text}`");
    let parse = |p: &str| {
        p.trim()
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(bad)
    };
    let (first, last) = match text.split_once('-') {
        Some((a, b)) => (parse(a)?, parse(b)?),
        None => {
            let p = parse(text)?;
            (p, p)
        }
    };
    if last < first || u32::from(last - first) >= MAX_PORT_RANGE {
        return Err(format!(
            "a range that runs upwards and holds at most {MAX_PORT_RANGE} ports, not `{text}`"
        ));
    }
    Ok((first..=last).collect())
}

/// A host address in a port that Orion can honour: none, or every address (`0.0.0.0`, `::`).
/// Orion publishes on each node's publish address, so a specific address cannot be kept.
pub fn check_host_ip(ip: &str) -> Result<(), String> {
    match ip.trim_matches(|c| c == '[' || c == ']') {
        "" | "0.0.0.0" | "::" => Ok(()),
        other => Err(format!(
            "no host address (Orion publishes ports on each node's publish address, \
             runtime.publishAddress in orion.yaml; `{other}` cannot be kept)"
        )),
    }
}

/// The short port syntax `[[host_ip:]published:]target[/protocol]`, ranges expanded.
pub fn short_ports(text: &str) -> Result<Vec<PortSpec>, String> {
    let (spec, protocol) = match text.rsplit_once('/') {
        Some((spec, proto)) => (spec, protocol_named(proto)?),
        None => (text, Protocol::Tcp),
    };
    // An IPv6 host address is bracketed: `[::1]:8080:80`.
    let (host_ip, spec) = match spec.strip_prefix('[') {
        Some(rest) => {
            let (ip, tail) = rest.split_once("]:").ok_or_else(|| {
                format!("`{text}`: an IPv6 address must be followed by `:published:target`")
            })?;
            (ip, tail)
        }
        None => match spec.matches(':').count() {
            2 => spec.split_once(':').unwrap_or(("", spec)),
            _ => ("", spec),
        },
    };
    check_host_ip(host_ip)?;
    let (published, target) = match spec.split_once(':') {
        Some((p, t)) => (Some(p), t),
        None => (None, spec),
    };
    let targets = port_range(target)?;
    let published = match published.filter(|p| !p.is_empty()) {
        Some(p) => port_range(p)?,
        None => Vec::new(),
    };
    pair_ports(text, &targets, &published, protocol, None)
}

/// Pairs container ports with host ports: none (dynamic), one each, or one host port for a
/// single container port.
pub fn pair_ports(
    text: &str,
    targets: &[u16],
    published: &[u16],
    protocol: Protocol,
    name: Option<String>,
) -> Result<Vec<PortSpec>, String> {
    if !published.is_empty() && published.len() != targets.len() {
        return Err(format!(
            "as many host ports as container ports (`{text}` has {} for {})",
            published.len(),
            targets.len()
        ));
    }
    if name.is_some() && targets.len() > 1 {
        return Err(format!(
            "a single port when the port is named (`{text}` is a range)"
        ));
    }
    Ok(targets
        .iter()
        .enumerate()
        .map(|(i, &container_port)| PortSpec {
            container_port,
            host_port: published.get(i).copied().unwrap_or(0),
            protocol,
            name: name.clone(),
        })
        .collect())
}

/// `tcp` or `udp` (`sctp` is refused).
pub fn protocol_named(name: &str) -> Result<Protocol, String> {
    match name.to_ascii_lowercase().as_str() {
        "tcp" => Ok(Protocol::Tcp),
        "udp" => Ok(Protocol::Udp),
        other => Err(format!("tcp or udp as the protocol, not `{other}`")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> BTreeMap<String, String> {
        [("TAG", "1.2"), ("EMPTY", "")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }

    #[test]
    fn interpolation_follows_compose() {
        let mut unset = Vec::new();
        let i = |t: &str, unset: &mut Vec<String>| interpolate(t, &vars(), unset);
        assert_eq!(i("nginx:${TAG}", &mut unset).unwrap(), "nginx:1.2");
        assert_eq!(i("nginx:$TAG-x", &mut unset).unwrap(), "nginx:1.2-x");
        assert_eq!(i("${EMPTY:-d}/${EMPTY-d}", &mut unset).unwrap(), "d/");
        assert_eq!(i("${NOPE-${TAG}}", &mut unset).unwrap(), "1.2");
        assert_eq!(i("${TAG:+set}${NOPE:+set}", &mut unset).unwrap(), "set");
        assert_eq!(i("cost $$5", &mut unset).unwrap(), "cost $5");
        assert!(unset.is_empty());
        assert_eq!(i("a${MISSING}b", &mut unset).unwrap(), "ab");
        assert_eq!(unset, ["MISSING"]);
        assert_eq!(
            i("${NOPE:?must be set}", &mut unset).unwrap_err(),
            "NOPE: must be set"
        );
        assert!(i("${TAG", &mut unset).is_err());
        assert!(i("a $ b", &mut unset).is_err());
        assert!(i("${TAG/x/y}", &mut unset).is_err());
    }

    #[test]
    fn go_durations_add_up_and_round_up() {
        assert_eq!(go_duration_secs("30s"), Ok(30));
        assert_eq!(go_duration_secs("1m30s"), Ok(90));
        assert_eq!(go_duration_secs("1h"), Ok(3600));
        assert_eq!(go_duration_secs("500ms"), Ok(1));
        assert_eq!(go_duration_secs("1.5s"), Ok(2));
        assert!(go_duration_secs("").is_err());
        assert!(go_duration_secs("5 parsecs").is_err());
        assert!(go_duration_secs("s").is_err());
    }

    #[test]
    fn sizes_and_cpus() {
        assert_eq!(compose_bytes(&Value::from("512m")), Ok(512 << 20));
        assert_eq!(compose_bytes(&Value::from("1GB")), Ok(1 << 30));
        assert_eq!(compose_bytes(&Value::from(1024)), Ok(1024));
        assert!(compose_bytes(&Value::from("1 parsec")).is_err());
        assert_eq!(compose_millicores(&Value::from("0.5")), Ok(500));
        assert_eq!(compose_millicores(&Value::from(2)), Ok(2000));
        assert!(compose_millicores(&Value::from("-1")).is_err());
    }

    #[test]
    fn short_ports_expand_ranges_and_refuse_host_addresses() {
        let p = short_ports("8080:80").unwrap();
        assert_eq!((p[0].host_port, p[0].container_port), (8080, 80));
        let p = short_ports("9000-9001:80-81/udp").unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!((p[1].host_port, p[1].container_port), (9001, 81));
        assert_eq!(p[1].protocol, Protocol::Udp);
        assert_eq!(short_ports("3000").unwrap()[0].host_port, 0);
        assert_eq!(short_ports("0.0.0.0:80:80").unwrap()[0].host_port, 80);
        assert!(
            short_ports("127.0.0.1:80:80")
                .unwrap_err()
                .contains("publish address")
        );
        assert!(
            short_ports("[::1]:80:80")
                .unwrap_err()
                .contains("publish address")
        );
        assert!(short_ports("80:80/sctp").is_err());
        assert!(short_ports("1-1000").is_err());
        assert!(short_ports("8080-8081:80").is_err());
    }
}
