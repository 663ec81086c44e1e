//! Against the local broker: rule reloads by each trigger while events flow (every record
//! decided by exactly one version, nothing lost or repeated), and the health probes through a
//! run's life, a paused broker included.

mod common;

use common::kafka::*;
use common::{base_event, http};
use handoff::event::{Codec, Escalation, Level, SchemaKind, Verdict};
use handoff::matrix::{Matrix, MatrixSource, DEFAULT_MATRIX_TOML};
use handoff::sim::broker::free_port;
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

/// The default matrix with `blog.publish` at `level` and the confidence gate at `gate`: each
/// version decides blog posts differently, so a verdict shows which rules decided it.
fn version(level: &str, gate: &str) -> String {
    DEFAULT_MATRIX_TOML
        .replace(
            "pattern = \"blog.publish\"\nlevel = \"execute_log\"",
            &format!("pattern = \"blog.publish\"\nlevel = \"{level}\""),
        )
        .replace("threshold = 0.70", &format!("threshold = {gate}"))
}

fn compiled(text: &str) -> Matrix {
    Matrix::from_toml_str(text, MatrixSource::Default).unwrap()
}

/// Fleet traffic with a blog post in a session of its own every tenth record.
fn traffic(n: usize) -> Vec<Sent> {
    let mut recs = records(n, 11, 1.0, 0);
    for i in (0..n).step_by(10) {
        let mut e = base_event();
        e.action_id = format!("blog-{i}");
        e.session_id = format!("blog-s-{i}");
        e.action_type = "blog.publish".into();
        recs[i] = Sent::action(e);
    }
    recs
}

fn status(port: u16, path: &str) -> (String, String) {
    http(port, "GET", path)
}

fn wait_status(port: u16, path: &str, want: &str, within: Duration) -> String {
    let start = Instant::now();
    loop {
        let ok = std::net::TcpStream::connect(("127.0.0.1", port)).is_ok();
        if ok {
            let (s, body) = status(port, path);
            if s.contains(want) {
                return body;
            }
        }
        assert!(start.elapsed() < within, "{path} never answered {want}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn reloads_by_each_trigger_under_traffic_decide_every_record_with_exactly_one_version() {
    let _serial = serial();
    let broker = broker();
    let bootstrap = broker.bootstrap();
    let dir = tmpdir("reload-flow");
    let texts = [
        version("execute_log", "0.70"),
        version("ask_first", "0.95"),
        version("hard_stop", "0.50"),
        version("execute", "0.85"),
    ];
    let levels = [
        Level::ExecuteLog,
        Level::AskFirst,
        Level::HardStop,
        Level::Execute,
    ];
    let matrices: Vec<Matrix> = texts.iter().map(|t| compiled(t)).collect();
    let path = dir.join("matrix.toml");
    std::fs::write(&path, &texts[0]).unwrap();
    let port = free_port();
    // POST /-/reload is on only when enabled, with a token read from a file.
    let token_file = dir.join("reload-token");
    std::fs::write(&token_file, "reload-flow-token-0123456789\n").unwrap();
    let config = config_file(
        &dir,
        &bootstrap,
        "reload-flow",
        &format!(
            "[matrix]\npath = \"{}\"\nwatch = \"1s\"\n[metrics]\nbind = \"127.0.0.1:{port}\"\n\
             enable_reload = true\nreload_token = \"file:{}\"\n",
            path.display(),
            token_file.display()
        ),
    );
    let log = dir.join("run.log");
    let mut child = spawn(&config, &log);
    wait_status(port, "/readyz", "200", Duration::from_secs(60));

    let recs = traffic(4_000);
    let n = recs.len();
    // The order events were sent in: a session's events are one partition's, decided in order.
    let sent: HashMap<String, usize> = recs
        .iter()
        .enumerate()
        .filter_map(|(i, r)| r.event.as_ref().map(|e| (e.action_id.clone(), i)))
        .collect();
    let feeder = {
        let bootstrap = bootstrap.clone();
        std::thread::spawn(move || {
            let f = Feeder::new(&bootstrap);
            for chunk in recs.chunks(100) {
                f.send(INPUT, chunk);
                std::thread::sleep(Duration::from_millis(120));
            }
        })
    };
    let versions: Vec<&str> = matrices.iter().map(|m| m.version()).collect();
    // POST /-/reload, then SIGHUP, then the watch: each installs the next version mid-flow.
    std::thread::sleep(Duration::from_millis(1_200));
    std::fs::write(&path, &texts[1]).unwrap();
    let (s, body) = http(port, "POST", "/-/reload");
    assert!(s.contains("401"), "without the token: {s} {body}");
    let bearer = [("Authorization", "Bearer reload-flow-token-0123456789")];
    let (s, body) = common::http_with(port, "POST", "/-/reload", &bearer);
    assert!(s.contains("200"), "{s} {body}");
    assert!(
        body.contains(&format!("{} -> {}", versions[0], versions[1])),
        "{body}"
    );
    std::thread::sleep(Duration::from_millis(1_200));
    std::fs::write(&path, &texts[2]).unwrap();
    signal(child.id(), "-HUP");
    wait_log(
        &log,
        &format!("to={}", versions[2]),
        Duration::from_secs(10),
    );
    std::thread::sleep(Duration::from_millis(1_200));
    std::fs::write(&path, &texts[3]).unwrap();
    wait_log(
        &log,
        &format!("to={}", versions[3]),
        Duration::from_secs(10),
    );
    feeder.join().unwrap();

    let mut r = Reader::new(&bootstrap, VERDICTS);
    r.wait_for(n, Duration::from_secs(120));
    r.settle(Duration::from_secs(2));
    let text = std::fs::read_to_string(&log).unwrap();
    for (trigger, to) in [("POST /-/reload", 1), ("SIGHUP", 2), ("watch", 3)] {
        let line = text
            .lines()
            .find(|l| l.contains("rules reloaded") && l.contains(&format!("to={}", versions[to])))
            .unwrap_or_else(|| panic!("no reload to version {to}:\n{text}"));
        assert!(line.contains(trigger), "{line}");
    }
    let (_, metrics) = status(port, "/metrics");
    assert!(
        metrics.contains("handoff_rules_reloads_total{result=\"success\"} 3"),
        "{metrics}"
    );
    assert!(metrics.contains(&format!(
        "handoff_rule_info{{version=\"{}\"}} 1",
        versions[3]
    )));
    sigterm(&child);
    assert!(wait_exit(&mut child, Duration::from_secs(30)).success());

    let checks = Checks {
        versions: &versions,
        levels: &levels,
        sent: &sent,
    };
    checks.each_record_decided_once_by_one_version(&bootstrap, &r.records, n);
}

/// What the flow test knows about its traffic.
struct Checks<'a> {
    versions: &'a [&'a str],
    levels: &'a [Level],
    /// Position of each action in the order sent.
    sent: &'a HashMap<String, usize>,
}

impl Checks<'_> {
    fn each_record_decided_once_by_one_version(
        &self,
        bootstrap: &str,
        records: &[Record],
        n: usize,
    ) {
        let codec = Codec::new(Default::default()).unwrap();
        let rank: HashMap<&str, usize> = self
            .versions
            .iter()
            .enumerate()
            .map(|(i, v)| (*v, i))
            .collect();
        let mut by_action: BTreeMap<String, Verdict> = BTreeMap::new();
        for rec in records {
            let v: Verdict = codec.decode(SchemaKind::Verdict, &rec.payload).unwrap();
            let k = rank[v.rule_version.as_str()];
            if v.action_id.starts_with("blog-") {
                assert_eq!(
                    v.level, self.levels[k],
                    "{} decided by {}",
                    v.action_id, v.rule_version
                );
            }
            assert!(
                by_action.insert(v.action_id.clone(), v).is_none(),
                "a repeated verdict"
            );
        }
        // A session's events are decided in the order sent, by one worker: its versions never
        // go back.
        let mut sessions: HashMap<&str, Vec<(usize, usize)>> = HashMap::new();
        for v in by_action.values() {
            let at = self.sent[&v.action_id];
            sessions
                .entry(&v.session_id)
                .or_default()
                .push((at, rank[v.rule_version.as_str()]));
        }
        for (session, mut decided) in sessions {
            decided.sort();
            assert!(
                decided.windows(2).all(|w| w[0].1 <= w[1].1),
                "session {session} went back to older rules: {decided:?}"
            );
        }
        let mut seen = [0usize; 4];
        for v in by_action.values() {
            seen[rank[v.rule_version.as_str()]] += 1;
        }
        assert_eq!(by_action.len(), n, "every event decided once");
        assert!(
            seen.iter().all(|&c| c > 0),
            "each version decided some records: {seen:?}"
        );
        // An escalation comes from the same decision as its verdict: the same version.
        for role in compiled(DEFAULT_MATRIX_TOML).roles() {
            let topic = format!("escalations.{}", role.name);
            for rec in read_all(bootstrap, &topic) {
                let Ok(x) = codec.decode::<Escalation>(SchemaKind::Escalation, &rec.payload) else {
                    continue;
                };
                if let Some(v) = by_action.get(&x.action_id) {
                    assert_eq!(x.rule_version, v.rule_version, "{}", x.action_id);
                }
            }
        }
    }
}

#[test]
fn the_probes_follow_start_assignment_a_paused_broker_and_the_stop() {
    let _serial = serial();
    let broker = broker();
    let bootstrap = broker.bootstrap();
    let dir = tmpdir("probes");
    let port = free_port();
    // stuck_after must exceed shutdown_deadline (20 s in the test config).
    let config = config_file(
        &dir,
        &bootstrap,
        "probes",
        &format!("[metrics]\nbind = \"127.0.0.1:{port}\"\nstuck_after = \"21s\"\n"),
    );
    let log = dir.join("run.log");
    let mut child = spawn(&config, &log);
    // Before the first assignment: alive, not ready.
    let why = wait_status(port, "/readyz", "503", Duration::from_secs(30));
    assert!(
        why.contains("starting") || why.contains("assignment"),
        "{why}"
    );
    assert!(status(port, "/healthz").0.contains("200"));
    wait_status(port, "/readyz", "200", Duration::from_secs(60));
    produce(&bootstrap, INPUT, &records(200, 3, 1.0, 0));
    let mut r = Reader::new(&bootstrap, VERDICTS);
    r.wait_for(200, Duration::from_secs(60));

    // The broker paused for longer than stuck_after, with records waiting to be delivered:
    // handoff stays alive throughout (a restart would not bring the broker back).
    produce(&bootstrap, INPUT, &records(50, 4, 1.0, 0));
    signal(broker.pid(), "-STOP");
    let paused = Instant::now();
    while paused.elapsed() < Duration::from_secs(25) {
        let (s, body) = status(port, "/healthz");
        assert!(
            s.contains("200"),
            "not live with the broker paused: {s} {body}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    signal(broker.pid(), "-CONT");
    r.wait_for(250, Duration::from_secs(60));
    wait_status(port, "/readyz", "200", Duration::from_secs(30));

    // The stop: not ready while draining (the broker paused again so the drain takes a while).
    produce(&bootstrap, INPUT, &records(20, 5, 1.0, 0));
    signal(broker.pid(), "-STOP");
    sigterm(&child);
    let why = wait_status(port, "/readyz", "503", Duration::from_secs(10));
    assert!(why.contains("shutting down"), "{why}");
    assert!(
        status(port, "/healthz").0.contains("200"),
        "draining is not stuck"
    );
    signal(broker.pid(), "-CONT");
    wait_exit(&mut child, Duration::from_secs(60));
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("stop requested"), "{text}");
}
