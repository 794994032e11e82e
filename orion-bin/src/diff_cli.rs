//! `orion apply -f FILE --dry-run`: what applying the file would change, compared with what the
//! cluster stores. Nothing is written.
//!
//! Each service of the file is `added` (not stored), `changed` (with every field path that
//! differs: added, changed or removed) or `unchanged`. Stored services the file does not name
//! are listed as `not_in_file`: `apply` leaves them as they are (`delete -f` removes a file's
//! services).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::Result;
use orion_core::model::ServiceSpec;
use serde::Serialize;
use serde_json::Value;

use crate::api::types::ServiceStatus;
use crate::cli::OutputFormat;
use crate::client::Client;
use crate::commands::load_specs;
use crate::output::render_value;

/// One field that differs, by its path (`resources.memory_bytes`, `ports[0].host_port`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldChange {
    pub path: String,
    /// `added`, `changed` or `removed`.
    pub change: &'static str,
    /// The stored value (absent for `added`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stored: Option<Value>,
    /// The file's value (absent for `removed`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<Value>,
}

/// One service of the file.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceDiff {
    pub name: String,
    /// `added`, `changed` or `unchanged`.
    pub change: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FieldChange>,
}

/// The whole dry run.
#[derive(Debug, Clone, Serialize)]
pub struct ApplyDiff {
    pub services: Vec<ServiceDiff>,
    /// Stored services the file does not name (apply keeps them).
    pub not_in_file: Vec<String>,
}

/// `value` flattened to `path -> leaf` (objects by key, arrays by index).
fn flatten(prefix: &str, value: &Value, out: &mut BTreeMap<String, Value>) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (k, v) in map {
                let path = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&path, v, out);
            }
        }
        Value::Array(items) if !items.is_empty() => {
            for (i, v) in items.iter().enumerate() {
                flatten(&format!("{prefix}[{i}]"), v, out);
            }
        }
        _ => {
            out.insert(prefix.to_owned(), value.clone());
        }
    }
}

/// Every field path where `stored` and `file` differ, in path order.
pub fn field_changes(stored: &ServiceSpec, file: &ServiceSpec) -> Vec<FieldChange> {
    let (mut a, mut b) = (BTreeMap::new(), BTreeMap::new());
    flatten(
        "",
        &serde_json::to_value(stored).unwrap_or_default(),
        &mut a,
    );
    flatten("", &serde_json::to_value(file).unwrap_or_default(), &mut b);
    let paths: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    paths
        .into_iter()
        .filter_map(|path| {
            let (old, new) = (a.get(path), b.get(path));
            let change = match (old, new) {
                (Some(o), Some(n)) if o == n => return None,
                (Some(_), Some(_)) => "changed",
                (None, Some(_)) => "added",
                (Some(_), None) => "removed",
                (None, None) => return None,
            };
            Some(FieldChange {
                path: path.clone(),
                change,
                stored: old.cloned(),
                file: new.cloned(),
            })
        })
        .collect()
}

/// Compares the file's specs with the stored services.
pub fn diff(file: &[ServiceSpec], stored: &[ServiceStatus]) -> ApplyDiff {
    let by_name: BTreeMap<&str, &ServiceSpec> = stored
        .iter()
        .map(|s| (s.spec.name.as_str(), &s.spec))
        .collect();
    let services = file
        .iter()
        .map(|spec| match by_name.get(spec.name.as_str()) {
            None => ServiceDiff {
                name: spec.name.clone(),
                change: "added",
                fields: Vec::new(),
            },
            Some(old) => {
                let fields = field_changes(old, spec);
                ServiceDiff {
                    name: spec.name.clone(),
                    change: if fields.is_empty() {
                        "unchanged"
                    } else {
                        "changed"
                    },
                    fields,
                }
            }
        })
        .collect();
    let named: BTreeSet<&str> = file.iter().map(|s| s.name.as_str()).collect();
    let not_in_file = by_name
        .keys()
        .filter(|n| !named.contains(*n))
        .map(|n| (*n).to_owned())
        .collect();
    ApplyDiff {
        services,
        not_in_file,
    }
}

fn short(v: &Option<Value>) -> String {
    match v {
        None => "-".into(),
        Some(Value::String(s)) => format!("{s:?}"),
        Some(v) => v.to_string(),
    }
}

/// The diff for people: `+` added, `~` changed, `=` unchanged, and each field.
pub fn render(d: &ApplyDiff) -> String {
    let mut out = String::new();
    for s in &d.services {
        let mark = match s.change {
            "added" => '+',
            "changed" => '~',
            _ => '=',
        };
        out.push_str(&format!("{mark} service {} ({})\n", s.name, s.change));
        for f in &s.fields {
            let line = match f.change {
                "added" => format!("    + {}: {}", f.path, short(&f.file)),
                "removed" => format!("    - {}: {}", f.path, short(&f.stored)),
                _ => format!(
                    "    ~ {}: {} -> {}",
                    f.path,
                    short(&f.stored),
                    short(&f.file)
                ),
            };
            out.push_str(&line);
            out.push('\n');
        }
    }
    if !d.not_in_file.is_empty() {
        out.push_str(&format!(
            "  not in the file (apply keeps them): {}\n",
            d.not_in_file.join(", ")
        ));
    }
    out.push_str("dry run: nothing was written\n");
    out
}

/// `orion apply -f FILE --dry-run`.
pub async fn apply_dry_run(client: &Client, path: &Path, format: OutputFormat) -> Result<()> {
    let specs = load_specs(path)?;
    let stored: Vec<ServiceStatus> = client.get("/v1/services").await?;
    let d = diff(&specs, &stored);
    match format {
        OutputFormat::Table => print!("{}", render(&d)),
        _ => println!("{}", render_value(&d, format)),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(spec: ServiceSpec) -> ServiceStatus {
        ServiceStatus::new(spec, 1, &[])
    }

    #[test]
    fn a_diff_names_added_changed_and_removed_fields() {
        let mut stored = ServiceSpec::new("web", "nginx:1", 2);
        stored.env = vec!["A=1".into(), "B=2".into()];
        let mut file = ServiceSpec::new("web", "nginx:2", 2);
        file.env = vec!["A=1".into()];
        file.labels.insert("tier".into(), "front".into());
        let new = ServiceSpec::new("api", "api:1", 1);
        let d = diff(
            &[file, new],
            &[status(stored), status(ServiceSpec::new("db", "pg", 1))],
        );
        assert_eq!(d.services[0].change, "changed");
        let fields: Vec<(&str, &str)> = d.services[0]
            .fields
            .iter()
            .map(|f| (f.path.as_str(), f.change))
            .collect();
        assert!(fields.contains(&("image", "changed")), "{fields:?}");
        assert!(fields.contains(&("env[1]", "removed")), "{fields:?}");
        assert!(fields.contains(&("labels.tier", "added")), "{fields:?}");
        assert_eq!(d.services[1].change, "added");
        assert_eq!(d.not_in_file, ["db"]);
        let text = render(&d);
        assert!(
            text.contains("~ image: \"nginx:1\" -> \"nginx:2\""),
            "{text}"
        );
        assert!(text.contains("nothing was written"), "{text}");
    }

    #[test]
    fn the_same_spec_is_unchanged() {
        let spec = ServiceSpec::new("web", "nginx", 1);
        let d = diff(std::slice::from_ref(&spec), &[status(spec.clone())]);
        assert_eq!(d.services[0].change, "unchanged");
        assert!(d.services[0].fields.is_empty());
    }
}
