//! End-to-end throughput, CPU and latency on a local broker: handoff side by side with
//! - the **floor**: a minimal rdkafka copy (`BaseConsumer` polled on one thread →
//!   `ThreadedProducer`, no framework, no decoding; `pipeline/floor.rs`), and
//! - the **passthrough**: handoff's own Kafka machinery (consumer thread, workers, delivery
//!   tracking, offsets stored after delivery) around a stage that copies instead of deciding;
//!
//! all three with the same librdkafka settings and the same number and size of output records
//! per input (handoff's, found by running its stage over the same events in memory first).
//!
//! 1. Pre-load a backlog (default 1,000,000 events; HANDOFF_BENCH_EVENTS to change).
//! 2. The stage alone: handoff's `Processor` over the same events in memory, one thread: CPU per
//!    event, outputs per input, bytes per output.
//! 3. Rounds (HANDOFF_BENCH_ROUNDS, default 3), the order rotating: each contender drains the
//!    backlog with a fresh group (handoff with a fresh changelog topic): throughput, CPU seconds
//!    per event of this process and of the broker (`/proc/*/stat`) from the first record
//!    consumed to the last input completed.
//! 4. At half the floor's (median) rate, live events for 20 s to each: latency from a record's
//!    Kafka timestamp to its last output delivered (p50, p99).
//! 5. At low load (2,000 events/s for 10 s, as in the demo), the same latencies.
//!
//! Run: `cargo bench --bench pipeline` (needs tansu: `deploy/broker.sh install`). For a profile
//! of one contender: `HANDOFF_BENCH_ONLY=handoff` (no report then); backlog rounds only:
//! `HANDOFF_BENCH_LIVE=0`; another live rate: `HANDOFF_BENCH_LIVE_RATE=N`.

#[path = "common/env.rs"]
mod bench_env;
use bench_env::env;
#[path = "common/cpu.rs"]
mod cpu;
#[path = "pipeline/floor.rs"]
mod floor;

use handoff::config::Settings;
use handoff::event::Level;
use handoff::matrix::Matrix;
use handoff::output::{Output, Topic};
use handoff::pipeline::process::{Input, Outcome, Processor, Stage, StageError};
use handoff::pipeline::stats::Stats;
use handoff::pipeline::steps::Step;
use handoff::pipeline::{self, StatsHandle, Topics};
use handoff::sim::broker::{free_port, LocalBroker, Storage};
use handoff::sim::fleet::{Fleet, FleetConfig};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One of handoff's output topics as it writes it: records per input, bytes per record, and
/// whether they go to the input's partition (the changelog).
#[derive(Debug, Clone, Copy)]
struct Lane {
    share: f64,
    bytes: usize,
    pinned: bool,
}

/// Records of a lane of `share` for the `seen`-th input (spread evenly: over many inputs,
/// exactly `share` per input).
fn copies(seen: u64, share: f64) -> u32 {
    let i = seen as f64;
    (((i + 1.0) * share).floor() - (i * share).floor()) as u32
}

/// Copies every input record to one topic per lane of handoff's, the lane's share of records
/// per input, each cut to the lane's size: the broker gets the records, bytes, topics and
/// partitions handoff gives it.
struct Passthrough {
    topics: Topics,
    mix: Vec<Lane>,
    seen: u64,
}

impl Stage for Passthrough {
    fn topics(&self) -> &Topics {
        &self.topics
    }
    fn process(
        &mut self,
        input: Input<'_>,
        _now_ms: i64,
        out: &mut Vec<Output>,
    ) -> Result<Outcome, StageError> {
        let p = input.payload.unwrap_or_default();
        for (t, lane) in self.mix.iter().enumerate() {
            for _ in 0..copies(self.seen, lane.share) {
                let mut o = Output::new(
                    Topic::Role(t),
                    input.key.map(<[u8]>::to_vec),
                    p[..p.len().min(lane.bytes)].to_vec(),
                );
                if lane.pinned {
                    o.partition = Some(input.partition);
                }
                out.push(o);
            }
        }
        self.seen += 1;
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

#[derive(Debug, Clone)]
struct Measured {
    per_second: f64,
    /// CPU µs per event of this process (the contender; nothing else runs during a backlog
    /// round) and of the broker.
    cpu_us: f64,
    broker_cpu_us: f64,
    outputs_per_input: f64,
    bytes_per_output: f64,
    p50_ms: u64,
    p99_ms: u64,
    /// p50, p99 per step of a record's way, µs (the floor has consumer wait and produce → ack).
    steps: Vec<(Step, [u64; 2])>,
}

/// A contender running: its counters and how to stop it.
struct Running {
    stats: Arc<Stats>,
    stop: Box<dyn FnOnce()>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Who {
    Floor,
    Passthrough,
    Handoff,
}

impl Who {
    fn name(self) -> &'static str {
        match self {
            Who::Floor => "floor",
            Who::Passthrough => "passthrough",
            Who::Handoff => "handoff",
        }
    }
}

/// What every run shares.
struct Bench {
    rt: tokio::runtime::Runtime,
    base: Settings,
    matrix: Arc<Matrix>,
    broker_pid: u32,
    /// handoff's output topics as it writes them (from the stage alone).
    mix: Vec<Lane>,
}

impl Bench {
    /// Starts `who` reading `input`; `tag` makes its group and output topics its own.
    fn start(&self, who: Who, input: &str, tag: &str) -> Running {
        let mut s = self.base.clone();
        s.kafka.group_id = format!("bench-{}-{tag}", who.name());
        s.topics.input = input.into();
        let outs: Vec<String> = (0..self.mix.len())
            .map(|i| format!("bench.{}.out.{tag}.{i}", who.name()))
            .collect();
        let mix = self.mix.clone();
        match who {
            Who::Floor => {
                let mut topics = outs.clone();
                topics.push(s.topics.input.clone());
                self.rt
                    .block_on(handoff::kafka::admin::ensure_topics(&s, &topics))
                    .expect("floor topics");
                let f = floor::Floor::start(&s, outs, mix);
                let stats = f.stats.clone();
                Running {
                    stats,
                    stop: Box::new(move || f.stop()),
                }
            }
            Who::Passthrough => self.start_stage(&s, move || Passthrough {
                topics: Topics::roles_only(outs.clone()),
                mix: mix.clone(),
                seen: 0,
            }),
            Who::Handoff => {
                // A changelog of its own: a run never restores another's sessions.
                s.topics.changelog = format!("bench.state.{tag}");
                let (b, m) = (s.clone(), self.matrix.clone());
                self.start_stage(&s, move || Processor::new(&b, m.clone()).unwrap())
            }
        }
    }

    fn start_stage<S: Stage + 'static>(
        &self,
        settings: &Settings,
        stage: impl Fn() -> S + Send + 'static,
    ) -> Running {
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let (stats_tx, stats_rx) = std::sync::mpsc::channel::<StatsHandle>();
        let s2 = settings.clone();
        let task = self.rt.spawn(async move {
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
        let handle = self.rt.handle().clone();
        Running {
            stats,
            stop: Box::new(move || {
                let _ = stop_tx.send(());
                handle
                    .block_on(task)
                    .expect("join")
                    .expect("the stage stops cleanly");
            }),
        }
    }

    /// Runs `who` until `n` inputs are complete: from `input` as it is (a backlog), or fed live
    /// at `rate` events/s.
    fn run(&self, who: Who, input: &str, tag: &str, n: u64, rate: Option<u64>) -> Measured {
        let running = self.start(who, input, tag);
        if let Some(rate) = rate {
            // Let the group settle, then feed live traffic.
            std::thread::sleep(Duration::from_secs(6));
            let mut fleet = Fleet::new(FleetConfig {
                seed: 99,
                ..Default::default()
            });
            self.rt
                .block_on(handoff::sim::produce::produce(
                    &self.base,
                    input,
                    &mut fleet,
                    Some(n),
                    rate,
                    std::future::pending(),
                    Default::default(),
                ))
                .expect("live traffic");
        }
        let stats = running.stats.clone();
        let deadline = Instant::now() + Duration::from_secs(1800);
        while stats.consumed.load(Relaxed) == 0 {
            assert!(Instant::now() < deadline, "{tag}: nothing consumed");
            std::thread::sleep(Duration::from_millis(2));
        }
        let (t0, cpu0, broker0) = (Instant::now(), cpu::seconds("self"), self.broker_cpu());
        while stats.completed.load(Relaxed) < n {
            assert!(
                Instant::now() < deadline,
                "{tag}: {} of {n} done after 30 min",
                stats.completed.load(Relaxed)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let elapsed = t0.elapsed();
        let (cpu1, broker1) = (cpu::seconds("self"), self.broker_cpu());
        let snap = stats.snapshot();
        (running.stop)();
        Measured {
            per_second: n as f64 / elapsed.as_secs_f64(),
            cpu_us: (cpu1 - cpu0) * 1e6 / n as f64,
            broker_cpu_us: (broker1 - broker0) * 1e6 / n as f64,
            outputs_per_input: snap.produced as f64 / snap.consumed.max(1) as f64,
            bytes_per_output: snap.produced_bytes as f64 / snap.produced.max(1) as f64,
            p50_ms: snap.e2e_ms[0],
            p99_ms: snap.e2e_ms[1],
            steps: snap.steps,
        }
    }

    fn broker_cpu(&self) -> f64 {
        cpu::seconds(&self.broker_pid.to_string())
    }
}

/// handoff's stage alone over `n` events of the backlog's fleet, in memory on this thread, three
/// times with a fresh processor: the median CPU µs per event, and its output topics as lanes.
fn stage_alone(base: &Settings, matrix: &Arc<Matrix>, n: u64) -> (f64, Vec<Lane>) {
    let runs: Vec<(f64, Vec<Lane>)> = (0..3).map(|_| stage_once(base, matrix, n)).collect();
    let cpu = median(runs.iter().map(|r| r.0).collect());
    (cpu, runs[0].1.clone())
}

fn stage_once(base: &Settings, matrix: &Arc<Matrix>, n: u64) -> (f64, Vec<Lane>) {
    let codec = handoff::event::Codec::new(Default::default()).unwrap();
    let mut fleet = Fleet::new(FleetConfig {
        seed: 1,
        ..Default::default()
    });
    let now = handoff::clock::SystemClock::now();
    let records: Vec<(Vec<u8>, Vec<u8>)> = (0..n)
        .map(|_| fleet.next_record_avro(&codec, now))
        .collect();
    let mut settings = base.clone();
    settings.topics.input = "bench.backlog".into();
    let mut p = Processor::new(&settings, matrix.clone()).unwrap();
    let mut out = Vec::new();
    let versioned: Vec<(String, Vec<u8>)> =
        handoff::event::wire::version_headers(handoff::event::SchemaKind::AgentAction);
    // Per output topic: records, bytes, pinned to a partition.
    let at: std::collections::HashMap<(Topic, bool), usize> = Stage::topics(&p)
        .addresses()
        .into_iter()
        .enumerate()
        .map(|(i, (t, drill, _))| ((t, drill), i))
        .collect();
    let mut lanes = vec![(0u64, 0u64, false); at.len()];
    let cpu0 = cpu::seconds("thread-self");
    for (i, (key, value)) in records.iter().enumerate() {
        let input = Input {
            topic: "bench.backlog",
            partition: (i % 4) as i32,
            offset: (i / 4) as i64,
            key: Some(key),
            payload: Some(value),
            headers: &versioned,
        };
        Stage::process(&mut p, input, now + i as i64, &mut out).unwrap();
        for o in &out {
            let l = &mut lanes[at[&(o.topic, o.drill)]];
            l.0 += 1;
            l.1 += o.payload.len() as u64;
            l.2 |= o.partition.is_some();
        }
        out.clear();
    }
    let cpu_us = (cpu::seconds("thread-self") - cpu0) * 1e6 / n as f64;
    let mix = lanes
        .into_iter()
        .filter(|l| l.0 > 0)
        .map(|(count, bytes, pinned)| Lane {
            share: count as f64 / n as f64,
            bytes: (bytes / count) as usize,
            pinned,
        })
        .collect();
    (cpu_us, mix)
}

/// The median over rounds of `f` of `who`'s measurements.
fn med(runs: &[Vec<(Who, Measured)>], who: Who, f: impl Fn(&Measured) -> f64) -> f64 {
    median(
        runs.iter()
            .flat_map(|r| r.iter().filter(|(w, _)| *w == who).map(|(_, m)| f(m)))
            .collect(),
    )
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() {
    // `cargo bench` passes --bench; nothing else to parse.
    let n: u64 = env("HANDOFF_BENCH_EVENTS", 1_000_000);
    let rounds: usize = env("HANDOFF_BENCH_ROUNDS", 3);
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
    let (stage_us, mix) = stage_alone(&base, &matrix, n.min(200_000));
    eprintln!("stage alone: {stage_us:.2} µs/event; its outputs per topic: {mix:?}");
    let bench = Bench {
        rt,
        base,
        matrix,
        broker_pid: broker.pid(),
        mix,
    };
    let only = std::env::var("HANDOFF_BENCH_ONLY").unwrap_or_default();
    let all = [Who::Floor, Who::Passthrough, Who::Handoff];
    let order = |r: usize| {
        let mut o = all.to_vec();
        o.rotate_left(r % all.len());
        o.retain(|w| only.is_empty() || only.split(',').any(|x| x == w.name()));
        o
    };
    let mut backlog: Vec<Vec<(Who, Measured)>> = Vec::new();
    for r in 0..rounds {
        let mut round = Vec::new();
        for who in order(r) {
            eprintln!("round {}: {} draining the backlog…", r + 1, who.name());
            let m = bench.run(who, "bench.backlog", &format!("b{r}"), n, None);
            eprintln!(
                "  {:.0} events/s, {:.2} µs CPU/event",
                m.per_second, m.cpu_us
            );
            round.push((who, m));
        }
        backlog.push(round);
    }
    if !only.is_empty() {
        return;
    }
    if env::<u64>("HANDOFF_BENCH_LIVE", 1) == 0 {
        report(&backlog, &[], &[], n, rounds, 0, stage_us);
        return;
    }
    let floor_tp = med(&backlog, Who::Floor, |m| m.per_second);
    // Half the floor's rate, unless HANDOFF_BENCH_LIVE_RATE says otherwise (the in-process
    // generator and the broker may not sustain it on a small machine).
    let rate = env("HANDOFF_BENCH_LIVE_RATE", (floor_tp / 2.0) as u64);
    let count = rate * live_secs;
    let mut live: Vec<Vec<(Who, Measured)>> = Vec::new();
    for r in 0..rounds {
        let mut round = Vec::new();
        for who in order(r) {
            eprintln!(
                "round {}: {} at {rate} events/s for {live_secs} s…",
                r + 1,
                who.name()
            );
            let input = format!("bench.live.{}.{r}", who.name());
            let m = bench.run(who, &input, &format!("l{r}"), count, Some(rate));
            round.push((who, m));
        }
        live.push(round);
    }
    // Low load, as in the demo: 2,000 events/s for 10 s.
    let (low_rate, low_count) = (2_000, 20_000);
    let mut low: Vec<Vec<(Who, Measured)>> = Vec::new();
    for r in 0..rounds {
        let mut round = Vec::new();
        for who in order(r) {
            eprintln!("round {}: {} at {low_rate} events/s…", r + 1, who.name());
            let input = format!("bench.low.{}.{r}", who.name());
            let m = bench.run(who, &input, &format!("w{r}"), low_count, Some(low_rate));
            round.push((who, m));
        }
        low.push(round);
    }
    report(&backlog, &live, &low, n, rounds, rate, stage_us);
    drop(broker);
}

/// Where the time goes at one load: p50 / p99 per step, ms, the median over rounds.
fn steps(load: &str, runs: &[Vec<(Who, Measured)>]) {
    if runs.is_empty() {
        return;
    }
    let all = [Who::Floor, Who::Passthrough, Who::Handoff];
    println!();
    println!("| step at {load}, p50 / p99 (ms) | floor | passthrough | handoff |");
    println!("|---|---:|---:|---:|");
    for (i, step) in Step::ALL.iter().enumerate() {
        let cells: Vec<String> = all
            .iter()
            .map(|w| {
                let q = |k: usize| med(runs, *w, |m| m.steps[i].1[k] as f64 / 1000.0);
                match (q(0), q(1)) {
                    (_, 0.0) => "—".to_string(),
                    (p50, p99) => format!("{p50:.3} / {p99:.3}"),
                }
            })
            .collect();
        println!("| {} | {} |", step.as_str(), cells.join(" | "));
    }
    println!();
}

fn report(
    backlog: &[Vec<(Who, Measured)>],
    live: &[Vec<(Who, Measured)>],
    low: &[Vec<(Who, Measured)>],
    n: u64,
    rounds: usize,
    rate: u64,
    stage_us: f64,
) {
    let all = [Who::Floor, Who::Passthrough, Who::Handoff];
    let row = |what: &str, runs: &[Vec<(Who, Measured)>], f: fn(&Measured) -> f64, digits| {
        if runs.is_empty() {
            return;
        }
        let cells: Vec<String> = all
            .iter()
            .map(|w| format!("{:.*}", digits, med(runs, *w, f)))
            .collect();
        println!("| {what} | {} |", cells.join(" | "));
    };
    println!(
        "| {n} events, local tansu broker, median of {rounds} rotating rounds | floor | passthrough | handoff |"
    );
    println!("|---|---:|---:|---:|");
    row(
        "backlog throughput (events/s)",
        backlog,
        |m| m.per_second,
        0,
    );
    row("CPU µs per event, this process", backlog, |m| m.cpu_us, 2);
    row(
        "CPU µs per event, the broker",
        backlog,
        |m| m.broker_cpu_us,
        2,
    );
    row(
        "output records per input",
        backlog,
        |m| m.outputs_per_input,
        3,
    );
    row(
        "bytes per output record",
        backlog,
        |m| m.bytes_per_output,
        0,
    );
    row(
        &format!("latency p50 at {rate}/s (ms)"),
        live,
        |m| m.p50_ms as f64,
        0,
    );
    row(
        &format!("latency p99 at {rate}/s (ms)"),
        live,
        |m| m.p99_ms as f64,
        0,
    );
    row("latency p50 at 2000/s (ms)", low, |m| m.p50_ms as f64, 0);
    row("latency p99 at 2000/s (ms)", low, |m| m.p99_ms as f64, 0);
    println!();
    println!("the stage alone (handoff's Processor in memory, one thread): {stage_us:.2} µs CPU per event");
    println!();
    println!("rounds (events/s and CPU µs/event; floor, passthrough, handoff):");
    for (r, round) in backlog.iter().enumerate() {
        let cells: Vec<String> = all
            .iter()
            .map(|w| {
                let m = &round.iter().find(|(x, _)| x == w).unwrap().1;
                format!("{:.0} @ {:.2}", m.per_second, m.cpu_us)
            })
            .collect();
        println!("  {}: {}", r + 1, cells.join("; "));
    }
    println!();
    let h_cpu = med(backlog, Who::Handoff, |m| m.cpu_us);
    let f_cpu = med(backlog, Who::Floor, |m| m.cpu_us);
    let cpu_ratio = h_cpu / (f_cpu + stage_us);
    let tp_ratio =
        med(backlog, Who::Handoff, |m| m.per_second) / med(backlog, Who::Floor, |m| m.per_second);
    let verdict = |ok: bool| if ok { "met" } else { "not met" };
    println!(
        "goal: handoff CPU per event <= 1.25 x (floor + stage): {h_cpu:.2} / ({f_cpu:.2} + {stage_us:.2}) = {cpu_ratio:.2} ({})",
        verdict(cpu_ratio <= 1.25)
    );
    println!(
        "goal: throughput >= 0.8 x the floor's: {tp_ratio:.2} ({})",
        verdict(tp_ratio >= 0.8)
    );
    if live.is_empty() {
        return;
    }
    let p99 =
        med(live, Who::Handoff, |m| m.p99_ms as f64) - med(live, Who::Floor, |m| m.p99_ms as f64);
    let p50 =
        med(low, Who::Handoff, |m| m.p50_ms as f64) - med(low, Who::Floor, |m| m.p50_ms as f64);
    steps(&format!("{rate}/s"), live);
    steps("2000/s", low);
    println!(
        "goal: p99 at half the floor's rate within 10 ms of the floor's: {p99:+.0} ms ({})",
        verdict(p99 <= 10.0)
    );
    println!(
        "goal: p50 at low load (2000/s) within 10 ms of the floor's: {p50:+.0} ms ({})",
        verdict(p50 <= 10.0)
    );
}
