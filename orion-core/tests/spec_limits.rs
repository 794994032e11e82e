//! The cluster's replica limit (`SpecLimits`): a spec beyond it is refused naming the limit, and
//! a stored spec beyond it is acted on only up to it.

use orion_core::model::ServiceSpec;
use orion_core::model::spec::{
    DEFAULT_MAX_REPLICAS, ScalePolicy, SpecFormat, SpecLimits, parse_spec, parse_spec_with,
};

fn base() -> ServiceSpec {
    ServiceSpec::new("web", "nginx:alpine", 2)
}

#[test]
fn replicas_are_bounded_by_the_cluster_limit() {
    let mut spec = base();
    spec.replicas = DEFAULT_MAX_REPLICAS;
    assert!(spec.validate().is_ok());
    spec.replicas = 1_000_000_000;
    let errs = spec.validate().unwrap_err();
    assert_eq!(errs.0.len(), 1, "{errs:?}");
    assert_eq!(errs.0[0].path, "replicas");
    assert!(errs.0[0].expected.contains("at most 10000"), "{errs:?}");

    let limits = SpecLimits { max_replicas: 5 };
    spec.replicas = 6;
    let errs = spec.validate_with(&limits).unwrap_err();
    assert_eq!(errs.0.len(), 1, "{errs:?}");
    assert!(errs.0[0].expected.contains("at most 5"), "{errs:?}");

    // A stored spec beyond the limit is acted on only up to it.
    spec.replicas = u32::MAX;
    assert_eq!(
        SpecLimits::default().effective_replicas(&spec),
        DEFAULT_MAX_REPLICAS
    );
    assert_eq!(limits.effective_replicas(&spec), 5);

    // The parser applies the default, or the limits it is given.
    let text = "name: web\nimage: nginx\nreplicas: 20000\n";
    let err = parse_spec(text, SpecFormat::Yaml).unwrap_err();
    assert!(err.to_string().contains("at most 10000"), "{err}");
    let raised = SpecLimits {
        max_replicas: 50_000,
    };
    assert_eq!(
        parse_spec_with(text, SpecFormat::Yaml, &raised)
            .unwrap()
            .replicas,
        20_000
    );
}

#[test]
fn scale_policy_max_is_bounded_by_the_cluster_limit() {
    let mut spec = base();
    spec.scale_policy = Some(ScalePolicy {
        min_replicas: 1,
        max_replicas: DEFAULT_MAX_REPLICAS + 1,
        target_cpu: None,
        target_memory: None,
        cooldown_seconds: 60,
        stabilization_seconds: 300,
    });
    let errs = spec.validate().unwrap_err();
    assert_eq!(errs.0.len(), 1, "{errs:?}");
    assert_eq!(errs.0[0].path, "scale_policy.max_replicas");
    assert!(errs.0[0].expected.contains("at most 10000"), "{errs:?}");
}
