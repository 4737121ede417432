# An IQ2_XXS tensor reads and hashes, but converting it is refused naming the tensor and the
# type (exit 4), and nothing is left behind.
python3 - <<'PY'
import sys, os
sys.path.insert(0, os.path.join(os.environ["SRC"], "tests", "golden-errors"))
import gguf_cases as g
arch = g.kv("general.architecture", g.STR, "llama")
open("iq2.gguf", "wb").write(g.gguf([arch], [g.f32("token_embd.weight", 8), ("blk.0.ffn_up.weight", [256, 2], 16, None, 132)]))
PY
$MODELPREP inspect iq2.gguf | sed -n '/^NAME/,/^$/p'
status=0; $MODELPREP convert iq2.gguf out --to f16 || status=$?
echo "exit $status"
ls
