# shellcheck shell=bash
# shellcheck disable=SC2034 # the settings below are used by the scripts that source this file
# Shared settings and helpers for the project's scripts. Source it; do not run it.
#
# Everything the scripts download or build lives under CQ_CACHE_DIR so a CI cache of that one
# directory makes a re-run fast. tests/support/pg.rs computes the same default, keep them in sync.

set -euo pipefail
# Files we create must stay readable by the unprivileged server user.
umask 022

CQ_REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export CQ_REPO_ROOT

cq_is_root() { [ "$(id -u)" = 0 ]; }

if [ -z "${CQ_CACHE_DIR:-}" ]; then
    if cq_is_root; then
        # Not under /root: root's home is mode 700 and the server user could not reach the
        # PostgreSQL binaries or the cluster templates there.
        CQ_CACHE_DIR=/var/cache/cq-source-postgresql
    else
        CQ_CACHE_DIR="$HOME/.cache/cq-source-postgresql"
    fi
fi
export CQ_CACHE_DIR
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$CQ_CACHE_DIR/target}"

# The unprivileged user that runs initdb/postgres when the tests run as root (PostgreSQL refuses
# to run as root).
CQPG_USER=cqpg
# Every PostgreSQL major the project supports, and the npm build installed for each.
CQPG_ALL_MAJORS="12 13 14 15 16 17 18"
CQPG_DEFAULT_MAJOR=17
declare -A CQPG_PG_NPM_VERSION=(
    [12]=12.22.0-beta.15
    [13]=13.23.0-beta.16
    [14]=14.23.0-beta.17
    [15]=15.18.0-beta.17
    [16]=16.14.0-beta.17
    [17]=17.10.0-beta.17
    [18]=18.4.0-beta.17
)
CQPG_CLI_VERSION=6.21.1
CQPG_CARGO_FUZZ_VERSION=0.13.2
# The machine image has no cargo-nextest: scripts/setup.sh builds this version into the cache.
CQPG_CARGO_NEXTEST_VERSION=0.9.151
CQPG_VENV="$CQ_CACHE_DIR/venv"

cq_log() { printf '==> %s\n' "$*" >&2; }
cq_die() {
    printf 'error: %s\n' "$*" >&2
    exit 1
}

# Run a command as root: directly when we are root, through sudo otherwise.
cq_as_root() {
    if cq_is_root; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        cq_die "need root or sudo to run: $*"
    fi
}

# Create a directory the server user can traverse (mode 755).
cq_mkdir() {
    mkdir -p "$@"
    chmod 755 "$@"
}

# Seconds since the epoch with fractions, for the timing lines.
cq_now() { date +%s.%N; }
cq_elapsed() { awk -v s="$1" -v e="$(cq_now)" 'BEGIN { printf "%.1fs", e - s }'; }

# cq_help SCRIPT: prints the script's help, the comment lines between its two `# --- help`
# markers, without the leading `# `.
cq_help() {
    awk '/^# --- help/ { inside = !inside; next } inside { sub(/^# ?/, ""); print }' "$1"
}

# shellcheck source=scripts/lib/pg.sh
source "$CQ_REPO_ROOT/scripts/lib/pg.sh"
# shellcheck source=scripts/lib/cli.sh
source "$CQ_REPO_ROOT/scripts/lib/cli.sh"
