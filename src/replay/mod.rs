//! Drills and rule changes on recorded traffic: `copy` (replay into the drill namespace),
//! `diff` (shadow evaluation of a rule change) and `gameday`.

pub mod chart;
pub mod copy;
pub mod diff;
pub mod gameday;
