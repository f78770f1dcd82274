"""Time series from CSV files: forward curves named in a scenario, and the histories that
``siteopt calibrate`` fits.

Every problem names the file and its line (1-based, the header is line 1): a bad or
repeated timestamp, a gap, a missing or negative value. Nothing is guessed or filled in.
Files are read with a size cap checked while reading, so a device or a pipe that never
ends is refused, not read until memory runs out.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from .errors import InputError
from .schema import FORWARD_POINT_PATTERN

__all__ = [
    "MAX_SERIES_BYTES",
    "Series",
    "SeriesError",
    "forward_files",
    "read_forward_csv",
    "read_series",
]

MAX_SERIES_BYTES = 256 * 1024 * 1024  # a year of hourly prices for every ERCOT node is less
_MONTH = re.compile(FORWARD_POINT_PATTERN)


class SeriesError(InputError):
    """A CSV that cannot be used (exit 2); ``problems`` lists each as ``file:line: what``."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(self.problems))


@dataclass(frozen=True)
class Series:
    """Rows of a CSV: timestamps and named numeric columns, in file order.

    Attributes
    ----------
    times : list[datetime]
    values : dict[str, list[float]]
        Column name -> values (NaN where an optional column is blank).
    lines : list[int]
        The CSV line of each row.
    """

    times: list[datetime]
    values: dict[str, list[float]]
    lines: list[int]


def _text(path: Path) -> str:
    """The file's text, refusing more than MAX_SERIES_BYTES (checked while reading)."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_SERIES_BYTES + 1)
    except OSError as exc:
        raise SeriesError([f"{path}: cannot read: {exc.strerror or exc}"]) from None
    if len(data) > MAX_SERIES_BYTES:
        raise SeriesError([f"{path}: larger than {MAX_SERIES_BYTES // 2**20} MiB"])
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SeriesError([f"{path}: not UTF-8 text (byte {exc.start})"]) from None


def _rows(path: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    reader = csv.reader(io.StringIO(_text(path)))
    header: list[str] | None = None
    rows = []
    for row in reader:
        if not row or all(not c.strip() for c in row):
            continue
        if header is None:
            header = [c.strip().lower() for c in row]
            continue
        rows.append((reader.line_num, [c.strip() for c in row]))
    if header is None:
        raise SeriesError([f"{path}: empty: expected a header line and rows"])
    return header, rows


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def read_forward_csv(path: Path) -> dict[str, float]:
    """A forward curve from a CSV with columns ``month,value`` (month YYYY-MM or YYYY)."""
    header, rows = _rows(path)
    if header[:2] != ["month", "value"]:
        raise SeriesError(
            [f"{path}:1: expected the header 'month,value', found {','.join(header)}"]
        )
    problems: list[str] = []
    out: dict[str, float] = {}
    for line, row in rows:
        if len(row) < 2:
            problems.append(f"{path}:{line}: expected month,value")
            continue
        month, value = row[0], _number(row[1])
        if not _MONTH.match(month):
            problems.append(f"{path}:{line}: month {month!r} is not YYYY-MM or YYYY")
        elif month in out:
            problems.append(f"{path}:{line}: month {month} appears twice")
        elif value is None:
            problems.append(f"{path}:{line}: value {row[1]!r} is not a number")
        else:
            out[month] = value
    if not out and not problems:
        problems.append(f"{path}: no rows after the header")
    if problems:
        raise SeriesError(problems)
    return out


_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M")


def _timestamp(text: str) -> datetime | None:
    text = text.strip().removesuffix("Z")
    for fmt in (*_FORMATS, "%Y-%m-%d"):
        try:
            return datetime.strptime(text, fmt)
        except ValueError:
            continue
    return None


def read_series(
    path: Path,
    *,
    required: Sequence[str],
    optional: Sequence[str] = (),
    step: timedelta,
    nonnegative: Sequence[str] = (),
) -> Series:
    """Rows of a CSV whose first column is a timestamp, one row every ``step``.

    Parameters
    ----------
    path : Path
    required : columns that must be present and hold a number in every row.
    optional : columns that may be absent or blank (NaN).
    step : the spacing of the rows: a gap or a repeat is an error naming its line.
    nonnegative : columns whose values may not be negative.
    """
    header, rows = _rows(path)
    missing = [c for c in required if c not in header[1:]]
    if missing:
        raise SeriesError(
            [f"{path}:1: missing column(s) {', '.join(missing)}; the header has {','.join(header)}"]
        )
    col = {c: header.index(c) for c in (*required, *optional) if c in header[1:]}
    problems: list[str] = []
    times: list[datetime] = []
    lines: list[int] = []
    values: dict[str, list[float]] = {c: [] for c in (*required, *optional)}
    previous: tuple[datetime, int] | None = None
    for line, row in rows:
        when = _timestamp(row[0]) if row else None
        if when is None:
            problems.append(
                f"{path}:{line}: timestamp {row[0] if row else ''!r} is not "
                "YYYY-MM-DD HH:MM[:SS] (or YYYY-MM-DD)"
            )
            continue
        if previous is not None:  # the last row whose timestamp read, kept or not
            last, last_line = previous
            if when == last:
                problems.append(f"{path}:{line}: timestamp {row[0]} repeats line {last_line}")
                continue
            if when < last:
                problems.append(f"{path}:{line}: timestamp {row[0]} is before line {last_line}'s")
                continue
            if when - last != step:
                problems.append(
                    f"{path}:{line}: gap of {when - last} after line {last_line} (rows must be "
                    f"{step} apart)"
                )
        previous = (when, line)
        row_values: dict[str, float] = {}
        for name in (*required, *optional):
            text = row[col[name]] if name in col and col[name] < len(row) else ""
            if not text and name in optional:
                row_values[name] = math.nan
                continue
            value = _number(text)
            if value is None:
                what = "missing" if not text else f"{text!r} is not a number"
                problems.append(f"{path}:{line}: {name} {what}")
                break
            if name in nonnegative and value < 0:
                problems.append(f"{path}:{line}: {name} {value:g} is negative")
                break
            row_values[name] = value
        else:
            times.append(when)
            lines.append(line)
            for name, v in row_values.items():
                values[name].append(v)
    if not times and not problems:
        problems.append(f"{path}: no rows after the header")
    if problems:
        shown = problems[:50]
        if len(problems) > 50:
            shown.append(f"{path}: ... and {len(problems) - 50} more")
        raise SeriesError(shown)
    return Series(times, values, lines)


def forward_files(data: dict, base: Path) -> list[str]:
    """Replace each forward given as a CSV path in scenario ``data`` with its points.

    Paths are relative to the scenario file's folder. Returns the problems found.
    """
    problems: list[str] = []
    market = data.get("market")
    slots: list[tuple[dict, str]] = []
    if isinstance(market, dict) and isinstance(market.get("forward"), dict):
        slots += [(market["forward"], k) for k in ("btc_price_usd", "hashrate_eh", "fee_share")]
    markets = data.get("power_markets")
    if isinstance(markets, dict):
        slots += [(pm, "forward_usd_mwh") for pm in markets.values() if isinstance(pm, dict)]
    for holder, key in slots:
        value = holder.get(key)
        if not isinstance(value, str):
            continue
        try:
            holder[key] = read_forward_csv(base / value)
        except SeriesError as exc:
            problems += exc.problems
    return problems
