//! Validation and normalisation of a matrix that has been read: one function per section,
//! called in the order the problems are reported.

use super::{
    default_outcome, FatigueSpec, LevelRule, MatrixSpec, OnTimeout, RoleSpec, TriggersSpec,
    MAX_ROLES,
};
use crate::event::Level;
use crate::matrix::pattern::Pattern;
use crate::matrix::trigger::Trigger;
use crate::matrix::Quorum;
use crate::problems::Problems;
use std::collections::{BTreeMap, BTreeSet};

impl MatrixSpec {
    /// Checks what needs the whole matrix and sorts its lists. `approver_refs` are the roles
    /// the `[[levels]]` entries name, with their paths (see [`check_levels`]).
    pub(super) fn validate_and_normalise(
        &mut self,
        mut approver_refs: Vec<(String, String)>,
        problems: &mut Problems,
    ) {
        self.normalise_approvals(&mut approver_refs, problems);
        check_gates(&mut self.triggers, problems);
        normalise_scanning(&mut self.triggers, problems);
        check_trigger_settings(&mut self.triggers, problems);
        self.check_customer_roles(problems);
        self.resolve_outcomes(&approver_refs, problems);
        self.check_tiers(problems);
        self.normalise_roles(problems);
        self.check_rate_limits(problems);
        check_fatigue(&self.fatigue, problems);
        self.check_chains(problems);
        self.check_redaction(problems);
    }

    /// Sorts the levels and the default approvers, and adds the approvers to `approver_refs`.
    fn normalise_approvals(
        &mut self,
        approver_refs: &mut Vec<(String, String)>,
        problems: &mut Problems,
    ) {
        self.levels.sort_by(|a, b| a.pattern.cmp(&b.pattern));
        self.approvals.roles.sort();
        self.approvals.roles.dedup();
        for r in &self.approvals.roles {
            approver_refs.push(("approvals.roles".into(), r.clone()));
        }
        for (level, n) in &self.approvals.per_level {
            let q = Quorum {
                approvals: *n,
                distinct_roles: false,
            };
            check_quorum(
                q,
                usize::MAX,
                &format!("approvals.per_level.{}", level.as_str()),
                problems,
            );
        }
        for rule in self.levels.iter().filter(|r| r.roles.is_none()) {
            let at = format!(
                "levels (pattern {:?}, approvers from approvals.roles)",
                rule.pattern
            );
            let q = rule.quorum();
            if q.distinct_roles && self.approvals.roles.len() < usize::from(q.approvals) {
                check_quorum(q, self.approvals.roles.len(), &at, problems);
            }
        }
        if self.approvals.roles.is_empty() {
            problems.push(
                "approvals.roles",
                "must name at least one role: action types at ask_first or hard_stop need an \
                 approver",
            );
        }
    }

    /// `policy_keyword.customer_roles`: sorted, and each defined (when any role is).
    fn check_customer_roles(&mut self, problems: &mut Problems) {
        let t = &mut self.triggers;
        t.policy_keyword.customer_roles.sort();
        t.policy_keyword.customer_roles.dedup();
        if !self.roles.is_empty() {
            for r in &self.triggers.policy_keyword.customer_roles {
                self.check_role(r, "triggers.policy_keyword.customer_roles", problems);
            }
        }
    }

    /// Outcomes: defaults merged, roles defined, levels sensible. Roles named while no role is
    /// defined at all are reported once, together.
    fn resolve_outcomes(&mut self, approver_refs: &[(String, String)], problems: &mut Problems) {
        let mut wanted_roles = BTreeSet::new();
        for (path, r) in approver_refs {
            if self.roles.is_empty() {
                wanted_roles.insert(r.clone());
            } else {
                self.check_role(r, path, problems);
            }
        }
        for trig in Trigger::ALL {
            self.resolve_outcome(trig, &mut wanted_roles, problems);
        }
        if !wanted_roles.is_empty() {
            problems.push(
                "roles",
                format!(
                    "no roles are defined, but the triggers hand over to {}: define each under \
                     [roles.NAME]",
                    wanted_roles.into_iter().collect::<Vec<_>>().join(", ")
                ),
            );
        }
    }

    /// One trigger's outcome: its defaults overridden by the file, then checked.
    fn resolve_outcome(
        &mut self,
        trig: Trigger,
        wanted_roles: &mut BTreeSet<String>,
        problems: &mut Problems,
    ) {
        let (raw, enabled) = self.raw_outcome(trig);
        let raw = raw.clone();
        let mut out = default_outcome(trig);
        if let Some(l) = raw.level {
            out.level = l;
        }
        if let Some(r) = raw.roles {
            out.roles = r;
        }
        if let Some(tier) = raw.tier {
            out.tier = tier;
        }
        if let Some(review) = raw.review {
            out.review = review;
        }
        if let Some(n) = raw.approvals {
            out.quorum.approvals = n;
        }
        if let Some(d) = raw.distinct_roles {
            out.quorum.distinct_roles = d;
        }
        out.roles.sort();
        out.roles.dedup();
        let path = format!("triggers.{trig}.then");
        check_quorum(out.quorum, out.roles.len(), &path, problems);
        if enabled {
            for r in &out.roles {
                if self.roles.is_empty() {
                    wanted_roles.insert(r.clone());
                } else {
                    self.check_role(r, &format!("{path}.roles"), problems);
                }
            }
            if out.level.needs_human() && out.roles.is_empty() {
                problems.push(
                    format!("{path}.roles"),
                    format!(
                        "level {} needs a human, but no role is named to hand over to",
                        out.level.as_str()
                    ),
                );
            }
        }
        if trig == Trigger::UnknownAction && !out.level.needs_human() {
            problems.push(
                format!("{path}.level"),
                format!(
                    "{} would let unknown action types run alone; it must be ask_first or \
                     hard_stop (fail closed)",
                    out.level.as_str()
                ),
            );
        }
        self.outcomes.insert(trig, out);
    }

    /// Tiers: each gives some time to acknowledge.
    fn check_tiers(&self, problems: &mut Problems) {
        for (name, tier) in [
            ("warm", &self.tiers.warm),
            ("immediate", &self.tiers.immediate),
        ] {
            if tier.ack_within.is_zero() {
                problems.push(
                    format!("tiers.{name}.ack_within"),
                    "0s is no time to acknowledge; give a duration such as 5m",
                );
            }
        }
    }

    /// Roles: how many, their names, redaction patterns and topics; lists sorted.
    fn normalise_roles(&mut self, problems: &mut Problems) {
        if self.roles.len() > MAX_ROLES {
            problems.push(
                "roles",
                format!("{} roles defined; at most {MAX_ROLES}", self.roles.len()),
            );
        }
        for (name, role) in &mut self.roles {
            normalise_role(name, role, &self.redaction, problems);
        }
    }

    /// Rate limits: at least 2 messages in a window that is not empty.
    fn check_rate_limits(&self, problems: &mut Problems) {
        for (name, role) in &self.roles {
            if let Some(l) = &role.rate_limit {
                if l.max < 2 {
                    problems.push(
                        format!("roles.{name}.rate_limit.max"),
                        format!("{} is too few: one message of each window is kept for the digest; at least 2", l.max),
                    );
                }
                if l.per.is_zero() {
                    problems.push(
                        format!("roles.{name}.rate_limit.per"),
                        "0s is no window; give a duration such as 1m",
                    );
                }
            }
        }
    }

    /// Escalation chains: each next role defined, and no chain comes back to a role it left.
    fn check_chains(&self, problems: &mut Problems) {
        for (name, role) in &self.roles {
            let Some(next) = &role.escalate_to else {
                continue;
            };
            let path = format!("roles.{name}.escalate_to");
            if !self.roles.contains_key(next) {
                self.check_role(next, &path, problems);
                continue;
            }
            self.check_chain_loop(name, next, &path, problems);
        }
    }

    /// Follows the chain from `name` through `next`, reporting the first role it comes back to.
    fn check_chain_loop(&self, name: &str, next: &str, path: &str, problems: &mut Problems) {
        let mut seen = vec![name];
        let mut at = Some(next);
        while let Some(r) = at {
            if seen.contains(&r) {
                seen.push(r);
                problems.push(
                    path,
                    format!("the escalation chain loops: {}", seen.join(" → ")),
                );
                break;
            }
            seen.push(r);
            at = self.roles.get(r).and_then(|x| x.escalate_to.as_deref());
        }
    }

    /// Redaction patterns: each a valid regular expression.
    fn check_redaction(&self, problems: &mut Problems) {
        for (name, re) in &self.redaction {
            if let Err(e) = regex::Regex::new(re) {
                problems.push(
                    format!("redaction.{name}"),
                    format!("{re:?} is not a valid regular expression: {e}"),
                );
            }
        }
    }

    fn check_role(&self, role: &str, path: &str, problems: &mut Problems) {
        if !self.roles.contains_key(role) {
            problems.push(
                path,
                format!(
                    "role {role:?} is not defined in [roles] (defined: {})",
                    list_or_none(self.roles.keys())
                ),
            );
        }
    }
}

/// `low_confidence` and `amount_limit`: their values and per-action rules, sorted by pattern.
fn check_gates(t: &mut TriggersSpec, problems: &mut Problems) {
    let lc = "triggers.low_confidence";
    check_unit(
        t.low_confidence.threshold,
        &format!("{lc}.threshold"),
        problems,
    );
    check_rules(
        t.low_confidence
            .per_action
            .iter()
            .map(|r| (&r.pattern, r.threshold)),
        &format!("{lc}.per_action"),
        problems,
        check_unit,
    );
    t.low_confidence
        .per_action
        .sort_by(|a, b| a.pattern.cmp(&b.pattern));

    let al = "triggers.amount_limit";
    check_positive(t.amount_limit.limit, &format!("{al}.limit"), problems);
    check_rules(
        t.amount_limit
            .per_action
            .iter()
            .map(|r| (&r.pattern, r.limit)),
        &format!("{al}.per_action"),
        problems,
        check_positive,
    );
    t.amount_limit
        .per_action
        .sort_by(|a, b| a.pattern.cmp(&b.pattern));
}

/// `policy_keyword` and `human_requested`: phrases normalised, fields sorted and not empty.
fn normalise_scanning(t: &mut TriggersSpec, problems: &mut Problems) {
    normalise_phrases(
        &mut t.policy_keyword.keywords,
        "triggers.policy_keyword.keywords",
        problems,
    );
    normalise_phrases(
        &mut t.human_requested.phrases,
        "triggers.human_requested.phrases",
        problems,
    );
    for (fields, path) in [
        (
            &mut t.policy_keyword.fields,
            "triggers.policy_keyword.fields",
        ),
        (
            &mut t.human_requested.fields,
            "triggers.human_requested.fields",
        ),
    ] {
        fields.sort();
        fields.dedup();
        if fields.is_empty() {
            problems.push(path, "must name at least one field to scan");
        }
    }
}

/// `multiple_options`, `consecutive_low_confidence`, `high_value_customer` and `anomaly`.
fn check_trigger_settings(t: &mut TriggersSpec, problems: &mut Problems) {
    if t.multiple_options.min_options < 2 {
        problems.push(
            "triggers.multiple_options.min_options",
            format!(
                "{} is too small: several options means at least 2",
                t.multiple_options.min_options
            ),
        );
    }
    if t.consecutive_low_confidence.turns < 2 {
        problems.push(
            "triggers.consecutive_low_confidence.turns",
            format!(
                "{} is too small: \"in a row\" means at least 2 turns",
                t.consecutive_low_confidence.turns
            ),
        );
    }
    if t.high_value_customer.retention_risk_complaints < 1 {
        problems.push(
            "triggers.high_value_customer.retention_risk_complaints",
            format!(
                "{} must be 1 or more",
                t.high_value_customer.retention_risk_complaints
            ),
        );
    }
    for (i, p) in t.high_value_customer.actions.iter().enumerate() {
        check_pattern(
            p,
            &format!("triggers.high_value_customer.actions[{i}]"),
            problems,
        );
    }
    t.high_value_customer.actions.sort();
    t.high_value_customer.actions.dedup();
    t.high_value_customer.tiers.sort();
    t.high_value_customer.tiers.dedup();
    if t.anomaly.attribute.trim().is_empty() {
        problems.push("triggers.anomaly.attribute", "must not be empty");
    }
}

/// One role: its name, redaction patterns and topic checked, its lists sorted.
fn normalise_role(
    name: &str,
    role: &mut RoleSpec,
    redaction: &BTreeMap<String, String>,
    problems: &mut Problems,
) {
    let path = format!("roles.{name}");
    if !is_role_name(name) {
        problems.push(
            path.clone(),
            format!("role name {name:?} must be lower-case letters, digits and _"),
        );
    }
    for r in &role.redact {
        if !redaction.contains_key(r) {
            problems.push(
                format!("{path}.redact"),
                format!(
                    "redaction pattern {r:?} is not defined in [redaction] (defined: {})",
                    list_or_none(redaction.keys())
                ),
            );
        }
    }
    role.redact.sort();
    role.redact.dedup();
    role.hide.sort();
    role.hide.dedup();
    role.attributes.sort();
    role.attributes.dedup();
    if let Some(topic) = &role.topic {
        if !super::is_topic_name(topic) {
            problems.push(
                format!("{path}.topic"),
                format!(
                    "{topic:?} is not a valid Kafka topic name (letters, digits, . _ -; \
                     at most 249)"
                ),
            );
        }
    }
}

/// Fatigue: a share between 0 and 1, a review period that is not empty.
fn check_fatigue(f: &FatigueSpec, problems: &mut Problems) {
    if !(f.sample_execute_log.is_finite() && (0.0..=1.0).contains(&f.sample_execute_log)) {
        problems.push(
            "fatigue.sample_execute_log",
            format!("{} is not a share between 0 and 1", f.sample_execute_log),
        );
    }
    if f.review_every.is_zero() {
        problems.push("fatigue.review_every", "0s: give a duration such as 1m");
    }
}

fn list_or_none<'a>(names: impl Iterator<Item = &'a String>) -> String {
    let v: Vec<&str> = names.map(|s| s.as_str()).collect();
    if v.is_empty() {
        "none".to_string()
    } else {
        v.join(", ")
    }
}

fn is_role_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// Checks each `[[levels]]` entry on its own, naming it by its index in the file (entries are
/// sorted by pattern later, and entries that did not read are missing), and sorts each entry's
/// roles. Returns the roles the entries name, with their paths, to be checked against `[roles]`.
pub(super) fn check_levels(
    levels: &mut [(usize, LevelRule)],
    problems: &mut Problems,
) -> Vec<(String, String)> {
    let mut seen = BTreeSet::new();
    let mut role_refs = Vec::new();
    for (i, rule) in levels.iter_mut() {
        let at = format!("levels[{i}]");
        check_pattern(&rule.pattern, &format!("{at}.pattern"), problems);
        if !seen.insert(rule.pattern.clone()) {
            problems.push(
                format!("{at}.pattern"),
                format!(
                    "pattern {:?} is listed twice; each pattern gets one level",
                    rule.pattern
                ),
            );
        }
        check_level_roles(rule, &at, problems, &mut role_refs);
        check_on_timeout(rule, &at, problems);
        if let Some(roles) = &rule.roles {
            check_quorum(rule.quorum(), roles.len(), &at, problems);
        } else {
            // Checked against `[approvals] roles` once the whole file is read.
            check_quorum(rule.quorum(), usize::MAX, &at, problems);
        }
    }
    role_refs
}

/// Sorts an entry's roles, refuses an empty list where a human is needed, and adds each role
/// to `role_refs`.
fn check_level_roles(
    rule: &mut LevelRule,
    at: &str,
    problems: &mut Problems,
    role_refs: &mut Vec<(String, String)>,
) {
    let needs = rule.level.needs_human() || rule.templated.is_some_and(|t| t.needs_human());
    let Some(roles) = &mut rule.roles else {
        return;
    };
    roles.sort();
    roles.dedup();
    role_refs.extend(roles.iter().map(|r| (format!("{at}.roles"), r.clone())));
    if needs && roles.is_empty() {
        problems.push(
            format!("{at}.roles"),
            format!("{:?} needs a human, but no role is named", rule.pattern),
        );
    }
}

/// Four-eyes settings: 1 to [`Quorum::MAX`] approvals; distinct roles only with more than one
/// approval, and with at least as many roles to ask (`roles`: how many the rule names).
fn check_quorum(q: Quorum, roles: usize, at: &str, problems: &mut Problems) {
    if q.approvals == 0 || q.approvals > Quorum::MAX {
        problems.push(
            format!("{at}.approvals"),
            format!(
                "{} is not a number of approvals from 1 to {}",
                q.approvals,
                Quorum::MAX
            ),
        );
    }
    if q.distinct_roles && q.approvals < 2 {
        problems.push(
            format!("{at}.distinct_roles"),
            format!(
                "true needs `approvals` of 2 or more (found {})",
                q.approvals
            ),
        );
    } else if q.distinct_roles && roles < usize::from(q.approvals) {
        problems.push(
            format!("{at}.distinct_roles"),
            format!(
                "{} approvals from distinct roles, but only {roles} role(s) are named to ask",
                q.approvals
            ),
        );
    }
}

/// Refuses `fail_open` on an entry whose level (or templated level) is `hard_stop`.
fn check_on_timeout(rule: &LevelRule, at: &str, problems: &mut Problems) {
    let hard = rule.level == Level::HardStop || rule.templated == Some(Level::HardStop);
    if rule.on_timeout == Some(OnTimeout::FailOpen) && hard {
        problems.push(
            format!("{at}.on_timeout"),
            format!(
                "fail_open is not allowed for {:?}: its level is hard_stop, which always fails \
                 closed",
                rule.pattern
            ),
        );
    }
}

fn check_pattern(p: &str, path: &str, problems: &mut Problems) {
    if let Err(e) = Pattern::parse(p) {
        problems.push(path, e);
    }
}

fn check_unit(v: f64, path: &str, problems: &mut Problems) {
    if !(v.is_finite() && (0.0..=1.0).contains(&v)) {
        problems.push(path, format!("{v} is not a confidence between 0 and 1"));
    }
}

fn check_positive(v: f64, path: &str, problems: &mut Problems) {
    if !(v.is_finite() && v > 0.0) {
        problems.push(path, format!("{v} must be a number above 0"));
    }
}

fn check_rules<'a>(
    rules: impl Iterator<Item = (&'a String, f64)>,
    path: &str,
    problems: &mut Problems,
    check_value: impl Fn(f64, &str, &mut Problems),
) {
    let mut seen = BTreeSet::new();
    for (i, (pattern, value)) in rules.enumerate() {
        let at = format!("{path}[{i}]");
        check_pattern(pattern, &format!("{at}.pattern"), problems);
        if !seen.insert(pattern.clone()) {
            problems.push(
                format!("{at}.pattern"),
                format!("pattern {pattern:?} is listed twice"),
            );
        }
        check_value(value, &at, problems);
    }
}

fn normalise_phrases(list: &mut Vec<String>, path: &str, problems: &mut Problems) {
    for (i, p) in list.iter_mut().enumerate() {
        let norm = p.split_whitespace().collect::<Vec<_>>().join(" ");
        if norm.is_empty() {
            problems.push(format!("{path}[{i}]"), "empty phrase");
        }
        *p = norm.to_ascii_lowercase();
    }
    list.sort();
    list.dedup();
}
