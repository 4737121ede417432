#!/bin/sh
# bundle.sh BUILD OUT PYTHON - what tests/device/run.sh needs on a bare GPU machine with no package
# registry, in one folder to carry (doc/cuda.md, "The device script"):
#   OUT/bin     modelprep and mkmodel as built here;
#   OUT/lib     every shared library they load that is not glibc's (ldd), so that they run there
#               with LD_LIBRARY_PATH=OUT/lib; libcuda and NVRTC are not among them (dlopen'ed at
#               run time, found there);
#   OUT/models  the small demo and broken checkpoints of tests/device/make_cases.py.
# The 2 GB checkpoint is generated there, by mkmodel, not carried.
set -eu
BUILD=$1 OUT=$2 PY=$3
rm -rf "$OUT"
mkdir -p "$OUT/bin" "$OUT/lib"
cp "$BUILD/modelprep" "$BUILD/tests/mkmodel" "$OUT/bin/"
for b in "$OUT/bin/modelprep" "$OUT/bin/mkmodel"; do
    ldd "$b" | awk '/=> \// { print $3 }' | while read -r lib; do
        case $(basename "$lib") in
        libc.so.*|libm.so.*|libpthread.so.*|libdl.so.*|librt.so.*|ld-linux*) ;;
        *) cp -L "$lib" "$OUT/lib/" ;;
        esac
    done
done
"$PY" "$(dirname "$0")/make_cases.py" "$(cd "$OUT/bin" && pwd)/modelprep" "$(cd "$OUT/bin" && pwd)/mkmodel" "$OUT/models"
echo "bundle: $(du -sh "$OUT" | cut -f1) in $OUT ($(ls "$OUT/lib" | wc -l) libraries: $(ls "$OUT/lib" | tr '\n' ' '))"
