//! The escalation engine's speed, in one run:
//! - Avro decoding of `AgentAction`: apache-avro's generic reader (bytes → Value → struct)
//!   against the typed decoder (serde_avro_fast, bytes → struct);
//! - matrix evaluation of decoded events with the default matrix;
//! - decode + validate + evaluate, the per-event work of the stream before any output.
//!
//! Events come from the synthetic fleet (production-like mix, about 5% needing a human) with
//! `request`, `output` and `user_message` of about 300 bytes each. `benches/report.py` turns
//! criterion's estimates into the ratios quoted in the README.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use handoff::event::{AgentAction, Codec, EventLimits, SchemaKind};
use handoff::matrix::{Matrix, SessionState};
use handoff::pipeline::process::{Input, Processor};
use handoff::sim::fleet::{Fleet, FleetConfig};

const N: usize = 1024;
const FIELD_BYTES: usize = 300;
const FILLER: &str =
    " We keep the customer informed and follow the usual process for this kind of request.";

fn pad(s: &mut String) {
    while s.len() < FIELD_BYTES {
        s.push_str(FILLER);
    }
    let mut end = FIELD_BYTES;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.truncate(end);
}

fn events() -> Vec<AgentAction> {
    let mut fleet = Fleet::new(FleetConfig {
        seed: 42,
        ..FleetConfig::default()
    });
    (0..N)
        .map(|_| {
            let mut e = fleet.next_event();
            pad(&mut e.request);
            let mut out = e.output.take().unwrap_or_default();
            pad(&mut out);
            e.output = Some(out);
            let mut msg = e.user_message.take().unwrap_or_default();
            pad(&mut msg);
            e.user_message = Some(msg);
            e
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let codec = Codec::new(EventLimits::default()).unwrap();
    let matrix = Matrix::default_matrix().unwrap();
    let events = events();
    let encoded: Vec<Vec<u8>> = events
        .iter()
        .map(|e| codec.encode(SchemaKind::AgentAction, e).unwrap())
        .collect();
    let state = SessionState::default();
    let avg = encoded.iter().map(Vec::len).sum::<usize>() / N;
    eprintln!("{N} events, {avg} bytes of Avro each on average");

    let mut g = c.benchmark_group("decode");
    g.throughput(Throughput::Elements(N as u64));
    g.bench_function("apache_avro_generic", |b| {
        b.iter(|| {
            for bytes in &encoded {
                let e: AgentAction = codec
                    .decode_generic(SchemaKind::AgentAction, black_box(bytes))
                    .unwrap();
                black_box(e);
            }
        })
    });
    g.bench_function("serde_avro_fast", |b| {
        b.iter(|| {
            for bytes in &encoded {
                let e: AgentAction = codec
                    .decode(SchemaKind::AgentAction, black_box(bytes))
                    .unwrap();
                black_box(e);
            }
        })
    });
    g.finish();

    let mut g = c.benchmark_group("evaluate");
    g.throughput(Throughput::Elements(N as u64));
    g.bench_function("default_matrix", |b| {
        b.iter(|| {
            for e in &events {
                black_box(matrix.evaluate(black_box(e), &state));
            }
        })
    });
    // The same matrix without its two phrase triggers: what the rules cost apart from the
    // keyword scan over ~900 bytes of text.
    let no_phrases = Matrix::from_toml_str(
        &handoff::matrix::DEFAULT_MATRIX_TOML
            .replace(
                "[triggers.policy_keyword]",
                "[triggers.policy_keyword]\nenabled = false",
            )
            .replace(
                "[triggers.human_requested]",
                "[triggers.human_requested]\nenabled = false",
            ),
        handoff::matrix::MatrixSource::Default,
    )
    .unwrap();
    g.bench_function("default_matrix_without_phrase_triggers", |b| {
        b.iter(|| {
            for e in &events {
                black_box(no_phrases.evaluate(black_box(e), &state));
            }
        })
    });
    g.finish();

    let mut g = c.benchmark_group("decode_evaluate");
    g.throughput(Throughput::Elements(N as u64));
    g.bench_function("serde_avro_fast", |b| {
        b.iter(|| {
            for bytes in &encoded {
                let e = codec.decode_action(black_box(bytes)).unwrap();
                black_box(matrix.evaluate(&e, &state));
            }
        })
    });
    g.bench_function("apache_avro_generic", |b| {
        b.iter(|| {
            for bytes in &encoded {
                let e: AgentAction = codec
                    .decode_generic(SchemaKind::AgentAction, black_box(bytes))
                    .unwrap();
                e.validate(codec.limits()).unwrap();
                black_box(matrix.evaluate(&e, &state));
            }
        })
    });
    g.finish();

    // Building outputs: the plan (verdict + escalations with context packages), then encoding.
    let decisions: Vec<_> = events.iter().map(|e| matrix.evaluate(e, &state)).collect();
    let escalating = decisions.iter().filter(|d| !d.roles.is_empty()).count();
    eprintln!("{escalating} of {N} events escalate");
    let mut g = c.benchmark_group("outputs");
    g.throughput(Throughput::Elements(N as u64));
    g.bench_function("plan", |b| {
        b.iter(|| {
            for (e, d) in events.iter().zip(&decisions) {
                black_box(handoff::escalation::plan(&matrix, e, d, 1, false));
            }
        })
    });
    let plans: Vec<_> = events
        .iter()
        .zip(&decisions)
        .map(|(e, d)| handoff::escalation::plan(&matrix, e, d, 1, false))
        .collect();
    g.bench_function("encode_verdicts", |b| {
        b.iter(|| {
            for p in &plans {
                black_box(codec.encode(SchemaKind::Verdict, &p.verdict).unwrap());
            }
        })
    });
    g.finish();

    // The pipeline's whole per-record stage: decode, decide, build and encode every output,
    // keep the session state and write what changed. Each batch starts from an empty state,
    // as a processor meeting these events for the first time (a state that has seen them would
    // treat them as replays).
    let mut g = c.benchmark_group("stage");
    g.throughput(Throughput::Elements(N as u64));
    let settings = handoff::config::Settings::default();
    let shared = std::sync::Arc::new(matrix.clone());
    let mut out = Vec::new();
    g.bench_function("handoff_process", |b| {
        b.iter_batched(
            || Processor::new(&settings, shared.clone()).unwrap(),
            |mut stage| {
                for (i, bytes) in encoded.iter().enumerate() {
                    out.clear();
                    let input = Input {
                        topic: "agent.actions",
                        partition: (i % 4) as i32,
                        offset: i as i64,
                        key: Some(b"k"),
                        payload: Some(bytes),
                        headers: &[],
                    };
                    black_box(stage.process(input, 1, &mut out).unwrap());
                }
                stage
            },
            criterion::BatchSize::LargeInput,
        )
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
