//! The inbox's two speed goals, in one run: the list page with 10,000 open escalations (the
//! default page, its 500 most urgent rows, and every row with `?show=all`), and the time from
//! posting an answer to its delivery on `human.decisions` (the answer's response waits for
//! the broker's acknowledgement), against a local tansu broker.
//!
//! The board is filled by the real processor from 10,000 refunds (one session each), as the
//! inbox's changelog follower fills it. `cargo bench --bench inbox`. Options by environment:
//! INBOX_OPEN (default 10000), INBOX_ANSWERS (default 300).

#[path = "common/env.rs"]
mod bench_env;
use bench_env::env;
#[path = "../tests/common/mod.rs"]
#[allow(unused_imports)]
mod common;

use common::inbox::{people, Client, Stream};
use handoff::config::{InboxAuth, Settings};
use handoff::inbox::auth::Auth;
use handoff::inbox::publish::KafkaPublisher;
use handoff::inbox::web::App;
use handoff::sim::broker::{free_port, LocalBroker, Storage};
use hdrhistogram::Histogram;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` asks harness-less benches to list themselves
    }
    let open: usize = env("INBOX_OPEN", 10_000);
    let answers: usize = env("INBOX_ANSWERS", 300);
    handoff::sim::broker::install().expect("tansu (deploy/broker.sh install)");
    let broker = LocalBroker::start(free_port(), Storage::Memory).expect("a local broker");
    let mut settings = Settings::default();
    settings.kafka.bootstrap_servers = broker.bootstrap();
    common::kafka::create_topics(&broker.bootstrap(), &["human.decisions", "handoff.audit"]);

    let m = common::inbox::matrix();
    let mut s = Stream::new(&m);
    let started = Instant::now();
    for i in 0..open {
        let mut e = common::base_event();
        e.action_id = format!("act-{i}");
        e.session_id = format!("sess-{i}");
        e.action_type = "refund.issue".into();
        e.amount = Some(20.0 + (i % 50) as f64);
        e.timestamp_ms = 1_798_761_600_000 + i as i64;
        s.run.event(&e, 1_798_761_600_000 + i as i64 * 10);
    }
    s.follow();
    let n = s.board.read().unwrap().len();
    println!(
        "board: {n} open escalations, filled in {:.1?}",
        started.elapsed()
    );

    let rt = tokio::runtime::Runtime::new().unwrap();
    let inbox_settings = people(InboxAuth::Token);
    let publisher = {
        let _in_rt = rt.enter();
        Arc::new(KafkaPublisher::new(&settings).unwrap())
    };
    let (_stop, stopping) = tokio::sync::watch::channel(false);
    let app = Arc::new(App::new(
        s.board.clone(),
        m.clone(),
        Auth::new(&inbox_settings),
        publisher,
        prometheus::Registry::new(),
        s.changes.subscribe(),
        Arc::new(AtomicBool::new(true)),
        stopping,
    ));
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    rt.spawn(handoff::inbox::serve(
        listener,
        app.clone(),
        std::future::pending(),
    ));

    let ana = Client::signed_in(port, "ana");
    let mut table = Vec::new();
    for (what, path, rounds) in [
        ("list, default page (500 most urgent rows)", "/", 40),
        ("list, every row (?show=all)", "/?show=all", 10),
    ] {
        let (h, bytes) = time(rounds, || {
            let r = ana.get(path);
            assert_eq!(r.status, 200);
            r.body.len()
        });
        table.push((format!("{what}, {bytes} bytes"), h));
    }
    let ids: Vec<String> = {
        let board = s.board.read().unwrap();
        let list = board.list(&["support".into()], &Default::default());
        list.iter()
            .take(answers + 1)
            .map(|i| i.escalation_id.clone())
            .collect()
    };
    let (h, _) = time(100, || ana.get(&format!("/e/{}", ids[0])).body.len());
    table.push(("detail page".into(), h));
    let token = Client::form_token(&ana.get("/").body);
    let mut next = ids.iter();
    let (h, _) = time(answers, || {
        let id = next.next().unwrap();
        let r = ana.post(
            &format!("/e/{id}/answer"),
            &[("form_token", &token), ("decision", "approve")],
        );
        assert_eq!(r.status, 303, "{}", r.body);
        0
    });
    table.push(("answer: POST until delivered on human.decisions".into(), h));
    let delivered = common::kafka::read_all(&broker.bootstrap(), "human.decisions").len();
    assert_eq!(
        delivered,
        answers + 1,
        "every answer (and the warm-up's) is on human.decisions"
    );

    println!("\n| what ({n} open escalations) | p50 | p99 | max |\n|---|---:|---:|---:|");
    for (what, h) in table {
        let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
        println!(
            "| {what} | {:.1} ms | {:.1} ms | {:.1} ms |",
            ms(0.5),
            ms(0.99),
            h.max() as f64 / 1000.0
        );
    }
    println!(
        "\n{} answers delivered to human.decisions (read back: {delivered})",
        answers + 1
    );
}

/// Runs `f` `rounds` times after one warm-up; microseconds per call.
fn time(rounds: usize, mut f: impl FnMut() -> usize) -> (Histogram<u64>, usize) {
    let mut h = Histogram::<u64>::new(3).unwrap();
    let mut last = f();
    for _ in 0..rounds {
        let t = Instant::now();
        last = f();
        h.record(t.elapsed().as_micros() as u64).unwrap();
    }
    let _ = Duration::ZERO;
    (h, last)
}
