//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod kafka;

use handoff::event::{ActionStatus, AgentAction, Customer, CustomerTier};
use std::collections::BTreeMap;

/// A plain, confident, reversible research action that triggers nothing.
pub fn base_event() -> AgentAction {
    AgentAction {
        action_id: "act-1".into(),
        session_id: "sess-1".into(),
        agent_id: "agent-1".into(),
        timestamp_ms: 1_798_761_600_000,
        action_type: "research.search".into(),
        confidence: 0.95,
        request: "Find recent articles about battery recycling in Europe and summarise them."
            .into(),
        summary: "Searched twelve sources and wrote a short summary with links.".into(),
        output: Some("Battery recycling capacity in Europe doubled in two years.".into()),
        template_id: None,
        options: vec![],
        status: ActionStatus::Completed,
        error: None,
        amount: None,
        currency: None,
        customer: None,
        reversible: true,
        affects_others: false,
        user_message: None,
        attributes: BTreeMap::new(),
    }
}

pub fn customer(tier: CustomerTier, complaints: i32) -> Option<Customer> {
    Some(Customer {
        id: "cust-1".into(),
        tier,
        prior_complaints: complaints,
    })
}
