//! The gateway's answers as JSON: an accepted submission, what is known of an action, and a
//! problem (every refusal: a stable `code`, a message, and for an invalid action the field and
//! value the stream's own validation named). The shapes are those of `openapi.json`.

use super::window::Seen;
use crate::event::{CodecError, Verdict};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// The OpenAPI document served at [`OPENAPI_PATH`] (its `servers` filled in when served).
pub const OPENAPI: &str = include_str!("openapi.json");
/// Where the OpenAPI document is served.
pub const OPENAPI_PATH: &str = "/v1/openapi.json";

/// A submission the broker acknowledged.
#[derive(Debug, Serialize)]
pub struct Accepted<'a> {
    /// The action.
    pub action_id: &'a str,
    /// Its session.
    pub session_id: &'a str,
    /// Where its verdict is read (long poll).
    pub verdict_url: String,
    /// Where its session's verdicts stream (server-sent events).
    pub events_url: String,
}

/// Where an action stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Submitted here, no verdict yet.
    Pending,
    /// The first verdict is known; a person or a deadline decides next.
    Waiting,
    /// The final verdict is known.
    Final,
}

/// What is known of one action.
#[derive(Debug, Serialize)]
pub struct ActionState<'a> {
    /// The action.
    pub action_id: &'a str,
    /// Where it stands.
    pub status: Status,
    /// Its first verdict.
    pub first: Option<&'a Verdict>,
    /// Its final verdict.
    #[serde(rename = "final")]
    pub last: Option<&'a Verdict>,
}

impl<'a> ActionState<'a> {
    /// From what the window knows.
    pub fn of(action_id: &'a str, seen: &'a Seen) -> ActionState<'a> {
        let status = match (&seen.first, &seen.last) {
            (_, Some(_)) => Status::Final,
            (Some(_), None) => Status::Waiting,
            (None, None) => Status::Pending,
        };
        ActionState {
            action_id,
            status,
            first: seen.first.as_deref(),
            last: seen.last.as_deref(),
        }
    }
}

/// A refusal.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    /// The HTTP status.
    #[serde(skip)]
    pub status: StatusCode,
    /// A stable name of the problem.
    pub code: &'static str,
    /// What is wrong, for a person.
    pub message: String,
    /// For an invalid action: the stream's reason (`invalid_field`, `json_decode`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
    /// The offending field, when one is named.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<&'static str>,
    /// The offending value, quoted and shortened.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// For a refused receipt: every reason (`expired`, `arguments_differ`, …).
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub reasons: Box<[&'static str]>,
}

impl Problem {
    /// A problem without a field.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Problem {
        Problem {
            status,
            code,
            message: message.into(),
            reason: None,
            field: None,
            value: None,
            reasons: Box::new([]),
        }
    }

    /// An action the stream would dead-letter: 422 (413 when too large), with the reason the
    /// dead-letter header would carry.
    pub fn invalid_action(e: &CodecError) -> Problem {
        let status = match e {
            CodecError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            _ => StatusCode::UNPROCESSABLE_ENTITY,
        };
        let mut p = Problem::new(status, "invalid_action", e.to_string());
        p.reason = Some(e.reason());
        if let CodecError::Invalid(invalid) = e {
            p.field = Some(invalid.field);
            p.value = Some(invalid.value.clone());
        }
        p
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": &self }).to_string();
        let mut r = (self.status, json_type(), body).into_response();
        match self.status {
            StatusCode::UNAUTHORIZED => {
                r.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"handoff\""),
                );
            }
            StatusCode::SERVICE_UNAVAILABLE => {
                r.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            _ => {}
        }
        r
    }
}

/// `Content-Type: application/json`.
pub fn json_type() -> [(header::HeaderName, HeaderValue); 1] {
    [(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    )]
}

/// `value` as a JSON response with `status`.
pub fn json(status: StatusCode, value: &impl Serialize) -> Response {
    let body = serde_json::to_string(value).expect("answers serialize");
    (status, json_type(), body).into_response()
}
