//! Messages below are PostgreSQL 15's own pgoutput output
//! (`pg_logical_slot_peek_binary_changes(…, 'proto_version', '1'|'2', …)`) for the statements named.

use super::hex;
use crate::decode::pgoutput::{
    parse, parse_streamed, Lsn, OldKind, PgOutputMessage as M, RelationColumn, TupleData,
    TupleValue as V,
};
use crate::decode::DecodeError;

/// Test constants live for the whole test run.
fn msg(h: &str) -> &'static [u8] {
    Box::leak(hex(h).into_boxed_slice())
}

fn values<'a>(t: &TupleData<'a>) -> Vec<V<'a>> {
    t.iter().collect()
}

#[test]
fn begin_and_commit() {
    let b = msg("420000000001570c0800030400df89fc01000002e4");
    let M::Begin(begin) = parse(b).unwrap() else {
        panic!()
    };
    assert_eq!(begin.final_lsn.to_string(), "0/1570C08");
    assert_eq!(begin.xid, 740);
    assert_eq!(begin.commit_time, 0x00030400df89fc01);
    let c = msg("43000000000001570c080000000001570c3800030400df89fc01");
    let M::Commit(commit) = parse(c).unwrap() else {
        panic!()
    };
    assert_eq!(
        (commit.flags, commit.commit_lsn, commit.end_lsn),
        (0, Lsn::new(0x1570C08), Lsn::new(0x1570C38))
    );
    assert_eq!(commit.commit_time, begin.commit_time);
}

#[test]
fn relation_with_columns() {
    // create table t (id int primary key, name text, big text)
    let b = msg("52000040047075626c69630074006400030169640000000017ffffffff006e616d650000000019ffffffff006269670000000019ffffffff");
    let M::Relation(r) = parse(b).unwrap() else {
        panic!()
    };
    assert_eq!(
        (r.xid, r.id, r.namespace, r.name),
        (None, 16388, "public", "t")
    );
    assert_eq!(r.replica_identity, b'd');
    assert_eq!(r.column_count(), 3);
    let cols: Vec<RelationColumn<'_>> = r.columns().collect();
    assert_eq!(
        cols[0],
        RelationColumn {
            flags: 1,
            name: "id",
            type_oid: 23,
            type_modifier: -1
        }
    );
    assert!(cols[0].is_key());
    assert_eq!(
        (cols[1].name, cols[1].type_oid, cols[1].is_key()),
        ("name", 25, false)
    );
    assert_eq!(cols[2].name, "big");
    // REPLICA IDENTITY FULL table f (id int, v text): every column is part of the key.
    let b = msg("520000400b7075626c69630066006600020169640000000017ffffffff01760000000019ffffffff");
    let M::Relation(r) = parse(b).unwrap() else {
        panic!()
    };
    assert_eq!((r.name, r.replica_identity), ("f", b'f'));
    assert!(r.columns().all(|c| c.is_key()));
}

#[test]
fn insert_update_delete_text() {
    // insert into t values (1, 'a', null)
    let b = msg("49000040044e00037400000001317400000001616e");
    let M::Insert(i) = parse(b).unwrap() else {
        panic!()
    };
    assert_eq!(i.relation_id, 16388);
    assert_eq!(values(&i.new), [V::Text(b"1"), V::Text(b"a"), V::Null]);
    assert_eq!(i.new.len(), 3);

    // update t set name = 'b' where id = 1 (no old tuple)
    let b = msg("55000040044e00037400000001317400000001626e");
    let M::Update(u) = parse(b).unwrap() else {
        panic!()
    };
    assert!(u.old.is_none());
    assert_eq!(values(&u.new), [V::Text(b"1"), V::Text(b"b"), V::Null]);

    // update t set id = 2 where id = 1 (key changed: K tuple)
    let b = msg("55000040044b00037400000001316e6e4e00037400000001327400000001626e");
    let M::Update(u) = parse(b).unwrap() else {
        panic!()
    };
    let (kind, old) = u.old.unwrap();
    assert_eq!(kind, OldKind::Key);
    assert_eq!(values(&old), [V::Text(b"1"), V::Null, V::Null]);
    assert_eq!(values(&u.new), [V::Text(b"2"), V::Text(b"b"), V::Null]);

    // update f set v = 'y' under REPLICA IDENTITY FULL (O tuple)
    let b = msg("550000400b4f00027400000001317400000001784e0002740000000131740000000179");
    let M::Update(u) = parse(b).unwrap() else {
        panic!()
    };
    let (kind, old) = u.old.unwrap();
    assert_eq!(kind, OldKind::Old);
    assert_eq!(values(&old), [V::Text(b"1"), V::Text(b"x")]);
    assert_eq!(values(&u.new), [V::Text(b"1"), V::Text(b"y")]);

    // delete from f (O) and delete from t (K)
    let M::Delete(d) = parse(msg("440000400b4f0002740000000131740000000179")).unwrap() else {
        panic!()
    };
    assert_eq!(d.old.0, OldKind::Old);
    assert_eq!(values(&d.old.1), [V::Text(b"1"), V::Text(b"y")]);
    let M::Delete(d) = parse(msg("44000040044b00037400000001326e6e")).unwrap() else {
        panic!()
    };
    assert_eq!((d.relation_id, d.old.0), (16388, OldKind::Key));
    assert_eq!(values(&d.old.1), [V::Text(b"2"), V::Null, V::Null]);
}

#[test]
fn binary_values_and_unchanged_toast() {
    // 'binary' 'true': update t set name = 'm' where id = 5 (big is an unchanged TOAST value)
    let b = msg("55000040044e000362000000040000000562000000016d75");
    let M::Update(u) = parse(b).unwrap() else {
        panic!()
    };
    assert_eq!(
        values(&u.new),
        [V::Binary(&[0, 0, 0, 5]), V::Binary(b"m"), V::UnchangedToast]
    );
}

#[test]
fn truncate_and_message() {
    // truncate t, f
    let M::Truncate(t) = parse(msg("540000000200000040040000400b")).unwrap() else {
        panic!()
    };
    assert_eq!(t.relation_count(), 2);
    assert_eq!(t.relation_ids().collect::<Vec<_>>(), [16388, 16395]);
    assert!(!t.cascade() && !t.restart_identity());
    // pg_logical_emit_message(true, 'pfx', 'hello')
    let b = msg("4d010000000001572598706678000000000568656c6c6f");
    let M::Message(m) = parse(b).unwrap() else {
        panic!()
    };
    assert_eq!(
        (m.flags, m.lsn, m.prefix, m.content),
        (1, Lsn::new(0x1572598), "pfx", &b"hello"[..])
    );
}

#[test]
fn origin_and_type_hand_built() {
    let M::Origin(o) = parse(msg("4f 0000000000000010 6f72696700")).unwrap() else {
        panic!()
    };
    assert_eq!((o.commit_lsn, o.name), (Lsn::new(16), "orig"));
    let M::Type(t) = parse(msg("59 00004000 7075626c696300 6d6f6f6400")).unwrap() else {
        panic!()
    };
    assert_eq!(
        (t.xid, t.oid, t.namespace, t.name),
        (None, 16384, "public", "mood")
    );
}

#[test]
fn streamed_transaction_protocol_2() {
    let M::StreamStart(s) = parse(msg("53000002ef01")).unwrap() else {
        panic!()
    };
    assert_eq!((s.xid, s.first_segment), (751, true));
    let b = msg(
        "52000002ef0000400b7075626c69630066006600020169640000000017ffffffff01760000000019ffffffff",
    );
    let M::Relation(r) = parse_streamed(b).unwrap() else {
        panic!()
    };
    assert_eq!((r.xid, r.id, r.name), (Some(751), 16395, "f"));
    // Shortened from the real message (100 z) to 3.
    let b = msg("49000002ef0000400b4e00027400000004323030307400000003 7a7a7a");
    let M::Insert(i) = parse_streamed(b).unwrap() else {
        panic!()
    };
    assert_eq!(i.xid, Some(751));
    assert_eq!(values(&i.new), [V::Text(b"2000"), V::Text(b"zzz")]);
    assert_eq!(parse(msg("45")).unwrap(), M::StreamStop);
    let b = msg("63000002ef0000000000015c511000000000015c514000030400dfd6682a");
    let M::StreamCommit(c) = parse(b).unwrap() else {
        panic!()
    };
    assert_eq!(
        (c.xid, c.commit_lsn, c.end_lsn),
        (751, Lsn::new(0x15C5110), Lsn::new(0x15C5140))
    );
    let M::StreamAbort(a) = parse(msg("41 000002ef 000002f0")).unwrap() else {
        panic!()
    };
    assert_eq!((a.xid, a.subtransaction_xid, a.abort_lsn), (751, 752, None));
    let b = msg("41 000002ef 000002f0 0000000000000020 0000000000000030");
    let M::StreamAbort(a) = parse(b).unwrap() else {
        panic!()
    };
    assert_eq!(
        (a.abort_lsn, a.abort_time),
        (Some(Lsn::new(0x20)), Some(0x30))
    );
}

#[test]
fn malformed_messages_are_errors() {
    assert!(matches!(parse(&[]), Err(DecodeError::Truncated { .. })));
    assert_eq!(parse(b"Z"), Err(DecodeError::UnknownMessage { tag: b'Z' }));
    // Begin cut short.
    assert!(matches!(
        parse(msg("420000000001570c08")),
        Err(DecodeError::Truncated { .. })
    ));
    // Commit with a trailing byte.
    assert!(matches!(
        parse(msg(
            "43000000000001570c080000000001570c3800030400df89fc0100"
        )),
        Err(DecodeError::TrailingBytes { .. })
    ));
    // Insert without the N marker.
    assert!(matches!(
        parse(msg("49000040044b0000")),
        Err(DecodeError::Invalid { .. })
    ));
    // Unknown tuple column kind.
    assert!(matches!(
        parse(msg("49000040044e0001 78")),
        Err(DecodeError::Invalid { .. })
    ));
    // Text value longer than the message.
    assert!(matches!(
        parse(msg("49000040044e0001 74 00000009 31")),
        Err(DecodeError::Truncated { .. })
    ));
    // Negative value length.
    assert!(matches!(
        parse(msg("49000040044e0001 74 ffffffff")),
        Err(DecodeError::Invalid { .. })
    ));
    // Negative column count.
    assert!(matches!(
        parse(msg("49000040044e ffff")),
        Err(DecodeError::Invalid { .. })
    ));
    // Relation name without its NUL.
    assert!(matches!(
        parse(msg("5200004004 7075626c6963")),
        Err(DecodeError::Truncated { .. })
    ));
    // Relation with fewer columns than announced.
    assert!(matches!(
        parse(msg(
            "52000040047075626c6963007400640002 01696400 00000017 ffffffff"
        )),
        Err(DecodeError::Truncated { .. })
    ));
    // Relation name not UTF-8.
    assert!(matches!(
        parse(msg("5200004004 ff00 7400 64 0000")),
        Err(DecodeError::InvalidUtf8 { .. })
    ));
    // Update with a marker other than K/O/N.
    assert!(matches!(
        parse(msg("5500004004 58")),
        Err(DecodeError::Invalid { .. })
    ));
    // Delete without K/O.
    assert!(matches!(
        parse(msg("4400004004 4e0000")),
        Err(DecodeError::Invalid { .. })
    ));
    // Truncate announcing more relations than present, and a huge count.
    assert!(matches!(
        parse(msg("54 00000002 00 00004004")),
        Err(DecodeError::Truncated { .. })
    ));
    assert!(matches!(
        parse(msg("54 ffffffff 00")),
        Err(DecodeError::Truncated { .. })
    ));
    // Message content longer than the data.
    assert!(matches!(
        parse(msg("4d01 0000000001572598 70667800 00000009 68")),
        Err(DecodeError::Truncated { .. })
    ));
}
