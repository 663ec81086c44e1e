//! Helpers for integration tests against a real local broker (tansu).
#![allow(dead_code)]

use handoff::config::Settings;
use handoff::event::{AgentAction, Codec, Escalation, SchemaKind, Verdict};
use handoff::sim::broker::{free_port, LocalBroker, Storage};
use handoff::sim::fleet::{Fleet, FleetConfig};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const INPUT: &str = "agent.actions";
pub const VERDICTS: &str = "agent.verdicts";
pub const DLQ: &str = "agent.actions.dlq";

/// Broker tests share two cores: run them one at a time.
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

pub fn broker() -> LocalBroker {
    LocalBroker::start(free_port(), Storage::Memory).unwrap_or_else(|e| panic!("{e}"))
}

pub fn settings(bootstrap: &str) -> Settings {
    let mut s = Settings::default();
    s.kafka.bootstrap_servers = bootstrap.to_string();
    s
}

pub fn create_topics(bootstrap: &str, topics: &[&str]) {
    let s = settings(bootstrap);
    let topics: Vec<String> = topics.iter().map(|t| t.to_string()).collect();
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(handoff::kafka::admin::ensure_topics(&s, &topics))
        .unwrap();
}

/// One input record as sent, with the event when it is valid.
pub struct Sent {
    pub key: Vec<u8>,
    pub bytes: Vec<u8>,
    pub event: Option<AgentAction>,
    /// The headers it is sent with.
    pub headers: Vec<(&'static str, &'static [u8])>,
}

impl Sent {
    /// An action as handoff's producers write it: the current schema version, with its header.
    pub fn action(e: AgentAction) -> Sent {
        // One codec for every record: making one parses every schema version.
        static CODEC: std::sync::LazyLock<Codec> =
            std::sync::LazyLock::new(|| Codec::new(Default::default()).unwrap());
        let bytes = CODEC.encode(SchemaKind::AgentAction, &e).unwrap();
        Sent {
            key: e.session_id.clone().into_bytes(),
            bytes,
            event: Some(e),
            headers: action_headers(),
        }
    }

    /// Bytes on the input topic that are no valid action, claiming the current version.
    pub fn broken(key: Vec<u8>, bytes: Vec<u8>) -> Sent {
        Sent {
            key,
            bytes,
            event: None,
            headers: action_headers(),
        }
    }

    /// A human decision as handoff's inbox writes it (the current version, with its header).
    pub fn decision(key: Vec<u8>, bytes: Vec<u8>) -> Sent {
        Sent {
            key,
            bytes,
            event: None,
            headers: handoff::event::wire::version_header(SchemaKind::HumanDecision)
                .into_iter()
                .collect(),
        }
    }
}

/// The headers of a human decision written with the current schema version.
pub fn decision_headers() -> rdkafka::message::OwnedHeaders {
    let mut hs = rdkafka::message::OwnedHeaders::new();
    if let Some((key, v)) = handoff::event::wire::version_header(SchemaKind::HumanDecision) {
        hs = hs.insert(rdkafka::message::Header {
            key,
            value: Some(v),
        });
    }
    hs
}

/// The headers of an action written with the current schema version.
pub fn action_headers() -> Vec<(&'static str, &'static [u8])> {
    handoff::event::wire::version_header(SchemaKind::AgentAction)
        .into_iter()
        .collect()
}

/// `n` fleet events (every `bad_every`-th record replaced by a malformed one, 0 = none).
pub fn records(n: usize, seed: u64, boost: f64, bad_every: usize) -> Vec<Sent> {
    let codec = Codec::new(Default::default()).unwrap();
    let mut fleet = Fleet::new(FleetConfig {
        seed,
        trigger_boost: boost,
        ..Default::default()
    });
    (0..n)
        .map(|i| {
            let e = fleet.next_event();
            let key = e.session_id.clone().into_bytes();
            if bad_every > 0 && i % bad_every == bad_every - 1 {
                let mut broken = e.clone();
                let bytes = match (i / bad_every) % 3 {
                    0 => b"\x01definitely not avro".to_vec(),
                    1 => {
                        let b = codec.encode(SchemaKind::AgentAction, &e).unwrap();
                        b[..b.len() / 3].to_vec()
                    }
                    _ => {
                        broken.confidence = Some(4.2);
                        codec.encode(SchemaKind::AgentAction, &broken).unwrap()
                    }
                };
                Sent::broken(key, bytes)
            } else {
                Sent::action(e)
            }
        })
        .collect()
}

/// Sends human decisions to `human.decisions`, keyed by session, one record per batch.
pub fn send_decisions(bootstrap: &str, ds: &[handoff::event::HumanDecision]) {
    let codec = handoff::event::Codec::new(Default::default()).unwrap();
    let p: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("batch.num.messages", "1")
        .set("linger.ms", "0")
        .create()
        .unwrap();
    for d in ds {
        let bytes = codec
            .encode(handoff::event::SchemaKind::HumanDecision, d)
            .unwrap();
        p.send(
            BaseRecord::<[u8], [u8]>::to("human.decisions")
                .key(d.session_id.as_bytes())
                .payload(&bytes[..])
                .headers(decision_headers()),
        )
        .map_err(|(e, _)| e)
        .unwrap();
        p.poll(Duration::ZERO);
    }
    p.flush(Duration::from_secs(30)).unwrap();
}

/// Produces the records one per batch. tansu 0.6.0 answers a fetch that starts inside a batch
/// with the next batch (measured: a fetch at offset 1 returned records from offset 1335), so a
/// consumer resuming from a commit point inside a batch would never see the rest of it. With one
/// record per batch every commit point is a batch boundary.
pub fn produce(bootstrap: &str, topic: &str, recs: &[Sent]) {
    Feeder::new(bootstrap).send(topic, recs);
}

/// One producer for many sends (a feeder thread keeps it), one record per batch.
pub struct Feeder(BaseProducer);

impl Feeder {
    pub fn new(bootstrap: &str) -> Feeder {
        Feeder(
            ClientConfig::new()
                .set("bootstrap.servers", bootstrap)
                .set("enable.idempotence", "true")
                .set("batch.num.messages", "1")
                .set("linger.ms", "0")
                .create()
                .unwrap(),
        )
    }

    /// Sends `recs` to `topic` and waits until they are delivered.
    pub fn send(&self, topic: &str, recs: &[Sent]) {
        let p = &self.0;
        for r in recs {
            let mut rec = BaseRecord::<[u8], [u8]>::to(topic)
                .key(&r.key[..])
                .payload(&r.bytes[..]);
            if !r.headers.is_empty() {
                let mut hs = rdkafka::message::OwnedHeaders::new();
                for (k, v) in &r.headers {
                    hs = hs.insert(rdkafka::message::Header {
                        key: k,
                        value: Some(*v),
                    });
                }
                rec = rec.headers(hs);
            }
            loop {
                match p.send(rec) {
                    Ok(()) => break,
                    Err((_, back)) => {
                        rec = back;
                        p.poll(Duration::from_millis(10));
                    }
                }
            }
            p.poll(Duration::ZERO);
        }
        p.flush(Duration::from_secs(60)).unwrap();
    }
}

/// Produces one record with headers.
pub fn produce_with_headers(
    bootstrap: &str,
    topic: &str,
    key: &[u8],
    payload: &[u8],
    headers: &[(&str, &str)],
) {
    use rdkafka::message::{Header, OwnedHeaders};
    let p: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .unwrap();
    let mut hs = OwnedHeaders::new();
    for (k, v) in headers {
        hs = hs.insert(Header {
            key: k,
            value: Some(*v),
        });
    }
    p.send(BaseRecord::to(topic).key(key).payload(payload).headers(hs))
        .map_err(|(e, _)| e)
        .unwrap();
    p.flush(Duration::from_secs(30)).unwrap();
}

/// Writes a run config and returns its path. Without a `[metrics]` section in `extra`, metrics
/// go to a port of the system's choosing: `handoff run` refuses to start when its metrics
/// address is taken, and tests run several processors at once.
pub fn config_file(dir: &std::path::Path, bootstrap: &str, group: &str, extra: &str) -> PathBuf {
    let p = dir.join(format!("{group}.toml"));
    let metrics = if extra.contains("[metrics]") {
        ""
    } else {
        "[metrics]\nbind = \"127.0.0.1:0\"\n"
    };
    std::fs::write(
        &p,
        format!(
            "[kafka]\nbootstrap_servers = \"{bootstrap}\"\ngroup_id = \"{group}\"\n\
             [pipeline]\nshutdown_deadline = \"20s\"\n[log]\nlevel = \"info\"\n{extra}{metrics}"
        ),
    )
    .unwrap();
    p
}

pub fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("handoff-it-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The handoff binary under test: this build, or `TEST_HANDOFF_BIN` (to run a broker test
/// against another build, e.g. to see a test fail on the code before a fix).
pub fn handoff_bin() -> std::ffi::OsString {
    std::env::var_os("TEST_HANDOFF_BIN").unwrap_or_else(|| env!("CARGO_BIN_EXE_handoff").into())
}

/// Starts `handoff run`, logging to `log`.
pub fn spawn(config: &std::path::Path, log: &std::path::Path) -> Child {
    spawn_command("run", config, log)
}

/// Starts `handoff SUBCOMMAND --config CONFIG` (run, inbox, gateway), logging to `log`.
pub fn spawn_command(subcommand: &str, config: &std::path::Path, log: &std::path::Path) -> Child {
    Command::new(handoff_bin())
        .args([subcommand, "--config"])
        .arg(config)
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap()
}

/// A `[matrix]` section naming a copy of the shipped matrix, written in `dir`, that lets an
/// action without a confidence pass the gate (`without_confidence = "passes"`): agent frameworks
/// give none, and what a person is asked then depends on the action's type alone (the shipped
/// default, "below", is tested with the processor).
pub fn matrix_where_no_confidence_passes(dir: &std::path::Path) -> String {
    let passes = handoff::matrix::DEFAULT_MATRIX_TOML.replace(
        "# without_confidence = \"below\"",
        "without_confidence = \"passes\"",
    );
    assert_ne!(
        passes,
        handoff::matrix::DEFAULT_MATRIX_TOML,
        "the shipped matrix says it"
    );
    let path = dir.join("matrix.toml");
    std::fs::write(&path, passes).unwrap();
    format!("[matrix]\npath = \"{}\"\n", path.display())
}

/// Sends `sig` (e.g. `-STOP`) to process `pid`.
pub fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill").args([sig, &pid.to_string()]).status();
}

pub fn sigterm(child: &Child) {
    signal(child.id(), "-TERM");
}

pub fn kill9(child: &mut Child) {
    signal(child.id(), "-KILL");
    let _ = child.wait();
}

pub fn wait_exit(child: &mut Child, within: Duration) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        assert!(
            start.elapsed() < within,
            "handoff did not exit within {within:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until `log` contains `needle`.
pub fn wait_log(log: &std::path::Path, needle: &str, within: Duration) {
    let start = Instant::now();
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if text.contains(needle) {
            return;
        }
        assert!(
            start.elapsed() < within,
            "no {needle:?} in the log within {within:?}:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A record read back.
pub struct Record {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub payload: Vec<u8>,
    pub headers: BTreeMap<String, String>,
}

/// Reads a topic from the beginning and keeps what it read. Counting is done by reading:
/// tansu's high watermarks lag the end of the log by up to a batch, so they cannot be trusted.
pub struct Reader {
    c: BaseConsumer,
    pub records: Vec<Record>,
    keys: std::collections::HashSet<Vec<u8>>,
}

impl Reader {
    /// Assigns every partition of `topic` (waiting for it to exist) from the beginning.
    pub fn new(bootstrap: &str, topic: &str) -> Reader {
        let c: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .set("group.id", "handoff-test-reader")
            .set("enable.auto.commit", "false")
            .set("fetch.wait.max.ms", "20")
            .create()
            .unwrap();
        let start = Instant::now();
        let parts: Vec<i32> = loop {
            let md = c
                .fetch_metadata(Some(topic), Duration::from_secs(5))
                .unwrap();
            let ps: Vec<i32> = md
                .topics()
                .first()
                .map(|t| t.partitions().iter().map(|p| p.id()).collect())
                .unwrap_or_default();
            if !ps.is_empty() {
                break ps;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "topic {topic} does not exist"
            );
            std::thread::sleep(Duration::from_millis(200));
        };
        let mut tpl = TopicPartitionList::new();
        for p in &parts {
            tpl.add_partition_offset(topic, *p, Offset::Beginning)
                .unwrap();
        }
        c.assign(&tpl).unwrap();
        Reader {
            c,
            records: Vec::new(),
            keys: Default::default(),
        }
    }

    fn poll_once(&mut self, wait: Duration) -> bool {
        match self.c.poll(wait) {
            Some(Ok(m)) => {
                let mut headers = BTreeMap::new();
                if let Some(h) = m.headers() {
                    for x in h.iter() {
                        headers.insert(
                            x.key.to_string(),
                            String::from_utf8_lossy(x.value.unwrap_or_default()).to_string(),
                        );
                    }
                }
                if let Some(k) = m.key() {
                    self.keys.insert(k.to_vec());
                }
                self.records.push(Record {
                    partition: m.partition(),
                    offset: m.offset(),
                    key: m.key().map(<[u8]>::to_vec),
                    payload: m.payload().unwrap_or_default().to_vec(),
                    headers,
                });
                true
            }
            _ => false,
        }
    }

    /// Reads until `done` holds, or fails after `within`.
    fn wait_until(&mut self, what: &str, within: Duration, done: impl Fn(&Self) -> bool) {
        let start = Instant::now();
        while !done(self) {
            assert!(
                start.elapsed() < within,
                "{what} not reached after {within:?}: {} records, {} distinct keys",
                self.records.len(),
                self.keys.len()
            );
            self.poll_once(Duration::from_millis(100));
        }
    }

    /// Reads until at least `n` records were read.
    pub fn wait_for(&mut self, n: usize, within: Duration) {
        self.wait_until(&format!("{n} records"), within, |r| r.records.len() >= n);
    }

    /// Reads until at least `n` distinct keys were read.
    pub fn wait_for_keys(&mut self, n: usize, within: Duration) {
        self.wait_until(&format!("{n} distinct keys"), within, |r| r.keys.len() >= n);
    }

    /// Reads until a record with key `key` arrives.
    pub fn wait_until_key(&mut self, key: &str, within: Duration) {
        self.wait_until(&format!("key {key}"), within, |r| {
            r.keys.contains(key.as_bytes())
        });
    }

    /// Reads until nothing new arrives for `idle`.
    pub fn settle(&mut self, idle: Duration) -> &[Record] {
        let mut last = Instant::now();
        while last.elapsed() < idle {
            if self.poll_once(Duration::from_millis(50)) {
                last = Instant::now();
            }
        }
        &self.records
    }
}

/// Reads a whole topic (until it has been quiet for a second).
pub fn read_all(bootstrap: &str, topic: &str) -> Vec<Record> {
    let mut r = Reader::new(bootstrap, topic);
    r.settle(Duration::from_secs(1));
    r.records
}

pub fn verdicts(bootstrap: &str) -> Vec<Verdict> {
    let codec = Codec::new(Default::default()).unwrap();
    read_all(bootstrap, VERDICTS)
        .iter()
        .map(|r| codec.decode(SchemaKind::Verdict, &r.payload).unwrap())
        .collect()
}

pub fn escalations(bootstrap: &str, topic: &str) -> Vec<Escalation> {
    let codec = Codec::new(Default::default()).unwrap();
    read_all(bootstrap, topic)
        .iter()
        .map(|r| codec.decode(SchemaKind::Escalation, &r.payload).unwrap())
        .collect()
}

/// A short wall-clock drill: anomalous trades for the trader, who rejects every one.
pub fn live_scenario(name: &str, duration: &str) -> String {
    format!(
        r#"name = "{name}"
duration = "{duration}"
seed = 5
background_rate = 10.0

[[bursts]]
name = "anomalous trades"
at = "2s"
over = "4s"
count = 30
sessions = 10
action_type = "trade.execute"
request = "Sell ACME at market"
[bursts.attributes]
anomaly = "true"

[responders.trader]
ack_min = "1s"
ack_max = "2s"
decide_after = "1s"
mix = "reject=1"
"#
    )
}

/// Runs `handoff args…`; fails the test if it has not finished within `limit` (a hang guard,
/// not a speed goal: the time taken is printed).
pub fn run_within(args: &[&str], limit: Duration) -> (std::process::Output, Duration) {
    let started = Instant::now();
    let mut child = Command::new(handoff_bin())
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > limit {
            let _ = child.kill();
            panic!("`handoff {}` still running after {limit:?}", args.join(" "));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    (child.wait_with_output().unwrap(), started.elapsed())
}
