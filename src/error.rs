//! How a failure is handled. Every error enum in handoff says which of these it is, so the
//! pipeline can decide without string matching.

/// The three ways handoff reacts to a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// Transient: try the same thing again (broker unavailable, queue full).
    Retry,
    /// The input is bad: park it on the dead-letter topic with its error and move on.
    DeadLetter,
    /// Handoff cannot go on safely: stop without committing past the failure.
    Fatal,
}

impl ErrorClass {
    /// Stable lower-case name, used in dead-letter headers and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::Retry => "retry",
            ErrorClass::DeadLetter => "dead_letter",
            ErrorClass::Fatal => "fatal",
        }
    }
}

/// Implemented by every error type that can reach the pipeline.
pub trait Classify {
    /// How the pipeline must react to this error.
    fn class(&self) -> ErrorClass;
}
