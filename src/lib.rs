//! handoff decides, for every action an AI agent proposes or takes, whether it may run alone or
//! must be handed to a human, and hands it over well.
//!
//! The pipeline is visible in the modules: [`event`] (model and codecs) → [`matrix`] (pure
//! decisions) → [`escalation`] and [`context`] (verdicts and hand-overs). See ARCHITECTURE.md.

#![warn(missing_docs)]

pub mod audit;
pub mod canary;
pub mod cli;
pub mod clock;
pub mod config;
pub mod context;
pub mod error;
pub mod escalation;
pub mod escape;
pub mod event;
pub mod fatigue;
pub mod inbox;
pub mod kafka;
pub mod matrix;
pub mod metrics;
pub mod notify;
pub mod offline;
pub mod output;
pub mod pipeline;
pub mod problems;
pub mod registry;
pub mod reload;
pub mod replay;
pub mod serve;
pub mod session;
pub mod sim;
pub mod state;
pub mod suggest;
pub mod tail;
