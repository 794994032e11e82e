//! `orion token`: API tokens (`create`, `list`, `revoke`) and node join tokens (`rotate
//! voter|worker`); admin role.

use anyhow::Result;
use clap::Subcommand;
use reqwest::Method;

use crate::api::tokens::{CreatedToken, Role, TokenInfo, TokenRequest};
use crate::cli::OutputFormat;
use crate::client::Client;
use crate::output::{Tabular, render_list, render_value};

#[derive(Debug, Subcommand)]
pub enum TokenAction {
    /// Create an API token; it is printed this once (only its hash is kept).
    Create {
        /// A name for the token (a DNS label), e.g. ci.
        #[arg(long)]
        name: String,
        /// admin, operator or read-only.
        #[arg(long, value_parser = clap::builder::ValueParser::new(|s: &str| s.parse::<Role>()))]
        role: Role,
        /// Reach only services whose name starts with this prefix.
        #[arg(long)]
        scope: Option<String>,
    },
    /// List the tokens (ids, names, roles, scopes; never secrets).
    List,
    /// Revoke a token by id: it is refused from then on, on every node.
    Revoke {
        /// The token's id (`orion token list` shows it).
        id: String,
    },
    /// Replace the node join token of a role (voter or worker) and print the new one, this
    /// once; the previous token of that role is refused from then on.
    Rotate {
        /// Which join token: `voter` or `worker`.
        #[arg(value_parser = ["voter", "worker"])]
        role: String,
    },
    /// Make a new admin token through the node running on a voter's data dir, for whoever can
    /// write that dir (no API token needed); it is written to DIR/credentials and printed once.
    Recover {
        /// The voter's data dir (its --data-dir).
        #[arg(long)]
        data_dir: std::path::PathBuf,
    },
}

impl Tabular for TokenInfo {
    fn header() -> Vec<&'static str> {
        vec!["ID", "NAME", "ROLE", "SCOPE", "CREATED"]
    }
    fn row(&self) -> Vec<String> {
        let created = std::time::UNIX_EPOCH + std::time::Duration::from_millis(self.created_at_ms);
        vec![
            self.id.clone(),
            self.name.clone(),
            self.role.name().to_owned(),
            self.scope.clone().map_or("-".into(), |s| format!("{s}*")),
            humantime::format_rfc3339_seconds(created).to_string(),
        ]
    }
}

/// Runs `orion token <action>`.
pub async fn token(client: &Client, action: TokenAction, format: OutputFormat) -> Result<()> {
    match action {
        TokenAction::Create { name, role, scope } => {
            let request = TokenRequest { name, role, scope };
            let created: CreatedToken = client
                .call(Method::POST, "/v1/tokens", Some(&request))
                .await?;
            match format {
                OutputFormat::Table => {
                    println!(
                        "created token {} ({}, role {}); it is shown only this once:",
                        created.info.id,
                        created.info.name,
                        created.info.role.name()
                    );
                    println!("{}", created.token);
                }
                other => println!("{}", render_value(&created, other)),
            }
        }
        TokenAction::List => {
            let tokens: Vec<TokenInfo> = client.get("/v1/tokens").await?;
            println!("{}", render_list(&tokens, format));
        }
        TokenAction::Revoke { id } => {
            let answer: serde_json::Value = client
                .call(Method::DELETE, &format!("/v1/tokens/{id}"), None::<&()>)
                .await?;
            if crate::commands::structured(format) {
                println!("{}", render_value(&answer, format));
            } else {
                println!("revoked token {id}");
            }
        }
        TokenAction::Recover { data_dir } => crate::token_recover::recover(&data_dir).await?,
        TokenAction::Rotate { role } => {
            let rotated: crate::api::join_tokens::RotatedJoinToken = client
                .call(
                    Method::POST,
                    &format!("/v1/join-tokens/{role}/rotate"),
                    None::<&()>,
                )
                .await?;
            match format {
                OutputFormat::Table => {
                    println!(
                        "new {} join token (the previous one is refused from now on); it is \
                         shown only this once:",
                        rotated.role
                    );
                    println!("{}", rotated.token);
                }
                other => println!("{}", render_value(&rotated, other)),
            }
        }
    }
    Ok(())
}
