#!/usr/bin/env bash
# Installs the npm packages the browser tests use (playwright-core only; it
# drives Debian's /usr/bin/chromium and downloads no browser).  No-op when present.
set -euo pipefail
cd "$(dirname "$0")"
[ -f package.json ] || exit 0
[ -d node_modules/playwright-core ] && exit 0
npm install --no-audit --no-fund --loglevel=error >/dev/null
