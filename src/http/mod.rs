//! How every HTTP surface (the inbox, the gateway, the metrics server) takes connections, so a
//! hostile or broken client cannot hold them: a deadline for a request's head (which also ends
//! a keep-alive connection left idle), a deadline for each request's answer, a body limit, a
//! cap on open connections, and a `Host` allow-list against DNS rebinding ([`host`]).
//!
//! axum's own `serve` sets none of these (hyper's header timeout needs a timer it does not
//! give), so the accept loop is here: hyper-util's auto builder (HTTP/1.1 and HTTP/2 on one
//! port) with a timer, a semaphore of connection slots, and graceful shutdown.

pub mod host;

use crate::logs::LogLimiter;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Request};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use prometheus::{IntCounter, IntGauge, Registry};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// What one surface allows a connection and a request.
#[derive(Debug, Clone)]
pub struct Limits {
    /// A request's head (line and headers) must arrive within this, counted from the first
    /// moment the connection waits for one: it also closes a keep-alive connection left idle.
    pub head: Duration,
    /// A request must be answered within this (reading its body included). Streams (server-sent
    /// events) are answered at once and then run on.
    pub answer: Duration,
    /// The largest request body taken.
    pub body_bytes: usize,
    /// Connections open at once; one more is closed as soon as it is accepted (and counted).
    pub connections: usize,
    /// The hosts the `Host` header may name ([`host::Allowed`]).
    pub hosts: host::Allowed,
}

impl Limits {
    /// The defaults for a surface answering people and agents: 10 s for a head, 30 s for an
    /// answer, 64 KiB bodies.
    pub fn new(connections: usize, hosts: host::Allowed) -> Limits {
        Limits {
            head: Duration::from_secs(10),
            answer: Duration::from_secs(30),
            body_bytes: 64 * 1024,
            connections,
            hosts,
        }
    }
}

/// A surface's connection metrics.
#[derive(Clone)]
pub struct ConnMetrics {
    open: IntGauge,
    refused: IntCounter,
    wrong_host: IntCounter,
    log: Arc<LogLimiter>,
}

impl ConnMetrics {
    /// Registers `handoff_http_connections`, `handoff_http_connections_refused_total` and
    /// `handoff_http_wrong_host_total` on `registry`.
    pub fn register(registry: &Registry) -> ConnMetrics {
        let open = IntGauge::new(
            "handoff_http_connections",
            "HTTP connections open on this process's web surface.",
        )
        .expect("a valid gauge");
        let refused = IntCounter::new(
            "handoff_http_connections_refused_total",
            "HTTP connections closed at once because the connection cap was reached.",
        )
        .expect("a valid counter");
        let wrong_host = IntCounter::new(
            "handoff_http_wrong_host_total",
            "HTTP requests refused (421) because their Host is not one this surface serves.",
        )
        .expect("a valid counter");
        for c in [
            Box::new(open.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(refused.clone()),
            Box::new(wrong_host.clone()),
        ] {
            let _ = registry.register(c);
        }
        ConnMetrics {
            open,
            refused,
            wrong_host,
            log: Arc::new(LogLimiter::new(1000)),
        }
    }

    /// Logs a warning, at most one a second (with how many were held back).
    pub fn warn(&self, what: std::fmt::Arguments<'_>) {
        if let Some(held) = self.log.allow(crate::clock::SystemClock::now()) {
            tracing::warn!(held_back = held, "{what}");
        }
    }

    /// Metrics nobody reads (a surface without a registry).
    pub fn unregistered() -> ConnMetrics {
        ConnMetrics::register(&Registry::new())
    }
}

/// Serves `router` on `listener` within `limits` until `shutdown`, then lets the requests in
/// flight finish (at most `limits.answer`). Handlers see the peer as `ConnectInfo<SocketAddr>`.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    metrics: ConnMetrics,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let router = guarded(router, &limits, &metrics);
    let builder = builder(&limits);
    let slots = Arc::new(Semaphore::new(limits.connections));
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    accept_failed(e, &metrics).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            metrics.refused.inc();
            metrics.warn(format_args!(
                "connection cap ({}) reached: closing {peer}",
                limits.connections
            ));
            continue;
        };
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut req: hyper::Request<_>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            tower_service::Service::call(&mut router.clone(), req)
        });
        let (builder, watcher, head) = (builder.clone(), graceful.watcher(), limits.head);
        let held = Held::new(slot, metrics.open.clone());
        tokio::spawn(async move {
            let _held = held;
            // hyper's head deadline starts once it knows HTTP/1 from HTTP/2: until then a
            // silent client (or one stopping inside HTTP/2's preface) is bounded here.
            if !first_request(&stream, head).await {
                return;
            }
            let conn = builder
                .serve_connection_with_upgrades(TokioIo::new(stream), service)
                .into_owned();
            let _ = watcher.watch(conn).await;
        });
    }
    drop(listener);
    let _ = tokio::time::timeout(limits.answer, graceful.shutdown()).await;
    Ok(())
}

/// A connection's place among the capped ones and in the gauge, given back however its task
/// ends (a handler's panic included).
struct Held {
    _slot: tokio::sync::OwnedSemaphorePermit,
    open: IntGauge,
}

impl Held {
    fn new(slot: tokio::sync::OwnedSemaphorePermit, open: IntGauge) -> Held {
        open.inc();
        Held { _slot: slot, open }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.open.dec();
    }
}

/// Whether the client starts a request within `within`: at least one byte that is not the start
/// of HTTP/2's 24-byte preface, or the whole preface. A client that sends nothing, or stops
/// inside the preface, is closed.
async fn first_request(stream: &tokio::net::TcpStream, within: Duration) -> bool {
    const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    let started = async {
        let mut buf = [0u8; 24];
        loop {
            match stream.peek(&mut buf).await {
                Ok(0) | Err(_) => return false,
                Ok(n) if n == 24 || buf[..n] != PREFACE[..n] => return true,
                // Part of the preface: wait for the rest.
                Ok(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
    };
    tokio::time::timeout(within, started).await.unwrap_or(false)
}

/// The router with the body limit, the answer deadline and the `Host` check.
fn guarded(router: Router, limits: &Limits, metrics: &ConnMetrics) -> Router {
    let answer = limits.answer;
    let hosts = Arc::new(limits.hosts.clone());
    let wrong_host = metrics.wrong_host.clone();
    router
        .layer(middleware::from_fn(move |req: Request, next: Next| {
            deadline(answer, req, next)
        }))
        .layer(middleware::from_fn(move |req: Request, next: Next| {
            let (hosts, wrong_host) = (hosts.clone(), wrong_host.clone());
            async move {
                if let Err(refused) = hosts.check(&req) {
                    wrong_host.inc();
                    return refused;
                }
                next.run(req).await
            }
        }))
        .layer(DefaultBodyLimit::max(limits.body_bytes))
}

async fn deadline(answer: Duration, req: Request, next: Next) -> Response {
    match tokio::time::timeout(answer, next.run(req)).await {
        Ok(r) => r,
        Err(_) => (
            StatusCode::REQUEST_TIMEOUT,
            "the request was not answered in time (its body did not arrive?)\n",
        )
            .into_response(),
    }
}

fn builder(limits: &Limits) -> auto::Builder<TokioExecutor> {
    let mut b = auto::Builder::new(TokioExecutor::new());
    b.http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.head)
        .max_buf_size(64 * 1024);
    b.http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(Duration::from_secs(20)))
        .keep_alive_timeout(limits.head)
        .max_header_list_size(64 * 1024)
        .max_concurrent_streams(Some(256));
    b
}

/// An accept error: per-connection ones (the peer went away) are ignored; others (out of file
/// descriptors) are logged and waited out, as hyper's own server does.
async fn accept_failed(e: std::io::Error, metrics: &ConnMetrics) {
    use std::io::ErrorKind::*;
    if matches!(
        e.kind(),
        ConnectionAborted | ConnectionReset | ConnectionRefused
    ) {
        return;
    }
    metrics.warn(format_args!("cannot accept a connection: {e}"));
    tokio::time::sleep(Duration::from_millis(100)).await;
}
