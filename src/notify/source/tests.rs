use super::*;
use crate::event::wire::frame;
use crate::event::Tier;
use crate::notify::route::tests::{digest, escalation};

fn tp(p: i32) -> Tp {
    ("support".to_string(), p)
}

#[test]
fn a_commit_point_moves_only_past_a_settled_prefix() {
    let mut o = Offsets::default();
    o.assign(tp(0));
    let t: Vec<Token> = (10..15).map(|off| o.read(tp(0), off)).collect();
    assert_eq!(o.outstanding(), 5);
    // (settle offset, expected new commit points)
    let table: &[(usize, &[i64])] = &[
        (1, &[]),
        (2, &[]),
        (0, &[13]),
        (0, &[]),
        (4, &[]),
        (3, &[15]),
    ];
    for (i, want) in table {
        o.settle(&t[*i]);
        let got: Vec<i64> = o.advanced().into_iter().map(|(_, p)| p).collect();
        assert_eq!(got, *want, "after settling offset {}", t[*i].offset);
    }
    assert_eq!(o.outstanding(), 0);
    assert_eq!(o.points(), [(tp(0), 15)]);
}

#[test]
fn partitions_are_independent_and_a_reassignment_forgets_old_tokens() {
    let mut o = Offsets::default();
    o.assign(tp(0));
    o.assign(tp(1));
    let a = o.read(tp(0), 5);
    let b = o.read(tp(1), 7);
    o.settle(&b);
    assert_eq!(o.advanced(), [(tp(1), 8)]);
    o.revoke(&tp(0));
    o.assign(tp(0));
    let a2 = o.read(tp(0), 5);
    o.settle(&a);
    assert_eq!(
        o.advanced(),
        [],
        "a token of the earlier assignment settles nothing"
    );
    assert_eq!(o.outstanding(), 1);
    o.settle(&b);
    assert_eq!(o.outstanding(), 1, "settling twice counts once");
    o.assign(tp(1));
    let c = o.read(tp(1), 8);
    assert_eq!(o.outstanding(), 2);
    o.assign(tp(1));
    assert_eq!(o.outstanding(), 1, "a reassignment drops what was read");
    o.settle(&c);
    assert_eq!(o.outstanding(), 1);
    o.settle(&a2);
    assert_eq!(o.advanced(), [(tp(0), 6)]);
    o.revoke(&tp(1));
    assert_eq!(o.points(), [(tp(0), 6)]);
}

#[test]
fn a_record_read_before_its_assignment_message_is_tracked() {
    let mut o = Offsets::default();
    let t = o.read(tp(3), 0);
    o.settle(&t);
    assert_eq!(o.advanced(), [(tp(3), 1)]);
}

#[test]
fn records_are_decoded_by_their_kind_header_plain_or_framed() {
    let codec = Codec::new(Default::default()).unwrap();
    let x = escalation("esc-1", "support", Tier::Warm);
    let d = digest("dig-1", "support", &[Tier::Warm, Tier::Immediate]);
    let xb = codec.encode(SchemaKind::Escalation, &x).unwrap();
    let db = codec.encode(SchemaKind::Digest, &d).unwrap();
    let esc = Notice::Escalation(Box::new(x));
    let dig = Notice::Digest(Box::new(d));
    let framed_x = frame(7, &xb);
    type Row<'a> = (
        bool,
        Option<&'a [u8]>,
        Option<&'a [u8]>,
        Result<Option<&'a Notice>, &'a str>,
    );
    let table: Vec<Row<'_>> = vec![
        (false, Some(b"escalation"), Some(&xb), Ok(Some(&esc))),
        (false, Some(b"digest"), Some(&db), Ok(Some(&dig))),
        (true, Some(b"escalation"), Some(&framed_x), Ok(Some(&esc))),
        (false, None, Some(&xb), Ok(None)),
        (false, Some(b"verdict"), Some(&xb), Ok(None)),
        (false, Some(b"escalation"), None, Err("no value")),
        (false, Some(b"digest"), Some(&xb), Err("Digest")),
        (
            true,
            Some(b"escalation"),
            Some(&xb),
            Err("not Confluent wire format"),
        ),
        (
            false,
            Some(b"escalation"),
            Some(&framed_x),
            Err("Escalation"),
        ),
    ];
    for (framed, kind, payload, want) in table {
        // What handoff writes now: escalations at version 2, digests at 1 (no header).
        let version = (kind == Some(b"escalation")).then_some(&b"2"[..]);
        let got = decode(&codec, framed, RecordHeaders { kind, version }, payload);
        match (&got, want) {
            (Ok(g), Ok(w)) => assert_eq!(g.as_ref(), w),
            (Err(g), Err(w)) => assert!(g.contains(w), "{g} lacks {w}"),
            _ => panic!("{framed} {kind:?}: got {got:?}"),
        }
    }
}

#[test]
fn an_escalation_is_read_with_the_schema_version_its_header_names() {
    let codec = Codec::new(Default::default()).unwrap();
    let x = escalation("esc-1", "support", Tier::Warm);
    // Version 1 of the schema, as a processor before version 2 wrote it (no header).
    let v1 = apache_avro::Schema::parse_str(SchemaKind::Escalation.versions()[0]).unwrap();
    let value = apache_avro::to_value(&x).unwrap().resolve(&v1).unwrap();
    let old = apache_avro::to_avro_datum(&v1, value).unwrap();
    let kind = Some(&b"escalation"[..]);
    let got = decode(
        &codec,
        false,
        RecordHeaders {
            kind,
            version: None,
        },
        Some(&old),
    );
    assert_eq!(got, Ok(Some(Notice::Escalation(Box::new(x.clone())))));
    let new = codec.encode(SchemaKind::Escalation, &x).unwrap();
    let version = Some(&b"9"[..]);
    let e = decode(&codec, false, RecordHeaders { kind, version }, Some(&new)).unwrap_err();
    assert!(e.contains("handoff.schema.version = \"9\""), "{e}");
}
