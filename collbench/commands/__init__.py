"""One module per ``collbench`` subcommand, each with ``add_arguments(parser)`` and ``run(args, argv) -> int``
(options in, one library call, output). Optional ``DESCRIPTION`` and ``EPILOG`` fill ``--help``; without them
the one-line help of ``collbench.cli.COMMANDS`` describes the command."""
