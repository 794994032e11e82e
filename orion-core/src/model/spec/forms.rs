//! The shorthand forms users write, as serde helpers: `KEY=value` lists or maps for env,
//! `8080` / `"8080:80/udp"` / objects for ports, `src:dst[:ro]` for volumes, and quantities with
//! units. Every helper deserializes through `deserialize_any`, so it works from the generic value
//! both YAML and JSON are parsed into, and from JSON stored by the cluster.
//!
//! Serialization always writes the canonical form (lists of strings, plain numbers, port
//! objects, volume strings), so `parse(to_yaml(spec)) == spec`.

use std::fmt;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use super::units;
use super::{PortSpec, Protocol, VolumeSpec};

/// A scalar read as text: strings as they are, numbers and booleans in their usual spelling
/// (`- 10` in a YAML command list is the argument `"10"`).
struct ScalarText;

impl<'de> Visitor<'de> for ScalarText {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string (or a number or boolean, taken as text)")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
        Ok(v.to_owned())
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<String, E> {
        Ok(v)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<String, E> {
        Ok(v.to_string())
    }
}

/// One scalar read as text (see [`ScalarText`]).
struct Text(String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ScalarText).map(Text)
    }
}

/// A list of strings whose entries may be written as numbers or booleans (commands). A single
/// string is refused rather than split, since splitting cannot know the user's quoting.
pub fn string_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    struct ListVisitor;
    impl<'de> Visitor<'de> for ListVisitor {
        type Value = Vec<String>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a list of strings, e.g. [\"npm\", \"start\"]")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Err(E::custom(format!(
                "got the single string {v:?}; write the command as a list, e.g. [\"npm\", \"start\"] \
                 (for a shell command: [\"sh\", \"-c\", \"...\"])"
            )))
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(Text(item)) = seq.next_element()? {
                out.push(item);
            }
            Ok(out)
        }
    }
    d.deserialize_any(ListVisitor)
}

/// [`string_list`] for an optional field (`null` is unset).
pub fn optional_string_list<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Vec<String>>, D::Error> {
    #[derive(Deserialize)]
    struct List(#[serde(deserialize_with = "string_list")] Vec<String>);
    Ok(Option::<List>::deserialize(d)?.map(|l| l.0))
}

/// A map of strings whose values may be written as numbers or booleans (labels, selectors):
/// `gpu: true` is the label `gpu=true`.
pub fn string_map<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<std::collections::BTreeMap<String, String>, D::Error> {
    let map: std::collections::BTreeMap<String, Text> = Deserialize::deserialize(d)?;
    Ok(map.into_iter().map(|(k, v)| (k, v.0)).collect())
}

/// Environment: a list of `KEY=value` strings, or a map `KEY: value` (a null value is empty).
/// Written back as the list.
pub fn env<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    struct EnvVisitor;
    impl<'de> Visitor<'de> for EnvVisitor {
        type Value = Vec<String>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a list of `KEY=value` strings or a map of KEY: value")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(Text(entry)) = seq.next_element()? {
                out.push(entry);
            }
            Ok(out)
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(key) = map.next_key::<String>()? {
                let value: Option<Text> = map.next_value()?;
                out.push(format!("{key}={}", value.map(|t| t.0).unwrap_or_default()));
            }
            Ok(out)
        }
    }
    d.deserialize_any(EnvVisitor)
}

/// `T` read from a mapping only. Serde's derived structs also accept a list of values by
/// position (`resources: [500, 1000]`), which is never what a spec author means.
#[derive(Debug)]
pub struct MapOnly<T>(pub T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for MapOnly<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct MapVisitor<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for MapVisitor<T> {
            type Value = T;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping of field: value")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map))
            }
        }
        d.deserialize_any(MapVisitor(std::marker::PhantomData))
            .map(MapOnly)
    }
}

/// A struct field read from a mapping only (see [`MapOnly`]).
pub fn mapping<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<T, D::Error> {
    MapOnly::deserialize(d).map(|m| m.0)
}

/// An optional struct field read from a mapping only (see [`MapOnly`]); null is `None`.
pub fn optional_mapping<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<T>, D::Error> {
    Option::<MapOnly<T>>::deserialize(d).map(|o| o.map(|m| m.0))
}

/// A number or a string with a unit, before conversion.
enum Quantity {
    Unsigned(u64),
    Negative(i64),
    Float(f64),
    Text(String),
}

struct QuantityVisitor(&'static str);

impl<'de> Visitor<'de> for QuantityVisitor {
    type Value = Quantity;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Quantity, E> {
        Ok(Quantity::Unsigned(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Quantity, E> {
        Ok(match u64::try_from(v) {
            Ok(v) => Quantity::Unsigned(v),
            Err(_) => Quantity::Negative(v),
        })
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Quantity, E> {
        Ok(Quantity::Float(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Quantity, E> {
        Ok(Quantity::Text(v.to_owned()))
    }
}

/// Reads a whole-number quantity: integers as they are (no float rounding), whole floats, and
/// strings through `text`.
fn whole_quantity<'de, D: Deserializer<'de>>(
    d: D,
    expecting: &'static str,
    what: &str,
    text: impl FnOnce(&str) -> Result<u64, String>,
) -> Result<u64, D::Error> {
    let result = match d.deserialize_any(QuantityVisitor(expecting))? {
        Quantity::Unsigned(v) => Ok(v),
        Quantity::Negative(v) => Err(format!("{v} is negative; expected {expecting}")),
        Quantity::Float(v) if v.fract() == 0.0 && v >= 0.0 && v < u64::MAX as f64 => Ok(v as u64),
        Quantity::Float(v) => Err(format!("{v} is not a whole number of {what}")),
        Quantity::Text(s) => text(&s),
    };
    result.map_err(de::Error::custom)
}

/// Reads a real-number quantity: numbers as they are, strings through `text`.
fn real_quantity<'de, D: Deserializer<'de>>(
    d: D,
    expecting: &'static str,
    text: impl FnOnce(&str) -> Result<f64, String>,
) -> Result<f64, D::Error> {
    let result = match d.deserialize_any(QuantityVisitor(expecting))? {
        Quantity::Unsigned(v) => Ok(v as f64),
        Quantity::Negative(v) => Ok(v as f64),
        Quantity::Float(v) => Ok(v),
        Quantity::Text(s) => text(&s),
    };
    result.map_err(de::Error::custom)
}

/// Serde helpers for durations in whole seconds: `30`, `"30s"`, `"2m"`.
pub mod seconds {
    use super::*;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        whole_quantity(
            d,
            "a number of seconds or a duration such as `30s`, `2m`",
            "seconds",
            units::parse_duration_secs,
        )
    }

    pub fn serialize<S: Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(*v)
    }
}

/// Deserializer for durations in milliseconds (written back as a plain number): `5`, `"5ms"`, `"1.5s"`.
pub mod millis {
    use super::*;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        real_quantity(d, units::DURATION_FORMS, units::parse_duration_ms)
    }
}

/// Deserializer for bandwidths in Mbit/s (written back as a plain number): `100`, `"100Mbps"`, `"1Gbps"`.
pub mod mbps {
    use super::*;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        real_quantity(d, units::BANDWIDTH_FORMS, units::parse_bandwidth_mbps)
    }
}

/// Serde helpers for sizes in bytes: `268435456`, `"256Mi"`, `"1G"`.
pub mod bytes {
    use super::*;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        whole_quantity(d, units::SIZE_FORMS, "bytes", units::parse_bytes)
    }

    pub fn serialize<S: Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(*v)
    }
}

/// Serde helpers for CPU in millicores: `500`, `"500m"`, `"0.5cpu"`.
pub mod millicores {
    use super::*;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        whole_quantity(
            d,
            "a number of millicores or `500m`, `0.5cpu`",
            "millicores",
            units::parse_millicores,
        )
    }

    pub fn serialize<S: Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(*v)
    }
}

/// The full object form of a port, as the derived parser reads it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PortObject {
    #[serde(alias = "containerPort", alias = "target")]
    container_port: u16,
    #[serde(default, alias = "hostPort", alias = "published")]
    host_port: u16,
    #[serde(default)]
    protocol: Protocol,
    #[serde(default)]
    name: Option<String>,
}

/// Parses `"80"`, `"8080:80"`, `"8080:80/udp"`: `[host:]container[/protocol]`.
pub fn parse_port(text: &str) -> Result<PortSpec, String> {
    const FORMS: &str = "`80`, `8080:80` or `8080:80/udp` ([host_port:]container_port[/tcp|udp])";
    let (ports, protocol) = match text.trim().split_once('/') {
        None => (text.trim(), Protocol::Tcp),
        Some((ports, "tcp")) => (ports, Protocol::Tcp),
        Some((ports, "udp")) => (ports, Protocol::Udp),
        Some((_, other)) => {
            return Err(format!(
                "`{text}`: unknown protocol `{other}`; expected `tcp` or `udp`"
            ));
        }
    };
    let number = |s: &str| {
        s.trim().parse::<u16>().map_err(|_| {
            format!("`{text}`: `{s}` is not a port number (0-65535); expected {FORMS}")
        })
    };
    let parts: Vec<&str> = ports.split(':').collect();
    let (host_port, container_port) = match parts.as_slice() {
        [container] => (0, number(container)?),
        [host, container] => (number(host)?, number(container)?),
        _ => {
            return Err(format!(
                "`{text}` has {} parts; binding a host address is not supported, expected {FORMS}",
                parts.len()
            ));
        }
    };
    Ok(PortSpec {
        container_port,
        host_port,
        protocol,
        name: None,
    })
}

impl<'de> Deserialize<'de> for PortSpec {
    /// Accepts a container port number, a `"8080:80/udp"` string, or the full object.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct PortVisitor;
        impl<'de> Visitor<'de> for PortVisitor {
            type Value = PortSpec;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "a container port number, a string `[host_port:]container_port[/tcp|udp]`, \
                     or an object with container_port, host_port, protocol, name",
                )
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<PortSpec, E> {
                let container_port = u16::try_from(v).map_err(|_| {
                    E::custom(format!("{v} is not a port number; expected 1-65535"))
                })?;
                Ok(PortSpec {
                    container_port,
                    host_port: 0,
                    protocol: Protocol::Tcp,
                    name: None,
                })
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<PortSpec, E> {
                Err(E::custom(format!(
                    "{v} is not a port number; expected 1-65535"
                )))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<PortSpec, E> {
                parse_port(v).map_err(E::custom)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<PortSpec, A::Error> {
                let o = PortObject::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(PortSpec {
                    container_port: o.container_port,
                    host_port: o.host_port,
                    protocol: o.protocol,
                    name: o.name,
                })
            }
        }
        d.deserialize_any(PortVisitor)
    }
}

/// Parses `src:dst`, `src:dst:ro` or `src:dst:rw`.
pub fn parse_volume(text: &str) -> Result<VolumeSpec, String> {
    const FORMS: &str = "`/host/path:/container/path`, `volume_name:/container/path`, \
                         optionally followed by `:ro` or `:rw`";
    let parts: Vec<&str> = text.split(':').collect();
    let (source, target, read_only) = match parts.as_slice() {
        [source, target] => (*source, *target, false),
        [source, target, "ro"] => (*source, *target, true),
        [source, target, "rw"] => (*source, *target, false),
        [_, _, mode] => {
            return Err(format!(
                "`{text}`: unknown mode `{mode}`; expected `ro` or `rw`"
            ));
        }
        _ => return Err(format!("`{text}` is not a volume; expected {FORMS}")),
    };
    if source.is_empty() || target.is_empty() {
        return Err(format!(
            "`{text}` has an empty source or target; expected {FORMS}"
        ));
    }
    Ok(VolumeSpec {
        source: source.to_owned(),
        target: target.to_owned(),
        read_only,
    })
}

impl fmt::Display for VolumeSpec {
    /// The string form: `source:target`, with `:ro` when read-only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.source, self.target)?;
        if self.read_only {
            f.write_str(":ro")?;
        }
        Ok(())
    }
}

impl Serialize for VolumeSpec {
    /// Always the string form (see [`VolumeSpec`]'s `Display`).
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// The object form of a volume, as the derived parser reads it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VolumeObject {
    source: String,
    target: String,
    #[serde(default, alias = "readOnly")]
    read_only: bool,
}

impl<'de> Deserialize<'de> for VolumeSpec {
    /// Accepts the string form `src:dst[:ro|:rw]` or an object `{source, target, read_only}`.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct VolumeVisitor;
        impl<'de> Visitor<'de> for VolumeVisitor {
            type Value = VolumeSpec;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a volume string `source:target[:ro]` or an object with source, target, read_only")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<VolumeSpec, E> {
                parse_volume(v).map_err(E::custom)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<VolumeSpec, A::Error> {
                let o = VolumeObject::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(VolumeSpec {
                    source: o.source,
                    target: o.target,
                    read_only: o.read_only,
                })
            }
        }
        d.deserialize_any(VolumeVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_strings() {
        let p = parse_port("8080:80/udp").unwrap();
        assert_eq!(
            (p.host_port, p.container_port, p.protocol),
            (8080, 80, Protocol::Udp)
        );
        let p = parse_port("80").unwrap();
        assert_eq!(
            (p.host_port, p.container_port, p.protocol),
            (0, 80, Protocol::Tcp)
        );
        assert!(
            parse_port("80/sctp")
                .unwrap_err()
                .contains("`tcp` or `udp`")
        );
        assert!(
            parse_port("127.0.0.1:80:80")
                .unwrap_err()
                .contains("host address")
        );
        assert!(
            parse_port("99999")
                .unwrap_err()
                .contains("not a port number")
        );
    }

    #[test]
    fn volume_strings_round_trip() {
        for text in ["/a:/b", "data:/var/lib/data", "/etc/x:/etc/x:ro"] {
            assert_eq!(parse_volume(text).unwrap().to_string(), text);
        }
        assert!(parse_volume("/a:/b:rw").is_ok_and(|v| !v.read_only));
        assert!(
            parse_volume("/a:/b:rx")
                .unwrap_err()
                .contains("`ro` or `rw`")
        );
        assert!(parse_volume("/only").is_err());
        assert!(parse_volume(":/b").unwrap_err().contains("empty source"));
    }
}
