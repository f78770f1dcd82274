"""Shared test data and helpers for tests/siteopt (fixtures live in conftest.py)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCENARIOS = sorted((REPO / "scenarios").glob("*.yaml"))

# A small valid scenario, one value per line, so that line numbers are easy to check.
# Horizon 2027-01 .. 2031-12; site alpha can host AI, beta cannot.
MINIMAL = """\
name: mini
start: 2027-01
horizon_years: 5
simulation:
  scenarios: 100
  seed: 1
  risk_sample: 10
market:
  btc_price_usd: 90000
  hashrate_eh: 1200
  subsidy_btc: 3.125
  halving_months: [2028-04]
  fee_share: 0.01
  pool_fee: 0.02
power_markets:
  west:
    price_usd_mwh: 35
    seasonality: [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]
sites:
  - name: alpha
    market: west
    interconnect_mw: 100
    power:
      ppa_mw: 50
      ppa_price_usd_mwh: 30
    mining:
      mw: 90
      efficiency_j_th: 17.5
    ai:
      max_it_mw: 70
      pue: 1.2
  - name: beta
    market: west
    interconnect_mw: 50
    mining:
      mw: 40
contracts:
  - name: tenant-a
    price_usd_kw_month: 130
    min_mw: 20
    max_mw: 100
    eligible_sites: [alpha]
    online_by: 2029-06
financing:
  capital_budget_usd:
    2027: 100000000
    2028: 50000000
build:
  decision_years: [2027, 2028]
"""


@dataclass(frozen=True)
class Run:
    """What one command-line run produced."""

    exit_code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def mutate(text: str, edits: Sequence[tuple[str, str]]) -> str:
    """Apply (old, new) replacements; each ``old`` must occur exactly once."""
    for old, new in edits:
        assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times"
        text = text.replace(old, new)
    return text


def line_containing(text: str, needle: str) -> int:
    """1-based number of the one line of ``text`` that contains ``needle``."""
    hits = [i for i, line in enumerate(text.splitlines(), start=1) if needle in line]
    assert len(hits) == 1, f"{needle!r} is on lines {hits}"
    return hits[0]
