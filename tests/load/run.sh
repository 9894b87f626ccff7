#!/bin/sh
# make load USERS=N: the load run against BUILD/o2c, then every fault drill
# in full (tests/drills/run.sh).  Exit 1 when the load run or a drill fails.
#   tests/load/run.sh BUILD USERS
# Environment: LOAD_ARGS (more options for load.mjs, e.g. "--fault-rate 0.05"),
# DRILLS=0 (the load run only).
set -u
BUILD=${1:-build}
USERS=${2:-50}
root=$(cd "$(dirname "$0")/../.." && pwd)
case $BUILD in /*) bin=$BUILD/o2c ;; *) bin=$root/$BUILD/o2c ;; esac
if [ ! -x "$bin" ]; then
  echo "load: no binary at $bin (build first: make build)" >&2
  exit 2
fi
command -v node >/dev/null 2>&1 || { echo "load: node is needed (apt-get install nodejs)" >&2; exit 2; }
ulimit -n 16384 2>/dev/null || true

rc=0
# shellcheck disable=SC2086
O2C_SOURCE_DIR=$root node "$root/tests/load/load.mjs" --bin "$bin" --users "$USERS" ${LOAD_ARGS:-} || rc=1
if [ "${DRILLS:-1}" != 0 ]; then
  "$root/tests/drills/run.sh" "$BUILD" || rc=1
fi
exit $rc
