//! `handoff demo`: a local broker (or a running cluster), the synthetic fleet, the processor and
//! simulated people, with a live summary every two seconds.

use super::{init_tracing, load_matrix, load_settings, CommandRuntime, Outcome, Result};
use handoff::cli::DemoArgs;
use handoff::config::{LogFormat, Settings};
use handoff::matrix::Matrix;
use handoff::pipeline::StatsHandle;
use handoff::sim::broker::{LocalBroker, Storage};
use handoff::sim::fleet::{Fleet, FleetConfig};
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Starts a local broker unless --config or --bootstrap names a cluster; stops on
/// SIGTERM/SIGINT or after --duration.
pub fn run(args: DemoArgs, started: CommandRuntime) -> Result {
    init_tracing(LogFormat::Text, "warn");
    let mut settings = load_settings(&args.kafka)?;
    let matrix = Arc::new(load_matrix(settings.matrix.path.as_deref())?);
    let _broker = match args.kafka.given() {
        true => None,
        false => {
            let broker = local_broker(args.port)?;
            settings.kafka.bootstrap_servers = broker.bootstrap();
            Some(broker)
        }
    };
    if started.stop_requested() {
        eprintln!("stopped before start-up finished");
        return Ok(Outcome::Success);
    }
    // Its own consumer group: a demo never takes partitions from a real deployment.
    if !settings.kafka.group_id.ends_with("-demo") {
        settings.kafka.group_id.push_str("-demo");
    }
    if sign_decisions(&mut settings.trust) {
        eprintln!(
            "decisions: the inbox and the simulated people sign theirs with a key made for this \
             run (id \"demo\"); the processor takes no other, and signs approval receipts with \
             it (published at /.well-known/jwks.json)\n"
        );
    }
    let duration = args.duration.map(Into::into);
    started
        .rt()
        .block_on(live(settings, matrix, args.rate, duration, &started))
}

/// Unless the settings name keys, the demo's decisions (the inbox's and the simulated
/// people's) are signed with a key made for this run, and the processor trusts only it. True
/// when it made one.
fn sign_decisions(trust: &mut handoff::config::TrustSettings) -> bool {
    if !trust.decision_keys.is_empty() || trust.signing_key.is_some() {
        return false;
    }
    let key = handoff::trust::Signer::generate("demo");
    trust.decision_keys.push(handoff::config::DecisionKey {
        id: key.id().into(),
        public_key: key.public_key(),
        roles: Vec::new(),
    });
    // One key for the demo's every process: it also signs the approval receipts, so the
    // gateway and the inbox publish it.
    trust.published_keys.push(handoff::config::PublishedKey {
        id: key.id().into(),
        public_key: key.public_key(),
    });
    trust.signing_key = Some(key.to_pem());
    trust.signing_key_id = Some(key.id().into());
    true
}

fn local_broker(port: u16) -> Result<LocalBroker> {
    handoff::sim::broker::tansu_for(&Storage::Memory)?;
    eprintln!("starting the local broker (tansu) on 127.0.0.1:{port}…");
    Ok(LocalBroker::start(port, Storage::Memory)?)
}

/// The demo proper: the processor, then the fleet and the people once it runs, the summary
/// until the stop, then everything drained. A processor that stops by itself stops the demo at
/// once, saying why (exit 3): the summary never goes on counting a stopped processor.
async fn live(
    settings: Settings,
    matrix: Arc<Matrix>,
    rate: u64,
    duration: Option<Duration>,
    started: &CommandRuntime,
) -> Result {
    let (stop_tx, stop_rx) = watch::channel(false);
    let stop_tx = Arc::new(stop_tx);
    let signal = started.stopped();
    let timer = stop_tx.clone();
    tokio::spawn(async move {
        match duration {
            Some(d) => tokio::select! { _ = signal => {}, _ = tokio::time::sleep(d) => {} },
            None => signal.await,
        }
        let _ = timer.send(true);
    });
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    let endpoints = handoff::serve::Endpoints::default();
    let metrics = serve_metrics(&settings, endpoints.clone()).await;
    let (running_tx, running_rx) = tokio::sync::oneshot::channel();
    let mut pipeline = {
        let (settings, matrix, stop) = (settings.clone(), matrix.clone(), stopped());
        tokio::spawn(async move {
            let rules = handoff::matrix::Rules::new(matrix);
            handoff::pipeline::run(&settings, rules, stop, move |r| {
                let _ = endpoints.running.set(r.clone());
                let _ = running_tx.send(r);
            })
            .await
        })
    };
    let running = tokio::select! {
        running = running_rx => match running {
            Ok(running) => running,
            Err(_) => {
                pipeline.await??;
                return Err(anyhow::anyhow!("the processor stopped before it started").into());
            }
        },
        () = stopped() => {
            pipeline.abort();
            eprintln!("stopped before start-up finished");
            return Ok(Outcome::Success);
        }
    };
    let counts: Arc<handoff::sim::produce::Counts> = Default::default();
    let generator = tokio::spawn(generate(settings.clone(), rate, counts.clone(), stopped()));
    let inbox = tokio::spawn(inbox(settings.clone(), matrix.clone(), stopped()));
    let gateway = tokio::spawn(gateway(settings.clone(), stopped()));
    let (responders_stop, responders) = respond(settings, &matrix);
    eprintln!(
        "demo running: {rate} events/s from the synthetic fleet, simulated people answering \
         the escalations; Ctrl-C stops\n"
    );
    if let Some(m) = metrics {
        eprintln!(
            "metrics: {m} (probes /healthz, /readyz) — point Prometheus and the dashboard here\n"
        );
    }
    let early = tokio::select! {
        failed = summaries(running.stats, running.health, counts, rate, stopped()) => failed,
        ended = &mut pipeline => Some(format!("the processor stopped: {}", match ended? {
            Ok(_) => "it ended without being asked to".to_string(),
            Err(e) => e.to_string(),
        })),
    };
    let _ = stop_tx.send(true);
    responders_stop.store(true, Ordering::Release);
    if let Some(why) = early {
        // Said at once; the rest is given a few seconds to stop and then left (the brokers may
        // be what failed).
        eprintln!("\n{why}\nstopping the demo");
        let rest = async {
            let _ = generator.await;
            let _ = inbox.await;
            let _ = gateway.await;
            let _ = pipeline.await;
        };
        let _ = tokio::time::timeout(Duration::from_secs(10), rest).await;
        return Err(anyhow::anyhow!("{why}").into());
    }
    let sent = generator.await?;
    if let Ok(Err(e)) = responders.join() {
        eprintln!("simulated responders stopped with an error: {e}");
    }
    let _ = inbox.await;
    let _ = gateway.await;
    let report = pipeline.await??;
    println!(
        "stopped: {} events generated\n{}",
        sent?,
        report.stats.render(0.0)
    );
    Ok(Outcome::Success)
}

/// Serves the processor's `/metrics`, `/healthz` and `/readyz` as `run` does; returns the
/// metrics URL. An address that cannot be bound leaves the demo running without them, saying so.
async fn serve_metrics(
    settings: &Settings,
    endpoints: handoff::serve::Endpoints,
) -> Option<String> {
    let listener = match super::bind_metrics(settings).await {
        Ok(l) => l?,
        Err(e) => {
            let e = match e {
                super::Failure::Usage(e) | super::Failure::Runtime(e) => e,
            };
            eprintln!("the processor's metrics are not served: {e}");
            return None;
        }
    };
    let addr = listener.local_addr().ok()?;
    let host = if addr.ip().is_unspecified() {
        "127.0.0.1".to_string()
    } else {
        addr.ip().to_string()
    };
    tokio::spawn(super::serve_endpoints(
        listener,
        endpoints,
        settings.metrics.clone(),
    ));
    Some(format!(
        "http://{host}:{}{}",
        addr.port(),
        handoff::serve::METRICS_PATH
    ))
}

/// The inbox beside the simulated people, with a demo person holding every role (unless the
/// settings name people): its sign-in link is printed. A port already taken leaves the demo
/// running without it.
async fn inbox(
    mut settings: Settings,
    matrix: Arc<Matrix>,
    stop: impl Future<Output = ()> + Send + 'static,
) {
    let mut link = None;
    if settings.inbox.people.is_empty() {
        let token = handoff::inbox::auth::new_token();
        settings.inbox.people.push(handoff::config::Person {
            name: "demo".into(),
            roles: matrix.roles().iter().map(|r| r.name.clone()).collect(),
            token_sha256: Some(handoff::inbox::auth::token_sha256(&token)),
            slack_user: None,
        });
        link = Some(format!(
            "{}/sign-in?token={token}",
            settings.inbox.base_url()
        ));
    }
    let base = settings.inbox.base_url();
    let bound = move |_| match &link {
        Some(l) => eprintln!("inbox: {base}/ — sign in as the demo person (every role): {l}\n"),
        None => eprintln!("inbox: {base}/ — sign in with your [[inbox.people]] token\n"),
    };
    if let Err(e) = handoff::inbox::run(&settings, matrix, stop, bound).await {
        eprintln!("the inbox is not running: {e}");
    }
}

/// The agent id the demo's gateway key acts as.
const DEMO_AGENT: &str = "demo-agent";

/// The agents' gateway beside the inbox, with a demo key acting as [`DEMO_AGENT`] (unless the
/// settings name agents): the key and a first request are printed. A port already taken leaves
/// the demo running without it.
async fn gateway(mut settings: Settings, stop: impl Future<Output = ()> + Send + 'static) {
    let mut key = None;
    if settings.gateway.agents.is_empty() {
        let k = handoff::inbox::auth::new_token();
        settings.gateway.agents.push(handoff::config::GatewayAgent {
            name: "demo".into(),
            key_sha256: handoff::inbox::auth::token_sha256(&k),
            agent_ids: vec![DEMO_AGENT.into()],
        });
        key = Some(k);
    }
    let base = settings.gateway.base_url();
    let bound = move |_| {
        match &key {
        Some(k) => eprintln!(
            "gateway: {base}/v1/ — demo agent key (acts as agent_id \"{DEMO_AGENT}\"): {k}\n  \
             curl -s -H 'Authorization: Bearer {k}' -H 'Content-Type: application/json' \
             --data @deploy/samples/gateway-action.json {base}/v1/actions\n  \
             curl -s -H 'Authorization: Bearer {k}' '{base}/v1/actions/act-demo-1/verdict?wait=30s&until=any'\n"
        ),
        None => eprintln!("gateway: {base}/v1/ — use your [[gateway.agents]] keys\n"),
    }
    };
    if let Err(e) = handoff::gateway::run(&settings, stop, bound).await {
        eprintln!("the gateway is not running: {e}");
    }
}

/// The synthetic fleet at `rate` events/s into the input topic, until `stop`; `counts` counts
/// what the broker acknowledged.
async fn generate(
    settings: Settings,
    rate: u64,
    counts: Arc<handoff::sim::produce::Counts>,
    stop: impl Future<Output = ()>,
) -> std::result::Result<u64, handoff::sim::SimError> {
    let mut fleet = Fleet::new(FleetConfig {
        malformed_share: 0.002,
        seed: 1,
        ..Default::default()
    });
    let topic = settings.topics.input.clone();
    handoff::sim::produce::produce(&settings, &topic, &mut fleet, None, rate, stop, counts).await
}

/// Simulated people answering the escalations of every role, so the human loop runs too; on a
/// thread of their own until the flag is set.
fn respond(
    settings: Settings,
    matrix: &Matrix,
) -> (
    Arc<AtomicBool>,
    std::thread::JoinHandle<std::result::Result<(), handoff::sim::SimError>>,
) {
    let stop = Arc::new(AtomicBool::new(false));
    let topics: Vec<String> = matrix
        .roles()
        .iter()
        .map(|r| settings.topics.role_topic(&r.topic))
        .collect();
    let roles: Vec<String> = matrix.roles().iter().map(|r| r.name.clone()).collect();
    let flag = stop.clone();
    let thread = std::thread::spawn(move || {
        let counts = Arc::new(Default::default());
        let cfg = Default::default();
        handoff::sim::respond::respond(&settings, &topics, &roles, &cfg, &flag, &counts)
    });
    (stop, thread)
}

/// How long the fleet's deliveries fail before the demo stops on them. The processor's own
/// deliveries time out as soon (`message.timeout.ms` is the same) and say more, so it is given
/// this long to say it first; a processor with nothing in flight says nothing (it waits for a
/// slow broker), and then this is how the demo learns its broker is gone.
const FLEET_FAILING_FOR: Duration = Duration::from_secs(5);

/// Prints the live summary every two seconds until `stop`, with how far the processor is
/// behind the fleet; returns at once, with the reason, when the processor has failed, or when
/// the fleet's records have not been delivered for [`FLEET_FAILING_FOR`].
async fn summaries(
    stats: StatsHandle,
    health: Arc<handoff::pipeline::Health>,
    counts: Arc<handoff::sim::produce::Counts>,
    rate: u64,
    stop: impl Future<Output = ()>,
) -> Option<String> {
    let mut last = stats.snapshot();
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    tick.tick().await;
    let mut shown = std::time::Instant::now();
    let mut fleet = FleetWatch::default();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                if let Some(why) = health.failure() {
                    return Some(format!("the processor stopped: {why}"));
                }
                if let Some(why) = fleet.check(&counts) {
                    return Some(why);
                }
                if shown.elapsed() < Duration::from_secs(2) {
                    continue;
                }
                shown = std::time::Instant::now();
                let now = stats.snapshot();
                let per_second = (now.consumed - last.consumed) as f64 / 2.0;
                let sent = counts.delivered.load(Ordering::Relaxed);
                println!("{}\n{}\n", now.render(per_second), behind(sent, &now, rate));
                last = now;
            }
            () = &mut stop => return None,
        }
    }
}

/// Watches the fleet's deliveries: failing means some failed since the last one delivered.
#[derive(Debug, Default)]
struct FleetWatch {
    /// When they started failing, and how many had been delivered then.
    since: Option<(std::time::Instant, u64)>,
    /// Failures already seen.
    failed: u64,
}

impl FleetWatch {
    /// How long the fleet's deliveries have been failing with none delivered, given the counts
    /// at `now`.
    fn failing(
        &mut self,
        failed: u64,
        delivered: u64,
        now: std::time::Instant,
    ) -> Option<Duration> {
        let new_failures = failed > self.failed;
        self.failed = failed;
        match self.since {
            Some((_, d)) if delivered > d => self.since = None,
            None if new_failures => self.since = Some((now, delivered)),
            _ => {}
        }
        self.since.map(|(at, _)| now.saturating_duration_since(at))
    }

    /// The broker in words, once the fleet's deliveries have failed with none delivered for
    /// [`FLEET_FAILING_FOR`].
    fn check(&mut self, counts: &handoff::sim::produce::Counts) -> Option<String> {
        let failed = counts.failed.load(Ordering::Relaxed);
        let delivered = counts.delivered.load(Ordering::Relaxed);
        let failing = self.failing(failed, delivered, std::time::Instant::now())?;
        (failing >= FLEET_FAILING_FOR).then(|| {
            format!(
                "the broker does not answer: {failed} of the fleet's records were not \
                 delivered, none in the last {} s (librdkafka gave up on them after \
                 message.timeout.ms); the processor is waiting for it",
                failing.as_secs()
            )
        })
    }
}

/// Whether the processor keeps up with the fleet, in words: behind by more than two seconds
/// of traffic is said plainly, with what to do.
fn behind(sent: u64, now: &handoff::pipeline::stats::Snapshot, rate: u64) -> String {
    let done = now.decided() + now.dead_letters;
    let gap = sent.saturating_sub(done);
    let seconds = gap as f64 / rate.max(1) as f64;
    if seconds > 2.0 {
        format!(
            "BEHIND: the processor is {gap} events ({seconds:.0} s of traffic) behind the fleet — \
             this machine does not keep up with --rate {rate}; try a lower --rate"
        )
    } else {
        format!("keeping up: {gap} events in flight of {sent} generated")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn the_fleet_is_failing_from_its_first_failure_until_a_record_is_delivered() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut w = FleetWatch::default();
        assert_eq!(w.failing(0, 100, at(0)), None, "all delivered");
        assert_eq!(
            w.failing(3, 100, at(1)),
            Some(Duration::ZERO),
            "first failures"
        );
        assert_eq!(w.failing(9, 100, at(4)), Some(Duration::from_secs(3)));
        assert_eq!(
            w.failing(9, 101, at(5)),
            None,
            "one delivered: answering again"
        );
        assert_eq!(
            w.failing(9, 150, at(6)),
            None,
            "old failures are not new ones"
        );
        assert_eq!(w.failing(10, 150, at(7)), Some(Duration::ZERO));
        assert_eq!(w.failing(10, 150, at(13)), Some(Duration::from_secs(6)));
    }
}
