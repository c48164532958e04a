#!/usr/bin/env bash
# Sweep, fit and report in one go (local spawn; set LAUNCH to run the sweep another way).
#
#   scripts/sweep_and_report.sh                                  # default local sweep
#   scripts/sweep_and_report.sh --nprocs 4 -e 16M --collectives all_reduce,all_gather
#   LAUNCH="scripts/torchrun_sweep.sh" scripts/sweep_and_report.sh -e 64M
#
# Writes RUN_DIR/results.csv + run.json, then RUN_DIR.fit/fits.csv and RUN_DIR.report/ beside it (fit's and
# report's defaults: nothing but the sweep writes inside its run directory, docs/outputs.md). Exits with the
# sweep's exit code (1 when a point was wrong or the run is incomplete), after fitting and reporting
# whatever was measured.
set -uo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
LAUNCH=${LAUNCH:-"$PYTHON -m collbench run"}

out_file=$(mktemp)
trap 'rm -f "$out_file"' EXIT
# shellcheck disable=SC2086  # LAUNCH is a command line
$LAUNCH --quiet "$@" | tee "$out_file"
rc=${PIPESTATUS[0]}
run_dir=$(tail -n 1 "$out_file")
if [[ -z "$run_dir" || ! -f "$run_dir/run.json" ]]; then
  echo "sweep_and_report: the sweep wrote no run directory (exit $rc)" >&2
  exit "$(( rc == 0 ? 1 : rc ))"
fi
"$PYTHON" -m collbench fit "$run_dir" || echo "sweep_and_report: fit failed" >&2
"$PYTHON" -m collbench report "$run_dir" || echo "sweep_and_report: report failed" >&2
echo "$run_dir"
exit "$rc"
