//! `handoff inbox` without a broker: a real processor decides events, the board follows its
//! changelog, people use the pages over HTTP. Access by role, CSRF, hostile text, stale
//! answers, the audit trail and the decisions sent.

mod common;

use common::base_event;
use common::inbox::{self as inbox, people, serve, Client, Stream};
use handoff::config::InboxAuth;
use handoff::event::AuditKind;
use handoff::event::{AgentAction, DecisionKind};
use handoff::inbox::guard::Review;

const NOW: i64 = 1_798_761_600_000;

fn refund(session: &str) -> AgentAction {
    let mut e = base_event();
    e.action_id = format!("act-{session}");
    e.session_id = session.into();
    e.action_type = "refund.issue".into();
    e.amount = Some(40.0);
    e.currency = Some("EUR".into());
    e.request = "Please refund my broken kettle".into();
    e.summary = "Checked the order; drafted a refund to account DE89370400440532013000".into();
    e.output = Some("Dear customer, we refund 40 EUR today.".into());
    e.user_message = Some("It broke after two days!".into());
    e.attributes.insert("channel".into(), "email".into());
    e.attributes.insert("internal_score".into(), "17".into());
    e
}

const LONG: usize = 5_000;

fn hostile() -> AgentAction {
    let mut e = refund("s-evil");
    e.request = "<script>alert('req')</script>".into();
    e.summary = "\"><img src=x onerror=alert(2)> and 'single' quotes".into();
    e.output = Some("javascript:alert(3)".into());
    e.user_message = Some(format!("{}\u{202E}gnp.exe", "A".repeat(LONG)));
    e.agent_id = "agent\"><script>alert(4)</script>".into();
    e.attributes
        .insert("channel".into(), "<b onclick=x>chat</b>".into());
    e
}

fn low_confidence(session: &str) -> AgentAction {
    let mut e = base_event();
    e.action_id = format!("act-{session}");
    e.session_id = session.into();
    e.confidence = Some(0.3);
    e
}

/// Three sessions: a refund and a hostile refund for support, a low-confidence search for
/// the owner. Returns the escalation ids by session.
fn three(s: &mut Stream) -> (String, String, String) {
    for (i, e) in [refund("s-ref"), hostile(), low_confidence("s-own")]
        .iter()
        .enumerate()
    {
        s.run.event(e, NOW + i as i64);
    }
    s.follow();
    let board = s.board.read().unwrap();
    let id = |session: &str| {
        board
            .list(&["support".into(), "owner".into()], &Default::default())
            .into_iter()
            .find(|i| i.session_id == session)
            .unwrap_or_else(|| panic!("{session} is open"))
            .escalation_id
            .clone()
    };
    (id("s-ref"), id("s-evil"), id("s-own"))
}

#[test]
fn sign_in_is_required_and_a_wrong_token_names_nobody() {
    let m = inbox::matrix();
    let mut s = Stream::new(&m);
    three(&mut s);
    let srv = serve(&m, &s, &people(InboxAuth::Token));
    let c = Client::new(srv.port);
    let r = c.get("/");
    assert_eq!((r.status, r.location.as_str()), (303, "/sign-in"));
    let r = c.post("/sign-in", &[("token", "guess")]);
    assert_eq!(r.status, 401);
    assert!(r.set_cookie.is_empty());
    let r = Client::signed_in(srv.port, "ana").get("/");
    assert_eq!(r.status, 200);
    for h in ["HttpOnly", "SameSite=Lax"] {
        let c = Client::new(srv.port)
            .post("/sign-in", &[("token", "token-of-ana")])
            .set_cookie
            .join(";");
        assert!(c.contains(h), "{c}");
    }
    // The published keys need no sign-in (an executor checking a signature is nobody here).
    let r = c.get("/.well-known/jwks.json");
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(handoff::trust::read_jwks(&r.body).unwrap().is_empty());
}

#[test]
fn a_person_sees_and_answers_only_their_roles_escalations() {
    let m = inbox::matrix();
    let mut s = Stream::new(&m);
    let (refund_id, evil_id, owner_id) = three(&mut s);
    let srv = serve(&m, &s, &people(InboxAuth::Token));
    let ana = Client::signed_in(srv.port, "ana");
    let list = ana.get("/").body;
    assert!(
        list.contains(&refund_id) && list.contains(&evil_id),
        "{list}"
    );
    assert!(
        !list.contains(&owner_id),
        "the owner's escalation is not ana's"
    );
    // By URL: not found, and nothing sent.
    assert_eq!(ana.get(&format!("/e/{owner_id}")).status, 404);
    let token = Client::form_token(&list);
    let r = ana.post(
        &format!("/e/{owner_id}/answer"),
        &[("form_token", &token), ("decision", "approve")],
    );
    assert_eq!(r.status, 404);
    assert_eq!(ana.get("/e/esc-000000000000000000000000").status, 404);
    assert!(srv.published.decisions.lock().unwrap().is_empty());
    // The owner sees theirs.
    let oli = Client::signed_in(srv.port, "oli");
    assert_eq!(oli.get(&format!("/e/{owner_id}")).status, 200);
    assert_eq!(oli.get(&format!("/e/{refund_id}")).status, 404);
}

#[test]
fn state_changing_requests_need_the_form_token_and_this_origin() {
    let m = inbox::matrix();
    let mut s = Stream::new(&m);
    let (refund_id, _, _) = three(&mut s);
    let srv = serve(&m, &s, &people(InboxAuth::Token));
    let mut ana = Client::signed_in(srv.port, "ana");
    let page = ana.get(&format!("/e/{refund_id}")).body;
    let token = Client::form_token(&page);
    let sam_token = Client::form_token(&Client::signed_in(srv.port, "sam").get("/").body);
    let path = format!("/e/{refund_id}/answer");
    for (form, why) in [
        (vec![("decision", "approve")], "no token"),
        (
            vec![("form_token", "0123"), ("decision", "approve")],
            "a wrong token",
        ),
        (
            vec![("form_token", sam_token.as_str()), ("decision", "approve")],
            "another session's token",
        ),
    ] {
        let r = ana.post(&path, &form);
        assert_eq!(r.status, 403, "{why}: {}", r.body);
    }
    ana.headers = vec![("origin".into(), "https://evil.example".into())];
    assert_eq!(
        ana.post(&path, &[("form_token", &token), ("decision", "approve")])
            .status,
        403
    );
    ana.headers = vec![("sec-fetch-site".into(), "cross-site".into())];
    assert_eq!(
        ana.post(&path, &[("form_token", &token), ("decision", "approve")])
            .status,
        403
    );
    assert!(
        srv.published.decisions.lock().unwrap().is_empty(),
        "nothing was sent"
    );
    assert_eq!(srv.app.metrics.answers("none", "forbidden"), 5);
}

#[test]
fn hostile_text_is_shown_as_text_everywhere() {
    let m = inbox::matrix();
    let mut s = Stream::new(&m);
    let (_, evil_id, _) = three(&mut s);
    let srv = serve(&m, &s, &people(InboxAuth::Token));
    let ana = Client::signed_in(srv.port, "ana");
    let list = ana.get("/");
    let detail = ana.get(&format!("/e/{evil_id}"));
    for (page, r) in [("list", &list), ("detail", &detail)] {
        assert_eq!(r.status, 200);
        let b = &r.body;
        assert!(
            !b.contains("<script>alert"),
            "{page}: a script tag got through"
        );
        assert!(!b.contains("<b onclick"), "{page}: markup got through");
        assert!(
            !b.contains("\"><img") && !b.contains("\"><script"),
            "{page}: an attribute was broken out of"
        );
        assert!(
            !b.contains("href=\"javascript:"),
            "{page}: a javascript: link"
        );
    }
    let b = &detail.body;
    // Each hostile text is there, as text (askama escapes with numeric references).
    let escaped = |t: &str| {
        t.replace('&', "&#38;")
            .replace('<', "&#60;")
            .replace('>', "&#62;")
            .replace('"', "&#34;")
            .replace('\'', "&#39;")
    };
    let e = hostile();
    for t in [&e.request, &e.summary, &e.agent_id, "<b onclick=x>chat</b>"] {
        assert!(b.contains(&escaped(t)), "{t} is not shown escaped");
    }
    assert!(b.contains("javascript:alert(3)"), "shown as text");
    // The long unbroken string wraps (CSS) and the right-to-left override stays inside <bdi>.
    let at = b.find(&"A".repeat(LONG)).expect("the end user's words");
    let open = b[..at].rfind("<blockquote").unwrap();
    assert!(b[open..at].contains("dir=\"auto\""));
    assert!(b[at..].find('\u{202E}').unwrap() < b[at..].find("</blockquote>").unwrap());
    let csp = "default-src 'self'; script-src 'self'";
    let r = ureq::get(&format!("http://127.0.0.1:{}/sign-in", srv.port))
        .call()
        .unwrap();
    assert!(r
        .headers()
        .get("content-security-policy")
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with(csp));
}

#[test]
fn the_detail_page_is_the_roles_view_of_the_context_package() {
    let m = inbox::matrix();
    let mut s = Stream::new(&m);
    let (refund_id, _, _) = three(&mut s);
    let srv = serve(&m, &s, &people(InboxAuth::Token));
    let b = Client::signed_in(srv.port, "ana")
        .get(&format!("/e/{refund_id}"))
        .body;
    let order = [
        "What was asked",
        "What the agent did",
        "The agent's draft",
        "The end user's own words",
        "Confidence",
        "Customer and stakes",
        "Details for support",
        "Your answer",
    ];
    let mut last = 0;
    for h in order {
        let at = b.find(h).unwrap_or_else(|| panic!("{h} missing"));
        assert!(at > last, "{h} out of order");
        last = at;
    }
    assert!(
        b.contains("[account_number redacted]"),
        "support's redaction"
    );
    assert!(!b.contains("DE89370400440532013000"));
    assert!(
        b.contains("channel") && !b.contains("internal_score"),
        "only support's attributes"
    );
    assert!(b.contains("40.00 EUR"));
    assert!(
        b.contains("class=\"primary\">Approve as proposed"),
        "the required action is the obvious button"
    );
}

#[test]
fn a_tool_call_is_shown_laid_out_and_a_missing_confidence_said_plainly() {
    let m = inbox::matrix();
    let mut s = Stream::new(&m);
    let mut e = refund("s-tool");
    e.confidence = None;
    e.tool_call = Some(handoff::event::ToolCall {
        name: "issue_refund".into(),
        arguments: r#"{"amount":40,"note":"</pre><script>alert(5)</script>"}"#.into(),
        call_id: Some("call-1".into()),
        framework: Some("langgraph".into()),
        run_id: None,
        arguments_schema: None,
    });
    s.run.event(&e, NOW);
    s.follow();
    let id = s
        .board
        .read()
        .unwrap()
        .list(&["support".into()], &Default::default())
        .into_iter()
        .find(|i| i.session_id == "s-tool")
        .expect("escalated")
        .escalation_id
        .clone();
    let srv = serve(&m, &s, &people(InboxAuth::Token));
    let ana = Client::signed_in(srv.port, "ana");
    let b = ana.get(&format!("/e/{id}")).body;
    let call = b.find("The tool call").expect("a tool call section");
    assert!(
        call < b.find("Confidence").unwrap(),
        "before the confidence"
    );
    assert!(b.contains("<b><bdi>issue_refund</bdi></b>"), "{b}");
    // The arguments laid out one per line, and escaped: the hostile note stays text.
    assert!(b.contains("\n  &#34;amount&#34;: 40,\n"), "laid out");
    assert!(
        !b.contains("<script>alert(5)"),
        "markup in the arguments got through"
    );
    assert!(b.contains("&#60;/pre&#62;&#60;script&#62;alert(5)"));
    // No number is invented: the page says none was given, and that it counts as below.
    assert!(b.contains("<b>none given</b>"), "{b}");
    assert!(b.contains("counted as below the gate"));
    assert!(!b.contains("<meter"), "no meter without a number");
    // "Revise the arguments": the form holds them laid out; what is sent back must be a JSON
    // object, and reaches the decision canonical.
    assert!(
        b.contains("name=\"revised_arguments\""),
        "an arguments form"
    );
    let token = Client::form_token(&b);
    let path = format!("/e/{id}/answer");
    let post = |args: &str| {
        ana.post(
            &path,
            &[
                ("form_token", token.as_str()),
                ("decision", "revise"),
                ("revised_arguments", args),
            ],
        )
    };
    let r = post("[40]");
    assert!(
        r.status == 422 && r.body.contains("must be a JSON object"),
        "{}",
        r.body
    );
    let r = post("{\"amount\": 30,");
    assert!(r.status == 422 && r.body.contains("not JSON"), "{}", r.body);
    assert!(
        srv.published.decisions.lock().unwrap().is_empty(),
        "nothing sent"
    );
    let r = post("{\n  \"note\": \"partial\",\n  \"amount\": 30.0\n}");
    assert_eq!(r.status, 303, "{}", r.body);
    let sent = srv.published.decisions.lock().unwrap().clone();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].decision, DecisionKind::Revise);
    assert_eq!(
        sent[0].revised_arguments.as_deref(),
        Some(r#"{"amount":30,"note":"partial"}"#)
    );
    assert_eq!(sent[0].revised_output, None);
}

#[test]
fn answers_become_decisions_of_the_signed_in_person_and_late_ones_are_refused() {
    let m = inbox::matrix();
    let mut s = Stream::new(&m);
    let (refund_id, evil_id, _) = three(&mut s);
    let srv = serve(&m, &s, &people(InboxAuth::Token));
    let ana = Client::signed_in(srv.port, "ana");
    let page = ana.get(&format!("/e/{refund_id}")).body;
    let token = Client::form_token(&page);
    let path = format!("/e/{refund_id}/answer");
    let r = ana.post(
        &path,
        &[
            ("form_token", &token),
            ("decision", "revise"),
            ("revised_output", ""),
        ],
    );
    assert_eq!(r.status, 422, "an empty revision: {}", r.body);
    let r = ana.post(&path, &[("form_token", &token), ("decision", "reject")]);
    assert!(
        r.status == 422 && r.body.contains("give a reason"),
        "{}",
        r.body
    );
    let r = ana.post(
        &path,
        &[
            ("form_token", &token),
            ("decision", "redirect"),
            ("redirect_role", "nobody"),
        ],
    );
    assert_eq!(r.status, 422);
    let edited = "Dear customer, we refund 35 EUR today.";
    let r = ana.post(
        &path,
        &[
            ("form_token", &token),
            ("decision", "revise"),
            ("revised_output", edited),
        ],
    );
    assert_eq!(
        (r.status, r.location.as_str()),
        (303, "/?done=revise"),
        "{}",
        r.body
    );
    let sent = srv.published.decisions.lock().unwrap().clone();
    assert_eq!(sent.len(), 1);
    let d = &sent[0];
    assert_eq!(
        (d.decided_by.as_str(), d.decision),
        ("ana", DecisionKind::Revise)
    );
    assert_eq!(d.revised_output.as_deref(), Some(edited));
    assert_eq!(d.escalation_id, refund_id);
    // Sent answers hide the item at once; a second answer from sam is refused as stale.
    let sam = Client::signed_in(srv.port, "sam");
    assert!(!sam.get("/").body.contains(&refund_id));
    let sam_token = Client::form_token(&sam.get(&format!("/e/{evil_id}")).body);
    let r = sam.post(
        &path,
        &[("form_token", &sam_token), ("decision", "approve")],
    );
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(r.body.contains("ana already answered it"));
    // The processor takes the decision; the board follows; the escalation is gone for everyone.
    s.run.decide(d, NOW + 10_000);
    s.follow();
    assert!(!s.board.read().unwrap().is_open(&refund_id));
    let r = sam.get(&format!("/e/{refund_id}"));
    assert_eq!(r.status, 409);
    assert!(r.body.contains("answered or closed"), "{}", r.body);
    let verdicts = s.run.verdicts();
    assert!(verdicts.iter().any(|v| v.action_id == "act-s-ref"
        && v.is_final
        && v.revised_output.as_deref() == Some(edited)));
    // The audit trail: ana viewed, then answered (with when she first viewed); sam's refusal.
    let audit = srv.published.audit.lock().unwrap().clone();
    let ana_view = audit
        .iter()
        .find(|e| e.person == "ana" && e.kind == AuditKind::Viewed)
        .unwrap();
    let ana_answer = audit
        .iter()
        .find(|e| e.person == "ana" && e.kind == AuditKind::Answered)
        .unwrap();
    assert_eq!(ana_answer.first_viewed_at_ms, Some(ana_view.at_ms));
    assert_eq!(ana_answer.decision, Some(DecisionKind::Revise));
    assert!(audit
        .iter()
        .any(|e| e.person == "sam" && e.kind == AuditKind::Refused));
    assert_eq!(srv.app.metrics.answers("revise", "sent"), 1);
    assert_eq!(srv.app.metrics.answers("none", "stale"), 1);
}

#[test]
fn behind_a_trusted_proxy_the_header_names_the_person() {
    let m = inbox::matrix();
    let mut s = Stream::new(&m);
    let (refund_id, _, _) = three(&mut s);
    let srv = serve(&m, &s, &people(InboxAuth::Proxy));
    let mut c = Client::new(srv.port);
    assert_eq!(c.get("/").status, 401, "no header");
    let secret = (
        "x-handoff-proxy-secret".to_string(),
        inbox::PROXY_SECRET.to_string(),
    );
    c.headers = vec![("x-forwarded-user".into(), "ana".into())];
    assert_eq!(
        c.get("/").status,
        401,
        "a process on the host without the secret"
    );
    c.headers = vec![
        secret.clone(),
        ("x-forwarded-user".into(), "mallory".into()),
    ];
    assert_eq!(c.get("/").status, 401, "not a configured person");
    c.headers = vec![secret, ("x-forwarded-user".into(), "ana".into())];
    let page = c.get(&format!("/e/{refund_id}")).body;
    let token = Client::form_token(&page);
    let r = c.post(
        &format!("/e/{refund_id}/answer"),
        &[("form_token", &token), ("decision", "acknowledge")],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(
        srv.published.decisions.lock().unwrap()[0].decision,
        DecisionKind::Acknowledge
    );
}

/// The Slack workspace of the tests.
const TEAM: &str = "T-HANDOFF";

/// A Slack interactivity request: `payload` form, signed with `secret` at `ts`.
fn slack_request(
    team: &str,
    secret: &str,
    ts: i64,
    user: &str,
    action: &str,
    id: &str,
    reply: &str,
) -> (String, String) {
    use hmac::Mac;
    let payload = serde_json::json!({
        "type": "block_actions",
        "user": {"id": user},
        "team": {"id": team},
        "actions": [{"action_id": action, "value": id}],
        "response_url": reply,
    });
    let body: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("payload", &payload.to_string())
        .finish();
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("v0:{ts}:{body}").as_bytes());
    let sig: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    (body, format!("v0={sig}"))
}

/// A local stand-in for Slack's response_url: keeps every body posted.
fn response_sink() -> (String, std::sync::mpsc::Receiver<String>) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/reply", l.local_addr().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        for mut s in l.incoming().flatten() {
            let mut buf = vec![0u8; 65536];
            let mut got = 0;
            // Headers, then the body by Content-Length.
            loop {
                let n = s.read(&mut buf[got..]).unwrap_or(0);
                got += n;
                let text = String::from_utf8_lossy(&buf[..got]).to_string();
                if let Some(end) = text.find("\r\n\r\n") {
                    let len: usize = text
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse().unwrap())
                        })
                        .unwrap_or(0);
                    if got >= end + 4 + len || n == 0 {
                        let _ = tx.send(text[end + 4..].to_string());
                        break;
                    }
                }
                if n == 0 {
                    break;
                }
            }
            let _ =
                s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        }
    });
    (url, rx)
}

#[test]
fn a_slack_button_answers_as_the_mapped_person_after_the_signature_is_verified() {
    let m = inbox::matrix();
    let mut s = Stream::new(&m);
    let (refund_id, _, owner_id) = three(&mut s);
    let secret = "slack-signing-secret";
    let (reply, replies) = response_sink();
    let mut settings = people(InboxAuth::Token);
    settings.slack_signing_secret = Some(secret.into());
    settings.slack_team_id = Some(TEAM.into());
    settings.slack_response_urls = vec![reply.trim_end_matches("reply").to_string()];
    settings.people[0].slack_user = Some("U-ANA".into());
    let slack = handoff::inbox::web::SlackPeople::of(&settings);
    let srv = common::inbox::serve_with(&m, &s, &settings, slack);
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let post = |body: &str, sig: &str, ts: i64| {
        let r = agent
            .post(&format!("http://127.0.0.1:{}/slack/actions", srv.port))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("x-slack-request-timestamp", &ts.to_string())
            .header("x-slack-signature", sig)
            .send(body)
            .unwrap();
        r.status().as_u16()
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    // Refused: a wrong secret, a replay from ten minutes ago, an unmapped user, another role's.
    let (body, sig) = slack_request(TEAM, "wrong", now, "U-ANA", "approve", &refund_id, &reply);
    assert_eq!(post(&body, &sig, now), 401);
    let (body, sig) = slack_request(
        TEAM,
        secret,
        now - 600,
        "U-ANA",
        "approve",
        &refund_id,
        &reply,
    );
    assert_eq!(post(&body, &sig, now - 600), 401);
    let (body, sig) = slack_request(TEAM, secret, now, "U-EVE", "approve", &refund_id, &reply);
    assert_eq!(post(&body, &sig, now), 403);
    assert!(replies
        .recv_timeout(std::time::Duration::from_secs(5))
        .unwrap()
        .contains("not a person of the inbox"));
    let (body, sig) = slack_request(TEAM, secret, now, "U-ANA", "approve", &owner_id, &reply);
    assert_eq!(post(&body, &sig, now), 404);
    let _ = replies.recv_timeout(std::time::Duration::from_secs(5));
    // Another workspace where the same app is installed: refused, counted.
    let (body, sig) = slack_request(
        "T-OTHER", secret, now, "U-ANA", "approve", &refund_id, &reply,
    );
    assert_eq!(post(&body, &sig, now), 403);
    assert_eq!(srv.app.metrics.refusals("slack_team"), 1);
    // A response_url outside inbox.slack_response_urls is never called (a sink of its own).
    let (elsewhere, called) = response_sink();
    let (body, sig) = slack_request(
        TEAM,
        secret,
        now + 2,
        "U-EVE",
        "approve",
        &refund_id,
        &elsewhere,
    );
    assert_eq!(post(&body, &sig, now + 2), 403);
    assert!(called
        .recv_timeout(std::time::Duration::from_secs(2))
        .is_err());
    assert_eq!(srv.app.metrics.refusals("slack_response_url"), 1);
    assert!(srv.published.decisions.lock().unwrap().is_empty());
    let _ = replies.recv_timeout(std::time::Duration::from_secs(5));
    // Ana approves from Slack.
    let (body, sig) = slack_request(TEAM, secret, now, "U-ANA", "approve", &refund_id, &reply);
    assert_eq!(post(&body, &sig, now), 200);
    let d = srv.published.decisions.lock().unwrap()[0].clone();
    assert_eq!(
        (d.decided_by.as_str(), d.decision, d.escalation_id.as_str()),
        ("ana", DecisionKind::Approve, refund_id.as_str())
    );
    assert!(replies
        .recv_timeout(std::time::Duration::from_secs(5))
        .unwrap()
        .contains("approve sent"));
    let audit = srv.published.audit.lock().unwrap().clone();
    let answered = audit
        .iter()
        .find(|e| e.kind == AuditKind::Answered)
        .unwrap();
    assert_eq!(answered.via, handoff::event::Via::Slack);
    assert_eq!(
        answered.first_viewed_at_ms, None,
        "approved without opening the detail"
    );
    // The same signed request sent again, as is or with the signature's hex in upper case:
    // refused before anything is decided.
    assert_eq!(post(&body, &sig, now), 401);
    assert_eq!(
        post(&body, &sig.to_uppercase().replace("V0=", "v0="), now),
        401
    );
    assert_eq!(srv.app.metrics.refusals("slack_replayed"), 2);
    // Pressed again: not sent, and Slack is told so.
    let (body, sig) = slack_request(
        TEAM,
        secret,
        now + 1,
        "U-ANA",
        "approve",
        &refund_id,
        &reply,
    );
    assert_eq!(post(&body, &sig, now + 1), 409);
    assert!(replies
        .recv_timeout(std::time::Duration::from_secs(5))
        .unwrap()
        .contains("Not sent"));
    assert_eq!(srv.published.decisions.lock().unwrap().len(), 1);
}

#[test]
fn a_missed_deadline_moves_it_on_and_grouped_actions_show_with_their_escalation() {
    let m = inbox::matrix();
    let mut s = Stream::new(&m);
    let (refund_id, _, _) = three(&mut s);
    // A second refund in the same session within the grouping window joins the first.
    let mut again = refund("s-ref");
    again.action_id = "act-s-ref-2".into();
    s.run.event(&again, NOW + 60_000);
    s.follow();
    let srv = serve(&m, &s, &people(InboxAuth::Token));
    let ana = Client::signed_in(srv.port, "ana");
    let list = ana.get("/").body;
    assert!(list.contains("+1 grouped"), "{list}");
    let detail = ana.get(&format!("/e/{refund_id}")).body;
    assert!(
        detail.contains("act-s-ref-2"),
        "the grouped action is named"
    );
    // Support lets the warm deadline (1 h) pass: it moves to support_l2.
    s.run.tick(NOW + 3_600_000 + 2_000);
    s.follow();
    match s.board.read().unwrap().get(&refund_id) {
        handoff::inbox::board::Lookup::Gone(handoff::inbox::board::Gone::Moved { to, .. }) => {
            assert_eq!(to, "support_l2")
        }
        other => panic!("{other:?}"),
    }
    let r = ana.get(&format!("/e/{refund_id}"));
    assert_eq!(r.status, 409);
    assert!(r.body.contains("moved on to support_l2"), "{}", r.body);
    let token = Client::form_token(&list);
    let r = ana.post(
        &format!("/e/{refund_id}/answer"),
        &[("form_token", &token), ("decision", "approve")],
    );
    assert_eq!(
        r.status, 409,
        "a late answer is refused, not sent: {}",
        r.body
    );
    assert!(srv.published.decisions.lock().unwrap().is_empty());
}

#[test]
fn the_list_filters_by_role_tier_and_action_type_and_expands_digests() {
    // Support may get two messages a minute, one kept for the digest: later refunds are folded.
    let text = handoff::matrix::DEFAULT_MATRIX_TOML.replace(
        "[roles.support]\n",
        "[roles.support]\nrate_limit = { max = 2, per = \"1m\" }\n",
    );
    assert_ne!(text, handoff::matrix::DEFAULT_MATRIX_TOML);
    let m = std::sync::Arc::new(
        handoff::matrix::Matrix::from_toml_str(&text, handoff::matrix::MatrixSource::Default)
            .unwrap(),
    );
    let mut s = Stream::new(&m);
    for i in 0..3 {
        s.run.event(&refund(&format!("s-{i}")), NOW + i);
    }
    s.run.event(&low_confidence("s-own"), NOW + 5);
    s.follow();
    let mut settings = people(InboxAuth::Token);
    settings.people[0].roles = vec!["support".into(), "owner".into()];
    let srv = serve(&m, &s, &settings);
    let ana = Client::signed_in(srv.port, "ana");
    let count = |q: &str| {
        let b = ana.get(q).body;
        b.matches("href=\"/e/esc-").count()
    };
    assert_eq!(count("/"), 4, "every item, the folded ones one by one");
    assert_eq!(count("/?role=support"), 3);
    assert_eq!(count("/?role=owner"), 1);
    assert_eq!(count("/?action_type=research.search"), 1);
    assert_eq!(count("/?tier=immediate"), 0);
    assert_eq!(count("/?tier=warm&action_type=refund.issue"), 3);
    let list = ana.get("/?role=support").body;
    assert_eq!(
        list.matches("in digest").count(),
        2,
        "beyond the limit: {list}"
    );
    // The live part alone, as the page's script fetches it.
    let fragment = ana.get("/?role=support&fragment=1").body;
    assert!(
        fragment.starts_with("<p class=\"count\">3 open for you"),
        "{fragment}"
    );
}

#[test]
fn approvals_are_classed_as_reviewed_fast_or_unopened_by_role() {
    let m = inbox::matrix();
    let mut s = Stream::new(&m);
    let (refund_id, evil_id, _) = three(&mut s);
    let mut settings = people(InboxAuth::Token);
    settings.min_review.warm = std::time::Duration::from_secs(3600);
    let srv = serve(&m, &s, &settings);
    let ana = Client::signed_in(srv.port, "ana");
    // Opened, then approved at once: fast (the minimum here is an hour).
    let page = ana.get(&format!("/e/{refund_id}")).body;
    let token = Client::form_token(&page);
    let r = ana.post(
        &format!("/e/{refund_id}/answer"),
        &[("form_token", &token), ("decision", "approve")],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    // Approved from the list's token without opening it: unopened.
    let r = ana.post(
        &format!("/e/{evil_id}/answer"),
        &[("form_token", &token), ("decision", "approve")],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let g = &srv.app.guard;
    let warm = handoff::event::Tier::Warm;
    assert_eq!(g.approvals("support", warm, Review::Fast), 1);
    assert_eq!(g.approvals("support", warm, Review::Unopened), 1);
    assert_eq!(g.approvals("support", warm, Review::Reviewed), 0);
    assert_eq!(g.streak_max("support"), 2);
    let metrics = ana.get("/metrics").body;
    assert!(
        metrics.contains(
            "handoff_inbox_approvals_total{review=\"fast\",role=\"support\",tier=\"warm\"} 1"
        ),
        "{metrics}"
    );
    assert!(!metrics.contains("\"ana\""), "no person in Prometheus");
}
