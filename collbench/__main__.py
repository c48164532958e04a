"""``python -m collbench`` is the ``collbench`` command (handy under torchrun)."""

from collbench.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
