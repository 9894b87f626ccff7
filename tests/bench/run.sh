#!/usr/bin/env bash
# `make bench`: every benchmark in one table (tests/bench/README.md).
#   tests/bench/run.sh [BUILD_DIR]      (BUILD_DIR defaults to build)
# Builds nothing: uses BUILD_DIR/o2c and BUILD_DIR/tests/bench/bench_core from
# `make build`.  Starts its own servers on free 127.0.0.1 ports with temporary
# data folders; prints the table on stdout and writes BUILD_DIR/bench.md.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${1:-build}
case $build in /*) ;; *) build="$root/$build" ;; esac

[ -x "$build/o2c" ] || { echo "bench: $build/o2c is missing: run make build" >&2; exit 2; }
command -v node >/dev/null 2>&1 || { echo "bench: node (20) is missing" >&2; exit 2; }
# Without these the rows that need them say n/a; the rest still runs.
missing=()
for tool in wrk nginx; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
[ -f /usr/lib/nginx/modules/ngx_http_lua_module.so ] || missing+=("libnginx-mod-http-lua")
if [ ${#missing[@]} -gt 0 ]; then
  echo "bench: missing ${missing[*]}: their rows will say n/a" >&2
  echo "bench: config/install-deps.sh --test installs wrk, nginx-light, libnginx-mod-http-lua, lua-cjson" >&2
fi

# 1,000 idle connections plus wrk's 64 need more than the usual 1024 descriptors.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || ulimit -n 8192 2>/dev/null || true

cd "$root"
exec node "$here/bench.mjs" "$build"
