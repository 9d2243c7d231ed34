"""Turns scripts/bench.sh's JSON lines into the Markdown table of docs/benchmarks.md.

    python3 benches/report.py --results R.jsonl --out OUT.md --command … --machine … --versions … --runs N --scale F --date D --load L
    python3 benches/report.py --results R.jsonl --out docs/benchmarks.md --cdc-section-only --command … (replace only the CDC section)
    python3 benches/report.py --results R.jsonl --check-smoke --readers "…" --datasets "…"
    python3 benches/report.py --results R.jsonl --splice-peers PEERS.md --out docs/benchmarks.md (the per-table
        sections of a run with --peer become the peers section of docs/benchmarks.md)

Standard library only (runs with the system python3).
"""

import argparse
import json
import os
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

# Every threshold the goals tables check, in one place. Ratios are plugin / reference.
GOALS = {
    "single_stream_vs_psql": 1.05,  # `concurrency: 1` wall, at most this × psql's
    "single_stream_vs_adbc": 1.0,  # `concurrency: 1` wall, below this × ADBC's
    "parallel_vs_psql": 0.80,  # default spec wall, at most this × psql's
    "cpu_vs_backend": 0.35,  # plugin CPU, at most this × the backend's (floor wall)
    "rss_10x_rows_spread": 0.10,  # peak RSS of `narrow` 10 M vs 1 M rows, within this fraction
    "rss_base_mib": 64,  # peak RSS bound: this many MiB …
    "rss_per_record_in_flight": 3,  # … plus this × the records in flight
    "many_init_get_tables_s": 1.0,  # `many`: Init + GetTables, at most this many seconds
    "cdc_changes_per_s": 250_000,  # CDC drain: at least this many row changes/s
    "cdc_latency_p50_ms": 50,  # CDC commit → receive latency p50, at most
    "cdc_latency_p99_ms": 250,  # CDC commit → receive latency p99, at most
    "cdc_changes_lost": 0,  # CDC: at most this many changes lost
}


def is_peer(reader):
    """Readers of other plugin binaries (`scripts/bench.sh --peer NAME=PATH`): `peer:NAME` through
    the harness, `cli:NAME` through the real CLI."""
    return reader.startswith("peer:") or reader.startswith("cli:")


def readers_in_order(t):
    """The built-in readers in their order, each followed by the peers of its kind."""
    out = []
    for reader in ORDER:
        if reader == "cli":
            out += sorted(r for r in t if r.startswith("peer:"))
        if reader in t:
            out.append(reader)
    out += sorted(r for r in t if r.startswith("cli:"))
    return out


def label(reader):
    if reader.startswith("peer:"):
        return f"peer `{reader[5:]}`, harness"
    if reader.startswith("cli:"):
        return f"peer `{reader[4:]}` → real CLI → test destination (`state: false`), 1 run"
    return LABEL[reader]


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
        if r["dataset"] not in ("many", "cdc", "incremental"):
            groups[r["table"]][r["reader"]].append(r)
    return groups


def summarise(results):
    """{table: {reader: {wall, cpu, rss_mib, ttfr, rows, runs, min, max}}}"""
    out = {}
    for table, readers in by_table(results).items():
        rows = max(
            (r.get("rows") or 0 for rs in readers.values() for r in rs if r["reader"] != "cli" and not is_peer(r["reader"])),
            default=0,
        )
        out[table] = {"rows": rows}
        for reader, rs in readers.items():
            walls = [r.get("wall_s") for r in rs]
            rss = med([r.get("max_rss_kib") for r in rs])
            failures = [r["failed"] for r in rs if r.get("failed")]
            rs = [r for r in rs if not r.get("failed")]
            out[table][reader] = {
                "failed": failures,
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
                "batches": med([r.get("batches") for r in rs]),
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
        for reader in readers_in_order(t):
            r = t[reader]
            if r["failed"] and not r["runs"]:
                lines.append(f"| {label(reader)} | **failed** ({len(r['failed'])} of {len(r['failed'])} runs): {failure(r['failed'][0])} | | | | | | | | |")
                continue
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
            if r["failed"]:
                extra += f" (**failed {len(r['failed'])} of {len(r['failed']) + r['runs']} runs**: {failure(r['failed'][0])})"
            lines.append(
                f"| {label(reader)}{extra} | {fmt(r['wall'])} s | {fmt(r['min'])}–{fmt(r['max'])} | "
                f"{fmt(ratio(r['wall'], psql))} | {fmt(ratio(r['wall'], floor))} | {fmt(rate)} | {fmt(r['cpu'])} | "
                f"{fmt(nsrow, 0)} | {fmt(r['rss_mib'], 1)} | {fmt(r['ttfr'], 3)} |"
            )
        lines.append("")
        lines += peer_ratios(t, rows)

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

    lines += incremental_section(results)
    lines += cdc_section(results, args, standalone=False)
    lines += goals(s, many, json.loads(args.plugin_limits))
    lines += [
        f"Raw measurements (one JSON object per run): `{args.results.split('/')[-1]}` beside this file when",
        "the script wrote it there.",
        "",
    ]
    # A peers section spliced in from its own run (--splice-peers) survives a re-run without peers.
    if os.path.exists(args.out) and not any(is_peer(r["reader"]) for r in results):
        with open(args.out) as f:
            old = between(f.read().split("\n"), PEERS_BEGIN, PEERS_END)
        if old is not None:
            at = next((i for i, l in enumerate(lines) if l == CDC_BEGIN), len(lines))
            lines[at:at] = old + [""]
    with open(args.out, "w") as f:
        f.write("\n".join(lines))


def failure(text):
    """The line of a failed run's stderr that says why (the harness's own error line first)."""
    lines = [l.strip() for l in text.splitlines() if l.strip()]
    why = next((l for l in lines if l.startswith("sync_bench:") or "Error:" in l or "error" in l), lines[0] if lines else "")
    return why[:300].replace("|", "\\|")


def peer_ratios(t, rows):
    """Each peer against this plugin, on this table: throughput, CPU per row and peak RSS ratios."""
    peers = [r for r in readers_in_order(t) if is_peer(r) and t[r]["runs"]]
    if not peers:
        return []
    lines = [
        "| peer vs this plugin | rows/s | CPU ns/row | peak RSS MiB | rows/s ÷ plugin `concurrency: 1` | rows/s ÷ plugin default | CPU/row × plugin `concurrency: 1` | RSS × plugin `concurrency: 1` |",
        "|---|---|---|---|---|---|---|---|",
    ]

    def rate(r):
        return None if not rows or not r.get("wall") else rows / r["wall"]

    def nsrow(r):
        return None if not rows or r.get("cpu") is None else r["cpu"] / rows * 1e9

    base1, base = t.get("plugin1", {}), t.get("plugin", {})
    for p in peers:
        r = t[p]
        # A CLI run is compared with this plugin's CLI run (same path: CLI, gRPC, destination).
        b1 = t["cli"] if p.startswith("cli:") and t.get("cli", {}).get("runs") else base1
        lines.append(
            f"| {label(p)} | {fmt(rate(r), 0)} | {fmt(nsrow(r), 0)} | {fmt(r['rss_mib'], 1)} | "
            f"{fmt(ratio(rate(r), rate(b1)))} | {fmt(ratio(rate(r), rate(base)) if not p.startswith('cli') else None)} | "
            f"{fmt(ratio(nsrow(r), nsrow(b1)))} | {fmt(ratio(r['rss_mib'], b1.get('rss_mib')))} |"
        )
    lines.append("")
    if any(p.startswith("cli:") for p in peers):
        lines += [
        "(The CLI rows are compared with this plugin's own CLI run, same path: CLI, gRPC, test destination;",
        "their CPU is the CLI's with the children it reaped, plugin and destination, from `wait4`, and their",
        "RSS the largest of those processes.)",
        "",
        ]
    return lines


def incremental_section(results):
    """The incremental (xmin) sync of a copy of lineitem with 1 % of its rows changed."""
    inc = {r["reader"]: r for r in results if r["dataset"] == "incremental"}
    if not inc:
        return []
    first, second = inc.get("cli-first"), inc.get("cli-incremental")
    full, scan = inc.get("floor-full"), inc.get("floor-incremental")
    changed = (scan or {}).get("changed")
    lines = [
        "## Incremental sync (`incremental: xmin`) of `lineitem_inc`, 1 % of the rows changed",
        "",
        "A copy of `lineitem` (with its primary key), synced through the real CLI into the test destination,",
        "which is also the state backend: the first sync reads the whole table and stores its position;",
        f"then `UPDATE … WHERE l_orderkey % 100 = 0` changes {changed if changed is not None else '–'} rows and",
        "the second sync reads only those. The server still scans the whole heap (there is no index on",
        "`xmin`): the server-only rows time the full `COPY` and the incremental read's own statement (from the",
        "plugin's log) into `/dev/null`. One run each; wall and CPU are the CLI's whole process tree.",
        "",
        "| run | wall s | rows sent | CPU s |",
        "|---|---|---|---|",
    ]
    for name, r in (("first sync (whole table), through the CLI", first), ("incremental sync, through the CLI", second)):
        if r:
            rows = r.get("rows")
            shown = "–" if rows is None else f"{rows:,}"
            lines.append(f"| {name} | {fmt(r.get('wall_s'))} | {shown} | {fmt(r.get('cpu_s'))} |")
        else:
            lines.append(f"| {name} | failed | – | – |")
    for name, r in (("server only: full `COPY` to /dev/null", full), ("server only: the incremental statement to /dev/null", scan)):
        lines.append(f"| {name} | {fmt((r or {}).get('wall_s'))} | – | – |")
    if scan and scan.get("statement"):
        lines += ["", f"Incremental statement: `{scan['statement']}`"]
    lines.append("")
    return lines


CDC_BEGIN = "<!-- cdc:begin -->"
CDC_END = "<!-- cdc:end -->"
PEERS_BEGIN = "<!-- peers:begin -->"
PEERS_END = "<!-- peers:end -->"


def between(text, begin, end):
    """The lines from `begin` to `end` (markers included), or None."""
    if begin in text and end in text:
        a, b = text.index(begin), text.index(end)
        return text[a:b + 1]
    return None


def peers_section(generated, source, note):
    """A section of docs/benchmarks.md made from a report of a run with --peer (its own header,
    then its per-table tables, headings one level down)."""
    keep = ("- **Command:**", "- **Date:**", "- **Machine:**", "- **Versions:**", "**Note on this run:**")
    header = [l if l.startswith("- ") else "- " + l for l in generated if l.startswith(keep)]
    start = next((i for i, l in enumerate(generated) if l.startswith("## `")), len(generated))
    end = next((i for i, l in enumerate(generated) if l in (CDC_BEGIN, "## Goals of issue 6, from the figures above")), len(generated))
    body = ["#" + l if l.startswith("## ") else l for l in generated[start:end]]
    return [
        PEERS_BEGIN,
        "## Side by side with other plugins (`--peer`)",
        "",
        f"From its own run of `scripts/bench.sh` with `--peer` (the full report: `{source}`); the",
        "sections above come from the run described at the top of this file.",
        "",
        *header,
        *([f"- **Peers:** {note}"] if note else []),
        "",
        *body,
        PEERS_END,
        "",
    ]


def splice_peers(args):
    """Puts (or replaces) the peers section of --out from the report --splice-peers."""
    with open(args.splice_peers) as f:
        generated = f.read().split("\n")
    with open(args.out) as f:
        text = f.read().split("\n")
    # --note here says what the peer binaries are (repository, commit, build), which the run only knows by path.
    section = peers_section(generated, os.path.relpath(args.splice_peers, os.path.dirname(os.path.abspath(args.out))), args.note)
    if between(text, PEERS_BEGIN, PEERS_END) is not None:
        a = text.index(PEERS_BEGIN)
        b = text.index(PEERS_END) + 1
        b += 1 if b < len(text) and text[b] == "" else 0
        text = text[:a] + section + text[b:]
    else:
        at = next((i for i, l in enumerate(text) if l == CDC_BEGIN), len(text))
        text = text[:at] + section + text[at:]
    with open(args.out, "w") as f:
        f.write("\n".join(text))


def spread(rs, key, scale=1.0, digits=2):
    """'median (min–max)' of one figure over the runs."""
    values = [r.get(key) for r in rs if r.get(key) is not None]
    if not values:
        return "–"
    m = statistics.median(values) * scale
    if len(values) == 1:
        return f"{m:,.{digits}f}"
    return f"{m:,.{digits}f} ({min(values) * scale:,.{digits}f}–{max(values) * scale:,.{digits}f})"


def per_run(rs, f):
    values = [f(r) for r in rs]
    return [v for v in values if v is not None]


def cdc_section(results, args, standalone):
    """The CDC section, between markers so that a CDC-only run can replace it."""
    rs = [r for r in results if r["dataset"] == "cdc" and r["reader"] == "plugin-cdc"]
    rs_unix = [r for r in results if r["dataset"] == "cdc" and r["reader"] == "plugin-cdc-unix"]
    lines = [CDC_BEGIN, "## CDC: throughput and latency (`cdc` dataset)", ""]
    if standalone:
        lines += [
            "This section comes from its own run (the tables above from the run described at the top):",
            "",
            f"- **Command:** `{args.command}` ({args.runs} run(s), scale {args.scale})",
            f"- **Date:** {args.date}; {args.load} at the end of the run",
            f"- **Machine:** {args.machine}",
            f"- **Versions:** {args.versions}",
        ]
        if args.note:
            lines.append(f"- **Note on this run:** {args.note}")
        lines += [f"- Raw measurements: `{args.results.split('/')[-1]}` beside this file.", ""]
    if not rs:
        lines += ["Not measured in this run (`--datasets` without `cdc`).", "", CDC_END, ""]
        return lines
    r0 = rs[0]
    mb = (r0.get("wal_bytes") or 0) / 2**20
    lines += [
        "Method (`sync_bench cdc`, `benches/harness/cdc.rs`; every run on a fresh copy of the database):",
        f"the plugin (spec `cdc_id`, defaults otherwise) takes the initial snapshot of `cdc_accounts`",
        f"({r0.get('snapshot_rows_expected', 0):,} rows); the snapshot counts as finished when every row arrived",
        "and the server shows the slot's walsender `streaming`. The plugin is stopped, and a backlog is",
        f"committed: {r0.get('changes', 0):,} row changes ({r0.get('changes_updates', 0):,} updates, "
        f"{r0.get('changes_inserts', 0):,} inserts, {r0.get('changes_deletes', 0):,} deletes, each key touched once,",
        f"pgbench-like: update accounts, append history, insert and delete accounts) in "
        f"{r0.get('transactions', 0):,} transactions, {mb:,.0f} MiB of WAL.",
        "**Drain**: the plugin is started again, resumes from its slot and decodes the backlog as fast as the",
        "server sends it (the catch-up path after any pause); changes/s = changes ÷ (last − first change",
        "received by the harness), every key checked. CPU over that window from `/proc/<pid>/stat`.",
        "**Ceiling**: `pg_logical_slot_peek_binary_changes` over exactly the same WAL on a second slot, with",
        "the plugin's pgoutput options, rows counted in the backend: what the server's decoding costs with",
        "no network and no client. **Latency**: then, on the live stream, a writer commits single-row",
        "`INSERT`s at 1,000 transactions/s (open loop, `synchronous_commit = on` for its session) and",
        "keeps the instant each COMMIT returned; latency = insert record holding that row received by the",
        "harness − COMMIT returned, both on one monotonic clock. The plugin's batching linger is 20 ms",
        "(`src/cdc/batch.rs` `DEFAULT_LINGER`) from the first change of a group, so a row waits 0–20 ms",
        "(about 10 ms on average at this rate) by design. A record can arrive a little before the writer",
        "thread sees its COMMIT return (the walsender sends once the WAL is flushed, and the machine is",
        f"busy): such negative latencies are kept as measured ({sum(r.get('latency_negative') or 0 for r in rs + rs_unix)} "
        "in all runs).",
        "",
        "Every run is made twice, interleaved: over TCP 127.0.0.1 like every other reader in this file",
        "(the headline figures and the goals), and over the server's unix socket, which takes the loopback",
        "TCP stack out of the walsender's per-change `send()` (see the walsender's CPU per change).",
        "",
    ]
    cols = [("over TCP 127.0.0.1", rs)] + ([("over a unix socket", rs_unix)] if rs_unix else [])
    lines += [
        "| figure | " + " | ".join(f"{name}: median (min–max)" for name, _ in cols) + " |",
        "|---|" + "---|" * len(cols),
    ]

    def row(label, f):
        lines.append(f"| {label} | " + " | ".join(f(c) for _, c in cols) + " |")

    def ratio_of(num, den, scale=1.0, digits=2):
        """Spread of r[num] / r[den] over the runs."""
        return lambda c: spread(
            [{"v": r[num] / r[den]} for r in c if r.get(num) is not None and r.get(den)], "v", scale, digits
        )

    row("initial snapshot: rows/s (Sync → last snapshot row)", ratio_of("snapshot_rows", "snapshot_s", digits=0))
    row("**drain: changes/s decoded and emitted** (first → last change received)",
        lambda c: spread(c, "changes_per_s", digits=0))
    row("drain: seconds (first → last change)", lambda c: spread(c, "drain_s"))
    row("drain: changes/s from the Sync call (includes slot acquisition, first transaction)",
        ratio_of("changes", "drain_from_sync_s", digits=0))
    row("server ceiling: `pg_logical_slot_peek_binary_changes` changes/s",
        lambda c: spread(c, "ceiling_changes_per_s", digits=0))
    row("drain ÷ ceiling", ratio_of("changes_per_s", "ceiling_changes_per_s"))
    row("plugin CPU during the drain: s", lambda c: spread(c, "plugin_cpu_drain_s"))
    row("plugin CPU during the drain: % of one core", ratio_of("plugin_cpu_drain_s", "drain_s", 100, 0))
    row("plugin CPU per change: µs", ratio_of("plugin_cpu_drain_s", "changes", 1e6))
    row("walsender CPU during the drain: % of one core", ratio_of("walsender_cpu_drain_s", "drain_s", 100, 0))
    row("walsender CPU per change: µs", ratio_of("walsender_cpu_drain_s", "changes", 1e6))
    row("harness CPU during the drain: s (decodes the key column of every record)",
        lambda c: spread(c, "harness_cpu_drain_s"))

    def total_us(r):
        parts = [r.get("plugin_cpu_drain_s"), r.get("walsender_cpu_drain_s"), r.get("harness_cpu_drain_s")]
        return None if None in parts or not r.get("changes") else sum(parts) / r["changes"] * 1e6

    cores = os.cpu_count() or 1
    row("plugin + walsender + harness CPU per change: µs",
        lambda c: spread([{"v": total_us(r)} for r in c if total_us(r)], "v"))
    row(f"CPU bound on this machine's {cores} cores: changes/s ({cores} ÷ the line above)",
        lambda c: spread([{"v": cores / total_us(r) * 1e6} for r in c if total_us(r)], "v", digits=0))
    row("server ceiling: backend CPU per change: µs", ratio_of("ceiling_backend_cpu_s", "changes", 1e6))
    row("plugin peak RSS, restarted run (drain + latency): MiB", lambda c: spread(c, "plugin_max_rss_kib", 1 / 1024, 1))
    row("plugin peak RSS, snapshot run: MiB", lambda c: spread(c, "snapshot_plugin_max_rss_kib", 1 / 1024, 1))
    row("latency writer: transactions committed / achieved tx/s",
        lambda c: f"{spread(c, 'latency_committed', digits=0)} / {spread(c, 'latency_achieved_tps', digits=0)}")
    row("**latency p50** ms", lambda c: spread(c, "latency_p50_ms", digits=1))
    row("latency p90 ms", lambda c: spread(c, "latency_p90_ms", digits=1))
    row("**latency p99** ms", lambda c: spread(c, "latency_p99_ms", digits=1))
    row("latency max ms", lambda c: spread(c, "latency_max_ms", digits=1))

    def losses(c):
        lost = sum((r.get("lost_changes") or 0) + (r.get("latency_lost") or 0) for r in c)
        dups = sum((r.get("duplicate_changes") or 0) + (r.get("latency_duplicates") or 0) for r in c)
        unexpected = sum((r.get("unexpected_changes") or 0) + (r.get("latency_unexpected") or 0) for r in c)
        return lost, dups, unexpected

    row("changes lost / duplicated / unexpected, all runs", lambda c: " / ".join(str(n) for n in losses(c)))
    lines.append("")

    lines += ["| CDC goal (issue 6), over TCP | measured (median) | met |", "|---|---|---|"]
    rate = med([r.get("changes_per_s") for r in rs])
    rate_unix = med([r.get("changes_per_s") for r in rs_unix])
    p50 = med([r.get("latency_p50_ms") for r in rs])
    p99 = med([r.get("latency_p99_ms") for r in rs])
    tps = med([r.get("latency_achieved_tps") for r in rs])
    lost = losses(rs)[0] + losses(rs_unix)[0]

    def goal(g, m, ok):
        lines.append(f"| {g} | {m} | {'–' if ok is None else ('yes' if ok else '**no**')} |")

    measured = "–" if rate is None else f"{rate:,.0f}/s"
    if rate_unix is not None:
        measured += f" (over a unix socket: {rate_unix:,.0f}/s)"
    g = GOALS
    goal(f"≥ {g['cdc_changes_per_s']:,} row changes/s decoded and emitted", measured, None if rate is None else rate >= g["cdc_changes_per_s"])
    goal(f"latency p50 ≤ {g['cdc_latency_p50_ms']} ms at 1,000 tx/s (achieved {fmt(tps, 0)} tx/s)", f"{fmt(p50, 1)} ms", None if p50 is None else p50 <= g["cdc_latency_p50_ms"])
    goal(f"latency p99 ≤ {g['cdc_latency_p99_ms']} ms at 1,000 tx/s", f"{fmt(p99, 1)} ms", None if p99 is None else p99 <= g["cdc_latency_p99_ms"])
    goal("no change lost (both transports)", f"{lost} lost", lost <= g["cdc_changes_lost"])
    lines += ["", CDC_END, ""]
    return lines


def splice_cdc(args):
    """Replaces the CDC section of an existing report (or adds it before the goals)."""
    results = load(args.results)
    section = cdc_section(results, args, standalone=True)
    with open(args.out) as f:
        text = f.read().split("\n")
    if CDC_BEGIN in text and CDC_END in text:
        a, b = text.index(CDC_BEGIN), text.index(CDC_END)
        # Drop the blank line after the end marker too: the section brings its own.
        b += 1 if b + 1 < len(text) and text[b + 1] == "" else 0
        text = text[:a] + section + text[b + 1:]
    else:
        # Older reports: drop the "Not measured yet" TODO, add the section before the goals.
        if "## Not measured yet" in text:
            a = text.index("## Not measured yet")
            b = next((i for i in range(a + 1, len(text)) if text[i].startswith("Raw measurements")), len(text))
            text = text[:a] + text[b:]
        at = next((i for i, l in enumerate(text) if l.startswith("## Goals of issue 6")), len(text))
        text = text[:at] + section + text[at:]
    with open(args.out, "w") as f:
        f.write("\n".join(text))


def goals(s, many, limits):
    lines = ["## Goals of issue 6, from the figures above", "", "| goal | measured | met |", "|---|---|---|"]

    def row(goal, measured, ok):
        lines.append(f"| {goal} | {measured} | {'–' if ok is None else ('yes' if ok else '**no**')} |")

    g = GOALS
    for table in ["mixed9", "lineitem"]:
        t = s.get(table)
        if not t:
            continue
        psql = t.get("psql", {}).get("wall")
        if "plugin1" in t:
            r = ratio(t["plugin1"]["wall"], psql)
            row(f"`{table}` single stream (`concurrency: 1`) wall ≤ {g['single_stream_vs_psql']:.2f} × psql", f"{fmt(r)} ×", None if r is None else r <= g["single_stream_vs_psql"])
        if "plugin1" in t and "adbc" in t:
            r = ratio(t["plugin1"]["wall"], t["adbc"]["wall"])
            row(f"`{table}` faster than ADBC (concurrency 1)", f"{fmt(r)} × ADBC", None if r is None else r < g["single_stream_vs_adbc"])
        if "plugin" in t:
            r = ratio(t["plugin"]["wall"], psql)
            row(f"`{table}` parallel (default spec: ctid ranges on 4 connections) wall ≤ {g['parallel_vs_psql']:.2f} × psql", f"{fmt(r)} ×", None if r is None else r <= g["parallel_vs_psql"])
        if "plugin1" in t and "floor" in t:
            r = ratio(t["plugin1"]["cpu"], t["floor"]["wall"])
            row(f"`{table}` plugin CPU/row ≤ {g['cpu_vs_backend']:.2f} × backend's (floor wall as the backend CPU)", f"{fmt(r)} ×", None if r is None else r <= g["cpu_vs_backend"])
    big, small = s.get("narrow", {}).get("plugin1"), s.get("narrow_small", {}).get("plugin1")
    if big and small and big["rss_mib"] and small["rss_mib"]:
        r = big["rss_mib"] / small["rss_mib"]
        row(f"peak RSS `narrow` 10 M vs 1 M rows within {g['rss_10x_rows_spread']:.0%} (concurrency 1)".replace("%", " %"), f"{fmt(big['rss_mib'], 1)} vs {fmt(small['rss_mib'], 1)} MiB ({fmt(r)} ×)", abs(r - 1) <= g["rss_10x_rows_spread"])
    # Absolute bound: GOALS' base MiB + a multiple of the records in flight. In flight: the Sync channel's slots
    # plus one record being built per stream, each of the run's mean record size. Checked on
    # every table, both spec variants; the closest to its bound is shown. The channel's capacity
    # and the default concurrency come from the plugin's code (`sync_bench limits`).
    queued = limits["sync_channel_capacity"]
    worst = None
    for table, t in s.items():
        for reader, streams in (("plugin1", 1), ("plugin", limits["default_concurrency"])):
            r = t.get(reader)
            if not r or not r.get("rss_mib") or not r.get("bytes") or not r.get("batches"):
                continue
            record_mib = r["bytes"] / r["batches"] / (1 << 20)
            bound = g["rss_base_mib"] + g["rss_per_record_in_flight"] * (queued + streams) * record_mib
            if worst is None or r["rss_mib"] / bound > worst[0]:
                worst = (r["rss_mib"] / bound, table, reader, r["rss_mib"], bound)
    if worst:
        _, table, reader, rss, bound = worst
        label = "concurrency 1" if reader == "plugin1" else "default spec"
        row(
            f"plugin peak RSS ≤ {g['rss_base_mib']} MiB + {g['rss_per_record_in_flight']} × records in flight ({queued} queued + 1 per stream), every table",
            f"{fmt(rss, 1)} ≤ {fmt(bound, 1)} MiB (closest: `{table}`, {label})",
            rss <= bound,
        )
    gt = [r for r in many if r["reader"] == "plugin-tables"]
    if gt:
        v = med([r["init_s"] + (r.get("get_tables_s") or 0) for r in gt])
        row(f"`many` Init + GetTables ≤ {g['many_init_get_tables_s']:g} s", f"{fmt(v, 3)} s", v <= g["many_init_get_tables_s"])
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
    if "lineitem" in args.datasets.split() and "plugin" in args.readers.split():
        inc = {r["reader"]: r for r in results if r["dataset"] == "incremental"}
        for reader in ("cli-first", "cli-incremental", "floor-full", "floor-incremental"):
            if reader not in inc:
                problems.append(f"incremental: no figure from {reader}")
        want = (inc.get("floor-incremental") or {}).get("changed")
        got = (inc.get("cli-incremental") or {}).get("rows")
        if want is None or got != want:
            # The expected count is PostgreSQL's (the UPDATE's row count), not the plugin's.
            problems.append(f"incremental: the second sync sent {got} rows, the UPDATE changed {want}")
    if "many" in args.datasets.split() and "plugin" in args.readers.split():
        if not any(r["reader"] == "plugin-tables" for r in results):
            problems.append("many: no Init + GetTables figure")
    if "cdc" in args.datasets.split() and "plugin" in args.readers.split():
        for reader, transport in (("plugin-cdc", "TCP"), ("plugin-cdc-unix", "unix socket")):
            rs = [r for r in results if r["dataset"] == "cdc" and r["reader"] == reader]
            if not rs:
                problems.append(f"cdc ({transport}): no figure (the run failed)")
            for r in rs:
                # Expected counts come from PostgreSQL (the writer's command tags), not from the plugin.
                if not r.get("changes") or not r.get("changes_per_s"):
                    problems.append(f"cdc ({transport}): no throughput figure")
                if r.get("snapshot_rows") != r.get("snapshot_rows_expected"):
                    problems.append(f"cdc ({transport}): snapshot delivered {r.get('snapshot_rows')} rows, PostgreSQL counted {r.get('snapshot_rows_expected')}")
                if r.get("received_changes") != r.get("changes") or r.get("lost_changes"):
                    problems.append(f"cdc ({transport}): {r.get('lost_changes')} of {r.get('changes')} backlog changes lost")
                if r.get("unexpected_changes"):
                    problems.append(f"cdc ({transport}): {r.get('unexpected_changes')} unexpected changes in the drain")
                if not r.get("latency_committed") or r.get("latency_p50_ms") is None:
                    problems.append(f"cdc ({transport}): no latency figure")
                if r.get("latency_lost"):
                    problems.append(f"cdc ({transport}): {r.get('latency_lost')} of {r.get('latency_committed')} latency transactions lost")
                if r.get("ceiling_changes_per_s") is None:
                    problems.append(f"cdc ({transport}): no server ceiling figure")
                if r.get("errors"):
                    problems.append(f"cdc ({transport}): error messages {r.get('errors')}")
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
    p.add_argument("--cdc-section-only", action="store_true")
    # A report of a run with --peer whose per-table sections go into --out's peers section.
    p.add_argument("--splice-peers")
    p.add_argument("--readers", default="")
    p.add_argument("--datasets", default="")
    # JSON from `sync_bench limits`: the plugin's Sync channel capacity and default concurrency.
    p.add_argument("--plugin-limits")
    args = p.parse_args()
    if args.check_smoke:
        sys.exit(check_smoke(args))
    if args.cdc_section_only:
        splice_cdc(args)
        return
    if args.splice_peers:
        splice_peers(args)
        return
    if not args.plugin_limits:
        p.error("--plugin-limits (the output of `sync_bench limits`) is required for the report")
    report(args)


if __name__ == "__main__":
    main()
