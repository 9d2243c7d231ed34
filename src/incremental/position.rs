//! Where an incremental table stopped: the snapshot its last sync read in (and, in cursor mode,
//! the largest cursor value it saw), kept as one small JSON document per table in CloudQuery's
//! state backend.
//!
//! Key: `postgresql:<database>.<schema>.<table>` (unquoted names). Value:
//! ```json
//! {"format":1,"mode":"cursor","cursor_column":"updated_at","cursor":"2026-01-02 03:04:05.123456+00",
//!  "snapshot":{"xmin":1000,"xmax":1004,"xip":[1001,1003]},"next_xid":1005,
//!  "destination":"orders","columns":["id","updated_at","v"],"filter":null}
//! ```
//! `cursor` is the value's exact text form as PostgreSQL prints it in the plugin's session
//! (ISO dates, UTC, full float precision); it is left out when the table had no row with a cursor
//! value, and in xmin mode.
//! `destination`, `columns` and `filter` describe what the position covers: when one of them
//! changes, the next sync reads the whole table again instead of only the changes.

use serde::{Deserialize, Serialize};

/// The format version written into every value; a value of another version is refused.
pub const FORMAT: u32 = 1;

/// A PostgreSQL snapshot with 64-bit (epoch-extended) transaction ids, as
/// `pg_current_snapshot()` (13+) and `txid_current_snapshot()` (12) print it: `xmin:xmax:xip,…`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PgSnapshot {
    /// The oldest transaction still running when the snapshot was taken (every older one had
    /// ended).
    pub xmin: u64,
    /// The first transaction id not yet assigned: everything from here on is invisible.
    pub xmax: u64,
    /// Top-level transactions in progress, `xmin <= x < xmax`.
    pub xip: Vec<u64>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("not a PostgreSQL snapshot (expected xmin:xmax:xip,…): {0:?}")]
pub struct SnapshotParseError(pub String);

impl PgSnapshot {
    pub fn parse(text: &str) -> Result<PgSnapshot, SnapshotParseError> {
        let bad = || SnapshotParseError(text.to_string());
        let mut parts = text.trim().splitn(3, ':');
        let xmin: u64 = parts.next().and_then(|s| s.parse().ok()).ok_or_else(bad)?;
        let xmax: u64 = parts.next().and_then(|s| s.parse().ok()).ok_or_else(bad)?;
        let xip_text = parts.next().ok_or_else(bad)?;
        let mut xip = Vec::new();
        for x in xip_text.split(',').filter(|s| !s.is_empty()) {
            xip.push(x.parse::<u64>().map_err(|_| bad())?);
        }
        if xmin > xmax || xip.iter().any(|&x| x < xmin || x >= xmax) {
            return Err(bad());
        }
        Ok(PgSnapshot { xmin, xmax, xip })
    }
}

impl std::fmt::Display for PgSnapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:", self.xmin, self.xmax)?;
        for (i, x) in self.xip.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{x}")?;
        }
        Ok(())
    }
}

/// How a table is read incrementally.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// By the transaction that wrote each row version (`xmin`).
    Xmin,
    /// By a column whose values grow as rows are written.
    Cursor { column: String },
}

impl Mode {
    pub fn name(&self) -> &'static str {
        match self {
            Mode::Xmin => "xmin",
            Mode::Cursor { .. } => "cursor",
        }
    }
}

/// A table's stored position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    pub mode: Mode,
    pub snapshot: PgSnapshot,
    /// The next transaction id to be assigned when the snapshot was taken (or a little later).
    /// From PostgreSQL 14 a snapshot's `xmax` is the last completed id + 1, so a transaction
    /// that was already running with a larger id is in neither `xip` nor below `xmax`; every
    /// transaction running at the snapshot has an id in `[snapshot.xmin, next_xid)`.
    pub next_xid: u64,
    /// Cursor mode: the largest cursor value read (text form), None when there was none.
    pub cursor: Option<String>,
    /// What the position covers.
    pub scope: Scope,
}

/// What a position was recorded for; a different scope means the position does not apply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scope {
    pub destination: String,
    pub columns: Vec<String>,
    pub filter: Option<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Value {
    format: u32,
    mode: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cursor_column: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cursor: Option<String>,
    snapshot: PgSnapshot,
    next_xid: u64,
    destination: String,
    columns: Vec<String>,
    filter: Option<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PositionError {
    #[error("is not a position written by this plugin ({0})")]
    Unreadable(String),
    #[error("has format version {0}; this plugin reads version {FORMAT}")]
    Format(u32),
}

impl Position {
    /// The state backend key of a table.
    pub fn key(database: &str, schema: &str, table: &str) -> String {
        format!("postgresql:{database}.{schema}.{table}")
    }

    pub fn to_json(&self) -> String {
        let (cursor_column, cursor) = match &self.mode {
            Mode::Xmin => (None, None),
            Mode::Cursor { column } => (Some(column.clone()), self.cursor.clone()),
        };
        let value = Value {
            format: FORMAT,
            mode: self.mode.name().to_string(),
            cursor_column,
            cursor,
            snapshot: self.snapshot.clone(),
            next_xid: self.next_xid,
            destination: self.scope.destination.clone(),
            columns: self.scope.columns.clone(),
            filter: self.scope.filter.clone(),
        };
        // Serializing plain strings and integers cannot fail; an empty value would be refused
        // when read back, never silently taken as a position.
        serde_json::to_string(&value).unwrap_or_default()
    }

    pub fn from_json(text: &str) -> Result<Position, PositionError> {
        // Read the format first so a future version is named as such, not as garbage.
        let probe: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| PositionError::Unreadable(format!("not JSON: {e}")))?;
        match probe.get("format").and_then(|f| f.as_u64()) {
            Some(f) if f == u64::from(FORMAT) => {}
            Some(f) => return Err(PositionError::Format(u32::try_from(f).unwrap_or(u32::MAX))),
            None => return Err(PositionError::Unreadable("no \"format\" field".to_string())),
        }
        let v: Value =
            serde_json::from_value(probe).map_err(|e| PositionError::Unreadable(e.to_string()))?;
        let mode = match (v.mode.as_str(), v.cursor_column) {
            ("xmin", None) => Mode::Xmin,
            ("cursor", Some(column)) => Mode::Cursor { column },
            (mode, column) => {
                return Err(PositionError::Unreadable(format!(
                    "mode {mode:?} with cursor_column {column:?}"
                )))
            }
        };
        if v.snapshot.xmin > v.snapshot.xmax || v.next_xid < v.snapshot.xmax {
            return Err(PositionError::Unreadable(format!(
                "snapshot {} with next_xid {} is out of order",
                v.snapshot, v.next_xid
            )));
        }
        Ok(Position {
            mode,
            snapshot: v.snapshot,
            next_xid: v.next_xid,
            cursor: v.cursor,
            scope: Scope {
                destination: v.destination,
                columns: v.columns,
                filter: v.filter,
            },
        })
    }

    /// A short human form for logs: `snapshot 1000:1004:1001 (cursor 2026-…)`.
    pub fn describe(&self) -> String {
        match (&self.mode, &self.cursor) {
            (Mode::Cursor { column }, Some(c)) => {
                format!("snapshot {} and {column} = {c}", self.snapshot)
            }
            (Mode::Cursor { column }, None) => {
                format!("snapshot {} ({column} had no value)", self.snapshot)
            }
            (Mode::Xmin, _) => format!("snapshot {}", self.snapshot),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope() -> Scope {
        Scope {
            destination: "orders".into(),
            columns: vec!["id".into(), "v".into()],
            filter: Some("id > 3".into()),
        }
    }

    #[test]
    fn snapshots_parse_and_print() {
        let s = PgSnapshot::parse("1000:1004:1001,1003").unwrap();
        assert_eq!(
            s,
            PgSnapshot {
                xmin: 1000,
                xmax: 1004,
                xip: vec![1001, 1003]
            }
        );
        assert_eq!(s.to_string(), "1000:1004:1001,1003");
        let empty = PgSnapshot::parse("5:5:").unwrap();
        assert!(empty.xip.is_empty());
        assert_eq!(empty.to_string(), "5:5:");
        let big = PgSnapshot::parse("4294967300:4294967310:").unwrap();
        assert_eq!(big.xmin, 4_294_967_300);
        for bad in ["", "1:2", "a:b:", "5:4:", "1:5:7", "1:5:x", "1:5:0"] {
            assert!(PgSnapshot::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn positions_round_trip() {
        let snapshot = PgSnapshot::parse("1000:1004:1001").unwrap();
        for p in [
            Position {
                mode: Mode::Xmin,
                snapshot: snapshot.clone(),
                next_xid: 1004,
                cursor: None,
                scope: scope(),
            },
            Position {
                mode: Mode::Cursor {
                    column: "updated_at".into(),
                },
                snapshot: snapshot.clone(),
                next_xid: 1010,
                cursor: Some("2026-01-02 03:04:05.123456+00".into()),
                scope: scope(),
            },
            Position {
                mode: Mode::Cursor {
                    column: "id".into(),
                },
                snapshot,
                next_xid: 1004,
                cursor: None,
                scope: Scope {
                    filter: None,
                    ..scope()
                },
            },
        ] {
            let text = p.to_json();
            assert_eq!(Position::from_json(&text).unwrap(), p, "{text}");
        }
    }

    #[test]
    fn foreign_values_are_refused() {
        assert!(matches!(
            Position::from_json("12345"),
            Err(PositionError::Unreadable(_))
        ));
        assert!(matches!(
            Position::from_json("not json"),
            Err(PositionError::Unreadable(_))
        ));
        assert_eq!(
            Position::from_json(r#"{"format":2}"#),
            Err(PositionError::Format(2))
        );
        let unknown_field = r#"{"format":1,"mode":"xmin","snapshot":{"xmin":1,"xmax":2,"xip":[]},"next_xid":2,"destination":"t","columns":[],"filter":null,"extra":1}"#;
        assert!(Position::from_json(unknown_field).is_err());
        let cursor_without_column = r#"{"format":1,"mode":"cursor","snapshot":{"xmin":1,"xmax":2,"xip":[]},"next_xid":2,"destination":"t","columns":[],"filter":null}"#;
        assert!(Position::from_json(cursor_without_column).is_err());
        let next_before_xmax = r#"{"format":1,"mode":"xmin","snapshot":{"xmin":1,"xmax":5,"xip":[]},"next_xid":4,"destination":"t","columns":[],"filter":null}"#;
        assert!(Position::from_json(next_before_xmax).is_err());
        assert_eq!(
            Position::key("db", "public", "orders"),
            "postgresql:db.public.orders"
        );
    }
}
