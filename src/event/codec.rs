//! Avro and JSON codecs for the four record types. The schemas in `schemas/` are compiled into
//! the binary and parsed once, at start-up, by [`Codec::new`].
//!
//! Two Avro paths exist on purpose: the typed decoder (`serde_avro_fast`, straight from bytes
//! into the Rust struct) is the hot path; apache-avro's generic reader (bytes → `Value` → struct)
//! is the reference, used to cross-check the fast path in tests and benchmarks.

use super::{AgentAction, EventError, EventLimits};
use crate::error::{Classify, ErrorClass};
use serde::{de::DeserializeOwned, Serialize};
use serde_avro_fast::de::{read::SliceRead, DeserializerState};
use std::io::BufRead;

/// The record types handoff reads or writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SchemaKind {
    /// Input from agents.
    AgentAction,
    /// Answers to agents.
    Verdict,
    /// Hand-overs to roles.
    Escalation,
    /// Answers from humans.
    HumanDecision,
    /// Folded escalations and the review queue.
    Digest,
}

impl SchemaKind {
    /// All kinds, in a fixed order.
    pub const ALL: [SchemaKind; 5] = [
        SchemaKind::AgentAction,
        SchemaKind::Verdict,
        SchemaKind::Escalation,
        SchemaKind::HumanDecision,
        SchemaKind::Digest,
    ];

    /// Record name, as in the schema.
    pub fn name(self) -> &'static str {
        match self {
            SchemaKind::AgentAction => "AgentAction",
            SchemaKind::Verdict => "Verdict",
            SchemaKind::Escalation => "Escalation",
            SchemaKind::HumanDecision => "HumanDecision",
            SchemaKind::Digest => "Digest",
        }
    }

    /// The schema text shipped in `schemas/`: the current version, what handoff writes.
    pub fn schema_json(self) -> &'static str {
        let versions = self.versions();
        versions[versions.len() - 1]
    }

    /// Every shipped version of the schema, oldest first (version 1 first); the last is the
    /// current one. Each reads the one before it (BACKWARD-compatible: `tests/schemas.rs`), and
    /// older ones live in `schemas/history/`. A plain Avro datum says which it was written with
    /// in the header [`super::wire::SCHEMA_VERSION_HEADER`]; without it, version 1.
    pub fn versions(self) -> &'static [&'static str] {
        match self {
            SchemaKind::AgentAction => &[
                include_str!("../../schemas/history/agent_action.v1.avsc"),
                include_str!("../../schemas/agent_action.avsc"),
            ],
            SchemaKind::Verdict => &[
                include_str!("../../schemas/history/verdict.v1.avsc"),
                include_str!("../../schemas/history/verdict.v2.avsc"),
                include_str!("../../schemas/verdict.avsc"),
            ],
            SchemaKind::Escalation => &[
                include_str!("../../schemas/history/escalation.v1.avsc"),
                include_str!("../../schemas/escalation.avsc"),
            ],
            SchemaKind::HumanDecision => &[
                include_str!("../../schemas/history/human_decision.v1.avsc"),
                include_str!("../../schemas/human_decision.avsc"),
            ],
            SchemaKind::Digest => &[include_str!("../../schemas/digest.avsc")],
        }
    }

    /// The version handoff writes.
    pub fn current_version(self) -> u32 {
        self.versions().len() as u32
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Why a record could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// A shipped schema does not parse: a build defect.
    #[error("schema {name} does not parse: {message}")]
    Schema {
        /// Record name.
        name: &'static str,
        /// Parser message.
        message: String,
    },
    /// The bytes are not a datum of the schema.
    #[error("not a valid {name} Avro datum: {message}")]
    AvroDecode {
        /// Record name.
        name: &'static str,
        /// Decoder message.
        message: String,
    },
    /// The record says it was written with a version of the schema this handoff does not ship.
    #[error(
        "header {header} = {version:?}: {name} has schema versions 1 to {current} here (written \
         by a newer handoff?)"
    )]
    UnknownVersion {
        /// Record name.
        name: &'static str,
        /// The header.
        header: &'static str,
        /// The header's value, as found.
        version: String,
        /// The newest version this handoff reads.
        current: u32,
    },
    /// A datum decoded, but more bytes follow it: a record holds exactly one datum.
    #[error("{left} byte(s) left after the {name} datum: a record holds exactly one datum")]
    TrailingBytes {
        /// Record name.
        name: &'static str,
        /// Bytes after the datum.
        left: usize,
    },
    /// The text is not a JSON record of the schema.
    #[error("not a valid {name} JSON record: {message}")]
    Json {
        /// Record name.
        name: &'static str,
        /// Parser message (names the field and the line/column).
        message: String,
    },
    /// The record is larger than allowed.
    #[error("record of {size} bytes is larger than the limit of {limit} bytes")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The record decoded but a field is out of range.
    #[error(transparent)]
    Invalid(#[from] EventError),
    /// A value could not be encoded: a defect in handoff, never bad input.
    #[error("cannot encode {name}: {message}")]
    Encode {
        /// Record name.
        name: &'static str,
        /// Encoder message.
        message: String,
    },
}

impl Classify for CodecError {
    fn class(&self) -> ErrorClass {
        match self {
            CodecError::Schema { .. } | CodecError::Encode { .. } => ErrorClass::Fatal,
            CodecError::AvroDecode { .. }
            | CodecError::UnknownVersion { .. }
            | CodecError::TrailingBytes { .. }
            | CodecError::Json { .. }
            | CodecError::TooLarge { .. }
            | CodecError::Invalid(_) => ErrorClass::DeadLetter,
        }
    }
}

impl CodecError {
    /// Stable short name of the failure, for dead-letter headers and metric labels.
    pub fn reason(&self) -> &'static str {
        match self {
            CodecError::Schema { .. } => "schema",
            CodecError::AvroDecode { .. } => "avro_decode",
            CodecError::UnknownVersion { .. } => "schema_version",
            CodecError::TrailingBytes { .. } => "trailing_bytes",
            CodecError::Json { .. } => "json_decode",
            CodecError::TooLarge { .. } => "too_large",
            CodecError::Invalid(_) => "invalid_field",
            CodecError::Encode { .. } => "encode",
        }
    }
}

/// Largest record a [`Codec`] decodes unless told otherwise: the default of
/// `input.max_record_bytes`.
pub const DEFAULT_MAX_RECORD_BYTES: usize = 1024 * 1024;
/// The largest `input.max_record_bytes` allowed (4 MiB): also what apache-avro may allocate for
/// one string or one block of array items (see [`Codec::new`]).
pub const MAX_RECORD_BYTES_LIMIT: usize = 4 * 1024 * 1024;

/// The parsed schemas, shared by every codec call.
pub struct Codec {
    /// The current version of each kind (apache-avro).
    generic: Vec<apache_avro::Schema>,
    /// Every version of each kind, oldest first (the typed decoder).
    fast: Vec<Vec<serde_avro_fast::Schema>>,
    limits: EventLimits,
    max_record_bytes: usize,
}

impl std::fmt::Debug for Codec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Codec")
            .field("limits", &self.limits)
            .field("max_record_bytes", &self.max_record_bytes)
            .finish_non_exhaustive()
    }
}

impl Codec {
    /// Parses the shipped schemas with both libraries. Records up to
    /// [`DEFAULT_MAX_RECORD_BYTES`] are decoded; see [`Codec::with_max_record_bytes`].
    pub fn new(limits: EventLimits) -> Result<Self, CodecError> {
        // apache-avro reserves room for an array's items from the count the datum claims (a
        // hostile record claimed 186 million: 7.4 GB at once). Its one limit, process-wide,
        // bounds that count and every string's length; no record longer than the largest
        // `input.max_record_bytes` can hold more.
        apache_avro::util::max_allocation_bytes(MAX_RECORD_BYTES_LIMIT);
        let mut generic = Vec::new();
        let mut fast = Vec::new();
        for kind in SchemaKind::ALL {
            let bad = |message: String| CodecError::Schema {
                name: kind.name(),
                message,
            };
            generic.push(
                apache_avro::Schema::parse_str(kind.schema_json())
                    .map_err(|e| bad(e.to_string()))?,
            );
            let versions = kind.versions().iter().map(|text| {
                text.parse()
                    .map_err(|e: serde_avro_fast::schema::SchemaError| bad(e.to_string()))
            });
            fast.push(versions.collect::<Result<Vec<_>, _>>()?);
        }
        Ok(Codec {
            generic,
            fast,
            limits,
            max_record_bytes: DEFAULT_MAX_RECORD_BYTES,
        })
    }

    /// The same codec, refusing records (Avro datums or JSON texts) larger than
    /// `max_record_bytes` as [`CodecError::TooLarge`]. The caller's limit is the only one:
    /// the processor passes `input.max_record_bytes`.
    pub fn with_max_record_bytes(mut self, max_record_bytes: usize) -> Self {
        self.max_record_bytes = max_record_bytes;
        self
    }

    /// The limits events are validated against.
    pub fn limits(&self) -> &EventLimits {
        &self.limits
    }

    /// apache-avro's view of a schema.
    pub fn generic_schema(&self, kind: SchemaKind) -> &apache_avro::Schema {
        &self.generic[kind.index()]
    }

    fn check_size(&self, len: usize) -> Result<(), CodecError> {
        if len > self.max_record_bytes {
            return Err(CodecError::TooLarge {
                size: len,
                limit: self.max_record_bytes,
            });
        }
        Ok(())
    }

    /// The typed decoder's schema of `kind` at `version` (1 = the first).
    fn fast_schema(&self, kind: SchemaKind, version: u32) -> Option<&serde_avro_fast::Schema> {
        let i = usize::try_from(version).ok()?.checked_sub(1)?;
        self.fast[kind.index()].get(i)
    }

    /// Decodes a plain Avro datum of the current version with the typed decoder. The bytes must
    /// hold exactly one datum.
    pub fn decode<T: DeserializeOwned>(
        &self,
        kind: SchemaKind,
        bytes: &[u8],
    ) -> Result<T, CodecError> {
        self.decode_version(kind, kind.current_version(), bytes)
    }

    /// Decodes a plain Avro datum of a record with `headers`: written with the schema version
    /// its [`super::wire::SCHEMA_VERSION_HEADER`] names, version 1 without one (what every
    /// producer wrote before versions were named).
    pub fn decode_record<T: DeserializeOwned>(
        &self,
        kind: SchemaKind,
        headers: &[(String, Vec<u8>)],
        bytes: &[u8],
    ) -> Result<T, CodecError> {
        let version = super::wire::schema_version(headers);
        self.decode_header_version(kind, version, bytes)
    }

    /// [`Codec::decode_record`] for a caller that read the header itself: `version` is what
    /// [`super::wire::parse_schema_version`] made of it.
    pub fn decode_header_version<T: DeserializeOwned>(
        &self,
        kind: SchemaKind,
        version: Result<u32, String>,
        bytes: &[u8],
    ) -> Result<T, CodecError> {
        let version = version.map_err(|found| unknown_version(kind, found))?;
        self.decode_version(kind, version, bytes)
    }

    /// Decodes a plain Avro datum written with version `version` of the schema of `kind` into
    /// the current type (fields a version lacks take their defaults). The bytes must hold
    /// exactly one datum.
    pub fn decode_version<T: DeserializeOwned>(
        &self,
        kind: SchemaKind,
        version: u32,
        bytes: &[u8],
    ) -> Result<T, CodecError> {
        self.check_size(bytes.len())?;
        let schema = self
            .fast_schema(kind, version)
            .ok_or_else(|| unknown_version(kind, version.to_string()))?;
        let mut state = DeserializerState::from_slice(bytes, schema);
        let value = T::deserialize(state.deserializer()).map_err(|e| CodecError::AvroDecode {
            name: kind.name(),
            message: e.to_string(),
        })?;
        check_consumed(kind, unread(state.into_reader()))?;
        Ok(value)
    }

    /// Decodes a plain Avro datum with apache-avro's generic reader (the reference path). The
    /// bytes must hold exactly one datum.
    pub fn decode_generic<T: DeserializeOwned>(
        &self,
        kind: SchemaKind,
        bytes: &[u8],
    ) -> Result<T, CodecError> {
        self.decode_apache(kind, &self.generic[kind.index()], None, bytes)
    }

    /// Decodes a datum written with `writer`, a schema compatible with the reader schema of
    /// `kind`, through apache-avro's schema resolution (fields added with defaults, removed or
    /// reordered). The bytes must hold exactly one datum.
    pub fn decode_resolved<T: DeserializeOwned>(
        &self,
        kind: SchemaKind,
        writer: &apache_avro::Schema,
        bytes: &[u8],
    ) -> Result<T, CodecError> {
        let reader = &self.generic[kind.index()];
        self.decode_apache(kind, writer, Some(reader), bytes)
    }

    /// One datum written with `writer` through apache-avro's generic reader, resolved against
    /// `reader` when given; the bytes must hold exactly that datum.
    fn decode_apache<T: DeserializeOwned>(
        &self,
        kind: SchemaKind,
        writer: &apache_avro::Schema,
        reader: Option<&apache_avro::Schema>,
        mut bytes: &[u8],
    ) -> Result<T, CodecError> {
        self.check_size(bytes.len())?;
        let err = |e: apache_avro::Error| CodecError::AvroDecode {
            name: kind.name(),
            message: e.to_string(),
        };
        let value = apache_avro::from_avro_datum(writer, &mut bytes, reader).map_err(err)?;
        check_consumed(kind, bytes.len())?;
        apache_avro::from_value(&value).map_err(err)
    }

    /// Decodes and validates an agent action written with `writer` (see
    /// [`Codec::decode_resolved`]).
    pub fn decode_action_resolved(
        &self,
        writer: &apache_avro::Schema,
        bytes: &[u8],
    ) -> Result<AgentAction, CodecError> {
        let action: AgentAction = self.decode_resolved(SchemaKind::AgentAction, writer, bytes)?;
        action.validate(&self.limits)?;
        Ok(action)
    }

    /// Encodes a record as a Confluent-framed datum of schema `id` (typed encoder).
    pub fn encode_framed<T: Serialize>(
        &self,
        kind: SchemaKind,
        value: &T,
        id: u32,
    ) -> Result<Vec<u8>, CodecError> {
        let mut config = serde_avro_fast::ser::SerializerConfig::new(self.current_fast(kind));
        let mut buf = Vec::with_capacity(match kind {
            SchemaKind::Escalation => 2048,
            _ => 512,
        });
        buf.push(0);
        buf.extend_from_slice(&id.to_be_bytes());
        serde_avro_fast::to_datum(value, buf, &mut config).map_err(|e| CodecError::Encode {
            name: kind.name(),
            message: e.to_string(),
        })
    }

    /// Encodes a record as a plain Avro datum (typed encoder).
    pub fn encode<T: Serialize>(&self, kind: SchemaKind, value: &T) -> Result<Vec<u8>, CodecError> {
        let mut config = serde_avro_fast::ser::SerializerConfig::new(self.current_fast(kind));
        // Sized for a typical record up front: growing from empty costs more than the encoding.
        let buf = Vec::with_capacity(match kind {
            SchemaKind::Escalation => 2048,
            _ => 512,
        });
        serde_avro_fast::to_datum(value, buf, &mut config).map_err(|e| CodecError::Encode {
            name: kind.name(),
            message: e.to_string(),
        })
    }

    /// Encodes a record with apache-avro (reference path).
    pub fn encode_generic<T: Serialize>(
        &self,
        kind: SchemaKind,
        value: &T,
    ) -> Result<Vec<u8>, CodecError> {
        let err = |e: apache_avro::Error| CodecError::Encode {
            name: kind.name(),
            message: e.to_string(),
        };
        let schema = &self.generic[kind.index()];
        let value = apache_avro::to_value(value).map_err(err)?;
        let value = value.resolve(schema).map_err(err)?;
        apache_avro::to_avro_datum(schema, value).map_err(err)
    }

    /// The typed decoder's schema of the current version of `kind`.
    fn current_fast(&self, kind: SchemaKind) -> &serde_avro_fast::Schema {
        let versions = &self.fast[kind.index()];
        &versions[versions.len() - 1]
    }

    /// Decodes and validates an agent action from a plain Avro datum of the current version.
    pub fn decode_action(&self, bytes: &[u8]) -> Result<AgentAction, CodecError> {
        let action: AgentAction = self.decode(SchemaKind::AgentAction, bytes)?;
        action.validate(&self.limits)?;
        Ok(action)
    }

    /// Decodes and validates an agent action from a plain Avro datum of the version its
    /// `headers` name (see [`Codec::decode_record`]).
    pub fn decode_action_record(
        &self,
        headers: &[(String, Vec<u8>)],
        bytes: &[u8],
    ) -> Result<AgentAction, CodecError> {
        self.decode_action_version(super::wire::schema_version(headers), bytes)
    }

    /// [`Codec::decode_action_record`] for a caller that read the version header itself (see
    /// [`Codec::decode_header_version`]).
    pub fn decode_action_version(
        &self,
        version: Result<u32, String>,
        bytes: &[u8],
    ) -> Result<AgentAction, CodecError> {
        let action: AgentAction =
            self.decode_header_version(SchemaKind::AgentAction, version, bytes)?;
        action.validate(&self.limits)?;
        Ok(action)
    }

    /// Decodes and validates an agent action from its JSON form.
    pub fn decode_action_json(&self, text: &str) -> Result<AgentAction, CodecError> {
        self.check_size(text.len())?;
        let json = |message: String| CodecError::Json {
            name: "AgentAction",
            message,
        };
        let mut de = serde_json::Deserializer::from_str(text);
        let action: AgentAction = serde_path_to_error::deserialize(&mut de).map_err(|e| {
            let at = e.path().to_string();
            match at.as_str() {
                "." => json(e.into_inner().to_string()),
                _ => json(format!("field `{at}`: {}", e.into_inner())),
            }
        })?;
        de.end().map_err(|e| json(e.to_string()))?;
        action.validate(&self.limits)?;
        Ok(action)
    }
}

/// A record of `kind` naming a schema version (`found`, as written) this handoff does not ship.
fn unknown_version(kind: SchemaKind, found: String) -> CodecError {
    CodecError::UnknownVersion {
        name: kind.name(),
        header: super::wire::SCHEMA_VERSION_HEADER,
        version: found,
        current: kind.current_version(),
    }
}

/// Bytes the typed decoder has not read.
fn unread(mut rest: SliceRead<'_>) -> usize {
    // A slice reader hands out what is left of its slice; it cannot fail.
    rest.fill_buf().map_or(0, <[u8]>::len)
}

/// Refuses bytes left after a datum: a record holds exactly one.
fn check_consumed(kind: SchemaKind, left: usize) -> Result<(), CodecError> {
    if left > 0 {
        return Err(CodecError::TrailingBytes {
            name: kind.name(),
            left,
        });
    }
    Ok(())
}
