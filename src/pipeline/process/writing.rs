//! How a lane writes its outputs: the codec and schema ids they are framed with, the limits a
//! dead letter is checked against, and the fatigue state shared by every lane. `emit.rs` uses
//! it to turn a record's effects into outputs.

use super::stage::StageError;
use crate::config::Settings;
use crate::event::{Codec, CodecError, SchemaKind};
use crate::fatigue::{Digests, Folded};
use crate::output::{Output, Topic};
use crate::registry::output::FrameIds;
use std::sync::{Arc, Mutex};

/// When a record's state writes go: at once, or only after its effects are delivered (a
/// decision's or a deadline's: a crash then repeats an effect, never loses one recorded as
/// done).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Writes {
    /// With the effects.
    AtOnce,
    /// Once every effect sent before them is delivered.
    AfterEffects,
}

/// How often idle sessions are looked for.
pub(super) const EXPIRY_EVERY_MS: i64 = 60_000;

/// Room left for the record's framing when checking a dead letter against `message.max.bytes`.
pub(super) const RECORD_OVERHEAD: usize = 1024;

/// How a lane writes its outputs.
pub(super) struct Writing {
    codec: Arc<Codec>,
    /// The schema ids outputs are framed with, when the registry frames them.
    pub(super) output_ids: Option<Arc<FrameIds>>,
    /// Largest record the producer sends (`message.max.bytes`): a dead letter whose original
    /// value would not fit is written without it.
    pub(super) max_output_bytes: usize,
    /// False for the drill twin: its state lives in memory only (it is never restored).
    pub(super) persist_state: bool,
    /// How changelog records are written.
    pub(super) changelog_format: crate::state::ChangelogFormat,
    /// This lane's outputs are drill traffic (the twin, or `run --drill`).
    pub(super) drill: bool,
    /// Rate limits and digests, shared by the lanes of every worker.
    pub(super) digests: Arc<Mutex<Digests>>,
    /// Items of digests sent by the last tick, confirmed once they are delivered.
    pub(super) unconfirmed: Vec<Folded>,
    /// Sessions with nothing open are forgotten after this long without a change.
    pub(super) retention_ms: i64,
    pub(super) last_expiry_ms: i64,
    /// Signs approval receipts (`[trust] signing_key` set).
    pub(super) receipts: Option<super::receipt::Issuer>,
}

impl Writing {
    pub(super) fn new(
        settings: &Settings,
        codec: Arc<Codec>,
        digests: Arc<Mutex<Digests>>,
        persist_state: bool,
    ) -> Writing {
        Writing {
            codec,
            output_ids: None,
            max_output_bytes: settings.kafka.message_max_bytes(),
            persist_state,
            changelog_format: settings.pipeline.changelog_format,
            drill: settings.is_drill(),
            digests,
            unconfirmed: Vec::new(),
            retention_ms: settings.pipeline.state_retention.as_millis() as i64,
            last_expiry_ms: 0,
            receipts: super::receipt::Issuer::of(settings),
        }
    }

    /// `value` encoded for `topic`: framed when the registry gave it an id.
    fn encode<T: serde::Serialize>(
        &self,
        topic: Topic,
        kind: SchemaKind,
        value: &T,
    ) -> Result<Vec<u8>, CodecError> {
        match self
            .output_ids
            .as_ref()
            .and_then(|ids| ids.get(topic, kind))
        {
            Some(id) => self.codec.encode_framed(kind, value, id),
            None => self.codec.encode(kind, value),
        }
    }

    /// `value` encoded as an output to `topic`, keyed by `key`, with the header naming its
    /// schema version when the schema has more than one.
    pub(super) fn encoded<T: serde::Serialize>(
        &self,
        topic: Topic,
        key: &str,
        kind: SchemaKind,
        value: &T,
        what: &'static str,
    ) -> Result<Output, StageError> {
        let bytes = self
            .encode(topic, kind, value)
            .map_err(|e| StageError::encode(what, key, e))?;
        let o = Output::new(topic, Some(key.as_bytes().to_vec()), bytes);
        Ok(match crate::event::wire::version_header(kind) {
            Some((header, version)) => o.with_header(header, version),
            None => o,
        })
    }
}
