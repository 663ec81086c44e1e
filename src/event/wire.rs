//! The wire contract beyond the Avro schemas: the headers handoff reads and writes, and the
//! Confluent framing of input records.

/// Header marking drill traffic (`true`): `handoff replay` sets it on every record it copies.
pub const DRILL_HEADER: &str = "handoff.drill";

/// The header that marks a record as drill traffic, as written.
pub const DRILL: (&str, &[u8]) = (DRILL_HEADER, b"true");

/// Header naming the record type on role topics: `escalation` or `digest`.
pub const KIND_HEADER: &str = "handoff.kind";

/// Header naming the schema version a plain Avro value was written with (`2`); a record
/// without it was written with version 1. handoff writes it on every record whose schema has
/// more than one version (`schemas/history/`).
pub const SCHEMA_VERSION_HEADER: &str = "handoff.schema.version";

/// The schema version a record's headers name: 1 without the header; the value as found when
/// it is not a version number.
pub fn schema_version(headers: &[(String, Vec<u8>)]) -> Result<u32, String> {
    let value = headers
        .iter()
        .find(|(k, _)| k == SCHEMA_VERSION_HEADER)
        .map(|(_, v)| v.as_slice());
    parse_schema_version(value)
}

/// The schema version a [`SCHEMA_VERSION_HEADER`] value names (`None`: no header, version 1);
/// the value as found when it is not a version number.
pub fn parse_schema_version(value: Option<&[u8]>) -> Result<u32, String> {
    let Some(v) = value else {
        return Ok(1);
    };
    std::str::from_utf8(v)
        .ok()
        .and_then(|t| t.parse::<u32>().ok())
        .filter(|n| *n >= 1)
        .ok_or_else(|| String::from_utf8_lossy(v).into_owned())
}

/// The header a record of `kind` written now carries: none while its schema has one version.
pub fn version_header(kind: super::SchemaKind) -> Option<(&'static str, &'static [u8])> {
    const VERSIONS: [&[u8]; 9] = [b"1", b"2", b"3", b"4", b"5", b"6", b"7", b"8", b"9"];
    match kind.current_version() {
        1 => None,
        n => Some((SCHEMA_VERSION_HEADER, VERSIONS[n as usize - 1])),
    }
}

/// [`version_header`] as the owned headers of a record read (an `Input`'s).
pub fn version_headers(kind: super::SchemaKind) -> Vec<(String, Vec<u8>)> {
    version_header(kind)
        .map(|(k, v)| (k.to_string(), v.to_vec()))
        .into_iter()
        .collect()
}

/// True when a record carries the drill header.
pub fn is_drill(headers: &[(String, Vec<u8>)]) -> bool {
    headers
        .iter()
        .any(|(k, v)| k == DRILL_HEADER && v.as_slice() == b"true")
}

/// Header names of dead letters, after the Kafka Connect convention, and handoff's own.
pub mod dlq_headers {
    /// Source topic.
    pub const TOPIC: &str = "__connect.errors.topic";
    /// Source partition.
    pub const PARTITION: &str = "__connect.errors.partition";
    /// Source offset.
    pub const OFFSET: &str = "__connect.errors.offset";
    /// Error class (handoff's failure reason, e.g. `avro_decode`).
    pub const CLASS: &str = "__connect.errors.exception.class.name";
    /// Error message (names the field and the value).
    pub const MESSAGE: &str = "__connect.errors.exception.message";
    /// How handoff classes the failure (`dead_letter`).
    pub const ERROR_CLASS: &str = "handoff.error.class";
    /// Size in bytes of the original value.
    pub const ORIGINAL_BYTES: &str = "handoff.original.bytes";
    /// `omitted` when the original value was too large to carry (the record's value is then
    /// null); absent when the value is the original.
    pub const VALUE: &str = "handoff.value";
}

/// Why a Confluent-framed record's frame is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameError {
    /// Short reason (`wire_format`, `unknown_schema`).
    pub reason: &'static str,
    /// Names what was found.
    pub message: String,
}

/// The schema id and the Avro datum of a Confluent-framed record (magic byte 0, a 4-byte
/// big-endian schema id, then the datum).
pub fn split_frame(bytes: &[u8]) -> Result<(u32, &[u8]), FrameError> {
    if bytes.len() < 5 || bytes[0] != 0 {
        return Err(FrameError {
            reason: "wire_format",
            message: format!(
                "not Confluent wire format: expected magic byte 0 and a 4-byte schema id, \
                 found {} byte(s) starting with {:?}",
                bytes.len(),
                bytes.first()
            ),
        });
    }
    let id = u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]);
    Ok((id, &bytes[5..]))
}

/// `datum` framed with schema `id`, in a new buffer.
pub fn frame(id: u32, datum: &[u8]) -> Vec<u8> {
    let mut framed = Vec::with_capacity(datum.len() + 5);
    framed.push(0);
    framed.extend_from_slice(&id.to_be_bytes());
    framed.extend_from_slice(datum);
    framed
}

/// The Avro datum inside a Confluent-framed record, accepting only `schema_ids`.
pub fn unframe<'a>(schema_ids: &[u32], bytes: &'a [u8]) -> Result<&'a [u8], FrameError> {
    let (id, datum) = split_frame(bytes)?;
    if !schema_ids.contains(&id) {
        return Err(FrameError {
            reason: "unknown_schema",
            message: format!(
                "schema id {id} is not one of the configured input.schema_ids {schema_ids:?}"
            ),
        });
    }
    Ok(datum)
}
