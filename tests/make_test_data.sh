#!/usr/bin/env bash
# Usage: make_test_data.sh REPO_DIR DATA_DIR
# Exports the test models and writes the test inputs (skips what exists).
set -eu
repo=$1
data=$2
mkdir -p "$data/models"
/usr/bin/python3 "$repo/tools/export_models.py" --out "$data/models" resnet18 mobilenet_v2 googlenet mobilenet_v3_small
/usr/bin/python3 "$repo/tools/make_input.py" "$data/inputs.h5" --count 6 --shape 3,64,64 --seed 3
/usr/bin/python3 "$repo/tools/make_input.py" "$data/bad_shape.h5" --count 4 --shape 5,7 --seed 3
/usr/bin/python3 - "$data/models/tiny.pt" <<'PY'
import sys, torch
class Tiny(torch.nn.Module):
    def forward(self, x):
        return torch.relu(x) * 2.0
torch.jit.save(torch.jit.trace(Tiny(), torch.randn(1, 4)), sys.argv[1])
PY
# Outputs files left by "earlier runs", for the resume checks: one not an outputs file at all,
# one from another model.
: > "$data/stale.h5.partial"
/usr/bin/python3 - "$data/other.h5.partial" <<'PY'
import sys, h5py
with h5py.File(sys.argv[1], "w") as f:
    f.attrs["model_sha256"] = "0" * 64
    f.attrs["input_identity"] = "images [6, 3, 64, 64]"
    f.attrs["rows_total"] = [6]
    f.attrs["rows_done"] = [2]
PY
# A truncated model file, and a model whose forward takes two tensors.
head -c 20000 "$data/models/resnet18.pt" > "$data/models/truncated.pt"
/usr/bin/python3 - "$data/models/two_inputs.pt" <<'PY'
import sys, torch
class Two(torch.nn.Module):
    def forward(self, x, y):
        return x + y
torch.jit.save(torch.jit.trace(Two(), (torch.randn(1, 4), torch.randn(1, 4))), sys.argv[1])
PY
# Inputs with a NaN in row 2.
/usr/bin/python3 - "$data/nan.h5" <<'PY'
import sys, h5py, numpy as np
x = np.random.default_rng(0).standard_normal((4, 3, 64, 64)).astype(np.float32)
x[2, 1, 5, 5] = np.nan
with h5py.File(sys.argv[1], "w") as f:
    f["images"] = x
PY
echo "test data in $data"
