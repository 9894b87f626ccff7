#!/bin/sh
# The floor plan of core/: a C folder includes only its own headers and those
# of the floors below it, never a sibling on its floor or a floor above.
#   floor 0  host            the Lua host: VM, tasks, sandbox, config, logs, generations
#   floor 1  net, store      HTTP server and client; storage, users, sessions
#   floor 2  llm             the per-provider schedulers (over net's client)
#   floor 3  app             where the program is assembled (the VM's modules)
#   floor 4  cli             one file per command
# README.md's layout table states the same order.  Exit 1 (and print each
# offending include) when an include goes sideways or up.
set -u
core=${1:-$(cd "$(dirname "$0")/../../core" && pwd)}

floor_of() {
    case $1 in
    host) echo 0 ;;
    net | store) echo 1 ;;
    llm) echo 2 ;;
    app) echo 3 ;;
    cli) echo 4 ;;
    *) echo "" ;;
    esac
}

bad=0
checked=0
for dir in "$core"/*/; do
    folder=$(basename "$dir")
    own=$(floor_of "$folder")
    [ -n "$own" ] || continue # core/lua, core/web, core/tools: no C floor
    for file in "$dir"*.c "$dir"*.h; do
        [ -e "$file" ] || continue
        checked=$((checked + 1))
        # '#include "other/x.h"' lines: the folder each names.
        for target in $(sed -n 's/^#include "\([a-z_]*\)\/.*/\1/p' "$file" | sort -u); do
            [ "$target" = "$folder" ] && continue
            theirs=$(floor_of "$target")
            if [ -z "$theirs" ] || [ "$theirs" -ge "$own" ]; then
                echo "floors: core/$folder/$(basename "$file") includes $target/ (floor ${theirs:-?}), but $folder/ is on floor $own" >&2
                bad=1
            fi
        done
    done
done
[ "$checked" -gt 0 ] || { echo "floors: no C files under $core" >&2; exit 2; }
if [ $bad = 0 ]; then echo "floors: $checked files, every include goes down"; fi
exit $bad
