#!/usr/bin/env python3
"""Compares the generator and student of two data-free run folders, tensor by tensor.

Usage: scripts/compare-weights.py RUN_A RUN_B
Prints, per file, the largest relative difference ||a - b|| / ||a|| over its tensors, the same
over all its tensors as one vector, and how many tensors are equal bit for bit. Needs numpy and safetensors (the PyTorch reference venv has both).
"""
import sys

import numpy as np
from safetensors.numpy import load_file


def main(a, b):
    for name in ["generator.safetensors", "student.safetensors"]:
        left, right = load_file(f"{a}/{name}"), load_file(f"{b}/{name}")
        if left.keys() != right.keys():
            sys.exit(f"{name}: the runs hold different tensors: {sorted(left.keys() ^ right.keys())}")
        worst, worst_key, equal, norm, distance = 0.0, None, 0, 0.0, 0.0
        for key, x in left.items():
            x, y = x.astype(np.float64), right[key].astype(np.float64)
            equal += bool(np.array_equal(x, y))
            norm += float(np.sum(x * x))
            distance += float(np.sum((x - y) ** 2))
            diff = np.linalg.norm(x - y) / max(np.linalg.norm(x), 1e-30)
            if diff > worst:
                worst, worst_key = diff, key
        where = f" ({worst_key})" if worst_key else ""
        whole = (distance / max(norm, 1e-300)) ** 0.5
        print(f"{name}: largest relative difference per tensor {worst:.3g}{where}; "
              f"all tensors as one vector {whole:.3g}; {equal}/{len(left)} tensors equal")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
