"""``python -m bench`` is an alias of ``python -m collbench``: it hands the command line over unchanged."""

import runpy

runpy.run_module("collbench", run_name="__main__", alter_sys=True)
