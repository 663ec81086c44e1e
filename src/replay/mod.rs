//! Drills and rule changes on recorded traffic: reading a topic range back (`source`), and
//! `diff` (shadow evaluation of a rule change).

pub mod chart;
pub mod copy;
pub mod diff;
pub mod gameday;
pub mod source;
