//! Parse errors: field paths in both formats, hints, locations, and the document shapes.

use orion_core::Error;
use orion_core::error::ParseError;
use orion_core::model::ServiceSpec;
use orion_core::model::spec::{SpecFormat, parse_spec, parse_specs};

fn parse_error(text: &str, format: SpecFormat) -> ParseError {
    match parse_spec(text, format) {
        Err(Error::Parse(e)) => e,
        other => panic!("expected a parse error, got {other:?}"),
    }
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
    let names = |specs: Vec<ServiceSpec>| specs.into_iter().map(|s| s.name).collect::<Vec<_>>();
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
        names(parse_specs(
            "apiVersion: orion.io/v1\nkind: Deployment\nmetadata: {name: api-gateway}\nspec: {container: {image: i}}\n",
            SpecFormat::Yaml
        ).expect("one")),
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
    assert!(
        errs.0[1].expected.contains("(`services[0].name` has it)"),
        "{}",
        errs.0[1]
    );
    let text = "apiVersion: orion.io/v1\nkind: Deployment\nmetadata: {name: a}\nspec: {container: {image: i}}\n---\nname: a\nimage: i\n";
    let Err(Error::Invalid(errs)) = parse_specs(text, SpecFormat::Yaml) else {
        panic!("expected invalid")
    };
    assert_eq!(errs.0[0].path, "documents[1].name");
    assert!(
        errs.0[0]
            .expected
            .contains("`documents[0].metadata.name` has it"),
        "{}",
        errs.0[0]
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

#[test]
fn parse_spec_points_lists_and_configs_to_parse_specs() {
    for text in ["- {name: a, image: i}\n", "services: []\n"] {
        let e = parse_error(text, SpecFormat::Yaml);
        assert!(e.message.contains("read it with parse_specs"), "{e}");
    }
}

#[test]
fn objects_are_not_accepted_as_positional_lists() {
    for (text, path) in [
        ("resources: [500, 1000]", "resources"),
        ("health_check: [tcp, /x, 80]", "health_check"),
        ("scale_policy: [1, 3]", "scale_policy"),
        ("update_strategy: [1]", "update_strategy"),
        ("scheduling: [null, true]", "scheduling"),
        ("scheduling: {weights: [1, 1, 1]}", "scheduling.weights"),
        (
            "scheduling: {affinity: [[latency, db, 5]]}",
            "scheduling.affinity[0]",
        ),
        (
            "scheduling: {anti_affinity: [[service, db]]}",
            "scheduling.anti_affinity[0]",
        ),
    ] {
        let e = parse_error(&format!("name: w\nimage: i\n{text}\n"), SpecFormat::Yaml);
        assert_eq!(e.path, path, "{e}");
        assert!(e.message.contains("expected a mapping"), "{e}");
    }
}

#[test]
fn auto_reads_yaml_flow_lists_and_reports_json_errors() {
    let specs = parse_specs(
        "[{name: a, image: i}, {name: b, image: i}]",
        SpecFormat::Auto,
    )
    .expect("YAML flow style is read when it is not JSON");
    assert_eq!(specs.len(), 2);
    let e = parse_error("{\"name\": \"web\",\n \"image\": \"i\"", SpecFormat::Auto);
    assert!(e.message.starts_with("invalid JSON"), "{e}");
    // Broken JSON that is still YAML is read as YAML (`image:` is null there).
    let e = parse_error("{\"name\": \"web\",\n \"image\": }", SpecFormat::Auto);
    assert_eq!(e.path, "image");
    let e = parse_error(
        "{\"name\": \"web\",\n \"image\": \"i\", \"replica\": 2}",
        SpecFormat::Auto,
    );
    assert_eq!(e.location.map(|l| l.0), Some(2), "{e:?}");
}
