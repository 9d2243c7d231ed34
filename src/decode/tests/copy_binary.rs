use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type, Time32MillisecondType,
    TimestampMillisecondType, UInt32Type,
};
use arrow_array::Array;
use arrow_schema::{Schema, SchemaRef};

use super::hex;
use crate::decode::types::cq_field;
use crate::decode::{CopyBinaryDecoder, DecodeError, PgType};

/// The column types of the PostgreSQL query below, in order.
fn all_types() -> Vec<PgType> {
    vec![
        PgType::Bool,
        PgType::Int2,
        PgType::Int4,
        PgType::Int8,
        PgType::Float4,
        PgType::Float8,
        PgType::Oid,
        PgType::Text,
        PgType::Char,
        PgType::Bytea,
        PgType::Uuid,
        PgType::Json,
        PgType::Jsonb,
        PgType::Inet,
        PgType::MacAddr,
        PgType::MacAddr8,
        PgType::Date,
        PgType::Time { precision: Some(3) },
        PgType::TimestampTz { precision: Some(3) },
        PgType::Numeric,
        PgType::ServerText,
        PgType::Array(Box::new(PgType::Int4)),
    ]
}

fn schema(types: &[PgType]) -> SchemaRef {
    Arc::new(Schema::new(
        types
            .iter()
            .enumerate()
            .map(|(i, t)| cq_field(&format!("c{i}"), t, true, false, false))
            .collect::<Vec<_>>(),
    ))
}

// PostgreSQL 15, `COPY (SELECT true::bool, (-32768)::int2, 2147483647::int4,
// (-9223372036854775808)::int8, 'Infinity'::float4, 'NaN'::float8, 4294967295::oid,
// 'héllo'::text, 'x'::"char", '\x00ff'::bytea, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid,
// '[1, "a"]'::json, '{"k": 1.50}'::jsonb, '::1'::inet, '08:00:2b:01:02:03'::macaddr,
// '08:00:2b:01:02:03:04:05'::macaddr8, 'infinity'::date, '12:34:56.789'::time(3),
// '2024-02-29 12:00:00.5+00'::timestamptz, '12345678901234567890.1230'::numeric,
// '1 day'::interval::text, array[[1,2],[3,null]]::int4[] UNION ALL SELECT <22 NULLs>)
// TO STDOUT (FORMAT binary)`, cut into the CopyData payloads the server sends.
const FRAME_1: &str = "5047434f50590aff0d0a00000000000000000000160000000101000000028000000000047fffffff000000088000000000000000000000047f800000000000087ff800000000000000000004ffffffff0000000668c3a96c6c6f00000001780000000200ff00000010a0eebc999c0b4ef8bb6d6bb9bd380a11000000085b312c202261225d0000000c017b226b223a20312e35307d0000001403800010000000000000000000000000000000010000000608002b0102030000000808002b0102030405000000047fffffff000000080000000a8be62608000000080002b582c47fb12000000014000600040000000404d2162e23340d801ed204ce0000000531206461790000003800000002000000010000001700000002000000010000000200000001000000040000000100000004000000020000000400000003ffffffff";
const FRAME_2: &str = "0016ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff";
const TRAILER: &str = "ffff";

fn check_all_types_batch(batch: &arrow_array::RecordBatch) {
    assert_eq!(batch.num_rows(), 2);
    let c = |i: usize| batch.column(i);
    assert!(c(0).as_boolean().value(0));
    assert_eq!(c(1).as_primitive::<Int16Type>().value(0), i16::MIN);
    assert_eq!(c(2).as_primitive::<Int32Type>().value(0), i32::MAX);
    assert_eq!(c(3).as_primitive::<Int64Type>().value(0), i64::MIN);
    assert_eq!(c(4).as_primitive::<Float32Type>().value(0), f32::INFINITY);
    assert!(c(5).as_primitive::<Float64Type>().value(0).is_nan());
    assert_eq!(c(6).as_primitive::<UInt32Type>().value(0), u32::MAX);
    assert_eq!(c(7).as_string::<i32>().value(0), "héllo");
    assert_eq!(c(8).as_string::<i32>().value(0), "x");
    assert_eq!(c(9).as_binary::<i32>().value(0), [0x00, 0xff]);
    assert_eq!(
        c(10).as_fixed_size_binary().value(0),
        &hex("a0eebc999c0b4ef8bb6d6bb9bd380a11")[..]
    );
    assert_eq!(c(11).as_binary::<i32>().value(0), br#"[1, "a"]"#);
    assert_eq!(c(12).as_binary::<i32>().value(0), br#"{"k": 1.50}"#);
    assert_eq!(c(13).as_binary::<i32>().value(0), b"::1/128");
    assert_eq!(c(14).as_binary::<i32>().value(0), hex("08002b010203"));
    assert_eq!(c(15).as_binary::<i32>().value(0), hex("08002b0102030405"));
    // infinity, clamped to 9999-12-31 by the default rule.
    assert_eq!(c(16).as_primitive::<Date32Type>().value(0), 2_932_896);
    // extract(epoch from '12:34:56.789'::time(3)) * 1000 = 45296789.
    assert_eq!(
        c(17).as_primitive::<Time32MillisecondType>().value(0),
        45_296_789
    );
    // extract(epoch from '2024-02-29 12:00:00.5+00'::timestamptz) * 1000 = 1709208000500.
    assert_eq!(
        c(18).as_primitive::<TimestampMillisecondType>().value(0),
        1_709_208_000_500
    );
    assert_eq!(
        c(19).as_string::<i32>().value(0),
        "12345678901234567890.1230"
    );
    assert_eq!(c(20).as_string::<i32>().value(0), "1 day");
    let list = c(21).as_list::<i32>();
    let elems: Vec<Option<i32>> = list.value(0).as_primitive::<Int32Type>().iter().collect();
    assert_eq!(elems, [Some(1), Some(2), Some(3), None]);
    for i in 0..batch.num_columns() {
        assert!(c(i).is_null(1), "column {i} row 1 is NULL");
    }
}

#[test]
fn decodes_postgres_stream_frame_by_frame() {
    let types = all_types();
    let mut d = CopyBinaryDecoder::new(&types);
    assert_eq!(d.decode_frame(&hex(FRAME_1)), Ok(true));
    assert_eq!(d.rows(), 1);
    assert_eq!(d.decode_frame(&hex(FRAME_2)), Ok(true));
    assert_eq!(d.decode_frame(&hex(TRAILER)), Ok(false));
    assert!(d.is_done());
    assert_eq!(d.rows(), 2);
    assert_eq!(d.bytes(), 412, "the whole stream PostgreSQL sent");
    let batch = d.finish(schema(&types)).unwrap();
    check_all_types_batch(&batch);
    assert_eq!(d.rows(), 0);
    assert_eq!(d.total_rows(), 2);
}

#[test]
fn accepts_several_tuples_in_one_payload() {
    let types = all_types();
    let mut d = CopyBinaryDecoder::new(&types);
    let whole = hex(&format!("{FRAME_1}{FRAME_2}{TRAILER}"));
    assert_eq!(d.decode_frame(&whole), Ok(false));
    check_all_types_batch(&d.finish(schema(&types)).unwrap());
}

#[test]
fn batches_split_and_reset() {
    let types = vec![PgType::Int4, PgType::Text];
    let mut d = CopyBinaryDecoder::new(&types);
    // From PostgreSQL: COPY (SELECT 1::int4, 'ab'::text) header + tuple.
    d.decode_frame(&hex(
        "5047434f50590aff0d0a000000000000000000 0002 00000004 00000001 00000002 6162",
    ))
    .unwrap();
    let b1 = d.finish(schema(&types)).unwrap();
    d.decode_frame(&hex("0002 00000004 00000002 ffffffff"))
        .unwrap();
    d.decode_frame(&hex("0002 00000004 00000003 00000000"))
        .unwrap();
    let b2 = d.finish(schema(&types)).unwrap();
    assert_eq!(d.decode_frame(&hex("ffff")), Ok(false));
    let b3 = d.finish(schema(&types)).unwrap();
    assert_eq!((b1.num_rows(), b2.num_rows(), b3.num_rows()), (1, 2, 0));
    assert_eq!(b1.column(1).as_string::<i32>().value(0), "ab");
    assert_eq!(
        b2.column(0).as_primitive::<Int32Type>().values()[..],
        [2, 3]
    );
    assert!(b2.column(1).is_null(0));
    assert_eq!(b2.column(1).as_string::<i32>().value(1), "");
    assert_eq!(d.total_rows(), 3);
}

#[test]
fn empty_result_header_with_trailer() {
    // PostgreSQL: COPY (SELECT 1::int4 WHERE false) TO STDOUT (FORMAT binary).
    let mut d = CopyBinaryDecoder::new(&[PgType::Int4]);
    assert_eq!(d.decode_frame(&hex(&format!("{HEADER}ffff"))), Ok(false));
    assert_eq!(d.finish(schema(&[PgType::Int4])).unwrap().num_rows(), 0);
}

#[test]
fn header_alone_then_tuples() {
    let mut d = CopyBinaryDecoder::new(&[PgType::Int2]);
    assert_eq!(
        d.decode_frame(&hex("5047434f50590aff0d0a000000000000000000")),
        Ok(true)
    );
    assert_eq!(d.decode_frame(&hex("0001 00000002 0007")), Ok(true));
    assert_eq!(d.decode_frame(&hex("ffff")), Ok(false));
    let b = d.finish(schema(&[PgType::Int2])).unwrap();
    assert_eq!(b.column(0).as_primitive::<Int16Type>().value(0), 7);
}

#[test]
fn header_extension_is_skipped() {
    let mut d = CopyBinaryDecoder::new(&[PgType::Int2]);
    let frame = hex("5047434f50590aff0d0a00 00000000 00000003 aabbcc 0001 00000002 0007 ffff");
    assert_eq!(d.decode_frame(&frame), Ok(false));
    assert_eq!(d.total_rows(), 1);
}

#[test]
fn zero_columns() {
    let mut d = CopyBinaryDecoder::new(&[]);
    assert_eq!(
        d.decode_frame(&hex("5047434f50590aff0d0a000000000000000000 0000")),
        Ok(true)
    );
    assert_eq!(d.decode_frame(&hex("0000 ffff")), Ok(false));
    assert_eq!(d.finish(Arc::new(Schema::empty())).unwrap().num_rows(), 2);
}

const HEADER: &str = "5047434f50590aff0d0a000000000000000000";

fn decode_err(types: &[PgType], frames: &[&str]) -> DecodeError {
    let mut d = CopyBinaryDecoder::new(types);
    for f in frames {
        if let Err(e) = d.decode_frame(&hex(f)) {
            // Poisoned from now on.
            assert_eq!(d.decode_frame(&hex("ffff")), Err(DecodeError::Poisoned));
            assert_eq!(d.finish(schema(types)).unwrap_err(), DecodeError::Poisoned);
            return e;
        }
    }
    panic!("no error for {frames:?}");
}

#[test]
fn malformed_streams_are_errors() {
    let t = [PgType::Int4, PgType::Text];
    // Bad signature.
    assert_eq!(
        decode_err(&t, &["5047434f50590aff0d0a01000000000000000000"]),
        DecodeError::BadSignature
    );
    // Truncated signature.
    assert!(matches!(
        decode_err(&t, &["5047434f"]),
        DecodeError::Truncated { .. }
    ));
    // OIDs flag.
    assert!(matches!(
        decode_err(&t, &["5047434f50590aff0d0a00 00010000 00000000"]),
        DecodeError::Invalid {
            what: "COPY binary header flags",
            ..
        }
    ));
    // Reserved critical flag.
    assert!(matches!(
        decode_err(&t, &["5047434f50590aff0d0a00 80000000 00000000"]),
        DecodeError::Invalid { .. }
    ));
    // Header extension longer than the data.
    assert!(matches!(
        decode_err(&t, &["5047434f50590aff0d0a00 00000000 7fffffff"]),
        DecodeError::Truncated { .. }
    ));
    // Wrong field count.
    assert_eq!(
        decode_err(&t, &[HEADER, "0003 ffffffff ffffffff ffffffff"]),
        DecodeError::FieldCount {
            expected: 2,
            found: 3
        }
    );
    assert_eq!(
        decode_err(&t, &[HEADER, "fffe"]),
        DecodeError::FieldCount {
            expected: 2,
            found: -2
        }
    );
    // Truncated field count / length / value.
    assert!(matches!(
        decode_err(&t, &[HEADER, "00"]),
        DecodeError::Truncated { .. }
    ));
    assert!(matches!(
        decode_err(&t, &[HEADER, "0002 000000"]),
        DecodeError::Column { column: 0, .. }
    ));
    assert!(matches!(
        decode_err(&t, &[HEADER, "0002 00000004 00000001 00000005 6162"]),
        DecodeError::Column { column: 1, .. }
    ));
    // Negative length other than -1.
    assert!(matches!(
        decode_err(&t, &[HEADER, "0002 fffffffe"]),
        DecodeError::Column { column: 0, .. }
    ));
    // Text is checked for UTF-8 per batch, in `finish`; the error carries the column, and the
    // decoder is poisoned (the other readers still hold the batch's rows).
    let mut d = CopyBinaryDecoder::new(&t);
    d.decode_frame(&hex(HEADER)).expect("header");
    d.decode_frame(&hex("0002 00000004 00000001 00000001 ff"))
        .expect("bytes are checked in finish");
    let e = d.finish(schema(&t)).expect_err("invalid UTF-8 accepted");
    assert!(
        matches!(&e, DecodeError::Column { column: 1, source } if matches!(**source, DecodeError::InvalidUtf8 { .. }))
    );
    assert_eq!(
        e.to_string(),
        "column 1: text: invalid UTF-8 after 0 valid bytes"
    );
    assert_eq!(d.decode_frame(&hex("ffff")), Err(DecodeError::Poisoned));
    // Wrong width for int4.
    assert!(matches!(
        decode_err(&t, &[HEADER, "0002 00000002 0001 ffffffff"]),
        DecodeError::Column { column: 0, .. }
    ));
    // Garbage after the trailer, in the same payload and in a later one.
    assert!(matches!(
        decode_err(&t, &[HEADER, "ffff 00"]),
        DecodeError::TrailingBytes { .. }
    ));
    assert!(matches!(
        decode_err(&t, &[HEADER, "ffff", "0002"]),
        DecodeError::AfterTrailer { count: 2 }
    ));
}

#[test]
fn null_in_non_nullable_field_is_an_arrow_error() {
    let types = [PgType::Int4];
    let mut d = CopyBinaryDecoder::new(&types);
    d.decode_frame(&hex(&format!("{HEADER} 0001 ffffffff ffff")))
        .unwrap();
    let schema = Arc::new(Schema::new(vec![cq_field(
        "id",
        &PgType::Int4,
        false,
        true,
        true,
    )]));
    let err = d.finish(schema).unwrap_err();
    assert!(matches!(
        err,
        DecodeError::Arrow {
            what: "record batch",
            ..
        }
    ));
    // Arrow's own error stays reachable as the source, not only as text.
    let source = std::error::Error::source(&err).expect("a source");
    assert!(source.downcast_ref::<arrow_schema::ArrowError>().is_some());
}
