#!/bin/sh
# Runs the libFuzzer targets: tests/fuzz/run.sh BUILD SECONDS [TARGET...]
#
# For each target (default: all five): first every input kept under
# tests/fuzz/regressions/<target>/ once (each a crash found earlier, now
# fixed), then SECONDS of fuzzing from a copy of tests/fuzz/corpus/<target>/
# in a temporary folder (the repository is never written).  Prints per target
# the executions libFuzzer made (stat::number_of_executed_units) and their
# rate.  A crash, leak, timeout or out-of-memory fails the run; its input is
# saved under BUILD/fuzz-crashes/<target>/ -- rerun it with
#   BUILD/tests/fuzz/<target> BUILD/fuzz-crashes/<target>/crash-...
# and, once fixed, keep it under tests/fuzz/regressions/<target>/.
set -u

usage() {
    echo "usage: $0 BUILD SECONDS [TARGET...]" >&2
    exit 2
}
[ $# -ge 2 ] || usage
build=$(cd "$1" 2>/dev/null && pwd) || { echo "run.sh: no build folder $1" >&2; exit 2; }
seconds=$2
shift 2
case $seconds in '' | *[!0-9]*) usage ;; esac

here=$(cd "$(dirname "$0")" && pwd)
source_dir=$(cd "$here/../.." && pwd)
targets=${*:-fuzz_http fuzz_json fuzz_scoring fuzz_loader fuzz_provider}

export O2C_SOURCE_DIR="${O2C_SOURCE_DIR:-$source_dir}"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

work=$(mktemp -d "${TMPDIR:-/tmp}/o2c-fuzz.XXXXXX") || exit 2
trap 'rm -rf "$work"' EXIT INT TERM

failed=0
for target in $targets; do
    bin="$build/tests/fuzz/$target"
    if [ ! -x "$bin" ]; then
        echo "$target: not built ($bin); configure with clang: cmake -DCMAKE_C_COMPILER=clang" >&2
        failed=1
        continue
    fi
    crashes="$build/fuzz-crashes/$target"
    mkdir -p "$crashes" "$work/$target/corpus"
    log="$work/$target/log"
    flags="-timeout=10 -rss_limit_mb=2048 -artifact_prefix=$crashes/"
    [ -f "$here/$target.dict" ] && flags="$flags -dict=$here/$target.dict"

    # 1. Regressions: each input once (plain file arguments).
    regressions="$here/regressions/$target"
    if [ -d "$regressions" ] && [ -n "$(ls -A "$regressions" 2>/dev/null)" ]; then
        # shellcheck disable=SC2086
        if ! "$bin" $flags "$regressions"/* >"$log" 2>&1; then
            echo "$target: FAILED on a regression input (see below)"
            tail -n 40 "$log"
            failed=1
            continue
        fi
        echo "$target: $(ls "$regressions" | wc -l) regression input(s) pass"
    fi

    # 2. Fuzzing from a copy of the seed corpus.  -detect_leaks=0: the Lua
    # VMs free garbage whenever their GC runs, so nearly every input ends with
    # more mallocs than frees and libFuzzer would stop for a full leak scan
    # of a multi-megabyte heap after each (about 30 times slower).  LeakSanitizer
    # still checks the whole process when it exits, which fails the run.
    if [ -d "$here/corpus/$target" ]; then
        cp -R "$here/corpus/$target/." "$work/$target/corpus/"
    fi
    # shellcheck disable=SC2086
    "$bin" $flags -detect_leaks=0 -max_total_time="$seconds" -print_final_stats=1 \
        "$work/$target/corpus" >"$log" 2>&1
    rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
    corpus=$(ls "$work/$target/corpus" | wc -l)
    if [ $rc -ne 0 ]; then
        echo "$target: FAILED (exit $rc) after ${execs:-?} executions; input saved in $crashes/"
        grep -E '^(==[0-9]+==|SUMMARY|fuzz|.*runtime error|artifact_prefix|Test unit written)' "$log" |
            head -n 20
        tail -n 40 "$log"
        failed=1
    else
        echo "$target: ${execs:-?} executions in ${seconds} s (${rate:-?}/s), corpus $corpus, no crash"
    fi
done
exit $failed
