//! `security:` in orion.yaml: node-to-node security settings (see docs/security.md).
//!
//! ```yaml
//! security:
//!   certRotation: 24h     # node certificate lifetime; renewed when a third is left; at least 1h
//! ```

use std::time::Duration;

use orion_consensus::security::RotationPeriod;
use serde::{Deserialize, Serialize};

use super::humantime_serde_compat;

/// Node-to-node security settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecuritySection {
    /// How long a node certificate is valid; it is renewed when a third of it is left. At least
    /// 1 h, at most 10 years; default 24 h.
    #[serde(with = "humantime_serde_compat", alias = "certRotation")]
    pub cert_rotation: Duration,
}

impl Default for SecuritySection {
    fn default() -> Self {
        SecuritySection {
            cert_rotation: RotationPeriod::default().get(),
        }
    }
}

impl SecuritySection {
    /// The rotation period, checked.
    pub fn rotation(&self) -> anyhow::Result<RotationPeriod> {
        RotationPeriod::new(self.cert_rotation).map_err(|_| {
            anyhow::anyhow!(
                "security.certRotation: got {}, expected at least 1h and at most 10 years \
                 (e.g. 24h)",
                humantime::format_duration(self.cert_rotation)
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rotation_under_an_hour_is_refused_saying_what_is_accepted() {
        let s = SecuritySection {
            cert_rotation: Duration::from_secs(59 * 60),
        };
        let err = s.rotation().unwrap_err().to_string();
        assert!(
            err.contains("security.certRotation") && err.contains("at least 1h"),
            "{err}"
        );
        assert_eq!(
            SecuritySection::default().rotation().unwrap().get(),
            Duration::from_secs(24 * 3600)
        );
    }
}
