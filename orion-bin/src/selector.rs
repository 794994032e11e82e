//! Label selectors (`-l`): a subset of Kubernetes' equality-based syntax. Requirements are
//! separated by commas and must all hold:
//!
//! - `key=value` (or `key==value`): the label is there with that value;
//! - `key!=value`: the label is not there, or has another value;
//! - `key`: the label is there; `!key`: it is not.
//!
//! Set-based forms (`in`, `notin`, parentheses) and anything else are refused, naming the
//! requirement and the forms accepted.

use std::collections::BTreeMap;

/// Most requirements in one selector.
pub const MAX_REQUIREMENTS: usize = 32;
/// Longest selector text.
pub const MAX_SELECTOR_BYTES: usize = 4096;

/// One requirement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    Exists(String),
    Absent(String),
}

/// A parsed selector; the empty one matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selector {
    pub requirements: Vec<Requirement>,
}

const FORMS: &str = "expected comma-separated key=value, key!=value, key or !key";

fn check_part(what: &str, part: &str, text: &str) -> Result<(), String> {
    let ok = !part.is_empty()
        && part.len() <= 253
        && part
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "-l {text:?}: {what} {part:?} must be 1 to 253 letters, digits, '-', '_', '.' or '/'; {FORMS}"
        ))
    }
}

fn check_value(value: &str, text: &str) -> Result<(), String> {
    if value.is_empty() {
        return Ok(());
    }
    check_part("value", value, text)
}

impl Selector {
    /// Parses `text`; errors name the requirement that is wrong and the accepted forms.
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.len() > MAX_SELECTOR_BYTES {
            return Err(format!(
                "-l: the selector has {} bytes, expected at most {MAX_SELECTOR_BYTES}",
                text.len()
            ));
        }
        let mut requirements = Vec::new();
        for raw in text.split(',') {
            let req = raw.trim();
            if req.is_empty() {
                return Err(format!("-l {text:?}: an empty requirement; {FORMS}"));
            }
            if req.contains(" in ")
                || req.contains(" notin ")
                || req.contains(['(', ')', '<', '>', ' '])
            {
                return Err(format!(
                    "-l {text:?}: {req:?} is not supported (set-based selectors such as `in` and \
                     `notin` are not); {FORMS}"
                ));
            }
            let parsed = if let Some((k, v)) = req.split_once("!=") {
                check_part("key", k, text)?;
                check_value(v, text)?;
                Requirement::NotEquals(k.into(), v.into())
            } else if let Some((k, v)) = req.split_once("==").or_else(|| req.split_once('=')) {
                check_part("key", k, text)?;
                if v.contains('=') {
                    return Err(format!("-l {text:?}: {req:?} has two '='; {FORMS}"));
                }
                check_value(v, text)?;
                Requirement::Equals(k.into(), v.into())
            } else if let Some(k) = req.strip_prefix('!') {
                check_part("key", k, text)?;
                Requirement::Absent(k.into())
            } else {
                check_part("key", req, text)?;
                Requirement::Exists(req.into())
            };
            requirements.push(parsed);
        }
        if requirements.len() > MAX_REQUIREMENTS {
            return Err(format!(
                "-l: {} requirements, expected at most {MAX_REQUIREMENTS}",
                requirements.len()
            ));
        }
        Ok(Selector { requirements })
    }

    /// True when `labels` meet every requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.requirements.iter().all(|r| match r {
            Requirement::Equals(k, v) => labels.get(k) == Some(v),
            Requirement::NotEquals(k, v) => labels.get(k) != Some(v),
            Requirement::Exists(k) => labels.contains_key(k),
            Requirement::Absent(k) => !labels.contains_key(k),
        })
    }
}

/// clap's value parser for `-l`.
pub fn parse_arg(text: &str) -> Result<Selector, String> {
    Selector::parse(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn every_supported_form_matches_as_kubernetes_does() {
        let s = Selector::parse("tier=web, env!=prod,team,!canary").unwrap();
        assert!(s.matches(&labels(&[("tier", "web"), ("team", "a")])));
        assert!(s.matches(&labels(&[("tier", "web"), ("team", "a"), ("env", "dev")])));
        assert!(!s.matches(&labels(&[("tier", "web"), ("team", "a"), ("env", "prod")])));
        assert!(!s.matches(&labels(&[("tier", "web")])));
        assert!(!s.matches(&labels(&[("tier", "web"), ("team", "a"), ("canary", "")])));
        assert!(
            Selector::parse("a==b")
                .unwrap()
                .matches(&labels(&[("a", "b")]))
        );
        assert!(Selector::default().matches(&labels(&[])));
    }

    #[test]
    fn unsupported_syntax_is_refused_naming_the_forms() {
        for bad in ["env in (a,b)", "a=b=c", "", "a,,b", "x>1", "a=b c", "=v"] {
            let e = Selector::parse(bad).unwrap_err();
            assert!(
                e.contains("key=value, key!=value, key or !key"),
                "{bad}: {e}"
            );
        }
        let e = Selector::parse("env in (prod)").unwrap_err();
        assert!(e.contains("not supported"), "{e}");
    }
}
