//! One Compose service as a [`ServiceSpec`].

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::values::scalar_text;
use super::{Importer, MAX_ENV_FILES, describe};
use crate::model::spec::{NetworkMode, RestartPolicy, ServiceSpec};

/// Service keys Compose has and Orion cannot import, with what to do instead.
const UNSUPPORTED: &[(&str, &str)] = &[
    (
        "build",
        "an `image`: Orion runs images and does not build them; build and push it first",
    ),
    (
        "extends",
        "the settings written out: `extends` is not imported",
    ),
    (
        "container_name",
        "no container_name: Orion names each replica's container itself",
    ),
    (
        "hostname",
        "no hostname: replicas are found by service name through Orion's DNS",
    ),
    (
        "networks",
        "no networks: every Orion service reaches the others by name through Orion's DNS",
    ),
    (
        "links",
        "no links: every Orion service reaches the others by name through Orion's DNS",
    ),
    (
        "external_links",
        "no external_links: services are found through Orion's DNS",
    ),
    (
        "secrets",
        "no secrets in a Compose file: Compose's file-based secrets are not imported",
    ),
    ("configs", "no configs: Compose configs are not imported"),
    (
        "profiles",
        "no profiles: every service of the file is applied",
    ),
    ("privileged", "no privileged containers"),
    ("cap_add", "no added capabilities"),
    ("cap_drop", "no capability changes"),
    ("devices", "no host devices"),
    ("user", "the image's user: `user` is not imported"),
    (
        "working_dir",
        "the image's working directory: `working_dir` is not imported",
    ),
    ("tty", "no tty"),
    ("stdin_open", "no stdin_open"),
    (
        "logging",
        "no logging driver: Orion collects logs through the engine (`orion logs`)",
    ),
    ("ulimits", "no ulimits"),
    ("sysctls", "no sysctls"),
    ("security_opt", "no security_opt"),
    ("pid", "no pid mode"),
    ("ipc", "no ipc mode"),
    ("init", "no init: use an image with its own init if needed"),
    (
        "platform",
        "no platform: Orion runs the image built for each node's platform",
    ),
    (
        "pull_policy",
        "no pull_policy: Orion uses a local image and pulls only when it is absent",
    ),
    (
        "stop_grace_period",
        "no stop_grace_period: Orion stops containers with the engine's default grace period",
    ),
    ("stop_signal", "no stop_signal"),
    ("tmpfs", "no tmpfs mounts"),
    ("shm_size", "no shm_size"),
    ("mem_limit", "deploy.resources.limits.memory"),
    ("cpus", "deploy.resources.limits.cpus"),
    ("mac_address", "no mac_address"),
    ("domainname", "no domainname"),
    (
        "dns_search",
        "no dns_search: Orion sets the cluster zone as the search domain",
    ),
    ("group_add", "no group_add"),
    ("read_only", "no read_only root filesystem"),
    (
        "volumes_from",
        "named volumes shared by name instead of volumes_from",
    ),
];

impl Importer<'_> {
    /// Converts one service; `None` when it has problems (recorded).
    pub(super) fn service(
        &mut self,
        name: &str,
        renamed: &BTreeMap<String, String>,
        body: Map<String, Value>,
    ) -> Option<ServiceSpec> {
        let before = self.problems.0.len();
        let base = format!("services.{name}");
        let mut spec = ServiceSpec::new(&renamed[name], "", 1);
        let mut origins: Vec<(&str, String)> = vec![("name", base.clone())];
        let mut env_files = Vec::new();
        let mut environment = Vec::new();
        for (key, value) in body {
            let path = format!("{base}.{key}");
            let field = match key.as_str() {
                "image" => {
                    match value {
                        Value::String(image) => spec.image = image,
                        other => self.refuse(&path, describe(&other), "an image reference"),
                    }
                    "image"
                }
                "command" => {
                    spec.command = self.command(&path, &value).unwrap_or_default();
                    "command"
                }
                "entrypoint" => {
                    spec.entrypoint = self.command(&path, &value);
                    "entrypoint"
                }
                "environment" => {
                    environment = self.environment(&path, &value);
                    "env"
                }
                "env_file" => {
                    env_files = self.env_files(&path, &value);
                    "env"
                }
                "ports" => {
                    spec.ports = self.ports(&path, &value);
                    "ports"
                }
                "expose" => {
                    self.notes.push(format!(
                        "{path}: `expose` only documents ports; Orion services reach each other \
                         on their container ports without it"
                    ));
                    continue;
                }
                "volumes" => {
                    spec.volumes = self.volumes(&path, &value);
                    "volumes"
                }
                "restart" => {
                    if let Some(policy) = self.restart(&path, &value) {
                        spec.restart_policy = policy;
                    }
                    "restart_policy"
                }
                "scale" => {
                    if let Some(n) = value.as_u64().and_then(|n| u32::try_from(n).ok()) {
                        spec.replicas = n;
                    } else {
                        self.refuse(&path, describe(&value), "a whole number of replicas");
                    }
                    "replicas"
                }
                "deploy" => {
                    origins.extend(self.deploy(&path, &value, &mut spec));
                    continue;
                }
                "healthcheck" => {
                    spec.health_check = self.healthcheck(&path, &value);
                    "health_check"
                }
                "depends_on" => {
                    spec.depends_on = self.depends_on(&path, &value, renamed);
                    "depends_on"
                }
                "labels" => {
                    self.labels(&path, &value, &mut spec.labels);
                    "labels"
                }
                "dns" => {
                    spec.dns = self.strings(&path, &value, "an address or a list of addresses");
                    "dns"
                }
                "extra_hosts" => {
                    spec.extra_hosts = self.extra_hosts(&path, &value);
                    "extra_hosts"
                }
                "network_mode" => {
                    if let Some(mode) = self.network_mode(&path, &value) {
                        spec.network_mode = mode;
                    }
                    "network_mode"
                }
                k if k.starts_with("x-") => continue,
                k => {
                    let hint = UNSUPPORTED.iter().find(|(name, _)| *name == k).map_or(
                        "a Compose service key Orion imports (see docs/compose.md)",
                        |(_, h)| h,
                    );
                    self.refuse(&path, format!("`{k}`"), hint);
                    continue;
                }
            };
            origins.push((field, path));
        }
        // Compose: `environment` wins over `env_file`, and later env files over earlier ones.
        let mut env: BTreeMap<String, String> = BTreeMap::new();
        for (k, v) in env_files.into_iter().chain(environment) {
            env.insert(k, v);
        }
        spec.env = env.into_iter().map(|(k, v)| format!("{k}={v}")).collect();
        if self.problems.0.len() > before {
            // A half-converted spec would only add misleading problems.
            return None;
        }
        if spec.image.is_empty() {
            self.refuse(&base, format!("`{name}` without an image"), "an `image`");
            return None;
        }
        if let Err(errs) = spec.validate() {
            for mut e in errs.0 {
                let top = e
                    .path
                    .split(['.', '['])
                    .next()
                    .unwrap_or_default()
                    .to_owned();
                let origin = origins
                    .iter()
                    .rev()
                    .find(|(field, _)| *field == top)
                    .map_or_else(|| base.clone(), |(_, p)| p.clone());
                e.path = format!("{origin} (Orion's `{}`)", e.path);
                self.problems.0.push(e);
            }
        }
        (self.problems.0.len() == before).then_some(spec)
    }

    /// A command: a list, or a string split as a shell would (Compose's rule).
    fn command(&mut self, path: &str, value: &Value) -> Option<Vec<String>> {
        match value {
            Value::String(s) => match shlex::split(s) {
                Some(words) if !words.is_empty() => Some(words),
                _ => {
                    self.refuse(path, format!("{s:?}"), "a command with balanced quotes");
                    None
                }
            },
            Value::Array(_) => Some(self.strings(path, value, "a list of strings")),
            Value::Null => None,
            other => {
                self.refuse(path, describe(other), "a string or a list of strings");
                None
            }
        }
    }

    /// A string or a list of scalars, as strings.
    pub(super) fn strings(&mut self, path: &str, value: &Value, expected: &str) -> Vec<String> {
        let items: Vec<&Value> = match value {
            Value::Array(items) => items.iter().collect(),
            Value::Null => Vec::new(),
            single => vec![single],
        };
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.into_iter().enumerate() {
            match scalar_text(item) {
                Some(s) => out.push(s),
                None => self.refuse(&format!("{path}[{i}]"), describe(item), expected),
            }
        }
        out
    }

    /// `environment`: a list of `KEY=value` (or `KEY`, taken from the variables) or a mapping.
    fn environment(&mut self, path: &str, value: &Value) -> Vec<(String, String)> {
        let mut out = Vec::new();
        match value {
            Value::Object(map) => {
                for (k, v) in map {
                    match v {
                        Value::Null => self.value_from_variables(path, k, &mut out),
                        v => match scalar_text(v) {
                            Some(s) => out.push((k.clone(), s)),
                            None => self.refuse(
                                &format!("{path}.{k}"),
                                describe(v),
                                "a string, number or boolean",
                            ),
                        },
                    }
                }
            }
            Value::Array(_) => {
                for entry in self.strings(path, value, "`KEY=value`") {
                    match entry.split_once('=') {
                        Some((k, v)) => out.push((k.to_owned(), v.to_owned())),
                        None => self.value_from_variables(path, &entry, &mut out),
                    }
                }
            }
            other => self.refuse(path, describe(other), "a list of `KEY=value` or a mapping"),
        }
        out
    }

    /// `KEY` with no value: Compose takes it from the environment, or leaves it unset.
    fn value_from_variables(&mut self, path: &str, key: &str, out: &mut Vec<(String, String)>) {
        match self.options.variables.get(key) {
            Some(v) => out.push((key.to_owned(), v.clone())),
            None => self.notes.push(format!(
                "{path}: `{key}` has no value and is not set here, so it is left out"
            )),
        }
    }

    fn env_files(&mut self, path: &str, value: &Value) -> Vec<(String, String)> {
        let mut files = Vec::new();
        let entries: Vec<Value> = match value {
            Value::Array(items) => items.clone(),
            single => vec![single.clone()],
        };
        if entries.len() > MAX_ENV_FILES {
            self.refuse(
                path,
                format!("{} files", entries.len()),
                format!("at most {MAX_ENV_FILES} env files"),
            );
            return Vec::new();
        }
        for (i, entry) in entries.iter().enumerate() {
            let at = format!("{path}[{i}]");
            // The long form: `{path: ..., required: false}`.
            let (file, required) = match entry {
                Value::String(f) => (f.clone(), true),
                Value::Object(m) => match m.get("path").and_then(Value::as_str) {
                    Some(f) => (
                        f.to_owned(),
                        m.get("required").and_then(Value::as_bool).unwrap_or(true),
                    ),
                    None => {
                        self.refuse(
                            &at,
                            "a mapping without `path`",
                            "a file name or {path, required}",
                        );
                        continue;
                    }
                },
                other => {
                    self.refuse(&at, describe(other), "a file name");
                    continue;
                }
            };
            match self.read_env_file(&file) {
                Ok(vars) => files.extend(vars),
                Err(_) if !required => {}
                Err(e) => self.refuse(
                    &at,
                    format!("{file:?}"),
                    format!("a readable env file: {e}"),
                ),
            }
        }
        files
    }

    fn restart(&mut self, path: &str, value: &Value) -> Option<RestartPolicy> {
        let policy = match value.as_str() {
            Some("no") => RestartPolicy::No,
            Some("always") => RestartPolicy::Always,
            Some("on-failure") => RestartPolicy::OnFailure,
            Some("unless-stopped") => RestartPolicy::UnlessStopped,
            _ => {
                self.refuse(path, describe(value), "no, always, on-failure or unless-stopped (a retry count `on-failure:N` is not imported)");
                return None;
            }
        };
        Some(policy)
    }

    fn depends_on(
        &mut self,
        path: &str,
        value: &Value,
        renamed: &BTreeMap<String, String>,
    ) -> Vec<String> {
        let names: Vec<String> = match value {
            Value::Object(map) => {
                if map.values().any(|v| v.get("condition").is_some()) {
                    self.notes.push(format!(
                        "{path}: Orion starts services without waiting on each other; a task \
                         that fails before its dependency is ready is restarted by its \
                         restart policy"
                    ));
                }
                map.keys().cloned().collect()
            }
            other => self.strings(path, other, "a service name"),
        };
        names
            .into_iter()
            .map(|n| renamed.get(&n).cloned().unwrap_or(n))
            .collect()
    }

    pub(super) fn labels(
        &mut self,
        path: &str,
        value: &Value,
        labels: &mut BTreeMap<String, String>,
    ) {
        match value {
            Value::Object(map) => {
                for (k, v) in map {
                    labels.insert(k.clone(), scalar_text(v).unwrap_or_default());
                }
            }
            Value::Array(_) => {
                for entry in self.strings(path, value, "`key=value`") {
                    let (k, v) = entry.split_once('=').unwrap_or((&entry, ""));
                    labels.insert(k.to_owned(), v.to_owned());
                }
            }
            other => self.refuse(path, describe(other), "a list of `key=value` or a mapping"),
        }
    }

    fn extra_hosts(&mut self, path: &str, value: &Value) -> Vec<String> {
        match value {
            Value::Object(map) => map
                .iter()
                .map(|(host, ip)| format!("{host}:{}", scalar_text(ip).unwrap_or_default()))
                .collect(),
            other => self
                .strings(path, other, "`host:ip` or `host=ip`")
                .into_iter()
                .map(|entry| match entry.split_once('=') {
                    Some((host, ip)) => format!("{host}:{ip}"),
                    None => entry,
                })
                .collect(),
        }
    }

    fn network_mode(&mut self, path: &str, value: &Value) -> Option<NetworkMode> {
        match value.as_str() {
            Some("bridge" | "default") => Some(NetworkMode::Bridge),
            Some("host") => Some(NetworkMode::Host),
            Some("none") => Some(NetworkMode::None),
            _ => {
                self.refuse(path, describe(value), "bridge, host or none (`service:` and `container:` modes are not imported: replicas of two services need not share a node)");
                None
            }
        }
    }
}
