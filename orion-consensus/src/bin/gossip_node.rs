//! `gossip_node`: one gossip member in its own process, for tests and the detection bench.
//!
//! ```text
//! gossip_node --id n1 --bind 127.0.0.1:0 [--seed 127.0.0.1:7001]... [--zone a]
//! ```
//!
//! Prints JSON lines on stdout: first `{"ready":{"id":..,"gossip":..}}`, then one
//! `{"at_ms":..,"event":<MembershipEvent>}` per membership event. Reading `leave` on stdin leaves
//! gracefully (prints `{"left":..}` and exits); end of stdin exits without leaving, like a crash,
//! so a test that dies never leaves members behind.

use std::net::SocketAddr;
use std::process::ExitCode;

use futures::StreamExt;
use orion_consensus::gossip::{GossipConfig, GossipMembership};
use orion_core::membership::Membership;
use orion_core::model::{NodeAddresses, Resources, ZONE_LABEL, now_millis};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};

const USAGE: &str =
    "usage: gossip_node --id ID --bind IP:PORT [--seed IP:PORT]... [--zone ZONE] [--api HOST:PORT]";

fn parse_args(args: &[String]) -> Result<GossipConfig, String> {
    let mut id = None;
    let mut bind = None;
    let mut seeds = Vec::new();
    let mut zone = None;
    let mut api = String::new();
    let mut rest = args.iter();
    while let Some(flag) = rest.next() {
        let value = rest
            .next()
            .ok_or_else(|| format!("{flag} needs a value; {USAGE}"))?;
        let addr = || {
            value.parse::<SocketAddr>().map_err(|_| {
                format!("{flag}: got {value:?}, expected IP:PORT such as 127.0.0.1:7946")
            })
        };
        match flag.as_str() {
            "--id" => id = Some(value.clone()),
            "--bind" => bind = Some(addr()?),
            "--seed" => seeds.push(addr()?),
            "--zone" => zone = Some(value.clone()),
            "--api" => api = value.clone(),
            other => return Err(format!("unknown flag {other:?}; {USAGE}")),
        }
    }
    let id = id.ok_or_else(|| format!("--id is required; {USAGE}"))?;
    let bind = bind.ok_or_else(|| format!("--bind is required; {USAGE}"))?;
    let mut config = GossipConfig::new(id, bind)
        .with_capacity(Resources::new(2000, 4 << 30))
        .with_addresses(NodeAddresses {
            api,
            ..NodeAddresses::default()
        });
    config.seeds = seeds;
    if let Some(zone) = zone {
        config = config.with_label(ZONE_LABEL, zone);
    }
    Ok(config)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let config = match parse_args(&args) {
        Ok(config) => config,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let id = config.node_id.clone();
    let membership = match GossipMembership::start(config).await {
        Ok(membership) => membership,
        Err(err) => {
            eprintln!("gossip_node: {err}");
            return ExitCode::FAILURE;
        }
    };
    let mut events = membership.subscribe();
    println!(
        "{}",
        json!({"ready": {"id": id, "gossip": membership.gossip_addr().to_string()}})
    );
    let mut stdin = BufReader::new(tokio::io::stdin()).lines();
    loop {
        tokio::select! {
            event = events.next() => match event {
                Some(event) => println!("{}", json!({"at_ms": now_millis(), "event": event})),
                None => return ExitCode::SUCCESS,
            },
            line = stdin.next_line() => match line {
                Ok(Some(command)) if command.trim() == "leave" => {
                    if let Err(err) = membership.leave().await {
                        eprintln!("gossip_node: leave failed: {err}");
                        return ExitCode::FAILURE;
                    }
                    println!("{}", json!({"left": id}));
                    return ExitCode::SUCCESS;
                }
                Ok(Some(other)) => eprintln!("gossip_node: unknown command {other:?}; accepted: leave"),
                Ok(None) | Err(_) => return ExitCode::SUCCESS,
            },
        }
    }
}
