#!/bin/sh
# check-fnlen.sh [ROOT] - no function of the library or the command line longer than MAX_LINES
# (80), counted from the line that opens its definition to its closing brace (Universal Ctags'
# line and end fields). Fails naming each one, longest first; then checks that the check can
# fail: a planted 81-line function must be caught and an 80-line one must pass.
cd "${1:-$(dirname "$0")/..}" || exit 2
MAX_LINES=${MAX_LINES:-80}
command -v ctags > /dev/null || { echo "check-fnlen: needs Universal Ctags (Debian: universal-ctags)" >&2; exit 2; }

# Functions over MAX_LINES in the C files under the given folders: "LINES FILE:LINE NAME".
long_functions() {
    ctags --langmap=c:+.cl --c-kinds=f --fields=+ne -o - -R "$@" 2> /dev/null |
        awk -F'\t' -v max="$MAX_LINES" '{
            l = 0; e = 0
            for (i = 4; i <= NF; i++) { if ($i ~ /^line:/) l = substr($i, 6); if ($i ~ /^end:/) e = substr($i, 5) }
            if (e - l + 1 > max) printf "%d %s:%d %s\n", e - l + 1, $2, l, $1
        }' | sort -rn
}

# A planted function of n lines, signature to closing brace.
plant() {
    awk -v n="$2" 'BEGIN { print "int planted(int x);"; print "int planted(int x)"; print "{";
                           for (i = 0; i < n - 3; i++) print "    x++;"; print "}" }' > "$1"
}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
plant "$tmp/long.c" $((MAX_LINES + 1))
plant "$tmp/ok.c" "$MAX_LINES"
planted=$(cd "$tmp" && long_functions long.c ok.c)
if [ "$planted" != "$((MAX_LINES + 1)) long.c:2 planted" ]; then
    echo "check-fnlen: the check does not work: planted functions gave '$planted'" >&2
    exit 2
fi

found=$(long_functions common formats repack verify convert programs kernels)
if [ -n "$found" ]; then
    echo "$found" | sed "s/^/check-fnlen: over $MAX_LINES lines: /"
    exit 1
fi
echo "check-fnlen: no function over $MAX_LINES lines (a planted $((MAX_LINES + 1))-line one is caught)"
