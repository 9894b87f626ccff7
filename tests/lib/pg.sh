#!/usr/bin/env bash
# A throw-away PostgreSQL 15 for tests: Debian's postgresql-15 binaries, a
# cluster in a temporary folder, listening only on a Unix socket in that
# folder (nothing on the network), one database, trust authentication.
#
#   pg.sh run CMD [ARG...]   starts a server, runs CMD with O2C_TEST_PG_URL
#                            (the libpq URL), O2C_TEST_PG_DIR and O2C_TEST_PG
#                            (this script) set, stops and removes the server
#                            (also when CMD crashes or this script is killed),
#                            exits with CMD's status
#   pg.sh start DIR          creates DIR, starts a server there, prints the URL
#   pg.sh restart DIR        restarts it (every connection is dropped)
#   pg.sh stop DIR           stops it and removes DIR
#
# initdb refuses to run as root: as root, the server runs as the user
# O2C_TEST_PG_USER (default nobody) and DIR belongs to that user.  The binaries
# come from O2C_PG_BIN (default /usr/lib/postgresql/15/bin).
set -euo pipefail

pg_bin=${O2C_PG_BIN:-/usr/lib/postgresql/15/bin}
pg_user=${O2C_TEST_PG_USER:-nobody}
db_name=o2c_test
db_role=o2c

die() {
    echo "pg.sh: $*" >&2
    exit 1
}

need_binaries() {
    [ -x "$pg_bin/initdb" ] && [ -x "$pg_bin/pg_ctl" ] && [ -x "$pg_bin/postgres" ] ||
        die "no PostgreSQL 15 in $pg_bin: install it with 'apt-get install postgresql-15' (or config/install-deps.sh --test), or set O2C_PG_BIN to its bin folder"
}

# Runs a PostgreSQL binary as the server's user (itself when not root).
as_server() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u "$pg_user" -- "$@"
    else
        "$@"
    fi
}

url_of() {
    echo "postgresql://$db_role@/$db_name?host=$1"
}

start() {
    local dir=$1
    need_binaries
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    [ -z "$(ls -A "$dir")" ] || die "$dir is not empty"
    [ "$(id -u)" -ne 0 ] || chown "$pg_user" "$dir"
    as_server "$pg_bin/initdb" -D "$dir/data" -U "$db_role" --auth=trust -E UTF8 --no-locale \
        >"$dir/initdb.log" 2>&1 || die "initdb failed: $(tail -5 "$dir/initdb.log")"
    # Test speed over durability; no TCP listener at all.
    cat >>"$dir/data/postgresql.conf" <<EOF
listen_addresses = ''
unix_socket_directories = '$dir'
port = 5432
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 40
EOF
    as_server "$pg_bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null ||
        die "the server did not start: $(tail -5 "$dir/server.log" 2>/dev/null)"
    as_server "$pg_bin/createdb" -h "$dir" -U "$db_role" "$db_name" ||
        die "createdb $db_name failed"
    url_of "$dir"
}

restart() {
    local dir=$1
    need_binaries
    as_server "$pg_bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 -m fast restart \
        >/dev/null || die "the server did not restart: $(tail -5 "$dir/server.log" 2>/dev/null)"
}

stop() {
    local dir=$1
    if [ -f "$dir/data/postmaster.pid" ]; then
        as_server "$pg_bin/pg_ctl" -D "$dir/data" -w -t 60 -m immediate stop >/dev/null 2>&1 || true
    fi
    rm -rf "$dir"
}

run() {
    [ $# -gt 0 ] || die "usage: pg.sh run CMD [ARG...]"
    need_binaries
    local dir
    dir=$(mktemp -d "${TMPDIR:-/tmp}/o2c-pg.XXXXXX")
    trap 'stop "$dir"' EXIT
    trap 'exit 130' INT TERM
    # Stops the server even when this script is killed with SIGKILL (a ctest
    # timeout): a watcher that outlives it.
    local self=$$
    (
        trap '' INT TERM
        while kill -0 "$self" 2>/dev/null; do sleep 1; done
        stop "$dir"
    ) </dev/null >/dev/null 2>&1 &
    local url
    url=$(start "$dir")
    local status=0
    O2C_TEST_PG_URL=$url O2C_TEST_PG_DIR=$dir O2C_TEST_PG=$(realpath "$0") "$@" || status=$?
    exit $status
}

cmd=${1:-}
shift || true
case $cmd in
run) run "$@" ;;
start | restart | stop)
    [ $# -eq 1 ] || die "usage: pg.sh $cmd DIR"
    "$cmd" "$1"
    ;;
*) die "usage: pg.sh run CMD [ARG...] | start DIR | restart DIR | stop DIR" ;;
esac
