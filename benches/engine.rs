//! The escalation engine's speed, in one run:
//! - Avro decoding of `AgentAction`: apache-avro's generic reader (bytes → Value → struct)
//!   against the typed decoder (serde_avro_fast, bytes → struct); and the same records
//!   Confluent-framed, decoded through the schema registry's cache (a hit: the writer schema
//!   is the reader's, so the typed decoder runs; and a compatible other version, resolved by
//!   apache-avro), next to the typed decode with the same validation;
//! - matrix evaluation of decoded events with the default matrix;
//! - decode + validate + evaluate, the per-event work of the stream before any output;
//! - the whole per-record stage, and the changelog records it writes, encoded and decoded as
//!   JSON and in the binary form;
//! - approval receipts: signing one and checking one (per verdict), and the stage with a
//!   signing key (receipts for human approvals only: the stage's events need none) and with
//!   receipts for every action the rules let run alone.
//!
//! Events come from the synthetic fleet (production-like mix, about 5% needing a human) with
//! `request`, `output` and `user_message` of about 300 bytes each. `benches/report.py` turns
//! criterion's estimates into the ratios quoted in docs/developers/performance.md.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use handoff::event::{AgentAction, Codec, EventLimits, SchemaKind};
use handoff::matrix::{Matrix, SessionState};
use handoff::output::Topic;
use handoff::pipeline::process::{Input, Processor};
use handoff::sim::fleet::{Fleet, FleetConfig};
use handoff::state::{ChangelogFormat, SessionRecord};

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
    g.bench_function("serde_avro_fast_validated", |b| {
        b.iter(|| {
            for bytes in &encoded {
                black_box(codec.decode_action(black_box(bytes)).unwrap());
            }
        })
    });
    registry_decode(&mut g, &codec, &events, &encoded);
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
    stage(&mut g, "handoff_process", &settings, &shared, &encoded);
    g.finish();
    changelog(c, &settings, &shared, &encoded);
    receipts(c, &shared, &encoded, &plans);
}

/// Signing and checking a receipt per verdict, and the stage with receipts.
fn receipts(
    c: &mut Criterion,
    matrix: &std::sync::Arc<Matrix>,
    encoded: &[Vec<u8>],
    plans: &[handoff::escalation::Plan],
) {
    use handoff::trust::receipt::{self, Approval, Claims, Expected};
    let signer = handoff::trust::Signer::generate("bench-1");
    let claims: Vec<Claims> = plans
        .iter()
        .map(|p| {
            let v = &p.verdict;
            Claims {
                iss: receipt::ISSUER.into(),
                aud: v.agent_id.clone(),
                jti: receipt::receipt_id(&v.action_id, v.decided_at_ms),
                iat: 1,
                exp: 601,
                action_id: v.action_id.clone(),
                session_id: v.session_id.clone(),
                agent_id: v.agent_id.clone(),
                action_type: v.action_type.clone(),
                tool_name: Some("issue_refund".into()),
                arguments_sha256: Some(receipt::sha256(v.action_id.as_bytes())),
                outcome: "approved".into(),
                chosen_option: None,
                approvers: Vec::new(),
                rule_version: v.rule_version.clone(),
                level: v.level.as_str().into(),
                triggers: v.triggers.clone(),
                approval: Approval {
                    id: v.action_id.clone(),
                    approved_at: None,
                    approved_until: receipt::rfc3339(601, false),
                },
            }
        })
        .collect();
    let mut g = c.benchmark_group("receipts");
    g.throughput(Throughput::Elements(N as u64));
    g.bench_function("sign", |b| {
        b.iter(|| {
            for cl in &claims {
                black_box(receipt::issue(&signer, black_box(cl)));
            }
        })
    });
    let issued: Vec<String> = claims
        .iter()
        .map(|cl| receipt::issue(&signer, cl))
        .collect();
    let mut keys = std::collections::HashMap::new();
    keys.insert(
        "bench-1".to_string(),
        handoff::trust::public_key(&signer.public_key()).unwrap(),
    );
    let now = Expected {
        now_s: 2,
        ..Expected::default()
    };
    g.bench_function("check", |b| {
        b.iter(|| {
            for r in &issued {
                black_box(receipt::check(black_box(r), &keys, &now).unwrap());
            }
        })
    });
    for (name, for_auto_run) in [
        ("handoff_process_signing_key", false),
        ("handoff_process_receipts_for_every_action", true),
    ] {
        let mut settings = handoff::config::Settings::default();
        settings.trust.signing_key = Some(signer.to_pem());
        settings.trust.signing_key_id = Some(signer.id().into());
        settings.trust.receipts.for_auto_run = for_auto_run;
        stage(&mut g, name, &settings, matrix, encoded);
    }
    g.finish();
}

/// The whole per-record stage over `encoded` under `settings`, from an empty state each batch.
fn stage(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    settings: &handoff::config::Settings,
    matrix: &std::sync::Arc<Matrix>,
    encoded: &[Vec<u8>],
) {
    let mut out = Vec::new();
    g.bench_function(name, |b| {
        b.iter_batched(
            || Processor::new(settings, matrix.clone()).unwrap(),
            |mut stage| {
                for (i, bytes) in encoded.iter().enumerate() {
                    out.clear();
                    black_box(stage.process(input(i, bytes), 1, &mut out).unwrap());
                }
                stage
            },
            criterion::BatchSize::LargeInput,
        )
    });
}

/// Event `i` of the bench as the stage's input record (offset `i`, four partitions).
fn input(i: usize, bytes: &[u8]) -> Input<'_> {
    Input {
        topic: "agent.actions",
        partition: (i % 4) as i32,
        offset: i as i64,
        key: Some(b"k"),
        payload: Some(bytes),
        headers: &VERSIONED,
    }
}

/// The header an action of the current schema version carries, as handoff's producers write it.
static VERSIONED: std::sync::LazyLock<Vec<(String, Vec<u8>)>> =
    std::sync::LazyLock::new(|| handoff::event::wire::version_headers(SchemaKind::AgentAction));

/// The changelog records the stage writes for these events (the sessions that escalated or
/// have a low-confidence streak), encoded and decoded in each form, per record.
fn changelog(
    c: &mut Criterion,
    settings: &handoff::config::Settings,
    matrix: &std::sync::Arc<Matrix>,
    encoded: &[Vec<u8>],
) {
    let mut stage = Processor::new(settings, matrix.clone()).unwrap();
    let mut out = Vec::new();
    for (i, bytes) in encoded.iter().enumerate() {
        stage.process(input(i, bytes), 1, &mut out).unwrap();
    }
    let records: Vec<SessionRecord> = out
        .iter()
        .filter(|o| o.topic == Topic::Changelog && !o.payload.is_empty())
        .map(|o| SessionRecord::decode(&o.payload).unwrap())
        .collect();
    let n = records.len();
    let mut g = c.benchmark_group("changelog");
    g.throughput(Throughput::Elements(n as u64));
    for (name, format) in [
        ("json", ChangelogFormat::Json),
        ("binary", ChangelogFormat::Binary),
    ] {
        let values: Vec<Vec<u8>> = records
            .iter()
            .map(|r| {
                let mut v = Vec::new();
                r.encode(format, &mut v).unwrap();
                v
            })
            .collect();
        let bytes = values.iter().map(Vec::len).sum::<usize>() / n.max(1);
        let open = records.iter().filter(|r| !r.open.is_empty()).count();
        eprintln!("changelog {name}: {n} records ({open} with an open action), {bytes} bytes each on average");
        write_bytes(name, n, bytes);
        let mut buf = Vec::with_capacity(8192);
        g.bench_function(format!("encode_{name}"), |b| {
            b.iter(|| {
                for r in &records {
                    buf.clear();
                    r.encode(format, &mut buf).unwrap();
                    black_box(&buf);
                }
            })
        });
        g.bench_function(format!("decode_{name}"), |b| {
            b.iter(|| {
                for v in &values {
                    black_box(SessionRecord::decode(v).unwrap());
                }
            })
        });
    }
    g.finish();
}

/// Bytes per changelog record, for `benches/report.py` (criterion keeps only times).
fn write_bytes(name: &str, records: usize, bytes: usize) {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("../criterion/changelog");
    std::fs::create_dir_all(&dir).unwrap();
    let json = format!("{{\"records\": {records}, \"bytes\": {bytes}}}");
    std::fs::write(dir.join(format!("{name}.bytes.json")), json).unwrap();
}

/// Decoding through the schema registry, every id already cached: the writer schema equal to
/// the reader's (id 1, the typed decoder) and a compatible other version (id 2, fields in
/// reverse order, resolved by apache-avro). Validation included, as in the processor.
fn registry_decode(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    codec: &Codec,
    events: &[AgentAction],
    encoded: &[Vec<u8>],
) {
    use handoff::registry::{RegistryDecoder, SchemaRegistry};
    let shipped = SchemaKind::AgentAction.schema_json().to_string();
    let mut reversed: serde_json::Value = serde_json::from_str(&shipped).unwrap();
    reversed["fields"].as_array_mut().unwrap().reverse();
    let reversed = reversed.to_string();
    let url = serve_schemas(vec![shipped, reversed.clone()]);
    let settings = handoff::config::RegistrySettings::new(url);
    let shared = std::sync::Arc::new(SchemaRegistry::new(&settings, codec).unwrap());
    let mut decoder = RegistryDecoder::new(shared);
    let same: Vec<Vec<u8>> = encoded
        .iter()
        .map(|d| handoff::event::wire::frame(1, d))
        .collect();
    let writer = apache_avro::Schema::parse_str(&reversed).unwrap();
    let other: Vec<Vec<u8>> = events
        .iter()
        .map(|e| {
            let v = apache_avro::to_value(e).unwrap().resolve(&writer).unwrap();
            handoff::event::wire::frame(2, &apache_avro::to_avro_datum(&writer, v).unwrap())
        })
        .collect();
    // Fill the cache (and check both decode) before measuring.
    for (a, b) in same.iter().zip(&other) {
        assert_eq!(
            decoder.decode_action(codec, a).unwrap(),
            decoder.decode_action(codec, b).unwrap()
        );
    }
    g.bench_function("registry_cache_hit", |b| {
        b.iter(|| {
            for bytes in &same {
                black_box(decoder.decode_action(codec, black_box(bytes)).unwrap());
            }
        })
    });
    g.bench_function("registry_cache_hit_resolved", |b| {
        b.iter(|| {
            for bytes in &other {
                black_box(decoder.decode_action(codec, black_box(bytes)).unwrap());
            }
        })
    });
}

/// A registry on 127.0.0.1 answering `GET /schemas/ids/{n}` with `schemas[n - 1]`, for as long
/// as the bench runs.
fn serve_schemas(schemas: Vec<String>) -> String {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream);
            let mut first = String::new();
            let _ = reader.read_line(&mut first);
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let id: usize = first
                .split('/')
                .nth(3)
                .and_then(|s| s.split(' ').next())
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            let (status, body) = match id.checked_sub(1).and_then(|i| schemas.get(i)) {
                Some(s) => ("200 OK", serde_json::json!({ "schema": s }).to_string()),
                None => ("404 Not Found", r#"{"error_code":40403}"#.to_string()),
            };
            let _ = write!(
                reader.get_mut(),
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    url
}

criterion_group!(benches, bench);
criterion_main!(benches);
