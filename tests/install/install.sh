#!/bin/sh
# What the IT person does with a build: `cmake --install` into a DESTDIR, run
# the installed o2c from there (no checkout in sight), and build the Debian
# package of the same build tree and look inside it.
#   tests/install/install.sh BUILD_DIR
# Reuses BUILD_DIR's o2c (no rebuild); everything else goes to a temp folder.
set -eu
build=$(cd "$1" && pwd)
tmp=$(mktemp -d /tmp/o2c-install-XXXXXX)
server=""
cleanup() {
    [ -z "$server" ] || kill "$server" 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT
fail() {
    echo "install: $*" >&2
    exit 1
}
has() { [ -e "$1" ] || fail "missing after install: ${1#"$tmp"/}"; }

# 1. make install PREFIX=/usr/local DESTDIR=$tmp/root
root=$tmp/root
DESTDIR=$root cmake --install "$build" --prefix /usr/local >"$tmp/install.log" ||
    fail "cmake --install failed: $(cat "$tmp/install.log")"
o2c=$root/usr/local/bin/o2c
has "$o2c"
has "$root/usr/local/share/o2c/scripts/o2c/questionnaire.lua"
has "$root/usr/local/share/o2c/kb/agents.lua"
has "$root/usr/local/etc/o2c/o2c.conf.lua"
has "$root/usr/local/lib/systemd/system/o2c.service"
grep -qx 'ExecStart=/usr/local/bin/o2c serve' "$root/usr/local/lib/systemd/system/o2c.service" ||
    fail "the installed unit does not start /usr/local/bin/o2c: $(grep ExecStart "$root/usr/local/lib/systemd/system/o2c.service")"

# 2. The installed o2c, run from a folder with no scripts/ or kb/: it finds
#    its own under share/o2c, and its config under etc/o2c.
mkdir "$tmp/elsewhere"
cd "$tmp/elsewhere"
out=$("$o2c" check 2>&1) || fail "installed o2c check failed: $out"
echo "$out" | grep -q '^ok: generation' || fail "installed o2c check: $out"
# A folder set explicitly still wins over the installed one.
if out=$(O2C_SCRIPTS_DIR=$tmp/none "$o2c" check 2>&1); then
    fail "O2C_SCRIPTS_DIR=$tmp/none was ignored: $out"
fi
echo 'return { log_level = "loud" }' >"$root/usr/local/etc/o2c/o2c.conf.lua"
if out=$("$o2c" check 2>&1) || ! echo "$out" | grep -q 'etc/o2c/o2c.conf.lua: log_level'; then
    fail "installed o2c did not read etc/o2c/o2c.conf.lua: $out"
fi
cp "$(dirname "$0")/../../config/o2c.conf.lua" "$root/usr/local/etc/o2c/o2c.conf.lua"

# 3. o2c serve on a loopback port, data in a temp folder; /healthz answers;
#    SIGTERM stops it cleanly.  A port found taken is skipped.
start_server() {
    O2C_ADMIN_PASSWORD=install-test-password "$o2c" serve --listen "127.0.0.1:$1" \
        --data "$tmp/data" 2>"$tmp/serve.log" &
    server=$!
    for _ in $(seq 1 200); do
        grep -q '"msg":"listening"' "$tmp/serve.log" && return 0
        if ! kill -0 "$server" 2>/dev/null; then
            server=""
            grep -q '"msg":"cannot listen"' "$tmp/serve.log" && return 1
            fail "installed o2c serve exited: $(cat "$tmp/serve.log")"
        fi
        sleep 0.1
    done
    fail "installed o2c serve did not listen: $(cat "$tmp/serve.log")"
}
port=$((20000 + $$ % 20000))
tries=0
until start_server "$port"; do
    tries=$((tries + 1))
    [ "$tries" -lt 20 ] || fail "no free port: $(cat "$tmp/serve.log")"
    port=$((port + 1))
done
url=127.0.0.1:$port
health=$(curl -sS "http://$url/healthz") || fail "GET /healthz failed"
echo "$health" | grep -q '"ok"' || fail "GET /healthz: $health"
kill -TERM "$server"
wait "$server" || fail "o2c serve did not stop cleanly: $(cat "$tmp/serve.log")"
server=""
has "$tmp/data/o2c.db"

# 4. make deb: CPack over the same build tree, into the temp folder.
(cd "$build" && cpack -G DEB -B "$tmp/deb" >"$tmp/cpack.log" 2>&1) ||
    fail "cpack failed: $(cat "$tmp/cpack.log")"
deb=$(ls "$tmp"/deb/o2c_*.deb 2>/dev/null | head -n 1)
[ -n "$deb" ] || fail "cpack made no .deb: $(cat "$tmp/cpack.log")"
info=$(dpkg-deb --info "$deb")
for dep in 'libuv1' 'libsqlite3-0' 'libsodium23' 'libcurl4' 'liblua5.4-0' 'lua-cjson' 'adduser'; do
    echo "$info" | grep -q "^ Depends:.*$dep" || fail "the package does not depend on $dep: $info"
done
contents=$(dpkg-deb --contents "$deb")
for path in ./usr/bin/o2c ./usr/share/o2c/scripts/o2c/questionnaire.lua ./usr/share/o2c/kb/ \
    ./etc/o2c/o2c.conf.lua ./usr/lib/systemd/system/o2c.service; do
    echo "$contents" | grep -q " $path\$" || fail "the package has no $path"
done
control=$tmp/control
dpkg-deb --control "$deb" "$control"
grep -q 'adduser --system --group --home /var/lib/o2c' "$control/postinst" ||
    fail "postinst does not create the o2c system user"
if grep -v '^ *#' "$control/postinst" | grep -Eq 'systemctl (start|enable|restart)|invoke start'; then
    fail "postinst starts or enables o2c: it must only install the unit"
fi
grep -qx /etc/o2c/o2c.conf.lua "$control/conffiles" || fail "the config is not a conffile"

# 5. The package's own tree works as installed: its unit starts /usr/bin/o2c,
#    and its o2c finds /etc/o2c (here: under the unpacked tree).
unpacked=$tmp/unpacked
dpkg-deb -x "$deb" "$unpacked"
grep -qx 'ExecStart=/usr/bin/o2c serve' "$unpacked/usr/lib/systemd/system/o2c.service" ||
    fail "the packaged unit does not start /usr/bin/o2c"
echo 'return { log_level = "loud" }' >"$unpacked/etc/o2c/o2c.conf.lua"
if out=$("$unpacked/usr/bin/o2c" check 2>&1) || ! echo "$out" | grep -q '/etc/o2c/o2c.conf.lua: log_level'; then
    fail "the packaged o2c did not read etc/o2c/o2c.conf.lua: $out"
fi
echo "install: ok (installed tree, o2c check, o2c serve /healthz, $(basename "$deb"))"
