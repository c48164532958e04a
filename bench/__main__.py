"""``python -m bench`` is the ``collbench`` command (handy under torchrun)."""

from bench.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
