"""The solver's defaults, in one place: the time limit and the relative MIP gap.

The CLI's ``--time-limit`` and ``--mip-gap``, the pipeline's run settings and a library
call of :func:`siteopt.optimizer.solve.solve_plan` all default to these.
"""

DEFAULT_TIME_LIMIT_S = 120.0  # [s]
DEFAULT_MIP_GAP = 1e-4  # relative; tight, so that what-if deltas are not solver tolerance
