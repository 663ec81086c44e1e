//! The web surfaces against hostile clients (issue 24): connections held open, requests half
//! sent, bodies that never arrive, too many connections, foreign `Host` names, and the metrics
//! server's reload. Each test would fail without its limit: axum's own server has none.

mod common;

use axum::routing::{get, post};
use handoff::http::{host::Allowed, ConnMetrics, Limits};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// A server of `/` and `POST /echo` within `limits`; its port and its metrics' registry.
fn serve(limits: Limits) -> (u16, prometheus::Registry, tokio::sync::watch::Sender<bool>) {
    let registry = prometheus::Registry::new();
    let conns = ConnMetrics::register(&registry);
    let router = axum::Router::new()
        .route("/", get(|| async { "hello\n" }))
        .route("/echo", post(|body: String| async move { body }));
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let port = common::serve_on_free_port(1, stopping, move |listener, stopped| {
        handoff::http::serve(listener, router, limits, conns, stopped)
    });
    (port, registry, stop)
}

fn quick(connections: usize) -> Limits {
    let mut l = Limits::new(connections, Allowed::default());
    l.head = Duration::from_millis(800);
    l.answer = Duration::from_millis(1500);
    l
}

fn connect(port: u16) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

/// Reads until the server closes; what it sent and how long that took.
fn read_until_closed(s: &mut TcpStream) -> (String, Duration) {
    let started = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("the server kept the connection open: {e}"),
        }
    }
    (
        String::from_utf8_lossy(&got).into_owned(),
        started.elapsed(),
    )
}

fn get_status(port: u16, host: &str) -> String {
    get_path(port, host, "/")
}

/// `GET path` naming `host`, on a connection closed after the answer: all that was sent back.
fn get_path(port: u16, host: &str, path: &str) -> String {
    let mut s = connect(port);
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    read_until_closed(&mut s).0
}

fn metric(registry: &prometheus::Registry, name: &str) -> f64 {
    registry
        .gather()
        .iter()
        .find(|f| f.name() == name)
        .map(|f| {
            let m = &f.get_metric()[0];
            if f.get_field_type() == prometheus::proto::MetricType::GAUGE {
                m.get_gauge().get_value()
            } else {
                m.get_counter().get_value()
            }
        })
        .unwrap_or_else(|| panic!("{name} is registered"))
}

#[test]
fn a_half_sent_request_is_closed_after_the_head_deadline_while_others_are_answered() {
    let (port, _registry, _stop) = serve(quick(16));
    let mut slow = connect(port);
    slow.write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        .unwrap();
    // Trickle a byte now and then, as slowloris does: the deadline counts from the start.
    let trickle = slow.try_clone().unwrap();
    std::thread::spawn(move || {
        let mut t = trickle;
        for _ in 0..20 {
            std::thread::sleep(Duration::from_millis(200));
            if t.write_all(b"a").is_err() {
                return;
            }
        }
    });
    assert!(
        get_status(port, "127.0.0.1").contains("hello"),
        "others are served"
    );
    let (answer, took) = read_until_closed(&mut slow);
    assert!(took < Duration::from_secs(3), "closed after {took:?}");
    assert!(!answer.contains("hello"), "{answer}");
}

#[test]
fn a_client_that_sends_nothing_or_stops_inside_the_http2_preface_is_closed() {
    let (port, registry, _stop) = serve(quick(16));
    let mut silent = connect(port);
    let mut partial = connect(port);
    partial.write_all(b"PRI * HTTP/2.0\r\n").unwrap();
    for (what, s) in [("silent", &mut silent), ("partial preface", &mut partial)] {
        let (answer, took) = read_until_closed(s);
        assert_eq!(answer, "", "{what}");
        assert!(
            took < Duration::from_secs(3),
            "{what}: closed after {took:?}"
        );
    }
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(
        metric(&registry, "handoff_http_connections"),
        0.0,
        "slots given back"
    );
}

#[test]
fn an_idle_keep_alive_connection_is_closed() {
    let (port, _registry, _stop) = serve(quick(16));
    let mut s = connect(port);
    s.write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .unwrap();
    let (answer, took) = read_until_closed(&mut s);
    assert!(answer.contains("hello"), "{answer}");
    assert!(took < Duration::from_secs(3), "closed after {took:?}");
}

#[test]
fn a_body_that_never_arrives_is_answered_408() {
    let (port, _registry, _stop) = serve(quick(16));
    let mut s = connect(port);
    s.write_all(
        b"POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\
          Content-Type: text/plain\r\n\r\nonly ten b",
    )
    .unwrap();
    let (answer, took) = read_until_closed(&mut s);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(took < Duration::from_secs(4), "answered after {took:?}");
}

#[test]
fn a_body_past_the_limit_is_refused_413() {
    let mut limits = quick(16);
    limits.body_bytes = 1024;
    let (port, _registry, _stop) = serve(limits);
    let mut s = connect(port);
    let body = "x".repeat(4096);
    write!(
        s,
        "POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\
         Content-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let (answer, _) = read_until_closed(&mut s);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
}

#[test]
fn past_the_connection_cap_a_new_connection_is_closed_at_once_and_counted() {
    let mut limits = quick(2);
    limits.head = Duration::from_secs(30);
    let (port, registry, _stop) = serve(limits);
    let held: Vec<TcpStream> = (0..2).map(|_| connect(port)).collect();
    std::thread::sleep(Duration::from_millis(300));
    let mut third = connect(port);
    let _ = third.write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    let (answer, took) = read_until_closed(&mut third);
    assert_eq!(answer, "", "the third connection is not served");
    assert!(took < Duration::from_secs(2), "{took:?}");
    assert_eq!(
        metric(&registry, "handoff_http_connections_refused_total"),
        1.0
    );
    assert_eq!(metric(&registry, "handoff_http_connections"), 2.0);
    drop(held);
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        get_status(port, "127.0.0.1").contains("hello"),
        "a slot came free"
    );
}

#[test]
fn a_foreign_host_is_refused_421_and_counted_while_addresses_and_configured_names_pass() {
    let limits = Limits::new(16, Allowed::new(["https://inbox.example.com"], []));
    let (port, registry, _stop) = serve(limits);
    let refused = get_status(port, "rebound.attacker.example:9870");
    assert!(refused.starts_with("HTTP/1.1 421"), "{refused}");
    assert!(!refused.contains("hello"));
    assert_eq!(metric(&registry, "handoff_http_wrong_host_total"), 1.0);
    for ok in ["127.0.0.1:1", "localhost", "inbox.example.com"] {
        assert!(get_status(port, ok).contains("hello"), "{ok}");
    }
}

/// The metrics server with `settings`; its port, and the reload requests it passes on.
fn metrics_server(
    settings: handoff::config::MetricsSettings,
) -> (u16, tokio::sync::mpsc::Receiver<handoff::reload::Request>) {
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let endpoints = handoff::serve::Endpoints::default().reloading(&settings, tx);
    let (_stop, stopping) = tokio::sync::watch::channel(false);
    std::mem::forget(_stop);
    let port = common::serve_on_free_port(1, stopping, move |listener, _| async move {
        handoff::serve::serve_on(listener, endpoints, &settings).await
    });
    (port, rx)
}

fn post_reload(port: u16, authorization: Option<&str>) -> String {
    let mut s = connect(port);
    let auth = authorization.map_or(String::new(), |a| format!("Authorization: {a}\r\n"));
    write!(
        s,
        "POST /-/reload HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}Connection: close\r\n\r\n"
    )
    .unwrap();
    read_until_closed(&mut s).0
}

#[test]
fn reloading_over_http_is_off_unless_enabled() {
    let (port, mut requests) = metrics_server(Default::default());
    let answer = post_reload(port, None);
    assert!(answer.starts_with("HTTP/1.1 404"), "{answer}");
    assert!(answer.contains("enable_reload"), "{answer}");
    assert!(
        requests.try_recv().is_err(),
        "nothing was asked of the reloader"
    );
}

#[test]
fn an_enabled_reload_needs_its_token_and_only_then_says_what_is_wrong() {
    let settings = handoff::config::MetricsSettings {
        enable_reload: true,
        reload_token: Some("reload-token-0123456789".into()),
        ..Default::default()
    };
    let (port, mut requests) = metrics_server(settings);
    for wrong in [
        None,
        Some("Bearer nope"),
        Some("Bearer reload-token-012345678"),
        Some("Basic cmVsb2FkLXRva2VuLTAxMjM0NTY3ODk="),
    ] {
        let answer = post_reload(port, wrong);
        assert!(answer.starts_with("HTTP/1.1 401"), "{wrong:?}: {answer}");
        assert!(
            requests.try_recv().is_err(),
            "{wrong:?} reached the reloader"
        );
    }
    // The right token: the reloader's problems come back to the caller who may see them.
    let answered =
        std::thread::spawn(move || post_reload(port, Some("Bearer reload-token-0123456789")));
    let request = requests.blocking_recv().expect("the request is passed on");
    assert_eq!(request.trigger, handoff::reload::Trigger::Http);
    let _ = request
        .reply
        .unwrap()
        .send(Err("roles[0].name: \"\" is empty".into()));
    let answer = answered.join().unwrap();
    assert!(answer.starts_with("HTTP/1.1 422"), "{answer}");
    assert!(answer.contains("roles[0].name"), "{answer}");
}

#[test]
fn the_metrics_server_refuses_a_foreign_host() {
    let (port, _requests) = metrics_server(Default::default());
    let mut s = connect(port);
    s.write_all(
        b"GET /healthz HTTP/1.1\r\nHost: rebound.attacker.example\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    let (answer, _) = read_until_closed(&mut s);
    assert!(answer.starts_with("HTTP/1.1 421"), "{answer}");
    assert!(get_path(port, "127.0.0.1", "/healthz").starts_with("HTTP/1.1 200"));
}

mod inbox {
    use super::common::base_event;
    use super::common::inbox::{matrix, people, serve, Client, Stream};
    use super::*;
    use handoff::config::InboxAuth;
    use handoff::inbox::web::{LIST_ALL_LIMIT, LIST_LIMIT, STREAMS_PER_PERSON};

    const NOW: i64 = 1_760_000_000_000;

    fn low_confidence(session: &str) -> handoff::event::AgentAction {
        let mut e = base_event();
        e.action_id = format!("act-{session}");
        e.session_id = session.into();
        e.confidence = Some(0.3);
        e
    }

    #[test]
    fn show_all_renders_at_most_its_bound_and_says_how_to_see_the_rest() {
        let m = matrix();
        let mut s = Stream::new(&m);
        let open = LIST_ALL_LIMIT + 7;
        for i in 0..open {
            s.run
                .event(&low_confidence(&format!("s-{i}")), NOW + i as i64);
        }
        s.follow();
        let srv = serve(&m, &s, &people(InboxAuth::Token));
        let oli = Client::signed_in(srv.port, "oli");
        let rows = |page: &str| page.matches("href=\"/e/esc-").count();
        let first = oli.get("/").body;
        assert_eq!(rows(&first), LIST_LIMIT);
        assert!(first.contains("show=all"), "a link to more");
        let all = oli.get("/?show=all").body;
        assert_eq!(rows(&all), LIST_ALL_LIMIT, "bounded, not {open}");
        assert!(
            all.contains(&format!("{open} open for you")),
            "the total is told"
        );
        assert!(
            all.contains("filter by role, tier or type"),
            "and how to narrow it"
        );
        assert!(
            !all.contains("show=all"),
            "no link to a page that cannot be larger"
        );
    }

    /// The head of a `/live` answer, read over a connection kept open.
    fn open_live(port: u16, cookie: &str) -> (TcpStream, String) {
        let mut s = connect(port);
        write!(
            s,
            "GET /live HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: {cookie}\r\n\r\n"
        )
        .unwrap();
        let mut head = Vec::new();
        let mut b = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            assert_eq!(s.read(&mut b).unwrap(), 1, "the head arrives");
            head.push(b[0]);
        }
        (s, String::from_utf8(head).unwrap())
    }

    #[test]
    fn a_person_may_hold_a_bounded_number_of_live_streams() {
        let m = matrix();
        let s = Stream::new(&m);
        let srv = serve(&m, &s, &people(InboxAuth::Token));
        let ana = Client::signed_in(srv.port, "ana").cookie.unwrap();
        let sam = Client::signed_in(srv.port, "sam").cookie.unwrap();
        let mut held = Vec::new();
        for _ in 0..STREAMS_PER_PERSON {
            let (conn, head) = open_live(srv.port, &ana);
            assert!(head.starts_with("HTTP/1.1 200"), "{head}");
            held.push(conn);
        }
        let (_, head) = open_live(srv.port, &ana);
        assert!(head.starts_with("HTTP/1.1 429"), "one more: {head}");
        let (_, head) = open_live(srv.port, &sam);
        assert!(
            head.starts_with("HTTP/1.1 200"),
            "another person is not held back: {head}"
        );
        // Closed streams give their places back (noticed at the next write: a change here).
        drop(held);
        s.changes.send_replace(99);
        std::thread::sleep(Duration::from_millis(500));
        let (_, head) = open_live(srv.port, &ana);
        assert!(head.starts_with("HTTP/1.1 200"), "after closing: {head}");
    }

    /// One open escalation for oli (owner); the served inbox and its id.
    fn one_open() -> (super::common::inbox::Served, String, Stream) {
        let m = matrix();
        let mut s = Stream::new(&m);
        s.run.event(&low_confidence("s-one"), NOW);
        s.follow();
        let id = s
            .board
            .read()
            .unwrap()
            .list(&["owner".into()], &Default::default())[0]
            .escalation_id
            .clone();
        let srv = serve(&m, &s, &people(InboxAuth::Token));
        (srv, id, s)
    }

    fn viewed(srv: &super::common::inbox::Served) -> usize {
        std::thread::sleep(Duration::from_millis(200));
        let audit = srv.published.audit.lock().unwrap();
        audit
            .iter()
            .filter(|e| e.kind == handoff::event::AuditKind::Viewed)
            .count()
    }

    #[test]
    fn a_page_opened_from_another_site_is_not_counted_as_viewed_until_opened_here() {
        let (srv, id, _s) = one_open();
        let mut oli = Client::signed_in(srv.port, "oli");
        for (header, value) in [
            ("sec-fetch-site", "cross-site"),
            ("sec-fetch-site", "same-site"),
            ("referer", "https://attacker.example/page"),
        ] {
            oli.headers = vec![(header.into(), value.into())];
            let page = oli.get(&format!("/e/{id}"));
            assert_eq!(page.status, 200);
            assert!(
                page.body.contains("Open this escalation?"),
                "{header}: {value}"
            );
            assert!(
                !page.body.contains("Approve"),
                "not the detail: {header}: {value}"
            );
            assert_eq!(viewed(&srv), 0, "{header}: {value}");
        }
        // The page's link, followed here (or a link opened from an app: `none`), counts.
        for value in ["same-origin", "none"] {
            oli.headers = vec![("sec-fetch-site".into(), value.into())];
            assert!(
                oli.get(&format!("/e/{id}")).body.contains("Approve"),
                "{value}"
            );
        }
        // A browser without Sec-Fetch-Site whose Referer is this host counts too.
        let here = format!("http://127.0.0.1:{}/e/{id}", srv.port);
        oli.headers = vec![("referer".into(), here)];
        assert!(oli.get(&format!("/e/{id}")).body.contains("Approve"));
        assert_eq!(viewed(&srv), 3);
    }

    #[test]
    fn a_sign_in_link_asks_before_signing_in_and_refuses_another_sites_link() {
        let (srv, _id, _s) = one_open();
        let mut c = Client::new(srv.port);
        let page = c.get("/sign-in?token=token-of-oli");
        assert_eq!(page.status, 200);
        assert!(page.set_cookie.is_empty(), "the link alone signs nobody in");
        assert!(page.body.contains("data-sign-in-link"), "{}", page.body);
        assert!(page.body.contains("value=\"token-of-oli\""));
        c.headers = vec![("sec-fetch-site".into(), "cross-site".into())];
        assert_eq!(c.get("/sign-in?token=token-of-oli").status, 403);
        c.headers = vec![("sec-fetch-site".into(), "same-origin".into())];
        let r = c.post("/sign-in", &[("token", "token-of-oli")]);
        assert_eq!(r.status, 303, "the button signs in");
        assert!(!r.set_cookie.is_empty());
    }

    #[test]
    fn a_copied_session_cookie_is_refused_after_sign_out() {
        let (srv, _id, _s) = one_open();
        let oli = Client::signed_in(srv.port, "oli");
        let mut copy = Client::new(srv.port);
        copy.cookie = oli.cookie.clone();
        assert_eq!(copy.get("/").status, 200);
        let page = oli.get("/").body;
        let token = Client::form_token(&page);
        let r = oli.post("/sign-out", &[("form_token", &token)]);
        assert_eq!(r.status, 303, "{}", r.body);
        let r = copy.get("/");
        assert_eq!(
            (r.status, r.location.as_str()),
            (303, "/sign-in"),
            "revoked"
        );
    }

    #[test]
    fn failed_sign_ins_id_probes_and_bad_sessions_are_counted() {
        let (srv, _id, _s) = one_open();
        let c = Client::new(srv.port);
        for _ in 0..3 {
            assert_eq!(c.post("/sign-in", &[("token", "guess")]).status, 401);
        }
        let oli = Client::signed_in(srv.port, "oli");
        for probe in ["esc-1", "esc-2", "<script>"] {
            let path = format!("/e/{}", handoff::escape::url_component(probe));
            assert_eq!(oli.get(&path).status, 404);
        }
        let mut forged = Client::new(srv.port);
        forged.cookie = Some("handoff_session=forged-value".into());
        assert_eq!(forged.get("/").status, 303);
        let m = &srv.app.metrics;
        assert_eq!(m.refusals("sign_in"), 3);
        assert_eq!(m.refusals("not_found"), 3);
        assert_eq!(m.refusals("session"), 1);
        let text = oli.get("/metrics").body;
        assert!(
            text.contains("handoff_inbox_refused_total{reason=\"sign_in\"} 3"),
            "{text}"
        );
    }
}
