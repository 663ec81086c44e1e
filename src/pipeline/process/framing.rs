//! A lane and the schema registry: the decoder of framed input (writer schemas by id, with a
//! front cache of its own) and the ids its outputs are framed with (resolved at start-up).

use super::lane::Lane;
use crate::config::Settings;
use crate::event::SchemaKind;
use crate::output::Topic;
use crate::pipeline::Topics;
use crate::registry::{RegistryDecoder, RegistryError, SchemaRegistry};
use std::sync::Arc;

impl Lane {
    /// Connects `shared` for this lane (the drill twin's when `drill`): the input decoder (no
    /// request yet) and, with `frame_outputs`, its outputs' ids (requests now: a failure
    /// refuses the start).
    pub(super) fn connect_registry(
        &mut self,
        settings: &Settings,
        shared: &Arc<SchemaRegistry>,
        topics: &Topics,
        drill: bool,
    ) -> Result<(), RegistryError> {
        let Some(r) = &settings.input.schema_registry else {
            return Ok(());
        };
        if settings.input.format == crate::config::InputFormat::Confluent {
            self.read.decoder = Some(RegistryDecoder::new(shared.clone()));
        }
        if r.frame_outputs {
            let outputs = framed_outputs(topics, drill);
            let ids = crate::registry::output::resolve(shared, r, &self.read.codec, &outputs)?;
            self.write.output_ids = Some(Arc::new(ids));
        }
        Ok(())
    }

    /// Shares `from`'s registry with this new sibling (a front cache of its own).
    pub(super) fn share_registry(&mut self, from: &Lane) {
        self.read.decoder = from
            .read
            .decoder
            .as_ref()
            .map(|d| RegistryDecoder::new(d.shared().clone()));
        self.write.output_ids = from.write.output_ids.clone();
    }

    /// Shows the registry's counters with the pipeline's metrics.
    pub(super) fn attach_registry(&self, metrics: &crate::metrics::Metrics) {
        if let Some(d) = &self.read.decoder {
            d.shared().register_metrics(metrics.registry());
        }
    }
}

/// The framed outputs of a lane: verdicts (the canaries' too), the review queue, and
/// escalations and digests on each role topic (dead letters keep the input's bytes; the
/// changelog is handoff's own).
fn framed_outputs(topics: &Topics, drill: bool) -> Vec<(Topic, String, SchemaKind)> {
    let mut outputs = Vec::new();
    for (topic, d, name) in topics.addresses() {
        if d != drill {
            continue;
        }
        let kinds: &[SchemaKind] = match topic {
            Topic::Verdicts | Topic::Canaries => &[SchemaKind::Verdict],
            Topic::Review => &[SchemaKind::Digest],
            Topic::Role(_) => &[SchemaKind::Escalation, SchemaKind::Digest],
            Topic::DeadLetters | Topic::Changelog => &[],
        };
        outputs.extend(kinds.iter().map(|k| (topic, name.to_string(), *k)));
    }
    outputs
}
