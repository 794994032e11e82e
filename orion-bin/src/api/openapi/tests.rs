use std::collections::BTreeSet;

use serde_json::Value;

use super::document_json;
use crate::api::routes::route_table;

fn document() -> Value {
    serde_json::from_str(document_json()).expect("the document is JSON")
}

/// The (METHOD, path) pairs of the document.
fn documented(doc: &Value) -> BTreeSet<(String, String)> {
    let mut pairs = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("a path item").keys() {
            if ["get", "put", "post", "delete", "patch"].contains(&method.as_str()) {
                pairs.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    pairs
}

fn routed() -> BTreeSet<(String, String)> {
    route_table()
        .entries()
        .iter()
        .map(|e| (e.method.to_string(), e.path.to_owned()))
        .collect()
}

#[test]
fn the_document_lists_exactly_the_routes_of_the_route_table() {
    let doc = document();
    let documented = documented(&doc);
    let routed = routed();
    let missing: Vec<_> = routed.difference(&documented).collect();
    let extra: Vec<_> = documented.difference(&routed).collect();
    assert!(
        missing.is_empty(),
        "routes without an operation in api/openapi/paths.rs: {missing:?}"
    );
    assert!(extra.is_empty(), "operations without a route: {extra:?}");
}

#[test]
fn every_operation_has_its_security_and_the_error_shape() {
    let doc = document();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    let error = &doc["components"]["schemas"]["ApiError"];
    for field in ["code", "error", "fields"] {
        assert!(error["properties"][field].is_object(), "ApiError.{field}");
    }
    let open: BTreeSet<(String, String)> = route_table()
        .entries()
        .iter()
        .filter(|e| e.access == crate::api::access::Access::Open)
        .map(|e| (e.method.to_string(), e.path.to_owned()))
        .collect();
    for (method, path) in documented(&doc) {
        let op = &doc["paths"][&path][method.to_lowercase()];
        for range in ["4XX", "5XX"] {
            assert_eq!(
                op["responses"][range]["$ref"], "#/components/responses/Error",
                "{method} {path} {range}"
            );
        }
        let security = op["security"]
            .as_array()
            .expect("security on every operation");
        let bearer = security.iter().any(|s| s.get("bearer").is_some());
        assert_eq!(
            bearer,
            !open.contains(&(method.clone(), path.clone())),
            "{method} {path}: {security:?}"
        );
    }
}

#[test]
fn the_field_error_schema_matches_the_core_type() {
    let core = orion_core::error::FieldError {
        path: "a".into(),
        value: "b".into(),
        expected: "c".into(),
    };
    let doc = document();
    let schema = &doc["components"]["schemas"]["FieldError"]["properties"];
    let keys: BTreeSet<String> = serde_json::to_value(&core)
        .unwrap()
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    let documented: BTreeSet<String> = schema.as_object().unwrap().keys().cloned().collect();
    assert_eq!(keys, documented);
}

/// The `METHOD /path` pairs in the first column of docs/api.md's route table.
fn api_md_routes() -> BTreeSet<(String, String)> {
    let text = include_str!("../../../../docs/api.md");
    let mut pairs = BTreeSet::new();
    for line in text.lines() {
        let Some(first) = line.strip_prefix('|').and_then(|l| l.split(" | ").next()) else {
            continue;
        };
        for (i, part) in first.split('`').enumerate() {
            if i % 2 == 0 {
                continue;
            }
            let Some((method, path)) = part.split_once(' ') else {
                continue;
            };
            if !["GET", "POST", "PUT", "DELETE", "PATCH"].contains(&method) {
                continue;
            }
            let path = path.split('?').next().unwrap_or(path);
            pairs.insert((method.to_owned(), path.to_owned()));
        }
    }
    pairs
}

#[test]
fn docs_api_md_documents_exactly_the_routes_of_the_document() {
    let documented = documented(&document());
    let in_md = api_md_routes();
    let undocumented: Vec<_> = documented.difference(&in_md).collect();
    let stale: Vec<_> = in_md.difference(&documented).collect();
    assert!(
        undocumented.is_empty(),
        "routes missing from docs/api.md's table: {undocumented:?}"
    );
    assert!(
        stale.is_empty(),
        "docs/api.md lists routes that do not exist: {stale:?}"
    );
}
