//! How input records are unwrapped and output records wrapped: plain Avro, Confluent framing
//! with a fixed list of ids, or through the schema registry (writer schemas by id for the
//! input; ids resolved at start-up for the outputs).

use super::{
    refusal, Processor, Refusal, StageError, CANARIES, FIRST_ROLE, REVIEW_TOPIC, VERDICTS,
};
use crate::config::{InputFormat, Settings};
use crate::error::ErrorClass;
use crate::event::{AgentAction, CodecError, SchemaKind};
use crate::registry::output::FrameIds;
use crate::registry::{RegistryDecoder, RegistryError, SchemaRegistry};
use std::sync::Arc;

/// A processor's registry: the decoder of framed input (with its own front cache) and the ids
/// its outputs are framed with.
#[derive(Debug, Default)]
pub(super) struct Framing {
    decoder: Option<RegistryDecoder>,
    output: Option<Arc<FrameIds>>,
}

impl Framing {
    /// The same registry for another processor (a front cache of its own).
    fn sibling(&self) -> Framing {
        Framing {
            decoder: self
                .decoder
                .as_ref()
                .map(|d| RegistryDecoder::new(d.shared().clone())),
            output: self.output.clone(),
        }
    }

    /// The schema id to frame a `kind` record to topic index `topic` with, if any.
    pub(super) fn output_id(&self, topic: usize, kind: SchemaKind) -> Option<u32> {
        self.output.as_ref()?.get(topic, kind)
    }
}

impl Processor {
    /// Connects the registry of `settings`, if any: the input decoder (no request yet) and,
    /// with `frame_outputs`, the output ids of this processor and its drill twin (requests
    /// now: a failure refuses the start).
    pub(super) fn connect_registry(&mut self, settings: &Settings) -> Result<(), RegistryError> {
        let Some(r) = &settings.input.schema_registry else {
            return Ok(());
        };
        let shared = Arc::new(SchemaRegistry::new(r, &self.codec)?);
        self.connect_one(settings, &shared)?;
        if let Some(twin) = self.drill.as_mut() {
            twin.connect_one(settings, &shared)?;
        }
        Ok(())
    }

    fn connect_one(
        &mut self,
        settings: &Settings,
        shared: &Arc<SchemaRegistry>,
    ) -> Result<(), RegistryError> {
        let Some(r) = &settings.input.schema_registry else {
            return Ok(());
        };
        if self.format == InputFormat::Confluent {
            self.framing.decoder = Some(RegistryDecoder::new(shared.clone()));
        }
        if r.frame_outputs {
            let ids = crate::registry::output::resolve(shared, r, &self.codec, &self.outputs())?;
            self.framing.output = Some(Arc::new(ids));
        }
        Ok(())
    }

    /// Shares `from`'s registry (and its twin's) with this new sibling.
    pub(super) fn share_registry(&mut self, from: &Processor) {
        self.framing = from.framing.sibling();
        if let (Some(twin), Some(from)) = (self.drill.as_mut(), from.drill.as_ref()) {
            twin.framing = from.framing.sibling();
        }
    }

    /// Shows the registry's counters with the pipeline's metrics.
    pub(super) fn attach_registry(&self, metrics: &crate::metrics::Metrics) {
        if let Some(d) = &self.framing.decoder {
            d.shared().register_metrics(metrics.registry());
        }
    }

    /// The framed outputs of this processor's own topics: verdicts (the canaries' too), the review queue, and
    /// escalations and digests on each role topic (dead letters keep the input's bytes; the
    /// changelog is handoff's own JSON).
    fn outputs(&self) -> Vec<(usize, String, SchemaKind)> {
        let mut outputs = vec![
            (VERDICTS, self.topics[VERDICTS].clone(), SchemaKind::Verdict),
            (CANARIES, self.topics[CANARIES].clone(), SchemaKind::Verdict),
            (
                REVIEW_TOPIC,
                self.topics[REVIEW_TOPIC].clone(),
                SchemaKind::Digest,
            ),
        ];
        for i in FIRST_ROLE..self.own_topics {
            for kind in [SchemaKind::Escalation, SchemaKind::Digest] {
                outputs.push((i, self.topics[i].clone(), kind));
            }
        }
        outputs
    }

    /// `value` encoded for topic index `topic`: framed when the registry gave it an id.
    pub(super) fn encode_for<T: serde::Serialize>(
        &self,
        topic: usize,
        kind: SchemaKind,
        value: &T,
    ) -> Result<Vec<u8>, CodecError> {
        match self.framing.output_id(topic, kind) {
            Some(id) => self.codec.encode_framed(kind, value, id),
            None => self.codec.encode(kind, value),
        }
    }

    /// Decodes and validates an agent action after the configured framing.
    pub(super) fn decode_action(&mut self, bytes: &[u8]) -> Result<AgentAction, Refusal> {
        if let Some(decoder) = self.framing.decoder.as_mut() {
            return decoder
                .decode_action(&self.codec, bytes)
                .map_err(|e| match e.class {
                    ErrorClass::DeadLetter => Refusal::DeadLetter(e.reason, e.message),
                    ErrorClass::Fatal | ErrorClass::Retry => Refusal::Fatal(StageError {
                        what: "input record",
                        id: e.reason.to_string(),
                        source: Box::new(e),
                    }),
                });
        }
        let datum = match self.format {
            InputFormat::Avro => bytes,
            InputFormat::Confluent => crate::event::wire::unframe(&self.schema_ids, bytes)
                .map_err(|e| Refusal::DeadLetter(e.reason, e.message))?,
        };
        self.codec.decode_action(datum).map_err(refusal)
    }
}
