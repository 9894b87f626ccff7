#!/bin/sh
# config/o2c.service as systemd reads it: `systemd-analyze verify` finds
# nothing to say (an unknown or misspelt key is only a warning there, so any
# output fails), the settings the unit promises are there, and
# `systemd-analyze security` rates its exposure at most 2.0 ("OK").
#   tests/install/unit.sh SOURCE_DIR O2C_BINARY
# verify needs ExecStart's binary to exist: a copy of the unit names O2C_BINARY.
set -eu
unit=$1/config/o2c.service
tmp=$(mktemp -d /tmp/o2c-unit-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fail() {
    echo "unit: $*" >&2
    exit 1
}
command -v systemd-analyze >/dev/null ||
    fail "systemd-analyze not found: config/install-deps.sh --test installs systemd"
sed "s|^ExecStart=/usr/bin/o2c |ExecStart=$2 |" "$unit" >"$tmp/o2c.service"
grep -q "^ExecStart=$2 serve" "$tmp/o2c.service" || fail "no 'ExecStart=/usr/bin/o2c serve' in $unit"

# --man=no: the man page is not installed on a build machine.
out=$(cd "$tmp" && systemd-analyze verify --man=no o2c.service 2>&1) || fail "verify failed: $out"
[ -z "$out" ] || fail "systemd-analyze verify complains: $out"

for line in Type=notify User=o2c StateDirectory=o2c 'ExecReload=/bin/kill -HUP $MAINPID' \
    Restart=on-failure ProtectSystem=strict ProtectHome=yes PrivateTmp=yes NoNewPrivileges=yes \
    'RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6' SystemCallFilter=@system-service \
    MemoryDenyWriteExecute=yes PrivateDevices=yes; do
    grep -qxF "$line" "$unit" || fail "$unit has no '$line'"
done
grep -q '^#* *MemoryMax=' "$unit" || fail "$unit gives no MemoryMax guidance"

report=$(cd "$tmp" && systemd-analyze security --offline=yes --threshold=20 o2c.service 2>&1) ||
    fail "exposure above 2.0: $(echo "$report" | tail -n 1)"
echo "unit: ok, $(echo "$report" | tail -n 1 | sed 's/^→ //')"
