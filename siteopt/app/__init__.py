"""The workflows: scenario -> parameters -> kernels -> optimizer -> outcome.

solve, evaluate, whatif, sweep, breakeven, tornado; memory limits; the engines that run
scenario chunks (local, Dask) and whole solves as Dask tasks.
"""
