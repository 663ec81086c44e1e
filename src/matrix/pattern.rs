//! Action type patterns (`email.send`, `email.*`, `*`) and their resolution: the most specific
//! pattern wins (exact, then the longest prefix, then `*`), so the order of entries in a matrix
//! file never matters.

use std::collections::HashMap;

/// A parsed action type pattern.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Pattern {
    /// Matches one action type.
    Exact(String),
    /// `family.*`: matches every action type starting with `family.`; holds `family.`.
    Prefix(String),
    /// `*`: matches everything.
    Any,
}

impl Pattern {
    /// Parses a pattern, or says why it is not one.
    pub fn parse(s: &str) -> Result<Pattern, String> {
        if s == "*" {
            return Ok(Pattern::Any);
        }
        if let Some(stem) = s.strip_suffix(".*") {
            if crate::event::is_action_type(stem) {
                return Ok(Pattern::Prefix(format!("{stem}.")));
            }
        } else if crate::event::is_action_type(s) {
            return Ok(Pattern::Exact(s.to_string()));
        }
        Err(format!(
            "invalid action type pattern {s:?}: expected dotted lower-case words (`email.send`), \
             a family (`email.*`) or `*`"
        ))
    }

    /// True when the pattern matches `action_type`.
    pub fn matches(&self, action_type: &str) -> bool {
        match self {
            Pattern::Exact(e) => e == action_type,
            Pattern::Prefix(p) => action_type.starts_with(p.as_str()),
            Pattern::Any => true,
        }
    }

    /// Specificity: higher wins.
    fn rank(&self) -> usize {
        match self {
            Pattern::Exact(_) => usize::MAX,
            Pattern::Prefix(p) => p.len(),
            Pattern::Any => 0,
        }
    }
}

/// Picks the value of the most specific matching pattern from a list.
pub fn most_specific<'a, T>(
    rules: impl IntoIterator<Item = (&'a Pattern, T)>,
    action_type: &str,
) -> Option<T> {
    rules
        .into_iter()
        .filter(|(p, _)| p.matches(action_type))
        .max_by_key(|(p, _)| p.rank())
        .map(|(_, v)| v)
}

/// A precomputed lookup from action type to a resolved profile `P`: one hash probe for exact
/// action types named anywhere in the matrix, else a short scan of prefixes, else the default.
#[derive(Debug, Clone)]
pub struct ProfileTable<P> {
    /// foldhash: action types are short and trusted-length; SipHash's DoS resistance buys
    /// nothing here and costs a third of the lookup.
    exact: HashMap<Box<str>, P, foldhash::fast::FixedState>,
    /// Longest first.
    prefixes: Vec<(Box<str>, P)>,
    any: P,
}

impl<P: Clone> ProfileTable<P> {
    /// Builds the table from every pattern named in the matrix and a function that resolves a
    /// profile for a representative action type (`exact` or `prefix + "…"`).
    pub fn build(patterns: &[Pattern], resolve: impl Fn(&str) -> P) -> Self {
        let mut exact =
            HashMap::with_hasher(foldhash::fast::FixedState::with_seed(0x68616e646f6666));
        let mut prefixes: Vec<(Box<str>, P)> = Vec::new();
        for p in patterns {
            match p {
                Pattern::Exact(e) => {
                    exact.insert(e.clone().into_boxed_str(), resolve(e));
                }
                Pattern::Prefix(pre) => {
                    if !prefixes.iter().any(|(q, _)| **q == **pre) {
                        // A representative that matches this prefix and no exact pattern: the
                        // trailing character cannot appear in a valid action type.
                        let representative = format!("{pre}\u{1}");
                        prefixes.push((pre.clone().into_boxed_str(), resolve(&representative)));
                    }
                }
                Pattern::Any => {}
            }
        }
        prefixes.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(a.0.cmp(&b.0)));
        let any = resolve("\u{1}");
        ProfileTable {
            exact,
            prefixes,
            any,
        }
    }

    /// The profile for an action type.
    #[inline]
    pub fn get(&self, action_type: &str) -> &P {
        if let Some(p) = self.exact.get(action_type) {
            return p;
        }
        for (pre, p) in &self.prefixes {
            if action_type.starts_with(&**pre) {
                return p;
            }
        }
        &self.any
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_accepts_the_three_forms_and_rejects_others() {
        assert_eq!(
            Pattern::parse("email.send"),
            Ok(Pattern::Exact("email.send".into()))
        );
        assert_eq!(
            Pattern::parse("email.*"),
            Ok(Pattern::Prefix("email.".into()))
        );
        assert_eq!(Pattern::parse("*"), Ok(Pattern::Any));
        for bad in [
            "",
            "Email.send",
            "email.",
            "email.*.x",
            "*.send",
            "e mail",
            "email**",
        ] {
            assert!(Pattern::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn most_specific_pattern_wins_whatever_the_order() {
        let rules = [
            (Pattern::Any, 0),
            (Pattern::Prefix("email.".into()), 1),
            (Pattern::Exact("email.send".into()), 2),
            (Pattern::Prefix("email.bulk.".into()), 3),
        ];
        for rot in 0..rules.len() {
            let mut r = rules.to_vec();
            r.rotate_left(rot);
            let pick = |a: &str| most_specific(r.iter().map(|(p, v)| (p, *v)), a);
            assert_eq!(pick("email.send"), Some(2));
            assert_eq!(pick("email.reply"), Some(1));
            assert_eq!(pick("email.bulk.send"), Some(3));
            assert_eq!(pick("trade.execute"), Some(0));
        }
    }

    #[test]
    fn profile_table_agrees_with_direct_resolution() {
        let pats = vec![
            Pattern::Exact("email.send".into()),
            Pattern::Prefix("email.".into()),
            Pattern::Prefix("email.bulk.".into()),
            Pattern::Exact("trade.execute".into()),
        ];
        let resolve = |a: &str| most_specific(pats.iter().map(|p| (p, p.clone())), a);
        let table = ProfileTable::build(&pats, resolve);
        for a in [
            "email.send",
            "email.reply",
            "email.bulk.x",
            "trade.execute",
            "trade.cancel",
            "x",
        ] {
            assert_eq!(table.get(a), &resolve(a), "action type {a}");
        }
    }
}
