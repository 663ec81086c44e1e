//! handoff decides, for every action an AI agent proposes or takes, whether it may run alone or
//! must be handed to a human, and hands it over well.
//!
//! The pipeline is visible in the modules: [`event`] (model and codecs) → [`matrix`] (pure
//! decisions) → [`escalation`] and [`context`] (verdicts and hand-overs) → [`state`] (sessions,
//! open escalations, deadlines) → [`fatigue`]. The modules are grouped by layer below, lowest
//! first; a module uses its own layer and those below it, never one above (ARCHITECTURE.md's
//! "Layers", checked by `tests/layers.rs`).

#![warn(missing_docs)]

// ground: errors, problem lists, clocks, escaping, outputs, rate-limited logs — no handoff types.
pub mod clock;
pub mod error;
pub mod escape;
pub mod logs;
pub mod output;
pub mod problems;

// core: the model and the pure decision path — no Kafka, no HTTP, no async runtime.
pub mod context;
pub mod escalation;
pub mod event;
pub mod fatigue;
pub mod matrix;
pub mod session;
pub mod state;
pub mod trust;

// settings: what the processes are configured with, parsed and validated without I/O.
pub mod config;

// kafka: every client from the settings, administration, record building, topic reading.
pub mod kafka;

// edges: the long-running processes and what they serve (processor, inbox, gateway, …).
pub mod gateway;
pub mod http;
pub mod inbox;
pub mod metrics;
pub mod notify;
pub mod pipeline;
pub mod registry;
pub mod reload;
pub mod serve;

// tools: what reads, replays or simulates recorded traffic beside the processes.
pub mod audit;
pub mod canary;
pub mod offline;
pub mod replay;
pub mod sim;
pub mod suggest;
pub mod tail;

// binary: the command line the `handoff` binary parses.
pub mod cli;
