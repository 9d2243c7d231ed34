//! The change buffer between the decoded replication stream and the CLI.
//!
//! Pure: no I/O, no clock (the caller passes `now`), generic over the table id `T`, the key `K`
//! (the primary-key values), the row `R` and the schema `S`, so every rule is unit-tested here.
//!
//! # Why it exists: the CLI reorders
//! The CLI forwards `insert` messages to each destination through an asynchronous pipeline but
//! writes `delete_record` and `migrate_table` straight from its receive loop, so a delete can
//! reach the destination before an insert the source sent earlier (seen with CLI 6.21.1: an
//! insert of key 7 followed at once by its delete left row 7 in 6 of 20 runs). Sent naively, "insert 7, delete 7" leaves row 7 at the destination.
//! The buffer therefore decides what to send and when:
//!
//! 1. **Coalescing.** Changes are collected per table into an open *flush*. Within a flush only
//!    each key's last change survives: insert/update → the new row (an upsert), delete → a
//!    delete. So insert-then-delete and update-then-delete send only the delete, and
//!    delete-then-insert sends only the insert (an upsert of the full row has the same end
//!    state). Surviving changes keep commit order.
//! 2. **Flushing.** A table's flush closes when it holds `rows_per_record` rows, after
//!    [`DEFAULT_LINGER`] since its first change, or before a schema change. A closed flush
//!    becomes, in this order, one `insert` record of its rows and one `delete_record` per
//!    deleted key, appended to the table's FIFO queue. One predicate group per message because
//!    each `delete_record` names one key (a group's predicates are ANDed by the destinations).
//! 3. **Holding.** The queue is sent in order. An insert record goes at once. A delete of key
//!    `k` waits until [`DELETE_HOLD`] has passed since the last insert record holding `k` was
//!    handed to the CLI; a `migrate_table` waits until `DELETE_HOLD` has passed since the
//!    table's last insert record. Whatever is queued behind a held message waits too, so a
//!    table's messages leave in commit order and an insert sent after a delete of the same key
//!    can never be overtaken by it (a delete is never slower than an insert).
//!
//! # How long to hold
//! [`DELETE_HOLD`] is 1 s. The CLI's insert pipeline is a buffered channel per destination
//! drained by one goroutine that writes to the destination's gRPC stream; under a light load a
//! record passes it in well under 10 ms, under a burst it can queue behind the records sent
//! before it. Measure it by sending, on one table, an insert record of key k and, after a delay
//! d, a `delete_record` of k, many times for each d, with the test destination logging the
//! order in which the two arrive; the hold must exceed the largest d for which any reorder is
//! seen, with a wide margin for loaded machines. The cost of the hold is latency for deletes of
//! rows inserted less than a second earlier, and for changes queued behind them, nothing else.
//!
//! Measured (CLI 6.21.1, test destination, `tests/cdc_cli.rs` with the hold set to 0): the
//! reference saw 6 reorders in 20 for an insert and a delete sent back to back (well under a
//! millisecond apart); coalescing turns those into a single delete. With the delete one flush
//! later (≥ 20 ms linger, 25–30 ms after the insert's commit) there were 0 reorders in 300
//! trials, with a fast destination and with one sleeping 5 ms per message. 1 s is therefore a
//! margin of more than 30× over the smallest gap this buffer can produce.
//!
//! # Progress
//! Every change carries the LSN of its transaction's commit record (pgoutput Begin's
//! `final_lsn`). [`ChangeBuffer::resume_lsn`] is the position from which a restarted stream
//! would re-deliver everything not yet handed to the CLI: the smallest commit LSN of any change
//! still buffered, or when nothing is buffered the end of the last commit. The acknowledgement
//! tracker ([`super::ack`]) adds the safety margin for destinations that buffer.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::hash::{BuildHasher, Hash, Hasher};
use std::time::{Duration, Instant};

use super::hash::{FxBuildHasher, HashedBuildHasher};

/// A WAL position.
pub use crate::wire::Lsn;

/// How long an open flush may wait for more changes of its table: long enough to gather the
/// rows of a burst into one record, short enough to keep commit → CLI latency far under 1 s.
pub const DEFAULT_LINGER: Duration = Duration::from_millis(20);

/// How long a delete (or schema change) of a table waits after the insert record it could
/// overtake was handed to the CLI; see the module docs for how to measure it.
pub const DELETE_HOLD: Duration = Duration::from_secs(1);

#[derive(Clone, Copy, Debug)]
pub struct BatchConfig {
    /// Rows per insert record (the spec's `rows_per_record`, at least 1).
    pub rows_per_record: usize,
    pub linger: Duration,
    pub delete_hold: Duration,
}

impl BatchConfig {
    pub fn new(rows_per_record: usize) -> Self {
        BatchConfig {
            rows_per_record: rows_per_record.max(1),
            linger: DEFAULT_LINGER,
            delete_hold: DELETE_HOLD,
        }
    }
}

/// One message to hand to the CLI.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output<T, K, R, S> {
    /// The table's schema changed: send `migrate_table` before its next rows.
    Migrate { table: T, schema: S },
    /// New rows (inserts and updates), in commit order, at most `rows_per_record`.
    Insert { table: T, rows: Vec<R> },
    /// Delete the row with this key.
    Delete { table: T, key: K },
}

enum Op<R> {
    Upsert(R),
    Delete,
}

/// A key with its hash, computed once when the change arrives ([`FxBuildHasher`]) and reused
/// by every map the key goes through.
struct Hashed<K> {
    hash: u64,
    key: K,
}

impl<K: Clone> Clone for Hashed<K> {
    fn clone(&self) -> Self {
        Hashed {
            hash: self.hash,
            key: self.key.clone(),
        }
    }
}

impl<K: Eq> PartialEq for Hashed<K> {
    fn eq(&self, other: &Self) -> bool {
        self.hash == other.hash && self.key == other.key
    }
}

impl<K: Eq> Eq for Hashed<K> {}

impl<K> Hash for Hashed<K> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

/// Entries an open flush's index keeps room for after it closes.
const KEPT_INDEX: usize = 1024;

/// One change in an open flush: the key, the change, its commit LSN.
type Change<K, R> = (Hashed<K>, Op<R>, Lsn);

/// The open flush of one table: each key's last change, in commit order.
struct Open<K, R> {
    /// key → index in `ops` of its live change.
    index: HashMap<Hashed<K>, usize, HashedBuildHasher>,
    /// `None` where a later change of the same key replaced this one.
    ops: Vec<Option<Change<K, R>>>,
    rows: usize,
    live: usize,
    first_at: Option<Instant>,
}

impl<K: Clone + Eq + Hash, R> Open<K, R> {
    fn new() -> Self {
        Open {
            index: HashMap::default(),
            ops: Vec::new(),
            rows: 0,
            live: 0,
            first_at: None,
        }
    }
}

enum Unit<K, R, S> {
    Migrate(S, Lsn),
    /// Rows with their keys' hashes (the keys themselves are not needed any more).
    Insert(Vec<(u64, R, Lsn)>),
    Delete(Hashed<K>, Lsn),
}

struct TableBuf<K, R, S> {
    open: Open<K, R>,
    queue: VecDeque<Unit<K, R, S>>,
    /// Hashes of the keys of insert records handed off within the last `delete_hold`, with the
    /// hand-off time. Only hashes are kept (no copy of every key): a delete waits if its key's
    /// 64-bit hash is here, so a hash collision can only make a delete wait longer than
    /// needed (at most `delete_hold`), never let it overtake an insert.
    recent: HashMap<u64, Instant, HashedBuildHasher>,
    /// The same hashes in hand-off order, to expire them without scanning the map.
    recent_order: VecDeque<(Instant, u64)>,
    last_insert_at: Option<Instant>,
}

impl<K: Clone + Eq + Hash, R, S> TableBuf<K, R, S> {
    fn new() -> Self {
        TableBuf {
            open: Open::new(),
            queue: VecDeque::new(),
            recent: HashMap::default(),
            recent_order: VecDeque::new(),
            last_insert_at: None,
        }
    }
}

/// See the module docs.
pub struct ChangeBuffer<T, K, R, S> {
    cfg: BatchConfig,
    tables: BTreeMap<T, TableBuf<K, R, S>>,
    /// Commit LSN → number of buffered changes of that transaction.
    pending: BTreeMap<Lsn, usize>,
    /// The transaction being received (its commit LSN), between `begin` and `commit`.
    in_txn: Option<Lsn>,
    /// End of the last commit received (or the start position).
    last_end: Lsn,
    hasher: FxBuildHasher,
}

impl<T, K, R, S> ChangeBuffer<T, K, R, S>
where
    T: Clone + Ord,
    K: Clone + Eq + Hash,
{
    /// `start` is the position the stream started from (the slot's confirmed position).
    pub fn new(cfg: BatchConfig, start: Lsn) -> Self {
        ChangeBuffer {
            cfg,
            tables: BTreeMap::new(),
            pending: BTreeMap::new(),
            in_txn: None,
            last_end: start,
            hasher: FxBuildHasher::default(),
        }
    }

    /// pgoutput Begin: changes until `commit` belong to the transaction committing at
    /// `final_lsn`.
    pub fn begin(&mut self, final_lsn: Lsn) {
        self.in_txn = Some(final_lsn);
    }

    /// pgoutput Commit: the transaction is complete; `end_lsn` is the end of its commit record.
    pub fn commit(&mut self, end_lsn: Lsn) {
        self.in_txn = None;
        self.last_end = self.last_end.max(end_lsn);
    }

    /// The commit LSN changes are tagged with (outside a transaction: the last position).
    fn lsn(&self) -> Lsn {
        self.in_txn.unwrap_or(self.last_end)
    }

    fn add_pending(&mut self, lsn: Lsn) {
        *self.pending.entry(lsn).or_insert(0) += 1;
    }

    fn done(pending: &mut BTreeMap<Lsn, usize>, lsn: Lsn) {
        Self::done_n(pending, lsn, 1);
    }

    /// `count` changes of the transaction committing at `lsn` left the buffer.
    fn done_n(pending: &mut BTreeMap<Lsn, usize>, lsn: Lsn, count: usize) {
        if let Some(n) = pending.get_mut(&lsn) {
            *n = n.saturating_sub(count);
            if *n == 0 {
                pending.remove(&lsn);
            }
        }
    }

    /// An insert or update: `row` is the complete new row.
    pub fn upsert(&mut self, table: T, key: K, row: R, now: Instant) {
        self.change(table, key, Op::Upsert(row), now);
    }

    /// A delete of the row with `key`.
    pub fn delete(&mut self, table: T, key: K, now: Instant) {
        self.change(table, key, Op::Delete, now);
    }

    fn change(&mut self, table: T, key: K, op: Op<R>, now: Instant) {
        let lsn = self.lsn();
        self.add_pending(lsn);
        let rows_per_record = self.cfg.rows_per_record;
        let key = Hashed {
            hash: self.hasher.hash_one(&key),
            key,
        };
        let t = self.tables.entry(table).or_insert_with(TableBuf::new);
        let open = &mut t.open;
        let at = open.ops.len();
        if let Some(i) = open.index.insert(key.clone(), at) {
            if let Some(Some((_, old, old_lsn))) = open.ops.get_mut(i).map(Option::take) {
                if matches!(old, Op::Upsert(_)) {
                    open.rows -= 1;
                }
                open.live -= 1;
                Self::done(&mut self.pending, old_lsn);
            }
        }
        if matches!(op, Op::Upsert(_)) {
            open.rows += 1;
        }
        open.live += 1;
        open.ops.push(Some((key, op, lsn)));
        open.first_at.get_or_insert(now);
        // While the queue waits on a held message the open flush keeps coalescing (see the
        // module docs), so a hot key costs one row, not one record per change.
        if open.rows >= rows_per_record && t.queue.is_empty() {
            Self::close(t, rows_per_record, true);
        }
    }

    /// The table's columns changed (a Relation message that differs from the schema sent
    /// last): rows buffered so far belong to the old schema and go first; `schema` is sent
    /// once they have passed the CLI, and later rows after it.
    pub fn schema_change(&mut self, table: T, schema: S, now: Instant) {
        let _ = now;
        let lsn = self.lsn();
        self.add_pending(lsn);
        let rows_per_record = self.cfg.rows_per_record;
        let t = self.tables.entry(table).or_insert_with(TableBuf::new);
        Self::close(t, rows_per_record, false);
        t.queue.push_back(Unit::Migrate(schema, lsn));
    }

    /// Close the table's open flush into its queue: its rows as insert records of at most
    /// `rows_per_record` rows, then one delete per deleted key. With `full_only` (closing
    /// because the flush is full, not because it lingered) only whole records leave; the
    /// remaining rows and the deletes stay open, keeping their first-change time.
    fn close(t: &mut TableBuf<K, R, S>, rows_per_record: usize, full_only: bool) {
        let first_at = t.open.first_at;
        // The open flush starts afresh but keeps its index's table (up to a small size, so
        // that many idle tables hold little), instead of growing it from nothing every flush.
        let ops = std::mem::take(&mut t.open.ops);
        t.open.index.clear();
        t.open.index.shrink_to(KEPT_INDEX);
        let open_rows = std::mem::take(&mut t.open.rows);
        t.open.live = 0;
        t.open.first_at = None;
        let mut to_send = if full_only {
            open_rows - open_rows % rows_per_record
        } else {
            open_rows
        };
        let mut rows = Vec::with_capacity(to_send.min(rows_per_record));
        let mut deletes = Vec::new();
        for (key, op, lsn) in ops.into_iter().flatten() {
            match op {
                Op::Upsert(row) if to_send > 0 => {
                    to_send -= 1;
                    rows.push((key.hash, row, lsn));
                    if rows.len() >= rows_per_record {
                        t.queue.push_back(Unit::Insert(std::mem::take(&mut rows)));
                    }
                }
                Op::Delete if !full_only => deletes.push(Unit::Delete(key, lsn)),
                op => {
                    // Stays open (keys are unique within a flush, so order is kept).
                    let o = &mut t.open;
                    if matches!(op, Op::Upsert(_)) {
                        o.rows += 1;
                    }
                    o.live += 1;
                    o.index.insert(key.clone(), o.ops.len());
                    o.ops.push(Some((key, op, lsn)));
                    o.first_at = first_at;
                }
            }
        }
        if !rows.is_empty() {
            t.queue.push_back(Unit::Insert(rows));
        }
        t.queue.extend(deletes);
    }

    /// Hand over everything that may go now, in order per table, appending to `out`.
    pub fn poll(&mut self, now: Instant, out: &mut Vec<Output<T, K, R, S>>) {
        let hold = self.cfg.delete_hold;
        let linger = self.cfg.linger;
        let rows_per_record = self.cfg.rows_per_record;
        for (table, t) in self.tables.iter_mut() {
            Self::expire_recent(t, now, hold);
            Self::drain(table, t, &mut self.pending, now, hold, out);
            // The open flush closes only behind an empty queue: while a held message waits,
            // later changes keep coalescing in it.
            if t.queue.is_empty() {
                if t.open.first_at.is_some_and(|f| now >= f + linger) {
                    Self::close(t, rows_per_record, false);
                } else if t.open.rows >= rows_per_record {
                    Self::close(t, rows_per_record, true);
                }
                Self::drain(table, t, &mut self.pending, now, hold, out);
            }
        }
    }

    fn expire_recent(t: &mut TableBuf<K, R, S>, now: Instant, hold: Duration) {
        while let Some((at, _)) = t.recent_order.front() {
            if now < *at + hold {
                break;
            }
            if let Some((at, hash)) = t.recent_order.pop_front() {
                if t.recent.get(&hash) == Some(&at) {
                    t.recent.remove(&hash);
                }
            }
        }
    }

    /// Hand over the table's queue from the front while its head may go.
    fn drain(
        table: &T,
        t: &mut TableBuf<K, R, S>,
        pending: &mut BTreeMap<Lsn, usize>,
        now: Instant,
        hold: Duration,
        out: &mut Vec<Output<T, K, R, S>>,
    ) {
        while let Some(unit) = t.queue.front() {
            let ready = match unit {
                Unit::Insert(_) => true,
                Unit::Delete(key, _) => t.recent.get(&key.hash).is_none_or(|at| now >= *at + hold),
                Unit::Migrate(..) => t.last_insert_at.is_none_or(|at| now >= at + hold),
            };
            if !ready {
                break;
            }
            let Some(unit) = t.queue.pop_front() else {
                break;
            };
            match unit {
                Unit::Insert(rows) => {
                    let mut out_rows = Vec::with_capacity(rows.len());
                    // Rows of one transaction are adjacent: count them off together.
                    let mut run: Option<(Lsn, usize)> = None;
                    for (hash, row, lsn) in rows {
                        match &mut run {
                            Some((l, n)) if *l == lsn => *n += 1,
                            _ => {
                                if let Some((l, n)) = run.replace((lsn, 1)) {
                                    Self::done_n(pending, l, n);
                                }
                            }
                        }
                        t.recent.insert(hash, now);
                        t.recent_order.push_back((now, hash));
                        out_rows.push(row);
                    }
                    if let Some((l, n)) = run {
                        Self::done_n(pending, l, n);
                    }
                    t.last_insert_at = Some(now);
                    out.push(Output::Insert {
                        table: table.clone(),
                        rows: out_rows,
                    });
                }
                Unit::Delete(key, lsn) => {
                    Self::done(pending, lsn);
                    out.push(Output::Delete {
                        table: table.clone(),
                        key: key.key,
                    });
                }
                Unit::Migrate(schema, lsn) => {
                    Self::done(pending, lsn);
                    out.push(Output::Migrate {
                        table: table.clone(),
                        schema,
                    });
                }
            }
        }
    }

    /// When [`poll`](Self::poll) may next have something to hand over: `now` if something
    /// is ready already, `None` if only more changes can make something ready.
    pub fn next_deadline(&self, now: Instant) -> Option<Instant> {
        let hold = self.cfg.delete_hold;
        let mut next: Option<Instant> = None;
        let mut consider = |at: Instant| next = Some(next.map_or(at, |n| n.min(at)).max(now));
        for t in self.tables.values() {
            match (t.queue.is_empty(), t.open.first_at) {
                (true, Some(_)) if t.open.rows >= self.cfg.rows_per_record => consider(now),
                (true, Some(f)) => consider(f + self.cfg.linger),
                _ => {}
            }
            match t.queue.front() {
                Some(Unit::Insert(_)) => consider(now),
                Some(Unit::Delete(key, _)) => {
                    consider(t.recent.get(&key.hash).map_or(now, |at| *at + hold))
                }
                Some(Unit::Migrate(..)) => consider(t.last_insert_at.map_or(now, |at| at + hold)),
                None => {}
            }
        }
        next
    }

    /// The position from which a restarted stream re-delivers every change not yet handed
    /// to the CLI (see the module docs).
    pub fn resume_lsn(&self) -> Lsn {
        match self.pending.keys().next() {
            Some(&lsn) => lsn,
            None => self.in_txn.unwrap_or(self.last_end),
        }
    }

    /// Nothing buffered and no transaction half received.
    pub fn is_idle(&self) -> bool {
        self.pending.is_empty() && self.in_txn.is_none()
    }

    /// Changes buffered (the tests' measure of coalescing).
    #[cfg(test)]
    pub fn buffered(&self) -> usize {
        self.pending.values().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Buf = ChangeBuffer<&'static str, i32, (i32, &'static str), u32>;
    type Out = Output<&'static str, i32, (i32, &'static str), u32>;

    const MS: Duration = Duration::from_millis(1);

    fn cfg(rows: usize) -> BatchConfig {
        BatchConfig {
            rows_per_record: rows,
            linger: 20 * MS,
            delete_hold: 1000 * MS,
        }
    }

    fn poll<T: Clone + Ord, K: Clone + Eq + Hash, R, S>(
        b: &mut ChangeBuffer<T, K, R, S>,
        now: Instant,
    ) -> Vec<Output<T, K, R, S>> {
        let mut out = Vec::new();
        b.poll(now, &mut out);
        out
    }

    fn ins(rows: &[(i32, &'static str)]) -> Out {
        Output::Insert {
            table: "t",
            rows: rows.to_vec(),
        }
    }

    fn del(key: i32) -> Out {
        Output::Delete { table: "t", key }
    }

    #[test]
    fn linger_then_one_record() {
        let t0 = Instant::now();
        let mut b = Buf::new(cfg(100), Lsn::new(5));
        b.begin(Lsn::new(10));
        b.upsert("t", 1, (1, "a"), t0);
        b.upsert("t", 2, (2, "b"), t0);
        b.commit(Lsn::new(11));
        assert_eq!(poll(&mut b, t0 + 19 * MS), vec![]);
        assert_eq!(b.next_deadline(t0), Some(t0 + 20 * MS));
        assert_eq!(b.resume_lsn(), 10);
        assert_eq!(poll(&mut b, t0 + 20 * MS), vec![ins(&[(1, "a"), (2, "b")])]);
        assert_eq!(b.resume_lsn(), 11);
        assert!(b.is_idle());
        assert_eq!(b.next_deadline(t0), None);
    }

    #[test]
    fn rows_per_record_closes_at_once() {
        let t0 = Instant::now();
        let mut b = Buf::new(cfg(2), Lsn::new(0));
        b.begin(Lsn::new(10));
        for k in 0..5 {
            b.upsert("t", k, (k, "x"), t0);
        }
        b.commit(Lsn::new(11));
        assert_eq!(
            poll(&mut b, t0),
            vec![ins(&[(0, "x"), (1, "x")]), ins(&[(2, "x"), (3, "x")])]
        );
        assert_eq!(b.resume_lsn(), 10, "row 4 still buffered");
        assert_eq!(poll(&mut b, t0 + 20 * MS), vec![ins(&[(4, "x")])]);
        assert_eq!(b.resume_lsn(), 11);
    }

    #[test]
    fn insert_then_delete_in_one_flush_sends_only_the_delete() {
        let t0 = Instant::now();
        let mut b = Buf::new(cfg(100), Lsn::new(0));
        b.begin(Lsn::new(10));
        b.upsert("t", 7, (7, "new"), t0);
        b.commit(Lsn::new(11));
        b.begin(Lsn::new(20));
        b.upsert("t", 7, (7, "upd"), t0);
        b.delete("t", 7, t0);
        b.commit(Lsn::new(21));
        assert_eq!(poll(&mut b, t0 + 20 * MS), vec![del(7)]);
        assert!(b.is_idle());
        assert_eq!(b.resume_lsn(), 21);
    }

    #[test]
    fn delete_then_insert_in_one_flush_sends_only_the_insert() {
        let t0 = Instant::now();
        let mut b = Buf::new(cfg(100), Lsn::new(0));
        b.begin(Lsn::new(10));
        b.delete("t", 7, t0);
        b.upsert("t", 7, (7, "again"), t0);
        b.commit(Lsn::new(11));
        assert_eq!(poll(&mut b, t0 + 20 * MS), vec![ins(&[(7, "again")])]);
    }

    #[test]
    fn delete_waits_for_the_hold_after_its_key_was_inserted() {
        let t0 = Instant::now();
        let mut b = Buf::new(cfg(100), Lsn::new(0));
        b.begin(Lsn::new(10));
        b.upsert("t", 7, (7, "a"), t0);
        b.commit(Lsn::new(11));
        assert_eq!(poll(&mut b, t0 + 20 * MS), vec![ins(&[(7, "a")])]);
        b.begin(Lsn::new(20));
        b.delete("t", 7, t0 + 30 * MS);
        b.delete("t", 8, t0 + 30 * MS);
        b.commit(Lsn::new(21));
        // Flush of 7 and 8 closes at 50 ms; 7 is held until 20 + 1000 ms, and 8 and a later
        // insert wait behind it (commit order per table).
        assert_eq!(poll(&mut b, t0 + 60 * MS), vec![]);
        b.begin(Lsn::new(30));
        b.upsert("t", 9, (9, "behind"), t0 + 70 * MS);
        b.commit(Lsn::new(31));
        assert_eq!(poll(&mut b, t0 + 90 * MS), vec![]);
        assert_eq!(b.resume_lsn(), 20);
        assert_eq!(b.next_deadline(t0), Some(t0 + 1020 * MS));
        assert_eq!(poll(&mut b, t0 + 1019 * MS), vec![]);
        assert_eq!(
            poll(&mut b, t0 + 1020 * MS),
            vec![del(7), del(8), ins(&[(9, "behind")])]
        );
        assert_eq!(b.resume_lsn(), 31);
    }

    #[test]
    fn delete_of_an_old_key_goes_at_once() {
        let t0 = Instant::now();
        let mut b = Buf::new(cfg(100), Lsn::new(0));
        b.begin(Lsn::new(10));
        b.upsert("t", 1, (1, "a"), t0);
        b.commit(Lsn::new(11));
        assert_eq!(poll(&mut b, t0 + 20 * MS), vec![ins(&[(1, "a")])]);
        b.begin(Lsn::new(20));
        b.delete("t", 2, t0 + 30 * MS);
        b.commit(Lsn::new(21));
        assert_eq!(poll(&mut b, t0 + 50 * MS), vec![del(2)]);
    }

    #[test]
    fn recent_keys_expire() {
        let t0 = Instant::now();
        let mut b = Buf::new(cfg(1), Lsn::new(0));
        b.begin(Lsn::new(10));
        b.upsert("t", 1, (1, "a"), t0);
        b.commit(Lsn::new(11));
        assert_eq!(poll(&mut b, t0), vec![ins(&[(1, "a")])]);
        b.begin(Lsn::new(20));
        b.delete("t", 1, t0 + 2000 * MS);
        b.commit(Lsn::new(21));
        assert_eq!(poll(&mut b, t0 + 2020 * MS), vec![del(1)]);
        assert!(b.tables["t"].recent.is_empty());
    }

    #[test]
    fn migrate_waits_and_splits_old_and_new_rows() {
        let t0 = Instant::now();
        let mut b = Buf::new(cfg(100), Lsn::new(0));
        b.begin(Lsn::new(10));
        b.upsert("t", 1, (1, "old"), t0);
        b.schema_change("t", 2, t0);
        b.upsert("t", 2, (2, "new"), t0);
        b.commit(Lsn::new(11));
        // The old row goes at once; the migrate waits for it to pass; the new row waits behind.
        assert_eq!(poll(&mut b, t0 + 20 * MS), vec![ins(&[(1, "old")])]);
        assert_eq!(poll(&mut b, t0 + 500 * MS), vec![]);
        assert_eq!(
            poll(&mut b, t0 + 1020 * MS),
            vec![
                Output::Migrate {
                    table: "t",
                    schema: 2
                },
                ins(&[(2, "new")])
            ]
        );
        assert!(b.is_idle());
    }

    #[test]
    fn migrate_without_earlier_inserts_goes_at_once() {
        let t0 = Instant::now();
        let mut b = Buf::new(cfg(100), Lsn::new(0));
        b.begin(Lsn::new(10));
        b.schema_change("t", 2, t0);
        b.commit(Lsn::new(11));
        assert_eq!(b.next_deadline(t0), Some(t0));
        assert_eq!(
            poll(&mut b, t0),
            vec![Output::Migrate {
                table: "t",
                schema: 2
            }]
        );
    }

    #[test]
    fn tables_are_independent_and_progress_is_the_oldest_pending_commit() {
        let t0 = Instant::now();
        let mut b: ChangeBuffer<&'static str, i32, i32, u32> =
            ChangeBuffer::new(cfg(100), Lsn::ZERO);
        b.begin(Lsn::new(10));
        b.upsert("a", 1, 1, t0);
        b.commit(Lsn::new(11));
        assert_eq!(poll(&mut b, t0 + 20 * MS).len(), 1);
        b.begin(Lsn::new(20));
        b.delete("a", 1, t0 + 30 * MS);
        b.commit(Lsn::new(21));
        b.begin(Lsn::new(30));
        b.upsert("b", 5, 5, t0 + 30 * MS);
        b.commit(Lsn::new(31));
        let out = poll(&mut b, t0 + 50 * MS);
        assert_eq!(
            out,
            vec![Output::Insert {
                table: "b",
                rows: vec![5]
            }]
        );
        // "a"'s delete (commit 20) is held: nothing from commit 20 on may be acknowledged.
        assert_eq!(b.resume_lsn(), 20);
        assert!(!b.is_idle());
        poll(&mut b, t0 + 1020 * MS);
        assert_eq!(b.resume_lsn(), 31);
    }

    #[test]
    fn in_txn_blocks_progress() {
        let t0 = Instant::now();
        let mut b = Buf::new(cfg(100), Lsn::new(5));
        assert!(b.is_idle());
        assert_eq!(b.resume_lsn(), 5);
        b.begin(Lsn::new(10));
        assert!(!b.is_idle());
        assert_eq!(b.resume_lsn(), 10);
        b.commit(Lsn::new(11));
        assert_eq!(b.resume_lsn(), 11);
        assert_eq!(poll(&mut b, t0), vec![]);
    }

    #[test]
    fn a_hot_key_stays_one_row_while_deletes_are_held() {
        let t0 = Instant::now();
        let mut b = Buf::new(cfg(100), Lsn::new(0));
        let mut lsn = 10;
        let mut sent = Vec::new();
        // Key 7 inserted and deleted every 10 ms for 5 s.
        for i in 0..500u32 {
            let now = t0 + 10 * i * MS;
            b.begin(Lsn::new(lsn));
            if i % 2 == 0 {
                b.upsert("t", 7, (7, "x"), now);
            } else {
                b.delete("t", 7, now);
            }
            b.commit(Lsn::new(lsn + 1));
            lsn += 10;
            assert!(b.buffered() <= 2, "step {i}: {} buffered", b.buffered());
            b.poll(now, &mut sent);
        }
        sent.extend(poll(&mut b, t0 + 7000 * MS));
        assert!(b.is_idle());
        assert_eq!(sent.last(), Some(&del(7)));
        assert!(sent.len() < 20, "{} messages", sent.len());
    }

    /// A randomized model check: many keys, random upserts/deletes over many transactions and
    /// polls; applying the outputs in order (with deletes allowed to overtake inserts handed off
    /// less than `delete_hold` earlier, as the CLI may) must give the source's final state.
    #[test]
    fn random_workloads_converge_even_when_deletes_overtake() {
        let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut rnd = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        for _round in 0..200 {
            let t0 = Instant::now();
            let mut now = t0;
            let mut b: ChangeBuffer<u8, u8, (u8, u32), ()> =
                ChangeBuffer::new(cfg(1 + rnd(5) as usize), Lsn::ZERO);
            let mut source: BTreeMap<(u8, u8), u32> = BTreeMap::new();
            // The destination: what arrived, with the time each insert was handed off. A delete
            // handed off at time d may be applied before inserts handed off after d - hold.
            type Msg = Output<u8, u8, (u8, u32), ()>;
            let mut log: Vec<(Instant, Msg)> = Vec::new();
            let mut lsn = 10;
            for step in 0..300u32 {
                b.begin(Lsn::new(lsn));
                for _ in 0..1 + rnd(3) {
                    let table = rnd(2) as u8;
                    let key = rnd(4) as u8;
                    if rnd(3) == 0 {
                        source.remove(&(table, key));
                        b.delete(table, key, now);
                    } else {
                        source.insert((table, key), step);
                        b.upsert(table, key, (key, step), now);
                    }
                }
                b.commit(Lsn::new(lsn + 1));
                lsn += 10;
                now += Duration::from_millis(rnd(30));
                let mut out = Vec::new();
                b.poll(now, &mut out);
                log.extend(out.into_iter().map(|o| (now, o)));
            }
            for _ in 0..5 {
                now += Duration::from_millis(1000);
                let mut out = Vec::new();
                b.poll(now, &mut out);
                log.extend(out.into_iter().map(|o| (now, o)));
            }
            assert!(
                b.is_idle(),
                "buffered {} pending {:?}",
                b.buffered(),
                b.pending
            );
            // Worst case for the destination: every delete jumps ahead of all inserts handed
            // off less than `hold` before it (they are still in the CLI's pipeline).
            let hold = Duration::from_millis(999);
            let mut applied: Vec<(Instant, usize)> = log
                .iter()
                .enumerate()
                .map(|(i, (at, o))| match o {
                    Output::Delete { .. } => (*at, i),
                    _ => (*at + hold, i),
                })
                .collect();
            applied.sort();
            let mut dest: BTreeMap<(u8, u8), u32> = BTreeMap::new();
            for (_, i) in applied {
                match &log[i].1 {
                    Output::Insert { table, rows } => {
                        for (k, v) in rows {
                            dest.insert((*table, *k), *v);
                        }
                    }
                    Output::Delete { table, key } => {
                        dest.remove(&(*table, *key));
                    }
                    Output::Migrate { .. } => {}
                }
            }
            assert_eq!(dest, source);
        }
    }
}
