//! Safe specs: what a spec asks of the host it runs on, and the policy that allows it.
//!
//! A spec can reach outside its container in three ways, each a [`HostFeature`]:
//! - a **bind mount** of a host path (`volumes: ["/data:/data"]`);
//! - **host networking** (`network_mode: host`);
//! - a mount of the **container engine's socket** (or of a directory holding it, such as `/`,
//!   `/run` or `/var/run`), which hands the container the whole machine.
//!
//! [`ServiceSpec::host_access`] lists what a spec asks for; [`ServiceSpec::check_host_access`]
//! refuses every request a [`HostAccessPolicy`] does not allow, naming the field, the value and
//! the setting that would allow it. The default policy allows nothing. Who may *use* an allowed
//! feature (the `admin` role in the `orion` API) is the caller's decision, not this module's.
//!
//! Paths are compared lexically after normalisation (repeated and trailing `/` removed); a
//! source with `.` or `..` components is refused outright, so `/srv/data/../../etc` cannot pass
//! as being under `/srv/data`. Symbolic links on the host are not resolved (the spec may run on
//! another machine): allow only directories whose contents you control.
//!
//! [`unsafe_char`] finds the control and bidirectional-override characters that validation
//! refuses in names, images, env entries and labels (they hide or reorder text in terminals and
//! logs).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::{NetworkMode, ServiceSpec};
use crate::error::ValidationErrors;

/// Container engine sockets Orion knows (Docker, containerd, Podman, CRI-O). A bind of one of
/// them, or of a directory above one, is an [`HostFeature::EngineSocket`] request.
pub const ENGINE_SOCKETS: [&str; 7] = [
    "/var/run/docker.sock",
    "/run/docker.sock",
    "/run/containerd/containerd.sock",
    "/var/run/docker/containerd/containerd.sock",
    "/run/podman/podman.sock",
    "/var/run/crio/crio.sock",
    "/run/crio/crio.sock",
];

/// One way a spec reaches outside its container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum HostFeature {
    /// A bind mount of a host path; allowed per path by [`HostAccessPolicy::paths`].
    BindMount,
    /// `network_mode: host`.
    HostNetwork,
    /// A bind of the container engine's socket, or of a directory holding one.
    EngineSocket,
}

impl HostFeature {
    /// The name used in orion.yaml (`hostAccess.features`) and in messages.
    pub fn name(self) -> &'static str {
        match self {
            HostFeature::BindMount => "bindMount",
            HostFeature::HostNetwork => "hostNetwork",
            HostFeature::EngineSocket => "engineSocket",
        }
    }
}

/// One request of a spec for host access: the field that asks, its value and the feature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostAccess {
    /// The field path, e.g. `volumes[0].source` or `network_mode`.
    pub path: String,
    /// The value asked for (the host path, or `host`).
    pub value: String,
    pub feature: HostFeature,
}

/// What a node allows specs to ask of its hosts. The default allows nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HostAccessPolicy {
    /// Host directories that may be bind-mounted, with everything under them (absolute paths).
    pub paths: Vec<String>,
    /// Features allowed besides bind mounts of [`HostAccessPolicy::paths`]: `hostNetwork`,
    /// `engineSocket`. (`bindMount` here is refused: bind mounts are allowed per path.)
    pub features: BTreeSet<HostFeature>,
}

/// Most entries of [`HostAccessPolicy::paths`].
pub const MAX_ALLOWED_PATHS: usize = 64;

impl HostAccessPolicy {
    /// Checks the policy itself: absolute, normalisable paths (at most [`MAX_ALLOWED_PATHS`]),
    /// and no `bindMount` among the features. The error names the entry and what is accepted.
    pub fn check(&self) -> Result<(), String> {
        if self.paths.len() > MAX_ALLOWED_PATHS {
            return Err(format!(
                "paths: {} entries, expected at most {MAX_ALLOWED_PATHS}",
                self.paths.len()
            ));
        }
        for (i, p) in self.paths.iter().enumerate() {
            if normalize(p).is_none() {
                return Err(format!(
                    "paths[{i}]: got {p:?}, expected an absolute host path without `.` or `..` \
                     components, e.g. /srv/data"
                ));
            }
        }
        if self.features.contains(&HostFeature::BindMount) {
            return Err(
                "features: bindMount is not a feature to allow wholesale; list the host \
                 directories that may be mounted under paths"
                    .into(),
            );
        }
        Ok(())
    }

    /// True when `access` is allowed.
    pub fn allows(&self, access: &HostAccess) -> bool {
        match access.feature {
            HostFeature::BindMount => normalize(&access.value).is_some_and(|source| {
                self.paths
                    .iter()
                    .filter_map(|p| normalize(p))
                    .any(|allowed| is_within(&source, &allowed))
            }),
            feature => self.features.contains(&feature),
        }
    }
}

/// `path` without repeated or trailing `/`; `None` when it is not absolute or has a `.` or `..`
/// component.
fn normalize(path: &str) -> Option<String> {
    if !path.starts_with('/') {
        return None;
    }
    let mut parts = Vec::new();
    for part in path.split('/').filter(|p| !p.is_empty()) {
        if part == "." || part == ".." {
            return None;
        }
        parts.push(part);
    }
    Some(format!("/{}", parts.join("/")))
}

/// True when normalised `path` is `dir` or under it.
fn is_within(path: &str, dir: &str) -> bool {
    dir == "/" || path == dir || path.strip_prefix(dir).is_some_and(|r| r.starts_with('/'))
}

/// The first control character (C0, DEL, C1) or bidirectional formatting character (LRM, RLM,
/// ALM, the embeddings, overrides and isolates) in `s`, if any.
pub fn unsafe_char(s: &str) -> Option<char> {
    s.chars().find(|c| {
        c.is_control()
            || matches!(
                c,
                '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
            )
    })
}

const SAFE_TEXT: &str = "text without control characters (tab, newline, escape...) or \
                         bidirectional formatting characters (U+202A-U+202E, U+2066-U+2069, \
                         U+200E, U+200F, U+061C)";

impl ServiceSpec {
    /// Every host access this spec asks for, in field order. A bind that is also an engine
    /// socket (or holds one) is listed twice: as a bind mount and as an engine socket.
    pub fn host_access(&self) -> Vec<HostAccess> {
        let mut out = Vec::new();
        for (i, v) in self.volumes.iter().enumerate() {
            if !v.is_bind() {
                continue;
            }
            let path = format!("volumes[{i}].source");
            out.push(HostAccess {
                path: path.clone(),
                value: v.source.clone(),
                feature: HostFeature::BindMount,
            });
            // An unnormalisable source is treated as reaching the socket: it is refused anyway.
            let reaches_socket = normalize(&v.source)
                .is_none_or(|src| ENGINE_SOCKETS.iter().any(|sock| is_within(sock, &src)));
            if reaches_socket {
                out.push(HostAccess {
                    path,
                    value: v.source.clone(),
                    feature: HostFeature::EngineSocket,
                });
            }
        }
        if self.network_mode == NetworkMode::Host {
            out.push(HostAccess {
                path: "network_mode".into(),
                value: "host".into(),
                feature: HostFeature::HostNetwork,
            });
        }
        out
    }

    /// Refuses every host access of this spec that `policy` does not allow, all at once, each
    /// naming the orion.yaml setting (`hostAccess.paths` or `hostAccess.features`) that would
    /// allow it.
    pub fn check_host_access(&self, policy: &HostAccessPolicy) -> Result<(), ValidationErrors> {
        let mut errs = ValidationErrors::default();
        for access in self.host_access() {
            if policy.allows(&access) {
                continue;
            }
            let expected = match access.feature {
                HostFeature::BindMount if normalize(&access.value).is_none() => {
                    "an absolute host path without `.` or `..` components".to_owned()
                }
                HostFeature::BindMount => format!(
                    "a host path under one of the node's hostAccess.paths ({}), or a named volume",
                    if policy.paths.is_empty() {
                        "none allowed".to_owned()
                    } else {
                        policy.paths.join(", ")
                    }
                ),
                HostFeature::EngineSocket => "no mount of the container engine's socket or of a \
                     directory holding one (allowed only with engineSocket in the node's \
                     hostAccess.features)"
                    .to_owned(),
                HostFeature::HostNetwork => "bridge or none (host networking is allowed only \
                     with hostNetwork in the node's hostAccess.features)"
                    .to_owned(),
            };
            errs.push(access.path, format!("{:?}", access.value), expected);
        }
        errs.into_result()
    }

    /// Refuses control and bidi characters in the name, image, env entries and labels.
    pub(super) fn check_text(&self, errs: &mut ValidationErrors) {
        let mut check = |path: String, value: &str| {
            if let Some(c) = unsafe_char(value) {
                errs.push(
                    path,
                    format!("{value:?} (contains U+{:04X})", c as u32),
                    SAFE_TEXT,
                );
            }
        };
        check("name".into(), &self.name);
        // An image with whitespace (tab, newline) is already refused, once, by the identity check.
        if !self.image.chars().any(char::is_whitespace) {
            check("image".into(), &self.image);
        }
        for (i, entry) in self.env.iter().enumerate() {
            check(format!("env[{i}]"), entry);
        }
        for (key, value) in &self.labels {
            check(format!("labels[{key:?}]"), key);
            check(format!("labels[{key:?}]"), value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::spec::VolumeSpec;

    fn with_bind(source: &str) -> ServiceSpec {
        let mut spec = ServiceSpec::new("web", "nginx", 1);
        spec.volumes.push(VolumeSpec {
            source: source.into(),
            target: "/mnt".into(),
            read_only: false,
        });
        spec
    }

    fn features(spec: &ServiceSpec) -> Vec<HostFeature> {
        spec.host_access().iter().map(|a| a.feature).collect()
    }

    #[test]
    fn a_plain_spec_and_named_volumes_ask_for_nothing() {
        assert!(ServiceSpec::new("web", "nginx", 1).host_access().is_empty());
        assert!(with_bind("cache").host_access().is_empty());
        assert!(
            with_bind("cache")
                .check_host_access(&HostAccessPolicy::default())
                .is_ok()
        );
    }

    #[test]
    fn the_default_policy_refuses_binds_host_network_and_the_engine_socket() {
        let policy = HostAccessPolicy::default();
        let root = with_bind("/");
        assert_eq!(
            features(&root),
            [HostFeature::BindMount, HostFeature::EngineSocket]
        );
        let errs = root.check_host_access(&policy).unwrap_err();
        assert_eq!(errs.0.len(), 2, "{errs}");
        assert!(errs.0[0].expected.contains("hostAccess.paths"), "{errs}");
        assert!(errs.0[1].expected.contains("engineSocket"), "{errs}");

        assert_eq!(
            features(&with_bind("/srv/data")),
            [HostFeature::BindMount],
            "a data directory holds no engine socket"
        );
        for socket_dir in [
            "/var/run",
            "/run/",
            "//var//run/docker.sock",
            "/run/containerd",
        ] {
            assert!(
                features(&with_bind(socket_dir)).contains(&HostFeature::EngineSocket),
                "{socket_dir}"
            );
        }
        let mut host = ServiceSpec::new("web", "nginx", 1);
        host.network_mode = NetworkMode::Host;
        let errs = host.check_host_access(&policy).unwrap_err();
        assert_eq!(errs.0[0].path, "network_mode");
        assert!(errs.0[0].expected.contains("hostNetwork"));
    }

    #[test]
    fn an_allow_list_allows_paths_under_it_and_named_features_only() {
        let policy = HostAccessPolicy {
            paths: vec!["/srv/data/".into()],
            features: BTreeSet::new(),
        };
        policy.check().unwrap();
        assert!(with_bind("/srv/data").check_host_access(&policy).is_ok());
        assert!(
            with_bind("/srv/data//a/b")
                .check_host_access(&policy)
                .is_ok()
        );
        for refused in [
            "/srv/database",
            "/srv",
            "/srv/data/../../etc",
            "/srv/data/./x",
        ] {
            assert!(
                with_bind(refused).check_host_access(&policy).is_err(),
                "{refused}"
            );
        }
        let everything = HostAccessPolicy {
            paths: vec!["/".into()],
            features: [HostFeature::EngineSocket, HostFeature::HostNetwork].into(),
        };
        everything.check().unwrap();
        assert!(with_bind("/").check_host_access(&everything).is_ok());
        let only_paths = HostAccessPolicy {
            paths: vec!["/".into()],
            features: BTreeSet::new(),
        };
        let errs = with_bind("/var/run/docker.sock")
            .check_host_access(&only_paths)
            .unwrap_err();
        assert_eq!(
            errs.0.len(),
            1,
            "the path is allowed, the socket is not: {errs}"
        );
    }

    #[test]
    fn a_policy_with_relative_paths_or_bind_mount_feature_is_refused() {
        let relative = HostAccessPolicy {
            paths: vec!["data".into()],
            ..Default::default()
        };
        assert!(relative.check().unwrap_err().contains("paths[0]"));
        let wholesale = HostAccessPolicy {
            features: [HostFeature::BindMount].into(),
            ..Default::default()
        };
        assert!(wholesale.check().unwrap_err().contains("bindMount"));
    }

    #[test]
    fn control_and_bidi_characters_are_found() {
        assert_eq!(unsafe_char("web"), None);
        assert_eq!(unsafe_char("héllo wörld"), None);
        for (text, c) in [
            ("a\u{1b}[31m", '\u{1b}'),
            ("line\nbreak", '\n'),
            ("tab\there", '\t'),
            ("evil\u{202E}gpj.exe", '\u{202E}'),
            ("iso\u{2066}late", '\u{2066}'),
            ("mark\u{200F}", '\u{200F}'),
            ("c1\u{85}", '\u{85}'),
            ("del\u{7f}", '\u{7f}'),
        ] {
            assert_eq!(unsafe_char(text), Some(c), "{text:?}");
        }
    }

    #[test]
    fn validation_refuses_control_and_bidi_characters_in_names_images_env_and_labels() {
        let mut spec = ServiceSpec::new("web", "nginx\u{202E}", 1);
        spec.env.push("MODE=prod\u{1b}[2J".into());
        spec.labels.insert("team".into(), "ops\u{2067}".into());
        spec.labels.insert("k\u{7}".into(), "v".into());
        let errs = spec.validate().unwrap_err();
        let paths: Vec<&str> = errs.0.iter().map(|e| e.path.as_str()).collect();
        for want in ["image", "env[0]", "labels[\"team\"]", "labels[\"k\\u{7}\"]"] {
            assert!(paths.contains(&want), "{want} in {paths:?}");
        }
        assert!(errs.to_string().contains("U+202E"), "{errs}");
        assert!(
            ServiceSpec::new("web", "nginx:alpine", 1)
                .validate()
                .is_ok()
        );
    }
}
