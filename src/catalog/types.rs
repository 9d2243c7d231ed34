//! Classifies a column's type (by OID, through domains and arrays) into the decoder's [`PgType`].
//!
//! The catalog query returns every `pg_type` row the selected columns reach (the column types, the
//! base types of domains, the element types of arrays). Built-in types with a native binary decoder
//! are recognised by their fixed OIDs; everything else — enums, composites, ranges, extension types
//! such as citext or hstore — travels as the server's own text.

use std::collections::HashMap;

use crate::decode::rules::{IntervalType, NumericType};
use crate::decode::types::DECIMAL256_MAX_PRECISION;
use crate::decode::{PgType, ValueOptions};

/// One `pg_type` row, as far as classification needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TypeRow {
    pub oid: u32,
    /// `typtype`: b base, c composite, d domain, e enum, p pseudo, r range, m multirange.
    pub typtype: char,
    /// `typcategory`: `A` for arrays.
    pub category: char,
    pub elem: u32,
    pub base: u32,
    /// A domain's own typmod (e.g. `CREATE DOMAIN d AS timestamp(3)`), -1 when none.
    pub typmod: i32,
    /// The domain is declared NOT NULL.
    pub not_null: bool,
}

/// The resolved type of a column.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ResolvedType {
    pub pg_type: PgType,
    /// NOT NULL declared by a domain anywhere in the chain.
    pub domain_not_null: bool,
}

/// Well-known OIDs of the types with native binary decoders (`pg_type.dat`; stable across versions).
mod oid {
    pub(crate) const BOOL: u32 = 16;
    pub(crate) const BYTEA: u32 = 17;
    pub(crate) const CHAR: u32 = 18;
    pub const NAME: u32 = 19;
    pub(crate) const INT8: u32 = 20;
    pub(crate) const INT2: u32 = 21;
    pub(crate) const INT4: u32 = 23;
    pub const TEXT: u32 = 25;
    pub const OID: u32 = 26;
    pub(crate) const XID: u32 = 28;
    pub(crate) const CID: u32 = 29;
    pub const JSON: u32 = 114;
    pub(crate) const FLOAT4: u32 = 700;
    pub(crate) const FLOAT8: u32 = 701;
    pub(crate) const MACADDR8: u32 = 774;
    pub(crate) const MACADDR: u32 = 829;
    pub(crate) const CIDR: u32 = 650;
    pub(crate) const INET: u32 = 869;
    pub(crate) const BPCHAR: u32 = 1042;
    pub(crate) const VARCHAR: u32 = 1043;
    pub const DATE: u32 = 1082;
    pub const TIME: u32 = 1083;
    pub const TIMESTAMP: u32 = 1114;
    pub(crate) const TIMESTAMPTZ: u32 = 1184;
    pub(crate) const NUMERIC: u32 = 1700;
    pub(crate) const INTERVAL: u32 = 1186;
    pub const UUID: u32 = 2950;
    pub(crate) const JSONB: u32 = 3802;
    pub(crate) const XID8: u32 = 5069;
}

/// Domain chains and arrays nest; real catalogs are shallow, a cycle would be a corrupt catalog.
const MAX_DEPTH: usize = 32;

/// Looks types up by OID and resolves them.
pub(crate) struct TypeResolver {
    rows: HashMap<u32, TypeRow>,
    options: ValueOptions,
}

impl TypeResolver {
    #[cfg(test)]
    pub(crate) fn new(rows: impl IntoIterator<Item = TypeRow>) -> Self {
        Self::with_options(rows, &ValueOptions::default())
    }

    /// A resolver that maps numeric and interval as `numeric_type` / `interval_type` say.
    pub fn with_options(rows: impl IntoIterator<Item = TypeRow>, options: &ValueOptions) -> Self {
        Self {
            rows: rows.into_iter().map(|r| (r.oid, r)).collect(),
            options: *options,
        }
    }

    /// Resolves a column's type. `typmod` is the column's `atttypmod` (precision of time types;
    /// for arrays it applies to the elements).
    pub(crate) fn resolve(&self, type_oid: u32, typmod: i32) -> ResolvedType {
        let mut domain_not_null = false;
        let pg_type = self.classify(type_oid, typmod, &mut domain_not_null, 0);
        ResolvedType {
            pg_type,
            domain_not_null,
        }
    }

    fn classify(&self, type_oid: u32, typmod: i32, not_null: &mut bool, depth: usize) -> PgType {
        if depth > MAX_DEPTH {
            return PgType::ServerText;
        }
        if let Some(native) = native_type(type_oid, typmod, &self.options) {
            return native;
        }
        let Some(row) = self.rows.get(&type_oid) else {
            // Not in the rows the query returned: the server still has a text form for it.
            return PgType::ServerText;
        };
        if row.typtype == 'd' {
            // Every domain of the chain is enforced on the column (a domain over a NOT NULL
            // domain is NOT NULL too). Arrays pass their own flag down, so a domain used as an
            // array element constrains elements, not the column.
            *not_null |= row.not_null;
            let typmod = if typmod >= 0 { typmod } else { row.typmod };
            return self.classify(row.base, typmod, not_null, depth + 1);
        }
        if row.category == 'A' && row.elem != 0 {
            let mut elem_not_null = false;
            let elem = self.classify(row.elem, typmod, &mut elem_not_null, depth + 1);
            return PgType::Array(Box::new(elem));
        }
        PgType::ServerText
    }
}

/// Precision of time/timestamp types is their typmod (-1 = unconstrained).
fn precision(typmod: i32) -> Option<u8> {
    u8::try_from(typmod).ok().filter(|p| *p <= 6)
}

/// `numeric(p,s)` → the Arrow decimal that holds every value of it: (p, s) itself; a negative
/// scale (PostgreSQL 15+, values rounded to 10^-s) → (p − s, 0); a scale above the precision
/// (15+, e.g. numeric(2,4) holds |v| < 0.01) → (s, s). None (text) for an unconstrained numeric
/// and above 76 digits.
pub(crate) fn numeric_decimal(typmod: i32) -> Option<PgType> {
    // NUMERIC_TYPMOD: ((precision << 16) | (scale & 0x7ff)) + VARHDRSZ, scale an 11-bit signed.
    let raw = typmod.checked_sub(4).filter(|_| typmod >= 4)?;
    let precision = (raw >> 16) & 0xffff;
    let scale = ((raw & 0x7ff) ^ 1024) - 1024;
    let (p, s) = if scale < 0 {
        (precision - scale, 0)
    } else if scale > precision {
        (scale, scale)
    } else {
        (precision, scale)
    };
    let precision = u8::try_from(p)
        .ok()
        .filter(|p| (1..=DECIMAL256_MAX_PRECISION).contains(p))?;
    let scale = i8::try_from(s).ok()?;
    Some(PgType::Decimal { precision, scale })
}

fn native_type(type_oid: u32, typmod: i32, options: &ValueOptions) -> Option<PgType> {
    Some(match type_oid {
        oid::BOOL => PgType::Bool,
        oid::INT2 => PgType::Int2,
        oid::INT4 => PgType::Int4,
        oid::INT8 => PgType::Int8,
        oid::FLOAT4 => PgType::Float4,
        oid::FLOAT8 => PgType::Float8,
        oid::OID => PgType::Oid,
        oid::XID | oid::CID => PgType::Xid,
        oid::XID8 => PgType::Xid8,
        oid::TEXT | oid::VARCHAR | oid::BPCHAR | oid::NAME => PgType::Text,
        oid::CHAR => PgType::Char,
        oid::BYTEA => PgType::Bytea,
        oid::UUID => PgType::Uuid,
        oid::JSON => PgType::Json,
        oid::JSONB => PgType::Jsonb,
        oid::INET | oid::CIDR => PgType::Inet,
        oid::MACADDR => PgType::MacAddr,
        oid::MACADDR8 => PgType::MacAddr8,
        oid::DATE => PgType::Date,
        oid::TIME => PgType::Time {
            precision: precision(typmod),
        },
        oid::TIMESTAMP => PgType::Timestamp {
            precision: precision(typmod),
        },
        oid::TIMESTAMPTZ => PgType::TimestampTz {
            precision: precision(typmod),
        },
        oid::NUMERIC => match options.numeric_type {
            NumericType::Decimal => numeric_decimal(typmod).unwrap_or(PgType::Numeric),
            NumericType::String => PgType::Numeric,
        },
        oid::INTERVAL => match options.interval_type {
            IntervalType::MonthDayNano => PgType::Interval,
            // Not native in string mode: the server's own text.
            IntervalType::String => return None,
        },
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(oid: u32, typtype: char, category: char, elem: u32, base: u32) -> TypeRow {
        TypeRow {
            oid,
            typtype,
            category,
            elem,
            base,
            typmod: -1,
            not_null: false,
        }
    }

    #[test]
    fn natives_by_oid_with_precision() {
        let r = TypeResolver::new([]);
        assert_eq!(r.resolve(20, -1).pg_type, PgType::Int8);
        assert_eq!(
            r.resolve(1114, 3).pg_type,
            PgType::Timestamp { precision: Some(3) }
        );
        assert_eq!(
            r.resolve(1184, -1).pg_type,
            PgType::TimestampTz { precision: None }
        );
        assert_eq!(r.resolve(650, -1).pg_type, PgType::Inet);
    }

    #[test]
    fn domains_resolve_to_base_and_carry_not_null_and_typmod() {
        let mut posint = row(16491, 'd', 'N', 0, 23);
        posint.not_null = true;
        let mut ts3 = row(16600, 'd', 'D', 0, 1114);
        ts3.typmod = 3;
        let outer = row(16700, 'd', 'N', 0, 16491);
        let r = TypeResolver::new([posint, ts3, outer]);
        assert!(
            r.resolve(16700, -1).domain_not_null,
            "a domain over a NOT NULL domain"
        );
        let resolved = r.resolve(16491, -1);
        assert_eq!(resolved.pg_type, PgType::Int4);
        assert!(resolved.domain_not_null);
        assert_eq!(
            r.resolve(16600, -1).pg_type,
            PgType::Timestamp { precision: Some(3) }
        );
    }

    #[test]
    fn arrays_of_domains_enums_and_natives() {
        let mut posint = row(16491, 'd', 'N', 0, 23);
        posint.not_null = true;
        let r = TypeResolver::new([
            posint,
            row(16490, 'b', 'A', 16491, 0),
            row(16494, 'e', 'E', 0, 0),
            row(16493, 'b', 'A', 16494, 0),
            row(1009, 'b', 'A', 25, 0),
        ]);
        let arr = r.resolve(16490, -1);
        assert_eq!(arr.pg_type, PgType::Array(Box::new(PgType::Int4)));
        assert!(
            !arr.domain_not_null,
            "element domain does not make the column NOT NULL"
        );
        assert_eq!(
            r.resolve(16493, -1).pg_type,
            PgType::Array(Box::new(PgType::ServerText))
        );
        assert_eq!(r.resolve(16494, -1).pg_type, PgType::ServerText);
        assert_eq!(
            r.resolve(1009, -1).pg_type,
            PgType::Array(Box::new(PgType::Text))
        );
    }

    #[test]
    fn numeric_and_interval_options() {
        let decimal = ValueOptions {
            numeric_type: NumericType::Decimal,
            interval_type: IntervalType::MonthDayNano,
            ..ValueOptions::default()
        };
        let typmod = |p: i32, s: i32| ((p << 16) | (s & 0x7ff)) + 4;
        let d = TypeResolver::with_options([row(1231, 'b', 'A', 1700, 0)], &decimal);
        let dec = |p, s| PgType::Decimal {
            precision: p,
            scale: s,
        };
        assert_eq!(d.resolve(1700, typmod(12, 2)).pg_type, dec(12, 2));
        assert_eq!(d.resolve(1700, typmod(1, 0)).pg_type, dec(1, 0));
        assert_eq!(d.resolve(1700, typmod(76, 76)).pg_type, dec(76, 76));
        assert_eq!(d.resolve(1700, typmod(5, -3)).pg_type, dec(8, 0));
        assert_eq!(d.resolve(1700, typmod(2, 4)).pg_type, dec(4, 4));
        assert_eq!(d.resolve(1700, typmod(77, 0)).pg_type, PgType::Numeric);
        assert_eq!(d.resolve(1700, -1).pg_type, PgType::Numeric);
        assert_eq!(
            d.resolve(1231, typmod(39, 3)).pg_type,
            PgType::Array(Box::new(dec(39, 3)))
        );
        assert_eq!(d.resolve(1186, -1).pg_type, PgType::Interval);
        let text = TypeResolver::new([]);
        assert_eq!(text.resolve(1700, typmod(12, 2)).pg_type, PgType::Numeric);
        assert_eq!(text.resolve(1186, -1).pg_type, PgType::ServerText);
    }

    #[test]
    fn unknown_and_cyclic_types_fall_back_to_server_text() {
        let r = TypeResolver::new([row(1, 'd', 'N', 0, 2), row(2, 'd', 'N', 0, 1)]);
        assert_eq!(r.resolve(1, -1).pg_type, PgType::ServerText);
        assert_eq!(r.resolve(999_999, -1).pg_type, PgType::ServerText);
    }
}
