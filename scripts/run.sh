#!/usr/bin/env bash
# The main job on the shipped defaults: set up, build, then `mpirun -np 8 acq-dist`, which runs
# ACQ W4A4 on the shipped Fashion-MNIST teacher with the default preset (docs/acq.md) and writes
# its run folder under runs/. Extra arguments go to acq-dist (e.g. `scripts/run.sh --preset long`,
# `scripts/run.sh eval`); RANKS sets the number of ranks (default 8).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec scripts/mpirun.sh -np "${RANKS:-8}" -- "$@"
