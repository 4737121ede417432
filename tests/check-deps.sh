#!/bin/sh
# The stages and what each may include (doc/reference.md §6):
#   common  <- formats <- repack <- convert;  verify uses formats and kernels, never repack.
#   include/ (the public header, modelprep.h) stands alone, and every stage may use it;
#   programs (the command line) may use every stage; no library stage includes programs/.
# A folder's *_internal.h headers are its own: no other folder includes them.
# Fails naming every include that crosses a line the wrong way.
# Usage: check-deps.sh [ROOT]   (default: the tree this script is in)
cd "${1:-$(dirname "$0")/..}" || exit 2
allowed() {
    case "$1" in
    include) echo "include" ;;
    common) echo "include common" ;;
    formats) echo "include common formats" ;;
    repack) echo "include common formats repack" ;;
    kernels) echo "kernels" ;;
    verify) echo "include common formats kernels verify" ;;
    convert) echo "include common formats repack verify kernels convert" ;;
    programs) echo "include common formats repack verify kernels convert programs" ;;
    esac
}
bad="${TMPDIR:-/tmp}/mp-check-deps.$$"
rm -f "$bad"
for stage in include common formats repack kernels verify convert programs; do
    [ -d "$stage" ] || continue
    ok=$(allowed "$stage")
    for f in $(find "$stage" -name '*.[ch]' -o -name '*.cl' | sort); do
        grep -n '#include "' "$f" | while IFS= read -r line; do
            inc=$(printf '%s' "$line" | sed 's/.*#include "\([^"]*\)".*/\1/')
            case "$inc" in
            ../*) dep=$(printf '%s' "$inc" | cut -d/ -f2) ;;
            *) dep=$stage ;;
            esac
            case " $ok " in
            *" $dep "*) ;;
            *) echo "check-deps: $f includes \"$inc\": $stage may use only: $ok"; echo x >> "$bad" ;;
            esac
            case "$dep:$inc" in
            "$stage":*) ;;
            *_internal.h) echo "check-deps: $f includes \"$inc\": $dep's internal header, private to $dep/"; echo x >> "$bad" ;;
            esac
        done
    done
done
if [ -f "$bad" ]; then
    rm -f "$bad"
    exit 1
fi
echo "check-deps: stage includes follow common <- formats <- repack <- convert <- programs; verify never uses repack; no folder includes another's internal header"
