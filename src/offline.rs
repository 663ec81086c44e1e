//! The offline tools: `eval` (JSON lines in, decisions out, session state carried across lines
//! exactly as in the stream) and `test-rules` (table cases against a matrix, with diffs).

use crate::escalation::{self, Plan};
use crate::event::{AgentAction, Codec, Escalation, Level, RequiredAction, Tier, Verdict};
use crate::matrix::{Matrix, MatrixError};
use crate::problems::{join, Problems};
use crate::session::SessionStore;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeSet;
use std::io::{self, BufRead, Write};
use std::path::{Path, PathBuf};

/// One output line of `eval`.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct EvalLine {
    /// Input line number (1-based).
    pub line: usize,
    /// The action.
    pub action_id: String,
    /// Its session.
    pub session_id: String,
    /// Its type.
    pub action_type: String,
    /// Level decided.
    pub level: Level,
    /// Triggers fired, canonical order.
    pub triggers: Vec<String>,
    /// Roles handed to, sorted.
    pub roles: Vec<String>,
    /// Most urgent tier, or null.
    pub tier: Option<Tier>,
    /// What the humans must do, or null.
    pub required_action: Option<RequiredAction>,
    /// Four-eyes: the approvals the action needs, when a rule asks for more than one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quorum: Option<crate::matrix::Quorum>,
    /// Hash of the matrix.
    pub rule_version: String,
    /// The verdict for the agent.
    pub verdict: Verdict,
    /// One escalation per role, with its context package.
    pub escalations: Vec<Escalation>,
}

/// Counts from one `eval` run.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct EvalSummary {
    /// Events decided.
    pub events: usize,
    /// Lines that could not be decided.
    pub errors: usize,
    /// Events per level, in [`Level::ALL`] order.
    pub by_level: [usize; 4],
    /// Escalations produced.
    pub escalations: usize,
}

impl EvalSummary {
    /// Share of decided events that needed a human (ask_first or hard_stop).
    pub fn escalation_rate(&self) -> f64 {
        if self.events == 0 {
            return 0.0;
        }
        (self.by_level[2] + self.by_level[3]) as f64 / self.events as f64
    }
}

/// Decides one event and builds its outputs, updating the session store. The clock is the
/// event's own timestamp, so offline results are reproducible.
pub fn decide(matrix: &Matrix, sessions: &mut SessionStore, event: &AgentAction) -> Plan {
    let state = sessions.get(&event.session_id);
    let decision = matrix.evaluate(event, &state);
    sessions.put(&event.session_id, decision.session);
    escalation::plan(matrix, event, &decision, event.timestamp_ms, false)
}

/// Runs `eval` over JSON lines. Malformed lines yield `{"line": N, "error": "..."}` on `out`
/// and a message on `err`; processing goes on.
pub fn eval_lines(
    matrix: &Matrix,
    codec: &Codec,
    input: impl BufRead,
    mut out: impl Write,
    mut err: impl Write,
) -> io::Result<EvalSummary> {
    let mut sessions = SessionStore::new();
    let mut summary = EvalSummary::default();
    for (i, line) in input.lines().enumerate() {
        let n = i + 1;
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        match codec.decode_action_json(&line) {
            Ok(event) => {
                let plan = decide(matrix, &mut sessions, &event);
                let level = plan.verdict.level;
                summary.events += 1;
                summary.by_level[level as usize] += 1;
                summary.escalations += plan.escalations.len();
                let tier = plan.escalations.iter().map(|(_, e)| e.tier).max();
                let required_action = plan.escalations.first().map(|(_, e)| e.required_action);
                let out_line = EvalLine {
                    line: n,
                    action_id: event.action_id,
                    session_id: event.session_id,
                    action_type: event.action_type,
                    level,
                    triggers: plan.verdict.triggers.clone(),
                    roles: plan.verdict.roles.clone(),
                    tier,
                    required_action,
                    quorum: (!plan.quorum.is_default()).then_some(plan.quorum),
                    rule_version: matrix.version().to_string(),
                    escalations: plan.escalations.into_iter().map(|(_, e)| e).collect(),
                    verdict: plan.verdict,
                };
                serde_json::to_writer(&mut out, &out_line)?;
                out.write_all(b"\n")?;
            }
            Err(e) => {
                summary.errors += 1;
                let message = e.to_string();
                serde_json::to_writer(
                    &mut out,
                    &serde_json::json!({ "line": n, "error": message }),
                )?;
                out.write_all(b"\n")?;
                writeln!(err, "line {n}: {message}")?;
            }
        }
    }
    out.flush()?;
    Ok(summary)
}

/// What a rule case expects of the decision for its last event. Keys left out are not checked.
#[derive(Debug, Clone, Default)]
pub struct Expect {
    /// Expected level.
    pub level: Option<Level>,
    /// Expected triggers, exactly (order does not matter).
    pub triggers: Option<Vec<String>>,
    /// Expected roles, exactly (order does not matter).
    pub roles: Option<Vec<String>>,
    /// Expected tier; `none` for no hand-over.
    pub tier: Option<TierExpect>,
    /// Expected required action.
    pub required_action: Option<RequiredAction>,
    /// Expected number of approvers (four-eyes; 1 unless a rule asks for more).
    pub approvals: Option<u8>,
    /// Whether they must answer for distinct roles.
    pub distinct_roles: Option<bool>,
}

/// An expected tier, or `none`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TierExpect {
    /// No hand-over.
    None,
    /// Warm.
    Warm,
    /// Immediate.
    Immediate,
}

/// One table case.
#[derive(Debug, Clone)]
pub struct RuleCase {
    /// Shown in reports.
    pub name: String,
    /// Events of one session, each merged over the file's `base_event`.
    pub events: Vec<serde_json::Map<String, Value>>,
    /// What the decision for the last event must be.
    pub expect: Expect,
}

/// A test-rules file, read piecewise so that every problem of a bad one is listed.
#[derive(Debug, Clone)]
pub struct RuleTests {
    /// Matrix to test, relative to the test file; the shipped default when absent (a
    /// `--matrix` on the command line wins).
    pub matrix: Option<PathBuf>,
    /// Fields every event starts from.
    pub base_event: serde_json::Map<String, Value>,
    /// The cases.
    pub cases: Vec<RuleCase>,
}

impl RuleTests {
    /// The test file in `value`, or every problem found in it: unknown keys at each level, and
    /// each field of each case checked on its own.
    pub fn from_value(value: &Value) -> Result<RuleTests, Problems> {
        let mut p = Problems::default();
        if !value.is_object() {
            let found = found(value);
            p.push("", format!("expected a table with `cases`, found {found}"));
            return Err(p);
        }
        p.unknown_keys(value, "", &["matrix", "base_event", "cases"]);
        let matrix = field(&mut p, value, "", "matrix", false);
        let base_event = field(&mut p, value, "", "base_event", false);
        let cases = match value.get("cases") {
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .filter_map(|(i, c)| RuleCase::from_value(c, &format!("cases[{i}]"), &mut p))
                .collect(),
            Some(other) => {
                let found = found(other);
                p.push("cases", format!("expected a list of cases, found {found}"));
                Vec::new()
            }
            None => {
                p.push("cases", "missing: the file needs a list of cases");
                Vec::new()
            }
        };
        if !p.is_empty() {
            return Err(p);
        }
        Ok(RuleTests {
            matrix,
            base_event: base_event.unwrap_or_default(),
            cases,
        })
    }
}

impl RuleCase {
    /// The case at `at` (`cases[3]`), recording each of its problems.
    fn from_value(v: &Value, at: &str, p: &mut Problems) -> Option<RuleCase> {
        if !v.is_object() {
            let found = found(v);
            let want = "a table with `name`, `events` and `expect`";
            p.push(at, format!("expected {want}, found {found}"));
            return None;
        }
        p.unknown_keys(v, at, &["name", "events", "expect"]);
        let name = field(p, v, at, "name", true);
        let events = field(p, v, at, "events", true);
        let expect = match v.get("expect") {
            Some(e) => Expect::from_value(e, &join(at, "expect"), p),
            None => {
                p.push(join(at, "expect"), "missing (required)");
                None
            }
        };
        Some(RuleCase {
            name: name?,
            events: events?,
            expect: expect?,
        })
    }
}

impl Expect {
    const FIELDS: [&str; 7] = [
        "level",
        "triggers",
        "roles",
        "tier",
        "required_action",
        "approvals",
        "distinct_roles",
    ];

    /// The `expect` table at `at`, recording each of its problems.
    fn from_value(v: &Value, at: &str, p: &mut Problems) -> Option<Expect> {
        if !v.is_object() {
            let found = found(v);
            p.push(
                at,
                format!(
                    "expected a table of {}, found {found}",
                    Self::FIELDS.join(", ")
                ),
            );
            return None;
        }
        let before = p.len();
        p.unknown_keys(v, at, &Self::FIELDS);
        let e = Expect {
            level: field(p, v, at, "level", false),
            triggers: field(p, v, at, "triggers", false),
            roles: field(p, v, at, "roles", false),
            tier: field(p, v, at, "tier", false),
            required_action: field(p, v, at, "required_action", false),
            approvals: field(p, v, at, "approvals", false),
            distinct_roles: field(p, v, at, "distinct_roles", false),
        };
        (p.len() == before).then_some(e)
    }
}

/// "a number 7", "a list": the kind of a value that is not what was expected, and the value
/// itself when it is a scalar.
fn found(v: &Value) -> String {
    match v {
        Value::Bool(_) | Value::Number(_) | Value::String(_) => {
            format!("{} {v}", crate::problems::kind(v))
        }
        _ => crate::problems::kind(v).to_string(),
    }
}

/// The field `key` of the table `v` at `at`, read on its own: a problem at `at.key` when it is
/// wrong, or missing though `required`.
fn field<T: serde::de::DeserializeOwned>(
    p: &mut Problems,
    v: &Value,
    at: &str,
    key: &str,
    required: bool,
) -> Option<T> {
    match v.get(key) {
        Some(x) => p.take(x, &join(at, key)),
        None => {
            if required {
                p.push(join(at, key), "missing (required)");
            }
            None
        }
    }
}

/// Why a test-rules file could not be run.
#[derive(Debug, thiserror::Error)]
pub enum RuleTestError {
    /// The file is unreadable or not TOML, YAML or JSON.
    #[error("cannot read rule tests {path}: {message}")]
    Read {
        /// File.
        path: String,
        /// Why.
        message: String,
    },
    /// The file reads, but is not a valid test file: every problem, one per line.
    #[error("rule tests {path} have {} problem(s):\n{problems}", problems.len())]
    Invalid {
        /// File.
        path: String,
        /// Each naming the case or field and the value.
        problems: Problems,
    },
    /// The matrix under test is bad.
    #[error(transparent)]
    Matrix(#[from] MatrixError),
}

/// Result of one case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseResult {
    /// Case name.
    pub name: String,
    /// Position in the file.
    pub index: usize,
    /// One line per difference; empty when the case passed.
    pub diffs: Vec<String>,
}

/// Results of a whole file.
#[derive(Debug, Clone)]
pub struct RuleReport {
    /// The file.
    pub path: PathBuf,
    /// Rule version of the matrix tested.
    pub rule_version: String,
    /// Every case.
    pub cases: Vec<CaseResult>,
}

impl RuleReport {
    /// Number of failed cases.
    pub fn failed(&self) -> usize {
        self.cases.iter().filter(|c| !c.diffs.is_empty()).count()
    }

    /// Writes a report in the manner of `promtool test rules`.
    pub fn write(&self, mut w: impl Write) -> io::Result<()> {
        writeln!(
            w,
            "Unit testing  {} (rules {})",
            self.path.display(),
            self.rule_version
        )?;
        let failed = self.failed();
        if failed == 0 {
            writeln!(w, "  SUCCESS ({} cases)", self.cases.len())?;
        } else {
            writeln!(w, "  FAILED: {failed} of {} cases", self.cases.len())?;
            for c in self.cases.iter().filter(|c| !c.diffs.is_empty()) {
                writeln!(w, "    case {:?} (cases[{}]):", c.name, c.index)?;
                for d in &c.diffs {
                    writeln!(w, "      {d}")?;
                }
            }
        }
        Ok(())
    }
}

fn set_diff(what: &str, expected: &[String], got: &[String]) -> Option<String> {
    let e: BTreeSet<&str> = expected.iter().map(String::as_str).collect();
    let g: BTreeSet<&str> = got.iter().map(String::as_str).collect();
    if e == g {
        return None;
    }
    let missing: Vec<&str> = e.difference(&g).copied().collect();
    let extra: Vec<&str> = g.difference(&e).copied().collect();
    let mut s = format!(
        "{what}: expected [{}], got [{}]",
        e.into_iter().collect::<Vec<_>>().join(", "),
        g.into_iter().collect::<Vec<_>>().join(", ")
    );
    if !missing.is_empty() {
        s.push_str(&format!("; missing {}", missing.join(", ")));
    }
    if !extra.is_empty() {
        s.push_str(&format!("; unexpected {}", extra.join(", ")));
    }
    Some(s)
}

/// Loads a test-rules file; `matrix_override` wins over the file's own `matrix`.
pub fn run_rule_tests(
    path: &Path,
    matrix_override: Option<&Path>,
    codec: &Codec,
) -> Result<RuleReport, RuleTestError> {
    let read_err = |message: String| RuleTestError::Read {
        path: path.display().to_string(),
        message,
    };
    let value = crate::problems::read_file(path).map_err(read_err)?;
    let tests = RuleTests::from_value(&value).map_err(|problems| RuleTestError::Invalid {
        path: path.display().to_string(),
        problems,
    })?;
    let matrix = rule_matrix(path, matrix_override, &tests)?;
    let results = tests
        .cases
        .iter()
        .enumerate()
        .map(|(ci, case)| CaseResult {
            name: case.name.clone(),
            index: ci,
            diffs: run_case(&matrix, codec, &tests.base_event, ci, case),
        })
        .collect();
    Ok(RuleReport {
        path: path.to_path_buf(),
        rule_version: matrix.version().to_string(),
        cases: results,
    })
}

/// The matrix under test: `--matrix`, else the file's own (relative to it), else the default.
fn rule_matrix(
    path: &Path,
    matrix_override: Option<&Path>,
    tests: &RuleTests,
) -> Result<Matrix, MatrixError> {
    match (matrix_override, &tests.matrix) {
        (Some(m), _) => Matrix::from_file(m),
        (None, Some(rel)) => Matrix::from_file(&crate::problems::beside(path, rel)),
        (None, None) => Matrix::default_matrix(),
    }
}

/// Runs case `ci` in a fresh session: its differences from what it expects.
fn run_case(
    matrix: &Matrix,
    codec: &Codec,
    base_event: &serde_json::Map<String, Value>,
    ci: usize,
    case: &RuleCase,
) -> Vec<String> {
    let mut diffs = Vec::new();
    let mut sessions = SessionStore::new();
    let mut last: Option<Plan> = None;
    for (ei, overrides) in case.events.iter().enumerate() {
        let mut merged = base_event.clone();
        for (k, v) in overrides {
            merged.insert(k.clone(), v.clone());
        }
        merged
            .entry("action_id")
            .or_insert_with(|| Value::String(format!("case{ci}-event{ei}")));
        let text = Value::Object(merged).to_string();
        match codec.decode_action_json(&text) {
            Ok(event) => last = Some(decide(matrix, &mut sessions, &event)),
            Err(e) => {
                diffs.push(format!("events[{ei}]: {e}"));
                last = None;
                break;
            }
        }
    }
    match last {
        None if diffs.is_empty() => diffs.push("the case has no events".into()),
        None => {}
        Some(plan) => expect_diffs(&case.expect, &plan, &mut diffs),
    }
    diffs
}

/// Adds a line per field of `ex` the decision `plan` does not match.
fn expect_diffs(ex: &Expect, plan: &Plan, diffs: &mut Vec<String>) {
    let v = &plan.verdict;
    if let Some(l) = ex.level {
        if l != v.level {
            diffs.push(format!(
                "level: expected {}, got {}",
                l.as_str(),
                v.level.as_str()
            ));
        }
    }
    if let Some(t) = &ex.triggers {
        diffs.extend(set_diff("triggers", t, &v.triggers));
    }
    if let Some(r) = &ex.roles {
        diffs.extend(set_diff("roles", r, &v.roles));
    }
    let tier = plan.escalations.iter().map(|(_, e)| e.tier).max();
    if let Some(t) = ex.tier {
        let got = match tier {
            None => TierExpect::None,
            Some(Tier::Warm) => TierExpect::Warm,
            Some(Tier::Immediate) => TierExpect::Immediate,
        };
        if got != t {
            diffs.push(format!("tier: expected {t:?}, got {got:?}").to_lowercase());
        }
    }
    if let Some(n) = ex.approvals {
        if n != plan.quorum.approvals {
            diffs.push(format!(
                "approvals: expected {n}, got {}",
                plan.quorum.approvals
            ));
        }
    }
    if let Some(d) = ex.distinct_roles {
        if d != plan.quorum.distinct_roles {
            diffs.push(format!(
                "distinct_roles: expected {d}, got {}",
                plan.quorum.distinct_roles
            ));
        }
    }
    if let Some(ra) = ex.required_action {
        let got = plan.escalations.first().map(|(_, e)| e.required_action);
        if got != Some(ra) {
            diffs.push(format!(
                "required_action: expected {}, got {}",
                ra.as_str(),
                got.map(|g| g.as_str()).unwrap_or("none")
            ));
        }
    }
}
