# The shared partial directory belongs to one job: a part of another job given the same
# --job-id, a part of the same job with another N, a second task on a part another task holds,
# a partial directory that is a symbolic link or not modelprep's are refused (exit 4) with
# nothing removed.
$MKMODEL src --layers 2 --max-shard-size 400000 >/dev/null
$MODELPREP convert src out --to f16 --max-shard-size 300KB --part 0/2 --job-id j2 --quiet
$MODELPREP convert src out --to bf16 --part 1/2 --job-id j2 || echo "exit $?"
$MODELPREP convert src out --to f16 --max-shard-size 300KB --part 1/3 --job-id j2 || echo "exit $?"
# the lock is held until the refused run has ended, however long a loaded machine makes it take
flock out.partial-j2/.modelprep-part-1-of-2.lock sh -c 'touch held; while [ ! -e release ]; do sleep 0.1; done' &
while [ ! -e held ]; do sleep 0.1; done
$MODELPREP convert src out --to f16 --max-shard-size 300KB --part 1/2 --job-id j2 || echo "exit $?"
touch release
wait
rm held release
mkdir elsewhere && echo keep > elsewhere/precious
ln -s elsewhere out2.partial-j3
$MODELPREP convert src out2 --to f16 --part 0/2 --job-id j3 || echo "exit $?"
ls -A elsewhere
mkdir out3.partial-j4 && echo x > out3.partial-j4/stray
$MODELPREP convert src out3 --to f16 --part 0/2 --job-id j4 || echo "exit $?"
ls -A out3.partial-j4
$MODELPREP convert src out --to f16 --max-shard-size 300KB --part 1/2 --job-id j2
