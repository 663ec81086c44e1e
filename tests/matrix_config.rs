//! Matrix files: every problem reported at once with its location and value; rule versions
//! that ignore formatting and order but follow every effective change.

use handoff::matrix::{Matrix, MatrixError, DEFAULT_MATRIX_TOML};
use std::io::Write;

fn write_tmp(name: &str, text: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("handoff-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::File::create(&p)
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    p
}

fn problems(text: &str) -> Vec<String> {
    let p = write_tmp(&format!("m{}.toml", text.len()), text);
    match Matrix::from_file(&p) {
        Err(MatrixError::Invalid { problems, .. }) => {
            problems.0.iter().map(|p| p.to_string()).collect()
        }
        Err(e) => panic!("expected a list of problems, got {e}"),
        Ok(_) => panic!("matrix should be refused"),
    }
}

const BAD: &str = r#"
name = "broken"
colour = "blue"

[[levels]]
pattern = "email.send"
level = "exeute"

[[levels]]
pattern = "Email.*"
level = "ask_first"

[[levels]]
pattern = "data.delete"
level = "ask_first"

[[levels]]
pattern = "data.delete"
level = "hard_stop"

[triggers.low_confidence]
threshold = 1.7
per_action = [{ pattern = "email.*", threshold = -0.1 }]

[triggers.policy_keyword]
keywords = ["fraud"]
then = { roles = ["complience"] }

[triggers.multiple_options]
min_options = 1

[triggers.amount_limt]
limit = 5

[triggers.unknown_action]
then = { level = "execute", roles = [] }

[tiers.immediate]
ack_within = "soon"

[roles.owner]
redact = ["ssn"]

[roles.compliance]
topic = "escalations/compliance"

[roles.support]

[roles.trader]

[roles.it_ops]

[redaction]
email = "[unclosed"
"#;

#[test]
fn every_problem_is_listed_at_once_with_field_and_value() {
    let got = problems(BAD);
    let expect: &[(&str, &str)] = &[
        ("colour", "unknown field `colour`"),
        ("levels[0].level", "exeute"),
        ("levels[1].pattern", "Email.*"),
        ("levels[3].pattern", "listed twice"),
        ("triggers.low_confidence.threshold", "1.7"),
        ("triggers.low_confidence.per_action[0]", "-0.1"),
        ("triggers.policy_keyword.then.roles", "complience"),
        ("triggers.multiple_options.min_options", "1 is too small"),
        ("triggers.amount_limt", "unknown field `amount_limt`"),
        ("triggers.unknown_action.then.level", "fail closed"),
        ("tiers.immediate.ack_within", "soon"),
        ("roles.owner.redact", "ssn"),
        ("roles.compliance.topic", "escalations/compliance"),
        ("redaction.email", "[unclosed"),
    ];
    assert_problems(&got, expect);
}

#[test]
fn the_error_message_lists_every_problem() {
    let p = write_tmp("bad.toml", BAD);
    let msg = Matrix::from_file(&p).unwrap_err().to_string();
    assert!(msg.contains("bad.toml"), "{msg}");
    let n = problems(BAD).len();
    assert!(n >= 14, "{n} problems");
    assert!(msg.contains(&format!("has {n} problem(s)")), "{msg}");
    assert_eq!(msg.lines().filter(|l| l.starts_with("  - ")).count(), n);
}

#[test]
fn a_syntax_error_names_the_file_and_position() {
    let p = write_tmp("syntax.toml", "[levels\npattern = 1\n");
    let msg = Matrix::from_file(&p).unwrap_err().to_string();
    assert!(msg.contains("syntax.toml"), "{msg}");
    assert!(msg.contains("line 1") || msg.contains("1:"), "{msg}");
}

#[test]
fn a_missing_file_is_a_clear_error() {
    let msg = Matrix::from_file(std::path::Path::new("/nonexistent/matrix.toml"))
        .unwrap_err()
        .to_string();
    assert!(msg.contains("/nonexistent/matrix.toml"), "{msg}");
}

#[test]
fn a_human_level_without_roles_is_refused() {
    let got = problems(
        "[roles.owner]\n[roles.support]\n[roles.compliance]\n[roles.trader]\n[roles.it_ops]\n\
         [triggers.task_failure]\nthen = { roles = [] }\n",
    );
    assert!(
        got.iter()
            .any(|p| p.starts_with("triggers.task_failure.then.roles:")
                && p.contains("ask_first needs a human")),
        "{got:?}"
    );
}

#[test]
fn rule_version_ignores_order_and_formatting_but_follows_changes() {
    let base = Matrix::default_matrix().unwrap();
    // Reverse the order of the [[levels]] blocks and add comments: same effective matrix.
    let (head, rest) = DEFAULT_MATRIX_TOML.split_once("[[levels]]").unwrap();
    let (levels, tail) = rest.split_once("# ----").unwrap();
    let mut blocks: Vec<&str> = levels.split("[[levels]]").collect();
    blocks.reverse();
    let reordered = format!(
        "{head}# reordered\n[[levels]]{}\n# ----{tail}",
        blocks.join("\n[[levels]]")
    );
    let p = write_tmp("reordered.toml", &reordered);
    let m = Matrix::from_file(&p).unwrap();
    assert_eq!(m.version(), base.version());

    let changed = DEFAULT_MATRIX_TOML.replace("threshold = 0.70", "threshold = 0.71");
    assert_ne!(changed, DEFAULT_MATRIX_TOML);
    let p = write_tmp("changed.toml", &changed);
    assert_ne!(Matrix::from_file(&p).unwrap().version(), base.version());

    // Keywords are compared case-insensitively, so changing their case changes nothing.
    let upper = DEFAULT_MATRIX_TOML.replace("\"lawsuit\"", "\"LawSuit\"");
    let p = write_tmp("upper.toml", &upper);
    assert_eq!(Matrix::from_file(&p).unwrap().version(), base.version());
}

#[test]
fn yaml_and_json_matrices_load_like_toml() {
    let yaml = r#"
name: small
levels:
  - { pattern: "email.*", level: ask_first }
  - { pattern: "research.*", level: execute }
triggers:
  low_confidence: { threshold: 0.6, then: { roles: [owner] } }
  policy_keyword: { enabled: false }
  multiple_options: { then: { roles: [owner] } }
  task_failure: { then: { roles: [owner] } }
  high_value_customer: { enabled: false }
  amount_limit: { then: { roles: [owner] } }
  human_requested: { enabled: false }
  consecutive_low_confidence: { then: { roles: [owner] } }
  anomaly: { then: { roles: [owner] } }
roles:
  owner: { description: "everyone" }
"#;
    let p = write_tmp("small.yaml", yaml);
    let m = Matrix::from_file(&p).unwrap();
    assert_eq!(m.spec().levels.len(), 2);
    assert_eq!(m.threshold("research.search"), 0.6);
    let json = serde_json::json!({
        "levels": [{"pattern": "*", "level": "execute"}],
        "approvals": {"roles": ["ops"]},
        "triggers": {
            "low_confidence": {"then": {"roles": ["ops"]}},
            "policy_keyword": {"enabled": false},
            "multiple_options": {"enabled": false},
            "task_failure": {"enabled": false},
            "high_value_customer": {"enabled": false},
            "amount_limit": {"enabled": false},
            "human_requested": {"enabled": false},
            "consecutive_low_confidence": {"enabled": false},
            "anomaly": {"enabled": false},
            "unknown_action": {"then": {"roles": ["ops"]}}
        },
        "roles": {"ops": {}}
    });
    let p = write_tmp("tiny.json", &json.to_string());
    let m = Matrix::from_file(&p).unwrap();
    assert_eq!(m.roles().len(), 1);
}

/// `[[levels]]` entries out of pattern order, the first three each with a problem.
const UNSORTED_LEVELS: &str = r#"
[[levels]]
pattern = "wire.transfer"
level = "hard_stop"
on_timeout = "fail_open"

[[levels]]
pattern = "zeta.notify"
level = "ask_first"
roles = []

[[levels]]
pattern = "email.send"
level = "ask_first"
roles = ["ghost"]

[[levels]]
pattern = "data.delete"
level = "hard_stop"

[[levels]]
pattern = "research.*"
level = "execute"

[approvals]
roles = ["owner"]

[roles.owner]
"#;

#[test]
fn level_problems_name_the_entry_as_in_the_file_not_as_sorted() {
    let got = problems(UNSORTED_LEVELS);
    let expect: &[(&str, &str)] = &[
        ("levels[0].on_timeout", "\"wire.transfer\""),
        ("levels[1].roles", "\"zeta.notify\" needs a human"),
        ("levels[2].roles", "\"ghost\" is not defined"),
    ];
    assert_problems(&got, expect);
    let levels: Vec<&String> = got.iter().filter(|p| p.starts_with("levels")).collect();
    assert_eq!(levels.len(), expect.len(), "{levels:#?}");
}

#[test]
fn an_entry_that_does_not_read_does_not_shift_the_names_of_the_next() {
    let got = problems(
        "[[levels]]\npattern = \"a.b\"\nlevel = \"exeute\"\n\n\
         [[levels]]\npattern = \"c.d\"\nlevel = \"hard_stop\"\non_timeout = \"fail_open\"\n",
    );
    assert!(
        got.iter().any(|p| p.starts_with("levels[0].level:")),
        "{got:#?}"
    );
    assert!(
        got.iter()
            .any(|p| p.starts_with("levels[1].on_timeout:") && p.contains("\"c.d\"")),
        "{got:#?}"
    );
}

/// Every (path, needle): a problem at that path mentions the needle.
fn assert_problems(got: &[String], expect: &[(&str, &str)]) {
    for (path, needle) in expect {
        assert!(
            got.iter()
                .any(|p| p.starts_with(&format!("{path}:")) && p.contains(needle)),
            "no problem at {path} mentioning {needle:?} in:\n{}",
            got.join("\n")
        );
    }
}
