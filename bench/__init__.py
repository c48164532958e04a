"""The collbench harness: case specs, timing on the ranks, correctness checks, launching and result files.

Never imports ``analysis`` or the command line (``collbench``), which sit above it.
"""
