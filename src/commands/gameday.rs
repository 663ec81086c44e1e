//! `handoff gameday`: a crisis drill from a scenario file, on a virtual clock (outputs written
//! to the drill topics when a cluster is given) or on the wall clock against a live deployment.

use super::{init_tracing, load_settings, progress_bar, Failure, Outcome, Result};
use handoff::cli::GamedayArgs;
use handoff::config::{LogFormat, Settings};
use handoff::event::{AgentAction, Codec};
use handoff::kafka::record::{send_polling, to_record};
use handoff::matrix::Matrix;
use handoff::replay::gameday::{GamedayReport, Scenario};
use rdkafka::producer::{BaseProducer, Producer};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// A scenario or matrix that cannot be used is bad usage; Kafka failing is a runtime failure.
pub fn run(args: GamedayArgs) -> Result {
    init_tracing(LogFormat::Text, "warn");
    let sc = Scenario::load(&args.scenario).map_err(Failure::usage)?;
    let matrix = Arc::new(scenario_matrix(&args.scenario, &sc)?);
    let loaded = match args.kafka.given() {
        true => Some(load_settings(&args.kafka)?),
        false => None,
    };
    let producer = match &loaded {
        Some(s) => prepare_drill_topics(s, &matrix, args.wall_clock)?,
        None => None,
    };
    let recorded = recorded(&sc, loaded.as_ref())?;
    let report = match &loaded {
        Some(s) if args.wall_clock => {
            wall_clock(&sc, matrix, &s.drill(), recorded, args.grace.into())?
        }
        _ => virtual_clock(&sc, matrix, args.start_ms, recorded, producer.as_ref())?,
    };
    report.write(&args.out)?;
    print!("{}", report.markdown());
    if !args.wall_clock {
        eprintln!(
            "report written to {0}/report.md, {0}/report.json and {0}/timeline.png",
            args.out.display()
        );
    }
    Ok(Outcome::Success)
}

/// The scenario's own matrix (relative to the scenario file), or the shipped one.
fn scenario_matrix(path: &Path, sc: &Scenario) -> Result<Matrix> {
    match &sc.matrix {
        Some(m) => Matrix::from_file(&handoff::problems::beside(path, Path::new(m))),
        None => Matrix::default_matrix(),
    }
    .map_err(Failure::usage)
}

/// Creates the drill topics on the cluster of `loaded`; the producer of the drill's outputs,
/// except on the wall clock, where the live deployment writes them itself.
fn prepare_drill_topics(
    loaded: &Settings,
    matrix: &Arc<Matrix>,
    wall_clock: bool,
) -> Result<Option<BaseProducer>> {
    use handoff::pipeline::process::{Processor, Stage};
    let settings = loaded.drill();
    let p = Processor::new(&settings, matrix.clone())?;
    let mut topics = vec![
        settings.topics.input.clone(),
        settings.topics.decisions.clone(),
    ];
    topics.extend(Stage::topics(&p).all());
    handoff::kafka::admin::ensure_topics_blocking(&settings, &topics)?;
    if wall_clock {
        return Ok(None);
    }
    let role = handoff::kafka::Role::Producer;
    Ok(Some(handoff::kafka::create(
        &settings.kafka,
        role,
        "drill producer",
    )?))
}

/// The recorded events the scenario replays, from its `recorded_topic` (none without one).
fn recorded(sc: &Scenario, loaded: Option<&Settings>) -> Result<Vec<AgentAction>> {
    let Some(topic) = &sc.recorded_topic else {
        return Ok(Vec::new());
    };
    let Some(settings) = loaded else {
        return Err(Failure::Usage(anyhow::anyhow!(
            "the scenario replays topic {topic:?}: give --bootstrap or --config"
        )));
    };
    let codec = Codec::new(Default::default())?;
    let mut recorded = Vec::new();
    let records =
        handoff::kafka::range::read(settings, topic, Default::default(), &Default::default())?;
    for r in records {
        let decoded = r
            .payload
            .as_deref()
            .map(|p| codec.decode_action_record(&r.headers, p));
        if let Some(Ok(e)) = decoded {
            recorded.push(e);
        }
    }
    eprintln!("{} recorded event(s) from {topic}", recorded.len());
    Ok(recorded)
}

/// The drill against a live `handoff run --drill` on the cluster of `settings` (drill
/// settings), with a progress bar.
fn wall_clock(
    sc: &Scenario,
    matrix: Arc<Matrix>,
    settings: &Settings,
    recorded: Vec<AgentAction>,
    grace: Duration,
) -> Result<GamedayReport> {
    let bar = progress_bar("events");
    let report =
        handoff::replay::gameday::live(sc, matrix, settings, recorded, grace, |done, total| {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
        });
    bar.finish();
    Ok(report?)
}

/// The drill on a virtual clock in this process; every output also goes to its drill topic
/// through `producer` when there is one.
fn virtual_clock(
    sc: &Scenario,
    matrix: Arc<Matrix>,
    start_ms: i64,
    recorded: Vec<AgentAction>,
    producer: Option<&BaseProducer>,
) -> Result<GamedayReport> {
    let mut failed: Option<String> = None;
    let report = handoff::replay::gameday::run(sc, matrix, start_ms, recorded, |topic, o| {
        let Some(p) = producer else { return };
        if let Err(e) = send_polling(p, to_record(topic, o, ())) {
            failed.get_or_insert(e.to_string());
        }
    })?;
    if let Some(p) = producer {
        p.flush(Duration::from_secs(60))?;
    }
    if let Some(e) = failed {
        return Err(anyhow::anyhow!("writing the drill to Kafka: {e}").into());
    }
    Ok(report)
}
