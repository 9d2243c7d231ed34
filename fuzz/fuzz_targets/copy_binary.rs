//! Arbitrary bytes → the COPY BINARY decoder, frame by frame, over every column type.
//!
//! Input layout: byte 0 picks the columns (a value below the number of types: one column of that
//! type, which focuses the fuzzer on one reader; otherwise every type at once); byte 1 picks the
//! value rules (`infinity` and `out_of_range`: clamp, null or error each); the rest is a
//! sequence of CopyData payloads, each a big-endian u16 length and that many bytes (the last one
//! takes whatever is left). Checked: no panic, and after a successful decode the batch builds
//! (or fails only the batch-level UTF-8 check of text columns).
#![no_main]

use std::sync::Arc;

use arrow_schema::Schema;
use cq_source_postgresql::decode::rules::{InfinityRule, OutOfRangeRule};
use cq_source_postgresql::decode::types::cq_field;
use cq_source_postgresql::decode::{CopyBinaryDecoder, DecodeError, PgType, ValueOptions};
use libfuzzer_sys::fuzz_target;

fn all_types() -> Vec<PgType> {
    let scalars = vec![
        PgType::Bool,
        PgType::Int2,
        PgType::Int4,
        PgType::Int8,
        PgType::Float4,
        PgType::Float8,
        PgType::Oid,
        PgType::Xid,
        PgType::Xid8,
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
        PgType::Time { precision: Some(0) },
        PgType::Time { precision: Some(3) },
        PgType::Time { precision: None },
        PgType::Timestamp { precision: Some(0) },
        PgType::Timestamp { precision: Some(2) },
        PgType::TimestampTz { precision: None },
        PgType::Numeric,
        PgType::ServerText,
        PgType::Decimal {
            precision: 1,
            scale: 0,
        },
        PgType::Decimal {
            precision: 18,
            scale: 4,
        },
        PgType::Decimal {
            precision: 38,
            scale: 38,
        },
        PgType::Decimal {
            precision: 39,
            scale: 0,
        },
        PgType::Decimal {
            precision: 76,
            scale: 40,
        },
        PgType::Interval,
    ];
    let arrays: Vec<PgType> = scalars
        .iter()
        .map(|t| PgType::Array(Box::new(t.clone())))
        .collect();
    scalars.into_iter().chain(arrays).collect()
}

fuzz_target!(|data: &[u8]| {
    let [pick, rules, ref tail @ ..] = *data else {
        return;
    };
    let mut rest: &[u8] = tail;
    let rule = |n: u8| match n % 3 {
        0 => (InfinityRule::Clamp, OutOfRangeRule::Clamp),
        1 => (InfinityRule::Null, OutOfRangeRule::Null),
        _ => (InfinityRule::Error, OutOfRangeRule::Error),
    };
    let options = ValueOptions {
        infinity: rule(rules).0,
        out_of_range: rule(rules / 3).1,
        ..ValueOptions::default()
    };
    let every = all_types();
    let types = match every.get(usize::from(pick)) {
        Some(t) => vec![t.clone()],
        None => every,
    };
    let mut decoder = CopyBinaryDecoder::with_options(&types, &options);
    let mut ok = true;
    while !rest.is_empty() {
        let frame = match rest {
            [hi, lo, tail @ ..] => {
                let len = usize::from(u16::from_be_bytes([*hi, *lo])).min(tail.len());
                let (frame, tail) = tail.split_at(len);
                rest = tail;
                frame
            }
            _ => std::mem::take(&mut rest),
        };
        match decoder.decode_frame(frame) {
            Ok(true) => {}
            Ok(false) => break,
            Err(_) => {
                ok = false;
                break;
            }
        }
    }
    let fields: Vec<_> = types
        .iter()
        .enumerate()
        .map(|(i, t)| cq_field(&format!("c{i}"), t, true, false, false))
        .collect();
    let rows = decoder.rows();
    let batch = decoder.finish(Arc::new(Schema::new(fields)));
    if ok {
        // Every successfully decoded row must make a valid batch with a nullable schema, unless
        // a text value is not UTF-8: that is checked per batch, in `finish`.
        match batch {
            Ok(b) => assert_eq!(b.num_rows(), rows),
            Err(DecodeError::Column { source, .. })
                if matches!(*source, DecodeError::InvalidUtf8 { .. }) => {}
            Err(e) => panic!("decoded rows but the batch failed: {e}"),
        }
    }
});
