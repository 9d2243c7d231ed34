//! A round trip of every type of the type contract (NULLs included) through the real CLI into the test destination, on every PostgreSQL major
//! (the test name contains `matrix`).
//!
//! One table holds a column of each type and an array column of each, with a row of ordinary
//! values, a row of edge values (empty strings, NaN, ±Infinity, min/max integers, unicode,
//! 30-digit numerics, ±infinity dates and timestamps, BC and year-10000 values (clamped by the
//! default rules; `tests/e2e_values.rs` covers every rule), multi-dimensional
//! arrays, arrays with NULLs), a row with 1 MB of text and of bytea, and a row of NULLs. The
//! expected values are computed by PostgreSQL itself, per column, in SQL that renders the
//! destination's canonical JSON (`tests/destination/cqdest_values.py`; calendar types as raw Arrow
//! integers via `inspect.py rows --raw`): never from the plugin's output.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod support;

use serde_json::{json, Value};
use support::cli::{sync, Config, PLUGIN};
use support::destination;
use support::pg::{roles, PgServer};

/// One column of the round-trip table.
struct Col {
    /// Column name; the array column is `a_<name>`.
    name: &'static str,
    /// SQL type.
    ty: &'static str,
    /// Arrow storage type of the scalar column as pyarrow prints it (the array column is
    /// `list<item: …>`) and its CloudQuery extension.
    arrow: &'static str,
    ext: Option<&'static str>,
    /// SQL rendering the expected canonical JSON of a value `$` (NULL stays NULL).
    expect: &'static str,
    /// Ordinary value, edge value (SQL literals of type `ty`).
    ordinary: &'static str,
    edge: &'static str,
    /// Array values: ordinary and edge (SQL expressions of type `ty[]`).
    arr_ordinary: &'static str,
    arr_edge: &'static str,
    /// Lowest PostgreSQL major with this type.
    since: u32,
}

const TEXT: &str = "to_json(($)::text)";
const SAME: &str = "to_json($)";
/// Days since 1970 under the default rules (README): ±infinity and dates outside the years
/// 1–9999 clamped to 0001-01-01 / 9999-12-31.
const DATE_DAYS: &str =
    "to_json(CASE WHEN $ > DATE '9999-12-31' THEN DATE '9999-12-31' - DATE '1970-01-01' \
     WHEN $ < DATE '0001-01-01' THEN DATE '0001-01-01' - DATE '1970-01-01' \
     ELSE $ - DATE '1970-01-01' END)";

/// The column's unit since 1970 of a timestamp expression `$`, exactly (integer SQL; the
/// extract of a time of day is exact in float8), rounded down to the unit, under the default
/// rules: ±infinity and values outside the years 1–9999 clamped to 0001-01-01 00:00:00 /
/// 9999-12-31 23:59:59.999999.
fn ts_expect(unit_div: &str, tz: bool) -> String {
    let raw = if tz { "($ AT TIME ZONE 'UTC')" } else { "($)" };
    let v = format!(
        "(CASE WHEN {raw} > TIMESTAMP '9999-12-31 23:59:59.999999' \
         THEN TIMESTAMP '9999-12-31 23:59:59.999999' \
         WHEN {raw} < TIMESTAMP '0001-01-01 00:00:00' THEN TIMESTAMP '0001-01-01 00:00:00' \
         ELSE {raw} END)"
    );
    format!(
        "to_json((({v}::date - DATE '1970-01-01')::bigint * 86400000000 \
               + round(extract(epoch from {v}::time) * 1000000)::bigint) / {unit_div})"
    )
}

fn columns() -> Vec<Col> {
    let c = |name, ty, arrow, ext, expect, ordinary, edge, arr_ordinary, arr_edge| Col {
        name,
        ty,
        arrow,
        ext,
        expect,
        ordinary,
        edge,
        arr_ordinary,
        arr_edge,
        since: 12,
    };
    let mut cols = vec![
        c(
            "c_bool",
            "boolean",
            "bool",
            None,
            SAME,
            "true",
            "false",
            "ARRAY[true,false]",
            "ARRAY[[true,NULL],[NULL,false]]",
        ),
        c(
            "c_int2",
            "smallint",
            "int16",
            None,
            SAME,
            "12",
            "-32768",
            "ARRAY[1,2,3]::int2[]",
            "ARRAY[[-32768,32767],[NULL,0]]::int2[]",
        ),
        c(
            "c_int4",
            "integer",
            "int32",
            None,
            SAME,
            "123456",
            "2147483647",
            "ARRAY[1,NULL,3]",
            "'[0:1]={-2147483648,2147483647}'::int4[]",
        ),
        c(
            "c_int8",
            "bigint",
            "int64",
            None,
            SAME,
            "1234567890123",
            "-9223372036854775808",
            "ARRAY[1,2]::int8[]",
            "ARRAY[-9223372036854775808,9223372036854775807,NULL]::int8[]",
        ),
        c(
            "c_float4",
            "real",
            "float",
            None,
            SAME,
            "1.1",
            "'NaN'",
            "ARRAY[1.5,-2.25]::real[]",
            "ARRAY['Infinity','-Infinity','NaN',NULL,'3.4028235e38','1e-45']::real[]",
        ),
        c(
            "c_float8",
            "double precision",
            "double",
            None,
            SAME,
            "3.141592653589793",
            "'-Infinity'",
            "ARRAY[0.1,0.2]::float8[]",
            "ARRAY['Infinity','NaN','1.7976931348623157e308','5e-324',NULL]::float8[]",
        ),
        c(
            "c_numeric",
            "numeric",
            "string",
            None,
            TEXT,
            "1.50",
            "123456789012345678901234567890.123456789012345678901234567890",
            "ARRAY[1.50, 0.000]::numeric[]",
            "ARRAY['NaN', '-123456789012345678901234567890', NULL]::numeric[]",
        ),
        c(
            "c_numeric_ps",
            "numeric(30,10)",
            "string",
            None,
            TEXT,
            "42.1",
            "-99999999999999999999.9999999999",
            "ARRAY[1, 2.5]::numeric(30,10)[]",
            "ARRAY[[0,NULL],[1e19,-1e-10]]::numeric(30,10)[]",
        ),
        c(
            "c_money",
            "money",
            "string",
            None,
            TEXT,
            "12.34",
            "-92233720368547758.08",
            "ARRAY[1, 2]::money[]",
            "ARRAY[NULL, '92233720368547758.07']::money[]",
        ),
        c(
            "c_oid",
            "oid",
            "uint32",
            None,
            "to_json(($)::bigint)",
            "1259",
            "4294967295",
            "ARRAY[1,2]::oid[]",
            "ARRAY[0,4294967295,NULL]::oid[]",
        ),
        c(
            "c_xid",
            "xid",
            "uint32",
            None,
            "to_json(($)::text::bigint)",
            "'1234'",
            "'4294967295'",
            "ARRAY['1','2']::xid[]",
            "ARRAY['0',NULL]::xid[]",
        ),
        c(
            "c_cid",
            "cid",
            "uint32",
            None,
            "to_json(($)::text::bigint)",
            "'7'",
            "'4294967295'",
            "ARRAY['1']::cid[]",
            "ARRAY[NULL,'0']::cid[]",
        ),
        c(
            "c_regclass",
            "regclass",
            "string",
            None,
            TEXT,
            "'pg_class'",
            "'rt_mood_holder'",
            "ARRAY['pg_class','pg_type']::regclass[]",
            "ARRAY[NULL,'pg_proc']::regclass[]",
        ),
        c(
            "c_regtype",
            "regtype",
            "string",
            None,
            TEXT,
            "'integer'",
            "'timestamp(3) with time zone'",
            "ARRAY['text','int8']::regtype[]",
            "ARRAY['double precision',NULL]::regtype[]",
        ),
        c(
            "c_text",
            "text",
            "string",
            None,
            TEXT,
            "'hello'",
            "''",
            "ARRAY['a','b']",
            "ARRAY[['','日本語'],[NULL,'tab\there']]",
        ),
        c(
            "c_varchar",
            "varchar(20)",
            "string",
            None,
            TEXT,
            "'varchar value'",
            "'ünïcödé ✓ 🐘'",
            "ARRAY['x']::varchar(20)[]",
            "ARRAY['', NULL, '\"quoted\", {braced}']::varchar(20)[]",
        ),
        c(
            "c_bpchar",
            "char(5)",
            "string",
            None,
            "to_json(CASE WHEN $ IS NULL THEN NULL ELSE concat($) END)",
            "'ab'",
            "''",
            "ARRAY['a','abcde']::char(5)[]",
            "ARRAY[NULL,'x y']::char(5)[]",
        ),
        c(
            "c_name",
            "name",
            "string",
            None,
            TEXT,
            "'a_name'",
            "'ñame'",
            "ARRAY['n1','n2']::name[]",
            "ARRAY[NULL,'']::name[]",
        ),
        c(
            "c_citext",
            "citext",
            "string",
            None,
            TEXT,
            "'CaseLess'",
            "''",
            "ARRAY['A','b']::citext[]",
            "ARRAY[NULL,'Ωmega']::citext[]",
        ),
        c(
            "c_char",
            "\"char\"",
            "string",
            None,
            TEXT,
            "'a'",
            "''",
            "ARRAY['x','y']::\"char\"[]",
            "ARRAY[NULL,'z']::\"char\"[]",
        ),
        c(
            "c_bytea",
            "bytea",
            "binary",
            None,
            "to_json('\\x' || encode($, 'hex'))",
            "'\\xdeadbeef'",
            "''",
            "ARRAY['\\x00ff'::bytea, '\\x']",
            "ARRAY[['\\x01'::bytea, NULL], ['\\x'::bytea, '\\x7f']]",
        ),
        c(
            "c_uuid",
            "uuid",
            "fixed_size_binary[16]",
            Some("uuid"),
            TEXT,
            "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'",
            "'ffffffff-ffff-ffff-ffff-ffffffffffff'",
            "ARRAY['00000000-0000-0000-0000-000000000000']::uuid[]",
            "ARRAY[NULL,'123e4567-e89b-12d3-a456-426614174000']::uuid[]",
        ),
        c(
            "c_json",
            "json",
            "binary",
            Some("json"),
            TEXT,
            "'{\"b\": 1, \"a\": [1.50, 2e10]}'",
            "'\"just a string\"'",
            "ARRAY['{\"k\":1}','42']::json[]",
            "ARRAY[NULL,'null','{\"u\":\"ü\\u00e9\"}']::json[]",
        ),
        c(
            "c_jsonb",
            "jsonb",
            "binary",
            Some("json"),
            TEXT,
            "'{\"b\": 1, \"a\": [1.50, 2e10]}'",
            "'12.5000'",
            "ARRAY['{\"k\":1}','[]']::jsonb[]",
            "ARRAY[NULL,'\"s\"','{\"z\":{\"y\":null}}']::jsonb[]",
        ),
        c(
            "c_jsonpath",
            "jsonpath",
            "string",
            None,
            TEXT,
            "'$.a[*] ? (@ > 1)'",
            "'strict $'",
            "ARRAY['$.x']::jsonpath[]",
            "ARRAY[NULL,'$.y']::jsonpath[]",
        ),
        c(
            "c_xml",
            "xml",
            "string",
            None,
            TEXT,
            "'<a b=\"1\">t &amp; ü</a>'",
            "''",
            "ARRAY['<x/>']::xml[]",
            "ARRAY[NULL,'text only']::xml[]",
        ),
        c(
            "c_inet",
            "inet",
            "binary",
            Some("inet"),
            "to_json(host($) || '/' || masklen($))",
            "'10.0.0.1'",
            "'2001:db8::ff00:42:8329/64'",
            "ARRAY['192.168.1.5/24','::1']::inet[]",
            "ARRAY[NULL,'0.0.0.0/0','::ffff:1.2.3.4']::inet[]",
        ),
        c(
            "c_cidr",
            "cidr",
            "binary",
            Some("inet"),
            "to_json(host($) || '/' || masklen($))",
            "'10.0.0.0/8'",
            "'2001:db8::/32'",
            "ARRAY['192.168.0.0/16']::cidr[]",
            "ARRAY['::/0',NULL]::cidr[]",
        ),
        c(
            "c_macaddr",
            "macaddr",
            "binary",
            Some("mac"),
            TEXT,
            "'08:00:2b:01:02:03'",
            "'ff:ff:ff:ff:ff:ff'",
            "ARRAY['00:00:00:00:00:00']::macaddr[]",
            "ARRAY[NULL,'0a:0b:0c:0d:0e:0f']::macaddr[]",
        ),
        c(
            "c_macaddr8",
            "macaddr8",
            "binary",
            Some("mac"),
            TEXT,
            "'08:00:2b:01:02:03:04:05'",
            "'ff:ff:ff:ff:ff:ff:ff:ff'",
            "ARRAY['00:00:00:00:00:00:00:01']::macaddr8[]",
            "ARRAY[NULL,'08:00:2b:01:02:03']::macaddr8[]",
        ),
        c(
            "c_date",
            "date",
            "date32[day]",
            None,
            DATE_DAYS,
            "'2026-11-24'",
            "'infinity'",
            "ARRAY['1970-01-01','1969-12-31']::date[]",
            "ARRAY[['-infinity','4713-01-01 BC'],['5874897-12-31',NULL]]::date[]",
        ),
        c(
            "c_time0",
            "time(0)",
            "time32[s]",
            None,
            "to_json(round(extract(epoch from $))::bigint)",
            "'12:34:56'",
            "'24:00:00'",
            "ARRAY['00:00:00']::time(0)[]",
            "ARRAY[NULL,'23:59:59']::time(0)[]",
        ),
        c(
            "c_time3",
            "time(3)",
            "time32[ms]",
            None,
            "to_json(round(extract(epoch from $) * 1000)::bigint)",
            "'12:34:56.789'",
            "'23:59:59.999'",
            "ARRAY['00:00:00.001']::time(3)[]",
            "ARRAY[NULL,'24:00:00']::time(3)[]",
        ),
        c(
            "c_time",
            "time",
            "time64[us]",
            None,
            "to_json(round(extract(epoch from $) * 1000000)::bigint)",
            "'04:05:06.789012'",
            "'00:00:00'",
            "ARRAY['23:59:59.999999']::time[]",
            "ARRAY[NULL,'12:00']::time[]",
        ),
        c(
            "c_timetz",
            "time with time zone",
            "string",
            None,
            TEXT,
            "'04:05:06.789+02'",
            "'23:59:59.999999-15:59'",
            "ARRAY['00:00:00+00']::timetz[]",
            "ARRAY[NULL,'12:00-03:30']::timetz[]",
        ),
        c(
            "c_interval",
            "interval",
            "string",
            None,
            TEXT,
            "'1 year 2 mons 3 days 04:05:06'",
            "'-178000000 years'",
            "ARRAY['1 day','PT0S']::interval[]",
            "ARRAY[NULL,'-1 mon +2 days -00:00:00.000001']::interval[]",
        ),
        c(
            "c_bit",
            "bit(4)",
            "string",
            None,
            TEXT,
            "B'0101'",
            "B'1111'",
            "ARRAY[B'0000']::bit(4)[]",
            "ARRAY[NULL,B'1000']::bit(4)[]",
        ),
        c(
            "c_varbit",
            "bit varying",
            "string",
            None,
            TEXT,
            "B'101'",
            "B''",
            "ARRAY[B'1',B'01']::varbit[]",
            "ARRAY[NULL,B'']::varbit[]",
        ),
        c(
            "c_tsvector",
            "tsvector",
            "string",
            None,
            TEXT,
            "'a fat cat'",
            "''",
            "ARRAY['x:1A']::tsvector[]",
            "ARRAY[NULL,'''q q''']::tsvector[]",
        ),
        c(
            "c_tsquery",
            "tsquery",
            "string",
            None,
            TEXT,
            "'fat & (rat | cat)'",
            "'!x'",
            "ARRAY['a']::tsquery[]",
            "ARRAY[NULL,'a <-> b']::tsquery[]",
        ),
        c(
            "c_point",
            "point",
            "string",
            None,
            TEXT,
            "'(1.5,-2)'",
            "'(NaN,Infinity)'",
            "ARRAY['(0,0)']::point[]",
            "ARRAY[NULL,'(1e300,-1e-300)']::point[]",
        ),
        c(
            "c_line",
            "line",
            "string",
            None,
            TEXT,
            "'{1,-1,0}'",
            "'{0,1,-2.5}'",
            "ARRAY['{1,2,3}']::line[]",
            "ARRAY[NULL]::line[]",
        ),
        c(
            "c_lseg",
            "lseg",
            "string",
            None,
            TEXT,
            "'[(0,0),(1,1)]'",
            "'[(0.1,0.2),(0.3,0.4)]'",
            "ARRAY['[(0,0),(2,2)]']::lseg[]",
            "ARRAY[NULL]::lseg[]",
        ),
        c(
            "c_box",
            "box",
            "string",
            None,
            TEXT,
            "'(1,1),(0,0)'",
            "'(0,0),(0,0)'",
            "ARRAY['(2,2),(0,0)']::box[]",
            "ARRAY[NULL]::box[]",
        ),
        c(
            "c_path",
            "path",
            "string",
            None,
            TEXT,
            "'[(0,0),(1,1),(2,0)]'",
            "'((0,0),(1,0))'",
            "ARRAY['[(0,0),(1,1)]']::path[]",
            "ARRAY[NULL]::path[]",
        ),
        c(
            "c_polygon",
            "polygon",
            "string",
            None,
            TEXT,
            "'((0,0),(1,1),(1,0))'",
            "'((0,0))'",
            "ARRAY['((0,0),(1,0),(0,1))']::polygon[]",
            "ARRAY[NULL]::polygon[]",
        ),
        c(
            "c_circle",
            "circle",
            "string",
            None,
            TEXT,
            "'<(1,2),3>'",
            "'<(0,0),0>'",
            "ARRAY['<(0,0),1>']::circle[]",
            "ARRAY[NULL]::circle[]",
        ),
        c(
            "c_int4range",
            "int4range",
            "string",
            None,
            TEXT,
            "'[1,10)'",
            "'empty'",
            "ARRAY['[1,2]'::int4range]",
            "ARRAY[NULL,'(,)'::int4range]",
        ),
        c(
            "c_tstzrange",
            "tstzrange",
            "string",
            None,
            TEXT,
            "'[2026-01-01 00:00+00,2026-02-01 00:00+00)'",
            "'(,infinity]'",
            "ARRAY['[2026-01-01,)'::tstzrange]",
            "ARRAY[NULL,'empty'::tstzrange]",
        ),
        c(
            "c_enum",
            "rt_mood",
            "string",
            None,
            TEXT,
            "'happy'",
            "'ünïcode mood'",
            "ARRAY['sad','happy']::rt_mood[]",
            "ARRAY[NULL,'sad']::rt_mood[]",
        ),
        c(
            "c_domain",
            "rt_posint",
            "int32",
            None,
            SAME,
            "1",
            "2147483647",
            "ARRAY[1,2]::rt_posint[]",
            "ARRAY[NULL,3]::rt_posint[]",
        ),
        c(
            "c_composite",
            "rt_pair",
            "string",
            None,
            TEXT,
            "ROW(1, 'a b')::rt_pair",
            "ROW(NULL, '\"q\"')::rt_pair",
            "ARRAY[ROW(1,'x')::rt_pair]",
            "ARRAY[NULL, ROW(2, NULL)::rt_pair]",
        ),
        c(
            "c_hstore",
            "hstore",
            "string",
            None,
            TEXT,
            "'a=>1, b=>NULL'",
            "''",
            "ARRAY['k=>v']::hstore[]",
            "ARRAY[NULL,'\"x y\"=>\"z\"']::hstore[]",
        ),
    ];
    // timestamps: (name, type, arrow, divisor to the column's unit)
    for (name, ty, arrow, tz) in [
        ("c_ts0", "timestamp(0)", "timestamp[s, tz=UTC]", false),
        ("c_ts3", "timestamp(3)", "timestamp[ms, tz=UTC]", false),
        ("c_ts", "timestamp", "timestamp[us, tz=UTC]", false),
        ("c_tstz0", "timestamptz(0)", "timestamp[s, tz=UTC]", true),
        ("c_tstz3", "timestamptz(3)", "timestamp[ms, tz=UTC]", true),
        ("c_tstz", "timestamptz", "timestamp[us, tz=UTC]", true),
    ] {
        let div = match arrow {
            a if a.starts_with("timestamp[s") => "1000000",
            a if a.starts_with("timestamp[ms") => "1000",
            _ => "1",
        };
        let expect: &'static str = Box::leak(ts_expect(div, tz).into_boxed_str());
        let (ordinary, edge, arr_ordinary, arr_edge): (&str, &str, &str, &str) = if tz {
            (
                "'2026-11-24 10:20:30.456789+02'",
                "'infinity'",
                "ARRAY['1970-01-01 00:00:00+00','1969-12-31 23:59:59.5+00']",
                "ARRAY[['-infinity','4713-01-01 00:00:00+00 BC'],['10000-01-01 00:00:00+00',NULL]]",
            )
        } else {
            (
                "'2026-11-24 10:20:30.456789'",
                "'-infinity'",
                "ARRAY['1970-01-01 00:00:00','1969-12-31 23:59:59.5']",
                "ARRAY[['infinity','4713-01-01 00:00:00 BC'],['10000-01-01 00:00:00',NULL]]",
            )
        };
        let cast: &'static str = Box::leak(format!("{arr_ordinary}::{ty}[]").into_boxed_str());
        let cast_edge: &'static str = Box::leak(format!("{arr_edge}::{ty}[]").into_boxed_str());
        cols.push(Col {
            name,
            ty,
            arrow,
            ext: None,
            expect,
            ordinary,
            edge,
            arr_ordinary: cast,
            arr_edge: cast_edge,
            since: 12,
        });
    }
    cols.push(Col {
        since: 13,
        ..c(
            "c_xid8",
            "xid8",
            "uint64",
            None,
            "to_json(($)::text::numeric)",
            "'1234'",
            "'18446744073709551615'",
            "ARRAY['1','2']::xid8[]",
            "ARRAY[NULL,'0']::xid8[]",
        )
    });
    cols.push(Col {
        since: 14,
        ..c(
            "c_multirange",
            "int4multirange",
            "string",
            None,
            TEXT,
            "'{[1,3),[5,7)}'",
            "'{}'",
            "ARRAY['{[1,2)}']::int4multirange[]",
            "ARRAY[NULL,'{}']::int4multirange[]",
        )
    });
    cols
}

/// Normalises numbers so that `1` and `1.0` compare equal (PostgreSQL prints integral floats
/// without a fraction, Python with one); every other value is compared exactly.
fn norm(v: &Value) -> Value {
    match v {
        Value::Number(n) if !n.is_i64() && !n.is_u64() => match n.as_f64() {
            Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => json!(f as i64),
            _ => v.clone(),
        },
        Value::Array(items) => Value::Array(items.iter().map(norm).collect()),
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), norm(v))).collect())
        }
        _ => v.clone(),
    }
}

/// The array form of an element expression: the elements flattened row-major (`unnest`), NULLs
/// kept, an empty array an empty list, a NULL array NULL.
/// A composite element type would make `unnest` return the type's columns (and a NULL element a
/// row of NULLs), so such arrays are unnested as the server's text of each element.
fn array_expect(col: &str, elem_expect: &str, composite: bool) -> String {
    let elem = elem_expect.replace('$', "u.e");
    let from = if composite {
        format!("unnest({col}::text[]) WITH ORDINALITY AS u(e, ord)")
    } else {
        format!("unnest({col}) WITH ORDINALITY AS u(e, ord)")
    };
    format!(
        "CASE WHEN {col} IS NULL THEN NULL ELSE coalesce((SELECT json_agg({elem} ORDER BY u.ord) \
         FROM {from}), '[]'::json) END"
    )
}

#[test]
fn e2e_sync_matrix_round_trip_every_type() {
    let pg = PgServer::start();
    let major = pg.version_major();
    let cols: Vec<Col> = columns().into_iter().filter(|c| major >= c.since).collect();

    let mut ddl = String::from(
        "CREATE EXTENSION citext; CREATE EXTENSION hstore;\n\
         CREATE TYPE rt_mood AS ENUM ('happy', 'sad', 'ünïcode mood');\n\
         CREATE DOMAIN rt_posint AS integer CHECK (VALUE > 0);\n\
         CREATE TYPE rt_pair AS (n integer, s text);\n\
         CREATE TABLE rt_mood_holder (x int);\n\
         CREATE TABLE rt (id integer PRIMARY KEY",
    );
    for c in &cols {
        ddl.push_str(&format!(", {} {}, a_{} {}[]", c.name, c.ty, c.name, c.ty));
    }
    ddl.push_str(");\n");
    let names: Vec<String> = cols
        .iter()
        .flat_map(|c| [c.name.to_string(), format!("a_{}", c.name)])
        .collect();
    let insert = |id: u32, vals: Vec<String>| {
        format!(
            "INSERT INTO rt (id, {}) VALUES ({id}, {});\n",
            names.join(", "),
            vals.join(", ")
        )
    };
    let typed = |v: &str, ty: &str| format!("({v})::{ty}");
    // 1: ordinary values, 2: edge values, 3: empty arrays and 1 MB text/bytea, 4: NULLs.
    ddl.push_str(&insert(
        1,
        cols.iter()
            .flat_map(|c| [typed(c.ordinary, c.ty), c.arr_ordinary.to_string()])
            .collect(),
    ));
    ddl.push_str(&insert(
        2,
        cols.iter()
            .flat_map(|c| [typed(c.edge, c.ty), c.arr_edge.to_string()])
            .collect(),
    ));
    ddl.push_str(&insert(
        3,
        cols.iter()
            .flat_map(|c| {
                let big = match c.name {
                    "c_text" => "repeat('x€', 349525) || 'end'".to_string(),
                    "c_bytea" => "decode(repeat('00ff7f80', 262144), 'hex')".to_string(),
                    _ => "NULL".to_string(),
                };
                [big, format!("'{{}}'::{}[]", c.ty)]
            })
            .collect(),
    ));
    ddl.push_str(&insert(4, vec!["NULL".to_string(); names.len()]));
    pg.psql(&ddl);
    // the 1 MB values really are 1 MB
    assert_eq!(
        pg.psql(
            "SELECT octet_length(c_text) >= 1048576, octet_length(c_bytea) FROM rt WHERE id = 3"
        ),
        "t|1048576"
    );

    // What PostgreSQL says the destination must hold, column by column.
    let mut fields = vec!["'id', id".to_string()];
    for c in &cols {
        fields.push(format!("'{}', {}", c.name, c.expect.replace('$', c.name)));
        fields.push(format!(
            "'a_{}', {}",
            c.name,
            array_expect(&format!("a_{}", c.name), c.expect, c.ty == "rt_pair")
        ));
    }
    // json_build_object takes at most 100 arguments: each row is an array of objects built from
    // pieces of the column list, merged here (json, not jsonb, so numbers keep PostgreSQL's text).
    let expected_sql = format!(
        "SET extra_float_digits = 3; SET IntervalStyle = iso_8601; SET DateStyle = ISO; \
         SET TimeZone = 'UTC';\n\
         SELECT json_build_array({}) FROM rt ORDER BY id;",
        fields
            .chunks(40)
            .map(|chunk| format!("json_build_object({})", chunk.join(", ")))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let out = pg.psql(&expected_sql);
    let expected: Vec<Value> = out
        .lines()
        .filter(|l| l.starts_with('['))
        .map(|line| {
            let pieces: Vec<serde_json::Map<String, Value>> =
                serde_json::from_str(line).expect("expected JSON");
            Value::Object(pieces.into_iter().flatten().collect())
        })
        .collect();
    assert_eq!(expected.len(), 4);

    // A few values spelled out as constants too: the contract's rules, not just SQL's view.
    let e2 = &expected[1];
    assert_eq!(e2["c_int8"], json!(i64::MIN));
    assert_eq!(e2["c_float4"], json!("NaN"));
    assert_eq!(e2["c_float8"], json!("-Infinity"));
    assert_eq!(e2["c_date"], json!(2_932_896), "infinity → 9999-12-31");
    assert_eq!(
        e2["c_ts"],
        json!(-62_135_596_800_000_000i64),
        "-infinity → 0001-01-01 00:00:00"
    );
    assert_eq!(
        e2["c_tstz"],
        json!(253_402_300_799_999_999i64),
        "infinity → 9999-12-31 23:59:59.999999"
    );
    assert_eq!(expected[0]["c_bpchar"], json!("ab   "));
    assert_eq!(expected[0]["c_inet"], json!("10.0.0.1/32"));
    assert_eq!(expected[0]["c_interval"], json!("P1Y2M3DT4H5M6S"));
    assert_eq!(e2["a_c_int2"], json!([-32768, 32767, null, 0]));
    assert_eq!(expected[2]["a_c_int4"], json!([]));
    assert_eq!(expected[3]["c_text"], Value::Null);

    let tmp = tempfile::tempdir().expect("tempdir");
    let dest = tmp.path().join("dest");
    let cfg = Config::local(PLUGIN, &dest)
        .spec(json!({
            "connection_string": pg.url(roles::SUPERUSER, roles::PASSWORD, "postgres"),
        }))
        .tables(&["rt"])
        .write(tmp.path());
    let run = sync(&cfg).run();
    run.assert_success();

    // Arrow types of the contract.
    let types = destination::field_types(&dest, "rt");
    let schema = destination::schema(&dest, "rt").expect("schema");
    let field = |name: &str| {
        schema["fields"]
            .as_array()
            .and_then(|f| f.iter().find(|f| f["name"] == name))
            .unwrap_or_else(|| panic!("no field {name}"))
            .clone()
    };
    for c in &cols {
        let t = types
            .iter()
            .find(|(n, _)| n == c.name)
            .map(|(_, t)| t.as_str());
        assert_eq!(t, Some(c.arrow), "{} {}: arrow type", c.name, c.ty);
        let f = field(c.name);
        assert_eq!(f["extension"], json!(c.ext), "{}: extension", c.name);
        let a = format!("a_{}", c.name);
        let t = types.iter().find(|(n, _)| *n == a).map(|(_, t)| t.clone());
        assert_eq!(
            t,
            Some(format!("list<item: {}>", c.arrow)),
            "{a}: arrow type"
        );
    }

    // Values: every column of every row.
    let got = destination::inspect(&["rows", &dest.to_string_lossy(), "rt", "--raw"]);
    let mut got = got.as_array().expect("rows").clone();
    got.sort_by_key(|r| r["id"].as_i64());
    assert_eq!(got.len(), expected.len(), "rows");
    let mut mismatches = Vec::new();
    for (g, e) in got.iter().zip(&expected) {
        let id = &e["id"];
        assert_eq!(g["id"], *id);
        for name in std::iter::once("id".to_string()).chain(names.iter().cloned()) {
            let (gv, ev) = (norm(&g[&name]), norm(&e[&name]));
            if gv != ev {
                let short = |v: &Value| {
                    let s = v.to_string();
                    if s.len() > 200 {
                        format!("{}… ({} chars)", &s[..200], s.len())
                    } else {
                        s
                    }
                };
                mismatches.push(format!(
                    "row {id} {name}: destination {} != PostgreSQL {}",
                    short(&gv),
                    short(&ev)
                ));
            }
        }
        let columns = g.as_object().map(|o| o.len()).unwrap_or(0);
        assert_eq!(columns, names.len() + 1, "row {id}: column count");
    }
    assert!(
        mismatches.is_empty(),
        "PostgreSQL {major}: {} mismatches:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
    println!(
        "PostgreSQL {major}: {} columns x {} rows equal PostgreSQL's own rendering",
        names.len() + 1,
        got.len()
    );
}
