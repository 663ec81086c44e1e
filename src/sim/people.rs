//! Simulated people, one implementation for every clock. Shown an escalation at `now_ms`, the
//! people of its role plan their answers — after a sampled delay, an acknowledgement first or
//! not, a decision drawn from a mix, or nothing at all (a no-show) — and hand out the answers
//! that are due whenever they are asked with the current time. Pure: no Kafka and no clock of
//! their own. [`super::respond`] drives them on the wall clock from the role topics; the
//! game-day drives them on its virtual clock (and on the wall clock with `--wall-clock`).

use crate::event::{DecisionKind, Escalation, HumanDecision};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, HashSet};
use std::time::Duration;

/// How the people of a role answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Answering {
    /// Shortest time from seeing an escalation to the first answer.
    pub delay_min: Duration,
    /// Longest: the delay is uniform between the two.
    pub delay_max: Duration,
    /// `Some`: acknowledge first, then decide this long after, the decision drawn from the
    /// mix's approve, reject, revise and redirect weights. `None`: one answer, drawn from the
    /// whole mix (acknowledge included).
    pub decide_after: Option<Duration>,
    /// Share of escalations nobody answers (0..1): their deadlines fire.
    pub no_show: f64,
    /// Weights of approve, reject, revise, redirect, acknowledge (the order of
    /// [`DecisionKind::ALL`]; see [`parse_mix`]).
    pub mix: [f64; 5],
}

/// How the people sign their answers.
#[derive(Debug, Clone, PartialEq)]
pub struct Signature {
    /// `decided_by` is this followed by the role, e.g. `sim-` → `sim-trader`.
    pub decided_by_prefix: String,
    /// The comment of every answer.
    pub comment: Option<String>,
    /// Mark every answer as a drill; otherwise an answer is a drill when its escalation is.
    pub drill: bool,
}

/// What became of an escalation shown to the people.
#[derive(Debug, Clone, PartialEq)]
pub enum Shown {
    /// Seen before (a grouped escalation is published again on each update): answered once.
    Again,
    /// Nobody answers for this role.
    NobodyThere,
    /// The person did not show up: no answer, the deadline will fire.
    NoShow,
    /// Answers planned: when (ms) and which, in time order.
    Planned(Vec<(i64, DecisionKind)>),
}

/// The simulated people: their settings per role, their seeded choices, and their agenda of
/// answers not yet given.
#[derive(Debug)]
pub struct People {
    by_role: BTreeMap<String, Answering>,
    everyone_else: Option<Answering>,
    /// Roles a redirect may go to: the first one other than the escalation's.
    roles: Vec<String>,
    signature: Signature,
    rng: ChaCha8Rng,
    seen: HashSet<String>,
    /// (due ms, sequence number), earliest first; equal times in the order planned.
    due: BinaryHeap<Reverse<(i64, u64)>>,
    agenda: HashMap<u64, HumanDecision>,
    planned: u64,
}

impl People {
    /// Nobody yet: add them with [`People::role`] or [`People::everyone`]. `roles` are the
    /// matrix's role names (redirect targets); `seed` makes every choice repeatable.
    pub fn new(roles: Vec<String>, seed: u64, signature: Signature) -> People {
        People {
            by_role: BTreeMap::new(),
            everyone_else: None,
            roles,
            signature,
            rng: ChaCha8Rng::seed_from_u64(seed),
            seen: HashSet::new(),
            due: BinaryHeap::new(),
            agenda: HashMap::new(),
            planned: 0,
        }
    }

    /// The people of `role` answer this way.
    pub fn role(mut self, role: impl Into<String>, answering: Answering) -> People {
        self.by_role.insert(role.into(), answering);
        self
    }

    /// The people of every role not given with [`People::role`] answer this way.
    pub fn everyone(mut self, answering: Answering) -> People {
        self.everyone_else = Some(answering);
        self
    }

    /// An escalation of `role` is shown to its people at `now_ms`: they plan their answers.
    /// Draws, in order: no-show, delay, decision.
    pub fn shown(&mut self, role: &str, x: &Escalation, now_ms: i64) -> Shown {
        if !self.seen.insert(x.escalation_id.clone()) {
            return Shown::Again;
        }
        let Some(a) = self.by_role.get(role).or(self.everyone_else.as_ref()) else {
            return Shown::NobodyThere;
        };
        if self.rng.random::<f64>() < a.no_show {
            return Shown::NoShow;
        }
        let spread = a.delay_max.saturating_sub(a.delay_min);
        let delay = a.delay_min + spread.mul_f64(self.rng.random::<f64>());
        let first_at = now_ms + delay.as_millis() as i64;
        let plan = match a.decide_after {
            Some(after) => vec![
                (first_at, DecisionKind::Acknowledge),
                (
                    first_at + after.as_millis() as i64,
                    pick(&a.mix[..4], self.rng.random::<f64>()),
                ),
            ],
            None => vec![(first_at, pick(&a.mix, self.rng.random::<f64>()))],
        };
        for &(at, kind) in &plan {
            let d = self.answer(role, x, kind, at);
            self.planned += 1;
            self.due.push(Reverse((at, self.planned)));
            self.agenda.insert(self.planned, d);
        }
        Shown::Planned(plan)
    }

    /// The next answer due at `now_ms`, if any, stamped with the time it was planned for.
    pub fn due(&mut self, now_ms: i64) -> Option<HumanDecision> {
        let Reverse((at, n)) = *self.due.peek()?;
        if at > now_ms {
            return None;
        }
        self.due.pop();
        self.agenda.remove(&n)
    }

    /// When the next answer is due.
    pub fn next_due_ms(&self) -> Option<i64> {
        self.due.peek().map(|Reverse((at, _))| *at)
    }

    /// Answers planned and not yet handed out.
    pub fn pending(&self) -> usize {
        self.due.len()
    }

    fn answer(&self, role: &str, x: &Escalation, kind: DecisionKind, at: i64) -> HumanDecision {
        let other = self.roles.iter().find(|r| *r != role);
        // Nobody to redirect to: the person approves instead.
        let kind = match (kind, other) {
            (DecisionKind::Redirect, None) => DecisionKind::Approve,
            (k, _) => k,
        };
        HumanDecision {
            escalation_id: x.escalation_id.clone(),
            action_id: x.action_id.clone(),
            session_id: x.session_id.clone(),
            role: role.to_string(),
            decided_by: format!("{}{role}", self.signature.decided_by_prefix),
            decision: kind,
            comment: self.signature.comment.clone(),
            revised_output: (kind == DecisionKind::Revise)
                .then(|| format!("(revised) {}", x.context.headline)),
            redirect_role: (kind == DecisionKind::Redirect)
                .then(|| other.cloned().unwrap_or_default()),
            decided_at_ms: at,
            drill: self.signature.drill || x.drill,
            chosen_option: None,
            revised_arguments: None,
        }
    }
}

/// The decision at `x` (0..1) of the cumulated `weights` (in [`DecisionKind::ALL`] order);
/// approve when they are all 0.
fn pick(weights: &[f64], x: f64) -> DecisionKind {
    let total: f64 = weights.iter().sum();
    let mut at = x * total;
    for (k, w) in DecisionKind::ALL.iter().zip(weights) {
        if at < *w {
            return *k;
        }
        at -= w;
    }
    DecisionKind::Approve
}

/// Parses `approve=60,reject=15,…` (kinds left out weigh 0).
pub fn parse_mix(text: &str) -> Result<[f64; 5], String> {
    let mut mix = [0.0; 5];
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, weight) = part
            .split_once('=')
            .ok_or_else(|| format!("{part:?}: expected kind=weight, e.g. approve=60"))?;
        let i = DecisionKind::ALL
            .iter()
            .position(|k| k.as_str() == name.trim())
            .ok_or_else(|| {
                format!(
                    "{name:?} is not a decision (approve, reject, revise, redirect, acknowledge)"
                )
            })?;
        mix[i] = weight
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|w| w.is_finite() && *w >= 0.0)
            .ok_or_else(|| format!("{part:?}: the weight must be a number ≥ 0"))?;
    }
    if mix.iter().sum::<f64>() <= 0.0 {
        return Err(format!("{text:?}: at least one weight must be above 0"));
    }
    Ok(mix)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real escalation (the first one of the fleet's traffic), renamed.
    fn escalation(id: &str, role: &str) -> Escalation {
        static FIRST: std::sync::OnceLock<Escalation> = std::sync::OnceLock::new();
        let mut x = FIRST.get_or_init(first_escalation).clone();
        x.escalation_id = id.into();
        x.role = role.into();
        x.drill = false;
        x
    }

    fn first_escalation() -> Escalation {
        let m = crate::matrix::Matrix::default_matrix().unwrap();
        let mut fleet = crate::sim::fleet::Fleet::new(crate::sim::fleet::FleetConfig {
            trigger_boost: 8.0,
            ..Default::default()
        });
        let mut sessions = crate::session::SessionStore::new();
        loop {
            let plan = crate::offline::decide(&m, &mut sessions, &fleet.next_event());
            if let Some((_, x)) = plan.escalations.into_iter().next() {
                return x;
            }
        }
    }

    fn signature() -> Signature {
        Signature {
            decided_by_prefix: "sim-".into(),
            comment: None,
            drill: false,
        }
    }

    fn answering(decide_after: Option<Duration>, no_show: f64, mix: &str) -> Answering {
        Answering {
            delay_min: Duration::from_secs(10),
            delay_max: Duration::from_secs(20),
            decide_after,
            no_show,
            mix: parse_mix(mix).unwrap(),
        }
    }

    #[test]
    fn mixes_parse_and_bad_ones_name_the_part() {
        assert_eq!(
            parse_mix("approve=3, acknowledge=1").unwrap(),
            [3.0, 0.0, 0.0, 0.0, 1.0]
        );
        assert!(parse_mix("approve").unwrap_err().contains("kind=weight"));
        assert!(parse_mix("maybe=2").unwrap_err().contains("\"maybe\""));
        assert!(parse_mix("reject=-1").unwrap_err().contains("≥ 0"));
        assert!(parse_mix("reject=0").unwrap_err().contains("above 0"));
    }

    fn people(seed: u64) -> People {
        People::new(
            vec!["trader".into(), "compliance".into()],
            seed,
            signature(),
        )
    }

    /// Every answer handed out by `now_ms`.
    fn drain(p: &mut People, now_ms: i64) -> Vec<HumanDecision> {
        std::iter::from_fn(|| p.due(now_ms)).collect()
    }

    #[test]
    fn with_decide_after_people_acknowledge_then_decide_at_the_planned_times() {
        let mut p = people(1).role(
            "trader",
            answering(Some(Duration::from_secs(60)), 0.0, "reject=1"),
        );
        let Shown::Planned(plan) = p.shown("trader", &escalation("e1", "trader"), 1_000) else {
            panic!("planned")
        };
        assert_eq!(plan.len(), 2);
        let (ack, decide) = (plan[0], plan[1]);
        assert_eq!(ack.1, DecisionKind::Acknowledge);
        assert!((11_000..=21_000).contains(&ack.0), "{ack:?}");
        assert_eq!(decide, (ack.0 + 60_000, DecisionKind::Reject));
        assert_eq!(p.next_due_ms(), Some(ack.0));
        assert!(p.due(ack.0 - 1).is_none(), "nothing before its time");
        let first = drain(&mut p, ack.0);
        assert_eq!(first.len(), 1);
        let d = &first[0];
        assert_eq!(
            (
                d.decision,
                d.decided_at_ms,
                d.role.as_str(),
                d.decided_by.as_str()
            ),
            (DecisionKind::Acknowledge, ack.0, "trader", "sim-trader")
        );
        assert_eq!((d.escalation_id.as_str(), d.drill), ("e1", false));
        let second = drain(&mut p, i64::MAX);
        assert_eq!(second.len(), 1);
        assert_eq!(second[0].decision, DecisionKind::Reject);
        assert_eq!(p.pending(), 0);
    }

    #[test]
    fn without_decide_after_one_answer_comes_from_the_whole_mix() {
        let mut p = people(2).everyone(answering(None, 0.0, "acknowledge=1"));
        let Shown::Planned(plan) = p.shown("compliance", &escalation("e1", "compliance"), 0) else {
            panic!("planned")
        };
        assert_eq!(plan.len(), 1);
        assert_eq!(plan[0].1, DecisionKind::Acknowledge);
    }

    #[test]
    fn roles_without_people_repeats_and_no_shows_get_no_answer() {
        let mut p = people(3)
            .role("trader", answering(None, 0.0, "approve=1"))
            .role("compliance", answering(None, 1.0, "approve=1"));
        assert_eq!(
            p.shown("owner", &escalation("e0", "owner"), 0),
            Shown::NobodyThere
        );
        assert_eq!(
            p.shown("compliance", &escalation("e1", "compliance"), 0),
            Shown::NoShow
        );
        assert!(matches!(
            p.shown("trader", &escalation("e2", "trader"), 0),
            Shown::Planned(_)
        ));
        assert_eq!(
            p.shown("trader", &escalation("e2", "trader"), 5),
            Shown::Again
        );
        assert_eq!(
            drain(&mut p, i64::MAX).len(),
            1,
            "one answer to e2, none else"
        );
    }

    #[test]
    fn redirects_go_to_another_role_or_become_approvals_when_there_is_none() {
        let mut p = people(4).everyone(answering(None, 0.0, "redirect=1"));
        p.shown("trader", &escalation("e1", "trader"), 0);
        let d = drain(&mut p, i64::MAX);
        assert_eq!(d[0].decision, DecisionKind::Redirect);
        assert_eq!(d[0].redirect_role.as_deref(), Some("compliance"));
        let mut alone = People::new(vec!["trader".into()], 4, signature()).everyone(answering(
            None,
            0.0,
            "redirect=1",
        ));
        alone.shown("trader", &escalation("e1", "trader"), 0);
        let d = drain(&mut alone, i64::MAX);
        assert_eq!(
            (d[0].decision, d[0].redirect_role.clone()),
            (DecisionKind::Approve, None)
        );
    }

    #[test]
    fn the_same_seed_gives_the_same_answers_in_time_order() {
        let run = |seed| {
            let mut p = people(seed).everyone(answering(
                Some(Duration::from_secs(5)),
                0.3,
                "approve=1,reject=1,revise=1",
            ));
            for i in 0..50 {
                p.shown("trader", &escalation(&format!("e{i}"), "trader"), i * 1_000);
            }
            drain(&mut p, i64::MAX)
                .into_iter()
                .map(|d| (d.escalation_id, d.decision, d.decided_at_ms))
                .collect::<Vec<_>>()
        };
        let a = run(9);
        assert_eq!(a, run(9));
        assert_ne!(a, run(10));
        assert!(
            a.windows(2).all(|w| w[0].2 <= w[1].2),
            "handed out in time order"
        );
        let answered = a
            .iter()
            .filter(|d| d.1 == DecisionKind::Acknowledge)
            .count();
        assert!(
            (20..50).contains(&answered),
            "about 30% no-shows: {answered} of 50"
        );
    }
}
