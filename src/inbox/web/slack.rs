//! `POST /slack/actions`: a button pressed in a Slack message (see [`crate::notify`]) becomes a
//! decision of the person mapped to that Slack user (`inbox.people[].slack_user`), once Slack's
//! request signature (v0, timestamp window) is verified. The outcome — sent, stale, not
//! allowed — goes back to the user through the interaction's `response_url`, never silently.

use super::{App, Refused};
use crate::event::{DecisionKind, Via};
use crate::inbox::answer::AnswerForm;
use crate::notify::slack::{self, Button};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Slack's signing secret and who is who.
#[derive(Clone)]
pub struct SlackPeople {
    /// Slack's signing secret.
    pub secret: String,
    /// Slack user id → person name.
    pub people: HashMap<String, String>,
    /// The workspace (`team.id`) whose presses are taken.
    pub team_id: String,
    /// What a `response_url` must start with to be called (`https://hooks.slack.com/`).
    pub response_urls: Vec<String>,
    /// Signatures taken within [`slack::MAX_AGE_S`] (signature → timestamp): a request sent
    /// again is refused, not decided twice.
    seen: Arc<Mutex<HashMap<String, i64>>>,
}

impl SlackPeople {
    /// From checked settings; none without a signing secret.
    pub fn of(s: &crate::config::InboxSettings) -> Option<SlackPeople> {
        let secret = s.slack_signing_secret.clone()?;
        let people = s
            .people
            .iter()
            .filter_map(|p| Some((p.slack_user.clone()?, p.name.clone())))
            .collect();
        Some(SlackPeople {
            secret,
            people,
            team_id: s.slack_team_id.clone().unwrap_or_default(),
            response_urls: s.slack_response_urls.clone(),
            seen: Arc::default(),
        })
    }

    /// Whether a verified request (its signature, its timestamp) is new; remembers it. Keyed by
    /// the signature in lower case: the hex is read in either case, so a replay in upper case
    /// is the same request.
    fn first_time(&self, signature: &str, ts: i64, now_s: i64) -> bool {
        let mut seen = self.seen.lock().expect("not poisoned");
        seen.retain(|_, t| now_s.saturating_sub(*t) <= slack::MAX_AGE_S);
        seen.insert(signature.trim().to_ascii_lowercase(), ts)
            .is_none()
    }

    fn may_call(&self, url: &str) -> bool {
        self.response_urls
            .iter()
            .any(|p| url.starts_with(p.as_str()))
    }
}

/// The longest a reply to Slack's `response_url` may take.
const RESPONSE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The interactivity endpoint.
pub async fn actions(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(sp) = &app.slack else {
        return (StatusCode::NOT_FOUND, "Slack buttons are not configured\n").into_response();
    };
    let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or("");
    let now = crate::clock::SystemClock::now();
    let verified = slack::verify(
        sp.secret.as_bytes(),
        header("x-slack-request-timestamp"),
        &body,
        header("x-slack-signature"),
        now / 1000,
    );
    if let Err(e) = verified {
        app.metrics
            .refused("slack_signature", format_args!("Slack request: {e}"));
        return (StatusCode::UNAUTHORIZED, format!("{e}\n")).into_response();
    }
    let ts = header("x-slack-request-timestamp")
        .trim()
        .parse()
        .unwrap_or(0);
    if !sp.first_time(header("x-slack-signature"), ts, now / 1000) {
        app.metrics.refused(
            "slack_replayed",
            format_args!("Slack request: the same signed request was taken already"),
        );
        return (StatusCode::UNAUTHORIZED, "this request was taken already\n").into_response();
    }
    let action = match slack::parse_action(&body) {
        Ok(a) => a,
        Err(e) => return (StatusCode::BAD_REQUEST, format!("{e}\n")).into_response(),
    };
    if action.team_id.as_deref() != Some(sp.team_id.as_str()) {
        app.metrics.refused(
            "slack_team",
            format_args!("Slack request from workspace {:?}", action.team_id),
        );
        return (
            StatusCode::FORBIDDEN,
            "this Slack workspace is not the inbox's (inbox.slack_team_id)\n",
        )
            .into_response();
    }
    let Button::Decide(kind) = action.button else {
        return StatusCode::OK.into_response(); // "Open in inbox": a link, nothing to do
    };
    let outcome = answer(&app, sp, &action.user_id, &action.escalation_id, kind, now).await;
    let (status, text) = match outcome {
        Ok(text) => (StatusCode::OK, text),
        Err((status, text)) => (status, text),
    };
    match action.response_url {
        Some(url) if sp.may_call(&url) => tell(url, text.clone()),
        Some(_) => {
            app.metrics.refused(
                "slack_response_url",
                format_args!("Slack response_url not under inbox.slack_response_urls"),
            );
        }
        None => {}
    }
    (status, text + "\n").into_response()
}

async fn answer(
    app: &Arc<App>,
    sp: &SlackPeople,
    user: &str,
    id: &str,
    kind: DecisionKind,
    now: i64,
) -> Result<String, (StatusCode, String)> {
    let person = sp
        .people
        .get(user)
        .and_then(|name| app.auth.person(name, "slack"))
        .ok_or_else(|| {
            app.metrics.answer("none", "forbidden");
            (
                StatusCode::FORBIDDEN,
                format!(
                    "Slack user {user} is not a person of the inbox (inbox.people[].slack_user)"
                ),
            )
        })?;
    let form = AnswerForm {
        decision: kind.as_str().to_string(),
        comment: match kind {
            DecisionKind::Reject => "rejected in Slack (no reason given there)".into(),
            _ => String::new(),
        },
        ..AnswerForm::default()
    };
    let (d, entry) = match app.check_answer(&person, id, &form, now, Via::Slack) {
        Ok(x) => x,
        Err(Refused::NotFound) => {
            app.metrics.answer("none", "not_found");
            return Err((
                StatusCode::NOT_FOUND,
                format!("{id} is not an open escalation of your roles"),
            ));
        }
        Err(Refused::Stale(text, entry)) => {
            app.metrics.answer("none", "stale");
            let _ = app.publish.audit(&entry).await;
            return Err((StatusCode::CONFLICT, format!("Not sent: {text}")));
        }
        Err(Refused::Invalid(text)) => return Err((StatusCode::UNPROCESSABLE_ENTITY, text)),
    };
    match app.send(d, entry).await {
        Ok(k) => Ok(format!("{} sent for {id} as {}", k.as_str(), person.name)),
        Err(e) => Err((StatusCode::SERVICE_UNAVAILABLE, format!("Not sent: {e}"))),
    }
}

/// Posts the outcome to the interaction's `response_url` (only to the user who pressed),
/// within [`RESPONSE_TIMEOUT`], without following redirects.
fn tell(url: String, text: String) {
    tokio::task::spawn_blocking(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(RESPONSE_TIMEOUT))
            .max_redirects(0)
            .tls_config(crate::notify::transport::native_tls())
            .build()
            .into();
        let body = serde_json::json!({
            "response_type": "ephemeral",
            "replace_original": false,
            "text": slack::escape(&text),
        });
        let sent = agent
            .post(&url)
            .header("content-type", "application/json")
            .send(body.to_string());
        if let Err(e) = sent {
            tracing::warn!(error = %e, "Slack response_url not reachable");
        }
    });
}
