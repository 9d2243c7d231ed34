"""Reads back what the test destination recorded; prints JSON on stdout.

  inspect.py summary DIR
      {"tables": {T: {"inserts", "rows", "batch_rows", "migrates", "deletes", "delete_stale"}},
       "order": [message types], "messages": n, "lifecycle": [events]}
  inspect.py rows DIR TABLE [--with-cq] [--raw]
      every received row of TABLE in arrival order (from the Arrow files), canonical JSON;
      the `_cq_*` columns only with --with-cq; with --raw, date32/date64, time32/time64 and
      timestamp values are their Arrow storage integers instead (days, or counts of the
      column's unit since 1970-01-01 / midnight), so out-of-calendar values compare as numbers
  inspect.py state DIR TABLE [--with-cq]
      the applied state of TABLE sorted by primary key
  inspect.py schema DIR TABLE
      the last migrate_table entry of TABLE (fields, metadata), or null
  inspect.py log DIR
      every log.jsonl entry
  inspect.py pylist DIR
      pyarrow's own to_pylist() of every stored record of every table (what a pyarrow-based
      destination does): {"batches": n, "rows": n, "errors": ["file: error", ...]}

Canonical JSON is documented in cqdest_values.py. Exit status 2 on bad usage.
"""

import os
import sys

# This file shadows the standard library's `inspect` (imported by pyarrow): search this
# directory only after the standard library.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE] + [_HERE]

import json  # noqa: E402

import cqdest_store as store  # noqa: E402
import cqdest_values as cv  # noqa: E402


def summary(directory):
    tables = {}
    order = []

    def entry(name):
        return tables.setdefault(
            name,
            {
                "inserts": 0,
                "rows": 0,
                "batch_rows": [],
                "migrates": 0,
                "deletes": 0,
                "delete_stale": 0,
            },
        )

    log = store.read_log(directory)
    for e in log:
        kind = e.get("type")
        order.append(kind)
        if kind == "insert":
            t = entry(e["table"])
            t["inserts"] += 1
            t["rows"] += e["rows"]
            t["batch_rows"].append(e["rows"])
        elif kind == "migrate_table":
            entry(e["table"])["migrates"] += 1
        elif kind == "delete_record":
            entry(e["table"])["deletes"] += 1
        elif kind == "delete_stale":
            entry(e["table"])["delete_stale"] += 1
    lifecycle = []
    path = os.path.join(directory, "lifecycle.jsonl")
    if os.path.exists(path):
        with open(path, "rb") as f:
            for line in f:
                try:
                    lifecycle.append(json.loads(line)["event"])
                except (ValueError, KeyError):
                    continue
    return {"tables": tables, "order": order, "messages": len(log), "lifecycle": lifecycle}


def rows(directory, table, with_cq=False):
    cache = {}
    out = []
    for e in store.read_log(directory):
        if e.get("type") != "insert" or e.get("table") != table:
            continue
        rel = e["file"]
        if rel not in cache:
            cache[rel], _ = store.read_batches(os.path.join(directory, rel))
        batches = cache[rel]
        if e["batch"] >= len(batches):
            raise SystemExit("%s: batch %d of seq %d is missing" % (rel, e["batch"], e["seq"]))
        for row in cv.batch_rows(batches[e["batch"]]):
            out.append(row if with_cq else cv.strip_cq(row))
    return out


def state(directory, table, with_cq=False):
    result = store.state_rows(directory, table)
    return result if with_cq else [cv.strip_cq(r) for r in result]


def schema(directory, table):
    last = None
    for e in store.read_log(directory):
        if e.get("type") == "migrate_table" and e.get("table") == table:
            last = e
    return last


def pylist(directory):
    """Every stored batch through pyarrow's to_pylist(), which turns dates, timestamps and decimals
    into Python objects and fails on values they cannot hold."""
    tables_dir = os.path.join(directory, "tables")
    result = {"batches": 0, "rows": 0, "errors": []}
    if not os.path.isdir(tables_dir):
        return result
    for name in sorted(os.listdir(tables_dir)):
        batches, _ = store.read_batches(os.path.join(tables_dir, name))
        for i, batch in enumerate(batches):
            try:
                result["rows"] += len(batch.to_pylist())
                result["batches"] += 1
            except Exception as e:  # noqa: BLE001 - every failure is the finding
                result["errors"].append("%s batch %d: %s: %s" % (name, i, type(e).__name__, e))
    return result


def use_raw_calendar_values():
    """--raw: calendar types render as their storage integers (see the docstring)."""
    cv.date_from_days = lambda days, label, raw: raw
    cv.time_of_day = lambda raw, unit, label: raw
    cv.timestamp_value = lambda raw, unit, tz, label: raw


def main(argv):
    with_cq = "--with-cq" in argv
    if "--raw" in argv:
        use_raw_calendar_values()
    args = [a for a in argv if a not in ("--with-cq", "--raw")]
    if len(args) == 2 and args[0] == "summary":
        result = summary(args[1])
    elif len(args) == 2 and args[0] == "pylist":
        result = pylist(args[1])
    elif len(args) == 2 and args[0] == "log":
        result = store.read_log(args[1])
    elif len(args) == 3 and args[0] == "rows":
        result = rows(args[1], args[2], with_cq)
    elif len(args) == 3 and args[0] == "state":
        result = state(args[1], args[2], with_cq)
    elif len(args) == 3 and args[0] == "schema":
        result = schema(args[1], args[2])
    else:
        sys.stderr.write(__doc__)
        return 2
    json.dump(result, sys.stdout, ensure_ascii=False)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
