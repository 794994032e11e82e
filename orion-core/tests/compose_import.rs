//! Compose import: every imported field in its Compose forms, and every construct that cannot
//! be imported reported with its line, all at once.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use orion_core::Error;
use orion_core::model::spec::compose::{ComposeOptions, is_compose, parse_compose};
use orion_core::model::spec::{
    CpuLimit, FailureAction, HealthCheckType, NetworkMode, Protocol, RestartPolicy, ServiceSpec,
};

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/compose")
}

fn options(file: &str, vars: &[(&str, &str)]) -> ComposeOptions {
    ComposeOptions {
        source: file.to_owned(),
        project_dir: Some(data_dir()),
        variables: vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect::<BTreeMap<_, _>>(),
    }
}

fn read(file: &str) -> String {
    std::fs::read_to_string(data_dir().join(file)).expect("fixture")
}

fn service<'a>(specs: &'a [ServiceSpec], name: &str) -> &'a ServiceSpec {
    specs
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no service {name}"))
}

fn env<'a>(spec: &'a ServiceSpec, key: &str) -> Option<&'a str> {
    spec.env
        .iter()
        .find_map(|e| e.strip_prefix(key)?.strip_prefix('='))
}

#[test]
fn the_shop_imports_every_supported_field() {
    let import = parse_compose(
        &read("shop.yml"),
        &options("shop.yml", &[("TAG", "1.4"), ("FROM_SHELL", "yes")]),
    )
    .expect("imports");
    let names: Vec<_> = import.specs.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["api", "cache-store", "db", "web"]);

    let web = service(&import.specs, "web");
    assert_eq!(web.image, "registry.local/shop/web:1.4");
    assert_eq!(web.command, ["nginx", "-g", "daemon off;"]);
    let ports: Vec<_> = web
        .ports
        .iter()
        .map(|p| (p.host_port, p.container_port, p.protocol, p.name.as_deref()))
        .collect();
    assert_eq!(
        ports,
        [
            (8080, 80, Protocol::Tcp, None),
            (9000, 9000, Protocol::Udp, None),
            (9001, 9001, Protocol::Udp, None),
            (8443, 443, Protocol::Tcp, Some("https")),
        ]
    );
    assert_eq!(
        env(web, "LOG_LEVEL"),
        Some("info"),
        "merge keys are followed"
    );
    assert_eq!(
        env(web, "REGION"),
        Some("eu-west"),
        "defaults are interpolated"
    );
    assert_eq!(env(web, "UPSTREAM"), Some("http://api:3000"));
    assert_eq!(web.labels["tier"], "frontend");
    assert_eq!(web.labels["owner"], "web-team", "deploy.labels too");
    assert_eq!(web.depends_on, ["api"]);
    assert_eq!(web.replicas, 3);
    assert_eq!(web.resources.cpu_millicores, 500);
    assert_eq!(web.resources.memory_bytes, 256 << 20);
    assert_eq!(web.update_strategy.parallelism, 2);
    assert_eq!(web.update_strategy.delay_seconds, 10);
    assert_eq!(web.update_strategy.health_wait_seconds, 90);
    assert_eq!(web.update_strategy.failure_action, FailureAction::Rollback);
    assert_eq!(
        web.update_strategy.max_surge, None,
        "start-first: the whole batch"
    );
    assert_eq!(web.scheduling.node_selector["zone"], "edge");
    let check = web.health_check.as_ref().expect("health check");
    assert_eq!(check.kind, HealthCheckType::Command);
    assert_eq!(
        check.command,
        ["wget", "-q", "-O-", "http://localhost/health"]
    );
    assert_eq!((check.interval, check.timeout), (15, 5));
    assert_eq!(
        check.retries, 2,
        "Docker's 3 failures are Orion's retries 2"
    );
    assert_eq!(check.start_period, 20);

    let api = service(&import.specs, "api");
    assert_eq!(
        api.entrypoint.as_deref(),
        Some(&["/usr/local/bin/api".to_owned()][..])
    );
    assert_eq!(api.command, ["--port", "3000", "--verbose", "true"]);
    assert_eq!(
        env(api, "DB_HOST"),
        Some("db"),
        "environment wins over env_file"
    );
    assert_eq!(env(api, "POOL_SIZE"), Some("20"));
    assert_eq!(env(api, "QUOTED"), Some("a b c"));
    assert_eq!(env(api, "FROM_SHELL"), Some("yes"));
    assert_eq!(env(api, "NOT_SET_ANYWHERE"), None);
    assert_eq!(
        api.depends_on,
        ["db", "cache-store"],
        "renamed dependencies follow"
    );
    assert_eq!(api.restart_policy, RestartPolicy::OnFailure);
    let check = api.health_check.as_ref().expect("health check");
    assert_eq!(check.command[..2], ["/bin/sh", "-c"]);

    let db = service(&import.specs, "db");
    let volumes: Vec<_> = db
        .volumes
        .iter()
        .map(|v| (v.source.as_str(), v.target.as_str(), v.read_only))
        .collect();
    assert_eq!(
        volumes,
        [
            ("db-data", "/var/lib/postgresql/data", false),
            ("/srv/backups", "/backups", true),
            ("/etc/localtime", "/etc/localtime", true),
        ]
    );
    assert_eq!(
        db.resources.cpu_millicores, 1000,
        "reservations without limits"
    );
    assert_eq!(
        db.resources.cpu_limit,
        CpuLimit::None,
        "no cap without limits"
    );
    assert_eq!(db.resources.memory_bytes, 1 << 30);
    assert_eq!(db.restart_policy, RestartPolicy::Always);

    let cache = service(&import.specs, "cache-store");
    assert_eq!(cache.replicas, 2);
    assert_eq!(cache.network_mode, NetworkMode::Bridge);
    assert_eq!(cache.dns, ["10.0.0.2"]);
    assert_eq!(
        cache.extra_hosts,
        ["metrics.local:10.0.0.9", "logs.local:10.0.0.10"]
    );
    assert!(cache.health_check.is_none(), "disable: true");

    let notes = import.notes.join("\n");
    for expected in [
        "`version` is obsolete",
        "project name",
        "`cache_store` is imported as `cache-store`",
        "starts services without waiting",
        "`expose` only documents ports",
        "`NOT_SET_ANYWHERE` has no value",
    ] {
        assert!(
            notes.contains(expected),
            "notes lack {expected:?}:\n{notes}"
        );
    }
}

#[test]
fn an_unset_variable_is_a_note_and_a_required_one_an_error() {
    let import = parse_compose(&read("shop.yml"), &options("shop.yml", &[])).expect("imports");
    assert_eq!(
        service(&import.specs, "web").image,
        "registry.local/shop/web:"
    );
    assert!(
        import
            .notes
            .iter()
            .any(|n| n.contains("unset variable(s) TAG"))
    );

    let text = "services:\n  web:\n    image: \"nginx:${TAG:?set TAG to the release}\"\n";
    let err = parse_compose(text, &options("c.yml", &[])).unwrap_err();
    assert!(err.to_string().contains("set TAG to the release"), "{err}");
}

#[test]
fn every_construct_that_cannot_be_imported_is_listed_with_its_line() {
    let err = parse_compose(&read("unsupported.yml"), &options("unsupported.yml", &[]))
        .expect_err("refused");
    let Error::Invalid(problems) = err else {
        panic!("expected Invalid, got {err}");
    };
    let found: Vec<(&str, &str)> = problems
        .0
        .iter()
        .map(|p| (p.path.as_str(), p.value.as_str()))
        .collect();
    for (path, line) in [
        ("services.app.build", "unsupported.yml:3:5"),
        ("services.app.container_name", "unsupported.yml:4:"),
        ("services.app.networks", "unsupported.yml:5:"),
        ("services.app.volumes[0]", "unsupported.yml:8:"),
        ("services.app.ports[0]", "unsupported.yml:10:"),
        ("services.worker.extends", "unsupported.yml:12:"),
        ("services.worker.network_mode", "unsupported.yml:15:"),
        ("services.worker.deploy.mode", "unsupported.yml:17:"),
        (
            "services.worker.deploy.resources.limits.pids",
            "unsupported.yml:20:",
        ),
        ("networks", "unsupported.yml:21:1"),
    ] {
        assert!(
            found.iter().any(|(p, v)| *p == path && v.contains(line)),
            "{path} at {line} missing from {found:#?}"
        );
    }
    let text = problems.to_string();
    assert!(text.contains("does not build them"), "{text}");
    assert!(text.contains("the relative path `./data`"), "{text}");
    assert!(text.contains("publish address"), "{text}");
    assert!(
        !found.iter().any(|(p, _)| *p == "services.app"),
        "a service with `build` is not also reported as lacking an image: {found:#?}"
    );
}

#[test]
fn json_compose_files_and_detection() {
    let text = read("minimal.json");
    assert!(is_compose(&text));
    let import = parse_compose(&text, &options("minimal.json", &[])).expect("imports");
    assert_eq!(import.specs[0].replicas, 2);
    assert_eq!(import.specs[0].command, ["sleep", "60"]);

    // Orion's own config document has a `services` list: not Compose.
    assert!(!is_compose("services:\n  - name: web\n    image: nginx\n"));
    assert!(!is_compose("name: web\nimage: nginx\n"));
    assert!(!is_compose("services: ["));
}

#[test]
fn imported_specs_are_validated_with_compose_paths() {
    let text = "services:\n  web:\n    image: nginx\n    deploy:\n      resources:\n        limits:\n          memory: 1k\n";
    let Error::Invalid(problems) = parse_compose(text, &options("c.yml", &[])).unwrap_err() else {
        panic!("expected Invalid");
    };
    assert_eq!(problems.0.len(), 1, "{problems}");
    assert!(
        problems.0[0]
            .path
            .starts_with("services.web.deploy.resources"),
        "{problems}"
    );
}

#[test]
fn cpu_reservations_and_limits_become_the_reservation_and_the_cap() {
    let with = |resources: &str| {
        let text = format!(
            "services:\n  web:\n    image: nginx\n    deploy:\n      resources:\n{resources}"
        );
        parse_compose(&text, &options("c.yml", &[]))
    };
    let both = with(
        "        reservations: {cpus: '0.25', memory: 64M}\n        limits: {cpus: '1.5', memory: 128M}\n",
    )
    .unwrap();
    let web = service(&both.specs, "web");
    assert_eq!(web.resources.cpu_millicores, 250);
    assert_eq!(web.resources.cpu_limit, CpuLimit::Millicores(1500));
    assert_eq!(web.resources.memory_bytes, 128 << 20, "the memory limit");
    assert!(
        both.notes.iter().any(|n| n.contains("limits.memory")),
        "{:?}",
        both.notes
    );

    let limit_only = with("        limits: {cpus: '0.5'}\n").unwrap();
    let web = service(&limit_only.specs, "web");
    assert_eq!(web.resources.cpu_millicores, 500);
    assert_eq!(web.resources.cpu_limit, CpuLimit::Reserved);

    let Error::Invalid(problems) =
        with("        reservations: {cpus: '2'}\n        limits: {cpus: '1'}\n").unwrap_err()
    else {
        panic!("expected Invalid");
    };
    let shown = problems.to_string();
    assert!(
        shown.contains("services.web.deploy.resources.limits.cpus")
            && shown.contains("at least reservations.cpus (2)"),
        "{shown}"
    );
}

#[test]
fn env_files_need_a_directory_and_stay_bounded() {
    let text = "services:\n  web:\n    image: nginx\n    env_file: api.env\n";
    let mut from_stdin = options("-", &[]);
    from_stdin.project_dir = None;
    let err = parse_compose(text, &from_stdin).unwrap_err().to_string();
    assert!(err.contains("cannot be read from standard input"), "{err}");

    let missing = "services:\n  web:\n    image: nginx\n    env_file: nope.env\n";
    let err = parse_compose(missing, &options("c.yml", &[]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("nope.env"), "{err}");
}

#[test]
fn malformed_documents_are_parse_errors() {
    for text in ["services: web", "- a\n- b\n", "services:\n  web: [1, 2]\n"] {
        let err = parse_compose(text, &options("c.yml", &[])).unwrap_err();
        assert!(
            matches!(err, Error::Parse(_) | Error::Invalid(_)),
            "{text:?}: {err}"
        );
    }
}

#[test]
fn update_config_order_is_max_surge() {
    let text = "services:\n  db:\n    image: postgres:16\n    deploy:\n      replicas: 2\n      update_config:\n        order: stop-first\n";
    let specs = parse_compose(text, &options("order.yml", &[])).expect("imported");
    assert_eq!(
        service(&specs.specs, "db").update_strategy.max_surge,
        Some(0)
    );
    let bad = text.replace("stop-first", "sideways");
    let err = parse_compose(&bad, &options("order.yml", &[])).expect_err("refused");
    assert!(
        err.to_string().contains("stop-first or start-first"),
        "{err}"
    );
}
