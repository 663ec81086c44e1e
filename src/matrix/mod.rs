//! The escalation matrix: a rule file compiled into a [`Matrix`] whose
//! [`evaluate`](Matrix::evaluate) is pure and synchronous. It does no I/O and never reads the
//! clock, so the stream, the offline tools, the benchmarks and the game-days run the very same
//! decisions.

mod compile;
mod evaluate;
mod keywords;
mod pattern;
mod rules;
mod spec;
mod trigger;

pub use keywords::{Hit, PhraseMatcher};
pub use pattern::{most_specific, Pattern, ProfileTable};
pub use rules::Rules;
pub use spec::{
    default_outcome, is_topic_name, LevelRule, MatrixSpec, OnTimeout, Outcome, PackageField,
    RoleSpec, TextField, WithoutConfidence, DEFAULT_MATRIX_TOML, MAX_ROLES,
};
pub use trigger::{Trigger, TriggerSet};

use crate::event::{AgentAction, CustomerTier, Level, RequiredAction, Tier};
use crate::problems::Problems;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// A matrix that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum MatrixError {
    /// The file could not be read or parsed at all.
    #[error("cannot read matrix {source_name}: {message}")]
    Read {
        /// File name, or `<default>`.
        source_name: String,
        /// What went wrong.
        message: String,
    },
    /// The file parsed but has problems; every one is listed.
    #[error("matrix {source_name} has {} problem(s):\n{problems}", problems.len())]
    Invalid {
        /// File name, or `<default>`.
        source_name: String,
        /// Every problem found.
        problems: Problems,
    },
}

/// Where a matrix came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MatrixSource {
    /// The shipped default, built in.
    Default,
    /// A file.
    File(PathBuf),
}

impl std::fmt::Display for MatrixSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MatrixSource::Default => f.write_str("<default>"),
            MatrixSource::File(p) => write!(f, "{}", p.display()),
        }
    }
}

/// Per-session memory the matrix needs across turns. Small and `Copy`, so it can be stored per
/// session and written to a changelog.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionState {
    /// Turns in a row below the confidence gate, up to and including the last event.
    pub consecutive_low: u32,
    /// Events seen in this session.
    pub turns: u64,
    /// Timestamp of the last event seen.
    pub last_event_ms: i64,
}

/// Settings resolved for one action type.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Profile {
    /// Approvals the matching level rule needs (four-eyes).
    quorum: Quorum,
    /// Level from `levels`, or `None` when no pattern matches (unknown action type).
    level: Option<Level>,
    /// Level for templated actions.
    templated: Option<Level>,
    /// Approvers when the action type's own level needs a human.
    approvers: RoleSet,
    threshold: f64,
    amount_limit: f64,
    customer_facing: bool,
    /// `on_timeout = "fail_open"` on the matching level rule.
    fail_open: bool,
}

/// A set of roles, as a bit mask over the matrix's roles sorted by name.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct RoleSet(u64);

impl RoleSet {
    /// True when empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
    /// Number of roles.
    pub fn len(self) -> usize {
        self.0.count_ones() as usize
    }
    /// True when role index `i` is in the set.
    pub fn contains(self, i: usize) -> bool {
        i < 64 && self.0 & (1 << i) != 0
    }
    /// Role indexes, ascending (so names come out sorted).
    pub fn iter(self) -> impl Iterator<Item = usize> {
        (0..64).filter(move |i| self.0 & (1u64 << i) != 0)
    }
}

/// The detail of one fired trigger.
#[derive(Debug, Clone, PartialEq)]
pub enum Detail {
    /// Confidence and the gate it fell below.
    Confidence {
        /// The agent's confidence; `None` when it gave none (and the matrix counts that as
        /// below).
        value: Option<f64>,
        /// The gate.
        threshold: f64,
    },
    /// Phrases found, and where.
    Phrases(Vec<Hit>),
    /// Number of options.
    Options(usize),
    /// The task failed (the error is on the event).
    Failure,
    /// Customer tier and complaints.
    Customer {
        /// Tier.
        tier: CustomerTier,
        /// Prior complaints.
        complaints: i32,
    },
    /// Amount and the limit it exceeded.
    Amount {
        /// Amount.
        amount: f64,
        /// Limit.
        limit: f64,
    },
    /// No further detail.
    None,
    /// Turns in a row below the gate.
    Streak {
        /// Turns.
        turns: u32,
        /// The gate.
        threshold: f64,
    },
    /// The anomaly attribute's value is on the event.
    Anomaly,
}

/// One fired trigger with its detail.
#[derive(Debug, Clone, PartialEq)]
pub struct Flag {
    /// Which trigger.
    pub trigger: Trigger,
    /// Why.
    pub detail: Detail,
}

/// What the matrix decided for one event.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// The strictest level of the base level and every fired trigger.
    pub level: Level,
    /// Level from `levels` alone (or the unknown-action level).
    pub base_level: Level,
    /// Triggers that fired.
    pub triggers: TriggerSet,
    /// Each fired trigger with detail, canonical order.
    pub flags: Vec<Flag>,
    /// Roles to hand over to.
    pub roles: RoleSet,
    /// Roles to hand over to at tier `immediate` (a subset of `roles`).
    pub immediate: RoleSet,
    /// What the humans must do; `None` when nobody is involved.
    pub required_action: Option<RequiredAction>,
    /// How many people must approve (four-eyes).
    pub quorum: Quorum,
    /// Prior complaints at or above the retention-risk mark.
    pub retention_risk: bool,
    /// The session's state after this event.
    pub session: SessionState,
}

impl Decision {
    /// The most urgent tier of any hand-over, or `None` without hand-over.
    pub fn tier(&self) -> Option<Tier> {
        if self.roles.is_empty() {
            None
        } else if self.immediate.is_empty() {
            Some(Tier::Warm)
        } else {
            Some(Tier::Immediate)
        }
    }

    /// The tier of the hand-over to role index `i`.
    pub fn role_tier(&self, i: usize) -> Tier {
        if self.immediate.contains(i) {
            Tier::Immediate
        } else {
            Tier::Warm
        }
    }
}

/// A trigger's outcome with roles as a mask.
#[derive(Debug, Clone, Copy)]
struct CompiledOutcome {
    enabled: bool,
    level: Level,
    roles: RoleSet,
    tier: Tier,
    quorum: Quorum,
}

/// How many people must approve an action before it may run, and whether they must answer for
/// distinct roles (four-eyes: `approvals = 2`). One approval per role handed to is always
/// needed; a quorum above that keeps the escalation open for more people.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Quorum {
    /// Distinct people who must approve (1 to [`Quorum::MAX`]).
    pub approvals: u8,
    /// They must answer for as many distinct roles.
    pub distinct_roles: bool,
}

impl Default for Quorum {
    fn default() -> Self {
        Quorum {
            approvals: 1,
            distinct_roles: false,
        }
    }
}

impl Quorum {
    /// The most approvals a rule may ask for.
    pub const MAX: u8 = 5;

    /// The stricter of two: the larger count; distinct roles when either asks for them with
    /// more than one approval.
    pub fn join(self, other: Quorum) -> Quorum {
        let distinct = |q: Quorum| q.distinct_roles && q.approvals > 1;
        Quorum {
            approvals: self.approvals.max(other.approvals),
            distinct_roles: distinct(self) || distinct(other),
        }
    }

    /// One approval per role: nothing beyond what handing over already asks.
    pub fn is_default(&self) -> bool {
        *self == Quorum::default()
    }

    /// How it reads in `check` and `eval`: `2 approvals from distinct roles`.
    pub fn describe(&self) -> String {
        format!(
            "{} approval{}{}",
            self.approvals,
            if self.approvals == 1 { "" } else { "s" },
            if self.distinct_roles {
                " from distinct roles"
            } else {
                ""
            }
        )
    }
}

/// A compiled role view.
#[derive(Debug, Clone)]
pub struct RoleView {
    /// Role name.
    pub name: String,
    /// View name carried in packages.
    pub view: String,
    /// Kafka topic.
    pub topic: String,
    /// Attribute keys visible (`None`: all).
    pub attributes: Option<Vec<String>>,
    /// Hidden package fields.
    pub hide: Vec<PackageField>,
    /// Redaction patterns, with their names.
    pub redact: Vec<(String, regex::Regex)>,
    /// The role (index into [`Matrix::roles`]) called when this one lets a deadline pass.
    pub escalate_to: Option<usize>,
}

/// A compiled, validated escalation matrix.
#[derive(Debug, Clone)]
pub struct Matrix {
    spec: MatrixSpec,
    version: String,
    source: MatrixSource,
    profiles: ProfileTable<Profile>,
    outcomes: [CompiledOutcome; 12],
    phrases: PhraseMatcher,
    customer_roles: RoleSet,
    approvals_immediate: bool,
    /// `[approvals] per_level`: the approvals an action at each level needs, by level index.
    level_quorum: [u8; 4],
    /// What an action without a confidence counts as.
    without_confidence: spec::WithoutConfidence,
    roles: Vec<RoleView>,
    families: Vec<String>,
}

impl Matrix {
    /// The shipped default matrix.
    pub fn default_matrix() -> Result<Matrix, MatrixError> {
        Matrix::from_toml_str(DEFAULT_MATRIX_TOML, MatrixSource::Default)
    }

    /// Parses a matrix from TOML text (used for drafts and in benchmarks).
    pub fn from_toml_str(text: &str, source: MatrixSource) -> Result<Matrix, MatrixError> {
        let value =
            crate::problems::read_str(text, config::FileFormat::Toml).map_err(|message| {
                MatrixError::Read {
                    source_name: source.to_string(),
                    message,
                }
            })?;
        Matrix::from_value(&value, source)
    }

    /// Loads a matrix file (TOML, YAML or JSON by extension) with the `config` crate.
    pub fn from_file(path: &Path) -> Result<Matrix, MatrixError> {
        let value = crate::problems::read_file(path).map_err(|message| MatrixError::Read {
            source_name: path.display().to_string(),
            message,
        })?;
        Matrix::from_value(&value, MatrixSource::File(path.to_path_buf()))
    }

    /// The file at `path`, or the shipped default when `None`.
    pub fn load(path: Option<&Path>) -> Result<Matrix, MatrixError> {
        match path {
            Some(p) => Matrix::from_file(p),
            None => Matrix::default_matrix(),
        }
    }

    /// Parses, validates and compiles a matrix from its value form.
    pub fn from_value(
        value: &serde_json::Value,
        source: MatrixSource,
    ) -> Result<Matrix, MatrixError> {
        let mut problems = Problems::default();
        let spec = MatrixSpec::from_value(value, &mut problems);
        match spec {
            Some(spec) if problems.is_empty() => Matrix::compile(spec, source),
            _ => Err(MatrixError::Invalid {
                source_name: source.to_string(),
                problems,
            }),
        }
    }

    /// The index of a role by name.
    pub fn role_index(&self, name: &str) -> Option<usize> {
        self.roles.iter().position(|r| r.name == name)
    }

    /// Triggers whose outcome sends events to the review queue (`then.review = true`).
    pub fn review_triggers(&self) -> TriggerSet {
        let mut set = TriggerSet::EMPTY;
        for t in Trigger::ALL {
            if self.spec.outcomes[&t].review && self.spec.enabled(t) {
                set.insert(t);
            }
        }
        set
    }

    /// True when an unanswered escalation of this action type, decided at `level`, lets the
    /// action proceed once its chain is exhausted (`on_timeout = "fail_open"`); never for
    /// `hard_stop`.
    pub fn fails_open(&self, action_type: &str, level: Level) -> bool {
        level < Level::HardStop && self.profiles.get(action_type).fail_open
    }

    /// The rule version stamped on every decision.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// Where the matrix came from.
    pub fn source(&self) -> &MatrixSource {
        &self.source
    }

    /// The validated settings.
    pub fn spec(&self) -> &MatrixSpec {
        &self.spec
    }

    /// Roles, sorted by name; a [`RoleSet`] indexes into this.
    pub fn roles(&self) -> &[RoleView] {
        &self.roles
    }

    /// The names of the roles in a set, sorted.
    pub fn role_names(&self, set: RoleSet) -> Vec<String> {
        set.iter().map(|i| self.roles[i].name.clone()).collect()
    }

    /// Action type families named by the levels, sorted (a bounded set for metric labels).
    pub fn families(&self) -> &[String] {
        &self.families
    }

    /// Index of an action type's family in [`Matrix::families`], or `families().len()` for
    /// "other".
    pub fn family_index(&self, action_type: &str) -> usize {
        let family = action_type.split('.').next().unwrap_or("");
        self.families
            .binary_search_by(|f| f.as_str().cmp(family))
            .unwrap_or(self.families.len())
    }

    /// The compiled phrase matcher.
    pub fn phrases(&self) -> &PhraseMatcher {
        &self.phrases
    }

    /// The `[[levels]]` rule that sets an action type's level (the most specific pattern that
    /// matches it), if any.
    pub fn level_rule(&self, action_type: &str) -> Option<&LevelRule> {
        let rules: Vec<(Pattern, &LevelRule)> = self
            .spec
            .levels
            .iter()
            .filter_map(|r| Pattern::parse(&r.pattern).ok().map(|p| (p, r)))
            .collect();
        most_specific(rules.iter().map(|(p, r)| (p, *r)), action_type)
    }

    /// An action type's own level (before any trigger): its level rule's `templated` level for
    /// an event with a template, its `level` otherwise, and the `unknown_action` level without a
    /// rule.
    pub fn type_level(&self, action_type: &str, templated: bool) -> Level {
        match self.level_rule(action_type) {
            Some(r) if templated => r.templated.unwrap_or(r.level),
            Some(r) => r.level,
            None => self.spec.outcomes[&Trigger::UnknownAction].level,
        }
    }

    /// The approvals an action type's own rule asks for (four-eyes; one when it names none).
    pub fn type_quorum(&self, action_type: &str) -> Quorum {
        self.level_rule(action_type)
            .map(spec::LevelRule::quorum)
            .unwrap_or_default()
    }

    /// The approvals a trigger (by name) asks for when it fires.
    pub fn trigger_quorum(&self, name: &str) -> Quorum {
        Trigger::from_name(name)
            .map(|t| self.spec.outcomes[&t].quorum)
            .unwrap_or_default()
    }

    /// The level a trigger (by name) asks for when it fires; `None` for a name that is not a
    /// trigger.
    pub fn trigger_level(&self, name: &str) -> Option<Level> {
        Trigger::from_name(name).map(|t| self.spec.outcomes[&t].level)
    }

    /// The confidence gate for an action type.
    pub fn threshold(&self, action_type: &str) -> f64 {
        self.profiles.get(action_type).threshold
    }

    /// Acknowledgement deadline of a tier, in milliseconds.
    pub fn ack_within_ms(&self, tier: Tier) -> i64 {
        let d = match tier {
            Tier::Warm => self.spec.tiers.warm.ack_within,
            Tier::Immediate => self.spec.tiers.immediate.ack_within,
        };
        d.as_millis().min(i64::MAX as u128) as i64
    }

    /// A one-line explanation of a flag, for people.
    pub fn describe(&self, flag: &Flag, event: &AgentAction) -> String {
        match &flag.detail {
            Detail::Confidence {
                value: Some(value),
                threshold,
            } => {
                format!(
                    "confidence {value:.2} is below the {threshold:.2} gate for {}",
                    event.action_type
                )
            }
            Detail::Confidence {
                value: None,
                threshold,
            } => {
                format!(
                    "no confidence given, counted as below the {threshold:.2} gate for {} \
                     (low_confidence.without_confidence = \"below\")",
                    event.action_type
                )
            }
            Detail::Phrases(hits) => {
                let found: Vec<String> = hits
                    .iter()
                    .map(|h| {
                        format!(
                            "\"{}\" in {}",
                            self.phrases.phrase(h.phrase),
                            h.field.as_str()
                        )
                    })
                    .collect();
                let what = if flag.trigger == Trigger::HumanRequested {
                    "the user asks for a person"
                } else {
                    "policy keyword"
                };
                format!("{what}: {}", found.join(", "))
            }
            Detail::Options(n) => format!("{n} valid options: a human chooses"),
            Detail::Failure => format!(
                "task failed: {}",
                event.error.as_deref().unwrap_or("no error text given")
            ),
            Detail::Customer { tier, complaints } => {
                let tier = match tier {
                    CustomerTier::Standard => "standard",
                    CustomerTier::Premium => "premium",
                    CustomerTier::Vip => "vip",
                };
                let risk = if *complaints
                    >= self
                        .spec
                        .triggers
                        .high_value_customer
                        .retention_risk_complaints
                {
                    " (retention risk)"
                } else {
                    ""
                };
                format!("{tier} customer on a customer-facing action, {complaints} prior complaint(s){risk}")
            }
            Detail::Amount { amount, limit } => format!(
                "amount {amount:.2} {} is above the limit of {limit:.2}",
                event.currency.as_deref().unwrap_or("")
            ),
            Detail::Streak { turns, threshold } => {
                format!("{turns} turns in a row below the {threshold:.2} confidence gate in this session")
            }
            Detail::Anomaly => {
                let key = &self.spec.triggers.anomaly.attribute;
                format!(
                    "anomaly marker {key}={}",
                    event.attributes.get(key).map(String::as_str).unwrap_or("")
                )
            }
            Detail::None => match flag.trigger {
                Trigger::Irreversible => "the action cannot be undone".to_string(),
                Trigger::AffectsOthers => "the action affects other people".to_string(),
                Trigger::UnknownAction => format!(
                    "no level is configured for action type {}: fail closed",
                    event.action_type
                ),
                t => t.as_str().to_string(),
            },
        }
    }
}
