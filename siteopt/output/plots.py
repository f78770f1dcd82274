"""The report's plots: each function takes plain data and returns PNG bytes.

Matplotlib's object API only (``Figure``, never pyplot), so nothing here touches global
figure state, and PNGs are saved without a ``Software`` tag so that the same data gives the
same bytes on every run. Money is plotted in $M. The number formats the page shares with
the plots (``usd_m``, ``mw_text``) live here too.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

__all__ = [
    "capex_png",
    "cases_png",
    "frontier_png",
    "market_paths_png",
    "mw_text",
    "npv_distribution_png",
    "plan_sites_png",
    "sweep_heatmap_png",
    "sweep_png",
    "timeline_png",
    "tornado_png",
    "usd_m",
]

DPI = 110
WIDTH_IN = 8.0
MINING_COLOR = "#d08c1a"
AI_COLOR = "#2f6db5"
SERIES_COLORS = {"plan": "#1b7a3d", "all_mining": MINING_COLOR, "max_ai": AI_COLOR}
SERIES_LABELS = {
    "plan": "plan",
    "all_mining": "all mining",
    "max_ai": "AI by NPV per capex $ (greedy)",
}
USD_M = 1e6


def _plain(text: str) -> str:
    """Escape dollar signs so that matplotlib never reads data as mathtext."""
    return str(text).replace("$", r"\$")


def usd_m(value_usd: float, *, signed: bool = False) -> str:
    """Money as ``$1,234.5M`` (``-$3.2M``; ``+$3.2M`` with ``signed``).

    Parameters
    ----------
    value_usd : float [USD]
    signed : bool
        Show a ``+`` on positive values (for differences).
    """
    sign = "-" if value_usd < 0 else ("+" if signed and value_usd > 0 else "")
    return f"{sign}${abs(value_usd) / 1e6:,.1f}M"


def mw_text(value_mw: float) -> str:
    """MW with 0 or 1 decimals: ``120``, ``37.5``."""
    value_mw = round(float(value_mw), 1)
    return f"{value_mw:,.0f}" if value_mw == int(value_mw) else f"{value_mw:,.1f}"


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    return buf.getvalue()


def _figure(height_in: float) -> tuple[Figure, Axes]:
    fig = Figure(figsize=(WIDTH_IN, height_in), layout="constrained")
    return fig, fig.add_subplot()


def _legend(where: Axes | Figure, **kwargs: Any) -> None:
    """A legend only when something carries a label (an empty legend warns)."""
    axes = where.axes if isinstance(where, Figure) else [where]
    handles, labels = [], []
    for ax in axes:
        h, lab = ax.get_legend_handles_labels()
        handles += h
        labels += lab
    if handles:
        where.legend(handles, labels, **kwargs)


def _floor_at_zero(ax: Axes) -> None:
    """Start the y axis at 0 with 10% headroom, and a visible range when all is 0."""
    top = max(float(ax.dataLim.y1), 0.0)
    ax.set_ylim(0.0, top * 1.1 if top > 0 else 1.0)


def plan_sites_png(sites: list[str], mining_mw: np.ndarray, ai_it_mw: np.ndarray) -> bytes:
    """Per site, MW kept hashing and MW converted to AI as stacked horizontal bars.

    Parameters
    ----------
    sites : list of str
        Site names, top to bottom.
    mining_mw : numpy.ndarray [MW of grid power]
    ai_it_mw : numpy.ndarray [MW of critical IT]
    """
    n = len(sites)
    fig, ax = _figure(1.4 + 0.45 * n)
    y = np.arange(n)
    ax.barh(y, mining_mw, color=MINING_COLOR, label="hashing [MW]")
    ax.barh(y, ai_it_mw, left=mining_mw, color=AI_COLOR, label="hosted AI [MW IT]")
    ax.set_yticks(y, labels=[_plain(s) for s in sites])
    ax.invert_yaxis()
    total = mining_mw + ai_it_mw
    right = float(total.max()) if n else 0.0
    ax.set_xlim(0, max(right, 1.0) * 1.35)
    for yi, m, a, t in zip(y, mining_mw, ai_it_mw, total, strict=True):
        label = f"  {mw_text(m)} hashing · {mw_text(a)} AI"
        ax.text(t, yi, label, va="center", fontsize=8, parse_math=False)
    ax.set_xlabel("MW")
    ax.set_title("Per site: MW kept hashing and MW converted to hosted AI")
    ax.grid(axis="x", alpha=0.3)
    _legend(fig, fontsize=8, loc="outside lower center", ncols=2)
    return _png(fig)


def _shared_edges(series: Mapping[str, np.ndarray], bins: int = 60) -> np.ndarray:
    lo = min(float(v.min()) for v in series.values())
    hi = max(float(v.max()) for v in series.values())
    pad = 0.03 * (hi - lo)  # keeps the outermost bins off the frame
    if hi - lo < 1e-9 * max(abs(lo), abs(hi), 1.0):
        pad = max(abs(lo) * 0.05, 0.5)  # a constant sample still gets a visible bin
    return np.linspace(lo - pad, hi + pad, bins + 1)


def npv_distribution_png(
    samples_usd: Mapping[str, np.ndarray], cvar_alpha: float, plan_cvar_usd: float
) -> bytes:
    """Step histograms of portfolio NPV on shared bins, with means and the plan's CVaR tail.

    Parameters
    ----------
    samples_usd : mapping of str to numpy.ndarray [USD]
        Portfolio NPV per Monte Carlo scenario; keys among ``plan``, ``all_mining``,
        ``max_ai``.
    cvar_alpha : float [-]
        CVaR confidence level; the tail is the worst ``1 - cvar_alpha`` of scenarios.
    plan_cvar_usd : float [USD]
        The plan's CVaR, marked with a dotted line.
    """
    series = {k: np.asarray(v, dtype=float) / USD_M for k, v in samples_usd.items()}
    edges = _shared_edges(series)
    fig, ax = _figure(4.2)
    for key, values in series.items():
        counts, _ = np.histogram(values, bins=edges)
        share = counts * (100.0 / max(len(values), 1))
        color = SERIES_COLORS.get(key, "#555555")
        label = SERIES_LABELS.get(key, key)
        ax.stairs(share, edges, color=color, linewidth=1.6, label=_plain(label))
        ax.axvline(float(values.mean()), color=color, linestyle="--", linewidth=1.0)
    if "plan" in series:
        var_m = float(np.quantile(series["plan"], 1.0 - cvar_alpha))
        tail = f"plan's worst {1.0 - cvar_alpha:.0%} (CVaR tail)"
        ax.axvspan(edges[0], var_m, color=SERIES_COLORS["plan"], alpha=0.12, label=tail)
        ax.axvline(
            plan_cvar_usd / USD_M,
            color="#8b0000",
            linestyle=":",
            linewidth=1.6,
            label=f"plan CVaR {cvar_alpha:.0%}",
        )
    ax.set_xlim(edges[0], edges[-1])
    ax.set_xlabel("portfolio NPV [$M]")
    ax.set_ylabel("share of scenarios [%]")
    ax.set_title("NPV distribution (dashed lines: means)")
    ax.grid(alpha=0.3)
    _legend(ax, fontsize=8)
    return _png(fig)


def _over_budget(
    capex: np.ndarray, budget: np.ndarray, has_budget: np.ndarray, carry_over: bool
) -> np.ndarray:
    """Per year, whether capex breaks the budget (cumulatively, with carry-over) [bool]."""
    if carry_over:
        return np.cumsum(capex) > np.cumsum(budget) * (1 + 1e-9) + 1e-9
    return has_budget & (capex > budget * (1 + 1e-9) + 1e-9)


def _draw_budget(
    ax: Axes,
    x: np.ndarray,
    capex: np.ndarray,
    budget: np.ndarray,
    has_budget: np.ndarray,
    carry_over: bool,
) -> None:
    """A bar-wide tick at each year's budget; with carry-over, the cumulative lines [$M]."""
    if has_budget.any():
        xb = x[has_budget]
        ax.hlines(
            budget[has_budget],
            xb - 0.38,
            xb + 0.38,
            color="black",
            linewidth=2.5,
            label="budget per year",
        )
    if carry_over:
        ax.plot(x, np.cumsum(capex), marker="o", color="#4a6fa5", label="cumulative capex")
        ax.plot(
            x,
            np.cumsum(budget),
            marker="s",
            linestyle="--",
            color="black",
            label="cumulative budget",
        )


def capex_png(
    capex_by_year_usd: Mapping[int, float],
    budget_by_year_usd: Mapping[int, float],
    carry_over: bool,
) -> bytes:
    """Equity capex per year as bars against the budget.

    Parameters
    ----------
    capex_by_year_usd : mapping of int to float [USD]
    budget_by_year_usd : mapping of int to float [USD]
    carry_over : bool
        Unspent budget carries into later years: also draw cumulative capex against the
        cumulative budget, and judge a year over budget on the cumulative figures.
    """
    years = sorted(set(capex_by_year_usd) | set(budget_by_year_usd))
    capex = np.array([capex_by_year_usd.get(y, 0.0) for y in years]) / USD_M
    budget = np.array([budget_by_year_usd.get(y, 0.0) for y in years]) / USD_M
    has_budget = np.array([y in budget_by_year_usd for y in years], dtype=bool)
    fig, ax = _figure(4.0)
    x = np.arange(len(years))
    over = _over_budget(capex, budget, has_budget, carry_over)
    ax.bar(x, capex, color=np.where(over, "#c0392b", "#4a6fa5"), width=0.6, label="equity capex")
    _draw_budget(ax, x, capex, budget, has_budget, carry_over)
    ax.set_xticks(x, labels=[str(y) for y in years])
    _floor_at_zero(ax)
    if not capex.any():
        note = "no equity capex in this plan"
        ax.text(0.5, 0.5, note, transform=ax.transAxes, ha="center", color="#5a6272")
    ax.set_ylabel("USD [$M]")
    ax.set_title(
        "Equity capex by year against the budget"
        + (" (unspent budget carries over)" if carry_over else "")
    )
    ax.grid(axis="y", alpha=0.3)
    _legend(ax, fontsize=8, loc="upper left")
    return _png(fig)


def timeline_png(timeline: pd.DataFrame) -> bytes:
    """AI MW online (left axis) and hashrate of the plan and of all-mining (right axis).

    Parameters
    ----------
    timeline : pandas.DataFrame
        Columns ``year``, ``ai_it_mw_online`` [MW IT], ``mining_eh`` [EH/s],
        ``all_mining_eh`` [EH/s]; one row per calendar year.
    """
    years = timeline["year"].to_numpy(dtype=int)
    fig, ax = _figure(4.0)
    ai_mw = timeline["ai_it_mw_online"].to_numpy(dtype=float)
    ax.bar(years, ai_mw, width=0.6, color=AI_COLOR, alpha=0.45, label="AI IT online [MW]")
    ax.set_ylabel("AI IT online [MW]", color=AI_COLOR)
    _floor_at_zero(ax)
    ax.set_xlabel("year")
    ax.set_xticks(years, labels=[str(y) for y in years])
    right = ax.twinx()
    right.plot(
        years,
        timeline["mining_eh"].to_numpy(dtype=float),
        marker="o",
        color=MINING_COLOR,
        label="plan hashrate [EH/s]",
    )
    right.plot(
        years,
        timeline["all_mining_eh"].to_numpy(dtype=float),
        linestyle="--",
        color="#7a5a1a",
        label="all-mining hashrate [EH/s]",
    )
    right.set_ylabel("hashrate [EH/s]", color=MINING_COLOR)
    _floor_at_zero(right)
    _legend(fig, fontsize=8, loc="outside lower center", ncols=3)
    ax.set_title("Expected AI MW online and hashrate by year")
    ax.grid(alpha=0.3)
    return _png(fig)


def frontier_png(frontier: pd.DataFrame) -> bytes:
    """E[NPV] against CVaR across the weights w of ``w E[NPV] + (1 - w) CVaR``, the
    reported plan highlighted.

    Parameters
    ----------
    frontier : pandas.DataFrame
        Columns ``weight`` [-], ``expected_npv_usd`` [USD], ``cvar_usd`` [USD],
        ``chosen`` [bool].
    """
    f = frontier.sort_values("cvar_usd", kind="stable")
    x = f["cvar_usd"].to_numpy(dtype=float) / USD_M
    y = f["expected_npv_usd"].to_numpy(dtype=float) / USD_M
    fig, ax = _figure(4.2)
    ax.plot(x, y, marker="o", color="#4a6fa5", label="plans by weight w of E[NPV]")
    for xi, yi, w in zip(x, y, f["weight"], strict=True):
        ax.annotate(
            f"w={float(w):.2g}",
            (xi, yi),
            textcoords="offset points",
            xytext=(4, -10),
            fontsize=7,
            parse_math=False,
        )
    chosen = f["chosen"].to_numpy(dtype=bool)
    if chosen.any():
        ax.scatter(
            x[chosen],
            y[chosen],
            s=160,
            marker="*",
            color="#c0392b",
            zorder=3,
            label="reported plan",
        )
    ax.margins(0.12)
    ax.set_xlabel("CVaR [$M]")
    ax.set_ylabel("expected NPV [$M]")
    ax.set_title("Risk-return frontier")
    ax.grid(alpha=0.3)
    _legend(ax, fontsize=8, loc="best")
    return _png(fig)


def tornado_png(tornado: pd.DataFrame, base_npv_usd: float) -> bytes:
    """Plan E[NPV] with each contract term at its low and high value, relative to base.

    Parameters
    ----------
    tornado : pandas.DataFrame
        Columns ``contract``, ``term``, ``low_label``, ``high_label``, ``low_npv_usd``
        [USD], ``high_npv_usd`` [USD]; at least one row.
    base_npv_usd : float [USD]
        The plan's expected NPV at the base terms (the centre line).
    """
    t = tornado.assign(
        low_d=(tornado["low_npv_usd"].astype(float) - base_npv_usd) / USD_M,
        high_d=(tornado["high_npv_usd"].astype(float) - base_npv_usd) / USD_M,
    )
    t = t.assign(swing=(t["high_d"] - t["low_d"]).abs())
    t = t.sort_values("swing", ascending=True, kind="stable")  # largest ends on top
    n = len(t)
    fig, ax = _figure(1.6 + 0.55 * n)
    y = np.arange(n)
    low, high = t["low_d"].to_numpy(), t["high_d"].to_numpy()
    ax.barh(y - 0.18, low, height=0.36, color="#c0392b", label="at the low value")
    ax.barh(y + 0.18, high, height=0.36, color="#1b7a3d", label="at the high value")
    for yi, d, text in zip(
        np.r_[y - 0.18, y + 0.18],
        np.r_[low, high],
        [*t["low_label"], *t["high_label"]],
        strict=True,
    ):
        ax.text(
            d,
            yi,
            f" {text} ",
            va="center",
            ha="left" if d >= 0 else "right",
            fontsize=8,
            parse_math=False,
        )
    names = [_plain(f"{c}: {term}") for c, term in zip(t["contract"], t["term"], strict=True)]
    ax.set_yticks(y, labels=names)
    ax.axvline(0.0, color="black", linewidth=1.0)
    reach = max(float(np.abs(np.r_[low, high]).max()), 1e-3)
    ax.set_xlim(-1.8 * reach, 1.8 * reach)  # room for the value labels
    ax.set_xlabel(_plain(f"change in plan E[NPV] from base {usd_m(base_npv_usd)} [$M]"))
    ax.set_title("Sensitivity of the plan's expected NPV")
    ax.grid(axis="x", alpha=0.3)
    _legend(fig, fontsize=8, loc="outside lower center", ncols=2)
    return _png(fig)


def sweep_png(frame: pd.DataFrame, param: str, title: str) -> bytes:
    """E[NPV], CVaR and AI MW against the swept value (a sweep's ``sweep.csv`` rows);
    infeasible points are dashed red lines. Values that are not numbers are spaced evenly."""
    ok = frame[frame["status"] != "infeasible"]
    try:
        x, numeric = np.array([float(v) for v in frame["value"]]), True
    except ValueError:
        x, numeric = np.arange(len(frame), dtype=float), False
    x_ok = x[ok.index.to_numpy()]
    fig = Figure(figsize=(7.5, 7.5), layout="constrained")
    axes = fig.subplots(3, 1, sharex=True)
    series = (
        ("expected_npv_usd", "E[NPV], $M", 1e-6),
        ("cvar_usd", "CVaR, $M", 1e-6),
        ("ai_it_mw_total", "AI IT MW", 1.0),
    )
    for ax, (column, label, scale) in zip(axes, series, strict=True):
        ax.plot(x_ok, ok[column].to_numpy(float) * scale, marker="o")
        ax.set_ylabel(label)
        ax.grid(True, alpha=0.3)
        for xi in x[frame["status"].to_numpy() == "infeasible"]:
            ax.axvline(xi, color="tab:red", alpha=0.3, linestyle="--")
    if not numeric:
        axes[-1].set_xticks(x, list(frame["value"]))
    axes[-1].set_xlabel(param)
    axes[0].set_title(title)
    return _png(fig)


def sweep_heatmap_png(frame: pd.DataFrame, param: str, param2: str, title: str) -> bytes:
    """A two-way sweep's heat maps: the plan's E[NPV] ($M) and its AI MW, ``param`` down
    and ``param2`` across (a two-way sweep's ``sweep.csv`` rows), each cell labelled;
    infeasible cells hatched."""
    rows = list(dict.fromkeys(frame["value"]))
    columns = list(dict.fromkeys(frame["value2"]))
    fig = Figure(figsize=(WIDTH_IN, min(11.0, 2.0 + 1.6 * len(rows))), layout="constrained")
    axes = fig.subplots(2, 1)
    panels = (("expected_npv_usd", "plan E[NPV], $M", USD_M, "{:,.0f}"),
              ("ai_it_mw_total", "AI IT MW", 1.0, "{:,.0f}"))  # fmt: skip
    ok = frame["status"] != "infeasible"
    for ax, (column, label, scale, fmt) in zip(axes, panels, strict=True):
        grid = np.full((len(rows), len(columns)), np.nan)
        for r in frame[ok].to_dict("records"):
            grid[rows.index(r["value"]), columns.index(r["value2"])] = float(r[column]) / scale
        image = ax.imshow(np.ma.masked_invalid(grid), cmap="viridis", aspect="auto")
        fig.colorbar(image, ax=ax, label=_plain(label))
        finite = grid[np.isfinite(grid)]
        middle = float(np.median(finite)) if finite.size else 0.0
        for i in range(len(rows)):
            for j in range(len(columns)):
                if np.isfinite(grid[i, j]):
                    ax.text(j, i, fmt.format(grid[i, j]), ha="center", va="center", fontsize=8,
                            color="black" if grid[i, j] >= middle else "white")  # fmt: skip
                else:
                    ax.add_patch(_hatched_cell(i, j))
        ax.set_xticks(range(len(columns)), [_plain(c) for c in columns])
        ax.set_yticks(range(len(rows)), [_plain(v) for v in rows])
        ax.set_xlabel(_plain(param2))
        ax.set_ylabel(_plain(param))
        ax.set_title(_plain(label), fontsize=10)
    fig.suptitle(_plain(title), fontsize=11)
    return _png(fig)


def _hatched_cell(i: int, j: int) -> Any:
    from matplotlib.patches import Rectangle

    return Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, hatch="//", edgecolor="tab:red")


def cases_png(frame: pd.DataFrame, title: str) -> bytes:
    """The named cases side by side (``cases.csv`` rows): the plan's E[NPV] and CVaR ($M)
    and its AI MW, one bar per case; an infeasible case has no bar and says so."""
    names = [str(c) for c in frame["case"]]
    y = np.arange(len(names))
    fig = Figure(figsize=(WIDTH_IN, 1.4 + 0.45 * len(names)), layout="constrained")
    axes = fig.subplots(1, 3, sharey=True)
    panels = (("expected_npv_usd", "E[NPV], $M", USD_M, "tab:green"),
              ("cvar_usd", "CVaR, $M", USD_M, "tab:red"),
              ("ai_it_mw_total", "AI IT MW", 1.0, AI_COLOR))  # fmt: skip
    ok = (frame["status"] != "infeasible").to_numpy()
    for ax, (column, label, scale, color) in zip(axes, panels, strict=True):
        values = np.where(ok, pd.to_numeric(frame[column], errors="coerce") / scale, 0.0)
        ax.barh(y, values, color=color, alpha=0.8)
        for k in np.flatnonzero(~ok):
            ax.text(0, y[k], " infeasible", va="center", color="tab:red", fontsize=8)
        ax.axvline(0, color="black", linewidth=0.8)
        ax.set_title(_plain(label), fontsize=10)
        ax.grid(True, axis="x", alpha=0.3)
    axes[0].set_yticks(y, [_plain(n) for n in names])
    axes[0].invert_yaxis()
    fig.suptitle(_plain(title), fontsize=11)
    return _png(fig)


MARKET_PANELS = (
    ("btc_usd", "BTC price [USD]"),
    ("hashrate_eh", "network hashrate [EH/s]"),
    ("hashprice_usd_ph_day", "hashprice [USD per PH/s-day]"),
)


def _plain_number(value: float, _position: int) -> str:
    """A log axis label as a plain number (``20,000``, ``3``): only 1, 2 and 5 x 10^k."""
    lead = value / 10 ** np.floor(np.log10(value)) if value > 0 else 0.0
    if not any(np.isclose(lead, d) for d in (1.0, 2.0, 5.0)):
        return ""
    return f"{value:,.0f}" if value >= 1 else f"{value:g}"


def market_paths_png(months: list[str], paths: Mapping[str, Mapping[str, Any]]) -> bytes:
    """BTC, network hashrate and hashprice by year: the p10-p90 band, the median and the mean.

    Parameters
    ----------
    months : list of str
        Each year's last month in the horizon [YYYY-MM], the x axis.
    paths : mapping
        ``paths[name]["p10" | "p50" | "p90" | "mean"]``, one value per month, for the names
        of MARKET_PANELS (``siteopt.app.economics.MarketFan.paths``).
    """
    fig = Figure(figsize=(WIDTH_IN, 3.2), layout="constrained")
    x = np.arange(len(months))
    for k, (name, label) in enumerate(MARKET_PANELS):
        ax = fig.add_subplot(1, len(MARKET_PANELS), k + 1)
        st = {q: np.asarray(v, dtype=float) for q, v in paths[name].items()}
        ax.fill_between(x, st["p10"], st["p90"], color=AI_COLOR, alpha=0.18, label="p10-p90")
        ax.plot(x, st["p50"], color=AI_COLOR, label="median")
        ax.plot(x, st["mean"], color="#1d2330", linestyle="--", label="mean")
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(FuncFormatter(_plain_number))
        ax.yaxis.set_minor_formatter(FuncFormatter(_plain_number))
        ax.set_title(label, fontsize=9)
        step = max(1, len(months) // 4)
        ax.set_xticks(x[::step], labels=[m[:4] for m in months[::step]], fontsize=8)
        ax.tick_params(axis="y", labelsize=8)
        ax.grid(alpha=0.3)
    _legend(fig.axes[0], fontsize=8, loc="lower left")
    return _png(fig)


def calibration_png(
    months: list[str],
    monthly_mean: list[float],
    fitted: list[float],
    hourly_multiple: np.ndarray,
    curve: list[tuple[float, float]],
    title: str,
) -> bytes:
    """``siteopt calibrate power``'s plot: each month's mean price against the fit (level x
    seasonality), and the hours' price-duration curve against the fitted bins."""
    fig = Figure(figsize=(WIDTH_IN, 6.0), layout="constrained")
    top, bottom = fig.subplots(2, 1)
    x = np.arange(len(months))
    top.plot(x, monthly_mean, "o-", color=AI_COLOR, label="month's mean price")
    top.plot(x, fitted, "s--", color=MINING_COLOR, label="level x seasonality")
    top.set_xticks(x, months, rotation=90 if len(months) > 12 else 0, fontsize=7)
    top.set_ylabel("USD/MWh")
    top.set_title(_plain(title))
    _legend(top, loc="best", fontsize=8)
    share = (np.arange(len(hourly_multiple)) + 0.5) / max(len(hourly_multiple), 1)
    bottom.plot(share, np.sort(hourly_multiple)[::-1], color=AI_COLOR, label="hours")
    high_first = curve[::-1]
    edges = np.concatenate([[0.0], np.cumsum([w for w, _ in high_first])])
    bottom.stairs(
        [m for _, m in high_first],
        edges,
        color=MINING_COLOR,
        label="duration_curve bins",
        baseline=None,
    )
    bottom.set_xlabel("share of hours (highest price first)")
    bottom.set_ylabel("multiple of the month's mean")
    _legend(bottom, loc="best", fontsize=8)
    return _png(fig)
