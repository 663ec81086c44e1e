//! The librdkafka properties of `[kafka]`: which ones handoff owns and why, their validation
//! (by librdkafka itself, without I/O), and what the settings imply for a producer
//! (`message.max.bytes`). The Kafka edge (`crate::kafka`) builds clients from these settings.

use super::KafkaSettings;
use crate::problems::Problems;
use rdkafka::config::ClientConfig;
use rdkafka::error::KafkaError;
use std::collections::BTreeMap;

/// Which user map applies to a role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// `[kafka.consumer]` applies.
    Consumer,
    /// `[kafka.producer]` applies.
    Producer,
    /// Only `[kafka.common]` (the admin client).
    Neither,
}

/// A property handoff sets itself, and why a user may not.
#[derive(Debug)]
pub struct Owned {
    /// librdkafka property name.
    pub key: &'static str,
    /// Owned on consumers.
    consumer: bool,
    /// Owned on producers.
    producer: bool,
    /// Shown to a user who sets it.
    pub why: &'static str,
}

/// Properties handoff owns. Setting one under `[kafka.common]`, or under the map of a side
/// that owns it, is refused at start-up.
pub const OWNED: &[Owned] = &[
    Owned {
        key: "bootstrap.servers",
        consumer: true,
        producer: true,
        why: "use kafka.bootstrap_servers",
    },
    Owned {
        key: "group.id",
        consumer: true,
        producer: false,
        why: "use kafka.group_id",
    },
    Owned {
        key: "session.timeout.ms",
        consumer: true,
        producer: false,
        why: "use kafka.session_timeout",
    },
    Owned {
        key: "enable.auto.commit",
        consumer: true,
        producer: false,
        why: "handoff commits only offsets whose outputs are delivered",
    },
    Owned {
        key: "enable.auto.offset.store",
        consumer: true,
        producer: false,
        why: "handoff stores an offset only after every output of it is delivered",
    },
    Owned {
        key: "partition.assignment.strategy",
        consumer: true,
        producer: false,
        why: "decisions must reach the member holding their escalations: handoff uses the range \
              assignor over co-partitioned topics",
    },
    Owned {
        key: "enable.idempotence",
        consumer: false,
        producer: true,
        why: "handoff's producer is idempotent, so producer retries never duplicate",
    },
];

fn owned(key: &str, side: Side) -> Option<&'static Owned> {
    OWNED.iter().find(|o| {
        o.key == key
            && match side {
                Side::Consumer => o.consumer,
                Side::Producer => o.producer,
                Side::Neither => o.consumer || o.producer,
            }
    })
}

/// librdkafka's default `message.max.bytes`.
pub const DEFAULT_MESSAGE_MAX_BYTES: usize = 1_000_000;

impl KafkaSettings {
    /// The producer's `message.max.bytes` (`[kafka.producer]`, else `[kafka.common]`, else
    /// librdkafka's default): the largest record handoff may send.
    pub fn message_max_bytes(&self) -> usize {
        self.producer
            .get("message.max.bytes")
            .or_else(|| self.common.get("message.max.bytes"))
            .and_then(|v| v.parse().ok())
            .unwrap_or(DEFAULT_MESSAGE_MAX_BYTES)
    }
}

impl std::fmt::Debug for KafkaSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let masked = |m: &BTreeMap<String, String>| -> BTreeMap<String, String> {
            m.iter()
                .map(|(k, v)| {
                    let shown = if super::is_secret(k) { "***" } else { v };
                    (k.clone(), shown.to_string())
                })
                .collect()
        };
        f.debug_struct("KafkaSettings")
            .field("bootstrap_servers", &self.bootstrap_servers)
            .field("group_id", &self.group_id)
            .field("create_topics", &self.create_topics)
            .field("partitions", &self.partitions)
            .field("replication_factor", &self.replication_factor)
            .field("session_timeout", &self.session_timeout)
            .field("common", &masked(&self.common))
            .field("consumer", &masked(&self.consumer))
            .field("producer", &masked(&self.producer))
            .finish()
    }
}

/// `sasl.*` and `ssl.*` properties are used only when `security.protocol` asks for SASL or
/// TLS: set under another protocol (plaintext by default), they would be ignored until a
/// connection fails. Each is named.
fn check_protocol(k: &KafkaSettings, problems: &mut Problems) {
    let protocol = [&k.common, &k.consumer, &k.producer]
        .iter()
        .find_map(|m| m.get("security.protocol"))
        .map(|p| p.to_ascii_lowercase())
        .unwrap_or_else(|| "plaintext".into());
    for (map, props) in [
        ("common", &k.common),
        ("consumer", &k.consumer),
        ("producer", &k.producer),
    ] {
        for key in props.keys() {
            let (needs, family) = if key.starts_with("sasl.") {
                ("sasl", "SASL")
            } else if key.starts_with("ssl.") {
                ("ssl", "TLS")
            } else {
                continue;
            };
            if !protocol.contains(needs) {
                problems.push(
                    format!("kafka.{map}.{key}"),
                    format!(
                        "is set, but security.protocol is {protocol:?}, which uses no {family}: \
                         set security.protocol (sasl_ssl, sasl_plaintext or ssl) or remove it"
                    ),
                );
            }
        }
    }
}

/// Checks the user's librdkafka properties without I/O: owned properties are refused (with
/// the reason), `sasl.*`/`ssl.*` need a protocol that uses them, and every property is parsed
/// by librdkafka itself, so a misspelt name or a bad value is reported with the others before
/// anything connects.
pub fn validate(k: &KafkaSettings, problems: &mut Problems) {
    check_protocol(k, problems);
    for (map, side, props) in [
        ("common", Side::Neither, &k.common),
        ("consumer", Side::Consumer, &k.consumer),
        ("producer", Side::Producer, &k.producer),
    ] {
        for (key, value) in props {
            let field = format!("kafka.{map}.{key}");
            if let Some(o) = owned(key, side) {
                problems.push(field, format!("is set by handoff itself: {}", o.why));
                continue;
            }
            // A secret reference is read at start-up, after validation (see config::secret).
            let source = super::secret::Source::of(value);
            if source != super::secret::Source::Literal(value) {
                if let Some(p) = source.check() {
                    problems.push(field, p);
                }
                continue;
            }
            let mut c = ClientConfig::new();
            c.set(key, value);
            if let Err(e) = c.create_native_config() {
                let shown = if super::is_secret(key) {
                    "***".to_string()
                } else {
                    format!("{value:?}")
                };
                problems.push(
                    field,
                    format!("{shown} is refused by librdkafka: {}", native(&e)),
                );
            }
        }
    }
}

/// librdkafka's own words for a configuration error.
fn native(e: &KafkaError) -> String {
    match e {
        KafkaError::ClientConfig(_, desc, _, _) => desc.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Default settings with one property set in one map.
    pub(crate) fn settings(map: &str, key: &str, value: &str) -> KafkaSettings {
        let mut k = KafkaSettings::default();
        let m = match map {
            "common" => &mut k.common,
            "consumer" => &mut k.consumer,
            _ => &mut k.producer,
        };
        m.insert(key.into(), value.into());
        k
    }

    #[test]
    fn validation_refuses_owned_and_unknown_properties_naming_them() {
        let table = [
            (
                "consumer",
                "enable.auto.commit",
                "false",
                "is set by handoff",
            ),
            ("common", "group.id", "x", "kafka.group_id"),
            ("producer", "enable.idempotence", "false", "idempotent"),
            (
                "consumer",
                "partition.assignment.strategy",
                "roundrobin",
                "range",
            ),
            ("producer", "linger.msec", "5", "librdkafka"),
            ("consumer", "fetch.wait.max.ms", "soon", "librdkafka"),
        ];
        for (map, key, value, says) in table {
            let mut p = Problems::default();
            validate(&settings(map, key, value), &mut p);
            let text = p.to_string();
            assert!(
                text.contains(&format!("kafka.{map}.{key}")) && text.contains(says),
                "{map}.{key}: {text}"
            );
        }
        let mut p = Problems::default();
        validate(&settings("producer", "group.id", "x"), &mut p);
        assert!(p.is_empty(), "group.id on a producer is harmless: {p}");
        let mut p = Problems::default();
        validate(&settings("consumer", "fetch.wait.max.ms", "50"), &mut p);
        assert!(p.is_empty(), "{p}");
    }

    #[test]
    fn sasl_and_tls_properties_under_plaintext_are_refused_naming_them() {
        let mut p = Problems::default();
        validate(&settings("common", "sasl.username", "u"), &mut p);
        let text = p.to_string();
        assert!(
            text.contains(
                "kafka.common.sasl.username: is set, but security.protocol is \"plaintext\""
            ),
            "{text}"
        );
        let mut k = settings("consumer", "ssl.ca.location", "/ca.pem");
        k.common
            .insert("security.protocol".into(), "SASL_PLAINTEXT".into());
        let mut p = Problems::default();
        validate(&k, &mut p);
        assert!(
            p.to_string().contains("kafka.consumer.ssl.ca.location"),
            "{p}"
        );
        assert!(p.to_string().contains("uses no TLS"), "{p}");
        let mut k = settings("common", "ssl.ca.location", "/ca.pem");
        k.common
            .insert("security.protocol".into(), "SASL_SSL".into());
        k.common
            .insert("sasl.mechanisms".into(), "SCRAM-SHA-512".into());
        let mut p = Problems::default();
        validate(&k, &mut p);
        assert!(p.is_empty(), "{p}");
    }

    #[test]
    fn debug_output_masks_secret_properties() {
        let mut k = settings("common", "sasl.password", "hunter2");
        k.consumer
            .insert("ssl.key.password".into(), "s3cret".into());
        let shown = format!("{k:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("s3cret"),
            "{shown}"
        );
        assert!(shown.contains("\"sasl.password\": \"***\""), "{shown}");
    }

    #[test]
    fn a_refused_secret_is_not_shown() {
        let mut p = Problems::default();
        validate(&settings("common", "sasl.password", "hunter2"), &mut p);
        // librdkafka accepts any password string; the point is it never appears.
        assert!(!p.to_string().contains("hunter2"));
    }

    #[test]
    fn message_max_bytes_comes_from_the_producer_map_then_common_then_librdkafka() {
        assert_eq!(KafkaSettings::default().message_max_bytes(), 1_000_000);
        let common = settings("common", "message.max.bytes", "2000000");
        assert_eq!(common.message_max_bytes(), 2_000_000);
        let mut both = settings("producer", "message.max.bytes", "3000000");
        both.common
            .insert("message.max.bytes".into(), "2000000".into());
        assert_eq!(both.message_max_bytes(), 3_000_000);
    }
}
