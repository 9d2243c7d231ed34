use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type, Time32MillisecondType,
    Time32SecondType, Time64MicrosecondType, TimestampMicrosecondType, TimestampMillisecondType,
    TimestampSecondType, UInt32Type, UInt64Type,
};
use arrow_array::{Array, ArrayRef};

use super::hex;
use crate::decode::types::arrow_type;
use crate::decode::{ColumnReader, DecodeError, PgType};

/// Decode `values` (None = NULL) with a fresh reader for `ty`; check the output type.
fn decode(ty: &PgType, values: &[Option<&[u8]>]) -> ArrayRef {
    let mut r = ColumnReader::new(ty);
    for v in values {
        match v {
            Some(b) => r
                .append_value(b)
                .unwrap_or_else(|e| panic!("{ty:?} {b:02x?}: {e}")),
            None => r.append_null(),
        }
    }
    assert_eq!(r.len(), values.len());
    let a = r.finish().unwrap();
    assert_eq!(a.len(), values.len());
    assert_eq!(a.data_type(), &arrow_type(ty), "{ty:?}");
    assert!(r.is_empty(), "finish resets");
    a
}

/// Values that each append fine but fail the batch's check in `finish` (text UTF-8).
fn finish_err(ty: &PgType, values: &[&[u8]]) -> DecodeError {
    let mut r = ColumnReader::new(ty);
    for v in values {
        r.append_value(v).expect("appended; checked in finish");
    }
    let e = r.finish().expect_err("invalid batch accepted");
    assert!(r.is_empty(), "finish resets even when it fails");
    e
}

fn err(ty: &PgType, bytes: &[u8]) -> DecodeError {
    let mut r = ColumnReader::new(ty);
    let e = r.append_value(bytes).expect_err("malformed input accepted");
    assert_eq!(r.len(), 0, "a failed value appends nothing");
    e
}

#[test]
fn bool_values_and_null() {
    let a = decode(&PgType::Bool, &[Some(&[1]), Some(&[0]), None]);
    let a = a.as_boolean();
    assert!(a.value(0));
    assert!(!a.value(1));
    assert!(a.is_null(2));
    assert!(matches!(
        err(&PgType::Bool, &[]),
        DecodeError::Length {
            expected: 1,
            found: 0,
            ..
        }
    ));
    assert!(matches!(
        err(&PgType::Bool, &[1, 0]),
        DecodeError::Length { .. }
    ));
}

#[test]
fn integers_min_max() {
    let a = decode(
        &PgType::Int2,
        &[
            Some(&i16::MIN.to_be_bytes()),
            Some(&i16::MAX.to_be_bytes()),
            None,
            Some(&[0, 7]),
        ],
    );
    let a = a.as_primitive::<Int16Type>();
    assert_eq!(
        (a.value(0), a.value(1), a.value(3)),
        (i16::MIN, i16::MAX, 7)
    );
    assert!(a.is_null(2));

    let a = decode(
        &PgType::Int4,
        &[Some(&i32::MIN.to_be_bytes()), Some(&[0, 0, 0, 1]), None],
    );
    let a = a.as_primitive::<Int32Type>();
    assert_eq!((a.value(0), a.value(1)), (i32::MIN, 1));
    assert!(a.is_null(2));

    let a = decode(
        &PgType::Int8,
        &[Some(&i64::MAX.to_be_bytes()), Some(&i64::MIN.to_be_bytes())],
    );
    let a = a.as_primitive::<Int64Type>();
    assert_eq!((a.value(0), a.value(1)), (i64::MAX, i64::MIN));

    assert!(matches!(
        err(&PgType::Int2, &[1, 2, 3]),
        DecodeError::Length { expected: 2, .. }
    ));
    assert!(matches!(
        err(&PgType::Int4, &[1, 2]),
        DecodeError::Length { expected: 4, .. }
    ));
    assert!(matches!(
        err(&PgType::Int8, &[0; 4]),
        DecodeError::Length { expected: 8, .. }
    ));
}

#[test]
fn floats_keep_nan_infinities_and_negative_zero() {
    // float8send('NaN'), float8send('-Infinity'), float8send('-0') from PostgreSQL.
    let a = decode(
        &PgType::Float8,
        &[
            Some(&hex("7ff8000000000000")),
            Some(&hex("fff0000000000000")),
            Some(&hex("8000000000000000")),
            Some(&1.5f64.to_be_bytes()),
            None,
        ],
    );
    let a = a.as_primitive::<Float64Type>();
    assert!(a.value(0).is_nan());
    assert_eq!(a.value(1), f64::NEG_INFINITY);
    assert!(a.value(2) == 0.0 && a.value(2).is_sign_negative());
    assert_eq!(a.value(3), 1.5);
    assert!(a.is_null(4));

    // float4send('Infinity').
    let a = decode(
        &PgType::Float4,
        &[Some(&hex("7f800000")), Some(&f32::NAN.to_be_bytes())],
    );
    let a = a.as_primitive::<Float32Type>();
    assert_eq!(a.value(0), f32::INFINITY);
    assert!(a.value(1).is_nan());
    assert!(matches!(
        err(&PgType::Float4, &[0; 8]),
        DecodeError::Length { .. }
    ));
}

#[test]
fn oid_xid_xid8_unsigned() {
    let a = decode(&PgType::Oid, &[Some(&[0xff; 4]), Some(&[0, 0, 0, 26])]);
    let a = a.as_primitive::<UInt32Type>();
    assert_eq!((a.value(0), a.value(1)), (u32::MAX, 26));
    let a = decode(&PgType::Xid, &[Some(&[0x80, 0, 0, 0]), None]);
    assert_eq!(a.as_primitive::<UInt32Type>().value(0), 1 << 31);
    // xid8send('18446744073709551615') from PostgreSQL.
    let a = decode(&PgType::Xid8, &[Some(&hex("ffffffffffffffff"))]);
    assert_eq!(a.as_primitive::<UInt64Type>().value(0), u64::MAX);
}

#[test]
fn text_empty_unicode_null_and_invalid() {
    for ty in [PgType::Text, PgType::ServerText] {
        let a = decode(
            &ty,
            &[
                Some(b""),
                Some("héllo wörld 🐘".as_bytes()),
                None,
                Some(b"a  "),
            ],
        );
        let a = a.as_string::<i32>();
        assert_eq!(a.value(0), "");
        assert_eq!(a.value(1), "héllo wörld 🐘");
        assert!(a.is_null(2));
        assert_eq!(a.value(3), "a  ");
    }
    assert!(matches!(
        finish_err(&PgType::Text, &[b"ok", &[b'a', 0xff]]),
        DecodeError::InvalidUtf8 { valid_up_to: 1, .. }
    ));
    // A character split across two values: the concatenation is valid UTF-8, each value is
    // not, and the batch check must see that ("é" is c3 a9).
    assert!(matches!(
        finish_err(&PgType::Text, &[&[b'a', 0xc3], &[0xa9, b'b']]),
        DecodeError::InvalidUtf8 { valid_up_to: 1, .. }
    ));
    // The reader is usable after a failed batch.
    let mut r = ColumnReader::new(&PgType::Text);
    r.append_value(&[0xff]).expect("appended");
    assert!(r.finish().is_err());
    r.append_value("é".as_bytes()).expect("appended");
    assert_eq!(r.finish().expect("valid").as_string::<i32>().value(0), "é");
}

#[test]
fn large_text_and_bytea() {
    let big = vec![b'x'; 1 << 20];
    let a = decode(&PgType::Text, &[Some(&big)]);
    assert_eq!(a.as_string::<i32>().value(0).len(), 1 << 20);
    let bytes: Vec<u8> = (0..=255u8).cycle().take(1 << 20).collect();
    let a = decode(&PgType::Bytea, &[Some(&bytes), Some(b""), None]);
    let a = a.as_binary::<i32>();
    assert_eq!(a.value(0), &bytes[..]);
    assert_eq!(a.value(1), b"");
    assert!(a.is_null(2));
}

#[test]
fn char_follows_postgres_15_charout() {
    // charsend('a') = 61, charsend('') = 00, charsend('\351') = e9 printed as \351.
    let a = decode(
        &PgType::Char,
        &[Some(&[0x61]), Some(&[0x00]), Some(&[0xe9]), None],
    );
    let a = a.as_string::<i32>();
    assert_eq!(a.value(0), "a");
    assert_eq!(a.value(1), "");
    assert_eq!(a.value(2), "\\351");
    assert!(a.is_null(3));
    assert!(matches!(
        err(&PgType::Char, b"ab"),
        DecodeError::Length { expected: 1, .. }
    ));
}

#[test]
fn uuid_and_macs_raw() {
    // uuid_send('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11').
    let u = hex("a0eebc999c0b4ef8bb6d6bb9bd380a11");
    let a = decode(&PgType::Uuid, &[Some(&u), None]);
    let a = a.as_fixed_size_binary();
    assert_eq!(a.value(0), &u[..]);
    assert!(a.is_null(1));
    assert!(matches!(
        err(&PgType::Uuid, &u[..15]),
        DecodeError::Length { expected: 16, .. }
    ));

    let m6 = hex("08002b010203");
    let m8 = hex("08002b0102030405");
    let a = decode(&PgType::MacAddr, &[Some(&m6)]);
    assert_eq!(a.as_binary::<i32>().value(0), &m6[..]);
    let a = decode(&PgType::MacAddr8, &[Some(&m8), None]);
    assert_eq!(a.as_binary::<i32>().value(0), &m8[..]);
    assert!(matches!(
        err(&PgType::MacAddr, &m8),
        DecodeError::Length { expected: 6, .. }
    ));
    assert!(matches!(
        err(&PgType::MacAddr8, &m6),
        DecodeError::Length { expected: 8, .. }
    ));
}

#[test]
fn json_and_jsonb_text_untouched() {
    let doc = r#"{"b": 1, "a": [1.50, "x"]}"#;
    let a = decode(
        &PgType::Json,
        &[Some(doc.as_bytes()), Some(b"\"top\""), Some(b"12.0"), None],
    );
    let a = a.as_binary::<i32>();
    assert_eq!(a.value(0), doc.as_bytes());
    assert_eq!(a.value(1), b"\"top\"");
    assert_eq!(a.value(2), b"12.0");
    assert!(a.is_null(3));

    // jsonb_send('{"b": 1, "a": [1.50, "x"]}') from PostgreSQL: version 1 + its normalized text.
    let sent = hex("017b2261223a205b312e35302c202278225d2c202262223a20317d");
    let a = decode(&PgType::Jsonb, &[Some(&sent)]);
    assert_eq!(
        a.as_binary::<i32>().value(0),
        br#"{"a": [1.50, "x"], "b": 1}"#
    );
    assert!(matches!(
        err(&PgType::Jsonb, b"\x02{}"),
        DecodeError::Invalid {
            what: "jsonb version",
            found: 2,
            ..
        }
    ));
    assert!(matches!(
        err(&PgType::Jsonb, b""),
        DecodeError::Truncated { .. }
    ));
    assert!(matches!(
        finish_err(&PgType::Json, &[b"\"\xc3\""]),
        DecodeError::InvalidUtf8 { .. }
    ));
    assert!(matches!(
        finish_err(&PgType::Jsonb, &[b"\x01\"\xc3", b"\x01\xa9\""]),
        DecodeError::InvalidUtf8 { .. }
    ));
}

#[test]
fn inet_and_numeric_columns() {
    let a = decode(&PgType::Inet, &[Some(&hex("022000040a000001")), None]);
    assert_eq!(a.as_binary::<i32>().value(0), b"10.0.0.1/32");
    let a = decode(
        &PgType::Numeric,
        &[
            Some(&hex("000200000000000200011388")),
            None,
            Some(&hex("00000000c0000000")),
        ],
    );
    let a = a.as_string::<i32>();
    assert_eq!(a.value(0), "1.50");
    assert!(a.is_null(1));
    assert_eq!(a.value(2), "NaN");
}

#[test]
fn dates_shift_epoch_and_clamp_to_years_1_to_9999() {
    // date_send from PostgreSQL; days since 1970 = date - '1970-01-01' in PostgreSQL.
    let a = decode(
        &PgType::Date,
        &[
            Some(&hex("00000000")), // 2000-01-01
            Some(&hex("ffffd533")), // 1970-01-01
            Some(&hex("7fffffff")), // infinity
            Some(&hex("80000000")), // -infinity
            Some(&hex("ffda97cd")), // 4713-01-01 BC
            Some(&hex("7fda970c")), // 5874897-12-31
            Some(&hex("00002279")), // 2024-02-29
            None,
        ],
    );
    let a = a.as_primitive::<Date32Type>();
    // ±infinity and 4713 BC / 5874897 AD clamped to 9999-12-31 (2932896) / 0001-01-01 (-719162).
    let want = [10957, 0, 2_932_896, -719_162, -719_162, 2_932_896, 19782];
    for (i, w) in want.iter().enumerate() {
        assert_eq!(a.value(i), *w, "row {i}");
    }
    assert!(a.is_null(7));
}

#[test]
fn time_units_by_precision() {
    // time_send from PostgreSQL: 00:00, 24:00, 12:34:56.789012, 23:59:59.
    let vals = [
        hex("0000000000000000"),
        hex("000000141dd76000"),
        hex("0000000a8be62614"),
        hex("000000141dc81dc0"),
    ];
    let rows: Vec<Option<&[u8]>> = vals.iter().map(|v| Some(&v[..])).chain([None]).collect();
    let us = decode(&PgType::Time { precision: None }, &rows);
    let us = us.as_primitive::<Time64MicrosecondType>();
    assert_eq!(
        us.values()[..4],
        [0, 86_400_000_000, 45_296_789_012, 86_399_000_000]
    );
    assert!(us.is_null(4));
    let ms = decode(&PgType::Time { precision: Some(3) }, &rows);
    let ms = ms.as_primitive::<Time32MillisecondType>();
    assert_eq!(ms.values()[..4], [0, 86_400_000, 45_296_789, 86_399_000]);
    let s = decode(&PgType::Time { precision: Some(0) }, &rows);
    let s = s.as_primitive::<Time32SecondType>();
    assert_eq!(s.values()[..4], [0, 86_400, 45_296, 86_399]);
    assert!(matches!(
        err(&PgType::Time { precision: None }, &(-1i64).to_be_bytes()),
        DecodeError::Invalid { what: "time", .. }
    ));
    assert!(matches!(
        err(
            &PgType::Time { precision: None },
            &86_400_000_001i64.to_be_bytes()
        ),
        DecodeError::Invalid { .. }
    ));
}

#[test]
fn timestamps_shift_epoch_and_clamp_to_years_1_to_9999() {
    // timestamp_send from PostgreSQL, with extract(epoch)·10^6 from PostgreSQL; values outside
    // 0001-01-01 00:00:00 (-62135596800 s) .. 9999-12-31 23:59:59.999999 clamped.
    const MAX: i64 = 253_402_300_799_999_999;
    const MIN: i64 = -62_135_596_800_000_000;
    let cases: [(&str, i64); 8] = [
        ("0000000000000000", 946_684_800_000_000), // 2000-01-01
        ("fffca2fec4df0360", 1_500_000),           // 1970-01-01 00:00:01.5
        ("7fffffffffffffff", MAX),                 // infinity
        ("8000000000000000", MIN),                 // -infinity
        ("fd0f7fbdaf17e000", MIN),                 // 4713-01-01 BC
        ("0487db00297bf7c0", MAX),                 // 12345-06-07 08:09:10.123456
        ("fffca2fec4c81fff", -1),                  // 1969-12-31 23:59:59.999999
        ("7fffff5bb3b29fff", MAX),                 // 294276-12-31 23:59:59.999999
    ];
    let bytes: Vec<Vec<u8>> = cases.iter().map(|(h, _)| hex(h)).collect();
    let rows: Vec<Option<&[u8]>> = bytes.iter().map(|b| Some(&b[..])).chain([None]).collect();
    for ty in [
        PgType::Timestamp { precision: None },
        PgType::TimestampTz { precision: Some(6) },
    ] {
        let a = decode(&ty, &rows);
        let a = a.as_primitive::<TimestampMicrosecondType>();
        for (i, (_, want)) in cases.iter().enumerate() {
            assert_eq!(a.value(i), *want, "row {i}");
        }
        assert!(a.is_null(cases.len()));
        assert_eq!(a.timezone(), Some("UTC"));
    }
    let ms = decode(&PgType::TimestampTz { precision: Some(3) }, &rows);
    let ms = ms.as_primitive::<TimestampMillisecondType>();
    assert_eq!(ms.value(0), 946_684_800_000);
    assert_eq!(ms.value(1), 1_500);
    assert_eq!(ms.value(2), 253_402_300_799_999, "9999-12-31 23:59:59.999");
    assert_eq!(ms.value(3), -62_135_596_800_000);
    assert_eq!(ms.value(6), -1, "floor, not truncation toward zero");
    let s = decode(&PgType::Timestamp { precision: Some(0) }, &rows);
    let s = s.as_primitive::<TimestampSecondType>();
    assert_eq!(s.value(0), 946_684_800);
    assert_eq!(s.value(4), -62_135_596_800);
    assert_eq!(s.value(7), 253_402_300_799, "9999-12-31 23:59:59");
    assert!(matches!(
        err(&PgType::Timestamp { precision: None }, &[0; 7]),
        DecodeError::Length { .. }
    ));
}

#[test]
fn value_rules_null_error_and_counts() {
    use crate::decode::rules::{InfinityRule, OutOfRangeRule};
    use crate::decode::ValueOptions;
    let days = [hex("7fffffff"), hex("ffda97cd"), hex("00000000")]; // infinity, 4713 BC, 2000
    let null = ValueOptions {
        infinity: InfinityRule::Null,
        out_of_range: OutOfRangeRule::Null,
        ..ValueOptions::default()
    };
    let mut r = ColumnReader::with_options(&PgType::Array(Box::new(PgType::Date)), &null);
    let mut array = hex("00000001000000000000043a0000000300000001");
    for d in &days {
        array.extend_from_slice(&4i32.to_be_bytes());
        array.extend_from_slice(d);
    }
    r.append_value(&array).unwrap();
    assert_eq!(
        r.take_adjusted(),
        1,
        "4713 BC counted, infinity (a chosen rule) not"
    );
    assert_eq!(r.take_adjusted(), 0, "reset");
    let a = r.finish().unwrap();
    let items = a.as_list::<i32>().value(0);
    let items = items.as_primitive::<Date32Type>();
    assert!(items.is_null(0) && items.is_null(1));
    assert_eq!(items.value(2), 10957);

    let strict = ValueOptions {
        infinity: InfinityRule::Error,
        out_of_range: OutOfRangeRule::Error,
        ..ValueOptions::default()
    };
    let mut r = ColumnReader::with_options(&PgType::Timestamp { precision: None }, &strict);
    let e = r.append_value(&hex("7fffff5bb3b29fff")).unwrap_err();
    assert_eq!(
        e.to_string(),
        "timestamp 294276-12-31 23:59:59.999999 cannot be sent (out_of_range: error)"
    );
    assert_eq!(r.len(), 0);
}

#[test]
fn decimals_and_intervals() {
    use arrow_array::types::{Decimal128Type, Decimal256Type, IntervalMonthDayNanoType};
    use arrow_buffer::{i256, IntervalMonthDayNano};
    // numeric_send of 1.50, -0.01 and NaN, read as numeric(12,2).
    let rows = [
        Some(&hex("000200000000000200011388")[..]),
        Some(&hex("0001ffff400000020064")[..]),
        Some(&hex("00000000c0000000")[..]),
        None,
    ];
    let ty = PgType::Decimal {
        precision: 12,
        scale: 2,
    };
    let mut r = ColumnReader::new(&ty);
    for v in rows {
        match v {
            Some(b) => r.append_value(b).unwrap(),
            None => r.append_null(),
        }
    }
    assert_eq!(r.take_adjusted(), 1, "NaN counted");
    let a = r.finish().unwrap();
    let a = a.as_primitive::<Decimal128Type>();
    assert_eq!(a.value(0), 150);
    assert_eq!(a.value(1), -1);
    assert!(a.is_null(2) && a.is_null(3));
    assert_eq!(a.data_type(), &arrow_type(&ty));
    let wide = PgType::Decimal {
        precision: 40,
        scale: 2,
    };
    let a = decode(&wide, &[rows[0]]);
    assert_eq!(
        a.as_primitive::<Decimal256Type>().value(0),
        i256::from_i128(150)
    );
    // interval_send of '1 mon -2 days 00:00:00.000003'.
    let a = decode(
        &PgType::Interval,
        &[Some(&hex("0000000000000003fffffffe00000001")), None],
    );
    let a = a.as_primitive::<IntervalMonthDayNanoType>();
    assert_eq!(a.value(0), IntervalMonthDayNano::new(1, -2, 3000));
    assert!(a.is_null(1));
}

fn int4_array() -> PgType {
    PgType::Array(Box::new(PgType::Int4))
}

#[test]
fn arrays_two_d_nulls_empty_and_null_array() {
    // array_send from PostgreSQL: {{1,2,3},{4,5,6}}, {1,NULL,3}, {}, [0:1]={7,8}.
    let two_d = hex(
        "00000002000000000000001700000002000000010000000300000001000000040000000100000004000000020000000400000003000000040000000400000004000000050000000400000006",
    );
    let with_null =
        hex("00000001000000010000001700000003000000010000000400000001ffffffff0000000400000003");
    let empty = hex("000000000000000000000017");
    let lower_bound_0 =
        hex("000000010000000000000017000000020000000000000004000000070000000400000008");
    let a = decode(
        &int4_array(),
        &[
            Some(&two_d),
            Some(&with_null),
            Some(&empty),
            None,
            Some(&lower_bound_0),
        ],
    );
    let list = a.as_list::<i32>();
    let row = |i: usize| -> Vec<Option<i32>> {
        list.value(i).as_primitive::<Int32Type>().iter().collect()
    };
    assert_eq!(row(0), [1, 2, 3, 4, 5, 6].map(Some));
    assert_eq!(row(1), [Some(1), None, Some(3)]);
    assert_eq!(row(2), []);
    assert!(list.is_valid(2), "empty array is an empty list, not NULL");
    assert!(list.is_null(3));
    assert_eq!(row(4), [Some(7), Some(8)]);
}

#[test]
fn text_and_uuid_arrays_keep_element_types() {
    // array_send(array['a',NULL,'ü']::text[]) from PostgreSQL.
    let a = decode(
        &PgType::Array(Box::new(PgType::Text)),
        &[Some(&hex(
            "00000001000000010000001900000003000000010000000161ffffffff00000002c3bc",
        ))],
    );
    let list = a.as_list::<i32>();
    let v: Vec<Option<String>> = list
        .value(0)
        .as_string::<i32>()
        .iter()
        .map(|s| s.map(String::from))
        .collect();
    assert_eq!(v, [Some("a".into()), None, Some("ü".into())]);

    // Hand-built uuid[] of one element (element oid 2950).
    let mut b = hex("00000001 00000000 00000b86 00000001 00000001 00000010");
    b.extend(hex("a0eebc999c0b4ef8bb6d6bb9bd380a11"));
    let a = decode(&PgType::Array(Box::new(PgType::Uuid)), &[Some(&b)]);
    let inner = a.as_list::<i32>().value(0);
    assert_eq!(
        inner.as_fixed_size_binary().value(0),
        &hex("a0eebc999c0b4ef8bb6d6bb9bd380a11")[..]
    );
}

#[test]
fn arrays_reject_malformed_without_panicking() {
    let ty = int4_array();
    let e = |h: &str| err(&ty, &hex(h));
    // Truncated header.
    assert!(matches!(e("00000001 0000"), DecodeError::Truncated { .. }));
    // 7 dimensions.
    assert!(matches!(
        e("00000007 00000000 00000017"),
        DecodeError::Invalid {
            what: "array ndim",
            ..
        }
    ));
    // Negative ndim.
    assert!(matches!(
        e("ffffffff 00000000 00000017"),
        DecodeError::Invalid { .. }
    ));
    // Flags 2.
    assert!(matches!(
        e("00000001 00000002 00000017"),
        DecodeError::Invalid {
            what: "array flags",
            ..
        }
    ));
    // Negative dimension length.
    assert!(matches!(
        e("00000001 00000000 00000017 ffffffff 00000001"),
        DecodeError::Invalid {
            what: "array dimension length",
            ..
        }
    ));
    // Absurd element count (2^31-1 × 2^31-1 × ...) rejected before looping.
    assert!(matches!(
        e("00000003 00000000 00000017 7fffffff 00000001 7fffffff 00000001 7fffffff 00000001"),
        DecodeError::Invalid {
            what: "array element count",
            ..
        }
    ));
    // One element declared, none present.
    assert!(matches!(
        e("00000001 00000000 00000017 00000001 00000001"),
        DecodeError::Invalid {
            what: "array element count",
            ..
        }
    ));
    // Element length beyond the data.
    assert!(matches!(
        e("00000001 00000000 00000017 00000001 00000001 00000008 00000001"),
        DecodeError::Truncated { .. }
    ));
    // Element length -2.
    assert!(matches!(
        e("00000001 00000000 00000017 00000001 00000001 fffffffe"),
        DecodeError::Invalid {
            what: "array element length",
            ..
        }
    ));
    // Trailing bytes after the elements.
    assert!(matches!(
        e("00000001 00000000 00000017 00000001 00000001 ffffffff 00"),
        DecodeError::TrailingBytes { .. }
    ));
}

#[test]
fn array_failing_after_some_elements_poisons_the_batch() {
    let mut r = ColumnReader::new(&int4_array());
    // Second element has the wrong width for int4.
    let bad = hex("00000001 00000000 00000017 00000002 00000001 00000004 00000001 00000002 0001");
    assert!(matches!(
        r.append_value(&bad),
        Err(DecodeError::Length { what: "int4", .. })
    ));
    assert_eq!(r.len(), 0);
    assert_eq!(r.finish().unwrap_err(), DecodeError::Poisoned);
    // The next batch is clean again.
    r.append_value(&hex("000000000000000000000017")).unwrap();
    assert_eq!(r.finish().unwrap().len(), 1);
}

#[test]
fn readers_reset_between_batches() {
    let mut r = ColumnReader::new(&PgType::Int4);
    r.append_value(&[0, 0, 0, 1]).unwrap();
    let first = r.finish().unwrap();
    r.append_null();
    r.append_value(&[0, 0, 0, 2]).unwrap();
    let second = r.finish().unwrap();
    assert_eq!(first.as_primitive::<Int32Type>().values()[..], [1]);
    let second = second.as_primitive::<Int32Type>();
    assert_eq!(second.len(), 2);
    assert!(second.is_null(0));
    assert_eq!(second.value(1), 2);
}

#[test]
fn invalid_numeric_leaves_no_trace_in_the_column() {
    let mut r = ColumnReader::new(&PgType::Numeric);
    // Digit 10000 is invalid: nothing may reach the builder's value buffer.
    assert!(r
        .append_value(&hex("0002 0000 0000 0002 0001 2710"))
        .is_err());
    r.append_value(&hex("000200000000000200011388")).unwrap();
    let a = r.finish().unwrap();
    assert_eq!(a.len(), 1);
    assert_eq!(a.as_string::<i32>().value(0), "1.50");
}
