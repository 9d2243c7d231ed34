"""Turns scripts/bench.sh's JSON lines into the Markdown table of docs/benchmarks.md.

    python3 benches/report.py --results R.jsonl --out OUT.md --command … --machine … --versions … --runs N --scale F --date D --load L
    python3 benches/report.py --results R.jsonl --check-smoke --readers "…" --datasets "…"

Standard library only (runs with the system python3).
"""

import argparse
import json
import statistics
import sys
from collections import defaultdict

ORDER = ["floor", "psql", "adbc", "connectorx", "psycopg", "plugin1", "plugin", "cli"]
LABEL = {
    "floor": "server only: `COPY t TO '/dev/null' (FORMAT binary)` (no client)",
    "psql": "`psql \\copy (select * from t) to '/dev/null' with (format binary)`",
    "adbc": "ADBC `fetch_record_batch`, streamed, discarded",
    "connectorx": "connectorx `read_sql(return_type=\"arrow\")`",
    "psycopg": "psycopg 3 `COPY … (FORMAT BINARY)`, discarded",
    "plugin1": "**plugin**, harness, `concurrency: 1`",
    "plugin": "**plugin**, harness, default spec (`concurrency: 4`, ctid ranges)",
    "cli": "plugin → real CLI → test destination (`state: false`), 1 run",
}
TABLE_ORDER = ["mixed9", "lineitem", "narrow", "narrow_small", "wide"]


def load(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt(v, digits=2):
    return "–" if v is None else f"{v:.{digits}f}"


def by_table(results):
    groups = defaultdict(lambda: defaultdict(list))
    for r in results:
        if r["dataset"] != "many":
            groups[r["table"]][r["reader"]].append(r)
    return groups


def summarise(results):
    """{table: {reader: {wall, cpu, rss_mib, ttfr, rows, runs, min, max}}}"""
    out = {}
    for table, readers in by_table(results).items():
        rows = max((r.get("rows") or 0 for rs in readers.values() for r in rs if r["reader"] != "cli"), default=0)
        out[table] = {"rows": rows}
        for reader, rs in readers.items():
            walls = [r.get("wall_s") for r in rs]
            rss = med([r.get("max_rss_kib") for r in rs])
            out[table][reader] = {
                "runs": len(rs),
                "wall": med(walls),
                "min": min(w for w in walls if w is not None) if any(w is not None for w in walls) else None,
                "max": max(w for w in walls if w is not None) if any(w is not None for w in walls) else None,
                "cpu": med([r.get("cpu_s") for r in rs]),
                "rss_mib": None if rss is None else rss / 1024,
                "ttfr": med([r.get("first_record_s") for r in rs]),
                "harness_cpu": med([r.get("harness_cpu_s") for r in rs]),
                "rows": med([r.get("rows") for r in rs]),
                "bytes": med([r.get("record_bytes") for r in rs]),
                "errors": sum(len(r.get("errors") or []) for r in rs),
            }
    return out


def ratio(a, b):
    return None if a is None or b is None or b == 0 else a / b


def report(args):
    results = load(args.results)
    s = summarise(results)
    lines = [
        "# Benchmarks",
        "",
        "Produced by `scripts/bench.sh` (see the README's *Benchmarks* section); every figure below comes",
        "from the one run described here. Do not edit by hand: re-run the command.",
        "",
        f"- **Command:** `{args.command}` ({args.runs} interleaved run(s) per reader, scale {args.scale})",
        f"- **Date:** {args.date}; {args.load} at the end of the run",
        f"- **Machine:** {args.machine}",
        f"- **Versions:** {args.versions}",
        "- **Setup:** PostgreSQL started by the script (`shared_buffers` 6 GB, cache warmed with `pg_prewarm`,",
        "  `max_parallel_workers_per_gather = 0`, `jit = off`), every client on the same host over TCP 127.0.0.1.",
        "- **Wall** is the median; psql and the server-only COPY are timed around the `psql` process (start-up",
        "  included, ~10 ms); the Python peers from connect to the last row (interpreter start-up and imports",
        "  excluded); the plugin from Init to the end of the Sync stream (Init includes connecting and the",
        "  catalog load; process start and GetVersions/GetName excluded). **CPU** is user+sys of the client",
        "  process (for the Python peers including interpreter start-up, ~0.3–0.5 s), from `wait4`; for the",
        "  plugin, of the plugin process only (the harness's own decoding is not counted). **RSS** is the",
        "  client process's peak (`ru_maxrss`). The server backend's CPU is not measured directly: the",
        "  server-only COPY is CPU-bound on a warm cache, so its wall time stands for it.",
        "",
    ]
    if args.note:
        lines += [f"**Note on this run:** {args.note}", ""]
    for table in sorted(s, key=lambda t: TABLE_ORDER.index(t) if t in TABLE_ORDER else 99):
        t = s[table]
        rows = t["rows"]
        psql = t.get("psql", {}).get("wall")
        floor = t.get("floor", {}).get("wall")
        lines += [
            f"## `{table}` ({rows:,} rows)",
            "",
            "| reader | wall (median) | min–max | × psql | × floor | M rows/s | CPU s | CPU ns/row | peak RSS MiB | first record s |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for reader in ORDER:
            if reader not in t:
                continue
            r = t[reader]
            nsrow = None if not rows or r["cpu"] is None else r["cpu"] / rows * 1e9
            rate = None if not rows or not r["wall"] else rows / r["wall"] / 1e6
            if reader == "floor":
                # The psql process only sends the statement: its CPU and RSS say nothing.
                r = dict(r, cpu=None, rss_mib=None)
            extra = ""
            if r["harness_cpu"] is not None:
                extra = f" (harness CPU {r['harness_cpu']:.2f} s)"
            if r["errors"]:
                extra = f" ({r['errors']} error messages)"
            if r["rows"] is not None and rows and r["rows"] != rows:
                extra += f" (**{int(r['rows']):,} rows**)"
            lines.append(
                f"| {LABEL[reader]}{extra} | {fmt(r['wall'])} s | {fmt(r['min'])}–{fmt(r['max'])} | "
                f"{fmt(ratio(r['wall'], psql))} | {fmt(ratio(r['wall'], floor))} | {fmt(rate)} | {fmt(r['cpu'])} | "
                f"{fmt(nsrow, 0)} | {fmt(r['rss_mib'], 1)} | {fmt(r['ttfr'], 3)} |"
            )
        lines.append("")

    many = [r for r in results if r["dataset"] == "many"]
    if many:
        gt = [r for r in many if r["reader"] == "plugin-tables"]
        sy = [r for r in many if r["reader"] == "plugin"]
        lines += ["## `many` (1,000 tables × 100 rows at scale 1, database `bench_many`)", ""]
        if gt:
            lines.append(
                f"- Init + GetTables: median {fmt(med([r['init_s'] + (r.get('get_tables_s') or 0) for r in gt]), 3)} s "
                f"(Init {fmt(med([r['init_s'] for r in gt]), 3)} s, GetTables {fmt(med([r.get('get_tables_s') for r in gt]), 3)} s, "
                f"{gt[0].get('tables')} tables, {len(gt)} runs)"
            )
        for r in sy:
            lines.append(
                f"- Full sync, default spec, 1 run: Init {fmt(r['init_s'], 3)} s + Sync {fmt(r.get('sync_s'), 3)} s, "
                f"{r.get('rows'):,} rows in {r.get('inserts')} records, {r.get('migrate_tables')} tables migrated, "
                f"plugin CPU {fmt(r.get('cpu_s'))} s, peak RSS {fmt((r.get('max_rss_kib') or 0) / 1024, 1)} MiB"
            )
        lines.append("")

    lines += goals(s, many)
    lines += [
        "## Not measured yet",
        "",
        "- CDC throughput (changes/s from a pgbench-style workload) and commit → emit latency p50/p99 at",
        "  1,000 transactions/s: TODO (the harness already speaks Sync; what is missing is a",
        "  pgbench-style writer and commit → emit timestamps).",
        "",
        f"Raw measurements (one JSON object per run): `{args.results.split('/')[-1]}` beside this file when",
        "the script wrote it there.",
        "",
    ]
    with open(args.out, "w") as f:
        f.write("\n".join(lines))


def goals(s, many):
    lines = ["## Goals of issue 6, from the figures above", "", "| goal | measured | met |", "|---|---|---|"]

    def row(goal, measured, ok):
        lines.append(f"| {goal} | {measured} | {'–' if ok is None else ('yes' if ok else '**no**')} |")

    for table in ["mixed9", "lineitem"]:
        t = s.get(table)
        if not t:
            continue
        psql = t.get("psql", {}).get("wall")
        if "plugin1" in t:
            r = ratio(t["plugin1"]["wall"], psql)
            row(f"`{table}` single stream (`concurrency: 1`) wall ≤ 1.05 × psql", f"{fmt(r)} ×", None if r is None else r <= 1.05)
        if "plugin1" in t and "adbc" in t:
            r = ratio(t["plugin1"]["wall"], t["adbc"]["wall"])
            row(f"`{table}` faster than ADBC (concurrency 1)", f"{fmt(r)} × ADBC", None if r is None else r < 1)
        if "plugin" in t:
            r = ratio(t["plugin"]["wall"], psql)
            row(f"`{table}` parallel (default spec: ctid ranges on 4 connections) wall ≤ 0.80 × psql", f"{fmt(r)} ×", None if r is None else r <= 0.80)
        if "plugin1" in t and "floor" in t:
            r = ratio(t["plugin1"]["cpu"], t["floor"]["wall"])
            row(f"`{table}` plugin CPU/row ≤ 0.35 × backend's (floor wall as the backend CPU)", f"{fmt(r)} ×", None if r is None else r <= 0.35)
    big, small = s.get("narrow", {}).get("plugin1"), s.get("narrow_small", {}).get("plugin1")
    if big and small and big["rss_mib"] and small["rss_mib"]:
        r = big["rss_mib"] / small["rss_mib"]
        row("peak RSS `narrow` 10 M vs 1 M rows within 10 % (concurrency 1)", f"{fmt(big['rss_mib'], 1)} vs {fmt(small['rss_mib'], 1)} MiB ({fmt(r)} ×)", abs(r - 1) <= 0.10)
    gt = [r for r in many if r["reader"] == "plugin-tables"]
    if gt:
        v = med([r["init_s"] + (r.get("get_tables_s") or 0) for r in gt])
        row("`many` Init + GetTables ≤ 1 s", f"{fmt(v, 3)} s", v <= 1.0)
    lines.append("")
    return lines


def check_smoke(args):
    results = load(args.results)
    s = summarise(results)
    problems = []
    tables = {"mixed9": ["mixed9"], "lineitem": ["lineitem"], "narrow": ["narrow", "narrow_small"], "wide": ["wide"]}
    for ds in args.datasets.split():
        for table in tables.get(ds, []):
            t = s.get(table, {})
            for reader in args.readers.split():
                if reader not in t:
                    problems.append(f"{table}: no figure from {reader}")
            want = t.get("adbc", {}).get("rows") or t.get("connectorx", {}).get("rows")
            for reader in ["plugin1", "plugin", "cli"]:
                r = t.get(reader)
                if r is None:
                    continue
                if not r["rows"]:
                    problems.append(f"{table}: {reader} delivered no rows")
                elif want and r["rows"] != want:
                    problems.append(f"{table}: {reader} delivered {r['rows']} rows, the peers {want}")
                if r["errors"]:
                    problems.append(f"{table}: {reader} sent {r['errors']} error messages")
    if "many" in args.datasets.split() and "plugin" in args.readers.split():
        if not any(r["reader"] == "plugin-tables" for r in results):
            problems.append("many: no Init + GetTables figure")
    for p in problems:
        print(f"bench smoke: {p}", file=sys.stderr)
    print(f"bench smoke: {'FAIL' if problems else 'PASS'} ({len(results)} measurements)")
    return 1 if problems else 0


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--results", required=True)
    p.add_argument("--out")
    p.add_argument("--command", default="")
    p.add_argument("--machine", default="")
    p.add_argument("--versions", default="")
    p.add_argument("--runs", default="")
    p.add_argument("--scale", default="")
    p.add_argument("--date", default="")
    p.add_argument("--load", default="")
    p.add_argument("--note", default="")
    p.add_argument("--check-smoke", action="store_true")
    p.add_argument("--readers", default="")
    p.add_argument("--datasets", default="")
    args = p.parse_args()
    if args.check_smoke:
        sys.exit(check_smoke(args))
    report(args)


if __name__ == "__main__":
    main()
