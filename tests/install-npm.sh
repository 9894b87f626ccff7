#!/usr/bin/env bash
# Installs the npm packages the tests use: playwright-core (the browser test;
# it drives Debian's /usr/bin/chromium and downloads no browser) and
# @redocly/cli (lints the OpenAPI description).  No-op when present.
set -euo pipefail
cd "$(dirname "$0")"
[ -f package.json ] || exit 0
[ -d node_modules/playwright-core ] && [ -x node_modules/.bin/redocly ] && exit 0
npm install --no-audit --no-fund --loglevel=error >/dev/null
