//! `POST /slack/actions`: a button pressed in a Slack message (see `notify`) becomes a decision
//! of the person mapped to that Slack user, after Slack's request signature is verified.

use super::web::App;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;
use std::sync::Arc;

/// Slack's signing secret and who is who.
#[derive(Clone)]
pub struct SlackPeople {
    /// Slack's signing secret.
    pub secret: String,
    /// Slack user id → person name.
    pub people: HashMap<String, String>,
}

/// The interactivity endpoint.
pub async fn actions(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(_slack) = &app.slack else {
        return (StatusCode::NOT_FOUND, "Slack buttons are not configured\n").into_response();
    };
    let _ = (headers, body);
    (StatusCode::NOT_IMPLEMENTED, "pending\n").into_response()
}
