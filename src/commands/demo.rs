//! `handoff demo`: a local broker (or a running cluster), the synthetic fleet, the processor and
//! simulated people, with a live summary every two seconds.

use super::{init_tracing, load_matrix, load_settings, Outcome, Result, Started};
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
pub fn run(args: DemoArgs, started: Started) -> Result {
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
    let duration = args.duration.map(Into::into);
    started
        .rt()
        .block_on(live(settings, matrix, args.rate, duration, &started))
}

fn local_broker(port: u16) -> Result<LocalBroker> {
    handoff::sim::broker::install()?;
    eprintln!("starting the local broker (tansu) on 127.0.0.1:{port}…");
    Ok(LocalBroker::start(port, Storage::Memory)?)
}

/// The demo proper: the processor, then the fleet and the people once it runs, the summary
/// until the stop, then everything drained.
async fn live(
    settings: Settings,
    matrix: Arc<Matrix>,
    rate: u64,
    duration: Option<Duration>,
    started: &Started,
) -> Result {
    let (stop_tx, stop_rx) = watch::channel(false);
    let signal = started.stopped();
    tokio::spawn(async move {
        match duration {
            Some(d) => tokio::select! { _ = signal => {}, _ = tokio::time::sleep(d) => {} },
            None => signal.await,
        }
        let _ = stop_tx.send(true);
    });
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    let (stats_tx, stats_rx) = tokio::sync::oneshot::channel();
    let pipeline = {
        let (settings, matrix, stop) = (settings.clone(), matrix.clone(), stopped());
        tokio::spawn(async move {
            let rules = handoff::matrix::Rules::new(matrix);
            handoff::pipeline::run(&settings, rules, stop, move |s| {
                let _ = stats_tx.send(s.stats);
            })
            .await
        })
    };
    let stats = tokio::select! {
        stats = stats_rx => match stats {
            Ok(stats) => stats,
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
    let generator = tokio::spawn(generate(settings.clone(), rate, stopped()));
    let inbox = tokio::spawn(inbox(settings.clone(), matrix.clone(), stopped()));
    let (responders_stop, responders) = respond(settings, &matrix);
    eprintln!(
        "demo running: {rate} events/s from the synthetic fleet, simulated people answering \
         the escalations; Ctrl-C stops\n"
    );
    summaries(stats, stopped()).await;
    responders_stop.store(true, Ordering::Release);
    let sent = generator.await??;
    if let Ok(Err(e)) = responders.join() {
        eprintln!("simulated responders stopped with an error: {e}");
    }
    let _ = inbox.await;
    let report = pipeline.await??;
    println!(
        "stopped: {sent} events generated\n{}",
        report.stats.render(0.0)
    );
    Ok(Outcome::Success)
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

/// The synthetic fleet at `rate` events/s into the input topic, until `stop`.
async fn generate(
    settings: Settings,
    rate: u64,
    stop: impl Future<Output = ()>,
) -> std::result::Result<u64, handoff::sim::SimError> {
    let mut fleet = Fleet::new(FleetConfig {
        malformed_share: 0.002,
        seed: 1,
        ..Default::default()
    });
    let topic = settings.topics.input.clone();
    let counts = Default::default();
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

/// Prints the live summary every two seconds until `stop`.
async fn summaries(stats: StatsHandle, stop: impl Future<Output = ()>) {
    let mut last = stats.snapshot();
    let mut tick = tokio::time::interval(Duration::from_secs(2));
    tick.tick().await;
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let now = stats.snapshot();
                let rate = (now.consumed - last.consumed) as f64 / 2.0;
                println!("{}\n", now.render(rate));
                last = now;
            }
            () = &mut stop => break,
        }
    }
}
