//! Which rows an incremental sync reads, as SQL conditions on the table.
//!
//! A row version carries the id of the transaction that wrote it (`xmin`, 32 bits). The stored
//! position holds the previous sync's snapshot P with 64-bit ids. A row changed since P when its
//! writer T was not visible to P. The test used is `T >= P.xmin`: it catches every transaction
//! that committed after P and every one running at P, including their subtransactions (whose ids
//! the snapshot's in-progress list does not hold, so `T in P.xip` would miss a row written after
//! a SAVEPOINT, and from PostgreSQL 14 a running transaction whose id is at or past the
//! snapshot's `xmax` is not listed either). The price: transactions with ids in
//! `[P.xmin, P.xmax)` that had already committed at P are read again (at least once, never a
//! gap); that window is empty when nothing was running at P.
//!
//! The 32-bit comparison is done with `age(xid)`: the distance from the reading transaction's
//! next transaction id, modulo 2^32, as a signed 32-bit number. `age(xmin) <= age(P.xmin)` holds
//! exactly when T is at or after P.xmin, provided fewer than 2^31 transactions separate P from
//! now (checked here with the 64-bit ids; past that the table is read whole). Frozen rows keep
//! their original `xmin` (PostgreSQL 9.4+), so freezing does not hide a change; permanent ids
//! (bootstrap, frozen before 9.4) have `age` = 2^31 - 1 and never match. A frozen row older than
//! 2^32 transactions may alias a recent id and be read again: harmless.

use super::position::{Mode, PgSnapshot, Position, Scope};
use crate::catalog::{quote_ident, quote_literal};
use crate::sync::plan::RowScan;

/// Past this many transactions between the previous snapshot and now the 32-bit comparison is
/// no longer exact; PostgreSQL's own wraparound protection stops at 2^31 minus a margin, so this
/// is never reached on a healthy server between two syncs.
pub const MAX_ELAPSED_XIDS: u64 = (1 << 31) - (1 << 24);

/// Why a table is read whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WholeReason {
    /// No stored position: the table's first incremental sync.
    FirstSync,
    /// The position was recorded for another mode, cursor column, destination table, column
    /// list or filter.
    ScopeChanged(String),
    /// The server's transaction ids are behind the stored snapshot: a restored backup or
    /// another server.
    ServerBehind { stored_xmax: u64, current_xmax: u64 },
    /// Too many transactions since the previous sync for the 32-bit comparison.
    TooManyTransactions { elapsed: u64 },
}

impl std::fmt::Display for WholeReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WholeReason::FirstSync => f.write_str("first sync: no stored position"),
            WholeReason::ScopeChanged(what) => write!(f, "the stored position does not apply: {what}"),
            WholeReason::ServerBehind {
                stored_xmax,
                current_xmax,
            } => write!(
                f,
                "the server's next transaction id {current_xmax} is before the stored snapshot's {stored_xmax} (restored from a backup, or another server?)"
            ),
            WholeReason::TooManyTransactions { elapsed } => write!(
                f,
                "{elapsed} transactions since the previous sync, too many to compare 32-bit xmin exactly"
            ),
        }
    }
}

/// What to read of one table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Read {
    Whole(WholeReason),
    /// The union of these scans (they are disjoint).
    Changes(Vec<RowScan>),
}

/// The cursor column of a cursor-mode table, with its SQL type for the literal's cast.
#[derive(Debug, Clone, Copy)]
pub struct CursorColumn<'a> {
    pub name: &'a str,
    /// `format_type()` of the column.
    pub type_name: &'a str,
}

/// Decides what to read of a table whose stored position is `previous`, now that the sync reads
/// in snapshot `current`.
pub fn plan_read(
    previous: Option<&Position>,
    mode: &Mode,
    scope: &Scope,
    current: &PgSnapshot,
    cursor: Option<CursorColumn<'_>>,
) -> Read {
    let Some(prev) = previous else {
        return Read::Whole(WholeReason::FirstSync);
    };
    if let Some(what) = scope_change(prev, mode, scope) {
        return Read::Whole(WholeReason::ScopeChanged(what));
    }
    let p = &prev.snapshot;
    if current.xmax < p.xmax {
        return Read::Whole(WholeReason::ServerBehind {
            stored_xmax: p.xmax,
            current_xmax: current.xmax,
        });
    }
    let elapsed = current.xmax - p.xmin;
    if elapsed >= MAX_ELAPSED_XIDS {
        return Read::Whole(WholeReason::TooManyTransactions { elapsed });
    }
    let changed = written_since(p.xmin);
    let scans = match (mode, cursor) {
        (Mode::Cursor { .. }, Some(col)) => cursor_scans(prev, p, &changed, col),
        // Xmin mode (a cursor table always has its column).
        _ => vec![RowScan {
            condition: changed,
            splittable: true,
        }],
    };
    Read::Changes(scans)
}

fn cursor_scans(
    prev: &Position,
    p: &PgSnapshot,
    changed: &str,
    col: CursorColumn<'_>,
) -> Vec<RowScan> {
    let c = quote_ident(col.name);
    let Some(last) = &prev.cursor else {
        // No cursor value existed at P: every value now was written since (or a NULL before).
        return vec![RowScan {
            condition: format!("({c} IS NOT NULL OR {changed})"),
            splittable: true,
        }];
    };
    let last = format!("{}::{}", quote_literal(last), col.type_name);
    // Index range `c >= last`: values past the stored one, and ties at it written since P.
    let mut scans = vec![RowScan {
        condition: format!("{c} >= {last} AND ({c} > {last} OR {changed})"),
        splittable: false,
    }];
    // Transactions running at P (ids in [P.xmin, next_xid)) may commit later with values below
    // the stored one; a writer that starts later draws a larger value when the column is set at
    // write time. Only when something was running at P, and finding those rows takes a scan of
    // the table, as xmin has no index.
    if p.xmin < prev.next_xid {
        scans.push(RowScan {
            condition: format!(
                "({c} < {last} OR {c} IS NULL) AND age(xmin) > age({}::xid) AND age(xmin) <= age({}::xid)",
                xid_literal(prev.next_xid),
                xid_literal(p.xmin)
            ),
            splittable: true,
        });
    }
    scans
}

/// Rows whose writer's id is at or after `xmin` (64-bit), compared in 32 bits through `age`.
fn written_since(xmin: u64) -> String {
    format!("age(xmin) BETWEEN 0 AND age({}::xid)", xid_literal(xmin))
}

/// The 32-bit `xid` of a 64-bit id, as a literal.
fn xid_literal(full: u64) -> String {
    format!("'{}'", full & 0xFFFF_FFFF)
}

fn scope_change(prev: &Position, mode: &Mode, scope: &Scope) -> Option<String> {
    if &prev.mode != mode {
        let describe = |m: &Mode| match m {
            Mode::Xmin => "xmin".to_string(),
            Mode::Cursor { column } => format!("cursor_column {column:?}"),
        };
        return Some(format!(
            "it was recorded for {}, the table is now synced by {}",
            describe(&prev.mode),
            describe(mode)
        ));
    }
    if prev.scope.destination != scope.destination {
        return Some(format!(
            "it was recorded for destination table {:?}, now {:?}",
            prev.scope.destination, scope.destination
        ));
    }
    if prev.scope.columns != scope.columns {
        return Some(format!(
            "the synced columns changed from {:?} to {:?}",
            prev.scope.columns, scope.columns
        ));
    }
    if prev.scope.filter != scope.filter {
        return Some(format!(
            "the filter changed from {:?} to {:?}",
            prev.scope.filter, scope.filter
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope() -> Scope {
        Scope {
            destination: "t".into(),
            columns: vec!["id".into(), "ts".into()],
            filter: None,
        }
    }

    /// A position whose next transaction id is the snapshot's xmax.
    fn position(mode: Mode, snapshot: &str, cursor: Option<&str>) -> Position {
        let snapshot = PgSnapshot::parse(snapshot).unwrap();
        Position {
            mode,
            next_xid: snapshot.xmax,
            snapshot,
            cursor: cursor.map(str::to_string),
            scope: scope(),
        }
    }

    fn cursor_mode() -> Mode {
        Mode::Cursor {
            column: "ts".into(),
        }
    }

    const TS: CursorColumn<'static> = CursorColumn {
        name: "ts",
        type_name: "timestamp with time zone",
    };

    #[test]
    fn first_sync_and_scope_changes_read_whole() {
        let now = PgSnapshot::parse("100:100:").unwrap();
        assert_eq!(
            plan_read(None, &Mode::Xmin, &scope(), &now, None),
            Read::Whole(WholeReason::FirstSync)
        );
        let prev = position(Mode::Xmin, "50:50:", None);
        let other_mode = plan_read(Some(&prev), &cursor_mode(), &scope(), &now, Some(TS));
        assert!(matches!(
            other_mode,
            Read::Whole(WholeReason::ScopeChanged(_))
        ));
        for changed in [
            Scope {
                destination: "u".into(),
                ..scope()
            },
            Scope {
                columns: vec!["id".into()],
                ..scope()
            },
            Scope {
                filter: Some("id > 1".into()),
                ..scope()
            },
        ] {
            assert!(matches!(
                plan_read(Some(&prev), &Mode::Xmin, &changed, &now, None),
                Read::Whole(WholeReason::ScopeChanged(_))
            ));
        }
    }

    #[test]
    fn xmin_mode_reads_rows_written_since_the_previous_xmin() {
        let prev = position(Mode::Xmin, "4294967290:4294967299:4294967295", None);
        let now = PgSnapshot::parse("4294967400:4294967400:").unwrap();
        let read = plan_read(Some(&prev), &Mode::Xmin, &scope(), &now, None);
        // 4294967290 mod 2^32 = 4294967290: the 32-bit id of the 64-bit one.
        assert_eq!(
            read,
            Read::Changes(vec![RowScan {
                condition: "age(xmin) BETWEEN 0 AND age('4294967290'::xid)".into(),
                splittable: true
            }])
        );
        let wrapped = position(Mode::Xmin, "4294967400:4294967400:", None);
        let later = PgSnapshot::parse("4294967500:4294967500:").unwrap();
        let Read::Changes(scans) = plan_read(Some(&wrapped), &Mode::Xmin, &scope(), &later, None)
        else {
            panic!("expected changes");
        };
        assert_eq!(
            scans[0].condition,
            "age(xmin) BETWEEN 0 AND age('104'::xid)"
        );
    }

    #[test]
    fn guards_read_whole() {
        let prev = position(Mode::Xmin, "1000:1010:", None);
        let behind = PgSnapshot::parse("900:900:").unwrap();
        assert!(matches!(
            plan_read(Some(&prev), &Mode::Xmin, &scope(), &behind, None),
            Read::Whole(WholeReason::ServerBehind { .. })
        ));
        let far = PgSnapshot {
            xmin: 1000 + MAX_ELAPSED_XIDS,
            xmax: 1000 + MAX_ELAPSED_XIDS,
            xip: vec![],
        };
        assert!(matches!(
            plan_read(Some(&prev), &Mode::Xmin, &scope(), &far, None),
            Read::Whole(WholeReason::TooManyTransactions { .. })
        ));
        let near = PgSnapshot {
            xmin: 999 + MAX_ELAPSED_XIDS,
            xmax: 999 + MAX_ELAPSED_XIDS,
            xip: vec![],
        };
        assert!(matches!(
            plan_read(Some(&prev), &Mode::Xmin, &scope(), &near, None),
            Read::Changes(_)
        ));
    }

    #[test]
    fn cursor_mode_reads_the_index_range_and_the_running_transactions() {
        let now = PgSnapshot::parse("2000:2000:").unwrap();
        let quiet = position(cursor_mode(), "1000:1000:", Some("2026-01-01 00:00:00+00"));
        let Read::Changes(scans) =
            plan_read(Some(&quiet), &cursor_mode(), &scope(), &now, Some(TS))
        else {
            panic!("expected changes");
        };
        assert_eq!(
            scans,
            vec![RowScan {
                condition: "\"ts\" >= '2026-01-01 00:00:00+00'::timestamp with time zone AND (\"ts\" > '2026-01-01 00:00:00+00'::timestamp with time zone OR age(xmin) BETWEEN 0 AND age('1000'::xid))".into(),
                splittable: false
            }]
        );
        let busy = position(cursor_mode(), "990:1000:990,995", Some("7"));
        let Read::Changes(scans) = plan_read(Some(&busy), &cursor_mode(), &scope(), &now, Some(TS))
        else {
            panic!("expected changes");
        };
        assert_eq!(scans.len(), 2);
        assert!(scans[1].splittable);
        assert_eq!(
            scans[1].condition,
            "(\"ts\" < '7'::timestamp with time zone OR \"ts\" IS NULL) AND age(xmin) > age('1000'::xid) AND age(xmin) <= age('990'::xid)"
        );
        // PostgreSQL 14+: a transaction running at P with an id past xmax (nothing in xip).
        let running_past_xmax = Position {
            next_xid: 1001,
            ..position(cursor_mode(), "1000:1000:", Some("7"))
        };
        let Read::Changes(scans) = plan_read(
            Some(&running_past_xmax),
            &cursor_mode(),
            &scope(),
            &now,
            Some(TS),
        ) else {
            panic!("expected changes");
        };
        assert_eq!(scans.len(), 2);
        assert!(scans[1]
            .condition
            .ends_with("age(xmin) > age('1001'::xid) AND age(xmin) <= age('1000'::xid)"));
        let empty = position(cursor_mode(), "990:1000:990", None);
        let Read::Changes(scans) =
            plan_read(Some(&empty), &cursor_mode(), &scope(), &now, Some(TS))
        else {
            panic!("expected changes");
        };
        assert_eq!(
            scans[0].condition,
            "(\"ts\" IS NOT NULL OR age(xmin) BETWEEN 0 AND age('990'::xid))"
        );
    }

    #[test]
    fn cursor_literals_are_quoted() {
        let now = PgSnapshot::parse("2000:2000:").unwrap();
        let prev = position(cursor_mode(), "1000:1000:", Some("it's a \\ value"));
        let col = CursorColumn {
            name: "t\"s",
            type_name: "text",
        };
        let Read::Changes(scans) =
            plan_read(Some(&prev), &cursor_mode(), &scope(), &now, Some(col))
        else {
            panic!("expected changes");
        };
        assert!(scans[0]
            .condition
            .starts_with("\"t\"\"s\" >= E'it''s a \\\\ value'::text AND"));
    }
}
