//! `handoff gameday SCENARIO`: a crisis drill on a virtual clock. Scripted traffic goes through
//! handoff's own processor (matrix, deadlines, chains, grouping, rate limits), simulated people
//! answer — or do not — after sampled delays, and every output is written to the drill topics.
//! The report measures who got engaged and how fast.
//!
//! Discrete time: the clock moves in steps of `step` (1 s by default); at each step the events
//! and answers due are processed in time order and the deadlines and digests due fire. An hour
//! of drill takes seconds. With `--wall-clock` the drill runs against a live `handoff run
//! --drill` instead ([`live`]).
//!
//! - [`scenario`]: the scenario file (schema, loading, validation) and its simulated people;
//! - [`traffic`]: the drill's events (background fleet, bursts, recorded traffic);
//! - [`observe`]: the [`Observer`] turning what was written into figures;
//! - [`report`]: the figures, as Markdown (with a post-mortem), JSON and the timeline chart;
//! - [`virtual_clock`] ([`run`]) and [`wall_clock`] ([`live`]): the two drivers.

pub mod observe;
pub mod report;
pub mod scenario;
pub mod traffic;
pub mod virtual_clock;
pub mod wall_clock;

pub use observe::Observer;
pub use report::{GamedayReport, RoleFigures, Spread};
pub use scenario::{Burst, Measure, Responder, Scenario};
pub use traffic::drill_events;
pub use virtual_clock::run;
pub use wall_clock::live;

use crate::problems::Problems;

/// Why a scenario cannot run.
#[derive(Debug, thiserror::Error)]
pub enum GamedayError {
    /// The file is wrong (every problem listed).
    #[error("scenario {0} has problems:\n{1}")]
    Invalid(String, Problems),
    /// Its matrix is wrong.
    #[error(transparent)]
    Matrix(#[from] crate::matrix::MatrixError),
    /// The schemas.
    #[error(transparent)]
    Codec(#[from] crate::event::CodecError),
    /// The processor could not be built.
    #[error(transparent)]
    Start(#[from] crate::pipeline::process::StartError),
    /// Writing to the broker.
    #[error("writing the drill to Kafka: {0}")]
    Kafka(String),
    /// The processor could not build an output (a defect).
    #[error(transparent)]
    Stage(#[from] crate::pipeline::process::StageError),
}
