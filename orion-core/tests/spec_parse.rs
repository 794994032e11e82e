//! Parsing specs: every example of seeds 000 and 002, the shorthands, and the error format.

use orion_core::Error;
use orion_core::error::ParseError;
use orion_core::model::spec::{
    AffinityRule, AntiAffinityRule, HealthCheckType, NetworkMode, Protocol, RestartPolicy,
    SpecFormat, VolumeSpec, parse_spec, parse_specs,
};

fn yaml(text: &str) -> orion_core::model::ServiceSpec {
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

const SEED_002_WEB: &str = r#"
service_name: "web-frontend"
image: "nginx:alpine"
replicas: 3
ports:
  - host_port: 80
    container_port: 80
    protocol: "tcp"
env:
  - "NGINX_ENV=production"
resources:
  cpu_millicores: 200    # 0.2 CPU cores
  memory_bytes: 134217728  # 128MB
health_check:
  type: "http"
  http_path: "/health"
  port: 80
  interval: 30
"#;

const SEED_002_DB: &str = r#"
service_name: "postgres-db"
image: "postgres:15-alpine"
replicas: 1
ports:
  - host_port: 5432
    container_port: 5432
env:
  - "POSTGRES_PASSWORD=secret"
volumes:
  - "pgdata:/var/lib/postgresql/data"
resources:
  cpu_millicores: 500    # 0.5 CPU cores
  memory_bytes: 1073741824  # 1GB
health_check:
  type: "command"
  command: ["pg_isready", "-U", "postgres"]
  interval: 30
"#;

const SEED_002_API: &str = r#"
service_name: "api-service"
image: "myapp/api:latest"
replicas: 2
ports:
  - host_port: 3000
    container_port: 3000
scale_policy:
  min_replicas: 2
  max_replicas: 10
  target_cpu: 80.0
  cooldown_seconds: 120
health_check:
  type: "tcp"
  port: 3000
  interval: 15
"#;

const SEED_002_CONFIG: &str = r#"
# config.yaml
env: "production"
listen_addr: ":8080"
data_dir: "/var/lib/gorchester"
cluster_name: "production-cluster"

services:
  - service_name: "load-balancer"
    image: "nginx:alpine"
    replicas: 2
    ports:
      - host_port: 80
        container_port: 80
        protocol: "tcp"
      - host_port: 443
        container_port: 443
        protocol: "tcp"
    env:
      - "UPSTREAM_SERVERS=app1:3000,app2:3000"
    volumes:
      - "/etc/nginx/conf.d:/etc/nginx/conf.d:ro"
    resources:
      cpu_millicores: 300
      memory_bytes: 134217728
    scale_policy:
      min_replicas: 2
      max_replicas: 5
      target_cpu: 70.0
      cooldown_seconds: 90
    health_check:
      type: "http"
      http_path: "/nginx-health"
      port: 80
      interval: 30
      timeout: 5
      retries: 3

  - service_name: "application"
    image: "mycompany/app:1.5.0"
    replicas: 3
    ports:
      - host_port: 0  # Random port
        container_port: 3000
    env:
      - "DATABASE_URL=postgresql://user:pass@db:5432/app"
      - "REDIS_URL=redis://cache:6379/0"
    resources:
      cpu_millicores: 500
      memory_bytes: 268435456
    scale_policy:
      min_replicas: 3
      max_replicas: 10
      target_cpu: 75.0
      target_memory: 85.0
      cooldown_seconds: 120
    health_check:
      type: "http"
      http_path: "/api/health"
      port: 3000
      interval: 20
      timeout: 10
      retries: 2
"#;

const SEED_000_DEPLOYMENT: &str = r#"
# deployment.yaml
apiVersion: orion.io/v1
kind: Deployment
metadata:
  name: api-gateway
spec:
  replicas: 3
  container:
    image: api-gateway:v1.0
    ports:
      - 8080
  scheduling:
    networkAware: true
    affinityRules:
      - type: latency
        target: database-cluster
        maxLatency: 5ms
      - type: bandwidth
        minBandwidth: 100Mbps
    antiAffinityRules:
      - type: network-zone
        avoid: edge-zones
"#;

#[test]
fn seed_002_web_server() {
    let s = yaml(SEED_002_WEB);
    assert_eq!(s.name, "web-frontend");
    assert_eq!(s.image, "nginx:alpine");
    assert_eq!(s.replicas, 3);
    assert_eq!(s.ports.len(), 1);
    assert_eq!((s.ports[0].host_port, s.ports[0].container_port), (80, 80));
    assert_eq!(s.ports[0].protocol, Protocol::Tcp);
    assert_eq!(s.env, vec!["NGINX_ENV=production"]);
    assert_eq!(s.resources.cpu_millicores, 200);
    assert_eq!(s.resources.memory_bytes, 134_217_728);
    let h = s.health_check.expect("health check");
    assert_eq!(h.kind, HealthCheckType::Http);
    assert_eq!(h.http_path.as_deref(), Some("/health"));
    assert_eq!((h.port, h.interval), (Some(80), 30));
}

#[test]
fn seed_002_database() {
    let s = yaml(SEED_002_DB);
    assert_eq!(s.name, "postgres-db");
    assert_eq!(
        s.volumes,
        vec![VolumeSpec {
            source: "pgdata".into(),
            target: "/var/lib/postgresql/data".into(),
            read_only: false
        }]
    );
    assert!(!s.volumes[0].is_bind());
    let h = s.health_check.expect("health check");
    assert_eq!(h.kind, HealthCheckType::Command);
    assert_eq!(h.command, vec!["pg_isready", "-U", "postgres"]);
    assert_eq!(
        s.ports[0].protocol,
        Protocol::Tcp,
        "protocol defaults to tcp"
    );
}

#[test]
fn seed_002_autoscaled_api() {
    let s = yaml(SEED_002_API);
    let p = s.scale_policy.expect("scale policy");
    assert_eq!((p.min_replicas, p.max_replicas), (2, 10));
    assert_eq!(p.target_cpu, Some(80.0));
    assert_eq!(p.target_memory, None);
    assert_eq!(p.cooldown_seconds, 120);
    assert_eq!(s.health_check.expect("check").kind, HealthCheckType::Tcp);
}

#[test]
fn seed_002_complete_config_document() {
    let specs = parse_specs(SEED_002_CONFIG, SpecFormat::Yaml).expect("config parses");
    let names: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["load-balancer", "application"]);
    let lb = &specs[0];
    assert_eq!(lb.ports.len(), 2);
    assert_eq!(lb.env, vec!["UPSTREAM_SERVERS=app1:3000,app2:3000"]);
    assert!(lb.volumes[0].read_only && lb.volumes[0].is_bind());
    let h = lb.health_check.as_ref().expect("check");
    assert_eq!((h.timeout, h.retries), (5, 3));
    assert_eq!(specs[1].ports[0].host_port, 0, "0 asks for a dynamic port");
    assert_eq!(
        specs[1].scale_policy.as_ref().and_then(|p| p.target_memory),
        Some(85.0)
    );
}

#[test]
fn seed_000_deployment_wrapper() {
    let s = yaml(SEED_000_DEPLOYMENT);
    assert_eq!(s.name, "api-gateway");
    assert_eq!(s.image, "api-gateway:v1.0");
    assert_eq!(s.replicas, 3);
    assert_eq!(s.ports.len(), 1);
    assert_eq!((s.ports[0].container_port, s.ports[0].host_port), (8080, 0));
    assert!(s.scheduling.network_aware);
    assert_eq!(
        s.scheduling.affinity,
        vec![
            AffinityRule::Latency {
                target: "database-cluster".into(),
                max_latency_ms: 5.0
            },
            AffinityRule::Bandwidth {
                target: None,
                min_bandwidth_mbps: 100.0
            },
        ]
    );
    assert_eq!(
        s.scheduling.anti_affinity,
        vec![AntiAffinityRule::NetworkZone {
            avoid: "edge-zones".into()
        }]
    );
}

#[test]
fn json_and_yaml_give_the_same_spec() {
    let from_yaml = yaml(SEED_002_WEB);
    let json = from_yaml.to_json().expect("json");
    assert_eq!(
        parse_spec(&json, SpecFormat::Json).expect("json parses"),
        from_yaml
    );
    assert_eq!(
        parse_spec(&json, SpecFormat::Auto).expect("auto parses"),
        from_yaml
    );
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
fn unknown_field_gets_a_hint_and_its_path() {
    let e = parse_error("name: web\nimage: nginx\nreplica: 3\n", SpecFormat::Yaml);
    assert_eq!(e.path, "replica");
    assert!(e.message.contains("did you mean `replicas`?"), "{e}");
    let e = parse_error(
        r#"{"name":"web","image":"nginx","ports":[{"container_port":80,"hostport":8080}]}"#,
        SpecFormat::Json,
    );
    assert_eq!(e.path, "ports[0].hostport");
    assert!(e.message.contains("did you mean `host_port`?"), "{e}");
}

#[test]
fn unknown_variant_gets_a_hint() {
    let e = parse_error(
        "name: web\nimage: nginx\nrestart_policy: allways\n",
        SpecFormat::Yaml,
    );
    assert_eq!(e.path, "restart_policy");
    assert!(e.message.contains("did you mean `always`?"), "{e}");
    let e = parse_error(
        "name: web\nimage: nginx\nscheduling:\n  affinity:\n    - type: latncy\n      target: db\n      max_latency_ms: 5\n",
        SpecFormat::Yaml,
    );
    assert_eq!(e.path, "scheduling.affinity[0].type");
    assert!(e.message.contains("did you mean `latency`?"), "{e}");
}

#[test]
fn wrong_types_name_the_path_in_both_formats() {
    let y = parse_error(
        "name: web\nimage: nginx\nports:\n  - 80\n  - container_port: 81\n    host_port: lots\n",
        SpecFormat::Yaml,
    );
    assert_eq!(y.path, "ports[1].host_port");
    assert_eq!(
        y.location,
        Some((6, 16)),
        "semantic YAML errors carry the node's position"
    );
    let j = parse_error(
        r#"{"name":"web","image":"nginx","ports":[80,{"container_port":81,"host_port":"lots"}]}"#,
        SpecFormat::Json,
    );
    assert_eq!(j.path, "ports[1].host_port");
    assert_eq!(y.message, j.message);
    let e = parse_error(
        "name: w\nimage: i\nscheduling:\n  affinity:\n    - type: latency\n      target: db\n      max_latency_ms: soon\n",
        SpecFormat::Yaml,
    );
    assert_eq!(e.path, "scheduling.affinity[0].max_latency_ms");
    assert!(e.message.contains("`5ms`"), "{e}");
}

#[test]
fn rule_fields_are_checked_against_the_rule_type() {
    let e = parse_error(
        "name: w\nimage: i\nscheduling:\n  affinity:\n    - type: latency\n      target: db\n      max_latency_ms: 5\n      zones: [a]\n",
        SpecFormat::Yaml,
    );
    assert_eq!(e.path, "scheduling.affinity[0]");
    assert!(
        e.message
            .contains("`zones` does not apply to a `latency` rule"),
        "{e}"
    );
    let e = parse_error(
        "name: w\nimage: i\nscheduling:\n  affinity:\n    - type: latency\n      max_latency_ms: 5\n",
        SpecFormat::Yaml,
    );
    assert!(e.message.contains("a `latency` rule needs `target`"), "{e}");
}

#[test]
fn syntax_errors_keep_line_and_column() {
    let e = parse_error("name: web\nimage: [nginx\n", SpecFormat::Yaml);
    assert!(e.location.is_some_and(|(line, _)| line >= 2), "{e:?}");
    let e = parse_error("{\"name\": \"web\",\n \"image\": }", SpecFormat::Json);
    assert_eq!(e.location.map(|l| l.0), Some(2), "{e:?}");
    assert!(
        e.to_string().starts_with("cannot parse spec at line 2"),
        "{e}"
    );
}

#[test]
fn missing_required_fields_are_named() {
    let e = parse_error("name: web\n", SpecFormat::Yaml);
    assert!(e.message.contains("missing field `image`"), "{e}");
    let e = parse_error(
        "apiVersion: orion.io/v1\nkind: Deployment\nmetadata: {name: web}\nspec: {replicas: 1}\n",
        SpecFormat::Yaml,
    );
    assert!(
        e.message.contains("missing field `image`") && e.message.contains("spec.container"),
        "{e}"
    );
}

#[test]
fn deployment_errors_name_the_path_as_written() {
    let e = parse_error(
        "apiVersion: orion.io/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  container:\n    image: i\n    ports: [{container_port: 80, hots_port: 1}]\n",
        SpecFormat::Yaml,
    );
    assert_eq!(e.path, "spec.container.ports[0].hots_port");
    assert_eq!(e.location.map(|l| l.0), Some(7));
    let e = parse_error(
        "apiVersion: orion.io/v1\nkind: Job\nmetadata: {name: web}\nspec: {}\n",
        SpecFormat::Yaml,
    );
    assert_eq!(e.path, "kind");
    assert!(e.message.contains("expected `Deployment`"), "{e}");
    let invalid = parse_spec(
        "apiVersion: orion.io/v1\nkind: Deployment\nmetadata: {name: Web}\nspec:\n  container: {image: i, ports: [0]}\n",
        SpecFormat::Yaml,
    );
    let Err(Error::Invalid(errs)) = invalid else {
        panic!("expected invalid, got {invalid:?}")
    };
    let paths: Vec<&str> = errs.0.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        ["metadata.name", "spec.container.ports[0].container_port"]
    );
}

#[test]
fn several_documents_and_lists() {
    let two = "name: a\nimage: i\n---\nname: b\nimage: i\n";
    let names = |specs: Vec<orion_core::model::ServiceSpec>| {
        specs.into_iter().map(|s| s.name).collect::<Vec<_>>()
    };
    assert_eq!(
        names(parse_specs(two, SpecFormat::Yaml).expect("two docs")),
        ["a", "b"]
    );
    let list = r#"[{"name":"a","image":"i"},{"name":"b","image":"i"}]"#;
    assert_eq!(
        names(parse_specs(list, SpecFormat::Auto).expect("list")),
        ["a", "b"]
    );
    assert_eq!(
        names(parse_specs(SEED_000_DEPLOYMENT, SpecFormat::Yaml).expect("one")),
        ["api-gateway"]
    );
    let e = parse_spec(two, SpecFormat::Yaml).expect_err("parse_spec takes one");
    assert!(e.to_string().contains("use parse_specs"), "{e}");
}

#[test]
fn parse_specs_reports_every_service_and_duplicate_names() {
    let text = "services:\n  - {name: ok, image: i}\n  - {name: ok, image: i, ports: [0]}\n  - {name: Bad, image: i}\n";
    let Err(Error::Invalid(errs)) = parse_specs(text, SpecFormat::Yaml) else {
        panic!("expected invalid")
    };
    let paths: Vec<&str> = errs.0.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "services[1].ports[0].container_port",
            "services[1].name",
            "services[2].name"
        ]
    );
    let text = "services:\n  - {name: ok, image: i, replica: 2}\n";
    let Err(Error::Parse(e)) = parse_specs(text, SpecFormat::Yaml) else {
        panic!("expected parse error")
    };
    assert_eq!(e.path, "services[0].replica");
    assert_eq!(e.location.map(|l| l.0), Some(2));
    let text = "cluster: x\nservices: []\n";
    let Err(Error::Parse(e)) = parse_specs(text, SpecFormat::Yaml) else {
        panic!("expected parse error")
    };
    assert!(e.message.contains("did you mean `cluster_name`?"), "{e}");
}

#[test]
fn empty_input_is_an_error() {
    for text in ["", "   \n", "# only a comment\n"] {
        let e = parse_error(text, SpecFormat::Yaml);
        assert!(e.message.contains("empty"), "{e}");
    }
}

#[test]
fn validation_error_display_lists_every_problem() {
    let e = parse_spec(
        "name: Web\nimage: ''\nresources: {cpu_millicores: 1}\n",
        SpecFormat::Yaml,
    )
    .expect_err("invalid");
    let text = e.to_string();
    assert!(text.starts_with("invalid spec (3 problems)"), "{text}");
    assert!(
        text.contains("\n  - name: got \"Web\", expected a DNS label"),
        "{text}"
    );
    assert!(
        text.contains("\n  - resources.cpu_millicores: got 1, expected at least 5 millicores"),
        "{text}"
    );
}

/// The YAML blocks of docs/spec.md, in order.
fn doc_yaml_blocks() -> Vec<String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/spec.md");
    let doc = std::fs::read_to_string(path).expect("docs/spec.md is readable");
    doc.split("```yaml\n")
        .skip(1)
        .map(|block| block.split("```").next().unwrap_or_default().to_owned())
        .collect()
}

#[test]
fn the_reference_examples_parse() {
    let blocks = doc_yaml_blocks();
    assert_eq!(
        blocks.len(),
        2,
        "docs/spec.md has the full example and the Deployment"
    );
    let full = yaml(&blocks[0]);
    assert_eq!(full.name, "api");
    assert_eq!(full.command, ["/app/api", "--port", "3000"]);
    assert_eq!(full.ports.len(), 3);
    assert_eq!(full.resources.memory_bytes, 256 << 20);
    assert_eq!(
        full.scale_policy.as_ref().map(|p| p.cooldown_seconds),
        Some(120)
    );
    assert_eq!(full.health_check.as_ref().map(|h| h.interval), Some(10));
    assert_eq!(full.scheduling.affinity.len(), 3);
    let deployment = yaml(&blocks[1]);
    assert_eq!(deployment.name, "api-gateway");
    assert_eq!(
        deployment.labels.get("tier").map(String::as_str),
        Some("edge")
    );
}

#[test]
fn the_reference_error_texts_are_real() {
    let e = parse_error("name: web\nimage: nginx\nreplica: 3\n", SpecFormat::Yaml);
    assert!(
        e.to_string().starts_with(
            "cannot parse spec at line 3, column 10 (field replica): unknown field `replica`; did you mean `replicas`? Accepted: `name`, `service_name`,"
        ),
        "{e}"
    );
    let text = "name: Web\nimage: nginx\nports: [\"8080:80\", \"8080:81\"]\nresources: {memory_bytes: 16MB}\n";
    let e = parse_spec(text, SpecFormat::Yaml).expect_err("invalid");
    assert_eq!(
        e.to_string(),
        "invalid spec (3 problems)\n  \
         - name: got \"Web\", expected a DNS label: 1-63 characters of a-z, 0-9 and '-', not starting or ending with '-'\n  \
         - ports[1].host_port: got 8080/tcp, expected a host port and protocol not already published (ports[0]), or 0 for a dynamic port\n  \
         - resources.memory_bytes: got 16000000, expected at least 16777216 bytes (16Mi)"
    );
}
