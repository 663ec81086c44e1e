//! A rule reload under load, in one run: a matrix with 1,000 extra level rules and 500 extra
//! policy phrases is reloaded (SIGHUP's path: read, compile, validate, install) while two
//! workers decide a paced 50,000 events/s between them.
//!
//! Reported: the reload's own time (read + compile + install), the time until every worker
//! decides with the new version, and each record's latency (from the moment it was due to the
//! moment its outputs were built) at p50/p99/max before, during and after the reload.
//!
//! The workers run handoff's per-record stage (decode, decide, state, encode) without Kafka, so
//! the figures isolate what a reload costs the stage; `cargo bench --bench reload`. Options by
//! environment: RELOAD_RATE (events/s, default 50000), RELOAD_WORKERS (default 2).

#[path = "common/env.rs"]
mod bench_env;
use bench_env::env;
use handoff::event::{Codec, EventLimits, SchemaKind};
use handoff::matrix::{Matrix, Rules, DEFAULT_MATRIX_TOML};
use handoff::metrics::Metrics;
use handoff::output::Output;
use handoff::pipeline::process::{Input, Processor};
use handoff::reload::{Reloader, Trigger};
use handoff::sim::fleet::{Fleet, FleetConfig};
use hdrhistogram::Histogram;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The shipped matrix with `levels` more level rules and `phrases` more policy phrases; `gate`
/// makes two versions differ.
fn big_matrix(levels: usize, phrases: usize, gate: &str) -> String {
    let mut text = DEFAULT_MATRIX_TOML.replace("threshold = 0.70", &format!("threshold = {gate}"));
    let words: Vec<String> = (0..phrases)
        .map(|i| format!("\"restricted term {} {}\"", word(i), word(i * 7 + 3)))
        .collect();
    text = text.replacen(
        "keywords = [\n",
        &format!("keywords = [\n  {},\n", words.join(", ")),
        1,
    );
    let at = text.find("[[levels]]").expect("levels");
    let mut rules = String::new();
    for i in 0..levels {
        let level = ["execute", "execute_log", "ask_first", "hard_stop"][i % 4];
        rules.push_str(&format!(
            "[[levels]]\npattern = \"tool{}.op{}\"\nlevel = \"{level}\"\n\n",
            i / 10,
            i % 10
        ));
    }
    text.insert_str(at, &rules);
    text
}

fn word(i: usize) -> String {
    const SYL: [&str; 8] = ["ka", "lo", "mi", "nu", "pe", "ri", "so", "tu"];
    (0..4).map(|k| SYL[(i >> (3 * k)) % 8]).collect()
}

/// One worker's samples: (due time since start in µs, latency in µs, generation seen).
type Samples = Vec<(u64, u64, u64)>;

#[allow(clippy::too_many_arguments)] // each is one knob of the paced load
fn worker(
    rules: Arc<Rules>,
    records: Arc<Vec<(String, Vec<u8>)>>,
    start: Instant,
    every: Duration,
    offset: usize,
    stride: usize,
    stop: Arc<AtomicBool>,
    seen: Arc<AtomicU64>,
) -> Samples {
    let (m, _) = rules.current();
    let mut p = Processor::new(&Default::default(), m)
        .unwrap()
        .following(rules.clone());
    let mut out: Vec<Output> = Vec::new();
    let mut samples = Vec::with_capacity(400_000);
    let versioned: Vec<(String, Vec<u8>)> =
        handoff::event::wire::version_headers(handoff::event::SchemaKind::AgentAction);
    let mut i = offset;
    let mut n = 0i64;
    while !stop.load(Ordering::Relaxed) {
        let due = start + every * (i as u32);
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        let (key, bytes) = &records[i % records.len()];
        n += 1;
        out.clear();
        let input = Input {
            topic: "agent.actions",
            partition: offset as i32,
            offset: n,
            key: Some(key.as_bytes()),
            payload: Some(bytes),
            headers: &versioned,
        };
        p.process(input, 1_800_000_000_000 + n, &mut out).unwrap();
        let done = Instant::now();
        let generation = rules.generation();
        seen.store(generation, Ordering::Relaxed);
        samples.push((
            due.duration_since(start).as_micros() as u64,
            done.duration_since(due).as_micros() as u64,
            generation,
        ));
        i += stride;
    }
    samples
}

fn main() {
    let rate: u64 = env("RELOAD_RATE", 50_000);
    let workers: usize = env("RELOAD_WORKERS", 2);
    let dir = std::env::temp_dir().join(format!("handoff-reload-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("matrix.toml");
    let (a, b) = (
        big_matrix(1_000, 500, "0.70"),
        big_matrix(1_000, 500, "0.72"),
    );
    std::fs::write(&path, &a).unwrap();
    let compiled = Instant::now();
    let first = Matrix::from_file(&path).unwrap();
    let compile_ms = compiled.elapsed().as_secs_f64() * 1e3;
    let levels = first.spec().levels.len();
    println!(
        "matrix: {levels} level rules, {} bytes; compile alone {compile_ms:.1} ms",
        a.len()
    );

    let codec = Codec::new(EventLimits::default()).unwrap();
    let mut fleet = Fleet::new(FleetConfig {
        seed: 5,
        ..Default::default()
    });
    let records: Arc<Vec<(String, Vec<u8>)>> = Arc::new(
        (0..20_000)
            .map(|_| {
                let e = fleet.next_event();
                (
                    e.session_id.clone(),
                    codec.encode(SchemaKind::AgentAction, &e).unwrap(),
                )
            })
            .collect(),
    );
    let rules = Rules::new(Arc::new(first));
    let metrics = Metrics::new(&[], &[], "bench");
    let reloader = Reloader::new(
        Some(path.clone()),
        rules.clone(),
        metrics.rules().clone(),
        None,
    );
    let every = Duration::from_nanos(1_000_000_000 / rate);
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now() + Duration::from_millis(100);
    let seen: Vec<Arc<AtomicU64>> = (0..workers).map(|_| Arc::new(AtomicU64::new(0))).collect();
    let handles: Vec<_> = (0..workers)
        .map(|w| {
            let (rules, records, stop, seen) = (
                rules.clone(),
                records.clone(),
                stop.clone(),
                seen[w].clone(),
            );
            std::thread::spawn(move || worker(rules, records, start, every, w, workers, stop, seen))
        })
        .collect();

    // Two seconds of steady load, then the reload.
    std::thread::sleep(Duration::from_millis(2_100));
    std::fs::write(&path, &b).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let reload_at = start.elapsed();
    let t = Instant::now();
    let done = rt.block_on(reloader.reload(Trigger::Signal)).unwrap();
    let reload_ms = t.elapsed().as_secs_f64() * 1e3;
    while seen.iter().any(|s| s.load(Ordering::Relaxed) < 1) {
        std::hint::spin_loop();
    }
    let adopted_ms = t.elapsed().as_secs_f64() * 1e3;
    std::thread::sleep(Duration::from_millis(2_000));
    stop.store(true, Ordering::Relaxed);
    let samples: Vec<(u64, u64, u64)> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    println!("{done}: reload (read + compile + install) {reload_ms:.1} ms; every worker on the new version after {adopted_ms:.1} ms");

    let from = reload_at.as_micros() as u64;
    let until = from + (adopted_ms * 1e3) as u64 + 100_000;
    let windows = [
        ("before (0.5 s → reload)", 500_000, from),
        ("during (reload → all adopted + 100 ms)", from, until),
        ("after (→ 1.5 s later)", until, until + 1_500_000),
    ];
    println!("| window | records | p50 µs | p99 µs | max µs |\n|---|---:|---:|---:|---:|");
    let mut p99 = Vec::new();
    for (name, lo, hi) in windows {
        let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
        for (_, lat, _) in samples.iter().filter(|s| s.0 >= lo && s.0 < hi) {
            h.record((*lat).max(1)).unwrap();
        }
        let q = |x| h.value_at_quantile(x);
        println!(
            "| {name} | {} | {} | {} | {} |",
            h.len(),
            q(0.5),
            q(0.99),
            h.max()
        );
        p99.push(q(0.99));
    }
    let mixed = samples.iter().filter(|s| s.2 == 0 && s.0 > until).count();
    println!(
        "p99 during / before: {:.2}; records decided by the old rules after adoption: {mixed}",
        p99[1] as f64 / p99[0].max(1) as f64
    );
    let _ = std::fs::remove_dir_all(dir);
}
