"""Streaming statistics of option NPVs over scenario chunks.

Two passes over the same chunks (the generator is stateless, so a chunk recomputed
is the same chunk). Pass 1: count, shifted sums and squares, min and max. Pass 2:
a histogram per option of ``bins`` bins over [max(min, mean - k sd), min(max, mean + k sd)]
with exact per-bin sums and under/overflow bins. Quantiles interpolate linearly
inside their bin; CVaR sums whole bins exactly and takes the boundary bin's share
as if its values were uniform in it. Both are within one bin width of the exact
value, and memory is options x bins whatever the scenario count.

Partial results merge: :func:`block_moments` reduces each block of a chunk on its own and
:meth:`Moments.fold` adds the blocks in order, repeating the streaming arithmetic exactly;
histogram parts add bin by bin (``chunks.add_histograms``); :class:`EventTotals` are whole
numbers and add exactly. So a chunk may be reduced anywhere (siteopt.kernels.chunks).

Both accumulators reduce fixed blocks of ``BLOCK`` scenarios (scenarios 0..BLOCK-1,
BLOCK..2 BLOCK-1, ...), carrying a partial block over to the next chunk. The floating-
point order of every sum is then the same whatever the chunk size, so the statistics
are bit-identical for any chunking, on any machine's memory budget, and whether an
option is valued alone or beside others (each site's columns are reduced on their own
contiguous array).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import numpy as np

from .backend import Backend

DEFAULT_BINS = 4096
BLOCK = 1024  # scenarios per reduction block


# NPVs of absurd size (a scenario's extremes compounding: squares past 1e308, inf - inf)
# reduce to inf or NaN without a warning; kernels.table.check_finite then refuses the
# table, naming the site, instead of a RuntimeWarning from deep inside a reduction.
def _quiet(method):
    @functools.wraps(method)
    def quiet(*args, **kwargs):
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            return method(*args, **kwargs)

    return quiet


class _Blocks:
    """Cuts a stream of row chunks into blocks of ``BLOCK`` rows for ``reduce``."""

    def __init__(self, reduce) -> None:
        self.reduce = reduce
        self.pending: Any = None

    def feed(self, rows: Any, xp: ModuleType) -> None:
        if self.pending is not None:
            take = BLOCK - self.pending.shape[0]
            head = xp.concatenate([self.pending, rows[:take]], axis=0)
            rows = rows[take:]
            self.pending = None
            if head.shape[0] < BLOCK:
                self.pending = head
                return
            self.reduce(head)
        whole = rows.shape[0] // BLOCK * BLOCK
        for lo in range(0, whole, BLOCK):
            self.reduce(rows[lo : lo + BLOCK])
        if whole < rows.shape[0]:
            self.pending = xp.ascontiguousarray(rows[whole:]).copy()

    def flush(self) -> None:
        if self.pending is not None:
            block, self.pending = self.pending, None
            self.reduce(block)


@dataclass
class Moments:
    """Pass-1 accumulators for O options (numpy). Read them after :meth:`flush`."""

    shift: np.ndarray | None = None
    count: int = 0
    total: np.ndarray | None = None
    squares: np.ndarray | None = None
    low: np.ndarray | None = None
    high: np.ndarray | None = None
    _blocks: _Blocks | None = field(default=None, repr=False)

    def add(self, npv: np.ndarray) -> None:
        if self._blocks is None:
            self._blocks = _Blocks(self._reduce)
        self._blocks.feed(np.ascontiguousarray(npv), np)

    def flush(self) -> None:
        """Reduce the last partial block; call once all chunks are in."""
        if self._blocks is not None:
            self._blocks.flush()

    @_quiet
    def _reduce(self, npv: np.ndarray) -> None:
        if self.shift is None:
            self.shift = npv[0].copy()  # scenario 0 is always in the first chunk
        if self.total is None:
            self._start(npv.shape[1])
        d = npv - self.shift
        self.count += npv.shape[0]
        self.total += d.sum(axis=0)
        self.squares += (d * d).sum(axis=0)
        np.minimum(self.low, npv.min(axis=0), out=self.low)
        np.maximum(self.high, npv.max(axis=0), out=self.high)

    def _start(self, width: int) -> None:
        """Empty accumulators for ``width`` options."""
        self.total, self.squares = np.zeros(width), np.zeros(width)
        self.low, self.high = np.full(width, np.inf), np.full(width, -np.inf)

    def fold(self, block: BlockMoments) -> None:
        """Add one block reduced elsewhere, as :meth:`_reduce` adds it (``shift`` set)."""
        if self.total is None:
            self._start(block.total.shape[0])
        self.count += block.count
        with np.errstate(over="ignore", invalid="ignore"):  # check_finite reports
            self.total += block.total
            self.squares += block.squares
        np.minimum(self.low, block.low, out=self.low)
        np.maximum(self.high, block.high, out=self.high)

    @property
    @_quiet
    def mean(self) -> np.ndarray:
        self.flush()
        return self.shift + self.total / self.count

    @property
    @_quiet
    def std(self) -> np.ndarray:
        self.flush()
        m = self.total / self.count
        var = np.maximum(self.squares / self.count - m * m, 0.0)
        return np.sqrt(var * self.count / max(self.count - 1, 1))


@dataclass(frozen=True)
class BlockMoments:
    """Pass 1's accumulators over one reduction block (see :class:`Moments`)."""

    count: int
    total: np.ndarray  # sum of NPV - shift [USD]
    squares: np.ndarray  # sum of (NPV - shift)^2 [USD^2]
    low: np.ndarray  # [USD]
    high: np.ndarray  # [USD]


def block_moments(npv: np.ndarray, shift: np.ndarray) -> list[BlockMoments]:
    """:class:`Moments` over each block of BLOCK rows of ``npv`` on its own.

    Each block is reduced by a fresh ``Moments`` (zeros plus the block's sums), so
    :meth:`Moments.fold` of the blocks in order repeats the streaming arithmetic exactly.
    """
    out = []
    for b in range(0, npv.shape[0], BLOCK):
        m = Moments(shift=shift)
        m.add(npv[b : b + BLOCK])
        m.flush()
        out.append(BlockMoments(m.count, m.total, m.squares, m.low, m.high))
    return out


@dataclass(frozen=True)
class BlockTotals:
    """Sums over one reduction block of quantities only whose means are wanted."""

    count: int
    total: np.ndarray


def block_totals(rows: np.ndarray) -> list[BlockTotals]:
    """Column sums of each block of BLOCK rows of ``rows``, in order: the means-only twin
    of :func:`block_moments` (no squares, extremes or shift)."""
    return [
        BlockTotals(min(BLOCK, rows.shape[0] - b), rows[b : b + BLOCK].sum(axis=0))
        for b in range(0, rows.shape[0], BLOCK)
    ]


class MeanTotals:
    """Means folded from :class:`BlockTotals` in block order (the same sums, in the same
    order, on every executor)."""

    def __init__(self, width: int) -> None:
        self.count = 0
        self.total = np.zeros(width)

    def fold(self, block: BlockTotals) -> None:
        self.count += block.count
        self.total = self.total + block.total

    @property
    def mean(self) -> np.ndarray:
        return self.total / max(self.count, 1)


@dataclass(frozen=True)
class Grouping:
    """Groups of the scenarios whose conditional means a valuation also returns.

    Attributes
    ----------
    labels : ndarray of int (N,)
        The group of each scenario, 0..groups-1.
    groups : int
    key : str
        What identifies the partition (part of a cached site's key).
    """

    labels: np.ndarray
    groups: int
    key: str


@dataclass(frozen=True)
class BlockGroups:
    """Sums over one reduction block by group: the grouped twin of :class:`BlockTotals`."""

    count: np.ndarray  # (groups,) scenarios of each group in the block
    total: np.ndarray  # (groups, options) sum of the values of each group [USD]


def block_group_totals(rows: np.ndarray, labels: np.ndarray, groups: int) -> list[BlockGroups]:
    """Column sums of each block of BLOCK rows of ``rows`` by the group ``labels`` of
    its rows (0..groups-1), in order.

    Each block is one ``bincount`` over the row-major cells, which adds the cells in row
    order: the same sums in the same order wherever the block is reduced.
    """
    width = rows.shape[1]
    out = []
    for b in range(0, rows.shape[0], BLOCK):
        part, lab = rows[b : b + BLOCK], np.asarray(labels[b : b + BLOCK], dtype=np.int64)
        flat = (lab[:, None] * width + np.arange(width)[None, :]).ravel()
        with np.errstate(over="ignore", invalid="ignore"):
            total = np.bincount(flat, weights=part.ravel(), minlength=groups * width)
        out.append(BlockGroups(np.bincount(lab, minlength=groups), total.reshape(groups, width)))
    return out


class GroupTotals:
    """Conditional means by group, folded from :class:`BlockGroups` in block order."""

    def __init__(self, groups: int, width: int) -> None:
        self.count = np.zeros(groups, dtype=np.int64)
        self.total = np.zeros((groups, width))

    def fold(self, block: BlockGroups) -> None:
        self.count = self.count + block.count
        with np.errstate(over="ignore", invalid="ignore"):  # check_finite reports
            self.total = self.total + block.total

    @property
    def mean(self) -> np.ndarray:
        """(groups, options) mean of each group; NaN for a group without scenarios."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.count[:, None] > 0, self.total / self.count[:, None], np.nan)


def group_means(values: np.ndarray, labels: np.ndarray, groups: int) -> np.ndarray:
    """(groups, columns) means of the rows of ``values`` (N, columns) by group: the one
    grouped reduction, blocked as the valuation streams it (any twin's per-scenario NPVs
    grouped here give the valuation's numbers)."""
    acc = GroupTotals(groups, values.shape[1])
    for block in block_group_totals(values, labels, groups):
        acc.fold(block)
    return acc.mean


@dataclass
class Histograms:
    """Pass-2 accumulators: per option ``bins`` bins plus underflow (0) and overflow (-1)."""

    lo: np.ndarray
    width: np.ndarray
    bins: int
    counts: np.ndarray = field(init=False)
    sums: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        shape = (len(self.lo), self.bins + 2)
        self.counts = np.zeros(shape)
        self.sums = np.zeros(shape)
        self._blocks: _Blocks | None = None
        self._xp: ModuleType = np

    def add(self, npv: Any, *, xp: ModuleType) -> None:
        if self._blocks is None:
            self._blocks, self._xp = _Blocks(self._reduce), xp
        self._blocks.feed(xp.ascontiguousarray(npv), xp)

    def flush(self) -> None:
        """Reduce the last partial block; quantile and cvar call it."""
        if self._blocks is not None:
            self._blocks.flush()

    @classmethod
    @_quiet
    def from_moments(cls, m: Moments, bins: int, alpha: float) -> Histograms:
        m.flush()
        k = max(8.0, np.sqrt(2.0 / (1.0 - alpha)) + 1.0)  # tail mass beyond k sd < (1 - alpha) / 2
        lo = np.maximum(m.low, m.mean - k * m.std)
        hi = np.minimum(m.high, m.mean + k * m.std)
        # A constant option still needs a positive width; a tiny one keeps its quantiles exact.
        tiny = np.maximum(np.abs(lo) * 1e-12, 1e-9)
        width = np.maximum((hi - lo) / bins, tiny)
        return cls(lo, width, bins)

    @_quiet
    def _reduce(self, npv: Any) -> None:
        xp = self._xp
        lo, width = xp.asarray(self.lo)[None, :], xp.asarray(self.width)[None, :]
        pos = xp.floor((npv - lo) / width)
        idx = xp.clip(pos, -1, self.bins).astype(xp.int64) + 1  # 0 under, bins + 1 over
        flat = idx + xp.arange(npv.shape[1])[None, :] * (self.bins + 2)
        size = npv.shape[1] * (self.bins + 2)
        counts = xp.bincount(flat.ravel(), minlength=size)
        sums = xp.bincount(flat.ravel(), weights=npv.ravel(), minlength=size)
        self.counts += _host(counts).reshape(self.counts.shape)
        self.sums += _host(sums).reshape(self.sums.shape)

    @_quiet
    def quantile(self, q: float) -> np.ndarray:
        """Linear interpolation inside the bin where the cumulative count reaches q N."""
        self.flush()
        total = self.counts.sum(axis=1)
        target = q * total
        cum = np.cumsum(self.counts, axis=1)
        j = np.argmax(cum >= target[:, None], axis=1)
        rows = np.arange(len(total))
        before = np.where(j > 0, cum[rows, np.maximum(j - 1, 0)], 0.0)
        inside = self.counts[rows, j]
        frac = np.where(inside > 0, (target - before) / np.maximum(inside, 1), 0.5)
        left = self.lo + (j - 1) * self.width
        mean_in = np.where(inside > 0, self.sums[rows, j] / np.maximum(inside, 1), left)
        edge_bin = (j == 0) | (j == self.bins + 1)  # under/overflow: their mean is all we have
        return np.where(edge_bin, mean_in, left + frac * self.width)

    @_quiet
    def cvar(self, alpha: float) -> np.ndarray:
        """Mean of the worst (1 - alpha) share, boundary bin taken uniform."""
        self.flush()
        total = self.counts.sum(axis=1)
        k = (1.0 - alpha) * total
        cum = np.cumsum(self.counts, axis=1)
        j = np.argmax(cum >= k[:, None], axis=1)
        rows = np.arange(len(total))
        cum_sums = np.cumsum(self.sums, axis=1)
        before_n = np.where(j > 0, cum[rows, np.maximum(j - 1, 0)], 0.0)
        before_s = np.where(j > 0, cum_sums[rows, np.maximum(j - 1, 0)], 0.0)
        take = k - before_n
        inside = np.maximum(self.counts[rows, j], 1)
        left = self.lo + (j - 1) * self.width
        uniform = take * (left + self.width * take / (2.0 * inside))
        mean_in = self.sums[rows, j] / inside
        edge_bin = (j == 0) | (j == self.bins + 1)
        part = np.where(edge_bin, take * mean_in, uniform)
        return (before_s + part) / np.maximum(k, 1e-300)


FLEET_TICKS = float(2**24)  # fixed-point ticks per PH/s in EventTotals.fleet


class EventTotals:
    """Sums over scenarios of per-month AI state and of the fleet.

    ``online[key]`` [scenario-months], per (site, build year, contract): scenarios whose
    hall is online (contract or market rent) in each month; ``returned[key]``: scenarios
    whose hall's MW mine again. Whole numbers, so totals add exactly in any order.
    ``fleet[(site,)]`` (T,) [2^-24 PH/s per grid MW]: the running fleet summed over the
    scenarios, for a site whose refresh is decided per scenario (else absent: its fleet is
    the same in every scenario); :meth:`mean_fleet` reads it.
    """

    def __init__(self, months: int) -> None:
        self.months = months
        self.online: dict[tuple, np.ndarray] = {}
        self.returned: dict[tuple, np.ndarray] = {}
        self.fleet: dict[tuple, np.ndarray] = {}

    def add(self, timelines: dict, be: Backend) -> None:
        """Count the tenancy timelines (``kernels.hosting.Tenancy`` by key) of a chunk."""
        xp, t = be.xp, self.months
        for key, ev in timelines.items():
            bump = 0
            for a, b in ev.rented(t, xp):
                bump = bump + xp.bincount(a, minlength=t + 1) - xp.bincount(b, minlength=t + 1)
            back = xp.bincount(
                ev.mining_from, weights=ev.to_mining.astype(xp.float64), minlength=t + 1
            )
            online = be.to_numpy(xp.cumsum(bump)[:t]).astype(np.float64)
            returned = be.to_numpy(xp.cumsum(back)[:t]).astype(np.float64)
            self.online[key] = self.online.get(key, 0.0) + online
            self.returned[key] = self.returned.get(key, 0.0) + returned

    def add_fleet(self, key: tuple, ph_per_mw: Any, be: Backend) -> None:
        """Add a chunk's running fleet (``mining.Fleet.hashing_ph_per_mw``) where it differs by
        scenario ((N, T); a (T,) fleet is the same in every scenario and is not kept).

        Each value is rounded to a whole number of 2^-24 PH/s before summing, so the
        totals are integers that add exactly in any order (chunks, engines), at a rounding
        of ~1e-9 of a fleet's PH/s."""
        if getattr(ph_per_mw, "ndim", 1) != 2:
            return
        xp = be.xp
        ticks = xp.rint(ph_per_mw * FLEET_TICKS).astype(xp.int64).sum(axis=0)
        self.fleet[key] = self.fleet.get(key, 0) + be.to_numpy(ticks)

    def mean_fleet(self, key: tuple, scenarios: int) -> np.ndarray:
        """Mean running fleet per month over ``scenarios`` [PH/s per grid MW]."""
        return self.fleet[key] / FLEET_TICKS / scenarios

    @staticmethod
    def merged(parts: list[EventTotals]) -> EventTotals:
        """The totals of several chunks (or sites), added key by key in order."""
        out = EventTotals(parts[0].months if parts else 0)
        for part in parts:
            for mine, theirs in ((out.online, part.online), (out.returned, part.returned),
                                 (out.fleet, part.fleet)):  # fmt: skip
                for key, values in theirs.items():
                    mine[key] = mine.get(key, 0.0) + values
        return out


def _host(a: Any) -> np.ndarray:
    return a.get() if hasattr(a, "get") else np.asarray(a)
