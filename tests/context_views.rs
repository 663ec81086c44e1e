//! Role views of the context package: a flash crash reaches trader, compliance and IT ops at
//! once, each with the view fit for the role.

mod common;

use handoff::event::{CustomerTier, Escalation, RequiredAction, Tier};
use handoff::matrix::{Matrix, SessionState};

fn flash_crash() -> Vec<Escalation> {
    let m = Matrix::default_matrix().unwrap();
    let mut e = common::base_event();
    e.action_type = "trade.execute".into();
    e.request =
        "Sell 5000 ACME now; confirm to desk@fund.example and debit account 12345678901.".into();
    e.summary = "Prepared a market sell order after a 9% drop in two minutes.".into();
    e.output = Some("SELL 5000 ACME MKT".into());
    e.options = vec!["sell now".into(), "halt and wait".into()];
    e.amount = Some(9_000.0);
    e.currency = Some("USD".into());
    e.customer = common::customer(CustomerTier::Vip, 0);
    e.user_message = Some("get me out".into());
    for (k, v) in [
        ("anomaly", "flash_crash"),
        ("symbol", "ACME"),
        ("price_change_pct", "-9.1"),
        ("system", "oms"),
        ("error_code", "E_CIRCUIT"),
        ("desk_notes", "internal"),
    ] {
        e.attributes.insert(k.into(), v.into());
    }
    let d = m.evaluate(&e, &SessionState::default());
    let p = handoff::escalation::plan(&m, &e, &d, e.timestamp_ms, false);
    p.escalations.into_iter().map(|(_, x)| x).collect()
}

fn role<'a>(escs: &'a [Escalation], name: &str) -> &'a Escalation {
    escs.iter()
        .find(|e| e.role == name)
        .unwrap_or_else(|| panic!("no escalation for {name}"))
}

#[test]
fn a_flash_crash_reaches_three_roles_at_once_with_immediate_deadlines() {
    let escs = flash_crash();
    let roles: Vec<&str> = escs.iter().map(|e| e.role.as_str()).collect();
    assert_eq!(roles, ["compliance", "it_ops", "owner", "trader"]);
    for name in ["compliance", "it_ops", "trader"] {
        let e = role(&escs, name);
        assert_eq!(e.tier, Tier::Immediate, "{name}");
        assert_eq!(e.required_action, RequiredAction::Decide, "{name}");
        assert_eq!(
            e.deadline_ms - e.created_at_ms,
            5 * 60 * 1000,
            "{name}: 5 minutes"
        );
    }
    // The owner is asked to choose between the options, at its own (warm) tier.
    assert_eq!(role(&escs, "owner").tier, Tier::Warm);
    assert_eq!(
        role(&escs, "owner").deadline_ms - role(&escs, "owner").created_at_ms,
        3_600_000
    );
}

#[test]
fn traders_see_market_data_and_suggested_actions_only() {
    let escs = flash_crash();
    let t = &role(&escs, "trader").context;
    assert_eq!(t.view, "market");
    let keys: Vec<&str> = t.attributes.keys().map(String::as_str).collect();
    assert_eq!(keys, ["anomaly", "price_change_pct", "symbol"]);
    assert_eq!(t.options, ["sell now", "halt and wait"]);
    assert!(t.customer.is_none() && t.user_message.is_none());
    let req = t.request.as_deref().unwrap();
    assert!(
        !req.contains("desk@fund.example") && !req.contains("12345678901"),
        "{req}"
    );
    assert!(req.contains("[email_address redacted]") && req.contains("[account_number redacted]"));
}

#[test]
fn compliance_sees_the_full_audit_trail() {
    let escs = flash_crash();
    let c = &role(&escs, "compliance").context;
    assert_eq!(c.view, "audit");
    assert_eq!(c.attributes.len(), 6, "every attribute");
    assert!(c.request.as_deref().unwrap().contains("12345678901"));
    assert!(c.customer.is_some() && c.user_message.is_some() && c.output.is_some());
    let triggers: Vec<&str> = c.flags.iter().map(|f| f.trigger.as_str()).collect();
    assert_eq!(triggers, ["multiple_options", "anomaly"]);
    assert!(c.flags[1].detail.contains("flash_crash"));
    assert!(!role(&escs, "compliance").rule_version.is_empty());
}

#[test]
fn it_ops_sees_system_diagnostics_without_business_content() {
    let escs = flash_crash();
    let i = &role(&escs, "it_ops").context;
    assert_eq!(i.view, "diagnostics");
    let keys: Vec<&str> = i.attributes.keys().map(String::as_str).collect();
    assert_eq!(keys, ["anomaly", "error_code", "system"]);
    assert!(
        i.output.is_none() && i.customer.is_none() && i.amount.is_none() && i.currency.is_none()
    );
    assert!(i.summary.is_some());
}
