use super::*;

fn set(config: &mut ClientConfig, name: &str, addr: &str) {
    config
        .apply(ContextAction::Set {
            name: name.into(),
            addr: addr.into(),
            credentials: None,
        })
        .unwrap();
}

#[test]
fn the_path_comes_from_orion_config_then_xdg_then_home() {
    assert_eq!(
        config_path_from(Some("/a/c.yaml"), Some("/x"), Some("/h")),
        Some(PathBuf::from("/a/c.yaml"))
    );
    assert_eq!(
        config_path_from(None, Some("/x"), Some("/h")),
        Some(PathBuf::from("/x/orion/config.yaml"))
    );
    assert_eq!(
        config_path_from(None, None, Some("/h")),
        Some(PathBuf::from("/h/.config/orion/config.yaml"))
    );
    assert_eq!(config_path_from(None, None, None), None);
}

#[test]
fn set_use_list_delete_round_trip_through_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("orion/config.yaml");
    let mut config = ClientConfig::load(&path).unwrap();
    assert_eq!(config, ClientConfig::default());
    set(&mut config, "prod", "10.0.0.5:8000");
    set(&mut config, "dev", "127.0.0.1:8000");
    config
        .apply(ContextAction::Use {
            name: "prod".into(),
        })
        .unwrap();
    config.save(&path).unwrap();
    let back = ClientConfig::load(&path).unwrap();
    assert_eq!(back, config);
    let list = config.clone().apply(ContextAction::List).unwrap();
    assert!(list.contains("*  prod  10.0.0.5:8000"), "{list}");
    assert!(list.contains("  dev  127.0.0.1:8000"), "{list}");
    config
        .apply(ContextAction::Delete {
            name: "prod".into(),
        })
        .unwrap();
    assert_eq!(config.current_context, None);
    let err = config
        .apply(ContextAction::Use {
            name: "prod".into(),
        })
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("no context \"prod\"") && err.contains("dev"),
        "{err}"
    );
}

#[test]
fn the_flag_picks_a_context_over_the_current_one_and_an_unknown_one_is_refused() {
    let mut config = ClientConfig::default();
    set(&mut config, "prod", "10.0.0.5:8000");
    set(&mut config, "dev", "127.0.0.1:9000");
    assert_eq!(config.select(None).unwrap(), None);
    config.current_context = Some("prod".into());
    assert_eq!(config.select(None).unwrap().unwrap().addr, "10.0.0.5:8000");
    assert_eq!(
        config.select(Some("dev")).unwrap().unwrap().addr,
        "127.0.0.1:9000"
    );
    let err = config.select(Some("qa")).unwrap_err().to_string();
    assert!(
        err.contains("no such context") && err.contains("dev, prod"),
        "{err}"
    );
}

#[test]
fn bad_input_is_refused_with_what_is_accepted() {
    let mut config = ClientConfig::default();
    let err = config
        .apply(ContextAction::Set {
            name: "a b".into(),
            addr: "x:1".into(),
            credentials: None,
        })
        .unwrap_err()
        .to_string();
    assert!(err.contains("expected 1 to 63"), "{err}");
    let err = config
        .apply(ContextAction::Set {
            name: "ok".into(),
            addr: "x:1".into(),
            credentials: Some("/nonexistent/creds".into()),
        })
        .unwrap_err();
    assert!(format!("{err:#}").contains("--credentials"), "{err:#}");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.yaml");
    std::fs::write(&path, "contexts: {}\ncurrentContext: nope\n").unwrap();
    let err = format!("{:#}", ClientConfig::load(&path).unwrap_err());
    assert!(err.contains("currentContext \"nope\""), "{err}");
    std::fs::write(&path, "context: {}\n").unwrap();
    assert!(ClientConfig::load(&path).is_err());
}
