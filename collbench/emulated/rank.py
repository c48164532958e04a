"""One rank of an emulated node: use NIC ``LOCAL_RANK mod k`` (rail-aligned, as a real cluster's ranks use the
NIC next to their GPU), then run the collbench command it was given (torchrun runs this module per rank)."""

from __future__ import annotations

import os
import runpy
import sys


def main() -> None:
    nics = int(os.environ.get("COLLBENCH_EMULATED_NICS", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    os.environ["GLOO_SOCKET_IFNAME"] = f"eth{local_rank % nics}"
    sys.argv = ["collbench", *sys.argv[1:]]
    runpy.run_module("collbench", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
