//! Making canaries: each `[[canary.cases]]` event read and checked against the matrix once, then
//! made new for every canary (fresh ids in the same form, the current time), encoded like the
//! agents' events and marked with the canary header; and when to send them (a Poisson process
//! per role, so people cannot learn the rhythm).

use crate::config::{CanarySettings, Settings};
use crate::event::canary::{Expect, CANARY_HEADER};
use crate::event::{AgentAction, Codec, CodecError, EventLimits, SchemaKind};
use crate::matrix::{Matrix, SessionState};
use crate::problems::Problems;
use rand::Rng;

/// One case, ready to send.
#[derive(Debug, Clone, PartialEq)]
pub struct Case {
    /// The role whose people must catch it.
    pub role: String,
    /// The right answer.
    pub expect: Expect,
    /// The event each canary of this case is made from.
    pub event: AgentAction,
}

/// Reads and checks every case of `[canary]`: the event file parses as an agent action and is
/// valid, and the matrix, deciding it in a fresh session, hands it to the case's role. Every
/// problem is listed.
pub fn load(settings: &CanarySettings, matrix: &Matrix) -> Result<Vec<Case>, Problems> {
    let mut problems = Problems::default();
    let mut cases = Vec::new();
    for (i, c) in settings.cases.iter().enumerate() {
        let at = |field: &str| format!("canary.cases[{i}].{field}");
        if matrix.role_index(&c.role).is_none() {
            let roles: Vec<&str> = matrix.roles().iter().map(|r| r.name.as_str()).collect();
            problems.push(
                at("role"),
                format!(
                    "{:?} is not a role of the matrix ({})",
                    c.role,
                    roles.join(", ")
                ),
            );
            continue;
        }
        let event = match read_event(&c.event) {
            Ok(e) => e,
            Err(message) => {
                problems.push(at("event"), message);
                continue;
            }
        };
        if let Err(message) = hands_to(matrix, &event, &c.role) {
            problems.push(at("event"), format!("{}: {message}", c.event.display()));
            continue;
        }
        cases.push(Case {
            role: c.role.clone(),
            expect: c.expect,
            event,
        });
    }
    if problems.is_empty() {
        Ok(cases)
    } else {
        Err(problems)
    }
}

fn read_event(path: &std::path::Path) -> Result<AgentAction, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let event: AgentAction = serde_json::from_str(&text)
        .map_err(|e| format!("{} is not an agent action event: {e}", path.display()))?;
    event
        .validate(&EventLimits::default())
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(event)
}

/// Ok when the matrix, deciding `event` in a fresh session, hands it to `role`.
fn hands_to(matrix: &Matrix, event: &AgentAction, role: &str) -> Result<(), String> {
    let decision = matrix.evaluate(event, &SessionState::default());
    if !decision.level.needs_human() {
        return Err(format!(
            "the matrix decides `{}` for it: nobody would be asked",
            decision.level.as_str()
        ));
    }
    let plan = crate::escalation::plan(matrix, event, &decision, 0, false);
    let roles: Vec<&str> = plan
        .escalations
        .iter()
        .map(|(_, x)| x.role.as_str())
        .collect();
    if !roles.contains(&role) {
        return Err(format!(
            "the matrix hands it to {}, not to {role:?}",
            if roles.is_empty() {
                "nobody".to_string()
            } else {
                roles.join(", ")
            }
        ));
    }
    Ok(())
}

/// A canary of `case`, made new: fresh action and session ids in the form of the case's, and
/// the time `now_ms`.
pub fn make(case: &Case, rng: &mut impl Rng, now_ms: i64) -> AgentAction {
    let mut e = case.event.clone();
    e.action_id = fresh_id(&case.event.action_id, rng);
    e.session_id = fresh_id(&case.event.session_id, rng);
    e.timestamp_ms = now_ms;
    e
}

/// `template` with every character after its first `-` (all of it when there is none) drawn
/// anew from the same class — a digit for a digit, a hex letter for a hex letter, a letter for
/// a letter — so a canary's ids look like the agent's own.
pub fn fresh_id(template: &str, rng: &mut impl Rng) -> String {
    let keep = template.find('-').map_or(0, |i| i + 1);
    let mut out = String::with_capacity(template.len().max(12));
    out.push_str(&template[..keep]);
    let rest = &template[keep..];
    if rest.len() < 8 {
        // Too short to be unique: 12 hex digits.
        for _ in 0..12 {
            out.push(draw('a', rng));
        }
        return out;
    }
    for c in rest.chars() {
        out.push(draw(c, rng));
    }
    out
}

/// A character of the same class as `c`, at random.
fn draw(c: char, rng: &mut impl Rng) -> char {
    let set: &[u8] = match c {
        '0'..='9' => b"0123456789",
        'a'..='f' => b"0123456789abcdef",
        'A'..='F' => b"0123456789ABCDEF",
        'g'..='z' => b"abcdefghijklmnopqrstuvwxyz",
        'G'..='Z' => b"ABCDEFGHIJKLMNOPQRSTUVWXYZ",
        other => return other,
    };
    set[rng.random_range(0..set.len())] as char
}

/// A canary as the record the agents would send: key (the session id), value (the input
/// format of `settings`) and the canary header.
pub struct Record {
    /// The session id.
    pub key: Vec<u8>,
    /// The encoded event.
    pub value: Vec<u8>,
    /// `handoff.canary` = the expected answer, and the schema version of the value.
    pub headers: Vec<(&'static str, &'static [u8])>,
}

/// Encodes a canary for the input topic.
pub fn record(
    settings: &Settings,
    codec: &Codec,
    event: &AgentAction,
    expect: Expect,
) -> Result<Record, CodecError> {
    let value = crate::kafka::record::action_value(settings, codec, event)?;
    let mut headers = vec![(CANARY_HEADER, expect.as_str().as_bytes())];
    headers.extend(crate::event::wire::version_header(SchemaKind::AgentAction));
    Ok(Record {
        key: event.session_id.clone().into_bytes(),
        value,
        headers,
    })
}

/// Milliseconds to the next canary of a role sent `per_hour` times an hour on average
/// (exponential gaps: a Poisson process).
pub fn next_gap_ms(per_hour: f64, rng: &mut impl Rng) -> i64 {
    let mean_ms = 3_600_000.0 / per_hour;
    let u: f64 = rng.random_range(f64::EPSILON..1.0);
    (-u.ln() * mean_ms).round() as i64
}

/// The cases taken in turn, per role.
#[derive(Debug)]
pub struct Rotation {
    /// Per role (in first-seen order): the role and its cases' indexes.
    roles: Vec<(String, Vec<usize>)>,
    turn: Vec<usize>,
}

impl Rotation {
    /// Groups `cases` by role.
    pub fn new(cases: &[Case]) -> Rotation {
        let mut roles: Vec<(String, Vec<usize>)> = Vec::new();
        for (i, c) in cases.iter().enumerate() {
            match roles.iter_mut().find(|(r, _)| *r == c.role) {
                Some((_, v)) => v.push(i),
                None => roles.push((c.role.clone(), vec![i])),
            }
        }
        let turn = vec![0; roles.len()];
        Rotation { roles, turn }
    }

    /// The roles, in order.
    pub fn roles(&self) -> impl Iterator<Item = &str> {
        self.roles.iter().map(|(r, _)| r.as_str())
    }

    /// The next case (an index into the cases) of role number `role`.
    pub fn next(&mut self, role: usize) -> usize {
        let cases = &self.roles[role].1;
        let i = cases[self.turn[role] % cases.len()];
        self.turn[role] += 1;
        i
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn fresh_ids_keep_the_form_and_differ() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let a = fresh_id("act-0001a2f3-17", &mut rng);
        let b = fresh_id("act-0001a2f3-17", &mut rng);
        assert_ne!(a, b);
        assert!(a.starts_with("act-") && a.len() == "act-0001a2f3-17".len());
        assert_eq!(a.as_bytes()[12], b'-', "separators stay: {a}");
        assert!(a[4..12].chars().all(|c| c.is_ascii_hexdigit()), "{a}");
        let short = fresh_id("s-1", &mut rng);
        assert_eq!(short.len(), 2 + 12, "{short}");
    }

    #[test]
    fn gaps_average_the_rate() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let n = 20_000;
        let sum: i64 = (0..n).map(|_| next_gap_ms(4.0, &mut rng)).sum();
        let mean = sum as f64 / n as f64;
        assert!((mean - 900_000.0).abs() < 30_000.0, "mean gap {mean} ms");
    }

    #[test]
    fn cases_rotate_per_role() {
        let event: AgentAction = crate::sim::fleet::Fleet::new(Default::default()).next_event();
        let case = |role: &str| Case {
            role: role.into(),
            expect: Expect::Reject,
            event: event.clone(),
        };
        let mut r = Rotation::new(&[case("a"), case("b"), case("a")]);
        assert_eq!(r.roles().collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!([r.next(0), r.next(0), r.next(0), r.next(1)], [0, 2, 0, 1]);
    }
}
