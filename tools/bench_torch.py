#!/usr/bin/python3
"""What a user would run instead of edgepipe: the torchvision model in eager PyTorch (Debian's
python3-torch), random weights (nothing is downloaded), on the same HDF5 inputs, at a batch size
and a number of threads. Prints one line:

  pytorch MODEL batch=B threads=T images=N seconds=S images_per_s=R

Usage: tools/bench_torch.py --model resnet50 --input IN.h5:images [--batch 1] [--threads 1]
       [--warmup 3]
The first --warmup batches are not timed (as edgepipe single does).
"""
import argparse
import time

import h5py
import numpy as np
import torch
import torchvision


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True, help="a torchvision model name, e.g. resnet50")
    ap.add_argument("--input", required=True, help="FILE.h5:DATASET")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--warmup", type=int, default=3)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    path, dataset = a.input.rsplit(":", 1)
    with h5py.File(path, "r") as f:
        x = torch.from_numpy(np.asarray(f[dataset], dtype=np.float32))
    model = getattr(torchvision.models, a.model)(weights=None).eval()
    batches = [x[i:i + a.batch] for i in range(0, len(x), a.batch)]
    with torch.inference_mode():
        for b in batches[: a.warmup]:
            model(b)
        t0 = time.perf_counter()
        n = 0
        for b in batches[a.warmup:]:
            model(b)
            n += len(b)
        dt = time.perf_counter() - t0
    print(f"pytorch {a.model} batch={a.batch} threads={a.threads} images={n} seconds={dt:.3f} "
          f"images_per_s={n / dt:.3f}", flush=True)


if __name__ == "__main__":
    main()
