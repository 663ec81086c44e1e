//! Compiling a validated [`MatrixSpec`] into a [`Matrix`]: role names into bit masks, every
//! pattern into one profile table, phrases into one matcher, role views with their redaction.

use super::spec::{LevelRule, OnTimeout};
use super::{
    most_specific, CompiledOutcome, Matrix, MatrixError, MatrixSource, MatrixSpec, Pattern,
    PhraseMatcher, Profile, ProfileTable, RoleSet, RoleView, Trigger,
};
use crate::event::Tier;
use crate::problems::Problems;

/// Role names in index order, to turn lists of names into [`RoleSet`]s.
struct RoleMasks<'a>(Vec<&'a String>);

impl RoleMasks<'_> {
    /// The set of the named roles (names not defined are left out).
    fn mask(&self, names: &[String]) -> RoleSet {
        RoleSet(names.iter().fold(0u64, |m, n| {
            m | self
                .0
                .iter()
                .position(|r| *r == n)
                .map(|i| 1u64 << i)
                .unwrap_or(0)
        }))
    }
}

impl Matrix {
    pub(super) fn compile(spec: MatrixSpec, source: MatrixSource) -> Result<Matrix, MatrixError> {
        let version = spec.version();
        let masks = RoleMasks(spec.roles.keys().collect());
        let outcomes = Trigger::ALL.map(|t| {
            let o = &spec.outcomes[&t];
            CompiledOutcome {
                enabled: spec.enabled(t),
                level: o.level,
                roles: masks.mask(&o.roles),
                tier: o.tier,
                quorum: o.quorum,
            }
        });
        let customer_roles = masks.mask(&spec.triggers.policy_keyword.customer_roles);
        let profiles = compile_profiles(&spec, &masks);
        let phrases = compile_phrases(&spec, &source)?;
        let roles = compile_roles(&spec);
        let families = families(&spec);
        Ok(Matrix {
            families,
            version,
            source,
            profiles,
            outcomes,
            phrases,
            customer_roles,
            approvals_immediate: spec.approvals.tier == Tier::Immediate,
            level_quorum: crate::event::Level::ALL
                .map(|l| spec.approvals.per_level.get(&l).copied().unwrap_or(1)),
            without_confidence: spec.triggers.low_confidence.without_confidence,
            roles,
            spec,
        })
    }
}

/// Every pattern named anywhere feeds the profile table.
fn compile_profiles(spec: &MatrixSpec, masks: &RoleMasks<'_>) -> ProfileTable<Profile> {
    let default_approvers = masks.mask(&spec.approvals.roles);
    let parse = |s: &String| Pattern::parse(s).expect("validated");
    let levels: Vec<(Pattern, &LevelRule)> =
        spec.levels.iter().map(|r| (parse(&r.pattern), r)).collect();
    let thresholds: Vec<(Pattern, f64)> = spec
        .triggers
        .low_confidence
        .per_action
        .iter()
        .map(|r| (parse(&r.pattern), r.threshold))
        .collect();
    let limits: Vec<(Pattern, f64)> = spec
        .triggers
        .amount_limit
        .per_action
        .iter()
        .map(|r| (parse(&r.pattern), r.limit))
        .collect();
    let facing: Vec<Pattern> = spec
        .triggers
        .high_value_customer
        .actions
        .iter()
        .map(parse)
        .collect();
    let mut all: Vec<Pattern> = levels.iter().map(|(p, _)| p.clone()).collect();
    all.extend(thresholds.iter().map(|(p, _)| p.clone()));
    all.extend(limits.iter().map(|(p, _)| p.clone()));
    all.extend(facing.iter().cloned());
    let default_threshold = spec.triggers.low_confidence.threshold;
    let default_limit = spec.triggers.amount_limit.limit;
    ProfileTable::build(&all, |a| {
        let rule = most_specific(levels.iter().map(|(p, r)| (p, *r)), a);
        Profile {
            quorum: rule.map(LevelRule::quorum).unwrap_or_default(),
            approvers: rule
                .and_then(|r| r.roles.as_deref())
                .map(|names| masks.mask(names))
                .unwrap_or(default_approvers),
            level: rule.map(|r| r.level),
            templated: rule.and_then(|r| r.templated),
            threshold: most_specific(thresholds.iter().map(|(p, v)| (p, *v)), a)
                .unwrap_or(default_threshold),
            amount_limit: most_specific(limits.iter().map(|(p, v)| (p, *v)), a)
                .unwrap_or(default_limit),
            customer_facing: facing.iter().any(|p| p.matches(a)),
            fail_open: rule.and_then(|r| r.on_timeout) == Some(OnTimeout::FailOpen),
        }
    })
}

/// `policy_keyword` and `human_requested` in one matcher (a disabled trigger's list is left out).
fn compile_phrases(spec: &MatrixSpec, source: &MatrixSource) -> Result<PhraseMatcher, MatrixError> {
    let pk = &spec.triggers.policy_keyword;
    let hr = &spec.triggers.human_requested;
    PhraseMatcher::new(
        if pk.enabled { &pk.keywords } else { &[] },
        &pk.fields,
        if hr.enabled { &hr.phrases } else { &[] },
        &hr.fields,
    )
    .map_err(|message| MatrixError::Invalid {
        source_name: source.to_string(),
        problems: Problems(vec![crate::problems::Problem {
            path: "triggers.policy_keyword.keywords".into(),
            message,
        }]),
    })
}

/// Role views, sorted by name, with their redaction patterns compiled.
fn compile_roles(spec: &MatrixSpec) -> Vec<RoleView> {
    spec.roles
        .iter()
        .map(|(name, r)| RoleView {
            name: name.clone(),
            view: r.view.clone().unwrap_or_else(|| name.clone()),
            topic: r
                .topic
                .clone()
                .unwrap_or_else(|| format!("escalations.{name}")),
            attributes: if r.attributes.iter().any(|a| a == "*") {
                None
            } else {
                Some(r.attributes.clone())
            },
            hide: r.hide.clone(),
            redact: r
                .redact
                .iter()
                .map(|n| {
                    let re = regex::Regex::new(&spec.redaction[n]).expect("validated");
                    (n.clone(), re)
                })
                .collect(),
            escalate_to: r
                .escalate_to
                .as_ref()
                .and_then(|n| spec.roles.keys().position(|k| k == n)),
        })
        .collect()
}

/// Action type families named by the matrix's levels: the bounded set used as a metric label
/// (anything else is "other").
fn families(spec: &MatrixSpec) -> Vec<String> {
    let mut families: Vec<String> = spec
        .levels
        .iter()
        .filter_map(|r| r.pattern.split('.').next())
        .filter(|f| *f != "*")
        .map(str::to_string)
        .collect();
    families.sort();
    families.dedup();
    families
}
