//! Local HTTP receivers for the notification tests: small axum servers on 127.0.0.1:0 that
//! verify the webhook signature, behave as told (healthy, failing, rate-limiting, slow, down)
//! and record every request.
#![allow(dead_code)]

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use handoff::notify::sign;
use serde_json::Value;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// How a receiver answers.
#[derive(Debug, Clone, Copy)]
pub enum Mode {
    /// 200 at once.
    Healthy,
    /// 500 for the first n requests, then 200.
    FailFirst(usize),
    /// 429 with `Retry-After: secs` for the first n requests, then 200.
    RateLimitFirst(usize, u64),
    /// The first n requests are answered (200) only after the delay; then 200 at once.
    SlowFirst(usize, Duration),
    /// 500 to everything.
    Down,
}

/// One request received.
#[derive(Debug, Clone)]
pub struct Got {
    /// When it arrived.
    pub at: Instant,
    /// When it was answered.
    pub answered: Instant,
    /// Its `webhook-id` (None for Slack).
    pub id: Option<String>,
    /// Its JSON body.
    pub body: Value,
    /// The signature verified (always true without a key).
    pub verified: bool,
    /// The status answered.
    pub status: u16,
    /// Answered after `SlowFirst`'s delay.
    pub late: bool,
}

/// A receiver.
pub struct Sink {
    pub name: &'static str,
    key: Option<Vec<u8>>,
    mode: Mutex<Mode>,
    got: Mutex<Vec<Got>>,
    pub addr: SocketAddr,
}

impl Sink {
    /// Starts a receiver on the current runtime; `key` verifies webhook signatures.
    pub async fn start(name: &'static str, key: Option<&[u8]>, mode: Mode) -> Arc<Sink> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let sink = Arc::new(Sink {
            name,
            key: key.map(<[u8]>::to_vec),
            mode: Mutex::new(mode),
            got: Mutex::new(Vec::new()),
            addr: listener.local_addr().unwrap(),
        });
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(answer))
            .with_state(sink.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        sink
    }

    /// Its URL.
    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    /// Changes how it answers from now on.
    pub fn set(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }

    /// Every request so far.
    pub fn got(&self) -> Vec<Got> {
        self.got.lock().unwrap().clone()
    }

    /// Requests answered 200 in time, by id (Slack: by the body's first block text).
    pub fn delivered(&self) -> Vec<Got> {
        self.got()
            .into_iter()
            .filter(|g| g.status == 200 && !g.late)
            .collect()
    }
}

async fn answer(State(s): State<Arc<Sink>>, headers: HeaderMap, body: Bytes) -> Response {
    let at = Instant::now();
    let h = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let id = h(sign::ID_HEADER);
    let verified = match &s.key {
        None => true,
        Some(k) => {
            let now = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap()
                .as_secs() as i64;
            sign::verify(
                k,
                id.as_deref().unwrap_or_default(),
                &h(sign::TIMESTAMP_HEADER).unwrap_or_default(),
                &h(sign::SIGNATURE_HEADER).unwrap_or_default(),
                &body,
                now,
                sign::TOLERANCE_S,
            )
            .is_ok()
        }
    };
    let seen = s.got.lock().unwrap().len();
    let mode = *s.mode.lock().unwrap();
    let (status, retry_after, delay) = if !verified {
        (401, None, None)
    } else {
        match mode {
            Mode::Healthy => (200, None, None),
            Mode::FailFirst(n) if seen < n => (500, None, None),
            Mode::RateLimitFirst(n, secs) if seen < n => (429, Some(secs), None),
            Mode::SlowFirst(n, d) if seen < n => (200, None, Some(d)),
            Mode::Down => (500, None, None),
            _ => (200, None, None),
        }
    };
    let index = {
        let mut got = s.got.lock().unwrap();
        got.push(Got {
            at,
            answered: at,
            id,
            body: serde_json::from_slice(&body).unwrap_or(Value::Null),
            verified,
            status,
            late: delay.is_some(),
        });
        got.len() - 1
    };
    if let Some(d) = delay {
        tokio::time::sleep(d).await;
    }
    s.got.lock().unwrap()[index].answered = Instant::now();
    let status = StatusCode::from_u16(status).unwrap();
    match retry_after {
        Some(secs) => (status, [("retry-after", secs.to_string())], "slow down").into_response(),
        None => (status, "ok").into_response(),
    }
}
