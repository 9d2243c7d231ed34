//! `decode::text::text_to_binary` against a real server: for a column of every native type (and
//! arrays of them) holding ordinary values, edge values and NULLs, the server's text output of
//! each value (what pgoutput sends in text mode) must convert to exactly the bytes the type's own
//! send function produces (what COPY BINARY and binary pgoutput send). Both sides come from
//! PostgreSQL: the text from the output function (`format('%s', v)`) and the binary from
//! `<type>send(v)`, in a session with the plugin's settings. Runs on every major (`matrix`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod support;

use cq_source_postgresql::decode::text::text_to_binary;
use cq_source_postgresql::decode::PgType;
use support::pg::PgServer;

struct Case {
    /// SQL type of the column.
    sql: &'static str,
    ty: PgType,
    /// The type's send function, e.g. `int4send` (`array_send` for arrays), or an expression
    /// of `v` when it contains a parenthesis.
    send: &'static str,
    /// SQL expressions for the rows (NULL added to every case).
    values: Vec<&'static str>,
    /// First major that has the type/values.
    since: u32,
}

fn case(
    sql: &'static str,
    ty: PgType,
    send: &'static str,
    values: &[&'static str],
    since: u32,
) -> Case {
    Case {
        sql,
        ty,
        send,
        values: values.to_vec(),
        since,
    }
}

/// A server-text type's binary value is the send format of its text.
const SERVER_TEXT_SEND: &str = "textsend(format('%s', v))";

fn arr(t: PgType) -> PgType {
    PgType::Array(Box::new(t))
}

fn cases() -> Vec<Case> {
    use PgType::*;
    let t = |p| Timestamp { precision: p };
    let tz = |p| TimestampTz { precision: p };
    vec![
        case("bool", Bool, "boolsend", &["true", "false"], 12),
        case("int2", Int2, "int2send", &["0", "-32768", "32767"], 12),
        case(
            "int4",
            Int4,
            "int4send",
            &["0", "-2147483648", "2147483647"],
            12,
        ),
        case(
            "int8",
            Int8,
            "int8send",
            &["0", "-9223372036854775808", "9223372036854775807"],
            12,
        ),
        case(
            "float4",
            Float4,
            "float4send",
            &[
                "'NaN'",
                "'Infinity'",
                "'-Infinity'",
                "'0'",
                "'-0'",
                "'1.17549435e-38'",
                "'3.4028235e38'",
                "'1e-45'",
                "'0.1'",
                "'123456.79'",
                "'-1.5e10'",
            ],
            12,
        ),
        case(
            "float8",
            Float8,
            "float8send",
            &[
                "'NaN'",
                "'Infinity'",
                "'-Infinity'",
                "'-0'",
                "'2.2250738585072014e-308'",
                "'1.7976931348623157e308'",
                "'5e-324'",
                "'0.1'",
                "'1e100'",
                "'-1.5'",
                "'123456789.123456789'",
            ],
            12,
        ),
        case("oid", Oid, "oidsend", &["'0'", "'4294967295'"], 12),
        case(
            "xid",
            Xid,
            "xidsend",
            &["'0'", "'4294967295'", "'1234'"],
            12,
        ),
        case(
            "xid8",
            Xid8,
            "xid8send",
            &["'0'", "'18446744073709551615'"],
            13,
        ),
        case(
            "text",
            Text,
            "textsend",
            &[
                "''",
                "'hello'",
                "'héllo ✓ 😀'",
                r#"E'a"b\\c{},\t\n NULL'"#,
                "repeat('x', 100000)",
            ],
            12,
        ),
        case("varchar(10)", Text, "varcharsend", &["'ab '", "''"], 12),
        case(
            "char(5)",
            Text,
            "bpcharsend",
            &["'ab'", "''", "'abcde'"],
            12,
        ),
        case("name", Text, "namesend", &["'a name'"], 12),
        case("\"char\"", Char, "charsend", &["'a'", "''", "'\\'"], 12),
        case("\"char\"", Char, "charsend", &["'\\351'"], 15),
        case(
            "bytea",
            Bytea,
            "byteasend",
            &[
                "'\\x'",
                "'\\x00ff10'",
                "decode(repeat('0123456789abcdef', 1000), 'hex')",
            ],
            12,
        ),
        case(
            "uuid",
            Uuid,
            "uuid_send",
            &[
                "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'",
                "'00000000-0000-0000-0000-000000000000'",
            ],
            12,
        ),
        case(
            "json",
            Json,
            "json_send",
            &[
                r#"'{"a": [1, 2.50, "x"]}'"#,
                r#"'"str"'"#,
                "'1e400'",
                r#"' { "a" : 1 } '"#,
            ],
            12,
        ),
        case(
            "jsonb",
            Jsonb,
            "jsonb_send",
            &[
                r#"'{"b": 1, "a": [true, null, 2.50]}'"#,
                r#"'"s"'"#,
                "'12.50'",
                "'[]'",
            ],
            12,
        ),
        case(
            "inet",
            Inet,
            "inet_send",
            &[
                "'10.0.0.1'",
                "'10.0.0.1/8'",
                "'::1'",
                "'2001:db8::1/64'",
                "'::ffff:1.2.3.4'",
                "'0.0.0.0/0'",
                "'fe80::1:2:3:4'",
                "'::'",
                "'1:2:3:4:5:6:7:8'",
            ],
            12,
        ),
        case(
            "cidr",
            Inet,
            "cidr_send",
            &[
                "'10.0.0.0/8'",
                "'2001:db8::/32'",
                "'192.168.1.1/32'",
                "'::/0'",
            ],
            12,
        ),
        case(
            "macaddr",
            MacAddr,
            "macaddr_send",
            &["'08:00:2b:01:02:03'", "'ff:ff:ff:ff:ff:ff'"],
            12,
        ),
        case(
            "macaddr8",
            MacAddr8,
            "macaddr8_send",
            &["'08:00:2b:01:02:03:04:05'"],
            12,
        ),
        case(
            "date",
            Date,
            "date_send",
            &[
                "'2000-01-01'",
                "'1999-12-31'",
                "'infinity'",
                "'-infinity'",
                "'4713-01-01 BC'",
                "'5874897-12-31'",
                "'0001-01-01 BC'",
                "'0001-01-01'",
                "'2024-02-29'",
                "'1582-10-10'",
                "'1900-03-01'",
            ],
            12,
        ),
        case(
            "time",
            Time { precision: None },
            "time_send",
            &[
                "'00:00:00'",
                "'23:59:59.999999'",
                "'24:00:00'",
                "'12:34:56.5'",
            ],
            12,
        ),
        case(
            "time(0)",
            Time { precision: Some(0) },
            "time_send",
            &["'12:34:56.7'"],
            12,
        ),
        case(
            "timestamp",
            t(None),
            "timestamp_send",
            &[
                "'2000-01-01 00:00:00'",
                "'infinity'",
                "'-infinity'",
                "'4713-01-01 00:00:00 BC'",
                "'294276-12-31 23:59:59.999999'",
                "'1970-01-01 00:00:00.000001'",
                "'0001-01-01 12:00:00 BC'",
                "'1999-12-31 23:59:59.5'",
            ],
            12,
        ),
        case(
            "timestamp(3)",
            t(Some(3)),
            "timestamp_send",
            &["'2020-05-06 07:08:09.123456'"],
            12,
        ),
        case(
            "timestamptz",
            tz(None),
            "timestamptz_send",
            &[
                "'2024-06-01 12:00:00+02'",
                "'infinity'",
                "'-infinity'",
                "'4713-01-01 00:00:00+00 BC'",
                "'294276-12-31 23:59:59.999999+00'",
                "'1900-01-01 00:00:00+00'",
                "'1969-12-31 23:59:59.999999+00'",
            ],
            12,
        ),
        case(
            "numeric",
            Numeric,
            "numeric_send",
            &[
                "'0'",
                "'0.000'",
                "'-0.5'",
                "'1.50'",
                "'123456789012345678901234567890'",
                "'-0.000000000000000000000000000001'",
                "'NaN'",
                "'10000'",
                "'99999999.99990000'",
                "'1e-20'",
                "'100000000'",
                "'0.0001'",
                "'-12345.6789'",
                "'1e100'",
            ],
            12,
        ),
        case(
            "numeric",
            Numeric,
            "numeric_send",
            &["'Infinity'", "'-Infinity'"],
            14,
        ),
        case(
            "numeric(10,2)",
            Numeric,
            "numeric_send",
            &["'3.1'", "'-0.004'"],
            12,
        ),
        // Types without a native decoder travel as their text (ServerText): the value is the text.
        case(
            "interval",
            ServerText,
            SERVER_TEXT_SEND,
            &["'1 year 2 months 3 days 04:05:06.789'", "'-1 day'"],
            12,
        ),
        case(
            "box",
            ServerText,
            SERVER_TEXT_SEND,
            &["'((1,2),(3,4))'"],
            12,
        ),
        // Arrays.
        case(
            "int4[]",
            arr(Int4),
            "array_send",
            &[
                "'{}'",
                "'{1,2,3}'",
                "'{1,NULL,3}'",
                "'{{1,2},{3,4}}'",
                "'[0:1]={5,6}'",
                "'[-2:-1][3:4]={{1,2},{3,4}}'",
                "'{{{1},{2}},{{3},{4}}}'",
                "'{NULL}'",
            ],
            12,
        ),
        case("bool[]", arr(Bool), "array_send", &["'{t,f,NULL}'"], 12),
        case("int2[]", arr(Int2), "array_send", &["'{-32768,32767}'"], 12),
        case(
            "int8[]",
            arr(Int8),
            "array_send",
            &["'{-9223372036854775808,NULL}'"],
            12,
        ),
        case(
            "float4[]",
            arr(Float4),
            "array_send",
            &["'{NaN,-Infinity,0.1,-0}'"],
            12,
        ),
        case(
            "float8[]",
            arr(Float8),
            "array_send",
            &["'{NaN,Infinity,1e-300,5e-324}'"],
            12,
        ),
        case("oid[]", arr(Oid), "array_send", &["'{1,4294967295}'"], 12),
        case(
            "text[]",
            arr(Text),
            "array_send",
            &[
                r#"E'{"", "NULL", NULL, "a\\"b", "c\\\\d", "{x}", "a,b", " sp ", "é😀"}'"#,
                "'{{a,b},{c,d}}'",
                "ARRAY[repeat('y', 10000)]",
            ],
            12,
        ),
        case("varchar[]", arr(Text), "array_send", &["'{a,b}'"], 12),
        case("char(3)[]", arr(Text), "array_send", &["'{a,bc}'"], 12),
        case("\"char\"[]", arr(Char), "array_send", &["'{a,b,NULL}'"], 12),
        case(
            "bytea[]",
            arr(Bytea),
            "array_send",
            &["ARRAY['\\x0001'::bytea, '\\x', NULL]"],
            12,
        ),
        case(
            "uuid[]",
            arr(Uuid),
            "array_send",
            &["'{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11,NULL}'"],
            12,
        ),
        case(
            "json[]",
            arr(Json),
            "array_send",
            &[r#"ARRAY['{"a": "b,c"}'::json, '[1, 2]', 'null', NULL]"#],
            12,
        ),
        case(
            "jsonb[]",
            arr(Jsonb),
            "array_send",
            &[r#"ARRAY['{"a": "b\"c"}'::jsonb, '"x"', NULL]"#],
            12,
        ),
        case(
            "inet[]",
            arr(Inet),
            "array_send",
            &["'{10.0.0.1,::1/64,NULL}'"],
            12,
        ),
        case(
            "cidr[]",
            arr(Inet),
            "array_send",
            &["'{10.0.0.0/8,NULL}'"],
            12,
        ),
        case(
            "macaddr[]",
            arr(MacAddr),
            "array_send",
            &["'{08:00:2b:01:02:03}'"],
            12,
        ),
        case(
            "macaddr8[]",
            arr(MacAddr8),
            "array_send",
            &["'{08:00:2b:01:02:03:04:05}'"],
            12,
        ),
        case(
            "date[]",
            arr(Date),
            "array_send",
            &["'{2000-01-01,infinity,-infinity,\"0044-03-15 BC\",NULL}'"],
            12,
        ),
        case(
            "time[]",
            arr(Time { precision: None }),
            "array_send",
            &["'{00:00:01.25,24:00:00}'"],
            12,
        ),
        case(
            "timestamp[]",
            arr(t(None)),
            "array_send",
            &["'{\"2000-01-01 00:00:00\",infinity,\"0010-01-01 00:00:00 BC\",NULL}'"],
            12,
        ),
        case(
            "timestamptz[]",
            arr(tz(None)),
            "array_send",
            &["'{\"2024-06-01 12:00:00+02\",-infinity,NULL}'"],
            12,
        ),
        case(
            "numeric[]",
            arr(Numeric),
            "array_send",
            &[
                "'{1.50,NaN,-0.001,123456789012345678901234567890,NULL}'",
                "'{{1,2},{3,4}}'",
            ],
            12,
        ),
        // interval_type: month_day_nano: interval_out's ISO 8601 text → interval_send.
        case(
            "interval",
            Interval,
            "interval_send",
            &[
                "'0'",
                "'1 year 2 months 3 days 04:05:06.789012'",
                "'-1 year -2 months -3 days -04:05:06.5'",
                "'1 month -40 days 25:00:00'",
                "'-7 months 40 days -00:00:00.000001'",
                "'-0.5 seconds'",
                "'2147483647 hours'",
                "'-178956970 years -8 months -2147483648 days -2147483647 hours'",
                "'178956970 years 7 months 2147483647 days 2147483647:59:59.999999'",
            ],
            12,
        ),
        case(
            "interval",
            Interval,
            "interval_send",
            &["'infinity'", "'-infinity'"],
            17,
        ),
        case(
            "interval[]",
            arr(Interval),
            "array_send",
            &["'{\"1 day\",NULL,P1Y,PT-1S}'"],
            12,
        ),
        case(
            "xid8[]",
            arr(Xid8),
            "array_send",
            &["'{1,18446744073709551615}'"],
            13,
        ),
        case(
            "interval[]",
            arr(ServerText),
            "array_send(v::text[])",
            &["'{\"1 day\",NULL,P1Y}'"],
            12,
        ),
    ]
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).expect("hex from psql"))
        .collect()
}

/// What text_to_binary documents it cannot know: the canonical element OID of arrays and the
/// is_cidr flag. Applied to the server's bytes before comparing.
fn normalize(case: &Case, mut server: Vec<u8>) -> Vec<u8> {
    let is_cidr = case.sql.starts_with("cidr");
    match &case.ty {
        PgType::Inet if is_cidr => server[2] = 0,
        PgType::Array(elem) => {
            let mut canonical = Vec::new();
            text_to_binary(&case.ty, b"{}", &mut canonical).expect("empty array");
            server[8..12].copy_from_slice(&canonical[8..12]);
            if is_cidr {
                let ndim = i32::from_be_bytes(server[0..4].try_into().unwrap()) as usize;
                let mut pos = 12 + 8 * ndim;
                while pos < server.len() {
                    let len = i32::from_be_bytes(server[pos..pos + 4].try_into().unwrap());
                    pos += 4;
                    if len >= 0 {
                        assert_eq!(**elem, PgType::Inet);
                        server[pos + 2] = 0;
                        pos += len as usize;
                    }
                }
            }
        }
        _ => {}
    }
    server
}

#[test]
fn text_to_binary_equals_server_send_matrix() {
    let pg = PgServer::start();
    let major = pg.version_major();
    let cases: Vec<Case> = cases().into_iter().filter(|c| c.since <= major).collect();
    let mut sql = String::from(
        "SET DateStyle = ISO; SET TimeZone = 'UTC'; SET IntervalStyle = iso_8601; \
         SET extra_float_digits = 3; SET bytea_output = hex;\n",
    );
    for (i, c) in cases.iter().enumerate() {
        let send = if c.send.contains('(') {
            c.send.to_string()
        } else {
            format!("{}(v)", c.send)
        };
        sql.push_str(&format!("CREATE TABLE c{i} (n int, v {});\n", c.sql));
        let mut rows: Vec<String> = c
            .values
            .iter()
            .enumerate()
            .map(|(n, v)| format!("({n}, {v})"))
            .collect();
        rows.push(format!("({}, NULL)", c.values.len()));
        sql.push_str(&format!("INSERT INTO c{i} VALUES {};\n", rows.join(", ")));
        sql.push_str(&format!(
            "SELECT {i}, n, CASE WHEN v IS NULL THEN 'N' ELSE encode(convert_to(format('%s', v), 'UTF8'), 'hex') END, \
             CASE WHEN v IS NULL THEN 'N' ELSE encode({send}, 'hex') END FROM c{i} ORDER BY n;\n",
        ));
    }
    let out = pg.psql(&sql);
    let mut checked = 0;
    let mut nulls = 0;
    for line in out.lines().filter(|l| {
        !l.is_empty()
            && !l.starts_with("SET")
            && !l.starts_with("CREATE")
            && !l.starts_with("INSERT")
    }) {
        let f: Vec<&str> = line.split('|').collect();
        assert_eq!(f.len(), 4, "psql line {line:?}");
        let c = &cases[f[0].parse::<usize>().unwrap()];
        if f[2] == "N" {
            assert_eq!(f[3], "N");
            nulls += 1;
            continue;
        }
        let text = unhex(f[2]);
        let want = normalize(c, unhex(f[3]));
        let mut got = Vec::new();
        let shown = String::from_utf8_lossy(&text);
        let shown: String = shown.chars().take(120).collect();
        text_to_binary(&c.ty, &text, &mut got)
            .unwrap_or_else(|e| panic!("{} {shown:?}: {e}", c.sql));
        assert_eq!(
            hex(&got),
            hex(&want),
            "PostgreSQL {major}, {} value {shown:?}",
            c.sql
        );
        checked += 1;
    }
    let expected: usize = cases.iter().map(|c| c.values.len()).sum();
    assert_eq!(checked, expected, "every non-NULL value was compared");
    assert_eq!(nulls, cases.len());
}
