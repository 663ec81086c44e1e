//! `handoff generate`: the synthetic agent fleet, as JSON lines on standard output or as Avro
//! records to a Kafka topic.

use super::{ensure_usage, init_tracing, load_settings, CommandRuntime, Outcome, Result};
use handoff::cli::GenerateArgs;
use handoff::config::LogFormat;
use handoff::sim::fleet::{Fleet, FleetConfig};
use std::io::Write;

/// A bad --malformed or --trigger-boost is bad usage. With --topic, `started` carries the
/// runtime and the stop signal: SIGTERM/SIGINT stops producing, and what was sent is delivered.
pub fn run(args: GenerateArgs, started: Option<CommandRuntime>) -> Result {
    let (malformed, boost) = (args.malformed, args.trigger_boost);
    ensure_usage((0.0..=1.0).contains(&malformed), || {
        format!("--malformed {malformed}: must be between 0 and 1")
    })?;
    ensure_usage(boost.is_finite() && boost >= 0.0, || {
        format!("--trigger-boost {boost}: must be zero or more")
    })?;
    let mut fleet = Fleet::new(FleetConfig {
        seed: args.seed,
        trigger_boost: boost,
        malformed_share: malformed,
        ..Default::default()
    });
    match (&args.topic, started) {
        (Some(topic), Some(started)) => to_topic(&args, topic, &mut fleet, &started),
        _ => to_stdout(args.count, &mut fleet),
    }
}

fn to_stdout(count: u64, fleet: &mut Fleet) -> Result {
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for _ in 0..count {
        writeln!(out, "{}", fleet.next_record_json())?;
    }
    out.flush()?;
    Ok(Outcome::Success)
}

/// Avro records to `topic` on the cluster of --config/--bootstrap. A stop before the cluster
/// answers ends the run at once.
fn to_topic(
    args: &GenerateArgs,
    topic: &str,
    fleet: &mut Fleet,
    started: &CommandRuntime,
) -> Result {
    init_tracing(LogFormat::Text, "warn");
    let settings = load_settings(&args.kafka)?;
    let topics = [topic.to_string()];
    let ready = async {
        let s = settings.clone();
        tokio::task::spawn_blocking(move || handoff::kafka::admin::wait_reachable(&s)).await??;
        if settings.kafka.create_topics {
            handoff::kafka::admin::ensure_topics(&settings, &topics).await?;
        }
        Ok::<_, anyhow::Error>(())
    };
    let produce = async {
        tokio::select! {
            ready = ready => ready?,
            () = started.stopped() => return Ok(None),
        }
        let (count, rate, stop) = (Some(args.count), args.rate, started.stopped());
        let counts = Default::default();
        let sent =
            handoff::sim::produce::produce(&settings, topic, fleet, count, rate, stop, counts);
        Ok::<_, anyhow::Error>(Some(sent.await?))
    };
    match started.rt().block_on(produce)? {
        Some(sent) => eprintln!("{sent} events delivered to {topic}"),
        None => eprintln!("stopped before start-up finished"),
    }
    Ok(Outcome::Success)
}
