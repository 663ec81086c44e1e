//! Settings of `handoff run`: defaults, then a file, then the environment (`HANDOFF_…`, `__`
//! between levels: `HANDOFF_KAFKA__BOOTSTRAP_SERVERS=host:9092`). Parsed into serde structs with
//! `deny_unknown_fields`, validated without I/O (every problem listed at once, naming the field
//! and the value), then built into the pipeline. Secrets never appear in logs or errors.

use crate::problems::Problems;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

pub mod canary;
pub mod gateway;
pub mod inbox;
pub mod kafka;
mod load;
pub mod notify;
pub mod registry;
pub mod secret;
pub mod trust;
mod validate;

pub use load::{is_secret, is_secret_setting, redact_message};

pub use canary::{CanaryCase, CanarySettings};
pub use gateway::{GatewayAgent, GatewaySettings};
pub use inbox::{InboxAuth, InboxSettings, Person};
pub use notify::NotifySettings;
pub use registry::{RegistrySettings, SubjectStrategy};
pub use trust::{DecisionKey, PublishedKey, TrustSettings};

/// Everything `handoff run` needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Kafka connection and client settings.
    #[serde(default)]
    pub kafka: KafkaSettings,
    /// Topic names.
    #[serde(default)]
    pub topics: TopicSettings,
    /// How input records are framed.
    #[serde(default)]
    pub input: InputSettings,
    /// The escalation matrix.
    #[serde(default)]
    pub matrix: MatrixSettings,
    /// Throughput and shutdown.
    #[serde(default)]
    pub pipeline: PipelineSettings,
    /// Logging.
    #[serde(default)]
    pub log: LogSettings,
    /// The Prometheus endpoint.
    #[serde(default)]
    pub metrics: MetricsSettings,
    /// The reviewers' web inbox (`handoff inbox`).
    #[serde(default)]
    pub inbox: InboxSettings,
    /// Canaries: synthetic escalations with a known answer (sent by `handoff canary`).
    #[serde(default)]
    pub canary: CanarySettings,
    /// Notifications of escalations (sent by `handoff inbox`).
    #[serde(default)]
    pub notify: NotifySettings,
    /// The HTTP gateway for agents (`handoff gateway`).
    #[serde(default)]
    pub gateway: GatewaySettings,
    /// Signed human decisions: the keys trusted, and the key this process signs with.
    #[serde(default)]
    pub trust: TrustSettings,
}

/// The Prometheus endpoint.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsSettings {
    /// Serve `/metrics`.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Address to serve it on (with `/healthz`, `/readyz` and `POST /-/reload`); localhost
    /// by default.
    #[serde(default = "default_metrics_bind")]
    pub bind: String,
    /// `/healthz` fails when the consumer loop, or a worker with records waiting, has not moved
    /// for this long. Longer than `pipeline.shutdown_deadline` (the longest a drain may hold
    /// them).
    #[serde(default = "default_stuck_after", with = "humantime_serde")]
    pub stuck_after: Duration,
    /// Take `POST /-/reload` (off by default, as Prometheus's `--web.enable-lifecycle`): the
    /// rules are then reloaded for a request that brings `reload_token` as a bearer token.
    /// SIGHUP and `[matrix] watch` reload without it.
    #[serde(default)]
    pub enable_reload: bool,
    /// The bearer token `POST /-/reload` must bring (at least 16 bytes; a reference such as
    /// `file:/run/secrets/reload-token`). Required with `enable_reload`.
    #[serde(default, skip_serializing)]
    pub reload_token: Option<String>,
    /// Connections open at once on the metrics port; more are closed when accepted.
    #[serde(default = "default_metrics_connections")]
    pub max_connections: usize,
    /// Host names this port answers to beside addresses and `localhost` (DNS rebinding).
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
}

fn default_metrics_connections() -> usize {
    64
}

impl std::fmt::Debug for MetricsSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsSettings")
            .field("enabled", &self.enabled)
            .field("bind", &self.bind)
            .field("stuck_after", &self.stuck_after)
            .field("enable_reload", &self.enable_reload)
            .field("reload_token", &self.reload_token.as_ref().map(|_| "***"))
            .field("max_connections", &self.max_connections)
            .field("allowed_hosts", &self.allowed_hosts)
            .finish()
    }
}

fn default_stuck_after() -> Duration {
    Duration::from_secs(60)
}

fn default_metrics_bind() -> String {
    "127.0.0.1:9464".into()
}

/// Kafka connection and client settings. Its `Debug` masks the values of secret properties
/// (`sasl.password`, …: resolved, they are the secrets themselves).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSettings {
    /// Comma-separated `host:port` list.
    #[serde(default = "default_bootstrap")]
    pub bootstrap_servers: String,
    /// Consumer group of the processors.
    #[serde(default = "default_group")]
    pub group_id: String,
    /// Create missing topics at start-up (turn off where that is not allowed).
    #[serde(default = "yes")]
    pub create_topics: bool,
    /// Partitions of topics handoff creates.
    #[serde(default = "default_partitions")]
    pub partitions: i32,
    /// Replication factor of topics handoff creates.
    #[serde(default = "default_replication")]
    pub replication_factor: i32,
    /// Group session timeout (tansu answers a join after half of it: keep it short locally).
    #[serde(default = "default_session_timeout", with = "humantime_serde")]
    pub session_timeout: Duration,
    /// librdkafka properties for both clients (security settings included: `security.protocol`,
    /// `sasl.*`, `ssl.*`).
    #[serde(default, deserialize_with = "props")]
    pub common: BTreeMap<String, String>,
    /// librdkafka properties for the consumer only.
    #[serde(default, deserialize_with = "props")]
    pub consumer: BTreeMap<String, String>,
    /// librdkafka properties for the producer only.
    #[serde(default, deserialize_with = "props")]
    pub producer: BTreeMap<String, String>,
}

/// Topic names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopicSettings {
    /// Agent action events (input).
    #[serde(default = "default_input_topic")]
    pub input: String,
    /// Verdicts for agents.
    #[serde(default = "default_verdicts_topic")]
    pub verdicts: String,
    /// Records that could not be processed.
    #[serde(default = "default_dlq_topic")]
    pub dead_letter: String,
    /// Human decisions (input); keyed by session id and partitioned like `input`.
    #[serde(default = "default_decisions_topic")]
    pub decisions: String,
    /// handoff's own compacted changelog of per-session state; partitioned like `input`.
    #[serde(default = "default_changelog_topic")]
    pub changelog: String,
    /// The review queue: digests of deferred and sampled actions for spot checks.
    #[serde(default = "default_review_topic")]
    pub review: String,
    /// Every detail view and answer in the inbox (who, when, which escalation).
    #[serde(default = "default_audit_topic")]
    pub audit: String,
    /// Every notification attempt (escalation, receiver, attempt, status, latency).
    #[serde(default = "default_notifications_topic")]
    pub notifications: String,
    /// Verdicts of canaries (synthetic escalations with a known answer), kept from the agents.
    #[serde(default = "default_canaries_topic")]
    pub canaries: String,
    /// The first use of each approval receipt (compacted, keyed by action id), written by the
    /// gateway when an executor redeems one: a second use is refused.
    #[serde(default = "default_receipts_used_topic")]
    pub receipts_used: String,
    /// Put before every role topic of the matrix (`handoff run --drill` sets `drill.`).
    #[serde(default)]
    pub role_prefix: String,
}

impl TopicSettings {
    /// The topic of a matrix role whose own topic is `role_topic` (the matrix's `topic`),
    /// under `role_prefix`.
    pub fn role_topic(&self, role_topic: &str) -> String {
        role_topic_under(&self.role_prefix, role_topic)
    }
}

/// A role's topic under `prefix` (`drill.` for drills): the one spelling of a role topic.
pub fn role_topic_under(prefix: &str, role_topic: &str) -> String {
    format!("{prefix}{role_topic}")
}

/// The prefix of every drill topic.
pub const DRILL_PREFIX: &str = "drill.";

/// Framing of input records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InputFormat {
    /// A plain Avro datum of the shipped `AgentAction` schema.
    Avro,
    /// Confluent wire format: magic byte 0, 4-byte schema id, datum.
    Confluent,
}

/// How input records are framed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputSettings {
    /// `avro` or `confluent`.
    #[serde(default = "default_format")]
    pub format: InputFormat,
    /// With `confluent`: schema ids written with the shipped `AgentAction` schema (or a
    /// compatible one). Any other id is a dead letter.
    #[serde(default)]
    pub schema_ids: Vec<u32>,
    /// Largest record accepted; larger ones are dead letters.
    #[serde(default = "default_max_record")]
    pub max_record_bytes: usize,
    /// A Confluent-compatible schema registry (see [`registry`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema_registry: Option<RegistrySettings>,
}

/// The escalation matrix.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatrixSettings {
    /// Matrix file; the shipped default when absent.
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// Look at the file this often and reload it when its content changed (off when absent).
    #[serde(default, with = "humantime_serde")]
    pub watch: Option<Duration>,
}

/// Throughput and shutdown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineSettings {
    /// Input messages processed but not yet fully delivered, at most.
    #[serde(default = "default_max_in_flight")]
    pub max_in_flight: usize,
    /// Threads that decode, decide and produce; each owns a share of the partitions (a
    /// partition's events always go to the same worker, in order).
    #[serde(default = "default_workers")]
    pub workers: usize,
    /// How often delivered offsets are stored for commit.
    #[serde(default = "default_store_interval", with = "humantime_serde")]
    pub offset_store_interval: Duration,
    /// On SIGTERM/SIGINT: time to drain in-flight work before giving up.
    #[serde(default = "default_drain", with = "humantime_serde")]
    pub shutdown_deadline: Duration,
    /// Give up starting when the brokers do not answer within this time.
    #[serde(default = "default_connect_timeout", with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// How often acknowledgement deadlines are checked: a deadline fires within one tick of
    /// its due time.
    #[serde(default = "default_timer_tick", with = "humantime_serde")]
    pub timer_tick: Duration,
    /// A session with nothing open or queued is forgotten (memory and changelog) after this
    /// long without a change: its streak and its closed escalation ids go with it.
    #[serde(default = "default_retention", with = "humantime_serde")]
    pub state_retention: Duration,
    /// How session records are written to the changelog: `binary` (a version byte, then
    /// postcard) or `json` (what versions before it wrote; for a rolling upgrade, until every
    /// processor and inbox reads the binary form). Both are always read.
    #[serde(default)]
    pub changelog_format: crate::state::ChangelogFormat,
}

/// Log output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Logging.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    /// `text` or `json`.
    #[serde(default = "default_log_format")]
    pub format: LogFormat,
    /// A `tracing` filter, e.g. `info` or `handoff=debug,rdkafka=warn`.
    #[serde(default = "default_log_level")]
    pub level: String,
}

fn yes() -> bool {
    true
}
fn default_bootstrap() -> String {
    "127.0.0.1:19092".into()
}
fn default_group() -> String {
    "handoff".into()
}
fn default_partitions() -> i32 {
    4
}
fn default_replication() -> i32 {
    1
}
fn default_session_timeout() -> Duration {
    Duration::from_secs(6)
}
fn default_input_topic() -> String {
    "agent.actions".into()
}
fn default_verdicts_topic() -> String {
    "agent.verdicts".into()
}
fn default_dlq_topic() -> String {
    "agent.actions.dlq".into()
}
fn default_decisions_topic() -> String {
    "human.decisions".into()
}
fn default_changelog_topic() -> String {
    "handoff.state".into()
}
fn default_audit_topic() -> String {
    "handoff.audit".into()
}
fn default_notifications_topic() -> String {
    "handoff.notifications".into()
}
fn default_receipts_used_topic() -> String {
    "handoff.receipts.used".into()
}

fn default_canaries_topic() -> String {
    "handoff.canaries".into()
}
fn default_review_topic() -> String {
    "handoff.review".into()
}
fn default_retention() -> Duration {
    Duration::from_secs(24 * 3600)
}
fn default_timer_tick() -> Duration {
    Duration::from_secs(1)
}
fn default_format() -> InputFormat {
    InputFormat::Avro
}
fn default_max_record() -> usize {
    crate::event::DEFAULT_MAX_RECORD_BYTES
}
fn default_max_in_flight() -> usize {
    20_000
}
fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get().clamp(1, 8))
}
fn default_store_interval() -> Duration {
    Duration::from_millis(200)
}
fn default_drain() -> Duration {
    Duration::from_secs(20)
}
fn default_connect_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_log_format() -> LogFormat {
    LogFormat::Text
}
fn default_log_level() -> String {
    "info".into()
}

macro_rules! default_from_empty {
    ($($t:ty),*) => {$(
        impl Default for $t {
            fn default() -> Self {
                serde_json::from_value(Value::Object(Default::default()))
                    .expect("every field has a default")
            }
        }
    )*};
}
default_from_empty!(
    KafkaSettings,
    TopicSettings,
    InputSettings,
    PipelineSettings,
    LogSettings,
    MetricsSettings,
    Settings
);

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file or the environment could not be read.
    #[error("cannot read configuration {source_name}: {message}")]
    Read {
        /// File name or "environment".
        source_name: String,
        /// What went wrong.
        message: String,
    },
    /// Every problem found.
    #[error("configuration {source_name} has {} problem(s):\n{problems}", problems.len())]
    Invalid {
        /// File name.
        source_name: String,
        /// The problems.
        problems: Problems,
    },
}

impl Settings {
    /// The same settings for drill traffic: every topic under `drill.`, role topics included,
    /// its own consumer group — so a drill never reaches a real person's topic.
    pub fn drill(&self) -> Settings {
        let mut s = self.clone();
        let t = &mut s.topics;
        for name in [
            &mut t.input,
            &mut t.verdicts,
            &mut t.dead_letter,
            &mut t.decisions,
            &mut t.changelog,
            &mut t.review,
            &mut t.audit,
            &mut t.notifications,
            &mut t.canaries,
            &mut t.receipts_used,
        ] {
            if !name.starts_with(DRILL_PREFIX) {
                *name = format!("{DRILL_PREFIX}{name}");
            }
        }
        t.role_prefix = DRILL_PREFIX.to_string();
        if !s.kafka.group_id.ends_with("-drill") {
            s.kafka.group_id.push_str("-drill");
        }
        s
    }

    /// True for drill settings.
    pub fn is_drill(&self) -> bool {
        self.topics.role_prefix == DRILL_PREFIX
    }
}

/// librdkafka properties may be written as strings, numbers or booleans; they are passed on as
/// strings.
fn props<'de, D: serde::Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Prop {
        S(String),
        I(i64),
        F(f64),
        B(bool),
    }
    let m: BTreeMap<String, Prop> = BTreeMap::deserialize(d)?;
    Ok(m.into_iter()
        .map(|(k, v)| {
            let v = match v {
                Prop::S(s) => s,
                Prop::I(i) => i.to_string(),
                Prop::F(f) => f.to_string(),
                Prop::B(b) => b.to_string(),
            };
            (k, v)
        })
        .collect())
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod shipped {
    #[test]
    fn the_shipped_example_config_loads_and_matches_the_defaults() {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/handoff.toml");
        let s = super::Settings::load_with_env(Some(&p), Vec::new()).unwrap();
        assert_eq!(
            s,
            super::Settings::default(),
            "deploy/handoff.toml documents the defaults"
        );
    }

    #[test]
    fn the_kubernetes_config_loads_and_names_its_secrets_by_file() {
        let p =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/kubernetes/handoff.toml");
        let s = super::Settings::load_with_env(Some(&p), Vec::new()).unwrap();
        assert_eq!(
            s.metrics.bind, "0.0.0.0:9464",
            "probed from outside the pod"
        );
        assert!(s.matrix.watch.is_some(), "ConfigMap updates are reloaded");
        assert!(s.kafka.common["sasl.password"].starts_with("file:"));
        let e = s.with_secrets_from(|_| None).unwrap_err().to_string();
        assert!(e.contains("/run/secrets/kafka/password"), "{e}");
    }

    #[test]
    fn the_kubernetes_inbox_config_loads_and_reads_its_key_from_a_secret_file() {
        let p =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/kubernetes/inbox.toml");
        let s = super::Settings::load_with_env(Some(&p), Vec::new()).unwrap();
        assert_eq!(s.inbox.bind, "0.0.0.0:9870", "reached from outside the pod");
        assert!(s.inbox.cookie_key.as_deref().unwrap().starts_with("file:"));
        let e = s.with_secrets_from(|_| None).unwrap_err().to_string();
        assert!(e.contains("inbox.cookie_key"), "{e}");
    }
}
