//! The type tree the decoders are built from.
//!
//! The catalog classifies every column into one of these (domains resolved to their base type);
//! the decoders pick one reader per column from it once, and the Arrow mapping (the README's
//! "Types" table) follows from it. Anything without a native decoder is `ServerText`: the
//! sync casts it to `text` on the server, so the client only ever decodes native binary formats.

use std::collections::HashMap;
use std::sync::Arc;

use arrow_schema::{DataType, Field, FieldRef, IntervalUnit, TimeUnit};

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
    /// `numeric(p,s)` under `numeric_type: decimal` → Decimal128 (precision ≤ 38) or Decimal256
    /// (≤ 76), with the Arrow precision and scale (see `catalog::types` for the mapping).
    Decimal {
        precision: u8,
        scale: i8,
    },
    /// interval under `interval_type: month_day_nano` → Interval(MonthDayNano).
    Interval,
    /// Cast to `text` by the server (`col::text`) → Utf8.
    ServerText,
    /// Array of any of the above (any dimensionality, flattened) → `List<element>`.
    Array(Box<PgType>),
}

impl PgType {
    /// True when the column must be selected as `col::text` (or `col::text[]` for arrays).
    pub(crate) fn needs_server_text_cast(&self) -> bool {
        match self {
            PgType::ServerText => true,
            PgType::Array(elem) => elem.needs_server_text_cast(),
            _ => false,
        }
    }
}

pub(crate) use super::metadata::{
    CQ_INCREMENTAL, CQ_PRIMARY_KEY, CQ_PRIMARY_KEY_COMPONENT, CQ_TYPE_SCHEMA, CQ_UNIQUE,
    EXTENSION_METADATA_KEY, EXTENSION_NAME_KEY,
};

/// The CloudQuery extension type a column travels as, if any.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CqExtension {
    Uuid,
    Json,
    Inet,
    Mac,
}

impl CqExtension {
    /// The registered extension name (`ARROW:extension:name`).
    pub fn name(self) -> &'static str {
        match self {
            CqExtension::Uuid => "uuid",
            CqExtension::Json => "json",
            CqExtension::Inet => "inet",
            CqExtension::Mac => "mac",
        }
    }

    /// The exact `ARROW:extension:metadata` string arrow-go's `Deserialize` accepts.
    pub fn serialized(self) -> &'static str {
        match self {
            CqExtension::Uuid => "uuid-serialized",
            CqExtension::Json => "json-serialized",
            CqExtension::Inet => "inet-serialized",
            CqExtension::Mac => "mac-serialized",
        }
    }
}

impl PgType {
    /// The CloudQuery extension this type's values travel as (arrays: none on the list itself,
    /// the element field carries it).
    pub(crate) fn cq_extension(&self) -> Option<CqExtension> {
        match self {
            PgType::Uuid => Some(CqExtension::Uuid),
            PgType::Json | PgType::Jsonb => Some(CqExtension::Json),
            PgType::Inet => Some(CqExtension::Inet),
            PgType::MacAddr | PgType::MacAddr8 => Some(CqExtension::Mac),
            _ => None,
        }
    }
}

/// Arrow time unit for a fractional-seconds precision `p` of time/timestamp:
/// 0 → seconds, 1–3 → milliseconds, otherwise (4–6 or unconstrained) → microseconds.
pub(crate) fn time_unit(precision: Option<u8>) -> TimeUnit {
    match precision {
        Some(0) => TimeUnit::Second,
        Some(1..=3) => TimeUnit::Millisecond,
        _ => TimeUnit::Microsecond,
    }
}

/// The largest precision of Decimal128; Decimal256 goes to 76.
pub(crate) const DECIMAL128_MAX_PRECISION: u8 = 38;
pub(crate) const DECIMAL256_MAX_PRECISION: u8 = 76;

/// The time zone every timestamp column carries (`timestamp` without time zone is read as UTC).
pub const UTC: &str = "UTC";

/// The Arrow storage type of a column of this type.
pub fn arrow_type(ty: &PgType) -> DataType {
    match ty {
        PgType::Bool => DataType::Boolean,
        PgType::Int2 => DataType::Int16,
        PgType::Int4 => DataType::Int32,
        PgType::Int8 => DataType::Int64,
        PgType::Float4 => DataType::Float32,
        PgType::Float8 => DataType::Float64,
        PgType::Oid | PgType::Xid => DataType::UInt32,
        PgType::Xid8 => DataType::UInt64,
        PgType::Text | PgType::Char | PgType::Numeric | PgType::ServerText => DataType::Utf8,
        PgType::Bytea | PgType::Json | PgType::Jsonb | PgType::Inet => DataType::Binary,
        PgType::MacAddr | PgType::MacAddr8 => DataType::Binary,
        PgType::Uuid => DataType::FixedSizeBinary(16),
        PgType::Date => DataType::Date32,
        PgType::Decimal { precision, scale } if *precision <= DECIMAL128_MAX_PRECISION => {
            DataType::Decimal128(*precision, *scale)
        }
        PgType::Decimal { precision, scale } => DataType::Decimal256(*precision, *scale),
        PgType::Interval => DataType::Interval(IntervalUnit::MonthDayNano),
        PgType::Time { precision } => match time_unit(*precision) {
            TimeUnit::Second => DataType::Time32(TimeUnit::Second),
            TimeUnit::Millisecond => DataType::Time32(TimeUnit::Millisecond),
            _ => DataType::Time64(TimeUnit::Microsecond),
        },
        PgType::Timestamp { precision } | PgType::TimestampTz { precision } => {
            DataType::Timestamp(time_unit(*precision), Some(UTC.into()))
        }
        PgType::Array(elem) => DataType::List(list_item_field(elem)),
    }
}

/// The element field of a list column: named `item`, nullable (PostgreSQL arrays may hold NULLs),
/// with the element's extension metadata so e.g. `uuid[]` is a list of CloudQuery uuids.
pub(crate) fn list_item_field(elem: &PgType) -> FieldRef {
    Arc::new(arrow_field("item", elem, true))
}

/// The Arrow field of a column: storage type plus the CloudQuery extension metadata, if any.
pub fn arrow_field(name: &str, ty: &PgType, nullable: bool) -> Field {
    let field = Field::new(name, arrow_type(ty), nullable);
    match ty.cq_extension() {
        Some(ext) => field.with_metadata(extension_metadata(ext)),
        None => field,
    }
}

fn extension_metadata(ext: CqExtension) -> HashMap<String, String> {
    HashMap::from([
        (EXTENSION_NAME_KEY.to_string(), ext.name().to_string()),
        (
            EXTENSION_METADATA_KEY.to_string(),
            ext.serialized().to_string(),
        ),
    ])
}

/// The Arrow field of a column as CloudQuery expects it: [`arrow_field`] plus the five
/// `cq:extension:*` keys the Go SDK always writes (`primary_key`, `unique`, `incremental`,
/// `primary_key_component` as `"true"`/`"false"`, `type_schema` empty).
pub fn cq_field(name: &str, ty: &PgType, nullable: bool, primary_key: bool, unique: bool) -> Field {
    let field = arrow_field(name, ty, nullable);
    let mut metadata = field.metadata().clone();
    let flag = |b: bool| if b { "true" } else { "false" }.to_string();
    metadata.insert(CQ_PRIMARY_KEY.to_string(), flag(primary_key));
    metadata.insert(CQ_UNIQUE.to_string(), flag(unique));
    metadata.insert(CQ_INCREMENTAL.to_string(), flag(false));
    metadata.insert(CQ_PRIMARY_KEY_COMPONENT.to_string(), flag(false));
    metadata.insert(CQ_TYPE_SCHEMA.to_string(), String::new());
    field.with_metadata(metadata)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ext(field: &Field) -> (Option<&str>, Option<&str>) {
        (
            field.metadata().get(EXTENSION_NAME_KEY).map(String::as_str),
            field
                .metadata()
                .get(EXTENSION_METADATA_KEY)
                .map(String::as_str),
        )
    }

    #[test]
    fn scalar_types_follow_the_contract() {
        let cases = [
            (PgType::Bool, DataType::Boolean),
            (PgType::Int2, DataType::Int16),
            (PgType::Int4, DataType::Int32),
            (PgType::Int8, DataType::Int64),
            (PgType::Float4, DataType::Float32),
            (PgType::Float8, DataType::Float64),
            (PgType::Oid, DataType::UInt32),
            (PgType::Xid, DataType::UInt32),
            (PgType::Xid8, DataType::UInt64),
            (PgType::Text, DataType::Utf8),
            (PgType::Char, DataType::Utf8),
            (PgType::Numeric, DataType::Utf8),
            (PgType::ServerText, DataType::Utf8),
            (PgType::Bytea, DataType::Binary),
            (PgType::Json, DataType::Binary),
            (PgType::Jsonb, DataType::Binary),
            (PgType::Inet, DataType::Binary),
            (PgType::MacAddr, DataType::Binary),
            (PgType::MacAddr8, DataType::Binary),
            (PgType::Uuid, DataType::FixedSizeBinary(16)),
            (PgType::Date, DataType::Date32),
            (
                PgType::Decimal {
                    precision: 38,
                    scale: 2,
                },
                DataType::Decimal128(38, 2),
            ),
            (
                PgType::Decimal {
                    precision: 39,
                    scale: 0,
                },
                DataType::Decimal256(39, 0),
            ),
            (
                PgType::Interval,
                DataType::Interval(IntervalUnit::MonthDayNano),
            ),
        ];
        for (ty, want) in cases {
            assert_eq!(arrow_type(&ty), want, "{ty:?}");
        }
    }

    #[test]
    fn time_and_timestamp_units_follow_precision() {
        let time = |p| arrow_type(&PgType::Time { precision: p });
        assert_eq!(time(Some(0)), DataType::Time32(TimeUnit::Second));
        assert_eq!(time(Some(1)), DataType::Time32(TimeUnit::Millisecond));
        assert_eq!(time(Some(3)), DataType::Time32(TimeUnit::Millisecond));
        assert_eq!(time(Some(4)), DataType::Time64(TimeUnit::Microsecond));
        assert_eq!(time(Some(6)), DataType::Time64(TimeUnit::Microsecond));
        assert_eq!(time(None), DataType::Time64(TimeUnit::Microsecond));
        for ts in [
            |p| PgType::Timestamp { precision: p },
            |p| PgType::TimestampTz { precision: p },
        ] {
            let unit = |p| arrow_type(&ts(p));
            let tz = Some(Arc::from("UTC"));
            assert_eq!(
                unit(Some(0)),
                DataType::Timestamp(TimeUnit::Second, tz.clone())
            );
            assert_eq!(
                unit(Some(2)),
                DataType::Timestamp(TimeUnit::Millisecond, tz.clone())
            );
            assert_eq!(
                unit(Some(5)),
                DataType::Timestamp(TimeUnit::Microsecond, tz.clone())
            );
            assert_eq!(unit(None), DataType::Timestamp(TimeUnit::Microsecond, tz));
        }
    }

    #[test]
    fn extension_metadata_is_exact() {
        let cases = [
            (PgType::Uuid, "uuid", "uuid-serialized"),
            (PgType::Json, "json", "json-serialized"),
            (PgType::Jsonb, "json", "json-serialized"),
            (PgType::Inet, "inet", "inet-serialized"),
            (PgType::MacAddr, "mac", "mac-serialized"),
            (PgType::MacAddr8, "mac", "mac-serialized"),
        ];
        for (ty, name, meta) in cases {
            let f = arrow_field("c", &ty, true);
            assert_eq!(ext(&f), (Some(name), Some(meta)), "{ty:?}");
        }
        assert!(arrow_field("c", &PgType::Text, true).metadata().is_empty());
    }

    #[test]
    fn arrays_are_lists_of_nullable_items_with_element_metadata() {
        let f = arrow_field("ids", &PgType::Array(Box::new(PgType::Uuid)), false);
        assert!(!f.is_nullable());
        assert!(
            f.metadata().is_empty(),
            "the list itself carries no extension"
        );
        let DataType::List(item) = f.data_type() else {
            panic!("not a list: {:?}", f.data_type());
        };
        assert_eq!(item.name(), "item");
        assert!(item.is_nullable());
        assert_eq!(item.data_type(), &DataType::FixedSizeBinary(16));
        assert_eq!(ext(item), (Some("uuid"), Some("uuid-serialized")));
    }

    #[test]
    fn cq_field_has_all_five_keys_and_extension() {
        let f = cq_field("id", &PgType::Uuid, false, true, false);
        let m = f.metadata();
        assert_eq!(m.get(CQ_PRIMARY_KEY).map(String::as_str), Some("true"));
        assert_eq!(m.get(CQ_UNIQUE).map(String::as_str), Some("false"));
        assert_eq!(m.get(CQ_INCREMENTAL).map(String::as_str), Some("false"));
        assert_eq!(
            m.get(CQ_PRIMARY_KEY_COMPONENT).map(String::as_str),
            Some("false")
        );
        assert_eq!(m.get(CQ_TYPE_SCHEMA).map(String::as_str), Some(""));
        assert_eq!(ext(&f), (Some("uuid"), Some("uuid-serialized")));
        assert_eq!(m.len(), 7);
        let g = cq_field("n", &PgType::Int4, true, false, true);
        assert_eq!(
            g.metadata().get(CQ_UNIQUE).map(String::as_str),
            Some("true")
        );
        assert_eq!(g.metadata().len(), 5);
    }
}
