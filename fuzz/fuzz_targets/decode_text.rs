//! Arbitrary text → `decode::text::text_to_binary` for every native type and arrays of them
//! (the first byte picks the type). Checks: no panic; on error the output buffer is unchanged;
//! on success with UTF-8 input, the COPY column reader of that type accepts the bytes (the
//! converter only ever produces valid send formats; a decimal reader may still refuse a valid
//! numeric that its precision cannot hold).
#![no_main]

use cq_source_postgresql::decode::text::text_to_binary;
use cq_source_postgresql::decode::{ColumnReader, DecodeError, PgType};
use libfuzzer_sys::fuzz_target;

fn scalar(n: u8) -> PgType {
    match n % 25 {
        0 => PgType::Bool,
        1 => PgType::Int2,
        2 => PgType::Int4,
        3 => PgType::Int8,
        4 => PgType::Float4,
        5 => PgType::Float8,
        6 => PgType::Oid,
        7 => PgType::Xid,
        8 => PgType::Xid8,
        9 => PgType::Text,
        10 => PgType::Char,
        11 => PgType::Bytea,
        12 => PgType::Uuid,
        13 => PgType::Json,
        14 => PgType::Jsonb,
        15 => PgType::Inet,
        16 => PgType::MacAddr,
        17 => PgType::MacAddr8,
        18 => PgType::Date,
        19 => PgType::Time { precision: None },
        20 => PgType::Timestamp { precision: Some(3) },
        21 => PgType::TimestampTz { precision: None },
        22 => PgType::Interval,
        23 => PgType::Decimal {
            precision: 20,
            scale: 6,
        },
        _ => PgType::Numeric,
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, text)) = data.split_first() else {
        return;
    };
    let ty = if sel & 0x80 != 0 {
        PgType::Array(Box::new(scalar(sel & 0x7f)))
    } else {
        scalar(sel)
    };
    let mut out = vec![7u8];
    match text_to_binary(&ty, text, &mut out) {
        Ok(()) => {
            if std::str::from_utf8(text).is_ok() {
                let mut reader = ColumnReader::new(&ty);
                match reader.append_value(&out[1..]) {
                    Ok(()) => {}
                    Err(DecodeError::Invalid {
                        what: "numeric for a decimal column",
                        ..
                    }) => {}
                    Err(e) => panic!("{ty:?} {text:?} converted to bytes the reader rejects: {e}"),
                }
            }
        }
        Err(_) => assert_eq!(out, [7u8], "output restored on error"),
    }
});
