#!/usr/bin/env python3
"""PyTorch reference for the generator's embedding condition (method.md section 5's option,
which ../shared/golden does not cover): z * E(y) * (1 + MLP(p)), MLP = Linear(2, 64), ReLU,
Linear(64, latent), in the GDFQ generator without the heat-map channel.

Writes Tests/TestSupport/Fixtures/generator/embedding.safetensors (float32). Reference-only: the
Swift tests read the file and never need PyTorch. Run with the PyTorch venv:

    $HOME/.torch-ref/bin/python scripts/make-generator-embedding-golden.py [--output PATH]

Contents (a small generator: latent 16, 4 classes, 1x8x8 images, batch 6 in pairs)
- `param.<name>`: every parameter, PyTorch's state-dict names (`mlp.0.weight`, ...);
- `z` [6,16], `labels` [6] (as floats), `p` [6,2]: the inputs;
- `x` [6,1,8,8]: the images; `grad_x` [6,1,8,8]: the output gradient fed to backward;
- `grad.<name>`: every parameter's gradient for that output gradient.
"""
import argparse
import os
import sys

import torch
from safetensors.torch import save_file

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "torch"))
from acq_iteration import EmbeddingGenerator  # noqa: E402

LATENT, CLASSES, SIZE, BATCH = 16, 4, 8, 6


def main():
    ap = argparse.ArgumentParser()
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--output", default=os.path.join(here, "..", "Tests", "TestSupport", "Fixtures", "generator", "embedding.safetensors"))
    a = ap.parse_args()
    torch.manual_seed(0)
    g = EmbeddingGenerator(LATENT, CLASSES, 1, SIZE).train()
    # Non-trivial BN affines, so their gradients are checked at values other than 1 and 0.
    with torch.no_grad():
        for bn in (g.bn0, g.bn1, g.bn2):
            bn.weight.uniform_(0.5, 1.5); bn.bias.uniform_(-0.2, 0.2)
    z = torch.randn(BATCH, LATENT)
    labels = torch.tensor([0, 0, 3, 3, 1, 1])
    p = (torch.rand(BATCH // 2, 2) * 0.5 - 0.25).repeat_interleave(2, 0)
    x = g(z, labels, p)
    grad_x = torch.randn_like(x)
    x.backward(grad_x)
    out = {"z": z, "labels": labels.float(), "p": p, "x": x.detach(), "grad_x": grad_x}
    for name, t in g.named_parameters():
        out["param." + name] = t.detach().clone()
        out["grad." + name] = t.grad.detach().clone()
    os.makedirs(os.path.dirname(a.output), exist_ok=True)
    save_file({k: v.contiguous().float() for k, v in out.items()}, a.output,
              metadata={"torch": torch.__version__, "what": "GDFQ generator with the embedding condition, see scripts/make-generator-embedding-golden.py"})
    print(f"wrote {a.output}: {len(out)} tensors")


if __name__ == "__main__":
    main()
