#!/usr/bin/env bash
# Usage: runtime_limits_test.sh EDGEPIPE DATA_DIR MPIEXEC
# Runs that cannot work must end at once with one clear error (issue 18):
# - a batch that cannot fit the memory limit is refused before it is built, naming the limit
#   (before: rank 0 grew to 24 GB until the OOM killer, or profiled for minutes above the limit);
# - a model that raises for some inputs names the input row, and nobody adds a "SIGTERM: no more
#   inputs" line (before: the stage said only its error, rank 0 the SIGTERM mpirun sent it);
# - after rank 0 aborts (an input chunk that cannot be read), the stage ranks add no "bad magic"
#   noise, and the error names the rows.
# Each case must end within `limit` seconds (MPI start-up and loading the model included).
edgepipe=$1 data=$2 mpiexec=$3
source "$(dirname "$0")/outputs_lib.sh"
resnet=$data/models/resnet18.pt
run=("$mpiexec" --oversubscribe -n 3 "$edgepipe" run --progress 0 --timeout 30)
limit=25

# refused NAME REGEX ARGS...: the run exits non-zero within $limit s saying REGEX.
refused() {
  local name=$1 regex=$2
  shift 2
  local t0=$SECONDS
  timeout $((limit + 5)) "${run[@]}" "$@" --output "$dir/$name.h5" > "$dir/$name.out" 2>&1
  rc=$?
  local took=$((SECONDS - t0))
  [ "$rc" != 0 ] || { cat "$dir/$name.out"; fail "$name: exit 0"; }
  [ "$rc" != 124 ] || { cat "$dir/$name.out"; fail "$name: still running after $((limit + 5)) s"; }
  [ $took -le $limit ] || { cat "$dir/$name.out"; fail "$name: took $took s to fail"; }
  grep -Eq -e "$regex" "$dir/$name.out" || { cat "$dir/$name.out"; fail "$name: no line matches: $regex"; }
  if grep -Eq "bad magic|SIGTERM" "$dir/$name.out"; then
    cat "$dir/$name.out"
    fail "$name: noise after the error (bad magic, SIGTERM)"
  fi
  [ ! -e "$dir/$name.h5" ] || fail "$name: left $dir/$name.h5"
  echo "ok: $name (exit $rc in $took s)"
}

echo "== memory: refused from the shapes, before the batch is built"
mem="memory limit of 256.0 MiB \(--max-memory\)"
# Safe on the old code first (it profiled for minutes, at about 1 GB): it stops the test there.
refused batch128 "a batch of 128 rows needs about .* for the activations of block .*$mem.* rows fit: use --batch" \
  --model "$resnet" --input-shape 1,3,224,224 --batch 128 --synthetic 128 --max-memory 256MiB
refused batch600 "one input batch \(600 rows of shape \[3, 224, 224\]\) takes .*$mem" \
  --model "$resnet" --input-shape 1,3,224,224 --batch 600 --synthetic 600 --max-memory 256MiB
refused image4000 "profiling block 0 on a batch of shape \[1, 3, 4000, 4000\] needs more than the $mem" \
  --model "$resnet" --input-shape 1,3,4000,4000 --synthetic 2 --max-memory 256MiB
refused image8000 "one input batch \(1 row of shape \[3, 8000, 8000\]\) takes 732.4 MiB, more than the $mem; not one row fits" \
  --model "$resnet" --input-shape 1,3,8000,8000 --synthetic 2 --max-memory 256MiB

echo "== the same in edgepipe single (one process: the whole model)"
for args in "--batch 600 --synthetic 600|one input batch \(600 rows of shape \[3, 224, 224\]\) takes .*$mem" \
    "--batch 128 --synthetic 128|a batch of 128 rows needs about .*$mem"; do
  regex=${args#*|}
  t0=$SECONDS
  "$edgepipe" single --model "$resnet" --input-shape 1,3,224,224 ${args%%|*} --max-memory 256MiB \
    --output "$dir/single.h5" > "$dir/single.out" 2>&1 && { cat "$dir/single.out"; fail "single ${args%%|*}: exit 0"; }
  took=$((SECONDS - t0))
  [ $took -le $limit ] || fail "single ${args%%|*}: took $took s to fail"
  grep -Eq -e "$regex" "$dir/single.out" || { cat "$dir/single.out"; fail "single ${args%%|*}: no line matches: $regex"; }
  [ ! -e "$dir/single.h5" ] || fail "single ${args%%|*}: left $dir/single.h5"
  echo "ok: single ${args%%|*} (in $took s)"
done

echo "== a model that raises for one input row"
# torch.jit.script reads the source: the script is a file.
cat > "$dir/raises.py" << 'PY'
import sys, h5py, numpy as np, torch
class Raises(torch.nn.Module):
    def forward(self, x):
        if bool(x.sum() > 1e6):
            raise Exception("bad input")
        return x * 2.0
torch.jit.save(torch.jit.script(Raises()), sys.argv[1])
x = np.ones((8, 4), dtype=np.float32)
x[5] = 1e7  # the marker: only row 5 makes the model raise
with h5py.File(sys.argv[2], "w") as f:
    f.create_dataset("images", data=x)
PY
$py "$dir/raises.py" "$dir/raises.pt" "$dir/marked.h5" || fail "cannot make the raising model"
refused raises "stage 0 \(rank [12]\) failed on input row 5 \(batch 2, input rows 4 to 5; each row tried alone\): builtins.Exception: bad input" \
  --model "$dir/raises.pt" --input "$dir/marked.h5:images" --batch 2 --stages 1

echo "== an input chunk that cannot be read, while streaming"
$py - "$dir/bad_chunk.h5" << 'PY'
import sys, h5py, numpy as np
with h5py.File(sys.argv[1], "w") as f:
    d = f.create_dataset("images", data=np.random.default_rng(0).standard_normal((6, 3, 32, 32), dtype=np.float32),
                         chunks=(1, 3, 32, 32), compression="gzip")
    info = d.id.get_chunk_info(3)
with open(sys.argv[1], "r+b") as f:
    f.seek(info.byte_offset + 10)
    f.write(b"\xff" * 64)
PY
refused chunk "cannot read input rows \[3, 4\) of $dir/bad_chunk.h5:images" \
  --model "$resnet" --input "$dir/bad_chunk.h5:images"
echo "ok: runtime limits"
