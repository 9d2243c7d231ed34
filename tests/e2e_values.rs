//! Values every destination can hold, through the real CLI into the test destination:
//! `±infinity` and out-of-range dates and timestamps (the `infinity` and `out_of_range` rules),
//! `numeric_type: decimal` and `interval_type: month_day_nano`, in a full sync and through CDC.
//! Expected values are PostgreSQL's own text of the value the README's rule prescribes, computed
//! in SQL per column; never the plugin's output.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod support;

use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};
use support::cdc::{interrupt, CdcRun};
use support::cli::{pg_spec, sync, CliRun, Config, PLUGIN};
use support::destination;
use support::pg::{roles, PgServer};

/// PostgreSQL's text of a date in the destination's canonical form (`YYYY-MM-DD`).
const DATE_TEXT: &str = "to_char($, 'YYYY-MM-DD')";

/// PostgreSQL's text of a timestamp (UTC) in the canonical form `YYYY-MM-DDTHH:MM:SS[.ffffff]Z`.
fn ts_text(v: &str) -> String {
    format!(
        "to_char({v}, 'YYYY-MM-DD\"T\"HH24:MI:SS') || CASE WHEN to_char({v}, 'US') <> '000000' \
         THEN to_char({v}, '.US') ELSE '' END || 'Z'"
    )
}

/// The `clamp` rule in SQL: `$` clamped to [lo, hi] (±infinity included), NULL kept.
fn clamped(ty: &str, lo: &str, hi: &str) -> String {
    format!(
        "CASE WHEN $ IS NULL THEN NULL WHEN $ > {ty} '{hi}' THEN {ty} '{hi}' \
         WHEN $ < {ty} '{lo}' THEN {ty} '{lo}' ELSE $ END"
    )
}

/// The `null` rule in SQL: NULL outside [lo, hi].
fn nulled(ty: &str, lo: &str, hi: &str) -> String {
    format!("CASE WHEN $ BETWEEN {ty} '{lo}' AND {ty} '{hi}' THEN $ END")
}

/// Expected canonical JSON of the date/timestamp columns under a rule (`clamp` or `null`).
fn date_expectations(rule: &str) -> Vec<(&'static str, String)> {
    let rule_of = |ty: &str, lo: &str, hi: &str| match rule {
        "clamp" => clamped(ty, lo, hi),
        _ => nulled(ty, lo, hi),
    };
    let d = rule_of("DATE", "0001-01-01", "9999-12-31");
    let ts = rule_of(
        "TIMESTAMP",
        "0001-01-01 00:00:00",
        "9999-12-31 23:59:59.999999",
    );
    let tstz = format!(
        "(({}) AT TIME ZONE 'UTC')",
        ts.replace('$', "($ AT TIME ZONE 'UTC')")
    );
    vec![
        (
            "d",
            format!("to_json({})", DATE_TEXT.replace('$', &format!("({d})"))),
        ),
        ("ts", format!("to_json({})", ts_text(&format!("({ts})")))),
        (
            "ts0",
            format!(
                "to_json({})",
                ts_text(&format!("date_trunc('second', {ts})"))
            ),
        ),
        ("tstz", format!("to_json({})", ts_text(&tstz))),
    ]
}

/// `elem` applied to every element of the array column `col` (row-major, NULLs kept).
fn array_of(col: &str, elem: &str) -> String {
    let elem = elem.replace('$', "u.e");
    format!(
        "CASE WHEN {col} IS NULL THEN NULL ELSE coalesce((SELECT json_agg({elem} ORDER BY u.ord) \
         FROM unnest({col}) WITH ORDINALITY AS u(e, ord)), '[]'::json) END"
    )
}

/// Rows of `table` as PostgreSQL says the destination must hold them: `id` plus each
/// `(column, expression of $)`, ordered by id.
fn expected_rows(pg: &PgServer, table: &str, cols: &[(&str, String)]) -> Vec<Value> {
    let fields: Vec<String> = std::iter::once("'id', id".to_string())
        .chain(
            cols.iter()
                .map(|(c, e)| format!("'{c}', {}", e.replace('$', c))),
        )
        .collect();
    let out = pg.psql(&format!(
        "SET TimeZone = 'UTC'; SET DateStyle = ISO; \
         SELECT json_build_object({}) FROM {table} ORDER BY id",
        fields.join(", ")
    ));
    out.lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).expect("expected JSON"))
        .collect()
}

fn sorted_rows(dest: &Path, table: &str) -> Vec<Value> {
    let mut rows = destination::rows(dest, table);
    rows.sort_by_key(|r| r["id"].as_i64());
    rows
}

/// Every stored record goes through pyarrow's `to_pylist()` without an error.
#[track_caller]
fn assert_pylist_ok(dest: &Path, min_rows: u64) {
    let r = destination::inspect(&["pylist", &dest.to_string_lossy()]);
    assert_eq!(r["errors"], json!([]), "to_pylist failed: {r}");
    assert!(
        r["rows"].as_u64().unwrap_or(0) >= min_rows,
        "to_pylist saw too few rows: {r}"
    );
}

/// The plugin's warnings (JSON log) whose message contains `needle`, as (table, column, count).
fn warnings(run: &CliRun, needle: &str) -> Vec<(String, String, u64)> {
    let mut found: Vec<(String, String, u64)> = run
        .log
        .lines()
        .filter(|l| l.contains(needle))
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["level"] == "warn")
        .map(|v| {
            (
                v["table"].as_str().unwrap_or("").to_string(),
                v["column"].as_str().unwrap_or("").to_string(),
                v["count"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    found.sort();
    found
}

const DATES_DDL: &str = "
CREATE TABLE dates (id int PRIMARY KEY, d date, ts timestamp, ts0 timestamp(0), tstz timestamptz,
                    ad date[], ats timestamp[], atstz timestamptz[]);
INSERT INTO dates (id, d, ts, ts0, tstz) VALUES
  (1, 'infinity', 'infinity', 'infinity', 'infinity'),
  (2, '-infinity', '-infinity', '-infinity', '-infinity'),
  (3, '0001-01-01', '0001-01-01 00:00:00', '0001-01-01 00:00:00', '0001-01-01 00:00:00+00'),
  (4, '9999-12-31', '9999-12-31 23:59:59.999999', '9999-12-31 23:59:59', '9999-12-31 23:59:59.999999+00'),
  (5, '294276-12-31', '294276-12-31 23:59:59.999999', '294276-12-31 23:59:59', '294276-12-31 23:59:59.999999+00'),
  (6, '4713-01-01 BC', '4713-01-01 00:00:00 BC', '4713-01-01 00:00:00 BC', '4713-01-01 00:00:00+00 BC'),
  (7, '2026-12-04', '2026-12-04 12:34:56.789012', '2026-12-04 12:34:56', '2026-12-04 12:34:56.789012+00'),
  (8, NULL, NULL, NULL, NULL);
UPDATE dates SET ad = ARRAY[d, NULL, '2000-02-29'], ats = ARRAY[ts, NULL], atstz = ARRAY[tstz]
  WHERE id < 8;
CREATE TABLE plain (id int PRIMARY KEY, v text);
INSERT INTO plain SELECT g, 'row ' || g FROM generate_series(1, 25) g;
CREATE SCHEMA other;
CREATE TABLE other.after_dates (id int PRIMARY KEY, at date);
INSERT INTO other.after_dates VALUES (1, '2020-01-01'), (2, 'infinity');
";

fn dates_columns(rule: &str) -> Vec<(&'static str, String)> {
    let scalars = date_expectations(rule);
    let mut cols = scalars.clone();
    for (arr, elem) in [("ad", "d"), ("ats", "ts"), ("atstz", "tstz")] {
        let e = &scalars.iter().find(|(n, _)| *n == elem).expect("scalar").1;
        cols.push((arr, array_of(arr, e)));
    }
    cols
}

fn spec(pg: &PgServer, extra: Value) -> Value {
    let mut spec = pg_spec(pg, roles::SUPERUSER, json!({ "rows_per_record": 3 }));
    if let (Some(s), Some(e)) = (spec.as_object_mut(), extra.as_object()) {
        s.extend(e.clone());
    }
    spec
}

/// ±infinity, the calendar edges, 294276-12-31, 4713-01-01 BC, ordinary values and
/// NULLs in date, timestamp, timestamp(0) and timestamptz columns and arrays, synced with
/// `tables: ["*"]` beside other tables: under the default rule (clamp), under `null`, under
/// `error`, and through CDC.
#[test]
fn values_infinity_and_out_of_range_dates_every_rule() {
    let pg = PgServer::start();
    pg.psql(DATES_DDL);
    // The constants of the README's rule, spelled out once besides the SQL.
    let clamp = expected_rows(&pg, "dates", &dates_columns("clamp"));
    assert_eq!(clamp[0]["d"], json!("9999-12-31"));
    assert_eq!(clamp[0]["ts"], json!("9999-12-31T23:59:59.999999Z"));
    assert_eq!(clamp[0]["ts0"], json!("9999-12-31T23:59:59Z"));
    assert_eq!(clamp[1]["tstz"], json!("0001-01-01T00:00:00Z"));
    assert_eq!(clamp[4]["d"], json!("9999-12-31"));
    assert_eq!(clamp[5]["ts"], json!("0001-01-01T00:00:00Z"));
    assert_eq!(clamp[6]["ts"], json!("2026-12-04T12:34:56.789012Z"));
    assert_eq!(clamp[0]["ad"], json!(["9999-12-31", null, "2000-02-29"]));

    let tmp = tempfile::tempdir().expect("tempdir");
    // Default rule: clamp, a warning per table and column with the count.
    let dest = tmp.path().join("clamp");
    let cfg = Config::local(PLUGIN, &dest)
        .spec(spec(&pg, json!({})))
        .tables(&["*"])
        .write_as(tmp.path().join("clamp.yml"));
    let run = sync(&cfg).log_json().run();
    run.assert_success();
    assert_eq!(
        destination::tables(&dest),
        ["dates", "other.after_dates", "plain"],
        "every table arrives"
    );
    assert_eq!(sorted_rows(&dest, "dates"), clamp);
    assert_eq!(destination::rows(&dest, "plain").len(), 25);
    assert_eq!(
        sorted_rows(&dest, "other.after_dates"),
        vec![
            json!({"id": 1, "at": "2020-01-01"}),
            json!({"id": 2, "at": "9999-12-31"})
        ]
    );
    assert_pylist_ok(&dest, 8 + 25 + 2);
    let mut want: Vec<(String, String, u64)> = ["d", "ts", "ts0", "tstz", "ad", "ats", "atstz"]
        .iter()
        .map(|c| ("dates".to_string(), c.to_string(), 2))
        .collect();
    want.sort();
    assert_eq!(
        warnings(&run, "outside 0001-01-01"),
        want,
        "one warning per column (rows 5 and 6), infinity itself is no warning:\n{}",
        run.log
    );

    // null: every value outside the range and ±infinity is NULL.
    let dest = tmp.path().join("null");
    let cfg = Config::local(PLUGIN, &dest)
        .spec(spec(
            &pg,
            json!({"infinity": "null", "out_of_range": "null"}),
        ))
        .tables(&["dates"])
        .write_as(tmp.path().join("null.yml"));
    let run = sync(&cfg).log_json().run();
    run.assert_success();
    let null = expected_rows(&pg, "dates", &dates_columns("null"));
    assert_eq!(null[0]["d"], Value::Null);
    assert_eq!(null[3]["ts"], json!("9999-12-31T23:59:59.999999Z"));
    assert_eq!(sorted_rows(&dest, "dates"), null);
    assert_eq!(warnings(&run, "were sent as NULL").len(), 7);
    assert_pylist_ok(&dest, 8);

    // error: the table fails naming the column and the value; the other tables still arrive.
    let dest = tmp.path().join("error");
    let cfg = Config::local(PLUGIN, &dest)
        .spec(spec(&pg, json!({"infinity": "error", "concurrency": 1})))
        .tables(&["*"])
        .write_as(tmp.path().join("error.yml"));
    let run = sync(&cfg).run();
    run.assert_success();
    let failed = run.log_lines_with("table sync failed");
    assert!(
        failed
            .iter()
            .any(|l| l.contains("dates")
                && l.contains("date infinity cannot be sent (infinity: error)")),
        "the failure names the value and the rule:\n{}",
        run.output()
    );
    assert_eq!(destination::rows(&dest, "plain").len(), 25);

    // CDC: the same rows inserted while streaming arrive under the same rule.
    pg.psql("CREATE TABLE cdc_dates (LIKE dates INCLUDING ALL)");
    let cdc = CdcRun::with(
        &pg,
        &tmp.path().join("cdc"),
        "values-dates",
        &["cdc_dates"],
        |c| c.spec(spec(&pg, json!({"cdc_id": "values-dates"}))),
    );
    let run = cdc.start_streaming();
    pg.psql("INSERT INTO cdc_dates SELECT * FROM dates");
    let got = wait_rows(&cdc.dest, "cdc_dates", clamp.len());
    let done = interrupt(run);
    assert_eq!(got, clamp, "CDC values:\n{}", done.output());
    assert!(
        done.log.contains("outside 0001-01-01"),
        "CDC warns too:\n{}",
        done.log
    );
    assert_pylist_ok(&cdc.dest, 8);
}

/// The destination's applied state of `table` once it has `n` rows (sorted by id).
fn wait_rows(dest: &Path, table: &str, n: usize) -> Vec<Value> {
    let end = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let mut rows = destination::state(dest, table);
        if rows.len() >= n || std::time::Instant::now() > end {
            rows.sort_by_key(|r| r["id"].as_i64());
            return rows;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// (column, SQL type, arrow type as pyarrow prints it) of the decimal table.
const DECIMALS: [(&str, &str, &str); 11] = [
    ("p1", "numeric(1,0)", "decimal128(1, 0)"),
    ("p18", "numeric(18,0)", "decimal128(18, 0)"),
    ("p18s6", "numeric(18,6)", "decimal128(18, 6)"),
    ("p38", "numeric(38,0)", "decimal128(38, 0)"),
    ("p38s20", "numeric(38,20)", "decimal128(38, 20)"),
    ("p39", "numeric(39,0)", "decimal256(39, 0)"),
    ("p39s3", "numeric(39,3)", "decimal256(39, 3)"),
    ("p76", "numeric(76,0)", "decimal256(76, 0)"),
    ("p76s40", "numeric(76,40)", "decimal256(76, 40)"),
    ("free", "numeric", "string"),
    ("big", "numeric(77,2)", "string"),
];

/// Rows: (id, value per column in DECIMALS order, as SQL literals; `m` is each column's
/// largest value and `-m` its smallest).
fn decimal_rows() -> Vec<String> {
    let maxv = |ty: &str| -> String {
        let (p, s) = ty
            .trim_start_matches("numeric(")
            .trim_end_matches(')')
            .split_once(',')
            .map(|(p, s)| (p.parse::<usize>().unwrap(), s.parse::<usize>().unwrap()))
            .unwrap_or((30, 5));
        let int = "9".repeat(p - s);
        let frac = "9".repeat(s);
        if s == 0 {
            int
        } else if int.is_empty() {
            format!("0.{frac}")
        } else {
            format!("{int}.{frac}")
        }
    };
    let row = |f: &dyn Fn(&str, &str) -> String| {
        DECIMALS
            .iter()
            .map(|(_, ty, _)| format!("'{}'::{ty}", f(ty, &maxv(ty))))
            .collect::<Vec<_>>()
            .join(", ")
    };
    vec![
        row(&|_, m| m.to_string()),
        row(&|_, m| format!("-{m}")),
        row(&|_, _| "0".to_string()),
        row(&|_, _| "-1".to_string()),
        // Trailing zeros: the scale's digits are kept.
        row(&|ty, _| {
            if ty.contains(",0)") {
                "8".into()
            } else {
                "1.50".into()
            }
        }),
        row(&|ty, _| {
            if ty.contains(",0)") {
                "-5".into()
            } else {
                "-0.10".into()
            }
        }),
        row(&|_, _| "NaN".to_string()),
    ]
}

/// On every major (`matrix`): `numeric_type: decimal` (precisions 1, 18, 38,
/// 39, 76 with scale 0 and larger, negative values, trailing zeros, NaN → NULL, arrays, NULLs,
/// unconstrained (where ±Infinity lives: a type modifier refuses it) and p > 76 as text) and `interval_type: month_day_nano`
/// (months, days, µs as PostgreSQL stores them, negative and mixed signs), full sync and CDC
/// (binary pgoutput from 14, text on 12 and 13).
#[test]
fn values_matrix_decimal_and_interval() {
    let pg = PgServer::start();
    let major = pg.version_major();
    let mut ddl = String::from("CREATE TABLE nums (id int PRIMARY KEY");
    for (c, ty, _) in DECIMALS {
        ddl.push_str(&format!(", {c} {ty}"));
    }
    ddl.push_str(", arr numeric(12,2)[], arr256 numeric(50,10)[]);\n");
    ddl.push_str(
        "CREATE TABLE ivals (id int PRIMARY KEY, i interval, ai interval[]);
         CREATE TABLE cdc_nums (LIKE nums INCLUDING ALL);
         CREATE TABLE cdc_ivals (LIKE ivals INCLUDING ALL);\n",
    );
    let names: Vec<&str> = DECIMALS.iter().map(|(c, _, _)| *c).collect();
    for (n, vals) in decimal_rows().iter().enumerate() {
        ddl.push_str(&format!(
            "INSERT INTO nums (id, {}) VALUES ({}, {vals});\n",
            names.join(", "),
            n + 1
        ));
    }
    if major >= 14 {
        // numeric ±Infinity exists from PostgreSQL 14, and only without a type modifier.
        ddl.push_str("INSERT INTO nums (id, free) VALUES (8, 'Infinity'), (9, '-Infinity');\n");
    }
    ddl.push_str(
        "INSERT INTO nums (id) VALUES (100);
         UPDATE nums SET arr = ARRAY[1.5, NULL, -0.01, 1234567890.12], \
           arr256 = ARRAY[-1234567890123456789012345678901234567890.0123456789, 0] WHERE id = 1;
         UPDATE nums SET arr = '{}' WHERE id = 2;
         UPDATE nums SET arr = ARRAY['NaN'::numeric] WHERE id = 3;
         INSERT INTO ivals VALUES
           (1, '1 year 2 months 3 days 04:05:06.789012', ARRAY['1 day'::interval, NULL]),
           (2, '-1 year -2 months -3 days -04:05:06.5', '{}'),
           (3, '1 month -40 days 25:00:00', ARRAY['-1 month 1 day -00:00:00.000001'::interval]),
           (4, '-7 months 40 days -00:00:01', NULL),
           (5, '0', ARRAY['2562047 hours'::interval]),
           (6, NULL, NULL),
           (7, '1 month 2 days 2562048 hours', NULL);\n",
    );
    if major >= 17 {
        ddl.push_str("INSERT INTO ivals VALUES (8, 'infinity', ARRAY['-infinity'::interval]);\n");
    }
    // PostgreSQL 15+: a negative scale (rounded to 10^2) and a scale above the precision.
    let mut tables = vec!["nums", "ivals"];
    if major >= 15 {
        ddl.push_str(
            "CREATE TABLE nums15 (id int PRIMARY KEY, neg numeric(5,-2), tiny numeric(2,4));
             INSERT INTO nums15 VALUES (1, 9999900, 0.0099), (2, -1234567, -0.0001), (3, 0, 0),
               (4, NULL, NULL);\n",
        );
        tables.push("nums15");
    }
    pg.psql(&ddl);

    // Expected: PostgreSQL's numeric text (numeric_out) for decimals, NULL for NaN/±Infinity;
    // text for the text columns.
    let mut num_cols: Vec<(&str, String)> = DECIMALS
        .iter()
        .map(|(c, _, arrow)| {
            let e = if *arrow == "string" {
                "to_json($::text)"
            } else {
                "to_json(CASE WHEN $ = 'NaN' THEN NULL ELSE $::text END)"
            };
            (*c, e.to_string())
        })
        .collect();
    let dec_elem = "CASE WHEN $ = 'NaN' THEN NULL ELSE $::text END";
    num_cols.push(("arr", array_of("arr", &format!("to_json({dec_elem})"))));
    num_cols.push((
        "arr256",
        array_of("arr256", &format!("to_json({dec_elem})")),
    ));
    // months = years·12 + months, days, µs = hours·3600e6 + minutes·60e6 + microseconds (each
    // field as PostgreSQL's extract reports it) → [months, days, nanoseconds].
    let us = "(extract(hour from $)::numeric * 3600000000 + extract(minute from $)::numeric \
              * 60000000 + extract(microseconds from $)::numeric)";
    let months = "(extract(year from $)::numeric * 12 + extract(month from $)::numeric)::int";
    let ival = format!(
        "CASE WHEN $ IS NULL THEN NULL \
         WHEN $::text = 'infinity' THEN json_build_array(2147483647, 2147483647, 9223372036854775807) \
         WHEN $::text = '-infinity' THEN json_build_array(-2147483648, -2147483648, -9223372036854775808) \
         WHEN {us} > 9223372036854775 THEN json_build_array({months}, extract(day from $)::int, 9223372036854775807) \
         WHEN {us} < -9223372036854775 THEN json_build_array({months}, extract(day from $)::int, -9223372036854775808) \
         ELSE json_build_array({months}, extract(day from $)::int, ({us} * 1000)::bigint) END"
    );
    let ival = ival.as_str();
    let ival_cols = vec![("i", ival.to_string()), ("ai", array_of("ai", ival))];

    let nums = expected_rows(&pg, "nums", &num_cols);
    let ivals = expected_rows(&pg, "ivals", &ival_cols);
    // Spelled out: trailing zeros kept, NaN is NULL, mixed-sign intervals field by field.
    assert_eq!(nums[4]["p18s6"], json!("1.500000"));
    assert_eq!(nums[5]["p76s40"], json!(format!("-0.10{}", "0".repeat(38))));
    assert_eq!(nums[6]["p38"], Value::Null);
    assert_eq!(nums[6]["free"], json!("NaN"));
    assert_eq!(ivals[2]["i"], json!([1, -40, 90_000_000_000_000i64]));
    assert_eq!(
        ivals[6]["i"],
        json!([1, 2, i64::MAX]),
        "beyond i64 ns: clamped"
    );

    let tmp = tempfile::tempdir().expect("tempdir");
    let dest = tmp.path().join("dest");
    let values = json!({"numeric_type": "decimal", "interval_type": "month_day_nano"});
    let cfg = Config::local(PLUGIN, &dest)
        .spec(spec(&pg, values.clone()))
        .tables(&tables)
        .write(tmp.path());
    let run = sync(&cfg).log_json().run();
    run.assert_success();

    let types = destination::field_types(&dest, "nums");
    for (c, _, arrow) in DECIMALS {
        let t = types.iter().find(|(n, _)| n == c).map(|(_, t)| t.as_str());
        assert_eq!(t, Some(arrow), "{c}");
    }
    let ty = |name: &str, table: &str| {
        destination::field_types(&dest, table)
            .into_iter()
            .find(|(n, _)| n == name)
            .map(|(_, t)| t)
    };
    assert_eq!(
        ty("arr", "nums").as_deref(),
        Some("list<item: decimal128(12, 2)>")
    );
    assert_eq!(ty("i", "ivals").as_deref(), Some("month_day_nano_interval"));
    assert_eq!(
        ty("ai", "ivals").as_deref(),
        Some("list<item: month_day_nano_interval>")
    );
    assert_eq!(
        sorted_rows(&dest, "nums"),
        nums,
        "PostgreSQL {major}: decimals"
    );
    assert_eq!(
        sorted_rows(&dest, "ivals"),
        ivals,
        "PostgreSQL {major}: intervals"
    );
    if major >= 15 {
        assert_eq!(ty("neg", "nums15").as_deref(), Some("decimal128(7, 0)"));
        assert_eq!(ty("tiny", "nums15").as_deref(), Some("decimal128(4, 4)"));
        let text = "to_json($::text)".to_string();
        let want = expected_rows(&pg, "nums15", &[("neg", text.clone()), ("tiny", text)]);
        assert_eq!(want[1]["neg"], json!("-1234600"), "rounded by PostgreSQL");
        assert_eq!(sorted_rows(&dest, "nums15"), want);
    }
    assert_pylist_ok(&dest, 10);
    let nan_warnings = warnings(&run, "NaN, Infinity or -Infinity");
    assert!(
        nan_warnings.contains(&("nums".into(), "p38".into(), 1))
            && nan_warnings.contains(&("nums".into(), "arr".into(), 1)),
        "NaN counted per column: {nan_warnings:?}"
    );
    assert_eq!(
        warnings(&run, "interval values whose time part"),
        vec![("ivals".to_string(), "i".to_string(), 1)]
    );

    // CDC: the same rows inserted while streaming.
    let mut spec_cdc = spec(&pg, values);
    spec_cdc["cdc_id"] = json!("values-num");
    let cdc = CdcRun::with(
        &pg,
        &tmp.path().join("cdc"),
        "values-num",
        &["cdc_nums", "cdc_ivals"],
        |c| c.spec(spec_cdc),
    );
    let run = cdc.start_streaming();
    pg.psql("INSERT INTO cdc_nums SELECT * FROM nums; INSERT INTO cdc_ivals SELECT * FROM ivals;");
    let got_nums = wait_rows(&cdc.dest, "cdc_nums", nums.len());
    let got_ivals = wait_rows(&cdc.dest, "cdc_ivals", ivals.len());
    let done = interrupt(run);
    assert_eq!(
        got_nums, nums,
        "PostgreSQL {major}: CDC decimals\n{}",
        done.log
    );
    assert_eq!(
        got_ivals, ivals,
        "PostgreSQL {major}: CDC intervals\n{}",
        done.log
    );
}

/// `cloudquery tables` documents each column with the Arrow type the options give it.
#[test]
fn values_tables_lists_the_types_of_the_options() {
    let pg = PgServer::start();
    pg.psql(
        "CREATE TABLE money (id int PRIMARY KEY, amount numeric(12,2), big numeric(50,10), \
         free numeric, amounts numeric(12,2)[], span interval, spans interval[], d date)",
    );
    let tmp = tempfile::tempdir().expect("tempdir");
    let list = |name: &str, values: Value| -> Vec<(String, String)> {
        let cfg = Config::local(PLUGIN, tmp.path().join("dest"))
            .spec(spec(&pg, values))
            .write_as(tmp.path().join(format!("{name}.yml")));
        let docs = tmp.path().join(name);
        let run = support::cli::tables(&cfg, &docs).run();
        run.assert_success();
        let text = std::fs::read_to_string(docs.join("postgresql/__tables.json"))
            .unwrap_or_else(|e| panic!("__tables.json: {e}\n{}", run.output()));
        let tables: Value = serde_json::from_str(&text).expect("tables JSON");
        let money = tables
            .as_array()
            .and_then(|t| t.iter().find(|t| t["name"] == "money"))
            .unwrap_or_else(|| panic!("money not listed: {text}"));
        money["columns"]
            .as_array()
            .expect("columns")
            .iter()
            .map(|c| {
                (
                    c["name"].as_str().unwrap_or("").to_string(),
                    c["type"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect()
    };
    let pairs = |v: &[(&str, &str)]| -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    };
    assert_eq!(
        list("default", json!({})),
        pairs(&[
            ("id", "int32"),
            ("amount", "utf8"),
            ("big", "utf8"),
            ("free", "utf8"),
            ("amounts", "list<item: utf8, nullable>"),
            ("span", "utf8"),
            ("spans", "list<item: utf8, nullable>"),
            ("d", "date32"),
        ])
    );
    assert_eq!(
        list(
            "typed",
            json!({"numeric_type": "decimal", "interval_type": "month_day_nano"})
        ),
        pairs(&[
            ("id", "int32"),
            ("amount", "decimal(12, 2)"),
            ("big", "decimal256(50, 10)"),
            ("free", "utf8"),
            ("amounts", "list<item: decimal(12, 2), nullable>"),
            ("span", "month_day_nano_interval"),
            ("spans", "list<item: month_day_nano_interval, nullable>"),
            ("d", "date32"),
        ])
    );
}
