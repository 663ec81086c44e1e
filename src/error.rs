//! How a failure of the input path is handled: the codec's and validation's errors say which
//! class they are, and the processor dead-letters or stops by that class alone.

/// The ways handoff reacts to a failure while decoding a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// The input is bad: park it on the dead-letter topic with its error and move on.
    DeadLetter,
    /// Handoff cannot go on safely: stop without committing past the failure.
    Fatal,
    /// A service handoff needs (the schema registry) is unavailable: the record is good, so
    /// it waits and the same request is tried again, never dead-lettered.
    Retry,
}

impl ErrorClass {
    /// Stable lower-case name, used in dead-letter headers and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::DeadLetter => "dead_letter",
            ErrorClass::Fatal => "fatal",
            ErrorClass::Retry => "retry",
        }
    }
}

/// Implemented by the errors of the input path (codec and validation).
pub trait Classify {
    /// How the pipeline must react to this error.
    fn class(&self) -> ErrorClass;
}
