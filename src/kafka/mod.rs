//! Every Kafka client handoff makes, built from one settings object (`[kafka]`).
//!
//! A client's properties are layered: `bootstrap.servers`, then the role's defaults, then
//! `[kafka.common]`, then `[kafka.consumer]` or `[kafka.producer]`, then the properties handoff
//! owns ([`crate::config::kafka::OWNED`], which the settings' validation reads, so a user who
//! sets an owned property is refused at start-up with the reason, never silently overwritten).
//!
//! - [`admin`]: reachability (retried until `connect_timeout`), topic creation, partition
//!   counts and the co-partitioning check;
//! - [`changelog`]: reading partitions of a topic from the beginning to their end;
//! - [`range`]: reading a topic, or a time range of it, back, always to an end (the tools);
//! - [`record`]: an [`Output`](crate::output::Output) as a producer record, and the one policy
//!   for a full producer queue.

pub mod admin;
pub mod changelog;
pub mod range;
pub mod record;

use crate::config::kafka::Side;
use crate::config::KafkaSettings;
use rdkafka::config::ClientConfig;
use rdkafka::error::KafkaError;
use std::time::Duration;

/// What a client is for; each role has its own defaults and owned properties.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role<'a> {
    /// The processor's group member: offsets are stored by handoff after delivery.
    Member,
    /// A member of a helper group `<group_id>-<suffix>` (simulated people) that commits what it
    /// reads.
    Helper(&'a str),
    /// A member of a helper group `<group_id>-<suffix>` whose offsets handoff stores only once
    /// what it read is settled (the inbox's notifier: delivered or abandoned).
    Settling(&'a str),
    /// Reads topics back by assignment (changelog restore, replay, reports): never commits.
    /// Its group is `<group_id>-<suffix>`.
    Reader(&'a str),
    /// Writes records (idempotent).
    Producer,
    /// Metadata and topic administration.
    Admin,
}

impl Role<'_> {
    fn side(self) -> Side {
        match self {
            Role::Member | Role::Helper(_) | Role::Settling(_) | Role::Reader(_) => Side::Consumer,
            Role::Producer => Side::Producer,
            Role::Admin => Side::Neither,
        }
    }
}

/// Defaults a user may override, by side.
const CONSUMER_DEFAULTS: &[(&str, &str)] = &[
    ("auto.offset.reset", "earliest"),
    // Some brokers (tansu among them) hold a fetch for its whole maximum wait even when
    // records arrive: keep it short so decisions are not delayed by up to 500 ms.
    ("fetch.wait.max.ms", "20"),
];
const MEMBER_DEFAULTS: &[(&str, &str)] = &[
    // Stored offsets are committed every second: after a crash, at most about a second of work
    // is processed again.
    ("auto.commit.interval.ms", "1000"),
    // Consumer lag per partition (handoff_consumer_lag_records) comes from these statistics.
    ("statistics.interval.ms", "5000"),
];
const PRODUCER_DEFAULTS: &[(&str, &str)] = &[("linger.ms", "5")];

/// The librdkafka configuration of a client in `role`.
pub fn client_config(k: &KafkaSettings, role: Role<'_>) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &k.bootstrap_servers);
    let side = role.side();
    let defaults: &[&[(&str, &str)]] = match role {
        Role::Member => &[CONSUMER_DEFAULTS, MEMBER_DEFAULTS],
        Role::Helper(_) | Role::Settling(_) | Role::Reader(_) => &[CONSUMER_DEFAULTS],
        Role::Producer => &[PRODUCER_DEFAULTS],
        Role::Admin => &[],
    };
    for (key, v) in defaults.iter().flat_map(|d| d.iter()) {
        c.set(*key, *v);
    }
    for (key, v) in &k.common {
        c.set(key, v);
    }
    let own = match side {
        Side::Consumer => Some(&k.consumer),
        Side::Producer => Some(&k.producer),
        Side::Neither => None,
    };
    for (key, v) in own.into_iter().flatten() {
        c.set(key, v);
    }
    let session = k.session_timeout.as_millis().to_string();
    match role {
        Role::Member => {
            c.set("group.id", &k.group_id)
                .set("enable.auto.commit", "true")
                .set("enable.auto.offset.store", "false")
                .set("session.timeout.ms", &session)
                .set("partition.assignment.strategy", "range");
        }
        Role::Helper(suffix) => {
            c.set("group.id", format!("{}-{suffix}", k.group_id))
                .set("session.timeout.ms", &session);
        }
        Role::Settling(suffix) => {
            c.set("group.id", format!("{}-{suffix}", k.group_id))
                .set("session.timeout.ms", &session)
                .set("enable.auto.commit", "true")
                .set("enable.auto.offset.store", "false");
        }
        Role::Reader(suffix) => {
            c.set("group.id", format!("{}-{suffix}", k.group_id))
                .set("enable.auto.commit", "false");
        }
        Role::Producer => {
            c.set("enable.idempotence", "true");
        }
        Role::Admin => {}
    }
    c
}

/// Why a Kafka operation failed. The class drives what the caller does: `Unreachable` is
/// retried until `connect_timeout`, the others stop the command.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The brokers did not answer within the time allowed.
    #[error("cannot reach Kafka at {bootstrap} within {timeout:?}: {reason}")]
    Unreachable {
        /// Bootstrap servers.
        bootstrap: String,
        /// How long handoff tried.
        timeout: Duration,
        /// librdkafka's last word on why (a TLS handshake or authentication failure names
        /// itself here), else the metadata request's error.
        reason: String,
    },
    /// A client could not be created or used.
    #[error("kafka {what}: {source}")]
    Client {
        /// What was being done.
        what: &'static str,
        /// The client's error.
        source: KafkaError,
    },
    /// A topic could not be created.
    #[error("cannot create topic {topic}: {message}")]
    CreateTopic {
        /// Topic.
        topic: String,
        /// Broker's answer.
        message: String,
    },
    /// A topic that must be partitioned like the input is not.
    #[error(
        "{field} = {topic:?} has {partitions} partition(s) (0: it does not exist) but {input:?} \
         has {input_partitions}: a session's events, decisions and state must share partition \
         numbers; give them the same count"
    )]
    NotCopartitioned {
        /// Setting naming the topic.
        field: &'static str,
        /// Topic.
        topic: String,
        /// Its partitions.
        partitions: usize,
        /// Input topic.
        input: String,
        /// Its partitions.
        input_partitions: usize,
    },
    /// A topic does not exist.
    #[error("topic {topic:?} does not exist on {bootstrap}")]
    MissingTopic {
        /// Topic.
        topic: String,
        /// Bootstrap servers.
        bootstrap: String,
    },
}

impl Error {
    /// An error of a client doing `what`.
    pub fn client(what: &'static str) -> impl FnOnce(KafkaError) -> Error {
        move |source| Error::Client { what, source }
    }
}

/// Waits, at most `within`, until every Kafka client of this process is destroyed and
/// librdkafka's threads have ended; true when they have. Dropping a client starts its
/// destruction, and librdkafka's own threads may outlive the drop: the process waits for them
/// before it exits, so that none is still using TLS while the process's exit handlers tear
/// OpenSSL down.
pub fn wait_destroyed(within: std::time::Duration) -> bool {
    // librdkafka turns the milliseconds into microseconds in a C int: keep below its limit.
    let ms = within.as_millis().min(2_000_000) as i32;
    // SAFETY: rd_kafka_wait_destroyed only reads librdkafka's global counters and sleeps; it
    // takes no pointer and may be called at any time, with or without clients alive; `ms` is
    // small enough for its internal microsecond conversion.
    unsafe { rdkafka::bindings::rd_kafka_wait_destroyed(ms) == 0 }
}

/// Creates a client of type `C` for `role`.
pub fn create<C: rdkafka::config::FromClientConfig>(
    k: &KafkaSettings,
    role: Role<'_>,
    what: &'static str,
) -> Result<C, Error> {
    client_config(k, role).create().map_err(Error::client(what))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::kafka::tests::settings;

    #[test]
    fn owned_properties_win_over_user_maps_and_defaults_yield_to_them() {
        let k = settings("consumer", "fetch.wait.max.ms", "100");
        let c = client_config(&k, Role::Member);
        assert_eq!(c.get("fetch.wait.max.ms"), Some("100"));
        assert_eq!(c.get("enable.auto.offset.store"), Some("false"));
        assert_eq!(c.get("partition.assignment.strategy"), Some("range"));
        assert_eq!(c.get("group.id"), Some(k.group_id.as_str()));
        let r = client_config(&k, Role::Reader("restore"));
        assert_eq!(r.get("enable.auto.commit"), Some("false"));
        assert_eq!(
            r.get("group.id").unwrap(),
            format!("{}-restore", k.group_id)
        );
        let p = client_config(&k, Role::Producer);
        assert_eq!(
            p.get("fetch.wait.max.ms"),
            None,
            "consumer map stays off producers"
        );
        assert_eq!(p.get("enable.idempotence"), Some("true"));
    }

    #[test]
    fn common_properties_reach_every_role() {
        let k = settings("common", "security.protocol", "ssl");
        for role in [
            Role::Member,
            Role::Helper("x"),
            Role::Settling("z"),
            Role::Reader("y"),
            Role::Producer,
            Role::Admin,
        ] {
            assert_eq!(
                client_config(&k, role).get("security.protocol"),
                Some("ssl")
            );
        }
    }

    #[test]
    fn a_settling_member_stores_its_offsets_itself() {
        let k = settings("consumer", "fetch.min.bytes", "1");
        let c = client_config(&k, Role::Settling("inbox"));
        assert_eq!(c.get("group.id"), Some("handoff-inbox"));
        assert_eq!(c.get("enable.auto.offset.store"), Some("false"));
        assert_eq!(c.get("enable.auto.commit"), Some("true"));
        assert_eq!(
            c.get("fetch.min.bytes"),
            Some("1"),
            "the consumer map applies"
        );
    }
}
