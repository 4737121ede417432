#!/bin/sh
# Comments cite the repository's own documents, never notes outside it: every source file
# (C, OpenCL, shell, Python, Makefile) is scanned, and the check fails naming each line that
#   - cites a research note (the notes live outside the repository; their facts are in doc/), or
#   - cites doc/PATH.md that does not exist, or a section "doc/PATH.md §N" that PATH has no
#     heading for ("## N." or "### N.M"), or
#   - cites a bare NAME.md that is neither in doc/formats/, doc/ nor at the top.
# Usage: check-doc-cites.sh [ROOT] (default: the checkout holding this script). Exit 1 on a finding.
root=${1:-$(dirname "$0")/..}
cd "$root" || exit 2
notes='resea''rch/'   # split, so that this file does not cite it
files=$(find . \( -path ./build -o -path ./.git -o -path ./tests/fuzz/corpus -o -path ./tests/check-doc-cites.sh \) -prune -o -type f \
    \( -name '*.[ch]' -o -name '*.cl' -o -name '*.sh' -o -name '*.py' -o -name Makefile -o -name '*.mk' \) \
    -print | sed 's|^\./||' | sort)
out=$(
for f in $files; do
    grep -n "$notes" "$f" | sed "s|^|$f:|; s|\$|  <- cites a research note outside the repository: cite doc/ instead|"
    grep -no 'doc/[A-Za-z0-9_./-]*\.md\( §[0-9][0-9.]*\)\?' "$f" | while IFS=: read -r n cite; do
        path=${cite%% §*}
        if [ ! -f "$path" ]; then
            echo "$f:$n: $cite  <- no such file"
            continue
        fi
        case "$cite" in *§*) ;; *) continue ;; esac
        sec=${cite##*§}
        sec=${sec%.}
        esc=$(printf '%s' "$sec" | sed 's/\./\\./g')
        grep -q "^#\{1,4\} $esc[. ]" "$path" || echo "$f:$n: $cite  <- $path has no section $sec"
    done
    grep -no '\(^\|[^A-Za-z0-9_./-]\)[A-Za-z0-9_-]\{1,\}\.md' "$f" | while IFS=: read -r n cite; do
        name=$(printf '%s' "$cite" | sed 's/^[^A-Za-z0-9_-]//')
        [ -f "doc/formats/$name" ] || [ -f "doc/$name" ] || [ -f "$name" ] ||
            echo "$f:$n: $name  <- not in doc/formats/, doc/ or the top of the repository"
    done
done
)
if [ -n "$out" ]; then
    printf '%s\n' "$out" | sed 's/^/check-doc-cites: /'
    exit 1
fi
echo "check-doc-cites: $(printf '%s\n' $files | wc -l) source files cite only documents in the repository"
