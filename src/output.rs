//! What a stage asks the Kafka edge to write: [`Output`] records, addressed by the kind of
//! topic ([`Topic`]) and whether they are drill traffic; the edge resolves the address to a
//! name (`pipeline::Topics`).

/// Which of a stage's topics an output goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Topic {
    /// Verdicts for the agents.
    Verdicts,
    /// Dead letters.
    DeadLetters,
    /// The per-session changelog.
    Changelog,
    /// The review queue.
    Review,
    /// Canaries' verdicts.
    Canaries,
    /// The topic of role `i` (an index into the matrix's roles).
    Role(usize),
}

/// One record to produce.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    /// Which topic.
    pub topic: Topic,
    /// Drill traffic: written to the drill twin of `topic`.
    pub drill: bool,
    /// Record key.
    pub key: Option<Vec<u8>>,
    /// Record value.
    pub payload: Vec<u8>,
    /// Send the value as null (a tombstone on a compacted topic); set by [`Output::new`] for
    /// an empty payload.
    pub null: bool,
    /// Record headers.
    pub headers: Vec<(String, Vec<u8>)>,
    /// Partition to write to; `None` lets the producer's partitioner choose by key.
    pub partition: Option<i32>,
    /// Send only after every earlier output of the same call is delivered (state writes that
    /// record an effect as done).
    pub deferred: bool,
}

impl Output {
    /// An output to `topic`, partitioned by key, sent at once.
    pub fn new(topic: Topic, key: Option<Vec<u8>>, payload: Vec<u8>) -> Output {
        Output {
            topic,
            drill: false,
            key,
            null: payload.is_empty(),
            payload,
            headers: Vec::new(),
            partition: None,
            deferred: false,
        }
    }

    /// The same output with a header added.
    pub fn with_header(mut self, key: &str, value: impl Into<Vec<u8>>) -> Output {
        self.headers.push((key.to_string(), value.into()));
        self
    }
}
