# shellcheck shell=bash
# The one generator of CloudQuery CLI configs for the scripts (the tests build theirs with
# tests/support/cli.rs). Sourced by scripts/lib.sh.

# cq_cli_config [--plugin PATH] [--tables JSON] [--spec JSON] [--dest DIR] [--no-state]
#               [--state-table NAME]
# Prints a config: source `postgresql` from PATH (registry: local) reading the tables of the JSON
# array (default ["*"]) with the JSON object as its spec, into the test destination
# (tests/destination) writing to DIR. --no-state: the destination keeps no applied state (only
# its log). --state-table: the destination also serves as the state backend, in table NAME.
cq_cli_config() {
    local plugin="" tables='["*"]' spec='{}' dest="" state=1 state_table=""
    while [ $# -gt 0 ]; do
        case "$1" in
        --plugin) plugin="$2"; shift ;;
        --tables) tables="$2"; shift ;;
        --spec) spec="$2"; shift ;;
        --dest) dest="$2"; shift ;;
        --no-state) state=0 ;;
        --state-table) state_table="$2"; shift ;;
        *) cq_die "cq_cli_config: unknown argument $1" ;;
        esac
        shift
    done
    [ -n "$plugin" ] && [ -n "$dest" ] || cq_die "cq_cli_config: --plugin and --dest are required"
    cat <<YAML
kind: source
spec:
  name: postgresql
  registry: local
  path: $plugin
  tables: $tables
  destinations: ["test"]
YAML
    if [ -n "$state_table" ]; then
        cat <<YAML
  backend_options:
    table_name: $state_table
    connection: "@@plugins.test.connection"
YAML
    fi
    cat <<YAML
  spec: $spec
---
kind: destination
spec:
  name: test
  registry: local
  path: $CQ_REPO_ROOT/tests/destination/cq-dest-test
  spec:
    dir: $dest
YAML
    if [ "$state" = 0 ]; then echo "    state: false"; fi
}
