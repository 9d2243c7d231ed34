//! Micro-benchmarks of the hot paths (ignored by default; meaningful only optimised):
//! `cargo test --release --lib decode::tests::bench -- --ignored --nocapture`.

use std::sync::Arc;
use std::time::Instant;

use arrow_schema::Schema;

use crate::decode::types::cq_field;
use crate::decode::{CopyBinaryDecoder, PgType};

const ROWS: usize = 1_000_000;
const BATCH: usize = 10_000;

/// One COPY tuple payload from (length-prefixed) field values.
fn tuple(fields: &[&[u8]]) -> Vec<u8> {
    let mut t = (fields.len() as i16).to_be_bytes().to_vec();
    for f in fields {
        t.extend((f.len() as i32).to_be_bytes());
        t.extend(*f);
    }
    t
}

/// numeric_send of `int_part.frac` with two decimals (dscale 2), e.g. 12345.67, normalised as
/// PostgreSQL stores it (no leading or trailing zero base-10000 digits).
fn numeric_2dp(int_part: u16, frac: u16) -> Vec<u8> {
    let mut digits: Vec<u16> = Vec::new();
    let mut weight: i16 = -1;
    if int_part >= 10000 {
        digits.extend([int_part / 10000, int_part % 10000]);
        weight = 1;
    } else if int_part > 0 {
        digits.push(int_part);
        weight = 0;
    }
    if frac > 0 {
        digits.push(frac * 100);
    }
    while digits.last() == Some(&0) {
        digits.pop();
    }
    if digits.is_empty() {
        weight = 0;
    }
    let mut v = Vec::new();
    v.extend((digits.len() as i16).to_be_bytes());
    v.extend(weight.to_be_bytes());
    v.extend(0u16.to_be_bytes());
    v.extend(2u16.to_be_bytes());
    for d in digits {
        v.extend((d as i16).to_be_bytes());
    }
    v
}

#[test]
fn bench_numeric_encoding_is_right() {
    let mut s = String::new();
    for (i, f, want) in [
        (12345, 67, "12345.67"),
        (17, 0, "17.00"),
        (0, 4, "0.04"),
        (0, 0, "0.00"),
    ] {
        s.clear();
        crate::decode::numeric::write_numeric(&numeric_2dp(i, f), &mut s).unwrap();
        assert_eq!(s, want);
    }
}

fn run(name: &str, types: &[PgType], frames: &[Vec<u8>]) {
    let schema = Arc::new(Schema::new(
        types
            .iter()
            .enumerate()
            .map(|(i, t)| cq_field(&format!("c{i}"), t, true, false, false))
            .collect::<Vec<_>>(),
    ));
    let header = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";
    let bytes: usize = frames.iter().map(Vec::len).sum();
    let mut best = f64::MAX;
    for _ in 0..5 {
        let mut d = CopyBinaryDecoder::new(types);
        let start = Instant::now();
        d.decode_frame(header).unwrap();
        let mut rows = 0;
        for f in frames {
            d.decode_frame(f).unwrap();
            if d.rows() == BATCH {
                rows += d.finish(schema.clone()).unwrap().num_rows();
            }
        }
        rows += d.finish(schema.clone()).unwrap().num_rows();
        assert_eq!(rows, frames.len());
        best = best.min(start.elapsed().as_secs_f64());
    }
    println!(
        "{name}: {:.1} ns/row, {:.0} MB/s ({} rows, {} bytes, best of 5)",
        best * 1e9 / frames.len() as f64,
        bytes as f64 / best / 1e6,
        frames.len(),
        bytes
    );
}

#[test]
#[ignore]
fn bench_fixed_width() {
    let types = [
        PgType::Int8,
        PgType::Int4,
        PgType::Float8,
        PgType::TimestampTz { precision: None },
        PgType::Bool,
    ];
    let frames: Vec<Vec<u8>> = (0..ROWS as i64)
        .map(|i| {
            tuple(&[
                &i.to_be_bytes(),
                &(i as i32).to_be_bytes(),
                &(i as f64 * 0.5).to_be_bytes(),
                &(i * 1_000_000).to_be_bytes(),
                &[(i & 1) as u8],
            ])
        })
        .collect();
    run("5 fixed-width columns", &types, &frames);
}

#[test]
#[ignore]
fn bench_lineitem_like() {
    let types = [
        PgType::Int8,
        PgType::Int4,
        PgType::Numeric,
        PgType::Numeric,
        PgType::Numeric,
        PgType::Numeric,
        PgType::Char,
        PgType::Date,
        PgType::Text,
    ];
    let frames: Vec<Vec<u8>> = (0..ROWS)
        .map(|i| {
            let n = numeric_2dp((i % 60_000) as u16, (i % 100) as u16);
            tuple(&[
                &(i as i64).to_be_bytes(),
                &(i as i32).to_be_bytes(),
                &n,
                &numeric_2dp(17, 0),
                &numeric_2dp(0, 4),
                &numeric_2dp(0, 8),
                b"N",
                &((i % 3000) as i32).to_be_bytes(),
                b"carefully final deposits",
            ])
        })
        .collect();
    run("lineitem-like (4 numeric, text, date)", &types, &frames);
}

#[test]
#[ignore]
fn bench_numeric_column() {
    use crate::decode::ColumnReader;
    let values: Vec<Vec<u8>> = (0..ROWS)
        .map(|i| numeric_2dp((i % 60_000) as u16, (i % 100) as u16))
        .collect();
    let mut best = f64::MAX;
    for _ in 0..10 {
        let mut r = ColumnReader::new(&PgType::Numeric);
        let start = Instant::now();
        for (i, v) in values.iter().enumerate() {
            r.append_value(v).unwrap();
            if i % BATCH == BATCH - 1 {
                r.finish().unwrap();
            }
        }
        r.finish().unwrap();
        best = best.min(start.elapsed().as_secs_f64());
    }
    println!(
        "numeric column: {:.1} ns/value (best of 10)",
        best * 1e9 / ROWS as f64
    );
}

/// The same numeric(15,2) values as text (`numeric_type: string`) and as Decimal128(15, 2)
/// (`numeric_type: decimal`).
#[test]
#[ignore]
fn bench_numeric_text_vs_decimal() {
    use crate::decode::ColumnReader;
    let values: Vec<Vec<u8>> = (0..ROWS)
        .map(|i| numeric_2dp((i % 60_000) as u16, (i % 100) as u16))
        .collect();
    let decimal = PgType::Decimal {
        precision: 15,
        scale: 2,
    };
    for (name, ty) in [("text", PgType::Numeric), ("decimal128(15, 2)", decimal)] {
        let mut best = f64::MAX;
        for _ in 0..10 {
            let mut r = ColumnReader::new(&ty);
            let start = Instant::now();
            for (i, v) in values.iter().enumerate() {
                r.append_value(v).unwrap();
                if i % BATCH == BATCH - 1 {
                    r.finish().unwrap();
                }
            }
            r.finish().unwrap();
            best = best.min(start.elapsed().as_secs_f64());
        }
        println!(
            "numeric(15,2) as {name}: {:.1} ns/value (best of 10)",
            best * 1e9 / ROWS as f64
        );
    }
}
