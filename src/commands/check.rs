//! `handoff check`: validate a matrix; list every problem, or print what it decides.

use super::{Failure, Outcome, Result};
use handoff::cli::CheckArgs;
use handoff::event::Level;
use handoff::matrix::{Matrix, MatrixSpec, RoleView, Trigger};
use std::fmt::Write;

/// An invalid matrix is a failed check (exit 1); a file that cannot be opened, bad usage.
pub fn run(args: CheckArgs) -> Result {
    let mut matrix_path = args.matrix.clone();
    if let Some(config) = &args.config {
        let kafka = handoff::cli::KafkaArgs {
            config: Some(config.clone()),
            bootstrap: None,
        };
        let settings = super::load_settings(&kafka)?;
        println!("configuration {}: ok", config.display());
        println!("{}", settings.redacted_pretty());
        matrix_path = matrix_path.or(settings.matrix.path);
    }
    if let Some(path) = &matrix_path {
        std::fs::File::open(path)
            .map_err(|e| Failure::usage(anyhow::anyhow!("cannot open {}: {e}", path.display())))?;
    }
    match Matrix::load(matrix_path.as_deref()) {
        Ok(m) => {
            print!("{}", report(&m));
            Ok(Outcome::Success)
        }
        Err(e) => {
            eprintln!("{e}");
            Ok(Outcome::ChecksFailed)
        }
    }
}

/// The summary printed for a valid matrix.
pub fn report(m: &Matrix) -> String {
    let spec = m.spec();
    let mut s = String::new();
    let _ = writeln!(
        s,
        "matrix {} is valid: {:?}, rule version {}",
        m.source(),
        spec.name,
        m.version()
    );
    levels(&mut s, spec);
    triggers(&mut s, spec);
    tiers_and_fatigue(&mut s, spec);
    roles(&mut s, m);
    s
}

/// `items` joined with `sep`, or "-" when there are none.
fn list(items: &[String], sep: &str) -> String {
    if items.is_empty() {
        "-".to_string()
    } else {
        items.join(sep)
    }
}

/// "default 0.7, email.* 0.8": a default value followed by its per-action-type overrides.
fn per_action<'a>(default: f64, rules: impl Iterator<Item = (&'a String, f64)>) -> String {
    std::iter::once(format!("default {default}"))
        .chain(rules.map(|(p, v)| format!("{p} {v}")))
        .collect::<Vec<_>>()
        .join(", ")
}

fn levels(s: &mut String, spec: &MatrixSpec) {
    let _ = writeln!(
        s,
        "\nlevels ({} patterns; most specific wins):",
        spec.levels.len()
    );
    for level in Level::ALL {
        let pats: Vec<String> = spec
            .levels
            .iter()
            .filter_map(|r| {
                let four_eyes = if r.quorum().is_default() {
                    String::new()
                } else {
                    format!(" ({})", r.quorum().describe())
                };
                if r.level == level {
                    Some(format!("{}{four_eyes}", r.pattern))
                } else if r.templated == Some(level) {
                    Some(format!("{} (templated)", r.pattern))
                } else {
                    None
                }
            })
            .collect();
        let _ = writeln!(s, "  {:<12} {}", level.as_str(), list(&pats, ", "));
    }
    for (level, n) in &spec.approvals.per_level {
        let _ = writeln!(
            s,
            "  every action at {} needs {} approvals",
            level.as_str(),
            n
        );
    }
    let unknown = &spec.outcomes[&Trigger::UnknownAction];
    let _ = writeln!(
        s,
        "  unknown action types: {} (fail closed)",
        unknown.level.as_str()
    );
}

fn triggers(s: &mut String, spec: &MatrixSpec) {
    let _ = writeln!(s, "\ntriggers:");
    for t in Trigger::ALL {
        let o = &spec.outcomes[&t];
        let state = if spec.enabled(t) { "" } else { "  (disabled)" };
        let four_eyes = if o.quorum.is_default() {
            String::new()
        } else {
            format!(" ({})", o.quorum.describe())
        };
        let _ = writeln!(
            s,
            "  {:<28} {:<11} {:<10} {}{four_eyes}{}",
            t.as_str(),
            o.level.as_str(),
            o.tier.as_str(),
            list(&o.roles, ", "),
            state
        );
    }
    let tr = &spec.triggers;
    let low = &tr.low_confidence;
    let gates = low.per_action.iter().map(|r| (&r.pattern, r.threshold));
    let _ = writeln!(
        s,
        "  confidence gates: {}",
        per_action(low.threshold, gates)
    );
    let amount = &tr.amount_limit;
    let limits = amount.per_action.iter().map(|r| (&r.pattern, r.limit));
    let _ = writeln!(s, "  amount limits: {}", per_action(amount.limit, limits));
    let _ = writeln!(
        s,
        "  phrases: {} policy keywords, {} human-request phrases; {} turns in a row",
        tr.policy_keyword.keywords.len(),
        tr.human_requested.phrases.len(),
        tr.consecutive_low_confidence.turns
    );
}

fn tiers_and_fatigue(s: &mut String, spec: &MatrixSpec) {
    let _ = writeln!(
        s,
        "\ntiers: warm acknowledge within {}, immediate within {}",
        humantime::format_duration(spec.tiers.warm.ack_within),
        humantime::format_duration(spec.tiers.immediate.ack_within)
    );
    let f = &spec.fatigue;
    let limits: Vec<String> = spec
        .roles
        .iter()
        .filter_map(|(n, r)| {
            r.rate_limit
                .as_ref()
                .map(|l| format!("{n} {} per {}", l.max, humantime::format_duration(l.per)))
        })
        .collect();
    let _ = writeln!(
        s,
        "fatigue: group within {}; review digest every {}; sample {:.1}% of execute_log; rate limits: {}",
        humantime::format_duration(f.group_within),
        humantime::format_duration(f.review_every),
        100.0 * f.sample_execute_log,
        if limits.is_empty() { "none".to_string() } else { limits.join(", ") }
    );
}

/// One line per role, its name, view and topic in columns as wide as the longest of each.
fn roles(s: &mut String, m: &Matrix) {
    let _ = writeln!(s, "\nroles:");
    let width = |field: fn(&RoleView) -> &str| {
        let widths = m.roles().iter().map(|r| field(r).chars().count());
        widths.max().unwrap_or(0)
    };
    let name_w = width(|r| &r.name);
    let view_w = width(|r| &r.view);
    let topic_w = width(|r| &r.topic);
    for r in m.roles() {
        let attrs = match &r.attributes {
            None => "all".to_string(),
            Some(a) => a.join(","),
        };
        let hide: Vec<String> = r
            .hide
            .iter()
            .map(|h| {
                serde_json::to_value(h)
                    .ok()
                    .and_then(|v| v.as_str().map(String::from))
                    .unwrap_or_default()
            })
            .collect();
        let redact: Vec<String> = r.redact.iter().map(|(n, _)| n.clone()).collect();
        let _ = writeln!(
            s,
            "  {:<name_w$}  view {:<view_w$}  topic {:<topic_w$}  attributes {}; hides {}; redacts {}; then {}",
            r.name,
            r.view,
            r.topic,
            attrs,
            list(&hide, ","),
            list(&redact, ","),
            r.escalate_to
                .map_or("- (end of chain)", |i| m.roles()[i].name.as_str())
        );
    }
}
