"""Peer readers for scripts/bench.sh: read one table, discard it, print one JSON line.

    python benches/peers.py adbc|connectorx|psycopg URL TABLE

`wall_s` runs from connect to the last row (the interpreter's start-up and imports excluded);
scripts/bench.sh measures the process's CPU and peak RSS from outside (sync_bench exec).
"""

import json
import sys
import time


def adbc(url, table):
    import adbc_driver_postgresql.dbapi as dbapi

    t = time.perf_counter()
    rows = batches = 0
    with dbapi.connect(url) as conn, conn.cursor() as cur:
        cur.execute(f"SELECT * FROM {table}")
        # Streamed: one RecordBatch at a time (16 MiB batches by default), never the whole table.
        for batch in cur.fetch_record_batch():
            rows += batch.num_rows
            batches += 1
    return t, {"rows": rows, "batches": batches}


def connectorx(url, table):
    import connectorx as cx

    t = time.perf_counter()
    # connectorx materialises the whole result as one Arrow table (it has no streaming reader).
    tbl = cx.read_sql(url, f"SELECT * FROM {table}", return_type="arrow")
    return t, {"rows": tbl.num_rows}


def psycopg_copy(url, table):
    import psycopg

    t = time.perf_counter()
    n = 0
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        with cur.copy(f"COPY (SELECT * FROM {table}) TO STDOUT (FORMAT BINARY)") as copy:
            for data in copy:
                n += len(data)
    return t, {"bytes": n}


READERS = {"adbc": adbc, "connectorx": connectorx, "psycopg": psycopg_copy}


def main():
    if len(sys.argv) != 4 or sys.argv[1] not in READERS:
        sys.exit(__doc__)
    start, out = READERS[sys.argv[1]](sys.argv[2], sys.argv[3])
    out["wall_s"] = time.perf_counter() - start
    print(json.dumps(out))


if __name__ == "__main__":
    main()
