//! What the tools show a person, through the binary: the game-day report's figures agree with
//! each other; a bad test-rules file has every problem listed; `check` prints settings and
//! roles readably; `eval --summary` prints only the summary; logs are coloured only on a
//! terminal.

use serde_json::Value;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

fn handoff() -> Command {
    Command::new(env!("CARGO_BIN_EXE_handoff"))
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A fresh directory for this test process.
fn tmpdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("handoff-tools-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The cells of each row of the first Markdown table after `heading`.
fn table(md: &str, heading: &str) -> Vec<Vec<String>> {
    md.split(heading)
        .nth(1)
        .expect("the heading")
        .lines()
        .skip_while(|l| !l.starts_with("|---"))
        .skip(1)
        .take_while(|l| l.starts_with('|'))
        .map(|l| {
            let cells = l.trim_matches('|').split('|');
            cells.map(|c| c.trim().to_string()).collect()
        })
        .collect()
}

/// The text after `label` on the line that holds it, up to `end`.
fn after<'a>(md: &'a str, label: &str, end: char) -> &'a str {
    let rest = md
        .split(label)
        .nth(1)
        .unwrap_or_else(|| panic!("{label} in {md}"));
    rest.split(end).next().unwrap().trim()
}

fn count(cell: &str) -> u64 {
    cell.parse()
        .unwrap_or_else(|_| panic!("{cell:?} is not a count"))
}

#[test]
fn a_gameday_report_has_one_set_of_figures_for_every_role_escalated_to() {
    for scenario in ["support-surge", "flash-crash"] {
        let out = tmpdir(scenario);
        let run = handoff()
            .arg("gameday")
            .arg(root().join(format!("deploy/gameday/{scenario}.toml")))
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap();
        assert!(
            run.status.success(),
            "{}",
            String::from_utf8_lossy(&run.stderr)
        );
        let md = std::fs::read_to_string(out.join("report.md")).unwrap();
        let json: Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap())
                .unwrap();

        // Column 0 is the role, 1 escalations, 2 acknowledged, 6 missed deadlines, 7
        // re-escalations in, 10 overloaded; the last row adds them up.
        let (totals, rows): (Vec<_>, Vec<_>) = table(&md, "## Time to engagement per role")
            .into_iter()
            .partition(|r| r[0] == "**all roles**");
        let roles: Vec<&str> = rows.iter().map(|r| r[0].as_str()).collect();
        let escalated: BTreeSet<&str> = json["roles"]
            .as_object()
            .unwrap()
            .iter()
            .filter(|(_, f)| f["escalations"] != 0 || f["missed_deadlines"] != 0)
            .map(|(r, _)| r.as_str())
            .collect();
        assert_eq!(
            roles.iter().copied().collect::<BTreeSet<_>>(),
            escalated,
            "{scenario}: every role escalated to is in the table, and only those"
        );
        let measured: Vec<&str> = json["measured_roles"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_str().unwrap())
            .collect();
        assert_eq!(
            roles[..measured.len()],
            measured,
            "{scenario}: measured roles first"
        );
        let reported: Vec<&str> = json["reported_roles"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_str().unwrap())
            .collect();
        assert_eq!(
            reported, roles,
            "{scenario}: report.json names the table's roles"
        );

        let missed: u64 = rows.iter().map(|r| count(&r[6])).sum();
        let re_escalated: u64 = rows.iter().map(|r| count(&r[7])).sum();
        let by_tier: u64 = json["re_escalations_by_tier"]
            .as_object()
            .unwrap()
            .values()
            .map(|n| n.as_u64().unwrap())
            .sum();
        assert_eq!(
            re_escalated, by_tier,
            "{scenario}: every re-escalation is in the table"
        );
        assert_eq!(
            missed, re_escalated,
            "{scenario}: each missed deadline moved on"
        );
        let post_mortem = after(&md, "**Missed deadlines:** ", ' ');
        assert_eq!(
            count(post_mortem),
            missed,
            "{scenario}: post-mortem and table agree"
        );
        let total = totals.first().expect("a row of totals");
        for (column, name) in [
            (1, "escalations"),
            (2, "acknowledged"),
            (6, "missed_deadlines"),
        ] {
            let sum: u64 = rows.iter().map(|r| count(&r[column])).sum();
            assert_eq!(count(&total[column]), sum, "{scenario}: total {name}");
            assert_eq!(
                json["totals"][name], sum,
                "{scenario}: report.json's {name}"
            );
        }

        let overloaded: Vec<&str> = rows
            .iter()
            .filter(|r| r[10] == "**yes**")
            .map(|r| r[0].as_str())
            .collect();
        let named = after(&md, "**Overloaded roles:** ", '\n').trim_end_matches('.');
        assert_eq!(named, overloaded.join(", "), "{scenario}: overloaded roles");

        let caption = after(&md, "One panel per role (", ')');
        let charted: Vec<&str> = caption
            .split(", ")
            .map(|c| c.rsplit_once(' ').unwrap().0)
            .collect();
        assert_eq!(
            charted, roles,
            "{scenario}: the chart has a panel per role of the table"
        );
        std::fs::remove_dir_all(&out).unwrap();
    }
}

/// Writes `text` to `name` in a fresh directory.
fn file(name: &str, text: &str) -> PathBuf {
    let p = tmpdir(name).join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn test_rules_lists_every_problem_of_a_bad_file_one_per_line() {
    let bad = file(
        "bad-cases.yaml",
        r#"colour: red
matrix: [1]
base_event: 3
cases:
  - name: one
    events: [{}]
    expect: { level: sometimes, triggers: [low_confidence], tier: hot }
  - name: two
    events: {}
    expect: { roles: owner }
  - events: [{}]
    expect: { level: execute, colour: 3 }
  - name: four
    events: [{}]
    expect: { required_action: dance }
    extra: 1
  - 7
  - name: six
    events: [1]
    expect: "x"
  - name: seven
    events: [{}]
"#,
    );
    let out = handoff().arg("test-rules").arg(&bad).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "a bad file is bad usage");
    let err = String::from_utf8_lossy(&out.stderr);
    let problems: Vec<&str> = err.lines().filter_map(|l| l.strip_prefix("  - ")).collect();
    let expected = [
        ("colour", "`colour`"),
        ("matrix", "sequence"),
        ("base_event", "3"),
        ("cases[0].expect.level", "`sometimes`"),
        ("cases[0].expect.tier", "`hot`"),
        ("cases[1].events", "map"),
        ("cases[1].expect.roles", "\"owner\""),
        ("cases[2].name", "missing"),
        ("cases[2].expect.colour", "`colour`"),
        ("cases[3].extra", "`extra`"),
        ("cases[3].expect.required_action", "`dance`"),
        ("cases[4]", "a number 7"),
        ("cases[5].events[0]", "1"),
        ("cases[5].expect", "a string \"x\""),
        ("cases[6].expect", "missing"),
    ];
    assert_eq!(problems.len(), expected.len(), "one line each:\n{err}");
    assert!(
        err.contains(&format!("have {} problem(s):", expected.len())),
        "{err}"
    );
    for (line, (path, value)) in problems.iter().zip(expected) {
        let (at, message) = line.split_once(": ").unwrap();
        assert_eq!(at, path, "{err}");
        assert!(message.contains(value), "{path} names {value}: {line}");
    }
}

#[test]
fn check_prints_the_settings_one_per_line_with_secrets_masked() {
    let cfg = file(
        "secret.toml",
        "[kafka]\nbootstrap_servers = \"broker-1:9092\"\n\
         [kafka.common]\n\"security.protocol\" = \"SASL_SSL\"\n\"sasl.password\" = \"pw-123\"\n",
    );
    let out = handoff()
        .args(["check", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!text.contains("pw-123"), "{text}");
    // The settings, then the matrix's summary.
    let settings = text.split("\nmatrix ").next().unwrap();
    let lines: Vec<&str> = settings.lines().map(str::trim).collect();
    for setting in [
        "\"sasl.password\": \"***\",",
        "\"bootstrap_servers\": \"broker-1:9092\",",
        "\"max_in_flight\": 20000,",
    ] {
        assert!(
            lines.contains(&setting),
            "{setting} on its own line:\n{text}"
        );
    }
    assert!(lines.len() > 50, "{settings}");
    let longest = lines.iter().map(|l| l.len()).max().unwrap();
    assert!(longest < 120, "a line of {longest} characters:\n{settings}");
}

/// The `check` summary's role lines: where each of `view`, `topic` and `attributes` starts.
fn role_columns(matrix: Option<&std::path::Path>) -> Vec<(String, [usize; 3])> {
    let mut cmd = handoff();
    cmd.arg("check");
    if let Some(m) = matrix {
        cmd.arg("--matrix").arg(m);
    }
    let out = cmd.output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{text}");
    let lines = text.split("\nroles:\n").nth(1).expect("a roles table");
    lines
        .lines()
        .map(|l| {
            let at = |word: &str| l.find(word).unwrap_or_else(|| panic!("{word} in {l}"));
            let name = l.split_whitespace().next().unwrap().to_string();
            (name, [at(" view "), at(" topic "), at(" attributes ")])
        })
        .collect()
}

#[test]
fn check_aligns_every_column_of_the_roles_whatever_the_longest_name() {
    let shipped = std::fs::read_to_string(root().join("deploy/matrix.toml")).unwrap();
    let long = shipped
        .replace("crisis_manager", "global_crisis_incident_commander")
        .replace(
            "view = \"diagnostics\"",
            "view = \"diagnostics_for_the_whole_estate\"",
        );
    let long = file("long-names.toml", &long);
    for (matrix, longest) in [
        (None, "crisis_manager"),
        (Some(long.as_path()), "global_crisis_incident_commander"),
    ] {
        let rows = role_columns(matrix);
        assert!(rows.iter().any(|(name, _)| name == longest), "{rows:?}");
        let first = rows[0].1;
        for (name, columns) in &rows {
            assert_eq!(*columns, first, "{name}'s columns: {rows:?}");
        }
    }
}

#[test]
fn eval_summary_prints_only_the_summary_and_still_names_bad_lines() {
    let sample = root().join("deploy/samples/agent-actions.jsonl");
    let out = handoff()
        .args(["eval", "--summary", "--events"])
        .arg(&sample)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1, "only the summary:\n{text}");
    assert!(
        lines[0].starts_with("400 events (execute ") && lines[0].contains("escalation rate"),
        "{text}"
    );
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let mut events = std::fs::read_to_string(&sample).unwrap();
    events.insert_str(0, "{not json\n");
    let bad = file("with-a-bad-line.jsonl", &events);
    let out = handoff()
        .args(["eval", "--summary", "--events"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(
        text.contains("400 events") && text.contains("1 bad lines"),
        "{text}"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("line 1: "), "{err}");
}

/// `handoff run` against a broker that is not there: it logs its start, then gives up (exit 3).
fn run_unreachable() -> Command {
    let cfg = file(
        "unreachable.toml",
        "[kafka]\nbootstrap_servers = \"127.0.0.1:1\"\n[pipeline]\nconnect_timeout = \"100ms\"\n\
         [metrics]\nenabled = false\n",
    );
    let mut cmd = handoff();
    cmd.args(["run", "--config"])
        .arg(cfg)
        .env_remove("NO_COLOR");
    cmd
}

const ESC: &str = "\x1b[";

#[test]
fn logs_are_coloured_only_on_a_terminal_and_never_with_no_color() {
    let out = run_unreachable().output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains(" INFO ") && err.contains("starting"), "{err}");
    assert!(!err.contains(ESC), "no colour in a pipe: {err:?}");

    // On a terminal (script(1) gives the command one): coloured, unless NO_COLOR is set.
    let on_a_terminal = |no_color: Option<&str>| {
        let run = run_unreachable();
        let line = std::iter::once(run.get_program())
            .chain(run.get_args())
            .map(|a| format!("'{}'", a.to_str().unwrap()))
            .collect::<Vec<_>>()
            .join(" ");
        let mut script = Command::new("script");
        script
            .args(["-qec", &line, "/dev/null"])
            .stdin(std::process::Stdio::null());
        match no_color {
            Some(v) => script.env("NO_COLOR", v),
            None => script.env_remove("NO_COLOR"),
        };
        script
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
    };
    let Some(coloured) = on_a_terminal(None) else {
        eprintln!("no script(1) here: the terminal half is not checked");
        return;
    };
    assert!(
        coloured.contains("starting") && coloured.contains(ESC),
        "{coloured:?}"
    );
    let plain = on_a_terminal(Some("1")).unwrap();
    assert!(
        plain.contains("starting") && !plain.contains(ESC),
        "{plain:?}"
    );
    let empty = on_a_terminal(Some("")).unwrap();
    assert!(empty.contains(ESC), "an empty NO_COLOR is unset: {empty:?}");
}
