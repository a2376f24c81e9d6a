#!/usr/bin/python3
"""Trains a small CNN on the handwritten digits that Debian's python3-sklearn ships
(sklearn.datasets.load_digits: 1797 labelled 8x8 images, nothing is downloaded), for measuring
what lossy codecs cost in accuracy (tools/digits_fidelity.py).

The 8x8 images are upsampled to 32x32 (bilinear) so that the network's activations are real
feature maps (16x32x32, 32x16x16, 64x8x8). The network is three blocks that edgepipe cannot cut
inside (see forward), so as 3 stages it always crosses the same links: the 1x32x32 input, the
16x16x16 and 64x8x8 feature maps, and the 10 logits. A fixed 80/20 split (seed 0): the network is trained
on 1437 images; the 360 held-out ones go to the inputs file.

Writes, in --out (default out/digits):
  digits_cnn.pt   TorchScript (torch.jit.script), input shape 1,1,32,32 recorded for edgepipe
  digits.h5       /images float32 360x1x32x32, /labels int64 360 (held-out test split)
Deterministic (on the same machine and library versions): the same weights and the same inputs
file, to the bit, each run (only the names TorchScript gives the archive's code may differ).
Usage: tools/train_digits.py [--out DIR] [--epochs N] [--force]
"""
import argparse
import os
import sys
import time

import h5py
import numpy as np
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits

META_FILE = "edgepipe_meta.txt"  # as tools/export_models.py writes it


class DigitsCNN(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(1, 16, 3, padding=1)
        self.bn1 = torch.nn.BatchNorm2d(16)
        self.conv2 = torch.nn.Conv2d(16, 32, 3, padding=1)
        self.bn2 = torch.nn.BatchNorm2d(32)
        self.conv3 = torch.nn.Conv2d(32, 64, 3, padding=1)
        self.bn3 = torch.nn.BatchNorm2d(64)
        self.fc1 = torch.nn.Linear(64 * 4 * 4, 128)
        self.fc2 = torch.nn.Linear(128, 10)

    def forward(self, x):
        # Three blocks, each one cut-free unit: edgepipe cuts only where every live value is a
        # tensor, and the batch size n taken at a block's start (an int) stays live until the
        # block's last line. So a 3-stage pipeline has exactly one split, whatever the timing
        # noise, and every run of tools/digits_fidelity.py compares the same activations.
        n = x.size(0)
        x = F.relu(self.bn1(self.conv1(x)))          # 16 x 32 x 32
        x = F.max_pool2d(x, 2)                       # 16 x 16 x 16
        x = x.reshape([n, 16, 16, 16])               # -> stage 2
        n = x.size(0)
        x = F.relu(self.bn2(self.conv2(x)))          # 32 x 16 x 16
        x = F.max_pool2d(x, 2)                       # 32 x 8 x 8
        x = F.relu(self.bn3(self.conv3(x)))          # 64 x 8 x 8
        x = x.reshape([n, 64, 8, 8])                 # -> stage 3
        n = x.size(0)
        x = F.max_pool2d(x, 2)                       # 64 x 4 x 4
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        return self.fc2(x).reshape([n, 10])          # logits


def images_32(images_8x8):
    """uint 0..16 8x8 -> float32 N x 1 x 32 x 32, zero mean and unit variance (fixed constants)."""
    x = torch.from_numpy(images_8x8.astype(np.float32) / 16.0).unsqueeze(1)
    x = F.interpolate(x, size=(32, 32), mode="bilinear", align_corners=False)
    return (x - 0.3) / 0.4


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="out/digits")
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--force", action="store_true", help="train even if the files exist")
    a = p.parse_args()
    model_path = os.path.join(a.out, "digits_cnn.pt")
    data_path = os.path.join(a.out, "digits.h5")
    if not a.force and os.path.exists(model_path) and os.path.exists(data_path):
        print(f"{model_path} and {data_path} exist (--force retrains)")
        return 0
    os.makedirs(a.out, exist_ok=True)
    torch.manual_seed(0)
    torch.set_num_threads(1)  # deterministic, and polite on a shared machine

    digits = load_digits()
    perm = np.random.RandomState(0).permutation(len(digits.target))
    n_test = len(perm) // 5
    test_idx, train_idx = np.sort(perm[:n_test]), perm[n_test:]
    x_all = images_32(digits.images)
    y_all = torch.from_numpy(digits.target.astype(np.int64))
    x_train, y_train = x_all[train_idx], y_all[train_idx]
    x_test, y_test = x_all[test_idx], y_all[test_idx]

    model = DigitsCNN()
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=a.epochs)
    t0 = time.time()
    gen = torch.Generator().manual_seed(0)
    for epoch in range(a.epochs):
        model.train()
        order = torch.randperm(len(y_train), generator=gen)
        for i in range(0, len(order), 32):
            b = order[i:i + 32]
            # small random shifts: a little augmentation against overfitting 1437 images
            xb = torch.roll(x_train[b], shifts=(int(torch.randint(-2, 3, (1,), generator=gen)),
                                                int(torch.randint(-2, 3, (1,), generator=gen))),
                            dims=(2, 3))
            loss = F.cross_entropy(model(xb), y_train[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
        sched.step()
    model.eval()
    with torch.no_grad():
        train_acc = (model(x_train).argmax(1) == y_train).float().mean().item()
        test_acc = (model(x_test).argmax(1) == y_test).float().mean().item()
    print(f"trained {a.epochs} epochs in {time.time() - t0:.1f} s: train accuracy "
          f"{100 * train_acc:.2f} %, held-out accuracy {100 * test_acc:.2f} % ({len(y_test)} images)")

    scripted = torch.jit.script(model)
    meta = "input_shape=1,1,32,32\nexported_by=tools/train_digits.py (script, seed 0)\n"
    torch.jit.save(scripted, model_path + ".tmp", _extra_files={META_FILE: meta})
    os.replace(model_path + ".tmp", model_path)
    with h5py.File(data_path + ".tmp", "w") as f:
        f.create_dataset("images", data=x_test.numpy())
        f.create_dataset("labels", data=y_test.numpy())
        f.attrs["source"] = "sklearn.datasets.load_digits, held-out 20% (seed 0), 8x8 -> 32x32 bilinear"
        f.attrs["pytorch_accuracy"] = test_acc
    os.replace(data_path + ".tmp", data_path)
    print(f"wrote {model_path} and {data_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
