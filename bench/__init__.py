"""The collbench harness: case specs, timing, correctness checks, result files and the CLI."""
