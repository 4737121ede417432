#!/bin/sh
# build_ze_null.sh DIR: builds the Level Zero loader's null driver (libze_null.so.1), which Debian
# does not ship (doc/devices.md §2), from Debian's own source tarball of the loader
# it installs, into DIR/lib. It reports a "GPU" and runs nothing: verify's negative control.
# Prints why and exits 1 when it cannot (no network, no cmake); the test then says it skipped.
set -eu
dir=$1
ver=1.8.12
sha=9c5d3dd912882abe8e2e3ba72f8c27e2a2d86759ac48f6318a0df091204985eb
[ -f "$dir/lib/libze_null.so.1" ] && exit 0
mkdir -p "$dir"
rm -f "$dir/skipped"
fail() { echo "$*" | tee "$dir/skipped" >&2; exit 1; }
command -v cmake >/dev/null || fail "cmake is not installed"
tar="$dir/level-zero_$ver.orig.tar.gz"
if [ ! -f "$tar" ]; then
    python3 -c "import sys, urllib.request; urllib.request.urlretrieve(sys.argv[1], sys.argv[2])" \
        "http://deb.debian.org/debian/pool/main/l/level-zero/level-zero_$ver.orig.tar.gz" "$tar.tmp" \
        2>/dev/null || fail "cannot download level-zero_$ver.orig.tar.gz from deb.debian.org"
    mv "$tar.tmp" "$tar"
fi
echo "$sha  $tar" | sha256sum -c --quiet || { rm -f "$tar"; fail "level-zero_$ver.orig.tar.gz: wrong sha256"; }
rm -rf "$dir/src" && mkdir -p "$dir/src" && tar xzf "$tar" -C "$dir/src" --strip-components=1
cmake -S "$dir/src" -B "$dir/src/build" >"$dir/build.log" 2>&1 || fail "cmake failed (see $dir/build.log)"
cmake --build "$dir/src/build" --target ze_null -j 2 >>"$dir/build.log" 2>&1 || fail "building ze_null failed (see $dir/build.log)"
mkdir -p "$dir/lib"
cp -P "$dir/src/build/lib/libze_null.so"* "$dir/lib/"
rm -rf "$dir/src"
echo "built $dir/lib/libze_null.so.1 from level-zero $ver"
