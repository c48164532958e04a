#!/usr/bin/env bash
# The multi-node checks on an emulated cluster (docs/emulate.md), as results/README.md reports them: roofs, the
# two-tier model against a held-out scale, a planted slow NIC. Needs root and iproute2; about 8 minutes on 2 cores.
#
#   sudo scripts/emulated_cluster_checks.sh [OUT]        # OUT: parent folder (default results/_scratch/emulated)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
OUT=${1:-results/_scratch/emulated}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" OMP_NUM_THREADS=1
emulate() { "$PYTHON" -m collbench emulate --out "$OUT/$1" "${@:2}" || echo "emulated_cluster_checks: $1 exited $?" >&2; }
SWEEP=(--algorithms builtin,ring -b 1M -e 16M -n 5 -w 1 --timeout 120)

# 1. roofs: 4 nodes x 2 ranks, one 0.4 Gb/s NIC each (0.05 GB/s per node), then two NICs per node
emulate roof-1nic --nodes 4 --ranks-per-node 2 --nic-gbps 0.4 -- run --collectives all_reduce,all_gather,reduce_scatter \
  "${SWEEP[@]}"
emulate roof-2nic --nodes 4 --ranks-per-node 2 --nic-gbps 0.4 --nics-per-node 2 -- run --collectives all_reduce \
  "${SWEEP[@]}"
# 2. the two-tier model: fit 2 and 4 nodes, predict 6, measure 6
for n in 2 4 6; do
  emulate "scale-$n" --nodes "$n" --ranks-per-node 2 --nic-gbps 0.4 -- run --collectives all_reduce --algorithms builtin \
    -b 1M -e 16M -n 5 -w 1 --timeout 120
done
# 3. a slow NIC: 8 nodes, node 5's NIC at half speed
emulate slow-nic --nodes 8 --nic-gbps 0.4 --slow-nic 5:0.5 -- pairs --timeout 120

"$PYTHON" - "$OUT" <<'EOF'
import csv, json, sys
from pathlib import Path
out = Path(sys.argv[1])
for case in ("roof-1nic", "roof-2nic", "scale-2", "scale-4", "scale-6"):
    for run in sorted(out.glob(f"{case}/*/*/results.csv")):
        hw = json.loads((run.parent.parent / "hardware.json").read_text())
        roof = hw["nic_gbps"] * hw["nics_per_node"] / 8
        rows = list(csv.DictReader(run.open()))
        big = max(int(r["bytes"]) for r in rows)
        for r in rows:
            if int(r["bytes"]) == big and r["in_place"] in ("True", "true", "1"):
                bw = float(r["busbw_gbps"])
                print(f"{case:10} {r['collective']:15} {r['algorithm']:8} {big >> 20:3d} MiB  busbw {bw:.4f} GB/s"
                      f"  = {bw / roof:.0%} of the node's {roof:g} GB/s NIC total")
EOF
runs=$(dirname "$OUT"/scale-[24]/*/*/run.json | tr "\n" " ")
"$PYTHON" -m collbench predict --fits $runs --collective all_reduce --bytes 4M,16M --world-sizes 12 || true
