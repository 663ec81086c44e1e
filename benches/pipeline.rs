//! End-to-end throughput and latency on a local broker, handoff side by side with a
//! passthrough that runs through the very same Kafka machinery (consumer group, delivery
//! tracking, offsets stored after delivery, same librdkafka settings) but copies records instead
//! of decoding and deciding, producing the same share of output records.
//!
//! 1. Pre-load a backlog (default 1,000,000 events; HANDOFF_BENCH_EVENTS to change).
//! 2. Drain it with handoff, then with the passthrough: throughput of each, and the ratio.
//! 3. At half the passthrough's maximum rate, produce live events for 20 s to each and measure
//!    the latency from a record's Kafka timestamp to all of its outputs delivered (p50, p99).
//!
//! Run: `cargo bench --bench pipeline` (needs tansu: `deploy/broker.sh install`).

use handoff::broker::{free_port, LocalBroker, Storage};
use handoff::config::Settings;
use handoff::event::Level;
use handoff::generate::{Fleet, FleetConfig};
use handoff::matrix::Matrix;
use handoff::pipeline::process::{Input, Outcome, Output, Processor, Stage};
use handoff::pipeline::{self, StatsHandle};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Copies every input record to one topic, `share` records per input on average, each cut to
/// `bytes` (handoff's average output size), so both stages hand the broker the same records
/// and the same bytes.
struct Passthrough {
    topics: Vec<String>,
    share: f64,
    bytes: usize,
    seen: u64,
}

impl Stage for Passthrough {
    fn topics(&self) -> &[String] {
        &self.topics
    }
    fn process(&mut self, input: Input<'_>, _now_ms: i64, out: &mut Vec<Output>) -> Outcome {
        let i = self.seen as f64;
        self.seen += 1;
        let copies =
            (((i + 1.0) * self.share).floor() - (i * self.share).floor()).max(1.0) as usize;
        for _ in 0..copies {
            out.push(Output {
                topic: 0,
                key: input.key.map(<[u8]>::to_vec),
                payload: {
                    let p = input.payload.unwrap_or_default();
                    p[..p.len().min(self.bytes)].to_vec()
                },
                headers: Vec::new(),
            });
        }
        Outcome::Decided {
            level: Level::Execute,
            roles: vec![],
            triggers: vec![],
            event_ms: 0,
        }
    }
    fn forget_partition(&mut self, _: i32) {}
    fn role_names(&self) -> Vec<String> {
        Vec::new()
    }
    fn label(&self) -> String {
        "passthrough".into()
    }
}

struct Measured {
    per_second: f64,
    outputs_per_input: f64,
    bytes_per_output: f64,
    p50_ms: u64,
    p99_ms: u64,
}

/// Runs a stage on `input` until `n` inputs are fully delivered; returns throughput measured
/// from the first record consumed, and the latency percentiles.
fn drive<S: Stage + 'static>(
    rt: &tokio::runtime::Runtime,
    base: &Settings,
    group: &str,
    input: &str,
    stage: impl Fn() -> S + Send + 'static,
    n: u64,
    live: Option<(u64, u64)>,
) -> Measured {
    let mut settings = base.clone();
    settings.kafka.group_id = group.into();
    settings.topics.input = input.into();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let (stats_tx, stats_rx) = std::sync::mpsc::channel::<StatsHandle>();
    let s2 = settings.clone();
    let task = rt.spawn(async move {
        pipeline::run_stage(
            &s2,
            stage,
            async {
                let _ = stop_rx.await;
            },
            move |s| {
                let _ = stats_tx.send(s);
            },
        )
        .await
    });
    let stats = stats_rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the stage starts");
    if let Some((rate, count)) = live {
        // Let the group settle, then feed live traffic at `rate`.
        std::thread::sleep(Duration::from_secs(6));
        let mut fleet = Fleet::new(FleetConfig {
            seed: 99,
            ..Default::default()
        });
        let s3 = settings.clone();
        let topic = input.to_string();
        rt.block_on(pipeline::fleet::produce(
            &s3,
            &topic,
            &mut fleet,
            Some(count),
            rate,
            std::future::pending(),
            Default::default(),
        ))
        .expect("live traffic");
    }
    let mut first: Option<Instant> = None;
    let deadline = Instant::now() + Duration::from_secs(1800);
    loop {
        let consumed = stats.consumed.load(Relaxed);
        if consumed > 0 && first.is_none() {
            first = Some(Instant::now());
        }
        if stats.completed.load(Relaxed) >= n {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{group}: {} of {n} done after 30 min",
            stats.completed.load(Relaxed)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let elapsed = first.expect("started").elapsed();
    let snap = stats.snapshot();
    let _ = stop_tx.send(());
    rt.block_on(task)
        .expect("join")
        .expect("the stage stops cleanly");
    Measured {
        per_second: n as f64 / elapsed.as_secs_f64(),
        outputs_per_input: snap.produced as f64 / snap.consumed.max(1) as f64,
        bytes_per_output: snap.produced_bytes as f64 / snap.produced.max(1) as f64,
        p50_ms: snap.e2e_ms[0],
        p99_ms: snap.e2e_ms[1],
    }
}

fn main() {
    // `cargo bench` passes --bench; nothing else to parse.
    let n: u64 = std::env::var("HANDOFF_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let live_secs = 20;
    let broker =
        LocalBroker::start(free_port(), Storage::Memory).expect("tansu (deploy/broker.sh install)");
    let mut base = Settings::default();
    base.kafka.bootstrap_servers = broker.bootstrap();
    base.log.level = "warn".into();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();

    eprintln!("pre-loading {n} events…");
    let t = Instant::now();
    let mut fleet = Fleet::new(FleetConfig {
        seed: 1,
        ..Default::default()
    });
    rt.block_on(async {
        pipeline::ensure_topics(&base, &["bench.backlog".to_string()])
            .await
            .unwrap();
        pipeline::fleet::produce(
            &base,
            "bench.backlog",
            &mut fleet,
            Some(n),
            0,
            std::future::pending(),
            Default::default(),
        )
        .await
    })
    .expect("backlog");
    eprintln!("pre-loaded in {:.1} s", t.elapsed().as_secs_f64());

    let matrix = Arc::new(Matrix::default_matrix().unwrap());
    let handoff_stage = |base: &Settings, matrix: &Arc<Matrix>| {
        let (b, m) = (base.clone(), matrix.clone());
        move || Processor::new(&b, m.clone()).unwrap()
    };
    eprintln!("handoff draining the backlog…");
    let h = drive(
        &rt,
        &base,
        "bench-handoff",
        "bench.backlog",
        handoff_stage(&base, &matrix),
        n,
        None,
    );
    eprintln!("passthrough draining the backlog…");
    let (share, bytes) = (h.outputs_per_input, h.bytes_per_output as usize);
    let pt_stage = move |out: &'static str| {
        move || Passthrough {
            topics: vec![out.into()],
            share,
            bytes,
            seen: 0,
        }
    };
    let p = drive(
        &rt,
        &base,
        "bench-passthrough",
        "bench.backlog",
        pt_stage("bench.passthrough.out"),
        n,
        None,
    );

    let rate = (p.per_second / 2.0) as u64;
    let count = rate * live_secs;
    eprintln!(
        "latency at {rate} events/s (half the passthrough's maximum) for {live_secs} s each…"
    );
    let hl = drive(
        &rt,
        &base,
        "bench-handoff-live",
        "bench.live.handoff",
        handoff_stage(&base, &matrix),
        count,
        Some((rate, count)),
    );
    let pl = drive(
        &rt,
        &base,
        "bench-passthrough-live",
        "bench.live.passthrough",
        pt_stage("bench.passthrough.live.out"),
        count,
        Some((rate, count)),
    );

    println!("| {n} events, local tansu broker, 2 cores | handoff | passthrough | handoff / passthrough |");
    println!("|---|---:|---:|---:|");
    println!(
        "| backlog throughput (events/s) | {:.0} | {:.0} | {:.2} |",
        h.per_second,
        p.per_second,
        h.per_second / p.per_second
    );
    println!(
        "| output records per input | {:.3} | {:.3} | |",
        h.outputs_per_input, p.outputs_per_input
    );
    println!(
        "| bytes per output record | {:.0} | {:.0} | |",
        h.bytes_per_output, p.bytes_per_output
    );
    println!(
        "| latency p50 at {rate}/s (ms) | {} | {} | {:+} ms |",
        hl.p50_ms,
        pl.p50_ms,
        hl.p50_ms as i64 - pl.p50_ms as i64
    );
    println!(
        "| latency p99 at {rate}/s (ms) | {} | {} | {:+} ms |",
        hl.p99_ms,
        pl.p99_ms,
        hl.p99_ms as i64 - pl.p99_ms as i64
    );
    println!();
    println!(
        "goal: throughput ratio >= 0.90: {:.2} ({})",
        h.per_second / p.per_second,
        if h.per_second / p.per_second >= 0.9 {
            "met"
        } else {
            "not met"
        }
    );
    let d = hl.p99_ms as i64 - pl.p99_ms as i64;
    println!(
        "goal: p99 within 2 ms of the passthrough's: {d:+} ms ({})",
        if d <= 2 { "met" } else { "not met" }
    );
}
