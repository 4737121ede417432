#!/bin/sh
# make bench (and make bench-gguf alone): `convert --to gguf` against llama.cpp's own
# convert_hf_to_gguf.py, the copy that ships in the llama-cpp-python source package the judge is
# built from (LLAMA_CPP_PYTHON), on one generated llama checkpoint of about 1.2 GB in bf16:
#   - the bf16 checkpoint -> a bf16 GGUF, modelprep and the script (--outtype bf16), each with its
#     peak RSS;
#   - the same linears as GPTQ 4-bit symmetric, group 32 -> Q4_0, losslessly (modelprep only: the
#     script dequantizes GPTQ and quantizes it again, so it has no such job to time).
# Both take the SentencePiece tokenizer.model path: the script recognizes a generated BPE
# tokenizer.json by no known hash and refuses it. The script runs in build/venv-torch (its torch),
# with sentencepiece added there if missing; without the venv or the source package it is SKIPped.
set -e
BUILD=${1:-build}
SPEC=${LLAMA_CPP_PYTHON:-llama-cpp-python==0.3.36}
dir=build/bench/gguf
py=build/venv-torch/bin/python
mkdir -p "$dir"
shape="--layers 10 --hidden 2048 --intermediate 5632 --vocab 32000 --heads 16 --kv-heads 8 --arch llama"
for kind in bf16 gptq; do
    [ -f "$dir/$kind/tokenizer.model" ] && continue
    rm -rf "$dir/$kind"
    echo "bench: generating the $kind llama checkpoint for the GGUF export (10 layers, hidden 2048)..."
    if [ $kind = bf16 ]; then extra="--dense-bf16"; else extra="--bits 4 --group-size 32 --sym"; fi
    # shellcheck disable=SC2086
    "$BUILD/tests/mkmodel" "$dir/$kind" $shape $extra --max-shard-size 500000000 >/dev/null
    rm -f "$dir/$kind/tokenizer_config.json"
    python3 tests/gen/mktokenizer.py "$dir/$kind" spm >/dev/null
done
rm -f "$dir"/*.gguf
echo "bench: GGUF export, bf16 ($(du -sh "$dir/bf16" | cut -f1)) -> bf16 GGUF, and GPTQ 4-bit ($(du -sh "$dir/gptq" | cut -f1)) -> Q4_0"
"$BUILD/tests/bench_peak_rss" gguf-bf16 "$BUILD/modelprep" convert "$dir/bf16" "$dir/mp-bf16.gguf" --to gguf --quiet \
    | tee "$dir/mp.time"
"$BUILD/tests/bench_peak_rss" gguf-q4_0 "$BUILD/modelprep" convert "$dir/gptq" "$dir/mp-q4_0.gguf" --to gguf --quiet
echo "  output: $(du -h "$dir/mp-bf16.gguf" | cut -f1) bf16, $(du -h "$dir/mp-q4_0.gguf" | cut -f1) Q4_0"
rm -f "$dir"/mp-*.gguf "$dir"/mp-*.gguf.modelprep.json
script=$dir/llama.cpp/convert_hf_to_gguf.py
if [ ! -f "$script" ] && [ -x build/venv/bin/pip ]; then
    rm -rf "$dir/sdist" "$dir/llama.cpp"
    if build/venv/bin/pip download --quiet --disable-pip-version-check --no-deps --no-binary :all: \
        "$SPEC" -d "$dir/sdist" >/dev/null 2>&1; then
        mkdir -p "$dir/llama.cpp"
        tar -xzf "$dir"/sdist/*.tar.gz -C "$dir/llama.cpp" --strip-components=3 --wildcards \
            '*/vendor/llama.cpp/convert_hf_to_gguf.py' '*/vendor/llama.cpp/gguf-py' '*/vendor/llama.cpp/conversion' \
            || rm -rf "$dir/llama.cpp"
    fi
fi
if [ ! -x "$py" ] || [ -f build/venv-torch/.skip ]; then
    echo "bench: SKIP convert_hf_to_gguf.py: no build/venv-torch (make torchref)"
elif [ ! -f "$script" ]; then
    echo "bench: SKIP convert_hf_to_gguf.py: cannot fetch the $SPEC source package from PyPI"
elif ! "$py" -c 'import sentencepiece' 2>/dev/null && \
     ! build/venv-torch/bin/pip install --quiet --disable-pip-version-check sentencepiece >/dev/null 2>&1; then
    echo "bench: SKIP convert_hf_to_gguf.py: cannot install sentencepiece into build/venv-torch"
else
    # modelprep fsyncs what it writes, so the script's file is synced inside the timed command too.
    echo "bench: llama.cpp's convert_hf_to_gguf.py ($SPEC) on the same bf16 checkpoint, --outtype bf16, + sync"
    "$BUILD/tests/bench_peak_rss" convert_hf_to_gguf sh -c "'$py' '$script' '$dir/bf16' --outtype bf16 \
        --outfile '$dir/script-bf16.gguf' 2>'$dir/script.log' && sync '$dir/script-bf16.gguf'" | tee "$dir/script.time"
    rm -f "$dir/script-bf16.gguf"
    awk '{ t[NR] = $2; m[NR] = $6 } END { printf "  modelprep is %.1fx faster (target >= 5x), peak RSS %.1f MiB against %.1f MiB\n", t[2] / t[1], m[1], m[2] }' \
        "$dir/mp.time" "$dir/script.time"
fi
