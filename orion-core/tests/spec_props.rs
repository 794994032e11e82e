//! Property tests: (a) no input panics the parser, it returns a spec or a typed error;
//! (b) every valid spec survives a round trip through YAML and through JSON unchanged.

use std::collections::BTreeSet;
use std::net::IpAddr;

use orion_core::Error;
use orion_core::model::ServiceSpec;
use orion_core::model::spec::{
    AffinityRule, AntiAffinityRule, CpuLimit, FailureAction, HealthCheck, HealthCheckType,
    NetworkMode, PortSpec, Protocol, ResourceSpec, RestartPolicy, ScalePolicy, Scheduling,
    ScoringWeights, SpecFormat, UpdateStrategy, VolumeSpec, parse_spec, parse_specs,
};
use proptest::prelude::*;
use serde_json::Value;

/// Parses `text` every way there is; each must give a spec or a typed parse/validation error.
fn parse_every_way(text: &str) -> Result<(), TestCaseError> {
    for format in [SpecFormat::Yaml, SpecFormat::Json, SpecFormat::Auto] {
        match parse_spec(text, format) {
            Ok(spec) => prop_assert_eq!(spec.validate(), Ok(())),
            Err(Error::Parse(_) | Error::Invalid(_)) => {}
            Err(other) => prop_assert!(false, "untyped error {other:?} for {text:?}"),
        }
        match parse_specs(text, format) {
            Ok(specs) => {
                for spec in specs {
                    prop_assert_eq!(spec.validate(), Ok(()));
                }
            }
            Err(Error::Parse(_) | Error::Invalid(_)) => {}
            Err(other) => prop_assert!(false, "untyped error {other:?} for {text:?}"),
        }
    }
    Ok(())
}

/// Keys that reach deep into the spec, mixed with arbitrary ones.
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(vec![
            "name", "service_name", "image", "replicas", "command", "env", "ports", "volumes",
            "network", "network_mode", "dns", "extra_hosts", "restart_policy", "resources",
            "health_check", "scale_policy", "update_strategy", "scheduling", "labels",
            "container_port", "host_port", "protocol", "cpu_millicores", "memory_bytes", "type",
            "http_path", "port", "interval", "min_replicas", "max_replicas", "target_cpu",
            "cooldown_seconds", "stabilization_seconds", "affinity", "affinityRules", "antiAffinityRules", "target",
            "maxLatency", "minBandwidth", "max_loss", "zones", "avoid", "weights", "cpu",
            "apiVersion", "kind", "metadata", "spec", "container", "services", "parallelism",
        ])
        .prop_map(str::to_owned),
        1 => ".{0,12}",
    ]
}

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        prop::sample::select(vec![
            "latency",
            "bandwidth",
            "network-zone",
            "http",
            "tcp",
            "command",
            "no",
            "always",
            "host",
            "bridge",
            "Deployment",
            "orion.io/v1",
            "5ms",
            "100Mbps",
            "8080:80/udp",
            "/a:/b:ro",
            "256Mi",
            "500m",
            "30s",
            "KEY=value",
            "web",
        ])
        .prop_map(Value::from),
        ".{0,16}".prop_map(Value::from),
    ]
}

/// Arbitrary JSON structures, biased towards the spec's own field names.
fn any_value() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(5, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(key(), inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn arbitrary_text_never_panics(text in any::<String>()) {
        parse_every_way(&text)?;
    }

    #[test]
    fn arbitrary_bytes_as_utf8_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        parse_every_way(&String::from_utf8_lossy(&bytes))?;
    }

    #[test]
    fn yaml_looking_text_never_panics(
        lines in prop::collection::vec((0usize..6, key(), "[-:\\[\\]{}&*!|>'\" #a-z0-9]{0,12}"), 0..16)
    ) {
        let text: String = lines
            .iter()
            .map(|(indent, k, v)| format!("{}{k}: {v}\n", "  ".repeat(*indent)))
            .collect();
        parse_every_way(&text)?;
    }

    #[test]
    fn arbitrary_structures_never_panic(value in any_value()) {
        let json = serde_json::to_string(&value).expect("a Value always serializes");
        parse_every_way(&json)?;
        if let Ok(yaml) = serde_saphyr::to_string(&value) {
            parse_every_way(&yaml)?;
        }
    }

    #[test]
    fn valid_spec_with_one_field_replaced_never_panics(
        spec in valid_spec(),
        field in key(),
        value in any_value(),
    ) {
        let mut v = serde_json::to_value(&spec).expect("spec serializes");
        if let Value::Object(map) = &mut v {
            map.insert(field, value);
        }
        parse_every_way(&serde_json::to_string(&v).expect("serializes"))?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn valid_specs_round_trip_through_yaml_and_json(spec in valid_spec()) {
        prop_assert_eq!(spec.validate(), Ok(()));
        let yaml = spec.to_yaml().expect("yaml");
        let from_yaml = parse_spec(&yaml, SpecFormat::Yaml);
        prop_assert!(from_yaml.is_ok(), "{:?}\n{}", from_yaml, yaml);
        prop_assert_eq!(from_yaml.expect("checked"), spec.clone(), "{}", yaml);
        let json = spec.to_json().expect("json");
        prop_assert_eq!(parse_spec(&json, SpecFormat::Json).expect("json parses"), spec.clone());
        prop_assert_eq!(parse_spec(&json, SpecFormat::Auto).expect("auto parses"), spec);
    }
}

// ---- a generator of valid specs ----

const DNS: &str = "[a-z]([a-z0-9-]{0,14}[a-z0-9])?";

fn ip() -> impl Strategy<Value = String> {
    any::<IpAddr>().prop_map(|ip| ip.to_string())
}

fn non_blank() -> impl Strategy<Value = String> {
    any::<String>().prop_filter("not blank", |s| !s.trim().is_empty())
}

fn ports() -> impl Strategy<Value = Vec<PortSpec>> {
    prop::collection::btree_map((1u16.., any::<bool>()), any::<u16>(), 0..5).prop_map(|m| {
        let mut hosts = BTreeSet::new();
        m.into_iter()
            .map(|((container_port, udp), host)| {
                let protocol = if udp { Protocol::Udp } else { Protocol::Tcp };
                let host_port = if hosts.insert((host, udp)) { host } else { 0 };
                PortSpec {
                    container_port,
                    host_port,
                    protocol,
                    name: None,
                }
            })
            .collect()
    })
}

fn volumes() -> impl Strategy<Value = Vec<VolumeSpec>> {
    prop::collection::btree_map(
        "/[a-z0-9/._-]{0,15}",
        (
            "[a-z][a-z0-9_.-]{0,8}|/[a-zA-Z0-9/._ -]{0,12}",
            any::<bool>(),
        ),
        0..4,
    )
    .prop_map(|m| {
        m.into_iter()
            .map(|(target, (source, read_only))| VolumeSpec {
                source,
                target,
                read_only,
            })
            .collect()
    })
}

fn env() -> impl Strategy<Value = Vec<String>> {
    prop::collection::btree_map("[A-Za-z_][A-Za-z0-9_]{0,10}", any::<String>(), 0..5)
        .prop_map(|m| m.into_iter().map(|(k, v)| format!("{k}={v}")).collect())
}

fn health_check() -> impl Strategy<Value = HealthCheck> {
    let kind = prop_oneof![
        ("/[ -~]{0,20}", 1u16..).prop_map(|(p, port)| (
            HealthCheckType::Http,
            Some(p),
            Some(port),
            vec![]
        )),
        (1u16..).prop_map(|port| (HealthCheckType::Tcp, None, Some(port), vec![])),
        prop::collection::vec(any::<String>(), 1..4).prop_map(|c| (
            HealthCheckType::Command,
            None,
            None,
            c
        )),
    ];
    (
        kind,
        1u64..=3600,
        any::<u64>(),
        0u32..=100,
        0u64..=3600,
        prop::option::of(100u16..=599),
    )
        .prop_map(
            |(
                (kind, http_path, port, command),
                interval,
                timeout,
                retries,
                start_period,
                status,
            )| {
                HealthCheck {
                    expected_status: status.filter(|_| kind == HealthCheckType::Http),
                    kind,
                    http_path,
                    port,
                    command,
                    interval,
                    timeout: timeout % (interval + 1),
                    retries,
                    start_period,
                }
            },
        )
}

fn scale_policy() -> impl Strategy<Value = ScalePolicy> {
    (
        1u32..10,
        0u32..20,
        prop::option::of(5.0f64..=100.0),
        prop::option::of(10.0f64..=100.0),
        30u64..100_000,
        0u64..=3600,
    )
        .prop_map(
            |(min, extra, target_cpu, target_memory, cooldown_seconds, stabilization_seconds)| {
                ScalePolicy {
                    min_replicas: min,
                    max_replicas: min + extra,
                    target_cpu,
                    target_memory,
                    cooldown_seconds,
                    stabilization_seconds,
                }
            },
        )
}

fn affinity_rule() -> impl Strategy<Value = AffinityRule> {
    let positive = 1e-6f64..1e9;
    prop_oneof![
        (DNS, positive.clone()).prop_map(|(target, max_latency_ms)| AffinityRule::Latency {
            target,
            max_latency_ms,
            required: true,
        }),
        (prop::option::of(DNS), positive).prop_map(|(target, min_bandwidth_mbps)| {
            AffinityRule::Bandwidth {
                target,
                min_bandwidth_mbps,
                required: true,
            }
        }),
        (prop::option::of(DNS), 0.0f64..=1.0).prop_map(|(target, max_loss)| AffinityRule::Loss {
            target,
            max_loss,
            required: true
        }),
        (prop::collection::vec(non_blank(), 1..3), any::<bool>())
            .prop_map(|(zones, required)| AffinityRule::Zone { zones, required }),
    ]
}

fn anti_affinity_rule() -> impl Strategy<Value = AntiAffinityRule> {
    prop_oneof![
        non_blank().prop_map(|avoid| AntiAffinityRule::NetworkZone { avoid }),
        DNS.prop_map(|service| AntiAffinityRule::Service { service }),
    ]
}

fn scheduling() -> impl Strategy<Value = Scheduling> {
    let weights =
        (0.0f64..10.0, 0.0f64..10.0, 0.001f64..10.0).prop_map(|(cpu, memory, network)| {
            ScoringWeights {
                cpu,
                memory,
                network,
            }
        });
    (
        prop::option::of(weights),
        prop::option::of(any::<bool>()),
        prop::collection::btree_map(non_blank(), any::<String>(), 0..3),
        prop::collection::vec(non_blank(), 0..3),
        prop::collection::vec(non_blank(), 0..3),
        prop::option::of(non_blank()),
        prop::option::of(1u32..),
        prop::collection::vec(affinity_rule(), 0..4),
        prop::collection::vec(anti_affinity_rule(), 0..3),
    )
        .prop_map(
            |(
                weights,
                network_aware,
                node_selector,
                zones,
                avoid_zones,
                spread_by,
                max_per_node,
                affinity,
                anti_affinity,
            )| {
                Scheduling {
                    weights,
                    network_aware,
                    node_selector,
                    zones,
                    avoid_zones,
                    spread_by,
                    max_per_node,
                    affinity,
                    anti_affinity,
                }
            },
        )
}

fn update_strategy() -> impl Strategy<Value = UpdateStrategy> {
    (1u32.., 0u64..=3600, 0u64..=3600, 0..3).prop_map(|(parallelism, delay, wait, action)| {
        UpdateStrategy {
            parallelism,
            delay_seconds: delay,
            health_wait_seconds: wait,
            failure_action: [
                FailureAction::Rollback,
                FailureAction::Pause,
                FailureAction::Continue,
            ][action as usize],
            canary: 0,
            max_surge: None,
        }
    })
}

fn valid_spec() -> impl Strategy<Value = ServiceSpec> {
    let identity = (
        DNS,
        "[a-z0-9][a-z0-9./:_@-]{0,30}",
        prop::collection::vec(any::<String>(), 0..4),
        env(),
        prop::collection::btree_map(non_blank(), any::<String>(), 0..3),
    );
    let network = (
        0..3,
        ports(),
        prop::option::of("[a-zA-Z0-9][a-zA-Z0-9_.-]{0,10}"),
        prop::collection::vec(ip(), 0..3),
        prop::collection::vec(
            (
                "[a-z]{1,8}(\\.[a-z]{1,5})?",
                prop_oneof![ip(), Just("host-gateway".to_owned())],
            ),
            0..3,
        ),
        volumes(),
    );
    let run = (
        0..4,
        5u64..1_000_000,
        16u64 << 20..1u64 << 44,
        any::<u64>(),
        prop::option::of(health_check()),
        prop::option::of(scale_policy()),
        any::<u32>(),
        update_strategy(),
        scheduling(),
        0u8..3,
    );
    (identity, network, run).prop_map(|(identity, network, run)| {
        let (name, image, command, env, labels) = identity;
        let (mode, ports, net, dns, extra_hosts, volumes) = network;
        let (
            restart,
            cpu,
            memory,
            disk,
            health_check,
            scale_policy,
            replicas,
            update_strategy,
            scheduling,
            limit,
        ) = run;
        let network_mode =
            [NetworkMode::Bridge, NetworkMode::Host, NetworkMode::None][mode as usize];
        let bridged = network_mode == NetworkMode::Bridge;
        let replicas = match &scale_policy {
            Some(p) => p.min_replicas + replicas % (p.max_replicas - p.min_replicas + 1),
            None => replicas % 50,
        };
        let ports = if bridged { ports } else { Vec::new() };
        // A tcp/http check must reach a published tcp port (or the host's network).
        let health_check = health_check.map(|mut h| {
            let reachable = network_mode == NetworkMode::Host
                || ports.iter().any(|p| {
                    Some(p.container_port) == h.port
                        && p.protocol == orion_core::model::spec::Protocol::Tcp
                });
            if h.port.is_some() && !reachable {
                h.kind = HealthCheckType::Command;
                h.http_path = None;
                h.expected_status = None;
                h.port = None;
                h.command = vec!["true".into()];
            }
            h
        });
        ServiceSpec {
            name,
            image,
            replicas,
            command,
            entrypoint: (replicas % 3 == 0).then(|| vec!["/bin/sh".into(), "-c".into()]),
            env,
            secrets: Vec::new(),
            ports,
            volumes,
            network: if bridged { net } else { None },
            network_mode,
            dns,
            extra_hosts: extra_hosts
                .into_iter()
                .map(|(h, ip)| format!("{h}:{ip}"))
                .collect(),
            restart_policy: [
                RestartPolicy::No,
                RestartPolicy::Always,
                RestartPolicy::OnFailure,
                RestartPolicy::UnlessStopped,
            ][restart as usize],
            reschedule_after: 1 + replicas % 100,
            resources: ResourceSpec {
                cpu_millicores: cpu,
                memory_bytes: memory,
                disk_bytes: disk,
                cpu_limit: match limit {
                    0 => CpuLimit::Reserved,
                    1 => CpuLimit::None,
                    _ => CpuLimit::Millicores(cpu + disk % 4_000),
                },
            },
            health_check,
            scale_policy,
            update_strategy,
            scheduling,
            depends_on: Vec::new(),
            labels,
            stop_after_disconnect: 0,
        }
    })
}

/// The generator above only makes valid specs (a check on the test itself).
#[test]
fn generated_specs_are_valid() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    for _ in 0..64 {
        let spec = valid_spec().new_tree(&mut runner).expect("tree").current();
        assert_eq!(spec.validate(), Ok(()), "{spec:?}");
    }
}
