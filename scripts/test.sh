#!/usr/bin/env bash
# The whole test suite: set up, build (release, with tests), run every test target.
# Golden tests read the PyTorch reference tensors in Tests/TestSupport/Fixtures/golden.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --build-tests
# One BLAS thread: the kernels parallelise over the batch themselves.
export OPENBLAS_NUM_THREADS=1
swift test -c release --skip-build "$@"
