#!/bin/sh
# Library stages never print or exit (doc/reference.md §6): only programs/ talks to the user.
# Usage: check-nm.sh OBJDIR
objdir=${1:-build/obj}
bad=0
for stage in common formats repack verify convert; do
    [ -d "$objdir/$stage" ] || continue
    for o in "$objdir/$stage"/*.o; do
        [ -f "$o" ] || continue
        syms=$(nm -u "$o" | awk '{print $2}' | grep -E '^(exit|_exit|_Exit|abort|printf|vprintf|fprintf|vfprintf|puts|fputs|putchar|perror|__printf_chk|__fprintf_chk|__vfprintf_chk|stdout|stderr)$')
        if [ -n "$syms" ]; then
            echo "check-nm: $o uses $(echo $syms | tr '\n' ' ')"
            bad=1
        fi
    done
done
[ $bad = 0 ] && echo "check-nm: no library object prints or exits"
exit $bad
