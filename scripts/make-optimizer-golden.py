#!/usr/bin/env python3
"""Reference trajectories of PyTorch's optimizers and learning-rate schedules for the Swift tests.

Writes Tests/TestSupport/Fixtures/optim/optimizers.safetensors (float32 tensors; every name is
described in the header metadata). Reference-only: the Swift test suite reads the file and never
needs PyTorch. Run with the PyTorch venv:

    $HOME/.torch-ref/bin/python scripts/make-optimizer-golden.py [--output PATH]

Contents
- `init.a` [4,3], `init.b` [5]: the two parameter tensors before the first step
  (torch.manual_seed(0), randn).
- `grads.a` [5,4,3], `grads.b` [5,5]: the gradient of each parameter at steps 0..4 (randn).
- `<opt>.a` [5,4,3], `<opt>.b` [5,5]: the parameters after steps 1..5 (row k = after step k+1) of
  each optimizer in OPTIMIZERS, every step being: p.grad = grads[k]; opt.step().
- `lr.onecycle`, `lr.multistep`, `lr.cosine` [50]: the learning rate the optimizer uses at steps
  0..49 (`opt.param_groups[0]['lr']` read before each `opt.step()`, then `sched.step()`).
"""
import argparse
import json
import os

import torch
from safetensors.torch import save_file

STEPS = 5
SCHEDULE_STEPS = 50

# name -> (constructor, kwargs); kwargs are written to the metadata verbatim.
OPTIMIZERS = {
    "sgd_nesterov": ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-4)),
    "sgd_momentum": ("SGD", dict(lr=0.05, momentum=0.9, weight_decay=5e-4)),
    "sgd_plain": ("SGD", dict(lr=0.1)),
    "adam_betas": ("Adam", dict(lr=1e-3, betas=(0.5, 0.999))),
    "adam_wd": ("Adam", dict(lr=1e-2, weight_decay=1e-4)),
}

SCHEDULES = {
    "onecycle": ("OneCycleLR", dict(max_lr=0.1, total_steps=50), dict(lr=0.1, momentum=0.9)),
    "multistep": ("MultiStepLR", dict(milestones=[10, 20, 30], gamma=0.1), dict(lr=0.1)),
    "cosine": ("CosineAnnealingLR", dict(T_max=40, eta_min=0.001), dict(lr=0.1)),
}


def trajectory(init, grads, cls, kwargs):
    params = [t.clone().requires_grad_(True) for t in init]
    opt = getattr(torch.optim, cls)(params, **kwargs)
    rows = [[] for _ in params]
    for k in range(STEPS):
        for p, g in zip(params, grads):
            p.grad = g[k].clone()
        opt.step()
        for r, p in zip(rows, params):
            r.append(p.detach().clone())
    return [torch.stack(r) for r in rows]


def learning_rates(cls, kwargs, sgd_kwargs):
    p = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([p], **sgd_kwargs)
    sched = getattr(torch.optim.lr_scheduler, cls)(opt, **kwargs)
    lrs = []
    for _ in range(SCHEDULE_STEPS):
        lrs.append(opt.param_groups[0]["lr"])
        p.grad = torch.zeros(1)
        opt.step()
        sched.step()
    return torch.tensor(lrs, dtype=torch.float64).float(), lrs


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--output", default=os.path.join(root, "Tests/TestSupport/Fixtures/optim/optimizers.safetensors"))
    args = ap.parse_args()

    torch.manual_seed(0)
    init = [torch.randn(4, 3), torch.randn(5)]
    grads = [torch.randn(STEPS, 4, 3), torch.randn(STEPS, 5)]

    tensors = {"init.a": init[0], "init.b": init[1], "grads.a": grads[0], "grads.b": grads[1]}
    meta_opt = {}
    for name, (cls, kwargs) in OPTIMIZERS.items():
        a, b = trajectory(init, grads, cls, kwargs)
        tensors[f"{name}.a"], tensors[f"{name}.b"] = a, b
        meta_opt[name] = {"class": f"torch.optim.{cls}", "kwargs": kwargs}

    meta_sched = {}
    for name, (cls, kwargs, sgd_kwargs) in SCHEDULES.items():
        t, exact = learning_rates(cls, kwargs, sgd_kwargs)
        tensors[f"lr.{name}"] = t
        meta_sched[name] = {"class": f"torch.optim.lr_scheduler.{cls}", "kwargs": kwargs,
                            "optimizer": {"class": "torch.optim.SGD", "kwargs": sgd_kwargs},
                            "lr_float64": exact}

    tensors = {k: v.contiguous().float() for k, v in tensors.items()}
    metadata = {
        "description": "PyTorch optimizer trajectories and learning-rate schedules (see scripts/make-optimizer-golden.py).",
        "torch_version": torch.__version__,
        "parameters": json.dumps({
            "init.a": "parameter a before step 1, shape [4,3] (torch.manual_seed(0); randn(4,3))",
            "init.b": "parameter b before step 1, shape [5] (then randn(5))",
            "grads.a": "gradient of a at steps 0..4, shape [5,4,3] (then randn(5,4,3))",
            "grads.b": "gradient of b at steps 0..4, shape [5,5] (then randn(5,5))",
            "<opt>.a, <opt>.b": "parameters after steps 1..5; row k is after step k+1 with p.grad = grads[k]",
        }),
        "optimizers": json.dumps(meta_opt),
        "schedules": json.dumps({
            "lr.<name>": f"opt.param_groups[0]['lr'] at steps 0..{SCHEDULE_STEPS - 1} "
                         "(read before opt.step(); then sched.step()); float32 of the float64 value",
            **meta_sched,
        }),
    }
    os.makedirs(os.path.dirname(args.output), exist_ok=True)
    save_file(tensors, args.output, metadata=metadata)
    print(f"wrote {args.output}: {len(tensors)} tensors")
    for k, v in tensors.items():
        print(f"  {k:20s} {list(v.shape)}")


if __name__ == "__main__":
    main()
