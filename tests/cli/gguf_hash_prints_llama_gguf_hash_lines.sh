# Per-tensor and whole-model xxh64 in llama-gguf-hash's format; a split set hashes its tensors
# in split order, each line naming its file; --json carries the same digests.
cd "$SRC/tests/golden/cases"
$MODELPREP hash gguf_alignment_64.gguf
$MODELPREP hash gguf_split_set
$MODELPREP hash gguf_split_set --json
