//! Canaries: synthetic escalations with a known right answer, to measure whether people catch
//! what they must. A canary is an ordinary agent action event carrying the header
//! `handoff.canary` = the expected answer (`approve` or `reject`). The processor decides it
//! like any other — its escalation reaches the role's topic, the inbox and the notifications
//! exactly as a real one would — but its verdicts go to the canaries topic instead of the
//! agents' verdicts, and it counts only in its own metrics (`handoff_canaries_total`,
//! `handoff_canary_answer_seconds`), never in the real decision metrics.
//!
//! The header, the expectation and the result a verdict settles are in the event model
//! ([`crate::event::canary`]); here [`inject`] makes and sends canaries and [`report`] reads
//! their verdicts back into figures per role.

pub mod inject;
pub mod report;
