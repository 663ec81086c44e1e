//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod browser;
pub mod gateway;
pub mod inbox;
pub mod jose;
pub mod kafka;
pub mod month;
pub mod needs;
pub mod outputs;
pub mod prometheus;
pub mod python;
pub mod run;

use handoff::event::{
    ActionStatus, AgentAction, Customer, CustomerTier, DecisionKind, Escalation, HumanDecision,
};
use std::collections::BTreeMap;

/// A plain, confident, reversible research action that triggers nothing.
pub fn base_event() -> AgentAction {
    AgentAction {
        action_id: "act-1".into(),
        session_id: "sess-1".into(),
        agent_id: "agent-1".into(),
        timestamp_ms: 1_798_761_600_000,
        action_type: "research.search".into(),
        confidence: Some(0.95),
        request: "Find recent articles about battery recycling in Europe and summarise them."
            .into(),
        summary: "Searched twelve sources and wrote a short summary with links.".into(),
        output: Some("Battery recycling capacity in Europe doubled in two years.".into()),
        template_id: None,
        options: vec![],
        status: ActionStatus::Completed,
        error: None,
        amount: None,
        currency: None,
        customer: None,
        reversible: true,
        affects_others: false,
        user_message: None,
        attributes: BTreeMap::new(),
        tool_call: None,
    }
}

pub fn customer(tier: CustomerTier, complaints: i32) -> Option<Customer> {
    Some(Customer {
        id: "cust-1".into(),
        tier,
        prior_complaints: complaints,
    })
}

/// A plain HTTP/1.0 GET on loopback: the status line and the body.
pub fn http_get(port: u16, path_and_query: &str) -> (String, String) {
    http(port, "GET", path_and_query)
}

/// A plain HTTP/1.0 request without a body on loopback: the status line and the body.
pub fn http(port: u16, method: &str, path_and_query: &str) -> (String, String) {
    http_with(port, method, path_and_query, &[])
}

/// [`http`] with more headers.
pub fn http_with(
    port: u16,
    method: &str,
    path_and_query: &str,
    headers: &[(&str, &str)],
) -> (String, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let more: String = headers
        .iter()
        .map(|(k, v)| format!("{k}: {v}\r\n"))
        .collect();
    write!(
        s,
        "{method} {path_and_query} HTTP/1.0\r\nHost: localhost\r\n{more}Content-Length: 0\r\n\r\n"
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let (head, body) = resp.split_once("\r\n\r\n").unwrap_or((&resp, ""));
    let status = head.lines().next().unwrap_or("").to_string();
    (status, body.to_string())
}

/// `by`'s answer `kind` to escalation `x` at `at` (a revision carries a revised text).
pub fn answer(x: &Escalation, kind: DecisionKind, by: &str, at: i64) -> HumanDecision {
    HumanDecision {
        escalation_id: x.escalation_id.clone(),
        action_id: x.action_id.clone(),
        session_id: x.session_id.clone(),
        role: x.role.clone(),
        decided_by: by.into(),
        decision: kind,
        comment: None,
        revised_output: (kind == DecisionKind::Revise).then(|| "We refund 25 EUR.".into()),
        redirect_role: None,
        decided_at_ms: at,
        drill: false,
        chosen_option: None,
        revised_arguments: None,
    }
}

/// Serves on a free port of 127.0.0.1, on a runtime of its own thread with `workers` worker
/// threads, until `stopping` turns true: `serve` gets the listener and the stop. The port.
pub fn serve_on_free_port<F, Fut>(
    workers: usize,
    stopping: tokio::sync::watch::Receiver<bool>,
    serve: F,
) -> u16
where
    F: FnOnce(
            tokio::net::TcpListener,
            std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>,
        ) -> Fut
        + Send
        + 'static,
    Fut: std::future::Future<Output = std::io::Result<()>>,
{
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    std_listener.set_nonblocking(true).unwrap();
    let port = std_listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(std_listener).unwrap();
            let mut stopping = stopping;
            let stopped = Box::pin(async move {
                let _ = stopping.wait_for(|s| *s).await;
            });
            serve(listener, stopped).await.unwrap();
        });
    });
    port
}
