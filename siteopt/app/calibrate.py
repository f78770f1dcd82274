"""Calibration from the user's data: hourly power prices and a daily market history fitted
to the scenario keys that describe them (``siteopt calibrate``; docs/calibration.md).

Each fit returns the keys' values, their standard errors where the model gives one, and
the statistics behind them; :func:`power_block` and :func:`market_block` write them as a
YAML block that pastes into a scenario and validates, with the statistics as comments.

The power model (docs/model.md, "Power"): a month's mean price is the level x the calendar
month's seasonality x exp(s Z - s^2/2), iid by month, and the hours of a month spread
around its mean by the duration curve (multiples of the month's mean). The fit inverts
that: the months' means give the level, the seasonality and s; each hour's price over its
month's mean gives the curve.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

from siteopt.model.errors import InputError
from siteopt.model.series import Series, SeriesError, read_series

__all__ = [
    "MarketFit",
    "PowerFit",
    "fit_market",
    "fit_power",
    "market_block",
    "power_block",
]

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
MIN_MONTH_COVERAGE = 0.9  # a month with fewer of its hours is left out of the monthly fit
MIN_MONTHS = 2  # a volatility needs two months at least
SPIKE_MULTIPLE = 4.0  # an hour priced at 4x its month's mean or more is a spike hour
CURVE_BINS = 16  # the duration curve: 15 equal bins below the top 1/16, which is split
TOP_SHARE = 0.01  # ... into the top 1% and the rest of it
FOURCP_MONTHS = (6, 7, 8, 9)  # ERCOT's 4CP months: June to September
DAYS_PER_YEAR = 365.0


@dataclass(frozen=True)
class PowerFit:
    """A power market fitted to hourly prices (keys as in docs/scenario.md)."""

    name: str
    hours: int
    first: datetime
    last: datetime
    months: list[str]  # the complete months used, YYYY-MM
    partial: list[str]  # months left out (fewer than MIN_MONTH_COVERAGE of their hours)
    monthly_mean: list[float]  # [USD/MWh] per complete month
    price_usd_mwh: float
    price_usd_mwh_se: float
    price_volatility: float
    price_volatility_se: float
    seasonality: list[float] | None  # None: fewer than 12 calendar months
    season_months: dict[int, int]  # calendar month -> complete months behind its multiple
    duration_curve: list[tuple[float, float]]
    spike_hours_share: float
    spike_price_usd_mwh: float
    negative_hours: int
    fourcp: list[tuple[str, float, float]] = field(default_factory=list)  # (hour, MW, USD/MWh)
    hourly_multiple: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)


def _month(t: datetime) -> str:
    return f"{t.year:04d}-{t.month:02d}"


def _hours_in(month: str) -> int:
    y, m = int(month[:4]), int(month[5:])
    nxt = datetime(y + (m == 12), m % 12 + 1, 1)
    return int((nxt - datetime(y, m, 1)) / HOUR)


def fit_power(
    prices: Path,
    *,
    name: str,
    load: Path | None = None,
    price_column: str = "price_usd_mwh",
    allow_negative: bool = False,
) -> PowerFit:
    """Fit ``power_markets.NAME`` to an hourly price CSV (and 4CP hours to a load CSV).

    Raises
    ------
    SeriesError
        A bad timestamp, gap, repeat, missing or (without ``allow_negative``) negative
        price, each with its CSV line.
    InputError
        Fewer than two complete months.
    """
    try:
        series = read_series(
            prices,
            required=(price_column,),
            step=HOUR,
            nonnegative=() if allow_negative else (price_column,),
        )
    except SeriesError as exc:
        if any("is negative" in p for p in exc.problems):
            hint = "prices below 0 happen (ERCOT's West hub often): --allow-negative fits them"
            raise SeriesError([*exc.problems, hint]) from None
        raise
    price = np.asarray(series.values[price_column], dtype=np.float64)
    months_of = np.array([_month(t) for t in series.times])
    months, counts = np.unique(months_of, return_counts=True)
    complete = [m for m, c in zip(months, counts, strict=True)
                if c >= MIN_MONTH_COVERAGE * _hours_in(m)]  # fmt: skip
    partial = [m for m in months if m not in complete]
    if len(complete) < MIN_MONTHS:
        raise InputError(
            f"{prices}: {len(complete)} complete month(s) of hourly prices; the fit needs at "
            f"least {MIN_MONTHS} (a month counts with {MIN_MONTH_COVERAGE:.0%} of its hours)"
        )
    keep = np.isin(months_of, complete)
    mean = np.array([price[months_of == m].mean() for m in complete])
    if np.any(mean <= 0):
        bad = [m for m, v in zip(complete, mean, strict=True) if v <= 0]
        raise InputError(f"{prices}: the mean price of {', '.join(bad)} is not above 0")
    calendar = np.array([int(m[5:]) for m in complete])
    season_months = {k: int((calendar == k).sum()) for k in range(1, 13)}
    if all(season_months.values()):
        by_month = np.array([np.exp(np.log(mean[calendar == k]).mean()) for k in range(1, 13)])
        seasonality = by_month / by_month.mean()
    else:
        seasonality = None
    season = seasonality[calendar - 1] if seasonality is not None else np.ones(len(complete))
    deseasoned = mean / season
    n = len(complete)
    resid = np.log(deseasoned)
    # degrees of freedom: the level, and the twelve calendar months when they were fitted
    dof = n - (12 if seasonality is not None else 1)
    if dof < 1:
        raise InputError(
            f"{prices}: {n} complete months leave no degree of freedom for the volatility "
            "beside the seasonality; give a longer sample"
        )
    sigma = float(math.sqrt(((resid - resid.mean()) ** 2).sum() / dof))
    level = float(deseasoned.mean())
    level_se = float(deseasoned.std(ddof=1) / math.sqrt(n))
    sigma_se = sigma / math.sqrt(2.0 * dof)

    month_mean = dict(zip(complete, mean, strict=True))
    multiple = price[keep] / np.array([month_mean[m] for m in months_of[keep]])
    curve = _duration_curve(multiple)
    spikes = multiple >= SPIKE_MULTIPLE
    spike_price = float(price[keep][spikes].mean()) if spikes.any() else 0.0
    fourcp = _fourcp(load, series) if load is not None else []
    return PowerFit(
        name=name,
        hours=len(price),
        first=series.times[0],
        last=series.times[-1],
        months=complete,
        partial=partial,
        monthly_mean=[float(v) for v in mean],
        price_usd_mwh=level,
        price_usd_mwh_se=level_se,
        price_volatility=sigma,
        price_volatility_se=sigma_se,
        seasonality=None if seasonality is None else [float(v) for v in seasonality],
        season_months=season_months,
        duration_curve=curve,
        spike_hours_share=float(spikes.mean()),
        spike_price_usd_mwh=spike_price,
        negative_hours=int((price < 0).sum()),
        fourcp=fourcp,
        hourly_multiple=multiple,
    )


def _duration_curve(multiple: np.ndarray) -> list[tuple[float, float]]:
    """Bins of the hours' multiples, sorted: CURVE_BINS - 1 equal shares, the top share
    split at TOP_SHARE; each bin's multiple is the mean of its hours' multiples."""
    r = np.sort(multiple)
    h = len(r)
    edges = [round(h * k / CURVE_BINS) for k in range(CURVE_BINS)]
    edges += [max(edges[-1], h - max(1, round(h * TOP_SHARE))), h]
    out = []
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        if hi > lo:
            out.append((float((hi - lo) / h), float(r[lo:hi].mean())))
    return out


def _fourcp(load: Path, prices: Series) -> list[tuple[str, float, float]]:
    """Each June-September month's hour of peak system load, its load and price."""
    series = read_series(load, required=(), optional=("load_mw",), step=HOUR,
                         nonnegative=("load_mw",))  # fmt: skip
    loads = np.asarray(series.values["load_mw"], dtype=np.float64)
    if not np.isfinite(loads).any():
        raise InputError(f"{load}: no load_mw values (expected timestamp,load_mw)")
    price_at = dict(zip(prices.times, next(iter(prices.values.values())), strict=True))
    by_month: dict[str, tuple[datetime, float]] = {}
    for t, mw in zip(series.times, loads, strict=True):
        if not math.isfinite(mw) or t.month not in FOURCP_MONTHS:
            continue  # a blank hour cannot be a peak
        if _month(t) not in by_month or mw > by_month[_month(t)][1]:
            by_month[_month(t)] = (t, mw)
    return [
        (t.strftime("%Y-%m-%d %H:%M"), mw, price_at.get(t, math.nan))
        for _, (t, mw) in sorted(by_month.items())
    ]


def _f(x: float) -> str:
    """A number for YAML: short, and plain (no exponent for ordinary values)."""
    return f"{x:.4g}" if abs(x) < 1e5 else f"{x:.0f}"


def power_block(fit: PowerFit) -> str:
    """``power_markets: NAME: ...`` as YAML, the fit's statistics as comments."""
    span = f"{fit.first:%Y-%m-%d %H:%M} to {fit.last:%Y-%m-%d %H:%M}"
    lines = [
        f"# siteopt calibrate power: {fit.hours:,} hourly prices, {span}",
        f"# complete months used: {len(fit.months)} ({fit.months[0]} to {fit.months[-1]})"
        + (f"; left out (partial): {', '.join(fit.partial)}" if fit.partial else ""),
        f"# hours below 0 USD/MWh: {fit.negative_hours:,}",
        "power_markets:",
        f"  {fit.name}:",
        f"    price_usd_mwh: {fit.price_usd_mwh:.2f}        # mean of the months' means "
        f"over seasonality; standard error {fit.price_usd_mwh_se:.2f}",
        f"    price_volatility: {fit.price_volatility:.3f}      # sd of ln(month mean / fitted); "
        f"standard error {fit.price_volatility_se:.3f} over {len(fit.months)} months",
    ]
    if fit.seasonality is not None:
        lines.append(
            "    seasonality: [" + ", ".join(f"{v:.3f}" for v in fit.seasonality) + "]"
            "  # Jan..Dec, geometric mean of each calendar month's means, mean 1"
        )
        counts = ", ".join(str(fit.season_months[k]) for k in range(1, 13))
        lines.append(f"    # months behind each multiple: {counts}")
    else:
        missing = [k for k, v in fit.season_months.items() if v == 0]
        lines.append(
            f"    # seasonality not fitted: no complete month for calendar month(s) "
            f"{', '.join(map(str, missing))}; fit a year or more, or keep your own"
        )
    lines.append(
        "    duration_curve:                # [share of hours, multiple of the month's mean]"
    )
    for share, mult in fit.duration_curve:
        lines.append(f"      - [{share:.5f}, {mult:.4f}]")
    lines += [
        f"    spike_hours_share: {fit.spike_hours_share:.4f}     # hours at >= "
        f"{SPIKE_MULTIPLE:g}x their month's mean (used only without duration_curve)",
        f"    spike_price_usd_mwh: {fit.spike_price_usd_mwh:.1f}     # their mean price",
    ]
    if fit.fourcp:
        lines.append("    # 4CP: each June-September month's peak-load hour, its load and price:")
        for hour, mw, price in fit.fourcp:
            lines.append(f"    #   {hour}  {mw:,.0f} MW  {price:,.2f} USD/MWh")
        lines.append(
            "    # transmission_4cp_usd_kw_year and fourcp_avoidance are not in prices: set them "
            "from your tariff and how surely you curtail in these hours"
        )
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- the market


@dataclass(frozen=True)
class MarketFit:
    """The market keys fitted to a daily history (docs/scenario.md), with standard errors."""

    days: int
    first: datetime
    last: datetime
    btc_price_usd: float
    btc_drift: float
    btc_drift_se: float
    btc_volatility: float
    btc_volatility_se: float
    hashrate_eh: float | None = None
    hashrate_growth: float | None = None
    hashrate_growth_se: float | None = None
    hashrate_volatility: float | None = None
    hashrate_volatility_se: float | None = None
    correlation: float | None = None
    correlation_se: float | None = None
    months: int = 0
    fee_share: float | None = None
    fee_share_se: float | None = None
    fee_share_volatility: float | None = None
    fee_share_volatility_se: float | None = None


def fit_market(history: Path) -> MarketFit:
    """Fit the market keys to a daily CSV: ``date,btc_price_usd[,hashrate_eh][,fee_share]``.

    BTC: daily log returns give the volatility (x sqrt(365)) and the drift before
    -s^2/2 (mean x 365 + s^2/2). The network hashrate, whose daily figures are estimates
    from block times, is taken by calendar month: the months' mean log changes give its
    growth, their residual sd (x sqrt(12)) its volatility, and their correlation with the
    same months' BTC log returns the correlation. The fee share: its monthly means' mean
    and the sd of their logs.
    """
    series = read_series(
        history,
        required=("btc_price_usd",),
        optional=("hashrate_eh", "fee_share"),
        step=DAY,
        nonnegative=("btc_price_usd", "hashrate_eh", "fee_share"),
    )
    price = np.asarray(series.values["btc_price_usd"], dtype=np.float64)
    if len(price) < 3 or np.any(price <= 0):
        raise InputError(f"{history}: need at least three days of BTC prices above 0")
    r = np.diff(np.log(price))
    n = len(r)
    vol = float(r.std(ddof=1) * math.sqrt(DAYS_PER_YEAR))
    drift = float(r.mean() * DAYS_PER_YEAR + 0.5 * vol**2)
    years = n / DAYS_PER_YEAR
    fit = {
        "days": len(price),
        "first": series.times[0],
        "last": series.times[-1],
        "btc_price_usd": float(price[-1]),
        "btc_drift": drift,
        "btc_drift_se": vol / math.sqrt(years),
        "btc_volatility": vol,
        "btc_volatility_se": vol / math.sqrt(2.0 * (n - 1)),
    }
    months = np.array([_month(t) for t in series.times])
    labels = list(dict.fromkeys(months))
    last_price = np.array([price[months == m][-1] for m in labels])
    hashrate = np.asarray(series.values["hashrate_eh"], dtype=np.float64)
    if np.isfinite(hashrate).sum() and not np.isfinite(hashrate).all():
        raise InputError(f"{history}: hashrate_eh is blank on some days; give it every day or none")
    if np.isfinite(hashrate).all() and len(labels) >= 4:
        h = np.log(np.array([hashrate[months == m].mean() for m in labels]))
        dh = np.diff(h)
        dp = np.diff(np.log(last_price))
        k = len(dh)
        sd = float(dh.std(ddof=1))
        rho = float(np.corrcoef(dp, dh)[0, 1]) if dp.std() > 0 and sd > 0 else 0.0
        fit.update(
            hashrate_eh=float(hashrate[months == labels[-1]].mean()),
            hashrate_growth=float(dh.mean() * 12.0),
            hashrate_growth_se=sd * 12.0 / math.sqrt(k),
            hashrate_volatility=sd * math.sqrt(12.0),
            hashrate_volatility_se=sd * math.sqrt(12.0) / math.sqrt(2.0 * (k - 1)),
            correlation=rho,
            correlation_se=(1.0 - rho * rho) / math.sqrt(max(k - 3, 1)),
            months=len(labels),
        )
    fees = np.asarray(series.values["fee_share"], dtype=np.float64)
    if np.isfinite(fees).any():
        by_month = np.array([np.nanmean(fees[months == m]) for m in labels
                             if np.isfinite(fees[months == m]).any()])  # fmt: skip
        positive = by_month[by_month > 0]
        fit.update(
            fee_share=float(by_month.mean()),
            fee_share_se=float(by_month.std(ddof=1) / math.sqrt(len(by_month)))
            if len(by_month) > 1
            else None,
            fee_share_volatility=float(np.log(positive).std(ddof=1)) if len(positive) > 1 else None,
            fee_share_volatility_se=float(np.log(positive).std(ddof=1))
            / math.sqrt(2.0 * (len(positive) - 1))
            if len(positive) > 1
            else None,
        )
    return MarketFit(**fit)


def market_block(fit: MarketFit) -> str:
    """``market: ...`` as YAML, the fit's statistics as comments."""
    lines = [
        f"# siteopt calibrate market: {fit.days:,} days, "
        f"{fit.first:%Y-%m-%d} to {fit.last:%Y-%m-%d}",
        "market:",
        f"  btc_price_usd: {fit.btc_price_usd:.0f}        # the last day's price",
        f"  btc_volatility: {fit.btc_volatility:.3f}      # sd of daily log returns x sqrt(365); "
        f"standard error {fit.btc_volatility_se:.3f}",
        f"  # btc_drift: {fit.btc_drift:.3f}           # mean daily log return x 365 + s^2/2; "
        f"standard error {fit.btc_drift_se:.3f}: history says little about the next decade's "
        "drift; omitted, the median stays flat; put a house view in market.forward",
    ]
    if fit.hashrate_eh is not None:
        lines += [
            f"  hashrate_eh: {_f(fit.hashrate_eh)}           # the last month's mean",
            f"  hashrate_volatility: {fit.hashrate_volatility:.3f}  # sd of monthly log changes x "
            f"sqrt(12) over {fit.months} months; standard error {fit.hashrate_volatility_se:.3f}",
            f"  hashrate_price_correlation: {fit.correlation:.2f}  # monthly log changes against "
            f"BTC's; standard error {fit.correlation_se:.2f}",
            f"  # historical hashrate growth {fit.hashrate_growth:.3f}/yr (standard error "
            f"{fit.hashrate_growth_se:.3f}): the default rule pulls the network toward "
            "break-even instead; to impose this growth set hashrate_growth to it and "
            "breakeven_efficiency_j_th: null",
        ]
    if fit.fee_share is not None:
        se = f"; standard error {fit.fee_share_se:.4f}" if fit.fee_share_se is not None else ""
        lines.append(f"  fee_share: {fit.fee_share:.4f}         # mean of the monthly means{se}")
        if fit.fee_share_volatility is not None:
            lines.append(
                f"  fee_share_volatility: {fit.fee_share_volatility:.3f}  # sd of ln(monthly "
                f"mean); standard error {fit.fee_share_volatility_se:.3f}"
            )
    return "\n".join(lines) + "\n"
