//! Reminders before the deadline (`[notify.reminders]`), from the inbox's board through the
//! engine to a receiver: an escalation nobody acknowledged is reminded once, when its tier's
//! share of the time to acknowledge has passed; an acknowledged one is not; the inbox marks the
//! reminded item and counts the answers that came after a reminder.

use super::fixtures::*;
use super::receivers::{Mode, Sink};
use crate::common::inbox::{matrix, people, serve, Client, Stream};
use crate::common::{answer, base_event};
use handoff::config::notify::{ReceiverKind, Reminders};
use handoff::config::InboxAuth;
use handoff::event::{AgentAction, DecisionKind, Escalation};
use handoff::notify::ledger::MemoryLedger;
use handoff::notify::{Engine, IsOpen, Notice};
use std::sync::Arc;
use std::time::Duration;

const MIN: i64 = 60_000;

fn refund(session: &str) -> AgentAction {
    let mut e = base_event();
    e.action_id = format!("act-{session}");
    e.session_id = session.into();
    e.action_type = "refund.issue".into();
    e.amount = Some(40.0);
    e
}

fn escalated(s: &Stream, action_id: &str) -> Escalation {
    s.run
        .escalations("escalations.support")
        .into_iter()
        .find(|x| x.action_id == action_id)
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unacknowledged_escalation_is_reminded_once_and_the_inbox_marks_it() {
    let m = matrix();
    let mut s = Stream::new(&m);
    let now = handoff::clock::SystemClock::now();
    // Two refunds handed to support (warm: an hour to acknowledge) 50 minutes ago; one was
    // acknowledged since; a third 10 minutes ago.
    s.run.event(&refund("s-late"), now - 50 * MIN);
    s.run.event(&refund("s-acked"), now - 50 * MIN);
    s.run.event(&refund("s-fresh"), now - 10 * MIN);
    let acked = escalated(&s, "act-s-acked");
    s.run.decide(
        &answer(&acked, DecisionKind::Acknowledge, "ana", now - 40 * MIN),
        now - 40 * MIN,
    );
    s.follow();
    let srv = serve(&m, &s, &people(InboxAuth::Token));
    let shares = Reminders {
        warm: Some(0.75),
        immediate: None,
    };
    let due = handoff::inbox::reminders_due(shares, &srv.app);
    assert!(
        due(now, &|_| false).is_empty(),
        "another replica announced them: it reminds"
    );
    let first = due(now, &|_| true);
    let ids: Vec<&str> = first.iter().map(|(x, _)| x.action_id.as_str()).collect();
    assert_eq!(
        ids,
        ["act-s-late"],
        "past 45 of 60 minutes and not acknowledged"
    );
    assert_eq!(first[0].1, 10 * MIN, "10 minutes left");
    assert!(due(now, &|_| true).is_empty(), "reminded once");
    assert_eq!(srv.app.metrics.reminders("support").get(), 1);
    assert!(
        handoff::inbox::reminders_due(Reminders::default(), &srv.app)(now + 30 * MIN, &|_| true)
            .is_empty(),
        "off unless configured"
    );

    // The notice reaches the same receivers as the escalation, once per id.
    let sink = Sink::start("healthy", Some(&key()), Mode::Healthy).await;
    let registry = prometheus::Registry::new();
    let metrics = handoff::notify::metrics::register(&registry, &["healthy"]).unwrap();
    let is_open: IsOpen = Arc::new(|_: &str| true);
    let engine = Engine::start(
        config(),
        vec![spec(receiver(
            "healthy",
            ReceiverKind::Webhook,
            sink.url(),
            2000,
            4,
        ))],
        metrics,
        Arc::new(MemoryLedger::default()),
        is_open,
        &Default::default(),
    );
    let (x, left) = first[0].clone();
    for _ in 0..2 {
        engine.offer(&Notice::Reminder(Box::new(x.clone()), left), || {});
    }
    until("the reminder", Duration::from_secs(10), || {
        sink.delivered().len() == 1
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let got = sink.delivered();
    assert_eq!(got.len(), 1, "sent once");
    assert_eq!(
        got[0].id.as_deref(),
        Some(&*format!("{}.reminder", x.escalation_id))
    );
    assert_eq!(got[0].body["type"], "reminder");
    assert_eq!(got[0].body["left_ms"], 10 * MIN);
    assert_eq!(got[0].body["escalation_id"], x.escalation_id.as_str());

    // The inbox marks it, and an answer after the reminder is counted.
    let port = srv.port;
    let id = x.escalation_id.clone();
    tokio::task::spawn_blocking(move || {
        let ana = Client::signed_in(port, "ana");
        let list = ana.get("/").body;
        assert_eq!(list.matches(">reminded</span>").count(), 1, "{list}");
        let page = ana.get(&format!("/e/{id}")).body;
        let token = Client::form_token(&page);
        let r = ana.post(
            &format!("/e/{id}/answer"),
            &[("form_token", &token), ("decision", "approve")],
        );
        assert_eq!(r.status, 303, "{}", r.body);
    })
    .await
    .unwrap();
    assert_eq!(srv.app.metrics.after_reminder("support").get(), 1);
}
