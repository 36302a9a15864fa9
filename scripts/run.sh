#!/usr/bin/env bash
# The main job on the shipped defaults: set up, build, then evaluate the shipped Fashion-MNIST
# teacher. Extra arguments go to acq-dist (e.g. `scripts/run.sh pretrain --epochs 1`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .build/release/acq-dist "$@"
