"""Reading collbench results and nccl-tests logs, fitting cost models, plots, reports, compare, predict.

Never imports torch: cost coefficients come from ``collectives.costs``.
"""
