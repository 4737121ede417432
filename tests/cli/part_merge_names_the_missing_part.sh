# A missing part is named by `merge` (exit 4), nothing is committed; a record that lists a file
# its part does not own, and a lock file that is a link, are refused; a part whose file changed
# since its record is named by the merging part and rewritten when run again; running the
# missing part completes the job, a finished part run again is a no-op, and a later merge finds
# DST complete.
$MKMODEL src --layers 3 --max-shard-size 400000 >/dev/null
mkdir one parts
(cd one && $MODELPREP convert ../src out --to bf16 --max-shard-size 200KB)  >/dev/null
cd parts
for i in 0 1 3; do $MODELPREP convert ../src out --to bf16 --max-shard-size 200KB --part $i/4 --job-id j1 >/dev/null; done
$MODELPREP merge out || echo "exit $?"
test ! -e out && echo "out not committed"
cp out.partial-j1/.modelprep-part-1-of-4.json saved
sed -i 's/"files": \[/"files": [{"name": "model-00001-of-00018.safetensors", "size": 1, "xxh3_128": "00000000000000000000000000000000", "tensors": {}},/' out.partial-j1/.modelprep-part-1-of-4.json
$MODELPREP convert ../src out --to bf16 --max-shard-size 200KB --part 2/4 --job-id j1 >/dev/null || echo "exit $?"
mv saved out.partial-j1/.modelprep-part-1-of-4.json
rm out.partial-j1/.modelprep-part-2-of-4.json
rm out.partial-j1/.modelprep-part-2-of-4.lock && ln -s /etc/passwd out.partial-j1/.modelprep-part-2-of-4.lock
$MODELPREP convert ../src out --to bf16 --max-shard-size 200KB --part 2/4 --job-id j1 || echo "exit $?"
rm out.partial-j1/.modelprep-part-2-of-4.lock
f=$(grep -o '"name": "model-[^"]*' out.partial-j1/.modelprep-part-0-of-4.json | head -1 | cut -d'"' -f4)
printf x >> "out.partial-j1/$f"
$MODELPREP convert ../src out --to bf16 --max-shard-size 200KB --part 3/4 --job-id j1 --json
$MODELPREP convert ../src out --to bf16 --max-shard-size 200KB --part 2/4 --job-id j1 || echo "exit $?"
$MODELPREP convert ../src out --to bf16 --max-shard-size 200KB --part 0/4 --job-id j1
$MODELPREP merge out
$MODELPREP convert ../src out --to bf16 --max-shard-size 200KB --part 1/4 --job-id j1 || echo "exit $?"
cd ..
diff -r one/out parts/out && echo "identical to one process"
ls -A parts
