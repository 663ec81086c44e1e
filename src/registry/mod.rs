//! A Confluent-compatible schema registry: the writer schema of each framed input record is
//! looked up by its id ([`client`]), checked once against handoff's reader schema and kept in
//! a bounded cache; output schemas get their ids once at start-up ([`output`]).
//!
//! A writer schema equal to the reader's (same Parsing Canonical Form) decodes on the typed
//! fast path; any other compatible one through apache-avro's schema resolution. An id the
//! registry does not know, or a schema handoff cannot read, is a dead letter; a registry that
//! does not answer is retried, the worker waiting on the record, so no good record is lost.

pub mod client;
pub mod output;

use crate::error::{Classify, ErrorClass};
use crate::event::wire::split_frame;
use crate::event::{AgentAction, Codec, CodecError, SchemaKind};
use crate::logs::LogLimiter;
use apache_avro::schema_compatibility::SchemaCompatibility;
use prometheus::{IntCounter, IntCounterVec, Opts};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, RwLock};
use std::time::Duration;

pub use client::Client;

/// Why the registry did not give a usable schema.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The registry does not know the id (HTTP 404, error 40403).
    #[error("schema id {id} is not known to the registry ({message})")]
    NotFound {
        /// The id.
        id: u32,
        /// The registry's message.
        message: String,
    },
    /// The writer schema cannot be read as handoff's schema.
    #[error("schema id {id} cannot be read as {reader}: {reason}")]
    Incompatible {
        /// The id.
        id: u32,
        /// The reader record's name.
        reader: &'static str,
        /// Why (the first incompatibility found).
        reason: String,
    },
    /// The registry did not answer, or answered with an error of its own (5xx, refused
    /// credentials, a timeout, an unreadable answer): retried.
    #[error("schema registry {url} is unavailable: {message}")]
    Unavailable {
        /// The registry.
        url: String,
        /// What happened.
        message: String,
    },
    /// The registry refused a lookup or a registration at start-up.
    #[error("schema registry refused subject {subject}: HTTP {status}, {message}")]
    Rejected {
        /// The subject.
        subject: String,
        /// HTTP status.
        status: u16,
        /// The registry's message.
        message: String,
    },
    /// The client could not be set up (password or CA file), or an output schema is not
    /// registered and may not be.
    #[error("schema registry: {0}")]
    Setup(String),
}

impl Classify for RegistryError {
    fn class(&self) -> ErrorClass {
        match self {
            RegistryError::NotFound { .. } | RegistryError::Incompatible { .. } => {
                ErrorClass::DeadLetter
            }
            RegistryError::Unavailable { .. } => ErrorClass::Retry,
            RegistryError::Rejected { .. } | RegistryError::Setup(_) => ErrorClass::Fatal,
        }
    }
}

impl RegistryError {
    /// Stable short name, for dead-letter headers and metric labels.
    pub fn reason(&self) -> &'static str {
        match self {
            RegistryError::NotFound { .. } => "unknown_schema",
            RegistryError::Incompatible { .. } => "incompatible_schema",
            RegistryError::Unavailable { .. } => "registry_unavailable",
            RegistryError::Rejected { .. } => "registry_rejected",
            RegistryError::Setup(_) => "registry_setup",
        }
    }
}

/// How the datums of one writer schema are read.
#[derive(Debug)]
pub enum Writer {
    /// The reader schema itself (same canonical form): the typed decoder.
    Same,
    /// An older version handoff ships (`schemas/history/`): the typed decoder of that version,
    /// as for a plain record naming it in its header.
    Shipped(u32),
    /// A compatible other version: apache-avro resolves it to the reader schema.
    Resolved(Box<apache_avro::Schema>),
    /// Not readable; every record written with it is a dead letter.
    Incompatible(String),
}

/// Why apache-avro could not make the canonical form of a schema that it parsed, if it could
/// not: it expects every `size`, `precision` and `scale` to be an integer (or a string of one)
/// wherever it appears, and panics on anything else (`"precision": "io.handoff"` on a record,
/// found by the `registry` fuzz target).
fn not_canonicalizable(schema: &str) -> Option<String> {
    fn walk(v: &serde_json::Value) -> Option<String> {
        match v {
            // A field's default is a value, not a schema: its keys are data.
            serde_json::Value::Object(m) => {
                m.iter()
                    .filter(|(k, _)| *k != "default")
                    .find_map(|(k, v)| {
                        let integer = v.as_i64().is_some()
                            || v.as_str().is_some_and(|s| s.parse::<i64>().is_ok());
                        if matches!(k.as_str(), "size" | "precision" | "scale") && !integer {
                            return Some(format!("the schema's {k:?} is {v}, not an integer"));
                        }
                        walk(v)
                    })
            }
            serde_json::Value::Array(items) => items.iter().find_map(walk),
            _ => None,
        }
    }
    let v: serde_json::Value = serde_json::from_str(schema).ok()?;
    walk(&v)
}

/// `handoff_schema_registry_requests_total` results, in label order.
const RESULTS: [&str; 4] = ["ok", "not_found", "unavailable", "rejected"];

/// The registry shared by every worker: client, reader schema, bounded cache, counters.
pub struct SchemaRegistry {
    client: Client,
    reader: apache_avro::Schema,
    reader_canonical: String,
    /// The canonical form of each shipped version of the reader's schema, version 1 first.
    shipped_canonical: Vec<String>,
    reader_name: &'static str,
    cache: RwLock<Cache>,
    capacity: usize,
    backoff_initial: Duration,
    backoff_max: Duration,
    requests: IntCounterVec,
    counters: [IntCounter; 4],
    /// "Unavailable" log lines, at most one a second.
    unavailable_log: LogLimiter,
}

impl std::fmt::Debug for SchemaRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SchemaRegistry")
            .field("client", &self.client)
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
struct Cache {
    by_id: HashMap<u32, Arc<Writer>>,
    order: VecDeque<u32>,
}

impl SchemaRegistry {
    /// The registry of `settings`, reading records as `AgentAction` (the codec's schema).
    pub fn new(
        settings: &crate::config::RegistrySettings,
        codec: &Codec,
    ) -> Result<Self, RegistryError> {
        let reader = codec.generic_schema(SchemaKind::AgentAction).clone();
        let requests = IntCounterVec::new(
            Opts::new(
                "handoff_schema_registry_requests_total",
                "Requests to the schema registry, by result (ok, not_found, unavailable: \
                 retried, rejected).",
            ),
            &["result"],
        )
        .expect("valid metric");
        Ok(SchemaRegistry {
            client: Client::new(settings)?,
            reader_canonical: reader.canonical_form(),
            shipped_canonical: SchemaKind::AgentAction
                .versions()
                .iter()
                .map(|text| {
                    apache_avro::Schema::parse_str(text)
                        .expect("the shipped schemas parse (the codec parsed them)")
                        .canonical_form()
                })
                .collect(),
            reader,
            reader_name: SchemaKind::AgentAction.name(),
            cache: RwLock::new(Cache::default()),
            capacity: settings.cache_capacity.max(1),
            backoff_initial: settings.backoff_initial,
            backoff_max: settings.backoff_max,
            counters: RESULTS.map(|r| requests.with_label_values(&[r])),
            requests,
            unavailable_log: LogLimiter::new(1000),
        })
    }

    /// The HTTP client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Exposes the request counter on `registry` (once per registry; again is a no-op).
    pub fn register_metrics(&self, registry: &prometheus::Registry) {
        let _ = registry.register(Box::new(self.requests.clone()));
    }

    /// Requests so far with `result` (`ok`, `not_found`, `unavailable`, `rejected`).
    pub fn requests(&self, result: &str) -> u64 {
        RESULTS
            .iter()
            .position(|r| *r == result)
            .map_or(0, |i| self.counters[i].get())
    }

    pub(crate) fn count(&self, e: Option<&RegistryError>) {
        let i = match e {
            None => 0,
            Some(RegistryError::NotFound { .. }) => 1,
            Some(RegistryError::Unavailable { .. }) => 2,
            Some(_) => 3,
        };
        self.counters[i].inc();
    }

    /// Writer schemas held.
    pub fn cached(&self) -> usize {
        self.cache.read().expect("cache lock").by_id.len()
    }

    /// How to read datums of schema `id`: from the cache, else from the registry — retried
    /// with growing waits, for as long as it takes, while the registry is unavailable.
    pub fn writer(&self, id: u32) -> Result<Arc<Writer>, RegistryError> {
        if let Some(w) = self.cache.read().expect("cache lock").by_id.get(&id) {
            return Ok(w.clone());
        }
        let mut attempt = 0u32;
        loop {
            let fetched = self.client.schema_by_id(id);
            self.count(fetched.as_ref().err());
            match fetched {
                Ok(s) => {
                    let w = Arc::new(self.resolve(id, &s));
                    self.insert(id, w.clone());
                    return Ok(w);
                }
                Err(e) if e.class() == ErrorClass::Retry => {
                    let wait = client::backoff(self.backoff_initial, self.backoff_max, attempt);
                    self.log_unavailable(id, &e, attempt, wait);
                    std::thread::sleep(wait);
                    attempt = attempt.saturating_add(1);
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// At most one line a second while the registry is unavailable.
    fn log_unavailable(&self, id: u32, e: &RegistryError, attempt: u32, wait: Duration) {
        let now = crate::clock::Clock::now_ms(&crate::clock::SystemClock);
        if let Some(held_back) = self.unavailable_log.allow(now) {
            tracing::warn!(
                schema_id = id,
                attempt = attempt + 1,
                retry_in_ms = wait.as_millis() as u64,
                held_back,
                error = %e,
                "schema registry unavailable: the record waits, it is not dead-lettered"
            );
        }
    }

    fn insert(&self, id: u32, w: Arc<Writer>) {
        let mut cache = self.cache.write().expect("cache lock");
        if cache.by_id.insert(id, w).is_none() {
            cache.order.push_back(id);
        }
        while cache.by_id.len() > self.capacity {
            match cache.order.pop_front() {
                Some(old) => cache.by_id.remove(&old),
                None => break,
            };
        }
    }

    /// Takes the registry's answer for schema `id` as if it had just been fetched: checked
    /// against the reader schema and cached (the fuzz target feeds hostile answers this way).
    pub fn learn(&self, id: u32, s: &client::RegisteredSchema) -> Arc<Writer> {
        let w = Arc::new(self.resolve(id, s));
        self.insert(id, w.clone());
        w
    }

    /// Checks a writer schema against the reader schema, once per id. apache-avro panics on
    /// some schemas it cannot read (a record whose name has a space: an `unwrap` in its name
    /// parsing, found by the `registry` fuzz target): a panic there makes the writer
    /// incompatible, never a crashed worker.
    fn resolve(&self, id: u32, s: &client::RegisteredSchema) -> Writer {
        if let Some(t) = s.schema_type.as_deref().filter(|t| *t != "AVRO") {
            return Writer::Incompatible(format!("schema type {t} is not AVRO"));
        }
        if !s.references.is_empty() {
            return Writer::Incompatible("schema references are not supported".into());
        }
        let checked =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.check_writer(id, s)));
        checked.unwrap_or_else(|_| {
            Writer::Incompatible("apache-avro cannot read the schema (it panicked on it)".into())
        })
    }

    /// [`SchemaRegistry::resolve`] past the checks that cannot panic.
    fn check_writer(&self, id: u32, s: &client::RegisteredSchema) -> Writer {
        let writer = match apache_avro::Schema::parse_str(&s.schema) {
            Ok(w) => w,
            Err(e) => return Writer::Incompatible(format!("the schema does not parse: {e}")),
        };
        if let Some(why) = not_canonicalizable(&s.schema) {
            return Writer::Incompatible(why);
        }
        let canonical = writer.canonical_form();
        if canonical == self.reader_canonical {
            return Writer::Same;
        }
        if let Some(i) = self.shipped_canonical.iter().position(|c| *c == canonical) {
            return Writer::Shipped(i as u32 + 1);
        }
        match SchemaCompatibility::can_read(&writer, &self.reader) {
            Ok(()) => Writer::Resolved(Box::new(writer)),
            Err(e) => {
                tracing::warn!(schema_id = id, reason = %e, "writer schema cannot be read");
                Writer::Incompatible(e.to_string())
            }
        }
    }
}

/// Why a framed record was not decoded: a short reason (for the dead-letter header and the
/// metric label) and a message naming the schema id.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct DecodeError {
    /// `wire_format`, `unknown_schema`, `incompatible_schema`, or the codec's reason.
    pub reason: &'static str,
    /// What was wrong.
    pub message: String,
    /// Dead letter, or fatal (a codec defect).
    pub class: ErrorClass,
}

impl From<RegistryError> for DecodeError {
    fn from(e: RegistryError) -> Self {
        DecodeError {
            reason: e.reason(),
            class: e.class(),
            message: e.to_string(),
        }
    }
}

/// One worker's view of the registry: a front cache of its own (no lock on the hot path)
/// over the shared one.
#[derive(Debug)]
pub struct RegistryDecoder {
    shared: Arc<SchemaRegistry>,
    local: HashMap<u32, Arc<Writer>, foldhash::fast::RandomState>,
}

impl RegistryDecoder {
    /// A decoder over `shared`.
    pub fn new(shared: Arc<SchemaRegistry>) -> Self {
        RegistryDecoder {
            shared,
            local: HashMap::default(),
        }
    }

    /// The registry behind it.
    pub fn shared(&self) -> &Arc<SchemaRegistry> {
        &self.shared
    }

    /// Decodes and validates a Confluent-framed agent action.
    pub fn decode_action(
        &mut self,
        codec: &Codec,
        framed: &[u8],
    ) -> Result<AgentAction, DecodeError> {
        let (id, datum) = split_frame(framed).map_err(|e| DecodeError {
            reason: e.reason,
            message: e.message,
            class: ErrorClass::DeadLetter,
        })?;
        if !self.local.contains_key(&id) {
            let w = self.shared.writer(id)?;
            if self.local.len() >= self.shared.capacity {
                self.local.clear();
            }
            self.local.insert(id, w);
        }
        // Borrowed, not cloned: a reference count shared by every worker would be written on
        // each record.
        let writer = &self.local[&id];
        let decoded = match &**writer {
            Writer::Same => codec.decode_action(datum),
            Writer::Shipped(version) => codec.decode_action_version(Ok(*version), datum),
            Writer::Resolved(schema) => codec.decode_action_resolved(schema, datum),
            Writer::Incompatible(reason) => {
                return Err(RegistryError::Incompatible {
                    id,
                    reader: self.shared.reader_name,
                    reason: reason.clone(),
                }
                .into())
            }
        };
        decoded.map_err(|e: CodecError| DecodeError {
            reason: e.reason(),
            class: e.class(),
            message: format!("schema id {id}: {e}"),
        })
    }
}
