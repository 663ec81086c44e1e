//! Scale-out: one, two and three `handoff run` processes (members of one group) draining the
//! same backlog of an 8-partition topic, in one run. For each: throughput from the first record
//! consumed to the last one completed, and CPU seconds per event of the members together and of
//! the broker (from /proc/PID/stat).
//!
//! On a two-core machine the members share the cores with each other and with the broker, so
//! more members cannot add throughput there; the harness runs unchanged on a bigger machine,
//! where the member count is the variable. `cargo bench --bench scaleout` (needs tansu).
//! Environment: HANDOFF_BENCH_EVENTS (default 300,000), HANDOFF_BENCH_MEMBERS (default "1,2,3"),
//! HANDOFF_BENCH_ROUNDS (default 1; rounds alternate the order).

#[path = "common/env.rs"]
mod bench_env;
use bench_env::env;
#[path = "common/cpu.rs"]
mod cpu;

use handoff::config::Settings;
use handoff::sim::broker::{free_port, LocalBroker, Storage};
use handoff::sim::fleet::{Fleet, FleetConfig};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const PARTITIONS: u32 = 8;
const INPUT: &str = "bench.scale.backlog";

fn metric(port: u16, name: &str) -> f64 {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return 0.0;
    };
    let _ = write!(s, "GET /metrics HTTP/1.0\r\n\r\n");
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
        .unwrap_or(0.0)
}

struct Member {
    child: Child,
    port: u16,
}

fn start_member(dir: &Path, bootstrap: &str, group: &str, i: usize) -> Member {
    let port = free_port();
    let cfg = dir.join(format!("{group}-{i}.toml"));
    std::fs::write(
        &cfg,
        format!(
            "[kafka]\nbootstrap_servers = \"{bootstrap}\"\ngroup_id = \"{group}\"\n\
             partitions = {PARTITIONS}\nsession_timeout = \"6s\"\n[topics]\ninput = \"{INPUT}\"\n\
             [log]\nlevel = \"warn\"\n[metrics]\nbind = \"127.0.0.1:{port}\"\n"
        ),
    )
    .unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_handoff"))
        .args(["run", "--config"])
        .arg(&cfg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Member { child, port }
}

/// Peak resident memory of a process (VmHWM), MiB.
fn peak_rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

struct Measured {
    members: usize,
    peak_rss_mib: f64,
    per_second: f64,
    cpu_per_event_us: f64,
    broker_cpu_per_event_us: f64,
}

fn drain(dir: &Path, broker: &LocalBroker, members: usize, n: u64, round: usize) -> Measured {
    let group = format!("scale-{members}-{round}");
    let bs = broker.bootstrap();
    let broker_cpu = cpu::seconds(&broker.pid().to_string());
    let mut ms: Vec<Member> = (0..members)
        .map(|i| start_member(dir, &bs, &group, i))
        .collect();
    let sum = |ms: &[Member], name: &str| ms.iter().map(|m| metric(m.port, name)).sum::<f64>();
    let mut first: Option<(Instant, f64, f64)> = None;
    let deadline = Instant::now() + Duration::from_secs(600);
    let done = loop {
        assert!(
            Instant::now() < deadline,
            "{members} member(s) did not drain the backlog"
        );
        let consumed = sum(&ms, "handoff_consumed_records_total ");
        if first.is_none() && consumed > 0.0 {
            let cpu: f64 = ms
                .iter()
                .map(|m| cpu::seconds(&m.child.id().to_string()))
                .sum();
            first = Some((Instant::now(), cpu, cpu::seconds(&broker.pid().to_string())));
        }
        let in_flight = sum(&ms, "handoff_in_flight_records ");
        if consumed >= n as f64 && in_flight == 0.0 {
            break Instant::now();
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let (t0, cpu0, bcpu0) = first.expect("consumed");
    let cpu: f64 = ms
        .iter()
        .map(|m| cpu::seconds(&m.child.id().to_string()))
        .sum::<f64>()
        - cpu0;
    let bcpu = cpu::seconds(&broker.pid().to_string()) - bcpu0;
    let _ = broker_cpu;
    let peak = ms
        .iter()
        .map(|m| peak_rss_mib(m.child.id()))
        .fold(0.0, f64::max);
    for m in &mut ms {
        let _ = Command::new("kill")
            .args(["-TERM", &m.child.id().to_string()])
            .status();
    }
    for m in &mut ms {
        let _ = m.child.wait();
    }
    let secs = done.duration_since(t0).as_secs_f64();
    Measured {
        members,
        peak_rss_mib: peak,
        per_second: n as f64 / secs,
        cpu_per_event_us: cpu / n as f64 * 1e6,
        broker_cpu_per_event_us: bcpu / n as f64 * 1e6,
    }
}

fn main() {
    let n: u64 = env("HANDOFF_BENCH_EVENTS", 300_000);
    let rounds: usize = env("HANDOFF_BENCH_ROUNDS", 1);
    let counts: Vec<usize> = env("HANDOFF_BENCH_MEMBERS", "1,2,3".to_string())
        .split(',')
        .filter_map(|v| v.trim().parse().ok())
        .collect();
    let broker =
        LocalBroker::start(free_port(), Storage::Memory).expect("tansu (deploy/broker.sh install)");
    let dir = std::env::temp_dir().join(format!("handoff-scaleout-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut base = Settings::default();
    base.kafka.bootstrap_servers = broker.bootstrap();
    base.kafka.partitions = PARTITIONS as i32;
    // One record per batch: tansu 0.6.0 answers a fetch that starts inside a batch from the
    // next batch, so a member resuming a partition after a rebalance would skip the rest.
    base.kafka
        .producer
        .insert("batch.num.messages".into(), "1".into());
    let rt = tokio::runtime::Runtime::new().unwrap();
    eprintln!("pre-loading {n} events into {PARTITIONS} partitions…");
    let mut fleet = Fleet::new(FleetConfig {
        seed: 3,
        ..Default::default()
    });
    rt.block_on(async {
        handoff::kafka::admin::ensure_topics(&base, &[INPUT.to_string()])
            .await
            .unwrap();
        handoff::sim::produce::produce(
            &base,
            INPUT,
            &mut fleet,
            Some(n),
            0,
            std::future::pending(),
            Default::default(),
        )
        .await
    })
    .expect("backlog");
    let mut results = Vec::new();
    for r in 0..rounds {
        let order: Vec<usize> = if r % 2 == 0 {
            counts.clone()
        } else {
            counts.iter().rev().copied().collect()
        };
        for &k in &order {
            eprintln!("round {}: {k} member(s) draining the backlog…", r + 1);
            results.push(drain(&dir, &broker, k, n, r));
        }
    }
    println!(
        "\nscale-out, {n} events, {PARTITIONS} partitions, {} cores, medians of {rounds} round(s):",
        std::thread::available_parallelism().map_or(0, |c| c.get())
    );
    println!("| members | events/s | vs 1 member | CPU µs/event, members | CPU µs/event, broker | peak RSS of a member, MiB |\n|---:|---:|---:|---:|---:|---:|");
    let median = |mut v: Vec<f64>| {
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        v[v.len() / 2]
    };
    let of = |k: usize, f: fn(&Measured) -> f64| {
        median(results.iter().filter(|m| m.members == k).map(f).collect())
    };
    let one = of(counts[0], |m| m.per_second);
    for &k in &counts {
        let rate = of(k, |m| m.per_second);
        println!(
            "| {k} | {rate:.0} | {:.2} | {:.1} | {:.1} | {:.0} |",
            rate / one,
            of(k, |m| m.cpu_per_event_us),
            of(k, |m| m.broker_cpu_per_event_us),
            of(k, |m| m.peak_rss_mib)
        );
    }
    let _ = std::fs::remove_dir_all(dir);
}
