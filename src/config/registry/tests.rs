//! `[input.schema_registry]`: every bad value named with its field, and the password never
//! shown.
use super::*;
use crate::config::Settings;

const CANARY: &str = "canary-pw-4711";

fn load(toml: &str, env: Vec<(String, String)>) -> Result<Settings, String> {
    let dir = std::env::temp_dir().join(format!("handoff-registry-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // One file per call: tests run in parallel, and two settings of the same length must not
    // share (and delete) one file.
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let file = dir.join(format!("{n}.toml"));
    std::fs::write(&file, toml).unwrap();
    let r = Settings::load_with_env(Some(&file), env).map_err(|e| e.to_string());
    let _ = std::fs::remove_file(&file);
    r
}

#[test]
fn a_full_section_loads() {
    let s = load(
        r#"
[input]
format = "confluent"
[input.schema_registry]
url = "https://registry.example:8081/base"
username = "handoff"
password = "env:REGISTRY_PW"
ca_file = "/etc/ca.pem"
cache_capacity = 50
timeout = "2s"
backoff_initial = "50ms"
backoff_max = "3s"
frame_outputs = true
auto_register = true
subject_strategy = "topic_record"
"#,
        vec![],
    )
    .unwrap();
    let r = s.input.schema_registry.unwrap();
    assert_eq!(r.cache_capacity, 50);
    assert_eq!(r.timeout, Duration::from_secs(2));
    assert_eq!(r.subject_strategy, SubjectStrategy::TopicRecord);
    assert_eq!(r.password.as_deref(), Some("env:REGISTRY_PW"));
}

#[test]
fn every_bad_value_is_named_with_its_field() {
    let cases: &[(&str, &str, &str)] = &[
        ("url = \"ftp://x\"", "input.schema_registry.url", "ftp://x"),
        ("url = \"http://\"", "input.schema_registry.url", "no host"),
        (
            "url = \"http://u:p@host\"",
            "input.schema_registry.url",
            "credentials",
        ),
        (
            "url = \"http://h\"\nca_file = \"/ca.pem\"",
            "input.schema_registry.ca_file",
            "not https",
        ),
        (
            "url = \"http://h\"\nusername = \"bob\"",
            "input.schema_registry.password",
            "bob",
        ),
        (
            "url = \"http://h\"\npassword = \"x\"",
            "input.schema_registry.username",
            "missing",
        ),
        (
            "url = \"http://h\"\nusername = \"a\"\npassword = \"file:\"",
            "input.schema_registry.password",
            "needs a path",
        ),
        (
            "url = \"http://h\"\nusername = \"a\"\npassword = \"env:9x\"",
            "input.schema_registry.password",
            "env:9x",
        ),
        (
            "url = \"http://h\"\ncache_capacity = 0",
            "input.schema_registry.cache_capacity",
            "0 must be",
        ),
        (
            "url = \"http://h\"\ntimeout = \"0s\"",
            "input.schema_registry.timeout",
            "0s is out of range",
        ),
        (
            "url = \"http://h\"\nbackoff_initial = \"2s\"\nbackoff_max = \"1s\"",
            "input.schema_registry.backoff_max",
            "shorter than backoff_initial",
        ),
        (
            "url = \"http://h\"\nauto_register = true",
            "input.schema_registry.auto_register",
            "frame_outputs",
        ),
        (
            "url = \"http://h\"\nsubject_strategy = \"name\"",
            "input.schema_registry.subject_strategy",
            "name",
        ),
        (
            "url = \"http://h\"\nwhat = 1",
            "input.schema_registry",
            "what",
        ),
    ];
    for (body, field, names) in cases {
        let toml = format!("[input]\nformat = \"confluent\"\n[input.schema_registry]\n{body}\n");
        let e = load(&toml, vec![]).expect_err(body);
        let line = e
            .lines()
            .find(|l| l.contains(field))
            .unwrap_or_else(|| panic!("{body}: no problem at {field} in:\n{e}"));
        assert!(
            line.contains(names),
            "{body}: {line:?} does not name {names:?}"
        );
    }
}

#[test]
fn the_registry_replaces_schema_ids_and_must_be_used() {
    let e = load(
        "[input]\nformat = \"confluent\"\nschema_ids = [7]\n[input.schema_registry]\nurl = \"http://h\"\n",
        vec![],
    )
    .unwrap_err();
    assert!(e.contains("input.schema_ids: [7] cannot be used"), "{e}");
    let e = load("[input.schema_registry]\nurl = \"http://h\"\n", vec![]).unwrap_err();
    assert!(
        e.contains("input.schema_registry: is set but unused"),
        "{e}"
    );
    let s = load(
        "[input]\nformat = \"confluent\"\n[input.schema_registry]\nurl = \"http://h\"\n",
        vec![],
    )
    .unwrap();
    assert!(s.input.schema_ids.is_empty());
    load(
        "[input.schema_registry]\nurl = \"http://h\"\nframe_outputs = true\n",
        vec![],
    )
    .expect("plain input with framed outputs");
}

#[test]
fn the_password_never_shows() {
    let mut r = RegistrySettings::new("http://h:8081");
    r.username = Some("handoff".into());
    r.password = Some(CANARY.into());
    let mut s = Settings::default();
    s.input.format = InputFormat::Confluent;
    s.input.schema_registry = Some(r.clone());
    for text in [
        format!("{r:?}"),
        format!("{s:?}"),
        s.redacted(),
        serde_json::to_string(&s).unwrap(),
    ] {
        assert!(!text.contains(CANARY), "{text}");
        assert!(text.contains("***"), "{text}");
    }
    // From the environment, as a number (parsed) or of a wrong type: still never echoed.
    for value in ["4711", CANARY] {
        let env = vec![
            (
                "HANDOFF_INPUT__SCHEMA_REGISTRY__USERNAME".into(),
                "u".into(),
            ),
            (
                "HANDOFF_INPUT__SCHEMA_REGISTRY__PASSWORD".into(),
                value.into(),
            ),
        ];
        let s = load(
            "[input]\nformat = \"confluent\"\n[input.schema_registry]\nurl = \"http://h\"\n",
            env,
        )
        .unwrap();
        let got = s.input.schema_registry.as_ref().unwrap();
        assert_eq!(got.password.as_deref(), Some(value));
        assert!(!s.redacted().contains(value));
    }
    let e = load(
        "[input]\nformat = \"confluent\"\n[input.schema_registry]\nurl = \"http://h\"\nusername = \"u\"\npassword = [\"canary-in-list\"]\n",
        vec![],
    )
    .unwrap_err();
    assert!(
        !e.contains("canary-in-list") && e.contains("password"),
        "{e}"
    );
}

#[test]
fn passwords_resolve_from_files_the_environment_or_themselves() {
    let file = std::env::temp_dir().join(format!("handoff-registry-pw-{}", std::process::id()));
    std::fs::write(&file, format!("{CANARY}\n")).unwrap();
    assert_eq!(
        resolve_password(&format!("file:{}", file.display())).unwrap(),
        CANARY
    );
    std::fs::remove_file(&file).unwrap();
    let e = resolve_password(&format!("file:{}", file.display())).unwrap_err();
    assert!(e.to_string().contains(&file.display().to_string()), "{e}");
    assert_eq!(resolve_password("PATH").unwrap(), "PATH", "a literal");
    assert_eq!(
        resolve_password("env:PATH").unwrap(),
        std::env::var("PATH").unwrap()
    );
    let e = resolve_password("env:HANDOFF_SURELY_UNSET_4711").unwrap_err();
    assert!(e.to_string().contains("HANDOFF_SURELY_UNSET_4711"), "{e}");
}

#[test]
fn subjects_follow_the_strategy() {
    for (strategy, subject) in [
        (SubjectStrategy::Topic, "agent.verdicts-value"),
        (SubjectStrategy::Record, "io.handoff.Verdict"),
        (
            SubjectStrategy::TopicRecord,
            "agent.verdicts-io.handoff.Verdict",
        ),
    ] {
        assert_eq!(
            strategy.subject("agent.verdicts", "io.handoff.Verdict"),
            subject
        );
    }
}
