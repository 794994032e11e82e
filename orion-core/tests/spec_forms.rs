//! The shorthand forms users write: env maps, port strings, volume strings, quantities.

use orion_core::Error;
use orion_core::error::ParseError;
use orion_core::model::ServiceSpec;
use orion_core::model::spec::{
    AffinityRule, CpuLimit, HealthCheckType, NetworkMode, Protocol, RestartPolicy, SpecFormat,
    parse_spec,
};

fn yaml(text: &str) -> ServiceSpec {
    match parse_spec(text, SpecFormat::Yaml) {
        Ok(spec) => spec,
        Err(e) => panic!("spec did not parse: {e}\n{text}"),
    }
}

fn parse_error(text: &str, format: SpecFormat) -> ParseError {
    match parse_spec(text, format) {
        Err(Error::Parse(e)) => e,
        other => panic!("expected a parse error, got {other:?}"),
    }
}

#[test]
fn shorthands() {
    let s = yaml(
        r#"
name: shorthand
image: busybox
restart_policy: no
network_mode: none
command: [sleep, 10]
env:
  LOG_LEVEL: debug
  PORT: 8080
  EMPTY:
volumes:
  - /srv/www:/usr/share/www:ro
  - source: cache
    target: /cache
resources:
  cpu_millicores: 250m
  memory_bytes: 256Mi
health_check:
  type: command
  command: [true]
  interval: 1m
  timeout: 5s
scheduling:
  affinity:
    - type: latency
      target: db
      max_latency_ms: 1.5s
    - type: latency
      target: cache
      max_latency_ms: 3
    - type: bandwidth
      min_bandwidth_mbps: 1Gbps
    - type: bandwidth
      target: db
      min_bandwidth_mbps: 500Kbps
    - type: loss
      max_loss: 0.01
"#,
    );
    assert_eq!(
        s.restart_policy,
        RestartPolicy::No,
        "`no` is a string, not a boolean"
    );
    assert_eq!(s.network_mode, NetworkMode::None);
    assert_eq!(s.command, vec!["sleep", "10"]);
    // The map form comes out in key order.
    assert_eq!(s.env, vec!["EMPTY=", "LOG_LEVEL=debug", "PORT=8080"]);
    assert_eq!(s.volumes[0].to_string(), "/srv/www:/usr/share/www:ro");
    assert_eq!(s.volumes[1].to_string(), "cache:/cache");
    assert_eq!(s.resources.cpu_millicores, 250);
    assert_eq!(s.resources.memory_bytes, 256 * 1024 * 1024);
    let h = s.health_check.as_ref().expect("check");
    assert_eq!((h.interval, h.timeout), (60, 5));
    assert_eq!(h.command, vec!["true"]);
    let limits: Vec<f64> = s
        .scheduling
        .affinity
        .iter()
        .map(|r| match r {
            AffinityRule::Latency { max_latency_ms, .. } => *max_latency_ms,
            AffinityRule::Bandwidth {
                min_bandwidth_mbps, ..
            } => *min_bandwidth_mbps,
            AffinityRule::Loss { max_loss, .. } => *max_loss,
            AffinityRule::Zone { .. } => f64::NAN,
        })
        .collect();
    assert_eq!(limits, [1500.0, 3.0, 1000.0, 0.5, 0.01]);
}

#[test]
fn cpu_limit_forms_and_their_default() {
    let base = "name: web\nimage: nginx\nresources:\n  cpu_millicores: 250m\n";
    assert_eq!(yaml(base).resources.cpu_limit, CpuLimit::Reserved);
    for (written, limit) in [
        ("none", CpuLimit::None),
        ("reserved", CpuLimit::Reserved),
        ("1.5cpu", CpuLimit::Millicores(1500)),
        ("800m", CpuLimit::Millicores(800)),
        ("800", CpuLimit::Millicores(800)),
    ] {
        let spec = yaml(&format!("{base}  cpu_limit: {written}\n"));
        assert_eq!(spec.resources.cpu_limit, limit, "{written}");
        let back = serde_json::to_string(&spec).unwrap();
        let again: ServiceSpec = serde_json::from_str(&back).unwrap();
        assert_eq!(again.resources.cpu_limit, limit, "{back}");
    }
    let text = format!("{base}  cpu_limit: unlimited\n");
    let err = parse_error(&text, SpecFormat::Yaml).to_string();
    assert!(
        err.contains("resources.cpu_limit") && err.contains("`none` (no cap)"),
        "{err}"
    );
}

#[test]
fn port_shorthands() {
    let s = yaml(
        "name: p\nimage: i\nports: [8080, \"9000:90/udp\", \"53:53/udp\", {containerPort: 7, hostPort: 7007}]\n",
    );
    let got: Vec<(u16, u16, Protocol)> = s
        .ports
        .iter()
        .map(|p| (p.host_port, p.container_port, p.protocol))
        .collect();
    assert_eq!(
        got,
        [
            (0, 8080, Protocol::Tcp),
            (9000, 90, Protocol::Udp),
            (53, 53, Protocol::Udp),
            (7007, 7, Protocol::Tcp)
        ]
    );
}

#[test]
fn volume_serializes_as_its_string_form() {
    let s = yaml("name: v\nimage: i\nvolumes: [\"/etc/app:/etc/app:ro\"]\n");
    let json = s.to_json().expect("json");
    assert!(json.contains("\"/etc/app:/etc/app:ro\""), "{json}");
    let y = s.to_yaml().expect("yaml");
    assert!(y.contains("/etc/app:/etc/app:ro"), "{y}");
}

#[test]
fn health_check_type_is_inferred_when_left_out() {
    let kind = |check: &str| {
        yaml(&format!(
            "name: w\nimage: i\nnetwork_mode: host\nhealth_check: {check}\n"
        ))
        .health_check
        .map(|h| h.kind)
    };
    assert_eq!(
        kind("{command: [pg_isready]}"),
        Some(HealthCheckType::Command)
    );
    assert_eq!(
        kind("{http_path: /health, port: 80}"),
        Some(HealthCheckType::Http)
    );
    assert_eq!(kind("{port: 5432}"), Some(HealthCheckType::Tcp));
    assert_eq!(kind("{type: tcp, port: 5432}"), Some(HealthCheckType::Tcp));
    let e = parse_spec(
        "name: w\nimage: i\nhealth_check: {type: tcp, port: 1, http_path: /x}\n",
        SpecFormat::Yaml,
    )
    .expect_err("http_path on a tcp check");
    assert!(
        e.to_string()
            .contains("health_check.http_path: got \"/x\", expected no http_path for a tcp check"),
        "{e}"
    );
}

#[test]
fn label_values_may_be_scalars() {
    let s = yaml(
        "name: w\nimage: i\nlabels: {gpu: true, version: 2, tier: edge}\nscheduling: {node_selector: {ssd: true}}\n",
    );
    assert_eq!(s.labels.get("gpu").map(String::as_str), Some("true"));
    assert_eq!(s.labels.get("version").map(String::as_str), Some("2"));
    assert_eq!(
        s.scheduling.node_selector.get("ssd").map(String::as_str),
        Some("true")
    );
}

#[test]
fn a_command_string_is_refused_with_the_list_form() {
    let e = parse_error("name: w\nimage: i\ncommand: npm start\n", SpecFormat::Yaml);
    assert_eq!(e.path, "command");
    assert!(e.message.contains("write the command as a list"), "{e}");
    assert_eq!(e.location, Some((3, 10)));
}

#[test]
fn quantities_out_of_range_are_errors_not_wraps() {
    let e = parse_error(
        "name: w\nimage: i\nports: [{container_port: 70000}]\n",
        SpecFormat::Yaml,
    );
    assert_eq!(e.path, "ports[0].container_port");
    assert!(e.message.contains("0-65535"), "{e}");
    let e = parse_error(
        "name: w\nimage: i\nresources: {memory_bytes: -1}\n",
        SpecFormat::Yaml,
    );
    assert!(e.message.contains("negative"), "{e}");
    let e = parse_error(
        "name: w\nimage: i\nhealth_check: {port: 1, interval: 1.5}\n",
        SpecFormat::Yaml,
    );
    assert_eq!(e.path, "health_check.interval");
    assert!(e.message.contains("whole number of seconds"), "{e}");
}
