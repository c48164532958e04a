"""The ``collbench`` command line (placeholder until the harness lands)."""

from __future__ import annotations

import argparse


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="collbench", description="Benchmark collective communication.")
    parser.parse_args(argv)
    parser.print_help()
    return 0
