//! Gossip members as real processes over real UDP on loopback: kill -9, SIGSTOP, restart with
//! the same id, graceful leave. Every wait is bounded; the bounds are generous (the machine is
//! shared) and are not the detection figures, which the `gossip_detection` bench measures.

#[path = "gossip_support/process_cluster.rs"]
mod process_cluster;

use std::thread;
use std::time::{Duration, Instant};

use process_cluster::{NodeProcess, run_until_exit, start_cluster, wait_until};

/// Generous bound for convergence and detection on a loaded 2-core machine.
const BOUND: Duration = Duration::from_secs(15);
/// How long a member is watched for a wrong `Dead` after a pause or a leave: several times the
/// default detection time (about 1 s).
const WATCH: Duration = Duration::from_secs(4);

#[test]
fn kill_9_is_reported_suspect_then_dead_by_every_other_member() -> Result<(), String> {
    let mut nodes = start_cluster("k", 4, BOUND)?;
    let mut victim = nodes.pop().ok_or("empty cluster")?;
    let killed_at = Instant::now();
    victim.kill_9();
    wait_until(BOUND, "every survivor reports k3 dead", || {
        nodes.iter().all(|node| node.first("Dead", "k3").is_some())
    })?;
    for node in &nodes {
        let suspect = node.first_since("Suspect", "k3", killed_at);
        let dead = node.first("Dead", "k3");
        assert!(
            suspect.is_some() && suspect <= dead,
            "{} must report k3 suspect before dead",
            node.id
        );
        for other in ["k0", "k1", "k2"] {
            assert_eq!(
                node.count_since("Dead", other, killed_at),
                0,
                "{other} is alive"
            );
        }
    }
    Ok(())
}

#[test]
fn sigstop_for_500ms_is_never_reported_dead() -> Result<(), String> {
    let nodes = start_cluster("s", 3, BOUND)?;
    let paused_at = Instant::now();
    nodes[2].pause(Duration::from_millis(500));
    thread::sleep(WATCH);
    for node in &nodes[..2] {
        assert_eq!(
            node.count_since("Dead", "s2", paused_at),
            0,
            "{} declared the paused s2 dead: {:?}",
            node.id,
            node.events()
        );
    }
    // The paused member itself must not have declared the others dead either.
    for other in ["s0", "s1"] {
        assert_eq!(nodes[2].count_since("Dead", other, paused_at), 0);
    }
    Ok(())
}

#[test]
fn sigstop_longer_than_the_bound_is_dead_then_recovers_on_sigcont() -> Result<(), String> {
    let nodes = start_cluster("x", 3, BOUND)?;
    let paused_at = Instant::now();
    // Much longer than probe period + suspicion timeout: a paused node is dead to the others.
    // Taken before SIGCONT is sent, so a recovery reported at once still counts as after it.
    let resumed_at = nodes[2].pause(Duration::from_secs(3));
    for node in &nodes[..2] {
        let dead = node.first_since("Dead", "x2", paused_at);
        assert!(
            dead.is_some_and(|at| at < resumed_at),
            "{} saw x2 dead while paused",
            node.id
        );
    }
    wait_until(BOUND, "x0 and x1 see x2 recovered after SIGCONT", || {
        nodes[..2]
            .iter()
            .all(|node| node.first_since("Recovered", "x2", resumed_at).is_some())
    })
    .map_err(|err| {
        let mut report = format!("{err}; events since the pause (ms after SIGSTOP):");
        for node in &nodes {
            report.push_str(&format!("\n  {}:", node.id));
            for seen in node.events().iter().filter(|seen| seen.at >= paused_at) {
                let ms = seen.at.duration_since(paused_at).as_millis();
                report.push_str(&format!("\n    {ms:>6} {}", seen.event));
            }
        }
        report
    })
}

#[test]
fn restart_with_the_same_id_and_address_joins_again() -> Result<(), String> {
    let mut nodes = start_cluster("r", 3, BOUND)?;
    let mut victim = nodes.pop().ok_or("empty cluster")?;
    let addr = victim.addr;
    victim.kill_9();
    wait_until(BOUND, "r0 and r1 report r2 dead", || {
        nodes.iter().all(|node| node.first("Dead", "r2").is_some())
    })?;
    let restarted_at = Instant::now();
    let _back = NodeProcess::start("r2", addr, &[nodes[0].addr])?;
    wait_until(BOUND, "r0 and r1 report r2 joined again", || {
        nodes
            .iter()
            .all(|node| node.first_since("Joined", "r2", restarted_at).is_some())
    })?;
    Ok(())
}

#[test]
fn graceful_leave_is_reported_left_and_never_dead() -> Result<(), String> {
    let mut nodes = start_cluster("l", 3, BOUND)?;
    let leaving_at = Instant::now();
    nodes[2].leave()?;
    wait_until(BOUND, "l0 and l1 report l2 left", || {
        nodes[..2]
            .iter()
            .all(|node| node.first("Left", "l2").is_some())
    })?;
    thread::sleep(WATCH);
    for node in &nodes[..2] {
        assert_eq!(node.count_since("Dead", "l2", leaving_at), 0, "{}", node.id);
        assert_eq!(
            node.count_since("Suspect", "l2", leaving_at),
            0,
            "{}",
            node.id
        );
    }
    Ok(())
}

#[test]
fn a_second_process_with_a_live_members_id_exits_naming_it_and_the_member_is_untouched()
-> Result<(), String> {
    let nodes = start_cluster("d", 3, BOUND)?;
    let started_at = Instant::now();
    // Same id as d1, another port, joining through d0. Before the fix it took over d1's place
    // and the two fought in a refute loop.
    let any_port = "127.0.0.1:0".parse().map_err(|_| "bad literal")?;
    let (code, stderr) = run_until_exit("d1", any_port, &[nodes[0].addr], BOUND)?;
    assert_eq!(
        code,
        Some(3),
        "exit code of a refused duplicate; stderr: {stderr}"
    );
    assert!(
        stderr.contains("already used by a live member")
            && stderr.contains(&nodes[1].addr.to_string()),
        "the error names the live holder d1 at {}: {stderr}",
        nodes[1].addr
    );
    thread::sleep(WATCH);
    for node in &nodes {
        for kind in ["Suspect", "Dead", "Joined", "Recovered", "Updated"] {
            assert_eq!(
                node.count_since(kind, "d1", started_at),
                0,
                "{} reported {kind} about d1: {:?}",
                node.id,
                node.events()
            );
        }
    }
    Ok(())
}
