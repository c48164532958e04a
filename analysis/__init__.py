"""Reading collbench results and nccl-tests logs, fitting cost models, plots, reports, compare, predict.

Never imports torch: cost coefficients come from ``collectives.costs``; from ``bench`` only its torch-free
vocabulary (result schema, size strings, statistics, the usage error, the pairs schedule). The commands that
read options and print live in ``collbench.commands``.
"""
