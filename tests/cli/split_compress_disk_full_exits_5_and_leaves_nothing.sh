# ENOSPC in the middle of a compressed split (an LD_PRELOAD shim makes write(2) fail after
# 600000 bytes): exit 5, one line naming the file and the bytes, no DST and no partial left.
$MKMODEL m --layers 2 >/dev/null
# (ASAN_OPTIONS: the sanitizer build accepts a preloaded library before its runtime.)
LD_PRELOAD=$(dirname "$MKMODEL")/libenospc.so MP_ENOSPC_AFTER=600000 ASAN_OPTIONS=verify_asan_link_order=0 \
    $MODELPREP split m out --compress zstd:1 --quiet || echo "exit $?"
ls
