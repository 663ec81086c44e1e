//! `handoff inbox`: the reviewers' web inbox until SIGTERM/SIGINT; `handoff token`: a sign-in
//! token for a person.

use super::{
    ensure_usage, init_tracing, load_matrix, load_settings, CommandRuntime, Failure, Outcome,
    Result,
};
use handoff::cli::InboxArgs;
use handoff::problems::Problems;
use std::sync::Arc;

/// Checks the people's roles against the matrix, then serves.
pub fn run(args: InboxArgs, started: CommandRuntime) -> Result {
    let settings = load_settings(&args.kafka)?;
    init_tracing(settings.log.format, &settings.log.level);
    let matrix = Arc::new(load_matrix(settings.matrix.path.as_deref())?);
    let mut problems = Problems::default();
    let roles: Vec<&str> = matrix.roles().iter().map(|r| r.name.as_str()).collect();
    settings.inbox.check_roles(&roles, &mut problems);
    settings.notify.check_roles(&roles, &mut problems);
    ensure_usage(problems.is_empty(), || {
        format!("the inbox settings have problems:\n{problems}")
    })?;
    if settings.inbox.people.is_empty() {
        tracing::warn!("inbox.people is empty: nobody can sign in");
    }
    let base = settings.inbox.base_url();
    let served = handoff::inbox::run(&settings, matrix, started.stopped(), |addr| {
        tracing::info!(%addr, "inbox at {base}/ (metrics at /metrics)");
    });
    match started.rt().block_on(served) {
        Ok(()) => Ok(Outcome::Success),
        Err(e) if e.is_usage() => Err(Failure::usage(e)),
        Err(e) => Err(Failure::Runtime(e.into())),
    }
}

/// Prints a new token (a person's, or with `agent` a gateway key) and the line that configures
/// it.
pub fn token(agent: bool) -> Result {
    let token = handoff::inbox::auth::new_token();
    let hash = handoff::inbox::auth::token_sha256(&token);
    if agent {
        println!("key (give it to the agent's operator; it is not stored anywhere): {token}");
        println!("key_sha256 = \"{hash}\"   # for its [[gateway.agents]] entry");
    } else {
        println!("token (give it to the person; it is not stored anywhere): {token}");
        println!("token_sha256 = \"{hash}\"   # for their [[inbox.people]] entry");
    }
    Ok(Outcome::Success)
}
