//! `gossip_node`: one gossip member in its own process, for tests and the detection bench.
//!
//! ```text
//! gossip_node --id n1 --bind 127.0.0.1:0 [--seed 127.0.0.1:7001]... [--zone a] [--cluster-id C]
//! ```
//!
//! Prints JSON lines on stdout: first `{"ready":{"id":..,"gossip":..}}`, then one
//! `{"at_ms":..,"event":<MembershipEvent>}` per membership event. Reading `leave` on stdin leaves
//! gracefully (prints `{"left":..}` and exits); end of stdin exits without leaving, like a crash,
//! so a test that dies never leaves members behind. When a live member already uses its node
//! id, it prints the error on stderr and exits with code 3 (without ever joining).

use std::net::SocketAddr;
use std::process::ExitCode;

use futures::StreamExt;
use orion_consensus::gossip::{GossipConfig, GossipMembership};
use orion_core::membership::Membership;
use orion_core::model::{NodeAddresses, Resources, ZONE_LABEL, now_millis};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};

const USAGE: &str = "usage: gossip_node --id ID --bind IP:PORT [--seed IP:PORT]... [--zone ZONE] \
     [--api HOST:PORT] [--cluster-id ID]";

/// Exit code when another live member uses this node id.
const EXIT_DUPLICATE_ID: u8 = 3;

fn parse_args(args: &[String]) -> Result<GossipConfig, String> {
    let mut id = None;
    let mut bind = None;
    let mut seeds = Vec::new();
    let mut zone = None;
    let mut api = String::new();
    let mut cluster_id = None;
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
            "--cluster-id" => cluster_id = Some(value.clone()),
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
    config.cluster_id = cluster_id;
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
            // First: a refused node's event stream ends at the same time.
            biased;
            err = membership.duplicate_node_id() => {
                eprintln!("gossip_node: {err}");
                // Not a return: the runtime would wait for the blocking read of stdin on exit.
                std::process::exit(i32::from(EXIT_DUPLICATE_ID));
            }
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
