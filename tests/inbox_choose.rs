//! Choosing an option in the inbox when the role sees it redacted: the page shows the option
//! with its account number masked, the choice is found among the options as shown, and the
//! decision names the action's own option (which the processor checks against the event).

mod common;

use common::base_event;
use common::inbox::{matrix, people, serve, Client, Stream};
use handoff::config::InboxAuth;
use handoff::event::VerdictOutcome;

const NOW: i64 = 1_798_761_600_000;

#[test]
fn an_option_shown_redacted_can_be_chosen_and_the_decision_names_the_real_one() {
    let m = matrix();
    let mut s = Stream::new(&m);
    let mut e = base_event();
    e.action_id = "act-choose".into();
    e.session_id = "s-choose".into();
    e.action_type = "refund.issue".into();
    e.amount = Some(40.0);
    let raw = "Refund 40 EUR to DE89370400440532013000";
    e.options = vec![raw.into(), "Voucher of 50 EUR".into()];
    s.run.event(&e, NOW);
    s.follow();
    let x = s
        .run
        .escalations("escalations.support")
        .pop()
        .expect("to support");
    let srv = serve(&m, &s, &people(InboxAuth::Token));
    let ana = Client::signed_in(srv.port, "ana");
    let page = ana.get(&format!("/e/{}", x.escalation_id)).body;
    assert!(
        !page.contains("DE89370400440532013000"),
        "redacted for support"
    );
    let shown = x.context.options[0].clone();
    assert_ne!(shown, raw);
    let token = Client::form_token(&page);
    let r = ana.post(
        &format!("/e/{}/answer", x.escalation_id),
        &[
            ("form_token", &token),
            ("decision", "choose"),
            ("chosen_option", &shown),
        ],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let d = srv.published.decisions.lock().unwrap()[0].clone();
    assert_eq!(d.chosen_option.as_deref(), Some(raw));
    // The processor takes it (the option is the event's own).
    let others: Vec<_> = s
        .run
        .escalations("escalations.owner")
        .into_iter()
        .filter(|o| o.action_id == "act-choose")
        .collect();
    for o in others {
        s.run.decide(
            &common::answer(&o, handoff::event::DecisionKind::Approve, "oli", NOW),
            NOW,
        );
    }
    s.run.decide(&d, NOW + 1);
    let v = s
        .run
        .verdicts()
        .into_iter()
        .find(|v| v.action_id == "act-choose" && v.is_final)
        .expect("decided");
    assert_eq!(v.outcome, VerdictOutcome::Approved);
    assert_eq!(v.chosen_option.as_deref(), Some(raw));
}
