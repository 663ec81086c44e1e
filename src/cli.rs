//! Command-line interface: the subcommands and their arguments. The binary (`src/main.rs`)
//! dispatches each to its function in `src/commands/`.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// The exit codes, as `handoff --help` shows them; the README's table and the header of
/// `src/main.rs` say the same (a test compares them).
pub const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  a check or test failed: an invalid matrix (check), bad input lines (eval), failed rule
     cases (test-rules), a hard_stop decision relaxed (diff without --allow-relax), a
     broken audit pack (audit verify)
  2  bad usage, configuration or matrix: a bad argument or value, an unreadable or invalid
     matrix, scenario, rule-test or events file, an invalid --config file or HANDOFF_
     variable, a metrics address that cannot be bound (run)
  3  runtime failure: Kafka unreachable, delivery failed for good, drain timeout, I/O errors";

/// handoff: decides which AI agent actions may run alone and hands the others to humans.
#[derive(Debug, Parser)]
#[command(name = "handoff", version, about, long_about = None, after_help = EXIT_CODES)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate an escalation matrix: list every error with its location, or print a summary.
    Check(CheckArgs),
    /// Decide JSON lines of AgentAction events offline; one JSON line out per event, in order.
    Eval(EvalArgs),
    /// Run table cases (events and the expected level, triggers, roles) against a matrix.
    TestRules(TestRulesArgs),
    /// Run the stream processor: a consumer-group member deciding every agent action event.
    Run(RunArgs),
    /// Start a local broker, a synthetic agent fleet and the processor, with a live summary.
    /// Ctrl-C stops everything.
    Demo(DemoArgs),
    /// Copy a topic, or a time range of it, into the drill namespace at a speed factor, keeping
    /// keys, partitions and relative timing; every record is marked as a drill. Process it with
    /// `handoff run --drill`.
    Replay(ReplayArgs),
    /// Run a crisis drill from a scenario file on a virtual clock: scripted traffic through
    /// handoff's processor, simulated people answering; report in Markdown and JSON.
    Gameday(GamedayArgs),
    /// Shadow evaluation of a rule change: decide the same recorded events with the old and the
    /// new matrix and report what changes. Exit 1 when a hard_stop would be relaxed (unless
    /// --allow-relax).
    Diff(DiffArgs),
    /// Simulated humans: answer the escalations on every role topic of the matrix with
    /// decisions on human.decisions, after a delay, with a mix of answers and some no-shows.
    /// Runs until Ctrl-C.
    Respond(RespondArgs),
    /// The synthetic agent fleet: JSON lines to standard output, or Avro records to a Kafka
    /// topic with --topic.
    Generate(GenerateArgs),
    /// The reviewers' web inbox: people sign in, see their roles' open escalations and answer
    /// them; its own process beside `run`. Runs until Ctrl-C.
    Inbox(InboxArgs),
    /// Rule changes from the evidence: recorded verdicts, human decisions and events (files of
    /// JSON lines, or topics over a time range) → counts per reason × action type and verified
    /// proposals (report.md, report.json, matrix.proposed.toml in --out).
    Suggest(SuggestArgs),
    /// The audit trail: `export` writes a hash-chained evidence pack of every action decided in
    /// a time range (verdicts, what each person was shown, who answered, when); `verify`
    /// checks a pack and names the first broken link (exit 1).
    Audit(AuditArgs),
    /// Canaries (`[canary]`): `send` injects synthetic escalations with a known right answer
    /// for the people of each role (at the configured rate until Ctrl-C, or --count each at
    /// once for a drill); `report` prints caught, missed and time to answer per role.
    Canary(CanaryArgs),
    /// The HTTP gateway for agents that do not speak Kafka: `POST /v1/actions`, verdicts by
    /// long poll or server-sent events, per-agent keys; its own process beside `run`. Runs
    /// until Ctrl-C.
    Gateway(GatewayArgs),
    /// Make a sign-in token for a person of the inbox: prints the token (give it to them) and
    /// the `token_sha256` line for `[[inbox.people]]`; with --agent, a gateway key and its
    /// `key_sha256` line for `[[gateway.agents]]`.
    Token(TokenArgs),
    /// Make a key pair for signing human decisions: the private key to --out (owner-only, never
    /// replaced), and the `[trust]` lines for the writer and for the processors that trust it.
    Keygen(KeygenArgs),
    /// Approval receipts: `verify` checks one (a JWS, or a verdict's JSON line from `tail`)
    /// against the published keys and what is about to run, and names every claim that does not
    /// match (exit 1).
    Receipt(ReceiptArgs),
    /// Show the records of a topic handoff reads or writes, decoded, as JSON lines: a time
    /// range of it (the whole topic by default), or what arrives (--follow); filtered by action
    /// or session.
    Tail(TailArgs),
}

/// `handoff tail`.
#[derive(Debug, Args)]
pub struct TailArgs {
    /// The cluster and the topic names (the matrix's role topics too).
    #[command(flatten)]
    pub kafka: KafkaArgs,
    /// The topic: any topic of the settings or a role topic of the matrix, or its `drill.` twin.
    pub topic: String,
    /// The records written in this range; with --follow, where to start (now by default).
    #[command(flatten)]
    pub range: TimeRange,
    /// Keep reading what arrives until Ctrl-C.
    #[arg(long, conflicts_with = "to")]
    pub follow: bool,
    /// Only records about this action (its id in the value, or in an escalation's group).
    #[arg(long, value_name = "ID")]
    pub action: Option<String>,
    /// Only records of this session (its id in the value, or the record's key).
    #[arg(long, value_name = "ID")]
    pub session: Option<String>,
    /// Stop after this many records shown.
    #[arg(long, value_name = "N")]
    pub limit: Option<u64>,
}

/// Where the Kafka cluster is and how to talk to it: the same settings as `handoff run`.
#[derive(Debug, Clone, Default, Args)]
pub struct KafkaArgs {
    /// Settings file (TOML, YAML or JSON), layered as for `run`: defaults, then the file, then
    /// HANDOFF_… environment variables.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Brokers (`host:port,…`); overrides kafka.bootstrap_servers. Default 127.0.0.1:19092.
    #[arg(long)]
    pub bootstrap: Option<String>,
}

impl KafkaArgs {
    /// True when either option names a cluster.
    pub fn given(&self) -> bool {
        self.config.is_some() || self.bootstrap.is_some()
    }
}

/// A time on the command line, as every command takes it: RFC 3339 (`2026-12-01T00:00:00Z`,
/// `2026-12-01 00:00:00`) or milliseconds since the epoch. Returns milliseconds.
pub fn parse_time(text: &str) -> Result<i64, String> {
    if let Ok(ms) = text.trim().parse::<i64>() {
        return Ok(ms);
    }
    humantime::parse_rfc3339_weak(text.trim())
        .map(|t| {
            t.duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64)
        })
        .map_err(|e| {
            format!("{e}: give RFC 3339 (2026-12-01T00:00:00Z) or milliseconds since the epoch")
        })
}

/// A time range by record time, `[--from, --to)`, in every command that reads one.
#[derive(Debug, Clone, Copy, Default, Args)]
pub struct TimeRange {
    /// Start of the range, included: RFC 3339 (`2026-12-01T00:00:00Z`) or ms since the epoch.
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub from: Option<i64>,
    /// End of the range, excluded: RFC 3339 or ms since the epoch.
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub to: Option<i64>,
}

impl TimeRange {
    /// An inverted or empty range is refused ([`check_range`]).
    pub fn check(&self) -> Result<(), String> {
        check_range(self.from, self.to)
    }
}

/// An inverted or empty range (`--from` at or after `--to`) is refused, naming both.
pub fn check_range(from: Option<i64>, to: Option<i64>) -> Result<(), String> {
    match (from, to) {
        (Some(a), Some(b)) if a >= b => Err(format!(
            "--from {a} is not before --to {b}: the range [--from, --to) is empty"
        )),
        _ => Ok(()),
    }
}

/// How long after `--to` what happened to the range's actions is still read.
pub const DEFAULT_SETTLE: &str = "24h";

/// `handoff check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Matrix file (TOML, YAML or JSON); with --config, its `[matrix] path`; else the shipped
    /// default.
    #[arg(long)]
    pub matrix: Option<PathBuf>,
    /// Also check this configuration file (every problem listed, secrets resolved, the
    /// settings printed with secrets masked).
    #[arg(long)]
    pub config: Option<PathBuf>,
}

/// `handoff eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Matrix file; the shipped default when absent.
    #[arg(long)]
    pub matrix: Option<PathBuf>,
    /// Events file (JSON lines); standard input when absent.
    #[arg(long)]
    pub events: Option<PathBuf>,
    /// Print only a summary line (events per level, escalation rate) instead of the decisions.
    #[arg(long)]
    pub summary: bool,
}

/// `handoff test-rules`.
#[derive(Debug, Args)]
pub struct TestRulesArgs {
    /// Test file (YAML, TOML or JSON).
    pub file: PathBuf,
    /// Matrix to test; overrides the file's own `matrix`.
    #[arg(long)]
    pub matrix: Option<PathBuf>,
}

/// `handoff run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The cluster and every other setting.
    #[command(flatten)]
    pub kafka: KafkaArgs,
    /// Process drill traffic: every topic (input, outputs, role topics, state) under
    /// `drill.`, consumer group `<group>-drill`.
    #[arg(long)]
    pub drill: bool,
}

/// `handoff suggest`.
#[derive(Debug, Args)]
pub struct SuggestArgs {
    /// The cluster, for reading topics (with --from and --to).
    #[command(flatten)]
    pub kafka: KafkaArgs,
    /// The matrix the proposals change (the shipped one by default, or [matrix] path).
    #[arg(long)]
    pub matrix: Option<PathBuf>,
    /// Events as JSON lines of AgentAction (instead of topics).
    #[arg(long, requires_all = ["verdicts", "decisions"])]
    pub events: Option<PathBuf>,
    /// Verdicts as JSON lines.
    #[arg(long)]
    pub verdicts: Option<PathBuf>,
    /// Human decisions as JSON lines.
    #[arg(long)]
    pub decisions: Option<PathBuf>,
    /// Canaries' verdicts as JSON lines (optional): their actions are left out.
    #[arg(long, requires = "events")]
    pub canaries: Option<PathBuf>,
    /// The actions first decided in this range (with topics, required; with files, all by
    /// default).
    #[command(flatten)]
    pub range: TimeRange,
    /// With topics: how long after --to answers and final verdicts are still read (actions
    /// still open then count as open).
    #[arg(long, default_value = DEFAULT_SETTLE)]
    pub settle: humantime::Duration,
    /// No proposal from fewer cases.
    #[arg(long, default_value_t = 30)]
    pub min_cases: usize,
    /// Where report.md, report.json and matrix.proposed.toml go.
    #[arg(long, default_value = "suggest")]
    pub out: PathBuf,
}

/// `handoff audit`.
#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Export or verify.
    #[command(subcommand)]
    pub command: AuditCommand,
}

/// `handoff audit export|verify`.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Write the evidence pack of the actions first decided in [--from, --to).
    Export(AuditExportArgs),
    /// Check a pack's chain; exit 1 at the first broken link (or a digest that differs).
    Verify(AuditVerifyArgs),
}

/// `handoff audit export`.
#[derive(Debug, Args)]
pub struct AuditExportArgs {
    /// The cluster (and the topic names, the matrix's role topics).
    #[command(flatten)]
    pub kafka: KafkaArgs,
    /// Start of the range, included: RFC 3339 (`2026-12-01T00:00:00Z`) or ms since the epoch.
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub from: i64,
    /// End of the range, excluded: RFC 3339 or ms since the epoch.
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub to: i64,
    /// How long after --to answers, later verdicts and views of the range's actions are still
    /// read (an action still open then is in the pack as open).
    #[arg(long, default_value = DEFAULT_SETTLE)]
    pub settle: humantime::Duration,
    /// Where to write the pack; `audit-FROM-TO.jsonl` by default.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Also write the records behind the pack into this folder as JSON lines (events,
    /// verdicts, decisions, canaries): what `handoff suggest --events … --verdicts …
    /// --decisions … --canaries …` reads.
    #[arg(long, value_name = "DIR")]
    pub records: Option<PathBuf>,
}

/// `handoff audit verify`.
#[derive(Debug, Args)]
pub struct AuditVerifyArgs {
    /// The pack.
    pub file: PathBuf,
    /// The pack's SHA-256 as printed by `export` (kept apart from the file): a pack rewritten
    /// whole, chain and all, differs from it.
    #[arg(long)]
    pub expect: Option<String>,
    /// The published keys (a JWKS file, or a gateway's or inbox's
    /// `https://…/.well-known/jwks.json`): the pack must be signed by one of them.
    #[arg(long, value_name = "FILE|URL")]
    pub jwks: Option<String>,
}

/// `handoff canary`.
#[derive(Debug, Args)]
pub struct CanaryArgs {
    /// Send or report.
    #[command(subcommand)]
    pub command: CanaryCommand,
}

/// `handoff canary send|report`.
#[derive(Debug, Subcommand)]
pub enum CanaryCommand {
    /// Send canaries to the input topic: about `[canary] per_role_per_hour` per role at random
    /// moments until Ctrl-C, or --count per role at once.
    Send(CanarySendArgs),
    /// Caught, missed, timed out and time to answer per role, from the canaries topic.
    Report(CanaryReportArgs),
}

/// `handoff canary send`.
#[derive(Debug, Args)]
pub struct CanarySendArgs {
    /// The cluster, the topics, the matrix and `[canary]`.
    #[command(flatten)]
    pub kafka: KafkaArgs,
    /// Send this many per role at once (a drill), then stop.
    #[arg(long)]
    pub count: Option<u32>,
}

/// `handoff canary report`.
#[derive(Debug, Args)]
pub struct CanaryReportArgs {
    /// The cluster and the topics.
    #[command(flatten)]
    pub kafka: KafkaArgs,
    /// The canaries decided in this range (all by default).
    #[command(flatten)]
    pub range: TimeRange,
    /// Print JSON instead of Markdown.
    #[arg(long)]
    pub json: bool,
}

/// `handoff inbox`.
#[derive(Debug, Args)]
pub struct InboxArgs {
    /// The cluster, `[inbox]` (people, sign-in) and every other setting.
    #[command(flatten)]
    pub kafka: KafkaArgs,
}

/// `handoff gateway`.
#[derive(Debug, Args)]
pub struct GatewayArgs {
    /// The cluster, `[gateway]` (bind, limits, agent keys) and every other setting.
    #[command(flatten)]
    pub kafka: KafkaArgs,
}

/// `handoff receipt`.
#[derive(Debug, Args)]
pub struct ReceiptArgs {
    /// What to do with it.
    #[command(subcommand)]
    pub command: ReceiptCommand,
}

/// `handoff receipt verify`.
#[derive(Debug, Subcommand)]
pub enum ReceiptCommand {
    /// Check a receipt before its action runs; exit 1 naming each claim that does not match.
    Verify(ReceiptVerifyArgs),
}

/// `handoff receipt verify`.
#[derive(Debug, Args)]
pub struct ReceiptVerifyArgs {
    /// The receipt (a compact JWS), or a verdict as JSON (a line of `handoff tail
    /// agent.verdicts`); `-` or nothing reads it from stdin.
    pub receipt: Option<String>,
    /// The published keys: a JWKS file, or a gateway's or inbox's
    /// `https://…/.well-known/jwks.json`.
    #[arg(long, value_name = "FILE|URL")]
    pub jwks: String,
    /// The arguments about to run, as JSON (`@FILE` reads a file): they must be the ones
    /// approved (the revised ones when a person revised them).
    #[arg(long, value_name = "JSON|@FILE")]
    pub arguments: Option<String>,
    /// The action about to run (taken from the verdict when a verdict is given).
    #[arg(long, value_name = "ID")]
    pub action: Option<String>,
    /// The tool about to run.
    #[arg(long, value_name = "NAME")]
    pub tool: Option<String>,
    /// The agent running it.
    #[arg(long, value_name = "ID")]
    pub agent: Option<String>,
    /// Check as of this time (RFC 3339 or ms since the epoch) instead of now.
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub at: Option<i64>,
}

/// `handoff keygen`.
#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// The key's id (the `kid` its signatures name), e.g. inbox-2026-12.
    #[arg(long)]
    pub id: String,
    /// Where to write the private key (PKCS#8 PEM); an existing file is not replaced.
    #[arg(long)]
    pub out: std::path::PathBuf,
}

/// `handoff token`.
#[derive(Debug, Args)]
pub struct TokenArgs {
    /// A key for an agent of the gateway instead of a person's sign-in token.
    #[arg(long)]
    pub agent: bool,
}

/// The demo's default rate, events per second: what the local broker, the processor, the fleet,
/// the simulated people and the inbox sustain together on two cores without falling behind.
pub const DEMO_RATE: u64 = 500;

/// `handoff demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Use this running cluster instead of starting a local broker (with either option).
    #[command(flatten)]
    pub kafka: KafkaArgs,
    /// Port of the local broker.
    #[arg(long, default_value_t = 19092)]
    pub port: u16,
    /// Events per second from the fleet.
    #[arg(long, default_value_t = DEMO_RATE)]
    pub rate: u64,
    /// Stop by itself after this long (e.g. `30s`); runs until Ctrl-C otherwise.
    #[arg(long)]
    pub duration: Option<humantime::Duration>,
}

/// `handoff replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The cluster.
    #[command(flatten)]
    pub kafka: KafkaArgs,
    /// Source topic.
    #[arg(long, default_value = "agent.actions")]
    pub topic: String,
    /// Target topic; `drill.<topic>` by default. Must start with `drill.`.
    #[arg(long, value_name = "TOPIC")]
    pub into: Option<String>,
    /// Start of the range, included: RFC 3339 or ms since the epoch. (`--from` used to name the
    /// source topic: a value that is not a time is still taken as one, with a warning.)
    #[arg(long, value_name = "TIME")]
    pub from: Option<String>,
    /// End of the range, excluded: RFC 3339 or ms since the epoch. (`--to` used to name the target
    /// topic: a value that is not a time is still taken as one, with a warning.)
    #[arg(long, value_name = "TIME")]
    pub to: Option<String>,
    /// Deprecated: use --from.
    #[arg(long, hide = true)]
    pub from_ms: Option<i64>,
    /// Deprecated: use --to.
    #[arg(long, hide = true)]
    pub to_ms: Option<i64>,
    /// 1 = as recorded, 10 = ten times faster, max = as fast as possible.
    #[arg(long, default_value = "1")]
    pub speed: crate::replay::copy::Speed,
    /// Progress file: a run with the same file continues where the last one stopped.
    #[arg(long)]
    pub checkpoint: Option<PathBuf>,
}

/// `handoff gameday`.
#[derive(Debug, Args)]
pub struct GamedayArgs {
    /// Write every output to the drill topics of this cluster (with either option).
    #[command(flatten)]
    pub kafka: KafkaArgs,
    /// Scenario file (TOML, YAML or JSON), e.g. deploy/gameday/flash-crash.toml.
    pub scenario: PathBuf,
    /// Folder for report.md and report.json.
    #[arg(long, default_value = "gameday-report")]
    pub out: PathBuf,
    /// Virtual start time (RFC 3339 or ms since the epoch); a fixed default keeps reports
    /// reproducible.
    #[arg(long, value_name = "TIME", default_value = "1800000000000", value_parser = parse_time)]
    pub start_ms: i64,
    /// Run on the wall clock against a live deployment (`handoff run --drill` on the
    /// cluster of --config or --bootstrap) instead of the virtual clock.
    #[arg(long, requires = "KafkaArgs")]
    pub wall_clock: bool,
    /// With --wall-clock: how long to keep watching after the last event.
    #[arg(long, default_value = "10s")]
    pub grace: humantime::Duration,
}

/// `handoff diff`.
#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The cluster, with --topic.
    #[command(flatten)]
    pub kafka: KafkaArgs,
    /// The matrix in force.
    #[arg(long)]
    pub old: PathBuf,
    /// The proposed matrix.
    #[arg(long)]
    pub new: PathBuf,
    /// Events file (JSON lines, as for eval).
    #[arg(long, conflicts_with = "topic")]
    pub events: Option<PathBuf>,
    /// Or a topic of Avro AgentAction records.
    #[arg(long, required_unless_present = "events")]
    pub topic: Option<String>,
    /// With --topic: the events recorded in this range.
    #[command(flatten)]
    pub range: TimeRange,
    /// Deprecated: use --from.
    #[arg(long, hide = true, conflicts_with = "from")]
    pub from_ms: Option<i64>,
    /// Deprecated: use --to.
    #[arg(long, hide = true, conflicts_with = "to")]
    pub to_ms: Option<i64>,
    /// Changed events listed in the report.
    #[arg(long, default_value_t = 10)]
    pub examples: usize,
    /// Print the report as JSON (every changed event) instead of Markdown.
    #[arg(long)]
    pub json: bool,
    /// Do not fail when a hard_stop decision would be relaxed.
    #[arg(long)]
    pub allow_relax: bool,
}

/// `handoff respond`.
#[derive(Debug, Args)]
pub struct RespondArgs {
    /// The cluster.
    #[command(flatten)]
    pub kafka: KafkaArgs,
    /// The matrix whose roles to answer for (the shipped one by default).
    #[arg(long)]
    pub matrix: Option<PathBuf>,
    /// Time before answering.
    #[arg(long, default_value = "2s")]
    pub delay: humantime::Duration,
    /// Up to this much longer, at random.
    #[arg(long, default_value = "3s")]
    pub jitter: humantime::Duration,
    /// Share of escalations left unanswered (their deadlines fire).
    #[arg(long, default_value_t = 0.05)]
    pub no_show: f64,
    /// Weights of the answers.
    #[arg(
        long,
        default_value = "approve=60,reject=15,revise=10,redirect=5,acknowledge=10"
    )]
    pub mix: String,
    /// Seed of the choices.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// `handoff generate`.
#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// The cluster, with --topic.
    #[command(flatten)]
    pub kafka: KafkaArgs,
    /// Number of events.
    #[arg(long, default_value_t = 1000)]
    pub count: u64,
    /// Seed; the same seed gives the same events.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Multiplies the chance of every trigger-inducing situation (1 ≈ 5% needing a human).
    #[arg(long, default_value_t = 1.0)]
    pub trigger_boost: f64,
    /// Share of records to corrupt on purpose (0..1), to exercise dead-lettering.
    #[arg(long, default_value_t = 0.0)]
    pub malformed: f64,
    /// Produce Avro records to this Kafka topic instead of writing JSON lines.
    #[arg(long)]
    pub topic: Option<String>,
    /// Events per second with --topic (0: as fast as possible).
    #[arg(long, default_value_t = 0)]
    pub rate: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_arguments_are_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn wall_clock_needs_a_cluster() {
        let parse = |args: &[&str]| Cli::try_parse_from(args).map(|_| ());
        assert!(parse(&["handoff", "gameday", "s.toml", "--wall-clock"]).is_err());
        assert!(parse(&[
            "handoff",
            "gameday",
            "s.toml",
            "--wall-clock",
            "--config",
            "f"
        ])
        .is_ok());
        assert!(parse(&[
            "handoff",
            "gameday",
            "s.toml",
            "--wall-clock",
            "--bootstrap",
            "h:1"
        ])
        .is_ok());
    }
}
