use super::hex;
use crate::decode::inet::write_inet;
use crate::decode::numeric::write_numeric;
use crate::decode::DecodeError;

fn numeric(h: &str) -> Result<String, DecodeError> {
    let mut s = String::new();
    write_numeric(&hex(h), &mut s).map(|()| s)
}

fn inet(h: &str) -> Result<String, DecodeError> {
    let mut s = String::new();
    write_inet(&hex(h), &mut s).map(|()| s)
}

/// (numeric_send hex, numeric::text), both from PostgreSQL 15.
const NUMERICS: &[(&str, &str)] = &[
    ("0000000000000000", "0"),
    ("000200000000000200011388", "1.50"),
    ("0000000000000003", "0.000"),
    (
        "000600044000000304d2162e23340d801ed204ce",
        "-12345678901234567890.123",
    ),
    ("00000000c0000000", "NaN"),
    ("00000000d0000020", "Infinity"),
    ("00000000f0000020", "-Infinity"),
    (
        "0008000700000000000c0d801ed204d2162e23340d801ed2",
        "123456789012345678901234567890",
    ),
    ("0001ffff000000040001", "0.0001"),
    ("0002ffff40000005000107d0", "-0.00012"),
    ("00010001000000000001", "10000"),
    ("0001fffb000000140001", "0.00000000000000000001"),
    ("0002000000000004270f270f", "9999.9999"),
    ("00010005000000000001", "100000000000000000000"),
    (
        "00060002000000090001000000000000000003e8",
        "100000000.000000001",
    ),
    ("00010000400000000001", "-1"),
    ("0001ffff0000000103e8", "0.1"),
    ("0003000000000007000c0d801ed2", "12.3456789"),
];

#[test]
fn numeric_matches_postgres_text() {
    for (h, want) in NUMERICS {
        assert_eq!(numeric(h).as_deref(), Ok(*want), "{h}");
    }
}

#[test]
fn numeric_appends_without_clearing() {
    let mut s = String::from("x=");
    write_numeric(&hex("000200000000000200011388"), &mut s).unwrap();
    assert_eq!(s, "x=1.50");
}

#[test]
fn numeric_rejects_malformed() {
    // Truncated header.
    assert!(matches!(
        numeric("000200"),
        Err(DecodeError::Truncated { .. })
    ));
    // ndigits says 2, one digit present.
    assert!(matches!(
        numeric("0002000000000002 0001"),
        Err(DecodeError::Length { .. })
    ));
    // Trailing digit beyond ndigits.
    assert!(matches!(
        numeric("0001000000000000 0001 0001"),
        Err(DecodeError::Length { .. })
    ));
    // Digit 10000 is not base-10000.
    assert!(matches!(
        numeric("0001000000000000 2710"),
        Err(DecodeError::Invalid {
            what: "numeric digit",
            ..
        })
    ));
    // Negative digit.
    assert!(matches!(
        numeric("0001000000000000 ffff"),
        Err(DecodeError::Invalid { .. })
    ));
    // Unknown sign.
    assert!(matches!(
        numeric("0000000012340000"),
        Err(DecodeError::Invalid {
            what: "numeric sign",
            ..
        })
    ));
    // Negative ndigits.
    assert!(matches!(
        numeric("ffff000000000000"),
        Err(DecodeError::Invalid { .. })
    ));
    // dscale outside the mask.
    assert!(matches!(
        numeric("0000000000004000"),
        Err(DecodeError::Invalid { .. })
    ));
    // A failed value leaves the output untouched.
    let mut s = String::from("keep");
    assert!(write_numeric(&hex("0001000000000000 2710"), &mut s).is_err());
    assert_eq!(s, "keep");
}

#[test]
fn numeric_extreme_weight_and_scale_do_not_panic() {
    // weight 32767 with one digit: 1 followed by 131068 zeros.
    let s = numeric("0001 7fff 0000 0000 0001").unwrap();
    assert_eq!(s.len(), 1 + 4 * 32767);
    assert!(s.starts_with("10000") && s.bytes().skip(1).all(|b| b == b'0'));
    // weight -32768, dscale 0x3fff.
    let s = numeric("0001 8000 0000 3fff 0001").unwrap();
    assert_eq!(s.len(), 2 + 0x3fff);
    assert!(s.starts_with("0.000"));
}

/// (inet_send/cidr_send hex, text(v)), both from PostgreSQL 15. text() always shows the prefix.
const INETS: &[(&str, &str)] = &[
    ("022000040a000001", "10.0.0.1/32"),
    ("021800040a000001", "10.0.0.1/24"),
    ("0380001000000000000000000000000000000001", "::1/128"),
    ("0380001000000000000000000000000000000000", "::/128"),
    (
        "0380001020010db8000000000000ff0000428329",
        "2001:db8::ff00:42:8329/128",
    ),
    (
        "0380001000000000000000000000ffff01020304",
        "::ffff:1.2.3.4/128",
    ),
    ("0380001000000000000000000000000001020304", "::1.2.3.4/128"),
    ("0380001000000000000000000000000000000002", "::2/128"),
    ("0380001000010000000000020000000000000003", "1:0:0:2::3/128"),
    ("030a0010fe800000000000000000000000000000", "fe80::/10"),
    (
        "0380001000000000000000000000ffff00000000",
        "::ffff:0.0.0.0/128",
    ),
    ("0380001000010000000000000000000000000000", "1::/128"),
    (
        "0380001000010002000300040005000600070008",
        "1:2:3:4:5:6:7:8/128",
    ),
    ("0380001000000000000100000000000000000000", "0:0:1::/128"),
    (
        "0378001000000000000000000000ffff01020304",
        "::ffff:1.2.3.4/120",
    ),
    ("0200000400000000", "0.0.0.0/0"),
    ("020801040a000000", "10.0.0.0/8"),
    ("0320011020010db8000000000000000000000000", "2001:db8::/32"),
    ("02200104c0a80105", "192.168.1.5/32"),
];

#[test]
fn inet_matches_postgres_text() {
    for (h, want) in INETS {
        assert_eq!(inet(h).as_deref(), Ok(*want), "{h}");
    }
}

#[test]
fn inet_rejects_malformed() {
    assert!(matches!(inet("0220"), Err(DecodeError::Truncated { .. })));
    // Unknown family.
    assert!(matches!(
        inet("0420000401020304"),
        Err(DecodeError::Invalid {
            what: "inet family",
            ..
        })
    ));
    // IPv4 with 16-byte length.
    assert!(matches!(
        inet("0220001001020304"),
        Err(DecodeError::Invalid { .. })
    ));
    // 33 bits for IPv4.
    assert!(matches!(
        inet("0221000401020304"),
        Err(DecodeError::Invalid {
            what: "inet bits",
            ..
        })
    ));
    // Address shorter than nb.
    assert!(matches!(
        inet("02200004010203"),
        Err(DecodeError::Truncated { .. })
    ));
    // Trailing byte.
    assert!(matches!(
        inet("022000040102030405"),
        Err(DecodeError::TrailingBytes { .. })
    ));
}
