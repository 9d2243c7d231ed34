# shellcheck shell=bash
# One way to run an embedded PostgreSQL from the scripts (scripts/demo.sh, scripts/bench.sh), and
# the one place the PostgreSQL client binaries are located. Sourced by scripts/lib.sh.
#
# The Rust tests start their servers with tests/support/pg.rs instead: they need a server per
# test from a cached template, TLS files, per-test roles and cleanup on panic, which a shell
# function cannot give a test binary. Both follow the same rules (binaries in
# $CQ_CACHE_DIR/pg/<major>/bin, the server user `cqpg` when root, Debian's psql 15); keep them in
# step.

# The server binaries of a major: CQPG_PG_BIN_DIR, else $CQ_CACHE_DIR/pg/<major>/bin.
cq_pg_bindir() { printf '%s\n' "${CQPG_PG_BIN_DIR:-$CQ_CACHE_DIR/pg/$1/bin}"; }

# A PostgreSQL client tool (psql, pgbench, pg_recvlogical): CQPG_PSQL for psql, else Debian's
# version-15 binary itself (skipping the perl pg_wrapper behind /usr/bin saves time per call),
# else the one on PATH. Prints nothing and fails when there is none.
cq_pg_client() {
    local name="$1"
    if [ "$name" = psql ] && [ -n "${CQPG_PSQL:-}" ]; then
        printf '%s\n' "$CQPG_PSQL"
    elif [ -x "/usr/lib/postgresql/15/bin/$name" ]; then
        printf '%s\n' "/usr/lib/postgresql/15/bin/$name"
    else
        command -v "$name"
    fi
}

# A TCP port on 127.0.0.1 that was free a moment ago.
cq_free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Runs a command as the server user: `cqpg` when we are root (PostgreSQL refuses to run as root),
# else ourselves. From / because the caller's directory may be unreadable for that user.
cq_as_server() {
    if cq_is_root; then
        (cd / && runuser -u "$CQPG_USER" -- "$@")
    else
        "$@"
    fi
}

# Gives paths to the server user (when root).
cq_own_server() {
    if cq_is_root; then chown -R "$CQPG_USER" "$@"; fi
}

# cq_pg_initdb BINDIR DATADIR LOGFILE INITDB-ARGS...: initdb as the server user; on failure prints
# its output and dies.
cq_pg_initdb() {
    local bindir="$1" datadir="$2" log="$3"
    shift 3
    cq_as_server "$bindir/initdb" -D "$datadir" "$@" >"$log" 2>&1 ||
        { cat "$log" >&2; cq_die "initdb failed"; }
}

# cq_pg_start BINDIR DATADIR LOGFILE TIMEOUT-S [POSTGRES-OPTIONS]: starts the server and waits
# until it accepts connections; on failure prints its log and dies.
cq_pg_start() {
    local bindir="$1" datadir="$2" log="$3" timeout="$4" opts="${5:-}"
    local args=(-D "$datadir" -l "$log" -w -t "$timeout")
    [ -z "$opts" ] || args+=(-o "$opts")
    cq_as_server "$bindir/pg_ctl" "${args[@]}" start >/dev/null ||
        { cat "$log" >&2; cq_die "PostgreSQL did not start"; }
}

# cq_pg_stop BINDIR DATADIR: fast shutdown when a server runs there; never fails.
cq_pg_stop() {
    if [ -f "$2/postmaster.pid" ]; then
        cq_as_server "$1/pg_ctl" -D "$2" -m fast -w stop >/dev/null 2>&1 || true
    fi
}
