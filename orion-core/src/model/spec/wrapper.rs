//! The document shapes around a spec: the Kubernetes-like `kind: Deployment` form and the
//! config document form, with root settings and a `services:` list.
//!
//! A Deployment is flattened into a plain spec (`metadata.name` -> `name`, `spec.*` and
//! `spec.container.*` -> the spec's fields), and a [`PathMap`] remembers where each field came
//! from, so errors still name the path the user wrote (`spec.container.ports[0]`).

use std::collections::{BTreeMap, HashMap};

use serde::Deserialize;
use serde_json::{Map, Value};

use super::ServiceSpec;
use super::parse::{from_value, join_path};
use crate::error::{ParseError, ValidationErrors};

/// The `apiVersion` a `kind: Deployment` wrapper must carry.
pub const API_VERSION: &str = "orion.io/v1";

/// Where the top-level fields of a flattened spec were written.
#[derive(Debug, Default)]
pub(super) struct PathMap(HashMap<String, String>);

impl PathMap {
    /// Rewrites a path of the flat spec (`ports[0].host_port`) into the written one.
    pub(super) fn rewrite(&self, path: &str) -> String {
        let end = path.find(['.', '[']).unwrap_or(path.len());
        match self.0.get(&path[..end]) {
            Some(origin) => format!("{origin}{}", &path[end..]),
            None => path.to_owned(),
        }
    }

    /// Rewrites every error's path and puts `prefix` in front.
    pub(super) fn rewrite_errors(
        &self,
        mut errs: ValidationErrors,
        prefix: &str,
    ) -> ValidationErrors {
        for e in &mut errs.0 {
            e.path = join_path(prefix, &self.rewrite(&e.path));
        }
        errs
    }
}

/// Reads one spec from a generic value: a plain spec, or a Deployment wrapper when the object
/// has `apiVersion` or `kind`.
pub(super) fn spec_from_value(value: Value) -> Result<(ServiceSpec, PathMap), ParseError> {
    let is_wrapper = value
        .as_object()
        .is_some_and(|m| m.contains_key("apiVersion") || m.contains_key("kind"));
    if !value.is_object() {
        return Err(ParseError {
            path: String::new(),
            message: format!(
                "expected a service spec (a mapping with name, image, replicas, ...), got {}",
                describe(&value)
            ),
            location: None,
        });
    }
    if !is_wrapper {
        return Ok((from_value(value)?, PathMap::default()));
    }
    let (flat, paths) = flatten_deployment(value)?;
    let spec = from_value(Value::Object(flat)).map_err(|mut e| {
        e.path = paths.rewrite(&e.path);
        if e.path.is_empty() && e.message.starts_with("missing field") {
            e.message
                .push_str(" (write it under `spec.container` or `spec`)");
        }
        e
    })?;
    Ok((spec, paths))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Deployment {
    api_version: String,
    kind: String,
    metadata: Metadata,
    spec: Map<String, Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Metadata {
    name: Value,
    #[serde(default)]
    labels: Option<Value>,
}

fn wrapper_error(path: &str, message: String) -> ParseError {
    ParseError {
        path: path.to_owned(),
        message,
        location: None,
    }
}

/// Turns a Deployment into the flat spec object and the map of where its fields came from.
fn flatten_deployment(value: Value) -> Result<(Map<String, Value>, PathMap), ParseError> {
    let d: Deployment = from_value(value)?;
    if d.api_version != API_VERSION {
        return Err(wrapper_error(
            "apiVersion",
            format!(
                "unknown apiVersion {:?}; expected `{API_VERSION}`",
                d.api_version
            ),
        ));
    }
    if d.kind != "Deployment" {
        return Err(wrapper_error(
            "kind",
            format!("unknown kind {:?}; expected `Deployment`", d.kind),
        ));
    }
    let mut flat = Map::new();
    let mut origin = BTreeMap::new();
    let mut put = |key: String, value: Value, from: String| -> Result<(), ParseError> {
        if let Some(first) = origin.get(&key) {
            return Err(wrapper_error(
                &from,
                format!("`{key}` is already given at `{first}`; write it once"),
            ));
        }
        flat.insert(key.clone(), value);
        origin.insert(key, from);
        Ok(())
    };
    put("name".into(), d.metadata.name, "metadata.name".into())?;
    if let Some(labels) = d.metadata.labels {
        put("labels".into(), labels, "metadata.labels".into())?;
    }
    let mut container = None;
    for (key, value) in d.spec {
        if key == "container" {
            container = Some(value);
        } else {
            let from = format!("spec.{key}");
            put(key, value, from)?;
        }
    }
    match container {
        Some(Value::Object(fields)) => {
            for (key, value) in fields {
                let from = format!("spec.container.{key}");
                put(key, value, from)?;
            }
        }
        Some(other) => {
            return Err(wrapper_error(
                "spec.container",
                format!("expected an object with image, ports, env, ...; got {other}"),
            ));
        }
        None => {}
    }
    Ok((flat, PathMap(origin.into_iter().collect())))
}

/// The config document form: root settings plus the `services` list.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigDocument {
    /// The environment name (`local`, `dev`, `prod`); not a service's env.
    #[serde(default, rename = "env")]
    _env: Option<String>,
    #[serde(default, rename = "listen_addr")]
    _listen_addr: Option<String>,
    #[serde(default, rename = "data_dir")]
    _data_dir: Option<String>,
    #[serde(default, rename = "cluster_name")]
    _cluster_name: Option<String>,
    services: Vec<Value>,
}

/// The service objects of a config document (its root fields are checked for type only).
pub(super) fn config_services(value: Value) -> Result<Vec<Value>, ParseError> {
    let doc: ConfigDocument = from_value(value)?;
    Ok(doc.services)
}

/// "a list", "the string \"x\"", ...: a value described for an error message.
fn describe(value: &Value) -> String {
    match value {
        Value::Null => "nothing".into(),
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) => format!("the string {s:?}"),
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "a mapping".into(),
    }
}
