//! End to end: `orion top` in a real terminal (a detached tmux session of a fixed size) against a
//! real `orion up` node running a service on the real Docker engine (node, service counts, `+`,
//! tasks, logs, events, help, quit). Keys go in with `tmux send-keys`; the screen comes back with
//! `tmux capture-pane -p`. Every wait polls the captured pane with a deadline.

mod support;

use std::process::{Command, Output};
use std::time::Duration;

use support::{ORION_BIN, TestCluster, http_spec, wait_for};

const CONVERGE: Duration = Duration::from_secs(60);
/// Bound on the dashboard showing what a key asked for.
const SCREEN: Duration = Duration::from_secs(20);
const WIDTH: u16 = 140;
const HEIGHT: u16 = 40;

/// A tmux server of this test's own (its own socket), killed on drop.
struct Tmux {
    socket: String,
    session: &'static str,
}

impl Tmux {
    /// Starts `command` (run by `sh -c`) in a detached session of `WIDTH` x `HEIGHT`, with `env`.
    fn start(command: &str, env: &[(&str, &str)]) -> Self {
        let tmux = Tmux {
            socket: format!("orion-top-test-{}", std::process::id()),
            session: "top",
        };
        let mut args: Vec<String> = vec![
            "new-session".into(),
            "-d".into(),
            "-s".into(),
            tmux.session.into(),
            "-x".into(),
            WIDTH.to_string(),
            "-y".into(),
            HEIGHT.to_string(),
        ];
        for (k, v) in env {
            args.push("-e".into());
            args.push(format!("{k}={v}"));
        }
        args.push(command.into());
        let out = tmux.run(&args.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(
            out.status.success(),
            "tmux new-session: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        tmux
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .args(["-L", &self.socket, "-f", "/dev/null"])
            .args(args)
            .output()
            .expect("run tmux (installed by `make setup`)")
    }

    /// Sends keys (tmux key names: `q`, `Enter`, `Tab`, …).
    fn send(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", self.session];
        args.extend_from_slice(keys);
        let out = self.run(&args);
        assert!(out.status.success(), "tmux send-keys {keys:?}");
    }

    /// The visible screen as text.
    fn capture(&self) -> String {
        let out = self.run(&["capture-pane", "-p", "-t", self.session]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A tmux format of the pane (`#{alternate_on}`, …).
    fn format(&self, format: &str) -> String {
        let out = self.run(&["display-message", "-p", "-t", self.session, format]);
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// Waits until `check` accepts the screen; returns that screen.
    async fn wait_screen(&self, what: &str, check: impl Fn(&str) -> bool) -> String {
        wait_for(what, SCREEN, || async {
            let screen = self.capture();
            if check(&screen) {
                Ok(screen)
            } else {
                Err(format!("screen:\n{screen}"))
            }
        })
        .await
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
    }
}

/// The cells of the first screen line that has `needle` as a cell.
fn row_of(screen: &str, needle: &str) -> Option<Vec<String>> {
    screen
        .lines()
        .map(|l| {
            l.split_whitespace()
                .map(str::to_owned)
                .collect::<Vec<String>>()
        })
        .find(|cells| cells.iter().any(|c| c == needle))
}

/// The service row's DESIRED, RUNNING and HEALTHY cells (after the selection marker, the name
/// and the image).
fn counts(screen: &str, service: &str) -> Option<(String, String, String)> {
    let cells = row_of(screen, service)?;
    let at = cells.iter().position(|c| c == service)?;
    Some((
        cells.get(at + 2)?.clone(),
        cells.get(at + 3)?.clone(),
        cells.get(at + 4)?.clone(),
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn top_shows_the_cluster_and_scales_from_the_keyboard() {
    let cluster = TestCluster::single("top").await;
    cluster.deploy(0, &http_spec("web", 1)).await;
    let tasks = cluster.wait_serving(0, "web", 1, CONVERGE).await;
    let node = cluster.nodes[0].id.clone();

    // After top exits, the shell prints its exit code, whether the terminal is back in cooked
    // mode, and stays (the test kills the tmux server when done).
    let command = format!(
        "{bin} --addr {addr} top --refresh 300ms --request-timeout 5s; \
         echo \"top-exit=$?\"; \
         echo \"tty=$(stty -a | tr ' ;' '\\n\\n' | grep -x -e icanon -e -icanon -e echo -e -echo | tr '\\n' ' ')\"; \
         exec sleep 600",
        bin = ORION_BIN.display(),
        addr = cluster.nodes[0].api,
    );
    let tmux = Tmux::start(&command, &[("ORION_TOKEN", &cluster.nodes[0].token)]);

    // The nodes view: the node, ready, with its one task.
    let screen = tmux
        .wait_screen("the node in the nodes view", |s| {
            row_of(s, &node).is_some_and(|cells| cells.contains(&"ready".to_owned()))
        })
        .await;
    assert!(screen.contains("1 nodes, 1 services, 1 tasks"), "{screen}");
    let row = row_of(&screen, &node).unwrap();
    assert_eq!(
        row.last().map(String::as_str),
        Some("1"),
        "task count: {row:?}"
    );
    assert_eq!(
        tmux.format("#{alternate_on}"),
        "1",
        "top uses the alternate screen"
    );

    // The services view: 1 desired, 1 running, 1 healthy.
    tmux.send(&["2"]);
    tmux.wait_screen("web 1/1/1 in the services view", |s| {
        counts(s, "web") == Some(("1".into(), "1".into(), "1".into()))
    })
    .await;

    // `+` scales to 2: the desired count changes on screen and in the store, and the second
    // replica comes up.
    tmux.send(&["+"]);
    tmux.wait_screen("web scaled to 2 desired", |s| {
        counts(s, "web").is_some_and(|(desired, _, _)| desired == "2")
    })
    .await;
    let (_, body) = cluster
        .request(0, reqwest::Method::GET, "/v1/services/web", None)
        .await;
    assert_eq!(body["desired"], 2, "{body}");
    tmux.wait_screen("web 2/2/2", |s| {
        counts(s, "web") == Some(("2".into(), "2".into(), "2".into()))
    })
    .await;

    // The tasks view lists the replicas; Enter shows the selected one's logs.
    tmux.send(&["Tab"]);
    let screen = tmux
        .wait_screen("two web tasks in the tasks view", |s| {
            s.contains("TASK")
                && s.lines()
                    .filter(|l| l.contains(" web ") && l.contains("running"))
                    .count()
                    == 2
        })
        .await;
    assert!(screen.contains(tasks[0].id.as_str()), "{screen}");
    tmux.send(&["Enter"]);
    tmux.wait_screen("the selected task's logs", |s| {
        s.contains("Logs of web-") && s.contains("hello-from-web")
    })
    .await;

    // The events view has the scale, seen between two polls.
    tmux.send(&["4"]);
    tmux.wait_screen("the scale in the events view", |s| {
        s.contains("EVENT") && s.contains("scaled 1 -> 2")
    })
    .await;

    // Help, then quit: exit code 0, the alternate screen left, the terminal cooked again.
    tmux.send(&["?"]);
    tmux.wait_screen("the help", |s| s.contains("drain the selected node"))
        .await;
    tmux.send(&["x"]);
    tmux.wait_screen("the help closed", |s| {
        !s.contains("drain the selected node")
    })
    .await;
    tmux.send(&["q"]);
    let screen = tmux
        // The shell prints `tty=` after `top-exit=`: wait for the last line.
        .wait_screen("top to exit", |s| s.contains("tty="))
        .await;
    assert!(screen.contains("top-exit=0"), "{screen}");
    assert!(screen.contains("tty=icanon echo"), "{screen}");
    assert_eq!(
        tmux.format("#{alternate_on}"),
        "0",
        "the alternate screen is left"
    );
}
