//! The simulation, kept apart from the product: the synthetic agent fleet ([`fleet`]) and its
//! Kafka producer ([`produce`]), the local tansu broker ([`broker`]), and the simulated people
//! ([`people`]) with their Kafka driver ([`respond`]). The stream processor never depends on
//! this module; the demo, the game-days (`replay::gameday`), the benchmarks and the tests do.

pub mod broker;
pub mod fleet;
pub mod people;
pub mod prebuilt;
pub mod produce;
pub mod respond;

/// Why a simulation helper stopped.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// Kafka could not be reached or a client could not be built or used.
    #[error(transparent)]
    Kafka(#[from] crate::kafka::Error),
    /// The shipped schemas could not be loaded, or a record could not be encoded.
    #[error(transparent)]
    Codec(#[from] crate::event::CodecError),
    /// Records were not delivered.
    #[error("{0}")]
    Delivery(String),
}
