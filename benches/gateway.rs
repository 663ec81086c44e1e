//! The gateway's goals, in one run against a local tansu broker, `handoff run` and `handoff
//! gateway` (this build's release binary, each in its own process):
//!
//! 1. submit → acknowledged (202) latency, p50/p99, at GATEWAY_RATE actions/s (default 1,000)
//!    for GATEWAY_SECONDS (default 10) while GATEWAY_WAITING agents (default 1,000) hold a long
//!    poll each;
//! 2. what the gateway adds to an auto-executed action's round trip: submit over HTTP and read
//!    the final verdict by long poll, against producing the same action to Kafka and reading
//!    its verdict from `agent.verdicts` directly, alternating, in the same run (p50 and p99 of
//!    both, and the processor's own event-to-delivered time from its histogram);
//! 3. memory per waiting agent: the resident memory a fresh gateway adds for GATEWAY_HELD
//!    (default 10,000) long polls held, and that every one of them is held — over HTTP/1.1 (a
//!    connection each) and over HTTP/2 (GATEWAY_STREAMS waits, default 100, per connection).
//!
//! `cargo bench --bench gateway`.

#[path = "common/env.rs"]
mod bench_env;
use bench_env::env;

use handoff::sim::broker::{free_port, LocalBroker, Storage};
use hdrhistogram::Histogram;
use http_body_util::Empty;
use hyper::body::Bytes;
use hyper::client::conn::http2::handshake;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

const KEY: &str = "bench-key";

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` asks harness-less benches to list themselves
    }
    let rate: u64 = env("GATEWAY_RATE", 1_000);
    let seconds: u64 = env("GATEWAY_SECONDS", 10);
    let waiting: usize = env("GATEWAY_WAITING", 1_000);
    let held: usize = env("GATEWAY_HELD", 10_000);
    let trips: usize = env("GATEWAY_TRIPS", 200);
    handoff::sim::broker::install().expect("tansu (deploy/broker.sh install)");
    let broker = LocalBroker::start(free_port(), Storage::Memory).expect("a local broker");
    let bootstrap = broker.bootstrap();
    let port = free_port();
    let dir = std::env::temp_dir().join(format!("handoff-bench-gateway-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("gateway.toml");
    let metrics_port = free_port();
    std::fs::write(&config, settings(&bootstrap, port, metrics_port)).unwrap();
    let mut run = spawn(&["run", "--config"], &config, &dir.join("run.log"));
    let mut gateway = spawn(&["gateway", "--config"], &config, &dir.join("gateway.log"));
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        ready(port).await;
        // Warm both paths: the processor's first records wait for its assignment.
        round_trip_http(port, "warm-0").await;
        println!("gateway and processor up; warming done");
        let polls = hold(port, waiting, "w").await;
        let submit = submit_at(port, rate, seconds).await;
        println!(
            "submit → 202 at {rate}/s for {seconds}s with {} agents waiting: {} submitted, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            polls.len(),
            submit.len(),
            ms(submit.value_at_quantile(0.5)),
            ms(submit.value_at_quantile(0.99)),
            ms(submit.max())
        );
        let (http, kafka) = round_trips(port, &bootstrap, trips).await;
        let processor = decision_p50(&run_metrics(metrics_port).await);
        println!(
            "auto-executed round trip over {trips} actions each: gateway p50 {:.2} ms p99 {:.2} ms; \
             Kafka directly p50 {:.2} ms p99 {:.2} ms; the gateway adds {:.2} ms at p50 \
             (processor's event-to-delivered p50 ≤ {processor})",
            ms(http.value_at_quantile(0.5)),
            ms(http.value_at_quantile(0.99)),
            ms(kafka.value_at_quantile(0.5)),
            ms(kafka.value_at_quantile(0.99)),
            ms(http.value_at_quantile(0.5)) - ms(kafka.value_at_quantile(0.5)),
        );
    });
    // Memory per waiting agent, each way of waiting on a gateway of its own that has served
    // nothing else: after a load, freed memory the allocator keeps would be reused by the waits
    // and hide their cost.
    stop(&mut gateway);
    let streams: usize = env("GATEWAY_STREAMS", 100);
    for way in [Way::Http1, Way::Http2 { streams }] {
        let port = free_port();
        let config = dir.join(format!("gateway-{port}.toml"));
        std::fs::write(&config, settings(&bootstrap, port, metrics_port)).unwrap();
        let log = dir.join(format!("gateway-{port}.log"));
        let mut g = spawn(&["gateway", "--config"], &config, &log);
        rt.block_on(held_memory(port, g.id(), held, way));
        stop(&mut g);
    }
    stop(&mut run);
}

fn stop(child: &mut Child) {
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let _ = child.wait();
}

fn settings(bootstrap: &str, port: u16, metrics: u16) -> String {
    let hash = handoff::inbox::auth::token_sha256(KEY);
    format!(
        "[kafka]\nbootstrap_servers = \"{bootstrap}\"\ngroup_id = \"bench-gateway\"\n\
         [metrics]\nbind = \"127.0.0.1:{metrics}\"\n[log]\nlevel = \"warn\"\n\
         [gateway]\nbind = \"127.0.0.1:{port}\"\nmax_wait = \"120s\"\n\
         [[gateway.agents]]\nname = \"bench\"\nkey_sha256 = \"{hash}\"\nagent_ids = [\"agent-bench\"]\n"
    )
}

fn spawn(args: &[&str], config: &std::path::Path, log: &std::path::Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_handoff"))
        .args(args)
        .arg(config)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap()
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn action(id: &str) -> String {
    let now = handoff::clock::SystemClock::now();
    format!(
        "{{\"action_id\":\"{id}\",\"session_id\":\"s-{id}\",\"agent_id\":\"agent-bench\",\
         \"timestamp_ms\":{now},\"action_type\":\"research.search\",\"confidence\":0.95,\
         \"request\":\"Find articles\",\"summary\":\"Searched\",\"status\":\"completed\",\
         \"reversible\":true,\"affects_others\":false}}"
    )
}

/// One HTTP/1.1 exchange on a kept-alive connection: the status and the body.
async fn exchange(
    c: &mut BufReader<TcpStream>,
    method: &str,
    path: &str,
    body: &str,
) -> (u16, String) {
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    c.get_mut()
        .write_all((head + body).as_bytes())
        .await
        .unwrap();
    read_response(c).await
}

async fn read_response(c: &mut BufReader<TcpStream>) -> (u16, String) {
    let mut line = String::new();
    c.read_line(&mut line).await.unwrap();
    let status = line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut length = 0;
    loop {
        line.clear();
        c.read_line(&mut line).await.unwrap();
        if line == "\r\n" || line.is_empty() {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; length];
    c.read_exact(&mut body).await.unwrap();
    (status, String::from_utf8_lossy(&body).into_owned())
}

async fn connect(port: u16) -> BufReader<TcpStream> {
    BufReader::new(TcpStream::connect(("127.0.0.1", port)).await.unwrap())
}

async fn ready(port: u16) {
    let start = Instant::now();
    loop {
        if let Ok(s) = TcpStream::connect(("127.0.0.1", port)).await {
            let mut c = BufReader::new(s);
            if exchange(&mut c, "GET", "/readyz", "").await.0 == 200 {
                return;
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "gateway not ready"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `n` long polls on actions nobody sends, each on its own connection (sent, not answered).
async fn hold(port: u16, n: usize, tag: &str) -> Vec<BufReader<TcpStream>> {
    let mut polls = Vec::with_capacity(n);
    for i in 0..n {
        let mut c = connect(port).await;
        let head = format!(
            "GET /v1/actions/never-{tag}-{i}/verdict?wait=120s HTTP/1.1\r\nHost: x\r\n\
             Authorization: Bearer {KEY}\r\n\r\n"
        );
        c.get_mut().write_all(head.as_bytes()).await.unwrap();
        polls.push(c);
        if i % 500 == 499 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    polls
}

/// How many of `polls` have had no answer yet.
async fn still_waiting(polls: impl Iterator<Item = BufReader<TcpStream>>) -> usize {
    let mut n = 0;
    for c in polls {
        let mut byte = [0u8; 1];
        if c.get_ref().try_read(&mut byte).is_err() {
            n += 1; // WouldBlock: nothing was answered
        }
    }
    n
}

/// Submits at `rate`/s for `seconds` over 32 kept-alive connections; the latencies in µs.
async fn submit_at(port: u16, rate: u64, seconds: u64) -> Histogram<u64> {
    let lanes = 32u64;
    let per_lane = Duration::from_micros(1_000_000 * lanes / rate);
    let mut tasks = Vec::new();
    for lane in 0..lanes {
        tasks.push(tokio::spawn(async move {
            let mut c = connect(port).await;
            let mut h = Histogram::<u64>::new(3).unwrap();
            let mut tick = tokio::time::interval(per_lane);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            let end = Instant::now() + Duration::from_secs(seconds);
            let mut i = 0;
            while Instant::now() < end {
                tick.tick().await;
                let started = Instant::now();
                let (status, body) = exchange(
                    &mut c,
                    "POST",
                    "/v1/actions",
                    &action(&format!("sub-{lane}-{i}")),
                )
                .await;
                assert_eq!(status, 202, "{body}");
                h.record(started.elapsed().as_micros() as u64).unwrap();
                i += 1;
            }
            h
        }));
    }
    let mut all = Histogram::<u64>::new(3).unwrap();
    for t in tasks {
        all.add(t.await.unwrap()).unwrap();
    }
    all
}

/// Submit over HTTP, then the final verdict by long poll; µs.
async fn round_trip_http(port: u16, id: &str) -> u64 {
    let started = Instant::now();
    let mut c = connect(port).await;
    let (status, _) = exchange(&mut c, "POST", "/v1/actions", &action(id)).await;
    assert_eq!(status, 202);
    let (status, body) = exchange(
        &mut c,
        "GET",
        &format!("/v1/actions/{id}/verdict?wait=30s"),
        "",
    )
    .await;
    assert!(
        status == 200 && body.contains("\"status\":\"final\""),
        "{status} {body}"
    );
    started.elapsed().as_micros() as u64
}

/// `trips` round trips each way, alternating: over the gateway, and over Kafka directly.
async fn round_trips(port: u16, bootstrap: &str, trips: usize) -> (Histogram<u64>, Histogram<u64>) {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("linger.ms", "0")
        .create()
        .unwrap();
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "bench-gateway-direct")
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "5")
        .create()
        .unwrap();
    // Every partition from its end as seen now (by assignment: no group to join).
    let md = consumer
        .fetch_metadata(Some("agent.verdicts"), Duration::from_secs(10))
        .unwrap();
    let mut tpl = rdkafka::TopicPartitionList::new();
    for p in md.topics()[0].partitions() {
        let (_, high) = consumer
            .fetch_watermarks("agent.verdicts", p.id(), Duration::from_secs(10))
            .unwrap();
        tpl.add_partition_offset("agent.verdicts", p.id(), rdkafka::Offset::Offset(high))
            .unwrap();
    }
    consumer.assign(&tpl).unwrap();
    let codec = handoff::event::Codec::new(Default::default()).unwrap();
    // The consumer has joined once a verdict written after its start reaches it.
    direct(&producer, &consumer, &codec, "direct-warm").await;
    let (mut http, mut kafka) = (
        Histogram::<u64>::new(3).unwrap(),
        Histogram::<u64>::new(3).unwrap(),
    );
    for i in 0..trips {
        http.record(round_trip_http(port, &format!("trip-http-{i}")).await)
            .unwrap();
        kafka
            .record(direct(&producer, &consumer, &codec, &format!("trip-kafka-{i}")).await)
            .unwrap();
    }
    (http, kafka)
}

/// Produce the action to agent.actions and read its verdict from agent.verdicts; µs.
async fn direct(
    producer: &FutureProducer,
    consumer: &StreamConsumer,
    codec: &handoff::event::Codec,
    id: &str,
) -> u64 {
    let e: handoff::event::AgentAction = serde_json::from_str(&action(id)).unwrap();
    let bytes = codec
        .encode(handoff::event::SchemaKind::AgentAction, &e)
        .unwrap();
    let started = Instant::now();
    let headers = rdkafka::message::OwnedHeaders::new().insert(rdkafka::message::Header {
        key: handoff::event::wire::SCHEMA_VERSION_HEADER,
        value: Some(b"2".as_slice()),
    });
    let record = FutureRecord::to("agent.actions")
        .key(&e.session_id)
        .payload(&bytes)
        .headers(headers);
    producer
        .send(record, Duration::from_secs(10))
        .await
        .map_err(|(e, _)| e)
        .unwrap();
    loop {
        let m = tokio::time::timeout(Duration::from_secs(30), consumer.recv())
            .await
            .expect("a verdict within 30 s")
            .unwrap();
        let version = handoff::kafka::record::schema_version(&m);
        let v: handoff::event::Verdict = codec
            .decode_header_version(
                handoff::event::SchemaKind::Verdict,
                version,
                m.payload().unwrap_or_default(),
            )
            .unwrap();
        if v.action_id == id {
            return started.elapsed().as_micros() as u64;
        }
    }
}

async fn metric(port: u16, name: &str) -> String {
    let mut c = connect(port).await;
    let (_, body) = exchange(&mut c, "GET", "/metrics", "").await;
    body.lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.split_whitespace().last())
        .unwrap_or("?")
        .to_string()
}

/// The processor's metrics.
async fn run_metrics(port: u16) -> String {
    let mut c = connect(port).await;
    exchange(&mut c, "GET", "/metrics", "").await.1
}

/// The bucket bound at or under which half the processor's decisions were delivered.
fn decision_p50(metrics: &str) -> String {
    let buckets: Vec<(f64, f64)> = metrics
        .lines()
        .filter_map(|l| l.strip_prefix("handoff_decision_latency_seconds_bucket{le=\""))
        .filter_map(|l| {
            let (le, rest) = l.split_once("\"}")?;
            Some((le.parse().ok()?, rest.trim().parse().ok()?))
        })
        .collect();
    let total = buckets.last().map_or(0.0, |b| b.1);
    buckets
        .iter()
        .find(|(_, n)| *n >= total / 2.0 && total > 0.0)
        .map_or("unknown".into(), |(le, _)| format!("{:.1} ms", le * 1000.0))
}

/// How the held waits reach the gateway.
#[derive(Clone, Copy)]
enum Way {
    /// A connection each.
    Http1,
    /// `streams` waits on each HTTP/2 connection (cleartext, prior knowledge).
    Http2 { streams: usize },
}

/// Holds `n` waits on the fresh gateway at `port` (process `pid`) and reports what each adds to
/// its resident memory, with the gauge and how many are still waiting.
async fn held_memory(port: u16, pid: u32, n: usize, way: Way) {
    ready(port).await;
    round_trip_http(port, "warm-memory").await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before_kib = rss_kib(pid);
    let (label, held) = match way {
        Way::Http1 => {
            let polls = hold(port, n, "m").await;
            tokio::time::sleep(Duration::from_secs(2)).await;
            ("HTTP/1.1, a connection each".to_string(), Held::One(polls))
        }
        Way::Http2 { streams } => {
            let held = hold_h2(port, n, streams).await;
            tokio::time::sleep(Duration::from_secs(2)).await;
            (format!("HTTP/2, {streams} per connection"), held)
        }
    };
    let held_kib = rss_kib(pid);
    let gauge = metric(port, "handoff_gateway_waiting_requests").await;
    let per_wait = (held_kib.saturating_sub(before_kib) * 1024) as f64 / n.max(1) as f64;
    let still = held.waiting().await;
    println!(
        "{n} long polls held over {label}: {still} still waiting after 2 s, the gateway's gauge \
         {gauge}; resident memory {before_kib} KiB before, {held_kib} KiB with them: \
         {per_wait:.0} bytes per waiting agent"
    );
}

/// Waits held open, not yet answered.
enum Held {
    One(Vec<BufReader<TcpStream>>),
    Two {
        _connections: Vec<hyper::client::conn::http2::SendRequest<Empty<Bytes>>>,
        answers: Vec<tokio::task::JoinHandle<u16>>,
    },
}

impl Held {
    async fn waiting(self) -> usize {
        match self {
            Held::One(polls) => still_waiting(polls.into_iter()).await,
            Held::Two { answers, .. } => answers.iter().filter(|a| !a.is_finished()).count(),
        }
    }
}

/// `n` long polls on actions nobody sends, `streams` to an HTTP/2 connection.
async fn hold_h2(port: u16, n: usize, streams: usize) -> Held {
    let mut connections = Vec::new();
    let mut answers = Vec::with_capacity(n);
    for i in 0..n {
        if i % streams.max(1) == 0 {
            let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
            let (sender, conn) = handshake(TokioExecutor::new(), TokioIo::new(tcp))
                .await
                .unwrap();
            tokio::spawn(conn);
            connections.push(sender);
        }
        let sender = connections.last_mut().unwrap();
        sender.ready().await.unwrap();
        let req = hyper::Request::get(format!(
            "http://127.0.0.1:{port}/v1/actions/never-h2-{i}/verdict?wait=120s"
        ))
        .header("authorization", format!("Bearer {KEY}"))
        .body(Empty::<Bytes>::new())
        .unwrap();
        let answer = sender.send_request(req);
        answers.push(tokio::spawn(async move {
            answer.await.map_or(0, |r| r.status().as_u16())
        }));
    }
    Held::Two {
        _connections: connections,
        answers,
    }
}
