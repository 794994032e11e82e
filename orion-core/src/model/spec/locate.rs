//! Finding the line and column of a field path (`ports[1].host_port`) in the source text.
//!
//! Specs are read from a generic value, which has no positions. When reading fails at a path,
//! the text is walked once more along that path with a small seed that fails on purpose at the
//! target node; the format's own error then carries the node's line and column. Used for
//! errors only, so the text has already parsed once.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::SpecFormat;

/// The message of the deliberate error raised at the target node.
const FOUND: &str = "orion-spec-locate: found";

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Key(String),
    Index(usize),
}

/// Splits `a.b[1].c` into segments; `None` for a path it cannot read.
fn segments(path: &str) -> Option<Vec<Segment>> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let (key, mut rest) = part.split_once('[').map_or((part, ""), |(k, r)| (k, r));
        if !key.is_empty() {
            out.push(Segment::Key(key.to_owned()));
        }
        while !rest.is_empty() {
            let (index, after) = rest.split_once(']')?;
            out.push(Segment::Index(index.parse().ok()?));
            rest = after.strip_prefix('[').unwrap_or(after);
        }
    }
    Some(out)
}

/// 1-based line and column of the node at `path` in a single-document `text`, when found.
pub(super) fn locate(text: &str, format: SpecFormat, path: &str) -> Option<(usize, usize)> {
    let path = segments(path)?;
    match format {
        SpecFormat::Json => {
            let mut de = serde_json::Deserializer::from_str(text);
            match (Locate(&path)).deserialize(&mut de) {
                Err(e) if e.to_string().starts_with(FOUND) => Some((e.line(), e.column())),
                _ => None,
            }
        }
        _ => {
            let options = super::parse::yaml_options();
            let result =
                serde_saphyr::with_deserializer_from_str_with_options(text, options, |de| {
                    Locate(&path).deserialize(de)
                });
            match result {
                Err(e) if e.without_snippet().to_string().starts_with(FOUND) => e
                    .location()
                    .map(|l| (l.line() as usize, l.column() as usize))
                    .filter(|&(line, _)| line > 0),
                _ => None,
            }
        }
    }
}

/// Walks to the node at the remaining path and fails there with [`FOUND`].
struct Locate<'p>(&'p [Segment]);

impl<'de> DeserializeSeed<'de> for Locate<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Locate<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let Some((Segment::Key(want), rest)) = self.0.split_first() else {
            return Err(de::Error::custom(FOUND));
        };
        while let Some(key) = map.next_key::<KeyText>()? {
            if key.0 == *want {
                return map.next_value_seed(Locate(rest));
            }
            map.next_value::<IgnoredAny>()?;
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let Some((Segment::Index(want), rest)) = self.0.split_first() else {
            return Err(de::Error::custom(FOUND));
        };
        let mut index = 0;
        loop {
            if index == *want {
                return seq.next_element_seed(Locate(rest)).map(|_| ());
            }
            if seq.next_element::<IgnoredAny>()?.is_none() {
                return Ok(());
            }
            index += 1;
        }
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        self.scalar()
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        self.scalar()
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        self.scalar()
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        self.scalar()
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        self.scalar()
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.scalar()
    }
}

impl Locate<'_> {
    /// A scalar is the target when the path ends here; otherwise the path is not in the text.
    fn scalar<E: de::Error>(self) -> Result<(), E> {
        if self.0.is_empty() {
            Err(E::custom(FOUND))
        } else {
            Ok(())
        }
    }
}

/// A mapping key read as text, whatever scalar it is.
struct KeyText(String);

impl<'de> de::Deserialize<'de> for KeyText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = String;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a key")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
                Ok(v.to_owned())
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
        d.deserialize_any(V).map(KeyText)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_split_into_segments() {
        use Segment::*;
        assert_eq!(
            segments("scheduling.affinity[0].max_latency_ms"),
            Some(vec![
                Key("scheduling".into()),
                Key("affinity".into()),
                Index(0),
                Key("max_latency_ms".into())
            ])
        );
        assert_eq!(segments("[2][1]"), Some(vec![Index(2), Index(1)]));
        assert_eq!(segments("a[x]"), None);
    }

    #[test]
    fn finds_nodes_in_yaml_and_json() {
        let yaml = "name: web\nports:\n  - 80\n  - host_port: lots\n";
        assert_eq!(
            locate(yaml, SpecFormat::Yaml, "ports[1].host_port"),
            Some((4, 16))
        );
        assert_eq!(locate(yaml, SpecFormat::Yaml, "ports[7]"), None);
        let json = "{\"name\": \"web\",\n \"ports\": [80, {\"host_port\": \"lots\"}]}";
        let (line, _) = locate(json, SpecFormat::Json, "ports[1].host_port").expect("found");
        assert_eq!(line, 2);
    }
}
