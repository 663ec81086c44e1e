use super::*;
use crate::event::Tier;
use crate::notify::route::tests::{digest as a_digest, escalation as an_escalation};

/// Slack's documented example request.
const SECRET: &[u8] = b"8f742231b10e8888abcd99yyyzzz85a5";
const TS: &str = "1531420618";
const BODY: &str = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
const SIG: &str = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";

#[test]
fn verify_accepts_slack_s_example_and_refuses_the_rest() {
    let now = 1_531_420_618 + 10;
    let upper = SIG.to_uppercase().replace("V0=", "v0=");
    let flipped = format!("{}0", &SIG[..SIG.len() - 1]);
    type Row<'a> = (
        &'a [u8],
        &'a str,
        &'a str,
        &'a str,
        i64,
        Result<(), SlackError>,
    );
    let table: &[Row<'_>] = &[
        (SECRET, TS, BODY, SIG, now, Ok(())),
        (SECRET, TS, BODY, &upper, now, Ok(())),
        (
            b"another secret",
            TS,
            BODY,
            SIG,
            now,
            Err(SlackError::BadSignature),
        ),
        (
            SECRET,
            TS,
            &BODY[1..],
            SIG,
            now,
            Err(SlackError::BadSignature),
        ),
        (
            SECRET,
            TS,
            BODY,
            &flipped,
            now,
            Err(SlackError::BadSignature),
        ),
        (
            SECRET,
            TS,
            BODY,
            &SIG[3..],
            now,
            Err(SlackError::BadSignature),
        ),
        (
            SECRET,
            TS,
            BODY,
            "v0=zz",
            now,
            Err(SlackError::BadSignature),
        ),
        (SECRET, TS, BODY, "", now, Err(SlackError::BadSignature)),
        (
            SECRET,
            "1531420619",
            BODY,
            SIG,
            now,
            Err(SlackError::BadSignature),
        ),
        (
            SECRET,
            TS,
            BODY,
            SIG,
            1_531_420_618 + 301,
            Err(SlackError::Stale(301)),
        ),
        (
            SECRET,
            TS,
            BODY,
            SIG,
            1_531_420_618 - 400,
            Err(SlackError::Stale(-400)),
        ),
        (SECRET, TS, BODY, SIG, 1_531_420_618 + 300, Ok(())),
        (
            SECRET,
            "yesterday",
            BODY,
            SIG,
            now,
            Err(SlackError::BadTimestamp("yesterday".into())),
        ),
    ];
    for (secret, ts, body, sig, now, want) in table {
        assert_eq!(
            &verify(secret, ts, body.as_bytes(), sig, *now),
            want,
            "{ts} {sig} {now}"
        );
    }
}

fn form(payload: &str) -> Vec<u8> {
    form_urlencoded::Serializer::new(String::new())
        .append_pair("payload", payload)
        .finish()
        .into_bytes()
}

fn press(kind: &str, action_id: &str, value: &str) -> String {
    serde_json::json!({
        "type": kind,
        "user": {"id": "U2CERLKJA", "username": "roadrunner"},
        "team": {"id": "T9TK3CUKW", "domain": "example"},
        "actions": [{"type": "button", "action_id": action_id, "value": value, "block_id": "b"}],
        "response_url": "https://hooks.slack.com/actions/T1/1/x",
    })
    .to_string()
}

#[test]
fn parse_action_reads_button_presses_and_refuses_the_rest() {
    let ok = |button| {
        Ok(SlackAction {
            user_id: "U2CERLKJA".into(),
            button,
            escalation_id: "esc-1".into(),
            response_url: Some("https://hooks.slack.com/actions/T1/1/x".into()),
            team_id: Some("T9TK3CUKW".into()),
        })
    };
    let table: Vec<(Vec<u8>, Result<SlackAction, SlackError>)> = vec![
        (
            form(&press("block_actions", "approve", "esc-1")),
            ok(Button::Decide(DecisionKind::Approve)),
        ),
        (
            form(&press("block_actions", "reject", "esc-1")),
            ok(Button::Decide(DecisionKind::Reject)),
        ),
        (
            form(&press("block_actions", "acknowledge", "esc-1")),
            ok(Button::Decide(DecisionKind::Acknowledge)),
        ),
        (
            form(&press("block_actions", "open", "esc-1")),
            ok(Button::Open),
        ),
        (
            form(&press("view_submission", "approve", "esc-1")),
            Err(SlackError::WrongType("view_submission".into())),
        ),
        (
            form(&press("block_actions", "revise", "esc-1")),
            Err(SlackError::UnknownAction("revise".into())),
        ),
        (
            form(&press("block_actions", "approve", "")),
            Err(SlackError::BadPayload("no actions[0].value".into())),
        ),
        (
            form(r#"{"type":"block_actions","actions":[]}"#),
            Err(SlackError::BadPayload("no user.id".into())),
        ),
        (
            b"token=x&user_id=U1".to_vec(),
            Err(SlackError::BadPayload("no payload field".into())),
        ),
    ];
    for (body, want) in table {
        assert_eq!(
            parse_action(&body),
            want,
            "{}",
            String::from_utf8_lossy(&body)
        );
    }
    assert!(matches!(
        parse_action(&form("{not json")),
        Err(SlackError::BadPayload(_))
    ));
}

#[test]
fn untrusted_text_is_escaped_and_bounded() {
    assert_eq!(
        escape("a & b <!channel> >"),
        "a &amp; b &lt;!channel&gt; &gt;"
    );
    let long = "<".repeat(400);
    let u = untrusted(&long);
    assert_eq!(u, format!("{}…", "&lt;".repeat(MAX_TEXT)));
    assert_eq!(untrusted("line\nbreak\u{7}"), "line break ");
}

#[test]
fn an_escalation_message_has_headline_flags_deadline_buttons_and_link() {
    let mut x = an_escalation("esc-1", "support", Tier::Immediate);
    x.context.headline = "Refund <!channel> & <https://evil|click>".into();
    let m = message(
        &Notice::Escalation(Box::new(x)),
        &Links::new("https://inbox.example"),
    );
    let text = m.to_string();
    assert!(!text.contains("<!channel>"), "{text}");
    assert!(!text.contains("<https://evil"), "{text}");
    assert!(
        text.contains("Refund &lt;!channel&gt; &amp; &lt;https://evil|click&gt;"),
        "{text}"
    );
    assert!(
        text.contains("confidence 0.40 &lt; 0.60 &amp; falling"),
        "{text}"
    );
    assert!(
        text.contains("<!date^1798765200^{date_short_pretty} {time}|2027-01-01T01:00:00Z UTC>"),
        "{text}"
    );
    assert_eq!(
        m["text"],
        "[immediate] Refund &lt;!channel&gt; &amp; &lt;https://evil|click&gt;"
    );
    let blocks = m["blocks"].as_array().unwrap();
    let actions = &blocks.last().unwrap()["elements"];
    let ids: Vec<&str> = actions
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["action_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["approve", "reject", "acknowledge", "open"]);
    for b in actions.as_array().unwrap() {
        assert_eq!(b["value"], "esc-1");
    }
    assert_eq!(actions[3]["url"], "https://inbox.example/e/esc-1");
    assert_eq!(actions[0]["style"], "primary");
    assert_eq!(actions[1]["style"], "danger");
}

#[test]
fn a_digest_is_one_message_with_twenty_items_and_the_rest_counted() {
    let mut d = a_digest("dig-1", "support", &[Tier::Warm; 45]);
    d.items[0].headline = "<@U123> & co".into();
    let m = message(
        &Notice::Digest(Box::new(d)),
        &Links::new("https://inbox.example"),
    );
    let text = m.to_string();
    assert!(text.contains("45 escalation(s) for support"), "{text}");
    assert!(
        text.contains("<https://inbox.example/e/esc-dig-1-0|&lt;@U123&gt; &amp; co>"),
        "{text}"
    );
    assert!(text.contains("esc-dig-1-19|"), "{text}");
    assert!(!text.contains("esc-dig-1-20|"), "{text}");
    assert!(text.contains("…and 25 more"), "{text}");
    let blocks = m["blocks"].as_array().unwrap();
    assert!(blocks.len() <= 50, "Slack takes at most 50 blocks");
    for b in blocks {
        if let Some(t) = b["text"]["text"].as_str() {
            assert!(t.len() <= MAX_SECTION, "a section of {} bytes", t.len());
        }
    }
    assert_eq!(
        blocks.last().unwrap()["elements"][0]["url"],
        "https://inbox.example/"
    );
}

#[test]
fn long_lists_are_split_into_sections_within_slack_s_limit() {
    let lines: Vec<String> = (0..40)
        .map(|i| format!("{i:03}{}", "x".repeat(290)))
        .collect();
    let s = sections(&lines);
    assert!(s.len() >= 4, "{}", s.len());
    assert!(s.iter().all(|t| t.len() <= MAX_SECTION));
    assert_eq!(s.join("\n"), lines.join("\n"));
    assert_eq!(bounded(&"é".repeat(2000)).chars().count(), 1499);
}

#[test]
fn a_reminder_is_the_escalation_headed_by_the_time_left() {
    let x = an_escalation("esc-1", "support", Tier::Warm);
    let links = Links::new("https://inbox.example");
    let plain = message(&Notice::Escalation(Box::new(x.clone())), &links);
    let m = message(&Notice::Reminder(Box::new(x), 300_000), &links);
    let blocks = m["blocks"].as_array().unwrap();
    assert_eq!(
        blocks[0]["text"]["text"],
        "*⏰ Reminder: 5m left to acknowledge*"
    );
    assert_eq!(&blocks[1..], plain["blocks"].as_array().unwrap().as_slice());
    assert!(m["text"]
        .as_str()
        .unwrap()
        .starts_with("⏰ Reminder: 5m left to acknowledge · [warm]"));
}

#[test]
fn every_text_block_is_verbatim_so_bare_urls_in_agent_text_stay_text() {
    let mut x = an_escalation("esc-1", "support", Tier::Warm);
    x.context.headline = "Refund via https://evil.example/pay and #general".into();
    let links = Links::new("https://inbox.example");
    for notice in [
        Notice::Escalation(Box::new(x.clone())),
        Notice::Reminder(Box::new(x), 60_000),
        Notice::Digest(Box::new(a_digest("dig-1", "support", &[Tier::Warm]))),
    ] {
        let m = message(&notice, &links);
        let texts: Vec<&Value> = m["blocks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|b| b["text"]["type"] == "mrkdwn")
            .map(|b| &b["text"])
            .collect();
        assert!(!texts.is_empty());
        for t in texts {
            assert_eq!(t["verbatim"], true, "{t}");
        }
    }
}
