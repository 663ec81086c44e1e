//! Canaries in the event model: the header that marks one, the answer it expects, and the
//! result its verdict settles (see `crate::canary` for sending them and the report). Pure.

use super::VerdictOutcome;
use serde::{Deserialize, Serialize};

/// Header marking a canary: its value is the expected answer (`approve` or `reject`).
pub const CANARY_HEADER: &str = "handoff.canary";

/// The right answer to a canary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Expect {
    /// The action is fine: approving it is right.
    Approve,
    /// The action must not go as it is: rejecting (or revising) it is right.
    Reject,
}

impl Expect {
    /// The header value and the name in configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Expect::Approve => "approve",
            Expect::Reject => "reject",
        }
    }

    /// Parses a header value or configuration name.
    pub fn parse(text: &str) -> Option<Expect> {
        match text {
            "approve" => Some(Expect::Approve),
            "reject" => Some(Expect::Reject),
            _ => None,
        }
    }
}

/// How a canary ended, the `result` label of `handoff_canaries_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CanaryResult {
    /// Answered as expected.
    Caught,
    /// Answered otherwise: approved what had to be stopped, or stopped what was fine.
    Missed,
    /// Nobody answered before the end of its chain.
    TimedOut,
    /// The rules did not hand it to anyone (the canary no longer tests what it was made for).
    NotEscalated,
}

impl CanaryResult {
    /// Every result, in label order.
    pub const ALL: [CanaryResult; 4] = [
        CanaryResult::Caught,
        CanaryResult::Missed,
        CanaryResult::TimedOut,
        CanaryResult::NotEscalated,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            CanaryResult::Caught => "caught",
            CanaryResult::Missed => "missed",
            CanaryResult::TimedOut => "timed_out",
            CanaryResult::NotEscalated => "not_escalated",
        }
    }

    /// The result a verdict settles for a canary expecting `expect`; `None` while it waits
    /// (escalated, redirected) or for a hard stop people only acknowledge.
    pub fn of(expect: Expect, outcome: VerdictOutcome) -> Option<CanaryResult> {
        let answered = |right: bool| {
            Some(if right {
                CanaryResult::Caught
            } else {
                CanaryResult::Missed
            })
        };
        match outcome {
            VerdictOutcome::Proceed | VerdictOutcome::ProceedAndLog => {
                Some(CanaryResult::NotEscalated)
            }
            VerdictOutcome::Approved => answered(expect == Expect::Approve),
            VerdictOutcome::Rejected | VerdictOutcome::Revised => {
                answered(expect == Expect::Reject)
            }
            VerdictOutcome::TimedOutBlocked | VerdictOutcome::TimedOutProceed => {
                Some(CanaryResult::TimedOut)
            }
            VerdictOutcome::AwaitHuman | VerdictOutcome::Redirected | VerdictOutcome::Stopped => {
                None
            }
        }
    }
}

/// Why a record's canary header cannot be used (the record is dead-lettered).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("header `{CANARY_HEADER}` = {value:?} is not an expected answer (approve or reject)")]
pub struct BadHeader {
    /// The value found (lossy UTF-8).
    pub value: String,
}

/// The expected answer a record's headers carry, if it is a canary.
pub fn expected(headers: &[(String, Vec<u8>)]) -> Result<Option<Expect>, BadHeader> {
    let Some((_, v)) = headers.iter().find(|(k, _)| k == CANARY_HEADER) else {
        return Ok(None);
    };
    let text = String::from_utf8_lossy(v);
    match Expect::parse(&text) {
        Some(e) => Ok(Some(e)),
        None => Err(BadHeader {
            value: text.into_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_of_every_outcome() {
        use CanaryResult::*;
        use Expect::*;
        use VerdictOutcome as V;
        let table = [
            (Approve, V::Approved, Some(Caught)),
            (Reject, V::Approved, Some(Missed)),
            (Reject, V::Rejected, Some(Caught)),
            (Reject, V::Revised, Some(Caught)),
            (Approve, V::Rejected, Some(Missed)),
            (Approve, V::Revised, Some(Missed)),
            (Reject, V::TimedOutBlocked, Some(TimedOut)),
            (Approve, V::TimedOutProceed, Some(TimedOut)),
            (Reject, V::Proceed, Some(NotEscalated)),
            (Reject, V::ProceedAndLog, Some(NotEscalated)),
            (Reject, V::AwaitHuman, None),
            (Approve, V::Redirected, None),
        ];
        for (expect, outcome, want) in table {
            assert_eq!(
                CanaryResult::of(expect, outcome),
                want,
                "{expect:?} {outcome:?}"
            );
        }
    }

    #[test]
    fn header_values() {
        let h = |v: &str| vec![(CANARY_HEADER.to_string(), v.as_bytes().to_vec())];
        assert_eq!(expected(&[]), Ok(None));
        assert_eq!(expected(&h("approve")), Ok(Some(Expect::Approve)));
        assert_eq!(expected(&h("reject")), Ok(Some(Expect::Reject)));
        let e = expected(&h("Reject!")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "header `handoff.canary` = \"Reject!\" is not an expected answer (approve or reject)"
        );
    }
}
