//! `handoff respond`: simulated people answering the escalations of every role, until
//! SIGTERM/SIGINT.

use super::CommandRuntime;
use super::{ensure_usage, init_tracing, load_matrix, load_settings, Failure, Outcome, Result};
use handoff::cli::RespondArgs;
use handoff::config::LogFormat;
use handoff::sim::respond::{ResponderConfig, ResponderCounts};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// A bad --no-show, --mix or matrix is bad usage.
pub fn run(args: RespondArgs, started: CommandRuntime) -> Result {
    let no_show = args.no_show;
    ensure_usage((0.0..=1.0).contains(&no_show), || {
        format!("--no-show {no_show}: must be between 0 and 1")
    })?;
    let mix = handoff::sim::people::parse_mix(&args.mix)
        .map_err(|e| Failure::usage(anyhow::anyhow!("--mix {e}")))?;
    let m = load_matrix(args.matrix.as_deref())?;
    init_tracing(LogFormat::Text, "warn");
    let settings = load_settings(&args.kafka)?;
    let cfg = ResponderConfig {
        delay: args.delay.into(),
        jitter: args.jitter.into(),
        no_show,
        mix,
        seed: args.seed,
    };
    let stop = Arc::new(AtomicBool::new(false));
    let counts: Arc<ResponderCounts> = Arc::new(Default::default());
    let (flag, stopped) = (stop.clone(), started.stopped());
    started.rt().spawn(async move {
        stopped.await;
        flag.store(true, Ordering::Release);
    });
    // Like every command that talks to Kafka: a cluster that stays away is an error within
    // `connect_timeout`, and answers to a decisions topic that does not exist are refused.
    handoff::kafka::admin::wait_reachable(&settings)?;
    handoff::kafka::admin::existing_partitions(&settings, &settings.topics.decisions)?;
    let topics: Vec<String> = m
        .roles()
        .iter()
        .map(|r| settings.topics.role_topic(&r.topic))
        .collect();
    let roles: Vec<String> = m.roles().iter().map(|r| r.name.clone()).collect();
    handoff::sim::respond::respond(&settings, &topics, &roles, &cfg, &stop, &counts)?;
    eprintln!(
        "escalations read {}, answered {} (delivered), not delivered {}, left unanswered {}",
        counts.read.load(Ordering::Relaxed),
        counts.sent.delivered.load(Ordering::Relaxed),
        counts.sent.failed.load(Ordering::Relaxed),
        counts.no_shows.load(Ordering::Relaxed)
    );
    Ok(Outcome::Success)
}
