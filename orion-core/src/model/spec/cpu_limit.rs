//! `resources.cpu_limit`: how much CPU a replica may use, apart from what the scheduler reserves
//! for it (`resources.cpu_millicores`).

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use super::units;

/// What `resources.cpu_limit` accepts, for error messages.
const FORMS: &str = "`reserved` (the default: capped at cpu_millicores), `none` (no cap), \
                     or a number of millicores at least cpu_millicores (`800`, `800m`, `0.8cpu`)";

/// The cap on a replica's CPU. The scheduler always reserves `cpu_millicores`; the limit only
/// decides what the runtime enforces.
///
/// - [`CpuLimit::Reserved`] (the default) caps the replica at its reservation: a CFS quota of
///   `cpu_millicores` (Swarm's `--limit-cpu` equal to `--reserve-cpu`; Kubernetes' limit equal
///   to its request).
/// - [`CpuLimit::None`] sets no quota: the replica may use idle CPU, and under contention gets CPU
///   in proportion to its reservation (CPU shares / `cpu.weight`), like a Kubernetes request
///   without a limit or a Nomad task without `cpu_hard_limit`.
/// - [`CpuLimit::Millicores`] caps it at that many millicores, at least the reservation
///   (validation refuses less).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum CpuLimit {
    #[default]
    Reserved,
    None,
    Millicores(u64),
}

impl CpuLimit {
    /// The cap in millicores for a replica that reserves `reserved`, or `None` for no cap.
    pub fn cap(self, reserved: u64) -> Option<u64> {
        match self {
            CpuLimit::Reserved => Some(reserved),
            CpuLimit::None => None,
            CpuLimit::Millicores(m) => Some(m),
        }
    }

    /// True for the default, which specs leave out when written back.
    pub fn is_reserved(&self) -> bool {
        matches!(self, CpuLimit::Reserved)
    }
}

impl Serialize for CpuLimit {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            CpuLimit::Reserved => s.serialize_str("reserved"),
            CpuLimit::None => s.serialize_str("none"),
            CpuLimit::Millicores(m) => s.serialize_u64(*m),
        }
    }
}

impl<'de> Deserialize<'de> for CpuLimit {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct LimitVisitor;
        impl<'de> Visitor<'de> for LimitVisitor {
            type Value = CpuLimit;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(FORMS)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<CpuLimit, E> {
                Ok(CpuLimit::Millicores(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<CpuLimit, E> {
                u64::try_from(v)
                    .map(CpuLimit::Millicores)
                    .map_err(|_| E::custom(format!("{v} is negative; expected {FORMS}")))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<CpuLimit, E> {
                if v.fract() == 0.0 && v >= 0.0 && v < u64::MAX as f64 {
                    Ok(CpuLimit::Millicores(v as u64))
                } else {
                    Err(E::custom(format!(
                        "{v} is not a whole number of millicores; expected {FORMS}"
                    )))
                }
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<CpuLimit, E> {
                match v.trim() {
                    "reserved" => Ok(CpuLimit::Reserved),
                    "none" => Ok(CpuLimit::None),
                    text => units::parse_millicores(text)
                        .map(CpuLimit::Millicores)
                        .map_err(|e| E::custom(format!("{e}; expected {FORMS}"))),
                }
            }
        }
        d.deserialize_any(LimitVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(json: &str) -> Result<CpuLimit, String> {
        serde_json::from_str(json).map_err(|e| e.to_string())
    }

    #[test]
    fn every_form_reads_and_writes_back() {
        assert_eq!(read("\"reserved\""), Ok(CpuLimit::Reserved));
        assert_eq!(read("\"none\""), Ok(CpuLimit::None));
        assert_eq!(read("800"), Ok(CpuLimit::Millicores(800)));
        assert_eq!(read("\"800m\""), Ok(CpuLimit::Millicores(800)));
        assert_eq!(read("\"1.5cpu\""), Ok(CpuLimit::Millicores(1500)));
        for limit in [
            CpuLimit::Reserved,
            CpuLimit::None,
            CpuLimit::Millicores(250),
        ] {
            let text = serde_json::to_string(&limit).unwrap();
            assert_eq!(read(&text), Ok(limit), "{text}");
        }
    }

    #[test]
    fn bad_forms_name_what_is_accepted() {
        for bad in ["-5", "\"unlimited\"", "2.5", "true"] {
            let err = read(bad).unwrap_err();
            assert!(err.contains("`none`"), "{bad}: {err}");
        }
    }

    #[test]
    fn the_cap_follows_the_limit() {
        assert_eq!(CpuLimit::Reserved.cap(100), Some(100));
        assert_eq!(CpuLimit::None.cap(100), None);
        assert_eq!(CpuLimit::Millicores(400).cap(100), Some(400));
    }
}
