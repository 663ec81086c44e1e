//! How a lane reads input: a record's value within the size limit, unwrapped from its framing
//! (plain Avro, Confluent framing with a fixed list of ids, or the schema registry), decoded
//! and validated — or refused, by the error's class, as a dead letter or as a defect. The one
//! place a decoding error becomes a [`Refusal`].

use super::stage::{Input, StageError};
use crate::config::{InputFormat, Settings};
use crate::error::{Classify, ErrorClass};
use crate::event::canary::Expect;
use crate::event::{AgentAction, Codec, HumanDecision, SchemaKind};
use crate::registry::RegistryDecoder;
use crate::trust::{DecisionTrust, Refused};
use std::sync::Arc;

/// A decision that passed the trust check, with the key that signed it (`None`: unsigned, where
/// that is allowed).
pub(super) type Signed = (HumanDecision, crate::trust::decision::SignedBy);

/// Why an input record is not decided: bad input (a dead letter naming the reason) or a
/// defect of handoff's own (fatal).
pub(super) enum Refusal {
    /// Park it on the dead-letter topic: (reason, message naming the field and the value).
    DeadLetter(&'static str, String),
    /// Stop without committing past it.
    Fatal(StageError),
}

impl Refusal {
    /// The refusal of an error of class `class` (`reason`, `message`): bad input is a dead
    /// letter, anything else stops the pipeline.
    fn of<E: std::error::Error + Send + Sync + 'static>(
        class: ErrorClass,
        reason: &'static str,
        message: String,
        e: E,
    ) -> Refusal {
        match class {
            ErrorClass::DeadLetter => Refusal::DeadLetter(reason, message),
            ErrorClass::Fatal | ErrorClass::Retry => {
                Refusal::Fatal(StageError::decode("input record", reason, e))
            }
        }
    }
}

impl From<crate::event::CodecError> for Refusal {
    fn from(e: crate::event::CodecError) -> Refusal {
        Refusal::of(e.class(), e.reason(), e.to_string(), e)
    }
}

impl From<Refused> for Refusal {
    fn from(e: Refused) -> Refusal {
        Refusal::DeadLetter(e.reason(), e.to_string())
    }
}

impl From<crate::registry::DecodeError> for Refusal {
    fn from(e: crate::registry::DecodeError) -> Refusal {
        Refusal::of(e.class, e.reason, e.message.clone(), e)
    }
}

/// How a lane reads its input.
pub(super) struct Reading {
    pub(super) codec: Arc<Codec>,
    format: InputFormat,
    /// With `confluent` framing and no registry: the accepted schema ids.
    schema_ids: Vec<u32>,
    max_record_bytes: usize,
    /// Records of this topic are human decisions; the others agent actions.
    pub(super) decisions_topic: String,
    /// The schema registry's decoder of framed input, when configured.
    pub(super) decoder: Option<RegistryDecoder>,
    /// The keys a human decision must be signed by.
    trust: DecisionTrust,
}

impl Reading {
    pub(super) fn new(settings: &Settings, codec: Arc<Codec>) -> Reading {
        Reading {
            codec,
            format: settings.input.format,
            schema_ids: settings.input.schema_ids.clone(),
            max_record_bytes: settings.input.max_record_bytes,
            decisions_topic: settings.topics.decisions.clone(),
            decoder: None,
            trust: settings.trust.decision_trust(),
        }
    }

    /// The value of an input record within the size limit, or why it is a dead letter.
    fn value<'a>(&self, input: &Input<'a>) -> Result<&'a [u8], Refusal> {
        match input.payload {
            None => Err(Refusal::DeadLetter(
                "empty",
                "the record has no value (null)".to_string(),
            )),
            Some([]) => Err(Refusal::DeadLetter(
                "empty",
                "the record's value is empty (0 bytes)".to_string(),
            )),
            Some(p) if p.len() > self.max_record_bytes => Err(Refusal::DeadLetter(
                "too_large",
                format!(
                    "record of {} bytes is larger than input.max_record_bytes = {}",
                    p.len(),
                    self.max_record_bytes
                ),
            )),
            Some(p) => Ok(p),
        }
    }

    /// An agent action record, decoded and validated after the configured framing, with the
    /// answer it expects when it is a canary.
    pub(super) fn action(
        &mut self,
        input: &Input<'_>,
    ) -> Result<(AgentAction, Option<Expect>), Refusal> {
        let bytes = self.value(input)?;
        let canary = crate::event::canary::expected(input.headers)
            .map_err(|e| Refusal::DeadLetter("canary_header", e.to_string()))?;
        if let Some(decoder) = self.decoder.as_mut() {
            return Ok((decoder.decode_action(&self.codec, bytes)?, canary));
        }
        let datum = match self.format {
            InputFormat::Avro => bytes,
            InputFormat::Confluent => crate::event::wire::unframe(&self.schema_ids, bytes)
                .map_err(|e| Refusal::DeadLetter(e.reason, e.message))?,
        };
        Ok((
            self.codec.decode_action_record(input.headers, datum)?,
            canary,
        ))
    }

    /// A human decision record, its signature checked (when keys are trusted), decoded, and
    /// its role one the key that signed it may vouch for.
    pub(super) fn decision(&self, input: &Input<'_>) -> Result<Signed, Refusal> {
        let bytes = self.value(input)?;
        let signed_by = self.trust.signature(input.headers, bytes)?;
        let d: HumanDecision =
            self.codec
                .decode_record(SchemaKind::HumanDecision, input.headers, bytes)?;
        self.trust.vouches(&signed_by, &d.role)?;
        Ok((d, signed_by))
    }
}
