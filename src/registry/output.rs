//! Framed outputs: the id of each output schema under its subject, found (or registered, when
//! `auto_register` allows it) once at start-up. A failure refuses the start; nothing is asked
//! per record.

use super::{RegistryError, SchemaRegistry};
use crate::config::RegistrySettings;
use crate::event::{Codec, SchemaKind};
use crate::output::Topic;
use std::collections::HashMap;

/// The schema id to frame each (output topic, record type) of one processor lane with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FrameIds {
    ids: HashMap<(Topic, SchemaKind), u32>,
}

impl FrameIds {
    /// The id for records of `kind` written to `topic`, if framed.
    pub fn get(&self, topic: Topic, kind: SchemaKind) -> Option<u32> {
        self.ids.get(&(topic, kind)).copied()
    }

    /// Number of (topic, kind) pairs framed.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// True when nothing is framed.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

/// The shipped file of a schema, for messages.
fn file(kind: SchemaKind) -> &'static str {
    match kind {
        SchemaKind::AgentAction => "schemas/agent_action.avsc",
        SchemaKind::Verdict => "schemas/verdict.avsc",
        SchemaKind::Escalation => "schemas/escalation.avsc",
        SchemaKind::HumanDecision => "schemas/human_decision.avsc",
        SchemaKind::Digest => "schemas/digest.avsc",
    }
}

/// The full name of a record schema (`io.handoff.Verdict`).
pub fn fullname(schema: &apache_avro::Schema) -> String {
    match schema {
        apache_avro::Schema::Record(r) => r.name.fullname(None),
        other => format!("{other:?}"),
    }
}

/// The ids of `outputs` (topic, topic name, record type) under the subjects that
/// `settings.subject_strategy` names: looked up, else registered if `auto_register`, else an
/// error naming the subject and the schema file.
pub fn resolve(
    registry: &SchemaRegistry,
    settings: &RegistrySettings,
    codec: &Codec,
    outputs: &[(Topic, String, SchemaKind)],
) -> Result<FrameIds, RegistryError> {
    let mut by_subject: HashMap<(String, SchemaKind), u32> = HashMap::new();
    let mut ids = HashMap::new();
    for (index, topic, kind) in outputs {
        let name = fullname(codec.generic_schema(*kind));
        let subject = settings.subject_strategy.subject(topic, &name);
        let id = match by_subject.get(&(subject.clone(), *kind)) {
            Some(id) => *id,
            None => {
                let id = subject_id(registry, settings.auto_register, &subject, *kind)?;
                tracing::info!(%subject, schema_id = id, schema = %name, "output schema id");
                by_subject.insert((subject, *kind), id);
                id
            }
        };
        ids.insert((*index, *kind), id);
    }
    Ok(FrameIds { ids })
}

fn subject_id(
    registry: &SchemaRegistry,
    auto_register: bool,
    subject: &str,
    kind: SchemaKind,
) -> Result<u32, RegistryError> {
    let client = registry.client();
    let text = kind.schema_json();
    let found = client.lookup(subject, text);
    registry.count(found.as_ref().err());
    if let Some(id) = found? {
        return Ok(id);
    }
    if !auto_register {
        return Err(RegistryError::Setup(format!(
            "subject {subject} at {} has no version of the {} schema: register {} there, or set \
             input.schema_registry.auto_register = true",
            client.url(),
            kind.name(),
            file(kind)
        )));
    }
    let registered = client.register(subject, text);
    registry.count(registered.as_ref().err());
    registered
}
