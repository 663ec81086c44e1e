//! The `handoff` binary: parse the command line, run, map the outcome to an exit code.
//! Exit codes: 0 success; 1 the run found problems (bad input lines, failed rule cases, an
//! invalid matrix); 2 usage errors (from clap).

use anyhow::Context;
use clap::Parser;
use handoff::cli::{Cli, Command};
use handoff::config::{LogFormat, Settings};
use handoff::event::{Codec, EventLimits};
use handoff::matrix::Matrix;
use handoff::sim::fleet::{Fleet, FleetConfig};
use std::io::{self, BufRead, BufReader, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Check { matrix } => match Matrix::load(matrix.as_deref()) {
            Ok(m) => {
                print!("{}", handoff::cli::check_report(&m));
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => {
                eprintln!("{e}");
                Ok(ExitCode::FAILURE)
            }
        },
        Command::Eval {
            matrix,
            events,
            summary,
        } => {
            let m = Matrix::load(matrix.as_deref())?;
            let codec = Codec::new(EventLimits::default())?;
            let input: Box<dyn BufRead> = match &events {
                Some(p) => Box::new(BufReader::new(
                    std::fs::File::open(p)
                        .with_context(|| format!("cannot open events file {}", p.display()))?,
                )),
                None => Box::new(io::stdin().lock()),
            };
            let out = io::BufWriter::new(io::stdout().lock());
            let s = handoff::offline::eval_lines(&m, &codec, input, out, io::stderr())?;
            if summary {
                let names = handoff::event::Level::ALL.map(|l| l.as_str());
                let per_level: Vec<String> = names
                    .iter()
                    .zip(s.by_level)
                    .map(|(n, c)| format!("{n} {c}"))
                    .collect();
                eprintln!(
                    "{} events ({}), {} escalations, escalation rate {:.1}%, {} bad lines; rules {}",
                    s.events,
                    per_level.join(", "),
                    s.escalations,
                    s.escalation_rate() * 100.0,
                    s.errors,
                    m.version()
                );
            }
            Ok(if s.errors > 0 {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            })
        }
        Command::TestRules { file, matrix } => {
            let codec = Codec::new(EventLimits::default())?;
            let report = handoff::offline::run_rule_tests(&file, matrix.as_deref(), &codec)?;
            report.write(io::stdout().lock())?;
            Ok(if report.failed() > 0 {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            })
        }
        Command::Run { config, drill } => run_stream(config.as_deref(), drill),
        Command::Demo {
            port,
            rate,
            duration,
            bootstrap,
        } => demo(port, rate, duration.map(Into::into), bootstrap),
        Command::Replay {
            from,
            to,
            from_ms,
            to_ms,
            speed,
            checkpoint,
            bootstrap,
        } => {
            init_tracing(LogFormat::Text, "warn");
            let mut settings = Settings::default();
            settings.kafka.bootstrap_servers = bootstrap;
            let to = to.unwrap_or_else(|| format!("{}{from}", handoff::config::DRILL_PREFIX));
            let opts = handoff::replay::copy::ReplayOptions {
                from,
                to,
                range: handoff::replay::source::Range { from_ms, to_ms },
                speed,
                checkpoint,
            };
            let bar = indicatif::ProgressBar::new(0).with_style(
                indicatif::ProgressStyle::with_template(
                    "{bar:40} {pos}/{len} records  {per_sec}  ETA {eta}",
                )
                .expect("a valid template"),
            );
            let report = handoff::replay::copy::replay(&settings, &opts, |done, total| {
                bar.set_length(total);
                bar.set_position(done);
            });
            bar.finish();
            let report = report?;
            eprintln!(
                "{} record(s) copied {} → {} in {:.1?} ({} s of recorded traffic){}",
                report.copied,
                opts.from,
                opts.to,
                report.elapsed,
                report.recorded_span_ms / 1000,
                if report.resumed { ", resumed" } else { "" }
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Gameday {
            scenario,
            out,
            bootstrap,
            start_ms,
            wall_clock,
            grace,
        } => {
            init_tracing(LogFormat::Text, "warn");
            let sc = handoff::replay::gameday::Scenario::load(&scenario)?;
            let matrix = match &sc.matrix {
                Some(m) => Matrix::from_file(
                    &scenario
                        .parent()
                        .unwrap_or(std::path::Path::new("."))
                        .join(m),
                )?,
                None => Matrix::default_matrix()?,
            };
            let matrix = Arc::new(matrix);
            let producer = match &bootstrap {
                Some(bs) => {
                    let mut settings = Settings::default().drill();
                    settings.kafka.bootstrap_servers = bs.clone();
                    let p = handoff::pipeline::process::Processor::new(&settings, matrix.clone())?;
                    let mut topics = vec![
                        settings.topics.input.clone(),
                        settings.topics.decisions.clone(),
                    ];
                    topics.extend(
                        handoff::pipeline::process::Stage::topics(&p)
                            .iter()
                            .cloned(),
                    );
                    handoff::kafka::admin::ensure_topics_blocking(&settings, &topics)?;
                    // On the wall clock the live deployment writes the drill topics itself.
                    if wall_clock {
                        None
                    } else {
                        Some(
                            rdkafka::config::ClientConfig::new()
                                .set("bootstrap.servers", bs)
                                .set("linger.ms", "5")
                                .create::<rdkafka::producer::BaseProducer>()?,
                        )
                    }
                }
                None => None,
            };
            let mut recorded = Vec::new();
            if let Some(topic) = &sc.recorded_topic {
                let Some(bs) = &bootstrap else {
                    anyhow::bail!("the scenario replays topic {topic:?}: give --bootstrap");
                };
                let mut settings = Settings::default();
                settings.kafka.bootstrap_servers = bs.clone();
                let codec = Codec::new(Default::default())?;
                for r in handoff::replay::source::read(
                    &settings,
                    topic,
                    Default::default(),
                    &Default::default(),
                )? {
                    if let Some(Ok(e)) = r.payload.as_deref().map(|p| codec.decode_action(p)) {
                        recorded.push(e);
                    }
                }
                eprintln!("{} recorded event(s) from {topic}", recorded.len());
            }
            if wall_clock {
                let mut settings = Settings::default().drill();
                settings.kafka.bootstrap_servers = bootstrap.clone().expect("required by clap");
                let bar = indicatif::ProgressBar::new(0).with_style(
                    indicatif::ProgressStyle::with_template(
                        "{bar:40} {pos}/{len} events  {per_sec}  ETA {eta}",
                    )
                    .expect("a valid template"),
                );
                let report = handoff::replay::gameday::live(
                    &sc,
                    matrix,
                    &settings,
                    recorded,
                    grace.into(),
                    |done, total| {
                        bar.set_length(total as u64);
                        bar.set_position(done as u64);
                    },
                );
                bar.finish();
                let report = report?;
                report.write(&out)?;
                print!("{}", report.markdown());
                return Ok(ExitCode::SUCCESS);
            }
            let mut failed: Option<String> = None;
            let report =
                handoff::replay::gameday::run(&sc, matrix, start_ms, recorded, |topic, o| {
                    let Some(p) = &producer else { return };
                    let mut hs = rdkafka::message::OwnedHeaders::new();
                    for (k, v) in &o.headers {
                        hs = hs.insert(rdkafka::message::Header {
                            key: k,
                            value: Some(v),
                        });
                    }
                    let mut r = rdkafka::producer::BaseRecord::<[u8], [u8]>::to(topic).headers(hs);
                    if let Some(k) = &o.key {
                        r = r.key(&k[..]);
                    }
                    if !o.payload.is_empty() {
                        r = r.payload(&o.payload[..]);
                    }
                    if let Some(part) = o.partition {
                        r = r.partition(part);
                    }
                    if let Err(e) = handoff::replay::send_waiting(p, r) {
                        failed.get_or_insert(e.to_string());
                    }
                })?;
            if let Some(p) = &producer {
                rdkafka::producer::Producer::flush(p, Duration::from_secs(60))?;
            }
            if let Some(e) = failed {
                anyhow::bail!("writing the drill to Kafka: {e}");
            }
            report.write(&out)?;
            print!("{}", report.markdown());
            eprintln!(
                "report written to {0}/report.md, {0}/report.json and {0}/timeline.png",
                out.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Diff {
            old,
            new,
            events,
            topic,
            bootstrap,
            from_ms,
            to_ms,
            examples,
            json,
            allow_relax,
        } => {
            let old = Matrix::from_file(&old)?;
            let new = Matrix::from_file(&new)?;
            let codec = Codec::new(Default::default())?;
            let mut actions = Vec::new();
            let mut bad = 0usize;
            match (events, topic) {
                (Some(path), _) => {
                    let text = std::fs::read_to_string(&path)
                        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
                    for (i, line) in text.lines().enumerate() {
                        if line.trim().is_empty() {
                            continue;
                        }
                        match codec.decode_action_json(line) {
                            Ok(e) => actions.push(e),
                            Err(e) => {
                                bad += 1;
                                eprintln!("{}:{}: {e}", path.display(), i + 1);
                            }
                        }
                    }
                }
                (None, Some(topic)) => {
                    init_tracing(LogFormat::Text, "warn");
                    let mut settings = Settings::default();
                    settings.kafka.bootstrap_servers = bootstrap;
                    let range = handoff::replay::source::Range { from_ms, to_ms };
                    for r in handoff::replay::source::read(
                        &settings,
                        &topic,
                        range,
                        &Default::default(),
                    )? {
                        match r.payload.as_deref().map(|p| codec.decode_action(p)) {
                            Some(Ok(e)) => actions.push(e),
                            _ => bad += 1,
                        }
                    }
                }
                (None, None) => anyhow::bail!("give --events FILE or --topic TOPIC"),
            }
            let report = handoff::replay::diff::diff(&old, &new, &actions);
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", report.markdown(examples));
                if bad > 0 {
                    println!("\n{bad} record(s) could not be read and were left out.");
                }
            }
            if !report.relaxed_hard_stops.is_empty() && !allow_relax {
                eprintln!(
                    "{} hard_stop decision(s) would be relaxed; pass --allow-relax to accept",
                    report.relaxed_hard_stops.len()
                );
                return Ok(ExitCode::FAILURE);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Respond {
            bootstrap,
            matrix,
            delay,
            jitter,
            no_show,
            mix,
            seed,
        } => {
            anyhow::ensure!(
                (0.0..=1.0).contains(&no_show),
                "--no-show {no_show}: must be between 0 and 1"
            );
            let mix =
                handoff::sim::people::parse_mix(&mix).map_err(|e| anyhow::anyhow!("--mix {e}"))?;
            let m = Matrix::load(matrix.as_deref())?;
            init_tracing(LogFormat::Text, "warn");
            let mut settings = Settings::default();
            settings.kafka.bootstrap_servers = bootstrap;
            let cfg = handoff::sim::respond::ResponderConfig {
                delay: delay.into(),
                jitter: jitter.into(),
                no_show,
                mix,
                seed,
            };
            let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
            let counts = Arc::new(Default::default());
            let rt = runtime()?;
            let s2 = stop.clone();
            rt.spawn(async move {
                shutdown_signal().await;
                s2.store(true, std::sync::atomic::Ordering::Release);
            });
            let topics: Vec<String> = m.roles().iter().map(|r| r.topic.clone()).collect();
            let roles: Vec<String> = m.roles().iter().map(|r| r.name.clone()).collect();
            handoff::sim::respond::respond(&settings, &topics, &roles, &cfg, &stop, &counts)?;
            let c: &handoff::sim::respond::ResponderCounts = &counts;
            eprintln!(
                "escalations read {}, answered {}, left unanswered {}",
                c.read.load(std::sync::atomic::Ordering::Relaxed),
                c.answered.load(std::sync::atomic::Ordering::Relaxed),
                c.no_shows.load(std::sync::atomic::Ordering::Relaxed)
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Generate {
            count,
            seed,
            trigger_boost,
            malformed,
            topic,
            rate,
            bootstrap,
        } => {
            anyhow::ensure!(
                (0.0..=1.0).contains(&malformed),
                "--malformed {malformed}: must be between 0 and 1"
            );
            anyhow::ensure!(
                trigger_boost.is_finite() && trigger_boost >= 0.0,
                "--trigger-boost {trigger_boost}: must be zero or more"
            );
            let mut fleet = Fleet::new(FleetConfig {
                seed,
                trigger_boost,
                malformed_share: malformed,
                ..Default::default()
            });
            if let Some(topic) = topic {
                init_tracing(LogFormat::Text, "warn");
                let mut settings = Settings::default();
                settings.kafka.bootstrap_servers = bootstrap;
                let rt = runtime()?;
                let sent = rt.block_on(async {
                    if settings.kafka.create_topics {
                        handoff::kafka::admin::ensure_topics(
                            &settings,
                            std::slice::from_ref(&topic),
                        )
                        .await?;
                    }
                    handoff::sim::produce::produce(
                        &settings,
                        &topic,
                        &mut fleet,
                        Some(count),
                        rate,
                        shutdown_signal(),
                        Default::default(),
                    )
                    .await
                })?;
                eprintln!("{sent} events delivered to {topic}");
                return Ok(ExitCode::SUCCESS);
            }
            let mut out = io::BufWriter::new(io::stdout().lock());
            for _ in 0..count {
                writeln!(out, "{}", fleet.next_record_json())?;
            }
            out.flush()?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

fn init_tracing(format: LogFormat, level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // A span's close is logged with its fields: the pipeline's per-batch span (debug level) then
    // reports each batch's counts and time when the filter lets debug through.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
        .with_writer(io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// Resolves on SIGTERM or SIGINT (Ctrl-C).
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("a SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("stop requested: draining");
}

fn run_stream(config: Option<&std::path::Path>, drill: bool) -> anyhow::Result<ExitCode> {
    let settings = match Settings::load(config) {
        Ok(s) if drill => s.drill(),
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return Ok(ExitCode::from(2));
        }
    };
    init_tracing(settings.log.format, &settings.log.level);
    let matrix = match Matrix::load(settings.matrix.path.as_deref()) {
        Ok(m) => Arc::new(m),
        Err(e) => {
            eprintln!("{e}");
            return Ok(ExitCode::from(2));
        }
    };
    tracing::info!(settings = %settings.redacted(), "starting");
    let rt = runtime()?;
    let metrics_bind = settings.metrics.enabled.then(|| {
        settings
            .metrics
            .bind
            .parse::<std::net::SocketAddr>()
            .expect("validated")
    });
    let report = rt.block_on(handoff::pipeline::run(
        &settings,
        matrix,
        shutdown_signal(),
        move |stats| {
            if let Some(bind) = metrics_bind {
                let metrics = stats.metrics.clone();
                tokio::spawn(async move {
                    if let Err(e) = handoff::metrics::serve(bind, metrics).await {
                        tracing::error!(%bind, error = %e, "cannot serve metrics");
                    }
                });
            }
        },
    ))?;
    let s = report.stats;
    tracing::info!(
        consumed = s.consumed,
        decided = s.decided(),
        dead_letters = s.dead_letters,
        "drained and committed"
    );
    Ok(ExitCode::SUCCESS)
}

fn demo(
    port: u16,
    rate: u64,
    duration: Option<Duration>,
    bootstrap: Option<String>,
) -> anyhow::Result<ExitCode> {
    init_tracing(LogFormat::Text, "warn");
    let _broker = match &bootstrap {
        Some(_) => None,
        None => {
            handoff::sim::broker::install()?;
            eprintln!("starting the local broker (tansu) on 127.0.0.1:{port}…");
            Some(handoff::sim::broker::LocalBroker::start(
                port,
                handoff::sim::broker::Storage::Memory,
            )?)
        }
    };
    let mut settings = Settings::default();
    settings.kafka.bootstrap_servers = bootstrap.unwrap_or_else(|| format!("127.0.0.1:{port}"));
    settings.kafka.group_id = "handoff-demo".into();
    let matrix = Arc::new(Matrix::default_matrix()?);
    let rt = runtime()?;
    rt.block_on(async move {
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        // Stop on Ctrl-C/SIGTERM or after --duration.
        let tx = stop_tx.clone();
        tokio::spawn(async move {
            match duration {
                Some(d) => {
                    tokio::select! { _ = shutdown_signal() => {}, _ = tokio::time::sleep(d) => {} }
                }
                None => shutdown_signal().await,
            }
            let _ = tx.send(true);
        });
        let (stats_tx, stats_rx) = tokio::sync::oneshot::channel();
        let pipeline = {
            let settings = settings.clone();
            let rx = stop_rx.clone();
            tokio::spawn(async move {
                handoff::pipeline::run(&settings, matrix, stopped(rx), move |s| {
                    let _ = stats_tx.send(s);
                })
                .await
            })
        };
        let stats = match stats_rx.await {
            Ok(s) => s,
            Err(_) => {
                return pipeline
                    .await?
                    .map(|_| ExitCode::FAILURE)
                    .map_err(Into::into)
            }
        };
        let generator = {
            let settings = settings.clone();
            let rx = stop_rx.clone();
            tokio::spawn(async move {
                let mut fleet = Fleet::new(FleetConfig {
                    malformed_share: 0.002,
                    seed: 1,
                    ..Default::default()
                });
                handoff::sim::produce::produce(
                    &settings,
                    "agent.actions",
                    &mut fleet,
                    None,
                    rate,
                    stopped(rx),
                    Default::default(),
                )
                .await
            })
        };
        // Simulated people answer the escalations, so the human loop runs too.
        let responders_stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let responders = {
            let settings = settings.clone();
            let stop = responders_stop.clone();
            let m = Matrix::default_matrix()?;
            std::thread::spawn(move || {
                let topics: Vec<String> = m.roles().iter().map(|r| r.topic.clone()).collect();
                let roles: Vec<String> = m.roles().iter().map(|r| r.name.clone()).collect();
                handoff::sim::respond::respond(
                    &settings,
                    &topics,
                    &roles,
                    &Default::default(),
                    &stop,
                    &Arc::new(Default::default()),
                )
            })
        };
        eprintln!(
            "demo running: {rate} events/s from the synthetic fleet, simulated people answering \
             the escalations; Ctrl-C stops\n"
        );
        let mut last = stats.snapshot();
        let mut tick = tokio::time::interval(Duration::from_secs(2));
        tick.tick().await;
        let mut rx = stop_rx.clone();
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    let now = stats.snapshot();
                    let rate = (now.consumed - last.consumed) as f64 / 2.0;
                    println!("{}\n", now.render(rate));
                    last = now;
                }
                _ = rx.wait_for(|s| *s) => break,
            }
        }
        responders_stop.store(true, std::sync::atomic::Ordering::Release);
        let sent = generator.await??;
        if let Ok(Err(e)) = responders.join() {
            eprintln!("simulated responders stopped with an error: {e}");
        }
        let report = pipeline.await??;
        println!(
            "stopped: {sent} events generated\n{}",
            report.stats.render(0.0)
        );
        Ok(ExitCode::SUCCESS)
    })
}
