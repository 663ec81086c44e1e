//! The hot path: deciding one event. One helper per trigger family, each taking the decision
//! being built as `&mut`; nothing here allocates beyond the flags and phrase hits it reports.

use super::spec::WithoutConfidence;
use super::{Decision, Detail, Flag, Matrix, Profile, RoleSet, SessionState, Trigger, TriggerSet};
use crate::event::{ActionStatus, AgentAction, Level, RequiredAction, Tier};

impl Matrix {
    /// Decides one event. Pure: the same event and session state always give the same
    /// decision. The session state after the event is in [`Decision::session`].
    pub fn evaluate(&self, event: &AgentAction, session: &SessionState) -> Decision {
        let profile = self.profiles.get(&event.action_type);
        let mut d = self.base_decision(event, session, profile);
        self.confidence_gate(&mut d, event, session, profile);
        self.phrase_triggers(&mut d, event);
        self.task_triggers(&mut d, event);
        self.customer_and_amount(&mut d, event, profile);
        self.action_traits(&mut d, event);
        self.session_and_markers(&mut d, event, profile);

        if d.flags.len() > 1 {
            d.flags.sort_by_key(|f| f.trigger);
        }
        d.required_action = required_action(&d);
        if d.required_action.is_some() {
            let at_level = self.level_quorum[d.level as usize];
            if at_level > d.quorum.approvals {
                d.quorum.approvals = at_level;
            }
        }
        d
    }

    /// The decision before any trigger: the action type's own level, and its approvers when
    /// that level needs a human.
    #[inline]
    fn base_decision(
        &self,
        event: &AgentAction,
        session: &SessionState,
        profile: &Profile,
    ) -> Decision {
        let mut d = Decision {
            level: Level::Execute,
            base_level: Level::Execute,
            triggers: TriggerSet::EMPTY,
            flags: Vec::new(),
            roles: RoleSet::default(),
            immediate: RoleSet::default(),
            required_action: None,
            quorum: super::Quorum::default(),
            retention_risk: false,
            session: SessionState {
                consecutive_low: 0,
                turns: session.turns.saturating_add(1),
                last_event_ms: event.timestamp_ms.max(session.last_event_ms),
            },
        };
        let base = match profile.level {
            Some(l) if event.template_id.is_some() => profile.templated.unwrap_or(l),
            Some(l) => l,
            None => self.outcomes[Trigger::UnknownAction as usize].level,
        };
        d.base_level = base;
        d.level = base;
        if profile.level.is_some() && base.needs_human() {
            // The action type itself needs approval: its approvers are always asked.
            d.roles.0 |= profile.approvers.0;
            d.quorum = profile.quorum;
            if self.approvals_immediate {
                d.immediate.0 |= profile.approvers.0;
            }
        }
        d
    }

    /// `low_confidence`, and the session streak it feeds.
    #[inline]
    fn confidence_gate(
        &self,
        d: &mut Decision,
        event: &AgentAction,
        session: &SessionState,
        profile: &Profile,
    ) {
        let below = match event.confidence {
            Some(c) => c < profile.threshold,
            None => self.without_confidence == WithoutConfidence::Below,
        };
        if below {
            d.session.consecutive_low = session.consecutive_low.saturating_add(1);
            self.fire(
                d,
                Trigger::LowConfidence,
                Detail::Confidence {
                    value: event.confidence,
                    threshold: profile.threshold,
                },
            );
        }
    }

    /// `policy_keyword` and `human_requested`: one scan.
    #[inline]
    fn phrase_triggers(&self, d: &mut Decision, event: &AgentAction) {
        if self.phrases.is_empty() {
            return;
        }
        let (policy, human) = self.phrases.scan([
            Some(&event.request),
            Some(&event.summary),
            event.output.as_deref(),
            event.user_message.as_deref(),
        ]);
        if !policy.is_empty() {
            self.fire(d, Trigger::PolicyKeyword, Detail::Phrases(policy));
            if event.customer.is_some() {
                d.roles.0 |= self.customer_roles.0;
                if self.outcomes[Trigger::PolicyKeyword as usize].tier == Tier::Immediate {
                    d.immediate.0 |= self.customer_roles.0;
                }
            }
        }
        if !human.is_empty() {
            self.fire(d, Trigger::HumanRequested, Detail::Phrases(human));
        }
    }

    /// `multiple_options` and `task_failure`.
    #[inline]
    fn task_triggers(&self, d: &mut Decision, event: &AgentAction) {
        let mo = &self.spec.triggers.multiple_options;
        if event.options.len() >= mo.min_options {
            self.fire(
                d,
                Trigger::MultipleOptions,
                Detail::Options(event.options.len()),
            );
        }
        if event.status == ActionStatus::Failed {
            self.fire(d, Trigger::TaskFailure, Detail::Failure);
        }
    }

    /// `high_value_customer` (with the retention risk) and `amount_limit`.
    #[inline]
    fn customer_and_amount(&self, d: &mut Decision, event: &AgentAction, profile: &Profile) {
        if let Some(c) = &event.customer {
            let hv = &self.spec.triggers.high_value_customer;
            if profile.customer_facing && hv.tiers.contains(&c.tier) {
                d.retention_risk = c.prior_complaints >= hv.retention_risk_complaints;
                self.fire(
                    d,
                    Trigger::HighValueCustomer,
                    Detail::Customer {
                        tier: c.tier,
                        complaints: c.prior_complaints,
                    },
                );
            }
        }
        if let Some(amount) = event.amount {
            if amount > profile.amount_limit {
                self.fire(
                    d,
                    Trigger::AmountLimit,
                    Detail::Amount {
                        amount,
                        limit: profile.amount_limit,
                    },
                );
            }
        }
    }

    /// `irreversible` and `affects_others`.
    #[inline]
    fn action_traits(&self, d: &mut Decision, event: &AgentAction) {
        if !event.reversible {
            self.fire(d, Trigger::Irreversible, Detail::None);
        }
        if event.affects_others {
            self.fire(d, Trigger::AffectsOthers, Detail::None);
        }
    }

    /// `consecutive_low_confidence` (the streak after this event), `anomaly` and
    /// `unknown_action`.
    #[inline]
    fn session_and_markers(&self, d: &mut Decision, event: &AgentAction, profile: &Profile) {
        let cl = &self.spec.triggers.consecutive_low_confidence;
        let streak = d.session.consecutive_low;
        if streak >= cl.turns {
            self.fire(
                d,
                Trigger::ConsecutiveLowConfidence,
                Detail::Streak {
                    turns: streak,
                    threshold: profile.threshold,
                },
            );
        }
        if let Some(v) = event.attributes.get(&self.spec.triggers.anomaly.attribute) {
            if is_set(v) {
                self.fire(d, Trigger::Anomaly, Detail::Anomaly);
            }
        }
        if profile.level.is_none() {
            self.fire(d, Trigger::UnknownAction, Detail::None);
        }
    }

    #[inline]
    fn fire(&self, d: &mut Decision, t: Trigger, detail: Detail) {
        let o = &self.outcomes[t as usize];
        if !o.enabled {
            return;
        }
        d.triggers.insert(t);
        d.flags.push(Flag { trigger: t, detail });
        d.level = d.level.max(o.level);
        d.roles.0 |= o.roles.0;
        if o.tier == Tier::Immediate {
            d.immediate.0 |= o.roles.0;
        }
        if o.quorum.approvals > 1 {
            d.quorum = d.quorum.join(o.quorum);
        }
    }
}

fn is_set(v: &str) -> bool {
    let v = v.trim();
    !(v.is_empty() || v.eq_ignore_ascii_case("none") || v.eq_ignore_ascii_case("false") || v == "0")
}

fn required_action(d: &Decision) -> Option<RequiredAction> {
    if d.roles.is_empty() {
        return None;
    }
    Some(match d.level {
        Level::HardStop => RequiredAction::Decide,
        Level::AskFirst if d.triggers.contains(Trigger::MultipleOptions) => RequiredAction::Choose,
        Level::AskFirst if d.triggers.contains(Trigger::TaskFailure) => {
            RequiredAction::Troubleshoot
        }
        Level::AskFirst => RequiredAction::Approve,
        Level::Execute | Level::ExecuteLog => RequiredAction::Review,
    })
}
