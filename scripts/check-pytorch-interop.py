#!/usr/bin/env python3
"""Checks that acq-dist model files and PyTorch state dicts are interchangeable.

Reference-only (needs the PyTorch venv; the Swift test suite never runs this):

    $HOME/.torch-ref/bin/python scripts/check-pytorch-interop.py MODEL.safetensors \
        [--torch-out torch_init.safetensors] [--dump interop.safetensors] [--batch 8] [--seed 0]

1. Builds the reference CIFAR-style ResNet (module names of the shared tools/torch_ref.py:
   conv, bn, layers.{i}.c1/b1/c2/b2[/sc], fc) of the depth, channels and classes recorded in
   MODEL's "acq_dist" metadata.
2. Loads MODEL (written by `acq-dist pretrain` / ModelFile.save) with
   `model.load_state_dict(safetensors.torch.load_file(MODEL))`, strict, after checking every
   tensor's dtype against the model's own state dict; prints its eval-mode logits on a fixed
   batch (randn, torch.manual_seed(seed)).
3. Writes a PyTorch-initialised model of the same architecture (default init, then a few
   train-mode forwards so the BN running statistics and counters are not trivial) with acq-dist's
   metadata, so `acq-dist eval --model` / ModelFile.load accept it; prints its logits on the batch.
4. With --dump, writes the batch and both logits (`x`, `logits.model`, `logits.torch_model`; the
   two model paths in the metadata); then
       ACQ_DIST_INTEROP_DUMP=<dump> swift test ... --filter InteropTests
   loads both models in Swift and compares its logits with these within 1e-4.
Exits non-zero if anything does not load strictly.
"""
import argparse
import json
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import load_file, save_file

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "torch"))
from resnet import ResNet  # noqa: E402


def build(arch):
    depth = int(arch["depth"])
    if depth not in (20, 32, 44, 56):
        sys.exit(f"unsupported depth {depth}")
    return ResNet(cin=int(arch["inChannels"]), ncls=int(arch["classes"]), n=(depth - 2) // 6)


def checksum(name, logits):
    print(f"{name}: shape {list(logits.shape)} sum {logits.sum().item():.6f} "
          f"abs-sum {logits.abs().sum().item():.6f} row0 {[round(v, 5) for v in logits[0].tolist()]}")


def eval_logits(model, x):
    model.eval()
    with torch.no_grad():
        return model(x)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", help="model file written by acq-dist")
    ap.add_argument("--torch-out", help="where to write the PyTorch-initialised model "
                                        "(default: <model dir>/torch_init.safetensors)")
    ap.add_argument("--dump", help="write x and both logits here for the Swift side of the check")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    torch.set_num_threads(1)
    torch_out = a.torch_out or os.path.join(os.path.dirname(os.path.abspath(a.model)), "torch_init.safetensors")

    # (a) + (b): the acq-dist file into a PyTorch model, strictly.
    with safe_open(a.model, "pt") as f:
        file_meta = f.metadata() or {}
    if "acq_dist" not in file_meta:
        sys.exit(f"{a.model}: no 'acq_dist' metadata (not written by acq-dist)")
    meta = json.loads(file_meta["acq_dist"])
    print(f"{a.model}: role {meta['role']}, architecture {meta['architecture']}, imageShape {meta['imageShape']}, "
          f"format {file_meta.get('format')}")
    model = build(meta["architecture"])
    state = load_file(a.model)
    own = model.state_dict()
    bad = [f"{k}: {v.dtype} (PyTorch: {own[k].dtype})" for k, v in state.items() if k in own and v.dtype != own[k].dtype]
    if bad:
        sys.exit(f"{a.model}: dtype mismatch: " + "; ".join(bad))
    result = model.load_state_dict(state, strict=True)  # raises on any missing or unexpected key
    print(f"strict load_state_dict: {len(state)} tensors, missing {list(result.missing_keys)}, "
          f"unexpected {list(result.unexpected_keys)}")
    torch.manual_seed(a.seed)
    x = torch.randn(a.batch, *meta["imageShape"])
    logits_model = eval_logits(model, x)
    checksum("logits of the acq-dist model (PyTorch eval)", logits_model)

    # (c): a PyTorch-initialised model in acq-dist's format.
    torch.manual_seed(a.seed + 1)
    fresh = build(meta["architecture"])
    fresh.train()
    with torch.no_grad():
        for _ in range(3):
            fresh(torch.randn(16, *meta["imageShape"]))
    fresh_meta = {
        "role": "teacher",
        "architecture": {k: int(meta["architecture"][k]) for k in ("depth", "inChannels", "classes")},
        "imageShape": [int(v) for v in meta["imageShape"]],
        "mean": [float(v) for v in meta["mean"]],
        "std": [float(v) for v in meta["std"]],
        "notes": {"source": f"PyTorch {torch.__version__} default initialisation, BN statistics of 3 random "
                            f"batches (scripts/check-pytorch-interop.py, seed {a.seed + 1})"},
    }
    sd = {k: v.detach().contiguous() for k, v in fresh.state_dict().items()}
    save_file(sd, torch_out, metadata={"acq_dist": json.dumps(fresh_meta), "format": "pt"})
    check = build(meta["architecture"])
    check.load_state_dict(load_file(torch_out), strict=True)
    logits_fresh = eval_logits(fresh, x)
    if not torch.equal(eval_logits(check, x), logits_fresh):
        sys.exit(f"{torch_out}: reloading in PyTorch changed the logits")
    print(f"wrote {torch_out}: {len(sd)} tensors "
          f"({sum(v.dtype == torch.int64 for v in sd.values())} int64 num_batches_tracked)")
    checksum("logits of the PyTorch-initialised model", logits_fresh)

    if a.dump:
        save_file({"x": x.contiguous(), "logits.model": logits_model.contiguous(),
                   "logits.torch_model": logits_fresh.contiguous()}, a.dump,
                  metadata={"model": os.path.abspath(a.model), "torch_model": os.path.abspath(torch_out),
                            "torch_version": torch.__version__,
                            "description": "x: fixed batch (randn, manual_seed(seed)); logits.*: PyTorch eval-mode logits"})
        print(f"wrote {a.dump}; check in Swift with ACQ_DIST_INTEROP_DUMP={os.path.abspath(a.dump)}")


if __name__ == "__main__":
    main()
