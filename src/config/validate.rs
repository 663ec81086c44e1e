//! Checks of [`Settings`] without I/O, one function per section; every problem is listed,
//! in section order.

use super::{
    InputFormat, InputSettings, KafkaSettings, LogSettings, MatrixSettings, MetricsSettings,
    PipelineSettings, Settings, TopicSettings,
};
use crate::problems::Problems;
use std::time::Duration;

impl Settings {
    /// Checks values without I/O.
    pub fn validate(&self, problems: &mut Problems) {
        kafka(&self.kafka, problems);
        topics(&self.topics, problems);
        input(&self.input, problems);
        pipeline(&self.pipeline, problems);
        metrics(&self.metrics, problems);
        if self.metrics.stuck_after <= self.pipeline.shutdown_deadline {
            problems.push(
                "metrics.stuck_after",
                format!(
                    "{} must be longer than pipeline.shutdown_deadline ({}): a drain may hold \
                     records that long",
                    humantime::format_duration(self.metrics.stuck_after),
                    humantime::format_duration(self.pipeline.shutdown_deadline)
                ),
            );
        }
        matrix(&self.matrix, problems);
        log(&self.log, problems);
        self.inbox.validate(problems);
        self.notify.validate(problems);
        self.canary.validate(problems);
        self.gateway.validate(problems);
        self.trust.validate(problems);
    }
}

fn matrix(m: &MatrixSettings, problems: &mut Problems) {
    let Some(every) = m.watch else { return };
    if m.path.is_none() {
        problems.push(
            "matrix.watch",
            "needs matrix.path: the built-in default matrix does not change",
        );
    }
    if every < Duration::from_millis(100) {
        problems.push(
            "matrix.watch",
            format!(
                "{} is too often; use 100ms or more",
                humantime::format_duration(every)
            ),
        );
    }
}

fn kafka(k: &KafkaSettings, problems: &mut Problems) {
    if k.bootstrap_servers.split(',').any(|h| {
        let h = h.trim();
        h.is_empty() || !h.contains(':')
    }) {
        problems.push(
            "kafka.bootstrap_servers",
            format!(
                "{:?} must be a comma-separated list of host:port",
                k.bootstrap_servers
            ),
        );
    }
    if k.group_id.trim().is_empty() {
        problems.push("kafka.group_id", "must not be empty");
    }
    if k.partitions < 1 {
        problems.push(
            "kafka.partitions",
            format!("{} must be 1 or more", k.partitions),
        );
    }
    if k.replication_factor < 1 {
        problems.push(
            "kafka.replication_factor",
            format!("{} must be 1 or more", k.replication_factor),
        );
    }
    if k.session_timeout < Duration::from_secs(1) {
        problems.push(
            "kafka.session_timeout",
            format!(
                "{} is too short; at least 1s",
                humantime::format_duration(k.session_timeout)
            ),
        );
    }
    super::kafka::validate(k, problems);
}

fn topics(t: &TopicSettings, problems: &mut Problems) {
    for (field, name) in [
        ("input", &t.input),
        ("verdicts", &t.verdicts),
        ("dead_letter", &t.dead_letter),
        ("decisions", &t.decisions),
        ("changelog", &t.changelog),
        ("review", &t.review),
        ("audit", &t.audit),
        ("notifications", &t.notifications),
        ("canaries", &t.canaries),
        ("receipts_used", &t.receipts_used),
    ] {
        if !crate::matrix::is_topic_name(name) {
            problems.push(
                format!("topics.{field}"),
                format!("{name:?} is not a valid Kafka topic name"),
            );
        }
    }
    for (field, name) in [("input", &t.input), ("decisions", &t.decisions)] {
        if [
            &t.verdicts,
            &t.dead_letter,
            &t.changelog,
            &t.review,
            &t.audit,
            &t.notifications,
            &t.canaries,
            &t.receipts_used,
        ]
        .contains(&name)
        {
            problems.push(
                format!("topics.{field}"),
                format!("{name:?} is also an output topic"),
            );
        }
    }
    let outputs = [
        ("verdicts", &t.verdicts),
        ("dead_letter", &t.dead_letter),
        ("changelog", &t.changelog),
        ("review", &t.review),
        ("audit", &t.audit),
        ("notifications", &t.notifications),
        ("canaries", &t.canaries),
        ("receipts_used", &t.receipts_used),
    ];
    for (i, (field, name)) in outputs.iter().enumerate() {
        if let Some((other, _)) = outputs[..i].iter().find(|(_, n)| n == name) {
            problems.push(
                format!("topics.{field}"),
                format!("{name:?} is also topics.{other}: each output needs its own topic"),
            );
        }
    }
    if t.input == t.decisions {
        problems.push(
            "topics.decisions",
            format!("{:?} is also the input topic", t.decisions),
        );
    }
}

fn input(i: &InputSettings, problems: &mut Problems) {
    if i.format == InputFormat::Confluent && i.schema_ids.is_empty() && i.schema_registry.is_none()
    {
        problems.push(
            "input.schema_ids",
            "format confluent needs the schema ids written with the AgentAction schema",
        );
    }
    super::registry::validate(i, problems);
    let most = crate::event::MAX_RECORD_BYTES_LIMIT;
    if i.max_record_bytes > most {
        problems.push(
            "input.max_record_bytes",
            format!(
                "{} is larger than the most handoff reads, {most} (4 MiB)",
                i.max_record_bytes
            ),
        );
    }
    if i.max_record_bytes < 1024 {
        problems.push(
            "input.max_record_bytes",
            format!("{} is too small; at least 1024", i.max_record_bytes),
        );
    }
}

fn pipeline(p: &PipelineSettings, problems: &mut Problems) {
    if p.timer_tick < Duration::from_millis(10) || p.timer_tick > Duration::from_secs(60) {
        problems.push(
            "pipeline.timer_tick",
            format!(
                "{} is out of range; between 10ms and 60s",
                humantime::format_duration(p.timer_tick)
            ),
        );
    }
    if p.state_retention < Duration::from_secs(60) {
        problems.push(
            "pipeline.state_retention",
            format!(
                "{} is too short; at least 1m (a late answer must still find its escalation)",
                humantime::format_duration(p.state_retention)
            ),
        );
    }
    if p.max_in_flight == 0 {
        problems.push("pipeline.max_in_flight", "0 would never process anything");
    }
    if !(1..=64).contains(&p.workers) {
        problems.push(
            "pipeline.workers",
            format!("{} must be between 1 and 64", p.workers),
        );
    }
    for (field, d) in [
        ("offset_store_interval", p.offset_store_interval),
        ("shutdown_deadline", p.shutdown_deadline),
        ("connect_timeout", p.connect_timeout),
    ] {
        if d.is_zero() {
            problems.push(format!("pipeline.{field}"), "must be longer than 0s");
        }
    }
}

fn metrics(m: &MetricsSettings, problems: &mut Problems) {
    if m.bind.parse::<std::net::SocketAddr>().is_err() {
        problems.push(
            "metrics.bind",
            format!("{:?} is not an address such as 127.0.0.1:9464", m.bind),
        );
    }
    if m.max_connections == 0 {
        problems.push("metrics.max_connections", "0: at least one is needed");
    }
    match &m.reload_token {
        None if m.enable_reload => problems.push(
            "metrics.reload_token",
            "missing: enable_reload = true needs a token (e.g. file:/run/secrets/reload-token), \
             or anyone reaching the port could reload the rules",
        ),
        Some(t) => {
            if let Some(why) = super::secret::Source::of(t).check() {
                problems.push("metrics.reload_token", why);
            }
        }
        None => {}
    }
}

fn log(l: &LogSettings, problems: &mut Problems) {
    if let Err(e) = tracing_subscriber::EnvFilter::try_new(&l.level) {
        problems.push(
            "log.level",
            format!("{:?} is not a valid filter: {e}", l.level),
        );
    }
}
