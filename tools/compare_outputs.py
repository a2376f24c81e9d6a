#!/usr/bin/python3
"""Compares an edgepipe outputs file with a reference: another outputs file (e.g. from
`edgepipe single`), or the model run in PyTorch on the same inputs.

Usage:
  tools/compare_outputs.py OUT.h5 --reference REF.h5 [--tol 1e-4]
  tools/compare_outputs.py OUT.h5 --model M.pt --input IN.h5:DATASET [--tol 1e-4]
Prints the worst relative L2 error per row (||out - ref|| / ||ref||) and exits 1 if it is above
--tol or if any row is missing.
"""
import argparse
import sys

import h5py
import numpy as np


def reference_from_model(model_path, input_spec, batch):
    import torch
    torch.set_num_threads(2)
    path, dataset = input_spec.rsplit(":", 1)
    with h5py.File(path, "r") as f:
        x = np.asarray(f[dataset], dtype=np.float32)
    model = torch.jit.load(model_path).eval()
    rows = []
    with torch.no_grad():
        for i in range(0, len(x), batch):
            y = model(torch.from_numpy(x[i:i + batch]))
            if isinstance(y, (tuple, list)):
                y = y[0]
            rows.append(y.reshape(y.shape[0], -1).numpy())
    return np.concatenate(rows)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("output")
    p.add_argument("--reference", help="reference outputs file")
    p.add_argument("--model", help="TorchScript model to compute the reference with")
    p.add_argument("--input", help="inputs as FILE.h5:DATASET (with --model)")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--dataset", default="outputs")
    p.add_argument("--tol", type=float, default=1e-4)
    a = p.parse_args()
    with h5py.File(a.output, "r") as f:
        out = np.asarray(f[a.dataset], dtype=np.float64)
    if a.reference:
        with h5py.File(a.reference, "r") as f:
            ref = np.asarray(f[a.dataset], dtype=np.float64)
    elif a.model and a.input:
        ref = reference_from_model(a.model, a.input, a.batch).astype(np.float64)
    else:
        p.error("give --reference, or --model and --input")
    if out.shape != ref.shape:
        print(f"FAIL: shape {out.shape} != reference {ref.shape}")
        return 1
    norm = np.linalg.norm(ref, axis=1)
    err = np.linalg.norm(out - ref, axis=1) / np.maximum(norm, np.finfo(np.float64).tiny)
    worst = float(err.max())
    ok = bool(np.all(np.isfinite(out))) and worst <= a.tol
    print(f"{'ok' if ok else 'FAIL'}: {len(err)} rows, worst relative L2 error {worst:.3g} "
          f"(mean {float(err.mean()):.3g}, tolerance {a.tol:g})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
