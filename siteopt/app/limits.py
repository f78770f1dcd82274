"""What a run will hold in memory, estimated before it starts; a refusal when it cannot fit.

The valuation streams scenarios in chunks sized to the memory it finds, so the scenario
count alone rarely decides; what does is held whatever the chunking: the risk sample and
the histograms of every site option, the reduction blocks, the portfolio NPVs of the
plan and baselines on every scenario, and the MILP. A request too big for this machine
is refused up front (exit 2) with the estimate and the setting to change, instead of
dying inside numpy or CUDA an hour later.

The figures are generous (copies, temporaries, PuLP's Python objects), and the check
refuses only what exceeds the memory free now: a run it lets through may be slow, but
its own arrays do not run it out of memory.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np

from siteopt.app.params import kernel_inputs
from siteopt.kernels.backend import select_backend
from siteopt.kernels.chunks import bytes_per_scenario
from siteopt.kernels.reduce import BLOCK, DEFAULT_BINS
from siteopt.kernels.sites import chunk_market
from siteopt.kernels.valuation import MARKET_CACHE_BYTES, PASS_CACHE_BYTES, market_cache_bytes
from siteopt.model.errors import InputError
from siteopt.model.load import risk_sample_of, site_option_count
from siteopt.model.schema import Scenario
from siteopt.optimizer.engine import MAX_ROUNDS

MIB, GIB = 1 << 20, 1 << 30
BASE_BYTES = 400 << 20
"""Python, numpy, pandas, matplotlib and the scenario itself [B]."""
RISK_COPIES = 3
"""The valuation's risk sample, its stacked copy, the MILP's copy in MUSD."""
HIST_ARRAYS = 2
"""Counts and sums per option and bin."""
HIST_TEMPORARIES = 4
"""Bin counts, sums and cumulative sums of the widest site while it is reduced."""
PLAN_SAMPLE_ARRAYS = 3 + 2
"""Plan, all-mining and max-AI NPV per scenario, plus the sort and quantile copies."""
MILP_BYTES_PER_OPTION = 2_000
"""PuLP variable, table row, solver column [B]."""
MILP_BYTES_PER_NONZERO = 250
"""PuLP expression entry, the row lists handed to HiGHS, HiGHS's copy [B]. A CVaR in
the MILP adds a dense row over all options per cut: at most one per LP and one per MIP
round (2 MAX_ROUNDS), and no more than the risk sample has scenarios."""
MEMORY_SHARE = 0.9
"""Share of the free memory a run may plan to use."""
SECOND_CAUSE_SHARE = 0.25
"""A refusal names the second-largest item too when it is at least this share of the first."""
EXACT_CHUNK_MAX_OPTIONS = 1_000_000
"""Options in all up to which the chunk estimate lists them (the kernels' formula); more
need some 60 GiB of histograms, and listing them alone would take a minute."""
CGROUP_FILES = ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current")
FEWER_OPTIONS = "offer fewer site options (a larger build.ai_step_mw, fewer build.decision_years)"
FEWER_SCENARIOS = "lower --scenarios"
PROGRAM = "the program itself"


@dataclasses.dataclass(frozen=True)
class MemoryEstimate:
    """Bytes a run holds, by what holds them.

    Attributes
    ----------
    parts : dict of str to int
        Bytes [B] per item, keyed by a phrase that names it ("the risk sample").
    advice : dict of str to str
        Per item, what shrinks it ("lower --scenarios").
    scenarios : int
        Monte Carlo scenarios of the run.
    options : int
        Site options valued.
    """

    parts: dict[str, int]
    advice: dict[str, str]
    scenarios: int
    options: int

    @property
    def total_bytes(self) -> int:
        return sum(self.parts.values())

    def largest(self, n: int = 2) -> list[str]:
        """The ``n`` items that hold the most, of those a setting can shrink."""
        items = [k for k in self.parts if k != PROGRAM]
        return sorted(items, key=self.parts.__getitem__, reverse=True)[:n]


def _estimate(parts: dict[str, tuple[int, str]], scenarios: int, options: int) -> MemoryEstimate:
    return MemoryEstimate(
        parts={k: int(b) for k, (b, _) in parts.items()},
        advice={k: a for k, (_, a) in parts.items()},
        scenarios=scenarios,
        options=options,
    )


def estimate(scenario: Scenario, *, frontier_points: int = 0) -> MemoryEstimate:
    """Memory a solve (or evaluate, whatif, sweep point) of ``scenario`` holds [B].

    Parameters
    ----------
    scenario : Scenario
        With ``--scenarios`` and ``--seed`` applied (``siteopt.model.load.with_simulation``).
    frontier_points : int
        ``--frontier N``: N more plans valued on every scenario, a CVaR in the MILP.
    """
    per_site = [int(site_option_count(scenario, i)) for i in range(len(scenario.sites))]
    options, widest = sum(per_site), max(per_site)
    n = scenario.simulation.scenarios
    risk_n = min(risk_sample_of(scenario), n)
    bins = DEFAULT_BINS + 2  # and the under- and overflow bins
    objective = scenario.objective
    cvar_in_milp = bool(frontier_points or objective.risk_aversion > 0 or objective.cvar_floor_usd)
    cut_rows = min(risk_n, 2 * MAX_ROUNDS) if cvar_in_milp else 0
    nonzeros = options * (len(scenario.years) + 4 + cut_rows)
    kept = options * n * 8
    markets = len(scenario.power_markets) + sum(s.generator is not None for s in scenario.sites)
    paths = market_cache_bytes(scenario.months, markets, n)  # a generator is a market
    parts = {
        "the risk sample": (options * risk_n * 8 * RISK_COPIES, "lower simulation.risk_sample"),
        "the per-option histograms": (
            8 * bins * (options * HIST_ARRAYS + widest * HIST_TEMPORARIES),
            FEWER_OPTIONS,
        ),
        "the reduction blocks": (options * BLOCK * 8 * 2, FEWER_OPTIONS),
        "the NPVs kept between passes": (kept if kept <= PASS_CACHE_BYTES else 0, FEWER_SCENARIOS),
        "the market paths kept for the cash flows": (
            paths if kept <= PASS_CACHE_BYTES and paths <= MARKET_CACHE_BYTES else 0,
            FEWER_SCENARIOS,
        ),
        "the plan NPV samples": (
            n * 8 * (PLAN_SAMPLE_ARRAYS + frontier_points),
            FEWER_SCENARIOS + (" or --frontier" if frontier_points else ""),
        ),
        "the MILP": (
            options * MILP_BYTES_PER_OPTION + nonzeros * MILP_BYTES_PER_NONZERO,
            FEWER_OPTIONS + (" or lower simulation.risk_sample" if cut_rows else ""),
        ),
        "one scenario chunk": (
            _smallest_chunk_bytes(scenario, options, widest),
            "lower horizon_years",
        ),
        PROGRAM: (BASE_BYTES, "free some memory"),
    }
    return _estimate(parts, n, options)


def _smallest_chunk_bytes(scenario: Scenario, options: int, widest: int) -> int:
    """One scenario's chunk, the least the valuation shrinks its chunks to [B]."""
    if options > EXACT_CHUNK_MAX_OPTIONS:  # bytes_per_scenario lists every option
        return 8 * 4 * widest  # the widest site's option columns alone, a lower bound
    return bytes_per_scenario(kernel_inputs(scenario))


def breakeven_estimate(scenario: Scenario, site_name: str) -> MemoryEstimate:
    """Memory ``siteopt breakeven`` holds [B].

    It keeps every chunk's market paths, so that each of its ~40 valuations sees the
    same draws, and the site's NPVs on every scenario for exact CVaRs. An unknown site
    counts as the widest (the command itself then says what is wrong).
    """
    n = scenario.simulation.scenarios
    names = [site.name for site in scenario.sites]
    per_site = [int(site_option_count(scenario, i)) for i in range(len(scenario.sites))]
    # all of the site's options: those on other contracts too (an upper bound)
    options = per_site[names.index(site_name)] if site_name in names else max(per_site)
    parts = {
        "the market paths of every scenario": (
            n * market_bytes_per_scenario(scenario),
            FEWER_SCENARIOS,
        ),
        "the site's NPVs on every scenario": (n * options * 8 * 3, FEWER_SCENARIOS),
        "one scenario chunk": (
            _smallest_chunk_bytes(scenario, sum(per_site), max(per_site)),
            "lower horizon_years",
        ),
        PROGRAM: (BASE_BYTES, "free some memory"),
    }
    return _estimate(parts, n, options)


def market_bytes_per_scenario(scenario: Scenario, sample: int = 64) -> int:
    """Bytes of one scenario's market and power paths, measured on a small chunk [B]."""
    sample = min(sample, scenario.simulation.scenarios)
    ctx = chunk_market(kernel_inputs(scenario), np.arange(sample, dtype=np.int64), xp=np)
    return math.ceil(_nbytes(ctx) / sample)


def _nbytes(obj: object, seen: set[int] | None = None) -> int:
    """Bytes of the numpy arrays reachable from ``obj`` through dataclass fields,
    lists, tuples and dicts, each array counted once."""
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return 0
    seen.add(id(obj))
    if isinstance(obj, np.ndarray):
        return int(obj.nbytes)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        items = [getattr(obj, f.name) for f in dataclasses.fields(obj)]
    elif isinstance(obj, list | tuple):
        items = list(obj)
    elif isinstance(obj, dict):
        items = list(obj.values())
    else:
        return 0
    return sum(_nbytes(item, seen) for item in items)


def host_free_bytes() -> int:
    """Memory free for this process [B]: MemAvailable, or less under a cgroup limit."""
    free = select_backend("numpy").free_memory_bytes()
    try:
        limit, used = (Path(f).read_text().strip() for f in CGROUP_FILES)
        if limit != "max":
            free = min(free, int(limit) - int(used))
    except (OSError, ValueError):
        pass
    return max(free, 0)


def check_memory(scenario: Scenario, *, frontier_points: int = 0) -> MemoryEstimate:
    """Refuse a solve that cannot fit in the memory free now (see :func:`estimate`).

    Raises
    ------
    InputError
        With the estimate, the free memory, and the setting to change (exit 2).
    """
    return _check(estimate(scenario, frontier_points=frontier_points))


def check_breakeven_memory(scenario: Scenario, site_name: str) -> MemoryEstimate:
    """Refuse a breakeven that cannot fit in the memory free now."""
    return _check(breakeven_estimate(scenario, site_name))


def _check(found: MemoryEstimate) -> MemoryEstimate:
    free = host_free_bytes()
    if found.total_bytes <= MEMORY_SHARE * free:
        return found
    first, *rest = found.largest()
    top = [first, *(k for k in rest if found.parts[k] >= SECOND_CAUSE_SHARE * found.parts[first])]
    what = ", ".join(f"{_size(found.parts[k])} for {k}" for k in top)
    advice = " or ".join(dict.fromkeys(found.advice[k] for k in top))
    raise InputError(
        f"{found.scenarios:,} scenarios of {found.options:,} site options need "
        f"~{_size(found.total_bytes)} of memory ({what}); this machine has {_size(free)} "
        f"free; {advice}"
    )


def _size(n_bytes: float) -> str:
    if n_bytes >= GIB:
        return f"{n_bytes / GIB:.1f} GiB"
    return f"{n_bytes / MIB:.0f} MiB"
