//! Contexts: several clusters, each with its API address and the credentials file holding its
//! token, in one client config file like kubectl's: `ORION_CONFIG`, else
//! `$XDG_CONFIG_HOME/orion/config.yaml`, else `~/.config/orion/config.yaml`.
//!
//! ```yaml
//! currentContext: prod
//! contexts:
//!   prod: { addr: "10.0.0.5:8000", credentials: /home/me/.config/orion/prod.credentials }
//!   dev: { addr: "127.0.0.1:8000" }
//! ```
//!
//! Tokens stay in credentials files (mode 0600), never in this file. Precedence, for the
//! address: `--addr` > `ORION_ADDR` > the context's > the default; for the token: `--token` /
//! `ORION_TOKEN` > `--credentials` / `ORION_CREDENTIALS` > the context's credentials file > the
//! default files. The context is `--context` / `ORION_CONTEXT`, else `currentContext`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use clap::Subcommand;
use serde::{Deserialize, Serialize};

/// Largest config file read.
pub const MAX_CONFIG_BYTES: u64 = 64 * 1024;
/// Most contexts in one file.
pub const MAX_CONTEXTS: usize = 100;

/// `orion context ...`.
#[derive(Debug, Subcommand)]
pub enum ContextAction {
    /// The contexts, the current one marked with `*`.
    #[command(alias = "ls")]
    List,
    /// Make NAME the current context.
    Use {
        /// The context's name.
        name: String,
    },
    /// Create or replace a context.
    Set {
        /// The context's name (letters, digits, '-', '_' and '.', at most 63).
        name: String,
        /// The API address of one of the cluster's nodes (`HOST:PORT`).
        #[arg(long)]
        addr: String,
        /// The credentials file holding the token for this cluster (mode 0600).
        #[arg(long)]
        credentials: Option<PathBuf>,
    },
    /// Remove a context (the current one too: then there is none).
    #[command(alias = "rm")]
    Delete {
        /// The context's name.
        name: String,
    },
}

/// One cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterContext {
    /// API address (`HOST:PORT`).
    pub addr: String,
    /// Credentials file with the token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<PathBuf>,
}

/// The client config file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ClientConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_context: Option<String>,
    #[serde(default)]
    pub contexts: BTreeMap<String, ClusterContext>,
}

/// The config file's path from `ORION_CONFIG`, `XDG_CONFIG_HOME` and `HOME` (as given).
pub fn config_path_from(
    orion_config: Option<&str>,
    xdg: Option<&str>,
    home: Option<&str>,
) -> Option<PathBuf> {
    if let Some(p) = orion_config.filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    if let Some(x) = xdg.filter(|x| !x.is_empty()) {
        return Some(Path::new(x).join("orion/config.yaml"));
    }
    home.filter(|h| !h.is_empty())
        .map(|h| Path::new(h).join(".config/orion/config.yaml"))
}

/// The config file's path from the environment.
pub fn config_path() -> Option<PathBuf> {
    let var = |n: &str| std::env::var(n).ok();
    config_path_from(
        var("ORION_CONFIG").as_deref(),
        var("XDG_CONFIG_HOME").as_deref(),
        var("HOME").as_deref(),
    )
}

fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !ok {
        bail!("context name {name:?}: expected 1 to 63 letters, digits, '-', '_' or '.'");
    }
    Ok(())
}

impl ClientConfig {
    /// Reads `path`; a missing file is an empty config. Refuses a file over
    /// [`MAX_CONFIG_BYTES`], more than [`MAX_CONTEXTS`] contexts, unknown keys, and a current
    /// context that is not defined.
    pub fn load(path: &Path) -> Result<ClientConfig> {
        let meta = match std::fs::metadata(path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        if meta.len() > MAX_CONFIG_BYTES {
            bail!(
                "client config {} is {} bytes, expected at most {MAX_CONFIG_BYTES}",
                path.display(),
                meta.len()
            );
        }
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let config: ClientConfig = if text.trim().is_empty() {
            Self::default()
        } else {
            serde_saphyr::from_str(&text)
                .with_context(|| format!("invalid client config {}", path.display()))?
        };
        if config.contexts.len() > MAX_CONTEXTS {
            bail!(
                "client config {}: {} contexts, expected at most {MAX_CONTEXTS}",
                path.display(),
                config.contexts.len()
            );
        }
        if let Some(current) = &config.current_context
            && !config.contexts.contains_key(current)
        {
            bail!(
                "client config {}: currentContext {current:?} is not among the contexts ({})",
                path.display(),
                config.names()
            );
        }
        Ok(config)
    }

    /// Writes the config to `path` (creating its directory).
    pub fn save(&self, path: &Path) -> Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let text = serde_saphyr::to_string(self).context("encoding the client config")?;
        std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
    }

    fn names(&self) -> String {
        let names: Vec<&str> = self.contexts.keys().map(String::as_str).collect();
        if names.is_empty() {
            "none defined".into()
        } else {
            names.join(", ")
        }
    }

    /// The context to use: `asked` (`--context` / `ORION_CONTEXT`, which must exist), else the
    /// current one, else none.
    pub fn select(&self, asked: Option<&str>) -> Result<Option<&ClusterContext>> {
        match asked.filter(|a| !a.is_empty()) {
            Some(name) => self.contexts.get(name).map(Some).with_context(|| {
                format!(
                    "--context {name:?}: no such context (defined: {}); add it with `orion \
                     context set {name} --addr HOST:PORT`",
                    self.names()
                )
            }),
            None => Ok(self
                .current_context
                .as_ref()
                .and_then(|c| self.contexts.get(c))),
        }
    }

    /// Applies `action`; the text to print.
    pub fn apply(&mut self, action: ContextAction) -> Result<String> {
        match action {
            ContextAction::List => {
                let mut out = String::from("CURRENT  NAME  ADDR  CREDENTIALS\n");
                for (name, c) in &self.contexts {
                    let mark = if self.current_context.as_deref() == Some(name) {
                        "*"
                    } else {
                        ""
                    };
                    let creds = c
                        .credentials
                        .as_ref()
                        .map_or("-".into(), |p| p.display().to_string());
                    out.push_str(&format!("{mark}  {name}  {}  {creds}\n", c.addr));
                }
                Ok(out)
            }
            ContextAction::Use { name } => {
                if !self.contexts.contains_key(&name) {
                    bail!("no context {name:?} (defined: {})", self.names());
                }
                self.current_context = Some(name.clone());
                Ok(format!("current context: {name}\n"))
            }
            ContextAction::Set {
                name,
                addr,
                credentials,
            } => {
                check_name(&name)?;
                if addr.trim().is_empty() || addr.contains(char::is_whitespace) {
                    bail!("--addr {addr:?}: expected HOST:PORT of a node's API");
                }
                if !self.contexts.contains_key(&name) && self.contexts.len() >= MAX_CONTEXTS {
                    bail!("at most {MAX_CONTEXTS} contexts; delete one first");
                }
                if let Some(path) = &credentials {
                    crate::credentials::read_credentials(path)
                        .with_context(|| format!("--credentials {}", path.display()))?;
                }
                let credentials = credentials.map(|p| std::path::absolute(&p).unwrap_or(p));
                self.contexts
                    .insert(name.clone(), ClusterContext { addr, credentials });
                Ok(format!("context {name} set\n"))
            }
            ContextAction::Delete { name } => {
                if self.contexts.remove(&name).is_none() {
                    bail!("no context {name:?} (defined: {})", self.names());
                }
                if self.current_context.as_deref() == Some(name.as_str()) {
                    self.current_context = None;
                }
                Ok(format!("context {name} deleted\n"))
            }
        }
    }
}

/// `orion context ...` on the config file of the environment.
pub fn context(action: ContextAction) -> Result<()> {
    let path = config_path().context(
        "no client config path: set ORION_CONFIG, XDG_CONFIG_HOME or HOME to say where it is",
    )?;
    let mut config = ClientConfig::load(&path)?;
    let writes = !matches!(action, ContextAction::List);
    let text = config.apply(action)?;
    if writes {
        config.save(&path)?;
    }
    print!("{text}");
    Ok(())
}

/// Applies the selected context to a client command's `cli`: its address unless `--addr` /
/// `ORION_ADDR` was given, its credentials file unless `--credentials` / `ORION_CREDENTIALS`
/// was. Server commands and `orion context` itself are left alone.
pub fn apply_to(cli: &mut crate::cli::Cli) -> Result<()> {
    use crate::cli::Command as C;
    let client = match &cli.command {
        C::Server(_) | C::Up(_) | C::Validate(_) => false,
        C::Completions { .. } | C::Man { .. } | C::Context { .. } => false,
        C::Start(start) => start.file.is_some(),
        _ => true,
    };
    if !client {
        return Ok(());
    }
    let config = match config_path() {
        Some(path) => ClientConfig::load(&path)?,
        None => ClientConfig::default(),
    };
    let Some(ctx) = config.select(cli.context.as_deref())? else {
        return Ok(());
    };
    if !cli.addr_given {
        cli.addr = ctx.addr.clone();
    }
    if cli.credentials.is_none() {
        cli.credentials = ctx.credentials.clone();
    }
    Ok(())
}

#[cfg(test)]
#[path = "context_tests.rs"]
mod tests;
