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

use handoff::config::Settings;
use handoff::event::Level;
use handoff::matrix::Matrix;
use handoff::output::Output;
use handoff::pipeline::process::{Input, Outcome, Processor, Stage, StageError};
use handoff::pipeline::{self, StatsHandle};
use handoff::sim::broker::{free_port, LocalBroker, Storage};
use handoff::sim::fleet::{Fleet, FleetConfig};
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
    fn process(
        &mut self,
        input: Input<'_>,
        _now_ms: i64,
        out: &mut Vec<Output>,
    ) -> Result<Outcome, StageError> {
        let i = self.seen as f64;
        self.seen += 1;
        let copies =
            (((i + 1.0) * self.share).floor() - (i * self.share).floor()).max(1.0) as usize;
        for _ in 0..copies {
            let p = input.payload.unwrap_or_default();
            out.push(Output::new(
                0,
                input.key.map(<[u8]>::to_vec),
                p[..p.len().min(self.bytes)].to_vec(),
            ));
        }
        Ok(Outcome::Decided {
            level: Level::Execute,
            family: 0,
            triggers: vec![],
            event_ms: 0,
        })
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
            std::sync::Arc::new(handoff::clock::SystemClock),
            async {
                let _ = stop_rx.await;
            },
            move |s| {
                let _ = stats_tx.send(s.stats);
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
        rt.block_on(handoff::sim::produce::produce(
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
        handoff::kafka::admin::ensure_topics(&base, &["bench.backlog".to_string()])
            .await
            .unwrap();
        handoff::sim::produce::produce(
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
    let rounds: usize = std::env::var("HANDOFF_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);

    // Backlog rounds, alternating handoff and passthrough, each a fresh group over the same
    // backlog. The passthrough copies handoff's record share and size from the first round.
    let mut h_runs = Vec::new();
    let mut p_runs = Vec::new();
    let (mut share, mut bytes) = (1.0, 160usize);
    for r in 0..rounds {
        eprintln!("round {}: handoff draining the backlog…", r + 1);
        let h = drive(
            &rt,
            &base,
            &format!("bench-handoff-{r}"),
            "bench.backlog",
            handoff_stage(&base, &matrix),
            n,
            None,
        );
        if r == 0 {
            share = h.outputs_per_input;
            bytes = h.bytes_per_output as usize;
        }
        eprintln!("round {}: passthrough draining the backlog…", r + 1);
        let out = format!("bench.passthrough.out.{r}");
        let p = drive(
            &rt,
            &base,
            &format!("bench-passthrough-{r}"),
            "bench.backlog",
            move || Passthrough {
                topics: vec![out.clone()],
                share,
                bytes,
                seen: 0,
            },
            n,
            None,
        );
        h_runs.push(h);
        p_runs.push(p);
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        v[v.len() / 2]
    };
    let h_tp = median(h_runs.iter().map(|m| m.per_second).collect());
    let p_tp = median(p_runs.iter().map(|m| m.per_second).collect());
    let ratios: Vec<f64> = h_runs
        .iter()
        .zip(&p_runs)
        .map(|(h, p)| h.per_second / p.per_second)
        .collect();
    let ratio = median(ratios.clone());

    // Latency rounds at half the passthrough's (median) maximum rate.
    let rate = (p_tp / 2.0) as u64;
    let count = rate * live_secs;
    let mut hl_runs = Vec::new();
    let mut pl_runs = Vec::new();
    for r in 0..rounds {
        eprintln!(
            "round {}: latency at {rate} events/s for {live_secs} s, handoff then passthrough…",
            r + 1
        );
        hl_runs.push(drive(
            &rt,
            &base,
            &format!("bench-handoff-live-{r}"),
            &format!("bench.live.handoff.{r}"),
            handoff_stage(&base, &matrix),
            count,
            Some((rate, count)),
        ));
        let out = format!("bench.passthrough.live.out.{r}");
        pl_runs.push(drive(
            &rt,
            &base,
            &format!("bench-passthrough-live-{r}"),
            &format!("bench.live.passthrough.{r}"),
            move || Passthrough {
                topics: vec![out.clone()],
                share,
                bytes,
                seen: 0,
            },
            count,
            Some((rate, count)),
        ));
    }
    let med = |runs: &[Measured], f: fn(&Measured) -> u64| {
        median(runs.iter().map(|m| f(m) as f64).collect()) as i64
    };
    let (hp50, pp50) = (med(&hl_runs, |m| m.p50_ms), med(&pl_runs, |m| m.p50_ms));
    let (hp99, pp99) = (med(&hl_runs, |m| m.p99_ms), med(&pl_runs, |m| m.p99_ms));

    println!("| {n} events, local tansu broker, 2 cores, median of {rounds} alternating rounds | handoff | passthrough | handoff / passthrough |");
    println!("|---|---:|---:|---:|");
    println!("| backlog throughput (events/s) | {h_tp:.0} | {p_tp:.0} | {ratio:.2} |");
    println!(
        "| output records per input | {:.3} | {:.3} | |",
        h_runs[0].outputs_per_input, p_runs[0].outputs_per_input
    );
    println!(
        "| bytes per output record | {:.0} | {:.0} | |",
        h_runs[0].bytes_per_output, p_runs[0].bytes_per_output
    );
    println!(
        "| latency p50 at {rate}/s (ms) | {hp50} | {pp50} | {:+} ms |",
        hp50 - pp50
    );
    println!(
        "| latency p99 at {rate}/s (ms) | {hp99} | {pp99} | {:+} ms |",
        hp99 - pp99
    );
    println!();
    println!("rounds (throughput ratio; p99 handoff/passthrough ms):");
    for r in 0..rounds {
        println!(
            "  {}: {:.2}; {}/{}",
            r + 1,
            ratios[r],
            hl_runs[r].p99_ms,
            pl_runs[r].p99_ms
        );
    }
    println!();
    println!(
        "goal: throughput ratio >= 0.90: {ratio:.2} ({})",
        if ratio >= 0.9 { "met" } else { "not met" }
    );
    let d = hp99 - pp99;
    println!(
        "goal: p99 within 2 ms of the passthrough's: {d:+} ms ({})",
        if d <= 2 { "met" } else { "not met" }
    );
}
