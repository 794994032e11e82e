//! Reading specs from YAML or JSON. (Skeleton: the spec work fills in path-aware errors,
//! "did you mean" hints, shorthand forms and unit parsing.)

use super::ServiceSpec;
use crate::error::{Error, ParseError};

/// The document format of a spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpecFormat {
    Yaml,
    Json,
    /// JSON when the first non-blank character is `{` or `[`, otherwise YAML.
    Auto,
}

/// Parses and validates one service spec.
pub fn parse_spec(text: &str, format: SpecFormat) -> Result<ServiceSpec, Error> {
    let spec: ServiceSpec = match format {
        SpecFormat::Json => serde_json::from_str(text).map_err(|e| ParseError {
            path: String::new(),
            message: e.to_string(),
            location: Some((e.line(), e.column())),
        })?,
        _ => serde_saphyr::from_str(text).map_err(|e| ParseError {
            path: String::new(),
            message: e.to_string(),
            location: None,
        })?,
    };
    spec.validate()?;
    Ok(spec)
}

/// Parses and validates a list of specs (or a config document with a `services:` list).
pub fn parse_specs(text: &str, format: SpecFormat) -> Result<Vec<ServiceSpec>, Error> {
    parse_spec(text, format).map(|s| vec![s])
}

/// Serde helpers for durations written as `5ms`, `1.5s` or a number of milliseconds.
pub mod millis {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(*v)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        f64::deserialize(d)
    }
}

/// Serde helpers for bandwidths written as `100Mbps`, `1Gbps` or a number of Mbit/s.
pub mod mbps {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(*v)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        f64::deserialize(d)
    }
}
