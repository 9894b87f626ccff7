#!/usr/bin/env bash
# Installs the Debian packages o2c needs to build, run and test.
# A no-op when everything is present; apt-get through sudo only when not root.
set -euo pipefail

packages=(
  build-essential clang libclang-rt-14-dev cmake pkg-config
  liblua5.4-dev lua5.4 lua-cjson libuv1-dev libcurl4-openssl-dev libsqlite3-dev
  node-llhttp libsodium-dev libcmocka-dev sqlite3
  libpq-dev libsystemd-dev
  libxlsxwriter-dev  # the report's Excel export
  libcmark-gfm-dev libcmark-gfm-extensions-dev  # the report's Markdown to HTML (core/host/markdown.c)
  pandoc  # the man page build/o2c.1 from docs/o2c.1.md, and the report's Word export
  # The report's other exports run these as child processes (each optional:
  # without it, that format answers 501 naming the package).
  weasyprint librsvg2-bin zip
)
if [ "${1:-}" = "--test" ]; then
  # prometheus: its promtool checks /metrics (the package's service is not needed).
  # postgresql-15: the real server tests/lib/pg.sh starts (its cluster service is not needed).
  # systemd: its systemd-analyze verifies config/o2c.service (systemd need not run).
  # openssl: the self-signed certificate the nginx example is tested with.
  # poppler-utils, python3-openpyxl: tests/integration/exports.test.mjs reads the PDF and XLSX back.
  packages+=(wrk chromium nginx-light libnginx-mod-http-lua curl prometheus postgresql-15
    systemd openssl poppler-utils python3-openpyxl)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node.js may come from elsewhere than Debian (with npm bundled, which then
# conflicts with Debian's npm): ask for the commands, not the packages.
if [ "${1:-}" = "--test" ] && ! { command -v node && command -v npm; } >/dev/null; then
  missing+=(nodejs npm)
fi
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "o2c: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
