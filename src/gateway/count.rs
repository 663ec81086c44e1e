//! Counts every answer by route (a fixed set of names) and status code: a tower layer applied to
//! each matched route. Written as a service rather than `axum::middleware::from_fn` so that a
//! waiting request carries only the route's own future and two words more: `from_fn` boxes a
//! future of its own (about 1 KiB a request) that every long poll would hold while it waits.

use super::api;
use super::GatewayMetrics;
use axum::extract::{MatchedPath, Request};
use axum::response::Response;
use pin_project_lite::pin_project;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

/// The layer: wraps each route in a [`Counted`] service.
#[derive(Clone)]
pub struct CountLayer(pub Arc<GatewayMetrics>);

impl<S> tower_layer::Layer<S> for CountLayer {
    type Service = Counted<S>;

    fn layer(&self, inner: S) -> Counted<S> {
        Counted {
            inner,
            metrics: self.0.clone(),
        }
    }
}

/// A route whose answers are counted.
#[derive(Clone)]
pub struct Counted<S> {
    inner: S,
    metrics: Arc<GatewayMetrics>,
}

/// The route's name in `handoff_gateway_requests_total{route}`.
fn route_of(request: &Request) -> &'static str {
    match request
        .extensions()
        .get::<MatchedPath>()
        .map(MatchedPath::as_str)
    {
        Some("/v1/actions") => "submit",
        Some("/v1/actions/{action_id}/verdict") => "verdict",
        Some("/v1/sessions/{session_id}/events") => "events",
        Some("/v1/receipts/redeem") => "redeem",
        Some(api::OPENAPI_PATH) => "openapi",
        Some(crate::trust::JWKS_PATH) => "jwks",
        Some("/healthz" | "/readyz" | "/metrics") => "probe",
        _ => "other",
    }
}

impl<S> tower_service::Service<Request> for Counted<S>
where
    S: tower_service::Service<Request, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Counting<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        Counting {
            route: route_of(&request),
            metrics: self.metrics.clone(),
            inner: self.inner.call(request),
        }
    }
}

pin_project! {
    /// A route's answer on its way: counted when it is ready.
    pub struct Counting<F> {
        #[pin]
        inner: F,
        route: &'static str,
        metrics: Arc<GatewayMetrics>,
    }
}

impl<F, E> Future for Counting<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let answer = ready!(this.inner.poll(cx));
        if let Ok(r) = &answer {
            this.metrics.request(this.route, r.status().as_u16());
        }
        Poll::Ready(answer)
    }
}
