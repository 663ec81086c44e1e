//! Output topics by name: where an [`Output`](crate::output::Output)'s address — its
//! [`Topic`] and whether it is drill traffic — is resolved to a topic name, in one place.

use crate::config::Settings;
use crate::matrix::Matrix;
use crate::output::Topic;

/// The names of a stage's output topics, and of its drill twin's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topics {
    /// Verdicts, dead letters, changelog, review, canaries (empty: the stage has none).
    fixed: [String; 5],
    /// One per matrix role, in role order.
    roles: Vec<String>,
    /// The drill twin's (drill-marked outputs), outside drill processors.
    drill: Option<Box<Topics>>,
}

impl Topics {
    /// handoff's topics under `settings`, for `matrix`'s roles; with the drill twin's unless
    /// `settings` are a drill processor's.
    pub fn of(settings: &Settings, matrix: &Matrix) -> Topics {
        let mut t = Topics::own(settings, matrix);
        if !settings.is_drill() {
            t.drill = Some(Box::new(Topics::own(&settings.drill(), matrix)));
        }
        t
    }

    fn own(settings: &Settings, matrix: &Matrix) -> Topics {
        let t = &settings.topics;
        Topics {
            fixed: [
                t.verdicts.clone(),
                t.dead_letter.clone(),
                t.changelog.clone(),
                t.review.clone(),
                t.canaries.clone(),
            ],
            roles: matrix
                .roles()
                .iter()
                .map(|r| t.role_topic(&r.topic))
                .collect(),
            drill: None,
        }
    }

    /// Topics of roles only (a stage without handoff's own topics, e.g. a benchmark's).
    pub fn roles_only(roles: Vec<String>) -> Topics {
        Topics {
            fixed: Default::default(),
            roles,
            drill: None,
        }
    }

    /// The name of `topic`, of the drill twin when `drill` (outside drill processors).
    pub fn name(&self, topic: Topic, drill: bool) -> &str {
        let t = match (drill, &self.drill) {
            (true, Some(d)) => d,
            _ => self,
        };
        match topic {
            Topic::Verdicts => &t.fixed[0],
            Topic::DeadLetters => &t.fixed[1],
            Topic::Changelog => &t.fixed[2],
            Topic::Review => &t.fixed[3],
            Topic::Canaries => &t.fixed[4],
            Topic::Role(i) => &t.roles[i],
        }
    }

    /// Every (topic, drill) address with its name, own first then the drill twin's.
    pub fn addresses(&self) -> Vec<(Topic, bool, &str)> {
        let mut out = Vec::new();
        for (t, drill) in [(Some(self), false), (self.drill.as_deref(), true)] {
            let Some(t) = t else { continue };
            let fixed = [
                Topic::Verdicts,
                Topic::DeadLetters,
                Topic::Changelog,
                Topic::Review,
                Topic::Canaries,
            ];
            for (topic, name) in fixed.into_iter().zip(&t.fixed) {
                if !name.is_empty() {
                    out.push((topic, drill, name.as_str()));
                }
            }
            for (i, name) in t.roles.iter().enumerate() {
                out.push((Topic::Role(i), drill, name.as_str()));
            }
        }
        out
    }

    /// Every name (to create and to check), own first.
    pub fn all(&self) -> Vec<String> {
        self.addresses()
            .into_iter()
            .map(|(_, _, n)| n.to_string())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_address_resolves_once_drill_to_drill_topics() {
        let s = Settings::default();
        let m = Matrix::default_matrix().unwrap();
        let t = Topics::of(&s, &m);
        assert_eq!(t.name(Topic::Verdicts, false), "agent.verdicts");
        assert_eq!(t.name(Topic::Verdicts, true), "drill.agent.verdicts");
        let support = m.role_index("support").unwrap();
        assert_eq!(
            t.name(Topic::Role(support), true),
            "drill.escalations.support"
        );
        let all = t.all();
        assert_eq!(all.len(), 2 * (5 + m.roles().len()));
        let drill = Topics::of(&s.drill(), &m);
        assert_eq!(
            drill.name(Topic::Changelog, true),
            "drill.handoff.state",
            "no twin of a twin"
        );
        assert_eq!(drill.all().len(), 5 + m.roles().len());
        let lanes = Topics::roles_only(vec!["a".into(), "b".into()]);
        assert_eq!(lanes.all(), ["a", "b"]);
        assert_eq!(lanes.name(Topic::Role(1), false), "b");
    }
}
