//! The type tree the decoders are built from.
//!
//! The catalog classifies every column into one of these (domains resolved to their base type);
//! the decoders pick one reader per column from it once, and the Arrow mapping of
//! `type-mapping.md` follows from it. Anything without a native decoder is `ServerText`: the
//! sync casts it to `text` on the server, so the client only ever decodes native binary formats.

/// A column's PostgreSQL type as far as decoding is concerned.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum PgType {
    Bool,
    Int2,
    Int4,
    Int8,
    Float4,
    Float8,
    /// `oid`, `regproc`-less plain oid → UInt32.
    Oid,
    /// `xid`, `cid` → UInt32.
    Xid,
    /// `xid8` → UInt64.
    Xid8,
    /// text, varchar, bpchar, name → Utf8 (binary format is the UTF-8 bytes).
    Text,
    /// `"char"`: one byte on the wire → Utf8.
    Char,
    Bytea,
    Uuid,
    Json,
    Jsonb,
    /// inet and cidr → CloudQuery `inet` extension, text `address/prefix`.
    Inet,
    MacAddr,
    MacAddr8,
    Date,
    /// time(p); `precision` None when unconstrained.
    Time {
        precision: Option<u8>,
    },
    Timestamp {
        precision: Option<u8>,
    },
    TimestampTz {
        precision: Option<u8>,
    },
    /// numeric → Utf8 with PostgreSQL's own text form (scale kept, NaN, ±Infinity).
    Numeric,
    /// Cast to `text` by the server (`col::text`) → Utf8.
    ServerText,
    /// Array of any of the above (any dimensionality, flattened) → List<element>.
    Array(Box<PgType>),
}

impl PgType {
    /// True when the column must be selected as `col::text` (or `col::text[]` for arrays).
    pub fn needs_server_text_cast(&self) -> bool {
        match self {
            PgType::ServerText => true,
            PgType::Array(elem) => elem.needs_server_text_cast(),
            _ => false,
        }
    }
}
