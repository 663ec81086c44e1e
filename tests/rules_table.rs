//! Table-driven cases for every trigger of the shipped default matrix, alone and combined.

mod common;

use common::{base_event, customer};
use handoff::event::{ActionStatus, AgentAction, CustomerTier, Level, RequiredAction, Tier};
use handoff::matrix::{Matrix, SessionState};

struct Case {
    name: &'static str,
    event: fn(&mut AgentAction),
    level: Level,
    triggers: &'static [&'static str],
    roles: &'static [&'static str],
    tier: Option<Tier>,
}

fn cases() -> Vec<Case> {
    use Level::*;
    vec![
        Case {
            name: "research runs alone",
            event: |_| {},
            level: Execute,
            triggers: &[],
            roles: &[],
            tier: None,
        },
        Case {
            name: "notes run alone",
            event: |e| e.action_type = "notes.write".into(),
            level: Execute,
            triggers: &[],
            roles: &[],
            tier: None,
        },
        Case {
            name: "templated faq runs alone",
            event: |e| {
                e.action_type = "faq.answer".into();
                e.template_id = Some("tpl-1".into());
            },
            level: Execute,
            triggers: &[],
            roles: &[],
            tier: None,
        },
        Case {
            name: "custom faq is logged",
            event: |e| e.action_type = "faq.answer".into(),
            level: ExecuteLog,
            triggers: &[],
            roles: &[],
            tier: None,
        },
        Case {
            name: "templated email is logged",
            event: |e| {
                e.action_type = "email.send".into();
                e.template_id = Some("tpl-2".into());
            },
            level: ExecuteLog,
            triggers: &[],
            roles: &[],
            tier: None,
        },
        Case {
            name: "custom email asks first",
            event: |e| e.action_type = "email.send".into(),
            level: AskFirst,
            triggers: &[],
            roles: &["owner"],
            tier: Some(Tier::Warm),
        },
        Case {
            name: "trade within limits is logged",
            event: |e| {
                e.action_type = "trade.execute".into();
                e.amount = Some(9_999.0);
                e.currency = Some("USD".into());
            },
            level: ExecuteLog,
            triggers: &[],
            roles: &[],
            tier: None,
        },
        Case {
            name: "deploy to staging is logged",
            event: |e| e.action_type = "deploy.staging".into(),
            level: ExecuteLog,
            triggers: &[],
            roles: &[],
            tier: None,
        },
        Case {
            name: "production database access asks first",
            event: |e| e.action_type = "database.production.query".into(),
            level: AskFirst,
            triggers: &[],
            roles: &["it_ops"],
            tier: Some(Tier::Warm),
        },
        Case {
            name: "refund asks first",
            event: |e| e.action_type = "refund.issue".into(),
            level: AskFirst,
            triggers: &[],
            roles: &["support"],
            tier: Some(Tier::Warm),
        },
        // low_confidence: default gate 0.70, e-mail gate 0.80.
        Case {
            name: "confidence just below the default gate",
            event: |e| e.confidence = Some(0.69),
            level: AskFirst,
            triggers: &["low_confidence"],
            roles: &["owner"],
            tier: Some(Tier::Warm),
        },
        Case {
            name: "confidence at the default gate passes",
            event: |e| e.confidence = Some(0.70),
            level: Execute,
            triggers: &[],
            roles: &[],
            tier: None,
        },
        Case {
            name: "email has a stricter gate",
            event: |e| {
                e.action_type = "email.send".into();
                e.template_id = Some("t".into());
                e.confidence = Some(0.75);
            },
            level: AskFirst,
            triggers: &["low_confidence"],
            roles: &["owner"],
            tier: Some(Tier::Warm),
        },
        // policy_keyword.
        Case {
            name: "policy keyword in the request",
            event: |e| e.request = "Draft a reply to the customer threatening LEGAL ACTION.".into(),
            level: HardStop,
            triggers: &["policy_keyword"],
            roles: &["compliance"],
            tier: Some(Tier::Immediate),
        },
        Case {
            name: "policy keyword with a customer also goes to support",
            event: |e| {
                e.user_message = Some("This is fraud.".into());
                e.customer = customer(CustomerTier::Standard, 0);
            },
            level: HardStop,
            triggers: &["policy_keyword"],
            roles: &["compliance", "support"],
            tier: Some(Tier::Immediate),
        },
        Case {
            name: "keyword inside another word does not count",
            event: |e| {
                e.request =
                    "Summarise the defrauded-investor literature and lawsuits-free zones".into()
            },
            level: Execute,
            triggers: &[],
            roles: &[],
            tier: None,
        },
        Case {
            name: "keyword in the summary is not scanned",
            event: |e| e.summary = "Checked for fraud.".into(),
            level: Execute,
            triggers: &[],
            roles: &[],
            tier: None,
        },
        // multiple_options.
        Case {
            name: "two options ask the owner to choose",
            event: |e| e.options = vec!["a".into(), "b".into()],
            level: AskFirst,
            triggers: &["multiple_options"],
            roles: &["owner"],
            tier: Some(Tier::Warm),
        },
        Case {
            name: "one option is no choice",
            event: |e| e.options = vec!["a".into()],
            level: Execute,
            triggers: &[],
            roles: &[],
            tier: None,
        },
        // task_failure.
        Case {
            name: "failed task goes to it_ops",
            event: |e| {
                e.status = ActionStatus::Failed;
                e.error = Some("timeout".into());
            },
            level: AskFirst,
            triggers: &["task_failure"],
            roles: &["it_ops"],
            tier: Some(Tier::Warm),
        },
        // high_value_customer.
        Case {
            name: "vip on a customer-facing action",
            event: |e| {
                e.action_type = "email.send".into();
                e.template_id = Some("t".into());
                e.customer = customer(CustomerTier::Vip, 0);
            },
            level: AskFirst,
            triggers: &["high_value_customer"],
            roles: &["support"],
            tier: Some(Tier::Warm),
        },
        Case {
            name: "premium refund",
            event: |e| {
                e.action_type = "refund.issue".into();
                e.customer = customer(CustomerTier::Premium, 4);
            },
            level: AskFirst,
            triggers: &["high_value_customer"],
            roles: &["support"],
            tier: Some(Tier::Warm),
        },
        Case {
            name: "vip on an internal action is not flagged",
            event: |e| e.customer = customer(CustomerTier::Vip, 0),
            level: Execute,
            triggers: &[],
            roles: &[],
            tier: None,
        },
        Case {
            name: "standard customer email is not flagged",
            event: |e| {
                e.action_type = "email.send".into();
                e.template_id = Some("t".into());
                e.customer = customer(CustomerTier::Standard, 5);
            },
            level: ExecuteLog,
            triggers: &[],
            roles: &[],
            tier: None,
        },
        // amount_limit.
        Case {
            name: "trade above the limit",
            event: |e| {
                e.action_type = "trade.execute".into();
                e.amount = Some(10_000.01);
                e.currency = Some("USD".into());
            },
            level: AskFirst,
            triggers: &["amount_limit"],
            roles: &["compliance"],
            tier: Some(Tier::Warm),
        },
        Case {
            name: "exactly the limit passes",
            event: |e| {
                e.action_type = "trade.execute".into();
                e.amount = Some(10_000.0);
            },
            level: ExecuteLog,
            triggers: &[],
            roles: &[],
            tier: None,
        },
        // human_requested.
        Case {
            name: "user asks for a person",
            event: |e| e.user_message = Some("Can I please SPEAK TO A PERSON?".into()),
            level: AskFirst,
            triggers: &["human_requested"],
            roles: &["support"],
            tier: Some(Tier::Immediate),
        },
        Case {
            name: "agent offering a person is not a request",
            event: |e| e.output = Some("I can connect you with a real agent.".into()),
            level: Execute,
            triggers: &[],
            roles: &[],
            tier: None,
        },
        // irreversible / affects_others raise execute to execute_log, no hand-over.
        Case {
            name: "irreversible research is logged",
            event: |e| e.reversible = false,
            level: ExecuteLog,
            triggers: &["irreversible"],
            roles: &[],
            tier: None,
        },
        Case {
            name: "affecting others is logged",
            event: |e| e.affects_others = true,
            level: ExecuteLog,
            triggers: &["affects_others"],
            roles: &[],
            tier: None,
        },
        Case {
            name: "irreversible delete stays ask_first",
            event: |e| {
                e.action_type = "data.delete".into();
                e.reversible = false;
            },
            level: AskFirst,
            triggers: &["irreversible"],
            roles: &["owner"],
            tier: Some(Tier::Warm),
        },
        // anomaly.
        Case {
            name: "flash crash fans out to three roles",
            event: |e| {
                e.action_type = "trade.execute".into();
                e.attributes.insert("anomaly".into(), "flash_crash".into());
            },
            level: HardStop,
            triggers: &["anomaly"],
            roles: &["compliance", "it_ops", "trader"],
            tier: Some(Tier::Immediate),
        },
        Case {
            name: "anomaly=none is no anomaly",
            event: |e| {
                e.attributes.insert("anomaly".into(), "none".into());
            },
            level: Execute,
            triggers: &[],
            roles: &[],
            tier: None,
        },
        // unknown_action fails closed.
        Case {
            name: "unknown action asks first",
            event: |e| e.action_type = "rocket.launch".into(),
            level: AskFirst,
            triggers: &["unknown_action"],
            roles: &["owner"],
            tier: Some(Tier::Warm),
        },
        Case {
            name: "unknown action in a known family asks first",
            event: |e| e.action_type = "email.recall".into(),
            level: AskFirst,
            triggers: &["unknown_action"],
            roles: &["owner"],
            tier: Some(Tier::Warm),
        },
        // Combinations: strictest level wins, every reason kept, tiers per role.
        Case {
            name: "keyword beats low confidence",
            event: |e| {
                e.confidence = Some(0.5);
                e.request = "Prepare documents for the lawsuit".into();
            },
            level: HardStop,
            triggers: &["low_confidence", "policy_keyword"],
            roles: &["compliance", "owner"],
            tier: Some(Tier::Immediate),
        },
        Case {
            name: "vip, big refund, asks for a human",
            event: |e| {
                e.action_type = "refund.issue".into();
                e.amount = Some(25_000.0);
                e.currency = Some("EUR".into());
                e.customer = customer(CustomerTier::Vip, 3);
                e.user_message = Some("I want to talk to a human".into());
            },
            level: AskFirst,
            triggers: &["high_value_customer", "amount_limit", "human_requested"],
            roles: &["compliance", "support"],
            tier: Some(Tier::Immediate),
        },
        Case {
            name: "failed irreversible trade with options",
            event: |e| {
                e.action_type = "trade.execute".into();
                e.status = ActionStatus::Failed;
                e.reversible = false;
                e.options = vec!["retry".into(), "cancel".into()];
            },
            level: AskFirst,
            triggers: &["multiple_options", "task_failure", "irreversible"],
            roles: &["it_ops", "owner"],
            tier: Some(Tier::Warm),
        },
        Case {
            name: "anomaly with a keyword and unknown action",
            event: |e| {
                e.action_type = "trade.unwind".into();
                e.request = "possible market manipulation".into();
                e.attributes.insert("anomaly".into(), "flash_crash".into());
            },
            level: HardStop,
            triggers: &["policy_keyword", "anomaly", "unknown_action"],
            roles: &["compliance", "it_ops", "owner", "trader"],
            tier: Some(Tier::Immediate),
        },
    ]
}

#[test]
fn every_case_of_the_default_matrix() {
    let m = Matrix::default_matrix().unwrap();
    let mut failures = Vec::new();
    for case in cases() {
        let mut e = base_event();
        (case.event)(&mut e);
        let d = m.evaluate(&e, &SessionState::default());
        let triggers: Vec<&str> = d.triggers.iter().map(|t| t.as_str()).collect();
        let roles = m.role_names(d.roles);
        let want_triggers: Vec<&str> = case.triggers.to_vec();
        let want_roles: Vec<String> = case.roles.iter().map(|s| s.to_string()).collect();
        if d.level != case.level
            || triggers != want_triggers
            || roles != want_roles
            || d.tier() != case.tier
        {
            failures.push(format!(
                "{}: got {:?} {:?} {:?} {:?}, want {:?} {:?} {:?} {:?}",
                case.name,
                d.level,
                triggers,
                roles,
                d.tier(),
                case.level,
                want_triggers,
                want_roles,
                case.tier
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} case(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Session cases: (name, turns already below the gate, confidence now, expected triggers).
const STREAK_CASES: &[(&str, u32, f64, &[&str])] = &[
    ("first low turn", 0, 0.5, &["low_confidence"]),
    (
        "second low turn in a row",
        1,
        0.5,
        &["low_confidence", "consecutive_low_confidence"],
    ),
    (
        "fifth low turn in a row",
        4,
        0.69,
        &["low_confidence", "consecutive_low_confidence"],
    ),
    ("confident turn after a streak", 3, 0.9, &[]),
];

#[test]
fn streak_cases() {
    let m = Matrix::default_matrix().unwrap();
    for (name, prior, confidence, want) in STREAK_CASES {
        let mut e = base_event();
        e.confidence = Some(*confidence);
        let prior = SessionState {
            consecutive_low: *prior,
            turns: 10,
            last_event_ms: 0,
        };
        let d = m.evaluate(&e, &prior);
        assert_eq!(d.triggers.names(), want.to_vec(), "{name}");
    }
}

#[test]
fn every_trigger_is_covered_by_a_case() {
    let covered: std::collections::BTreeSet<&str> = cases()
        .iter()
        .flat_map(|c| c.triggers.iter().copied())
        .chain(STREAK_CASES.iter().flat_map(|c| c.3.iter().copied()))
        .collect();
    for t in handoff::matrix::Trigger::ALL {
        assert!(covered.contains(t.as_str()), "no case covers {t}");
    }
}

#[test]
fn two_low_confidence_turns_in_a_row_reach_support_immediately() {
    let m = Matrix::default_matrix().unwrap();
    let mut e = base_event();
    e.confidence = Some(0.5);
    let first = m.evaluate(&e, &SessionState::default());
    assert_eq!(first.session.consecutive_low, 1);
    assert!(!first
        .triggers
        .contains(handoff::matrix::Trigger::ConsecutiveLowConfidence));
    let second = m.evaluate(&e, &first.session);
    assert_eq!(
        second.triggers.names(),
        vec!["low_confidence", "consecutive_low_confidence"]
    );
    assert_eq!(m.role_names(second.roles), vec!["owner", "support"]);
    let support = m.roles().iter().position(|r| r.name == "support").unwrap();
    let owner = m.roles().iter().position(|r| r.name == "owner").unwrap();
    assert_eq!(second.role_tier(support), Tier::Immediate);
    assert_eq!(second.role_tier(owner), Tier::Warm);
    // A confident turn breaks the streak.
    e.confidence = Some(0.9);
    let third = m.evaluate(&e, &second.session);
    assert_eq!(third.session.consecutive_low, 0);
    assert!(third.triggers.is_empty());
    assert_eq!(third.session.turns, 3);
}

#[test]
fn required_action_follows_level_and_reasons() {
    let m = Matrix::default_matrix().unwrap();
    let s = SessionState::default();
    let mut e = base_event();
    e.options = vec!["a".into(), "b".into()];
    assert_eq!(
        m.evaluate(&e, &s).required_action,
        Some(RequiredAction::Choose)
    );
    let mut e = base_event();
    e.status = ActionStatus::Failed;
    assert_eq!(
        m.evaluate(&e, &s).required_action,
        Some(RequiredAction::Troubleshoot)
    );
    let mut e = base_event();
    e.confidence = Some(0.1);
    assert_eq!(
        m.evaluate(&e, &s).required_action,
        Some(RequiredAction::Approve)
    );
    e.request = "chest pain".into();
    assert_eq!(
        m.evaluate(&e, &s).required_action,
        Some(RequiredAction::Decide)
    );
    assert_eq!(m.evaluate(&base_event(), &s).required_action, None);
}

#[test]
fn retention_risk_is_flagged_at_three_complaints() {
    let m = Matrix::default_matrix().unwrap();
    let mut e = base_event();
    e.action_type = "refund.issue".into();
    e.customer = customer(CustomerTier::Vip, 2);
    assert!(!m.evaluate(&e, &SessionState::default()).retention_risk);
    e.customer = customer(CustomerTier::Vip, 3);
    let d = m.evaluate(&e, &SessionState::default());
    assert!(d.retention_risk);
    let text = m.describe(&d.flags[0], &e);
    assert!(text.contains("retention risk"), "{text}");
}
