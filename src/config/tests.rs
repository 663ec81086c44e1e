use super::load::SECTIONS;
use super::*;

#[test]
fn librdkafka_properties_are_checked_with_every_other_problem_before_connecting() {
    let dir = std::env::temp_dir().join(format!("handoff-props-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("run.toml");
    std::fs::write(
        &f,
        "[kafka]\ngroup_id = \"\"\n[kafka.producer]\n\"linger.msec\" = 5\n\
         [kafka.consumer]\n\"enable.auto.commit\" = false\n",
    )
    .unwrap();
    let e = Settings::load_with_env(Some(&f), Vec::new()).unwrap_err();
    let text = e.to_string();
    for needle in [
        "kafka.group_id",
        "kafka.producer.linger.msec",
        "kafka.consumer.enable.auto.commit",
    ] {
        assert!(text.contains(needle), "{needle} missing from:\n{text}");
    }
}

#[test]
fn environment_overrides_the_file_which_overrides_defaults() {
    let dir = std::env::temp_dir().join(format!("handoff-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("run.toml");
    std::fs::write(
        &f,
        "[kafka]\nbootstrap_servers = \"file:9092\"\ngroup_id = \"from-file\"\n\
         [kafka.consumer]\n\"fetch.min.bytes\" = 1\n[pipeline]\nmax_in_flight = 10\n",
    )
    .unwrap();
    let env = vec![
        (
            "HANDOFF_KAFKA__GROUP_ID".to_string(),
            "from-env".to_string(),
        ),
        (
            "HANDOFF_PIPELINE__SHUTDOWN_DEADLINE".to_string(),
            "7s".to_string(),
        ),
        ("OTHER_VAR".to_string(), "ignored".to_string()),
    ];
    let s = Settings::load_with_env(Some(&f), env).unwrap();
    assert_eq!(s.kafka.bootstrap_servers, "file:9092");
    assert_eq!(s.kafka.group_id, "from-env");
    assert_eq!(s.pipeline.shutdown_deadline, Duration::from_secs(7));
    assert_eq!(s.pipeline.max_in_flight, 10);
    assert_eq!(s.kafka.consumer["fetch.min.bytes"], "1");
    assert_eq!(s.topics.input, "agent.actions", "defaults fill the rest");
}

#[test]
fn human_loop_settings_are_checked_and_every_problem_named() {
    let mut s = Settings::default();
    s.topics.decisions = s.topics.input.clone();
    s.topics.review = s.topics.verdicts.clone();
    s.pipeline.timer_tick = Duration::from_millis(1);
    s.pipeline.state_retention = Duration::from_secs(5);
    let mut problems = Problems::default();
    s.validate(&mut problems);
    let text = problems.to_string();
    for field in [
        "topics.decisions",
        "pipeline.timer_tick",
        "pipeline.state_retention",
    ] {
        assert!(text.contains(field), "{field} missing in:\n{text}");
    }
    assert!(
        text.contains("\"agent.actions\" is also the input topic"),
        "{text}"
    );
    assert!(
        text.contains("topics.review: \"agent.verdicts\" is also topics.verdicts"),
        "{text}"
    );
}

#[test]
fn drill_settings_put_every_topic_under_drill_and_their_own_group() {
    let d = Settings::default().drill();
    let t = &d.topics;
    for name in [
        &t.input,
        &t.verdicts,
        &t.dead_letter,
        &t.decisions,
        &t.changelog,
        &t.review,
    ] {
        assert!(name.starts_with(DRILL_PREFIX), "{name}");
    }
    assert_eq!(t.role_prefix, DRILL_PREFIX);
    assert!(d.is_drill() && !Settings::default().is_drill());
    assert_eq!(d.kafka.group_id, "handoff-drill");
    assert_eq!(d.drill(), d, "drilling twice changes nothing");
}

#[test]
fn a_bad_environment_value_is_named() {
    let env = vec![(
        "HANDOFF_PIPELINE__MAX_IN_FLIGHT".to_string(),
        "lots".to_string(),
    )];
    let e = Settings::load_with_env(None, env).unwrap_err().to_string();
    assert!(e.contains("pipeline") && e.contains("lots"), "{e}");
}

#[test]
fn secrets_are_masked() {
    let mut s = Settings::default();
    s.kafka
        .common
        .insert("sasl.password".into(), "pw-123".into());
    s.kafka
        .producer
        .insert("ssl.key.password".into(), "k-456".into());
    let text = s.redacted();
    assert!(
        !text.contains("pw-123") && !text.contains("k-456"),
        "{text}"
    );
    assert_eq!(
        redact_message("failed: sasl.password=pw-123 x=y"),
        "failed: sasl.password=*** x=y"
    );
}

/// Every section named in `SECTIONS` is read: a key it does not have is refused under the
/// section's name (a section left out of `from_value` would be silently ignored instead).
#[test]
fn every_section_is_read_from_the_file() {
    for section in SECTIONS {
        let value = serde_json::json!({ *section: { "no_such_setting": 1 } });
        let mut problems = Problems::default();
        let _ = Settings::from_value(&value, &mut problems);
        let text = problems.to_string();
        assert!(
            text.contains(&format!("{section}.no_such_setting")),
            "[{section}] is not read: {text:?}"
        );
    }
}

#[test]
fn trust_is_read_from_a_file_with_its_key_from_a_secret_file() {
    let dir = std::env::temp_dir().join(format!("handoff-trust-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let key = crate::trust::Signer::generate("inbox-1");
    std::fs::write(dir.join("key.pem"), key.to_pem()).unwrap();
    let f = dir.join("run.toml");
    std::fs::write(
        &f,
        format!(
            "[trust]\nsigning_key = \"file:{}\"\nsigning_key_id = \"inbox-1\"\n\
             [[trust.decision_keys]]\nid = \"inbox-1\"\npublic_key = \"{}\"\nroles = [\"support\"]\n",
            dir.join("key.pem").display(),
            key.public_key()
        ),
    )
    .unwrap();
    let s = Settings::load_with_env(Some(&f), Vec::new())
        .unwrap()
        .with_secrets_from(|_| None)
        .unwrap();
    assert_eq!(s.trust.decision_keys.len(), 1);
    assert_eq!(s.trust.signer().unwrap().public_key(), key.public_key());
    assert!(s.trust.decision_trust().is_on());
}

/// An empty or short Slack signing secret (written, or read from an empty variable) would let
/// anyone forge button presses: refused at start-up, naming the setting and never the value.
#[test]
fn an_empty_or_short_slack_signing_secret_is_refused_naming_the_setting() {
    for (written, env) in [
        ("\"\"", None),
        ("\"env:SLACK_SECRET\"", Some("")),
        ("\"env:SLACK_SECRET\"", Some("abc123")),
    ] {
        let mut s = Settings::default();
        s.inbox.slack_signing_secret = Some(serde_json::from_str::<String>(written).unwrap());
        let e = s
            .with_secrets_from(|name| (name == "SLACK_SECRET").then(|| env.unwrap().to_string()))
            .unwrap_err()
            .to_string();
        assert!(e.contains("inbox.slack_signing_secret"), "{written}: {e}");
        assert!(e.contains("at least 16"), "{written}: {e}");
        assert!(!e.contains("abc123"), "the value is never shown: {e}");
    }
    let mut s = Settings::default();
    s.inbox.slack_signing_secret = Some("8f742231b10e8888abcd99yyyzzz85a5".into());
    assert!(s.with_secrets_from(|_| None).is_ok());
}

/// `POST /-/reload` is off by default; turned on, it needs a token of at least 16 bytes, and a
/// problem names the setting, never the value.
#[test]
fn an_enabled_reload_without_a_usable_token_is_refused() {
    let mut s = Settings::default();
    assert!(!s.metrics.enable_reload, "off by default");
    s.metrics.enable_reload = true;
    let problems = |s: &Settings| {
        let mut p = Problems::default();
        s.validate(&mut p);
        p.to_string()
    };
    let e = problems(&s);
    assert!(e.contains("metrics.reload_token"), "{e}");
    assert!(e.contains("missing"), "{e}");
    s.metrics.reload_token = Some("env:RELOAD_TOKEN".into());
    assert_eq!(problems(&s), "");
    let e = s
        .clone()
        .with_secrets_from(|_| Some("short-tok".into()))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("metrics.reload_token") && e.contains("at least 16"),
        "{e}"
    );
    assert!(!e.contains("short-tok"), "{e}");
    let resolved = s
        .with_secrets_from(|_| Some("a-long-enough-token".into()))
        .unwrap();
    assert_eq!(
        resolved.metrics.reload_token.as_deref(),
        Some("a-long-enough-token")
    );
    assert!(!format!("{:?}", resolved.metrics).contains("a-long-enough-token"));
    assert!(!resolved.redacted().contains("a-long-enough-token"));
}

/// Sign-in through a proxy names its addresses and its shared secret, or is refused at start-up
/// naming each missing setting.
#[test]
fn proxy_sign_in_without_trusted_addresses_or_a_shared_secret_is_refused() {
    let mut s = Settings::default();
    s.inbox.auth = crate::config::InboxAuth::Proxy;
    let mut p = Problems::default();
    s.validate(&mut p);
    let text = p.to_string();
    assert!(text.contains("inbox.trusted_proxies"), "{text}");
    assert!(text.contains("inbox.proxy_secret"), "{text}");
    s.inbox.trusted_proxies = vec!["127.0.0.1".into()];
    s.inbox.proxy_secret = Some("env:PROXY_SECRET".into());
    let mut p = Problems::default();
    s.validate(&mut p);
    assert!(p.is_empty(), "{p}");
    let e = s
        .with_secrets_from(|_| Some("short".into()))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("inbox.proxy_secret") && e.contains("at least 16"),
        "{e}"
    );
}

/// Slack buttons name their workspace; reply prefixes must be URLs with a host and a path.
#[test]
fn slack_buttons_without_a_workspace_or_with_a_bad_reply_prefix_are_refused() {
    let mut s = Settings::default();
    s.inbox.slack_signing_secret = Some("env:SLACK".into());
    s.inbox.slack_response_urls = vec!["hooks.slack.com".into(), "https://".into()];
    let mut p = Problems::default();
    s.validate(&mut p);
    let text = p.to_string();
    for f in [
        "inbox.slack_team_id",
        "inbox.slack_response_urls[0]",
        "inbox.slack_response_urls[1]",
    ] {
        assert!(text.contains(f), "{f}: {text}");
    }
    s.inbox.slack_team_id = Some("T0123".into());
    s.inbox.slack_response_urls = vec!["https://hooks.slack.com/".into()];
    let mut p = Problems::default();
    s.validate(&mut p);
    assert!(p.is_empty(), "{p}");
}

/// Secrets from the environment are taken as written (a number stays the digits given, not a
/// float) and a secret of the wrong kind is refused without its value; hashes of tokens and
/// keys are masked where settings are shown.
#[test]
fn secrets_from_the_environment_are_never_parsed_or_echoed_and_hashes_are_masked() {
    let digits = "123456789012345678901234567890123456789";
    let env = vec![("HANDOFF_INBOX__COOKIE_KEY".to_string(), digits.to_string())];
    let s = Settings::load_with_env(None, env).unwrap();
    assert_eq!(
        s.inbox.cookie_key.as_deref(),
        Some(digits),
        "the digits as given"
    );
    let env = vec![(
        "HANDOFF_INBOX__SLACK_SIGNING_SECRET".to_string(),
        "987654321".to_string(),
    )];
    let e = Settings::load_with_env(None, env).unwrap_err().to_string();
    assert!(!e.contains("987654321"), "{e}");
    let mut p = Problems::default();
    p.push(
        "inbox.proxy_secret",
        "invalid type: integer `4242`, expected a string",
    );
    p.push(
        "inbox.bind",
        "invalid type: integer `4242`, expected a string",
    );
    p.mask_values(crate::config::is_secret_setting);
    let text = p.to_string();
    assert!(
        text.contains("integer `***`") && text.contains("integer `4242`"),
        "{text}"
    );
    let mut s = Settings::default();
    s.inbox.people = vec![crate::config::Person {
        name: "ana".into(),
        roles: vec!["support".into()],
        token_sha256: Some(
            "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".into(),
        ),
        slack_user: None,
    }];
    for shown in [s.redacted(), s.redacted_pretty(), format!("{s:?}")] {
        assert!(!shown.contains("9f86d0818"), "{shown}");
    }
}
