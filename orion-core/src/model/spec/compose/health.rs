//! A Compose service's `healthcheck`, as a command health check.

use serde_json::Value;

use super::{Importer, describe};
use crate::model::spec::{HealthCheck, HealthCheckType};

impl Importer<'_> {
    pub(super) fn healthcheck(&mut self, path: &str, value: &Value) -> Option<HealthCheck> {
        let Value::Object(map) = value else {
            self.refuse(
                path,
                describe(value),
                "a mapping with test, interval, timeout, retries, start_period",
            );
            return None;
        };
        if map.get("disable").and_then(Value::as_bool) == Some(true) {
            return None;
        }
        let mut check = HealthCheck {
            kind: HealthCheckType::Command,
            http_path: None,
            expected_status: None,
            port: None,
            command: Vec::new(),
            // Docker's defaults.
            interval: 30,
            timeout: 30,
            retries: 2,
            start_period: 0,
        };
        for (key, v) in map {
            let at = format!("{path}.{key}");
            let secs = |imp: &mut Self| -> Option<u64> {
                match v.as_str().map(super::values::go_duration_secs) {
                    Some(Ok(s)) => Some(s),
                    Some(Err(e)) => {
                        imp.refuse(&at, describe(v), e);
                        None
                    }
                    None => {
                        imp.refuse(&at, describe(v), "a duration such as `30s`");
                        None
                    }
                }
            };
            match key.as_str() {
                "test" => match self.health_test(&at, v) {
                    Some(command) if command.is_empty() => return None,
                    Some(command) => check.command = command,
                    None => {}
                },
                "interval" => check.interval = secs(self).unwrap_or(check.interval),
                "timeout" => check.timeout = secs(self).unwrap_or(check.timeout),
                "start_period" => check.start_period = secs(self).unwrap_or(0),
                // Docker turns unhealthy after `retries` failures; Orion after `retries + 1`.
                "retries" => match v.as_u64().and_then(|r| u32::try_from(r).ok()) {
                    Some(r) => check.retries = r.saturating_sub(1),
                    None => self.refuse(&at, describe(v), "a whole number"),
                },
                "disable" => {}
                k if k.starts_with("x-") => {}
                _ => self.refuse(
                    &at,
                    format!("`{key}`"),
                    "test, interval, timeout, retries, start_period or disable",
                ),
            }
        }
        if check.command.is_empty() {
            self.refuse(path, "a health check without `test`", "a `test` command");
            return None;
        }
        Some(check)
    }

    /// `test`: `["CMD", ...]`, `["CMD-SHELL", "..."]`, a shell string, or `["NONE"]` (an empty
    /// command: no check).
    fn health_test(&mut self, path: &str, value: &Value) -> Option<Vec<String>> {
        let shell = |s: &str| vec!["/bin/sh".to_owned(), "-c".to_owned(), s.to_owned()];
        if let Value::String(s) = value {
            return Some(shell(s));
        }
        let words = self.strings(path, value, "a string");
        match words.split_first() {
            Some((first, rest)) if first == "CMD" && !rest.is_empty() => Some(rest.to_vec()),
            Some((first, rest)) if first == "CMD-SHELL" && rest.len() == 1 => Some(shell(&rest[0])),
            Some((first, [])) if first == "NONE" => Some(Vec::new()),
            _ => {
                self.refuse(
                    path,
                    describe(value),
                    "[CMD, program, args...], [CMD-SHELL, \"command\"], [NONE] or a shell string",
                );
                None
            }
        }
    }
}
