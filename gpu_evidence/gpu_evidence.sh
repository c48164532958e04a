#!/usr/bin/env bash
# The GPU evidence in one shot (see gpu_evidence/gpu_evidence.py --help): from the repository root,
#
#   gpu_evidence/gpu_evidence.sh                      # on a GPU machine: results/gpu-<gpu>-<UTC time>/
#   gpu_evidence/gpu_evidence.sh --cpu                # dry run without a GPU (results/_scratch/...)
#   COLLBENCH_VENV=/path/venv gpu_evidence/gpu_evidence.sh --budget-s 420
#
# Uses $PYTHON, else python3, to drive the steps; the python that runs torch is --python/--venv,
# $COLLBENCH_PYTHON/$COLLBENCH_VENV, else the same one. Exit code: 0 all steps ok, 1 a step failed
# (named on stderr; everything measured is kept), 2 bad options.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if ! command -v "$PY" >/dev/null 2>&1; then
  echo "gpu_evidence: step install failed: no $PY on PATH (set PYTHON)" >&2
  exit 1
fi
exec "$PY" gpu_evidence/gpu_evidence.py "$@"
