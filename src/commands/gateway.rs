//! `handoff gateway`: the agents' HTTP gateway until SIGTERM/SIGINT.

use super::{init_tracing, load_settings, CommandRuntime, Failure, Outcome, Result};
use handoff::cli::GatewayArgs;

/// Serves until stopped.
pub fn run(args: GatewayArgs, started: CommandRuntime) -> Result {
    let settings = load_settings(&args.kafka)?;
    init_tracing(settings.log.format, &settings.log.level);
    if settings.gateway.agents.is_empty() {
        tracing::warn!("gateway.agents is empty: no agent can use the gateway");
    }
    let base = settings.gateway.base_url();
    let served = handoff::gateway::run(&settings, started.stopped(), |addr| {
        tracing::info!(%addr, "gateway at {base}/v1/ (OpenAPI at /v1/openapi.json, metrics at /metrics)");
    });
    match started.rt().block_on(served) {
        Ok(()) => Ok(Outcome::Success),
        Err(e) if e.is_usage() => Err(Failure::usage(e)),
        Err(e) => Err(Failure::Runtime(e.into())),
    }
}
