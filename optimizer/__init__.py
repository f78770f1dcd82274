"""Build-plan MILP (installs as siteopt.optimizer)."""
