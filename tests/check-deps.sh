#!/bin/sh
# The stages and what each may include (doc/reference.md §6):
#   common  <- formats <- repack <- convert;  verify uses formats and kernels, never repack.
# Fails naming every include that crosses a line the wrong way.
cd "$(dirname "$0")/.." || exit 2
allowed() {
    case "$1" in
    common) echo "common" ;;
    formats) echo "common formats" ;;
    repack) echo "common formats repack" ;;
    kernels) echo "kernels" ;;
    verify) echo "common formats kernels verify" ;;
    convert) echo "common formats repack verify kernels convert" ;;
    esac
}
bad=0
for stage in common formats repack kernels verify convert; do
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
            *) echo "check-deps: $f includes \"$inc\": $stage may use only: $ok"; echo x >> "${TMPDIR:-/tmp}/mp-check-deps.$$" ;;
            esac
        done
    done
done
if [ -f "${TMPDIR:-/tmp}/mp-check-deps.$$" ]; then
    rm -f "${TMPDIR:-/tmp}/mp-check-deps.$$"
    exit 1
fi
echo "check-deps: stage includes follow common <- formats <- repack <- convert; verify never uses repack"
