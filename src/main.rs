//! The `handoff` binary: parse the command line, run the subcommand (one module each in
//! `commands/`), map how it ended to the exit code — here, and nowhere else.
//!
//! Exit codes (the same in `handoff --help` and the README):
//!   0  success
//!   1  a check or test failed: an invalid matrix (check), bad input lines (eval), failed rule
//!      cases (test-rules), a hard_stop decision relaxed (diff without --allow-relax), a
//!      broken audit pack (audit verify), a receipt that does not match (receipt verify)
//!   2  bad usage, configuration or matrix: a bad argument or value, an unreadable or invalid
//!      matrix, scenario, rule-test or events file, an invalid --config file or HANDOFF_
//!      variable, a metrics address that cannot be bound (run)
//!   3  runtime failure: Kafka unreachable, delivery failed for good, drain timeout, I/O errors
//!
//! Clap exits 2 on a command line it cannot parse, before any of this runs.

mod commands;

use clap::Parser;
use commands::{CommandRuntime, Failure, Outcome};
use handoff::cli::{Cli, Command};
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = dispatch(cli.command);
    // Every client is dropped by now (or left closing, when the brokers are away); librdkafka's
    // threads may still be ending. A short wait: a stop's deadline is already spent.
    if !handoff::kafka::wait_destroyed(std::time::Duration::from_secs(1)) {
        eprintln!("warning: Kafka clients still closing at exit");
    }
    exit_code(result)
}

/// Runs one subcommand. The commands that stop cleanly on SIGTERM/SIGINT get their runtime,
/// with the signal handler installed, before they do anything else.
fn dispatch(command: Command) -> commands::Result {
    use commands::{
        audit, canary, check, demo, diff, eval, gameday, gateway, generate, inbox, keygen, receipt,
        replay, respond, run, suggest, tail, test_rules,
    };
    match command {
        Command::Check(args) => check::run(args),
        Command::Eval(args) => eval::run(args),
        Command::TestRules(args) => test_rules::run(args),
        Command::Run(args) => run::run(args, CommandRuntime::now()?),
        Command::Demo(args) => demo::run(args, CommandRuntime::now()?),
        Command::Replay(args) => replay::run(args),
        Command::Gameday(args) => gameday::run(args),
        Command::Diff(args) => diff::run(args),
        Command::Respond(args) => respond::run(args, CommandRuntime::now()?),
        Command::Inbox(args) => inbox::run(args, CommandRuntime::now()?),
        Command::Gateway(args) => gateway::run(args, CommandRuntime::now()?),
        Command::Token(args) => inbox::token(args.agent),
        Command::Keygen(args) => keygen::run(&args.id, &args.out),
        Command::Audit(args) => audit::run(args),
        Command::Receipt(args) => receipt::run(args),
        Command::Canary(args) => canary::run(args, CommandRuntime::now()?),
        Command::Suggest(args) => suggest::run(args),
        Command::Tail(args) => tail::run(args, CommandRuntime::now()?),
        Command::Generate(args) => {
            let started = args.topic.is_some().then(CommandRuntime::now).transpose()?;
            generate::run(args, started)
        }
    }
}

/// The exit code of every outcome; errors are printed here.
fn exit_code(result: commands::Result) -> ExitCode {
    match result {
        Ok(Outcome::Success) => ExitCode::SUCCESS,
        Ok(Outcome::ChecksFailed) => ExitCode::from(1),
        Err(Failure::Usage(e)) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
        Err(Failure::Runtime(e)) => {
            eprintln!("error: {e:#}");
            ExitCode::from(3)
        }
    }
}
