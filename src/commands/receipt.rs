//! `handoff receipt verify`: an executor's check of an approval receipt before the tool runs.

use super::{Failure, Outcome, Result};
use handoff::cli::{ReceiptArgs, ReceiptCommand, ReceiptVerifyArgs};
use handoff::trust::receipt::{self, Expected};
use std::io::Read;

pub fn run(args: ReceiptArgs) -> Result {
    match args.command {
        ReceiptCommand::Verify(args) => verify(args),
    }
}

fn verify(args: ReceiptVerifyArgs) -> Result {
    let keys = super::audit::read_jwks(&args.jwks)?;
    let given = match args.receipt.as_deref() {
        None | Some("-") => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(|e| Failure::usage(anyhow::anyhow!("cannot read stdin: {e}")))?;
            text
        }
        Some(text) => text.to_string(),
    };
    let (jws, verdict_action) = receipt_of(given.trim())?;
    let arguments = match args.arguments.as_deref() {
        Some(a) => Some(match a.strip_prefix('@') {
            Some(path) => std::fs::read_to_string(path)
                .map_err(|e| Failure::usage(anyhow::anyhow!("--arguments @{path}: {e}")))?,
            None => a.to_string(),
        }),
        None => None,
    };
    let now_ms = args.at.unwrap_or_else(handoff::clock::SystemClock::now);
    let action = args.action.or(verdict_action);
    let expected = Expected {
        arguments: arguments.as_deref(),
        action_id: action.as_deref(),
        tool_name: args.tool.as_deref(),
        agent_id: args.agent.as_deref(),
        now_s: now_ms.div_euclid(1000),
    };
    match receipt::check(&jws, &keys, &expected) {
        Ok(c) => {
            let who: Vec<String> = c
                .approvers
                .iter()
                .map(|a| format!("{} ({}, {})", a.sub, a.role, a.at))
                .collect();
            println!(
                "valid: {} {} of {} ({}), {} until {}; approved by {}",
                c.outcome,
                c.action_id,
                c.agent_id,
                c.tool_name.as_deref().unwrap_or("no tool call"),
                if arguments.is_some() {
                    "these arguments"
                } else {
                    "arguments not checked (--arguments)"
                },
                c.approval.approved_until,
                if who.is_empty() {
                    "nobody (the rules let it run alone)".to_string()
                } else {
                    who.join(", ")
                }
            );
            Ok(Outcome::Success)
        }
        Err(refused) => {
            for r in refused {
                println!("refused ({}): {r}", r.reason());
            }
            Ok(Outcome::ChecksFailed)
        }
    }
}

/// The JWS given, or the `receipt` of a verdict given as JSON (with its action id).
fn receipt_of(text: &str) -> Result<(String, Option<String>)> {
    if !text.starts_with('{') {
        return Ok((text.to_string(), None));
    }
    let v: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| Failure::usage(anyhow::anyhow!("the verdict given is not JSON: {e}")))?;
    let action = v["action_id"].as_str().map(str::to_string);
    match v["receipt"].as_str() {
        Some(jws) => Ok((jws.to_string(), action)),
        None => Err(Failure::usage(anyhow::anyhow!(
            "field `receipt` of the verdict for {} is {}: only a final verdict that lets the \
             action run after people approved it carries one",
            action.as_deref().unwrap_or("?"),
            v["receipt"]
        ))),
    }
}
