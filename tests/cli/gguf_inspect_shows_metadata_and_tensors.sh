# A GGUF file: metadata with every value type (long arrays summarized), then the tensors with
# their GGUF shapes (ne[0] first); and a split set named by its directory.
cd "$SRC/tests/golden/cases"
$MODELPREP inspect gguf_every_value_type.gguf
$MODELPREP inspect gguf_alignment_64.gguf | sed -n '/^NAME/,$p'
$MODELPREP inspect gguf_split_set | sed -n '1p;/^NAME/,$p'
