#!/bin/sh
# o2c(1) and `o2c help` agree: the same commands, per command the same
# subcommands and options, the same exit codes; and every environment
# variable the C and Lua code reads is in the page's ENVIRONMENT (and nothing
# else is).  Reads the groff source pandoc wrote (no man(1) needed).
#   usage: manpage.sh O2C_BINARY MAN_PAGE CORE_DIR
# Exit 1, naming each difference, when they disagree.
set -u
bin=$1
page=$2
core=$3

if [ ! -s "$page" ]; then
    echo "manpage: $page is missing: install pandoc (config/install-deps.sh)," \
        "configure again and build the target man" >&2
    exit 1
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# The page's source with font changes and hyphen escapes removed, read as
# records: cmd NAME | sub CMD WORD | opt CMD --NAME | env NAME | exit N, from
# the subsections of COMMANDS and the tags (.TP) of COMMANDS, ENVIRONMENT and
# EXIT STATUS.
sed -e 's/\\-/-/g' -e 's/\\f\[[A-Z]*\]//g' -e 's/\\f[BIRP]//g' "$page" | awk '
    /^\.SH / { sub(/^\.SH /, ""); gsub(/"/, ""); section = $0; cmd = ""; next }
    /^\.SS / && section == "COMMANDS" { cmd = $2; if (cmd == "o2c") cmd = $3; print "cmd", cmd; next }
    /^\.TP/ { tag = 1; next }
    tag {
        tag = 0
        if (section == "COMMANDS" && cmd != "") {
            if ($1 == "o2c" && $2 == cmd && $3 ~ /^[a-z]+$/)
                print "sub", cmd, $3
            else if ($1 ~ /^--/)
                print "opt", cmd, $1
        } else if (section == "ENVIRONMENT") {
            gsub(/,/, " ")
            for (i = 1; i <= NF; i++) if ($i ~ /^[A-Z][A-Z0-9_]*$/) print "env", $i
        } else if (section == "EXIT STATUS" && $1 ~ /^[0-9]+$/) {
            print "exit", $1
        }
    }' | sort -u >"$tmp/page"

# The same records from o2c help and o2c help CMD (the usage, up to its first
# blank line: the options each command accepts).
"$bin" help >"$tmp/help.txt" || { echo "manpage: $bin help failed" >&2; exit 1; }
awk '/^commands:/ { on = 1; next } on && NF == 0 { on = 0 } on { print "cmd", $1 }' \
    "$tmp/help.txt" >"$tmp/help"
sed -n 's/^Exit codes: //p' "$tmp/help.txt" | tr ',' '\n' | awk '{ print "exit", $1 }' >>"$tmp/help"
for cmd in $(awk '$1 == "cmd" { print $2 }' "$tmp/help"); do
    "$bin" help "$cmd" | awk -v cmd="$cmd" '
        NF == 0 { exit }
        {
            for (i = 1; i < NF; i++)
                if ($i == "o2c" && $(i + 1) == cmd && $(i + 2) ~ /^[a-z|]+$/) {
                    n = split($(i + 2), subs, "|")
                    for (j = 1; j <= n; j++) print "sub", cmd, subs[j]
                }
            line = $0
            while (match(line, /--[a-z][a-z-]*/)) {
                print "opt", cmd, substr(line, RSTART, RLENGTH)
                line = substr(line, RSTART + RLENGTH)
            }
        }'
done >>"$tmp/help"

# Environment variables the code reads: getenv("X") anywhere, and the
# O2C_* names of the configuration table (quoted whole).
grep -rhoE 'getenv\("[A-Za-z_][A-Za-z0-9_]*"\)' "$core" --include='*.c' --include='*.lua' |
    sed 's/.*("\(.*\)")/env \1/' >"$tmp/code"
grep -rhoE '"O2C_[A-Z0-9_]+"' "$core" --include='*.c' | tr -d '"' | sed 's/^/env /' >>"$tmp/code"
sort -u "$tmp/help" -o "$tmp/help"
sort -u "$tmp/code" -o "$tmp/code"
grep '^env ' "$tmp/page" >"$tmp/page-env"
grep -v '^env ' "$tmp/page" >"$tmp/page-help"

# Prints each record only one side has, in words; counts them in $bad.
describe() { # WHERE-IT-IS WHERE-IT-IS-NOT < records
    while read -r kind a b; do
        case $kind in
        cmd) echo "command $a: in $1, not in $2" ;;
        sub) echo "o2c $a $b: in $1, not in $2" ;;
        opt) echo "option $b of o2c $a: in $1, not in $2" ;;
        env) echo "environment variable $a: in $1, not in $2" ;;
        exit) echo "exit status $a: in $1, not in $2" ;;
        esac
    done
}
out=$(
    comm -23 "$tmp/help" "$tmp/page-help" | describe "o2c help" "the man page"
    comm -13 "$tmp/help" "$tmp/page-help" | describe "the man page" "o2c help"
    comm -23 "$tmp/code" "$tmp/page-env" | describe "the code ($core)" "the man page's ENVIRONMENT"
    comm -13 "$tmp/code" "$tmp/page-env" | describe "the man page's ENVIRONMENT" "the code ($core)"
)
if [ -n "$out" ]; then
    echo "$out" | sed 's/^/manpage: /'
    echo "manpage: $page and o2c help disagree: update docs/o2c.1.md or the usage in core/cli/cli.c"
    exit 1
fi
echo "manpage: $(grep -c '^cmd' "$tmp/help") commands, $(grep -c '^sub' "$tmp/help") subcommands," \
    "$(grep -c '^opt' "$tmp/help") options, $(wc -l <"$tmp/code") environment variables:" \
    "o2c help, the code and $page agree"
