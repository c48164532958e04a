#!/usr/bin/env bash
# Single-node collbench sweep under torchrun: one rank per visible GPU (NCCL), or NPROC CPU ranks (gloo).
#
#   scripts/torchrun_sweep.sh                          # all collectives/algorithms, 1K..1G x2
#   NPROC=4 scripts/torchrun_sweep.sh --backend gloo -e 64M
#   OUT=/shared/results scripts/torchrun_sweep.sh --collectives all_reduce --algorithms builtin,ring
#
# Extra arguments go to `collbench run` (they override the defaults below). Rank 0 writes the run
# directory under $OUT and prints its path last.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python}
OUT=${OUT:-results}
if [[ -z "${NPROC:-}" ]]; then
  NPROC=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU' || true)
  [[ "$NPROC" -gt 0 ]] || NPROC=2
fi
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

exec "$PYTHON" -m torch.distributed.run --standalone --nproc-per-node "$NPROC" -m collbench run \
  -b 1K -e 1G -f 2 --out "$OUT" "$@"
