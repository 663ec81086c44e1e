//! How a [`SessionRecord`] is written to and read from the changelog.
//!
//! Two encodings, told apart by the first byte of the value:
//! - **binary** (a layout byte followed by the record in [postcard]'s format): compact and
//!   cheap to encode; what this version writes by default, in layout `0x03`; layouts `0x02`
//!   (before open actions kept their approvals) and `0x01` (before `AgentAction` gained
//!   `tool_call` and an optional `confidence`) are still read;
//! - **JSON** (the value starts with `{`): what earlier versions wrote. Compacted changelogs keep
//!   old values for as long as their session lives, so JSON is always read.
//!
//! postcard is positional: a field added to, removed from or reordered in any type of the record
//! (including [`crate::event::AgentAction`]) changes the layout. Such a change takes a new
//! version byte and keeps a reader for the old layout (the fields that changed read it through
//! [`crate::event::layout`]); the golden-bytes test below fails first.

use super::SessionRecord;
use serde::{Deserialize, Serialize};

/// The first byte of a binary changelog value, layout 1 (read, no longer written).
pub const BINARY_V1: u8 = 0x01;

/// The first byte of a binary changelog value, layout 2 (read, no longer written).
pub const BINARY_V2: u8 = 0x02;

/// The first byte of a binary changelog value, layout 3: what this version writes.
pub const BINARY_V3: u8 = 0x03;

/// The encoding a processor writes (`[pipeline] changelog_format`). Both are always read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangelogFormat {
    /// A version byte, then postcard.
    #[default]
    Binary,
    /// JSON text, as versions before the binary form wrote (for a rolling upgrade: old
    /// processors and inboxes cannot read the binary form).
    Json,
}

/// A changelog value that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// A JSON value (an earlier version's) that does not parse.
    #[error("JSON changelog record: {0}")]
    Json(#[from] serde_json::Error),
    /// A binary value that does not parse.
    #[error("binary changelog record (layout {0}): {1}")]
    Binary(u8, postcard::Error),
    /// A first byte that is neither JSON nor a known version (written by a newer version).
    #[error("changelog record with unknown version byte {0:#04x} (written by a newer handoff?)")]
    UnknownVersion(u8),
}

impl SessionRecord {
    /// Appends this record to `out` in `format`.
    pub fn encode(&self, format: ChangelogFormat, out: &mut Vec<u8>) -> Result<(), RecordError> {
        match format {
            ChangelogFormat::Json => serde_json::to_writer(&mut *out, self)?,
            ChangelogFormat::Binary => {
                out.push(BINARY_V3);
                postcard::to_io(self, &mut *out).map_err(|e| RecordError::Binary(BINARY_V3, e))?;
            }
        }
        Ok(())
    }

    /// Reads a changelog value in either encoding (the processor's restore and the inbox read
    /// the same form).
    pub fn decode(value: &[u8]) -> Result<SessionRecord, RecordError> {
        let binary = |layout: u8| {
            crate::event::layout::read_in(layout, || postcard::from_bytes(&value[1..]))
                .map_err(|e| RecordError::Binary(layout, e))
        };
        match value.first() {
            Some(&BINARY_V3) => binary(3),
            Some(&BINARY_V2) => binary(2),
            Some(&BINARY_V1) => binary(1),
            Some(&b) if b < 0x20 && !b.is_ascii_whitespace() => Err(RecordError::UnknownVersion(b)),
            _ => Ok(serde_json::from_slice(value)?),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::canary::Expect;
    use crate::event::{
        ActionStatus, AgentAction, Customer, CustomerTier, DigestItem, DigestReason, HistoryEntry,
        Level, Tier,
    };
    use crate::matrix::SessionState;
    use crate::state::{GroupMember, OpenAction, OpenEscalation};

    fn state(n: u32) -> SessionState {
        SessionState {
            consecutive_low: n,
            turns: 10 + u64::from(n),
            last_event_ms: 1_700_000_000_000 + i64::from(n),
        }
    }

    /// A record that uses every field, with values that are not defaults.
    fn full() -> SessionRecord {
        let event = AgentAction {
            action_id: "a-1".into(),
            session_id: "s-1".into(),
            agent_id: "agent-7".into(),
            timestamp_ms: 1_700_000_000_123,
            action_type: "payment.refund".into(),
            confidence: Some(0.625),
            request: "refund my order \"42\" — ümlaut".into(),
            summary: "refund 42".into(),
            output: Some("Refunded.".into()),
            template_id: None,
            options: vec!["full".into(), "partial".into()],
            status: ActionStatus::Proposed,
            error: None,
            amount: Some(120.5),
            currency: Some("EUR".into()),
            customer: Some(Customer {
                id: "c-9".into(),
                tier: CustomerTier::Vip,
                prior_complaints: 2,
            }),
            reversible: true,
            affects_others: false,
            user_message: Some("please".into()),
            attributes: [("region".to_string(), "eu".to_string())].into(),
            tool_call: None,
        };
        let history = HistoryEntry {
            role: "support".into(),
            tier: Tier::Warm,
            escalated_at_ms: 1_700_000_000_150,
            reason: "timeout".into(),
        };
        let escalation = OpenEscalation {
            escalation_id: "e-1".into(),
            previous_ids: vec!["e-0a".into()],
            role: "support".into(),
            tier: Tier::Immediate,
            created_at_ms: 1_700_000_000_200,
            first_created_at_ms: 1_700_000_000_100,
            deadline_ms: Some(1_700_000_300_200),
            approved: false,
            more: false,
            sequence: 2,
            history: vec![history],
        };
        let item = DigestItem {
            reason: DigestReason::RateLimited,
            escalation_id: Some("e-2".into()),
            action_id: "a-2".into(),
            session_id: "s-1".into(),
            agent_id: "agent-7".into(),
            action_type: "file.delete".into(),
            level: Level::AskFirst,
            tier: Some(Tier::Warm),
            headline: "delete <b>x</b>".into(),
            triggers: vec!["policy_keyword".into()],
            created_at_ms: 1_700_000_000_300,
            deadline_ms: None,
        };
        SessionRecord {
            streak: state(2),
            applied: vec![(41, state(1)), (42, state(2))],
            open: vec![OpenAction {
                event,
                before: state(1),
                level: Level::AskFirst,
                fail_open: false,
                drill: false,
                escalations: vec![escalation],
                triggers: vec!["low_confidence".into()],
                members: vec![GroupMember {
                    action_id: "a-3".into(),
                    agent_id: "agent-7".into(),
                    action_type: "payment.refund".into(),
                    level: Level::AskFirst,
                    triggers: vec!["session_pattern".into()],
                }],
                rule_version: "v3".into(),
                canary: Some(Expect::Approve),
                approvals: Vec::new(),
                quorum: Default::default(),
            }],
            closed: vec!["e-0".into()],
            queued: vec![("support".into(), item)],
            touched_ms: 1_700_000_000_999,
        }
    }

    #[test]
    fn both_formats_round_trip_and_binary_is_smaller() {
        let record = full();
        let mut json = Vec::new();
        record.encode(ChangelogFormat::Json, &mut json).unwrap();
        let mut binary = Vec::new();
        record.encode(ChangelogFormat::Binary, &mut binary).unwrap();
        assert_eq!(json[0], b'{');
        assert_eq!(binary[0], BINARY_V3);
        assert_eq!(SessionRecord::decode(&json).unwrap(), record);
        assert_eq!(SessionRecord::decode(&binary).unwrap(), record);
        assert!(
            binary.len() * 2 < json.len(),
            "binary {} B, JSON {} B",
            binary.len(),
            json.len()
        );
    }

    #[test]
    fn encode_appends_to_what_is_there() {
        let mut out = b"keep".to_vec();
        SessionRecord::default()
            .encode(ChangelogFormat::Binary, &mut out)
            .unwrap();
        assert_eq!(&out[..5], b"keep\x03");
        assert_eq!(
            SessionRecord::decode(&out[4..]).unwrap(),
            SessionRecord::default()
        );
    }

    #[test]
    fn json_written_before_the_binary_form_is_still_read() {
        // A record as an earlier version wrote it: no `canary`, no `queued`, no `touched_ms`,
        // leading whitespace.
        let old = br#"  {"streak":{"consecutive_low":1,"turns":3,"last_event_ms":5},
            "applied":[[7,{"consecutive_low":0,"turns":2,"last_event_ms":4}]],
            "open":[],"closed":["e-9"]}"#;
        let r = SessionRecord::decode(old).unwrap();
        assert_eq!(r.streak.turns, 3);
        assert_eq!(r.applied[0].0, 7);
        assert_eq!(r.closed, vec!["e-9".to_string()]);
        assert!(r.queued.is_empty());
    }

    #[test]
    fn unreadable_values_name_what_is_wrong() {
        let cases: &[(&[u8], &str)] = &[
            (b"\x04abc", "unknown version byte 0x04"),
            (b"\x03\xff\xff", "binary changelog record (layout 3)"),
            (b"\x00", "unknown version byte 0x00"),
            (b"\x01\xff\xff", "binary changelog record (layout 1)"),
            (b"\x02\xff\xff", "binary changelog record (layout 2)"),
            (b"{\"streak\":", "JSON changelog record"),
            (b"not json", "JSON changelog record"),
        ];
        for (value, expected) in cases {
            let e = SessionRecord::decode(value).unwrap_err().to_string();
            assert!(e.contains(expected), "{value:?}: {e}");
        }
    }

    /// [`full`] with what layout 2 added: a tool call, and no confidence.
    fn full_v2() -> SessionRecord {
        let mut r = full();
        let event = &mut r.open[0].event;
        event.confidence = None;
        event.tool_call = Some(crate::event::ToolCall {
            name: "issue_refund".into(),
            arguments: r#"{"amount":120.5}"#.into(),
            call_id: Some("call-1".into()),
            framework: Some("langgraph".into()),
            run_id: None,
            arguments_schema: None,
        });
        r
    }

    /// [`full_v2`] with what layout 3 added: approvals collected, and a quorum of two.
    fn full_v3() -> SessionRecord {
        let mut r = full_v2();
        let action = &mut r.open[0];
        action.approvals = vec![crate::state::Approved {
            by: "alice".into(),
            role: "support".into(),
            at_ms: 1_700_000_000_400,
            via: Some("inbox-1".into()),
            context_sha256: Some("47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU".into()),
            chosen_option: Some("refund 42".into()),
        }];
        action.escalations[0].approved = true;
        action.escalations[0].more = true;
        action.quorum = crate::matrix::Quorum {
            approvals: 2,
            distinct_roles: true,
        };
        r
    }

    /// The layout of version 3, byte for byte. When this fails, the record's layout changed:
    /// give the new layout a new version byte and keep reading this one.
    #[test]
    fn version_3_layout_is_unchanged() {
        for record in [full(), full_v2(), full_v3()] {
            let mut out = Vec::new();
            record.encode(ChangelogFormat::Binary, &mut out).unwrap();
            assert_eq!(SessionRecord::decode(&out).unwrap(), record);
            let mut json = Vec::new();
            record.encode(ChangelogFormat::Json, &mut json).unwrap();
            assert_eq!(SessionRecord::decode(&json).unwrap(), record);
        }
        let mut out = Vec::new();
        full_v3().encode(ChangelogFormat::Binary, &mut out).unwrap();
        let hex: String = out.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, GOLDEN_V3, "binary changelog layout changed");
    }

    /// Values written in layout 2 (before approvals were kept) are still read: no approvals,
    /// one approval per role.
    #[test]
    fn version_2_values_are_still_read() {
        assert_eq!(
            SessionRecord::decode(&hex_bytes(GOLDEN_V2)).unwrap(),
            full_v2()
        );
    }

    /// Values written in layout 1 (before tool calls) are still read: the confidence they hold
    /// is a number, and there is no tool call.
    #[test]
    fn version_1_values_are_still_read() {
        assert_eq!(
            SessionRecord::decode(&hex_bytes(GOLDEN_V1)).unwrap(),
            full()
        );
    }

    fn hex_bytes(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    const GOLDEN_V2: &str = concat!(
        "02020c84a0abfef9620252010b82a0abfef96254020c84a0abfef9620103612d3103732d31076167",
        "656e742d37f6a1abfef9620e7061796d656e742e726566756e640020726566756e64206d79206f72",
        "646572202234322220e2809420c3bc6d6c61757409726566756e642034320109526566756e646564",
        "2e00020466756c6c077061727469616c0000010000000000205e4001034555520103632d39020401",
        "000106706c656173650106726567696f6e026575010c69737375655f726566756e64107b22616d6f",
        "756e74223a3132302e357d010663616c6c2d3101096c616e6767726170680000010b82a0abfef962",
        "0200000103652d310104652d306107737570706f72740190a3abfef962c8a1abfef96201d0f2cffe",
        "f96200040107737570706f727400aca2abfef9620774696d656f7574010e6c6f775f636f6e666964",
        "656e63650103612d33076167656e742d370e7061796d656e742e726566756e6402010f7365737369",
        "6f6e5f7061747465726e02763301000103652d300107737570706f7274000103652d3203612d3203",
        "732d31076167656e742d370b66696c652e64656c6574650201000f64656c657465203c623e783c2f",
        "623e010e706f6c6963795f6b6579776f7264d8a4abfef96200ceafabfef962",
    );

    const GOLDEN_V3: &str = concat!(
        "03020c84a0abfef9620252010b82a0abfef96254020c84a0abfef9620103612d3103732d31076167",
        "656e742d37f6a1abfef9620e7061796d656e742e726566756e640020726566756e64206d79206f72",
        "646572202234322220e2809420c3bc6d6c61757409726566756e642034320109526566756e646564",
        "2e00020466756c6c077061727469616c0000010000000000205e4001034555520103632d39020401",
        "000106706c656173650106726567696f6e026575010c69737375655f726566756e64107b22616d6f",
        "756e74223a3132302e357d010663616c6c2d3101096c616e6767726170680000010b82a0abfef962",
        "0200000103652d310104652d306107737570706f72740190a3abfef962c8a1abfef96201d0f2cffe",
        "f96201040107737570706f727400aca2abfef9620774696d656f757401010e6c6f775f636f6e6669",
        "64656e63650103612d33076167656e742d370e7061796d656e742e726566756e6402010f73657373",
        "696f6e5f7061747465726e02763301000105616c69636507737570706f7274a0a6abfef962010769",
        "6e626f782d31012b3437444551706a38484253612d5f54496d572d354a4365755165526b6d354e4d",
        "704a575a473368537546550109726566756e6420343202010103652d300107737570706f72740001",
        "03652d3203612d3203732d31076167656e742d370b66696c652e64656c6574650201000f64656c65",
        "7465203c623e783c2f623e010e706f6c6963795f6b6579776f7264d8a4abfef96200ceafabfef962",
    );

    const GOLDEN_V1: &str = concat!(
        "01020c84a0abfef9620252010b82a0abfef96254020c84a0abfef9620103612d3103732d31076167",
        "656e742d37f6a1abfef9620e7061796d656e742e726566756e64000000000000e43f20726566756e",
        "64206d79206f72646572202234322220e2809420c3bc6d6c61757409726566756e64203432010952",
        "6566756e6465642e00020466756c6c077061727469616c0000010000000000205e40010345555201",
        "03632d39020401000106706c656173650106726567696f6e026575010b82a0abfef9620200000103",
        "652d310104652d306107737570706f72740190a3abfef962c8a1abfef96201d0f2cffef962000401",
        "07737570706f727400aca2abfef9620774696d656f7574010e6c6f775f636f6e666964656e636501",
        "03612d33076167656e742d370e7061796d656e742e726566756e6402010f73657373696f6e5f7061",
        "747465726e02763301000103652d300107737570706f7274000103652d3203612d3203732d310761",
        "67656e742d370b66696c652e64656c6574650201000f64656c657465203c623e783c2f623e010e70",
        "6f6c6963795f6b6579776f7264d8a4abfef96200ceafabfef962",
    );
}
