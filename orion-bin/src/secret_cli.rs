//! `orion secret create NAME [--from-file FILE]`, `orion secret ls`, `orion secret rm NAME`.
//! The value is read from standard input (or a file), never from the command line, where it
//! would show in the shell's history and in `ps`; it is never printed back.

use std::io::Read;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use orion_core::secrets::MAX_SECRET_BYTES;
use reqwest::Method;

use crate::api::secrets::SecretInfo;
use crate::cli::OutputFormat;
use crate::client::Client;
use crate::output::{Tabular, render_list, render_value};

/// `orion secret ...`.
#[derive(Debug, Subcommand)]
pub enum SecretAction {
    /// Create a secret; its value is read from standard input, or from `--from-file`, as bytes
    /// (1 B to 64 KiB; a trailing newline is kept). It is sealed before it is stored.
    Create {
        /// A DNS label (`db-password`).
        name: String,
        /// Read the value from this file instead of standard input.
        #[arg(long)]
        from_file: Option<PathBuf>,
    },
    /// Secrets' names, creation times and key ids (never their values).
    #[command(alias = "list")]
    Ls,
    /// Remove a secret (refused while a service references it).
    #[command(alias = "delete")]
    Rm {
        /// The secret's name.
        name: String,
    },
}

impl Tabular for SecretInfo {
    fn header() -> Vec<&'static str> {
        vec!["NAME", "CREATED", "KEY"]
    }
    fn row(&self) -> Vec<String> {
        let created = std::time::UNIX_EPOCH + std::time::Duration::from_millis(self.created_at_ms);
        vec![
            self.name.clone(),
            humantime::format_rfc3339_seconds(created).to_string(),
            self.key_id.clone(),
        ]
    }
}

/// Reads at most [`MAX_SECRET_BYTES`] + 1 bytes, so an oversized input is refused without
/// reading all of it.
fn read_value(from_file: Option<&PathBuf>) -> Result<Vec<u8>> {
    let limit = MAX_SECRET_BYTES as u64 + 1;
    let mut value = Vec::new();
    match from_file {
        Some(path) => std::fs::File::open(path)
            .with_context(|| format!("cannot open {}", path.display()))?
            .take(limit)
            .read_to_end(&mut value)
            .with_context(|| format!("cannot read {}", path.display()))?,
        None => std::io::stdin()
            .lock()
            .take(limit)
            .read_to_end(&mut value)
            .context("cannot read the value from standard input")?,
    };
    if value.is_empty() || value.len() > MAX_SECRET_BYTES {
        bail!(crate::commands::Exit {
            code: crate::client::exit::INVALID,
            message: format!(
                "the secret's value must be 1 to {MAX_SECRET_BYTES} bytes (64 KiB); got {}",
                if value.is_empty() {
                    "nothing".to_owned()
                } else {
                    format!("more than {MAX_SECRET_BYTES} bytes")
                }
            ),
        });
    }
    Ok(value)
}

/// Runs `orion secret ACTION`.
pub async fn secret(client: &Client, action: SecretAction, format: OutputFormat) -> Result<()> {
    match action {
        SecretAction::Create { name, from_file } => {
            let value = read_value(from_file.as_ref())?;
            let info: SecretInfo = client
                .post_bytes(&format!("/v1/secrets/{name}"), value)
                .await?;
            match format {
                OutputFormat::Table => {
                    println!("secret {} created (key {})", info.name, info.key_id)
                }
                _ => println!("{}", render_value(&info, format)),
            }
        }
        SecretAction::Ls => {
            let list: Vec<SecretInfo> = client.get("/v1/secrets").await?;
            println!("{}", render_list(&list, format));
        }
        SecretAction::Rm { name } => {
            let answer: serde_json::Value = client
                .call(Method::DELETE, &format!("/v1/secrets/{name}"), None::<&()>)
                .await?;
            if crate::commands::structured(format) {
                println!("{}", render_value(&answer, format));
            } else {
                println!("secret {name} removed");
            }
        }
    }
    Ok(())
}
