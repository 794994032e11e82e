//! Validation of `secrets:` references.

use std::collections::HashSet;

use super::ServiceSpec;
use super::validate::is_env_key;
use crate::error::ValidationErrors;
use crate::secrets::{MAX_SECRETS_PER_SERVICE, SecretTarget, check_secret_name};

/// The longest file path a secret may be delivered to.
const MAX_SECRET_PATH: usize = 4096;

impl ServiceSpec {
    pub(super) fn check_secrets(&self, errs: &mut ValidationErrors) {
        if self.secrets.len() > MAX_SECRETS_PER_SERVICE {
            errs.push(
                "secrets",
                format!("{} secrets", self.secrets.len()),
                format!("at most {MAX_SECRETS_PER_SERVICE}"),
            );
        }
        let env_keys: HashSet<&str> = self
            .env
            .iter()
            .filter_map(|e| e.split_once('=').map(|(k, _)| k))
            .collect();
        let volume_targets: HashSet<&str> =
            self.volumes.iter().map(|v| v.target.as_str()).collect();
        let mut vars = HashSet::new();
        let mut files = HashSet::new();
        for (i, r) in self.secrets.iter().enumerate() {
            if let Err(expected) = check_secret_name(&r.name) {
                errs.push(
                    format!("secrets[{i}].name"),
                    format!("{:?}", r.name),
                    expected,
                );
            }
            if r.env.is_some() && r.file.is_some() {
                errs.push(
                    format!("secrets[{i}]"),
                    "both env and file",
                    "one of env or file (reference the secret twice to deliver it both ways)",
                );
                continue;
            }
            match r.target() {
                SecretTarget::Env(var) => {
                    let path = format!("secrets[{i}].env");
                    if !is_env_key(&var) {
                        errs.push(
                            path,
                            format!("{var:?}"),
                            "an env name of letters, digits and '_', not starting with a digit",
                        );
                    } else if env_keys.contains(var.as_str()) || !vars.insert(var.clone()) {
                        errs.push(
                            path,
                            format!("{var:?}"),
                            "a variable not already set by env or another secret",
                        );
                    }
                }
                SecretTarget::File(file) => {
                    let path = format!("secrets[{i}].file");
                    let clean = file.starts_with('/')
                        && file.len() > 1
                        && file.len() <= MAX_SECRET_PATH
                        && !file.ends_with('/')
                        && !file.contains(':')
                        && !file.split('/').any(|seg| seg == ".." || seg == ".");
                    if !clean {
                        errs.push(
                            path,
                            format!("{file:?}"),
                            "an absolute file path in the container, without '.', '..' or ':' \
                             segments, at most 4096 bytes (default /run/secrets/<name>)",
                        );
                    } else if volume_targets.contains(file.as_str()) || !files.insert(file.clone())
                    {
                        errs.push(
                            path,
                            format!("{file:?}"),
                            "a path not used by a volume or another secret",
                        );
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::model::spec::{SpecFormat, parse_spec};

    fn paths(yaml: &str) -> Vec<String> {
        match parse_spec(yaml, SpecFormat::Yaml) {
            Err(crate::Error::Invalid(errs)) => errs.0.into_iter().map(|e| e.path).collect(),
            other => panic!("expected invalid, got {other:?}"),
        }
    }

    #[test]
    fn references_parse_as_env_or_file_and_round_trip() {
        let yaml = "name: api\nimage: x\nsecrets:\n  - {name: db, env: DB}\n  - {name: db}\n  - {name: tls, file: /etc/tls.key}\n";
        let spec = parse_spec(yaml, SpecFormat::Yaml).unwrap();
        assert_eq!(spec.secrets.len(), 3);
        assert_eq!(
            parse_spec(&spec.to_yaml().unwrap(), SpecFormat::Yaml).unwrap(),
            spec
        );
    }

    #[test]
    fn bad_references_are_refused_with_their_paths() {
        let yaml = "name: api\nimage: x\nenv: [DB=1]\nvolumes: [/d:/data]\nsecrets:\n  - {name: Bad_Name}\n  - {name: db, env: DB}\n  - {name: db, env: DB2, file: /x}\n  - {name: db, file: relative}\n  - {name: db, file: /a/../b}\n  - {name: db, file: /data}\n  - {name: db, env: 1X}\n";
        assert_eq!(
            paths(yaml),
            [
                "secrets[0].name",
                "secrets[1].env",
                "secrets[2]",
                "secrets[3].file",
                "secrets[4].file",
                "secrets[5].file",
                "secrets[6].env",
            ]
        );
        assert!(
            parse_spec(
                "name: a\nimage: x\nsecrets: [{name: db, mode: 1}]\n",
                SpecFormat::Yaml
            )
            .is_err()
        );
    }
}
