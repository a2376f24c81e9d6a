#!/usr/bin/python3
"""Writes an HDF5 input file for edgepipe: a float32 dataset of random samples (normal, fixed seed).

Usage: tools/make_input.py OUT.h5 [--count 32] [--shape 3,224,224] [--dataset images] [--seed 0]
"""
import argparse
import os

import h5py
import numpy as np


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("output")
    p.add_argument("--count", type=int, default=32, help="number of samples (rows)")
    p.add_argument("--shape", default="3,224,224", help="shape of one sample")
    p.add_argument("--dataset", default="images")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    shape = tuple(int(d) for d in a.shape.split(","))
    rng = np.random.default_rng(a.seed)
    tmp = a.output + ".tmp"
    with h5py.File(tmp, "w") as f:
        d = f.create_dataset(a.dataset, shape=(a.count,) + shape, dtype="float32",
                             chunks=(1,) + shape)
        for i in range(a.count):
            d[i] = rng.standard_normal(shape, dtype=np.float32)
    os.replace(tmp, a.output)
    print(f"{a.output}:{a.dataset} ({a.count} x {a.shape}, float32)")


if __name__ == "__main__":
    main()
