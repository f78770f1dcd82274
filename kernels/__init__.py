"""Valuation engine: Monte Carlo NPV of every site option (installs as siteopt.kernels)."""
