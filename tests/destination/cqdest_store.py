"""What the test destination keeps on disk, and how it applies messages.

Layout of the destination directory (spec `dir`):
- `log.jsonl`: one JSON line per received Write message, in arrival order (`seq` counts from 1 and
  continues across processes writing to the same directory).
- `tables/<table>.<gen>.arrows`: Arrow IPC stream files, one per table and schema generation, each
  insert's record batch appended exactly as received. A generation starts at the first insert after
  a migrate whose schema differs from the previous one, and in every new process or Write stream.
- `state.sqlite`: the applied state, one row per destination row (canonical JSON, see
  cqdest_values), keyed by table + canonical JSON of the primary-key values; committed per message.
- `lifecycle.jsonl`: init / write stream end / close / shutdown events (not messages).

Every message is written and flushed before the next one is read (Arrow file, then state commit,
then the log line), so a SIGKILL at any moment leaves readable files: at worst the last Arrow batch
or state change has no log line yet. Readers treat `log.jsonl` as the authority.
"""

import json
import os
import sqlite3
import threading
import time

import pyarrow as pa

import cqdest_values as cv

_SAFE = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")


def file_stem(table):
    """A file-name-safe form of a table name (other bytes as %XX)."""
    return "".join(c if c in _SAFE else "".join("%%%02X" % b for b in c.encode()) for c in table)


def read_log(directory):
    """All complete, valid lines of log.jsonl (a torn last line is skipped)."""
    path = os.path.join(directory, "log.jsonl")
    entries = []
    if not os.path.exists(path):
        return entries
    with open(path, "rb") as f:
        for line in f:
            if not line.endswith(b"\n"):
                break
            try:
                entries.append(json.loads(line))
            except ValueError:
                continue
    return entries


def schema_table_name(schema):
    md = schema.metadata or {}
    name = md.get(b"cq:table_name")
    return name.decode("utf-8", "replace") if name is not None else None


def _schema_fingerprint(schema):
    return schema.serialize().to_pybytes()


class Store:
    """Records and applies the messages of one destination directory. Thread-safe."""

    def __init__(self, directory, keep_state=True):
        self.dir = os.path.abspath(directory)
        self.keep_state = keep_state
        self.lock = threading.RLock()
        os.makedirs(os.path.join(self.dir, "tables"), exist_ok=True)
        self.seq = 0
        self.gens = {}
        for entry in read_log(self.dir):
            self.seq = max(self.seq, entry.get("seq", 0))
        for name in os.listdir(os.path.join(self.dir, "tables")):
            parts = name.rsplit(".", 2)
            if len(parts) == 3 and parts[2] == "arrows" and parts[1].isdigit():
                self.gens[parts[0]] = max(self.gens.get(parts[0], 0), int(parts[1]))
        self.log = open(os.path.join(self.dir, "log.jsonl"), "ab")
        if self.log.tell() > 0 and not _ends_with_newline(self.log.name):
            self.log.write(b"\n")  # a torn line from a killed process stays on its own line
            self.log.flush()
        self.lifecycle = open(os.path.join(self.dir, "lifecycle.jsonl"), "ab")
        # open generations: table -> dict(file, writer, fingerprint, gen, batches)
        self.open = {}
        # last migrated schema per table (fingerprint), decides when a new generation starts
        self.migrated = {}
        self.db = sqlite3.connect(
            os.path.join(self.dir, "state.sqlite"), isolation_level=None, check_same_thread=False
        )
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS rows (id INTEGER PRIMARY KEY AUTOINCREMENT,"
            " tbl TEXT NOT NULL, pk TEXT, row TEXT NOT NULL,"
            " source_name TEXT, sync_time_us INTEGER)"
        )
        self.db.execute("CREATE UNIQUE INDEX IF NOT EXISTS rows_pk ON rows (tbl, pk)")
        self.closed = False

    # -- bookkeeping -------------------------------------------------------------------------

    def event(self, kind, **fields):
        with self.lock:
            if self.lifecycle.closed:
                return
            fields.update({"event": kind, "time": time.time()})
            self.lifecycle.write((json.dumps(fields) + "\n").encode())
            self.lifecycle.flush()

    def _check_open(self):
        if self.closed:
            raise RuntimeError("destination store is closed")

    def _log(self, entry):
        self.seq += 1
        line = {"seq": self.seq}
        line.update(entry)
        self.log.write((json.dumps(line, ensure_ascii=False) + "\n").encode())
        self.log.flush()
        return line

    def _close_generation(self, table):
        gen = self.open.pop(table, None)
        if gen is not None:
            gen["writer"].close()  # writes the end-of-stream marker
            gen["file"].close()

    def close_files(self):
        """Ends every open Arrow stream cleanly; later inserts start new generations."""
        with self.lock:
            for table in list(self.open):
                self._close_generation(table)

    def close(self):
        with self.lock:
            if self.closed:
                return
            self.close_files()
            self.closed = True
            self.log.close()
            self.lifecycle.close()
            self.db.close()

    # -- messages ----------------------------------------------------------------------------

    def migrate(self, schema, migrate_force=False):
        with self.lock:
            self._check_open()
            table = schema_table_name(schema)
            fp = _schema_fingerprint(schema)
            if self.migrated.get(table) != fp:
                self._close_generation(table)
                self.migrated[table] = fp
            return self._log(
                {
                    "type": "migrate_table",
                    "table": table,
                    "fields": [cv.describe_field(f) for f in schema],
                    "metadata": cv.decode_metadata(schema.metadata),
                    "migrate_force": bool(migrate_force),
                }
            )

    def insert(self, batch):
        with self.lock:
            self._check_open()
            schema = batch.schema
            table = schema_table_name(schema)
            key = table if table is not None else ""
            fp = _schema_fingerprint(schema)
            gen = self.open.get(key)
            if gen is not None and gen["fingerprint"] != fp:
                self._close_generation(key)
                gen = None
            if gen is None:
                stem = file_stem(key)
                number = self.gens.get(stem, 0) + 1
                self.gens[stem] = number
                rel = "tables/%s.%d.arrows" % (stem, number)
                f = open(os.path.join(self.dir, rel), "wb")
                writer = pa.ipc.new_stream(f, schema)
                f.flush()
                gen = {"file": f, "writer": writer, "fingerprint": fp, "rel": rel, "batches": 0}
                self.open[key] = gen
            gen["writer"].write_batch(batch)
            gen["file"].flush()
            batch_index = gen["batches"]
            gen["batches"] += 1
            if self.keep_state:
                self._apply_insert(key, batch)
            return self._log(
                {
                    "type": "insert",
                    "table": table,
                    "rows": batch.num_rows,
                    "file": gen["rel"],
                    "batch": batch_index,
                }
            )

    def delete_record(self, table, groups, relations=()):
        """groups: [{"grouping": "AND"|"OR", "predicates": [{"column", "operator", "values"}]}]."""
        with self.lock:
            self._check_open()
            deleted = self._apply_delete_record(table, groups) if self.keep_state else None
            return self._log(
                {
                    "type": "delete_record",
                    "table": table,
                    "where": groups,
                    "table_relations": list(relations),
                    "deleted": deleted,
                }
            )

    def delete_stale(self, table, source_name, sync_time_us):
        with self.lock:
            self._check_open()
            deleted = None
            if self.keep_state:
                cur = self.db.execute(
                    "DELETE FROM rows WHERE tbl = ? AND source_name = ? AND sync_time_us < ?",
                    (table, source_name, sync_time_us),
                )
                deleted = cur.rowcount
            return self._log(
                {
                    "type": "delete_stale",
                    "table": table,
                    "source_name": source_name,
                    "sync_time": cv.timestamp_value(sync_time_us, "us", "UTC", "timestamp[us]"),
                    "deleted": deleted,
                }
            )

    def other(self, kind, **fields):
        with self.lock:
            self._check_open()
            entry = {"type": kind}
            entry.update(fields)
            return self._log(entry)

    # -- state -------------------------------------------------------------------------------

    def read_table(self, schema):
        """Every row received for the schema's table, in arrival order, as record batches of that
        schema (columns by name; a column the stored batch lacks is null). Like an append-mode
        destination: a key written twice is returned twice, and readers keep the latest version."""
        table = schema_table_name(schema)
        stem = file_stem(table if table is not None else "")
        with self.lock:
            last = self.gens.get(stem, 0)
            for gen in range(1, last + 1):
                path = os.path.join(self.dir, "tables", "%s.%d.arrows" % (stem, gen))
                if not os.path.exists(path):
                    continue
                batches, _ = read_batches(path)
                for batch in batches:
                    yield _project(batch, schema)

    def _apply_insert(self, table, batch):
        schema = batch.schema
        rows = cv.batch_rows(batch)
        pk_cols = [f.name for f in schema if cv.is_pk(f)]
        names = schema.names
        sync_raw = None
        if "_cq_sync_time" in names:
            f = schema.field("_cq_sync_time")
            if pa.types.is_timestamp(f.type):
                unit_ns = cv._UNIT_NS[f.type.unit]
                sync_raw = [
                    None if v is None else v * unit_ns // 1000
                    for v in batch.column(names.index("_cq_sync_time")).view(pa.int64()).to_pylist()
                ]
        params = []
        for i, row in enumerate(rows):
            pk = cv.dumps([row[c] for c in pk_cols]) if pk_cols else None
            source = row.get("_cq_source_name")
            params.append((table, pk, cv.dumps(row), source, sync_raw[i] if sync_raw else None))
        self.db.execute("BEGIN")
        try:
            self.db.executemany(
                "INSERT INTO rows (tbl, pk, row, source_name, sync_time_us) VALUES (?,?,?,?,?)"
                " ON CONFLICT (tbl, pk) DO UPDATE SET row = excluded.row,"
                " source_name = excluded.source_name, sync_time_us = excluded.sync_time_us",
                params,
            )
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise

    def _apply_delete_record(self, table, groups):
        """Deletes like the official SQL destinations: groups are ANDed; the predicates of a
        group are joined by its grouping type; a predicate is `column = <first value>` (NULL
        never matches); no groups deletes every row of the table."""
        active = [g for g in groups if g["predicates"]]
        doomed = []
        for rid, text in self.db.execute("SELECT id, row FROM rows WHERE tbl = ?", (table,)):
            row = json.loads(text)
            if all(_group_matches(g, row) for g in active):
                doomed.append((rid,))
        self.db.execute("BEGIN")
        self.db.executemany("DELETE FROM rows WHERE id = ?", doomed)
        self.db.execute("COMMIT")
        return len(doomed)


def _project(batch, schema):
    columns = []
    for field in schema:
        i = batch.schema.get_field_index(field.name)
        if i < 0:
            columns.append(pa.nulls(batch.num_rows, type=field.type))
        else:
            columns.append(batch.column(i).cast(field.type))
    return pa.RecordBatch.from_arrays(columns, schema=schema)


def _predicate_matches(pred, row):
    values = pred.get("values") or []
    if not values or values[0] is None or pred["column"] not in row:
        return False
    return cv.dumps(row[pred["column"]]) == cv.dumps(values[0])


def _group_matches(group, row):
    results = [_predicate_matches(p, row) for p in group["predicates"]]
    return any(results) if group.get("grouping") == "OR" else all(results)


def _ends_with_newline(path):
    with open(path, "rb") as f:
        f.seek(-1, os.SEEK_END)
        return f.read(1) == b"\n"


def state_rows(directory, table):
    """The applied state of a table: rows sorted by primary key (insertion order without one)."""
    path = os.path.join(directory, "state.sqlite")
    if not os.path.exists(path):
        return []
    db = sqlite3.connect("file:%s?mode=ro" % path, uri=True)
    try:
        rows = db.execute("SELECT pk, row FROM rows WHERE tbl = ? ORDER BY id", (table,)).fetchall()
    finally:
        db.close()
    keyed = [(json.loads(pk) if pk is not None else None, json.loads(r)) for pk, r in rows]
    if any(pk is not None for pk, _ in keyed):
        keyed.sort(key=lambda kr: cv.sort_key(kr[0]))
    return [r for _, r in keyed]


def read_batches(path):
    """The record batches of an Arrow stream file, tolerating a missing end-of-stream marker or a
    torn last message. Returns (batches, complete)."""
    batches = []
    try:
        with pa.OSFile(path, "rb") as f:
            reader = pa.ipc.open_stream(f)
            while True:
                try:
                    batches.append(reader.read_next_batch())
                except StopIteration:
                    return batches, True
    except (pa.ArrowInvalid, OSError, EOFError):
        return batches, False
