#!/usr/bin/env bash
# --- help
# THE test command (README, .ci/run): installs what is missing (scripts/setup.sh), then
#   1. the whole suite with cargo-nextest on the default PostgreSQL (17);
#   2. the connection matrix: tests whose name contains `matrix`, on every other major 12..18;
#   3. a fuzz smoke run of every cargo-fuzz target in fuzz/ (CQPG_FUZZ_SECONDS each, default 20);
#   4. a benchmark smoke run (scripts/bench.sh --smoke).
# Every step runs even when an earlier one failed; the exit status is non-zero if any failed and
# the last line is a plain summary. The summary lists only the steps that ran (PASS/FAIL); a step
# left out is listed as SKIP with the reason.
#
# Environment:
#   CQPG_TEST_PG_VERSION  major for step 1 (default 17)
#   CQPG_PG_MAJORS        majors to install and run the matrix on (default "12 13 14 15 16 17 18")
#   CQPG_LONG=1           also run the long tests (#[ignore]d ones) and fuzz 300 s per target
#   CQPG_FUZZ_SECONDS     seconds per fuzz target
#   CQPG_SKIP_FUZZ=1      skip step 3 (and the cargo-fuzz install)
#   CQPG_SKIP_BENCH=1     skip step 4 (the benchmark smoke run)
#   CI=true               non-interactive run: no colours, Cargo.lock must be up to date
# --- help
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
case "${1:-}" in
"") ;;
-h | --help) cq_help "$0"; exit 0 ;;
*) cq_die "unknown argument: $1 (see --help)" ;;
esac
cd "$CQ_REPO_ROOT"

total_start="$(cq_now)"
default_major="${CQPG_TEST_PG_VERSION:-$CQPG_DEFAULT_MAJOR}"
majors="${CQPG_PG_MAJORS:-$CQPG_ALL_MAJORS}"
majors="${majors//,/ }"
long="${CQPG_LONG:-0}"
if [ "$long" = 1 ]; then
    fuzz_seconds="${CQPG_FUZZ_SECONDS:-300}"
else
    fuzz_seconds="${CQPG_FUZZ_SECONDS:-20}"
fi

results=()
failures=0
ran=0
# skip_step NAME WHY: records a step that did not run.
skip_step() { results+=("SKIP  $1 ($2)"); }
# run_step NAME CMD...: runs CMD, records PASS/FAIL with its duration, never aborts the script.
run_step() {
    local name="$1" start rc
    shift
    start="$(cq_now)"
    printf '\n==> %s\n    $ %s\n' "$name" "$*" >&2
    set +e
    "$@"
    rc=$?
    set -e
    ran=$((ran + 1))
    if [ "$rc" = 0 ]; then
        results+=("PASS  $name ($(cq_elapsed "$start"))")
    else
        results+=("FAIL  $name (exit $rc, $(cq_elapsed "$start"))")
        failures=$((failures + 1))
    fi
}

summary() {
    printf '\n==================== test summary ====================\n'
    printf '%s\n' "${results[@]}"
    if [ "$failures" = 0 ]; then
        printf 'RESULT: PASS (%d steps run, %d skipped, %s)\n' "$ran" "$((${#results[@]} - ran))" "$(cq_elapsed "$total_start")"
    else
        printf 'RESULT: FAIL (%d of %d steps run failed, %s)\n' "$failures" "$ran" "$(cq_elapsed "$total_start")"
    fi
}

setup_args=()
[ "${CQPG_SKIP_FUZZ:-0}" = 1 ] || setup_args+=(--with-fuzz)
# The default major must be installed even when CQPG_PG_MAJORS leaves it out.
setup_majors="$majors"
case " $setup_majors " in *" $default_major "*) ;; *) setup_majors="$setup_majors $default_major" ;; esac
run_step "setup" bash scripts/setup.sh "${setup_args[@]}" --majors "$setup_majors"
if [ "$failures" != 0 ]; then
    summary
    exit 1
fi
export PATH="$CQ_CACHE_DIR/cargo-tools/bin:$CQ_CACHE_DIR/bin:$PATH"

cargo_args=()
nextest_args=(--workspace --no-fail-fast)
if [ "${CI:-}" = true ]; then
    cargo_args+=(--locked)
    nextest_args+=(--color never)
fi
full_args=()
# Long soaks are #[ignore]d tests; CQPG_LONG=1 runs them too (and the tests can read CQPG_LONG).
[ "$long" = 1 ] && full_args+=(--run-ignored all)
export CQPG_LONG="$long"

# 1. Everything on the default major.
run_step "nextest: all tests, PostgreSQL $default_major" \
    env CQPG_TEST_PG_VERSION="$default_major" \
    cargo nextest run "${cargo_args[@]}" "${nextest_args[@]}" "${full_args[@]}"

# 2. The per-version matrix: tests named *matrix*, on each other major.
for major in $majors; do
    if [ "$major" = "$default_major" ]; then
        skip_step "matrix: PostgreSQL $major" "the default major: its matrix tests ran in step 1"
        continue
    fi
    run_step "matrix: PostgreSQL $major" \
        env CQPG_TEST_PG_VERSION="$major" \
        cargo nextest run "${cargo_args[@]}" "${nextest_args[@]}" --no-tests=warn -E 'test(/matrix/)'
done

# 3. Fuzz smoke run. On stable Rust only `-s none` (no AddressSanitizer) works; the fuzz build
# has its own target dir so it neither dirties fuzz/ nor fights over the main one.
if [ "${CQPG_SKIP_FUZZ:-0}" = 1 ]; then
    skip_step fuzz "CQPG_SKIP_FUZZ=1"
elif [ -f fuzz/Cargo.toml ]; then
    if targets="$(cargo fuzz list 2>&1)"; then
        if [ -z "$targets" ]; then
            skip_step fuzz "fuzz/ has no targets"
        fi
        for t in $targets; do
            run_step "fuzz: $t (${fuzz_seconds}s)" \
                cargo fuzz run -s none --target-dir "$CQ_CACHE_DIR/fuzz-target" "$t" -- \
                -max_total_time="$fuzz_seconds"
        done
    else
        printf '%s\n' "$targets" >&2
        results+=("FAIL  fuzz: cargo fuzz list")
        ran=$((ran + 1))
        failures=$((failures + 1))
    fi
else
    skip_step fuzz "no fuzz/ directory"
fi

# 4. Benchmark smoke: the side-by-side harness at a tiny scale, one run, so it never rots
#    (figures are not judged here; the full run is `bash scripts/bench.sh`).
if [ "${CQPG_SKIP_BENCH:-0}" = 1 ]; then
    skip_step "bench smoke" "CQPG_SKIP_BENCH=1"
else
    run_step "bench smoke" bash scripts/bench.sh --smoke
fi

summary
[ "$failures" = 0 ]
