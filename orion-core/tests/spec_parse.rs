//! Parsing specs: every example of seeds 000 and 002, the shorthands, and the error format.

use orion_core::Error;
use orion_core::error::ParseError;
use orion_core::model::spec::{
    AffinityRule, AntiAffinityRule, HealthCheckType, Protocol, SpecFormat, VolumeSpec, parse_spec,
    parse_specs,
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

const CONFIG_FORM_WEB: &str = r#"
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

const CONFIG_FORM_DB: &str = r#"
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

const CONFIG_FORM_API: &str = r#"
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

const CONFIG_DOCUMENT: &str = r#"
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

const DEPLOYMENT_FORM: &str = r#"
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
fn config_form_web_server() {
    let s = yaml(CONFIG_FORM_WEB);
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
fn config_form_database() {
    let s = yaml(CONFIG_FORM_DB);
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
fn config_form_autoscaled_api() {
    let s = yaml(CONFIG_FORM_API);
    let p = s.scale_policy.expect("scale policy");
    assert_eq!((p.min_replicas, p.max_replicas), (2, 10));
    assert_eq!(p.target_cpu, Some(80.0));
    assert_eq!(p.target_memory, None);
    assert_eq!(p.cooldown_seconds, 120);
    assert_eq!(s.health_check.expect("check").kind, HealthCheckType::Tcp);
}

#[test]
fn config_form_complete_document() {
    let specs = parse_specs(CONFIG_DOCUMENT, SpecFormat::Yaml).expect("config parses");
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
fn deployment_form_wrapper() {
    let s = yaml(DEPLOYMENT_FORM);
    assert_eq!(s.name, "api-gateway");
    assert_eq!(s.image, "api-gateway:v1.0");
    assert_eq!(s.replicas, 3);
    assert_eq!(s.ports.len(), 1);
    assert_eq!((s.ports[0].container_port, s.ports[0].host_port), (8080, 0));
    assert_eq!(s.scheduling.network_aware, Some(true));
    assert_eq!(
        s.scheduling.affinity,
        vec![
            AffinityRule::Latency {
                target: "database-cluster".into(),
                max_latency_ms: 5.0,
                required: true,
            },
            AffinityRule::Bandwidth {
                target: None,
                min_bandwidth_mbps: 100.0,
                required: true,
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
    let from_yaml = yaml(CONFIG_FORM_WEB);
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

#[test]
fn depends_on_is_read_bounded_and_listed_with_rule_targets() {
    let s = yaml(
        "name: api\nimage: api:1\ndependsOn: [db, cache]\nscheduling:\n  affinity:\n    - {type: latency, target: auth, maxLatency: 5ms}\n    - {type: latency, target: db, maxLatency: 9ms}\n",
    );
    assert_eq!(s.depends_on, ["db", "cache"]);
    assert_eq!(s.dependencies(), ["db", "cache", "auth"]);
    let Err(Error::Invalid(errs)) = parse_spec(
        "name: api\nimage: api:1\ndepends_on: [api, db, db, Bad_Name]\n",
        SpecFormat::Yaml,
    ) else {
        panic!("expected a validation error");
    };
    let paths: Vec<&str> = errs.0.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        ["depends_on[0]", "depends_on[2]", "depends_on[3]"],
        "{errs}"
    );
    let many: Vec<String> = (0..65).map(|i| format!("s{i}")).collect();
    let text = format!(
        "name: api\nimage: api:1\ndepends_on: [{}]\n",
        many.join(", ")
    );
    let Err(Error::Invalid(errs)) = parse_spec(&text, SpecFormat::Yaml) else {
        panic!("65 dependencies are refused");
    };
    assert!(errs.to_string().contains("at most 64"), "{errs}");
}

#[test]
fn ports_take_an_optional_name() {
    let s =
        yaml("name: web\nimage: nginx\nports:\n  - {container_port: 80, name: http}\n  - 8080\n");
    assert_eq!(s.ports[0].name.as_deref(), Some("http"));
    assert_eq!(s.ports[1].name, None);
}

#[test]
fn network_rules_are_hard_unless_required_false() {
    let spec = yaml(
        "name: api\nimage: x\nscheduling:\n  affinity:\n    - {type: latency, target: db, maxLatency: 5ms}\n    - {type: loss, maxLoss: 0.01, required: false}\n",
    );
    assert!(matches!(
        spec.scheduling.affinity[0],
        AffinityRule::Latency { required: true, .. }
    ));
    assert!(matches!(
        spec.scheduling.affinity[1],
        AffinityRule::Loss {
            required: false,
            ..
        }
    ));
    // The default is not written out; a soft rule says so; both read back the same.
    let json = serde_json::to_string(&spec.scheduling.affinity).unwrap();
    assert_eq!(json.matches("required").count(), 1, "{json}");
    let back: Vec<AffinityRule> = serde_json::from_str(&json).unwrap();
    assert_eq!(back, spec.scheduling.affinity);
}
