//! Memory per session held by a processor: an idle session (its streak only) and a session
//! with one open escalation, each held as `PartitionState` holds it after a restore (the same
//! maps, index and strings as while processing). Bytes counted by a counting allocator (live
//! heap) and by the resident set (`VmRSS`).
//!
//! Run: `cargo bench --bench memory` (HANDOFF_BENCH_IDLE, HANDOFF_BENCH_OPEN to change the
//! counts: 1,000,000 and 100,000 by default). No broker needed.

#[path = "common/env.rs"]
mod bench_env;
use bench_env::env;
use handoff::event::{Codec, SchemaKind};
use handoff::matrix::{Matrix, SessionState};
use handoff::pipeline::process::{Input, Processor, Stage};
use handoff::sim::fleet::{Fleet, FleetConfig};
use handoff::state::{PartitionState, SessionRecord};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering::Relaxed};
use std::sync::Arc;

/// The system allocator, counting the bytes live.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is forwarded to the system allocator unchanged; the counter is a side
// effect only.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Relaxed);
        // SAFETY: the caller's contract is passed on.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Relaxed);
        // SAFETY: the caller's contract is passed on.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size as isize - layout.size() as isize, Relaxed);
        // SAFETY: the caller's contract is passed on.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Resident bytes of this process.
fn rss() -> isize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<isize>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// Live heap bytes and resident bytes per session of `n` sessions made by `record(i)`.
fn per_session(n: usize, record: impl Fn(usize) -> SessionRecord) -> (f64, f64) {
    // Counted from before the records are made: their strings are what a session holds.
    let (heap0, rss0) = (LIVE.load(Relaxed), rss());
    let records: Vec<(String, SessionRecord)> = (0..n)
        .map(|i| (format!("sess-{i:012}"), record(i)))
        .collect();
    let mut state = PartitionState::new();
    for (session, r) in records {
        state.restore(&session, Some(r));
    }
    let (heap1, rss1) = (LIVE.load(Relaxed), rss());
    assert_eq!(state.sessions(), n);
    drop(state);
    (
        (heap1 - heap0) as f64 / n as f64,
        (rss1 - rss0) as f64 / n as f64,
    )
}

fn main() {
    let (n_idle, n_open) = (
        env::<usize>("HANDOFF_BENCH_IDLE", 1_000_000),
        env::<usize>("HANDOFF_BENCH_OPEN", 100_000),
    );
    let matrix = Arc::new(Matrix::default_matrix().unwrap());
    let codec = Codec::new(Default::default()).unwrap();
    // An event the shipped matrix hands to one role, decided by a processor: its changelog
    // record is a session with one open escalation.
    let mut fleet = Fleet::new(FleetConfig::default());
    let event = std::iter::repeat_with(|| fleet.next_event())
        .find(|e| {
            let d = matrix.evaluate(e, &SessionState::default());
            d.level.needs_human() && d.roles.len() == 1
        })
        .expect("the fleet escalates some events");
    let avro = codec.encode(SchemaKind::AgentAction, &event).unwrap();
    let mut p = Processor::new(&Default::default(), matrix.clone()).unwrap();
    let mut out = Vec::new();
    let versioned: Vec<(String, Vec<u8>)> =
        handoff::event::wire::version_headers(SchemaKind::AgentAction);
    let input = Input {
        topic: "agent.actions",
        partition: 0,
        offset: 0,
        key: Some(event.session_id.as_bytes()),
        payload: Some(&avro),
        headers: &versioned,
    };
    Stage::process(&mut p, input, event.timestamp_ms, &mut out).unwrap();
    let written = out
        .iter()
        .find(|o| o.topic == handoff::output::Topic::Changelog)
        .expect("a state write");
    let open = SessionRecord::decode(&written.payload).unwrap();
    assert_eq!(open.open.len(), 1);
    let idle = SessionRecord {
        streak: SessionState {
            consecutive_low: 1,
            turns: 3,
            last_event_ms: event.timestamp_ms,
        },
        touched_ms: event.timestamp_ms,
        ..Default::default()
    };

    let (idle_heap, idle_rss) = per_session(n_idle, |_| idle.clone());
    let (open_heap, open_rss) = per_session(n_open, |_| open.clone());
    let goal_open = 1.5 * avro.len() as f64;
    println!("| held by one partition's state | sessions | heap bytes each | resident bytes each | goal | heap / goal |");
    println!("|---|---:|---:|---:|---:|---:|");
    println!(
        "| idle session (streak only) | {n_idle} | {idle_heap:.0} | {idle_rss:.0} | 200 | {:.2} |",
        idle_heap / 200.0
    );
    println!(
        "| session with one open escalation | {n_open} | {open_heap:.0} | {open_rss:.0} | {goal_open:.0} (1.5 × its event's {} Avro bytes) | {:.2} |",
        avro.len(),
        open_heap / goal_open
    );
    println!();
    println!(
        "its changelog record (JSON): {} bytes; the event: {} bytes of Avro",
        written.payload.len(),
        avro.len()
    );
}
