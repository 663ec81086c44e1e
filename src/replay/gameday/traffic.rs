//! The drill's traffic: the synthetic fleet in the background, the scripted bursts, and
//! recorded events moved onto the drill's clock.

use super::scenario::{Burst, Scenario};
use crate::event::{ActionStatus, AgentAction, Customer};
use crate::sim::fleet::{Fleet, FleetConfig};

/// Every event of a drill, in time order: the background fleet, the bursts and the recorded
/// events (their gaps kept, moved to start with the drill), from `start_ms` on.
pub fn drill_events(
    scenario: &Scenario,
    start_ms: i64,
    recorded: Vec<AgentAction>,
) -> Vec<AgentAction> {
    let end_ms = start_ms + scenario.duration.as_millis() as i64;
    let mut events: Vec<AgentAction> = Vec::new();
    if scenario.background_rate > 0.0 {
        let step_ms = (1000.0 / scenario.background_rate).max(1.0) as i64;
        let mut fleet = Fleet::new(FleetConfig {
            seed: scenario.seed,
            start_ms,
            step_ms,
            trigger_boost: scenario.background_boost,
            ..Default::default()
        });
        loop {
            let e = fleet.next_event();
            if e.timestamp_ms >= end_ms {
                break;
            }
            events.push(e);
        }
    }
    for (bi, b) in scenario.bursts.iter().enumerate() {
        let at = start_ms + b.at.as_millis() as i64;
        let gap = b.over.as_millis() as i64 / b.count.max(1) as i64;
        for i in 0..b.count {
            events.push(burst_event(b, bi, i, at + gap * i as i64));
        }
    }
    if let Some(first) = recorded.iter().map(|e| e.timestamp_ms).min() {
        for mut e in recorded {
            e.timestamp_ms = start_ms + (e.timestamp_ms - first);
            if e.timestamp_ms < end_ms {
                events.push(e);
            }
        }
    }
    events.sort_by_key(|e| e.timestamp_ms);
    events
}

fn burst_event(b: &Burst, bi: usize, i: usize, at_ms: i64) -> AgentAction {
    let session = i % b.sessions.max(1);
    AgentAction {
        action_id: format!("drill-{bi}-{i}"),
        session_id: format!("drill-{bi}-s{session}"),
        agent_id: format!("drill-agent-{bi}"),
        timestamp_ms: at_ms,
        action_type: b.action_type.clone(),
        confidence: Some(b.confidence),
        request: b.request.clone(),
        summary: format!("{} ({} of {})", b.name, i + 1, b.count),
        output: b.output.clone(),
        template_id: None,
        options: b.options.clone(),
        status: ActionStatus::Proposed,
        error: None,
        amount: b.amount,
        currency: b.amount.map(|_| "EUR".to_string()),
        customer: b.customer_tier.map(|tier| Customer {
            id: format!("cust-{bi}-{session}"),
            tier,
            prior_complaints: 0,
        }),
        reversible: b.reversible,
        affects_others: false,
        user_message: b.user_message.clone(),
        attributes: b.attributes.clone(),
        tool_call: None,
    }
}
