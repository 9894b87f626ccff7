#!/bin/sh
# Every fault drill against BUILD/o2c, in full (20 kills, a one-minute
# provider outage, ...), or the short versions with --quick.
#   tests/drills/run.sh BUILD [--quick] [DRILL...]
# DRILL: kill, disk_full, provider_down, broken_script (default: all).
# Exit 1 when any drill fails; each prints what it checked.
set -u
BUILD=${1:-build}
shift 2>/dev/null || true
quick=
if [ "${1:-}" = --quick ]; then quick=--quick; shift; fi
root=$(cd "$(dirname "$0")/../.." && pwd)
case $BUILD in /*) bin=$BUILD/o2c ;; *) bin=$root/$BUILD/o2c ;; esac
drills=${*:-kill disk_full provider_down broken_script}
rc=0
failed=
for d in $drills; do
  echo "=== drill: $d $quick"
  if O2C_SOURCE_DIR=$root node "$root/tests/drills/$d.mjs" --bin "$bin" $quick; then :; else
    rc=1
    failed="$failed $d"
  fi
done
if [ $rc = 0 ]; then echo "drills: all passed ($drills)"; else echo "drills: FAILED:$failed"; fi
exit $rc
