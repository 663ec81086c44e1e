//! Command-line interface: subcommands and their arguments, and the text reports they print.
//! `main.rs` dispatches.

use crate::matrix::{Matrix, Trigger};
use clap::{Parser, Subcommand};
use std::fmt::Write;
use std::path::PathBuf;

/// handoff: decides which AI agent actions may run alone and hands the others to humans.
#[derive(Debug, Parser)]
#[command(name = "handoff", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate an escalation matrix: list every error with its location, or print a summary.
    Check {
        /// Matrix file (TOML, YAML or JSON); the shipped default when absent.
        #[arg(long)]
        matrix: Option<PathBuf>,
    },
    /// Decide JSON lines of AgentAction events offline; one JSON line out per event, in order.
    Eval {
        /// Matrix file; the shipped default when absent.
        #[arg(long)]
        matrix: Option<PathBuf>,
        /// Events file (JSON lines); standard input when absent.
        #[arg(long)]
        events: Option<PathBuf>,
        /// Print a summary (events per level, escalation rate) to standard error at the end.
        #[arg(long)]
        summary: bool,
    },
    /// Run table cases (events and the expected level, triggers, roles) against a matrix.
    TestRules {
        /// Test file (YAML, TOML or JSON).
        file: PathBuf,
        /// Matrix to test; overrides the file's own `matrix`.
        #[arg(long)]
        matrix: Option<PathBuf>,
    },
    /// Run the stream processor: a consumer-group member deciding every agent action event.
    Run {
        /// Settings file (TOML, YAML or JSON); defaults and HANDOFF_… environment variables
        /// apply without one.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Process drill traffic: every topic (input, outputs, role topics, state) under
        /// `drill.`, consumer group `<group>-drill`.
        #[arg(long)]
        drill: bool,
    },
    /// Start a local broker, a synthetic agent fleet and the processor, with a live summary.
    /// Ctrl-C stops everything.
    Demo {
        /// Port of the local broker.
        #[arg(long, default_value_t = 19092)]
        port: u16,
        /// Events per second from the fleet.
        #[arg(long, default_value_t = 2000)]
        rate: u64,
        /// Stop by itself after this long (e.g. `30s`); runs until Ctrl-C otherwise.
        #[arg(long)]
        duration: Option<humantime::Duration>,
        /// Use this running broker instead of starting one.
        #[arg(long)]
        bootstrap: Option<String>,
    },
    /// Copy a topic, or a time range of it, into the drill namespace at a speed factor, keeping
    /// keys, partitions and relative timing; every record is marked as a drill. Process it with
    /// `handoff run --drill`.
    Replay {
        /// Source topic.
        #[arg(long, default_value = "agent.actions")]
        from: String,
        /// Target topic; `drill.<from>` by default. Must start with `drill.`.
        #[arg(long)]
        to: Option<String>,
        /// First record timestamp included (ms since the epoch).
        #[arg(long)]
        from_ms: Option<i64>,
        /// First record timestamp excluded.
        #[arg(long)]
        to_ms: Option<i64>,
        /// 1 = as recorded, 10 = ten times faster, max = as fast as possible.
        #[arg(long, default_value = "1")]
        speed: crate::replay::copy::Speed,
        /// Progress file: a run with the same file continues where the last one stopped.
        #[arg(long)]
        checkpoint: Option<PathBuf>,
        /// Brokers.
        #[arg(long, default_value = "127.0.0.1:19092")]
        bootstrap: String,
    },
    /// Run a crisis drill from a scenario file on a virtual clock: scripted traffic through
    /// handoff's processor, simulated people answering; report in Markdown and JSON.
    Gameday {
        /// Scenario file (TOML, YAML or JSON), e.g. deploy/gameday/flash-crash.toml.
        scenario: PathBuf,
        /// Folder for report.md and report.json.
        #[arg(long, default_value = "gameday-report")]
        out: PathBuf,
        /// Write every output to the drill topics of this Kafka cluster.
        #[arg(long)]
        bootstrap: Option<String>,
        /// Virtual start time (ms since the epoch); a fixed default keeps reports reproducible.
        #[arg(long, default_value_t = 1_800_000_000_000)]
        start_ms: i64,
        /// Run on the wall clock against a live deployment (`handoff run --drill` on the
        /// --bootstrap cluster) instead of the virtual clock.
        #[arg(long, requires = "bootstrap")]
        wall_clock: bool,
        /// With --wall-clock: how long to keep watching after the last event.
        #[arg(long, default_value = "10s")]
        grace: humantime::Duration,
    },
    /// Shadow evaluation of a rule change: decide the same recorded events with the old and the
    /// new matrix and report what changes. Exit 1 when a hard_stop would be relaxed (unless
    /// --allow-relax).
    Diff {
        /// The matrix in force.
        #[arg(long)]
        old: PathBuf,
        /// The proposed matrix.
        #[arg(long)]
        new: PathBuf,
        /// Events file (JSON lines, as for eval).
        #[arg(long, conflicts_with = "topic")]
        events: Option<PathBuf>,
        /// Or a topic of Avro AgentAction records.
        #[arg(long, required_unless_present = "events")]
        topic: Option<String>,
        /// Brokers, with --topic.
        #[arg(long, default_value = "127.0.0.1:19092")]
        bootstrap: String,
        /// With --topic: first record timestamp included (ms since the epoch).
        #[arg(long)]
        from_ms: Option<i64>,
        /// With --topic: first record timestamp excluded.
        #[arg(long)]
        to_ms: Option<i64>,
        /// Changed events listed in the report.
        #[arg(long, default_value_t = 10)]
        examples: usize,
        /// Print the report as JSON (every changed event) instead of Markdown.
        #[arg(long)]
        json: bool,
        /// Do not fail when a hard_stop decision would be relaxed.
        #[arg(long)]
        allow_relax: bool,
    },
    /// Simulated humans: answer the escalations on every role topic of the matrix with
    /// decisions on human.decisions, after a delay, with a mix of answers and some no-shows.
    /// Runs until Ctrl-C.
    Respond {
        /// Brokers.
        #[arg(long, default_value = "127.0.0.1:19092")]
        bootstrap: String,
        /// The matrix whose roles to answer for (the shipped one by default).
        #[arg(long)]
        matrix: Option<PathBuf>,
        /// Time before answering.
        #[arg(long, default_value = "2s")]
        delay: humantime::Duration,
        /// Up to this much longer, at random.
        #[arg(long, default_value = "3s")]
        jitter: humantime::Duration,
        /// Share of escalations left unanswered (their deadlines fire).
        #[arg(long, default_value_t = 0.05)]
        no_show: f64,
        /// Weights of the answers.
        #[arg(
            long,
            default_value = "approve=60,reject=15,revise=10,redirect=5,acknowledge=10"
        )]
        mix: String,
        /// Seed of the choices.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// The synthetic agent fleet: JSON lines to standard output, or Avro records to a Kafka
    /// topic with --topic.
    Generate {
        /// Number of events.
        #[arg(long, default_value_t = 1000)]
        count: u64,
        /// Seed; the same seed gives the same events.
        #[arg(long, default_value_t = 7)]
        seed: u64,
        /// Multiplies the chance of every trigger-inducing situation (1 ≈ 5% needing a human).
        #[arg(long, default_value_t = 1.0)]
        trigger_boost: f64,
        /// Share of records to corrupt on purpose (0..1), to exercise dead-lettering.
        #[arg(long, default_value_t = 0.0)]
        malformed: f64,
        /// Produce Avro records to this Kafka topic instead of writing JSON lines.
        #[arg(long)]
        topic: Option<String>,
        /// Events per second with --topic (0: as fast as possible).
        #[arg(long, default_value_t = 0)]
        rate: u64,
        /// Brokers, with --topic.
        #[arg(long, default_value = "127.0.0.1:19092")]
        bootstrap: String,
    },
}

/// "default 0.7, email.* 0.8": a default value followed by its per-action-type overrides.
fn per_action<'a>(default: f64, rules: impl Iterator<Item = (&'a String, f64)>) -> String {
    std::iter::once(format!("default {default}"))
        .chain(rules.map(|(p, v)| format!("{p} {v}")))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The summary `check` prints for a valid matrix.
pub fn check_report(m: &Matrix) -> String {
    let spec = m.spec();
    let mut s = String::new();
    let _ = writeln!(
        s,
        "matrix {} is valid: {:?}, rule version {}",
        m.source(),
        spec.name,
        m.version()
    );
    let _ = writeln!(
        s,
        "\nlevels ({} patterns; most specific wins):",
        spec.levels.len()
    );
    for level in crate::event::Level::ALL {
        let pats: Vec<String> = spec
            .levels
            .iter()
            .filter_map(|r| {
                if r.level == level {
                    Some(r.pattern.clone())
                } else if r.templated == Some(level) {
                    Some(format!("{} (templated)", r.pattern))
                } else {
                    None
                }
            })
            .collect();
        let _ = writeln!(
            s,
            "  {:<12} {}",
            level.as_str(),
            if pats.is_empty() {
                "-".to_string()
            } else {
                pats.join(", ")
            }
        );
    }
    let unknown = &spec.outcomes[&Trigger::UnknownAction];
    let _ = writeln!(
        s,
        "  unknown action types: {} (fail closed)",
        unknown.level.as_str()
    );
    let _ = writeln!(s, "\ntriggers:");
    for t in Trigger::ALL {
        let o = &spec.outcomes[&t];
        let state = if spec.enabled(t) { "" } else { "  (disabled)" };
        let _ = writeln!(
            s,
            "  {:<28} {:<11} {:<10} {}{}",
            t.as_str(),
            o.level.as_str(),
            o.tier.as_str(),
            if o.roles.is_empty() {
                "-".to_string()
            } else {
                o.roles.join(", ")
            },
            state
        );
    }
    let tr = &spec.triggers;
    let _ = writeln!(
        s,
        "  confidence gates: {}",
        per_action(
            tr.low_confidence.threshold,
            tr.low_confidence
                .per_action
                .iter()
                .map(|r| (&r.pattern, r.threshold))
        )
    );
    let _ = writeln!(
        s,
        "  amount limits: {}",
        per_action(
            tr.amount_limit.limit,
            tr.amount_limit
                .per_action
                .iter()
                .map(|r| (&r.pattern, r.limit))
        )
    );
    let _ = writeln!(
        s,
        "  phrases: {} policy keywords, {} human-request phrases; {} turns in a row",
        tr.policy_keyword.keywords.len(),
        tr.human_requested.phrases.len(),
        tr.consecutive_low_confidence.turns
    );
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
    let _ = writeln!(s, "\nroles:");
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
        let redact: Vec<&str> = r.redact.iter().map(|(n, _)| n.as_str()).collect();
        let _ = writeln!(
            s,
            "  {:<12} view {:<12} topic {:<26} attributes {}; hides {}; redacts {}; then {}",
            r.name,
            r.view,
            r.topic,
            attrs,
            if hide.is_empty() {
                "-".into()
            } else {
                hide.join(",")
            },
            if redact.is_empty() {
                "-".into()
            } else {
                redact.join(",")
            },
            r.escalate_to
                .map_or("- (end of chain)", |i| m.roles()[i].name.as_str())
        );
    }
    s
}
