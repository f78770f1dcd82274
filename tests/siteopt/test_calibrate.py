"""siteopt calibrate: synthetic series from known parameters are recovered within their
standard errors; bad CSVs are reported with their lines; a real ERCOT sample runs end to
end and its block validates in a scenario."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from siteopt.app.calibrate import fit_market, fit_power
from siteopt.cli.group import main
from siteopt.model.load import load_scenario
from siteopt.model.series import SeriesError

ROOT = Path(__file__).resolve().parents[2]
ERCOT = ROOT / "tests" / "data" / "ercot_west_2025.csv"
SEASON = np.array([0.9, 0.9, 0.9, 0.95, 1.0, 1.1, 1.3, 1.4, 1.1, 0.95, 0.9, 0.9])
SEASON = SEASON / np.exp(np.log(SEASON).mean())  # geometric mean 1, as the fit normalises
LEVEL, SIGMA, YEARS = 40.0, 0.25, 6
Z = 3.0


def write_hourly(path: Path, seed: int, *, years: int = YEARS) -> float:
    """Hourly prices: month mean = LEVEL x season x exp(SIGMA Z - SIGMA^2/2) (times the
    hours' spread, whose mean is 1). Returns the true mean level."""
    rng = np.random.default_rng(seed)
    t, end = datetime(2019, 1, 1), datetime(2019 + years, 1, 1)
    lines = ["timestamp,price_usd_mwh"]
    month, level = None, 0.0
    while t < end:
        if (t.year, t.month) != month:
            month = (t.year, t.month)
            level = (
                LEVEL * SEASON[t.month - 1] * math.exp(SIGMA * rng.standard_normal() - SIGMA**2 / 2)
            )
            hours = int(
                ((t.replace(day=28) + timedelta(days=4)).replace(day=1) - t) / timedelta(hours=1)
            )
            spread = rng.lognormal(0.0, 0.4, hours)
            spread /= spread.mean()  # each month's mean is its level exactly
            k = 0
        lines.append(f"{t:%Y-%m-%d %H:%M},{level * spread[k]:.6f}")
        k += 1
        t += timedelta(hours=1)
    path.write_text("\n".join(lines) + "\n")
    return LEVEL * float(np.mean(SEASON))


def test_power_fit_recovers_level_volatility_and_seasonality(tmp_path):
    path = tmp_path / "prices.csv"
    write_hourly(path, seed=3)
    fit = fit_power(path, name="grid")
    n = len(fit.months)
    assert n == 12 * YEARS
    # the level: deseasoned means have mean LEVEL x E[exp(s Z - s^2/2)] = LEVEL
    assert abs(fit.price_usd_mwh - LEVEL) < Z * fit.price_usd_mwh_se
    assert abs(fit.price_volatility - SIGMA) < Z * fit.price_volatility_se
    # each calendar month's multiple from YEARS draws: ln-SE about SIGMA / sqrt(YEARS)
    se = SIGMA / math.sqrt(YEARS) * math.sqrt(1 + 1 / 12)
    assert np.all(np.abs(np.log(np.array(fit.seasonality) / SEASON)) < Z * se)
    weights = np.array([w for w, _ in fit.duration_curve])
    multiples = np.array([m for _, m in fit.duration_curve])
    assert weights.sum() == pytest.approx(1.0)
    assert weights @ multiples == pytest.approx(1.0, rel=1e-9)  # the month's mean
    assert np.all(np.diff(multiples) >= 0)


def test_power_fit_without_a_full_year_leaves_seasonality_out(tmp_path):
    path = tmp_path / "prices.csv"
    write_hourly(path, seed=4, years=1)
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[: 1 + 24 * 120]) + "\n")  # 120 days: January to April
    fit = fit_power(path, name="grid")
    assert fit.seasonality is None and fit.months == ["2019-01", "2019-02", "2019-03", "2019-04"]


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (["2025-01-01 00:00,30", "2025-01-01 01:00,31", "2025-01-01 01:00,32"], ":4: timestamp"),
        (["2025-01-01 00:00,30", "2025-01-01 03:00,31"], ":3: gap of 3:00:00"),
        (["2025-01-01 00:00,30", "2025-01-01 01:00,"], ":3: price_usd_mwh missing"),
        (["2025-01-01 00:00,30", "2025-01-01 01:00,-4"], ":3: price_usd_mwh -4 is negative"),
        (["2025-01-01 00:00,30", "2025-13-01 01:00,4"], ":3: timestamp '2025-13-01 01:00'"),
        (["2025-01-01 00:00,30", "2025-01-01 01:00,abc"], ":3: price_usd_mwh 'abc' is not"),
        (
            ["2025-01-01 02:00,30", "2025-01-01 01:00,31"],
            ":3: timestamp 2025-01-01 01:00 is before",
        ),
    ],
)
def test_bad_hourly_rows_are_reported_with_their_line(tmp_path, rows, message):
    path = tmp_path / "p.csv"
    path.write_text("timestamp,price_usd_mwh\n" + "\n".join(rows) + "\n")
    with pytest.raises(SeriesError) as info:
        fit_power(path, name="grid")
    assert message in str(info.value)
    assert str(path) in str(info.value)


def test_cli_power_errors_exit_2_and_name_the_line(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("timestamp,price_usd_mwh\n2025-01-01 00:00,30\n2025-01-01 00:00,31\n")
    result = CliRunner().invoke(main, ["calibrate", "power", str(path), "--market", "x"])
    assert result.exit_code == 2
    assert f"{path}:3: timestamp 2025-01-01 00:00 repeats line 2" in result.output


def write_daily(path: Path, seed: int, days: int = 3 * 365) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    mu, vol, g, vol_h = 0.3, 0.6, 0.4, 0.15
    t = datetime(2021, 1, 1)
    p, h = 30_000.0, 150.0
    lines = ["date,btc_price_usd,hashrate_eh,fee_share"]
    zh_month = None
    for _ in range(days):
        lines.append(
            f"{t:%Y-%m-%d},{p:.4f},{h:.6f},{0.02 * math.exp(0.3 * rng.standard_normal()):.6f}"
        )
        z1 = rng.standard_normal()
        p *= math.exp((mu - vol**2 / 2) / 365 + vol / math.sqrt(365) * z1)
        nxt = t + timedelta(days=1)
        if nxt.month != t.month:  # the hashrate steps monthly, correlated with BTC's month
            zh_month = rng.standard_normal()
        t = nxt
        if zh_month is not None:
            h *= math.exp(g / 12 + vol_h / math.sqrt(12) * zh_month)
            zh_month = None
    path.write_text("\n".join(lines) + "\n")
    return {"mu": mu, "vol": vol, "g": g, "vol_h": vol_h}


def test_market_fit_recovers_btc_drift_volatility_and_hashrate_growth(tmp_path):
    path = tmp_path / "daily.csv"
    truth = write_daily(path, seed=11)
    fit = fit_market(path)
    assert abs(fit.btc_volatility - truth["vol"]) < Z * fit.btc_volatility_se
    assert abs(fit.btc_drift - truth["mu"]) < Z * fit.btc_drift_se
    assert abs(fit.hashrate_growth - truth["g"]) < Z * fit.hashrate_growth_se + 0.02
    assert abs(fit.fee_share - 0.02 * math.exp(0.045)) < Z * fit.fee_share_se + 1e-3


def test_market_block_validates_in_a_scenario(tmp_path):
    path = tmp_path / "daily.csv"
    write_daily(path, seed=12)
    result = CliRunner().invoke(main, ["calibrate", "market", str(path)])
    assert result.exit_code == 0, result.output
    block = yaml.safe_load(result.output)
    scenario = yaml.safe_load((ROOT / "scenarios" / "texas.yaml").read_text())
    scenario["market"].update(block["market"])
    file = tmp_path / "s.yaml"
    file.write_text(yaml.safe_dump(scenario))
    assert load_scenario(file).market.btc_volatility == block["market"]["btc_volatility"]


def test_real_ercot_sample_runs_end_to_end_and_its_block_validates(tmp_path):
    """Public ERCOT West hub real-time prices and system load, July-October 2025
    (tests/data/SOURCES.md): negative hours are fitted on request."""
    plot = tmp_path / "west.png"
    args = ["calibrate", "power", str(ERCOT), "--market", "ercot-west", "--plot", str(plot)]
    refused = CliRunner().invoke(main, args)
    assert refused.exit_code == 2 and "is negative" in refused.output
    result = CliRunner().invoke(main, [*args, "--allow-negative", "--load", str(ERCOT)])
    assert result.exit_code == 0, result.output
    assert plot.stat().st_size > 10_000
    block = yaml.safe_load(result.stdout)
    west = block["power_markets"]["ercot-west"]
    assert 10 < west["price_usd_mwh"] < 200 and "seasonality" not in west
    assert "# 4CP" in result.stdout
    scenario = yaml.safe_load((ROOT / "scenarios" / "texas.yaml").read_text())
    scenario["power_markets"]["ercot-west"] = west
    file = tmp_path / "s.yaml"
    file.write_text(yaml.safe_dump(scenario))
    loaded = load_scenario(file)
    assert loaded.power_markets["ercot-west"].duration_curve is not None
