//! `handoff canary send` and `handoff canary report`: synthetic escalations with a known right
//! answer, and how people did on them.

use super::{ensure_usage, load_matrix, load_settings, CommandRuntime, Failure, Outcome, Result};
use handoff::canary::{inject, report};
use handoff::cli::{CanaryArgs, CanaryCommand, CanaryReportArgs, CanarySendArgs};
use handoff::config::Settings;
use handoff::event::Codec;
use handoff::kafka::record::{record, to_future, Parts};
use rand::SeedableRng;
use rdkafka::producer::FutureProducer;
use std::time::Duration;

/// Dispatches to send or report.
pub fn run(args: CanaryArgs, started: CommandRuntime) -> Result {
    match args.command {
        CanaryCommand::Send(a) => send(a, started),
        CanaryCommand::Report(a) => report(a),
    }
}

fn send(args: CanarySendArgs, started: CommandRuntime) -> Result {
    let settings = load_settings(&args.kafka)?;
    ensure_usage(settings.canary.enabled, || {
        "canaries are off: set [canary] enabled = true and add [[canary.cases]]".to_string()
    })?;
    let matrix = load_matrix(settings.matrix.path.as_deref())?;
    let cases = inject::load(&settings.canary, &matrix)
        .map_err(|p| Failure::usage(anyhow::anyhow!("[canary] cannot be used:\n{p}")))?;
    let stop = started.stopped();
    started.rt().block_on(async move {
        let s = settings.clone();
        tokio::task::spawn_blocking(move || handoff::kafka::admin::wait_reachable(&s))
            .await
            .expect("the reachability check does not panic")?;
        let sender = Sender::new(&settings)?;
        match args.count {
            Some(n) => sender.drill(&cases, n).await,
            None => {
                sender
                    .steady(&cases, settings.canary.per_role_per_hour, stop)
                    .await
            }
        }
    })?;
    Ok(Outcome::Success)
}

/// Sends canaries to the input topic, each awaited until delivered.
struct Sender {
    settings: Settings,
    producer: FutureProducer,
    codec: Codec,
    rng: rand_chacha::ChaCha20Rng,
}

impl Sender {
    fn new(settings: &Settings) -> Result<Sender> {
        let producer = handoff::kafka::create(
            &settings.kafka,
            handoff::kafka::Role::Producer,
            "canary producer",
        )?;
        Ok(Sender {
            settings: settings.clone(),
            producer,
            codec: Codec::new(Default::default())?,
            rng: rand_chacha::ChaCha20Rng::from_os_rng(),
        })
    }

    /// `n` canaries per role, at once.
    async fn drill(mut self, cases: &[inject::Case], n: u32) -> Result<()> {
        let mut rotation = inject::Rotation::new(cases);
        let roles: Vec<String> = rotation.roles().map(String::from).collect();
        for (r, role) in roles.iter().enumerate() {
            for _ in 0..n {
                let case = &cases[rotation.next(r)];
                self.one(case).await?;
            }
            println!("sent {n} canaries for {role}");
        }
        Ok(())
    }

    /// About `per_hour` canaries per role at random moments, until `stop`.
    async fn steady(
        mut self,
        cases: &[inject::Case],
        per_hour: f64,
        stop: impl std::future::Future<Output = ()>,
    ) -> Result<()> {
        let mut rotation = inject::Rotation::new(cases);
        let now = handoff::clock::SystemClock::now();
        let roles = rotation.roles().count();
        let mut next: Vec<i64> = (0..roles)
            .map(|_| now + inject::next_gap_ms(per_hour, &mut self.rng))
            .collect();
        tracing::info!(roles, per_hour, "sending canaries");
        tokio::pin!(stop);
        loop {
            let (r, at) = next
                .iter()
                .copied()
                .enumerate()
                .min_by_key(|(_, at)| *at)
                .expect("at least one role");
            let wait = (at - handoff::clock::SystemClock::now()).max(0) as u64;
            tokio::select! {
                _ = &mut stop => return Ok(()),
                _ = tokio::time::sleep(Duration::from_millis(wait)) => {}
            }
            let case = &cases[rotation.next(r)];
            self.one(case).await?;
            next[r] =
                handoff::clock::SystemClock::now() + inject::next_gap_ms(per_hour, &mut self.rng);
        }
    }

    /// Makes and sends one canary of `case`.
    async fn one(&mut self, case: &inject::Case) -> Result<()> {
        let event = inject::make(case, &mut self.rng, handoff::clock::SystemClock::now());
        let rec = inject::record(&self.settings, &self.codec, &event, case.expect)?;
        let topic = &self.settings.topics.input;
        let parts = Parts {
            key: Some(&rec.key),
            payload: Some(&rec.value),
            headers: &rec.headers,
            partition: None,
        };
        let record = to_future(record(topic, parts, ()));
        self.producer
            .send(record, Duration::from_secs(30))
            .await
            .map_err(|(e, _)| anyhow::anyhow!("canary {} to {topic}: {e}", event.action_id))?;
        tracing::info!(action_id = %event.action_id, role = %case.role, "canary sent");
        Ok(())
    }
}

fn report(args: CanaryReportArgs) -> Result {
    super::ensure_range(args.range.from, args.range.to)?;
    let settings = load_settings(&args.kafka)?;
    handoff::kafka::admin::wait_reachable(&settings)?;
    let range = handoff::kafka::range::Range {
        from_ms: args.range.from,
        to_ms: args.range.to,
    };
    let (records, unreadable) = report::read(&settings, range)?;
    let figures = report::figures(&records);
    if args.json {
        let v = serde_json::json!({"roles": figures, "unreadable": unreadable});
        println!(
            "{}",
            serde_json::to_string_pretty(&v).expect("figures serialize")
        );
    } else {
        print!("{}", report::markdown(&figures));
        if unreadable > 0 {
            println!(
                "\n{unreadable} record(s) of {} could not be read",
                settings.topics.canaries
            );
        }
    }
    Ok(Outcome::Success)
}
