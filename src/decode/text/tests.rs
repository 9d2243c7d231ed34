//! Unit tests of the text-to-binary conversion.

use super::*;

fn bin(ty: &PgType, text: &str) -> Result<Vec<u8>, DecodeError> {
    let mut out = vec![0xAA];
    let r = text_to_binary(ty, text.as_bytes(), &mut out);
    match r {
        Ok(()) => Ok(out[1..].to_vec()),
        Err(e) => {
            assert_eq!(out, vec![0xAA], "out restored on error for {text:?}");
            Err(e)
        }
    }
}

fn bad(ty: &PgType, text: &str) {
    assert!(bin(ty, text).is_err(), "{ty:?} {text:?} should fail");
}

#[test]
fn scalars() {
    assert_eq!(bin(&PgType::Bool, "t").unwrap(), [1]);
    assert_eq!(
        bin(&PgType::Int2, "-32768").unwrap(),
        (-32768i16).to_be_bytes()
    );
    assert_eq!(
        bin(&PgType::Int8, "9223372036854775807").unwrap(),
        i64::MAX.to_be_bytes()
    );
    assert_eq!(
        bin(&PgType::Float8, "1e+300").unwrap(),
        1e300f64.to_be_bytes()
    );
    assert_eq!(
        bin(&PgType::Float4, "-Infinity").unwrap(),
        f32::NEG_INFINITY.to_be_bytes()
    );
    assert_eq!(bin(&PgType::Char, "\\351").unwrap(), [0xE9]);
    assert_eq!(bin(&PgType::Char, "").unwrap(), [0]);
    assert_eq!(bin(&PgType::Bytea, "\\x00fF").unwrap(), [0, 255]);
    assert_eq!(bin(&PgType::Bytea, "a\\\\b\\001").unwrap(), b"a\\b\x01");
    assert_eq!(
        bin(&PgType::Inet, "10.0.0.1").unwrap(),
        [2, 32, 0, 4, 10, 0, 0, 1]
    );
    assert_eq!(
        bin(&PgType::Date, "2000-01-02").unwrap(),
        1i32.to_be_bytes()
    );
    let d = |t: &str| i32::from_be_bytes(bin(&PgType::Date, t).unwrap().try_into().unwrap());
    assert_eq!(d("0001-12-31 BC"), d("0001-01-01") - 1);
    assert_eq!(d("infinity"), i32::MAX);
    assert_eq!(
        bin(
            &PgType::TimestampTz { precision: None },
            "2000-01-01 01:00:00+01"
        )
        .unwrap(),
        0i64.to_be_bytes()
    );
    assert_eq!(
        bin(&PgType::Time { precision: None }, "00:00:01.5").unwrap(),
        1_500_000i64.to_be_bytes()
    );
}

#[test]
fn numeric_forms() {
    let n = |t: &str| bin(&PgType::Numeric, t).unwrap();
    // 1.50 → one digit 1 (weight 0) and 5000 (weight -1): ndigits 2, dscale 2.
    assert_eq!(n("1.50"), [0, 2, 0, 0, 0, 0, 0, 2, 0, 1, 0x13, 0x88]);
    assert_eq!(n("0.000"), [0, 0, 0, 0, 0, 0, 0, 3]);
    assert_eq!(n("-10000"), [0, 1, 0, 1, 0x40, 0, 0, 0, 0, 1]);
    assert_eq!(n("0.0001"), [0, 1, 0xFF, 0xFF, 0, 0, 0, 4, 0, 1]);
    assert_eq!(n("NaN"), [0, 0, 0, 0, 0xC0, 0, 0, 0]);
}

#[test]
fn arrays() {
    let a = bin(&PgType::Array(Box::new(PgType::Int4)), "[0:1]={1,NULL}").unwrap();
    let mut want = Vec::new();
    for v in [1i32, 1, 23, 2, 0] {
        want.extend_from_slice(&v.to_be_bytes());
    }
    want.extend_from_slice(&4i32.to_be_bytes());
    want.extend_from_slice(&1i32.to_be_bytes());
    want.extend_from_slice(&(-1i32).to_be_bytes());
    assert_eq!(a, want);
    let t = bin(
        &PgType::Array(Box::new(PgType::Text)),
        r#"{"a\"b","NULL",null}"#,
    )
    .unwrap();
    assert_eq!(&t[20..24], &3i32.to_be_bytes());
    assert_eq!(&t[24..27], b"a\"b");
    assert_eq!(&t[31..35], b"NULL");
    assert_eq!(&t[35..39], &(-1i32).to_be_bytes());
    assert_eq!(&t[4..8], &1i32.to_be_bytes());
}

#[test]
fn malformed() {
    bad(&PgType::Bool, "yes");
    bad(&PgType::Int2, "32768");
    bad(&PgType::Int4, "1.5");
    bad(&PgType::Int4, "");
    bad(&PgType::Oid, "-1");
    bad(&PgType::Float8, "inf");
    bad(&PgType::Float8, "1..2");
    bad(&PgType::Char, "ab");
    bad(&PgType::Char, "\\999");
    bad(&PgType::Bytea, "\\x0");
    bad(&PgType::Bytea, "\\xzz");
    bad(&PgType::Bytea, "\\9");
    bad(&PgType::Uuid, "0000");
    bad(&PgType::Uuid, "a0eebc99_9c0b-4ef8-bb6d-6bb9bd380a11");
    bad(&PgType::Inet, "10.0.0.1/33");
    bad(&PgType::Inet, "::1/129");
    bad(&PgType::Inet, "10.0.0");
    bad(&PgType::MacAddr, "08:00:2b:01:02");
    bad(&PgType::MacAddr8, "08:00:2b:01:02:03:04:zz");
    bad(&PgType::Date, "2001-02-29");
    bad(&PgType::Date, "2001-13-01");
    bad(&PgType::Date, "0000-01-01");
    bad(&PgType::Date, "2001-01-01 AD");
    bad(&PgType::Time { precision: None }, "24:00:01");
    bad(&PgType::Time { precision: None }, "12:60:00");
    bad(&PgType::Time { precision: None }, "12:00:00.1234567");
    bad(&PgType::Timestamp { precision: None }, "2000-01-01");
    bad(
        &PgType::TimestampTz { precision: None },
        "2000-01-01 00:00:00",
    );
    bad(
        &PgType::TimestampTz { precision: None },
        "2000-01-01 00:00:00+1",
    );
    bad(&PgType::Numeric, "1e5");
    bad(&PgType::Numeric, "-");
    bad(&PgType::Numeric, ".");
    bad(&PgType::Numeric, "1.2.3");
    let arr = PgType::Array(Box::new(PgType::Int4));
    bad(&arr, "");
    bad(&arr, "{1,2");
    bad(&arr, "{1,,2}");
    bad(&arr, "{{1,2},{3}}");
    bad(&arr, "{{1,2},3}");
    bad(&arr, "{1}x");
    bad(&arr, "{\"1}");
    bad(&arr, "[1:3]={1,2}");
    bad(&arr, "{{{{{{{1}}}}}}}");
    bad(&arr, "{{}}");
    bad(&arr, "{a}");
    bad(&PgType::Array(Box::new(arr.clone())), "{1}");
}
