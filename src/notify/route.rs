//! What is announced, and to whom: a [`Notice`] (an escalation, or a digest a role's rate
//! limit folded escalations into) and the part of it a receiver's `roles` and `tiers` take.
//! Pure.

use crate::config::notify::Receiver;
use crate::event::{Digest, Escalation, Tier};
use std::sync::Arc;

/// One record of a role topic worth announcing.
#[derive(Debug, Clone, PartialEq)]
pub enum Notice {
    /// One hand-over (`handoff.kind = escalation`).
    Escalation(Box<Escalation>),
    /// Escalations folded by a rate limit (`handoff.kind = digest`).
    Digest(Box<Digest>),
    /// An escalation nobody acknowledged yet, with this long (ms) left before its deadline
    /// (`[notify.reminders]`): to the same receivers, once.
    Reminder(Box<Escalation>, i64),
}

/// The suffix of a reminder's notification id (after the escalation's id).
pub const REMINDER_SUFFIX: &str = ".reminder";

impl Notice {
    /// The notification id: the escalation's or the digest's id (`webhook-id`, ledger key).
    pub fn id(&self) -> String {
        match self {
            Notice::Escalation(x) => x.escalation_id.clone(),
            Notice::Digest(d) => d.digest_id.clone(),
            Notice::Reminder(x, _) => format!("{}{REMINDER_SUFFIX}", x.escalation_id),
        }
    }

    /// `escalation` or `digest` (the record kind).
    pub fn kind(&self) -> &'static str {
        match self {
            Notice::Escalation(_) => "escalation",
            Notice::Digest(_) => "digest",
            Notice::Reminder(..) => "reminder",
        }
    }

    /// The role it is for.
    pub fn role(&self) -> &str {
        match self {
            Notice::Escalation(x) | Notice::Reminder(x, _) => &x.role,
            Notice::Digest(d) => &d.target,
        }
    }

    /// The escalations it announces (a digest's items without an id are not counted).
    pub fn escalation_ids(&self) -> Vec<String> {
        match self {
            Notice::Escalation(x) => vec![x.escalation_id.clone()],
            // Open while nobody acknowledged the escalation ([`IsOpen`] of the suffixed id).
            Notice::Reminder(..) => vec![self.id()],
            Notice::Digest(d) => d
                .items
                .iter()
                .filter_map(|i| i.escalation_id.clone())
                .collect(),
        }
    }
}

/// A receiver's routing: the roles and tiers it takes (empty: all).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Route {
    /// Roles taken; empty: every role.
    pub roles: Vec<String>,
    /// Tiers taken; empty: both.
    pub tiers: Vec<Tier>,
}

impl From<&Receiver> for Route {
    fn from(r: &Receiver) -> Self {
        Route {
            roles: r.roles.clone(),
            tiers: r.tiers.clone(),
        }
    }
}

impl Route {
    fn takes_role(&self, role: &str) -> bool {
        self.roles.is_empty() || self.roles.iter().any(|r| r == role)
    }

    fn takes_tier(&self, tier: Option<Tier>) -> bool {
        self.tiers.is_empty() || tier.is_some_and(|t| self.tiers.contains(&t))
    }

    /// The part of `notice` this route takes: an escalation whole or not at all; a digest cut
    /// to the items of the route's tiers (`None` when no item is left).
    pub fn cut(&self, notice: &Notice) -> Option<Notice> {
        if !self.takes_role(notice.role()) {
            return None;
        }
        match notice {
            Notice::Escalation(x) | Notice::Reminder(x, _) => {
                self.takes_tier(Some(x.tier)).then(|| notice.clone())
            }
            Notice::Digest(d) => {
                if self.tiers.is_empty() {
                    return Some(notice.clone());
                }
                let items: Vec<_> = d
                    .items
                    .iter()
                    .filter(|i| self.takes_tier(i.tier))
                    .cloned()
                    .collect();
                (!items.is_empty()).then(|| {
                    Notice::Digest(Box::new(Digest {
                        items,
                        ..(**d).clone()
                    }))
                })
            }
        }
    }

    /// [`Route::cut`], sharing `notice` when it is taken whole.
    pub fn take(&self, notice: &Arc<Notice>) -> Option<Arc<Notice>> {
        let whole = match &**notice {
            Notice::Escalation(_) | Notice::Reminder(..) => true,
            Notice::Digest(d) => {
                self.tiers.is_empty() || d.items.iter().all(|i| self.takes_tier(i.tier))
            }
        };
        if whole {
            (self.takes_role(notice.role()) && self.cut(notice).is_some()).then(|| notice.clone())
        } else {
            self.cut(notice).map(Arc::new)
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::event::{ContextPackage, DigestItem, DigestReason, FlagOut, Level, RequiredAction};

    /// An escalation to `role` at `tier` with id `id`.
    pub(crate) fn escalation(id: &str, role: &str, tier: Tier) -> Escalation {
        Escalation {
            escalation_id: id.into(),
            action_id: "act-1".into(),
            session_id: "sess-1".into(),
            agent_id: "agent-1".into(),
            action_type: "refund.issue".into(),
            role: role.into(),
            tier,
            level: Level::AskFirst,
            required_action: RequiredAction::Approve,
            created_at_ms: 1_798_761_600_000,
            deadline_ms: 1_798_765_200_000,
            rule_version: "rv-1".into(),
            sequence: 0,
            drill: false,
            context: ContextPackage {
                view: role.into(),
                headline: "ask_first: refund.issue of 500 EUR <low confidence>".into(),
                request: None,
                summary: None,
                output: None,
                user_message: None,
                confidence: Some(0.4),
                flags: vec![FlagOut {
                    trigger: "low_confidence".into(),
                    detail: "confidence 0.40 < 0.60 & falling".into(),
                }],
                options: vec![],
                error: None,
                amount: Some(500.0),
                currency: Some("EUR".into()),
                customer: None,
                retention_risk: false,
                attributes: Default::default(),
                event_timestamp_ms: 1_798_761_600_000,
                tool_call: None,
            },
            history: vec![],
            grouped_action_ids: vec![],
        }
    }

    /// A digest for `role` with one rate-limited item per tier given.
    pub(crate) fn digest(id: &str, role: &str, tiers: &[Tier]) -> Digest {
        Digest {
            digest_id: id.into(),
            target: role.into(),
            first_at_ms: 1_798_761_600_000,
            sent_at_ms: 1_798_761_660_000,
            rule_version: "rv-1".into(),
            drill: false,
            items: tiers
                .iter()
                .enumerate()
                .map(|(i, t)| DigestItem {
                    reason: DigestReason::RateLimited,
                    escalation_id: Some(format!("esc-{id}-{i}")),
                    action_id: format!("act-{i}"),
                    session_id: format!("sess-{i}"),
                    agent_id: "agent-1".into(),
                    action_type: "refund.issue".into(),
                    level: Level::AskFirst,
                    tier: Some(*t),
                    headline: format!("item {i}"),
                    triggers: vec!["low_confidence".into()],
                    created_at_ms: 1_798_761_600_000 + i as i64,
                    deadline_ms: Some(1_798_765_200_000),
                })
                .collect(),
        }
    }

    fn route(roles: &[&str], tiers: &[Tier]) -> Route {
        Route {
            roles: roles.iter().map(|r| r.to_string()).collect(),
            tiers: tiers.to_vec(),
        }
    }

    #[test]
    fn escalations_go_where_role_and_tier_match() {
        use Tier::{Immediate as I, Warm as W};
        type Row<'a> = (&'a [&'a str], &'a [Tier], &'a str, Tier, bool);
        let table: &[Row<'_>] = &[
            (&[], &[], "support", W, true),
            (&["support"], &[], "support", I, true),
            (&["support"], &[], "trader", W, false),
            (&[], &[W], "support", W, true),
            (&[], &[W], "support", I, false),
            (&["support", "trader"], &[I], "trader", I, true),
            (&["support"], &[W, I], "support", I, true),
        ];
        for (roles, tiers, role, tier, taken) in table {
            let n = Notice::Escalation(Box::new(escalation("esc-1", role, *tier)));
            let got = route(roles, tiers).cut(&n);
            assert_eq!(
                got.is_some(),
                *taken,
                "{roles:?} {tiers:?} ← {role} {tier:?}"
            );
            if let Some(g) = got {
                assert_eq!(g, n, "an escalation is taken whole");
            }
        }
    }

    #[test]
    fn a_digest_is_cut_to_the_items_of_the_route_s_tiers() {
        use Tier::{Immediate as I, Warm as W};
        let d = Notice::Digest(Box::new(digest("d1", "support", &[W, I, W])));
        assert_eq!(route(&[], &[]).cut(&d), Some(d.clone()));
        assert_eq!(route(&["trader"], &[]).cut(&d), None);
        let Some(Notice::Digest(warm)) = route(&[], &[W]).cut(&d) else {
            panic!("warm items are taken")
        };
        assert_eq!(warm.items.len(), 2);
        assert_eq!(warm.digest_id, "d1");
        let immediate = route(&["support"], &[I]).cut(&d).unwrap();
        assert_eq!(immediate.escalation_ids(), vec!["esc-d1-1".to_string()]);
        let only_warm = Notice::Digest(Box::new(digest("d2", "support", &[W])));
        assert_eq!(route(&[], &[I]).cut(&only_warm), None);
        let shared = Arc::new(d.clone());
        let part = route(&[], &[W]).take(&shared).unwrap();
        assert!(!Arc::ptr_eq(&part, &shared));
        assert_eq!(part.escalation_ids().len(), 2);
        let whole = Arc::new(only_warm);
        assert!(Arc::ptr_eq(&route(&[], &[W]).take(&whole).unwrap(), &whole));
        assert!(route(&[], &[I]).take(&whole).is_none());
    }

    #[test]
    fn ids_kinds_and_roles_of_notices() {
        let x = Notice::Escalation(Box::new(escalation("esc-9", "trader", Tier::Warm)));
        assert_eq!(
            (x.id().as_str(), x.kind(), x.role()),
            ("esc-9", "escalation", "trader")
        );
        assert_eq!(x.escalation_ids(), vec!["esc-9".to_string()]);
        let d = Notice::Digest(Box::new(digest("dig-1", "support", &[Tier::Warm])));
        assert_eq!(
            (d.id().as_str(), d.kind(), d.role()),
            ("dig-1", "digest", "support")
        );
        let r = Notice::Reminder(Box::new(escalation("esc-9", "trader", Tier::Warm)), 300_000);
        assert_eq!(
            (r.id().as_str(), r.kind(), r.role()),
            ("esc-9.reminder", "reminder", "trader")
        );
        assert_eq!(r.escalation_ids(), vec!["esc-9.reminder".to_string()]);
        let immediate_only = Route {
            roles: vec![],
            tiers: vec![Tier::Immediate],
        };
        assert_eq!(
            immediate_only.cut(&r),
            None,
            "a warm reminder, like its escalation"
        );
    }
}
