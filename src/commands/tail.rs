//! `handoff tail`: the records of a topic, decoded, as JSON lines on standard output.

use super::{ensure_range, load_matrix, load_settings, CommandRuntime, Failure, Outcome, Result};
use handoff::cli::TailArgs;
use handoff::kafka::range::{self as source, Range};
use handoff::tail::{names, Decoder, Kind};
use rdkafka::message::BorrowedMessage;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// A topic handoff does not know is bad usage (the known ones are listed); a missing one, or a
/// cluster that does not answer, a runtime failure.
pub fn run(args: TailArgs, started: CommandRuntime) -> Result {
    ensure_range(args.range.from, args.range.to)?;
    let settings = load_settings(&args.kafka)?;
    let matrix = load_matrix(settings.matrix.path.as_deref())?;
    let Some(kind) = Kind::of(&args.topic, &settings, &matrix) else {
        let known = Kind::known(&settings, &matrix).join(", ");
        return Err(Failure::usage(anyhow::anyhow!(
            "handoff neither reads nor writes topic {:?} under these settings; it knows {known} \
             (and their drill. twins)",
            args.topic
        )));
    };
    handoff::kafka::admin::wait_reachable(&settings)?;
    let stop = Arc::new(AtomicBool::new(false));
    let (flag, stopped) = (stop.clone(), started.stopped());
    started.rt().spawn(async move {
        stopped.await;
        flag.store(true, Ordering::Release);
    });
    let decoder = Decoder::new(kind, &settings);
    let mut shown = 0u64;
    let out = std::io::stdout();
    let mut out = out.lock();
    let mut show = |m: &BorrowedMessage<'_>, ts: i64| {
        if stop.load(Ordering::Acquire) {
            return;
        }
        let line = decoder.line(&args.topic, &source::recorded(m, ts));
        let wanted = args
            .action
            .as_deref()
            .is_none_or(|id| names(&line, "action_id", id))
            && args
                .session
                .as_deref()
                .is_none_or(|id| names(&line, "session_id", id));
        if !wanted {
            return;
        }
        shown += 1;
        let full = args.limit.is_some_and(|n| shown >= n);
        // A closed pipe (`| head`) ends the command quietly.
        if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() || full {
            stop.store(true, Ordering::Release);
        }
    };
    let read = if args.follow {
        source::follow(&settings, &args.topic, args.range.from, &stop, &mut show)
    } else {
        let range = Range {
            from_ms: args.range.from,
            to_ms: args.range.to,
        };
        let resume = Default::default();
        source::scan_until(&settings, &args.topic, range, &resume, &stop, &mut show)
    };
    read?;
    Ok(Outcome::Success)
}
