#!/bin/bash
# On the H200 host: c97348a (old) vs HEAD (new), all_reduce gloo p=2 1K-1M, alternating, --repeat-style evidence
P=/opt/torch/.venv/bin/python3; R=$PWD; D=$R/results/_scratch/abh; mkdir -p $D
A="--backend gloo --nprocs 2 --collectives all_reduce -b 1K -e 1M -f 4 --timeout 60 --quiet"
nproc; uptime
for i in 1 2 3 4; do
  for v in old new; do
    if [ $v = old ]; then (cd $R/results/_scratch/old && PYTHONPATH=$PWD timeout 100 $P -m bench run $A --out $D/$v/r$i | tail -1);
    else (cd $R && PYTHONPATH=$R timeout 100 $P -m bench run $A --out $D/$v/r$i | tail -1); fi
  done
done
tar czf $OUT/abh.tgz -C $R/results/_scratch abh
