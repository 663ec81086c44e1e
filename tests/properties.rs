//! Invariants of the matrix over generated events.

mod common;

use handoff::event::{ActionStatus, AgentAction, Customer, CustomerTier, Level};
use handoff::matrix::{Matrix, SessionState, Trigger};
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::sync::OnceLock;

fn matrix() -> &'static Matrix {
    static M: OnceLock<Matrix> = OnceLock::new();
    M.get_or_init(|| Matrix::default_matrix().unwrap())
}

const ACTION_TYPES: &[&str] = &[
    "research.search",
    "notes.write",
    "email.send",
    "faq.answer",
    "trade.execute",
    "refund.issue",
    "data.delete",
    "deploy.production",
    "deploy.staging",
    "payment.transfer",
    "crm.update",
    "chat.reply",
    "blog.publish",
    "rocket.launch",
    "email.recall",
    "x.y.z",
];
const WORDS: &[&str] = &[
    "please", "refund", "the", "order", "fraud", "lawsuit", "speak", "to", "a", "person", "real",
    "agent", "chest", "pain", "legal", "action", "defraud", "Fraud!", "hello", "human",
];

fn text() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(WORDS), 0..12).prop_map(|w| w.join(" "))
}

fn event() -> impl Strategy<Value = AgentAction> {
    (
        (
            prop::sample::select(ACTION_TYPES),
            0.0..=1.0f64,
            text(),
            text(),
            prop::option::of(text()),
        ),
        (
            prop::option::of("tpl-[0-9]"),
            prop::collection::vec("[a-z]{1,6}", 0..4),
            0..3u8,
        ),
        (
            prop::option::of(0.0..50_000.0f64),
            prop::option::of((0..3u8, 0..6i32)),
        ),
        (
            any::<bool>(),
            any::<bool>(),
            prop::collection::btree_map("[a-z_]{1,8}", "[a-z_]{0,8}", 0..4),
        ),
    )
        .prop_map(
            |(
                (at, conf, request, output, user),
                (tpl, options, status),
                (amount, cust),
                (rev, others, attrs),
            )| {
                let mut e = common::base_event();
                e.action_type = at.to_string();
                e.confidence = Some(conf);
                e.request = request;
                e.output = Some(output);
                e.user_message = user;
                e.template_id = tpl;
                e.options = options;
                e.status = [
                    ActionStatus::Proposed,
                    ActionStatus::Completed,
                    ActionStatus::Failed,
                ][status as usize];
                e.amount = amount;
                e.customer = cust.map(|(t, c)| Customer {
                    id: "c".into(),
                    tier: [
                        CustomerTier::Standard,
                        CustomerTier::Premium,
                        CustomerTier::Vip,
                    ][t as usize],
                    prior_complaints: c,
                });
                e.reversible = rev;
                e.affects_others = others;
                e.attributes = attrs;
                e
            },
        )
}

fn state() -> impl Strategy<Value = SessionState> {
    (0..5u32, 0..100u64).prop_map(|(c, t)| SessionState {
        consecutive_low: c,
        turns: t,
        last_event_ms: 0,
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn higher_confidence_never_raises_the_level(e in event(), s in state(), bump in 0.0..=1.0f64) {
        let m = matrix();
        let mut higher = e.clone();
        let given = e.confidence.expect("generated events carry a confidence");
        higher.confidence = Some((given + bump).min(1.0));
        let lo = m.evaluate(&e, &s);
        let hi = m.evaluate(&higher, &s);
        prop_assert!(hi.level <= lo.level, "{:?} at {:?} but {:?} at {:?}", lo.level, e.confidence, hi.level, higher.confidence);
        prop_assert!(hi.roles.len() <= lo.roles.len() || hi.triggers.len() <= lo.triggers.len());
    }

    #[test]
    fn no_confidence_is_never_less_strict_than_any_confidence(e in event(), s in state()) {
        // The default matrix fails closed: an action without a confidence is decided at least
        // as strictly as the same action with any confidence, and its streak grows as much.
        let m = matrix();
        let mut none = e.clone();
        none.confidence = None;
        let given = m.evaluate(&e, &s);
        let without = m.evaluate(&none, &s);
        prop_assert!(without.level >= given.level, "{:?} without, {:?} at {:?}", without.level, given.level, e.confidence);
        prop_assert!(without.session.consecutive_low >= given.session.consecutive_low);
    }

    #[test]
    fn unknown_action_types_never_execute_alone(e in event(), s in state(), tail in "[a-z]{3,8}") {
        let mut e = e;
        e.action_type = format!("zz{tail}.{tail}");
        let d = matrix().evaluate(&e, &s);
        prop_assert!(d.level >= Level::AskFirst);
        prop_assert!(d.triggers.contains(Trigger::UnknownAction));
    }

    #[test]
    fn the_level_is_the_strictest_of_base_and_fired_triggers(e in event(), s in state()) {
        let m = matrix();
        let d = m.evaluate(&e, &s);
        let strictest = d.triggers.iter().map(|t| m.spec().outcomes[&t].level).fold(d.base_level, Level::max);
        prop_assert_eq!(d.level, strictest);
        prop_assert!(d.level >= d.base_level);
        // Every fired trigger is kept as a flag, in canonical order.
        let flagged: Vec<Trigger> = d.flags.iter().map(|f| f.trigger).collect();
        prop_assert_eq!(flagged, d.triggers.iter().collect::<Vec<_>>());
        // A level that needs a human always has someone to hand over to.
        if d.level.needs_human() { prop_assert!(!d.roles.is_empty()); }
        prop_assert!(d.immediate.iter().all(|i| d.roles.contains(i)));
    }

    #[test]
    fn output_does_not_depend_on_attribute_insertion_order(e in event(), s in state()) {
        let m = matrix();
        let mut reversed = e.clone();
        let pairs: Vec<(String, String)> = e.attributes.clone().into_iter().rev().collect();
        reversed.attributes = BTreeMap::new();
        for (k, v) in pairs { reversed.attributes.insert(k, v); }
        let a = m.evaluate(&e, &s);
        let b = m.evaluate(&reversed, &s);
        prop_assert_eq!(&a, &b);
        let pa = handoff::escalation::plan(m, &e, &a, 1, false);
        let pb = handoff::escalation::plan(m, &reversed, &b, 1, false);
        prop_assert_eq!(serde_json::to_string(&pa.verdict).unwrap(), serde_json::to_string(&pb.verdict).unwrap());
        let ea: Vec<String> = pa.escalations.iter().map(|(_, x)| serde_json::to_string(x).unwrap()).collect();
        let eb: Vec<String> = pb.escalations.iter().map(|(_, x)| serde_json::to_string(x).unwrap()).collect();
        prop_assert_eq!(ea, eb);
    }

    #[test]
    fn evaluation_is_deterministic_and_ids_are_stable(e in event(), s in state()) {
        let m = matrix();
        let d1 = m.evaluate(&e, &s);
        let d2 = m.evaluate(&e, &s);
        prop_assert_eq!(&d1, &d2);
        let p1 = handoff::escalation::plan(m, &e, &d1, 5, false);
        let p2 = handoff::escalation::plan(m, &e, &d2, 99, false);
        prop_assert_eq!(p1.verdict.escalation_ids.clone(), p2.verdict.escalation_ids.clone());
        let mut ids = p1.verdict.escalation_ids.clone();
        ids.sort();
        ids.dedup();
        prop_assert_eq!(ids.len(), p1.escalations.len(), "one distinct id per role");
        prop_assert_eq!(p1.escalations.len(), d1.roles.len());
    }

    #[test]
    fn redacted_roles_never_see_email_addresses(user in "[a-z]{1,8}", domain in "[a-z]{2,8}") {
        let m = matrix();
        let mut e = common::base_event();
        e.action_type = "trade.execute".into();
        let addr = format!("{user}@{domain}.com");
        e.request = format!("send the fill to {addr} now");
        e.attributes.insert("anomaly".into(), "flash_crash".into());
        let d = m.evaluate(&e, &SessionState::default());
        let p = handoff::escalation::plan(m, &e, &d, 1, false);
        for (_, esc) in &p.escalations {
            let json = serde_json::to_string(&esc.context).unwrap();
            let redacts = m.roles().iter().find(|r| r.name == esc.role).unwrap().redact.iter().any(|(n, _)| n == "email_address");
            prop_assert_eq!(!json.contains(&addr), redacts, "role {}", esc.role);
        }
    }
}

#[test]
fn escalation_ids_are_fixed_across_versions() {
    // A change of the id function would break duplicate detection across an upgrade.
    assert_eq!(
        handoff::escalation::escalation_id("act-1", "support"),
        handoff::escalation::escalation_id("act-1", "support")
    );
    assert_ne!(
        handoff::escalation::escalation_id("act-1", "support"),
        handoff::escalation::escalation_id("act-1", "compliance")
    );
    assert_ne!(
        handoff::escalation::escalation_id("act-1s", "upport"),
        handoff::escalation::escalation_id("act-1", "support")
    );
    assert_eq!(
        handoff::escalation::escalation_id("act-1", "support"),
        "esc-0449020c0844375c8efdbca6" // sha256(b"act-1\x1fsupport")[:12], computed with Python hashlib
    );
}
