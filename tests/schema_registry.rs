//! The schema registry at the processor's level (no broker), against the test registry server
//! `tests/schema_registry.py` (no real registry is installable here): writer schema versions
//! decoded or dead-lettered with their id and reason, a registry that is down holding the
//! record until it is back, the password never shown, and output framing per subject strategy.

use apache_avro::types::Value;
use apache_avro::Schema;
use handoff::config::{InputFormat, RegistrySettings, Settings, SubjectStrategy};
use handoff::event::wire::dlq_headers;
use handoff::event::{AgentAction, Codec, SchemaKind, Verdict};
use handoff::matrix::Matrix;
use handoff::output::Topic;
use handoff::pipeline::process::{Input, Outcome, Processor, Stage};
use handoff::pipeline::stats::Stats;
use handoff::registry::Client;
use handoff::sim::fleet::{Fleet, FleetConfig};
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const PASSWORD: &str = "canary-registry-pw-9931";

/// A running `tests/schema_registry.py`; stopped when dropped.
struct Server {
    port: u16,
    child: Child,
    _stdin: ChildStdin,
}

impl Server {
    fn start(args: &[&str]) -> Server {
        let script =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/schema_registry.py");
        let mut child = Command::new("python3")
            .arg(script)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs the test registry");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .strip_prefix("ready ")
            .unwrap_or_else(|| panic!("registry said {line:?}"))
            .parse()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        Server {
            port,
            child,
            _stdin: stdin,
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn client(&self) -> Client {
        Client::new(&RegistrySettings::new(self.url())).unwrap()
    }

    /// `POST path` of the schema `schema` with a plain socket: (status line, body).
    fn post_schema(&self, path: &str, schema: &str) -> (String, String) {
        let body = serde_json::json!({ "schema": schema }).to_string();
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        write!(
            s,
            "POST {path} HTTP/1.0\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut text = String::new();
        std::io::Read::read_to_string(&mut s, &mut text).unwrap();
        let status = text.lines().next().unwrap_or("").to_string();
        let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
        (status, body)
    }

    /// `GET path` with a plain socket: (status line, body).
    fn get(&self, path: &str) -> (String, String) {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        write!(s, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
        let mut text = String::new();
        std::io::Read::read_to_string(&mut s, &mut text).unwrap();
        let status = text.lines().next().unwrap_or("").to_string();
        let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
        (status, body)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn registry_settings(url: String) -> Settings {
    let mut s = Settings::default();
    s.input.format = InputFormat::Confluent;
    let mut r = RegistrySettings::new(url);
    r.backoff_initial = Duration::from_millis(20);
    r.backoff_max = Duration::from_millis(200);
    r.timeout = Duration::from_secs(2);
    s.input.schema_registry = Some(r);
    s
}

fn processor(settings: &Settings) -> Processor {
    Processor::new(settings, Arc::new(Matrix::default_matrix().unwrap())).unwrap()
}

fn framed(id: u32, datum: &[u8]) -> Vec<u8> {
    handoff::event::wire::frame(id, datum)
}

fn process(p: &mut Processor, bytes: &[u8]) -> (Outcome, Vec<handoff::output::Output>) {
    let mut out = Vec::new();
    let input = Input {
        topic: "agent.actions",
        partition: 0,
        offset: 7,
        key: Some(b"k"),
        payload: Some(bytes),
        headers: &[],
    };
    let outcome = p.process(input, 1, &mut out).unwrap();
    (outcome, out)
}

fn header(o: &handoff::output::Output, name: &str) -> String {
    o.headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
        .unwrap_or_else(|| panic!("no header {name}"))
}

/// The shipped AgentAction schema as JSON, changed by `edit`.
fn writer_schema(edit: impl FnOnce(&mut Vec<serde_json::Value>)) -> String {
    let mut v: serde_json::Value =
        serde_json::from_str(SchemaKind::AgentAction.schema_json()).unwrap();
    edit(v["fields"].as_array_mut().unwrap());
    v.to_string()
}

fn without(fields: &mut Vec<serde_json::Value>, names: &[&str]) {
    fields.retain(|f| !names.contains(&f["name"].as_str().unwrap()));
}

/// `event` written with `writer` (extra writer fields get the values in `extra`).
fn encode_with(writer: &str, event: &AgentAction, extra: &[(&str, Value)]) -> Vec<u8> {
    let schema = Schema::parse_str(writer).unwrap();
    let Value::Record(mut fields) = apache_avro::to_value(event).unwrap() else {
        panic!("a record")
    };
    fields.retain(|(k, _)| extra.iter().all(|(e, _)| e != k));
    fields.extend(extra.iter().map(|(k, v)| (k.to_string(), v.clone())));
    let value = Value::Record(fields).resolve(&schema).unwrap();
    apache_avro::to_avro_datum(&schema, value).unwrap()
}

fn rich_event() -> AgentAction {
    let mut e = Fleet::new(FleetConfig::default()).next_event();
    e.user_message = Some("please check".into());
    e.attributes.insert("channel".into(), "chat".into());
    e.customer = Some(handoff::event::Customer {
        id: "c-1".into(),
        tier: handoff::event::CustomerTier::Vip,
        prior_complaints: 2,
    });
    e
}

enum Expect {
    /// Decided as this event.
    Decoded(Box<AgentAction>),
    /// A dead letter with this reason whose message holds these words.
    DeadLetter(&'static str, &'static [&'static str]),
}

/// (name, writer schema, datum of `event` written with it, what handoff must make of it).
fn writer_cases(event: &AgentAction) -> Vec<(&'static str, String, Vec<u8>, Expect)> {
    let mut older_expected = event.clone();
    older_expected.user_message = None;
    older_expected.attributes.clear();
    older_expected.customer = None;
    let shipped = SchemaKind::AgentAction.schema_json().to_string();
    let older = writer_schema(|f| without(f, &["user_message", "attributes", "customer"]));
    let newer = writer_schema(|f| {
        f.push(serde_json::json!({"name": "trace_id", "type": "string"}));
        f.push(serde_json::json!({"name": "priority", "type": "int", "default": 0}));
    });
    let reordered = writer_schema(|f| f.reverse());
    let no_reversible = writer_schema(|f| without(f, &["reversible"]));
    let string_confidence = writer_schema(|f| {
        let c = f.iter_mut().find(|x| x["name"] == "confidence").unwrap();
        c["type"] = "string".into();
        c.as_object_mut().unwrap().remove("default");
    });
    let extra = [
        ("trace_id", Value::String("t-1".into())),
        ("priority", Value::Int(3)),
    ];
    let shipped_v1 = SchemaKind::AgentAction.versions()[0].to_string();
    vec![
        (
            // An older version handoff ships: read on the typed path of that version.
            "shipped version 1",
            shipped_v1.clone(),
            encode_with(&shipped_v1, event, &[]),
            Expect::Decoded(Box::new(event.clone())),
        ),
        (
            "same",
            shipped,
            Codec::new(Default::default())
                .unwrap()
                .encode(SchemaKind::AgentAction, event)
                .unwrap(),
            Expect::Decoded(Box::new(event.clone())),
        ),
        (
            "older",
            older.clone(),
            encode_with(&older, event, &[]),
            Expect::Decoded(Box::new(older_expected)),
        ),
        (
            "newer",
            newer.clone(),
            encode_with(&newer, event, &extra),
            Expect::Decoded(Box::new(event.clone())),
        ),
        (
            "reordered",
            reordered.clone(),
            encode_with(&reordered, event, &[]),
            Expect::Decoded(Box::new(event.clone())),
        ),
        (
            "required field missing",
            no_reversible.clone(),
            encode_with(&no_reversible, event, &[]),
            Expect::DeadLetter("incompatible_schema", &["reversible"]),
        ),
        (
            "type changed",
            string_confidence.clone(),
            encode_with(
                &string_confidence,
                event,
                &[("confidence", Value::String("high".into()))],
            ),
            Expect::DeadLetter("incompatible_schema", &["confidence"]),
        ),
    ]
}

#[test]
fn writer_versions_decode_or_become_dead_letters_naming_the_id_and_the_reason() {
    let server = Server::start(&[]);
    let client = server.client();
    let mut p = processor(&registry_settings(server.url()));
    for (name, schema, datum, expect) in writer_cases(&rich_event()) {
        let id = client.register(&format!("{name}-value"), &schema).unwrap();
        let (outcome, out) = process(&mut p, &framed(id, &datum));
        match expect {
            Expect::Decoded(want) => {
                assert!(
                    matches!(outcome, Outcome::Decided { .. }),
                    "{name}: {outcome:?} {:?}",
                    out.first().map(|o| header(o, dlq_headers::MESSAGE))
                );
                let v: Verdict = Codec::new(Default::default())
                    .unwrap()
                    .decode(SchemaKind::Verdict, &out[0].payload)
                    .unwrap();
                assert_eq!(v.action_id, want.action_id, "{name}");
                // The decoded event itself: the generic path of the same writer.
                let w = Schema::parse_str(&schema).unwrap();
                let got = Codec::new(Default::default())
                    .unwrap()
                    .decode_action_resolved(&w, &datum)
                    .unwrap();
                assert_eq!(got, *want, "{name}");
            }
            Expect::DeadLetter(reason, words) => {
                assert_eq!(outcome, Outcome::DeadLetter { reason }, "{name}");
                assert_eq!(out[0].topic, Topic::DeadLetters);
                let msg = header(&out[0], dlq_headers::MESSAGE);
                assert!(msg.contains(&format!("schema id {id}")), "{name}: {msg}");
                for w in words {
                    assert!(msg.contains(w), "{name}: {msg} lacks {w:?}");
                }
                assert_eq!(header(&out[0], dlq_headers::CLASS), reason);
            }
        }
    }
    // An id the registry does not know; then a record that is not framed at all.
    let (outcome, out) = process(&mut p, &framed(4242, b"\x02x"));
    assert_eq!(
        outcome,
        Outcome::DeadLetter {
            reason: "unknown_schema"
        }
    );
    let msg = header(&out[0], dlq_headers::MESSAGE);
    assert!(msg.contains("4242") && msg.contains("40403"), "{msg}");
    let (outcome, _) = process(&mut p, b"\x02plain");
    assert_eq!(
        outcome,
        Outcome::DeadLetter {
            reason: "wire_format"
        }
    );
}

#[test]
fn the_decoded_event_is_the_one_written_on_every_path() {
    // Same schema (typed path) and a reordered one (resolution): both give the event back,
    // which the verdict-level test above cannot see field by field.
    let server = Server::start(&[]);
    let client = server.client();
    let event = rich_event();
    let reordered = writer_schema(|f| f.reverse());
    let same = client
        .register("a-value", SchemaKind::AgentAction.schema_json())
        .unwrap();
    let other = client.register("b-value", &reordered).unwrap();
    let settings = registry_settings(server.url());
    let codec = Codec::new(Default::default()).unwrap();
    let shared = shared_registry(&settings, &codec);
    let mut d = handoff::registry::RegistryDecoder::new(shared.clone());
    let fast = codec.encode(SchemaKind::AgentAction, &event).unwrap();
    assert_eq!(
        d.decode_action(&codec, &framed(same, &fast)).unwrap(),
        event
    );
    let slow = encode_with(&reordered, &event, &[]);
    assert_eq!(
        d.decode_action(&codec, &framed(other, &slow)).unwrap(),
        event
    );
    assert!(matches!(
        *shared.writer(same).unwrap(),
        handoff::registry::Writer::Same
    ));
    assert!(matches!(
        *shared.writer(other).unwrap(),
        handoff::registry::Writer::Resolved(_)
    ));
    assert_eq!(shared.requests("ok"), 2, "each id asked once, then cached");
}

/// The registry every worker shares, for `settings`' `[input.schema_registry]`.
fn shared_registry(
    settings: &handoff::config::Settings,
    codec: &Codec,
) -> Arc<handoff::registry::SchemaRegistry> {
    let r = settings.input.schema_registry.as_ref().unwrap();
    Arc::new(handoff::registry::SchemaRegistry::new(r, codec).unwrap())
}

#[test]
fn the_cache_is_bounded() {
    let server = Server::start(&[]);
    let client = server.client();
    let mut settings = registry_settings(server.url());
    settings
        .input
        .schema_registry
        .as_mut()
        .unwrap()
        .cache_capacity = 3;
    let codec = Codec::new(Default::default()).unwrap();
    let shared = shared_registry(&settings, &codec);
    let mut d = handoff::registry::RegistryDecoder::new(shared.clone());
    let event = rich_event();
    for i in 0..10 {
        let schema = writer_schema(|f| {
            f.push(serde_json::json!({"name": format!("x{i}"), "type": "int", "default": 0}))
        });
        let id = client.register("grow-value", &schema).unwrap();
        let datum = encode_with(&schema, &event, &[]);
        assert_eq!(d.decode_action(&codec, &framed(id, &datum)).unwrap(), event);
        assert!(shared.cached() <= 3, "{} cached", shared.cached());
    }
    assert_eq!(shared.cached(), 3);
}

/// A record whose registry is down (not listening, or answering 503) waits and is decided
/// once the registry answers; the retries are counted, never dead-lettered.
#[test]
fn a_registry_that_is_down_holds_the_record_until_it_is_back() {
    let event = rich_event();
    let datum = Codec::new(Default::default())
        .unwrap()
        .encode(SchemaKind::AgentAction, &event)
        .unwrap();
    for fail_first in [None, Some(4)] {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let settings = registry_settings(format!("http://127.0.0.1:{port}"));
        let mut p = processor(&settings);
        let stats = Arc::new(Stats::new(p.role_names(), &p.families(), "rv"));
        p.attach(stats.clone());
        let port_arg = port.to_string();
        // The schema is registered before the port opens: a retry that finds the registry up
        // must find the schema too.
        let schema =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/agent_action.avsc");
        let register = format!("agent.actions-value={}", schema.display());
        let start = |extra: &[&str]| {
            let base = ["--port", port_arg.as_str(), "--register", register.as_str()];
            let server = Server::start(&[&base[..], extra].concat());
            let id = server
                .client()
                .register("agent.actions-value", SchemaKind::AgentAction.schema_json())
                .unwrap();
            assert_eq!(id, 1);
            server
        };
        // Answering 503 four times, or not listening yet.
        let early = fail_first.map(|n| start(&["--fail-first", &n.to_string()]));
        let started = Instant::now();
        let worker = {
            let datum = framed(1, &datum);
            std::thread::spawn(move || process(&mut p, &datum).0)
        };
        let _server = early.unwrap_or_else(|| {
            std::thread::sleep(Duration::from_millis(700));
            assert!(
                !worker.is_finished(),
                "the record must wait for the registry"
            );
            start(&[])
        });
        let outcome = worker.join().unwrap();
        assert!(
            matches!(outcome, Outcome::Decided { .. }),
            "{fail_first:?}: {outcome:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(20));
        let text = stats.metrics.render();
        let count = |result: &str| -> u64 {
            let prefix = format!("handoff_schema_registry_requests_total{{result=\"{result}\"}} ");
            text.lines()
                .find_map(|l| l.strip_prefix(&prefix))
                .unwrap_or_else(|| panic!("no {prefix} in\n{text}"))
                .parse()
                .unwrap()
        };
        assert_eq!(count("ok"), 1, "{fail_first:?}");
        match fail_first {
            Some(n) => assert_eq!(count("unavailable"), n, "every 503 retried"),
            None => assert!(count("unavailable") >= 2, "refused connections retried"),
        }
    }
}

#[test]
fn basic_auth_is_sent_and_the_password_never_shown() {
    let server = Server::start(&["--username", "handoff", "--password", PASSWORD]);
    let file = std::env::temp_dir().join(format!("handoff-registry-pw-{}", std::process::id()));
    std::fs::write(&file, format!("{PASSWORD}\n")).unwrap();
    let mut good = RegistrySettings::new(server.url());
    good.username = Some("handoff".into());
    good.password = Some(format!("file:{}", file.display()));
    let mut wrong = good.clone();
    wrong.password = Some(format!("{PASSWORD}-wrong"));
    let id = Client::new(&good)
        .unwrap()
        .register("s-value", SchemaKind::AgentAction.schema_json())
        .unwrap();
    std::fs::remove_file(&file).unwrap();
    let err = Client::new(&wrong).unwrap().schema_by_id(id).unwrap_err();
    assert_eq!(
        handoff::error::Classify::class(&err),
        handoff::error::ErrorClass::Retry,
        "refused credentials are the registry's problem, not the record's: {err}"
    );
    let anonymous = server.client().schema_by_id(id).unwrap_err();
    let mut settings = registry_settings(server.url());
    settings.input.schema_registry = Some(wrong.clone());
    let codec = Codec::new(Default::default()).unwrap();
    let shared = handoff::registry::SchemaRegistry::new(&wrong, &codec).unwrap();
    for text in [
        err.to_string(),
        format!("{err:?}"),
        anonymous.to_string(),
        format!("{wrong:?}"),
        format!("{:?}", Client::new(&wrong).unwrap()),
        format!("{shared:?}"),
        settings.redacted(),
        format!("{settings:?}"),
    ] {
        assert!(!text.contains(PASSWORD), "{text}");
    }
    assert!(
        err.to_string().contains("credentials were refused"),
        "{err}"
    );
}

#[test]
fn outputs_are_framed_under_the_subject_of_each_strategy() {
    let verdicts = "agent.verdicts";
    for (strategy, subject) in [
        (SubjectStrategy::Topic, "agent.verdicts-value".to_string()),
        (SubjectStrategy::Record, "io.handoff.Verdict".to_string()),
        (
            SubjectStrategy::TopicRecord,
            format!("{verdicts}-io.handoff.Verdict"),
        ),
    ] {
        let server = Server::start(&[]);
        let mut settings = registry_settings(server.url());
        let r = settings.input.schema_registry.as_mut().unwrap();
        r.frame_outputs = true;
        r.subject_strategy = strategy;
        // Without auto-registration a missing output schema refuses the start, naming it.
        let e = Processor::new(&settings, Arc::new(Matrix::default_matrix().unwrap()))
            .err()
            .unwrap_or_else(|| panic!("{strategy:?}: started without output schemas"))
            .to_string();
        assert!(e.contains(&subject) && e.contains("auto_register"), "{e}");
        settings
            .input
            .schema_registry
            .as_mut()
            .unwrap()
            .auto_register = true;
        let mut p = processor(&settings);
        let (status, body) = server.get(&format!("/subjects/{subject}/versions"));
        assert!(status.contains("200"), "{strategy:?}: {status} {body}");
        let (_, latest) = server.get(&format!("/subjects/{subject}/versions/latest"));
        let latest: serde_json::Value = serde_json::from_str(&latest).unwrap();
        let id = latest["id"].as_u64().unwrap() as u32;
        let codec = Codec::new(Default::default()).unwrap();
        let event = rich_event();
        let datum = codec.encode(SchemaKind::AgentAction, &event).unwrap();
        let input_id = server
            .client()
            .register("agent.actions-value", SchemaKind::AgentAction.schema_json())
            .unwrap();
        let (outcome, out) = process(&mut p, &framed(input_id, &datum));
        assert!(matches!(outcome, Outcome::Decided { .. }));
        let verdict = out.iter().find(|o| o.topic == Topic::Verdicts).unwrap();
        let (got_id, rest) = handoff::event::wire::split_frame(&verdict.payload).unwrap();
        assert_eq!(got_id, id, "{strategy:?}");
        let v: Verdict = codec.decode(SchemaKind::Verdict, rest).unwrap();
        assert_eq!(v.action_id, event.action_id);
        // A second start finds what the first registered, without auto-registration.
        settings
            .input
            .schema_registry
            .as_mut()
            .unwrap()
            .auto_register = false;
        processor(&settings);
    }
}

/// The new schema registered as BACKWARD-compatible: a registry set to BACKWARD takes each shipped
/// version of every record after the one before it, and refuses the reverse where the older
/// version cannot read the newer one's data (version 1 has no null confidence), naming the field.
#[test]
fn each_shipped_version_registers_after_the_one_before_it_under_backward() {
    let reg = Server::start(&["--compatibility", "BACKWARD"]);
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let read = |p: &str| std::fs::read_to_string(root.join(p)).unwrap();
    for (kind, older_reads_newer) in [
        ("agent_action", false),
        ("escalation", false),
        ("verdict", true),
        ("human_decision", true),
    ] {
        let v1 = read(&format!("schemas/history/{kind}.v1.avsc"));
        let v2 = read(&format!("schemas/{kind}.avsc"));
        let forward = format!("/subjects/{kind}-value/versions");
        assert!(
            reg.post_schema(&forward, &v1).0.contains("200"),
            "{kind} v1"
        );
        let (status, body) = reg.post_schema(&forward, &v2);
        assert!(
            status.contains("200"),
            "{kind}: v2 after v1: {status} {body}"
        );
        let reverse = format!("/subjects/{kind}-reversed/versions");
        assert!(
            reg.post_schema(&reverse, &v2).0.contains("200"),
            "{kind} v2"
        );
        let (status, body) = reg.post_schema(&reverse, &v1);
        if older_reads_newer {
            assert!(status.contains("200"), "{kind}: {status} {body}");
        } else {
            assert!(
                status.contains("409"),
                "{kind}: v1 cannot read v2: {status} {body}"
            );
            assert!(body.contains("confidence"), "{kind}: {body}");
        }
    }
    let (_, answer) = reg.post_schema(
        "/compatibility/subjects/agent_action-value/versions/latest",
        &read("schemas/history/agent_action.v1.avsc"),
    );
    assert!(answer.contains("\"is_compatible\": false"), "{answer}");
}
