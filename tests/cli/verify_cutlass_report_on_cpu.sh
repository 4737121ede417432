# The report of a correct cutlass-int4 conversion on the cpu backend; the CPU model and the
# timings vary by machine, the rest is exact.
$MKMODEL sample --layers 1 --sym --group-size 32 >/dev/null
$MODELPREP convert sample out --to cutlass-int4 --quiet
$MODELPREP verify out --device cpu --rows 16 | sed -e 's/^device:    cpu .*(CPU;/device:    cpu (CPU;/' \
    -e 's/hashed in [0-9.]* s/hashed in T s/' -e 's/warnings ([0-9.]* s)/warnings (T s)/' -e 's/; [0-9]* cores;/; N cores;/'
