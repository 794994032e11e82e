//! Every validation rule: a spec breaking it fails with the rule's path, value and message,
//! and a spec breaking several rules reports them all.

use orion_core::error::{FieldError, ValidationErrors};
use orion_core::model::ServiceSpec;
use orion_core::model::spec::{
    AffinityRule, AntiAffinityRule, CpuLimit, HealthCheck, HealthCheckType, NetworkMode, PortSpec,
    Protocol, ScalePolicy, ScoringWeights, VolumeSpec,
};

fn base() -> ServiceSpec {
    ServiceSpec::new("web", "nginx:alpine", 2)
}

/// The one error `spec` has; fails the test when it has none or several.
fn only_error(spec: &ServiceSpec) -> FieldError {
    match spec.validate() {
        Ok(()) => panic!("expected a validation error for {spec:?}"),
        Err(ValidationErrors(mut errs)) => {
            assert_eq!(errs.len(), 1, "expected one error, got {errs:?}");
            errs.remove(0)
        }
    }
}

fn assert_rule(spec: &ServiceSpec, path: &str, value: &str, expected_part: &str) {
    let e = only_error(spec);
    assert_eq!(e.path, path, "{e}");
    assert_eq!(e.value, value, "{e}");
    assert!(
        e.expected.contains(expected_part),
        "{e} should mention {expected_part:?}"
    );
}

fn port(container: u16, host: u16, protocol: Protocol) -> PortSpec {
    PortSpec {
        container_port: container,
        host_port: host,
        protocol,
        name: None,
    }
}

/// [`base`] publishing container port 80 (tcp), which [`http_check`] checks.
fn published_80() -> ServiceSpec {
    let mut s = base();
    s.ports = vec![port(80, 0, Protocol::Tcp)];
    s
}

fn http_check() -> HealthCheck {
    HealthCheck {
        kind: HealthCheckType::Http,
        http_path: Some("/health".into()),
        expected_status: None,
        port: Some(80),
        command: Vec::new(),
        interval: 10,
        timeout: 0,
        retries: 0,
        start_period: 0,
    }
}

fn scale(min: u32, max: u32) -> ScalePolicy {
    ScalePolicy {
        min_replicas: min,
        max_replicas: max,
        target_cpu: None,
        target_memory: None,
        cooldown_seconds: 60,
        stabilization_seconds: 300,
    }
}

#[test]
fn the_base_spec_is_valid() {
    assert_eq!(base().validate(), Ok(()));
}

#[test]
fn name_must_be_a_dns_label() {
    for bad in ["", "Web", "-web", "web-", "web_1", "a.b", &"x".repeat(64)] {
        let mut s = base();
        s.name = bad.to_string();
        assert_rule(&s, "name", &format!("{bad:?}"), "DNS label");
    }
    let mut s = base();
    s.name = "x".repeat(63);
    assert_eq!(s.validate(), Ok(()));
}

#[test]
fn image_must_be_non_empty_without_whitespace() {
    for bad in ["", "  ", "nginx alpine", "nginx\t"] {
        let mut s = base();
        s.image = bad.into();
        assert_rule(&s, "image", &format!("{bad:?}"), "without whitespace");
    }
}

#[test]
fn cpu_at_least_5_millicores() {
    let mut s = base();
    s.resources.cpu_millicores = 4;
    assert_rule(&s, "resources.cpu_millicores", "4", "at least 5 millicores");
    s.resources.cpu_millicores = 5;
    assert_eq!(s.validate(), Ok(()));
}

#[test]
fn a_cpu_cap_is_at_least_the_reservation() {
    let mut s = base();
    s.resources.cpu_millicores = 500;
    s.resources.cpu_limit = CpuLimit::Millicores(499);
    assert_rule(
        &s,
        "resources.cpu_limit",
        "499",
        "at least resources.cpu_millicores (500 millicores)",
    );
    for fine in [
        CpuLimit::Millicores(500),
        CpuLimit::None,
        CpuLimit::Reserved,
    ] {
        s.resources.cpu_limit = fine;
        assert_eq!(s.validate(), Ok(()), "{fine:?}");
    }
}

#[test]
fn memory_at_least_16_mib() {
    let mut s = base();
    s.resources.memory_bytes = 16_777_215;
    assert_rule(
        &s,
        "resources.memory_bytes",
        "16777215",
        "at least 16777216 bytes",
    );
    s.resources.memory_bytes = 16_777_216;
    assert_eq!(s.validate(), Ok(()));
}

#[test]
fn container_port_must_not_be_zero() {
    let mut s = base();
    s.ports = vec![port(80, 8080, Protocol::Tcp), port(0, 0, Protocol::Tcp)];
    assert_rule(&s, "ports[1].container_port", "0", "1-65535");
}

#[test]
fn no_duplicate_host_ports_per_protocol() {
    let mut s = base();
    s.ports = vec![port(80, 8080, Protocol::Tcp), port(81, 8080, Protocol::Tcp)];
    assert_rule(
        &s,
        "ports[1].host_port",
        "8080/tcp",
        "not already published (ports[0])",
    );
    // The same host port over another protocol, and several dynamic ports, are fine.
    s.ports = vec![
        port(80, 8080, Protocol::Tcp),
        port(80, 8080, Protocol::Udp),
        port(81, 0, Protocol::Tcp),
        port(82, 0, Protocol::Tcp),
    ];
    assert_eq!(s.validate(), Ok(()));
}

#[test]
fn port_names_are_dns_labels_unique_per_protocol() {
    let named = |container, name: &str, protocol| PortSpec {
        name: Some(name.to_owned()),
        ..port(container, 0, protocol)
    };
    let mut s = base();
    s.ports = vec![
        named(80, "http", Protocol::Tcp),
        named(81, "http", Protocol::Udp),
    ];
    assert!(s.validate().is_ok());
    s.ports = vec![named(80, "Bad_Name", Protocol::Tcp)];
    assert_rule(&s, "ports[0].name", "\"Bad_Name\"", "a DNS label");
    s.ports = vec![named(80, "8080", Protocol::Tcp)];
    assert_rule(&s, "ports[0].name", "\"8080\"", "not all digits");
    s.ports = vec![
        named(80, "http", Protocol::Tcp),
        named(81, "http", Protocol::Tcp),
    ];
    assert_rule(&s, "ports[1].name", "\"http\"", "(ports[0])");
}

#[test]
fn no_duplicate_container_ports_per_protocol() {
    let mut s = base();
    s.ports = vec![port(80, 0, Protocol::Tcp), port(80, 0, Protocol::Tcp)];
    assert_rule(
        &s,
        "ports[1].container_port",
        "80/tcp",
        "not already given (ports[0])",
    );
}

#[test]
fn host_networking_publishes_no_ports() {
    let mut s = base();
    s.network_mode = NetworkMode::Host;
    s.ports = vec![port(80, 80, Protocol::Tcp)];
    let e = only_error(&s);
    assert_eq!(e.path, "ports");
    assert!(
        e.expected.contains("host networking publishes no ports"),
        "{e}"
    );
}

#[test]
fn named_network_only_with_bridge_and_a_valid_name() {
    let mut s = base();
    s.network = Some("backend net".into());
    assert_rule(&s, "network", "\"backend net\"", "network name");
    s.network = Some("backend".into());
    s.network_mode = NetworkMode::None;
    assert_rule(
        &s,
        "network",
        "\"backend\" with network_mode none",
        "only bridge mode",
    );
}

#[test]
fn env_entries_are_key_value_with_valid_keys() {
    let mut s = base();
    s.env = vec![
        "OK=1".into(),
        "NOEQUALS".into(),
        "1BAD=x".into(),
        "OK=2".into(),
    ];
    let errs = s.validate().expect_err("invalid env").0;
    let got: Vec<(&str, &str)> = errs
        .iter()
        .map(|e| (e.path.as_str(), e.value.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("env[1]", "\"NOEQUALS\""),
            ("env[2]", "\"1BAD=x\""),
            ("env[3]", "\"OK=2\"")
        ]
    );
    assert!(errs[0].expected.contains("`KEY=value`"));
    assert!(errs[1].expected.contains("not starting with a digit"));
    assert!(errs[2].expected.contains("`OK` set only once"));
}

#[test]
fn volume_target_must_be_absolute() {
    let mut s = base();
    s.volumes = vec![VolumeSpec {
        source: "data".into(),
        target: "data".into(),
        read_only: false,
    }];
    assert_rule(&s, "volumes[0].target", "\"data\"", "absolute path");
    s.volumes = vec![
        VolumeSpec {
            source: "a".into(),
            target: "/d".into(),
            read_only: false,
        },
        VolumeSpec {
            source: "b".into(),
            target: "/d".into(),
            read_only: true,
        },
    ];
    assert_rule(
        &s,
        "volumes[1].target",
        "\"/d\"",
        "not mounted by another volume",
    );
    s.volumes = vec![VolumeSpec {
        source: "a:b".into(),
        target: "/d".into(),
        read_only: false,
    }];
    assert_rule(&s, "volumes[0].source", "\"a:b\"", "without ':'");
}

#[test]
fn dns_entries_are_ip_addresses() {
    let mut s = base();
    s.dns = vec!["8.8.8.8".into(), "::1".into(), "dns.google".into()];
    assert_rule(&s, "dns[2]", "\"dns.google\"", "an IP address");
}

#[test]
fn extra_hosts_are_name_colon_ip() {
    let mut s = base();
    s.extra_hosts = vec![
        "host.docker.internal:host-gateway".into(),
        "db.local:10.0.0.5".into(),
        "v6:::1".into(),
        "nocolon".into(),
    ];
    assert_rule(&s, "extra_hosts[3]", "\"nocolon\"", "`hostname:ip`");
    s.extra_hosts = vec!["db:not-an-ip".into()];
    assert_rule(&s, "extra_hosts[0]", "\"db:not-an-ip\"", "`hostname:ip`");
}

#[test]
fn label_keys_are_non_empty() {
    let mut s = base();
    s.labels.insert(String::new(), "x".into());
    assert_rule(&s, "labels[\"\"]", "\"\"", "non-empty label key");
}

#[test]
fn http_check_needs_a_path_and_a_port() {
    let mut s = published_80();
    let mut h = http_check();
    h.http_path = Some("health".into());
    s.health_check = Some(h);
    assert_rule(
        &s,
        "health_check.http_path",
        "\"health\"",
        "starting with '/'",
    );
    let mut h = http_check();
    h.port = None;
    s.health_check = Some(h);
    assert_rule(&s, "health_check.port", "nothing", "for an http check");
}

#[test]
fn tcp_check_needs_a_port() {
    let mut s = published_80();
    s.health_check = Some(HealthCheck {
        kind: HealthCheckType::Tcp,
        http_path: None,
        port: None,
        ..http_check()
    });
    assert_rule(&s, "health_check.port", "nothing", "for a tcp check");
}

#[test]
fn command_check_needs_a_command() {
    let mut s = published_80();
    s.health_check = Some(HealthCheck {
        kind: HealthCheckType::Command,
        http_path: None,
        port: None,
        ..http_check()
    });
    assert_rule(&s, "health_check.command", "nothing", "a command");
}

#[test]
fn check_interval_at_least_one_second() {
    let mut s = published_80();
    s.health_check = Some(HealthCheck {
        interval: 0,
        ..http_check()
    });
    assert_rule(&s, "health_check.interval", "0", "at least 1 second");
}

#[test]
fn a_checked_port_must_be_published_over_tcp() {
    let mut s = base();
    s.health_check = Some(http_check());
    assert_rule(
        &s,
        "health_check.port",
        "80",
        "published by `ports` over tcp",
    );
    s.ports = vec![port(80, 0, Protocol::Udp)];
    assert_rule(
        &s,
        "health_check.port",
        "80",
        "published by `ports` over tcp",
    );
    s.ports = vec![port(80, 8080, Protocol::Tcp)];
    assert_eq!(s.validate(), Ok(()));
    // On the host's network the port is reachable as is.
    s.ports.clear();
    s.network_mode = NetworkMode::Host;
    assert_eq!(s.validate(), Ok(()));
}

#[test]
fn check_durations_and_counts_are_bounded() {
    let mut s = published_80();
    let with = |f: &dyn Fn(&mut HealthCheck)| {
        let mut h = http_check();
        f(&mut h);
        Some(h)
    };
    s.health_check = with(&|h| h.interval = 3601);
    assert_rule(&s, "health_check.interval", "3601", "at most 3600 seconds");
    s.health_check = with(&|h| h.timeout = 11);
    assert_rule(
        &s,
        "health_check.timeout",
        "11",
        "at most the interval (10 s)",
    );
    s.health_check = with(&|h| h.retries = 101);
    assert_rule(&s, "health_check.retries", "101", "0 to 100");
    s.health_check = with(&|h| h.start_period = 3601);
    assert_rule(&s, "health_check.start_period", "3601", "0 to 3600 seconds");
    s.health_check = with(&|h| h.expected_status = Some(99));
    assert_rule(&s, "health_check.expected_status", "99", "100-599");
    s.health_check = with(&|h| {
        h.kind = HealthCheckType::Tcp;
        h.http_path = None;
        h.expected_status = Some(200);
    });
    assert_rule(
        &s,
        "health_check.expected_status",
        "200",
        "only used by type http",
    );
}

#[test]
fn reschedule_after_is_bounded() {
    let mut s = base();
    for bad in [0, 101] {
        s.reschedule_after = bad;
        assert_rule(
            &s,
            "reschedule_after",
            &bad.to_string(),
            "1 to 100 restarts",
        );
    }
}

#[test]
fn scale_bounds_are_ordered_and_at_least_one() {
    let mut s = base();
    s.scale_policy = Some(scale(3, 2));
    assert_rule(
        &s,
        "scale_policy.min_replicas",
        "3",
        "at most max_replicas (2)",
    );
    s.replicas = 0;
    s.scale_policy = Some(scale(0, 2));
    assert_rule(&s, "scale_policy.min_replicas", "0", "at least 1");
    s.replicas = 1;
    s.scale_policy = Some(ScalePolicy {
        max_replicas: 0,
        min_replicas: 0,
        ..scale(0, 0)
    });
    let errs = s.validate().expect_err("invalid").0;
    let paths: Vec<&str> = errs.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "scale_policy.min_replicas",
            "scale_policy.max_replicas",
            "replicas"
        ]
    );
}

#[test]
fn replicas_within_the_scale_bounds() {
    let mut s = base();
    s.replicas = 11;
    s.scale_policy = Some(scale(2, 10));
    assert_rule(&s, "replicas", "11", "(2-10)");
    s.replicas = 1;
    assert_rule(&s, "replicas", "1", "(2-10)");
}

#[test]
fn scale_targets_are_percentages() {
    let mut s = base();
    s.scale_policy = Some(ScalePolicy {
        target_cpu: Some(4.9),
        ..scale(1, 3)
    });
    assert_rule(&s, "scale_policy.target_cpu", "4.9", "from 5 to 100");
    s.scale_policy = Some(ScalePolicy {
        target_memory: Some(100.5),
        ..scale(1, 3)
    });
    assert_rule(&s, "scale_policy.target_memory", "100.5", "from 10 to 100");
    s.scale_policy = Some(ScalePolicy {
        target_cpu: Some(f64::NAN),
        ..scale(1, 3)
    });
    assert_rule(&s, "scale_policy.target_cpu", "NaN", "from 5 to 100");
}

#[test]
fn cooldown_at_least_30_seconds() {
    let mut s = base();
    s.scale_policy = Some(ScalePolicy {
        cooldown_seconds: 29,
        ..scale(1, 3)
    });
    assert_rule(
        &s,
        "scale_policy.cooldown_seconds",
        "29",
        "at least 30 seconds",
    );
}

#[test]
fn stabilization_window_at_most_an_hour() {
    let mut s = base();
    s.scale_policy = Some(ScalePolicy {
        stabilization_seconds: 3601,
        ..scale(1, 3)
    });
    assert_rule(
        &s,
        "scale_policy.stabilization_seconds",
        "3601",
        "0 to 3600 seconds",
    );
    s.scale_policy = Some(ScalePolicy {
        stabilization_seconds: 0,
        ..scale(1, 3)
    });
    assert!(s.validate().is_ok());
}

#[test]
fn update_parallelism_at_least_one() {
    let mut s = base();
    s.update_strategy.parallelism = 0;
    assert_rule(&s, "update_strategy.parallelism", "0", "at least 1");
}

#[test]
fn weights_finite_non_negative_not_all_zero() {
    let mut s = base();
    s.scheduling.weights = Some(ScoringWeights {
        cpu: -0.1,
        memory: 0.5,
        network: 0.5,
    });
    assert_rule(&s, "scheduling.weights.cpu", "-0.1", "finite number >= 0");
    s.scheduling.weights = Some(ScoringWeights {
        cpu: f64::INFINITY,
        memory: 0.5,
        network: 0.5,
    });
    assert_rule(&s, "scheduling.weights.cpu", "inf", "finite number >= 0");
    s.scheduling.weights = Some(ScoringWeights {
        cpu: 0.0,
        memory: 0.0,
        network: 0.0,
    });
    assert_rule(
        &s,
        "scheduling.weights",
        "cpu 0, memory 0, network 0",
        "at least one weight above 0",
    );
}

#[test]
fn latency_rule_needs_a_positive_limit_and_a_service_target() {
    let mut s = base();
    s.scheduling.affinity = vec![AffinityRule::Latency {
        target: "db".into(),
        max_latency_ms: 0.0,
        required: true,
    }];
    assert_rule(&s, "scheduling.affinity[0].max_latency_ms", "0", "above 0");
    s.scheduling.affinity = vec![AffinityRule::Latency {
        target: "Db_1".into(),
        max_latency_ms: 5.0,
        required: true,
    }];
    assert_rule(
        &s,
        "scheduling.affinity[0].target",
        "\"Db_1\"",
        "a service name",
    );
}

#[test]
fn bandwidth_rule_needs_a_positive_finite_limit() {
    let mut s = base();
    s.scheduling.affinity = vec![AffinityRule::Bandwidth {
        target: None,
        min_bandwidth_mbps: f64::NAN,
        required: true,
    }];
    assert_rule(
        &s,
        "scheduling.affinity[0].min_bandwidth_mbps",
        "NaN",
        "above 0",
    );
}

#[test]
fn loss_rule_is_a_fraction() {
    let mut s = base();
    s.scheduling.affinity = vec![AffinityRule::Loss {
        target: None,
        max_loss: 1.5,
        required: true,
    }];
    assert_rule(
        &s,
        "scheduling.affinity[0].max_loss",
        "1.5",
        "from 0.0 to 1.0",
    );
    s.scheduling.affinity = vec![AffinityRule::Loss {
        target: None,
        max_loss: 0.0,
        required: true,
    }];
    assert_eq!(s.validate(), Ok(()));
}

#[test]
fn zone_rule_needs_zones() {
    let mut s = base();
    s.scheduling.affinity = vec![AffinityRule::Zone {
        zones: vec![],
        required: true,
    }];
    assert_rule(
        &s,
        "scheduling.affinity[0].zones",
        "[]",
        "non-empty zone names",
    );
}

#[test]
fn anti_affinity_targets() {
    let mut s = base();
    s.scheduling.anti_affinity = vec![AntiAffinityRule::NetworkZone { avoid: " ".into() }];
    assert_rule(
        &s,
        "scheduling.anti_affinity[0].avoid",
        "\" \"",
        "zone name or prefix",
    );
    s.scheduling.anti_affinity = vec![AntiAffinityRule::Service {
        service: "-x".into(),
    }];
    assert_rule(
        &s,
        "scheduling.anti_affinity[0].service",
        "\"-x\"",
        "DNS label",
    );
}

#[test]
fn scheduling_fields() {
    let mut s = base();
    s.scheduling.max_per_node = Some(0);
    assert_rule(&s, "scheduling.max_per_node", "0", "at least 1");
    s.scheduling.max_per_node = None;
    s.scheduling.zones = vec!["".into()];
    assert_rule(&s, "scheduling.zones[0]", "\"\"", "non-empty zone name");
    s.scheduling.zones.clear();
    s.scheduling.spread_by = Some(String::new());
    assert_rule(&s, "scheduling.spread_by", "\"\"", "node label key");
    s.scheduling.spread_by = None;
    s.scheduling.node_selector.insert(String::new(), "x".into());
    assert_rule(
        &s,
        "scheduling.node_selector",
        "\"\"",
        "non-empty label keys",
    );
}

#[test]
fn every_problem_is_reported_at_once() {
    let mut s = base();
    s.name = "Web".into();
    s.image = String::new();
    s.resources.cpu_millicores = 1;
    s.resources.memory_bytes = 1;
    s.ports = vec![port(0, 0, Protocol::Tcp)];
    s.update_strategy.parallelism = 0;
    let errs = s.validate().expect_err("invalid").0;
    let paths: Vec<&str> = errs.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "name",
            "image",
            "ports[0].container_port",
            "resources.cpu_millicores",
            "resources.memory_bytes",
            "update_strategy.parallelism"
        ]
    );
}

#[test]
fn max_surge_is_at_most_parallelism_and_not_zero_with_it() {
    let mut s = base();
    s.update_strategy.parallelism = 2;
    s.update_strategy.max_surge = Some(3);
    assert_rule(
        &s,
        "update_strategy.max_surge",
        "3",
        "0 to update_strategy.parallelism (2)",
    );
    s.update_strategy.max_surge = Some(0);
    assert!(s.validate().is_ok());
    s.update_strategy.parallelism = 0;
    assert_rule(
        &s,
        "update_strategy.parallelism",
        "0",
        "max_surge and parallelism cannot both be 0",
    );
    let parsed: ServiceSpec = serde_json::from_str(
        r#"{"name": "db", "image": "postgres", "update_strategy": {"maxSurge": 0}}"#,
    )
    .expect("maxSurge is the Deployment-style spelling");
    assert_eq!(parsed.update_strategy.max_surge, Some(0));
    assert_eq!(parsed.update_strategy.surge(), 0);
    assert_eq!(base().update_strategy.surge(), 1, "unset: the parallelism");
}
