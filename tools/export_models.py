#!/usr/bin/python3
"""Exports torchvision models to TorchScript files for edgepipe: random weights from a fixed seed,
eval mode, torch.jit.script (falling back to torch.jit.trace). Nothing is downloaded.

Usage: tools/export_models.py [--out models] [--image-size 224] [--list] NAME [NAME ...]
A NAME may also be a part of a model, MODEL.SUBMODULE (e.g. resnet50.layer2: ResNet50's second
group of blocks alone, fed what it gets inside the whole model, 1x256x56x56): a stage-sized model
whose input and output are real activations, for benchmarks of one stage (tools/bench_overlap).
Each file records the shape of one input batch in the archive's extra file edgepipe_meta.txt,
which `edgepipe run --synthetic` and `edgepipe inspect` read.
"""
import argparse
import os
import sys
import warnings

import torch
import torchvision

META_FILE = "edgepipe_meta.txt"


def classification_models():
    names = torchvision.models.list_models(module=torchvision.models) \
        if hasattr(torchvision.models, "list_models") else None
    if names is None:  # torchvision < 0.15: public lower-case callables of torchvision.models
        names = [n for n, f in vars(torchvision.models).items()
                 if callable(f) and n[0].islower() and not n.startswith("_")
                 and n not in ("get_weight", "get_model", "list_models", "get_model_weights")]
    return sorted(names)


def default_size(name):
    if name.startswith("inception"):
        return 299
    return 224


def build(name):
    kwargs = {"weights": None}
    if name in ("googlenet", "inception_v3"):
        kwargs["init_weights"] = True  # silences the "default init will change" warning
    return getattr(torchvision.models, name)(**kwargs).eval()


def export(name, out_dir, size, seed):
    torch.manual_seed(seed)
    whole, _, part = name.partition(".")
    model = build(whole)
    example = torch.randn(1, 3, size, size)
    if part:  # the submodule alone, with the input it gets inside the whole model
        sub = model.get_submodule(part)
        seen = []
        hook = sub.register_forward_hook(lambda m, args, out: seen.append(args[0]))
        with torch.no_grad():
            model(example)
        hook.remove()
        model, example = sub, seen[0].detach().clone()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            module = torch.jit.script(model)
        how = "script"
    except Exception as e:  # some models do not script: trace them on an example input
        print(f"  {name}: script failed ({str(e).splitlines()[0]}); tracing", file=sys.stderr)
        with torch.no_grad():
            module = torch.jit.trace(model, example)
        how = "trace"
    path = os.path.join(out_dir, f"{name}.pt")
    shape = ",".join(str(d) for d in example.shape)
    meta = f"input_shape={shape}\nexported_by=tools/export_models.py ({how}, seed {seed})\n"
    tmp = path + ".tmp"
    torch.jit.save(module, tmp, _extra_files={META_FILE: meta})
    os.replace(tmp, path)
    return path, how


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("names", nargs="*", help="torchvision model names, e.g. resnet50 mobilenet_v2")
    p.add_argument("--out", default="models", help="output folder (git-ignored)")
    p.add_argument("--image-size", type=int, default=0, help="input height and width (default: "
                   "224, 299 for inception)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--list", action="store_true", help="list the model names and exit")
    p.add_argument("--force", action="store_true", help="export even if the file exists")
    a = p.parse_args()
    if a.list:
        print("\n".join(classification_models()))
        return 0
    if not a.names:
        p.error("name at least one model (--list shows them)")
    known = set(classification_models())
    for n in a.names:
        if n.partition(".")[0] not in known:
            p.error(f"unknown model '{n}' (--list shows the {len(known)} known names)")
        if "." in n:
            try:
                build(n.partition(".")[0]).get_submodule(n.partition(".")[2])
            except AttributeError:
                p.error(f"'{n}': the model has no part '{n.partition('.')[2]}'")
    os.makedirs(a.out, exist_ok=True)
    torch.set_num_threads(1)
    for n in a.names:
        path = os.path.join(a.out, f"{n}.pt")
        if os.path.exists(path) and not a.force:
            print(f"{path} exists")
            continue
        path, how = export(n, a.out, a.image_size or default_size(n), a.seed)
        print(f"{path} ({how})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
