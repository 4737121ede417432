# A DeepSeek-V4 checkpoint that breaks a rule of doc/formats/deepseek-v4.md is exit 4 with one
# line naming the file, the tensor and the rule, for inspect and convert alike, and nothing is
# written: a dense scale off the 128 x 128 ceil grid, an I8 expert whose K/2 does not fit its
# [N, K/32] scales, an expert without its `.scale`, an expert_dtype that is neither fp4 nor fp8.
for rule in scale-grid expert-k missing-scale expert-dtype; do
    python3 "$SRC/tests/gen/dsv4gen.py" $rule --break $rule
    set +e
    $MODELPREP inspect $rule >/dev/null 2>err.txt; a=$?
    $MODELPREP convert $rule $rule-bf16 --to bf16 --quiet 2>err2.txt; b=$?
    set -e
    echo "$rule: inspect exit $a, convert exit $b: $(cat err.txt)"
    cmp -s err.txt err2.txt || echo "$rule: convert says: $(cat err2.txt)"
    [ ! -e $rule-bf16 ] || echo "$rule: $rule-bf16 was written"
done
