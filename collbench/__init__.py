"""The ``collbench`` command line: one dispatcher (``collbench.cli``) and one thin module per subcommand
(``collbench.commands``) that reads the options, calls ``bench`` (ranks, timing, run directories) and
``analysis`` (fits, reports, verdicts) and prints. The layer on top: nothing below imports it.
"""
