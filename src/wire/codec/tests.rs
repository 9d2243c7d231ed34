//! Unit tests of framing, parsing and encoding.

use super::*;
use crate::wire::Lsn;
use bytes::BytesMut;

fn msg(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![tag];
    v.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
    v.extend_from_slice(body);
    v
}

#[test]
fn framing_waits_for_whole_message() {
    let m = msg(b'Z', b"I");
    for cut in 0..m.len() {
        assert_eq!(frame(&m[..cut]).unwrap(), None);
    }
    let f = frame(&m).unwrap().unwrap();
    assert_eq!(f.tag, b'Z');
    assert_eq!(&m[f.body.clone()], b"I");
    assert_eq!(parse_ready_for_query(&m[f.body]).unwrap(), b'I');
}

#[test]
fn framing_rejects_bad_lengths() {
    assert!(frame(&[b'Z', 0, 0, 0, 3]).is_err());
    assert!(frame(&[b'd', 0x7f, 0xff, 0xff, 0xff]).is_err());
}

#[test]
fn copy_both_response_is_framed() {
    let m = msg(b'W', &[0, 0, 0]);
    let f = frame(&m).unwrap().unwrap();
    assert_eq!(f.tag, tag::COPY_BOTH_RESPONSE);
    let r = parse_copy_response(&m[f.body]).unwrap();
    assert_eq!(r.format, 0);
    assert!(r.column_formats.is_empty());
}

#[test]
fn error_fields_all_kept() {
    let body = b"SERROR\0VERROR\0C23505\0Mdup\0Ddet\0Hhint\0P7\0Wwhere\0sschema\0ttab\0ccol\0ddt\0ncons\0Ffile.c\0L42\0Rfn\0Zunknown\0\0";
    let e = parse_error_fields(body).unwrap();
    assert_eq!(e.severity, "ERROR");
    assert_eq!(e.code, "23505");
    assert_eq!(e.message, "dup");
    assert_eq!(e.detail.as_deref(), Some("det"));
    assert_eq!(e.hint.as_deref(), Some("hint"));
    assert_eq!(e.position, Some(7));
    assert_eq!(e.where_.as_deref(), Some("where"));
    assert_eq!(e.schema.as_deref(), Some("schema"));
    assert_eq!(e.table.as_deref(), Some("tab"));
    assert_eq!(e.column.as_deref(), Some("col"));
    assert_eq!(e.datatype.as_deref(), Some("dt"));
    assert_eq!(e.constraint.as_deref(), Some("cons"));
    assert_eq!(e.file.as_deref(), Some("file.c"));
    assert_eq!(e.line, Some(42));
    assert_eq!(e.routine.as_deref(), Some("fn"));
    assert!(parse_error_fields(b"SERROR\0Mx").is_err());
}

#[test]
fn data_row_ranges_and_nulls() {
    let mut body = vec![0, 3];
    body.extend_from_slice(&2i32.to_be_bytes());
    body.extend_from_slice(b"ab");
    body.extend_from_slice(&(-1i32).to_be_bytes());
    body.extend_from_slice(&0i32.to_be_bytes());
    let r = parse_data_row(&body).unwrap();
    assert_eq!(&body[r[0].clone().unwrap()], b"ab");
    assert_eq!(r[1], None);
    assert_eq!(r[2], Some(body.len()..body.len()));
    body.truncate(body.len() - 1);
    assert!(parse_data_row(&body).is_err());
}

#[test]
fn replication_messages() {
    let mut x = vec![b'w'];
    x.extend_from_slice(&1u64.to_be_bytes());
    x.extend_from_slice(&2u64.to_be_bytes());
    x.extend_from_slice(&3i64.to_be_bytes());
    x.extend_from_slice(b"payload");
    assert_eq!(
        parse_replication_message(&x).unwrap(),
        ReplicationMessage::XLogData {
            wal_start: Lsn::new(1),
            wal_end: Lsn::new(2),
            server_clock: 3,
            data: b"payload"
        }
    );
    let mut k = vec![b'k'];
    k.extend_from_slice(&9u64.to_be_bytes());
    k.extend_from_slice(&8i64.to_be_bytes());
    k.push(1);
    assert_eq!(
        parse_replication_message(&k).unwrap(),
        ReplicationMessage::PrimaryKeepalive {
            wal_end: Lsn::new(9),
            server_clock: 8,
            reply_requested: true
        }
    );
    assert!(parse_replication_message(&k[..10]).is_err());
    assert!(parse_replication_message(b"").is_err());
}

#[test]
fn auth_requests() {
    let mut b = 10i32.to_be_bytes().to_vec();
    b.extend_from_slice(b"SCRAM-SHA-256-PLUS\0SCRAM-SHA-256\0\0");
    assert_eq!(
        parse_authentication(&b).unwrap(),
        AuthRequest::Sasl(vec!["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"])
    );
    let b = 7i32.to_be_bytes();
    assert_eq!(
        parse_authentication(&b).unwrap(),
        AuthRequest::Unsupported("GSSAPI".into())
    );
}

#[test]
fn standby_status_update_layout() {
    let mut buf = BytesMut::new();
    encode_standby_status_update(&mut buf, Lsn::new(1), Lsn::new(2), Lsn::new(3), 4, true);
    let f = frame(&buf).unwrap().unwrap();
    assert_eq!(f.tag, b'd');
    assert_eq!(f.body.len(), 34);
    assert_eq!(buf[5], b'r');
    assert_eq!(buf[buf.len() - 1], 1);
}

#[test]
fn fuzz_entry_survives_garbage() {
    fuzz_all(&[]);
    fuzz_all(&[b'D', 0, 0, 0, 6, 0xff, 0xff]);
    fuzz_all(&[b'T', 0, 0, 0, 6, 0x7f, 0xff]);
    fuzz_all(&[b'R', 0, 0, 0, 8, 0, 0, 0, 5]);
}

#[test]
fn parse_and_bind_with_text_parameters() {
    // Parse: unnamed statement, the SQL, one parameter whose type the server infers (OID 0).
    let mut buf = BytesMut::new();
    encode_parse(&mut buf, "SELECT $1", &[0]).unwrap();
    // Length 21: itself (4), statement name "" (1), "SELECT $1" and its NUL (10), count (2),
    // one OID (4).
    let mut want = vec![b'P', 0, 0, 0, 21, 0];
    want.extend_from_slice(b"SELECT $1\0");
    want.extend_from_slice(&[0, 1, 0, 0, 0, 0]);
    assert_eq!(&buf[..], &want[..]);

    // Bind: a text value (format 0) holding a quote and a backslash, sent as is, and a NULL;
    // every result column in binary (format 1).
    let mut buf = BytesMut::new();
    let value = b"it's \\ x";
    let params = [
        BindParam {
            format: 0,
            value: Some(value),
        },
        BindParam {
            format: 0,
            value: None,
        },
    ];
    encode_bind(&mut buf, &params, 1).unwrap();
    let mut body = vec![0, 0]; // portal "", statement ""
    body.extend_from_slice(&[0, 2, 0, 0, 0, 0]); // two parameter formats: text, text
    body.extend_from_slice(&[0, 2]); // two values
    body.extend_from_slice(&(value.len() as i32).to_be_bytes());
    body.extend_from_slice(value);
    body.extend_from_slice(&(-1i32).to_be_bytes());
    body.extend_from_slice(&[0, 1, 0, 1]); // one result format: binary
    let mut want = vec![b'B'];
    want.extend_from_slice(&((body.len() + 4) as i32).to_be_bytes());
    want.extend_from_slice(&body);
    assert_eq!(&buf[..], &want[..]);

    // A NUL byte cannot travel in the query text.
    assert!(encode_parse(&mut BytesMut::new(), "SELECT '\0'", &[]).is_err());
}
