//! Reading specs from YAML or JSON, and writing them back.
//!
//! Both formats go the same way: the text is parsed into a generic [`serde_json::Value`] (syntax
//! errors keep their line and column), then the typed spec is read from that value with
//! `serde_path_to_error`, so a wrong type or an unknown field names its path
//! (`ports[1].host_port`) whatever the format. An unknown field or variant gets a
//! "did you mean" hint. YAML is read with YAML 1.2 booleans (`no` is the string `"no"`, so
//! `restart_policy: no` works) and numbers with leading zeros stay strings.
//!
//! Accepted documents:
//! - [`parse_spec`]: one service spec, or seed 000's `kind: Deployment` wrapper.
//! - [`parse_specs`]: any number of those, as a list, as several YAML documents (`---`), or as
//!   seed 002's config document (`services:` plus root fields `env`, `listen_addr`, `data_dir`,
//!   `cluster_name`, which are checked and otherwise ignored here).

use std::path::Path;

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::ServiceSpec;
use super::validate::SpecLimits;
use super::{locate, wrapper};
use crate::error::{Error, ParseError, ValidationErrors};

/// The document format of a spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpecFormat {
    Yaml,
    Json,
    /// JSON when the first non-blank character is `{` or `[`, otherwise YAML. Text that looks
    /// like JSON but is not is read as YAML (`[{name: web}]`); if both fail, the JSON error is
    /// reported.
    Auto,
}

impl SpecFormat {
    /// The format a file name implies: `.json` is JSON, `.yaml`/`.yml` YAML (any case), and
    /// anything else [`SpecFormat::Auto`].
    pub fn from_path(path: impl AsRef<Path>) -> SpecFormat {
        let ext = path
            .as_ref()
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match ext.as_deref() {
            Some("json") => SpecFormat::Json,
            Some("yaml" | "yml") => SpecFormat::Yaml,
            _ => SpecFormat::Auto,
        }
    }

    /// `Yaml` or `Json`, deciding `Auto` from the text.
    fn resolve(self, text: &str) -> SpecFormat {
        match self {
            SpecFormat::Auto => match text.trim_start().chars().next() {
                Some('{' | '[') => SpecFormat::Json,
                _ => SpecFormat::Yaml,
            },
            other => other,
        }
    }
}

/// Parses and validates one service spec (plain, or a `kind: Deployment` wrapper).
///
/// Errors: [`Error::Parse`] when the text is not a spec (syntax, wrong type, unknown or missing
/// field), [`Error::Invalid`] with every rule the spec breaks.
pub fn parse_spec(text: &str, format: SpecFormat) -> Result<ServiceSpec, Error> {
    parse_spec_with(text, format, &SpecLimits::default())
}

/// [`parse_spec`] validating against the cluster's `limits` instead of the defaults.
pub fn parse_spec_with(
    text: &str,
    format: SpecFormat,
    limits: &SpecLimits,
) -> Result<ServiceSpec, Error> {
    let (mut docs, format) = parse_documents(text, format)?;
    if docs.len() != 1 {
        return Err(ParseError {
            path: String::new(),
            message: format!(
                "expected one spec document, found {}; use parse_specs for several",
                docs.len()
            ),
            location: None,
        }
        .into());
    }
    let doc = docs.remove(0);
    if doc.is_array() || doc.get("services").is_some() {
        return Err(ParseError {
            path: String::new(),
            message: "this document holds a list of services (a list or a `services:` config); \
                      read it with parse_specs"
                .into(),
            location: None,
        }
        .into());
    }
    let (spec, paths) =
        wrapper::spec_from_value(doc).map_err(|e| with_location(e, text, format))?;
    spec.validate_with(limits)
        .map_err(|errs| paths.rewrite_errors(errs, ""))?;
    Ok(spec)
}

/// Parses and validates any number of specs: one spec, a list of specs, several YAML documents
/// separated by `---`, or a config document with a `services:` list. Every service is validated
/// and all problems of all services are reported together, with paths such as
/// `services[1].ports[0].container_port`; two services with one name are an error too.
pub fn parse_specs(text: &str, format: SpecFormat) -> Result<Vec<ServiceSpec>, Error> {
    let (docs, format) = parse_documents(text, format)?;
    let several_docs = docs.len() > 1;
    // Positions are looked up in the text, which only works with one document in it.
    let locate = |e: ParseError| {
        if several_docs {
            e
        } else {
            with_location(e, text, format)
        }
    };
    let mut items: Vec<(String, Value)> = Vec::new();
    for (d, doc) in docs.into_iter().enumerate() {
        let doc_prefix = if several_docs {
            format!("documents[{d}]")
        } else {
            String::new()
        };
        match doc {
            Value::Array(list) => {
                for (i, v) in list.into_iter().enumerate() {
                    items.push((format!("{doc_prefix}[{i}]"), v));
                }
            }
            Value::Object(ref map) if map.contains_key("services") => {
                let services = wrapper::config_services(doc)
                    .map_err(|e| locate(prefix_parse_error(e, &doc_prefix)))?;
                for (i, v) in services.into_iter().enumerate() {
                    items.push((join_path(&doc_prefix, &format!("services[{i}]")), v));
                }
            }
            other => items.push((doc_prefix, other)),
        }
    }
    let mut specs: Vec<ServiceSpec> = Vec::with_capacity(items.len());
    let mut name_paths: Vec<String> = Vec::with_capacity(items.len());
    let mut problems = ValidationErrors::default();
    for (prefix, value) in items {
        let (spec, paths) =
            wrapper::spec_from_value(value).map_err(|e| locate(prefix_parse_error(e, &prefix)))?;
        if let Err(errs) = spec.validate() {
            problems.0.extend(paths.rewrite_errors(errs, &prefix).0);
        }
        let name_path = join_path(&prefix, &paths.rewrite("name"));
        if let Some(first) = specs.iter().position(|s| s.name == spec.name) {
            problems.push(
                name_path.clone(),
                format!("{:?}", spec.name),
                format!(
                    "a name not used by another service (`{}` has it)",
                    name_paths[first]
                ),
            );
        }
        specs.push(spec);
        name_paths.push(name_path);
    }
    problems.into_result()?;
    Ok(specs)
}

impl ServiceSpec {
    /// The spec as YAML, in canonical form (lists, objects, plain numbers, volume strings).
    /// For a valid spec, `parse_spec(&spec.to_yaml()?, SpecFormat::Yaml)` gives it back.
    pub fn to_yaml(&self) -> Result<String, Error> {
        serde_saphyr::to_string(self).map_err(|e| Error::backend("writing the spec as YAML", e))
    }

    /// The spec as pretty-printed JSON, in the same canonical form as [`ServiceSpec::to_yaml`].
    pub fn to_json(&self) -> Result<String, Error> {
        serde_json::to_string_pretty(self)
            .map_err(|e| Error::backend("writing the spec as JSON", e))
    }
}

/// `a.b` from `a` and `b`, leaving out the dot where either side is empty or `b` is an index.
pub(super) fn join_path(prefix: &str, rest: &str) -> String {
    if prefix.is_empty() {
        rest.to_owned()
    } else if rest.is_empty() || rest.starts_with('[') {
        format!("{prefix}{rest}")
    } else {
        format!("{prefix}.{rest}")
    }
}

/// Adds the line and column of the error's path in `text` (read as `format`, `Yaml` or
/// `Json`), when it has none and can be found.
fn with_location(mut e: ParseError, text: &str, format: SpecFormat) -> ParseError {
    if e.location.is_none() && !e.path.is_empty() {
        e.location = locate::locate(text, format, &e.path);
    }
    e
}

fn prefix_parse_error(mut e: ParseError, prefix: &str) -> ParseError {
    e.path = join_path(prefix, &e.path);
    e
}

/// Parses the text into generic values, one per document (JSON always has one), and says which
/// format it was read as. `Auto` text that looks like JSON but is not is read as YAML (a
/// superset of JSON: `[{name: web, image: nginx}]`); when both fail, the JSON error is reported.
pub(super) fn parse_documents(
    text: &str,
    format: SpecFormat,
) -> Result<(Vec<Value>, SpecFormat), ParseError> {
    match (format, format.resolve(text)) {
        (SpecFormat::Auto, SpecFormat::Json) => match parse_json(text) {
            Ok(docs) => Ok((docs, SpecFormat::Json)),
            Err(json_error) => parse_yaml(text)
                .map(|docs| (docs, SpecFormat::Yaml))
                .map_err(|_| json_error),
        },
        (_, SpecFormat::Json) => parse_json(text).map(|docs| (docs, SpecFormat::Json)),
        _ => parse_yaml(text).map(|docs| (docs, SpecFormat::Yaml)),
    }
}

fn parse_json(text: &str) -> Result<Vec<Value>, ParseError> {
    serde_json::from_str(text)
        .map(|v| vec![v])
        .map_err(|e| ParseError {
            path: String::new(),
            message: format!("invalid JSON: {e}"),
            location: (e.line() > 0).then(|| (e.line(), e.column())),
        })
}

fn parse_yaml(text: &str) -> Result<Vec<Value>, ParseError> {
    let docs: Vec<Value> = serde_saphyr::from_str_multiple_with_options(text, yaml_options())
        .map_err(|e| ParseError {
            path: String::new(),
            message: format!("invalid YAML: {}", e.without_snippet()),
            location: e
                .location()
                .map(|l| (l.line() as usize, l.column() as usize))
                .filter(|&(line, _)| line > 0),
        })?;
    let docs: Vec<Value> = docs.into_iter().filter(|d| !d.is_null()).collect();
    if docs.is_empty() {
        return Err(ParseError {
            path: String::new(),
            message: "the document is empty; expected a service spec".into(),
            location: None,
        });
    }
    Ok(docs)
}

/// YAML 1.2 booleans, leading-zero numbers as strings, no snippet in messages.
pub(super) fn yaml_options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        strict_booleans: true,
        leading_zero_numbers_as_strings: true,
        with_snippet: false,
    }
}

/// Reads `T` from a generic value, reporting the field path and a "did you mean" hint.
pub(super) fn from_value<T: DeserializeOwned>(value: Value) -> Result<T, ParseError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        ParseError {
            path: if path == "." { String::new() } else { path },
            message: with_hint(&plain_types(&e.inner().to_string())),
            location: None,
        }
    })
}

/// Replaces Rust type names at the end of serde's messages ("expected u16") with what they
/// accept ("expected a whole number 0-65535").
fn plain_types(message: &str) -> String {
    const NAMES: [(&str, &str); 6] = [
        ("expected u16", "expected a whole number 0-65535"),
        ("expected u32", "expected a whole number 0-4294967295"),
        ("expected u64", "expected a whole number >= 0"),
        ("expected i64", "expected a whole number"),
        ("expected f64", "expected a number"),
        ("expected struct ServiceSpec", "expected a service spec"),
    ];
    for (rust, plain) in NAMES {
        if let Some(head) = message.strip_suffix(rust) {
            return format!("{head}{plain}");
        }
    }
    message.to_owned()
}

/// Rewrites serde's "unknown field `replica`, expected one of `name`, ..." (or variant) into
/// "unknown field `replica`; did you mean `replicas`? Accepted: `name`, ...". camelCase aliases
/// are left out of the accepted list (they are still accepted).
pub(super) fn with_hint(message: &str) -> String {
    let kind = if message.starts_with("unknown field `") {
        "field"
    } else if message.starts_with("unknown variant `") {
        "variant"
    } else {
        return message.to_owned();
    };
    let ticked: Vec<&str> = message.split('`').skip(1).step_by(2).collect();
    let Some((unknown, expected)) = ticked.split_first() else {
        return message.to_owned();
    };
    let mut out = format!("unknown {kind} `{unknown}`");
    if let Some(best) = closest(unknown, expected) {
        out.push_str(&format!("; did you mean `{best}`?"));
    } else {
        out.push('.');
    }
    let listed: Vec<String> = expected
        .iter()
        .filter(|name| !name.chars().any(|c| c.is_ascii_uppercase()))
        .map(|name| format!("`{name}`"))
        .collect();
    if listed.is_empty() {
        out.push_str(&format!(" There are no {kind}s to choose from here."));
    } else {
        out.push_str(&format!(" Accepted: {}.", listed.join(", ")));
    }
    out
}

/// The expected name closest to `unknown`, when it is close enough to be a likely typo.
fn closest<'a>(unknown: &str, expected: &[&'a str]) -> Option<&'a str> {
    let norm = |s: &str| {
        s.chars()
            .filter(|c| *c != '_' && *c != '-')
            .collect::<String>()
            .to_ascii_lowercase()
    };
    let target = norm(unknown);
    let (best, score) = expected
        .iter()
        .map(|&name| (name, strsim::jaro_winkler(&target, &norm(name))))
        .max_by(|a, b| a.1.total_cmp(&b.1))?;
    // The canonical (snake_case) spelling of a camelCase match is the one to suggest.
    let best = expected
        .iter()
        .copied()
        .find(|n| norm(n) == norm(best) && !n.chars().any(|c| c.is_ascii_uppercase()))
        .unwrap_or(best);
    (score >= 0.8).then_some(best)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_from_path() {
        assert_eq!(SpecFormat::from_path("a/web.json"), SpecFormat::Json);
        assert_eq!(SpecFormat::from_path("web.YML"), SpecFormat::Yaml);
        assert_eq!(SpecFormat::from_path("web.yaml"), SpecFormat::Yaml);
        assert_eq!(SpecFormat::from_path("web"), SpecFormat::Auto);
        assert_eq!(SpecFormat::Auto.resolve("  {\"a\":1}"), SpecFormat::Json);
        assert_eq!(SpecFormat::Auto.resolve("name: web"), SpecFormat::Yaml);
    }

    #[test]
    fn hints_the_nearest_name() {
        let msg = "unknown field `replica`, expected one of `name`, `service_name`, `replicas`, `restartPolicy`";
        let hinted = with_hint(msg);
        assert!(hinted.contains("did you mean `replicas`?"), "{hinted}");
        assert!(!hinted.contains("restartPolicy"), "{hinted}");
        let far = with_hint("unknown field `zzzz`, expected `name` or `image`");
        assert!(!far.contains("did you mean"), "{far}");
        assert!(far.ends_with("`zzzz`. Accepted: `name`, `image`."), "{far}");
        assert_eq!(with_hint("missing field `image`"), "missing field `image`");
    }

    #[test]
    fn camel_case_typo_suggests_snake_case() {
        let msg =
            "unknown field `restartpolicy`, expected one of `restart_policy`, `restartPolicy`";
        assert!(with_hint(msg).contains("did you mean `restart_policy`?"));
    }

    #[test]
    fn rust_type_names_become_plain_words() {
        assert_eq!(
            plain_types("invalid type: string \"x\", expected u16"),
            "invalid type: string \"x\", expected a whole number 0-65535"
        );
        assert_eq!(plain_types("invalid length 2"), "invalid length 2");
    }

    #[test]
    fn join_paths() {
        assert_eq!(join_path("", "name"), "name");
        assert_eq!(join_path("services[1]", "name"), "services[1].name");
        assert_eq!(join_path("documents[0]", "[2]"), "documents[0][2]");
        assert_eq!(join_path("services[1]", ""), "services[1]");
    }
}
