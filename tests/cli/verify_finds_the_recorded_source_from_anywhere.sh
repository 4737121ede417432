# Issue 14: the manifest records the source as given and as an absolute path, so verify run from
# another directory still compares with it; when neither can be found, verify says so and stops
# (exit 5, naming both) instead of silently checking the output against itself; --no-source
# asks for that self-check explicitly.
$MKMODEL m --layers 1 --group-size 32 >/dev/null
$MODELPREP convert m out --to gptq-v2 --quiet
python3 -c 'import json, os; s = json.load(open("out/modelprep.json"))["source"]; print(s["path"], s["absolute_path"] == os.path.realpath("m"))'
mkdir -p elsewhere/deeper && cd elsewhere/deeper
$MODELPREP verify ../../out --device cpu | sed -n '2p' | sed "s|$(cd ../.. && pwd -P)|ROOT|"
cd ../..
mv m moved
set +e
$MODELPREP verify out --device cpu >out.txt 2>err.txt; echo "source moved: exit $?: $(sed "s|$(pwd -P)|ROOT|" err.txt)"
$MODELPREP verify out --device cpu --no-source | grep -E '^(reference|WARN|PASS:)' | sed 's/ (.*s)$//'
$MODELPREP verify out --against moved --no-source >/dev/null 2>err.txt; echo "both: exit $?: $(cat err.txt | head -1)"
set -e
$MODELPREP verify out --device cpu --against moved | sed -n '2p' | sed "s|$(pwd -P)|ROOT|"
# A dense output (convert --to f16) passes its own checks when its source is gone, but says, as a
# warning, how many tensors it could not compare with the source.
mv moved m
$MODELPREP convert m f16 --to f16 --quiet
mv m moved
$MODELPREP verify f16 --device cpu | grep -E '^(WARN integrity|PASS:|FAIL:)' | sed "s|$(pwd -P)|ROOT|; s/ (.*s)$//"
