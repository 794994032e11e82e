//! Importing a Compose file (`docker-compose.yml`, `compose.yaml`) as Orion service specs.
//!
//! What is imported, per service: `image`, `command` and `entrypoint`, `ports`, `environment`
//! and `env_file`, `volumes` (named volumes and absolute host paths), `deploy.replicas` (or
//! `scale`), `deploy.resources`, `deploy.update_config`, `deploy.restart_policy` (or
//! `restart`), `deploy.placement.constraints` on node labels, `healthcheck`, `depends_on` (as
//! the dependencies that network-aware placement keeps close), `labels` and `deploy.labels`,
//! `dns`, `extra_hosts` and `network_mode` (`bridge`, `host`, `none`). `${VAR}` interpolation
//! works as in Compose, from the variables the caller passes (the CLI passes its environment
//! over the project's `.env` file).
//!
//! Nothing is silently dropped: every other key (`build`, `extends`, `networks`,
//! `container_name`, `network_mode: service:...`, ...) is an error naming the key, its line
//! and what to do instead, and all of them are reported at once. A few things are imported
//! with a [note](ComposeImport::notes) because Orion does them its own way: start-up order
//! (`depends_on` conditions), `expose`, the obsolete `version`, the project `name` and unset
//! variables. `x-` extension keys are skipped, as Compose skips them.

mod deploy;
mod health;
mod ports_volumes;
mod service;
mod values;

use std::collections::BTreeMap;
use std::fmt::Display;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::{ServiceSpec, SpecFormat, locate};
use crate::error::{Error, ParseError, ValidationErrors};

pub use values::{MAX_PORT_RANGE, interpolate};

/// Most services one Compose file may hold.
pub const MAX_SERVICES: usize = 1000;
/// Largest `env_file` read, in bytes.
pub const MAX_ENV_FILE_BYTES: u64 = 1 << 20;
/// Most `env_file`s one service may name.
pub const MAX_ENV_FILES: usize = 16;

/// Where a Compose file came from and what it may read.
#[derive(Debug, Clone, Default)]
pub struct ComposeOptions {
    /// The file's name, for messages (`docker-compose.yml`).
    pub source: String,
    /// The project directory: `env_file` paths are read relative to it. `None` refuses
    /// `env_file` (for instance when the text came from standard input).
    pub project_dir: Option<PathBuf>,
    /// Interpolation variables (`${VAR}`) and the values of `environment` entries given
    /// without one (`- DEBUG`).
    pub variables: BTreeMap<String, String>,
}

/// Specs imported from a Compose file, with what was imported differently from Compose.
#[derive(Debug, Clone, PartialEq)]
pub struct ComposeImport {
    /// One validated spec per Compose service, in file order.
    pub specs: Vec<ServiceSpec>,
    /// What the user should know: settings imported Orion's way, variables that were unset.
    pub notes: Vec<String>,
}

/// True when `text` is a Compose file: a YAML or JSON mapping whose `services` is a mapping
/// of service names (Orion's own config document has a `services` list instead).
pub fn is_compose(text: &str) -> bool {
    super::parse::parse_documents(text, SpecFormat::Auto).is_ok_and(|(docs, _)| {
        docs.len() == 1 && docs[0].get("services").is_some_and(Value::is_object)
    })
}

/// Imports every service of the Compose file `text` (YAML or JSON).
///
/// Errors: [`Error::Parse`] when the text is not YAML or not a mapping with a `services`
/// mapping; [`Error::Invalid`] listing every key that cannot be imported (with its line) and
/// every rule an imported spec breaks, paths written as in the Compose file
/// (`services.web.deploy.resources.limits.cpus`).
pub fn parse_compose(text: &str, options: &ComposeOptions) -> Result<ComposeImport, Error> {
    let (mut docs, _) = super::parse::parse_documents(text, SpecFormat::Auto)?;
    if docs.len() != 1 {
        return Err(not_compose(format!(
            "{} YAML documents; a Compose file is one",
            docs.len()
        )));
    }
    let Value::Object(root) = docs.remove(0) else {
        return Err(not_compose("the document is not a mapping".into()));
    };
    let mut import = Importer {
        text,
        options,
        problems: ValidationErrors::default(),
        notes: Vec::new(),
        unset: Vec::new(),
    };
    let specs = import.root(root)?;
    if !import.unset.is_empty() {
        import.notes.push(format!(
            "unset variable(s) {} were replaced by empty strings",
            import.unset.join(", ")
        ));
    }
    import.problems.into_result()?;
    Ok(ComposeImport {
        specs,
        notes: import.notes,
    })
}

fn not_compose(why: String) -> Error {
    Error::Parse(ParseError {
        path: String::new(),
        message: format!("not a Compose file: {why}; expected a mapping with `services:`"),
        location: None,
    })
}

/// The conversion's state: the source text (for line numbers) and what it found.
struct Importer<'a> {
    text: &'a str,
    options: &'a ComposeOptions,
    problems: ValidationErrors,
    notes: Vec<String>,
    unset: Vec<String>,
}

impl Importer<'_> {
    fn root(&mut self, root: Map<String, Value>) -> Result<Vec<ServiceSpec>, Error> {
        let mut services = None;
        for (key, value) in root {
            match key.as_str() {
                "services" => services = Some(value),
                "version" => self.notes.push(
                    "`version` is obsolete in the Compose specification and was not used".into(),
                ),
                "name" => self.notes.push(format!(
                    "the project name {value} was not used: Orion service names are global"
                )),
                "volumes" => self.top_level_volumes(value),
                k if k.starts_with("x-") => {}
                "networks" => self.refuse(
                    "networks",
                    "`networks`",
                    "no networks: every Orion service reaches the others on its node's \
                     network, by name through Orion's DNS (`<service>.orion`)",
                ),
                "secrets" | "configs" | "include" => self.refuse(
                    &key,
                    format!("`{key}`"),
                    "no top-level secrets, configs or include: Compose's are not imported",
                ),
                _ => self.refuse(
                    &key,
                    format!("`{key}`"),
                    "a Compose top-level key Orion imports: services, volumes, version, name, x-*",
                ),
            }
        }
        let Some(Value::Object(services)) = services else {
            return Err(not_compose("there is no `services` mapping".into()));
        };
        if services.len() > MAX_SERVICES {
            return Err(not_compose(format!(
                "{} services; at most {MAX_SERVICES}",
                services.len()
            )));
        }
        let renamed: BTreeMap<String, String> = services
            .keys()
            .map(|name| (name.clone(), orion_name(name)))
            .collect();
        let mut specs = Vec::with_capacity(services.len());
        for (name, body) in services {
            let path = format!("services.{name}");
            let body = self.interpolated(&path, body);
            let Value::Object(body) = body else {
                self.refuse(&path, describe(&body), "a mapping of service settings");
                continue;
            };
            if renamed[&name] != name {
                self.notes.push(format!(
                    "service `{name}` is imported as `{}` (Orion names are DNS labels)",
                    renamed[&name]
                ));
            }
            if let Some(spec) = self.service(&name, &renamed, body) {
                specs.push(spec);
            }
        }
        Ok(specs)
    }

    fn top_level_volumes(&mut self, volumes: Value) {
        let Value::Object(volumes) = volumes else {
            self.refuse("volumes", describe(&volumes), "a mapping of volume names");
            return;
        };
        for (name, settings) in volumes {
            let Value::Object(settings) = settings else {
                continue; // `data:` with no settings: a local named volume.
            };
            for (key, value) in settings {
                let path = format!("volumes.{name}.{key}");
                match (key.as_str(), &value) {
                    ("driver", Value::String(d)) if d == "local" => {}
                    ("external", Value::Bool(_)) => {}
                    (k, _) if k.starts_with("x-") => {}
                    _ => self.refuse(
                        &path,
                        format!("`{key}`"),
                        "a local volume: Orion creates named volumes on each node with the \
                         engine's local driver (driver: local, external), without options, \
                         labels or a custom name",
                    ),
                }
            }
        }
    }

    /// The value with `${VAR}` interpolated in every string, problems recorded at `path`.
    fn interpolated(&mut self, path: &str, value: Value) -> Value {
        match value {
            Value::String(s) => match interpolate(&s, &self.options.variables, &mut self.unset) {
                Ok(s) => Value::String(s),
                Err(e) => {
                    self.refuse(path, format!("{s:?}"), format!("valid interpolation: {e}"));
                    Value::String(s)
                }
            },
            Value::Array(items) => Value::Array(
                items
                    .into_iter()
                    .enumerate()
                    .map(|(i, v)| self.interpolated(&format!("{path}[{i}]"), v))
                    .collect(),
            ),
            Value::Object(map) => Value::Object(
                map.into_iter()
                    .map(|(k, v)| {
                        let v = self.interpolated(&format!("{path}.{k}"), v);
                        (k, v)
                    })
                    .collect(),
            ),
            other => other,
        }
    }

    /// Records a problem at `path`, with its line and column in the file when found.
    fn refuse(&mut self, path: &str, shown: impl Display, expected: impl Into<String>) {
        let found = locate::locate(self.text, SpecFormat::Yaml, path);
        let last_key = path.rsplit('.').next().filter(|k| !k.ends_with(']'));
        let found = match (found, last_key) {
            (Some(at), Some(key)) => Some(key_position(self.text, at, key)),
            (found, _) => found,
        };
        let value = match found {
            Some((line, column)) => {
                format!("{shown} at {}:{line}:{column}", self.source_name())
            }
            None => shown.to_string(),
        };
        self.problems.push(path, value, expected);
    }

    fn source_name(&self) -> &str {
        if self.options.source.is_empty() {
            "line"
        } else {
            &self.options.source
        }
    }

    /// Reads an `env_file` relative to the project directory, bounded in size.
    fn read_env_file(&self, file: &str) -> Result<Vec<(String, String)>, String> {
        let dir = self.options.project_dir.as_deref().ok_or_else(|| {
            "env_file needs the Compose file's directory (it cannot be read from standard \
             input); put the variables under `environment`"
                .to_owned()
        })?;
        let path = resolve(dir, file);
        let size = std::fs::metadata(&path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?
            .len();
        if size > MAX_ENV_FILE_BYTES {
            return Err(format!(
                "{} is {size} bytes; at most {MAX_ENV_FILE_BYTES}",
                path.display()
            ));
        }
        dotenvy::from_path_iter(&path)
            .and_then(|lines| lines.collect::<Result<Vec<_>, _>>())
            .map_err(|e| format!("cannot read {}: {e}", path.display()))
    }
}

/// Where `key` is written, given where its value starts: a block value starts on a later line
/// than its key, so the lines above are searched (at most 50) for `key:`.
fn key_position(text: &str, value_at: (usize, usize), key: &str) -> (usize, usize) {
    let lines: Vec<&str> = text.lines().collect();
    let (line, _) = value_at;
    for l in (line.saturating_sub(50).max(1)..=line).rev() {
        let Some(content) = lines.get(l - 1) else {
            continue;
        };
        let trimmed = content.trim_start().trim_start_matches("- ");
        let unquoted = trimmed.trim_start_matches(['"', '\'']);
        if unquoted.starts_with(key)
            && unquoted[key.len()..]
                .trim_start_matches(['"', '\''])
                .starts_with(':')
        {
            return (l, content.len() - trimmed.len() + 1);
        }
    }
    value_at
}

fn resolve(dir: &Path, file: &str) -> PathBuf {
    let path = Path::new(file);
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        dir.join(path)
    }
}

/// A Compose service name as an Orion name: lower case, `_` and `.` as `-`.
fn orion_name(name: &str) -> String {
    name.to_ascii_lowercase().replace(['_', '.'], "-")
}

/// A value named for messages: `"text"`, `42`, `a list`, `a mapping`.
fn describe(value: &Value) -> String {
    match value {
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "a mapping".into(),
        other => other.to_string(),
    }
}
