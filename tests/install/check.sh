#!/bin/sh
# make install into a temporary prefix, then build tests/install/use_lib.c against the installed
# files with nothing but pkg-config, linked dynamically and statically, and run both on a model
# from tests/gen/mkmodel: their output must equal use_lib.expected. Then uninstall must leave the
# prefix empty, and a DESTDIR install must put the same files under DESTDIR.
#
# Usage: check.sh BUILD   (run by `make check-install`; MAKE, CC from the environment)
set -u
src=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "$src/${1:-build}" && pwd)
make=${MAKE:-make}
cc=${CC:-cc}
tmp=$(mktemp -d) || exit 2
trap 'rm -rf "$tmp"' EXIT
fail() { echo "check-install: $*"; exit 1; }

# The installed files, as install and uninstall name them.
files="bin/modelprep share/man/man1/modelprep.1 include/modelprep.h lib/libmodelprep.a
lib/libmodelprep.so lib/libmodelprep.so.0 lib/pkgconfig/modelprep.pc"

prefix=$tmp/prefix
$make -s -C "$src" --no-print-directory install PREFIX="$prefix" BUILD="$build" >"$tmp/install.log" 2>&1 ||
    { cat "$tmp/install.log"; fail "make install PREFIX=$prefix failed"; }
for f in $files; do [ -e "$prefix/$f" ] || fail "make install did not install $f"; done
[ "$(readlink "$prefix/lib/libmodelprep.so")" = libmodelprep.so.0 ] || fail "libmodelprep.so does not point at the soname"
readelf -d "$prefix/lib/libmodelprep.so.0" | grep -q 'SONAME.*\[libmodelprep\.so\.0\]' || fail "no soname libmodelprep.so.0"

"$build/tests/mkmodel" "$tmp/model" --layers 1 --hidden 64 --intermediate 128 --vocab 32 --bits 4 \
    --group-size 32 --seed 1 >/dev/null || fail "mkmodel failed"

# Dynamic: the shared library, found at run time through LD_LIBRARY_PATH.
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
flags=$(pkg-config --cflags --libs modelprep) || fail "pkg-config does not know modelprep"
$cc -std=c11 -Wall -Wextra -Werror -o "$tmp/use_dyn" "$src/tests/install/use_lib.c" $flags ||
    fail "use_lib.c does not build with: $flags"
readelf -d "$tmp/use_dyn" | grep -q 'NEEDED.*\[libmodelprep\.so\.0\]' || fail "the dynamic build does not need libmodelprep.so.0"

# Static: the same install without the shared library, so that -lmodelprep is the archive;
# --static adds the libraries it depends on (Requires.private, Libs.private).
cp -R "$prefix" "$tmp/static"
rm -f "$tmp/static"/lib/libmodelprep.so*
sed -i "s|$prefix|$tmp/static|g" "$tmp/static/lib/pkgconfig/modelprep.pc"
sflags=$(PKG_CONFIG_PATH="$tmp/static/lib/pkgconfig" pkg-config --static --cflags --libs modelprep)
$cc -std=c11 -Wall -Wextra -Werror -o "$tmp/use_static" "$src/tests/install/use_lib.c" $sflags ||
    fail "use_lib.c does not build with: $sflags"
if readelf -d "$tmp/use_static" | grep -q 'libmodelprep'; then fail "the static build needs libmodelprep at run time"; fi

for kind in dyn static; do
    mkdir "$tmp/work-$kind"
    LD_LIBRARY_PATH="$prefix/lib" "$tmp/use_$kind" "$tmp/model" "$tmp/work-$kind" >"$tmp/out-$kind" 2>&1
    rc=$?
    if ! diff -u "$src/tests/install/use_lib.expected" "$tmp/out-$kind"; then
        fail "use_lib ($kind) output differs from use_lib.expected (exit $rc)"
    fi
    [ $rc = 0 ] || fail "use_lib ($kind) exited $rc"
done

$make -s -C "$src" --no-print-directory uninstall PREFIX="$prefix" BUILD="$build" >/dev/null 2>&1 || fail "make uninstall failed"
left=$(cd "$prefix" && find . ! -type d | sort)
[ -z "$left" ] || fail "make uninstall left: $left"

stage=$tmp/stage
$make -s -C "$src" --no-print-directory install PREFIX=/opt/mp DESTDIR="$stage" BUILD="$build" >/dev/null 2>&1 ||
    fail "make install DESTDIR=$stage failed"
for f in $files; do [ -e "$stage/opt/mp/$f" ] || fail "DESTDIR install did not install $f"; done
grep -qx 'libdir=/opt/mp/lib' "$stage/opt/mp/lib/pkgconfig/modelprep.pc" || fail "modelprep.pc names DESTDIR, not PREFIX"
$make -s -C "$src" --no-print-directory uninstall PREFIX=/opt/mp DESTDIR="$stage" BUILD="$build" >/dev/null 2>&1
left=$(cd "$stage" && find . ! -type d | sort)
[ -z "$left" ] || fail "make uninstall DESTDIR=$stage left: $left"

echo "check-install: installed, built use_lib.c from pkg-config alone (shared and static), same output, uninstalled clean"
