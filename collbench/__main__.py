"""TEMPORARY in the emulate branch: replaced by the command layer's own __main__ at merge."""
import sys

from bench.cli import main
from bench.errors import UsageError, UsageParser

if sys.argv[1:2] == ["emulate"]:
    from collbench.commands import emulate

    p = UsageParser(prog="collbench emulate")
    emulate.add_arguments(p)
    try:
        raise SystemExit(emulate.run(p.parse_args(sys.argv[2:])))
    except UsageError as exc:
        print(f"collbench: error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
raise SystemExit(main())
